"""Assign reports to grid, road, component and department: one at a time against PostGIS, or in bulk.

Both paths normalise the coordinates, gather candidates (the single path with one statement searching
each layer around the fix, the batch path from whole layers loaded once) and call the same
:func:`gridmap.routing.decide.decide`, so they give the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import shapely
from sqlalchemy.orm import Session

from gridmap.crs import PHONE_SYSTEMS, to_wgs84
from gridmap.db.engine import driver_connection
from gridmap.routing.decide import decide, decide_columns
from gridmap.routing.exceptions import BadReport, OutsideServiceArea, UnknownClass
from gridmap.routing.layers import (
    STAMP_COLUMNS,
    Layers,
    Reference,
    layers_found,
    layers_in_memory,
    load_layers,
    near_query,
    stamp_query,
)
from gridmap.routing.single import decide_one
from gridmap.routing.table import distinct_rows

CASE_PREFIX = {"1": "component", "2": "event"}  # 5-digit class codes carry the case type first
ACCURACY_ERROR = "accuracy must be a number of metres, 0 or more"


def _prefixed(code: str) -> bool:
    return len(code) == 5 and code[0] in CASE_PREFIX and code.isdigit()


def _text(raw) -> str:
    """A class code as given (None or NaN: empty), without surrounding blanks."""
    return "" if raw is None or (isinstance(raw, float) and np.isnan(raw)) else str(raw).strip()


def minor_class(raw) -> str:
    """The 4-digit class of a class code (``20102`` → ``0102``), as :func:`case_type_of` reads it."""
    code = _text(raw)
    return code[1:] if _prefixed(code) else code


def case_type_of(raw, given, has_pick: bool, known: dict[str, set[str]]) -> tuple[str | None, str, str | None]:
    """(case type, 4-digit class, error) of one report; the type is inferred when not given.

    ``10118`` / ``20102`` carry the type as a prefix (1 component, 2 event); a picked component makes a
    component case; otherwise a class code found in one catalogue only decides.
    """
    code = _text(raw)
    case_type = None if given is None or (isinstance(given, float) and np.isnan(given)) else given
    if _prefixed(code):
        case_type, code = case_type or CASE_PREFIX[code[0]], code[1:]
    in_component, in_event = code in known["component"], code in known["event"]
    if case_type is None:
        case_type = "component" if has_pick else ("event" if in_event and not in_component else
                                                  "component" if in_component and not in_event else None)
    if case_type is None:
        if in_component:
            return None, code, (f"class {code} is both a component and an event class: give case_type, "
                                f"or write it 1{code} / 2{code}")
        return None, code, f"unknown class {code}"
    if case_type not in ("component", "event"):
        return case_type, code, "case_type must be 'component' or 'event'"
    if code not in known[case_type]:
        return case_type, code, f"unknown {case_type} class {code}"
    return case_type, code, None


def case_types(class_codes: np.ndarray, given: np.ndarray, has_pick: np.ndarray, known: dict[str, set[str]]):
    """Per row (case type, 4-digit class, error) as object arrays, worked out once per distinct input."""
    first, inverse = distinct_rows(class_codes, given, has_pick)
    answers = [case_type_of(class_codes[p], given[p], bool(has_pick[p]), known) for p in first]
    return tuple(np.array([a[k] for a in answers] + [None], dtype=object)[:-1][inverse] for k in range(3))


def prepare(frame, ref: Reference) -> dict[str, np.ndarray]:
    """Normalised inputs (``x``/``y`` in the metric CRS, case type, class, accuracy) and input errors, as
    arrays: ``frame`` is a DataFrame or (one report) a dict of lists, with ``lon``/``lat``, ``class`` and
    optional ``accuracy``, ``case_type``, ``component_id``."""
    n = len(frame["lon"])
    case_type, code, error, picked = classify(frame, ref, n)
    accuracy = pd.to_numeric(frame["accuracy"], errors="coerce") if "accuracy" in frame else np.full(n, np.nan)
    accuracy = np.asarray(accuracy, dtype=float)
    error[pd.isna(error) & ((accuracy < 0) | np.isinf(accuracy))] = ACCURACY_ERROR
    x, y = ref.to_metric.transform(np.asarray(frame["lon"], dtype=float), np.asarray(frame["lat"], dtype=float))
    return {"x": np.asarray(x, dtype=float), "y": np.asarray(y, dtype=float), "accuracy": accuracy,
            "case_type": case_type, "class_code": code, "component_id": picked, "input_error": error}


def prepare_one(lon: float, lat: float, accuracy: float | None, class_code, case_type, component_id,
                ref: Reference) -> dict[str, np.ndarray]:
    """:func:`prepare` for one report (a valid accuracy), the same arrays without pandas: for one row its fixed
    cost would be most of the work."""
    kind, code, error = case_type_of(class_code, case_type, component_id is not None, ref.known)
    x, y = ref.to_metric.transform(np.array([lon], dtype=float), np.array([lat], dtype=float))

    def one(value) -> np.ndarray:
        column = np.empty(1, dtype=object)
        column[0] = value
        return column
    return {"x": np.asarray(x, dtype=float), "y": np.asarray(y, dtype=float),
            "accuracy": np.array([np.nan if accuracy is None else accuracy], dtype=float), "case_type": one(kind),
            "class_code": one(code), "component_id": one(component_id), "input_error": one(error)}


def classify(frame, ref: Reference, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row of ``frame`` (``n`` rows; columns as in :func:`prepare`) the case type, 4-digit class, input
    error and picked component (None where none), as object arrays."""
    def column(name: str) -> np.ndarray:
        return np.asarray(frame[name], dtype=object) if name in frame else np.full(n, None, dtype=object)

    picked = column("component_id")
    picked = np.where(pd.isna(picked), None, picked)
    case_type, code, error = case_types(column("class"), column("case_type"), picked != None, ref.known)  # noqa: E711
    return case_type, code, error, picked


def component_classes(case_type: np.ndarray, class_code: np.ndarray) -> list[str]:
    """The classes of the component cases among the rows: whose components a batch is decided against."""
    return sorted({code for code, kind in zip(class_code, case_type) if kind == "component" and pd.notna(code)})


def _finish(prepared: dict[str, np.ndarray], decided: pd.DataFrame) -> pd.DataFrame:
    """The decision with the input errors (rows :func:`decide` left undecided) in ``error``."""
    error = np.where(pd.isna(prepared["input_error"]), decided["error"].to_numpy(dtype=object), prepared["input_error"])
    return decided.assign(case_type=pd.Series(prepared["case_type"], dtype=object),
                          error=pd.Series(error, dtype=object))


@dataclass(frozen=True)
class Fix:
    """A report's fix made ready for its decision: in WGS84, with the statement that reads what is near it
    (:func:`fix_of`; decided by :func:`decide_fix` from the row of that statement or of :func:`fix_query`)."""

    lon: float
    lat: float
    accuracy: float | None
    class_code: str
    case_type: str | None
    component_id: str | None
    query: tuple[str, dict]


def fix_of(*, x: float, y: float, crs: str = "wgs84", accuracy: float | None = None, class_code: str,
           case_type: str | None = None, component_id: str | None = None) -> Fix:
    """The fix in WGS84 and the query of what is near it; raises :class:`BadReport` for a bad CRS, coordinates
    or accuracy (the class is checked against the catalogue the query reads)."""
    try:
        lon, lat = (float(np.ravel(v)[0]) for v in to_wgs84([x], [y], crs))
    except ValueError as error:
        raise BadReport(str(error)) from None
    if accuracy is not None and not 0 <= accuracy < np.inf:
        raise BadReport(ACCURACY_ERROR)
    query = near_query(lon=lon, lat=lat, accuracy_m=accuracy, class_code=minor_class(class_code),
                       component_id=component_id)
    return Fix(lon, lat, accuracy, class_code, case_type, component_id, query)


def fix_query(session: Session, fix: Fix) -> tuple[str, dict]:
    """The statement to send for ``fix``: the stamp alone where this process holds the city's layers in memory
    (the usual report in a server), else the search of the database around it."""
    return (fix.component_id is None and stamp_query(session)) or fix.query


def assign_one(*, session: Session, x: float, y: float, crs: str = "wgs84", accuracy: float | None = None,
               class_code: str, case_type: str | None = None, component_id: str | None = None) -> dict:
    """Decide one report against the database and return the decision (a dict of :data:`OUTPUT` fields,
    ``case_type``, ``lon``/``lat`` in WGS84 and ``evidence`` as a dict).

    Raises :class:`BadReport` (bad class, CRS, coordinates, component) or :class:`OutsideServiceArea`.
    """
    fix = fix_of(x=x, y=y, crs=crs, accuracy=accuracy, class_code=class_code, case_type=case_type,
                 component_id=component_id)
    # the reference tables' stamp comes with the layers (one round trip); the class is checked against them after
    return decide_fix(session, fix, driver_connection(session).execute(*fix_query(session, fix)).fetchone())


def decide_fix(session: Session, fix: Fix, row: tuple) -> dict:
    """:func:`assign_one`'s decision from the row of the fix's :func:`fix_query` (which a caller may have run
    together with other statements)."""
    found = None
    if len(row) == len(STAMP_COLUMNS):  # the stamp alone: the features from memory, if they are current
        found = layers_in_memory(session, row, lon=fix.lon, lat=fix.lat, accuracy_m=fix.accuracy,
                                 class_code=minor_class(fix.class_code))
        if found is None:  # changed since they were loaded (maybe in this very transaction): search
            row = driver_connection(session).execute(*fix.query).fetchone()
    ref, layers = found or layers_found(session, row)
    prepared = prepare_one(fix.lon, fix.lat, fix.accuracy, fix.class_code, fix.case_type, fix.component_id, ref)
    if prepared["input_error"][0]:
        raise UnknownClass(prepared["input_error"][0])
    # the usual report is decided step by step; a picked component or a fix on a shared edge column-wise
    result = None if fix.component_id is not None else decide_one(
        *(float(prepared[name][0]) for name in ("x", "y", "accuracy")), prepared["case_type"][0],
        prepared["class_code"][0], layers, ref)
    if result is None:
        decided = decide_columns(prepared, layers, ref)
        result = {name: plain(values[0].as_py() if isinstance(values, pa.Array) else values[0])
                  for name, values in decided.items()}
        result["evidence"] = None if result["error"] else orjson.loads(result["evidence"])
    if result["error"]:
        raise (OutsideServiceArea if "territory" in result["error"] else BadReport)(result["error"])
    result.update(case_type=prepared["case_type"][0], lon=fix.lon, lat=fix.lat)
    return result


def plain(value):
    """A JSON-ready Python value: None for NaN, int/float for numpy numbers."""
    if isinstance(value, (float, np.floating)) and np.isnan(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def assign(frame: gpd.GeoDataFrame | pd.DataFrame, *, session: Session | None = None, crs: str | None = None,
           reference: Reference | None = None, layers: Layers | None = None) -> gpd.GeoDataFrame:
    """Assign every row of ``frame`` in one vectorised pass; return it with the decision columns added.

    ``frame`` has point geometries (a GeoDataFrame) or ``x``/``y`` columns, and ``class`` (catalogue code),
    optional ``case_type``, ``accuracy`` (m) and ``component_id``. ``crs`` names the coordinates' system when
    it is not the frame's own: ``gcj02``, ``bd09``, ``wgs84``, ``cgcs2000`` or ``EPSG:nnnn``. Rows that cannot
    be decided keep their place, with the reason in ``error``.

    ``reference`` and ``layers`` (both, then ``session`` is not used) decide against tables loaded once
    beforehand (:meth:`Reference.current`, :func:`load_layers` with the :func:`component_classes` of the
    whole batch) instead of reading them from the database: for workers deciding a big batch in pieces.
    """
    if (reference is None) != (layers is None) or (reference is None and session is None):
        raise TypeError("assign needs session=, or both reference= and layers=")
    if isinstance(frame, gpd.GeoDataFrame) and frame.geometry.name in frame:
        x, y = shapely.get_x(frame.geometry.values), shapely.get_y(frame.geometry.values)
        system = crs or (frame.crs.to_string() if frame.crs else None)
    else:
        x, y = pd.to_numeric(frame["x"], errors="coerce").to_numpy(), pd.to_numeric(frame["y"], errors="coerce").to_numpy()
        system = crs
    if system is None:
        raise BadReport("the coordinates' system is unknown: give crs= (wgs84, gcj02, bd09, cgcs2000 or EPSG:nnnn)")
    lon, lat = normalise(x, y, system)
    ref = reference if reference is not None else Reference.current(session)
    rows = pd.DataFrame(frame.drop(columns=[frame.geometry.name]) if isinstance(frame, gpd.GeoDataFrame) else frame)
    rows = rows.reset_index(drop=True).assign(lon=lon, lat=lat)
    decided = decide_rows(rows, session=session, ref=ref, layers=layers)
    # the decision's case_type / component_id replace the input's (inferred, or the component picked and checked)
    result = pd.concat([rows.drop(columns=["lon", "lat", *rows.columns.intersection(decided.columns)]), decided],
                       axis=1)
    return gpd.GeoDataFrame(result, geometry=gpd.points_from_xy(lon, lat), crs=4326)


def decide_rows(rows: pd.DataFrame, *, session: Session | None, ref: Reference,
                layers: Layers | None = None) -> pd.DataFrame:
    """The decisions for ``rows`` (WGS84 ``lon``/``lat``, ``class``, optional ``accuracy``, ``case_type``,
    ``component_id``) in one vectorised pass, input errors in ``error``: :func:`assign` without the
    GeoDataFrame around it. ``layers`` loaded beforehand, else read for the batch's component classes."""
    prepared = prepare(rows, ref)
    error = prepared["input_error"]
    lon, lat = np.asarray(rows["lon"], dtype=float), np.asarray(rows["lat"], dtype=float)
    error[pd.isna(error) & (np.isnan(lon) | np.isnan(lat))] = "impossible or missing coordinates"
    if layers is None:
        classes = component_classes(prepared["case_type"], prepared["class_code"])
        layers = load_layers(session=session, metric=ref.metric, class_codes=classes)
    return _finish(prepared, decide(prepared, layers, ref))


def normalise(x: np.ndarray, y: np.ndarray, system: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-row normalisation to WGS84; rows that are not possible coordinates become NaN."""
    lon, lat = np.full(len(x), np.nan), np.full(len(x), np.nan)
    ok = np.isfinite(x) & np.isfinite(y)
    if system.strip().lower() in PHONE_SYSTEMS:
        ok &= (np.abs(x) <= 180) & (np.abs(y) <= 90)
    if ok.any():
        try:
            lon[ok], lat[ok] = to_wgs84(x[ok], y[ok], system)
        except ValueError as error:
            raise BadReport(str(error)) from None
    return lon, lat


def assign_file(*, session: Session, source: Path, target: Path, crs: str | None = None) -> gpd.GeoDataFrame:
    """Assign the reports in ``source`` (CSV with x/y, GeoJSON, GPKG, GeoParquet) and write ``target``."""
    source, target = Path(source), Path(target)
    suffix = source.suffix.lower()
    if suffix == ".csv":
        frame = pd.read_csv(source, dtype={"class": str, "case_type": str, "component_id": str})
        if "x" not in frame or "y" not in frame:
            raise BadReport(f"{source}: a CSV needs x and y columns (it has {list(frame.columns)})")
        crs = crs or "wgs84"
    elif suffix in (".parquet", ".geoparquet"):
        frame = gpd.read_parquet(source)
    else:
        frame = gpd.read_file(source)
    if "class" not in frame:
        raise BadReport(f"{source}: no 'class' column (catalogue code of each report)")
    frame["class"] = frame["class"].astype(str)
    result = assign(frame, session=session, crs=crs)
    write(result, target)
    return result


def write(frame: gpd.GeoDataFrame, target: Path) -> None:
    suffix = target.suffix.lower()
    if suffix == ".csv":
        out = pd.DataFrame(frame.drop(columns=frame.geometry.name))
        out.assign(lon=frame.geometry.x, lat=frame.geometry.y).to_csv(target, index=False)
    elif suffix in (".parquet", ".geoparquet"):
        frame.to_parquet(target)
    else:
        frame.to_file(target)
