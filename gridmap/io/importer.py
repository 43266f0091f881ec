"""Import a layer from a file or a GeoDataFrame: validate, repair, reproject, then one set-based upsert.

Rows that cannot go in are rejected and listed while the rest goes in; ``strict=True`` turns any
rejection into a failed import. Nothing is committed here: the caller owns the transaction, so a
failed import leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.db.base import STORAGE_SRID
from gridmap.io.exceptions import ImportFailed, ImportRejected
from gridmap.io.layers import LAYERS, LayerSpec
from gridmap.io.report import ImportReport, RowIssue
from gridmap.io.sources import Source, _from_frame, read_source

_GEOMETRY_FAMILY = {"MultiPolygon": "Polygon", "MultiLineString": "LineString", "Point": "Point"}
_DATE = r"\d{4}-\d{2}-\d{2}"
_TRUE, _FALSE = {"true", "t", "yes", "y", "1", "是"}, {"false", "f", "no", "n", "0", "否"}


def import_layer(
    *,
    session: Session,
    layer: str,
    data: Path | str | gpd.GeoDataFrame | pd.DataFrame,
    mapping: Mapping[str, str] | None = None,
    crs: str | None = None,
    source_layer: str | None = None,
    source: str | None = None,
    strict: bool = False,
    x: str = "x",
    y: str = "y",
) -> ImportReport:
    """Import ``data`` into ``layer`` (an upsert by code) and return the report.

    Parameters
    ----------
    session : the transaction to write in; not committed here.
    layer : one of :data:`gridmap.io.layers.LAYERS` (``district``, ``community``, ``road``, ``component`` …).
    data : a file path (GeoJSON, GPKG, SHP, FGB, GeoParquet, CSV) or a (Geo)DataFrame.
    mapping : target field → source column, e.g. ``{"code": "CPTVID", "name": "VNAME"}``.
    crs : the source CRS, overriding what the file declares.
    source : a data-source code recorded on every row (for attribution), unless the file has a ``source`` column.
    strict : reject the whole import if any row is rejected.
    """
    spec = LAYERS.get(layer)
    if spec is None:
        raise ImportFailed(f"unknown layer {layer!r}; importable layers: {', '.join(LAYERS)}")
    src = _load(data, source_layer=source_layer, crs=crs, x=x, y=y)
    report = ImportReport(layer=layer, file=str(src.path), rows_read=len(src.rows), notes=list(src.notes))
    rows = _mapped(spec, src, mapping or {})
    # An update touches only what the file gives: a column it lacks keeps its stored values.
    given = {f.name for f in spec.fields if f.derived or f.fallback or mapping and f.name in mapping
             or f.name in src.rows}
    if source and "source" in rows and rows["source"].isna().all():
        rows["source"] = source
        given.add("source")
    bad: dict[int, RowIssue] = {}

    def reject(index: int, field: str, reason: str, value: str | None = None) -> None:
        bad.setdefault(index, RowIssue(int(index) + 1, field, reason, value))

    for index, field, reason in src.problems:
        reject(index, field, reason)
    keep = np.ones(len(rows), dtype=bool)
    geoms = _geometries(spec, src, report, reject, keep) if spec.geometry else None
    if spec.in_territory and geoms is not None:
        _check_territory(session, geoms, keep, report, reject)
    if spec.derive:
        rows = spec.derive(rows)
    _validate(spec, rows, reject, _known_codes(session, spec))
    # A row skipped for its empty geometry is reported once, as skipped, not also as rejected.
    report.rejected = sorted((i for i in bad.values() if keep[i.row - 1]), key=lambda issue: issue.row)
    rejected_index = [issue.row - 1 for issue in report.rejected]
    keep[rejected_index] = False
    if strict and report.rejected:
        raise ImportRejected(report)
    inserted, updated = _upsert(session, spec, rows[keep], None if geoms is None else geoms[keep], given)
    report.inserted, report.updated = inserted, updated
    report.unchanged = int(keep.sum()) - inserted - updated
    return report


def _load(data, *, source_layer, crs, x, y) -> Source:
    if isinstance(data, pd.DataFrame):
        source = _from_frame(Path("<dataframe>"), data)
        if crs:
            source.crs = CRS.from_user_input(crs)
        return source
    return read_source(Path(data), layer=source_layer, crs=crs, x=x, y=y)


def _mapped(spec: LayerSpec, src: Source, mapping: Mapping[str, str]) -> pd.DataFrame:
    names = {f.name for f in spec.read_fields}
    unknown = set(mapping) - names
    if unknown:
        raise ImportFailed(f"cannot map {sorted(unknown)}: layer {spec.name} has fields {sorted(names)}")
    missing = {target: column for target, column in mapping.items() if column not in src.rows}
    if missing:
        raise ImportFailed(
            f"{src.path}: no column {sorted(missing.values())} (mapped to {sorted(missing)}); "
            f"the file has {list(src.rows.columns)}"
        )
    rows = pd.DataFrame(index=src.rows.index)
    for f in spec.fields:
        column = mapping.get(f.name, f.name)
        rows[f.name] = src.rows[column] if column in src.rows and not f.derived else None
    for f in spec.read_fields:
        if f.required and not f.fallback and mapping.get(f.name, f.name) not in src.rows:
            raise ImportFailed(
                f"{src.path}: no column for required field {f.name!r}; map one with --map {f.name}=COLUMN "
                f"(the file has {list(src.rows.columns)})"
            )
    return rows


def _geometries(spec: LayerSpec, src: Source, report: ImportReport, reject, keep: np.ndarray) -> np.ndarray:
    if src.geometry is None:
        raise ImportFailed(f"{src.path}: layer {spec.name} needs geometries, the file has none "
                           "(a CSV needs x and y columns, or name them with --x/--y)")
    if src.crs is None:
        raise ImportFailed(f"{src.path}: the file declares no CRS; give it with --crs (e.g. --crs EPSG:4490)")
    geoms = np.asarray(src.geometry, dtype=object)
    missing = np.array([g is None for g in geoms], dtype=bool)
    empty = missing | shapely.is_empty(np.where(missing, shapely.Point(), geoms))
    unreadable = np.zeros(len(geoms), dtype=bool)  # coordinates that are there but are not numbers
    unreadable[[index for index, _field, _reason in src.problems]] = True
    empty &= ~unreadable
    for index in np.flatnonzero(empty):
        report.skipped_empty.append(RowIssue(int(index) + 1, "geometry", "empty geometry, row skipped"))
    keep &= ~empty
    geoms = np.where(empty, None, geoms)
    present = ~empty & ~unreadable
    if CRS.from_user_input(src.crs) != CRS.from_epsg(STORAGE_SRID):
        geoms[present] = gpd.GeoSeries(geoms[present], crs=src.crs).to_crs(STORAGE_SRID).values
    family = _GEOMETRY_FAMILY[spec.geometry]
    types = shapely.get_type_id(np.where(present, geoms, shapely.Point()))
    invalid = present & ~shapely.is_valid(np.where(present, geoms, shapely.Point()))
    for index in np.flatnonzero(invalid):
        reason = shapely.is_valid_reason(geoms[index])
        geoms[index] = _extract(shapely.make_valid(geoms[index]), family)
        if geoms[index] is None:
            reject(index, "geometry", f"invalid geometry ({reason}) cannot be repaired into a {family}")
        else:
            report.repaired.append(RowIssue(int(index) + 1, "geometry", f"{reason}; repaired with make_valid"))
    wrong = present & ~invalid & ~np.isin(types, _type_ids(family))
    for index in np.flatnonzero(wrong):
        reject(index, "geometry", f"a {geoms[index].geom_type} where layer {spec.name} needs a {family}")
    return geoms


def _type_ids(family: str) -> list[int]:
    return {"Point": [0], "LineString": [1, 5], "Polygon": [3, 6]}[family]


def _extract(geom, family: str):
    """Keep the parts of a repaired geometry that have the layer's dimension."""
    parts = shapely.get_parts(geom)
    parts = [p for p in parts if p.geom_type.removeprefix("Multi") == family]
    if not parts:
        return None
    return shapely.union_all(parts) if len(parts) > 1 else parts[0]


def _known_codes(session: Session, spec: LayerSpec) -> dict[str, set[str]]:
    tables = {f.ref for f in spec.fields if f.ref}
    return {t: set(session.execute(text(f"SELECT code FROM {t}")).scalars()) for t in tables}


def _validate(spec: LayerSpec, rows: pd.DataFrame, reject, known: dict[str, set[str]]) -> None:
    for f in spec.fields:
        values = rows[f.name]
        present = values.notna()
        if f.required:
            for i in rows.index[~present]:
                reject(i, f.name, "missing (required)")
        if f.pattern:
            wrong = present & ~values.fillna("").str.fullmatch(f.pattern)
            for i in rows.index[wrong]:
                reject(i, f.name, f"must be {f.hint}", values[i])
        if f.choices:
            for i in rows.index[present & ~values.isin(f.choices)]:
                reject(i, f.name, f"must be one of {', '.join(f.choices)}", values[i])
        if f.kind in ("int", "number"):
            parsed = pd.to_numeric(values, errors="coerce")
            wrong = present & (parsed.isna() | ((parsed % 1 != 0) if f.kind == "int" else False))
            for i in rows.index[wrong]:
                reject(i, f.name, f"not {'a whole number' if f.kind == 'int' else 'a number'}", values[i])
        if f.kind == "date":
            wrong = present & ~values.fillna("").str.fullmatch(_DATE)
            wrong |= present & pd.to_datetime(values.where(~wrong), errors="coerce", format="%Y-%m-%d").isna()
            for i in rows.index[wrong]:
                reject(i, f.name, "not a date (YYYY-MM-DD)", values[i])
        if f.kind == "bool":
            lowered = values.fillna("").str.lower()
            for i in rows.index[present & ~lowered.isin(_TRUE | _FALSE)]:
                reject(i, f.name, "not true/false", values[i])
            rows[f.name] = values.where(~present, lowered.isin(_TRUE).map({True: "true", False: "false"}))
        if f.ref:
            for i in rows.index[present & ~values.isin(known[f.ref])]:
                reject(i, f.name, f"unknown {f.ref} code", values[i])
    if "code" in rows:
        duplicated = rows["code"].notna() & rows["code"].duplicated(keep="first")
        first = rows.reset_index().groupby("code")["index"].first()
        for i in rows.index[duplicated]:
            reject(i, "code", f"duplicate code, first used at row {first[rows['code'][i]] + 1}", rows["code"][i])
    if spec.check:
        for i, field, reason in spec.check(rows):
            reject(i, field, reason)


def _check_territory(session: Session, geoms: np.ndarray, keep: np.ndarray, report: ImportReport, reject) -> None:
    districts = shapely.from_wkb(list(session.execute(text("SELECT ST_AsBinary(geom) FROM district")).scalars()))
    if len(districts) == 0:
        raise ImportFailed("the city's territory is empty: import the districts first (gridmap import district …)")
    present = np.flatnonzero(keep & np.array([g is not None for g in geoms]))
    hits = shapely.STRtree(districts).query(geoms[present], predicate="intersects")[0]
    outside = np.setdiff1d(present, present[np.unique(hits)])
    for index in outside:
        issue = RowIssue(int(index) + 1, "geometry", "outside the city's territory")
        report.outside_territory.append(issue)
        reject(index, "geometry", "outside the city's territory")


def _upsert(
    session: Session, spec: LayerSpec, rows: pd.DataFrame, geoms: np.ndarray | None, given: set[str]
) -> tuple[int, int]:
    if rows.empty:
        return 0, 0
    stage = f"gridmap_stage_{spec.table}"
    names = [f.name for f in spec.fields]
    columns = ", ".join(f"{name} text" for name in names) + (", geom geometry" if geoms is not None else "")
    session.execute(text(f"CREATE TEMP TABLE {stage} ({columns})"))
    values = rows[names].astype(object).where(rows[names].notna(), None)
    if geoms is not None:
        multi = spec.geometry.startswith("Multi")
        shaped = [shapely.multipolygons([g]) if multi and g.geom_type == "Polygon" else
                  shapely.multilinestrings([g]) if multi and g.geom_type == "LineString" else g for g in geoms]
        values = values.assign(geom=shapely.to_wkb(shapely.set_srid(np.array(shaped, dtype=object), STORAGE_SRID),
                                                   hex=True, include_srid=True))
    cursor = session.connection().connection.driver_connection.cursor()
    with cursor.copy(f"COPY {stage} FROM STDIN") as copy:
        for record in values.itertuples(index=False, name=None):
            copy.write_row(record)
    targets = [f.column for f in spec.fields] + (["geom"] if geoms is not None else [])
    sources = [f.sql() for f in spec.fields] + (["s.geom"] if geoms is not None else [])
    compared = [f.column for f in spec.fields if f.name in given and f.name != "code"]
    compared += ["geom"] if geoms is not None else []
    on_conflict = (
        "DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in compared) + ", updated_at = now() "
        f"WHERE ({', '.join('t.' + c for c in compared)}) IS DISTINCT FROM "
        f"({', '.join('EXCLUDED.' + c for c in compared)})"
    ) if compared else "DO NOTHING"
    result = session.execute(text(
        f"INSERT INTO {spec.table} AS t ({', '.join(targets)}) SELECT {', '.join(sources)} FROM {stage} s "
        f"ON CONFLICT {spec.conflict} {on_conflict} RETURNING (xmax = 0) AS inserted"
    )).scalars().all()
    session.execute(text(f"DROP TABLE {stage}"))
    inserted = sum(result)
    return inserted, len(result) - inserted

