"""Read layers into GeoDataFrames, with filters, and export them to files that open cleanly in QGIS
(the writing itself: :mod:`gridmap.io.files`).

Codes are text columns named ``code`` (parents as ``district_code``, ``community_code`` …); geometries
come out in EPSG:4326 unless another CRS is asked for; the attribution of the sources the rows came
from travels with the file (GeoPackage metadata, GeoJSON description, else a sidecar text file).
Cases and their events are layers too (``cases``, ``case_events``: see :mod:`gridmap.io.cases`).
"""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import pandas as pd
from pyproj import CRS
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from gridmap.db.base import STORAGE_SRID
from gridmap.io import cases as case_layers
from gridmap.io.exceptions import ExportFailed
from gridmap.io.files import Exported, check_format, write_frame
from gridmap.territory.service import attributions

LAYER_SQL = {
    "district": "SELECT code, name, name_en, source_code, source, geom FROM district ORDER BY code",
    "street": """SELECT s.code, s.name, s.name_en, d.code AS district_code, s.source_code, s.source, s.geom
                 FROM street s JOIN district d ON d.id = s.district_id ORDER BY s.code""",
    "community": """SELECT c.code, c.name, c.name_en, d.code AS district_code, s.code AS street_code,
                           c.source_code, c.source, c.geom
                    FROM community c JOIN district d ON d.id = c.district_id
                    LEFT JOIN street s ON s.id = c.street_id ORDER BY c.code""",
    "unit_grid": """SELECT g.code, c.code AS community_code, g.area_class,
                           dep.code AS responsible_department_code, g.valid_from, g.valid_to, g.source,
                           ST_Area(g.geom::geography) AS area_m2, g.geom
                    FROM unit_grid g JOIN community c ON c.id = g.community_id
                    LEFT JOIN department dep ON dep.id = g.responsible_department_id
                    WHERE g.valid_to IS NULL ORDER BY g.code""",
    "duty_grid": """SELECT dg.code, dg.name, d.code AS district_code, count(m.unit_grid_code) AS unit_grids,
                           (SELECT string_agg(i.code, ',' ORDER BY i.code) FROM duty_grid_inspector di
                              JOIN inspector i ON i.id = di.inspector_id WHERE di.duty_grid_id = dg.id) AS inspectors,
                           -- cells meet along edges up to float noise: a ~1 cm precision grid merges them
                           ST_Multi(ST_Union(g.geom, 1e-7)) AS geom
                    FROM duty_grid dg LEFT JOIN district d ON d.id = dg.district_id
                    LEFT JOIN duty_grid_member m ON m.duty_grid_id = dg.id
                    LEFT JOIN unit_grid g ON g.code = m.unit_grid_code AND g.valid_to IS NULL
                    GROUP BY dg.id, d.code ORDER BY dg.code""",
    "road": """SELECT r.code, r.name, r.name_en, r.source_class, r.grade_code, rg.name AS grade_name,
                      m.code AS maintenance_department_code, c.code AS cleaning_department_code, r.lanes,
                      ST_Length(r.geom::geography) AS length_m, r.source, r.geom
               FROM road r JOIN road_grade rg ON rg.code = r.grade_code
               LEFT JOIN department m ON m.id = r.maintenance_department_id
               LEFT JOIN department c ON c.id = r.cleaning_department_id ORDER BY r.code""",
    "component": """SELECT p.code, p.class_code, cc.name AS class_name, p.name,
                           cd.code AS competent_department_code, od.code AS owner_department_code,
                           md.code AS maintainer_department_code, p.status, p.survey_date, p.change_date,
                           p.source, p.source_id, p.version, p.geom
                    FROM component p JOIN component_class cc ON cc.code = p.class_code
                    LEFT JOIN department cd ON cd.id = p.competent_department_id
                    LEFT JOIN department od ON od.id = p.owner_department_id
                    LEFT JOIN department md ON md.id = p.maintainer_department_id ORDER BY p.code""",
    "department": """SELECT dep.code, dep.name, dep.name_en, dep.kind, d.code AS district_code,
                            s.code AS street_code, dep.phone, dep.note
                     FROM department dep LEFT JOIN district d ON d.id = dep.district_id
                     LEFT JOIN street s ON s.id = dep.street_id ORDER BY dep.code""",
}
CASE_LAYERS = case_layers.CASE_LAYERS
LAYERS = (*LAYER_SQL, *CASE_LAYERS)
#: how ``district=`` selects rows of each layer (a condition on the layer's output columns)
DISTRICT_FILTER = {
    "district": "layer.code = :district", "street": "layer.district_code = :district",
    "community": "layer.district_code = :district", "duty_grid": "layer.district_code = :district",
    "department": "layer.district_code = :district", "unit_grid": "left(layer.community_code, 6) = :district",
    "component": "left(layer.code, 6) = :district",  # the county code leads the 16-digit ID
    "road": "ST_Intersects(layer.geom, (SELECT geom FROM district WHERE code = :district))",
    "cases": "layer.district = :district", "case_events": "layer.district = :district",
}
#: layers drawn from the whole city's data (generated grids follow villages and roads): every source's credit
CITY_WIDE = {"unit_grid", "duty_grid", *case_layers.CASE_LAYERS}
ALIASES = {"wgs84": 4326, "lonlat": 4326, "cgcs2000": 4490}


def output_crs(crs: str | int | CRS | None) -> CRS:
    """Return the CRS asked for: ``None`` (EPSG:4326), an EPSG number, ``"EPSG:3826"``, ``"cgcs2000"``,
    ``"wgs84"`` or anything :meth:`pyproj.CRS.from_user_input` takes. Raises :class:`ExportFailed`."""
    if crs is None:
        return CRS.from_epsg(STORAGE_SRID)
    if isinstance(crs, CRS):
        return crs
    value = ALIASES.get(str(crs).strip().lower(), crs)
    if str(value).strip().lower() in ("gcj02", "bd09"):
        raise ExportFailed(f"{crs}: GCJ-02 and BD-09 are phone input systems, not output CRSs; use EPSG:4326")
    try:
        return CRS.from_epsg(int(value)) if str(value).strip().isdigit() else CRS.from_user_input(value)
    except Exception:
        raise ExportFailed(f"unknown CRS {crs!r}: use EPSG:nnnn, an EPSG number, wgs84 or cgcs2000") from None


def layer_query(*, session: Session, name: str, where: str | None = None, district: str | None = None,
                bbox=None, bbox_crs=None, columns: str = "layer.*", **case_filters) -> tuple[str, dict]:
    """Return the SQL and parameters selecting layer ``name`` with the filters of :func:`read_layer`."""
    if name not in LAYERS:
        raise ExportFailed(f"unknown layer {name!r}; layers: {', '.join(LAYERS)}")
    conditions, params = [], {}
    if name in LAYER_SQL:
        if case_filters:
            raise ExportFailed(f"{', '.join(f'{k}=' for k in case_filters)} filter cases and case_events only")
        base, order = LAYER_SQL[name], "layer.code"
    else:
        base, order = case_layers.layer_sql(name, with_evidence=case_filters.pop("with_evidence", False))
        conditions, params = case_layers.conditions(session=session, name=name, **case_filters)
    if district is not None:
        params["district"] = district_code(session=session, district=district)
        conditions.append(DISTRICT_FILTER[name])
    if bbox is not None:
        if name == "department":
            raise ExportFailed("departments have no geometry: bbox= does not apply")
        params.update(_bbox(bbox, bbox_crs))
        conditions.append("ST_Intersects(layer.geom, ST_Transform(ST_Segmentize(ST_MakeEnvelope("
                          ":xmin, :ymin, :xmax, :ymax, :bbox_srid), :bbox_step), 4326))")
    if where:
        if ";" in where:
            raise ExportFailed(f"where {where!r}: one condition on the layer's columns, without ';'")
        conditions.append(f"({where})")
    clause = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    return f"SELECT {columns} FROM ({base}) AS layer {clause} ORDER BY {order}", params


def read_layer(*, session: Session, name: str, crs: str | int | None = None, where: str | None = None,
               district: str | None = None, bbox=None, bbox_crs=None, **case_filters
               ) -> gpd.GeoDataFrame | pd.DataFrame:
    """Return layer ``name`` as a GeoDataFrame in ``crs`` (EPSG:4326 by default).

    Parameters
    ----------
    session : Session
    name : str
        One of :data:`LAYERS`: ``district``, ``street``, ``community``, ``unit_grid``, ``duty_grid``,
        ``road``, ``component``, ``department`` (no geometry: a DataFrame), ``cases``, ``case_events``.
    crs : str or int, optional
        Output CRS: ``"EPSG:3826"``, ``3826``, ``"cgcs2000"``, ``"wgs84"`` …
    where : str, optional
        An SQL condition on the layer's output columns, e.g. ``"area_class = 'A'"`` (run with your
        database rights: not for untrusted input).
    district : str, optional
        District code (6 digits) or name; roads are those crossing the district.
    bbox : (xmin, ymin, xmax, ymax), optional
        Rows intersecting the box, given in longitude/latitude unless ``bbox_crs`` says otherwise.
    **case_filters
        For ``cases`` and ``case_events``: ``period``, ``period_field``, ``status``, ``department``,
        ``class_code``, ``source``, ``with_evidence``, ``with_geometry`` (events): see
        :func:`gridmap.io.cases.conditions`.

    Raises
    ------
    ExportFailed
        Unknown layer, CRS, district, filter value, or a ``where`` the database refuses.
    """
    target = output_crs(crs)
    with_geometry = case_filters.pop("with_geometry", name != "case_events")
    sql, params = layer_query(session=session, name=name, where=where, district=district, bbox=bbox,
                              bbox_crs=bbox_crs, **case_filters)
    try:
        with session.begin_nested():  # a refused ``where`` must not spoil the caller's transaction
            frame = pd.read_sql(text(sql), session.connection(), params=params)
    except (DBAPIError, pd.errors.DatabaseError) as error:  # pandas wraps what the database said
        cause = error.__cause__ if isinstance(error.__cause__, DBAPIError) else error
        reason = str(getattr(cause, "orig", cause)).strip().splitlines()[0]
        raise ExportFailed(f"{name}: the database refused the query ({reason}); check where={where!r}") from None
    if name == "department" or not with_geometry:
        frame = frame.drop(columns="geom", errors="ignore")
    else:  # the hex EWKB the driver returns, parsed in one vectorised call (read_postgis parses row by row)
        geometry = gpd.GeoSeries.from_wkb(frame.pop("geom").to_numpy(dtype=object), crs=STORAGE_SRID)
        frame = gpd.GeoDataFrame(frame, geometry=geometry.values).rename_geometry("geom")
    frame = case_layers.typed(session=session, frame=frame, name=name)
    if isinstance(frame, gpd.GeoDataFrame) and not target.equals(frame.crs):
        frame = frame.to_crs(target)
    return frame


def district_code(*, session: Session, district: str) -> str:
    """Return the code of ``district`` given by code, name or English name."""
    value = str(district).strip()
    code = session.execute(text("SELECT code FROM district WHERE code = :v OR name = :v OR lower(name_en) = lower(:v)"),
                           {"v": value}).scalar()
    if code is None:
        known = session.execute(text("SELECT string_agg(code || ' ' || name, ', ' ORDER BY code) FROM district")).scalar()
        raise ExportFailed(f"no district {district!r}; districts: {known}")
    return code


def _bbox(bbox, bbox_crs) -> dict:
    try:
        xmin, ymin, xmax, ymax = (float(v) for v in (bbox.split(",") if isinstance(bbox, str) else bbox))
    except (TypeError, ValueError):
        raise ExportFailed(f"bbox {bbox!r}: expected four numbers xmin, ymin, xmax, ymax") from None
    if not all(map(math.isfinite, (xmin, ymin, xmax, ymax))) or xmin >= xmax or ymin >= ymax:
        raise ExportFailed(f"bbox {bbox!r}: needs xmin < xmax and ymin < ymax")
    srid = output_crs(bbox_crs).to_epsg()
    if srid is None:
        raise ExportFailed(f"bbox_crs {bbox_crs!r}: give the box's CRS as an EPSG code")
    return {"xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax, "bbox_srid": srid,
            "bbox_step": max(xmax - xmin, ymax - ymin) / 32}  # densified: straight in the box's CRS


# -- files -------------------------------------------------------------------------------------------
def export_layer(*, session: Session, name: str, path: Path, crs: str | int | None = None, **filters) -> Exported:
    """Write layer ``name`` (with :func:`read_layer`'s filters) to ``path``; the format comes from the suffix.

    ``cases`` are written with the readable columns of :func:`gridmap.io.cases.read_cases`, and
    ``case_events`` with the case's point as geometry.

    Returns
    -------
    Exported
        Rows written, the files made, the CRS and notes (Shapefile field names, text cut to 254 bytes).
    """
    path = Path(path)
    check_format(path)
    if name == "case_events":
        filters.setdefault("with_geometry", True)  # the case's point: events on the map
    if name == "cases":  # in a file, names people read (class, department, status in Chinese and English)
        frame = case_layers.read_cases(session=session, crs=crs, **filters)
    else:
        frame = read_layer(session=session, name=name, crs=crs, **filters)
    if name in CITY_WIDE:
        credit = " | ".join(attributions(session=session))
    else:
        sources = set(frame["source"].dropna()) if "source" in frame else set()
        credit = " | ".join(attributions(session=session, codes=sources))
    return write_frame(frame, path, layer=name, credit=credit)


def layer_geojson(
    *, session: Session, name: str, bbox: tuple[float, float, float, float] | None = None, limit: int = 5000
) -> str:
    """Return layer ``name`` as a GeoJSON FeatureCollection text (EPSG:4326), optionally within ``bbox``."""
    if name not in LAYER_SQL or name == "department":
        raise ExportFailed(f"unknown map layer {name!r}; layers: {', '.join(k for k in LAYER_SQL if k != 'department')}")
    where = "WHERE layer.geom && ST_MakeEnvelope(:xmin, :ymin, :xmax, :ymax, 4326)" if bbox else ""
    params = dict(zip(("xmin", "ymin", "xmax", "ymax"), bbox)) if bbox else {}
    sql = f"""
        SELECT json_build_object('type', 'FeatureCollection',
                                 'features', coalesce(json_agg(ST_AsGeoJSON(t.*, 'geom', 7)::json), '[]'::json))::text
        FROM (SELECT * FROM ({LAYER_SQL[name]}) AS layer {where} LIMIT :limit) AS t"""
    return session.execute(text(sql), {**params, "limit": limit}).scalar_one()
