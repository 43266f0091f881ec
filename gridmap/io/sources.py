"""Read a source file of any supported format into a frame of text columns and one geometry column.

Every value comes out as text (or None) so that validation sees exactly what the file holds; numeric
columns that hold whole numbers (``stationid`` read as 10.0) come out as ``"10"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from gridmap.io.exceptions import ImportFailed

VECTOR_SUFFIXES = {".geojson", ".json", ".gpkg", ".shp", ".fgb", ".zip"}
PARQUET_SUFFIXES = {".parquet", ".geoparquet"}
CSV_SUFFIXES = {".csv", ".txt"}
SUPPORTED = sorted(VECTOR_SUFFIXES | PARQUET_SUFFIXES | CSV_SUFFIXES)


@dataclass
class Source:
    """What was read: the rows (text), their geometries in the source CRS, and what the reader noticed."""

    path: Path
    rows: pd.DataFrame
    geometry: np.ndarray | None  # shapely geometries, None where the row has none
    crs: CRS | None
    notes: list[str] = field(default_factory=list)
    problems: list[tuple[int, str, str]] = field(default_factory=list)  # (row index, field, reason)


def read_source(
    path: Path, *, layer: str | None = None, crs: str | None = None, x: str = "x", y: str = "y"
) -> Source:
    """Read ``path`` (GeoJSON, GeoPackage, Shapefile, FlatGeobuf, GeoParquet or CSV with x/y columns).

    ``crs`` overrides the CRS the file declares (files are sometimes labelled wrongly).
    """
    path = Path(path)
    if not path.exists():
        raise ImportFailed(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        source = _read_csv(path, x=x, y=y)
    elif suffix in PARQUET_SUFFIXES:
        source = _from_frame(path, _read_parquet(path))
    elif suffix in VECTOR_SUFFIXES:
        try:
            frame = gpd.read_file(path, layer=layer, engine="pyogrio")
        except Exception as error:  # pyogrio raises several DataSourceError kinds
            raise ImportFailed(f"{path}: cannot be read as a vector file ({error})") from None
        source = _from_frame(path, frame)
    else:
        raise ImportFailed(f"{path}: unsupported format {suffix!r}; use one of {', '.join(SUPPORTED)}")
    if crs:
        try:
            declared = CRS.from_user_input(crs)
        except Exception:
            raise ImportFailed(f"--crs {crs!r} is not a coordinate reference system pyproj knows") from None
        if source.crs is not None and source.crs != declared:
            source.notes.append(f"CRS declared in the file ({source.crs.to_string()}) overridden by --crs {crs}")
        source.crs = declared
    return source


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return gpd.read_parquet(path)
    except ValueError:  # a plain Parquet table without geometry metadata
        return pd.read_parquet(path)


def _from_frame(path: Path, frame: pd.DataFrame) -> Source:
    frame = frame.reset_index(drop=True)  # rows are numbered by position, whatever the frame's index
    geometry, crs = None, None
    if isinstance(frame, gpd.GeoDataFrame) and frame.geometry.name in frame:
        geometry = np.asarray(frame.geometry.values, dtype=object)
        crs = frame.crs
        frame = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    rows = pd.DataFrame({str(name): as_text(frame[name]) for name in frame.columns}, index=range(len(frame)))
    return Source(path=path, rows=rows, geometry=geometry, crs=crs)


def _read_csv(path: Path, *, x: str, y: str) -> Source:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError) as error:
        raise ImportFailed(f"{path}: not a readable UTF-8 CSV file ({error})") from None
    rows = pd.DataFrame({str(name): as_text(frame[name]) for name in frame.columns}, index=range(len(frame)))
    source = Source(path=path, rows=rows, geometry=None, crs=None)
    if x not in rows or y not in rows:
        return source  # a table without locations (catalogue, departments, rules)
    xs = pd.to_numeric(rows[x], errors="coerce")
    ys = pd.to_numeric(rows[y], errors="coerce")
    for column, raw, parsed in ((x, rows[x], xs), (y, rows[y], ys)):
        bad = raw.notna() & parsed.isna()
        source.problems += [(i, column, f"not a number: {raw[i]!r}") for i in np.flatnonzero(bad)]
    located = xs.notna() & ys.notna()
    geometry = np.full(len(rows), None, dtype=object)
    geometry[located.to_numpy()] = shapely.points(xs[located].to_numpy(), ys[located].to_numpy())
    source.geometry = geometry
    source.rows = rows.drop(columns=[x, y])
    in_degrees = xs[located].between(-180, 180).all() and ys[located].between(-90, 90).all()
    if in_degrees:
        source.crs = CRS.from_epsg(4326)
        source.notes.append("CSV files declare no CRS: x/y read as WGS84 longitude/latitude (EPSG:4326); "
                            "give --crs if they are not")
    return source


def whole_numbers(series: pd.Series) -> pd.Series:
    """A float column whose values are all whole numbers as integers (so codes read back without ``.0``)."""
    if pd.api.types.is_float_dtype(series):
        whole = series.dropna()
        if len(whole) and (whole == np.floor(whole)).all() and whole.abs().max() < 2**53:
            return series.astype("Int64")
    return series


def as_text(series: pd.Series) -> pd.Series:
    """Return ``series`` as text, None for missing or blank values, whole floats without ``.0``."""
    series = whole_numbers(series)
    if pd.api.types.is_datetime64_any_dtype(series):
        series = series.dt.strftime("%Y-%m-%d")
    text = series.astype(object).where(series.notna(), None)
    text = text.map(lambda value: None if value is None else str(value).strip())
    return text.where(text != "", None)
