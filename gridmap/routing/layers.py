"""What a decision is made from: unit grids, roads, components and the reference tables.

The batch path loads whole layers once; the single path loads only what lies near the fix, with one
indexed query per layer. Both hand the same kind of :class:`Layers` to :mod:`gridmap.routing.decide`,
so both reach the same answer by the same code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.crs import transformer
from gridmap.departments.service import load_rules

GRID_SQL = """
SELECT g.code, dg.code AS duty_grid, c.code AS community, s.code AS street, d.code AS district,
       c.district_id, c.street_id, g.area_class, dep.code AS grid_department, ST_AsBinary(g.geom) AS wkb
FROM unit_grid g JOIN community c ON c.id = g.community_id JOIN district d ON d.id = c.district_id
LEFT JOIN street s ON s.id = c.street_id
LEFT JOIN department dep ON dep.id = g.responsible_department_id
LEFT JOIN duty_grid_member m ON m.unit_grid_code = g.code LEFT JOIN duty_grid dg ON dg.id = m.duty_grid_id
WHERE g.valid_to IS NULL {where}"""

ROAD_SQL = """
SELECT r.code, r.name, r.grade_code AS grade, mt.code AS maintenance, cl.code AS cleaning, ST_AsBinary(r.geom) AS wkb
FROM road r LEFT JOIN department mt ON mt.id = r.maintenance_department_id
LEFT JOIN department cl ON cl.id = r.cleaning_department_id WHERE true {where}"""

COMPONENT_SQL = """
SELECT p.code, p.class_code, p.version, p.name, mt.code AS maintainer, ow.code AS owner, ST_AsBinary(p.geom) AS wkb
FROM component p LEFT JOIN department mt ON mt.id = p.maintainer_department_id
LEFT JOIN department ow ON ow.id = p.owner_department_id WHERE p.status <> '移除' {where}"""

# what the reference tables look like now: one cheap query instead of reloading them for every decision
STAMP_SQL = """
SELECT (SELECT metric_srid FROM city), (SELECT max(updated_at) FROM city),
       (SELECT (max(updated_at), count(*))::text FROM responsibility_rule),
       (SELECT (max(updated_at), count(*))::text FROM department),
       (SELECT (max(updated_at), count(*))::text FROM component_class),
       (SELECT (max(updated_at), count(*))::text FROM event_class)"""
_CACHE: dict[tuple, Reference] = {}

NEAR = "AND {alias}.geom && ST_Expand(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :degrees)"


@dataclass
class Layers:
    """Candidate features with attributes, their geometries in the metric CRS (``geom``)."""

    grids: pd.DataFrame
    roads: pd.DataFrame
    components: pd.DataFrame


@dataclass
class Reference:
    """The small tables every decision consults."""

    rules: pd.DataFrame
    street_offices: dict[int, str]  # district id → its street office's code
    classes: pd.DataFrame  # case_type, code, name, road_bound, limit_a/b/c, limit_unit
    metric: CRS
    chains: dict = field(default_factory=dict)  # applicable rules per place, filled as decisions need them

    @cached_property
    def known(self) -> dict[str, set[str]]:
        """The minor classes of each case type."""
        return {t: set(self.classes.loc[self.classes["case_type"] == t, "code"]) for t in ("component", "event")}

    @cached_property
    def rule_records(self) -> list[dict]:
        return self.rules.to_dict("records")

    @classmethod
    def current(cls, session: Session) -> Reference:
        """The reference tables, reused while none of them (nor the city's CRS) has changed."""
        stamp = tuple(session.execute(text(STAMP_SQL)).one())
        key = (str(session.get_bind().engine.url), stamp)
        if key not in _CACHE:
            _CACHE.clear()
            _CACHE[key] = cls.load(session, CRS.from_epsg(stamp[0]))
        return _CACHE[key]

    @classmethod
    def load(cls, session: Session, metric: CRS) -> Reference:
        connection = session.connection()
        rules = load_rules(session=session)
        offices = dict(session.execute(text("""
            SELECT DISTINCT ON (district_id) district_id, code FROM department
            WHERE kind = 'street_office' AND street_id IS NULL ORDER BY district_id, code""")).all())
        classes = pd.read_sql(text("""
            SELECT 'component' AS case_type, code, name, false AS road_bound, limit_a, limit_b, limit_c, limit_unit
            FROM component_class WHERE length(code) = 4
            UNION ALL
            SELECT 'event', code, name, road_bound, limit_a, limit_b, limit_c, limit_unit
            FROM event_class WHERE length(code) = 4"""), connection)
        return cls(rules=rules, street_offices=offices, classes=classes, metric=metric)


def _frame(session: Session, sql: str, params: dict, to_metric: Transformer) -> pd.DataFrame:
    frame = pd.read_sql(text(sql), session.connection(), params=params)
    geoms = shapely.from_wkb(frame.pop("wkb").to_numpy()) if len(frame) else np.array([], dtype=object)
    frame["geom"] = shapely.transform(geoms, lambda xy: np.column_stack(to_metric.transform(xy[:, 0], xy[:, 1])))
    return frame


def load_layers(*, session: Session, metric: CRS, class_codes: list[str] | None = None) -> Layers:
    """Every current unit grid, road and component (of ``class_codes``, if given), for batch work."""
    to_metric = transformer(4326, metric)
    where = "AND p.class_code = ANY(CAST(:classes AS text[]))" if class_codes is not None else ""
    return Layers(
        grids=_frame(session, GRID_SQL.format(where=""), {}, to_metric),
        roads=_frame(session, ROAD_SQL.format(where=""), {}, to_metric),
        components=_frame(session, COMPONENT_SQL.format(where=where), {"classes": class_codes or []}, to_metric),
    )


def layers_near(*, session: Session, metric: CRS, lon: float, lat: float, radius_m: float,
                class_code: str | None, component_id: str | None) -> Layers:
    """The features within ``radius_m`` of one fix (a bounding box a little larger), and the picked component."""
    to_metric = transformer(4326, metric)
    degrees = radius_m / (111_320.0 * max(np.cos(np.radians(lat)), 0.01)) * 1.1 + 1e-6
    params = {"lon": lon, "lat": lat, "degrees": degrees}
    picked = " OR p.code = :picked" if component_id else ""
    component_where = f"AND ((p.class_code = :cls {NEAR.format(alias='p')}){picked})"
    return Layers(
        grids=_frame(session, GRID_SQL.format(where=NEAR.format(alias="g")), params, to_metric),
        roads=_frame(session, ROAD_SQL.format(where=NEAR.format(alias="r")), params, to_metric),
        components=_frame(session, COMPONENT_SQL.format(where=component_where),
                          {**params, "cls": class_code or "", "picked": component_id}, to_metric),
    )
