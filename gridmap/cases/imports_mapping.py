"""What a historical case file says, in gridmap's terms: the mapping of its columns, categories,
departments and statuses, reading it, and turning its values into checked columns (classes, moments,
locations) — every row that cannot be used is recorded with its field and why, never dropped silently.

A mapping file (YAML)::

    origin: taipei1999            # the other system (optional here; --origin on the command line)
    crs: EPSG:4326                # the coordinates' system when the file's label is wrong or missing
    timezone: Asia/Taipei         # for timestamps without an offset (default: the city's calendar)
    columns: {number: 案件編號, opened: 成案時間, class: 案件類型}
    classes: {路燈故障或設施損壞: "10118", 動物救援: local}
    departments: {環保局: HW}
    statuses: {結案: closed, 處理中: dispatched}
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import shapely
import yaml
from pyproj import CRS

from gridmap.io.exceptions import ImportFailed
from gridmap.io.sources import whole_numbers

#: the fields a file's columns can be mapped to, and what they hold
FIELDS = {
    "number": "the case's number in the other system (recognises the case on re-import)",
    "class": "the other system's category (mapped by classes:) or a catalogue code (0102, 20102)",
    "opened": "when the case was opened (reported and filed)",
    "x": "CSV column of x / longitude (files with geometries use those)",
    "y": "CSV column of y / latitude",
    "case_type": "component or event, where the class alone does not say",
    "dispatched": "when it went to the department (default: opened)",
    "due": "the disposal deadline the other system set (default: the catalogue's limit from dispatch)",
    "handled": "when the department reported it done (default: closed)",
    "closed": "when it was closed; empty while open",
    "department": "the department it went to (gridmap code, or mapped by departments:)",
    "status": "its status there (mapped by statuses:; default closed when closed, else dispatched)",
    "unit_grid": "its unit grid, when the other system knew it (default: routed from the location)",
    "description": "what was reported",
    "address": "where, in words",
    "accuracy": "the location's accuracy in metres",
}
REQUIRED = ("number", "class", "opened")
TIMES = ("opened", "dispatched", "due", "handled", "closed")
#: the states an imported case may be in (merged cases need their target, which another system cannot give)
IMPORT_STATUSES = ("filed", "dispatched", "handled", "checked", "closed", "rejected", "voided")
LOCAL = "local"


@dataclass
class CaseMapping:
    """How a file's columns and values map onto gridmap's (see the module's docstring)."""

    columns: dict[str, str] = field(default_factory=dict)
    classes: dict[str, str] = field(default_factory=dict)
    departments: dict[str, str] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)
    origin: str | None = None
    crs: str | None = None
    timezone: str | None = None
    time_format: str | None = None

    def column(self, target: str) -> str:
        return self.columns.get(target, target)

    def overridden(self, **values) -> CaseMapping:
        """This mapping with the values given (not None) taking precedence: the command line over the file."""
        columns = values.pop("columns", None) or {}
        return replace(self, columns=self.columns | columns, **{k: v for k, v in values.items() if v is not None})


def _codes(raw, where: str, what: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ImportFailed(f"{where}: '{what}' must be a mapping 'their value: gridmap value'")
    out = {}
    for key, value in raw.items():
        if isinstance(value, int) and not isinstance(value, bool) and not 10000 <= value <= 29999:
            raise ImportFailed(f"{where}: {what} {key!r}: write codes in quotes ('0102'); YAML reads {value} "
                               "as a number and drops leading zeros")
        if value is None or isinstance(value, (dict, list)):
            raise ImportFailed(f"{where}: {what} {key!r}: expected a code, got {value!r}")
        out[str(key).strip()] = str(value).strip()
    return out


def parse_mapping(data: dict | None, where: str = "mapping") -> CaseMapping:
    """A :class:`CaseMapping` from a loaded YAML document; errors name the key."""
    data = data or {}
    if not isinstance(data, dict):
        raise ImportFailed(f"{where}: expected a mapping with columns:, classes:, departments:, statuses:")
    known = {"columns", "classes", "departments", "statuses", "origin", "crs", "timezone", "time_format"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ImportFailed(f"{where}: unknown keys {unknown}; use {sorted(known)}")
    columns = {str(k): str(v) for k, v in (data.get("columns") or {}).items()}
    bad = sorted(set(columns) - set(FIELDS))
    if bad:
        raise ImportFailed(f"{where}: columns: cannot map {bad}; fields are {', '.join(FIELDS)}")
    statuses = _codes(data.get("statuses"), where, "statuses")
    wrong = sorted({v for v in statuses.values() if v not in IMPORT_STATUSES})
    if wrong:
        raise ImportFailed(f"{where}: statuses: {wrong} are not statuses an import can give; "
                           f"use {', '.join(IMPORT_STATUSES)}")
    scalars = {k: None if data.get(k) is None else str(data[k]) for k in ("origin", "crs", "timezone", "time_format")}
    return CaseMapping(columns=columns, classes=_codes(data.get("classes"), where, "classes"),
                       departments=_codes(data.get("departments"), where, "departments"), statuses=statuses,
                       **scalars)


def load_mapping(path: Path | str) -> CaseMapping:
    """Read a mapping YAML file (see the module's docstring)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ImportFailed(f"{path}: cannot read the mapping ({error})") from None
    return parse_mapping(data, str(path))


# -- reading -----------------------------------------------------------------------------------------
@dataclass
class Rows:
    """A file's rows: its columns (geometry removed), the locations as read, and the declared CRS."""

    path: Path
    frame: pd.DataFrame
    x: np.ndarray
    y: np.ndarray
    crs: CRS | None
    problems: list[tuple] = field(default_factory=list)  # (rows, field, reason, values shown)
    notes: list[str] = field(default_factory=list)


def read_rows(data: Path | str | pd.DataFrame, mapping: CaseMapping, *, layer: str | None = None) -> Rows:
    """Read a CSV (x/y columns), GeoParquet, GeoPackage, GeoJSON … or take a (Geo)DataFrame."""
    if isinstance(data, pd.DataFrame):
        return _rows(Path("<dataframe>"), data.reset_index(drop=True), mapping)
    path = Path(data)
    if not path.exists():
        raise ImportFailed(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".txt"):
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        elif suffix in (".parquet", ".geoparquet"):
            points = _parquet_points(path, mapping)
            if points is not None:
                return points
            try:
                frame = gpd.read_parquet(path)
            except ValueError:  # a plain Parquet table (x/y columns, no geometry metadata)
                frame = pd.read_parquet(path)
        else:
            frame = gpd.read_file(path, layer=layer, engine="pyogrio", use_arrow=True)
    except (UnicodeDecodeError, pd.errors.ParserError) as error:
        raise ImportFailed(f"{path}: not a readable UTF-8 CSV file ({error})") from None
    except ImportFailed:
        raise
    except Exception as error:  # pyogrio and pyarrow raise many kinds
        raise ImportFailed(f"{path}: cannot be read ({error})") from None
    return _rows(path, frame.reset_index(drop=True), mapping)


def _parquet_points(path: Path, mapping: CaseMapping) -> Rows | None:
    """A GeoParquet file of WKB points, read without making a shapely object per row (a million cost
    seconds): the 21 bytes of each point are read as numbers. None for anything else (the general path)."""
    table = pq.read_table(path)
    geo = json.loads((table.schema.metadata or {}).get(b"geo", b"null") or "null")
    column = geo and geo.get("primary_column")
    info = (geo or {}).get("columns", {}).get(column, {})
    if not column or column not in table.column_names or mapping.column("x") in table.column_names \
            or info.get("encoding", "WKB").upper() != "WKB":
        return None
    wkb = table.column(column).combine_chunks()
    if not pa.types.is_binary(wkb.type) and not pa.types.is_large_binary(wkb.type):
        return None
    offsets = np.frombuffer(wkb.buffers()[1], dtype=np.int32 if pa.types.is_binary(wkb.type) else np.int64,
                            count=len(wkb) + 1, offset=wkb.offset * (4 if pa.types.is_binary(wkb.type) else 8))
    present = ~np.asarray(wkb.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if not (np.diff(offsets)[present] == 21).all():
        return None  # not all 2D points
    data = np.frombuffer(wkb.buffers()[2], dtype=np.uint8)
    record = data[offsets[:-1][present, None] + np.arange(21)]
    if not ((record[:, 0] == 1).all() and (record[:, 1:5].copy().view("<u4") == 1).all()):
        return None  # big-endian or not points: the general path
    x, y = np.full(len(wkb), np.nan), np.full(len(wkb), np.nan)
    x[present] = record[:, 5:13].copy().view("<f8").ravel()
    y[present] = record[:, 13:21].copy().view("<f8").ravel()
    crs = CRS.from_user_input(info["crs"]) if info.get("crs") else None if "crs" in info else CRS("OGC:CRS84")
    return Rows(path, table.drop_columns([column]).to_pandas(), x, y, crs)


def _rows(path: Path, frame: pd.DataFrame, mapping: CaseMapping) -> Rows:
    n = len(frame)
    x_col, y_col = mapping.column("x"), mapping.column("y")
    if isinstance(frame, gpd.GeoDataFrame) and frame.geometry.name in frame and x_col not in frame:
        geoms = np.asarray(frame.geometry.values, dtype=object)
        rows = Rows(path, pd.DataFrame(frame.drop(columns=frame.geometry.name)), np.full(n, np.nan),
                    np.full(n, np.nan), frame.crs)
        present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        points = present & (shapely.get_type_id(geoms) == 0)
        rows.x[points], rows.y[points] = shapely.get_x(geoms[points]), shapely.get_y(geoms[points])
        wrong = np.flatnonzero(present & ~points)
        rows.problems.append((wrong, "geometry", "not a point", pd.Series(shapely.get_type_id(geoms)).map(
            {1: "LineString", 2: "LinearRing", 3: "Polygon", 4: "MultiPoint", 5: "MultiLineString",
             6: "MultiPolygon", 7: "GeometryCollection"})))
        return rows
    if x_col not in frame or y_col not in frame:
        raise ImportFailed(f"{path}: no location: the file has no geometry and no {x_col}/{y_col} columns "
                           f"(name them with --map x=COLUMN --map y=COLUMN; it has {list(frame.columns)})")
    xs, ys = (pd.to_numeric(text(frame[c]), errors="coerce").to_numpy(dtype=float) for c in (x_col, y_col))
    rows = Rows(path, pd.DataFrame(frame.drop(columns=[x_col, y_col])), xs, ys, None)
    for name, raw, parsed in ((x_col, frame[x_col], xs), (y_col, frame[y_col], ys)):
        rows.problems.append((text(raw).notna().to_numpy() & np.isnan(parsed), name, "not a number", raw))
    return rows


def text(series: pd.Series) -> pd.Series:
    """The column as trimmed text (NA for missing or blank); whole floats without ``.0``."""
    series = whole_numbers(series)
    if pd.api.types.is_datetime64_any_dtype(series):
        return series.astype("string")
    out = series.astype("string").str.strip()
    return out.mask(out == "")


def same(value: str) -> str:
    """How a value is compared with a mapping's keys: Unicode NFKC (compatibility ideographs such as 理
    U+F9E4, full-width brackets and letters become the usual ones), trimmed."""
    return unicodedata.normalize("NFKC", value).strip()


def distinct_text(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each row's number among the column's distinct values (-1 for missing) and those values as
    :func:`text` (None for blank): a column of a few categories is trimmed a few times, not a million."""
    codes, uniques = pd.factorize(series)
    return codes, text(pd.Series(uniques)).to_numpy(dtype=object, na_value=None)


def translate(values: pd.Series, table: dict[str, str]) -> np.ndarray:
    """Each value replaced by its entry in ``table`` (compared by :func:`same`), kept where it has none;
    None for missing values. Looked up once per distinct value."""
    codes, uniques = distinct_text(values)
    keys = {same(k): v for k, v in table.items()}
    return np.array([None if u is None else keys.get(same(u), u) for u in uniques] + [None], dtype=object)[codes]

