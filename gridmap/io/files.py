"""Write frames to files that open cleanly in QGIS: GeoPackage, GeoJSON, Shapefile, FlatGeobuf, CSV and
GeoParquet, each with what the format can hold.

JSON goes in as text; datetimes stay datetimes where the format has them (GeoPackage in UTC, as its
standard says) and are ISO 8601 text where it has not (Shapefile) or where GDAL would write its own
form (CSV); dates stay dates; text is UTF-8 (a ``.cpg`` beside a Shapefile); Shapefile field names come
from a documented table of short names, never cut silently; a CSV of points gets ``x``/``y`` beside
the WKT and a ``.prj`` GDAL reads; the attribution goes into the GeoPackage's metadata, the GeoJSON's
description, or a ``FILE.attribution.txt`` beside other formats.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyarrow as pa
import pyogrio

from gridmap.io import cases as case_layers
from gridmap.io.exceptions import ExportFailed

#: Shapefile field names are at most 10 characters: these are written instead (never silently cut)
SHAPEFILE_NAMES = {
    "source_code": "src_code", "district_code": "dist_code", "street_code": "strt_code",
    "community_code": "comm_code", "responsible_department_code": "resp_dept", "source_class": "src_class",
    "maintenance_department_code": "maint_dept", "cleaning_department_code": "clean_dept",
    "competent_department_code": "comp_dept", "owner_department_code": "owner_dept",
    "maintainer_department_code": "mntnr_dept", "survey_date": "survey_dt", "change_date": "change_dt",
    "density_km2": "density", "active_periods": "active",  # hot spots
    **case_layers.SHAPEFILE_NAMES,
}
DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON", ".shp": "ESRI Shapefile",
           ".fgb": "FlatGeobuf", ".csv": "CSV"}
PARQUET = {".parquet", ".geoparquet"}
SHAPEFILE_TEXT_BYTES = 254


@dataclass
class Exported:
    """What a write made: rows, the files, the CRS, and notes for the user (renamed fields, cut text)."""

    rows: int
    files: list[Path]
    crs: str | None
    notes: list[str] = field(default_factory=list)


def check_format(path: Path) -> None:
    """Refuse a file suffix no writer knows, before any work is done."""
    suffix = Path(path).suffix.lower()
    if suffix not in DRIVERS and suffix not in PARQUET:
        raise ExportFailed(f"{path}: unsupported format {suffix!r}; use {', '.join([*DRIVERS, *PARQUET])}")


def write_frame(frame: pd.DataFrame, path: Path, *, layer: str, credit: str = "") -> Exported:
    """Write ``frame`` to ``path`` as layer ``layer``, QGIS-clean: JSON as text, datetimes each format
    keeps (ISO 8601 text in CSV and Shapefile), UTF-8 (a ``.cpg`` beside a Shapefile), short field names
    from :data:`SHAPEFILE_NAMES`, x/y beside WKT in CSV for points, the attribution kept."""
    path = Path(path)
    check_format(path)
    suffix = path.suffix.lower()
    driver = "Parquet" if suffix in PARQUET else DRIVERS[suffix]
    spatial = isinstance(frame, gpd.GeoDataFrame)
    if not spatial and driver in ("ESRI Shapefile", "FlatGeobuf"):
        raise ExportFailed(f"{path}: {layer} has no geometry and {driver} needs one; write .gpkg, .csv or .parquet")
    frame, notes = _prepare(frame, driver)
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in _companions(path):
        old.unlink(missing_ok=True)
    crs = frame.crs.to_string() if spatial and frame.crs else None
    if driver == "Parquet":
        frame.to_parquet(path)
    else:
        _write_ogr(frame, path, driver=driver, layer=layer, credit=credit)
    files = [p for p in _companions(path) if p.exists() and not p.name.endswith(".attribution.txt")]
    if driver not in ("GPKG", "GeoJSON") and credit:
        sidecar = path.with_name(path.name + ".attribution.txt")
        sidecar.write_text(credit + "\n", encoding="utf-8")
        files.append(sidecar)
    return Exported(rows=len(frame), files=files, crs=crs, notes=notes)


def _write_ogr(frame: pd.DataFrame, path: Path, *, driver: str, layer: str, credit: str) -> None:
    """Write through GDAL (Arrow columns: dates stay dates, nullable integers and flags keep their type)."""
    spatial = isinstance(frame, gpd.GeoDataFrame)
    options: dict = {}
    if driver == "GPKG" and credit:
        options["metadata"] = {"attribution": credit}
    if driver == "GeoJSON" and credit:
        options["layer_options"] = {"DESCRIPTION": credit}
    if driver == "CSV" and spatial:
        options["layer_options"] = {"GEOMETRY": "AS_WKT"}
    if driver == "ESRI Shapefile":
        options["encoding"] = "UTF-8"  # GDAL writes the .cpg that tells QGIS so
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # text cut in Shapefiles is reported in the notes
        pyogrio.write_dataframe(frame, path, driver=driver, layer=layer, use_arrow=True, **options)
    if driver == "CSV" and spatial and frame.crs:  # GDAL (and QGIS through it) reads a .prj beside a CSV
        path.with_suffix(".prj").write_text(frame.crs.to_wkt("WKT1_ESRI"), encoding="utf-8")


def _companions(path: Path) -> list[Path]:
    extra = {".shp": (".shx", ".dbf", ".prj", ".cpg"), ".csv": (".prj",)}.get(path.suffix.lower(), ())
    return [path, *(path.with_suffix(s) for s in extra), path.with_name(path.name + ".attribution.txt")]


def _prepare(frame: pd.DataFrame, driver: str) -> tuple[pd.DataFrame, list[str]]:
    """Make columns each format can hold; return the frame and notes for the user."""
    frame = frame.copy()
    geometry = frame.geometry.name if isinstance(frame, gpd.GeoDataFrame) else None
    stamps = [c for c in frame.columns if c != geometry and pd.api.types.is_datetime64_any_dtype(frame[c])]
    for column in [c for c in frame.columns if c != geometry]:
        frame[column] = _writable(frame[column], column, driver)
    if driver == "CSV" and geometry is not None and len(frame) and frame.geom_type.eq("Point").all():
        frame.insert(0, "x", frame.geometry.x)
        frame.insert(1, "y", frame.geometry.y)
    if driver != "ESRI Shapefile":
        return frame, []
    frame, notes = _shapefile_fields(frame, geometry)
    if stamps:
        notes.insert(0, f"Shapefile has no datetime type: {', '.join(stamps)} written as ISO 8601 text")
    return frame, notes


#: columns holding dates (kept as dates even when every value is empty)
DATE_COLUMNS = {"valid_from", "valid_to", "survey_date", "change_date"}


def _writable(values: pd.Series, column: str, driver: str) -> pd.Series:
    """One column in a type ``driver`` keeps: JSON as text, dates as dates, ISO 8601 text where the
    format has no datetime (Shapefile) or GDAL would write its own form (CSV)."""
    iso = driver in ("CSV", "ESRI Shapefile")
    if pd.api.types.is_datetime64_any_dtype(values):
        if iso:
            return values.map(lambda v: v.isoformat() if pd.notna(v) else None).astype(object)
        if driver == "GPKG" and isinstance(values.dtype, pd.DatetimeTZDtype):
            return values.dt.tz_convert("UTC")  # the GeoPackage standard: UTC, written with a Z
        return values
    if values.dtype != object:
        return values
    sample = values.dropna()
    if not len(sample):  # typed by what the column is, not by its (absent) values
        return values.astype(pd.ArrowDtype(pa.date32())) if column in DATE_COLUMNS and driver != "CSV" \
            else values.astype("string")
    if sample.map(lambda v: isinstance(v, (dict, list, tuple))).any():
        return values.map(lambda v: json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list, tuple)) else v)
    if sample.map(lambda v: hasattr(v, "isoformat")).all():  # dates
        return values.map(lambda v: v.isoformat() if pd.notna(v) else None) if driver == "CSV" \
            else values.astype(pd.ArrowDtype(pa.date32()))
    return values


def _shapefile_fields(frame: pd.DataFrame, geometry: str | None) -> tuple[pd.DataFrame, list[str]]:
    """Shapefile: names from :data:`SHAPEFILE_NAMES` (refused if still too long or colliding), and a note on
    text longer than the format's 254 bytes."""
    names = {c: SHAPEFILE_NAMES.get(c, c) for c in frame.columns if c != geometry}
    too_long = [c for c, short in names.items() if len(short) > 10]
    if too_long:
        raise ExportFailed(f"Shapefile field names are at most 10 characters and {', '.join(too_long)} "
                           "have no short name: write .gpkg instead")
    if len(set(names.values())) != len(names):
        raise ExportFailed(f"Shapefile short names collide: {sorted(names.values())}; write .gpkg instead")
    renamed = {c: s for c, s in names.items() if c != s}
    notes = ["Shapefile field names shortened: " + ", ".join(f"{c} → {s}" for c, s in renamed.items())] \
        if renamed else []
    for column in names:
        if pd.api.types.is_string_dtype(frame[column]) or frame[column].dtype == object:
            lengths = frame[column].dropna().astype(str).str.encode("utf-8").str.len()
            if (cut := int((lengths > SHAPEFILE_TEXT_BYTES).sum())):
                notes.append(f"Shapefile: {cut} value(s) of {column} are longer than {SHAPEFILE_TEXT_BYTES} "
                             "bytes and were cut (write .gpkg to keep them whole)")
    return frame.rename(columns=renamed), notes
