"""What a decision is made from: unit grids, roads, components and the reference tables.

The batch path loads whole layers once; the single path loads only what lies near the fix, every
layer and the reference tables' stamp in one round trip (an indexed search per layer, each layer's rows
as one JSON text). Both hand :class:`Layers` (the same columns: DataFrames for the batch, lists for the
few features near one fix) to :mod:`gridmap.routing.decide`, so both reach the same answer by the same
code.

A server holds the whole city in memory instead (:class:`City`, loaded and kept current by
:func:`refresh_city`): a report then reads only the stamp, and its features come from the city's spatial
indexes, as long as the stamp says they are what the database holds in the report's own transaction;
otherwise the report searches the database as above.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import orjson
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.crs import transformer
from gridmap.db.engine import database_key, driver_connection
from gridmap.departments.service import load_rules
from gridmap.routing.policy import MAX_ROAD_TOLERANCE_M, ON_EDGE_M, SNAP_RADIUS_M
from gridmap.routing.spatial import Segments
from gridmap.routing.table import Table

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

# what the reference tables and the layers look like now: the city row, whose reference_version the database
# bumps on every change to the rules, departments and catalogue (migration 0005) and whose layers_version on
# every change to the grids, roads, components and their places (0006): one cheap read instead of reloading them
STAMP_COLUMNS = ("(SELECT metric_srid FROM city)", "(SELECT updated_at FROM city)",
                 "(SELECT reference_version FROM city)", "(SELECT layers_version FROM city)")
STAMP_SQL = "SELECT " + ", ".join(STAMP_COLUMNS)
_CACHE: dict = {}  # database (database_key) → (stamp, Reference)
_CITIES: dict = {}  # database (database_key) → City

# the single path's search around the fix, in the driver's SQL (see driver_connection); each layer as far as
# a decision looks in it (see near_query)
NEAR = "AND {alias}.geom && ST_Expand(ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326), %({alias}_degrees)s)"
_COMPONENTS_NEAR = "AND ((p.class_code = %(cls)s " + NEAR.format(alias="p") + "){picked})"


def _as_json(sql: str) -> str:
    """The rows of ``sql`` as one JSON text (an array of objects; bytea as ``"\\x…"`` hex)."""
    return f"(SELECT coalesce(json_agg(t), '[]')::text FROM ({sql}) t)"


def _near_sql(picked: str) -> str:
    """The single path's one statement: the stamp, then the grids, roads and components near the fix."""
    layers = (GRID_SQL.format(where=NEAR.format(alias="g")), ROAD_SQL.format(where=NEAR.format(alias="r")),
              COMPONENT_SQL.format(where=_COMPONENTS_NEAR.format(picked=picked)))
    return "SELECT " + ", ".join([*STAMP_COLUMNS, *map(_as_json, layers)])


_NEAR_SQL = {False: _near_sql(""), True: _near_sql(" OR p.code = %(picked)s")}  # by whether a component is picked
_STAMP = text(STAMP_SQL)  # made once: building a text() clause costs as much as running it
#: the single path's statement where the city is in memory (see :func:`stamp_query`)
STAMP_QUERY = (STAMP_SQL, {})


#: a layer's columns by name: a DataFrame, or (near one fix, where pandas would cost more than the
#: decision) a dict of lists; the geometries in the metric CRS are in ``geom``
Columns = Mapping[str, Sequence]


@dataclass
class Layers:
    """Candidate features with attributes, their geometries in the metric CRS (``geom``)."""

    grids: Columns
    roads: Columns
    components: Columns
    #: the grids' and the roads' segments, where they come gathered with them (from the city in memory)
    segments: tuple[Segments, Segments] | None = None

    @cached_property
    def tables(self):
        """The layers as :class:`gridmap.routing.table.Table` (grids, roads, components), with the layer-wide
        work they cache (indexes, encoded columns): kept as long as the layers, so that deciding several
        batches on the same layers (the historical import, a chunk at a time) does it once."""
        return Table(self.grids), Table(self.roads), Table(self.components)


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

    @cached_property
    def limits(self) -> dict[tuple[str, str], tuple]:
        """(case type, class) → (limit A, B, C, unit, road-bound): looked up for every decision."""
        columns = ["case_type", "code", "limit_a", "limit_b", "limit_c", "limit_unit", "road_bound"]
        return {(row[0], row[1]): row[2:] for row in self.classes[columns].itertuples(index=False, name=None)}

    @cached_property
    def metric_name(self) -> str:
        return self.metric.to_string()

    @cached_property
    def to_metric(self) -> Transformer:
        """WGS84 → metric CRS (held here: finding it in the transformer cache hashes the CRS, 0.1 ms)."""
        return transformer(4326, self.metric)

    @classmethod
    def current(cls, session: Session, stamp: tuple | None = None) -> Reference:
        """The reference tables, reused while none of them (nor the city's CRS) has changed.

        The stamp (:data:`STAMP_COLUMNS`) is read on every call, inside the caller's transaction, so that a
        rule or class it has just changed (committed or not) is seen at once; it costs a fraction of a
        millisecond. ``stamp`` is that row if the caller has just read it (:func:`layers_found` passes it)."""
        if stamp is None:
            stamp = tuple(session.execute(_STAMP).one())
        database = database_key(session)
        cached = _CACHE.get(database)
        if cached is None or cached[0] != stamp:
            cached = _CACHE[database] = (stamp, cls.load(session, CRS.from_epsg(stamp[0])))
        return cached[1]

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


def _columns(session: Session, sql: str, params: dict) -> dict[str, list]:
    """The query's columns as lists (the geometries as ``wkb``, see :func:`_project`)."""
    result = session.execute(text(sql), params)
    names, rows = list(result.keys()), result.all()
    return dict(zip(names, map(list, zip(*rows)))) if rows else {name: [] for name in names}


def _project(layers: list[dict], to_metric: Transformer) -> list[dict]:
    """Each layer's ``wkb`` read and projected into ``geom`` (an array of geometries), all layers at once:
    near one fix the fixed cost of the calls is most of their cost."""
    wkb = [blob for columns in layers for blob in columns["wkb"]]
    geoms = shapely.from_wkb(np.array(wkb, dtype=object)) if wkb else np.array([], dtype=object)
    geoms = shapely.transform(geoms, lambda xy: np.column_stack(to_metric.transform(xy[:, 0], xy[:, 1])))
    start = 0
    for columns in layers:
        end = start + len(columns.pop("wkb"))
        columns["geom"], start = geoms[start:end], end
    return layers


def load_layers(*, session: Session, metric: CRS, class_codes: list[str] | None = None) -> Layers:
    """Every current unit grid, road and component (of ``class_codes``, if given), for batch work."""
    return Layers(*(pd.DataFrame(columns) for columns in _whole_layers(session, metric, class_codes)))


def _whole_layers(session: Session, metric: CRS, class_codes: list[str] | None = None) -> list[dict]:
    """Every current unit grid, road and component (of ``class_codes``, if given) as columns of lists, the
    geometries projected into ``metric``."""
    where = "AND p.class_code = ANY(CAST(:classes AS text[]))" if class_codes is not None else ""
    return _project([_columns(session, GRID_SQL.format(where=""), {}),
                     _columns(session, ROAD_SQL.format(where=""), {}),
                     _columns(session, COMPONENT_SQL.format(where=where), {"classes": class_codes or []})],
                    transformer(4326, metric))


def layers_near(*, session: Session, lon: float, lat: float, accuracy_m: float | None, class_code: str | None,
                component_id: str | None) -> tuple[Reference, Layers]:
    """The reference tables (:meth:`Reference.current`) and the features near one fix that its decision can
    use, with the picked component: one round trip to the database (:func:`near_query`, :func:`layers_found`)."""
    sql, params = near_query(lon=lon, lat=lat, accuracy_m=accuracy_m, class_code=class_code, component_id=component_id)
    return layers_found(session, driver_connection(session).execute(sql, params).fetchone())


def near_query(*, lon: float, lat: float, accuracy_m: float | None, class_code: str | None,
               component_id: str | None) -> tuple[str, dict]:
    """The statement (driver SQL and parameters) that reads the reference tables' stamp and the features near
    one fix, for :func:`layers_found`; a caller with other statements to run sends them together.

    Each layer is searched as far as the decision looks into it (a bounding box a little larger): the unit
    grids as far as the accuracy circle reaches, the roads as far as the widest road tolerance, the
    components of the class as far as the snap radius or the accuracy. A fix with a good accuracy finds one
    or two grids rather than the ten a fixed 50 m would find: less to send, read and decide."""
    to_degrees = 1.1 / (111_320.0 * max(np.cos(np.radians(lat)), 0.01))  # with 10 % to spare
    params = {"lon": lon, "lat": lat, "cls": class_code or "", "picked": component_id,
              **{f"{alias}_degrees": radius * to_degrees + 1e-6
                 for alias, radius in zip("grp", _search_radii(accuracy_m))}}
    return _NEAR_SQL[component_id is not None], params


def _search_radii(accuracy_m: float | None) -> tuple[float, float, float]:
    """How far (m) a decision looks into the grids, the roads and the components around a fix."""
    accuracy = accuracy_m or 0.0
    return max(accuracy, ON_EDGE_M), MAX_ROAD_TOLERANCE_M, max(accuracy, SNAP_RADIUS_M)


def layers_found(session: Session, row: tuple) -> tuple[Reference, Layers]:
    """The reference tables and the layers near a fix from the row of its :func:`near_query`."""
    stamp, found = tuple(row[:len(STAMP_COLUMNS)]), row[len(STAMP_COLUMNS):]
    ref = Reference.current(session, stamp)
    return ref, Layers(*_project([_from_json(rows, names) for rows, names in zip(found, _NAMES)], ref.to_metric))


def _from_json(rows: str, names: tuple[str, ...]) -> dict[str, list]:
    """A layer's JSON rows (:func:`_as_json`) as columns, the geometries as WKB bytes (GEOS reads bytes several
    times faster than hex)."""
    records = orjson.loads(rows)
    columns = {name: [record[name] for record in records] for name in names}
    columns["wkb"] = [bytes.fromhex(blob[2:]) for blob in columns["wkb"]]  # "\\x0103…"
    return columns


#: the columns of GRID_SQL, ROAD_SQL and COMPONENT_SQL (a layer near a fix may have no rows to name them)
_NAMES = (("code", "duty_grid", "community", "street", "district", "district_id", "street_id", "area_class",
           "grid_department", "wkb"),
          ("code", "name", "grade", "maintenance", "cleaning", "wkb"),
          ("code", "class_code", "version", "name", "maintainer", "owner", "wkb"))


@dataclass(frozen=True)
class City:
    """Every current unit grid, road and component of the city as the single path's columns (lists, metric
    geometries in ``geom``), each layer with its spatial index: what a server decides reports from instead of
    searching the database for each. ``stamp`` (:data:`STAMP_COLUMNS`) is the database's state they were read in."""

    stamp: tuple
    layers: tuple[dict, dict, dict]  # grids, roads, components
    trees: tuple[shapely.STRtree, shapely.STRtree, shapely.STRtree]
    segments: tuple[Segments, Segments]  # of the grids and of the roads, read once

    def near(self, x: float, y: float, accuracy_m: float | None, class_code: str | None) -> Layers:
        """The features near the metric point ``x``/``y`` that the database search (:func:`near_query`) would
        find, or more: each layer as far as its decision looks, with 10 % to spare (the decision itself
        measures); the components of ``class_code`` only."""
        found, segments = [], []
        for n, (columns, tree, radius) in enumerate(zip(self.layers, self.trees, _search_radii(accuracy_m))):
            reach = radius * 1.1 + 0.01
            rows = tree.query(shapely.box(x - reach, y - reach, x + reach, y + reach)).tolist()
            if n == 2:
                kinds = columns["class_code"]
                rows = [row for row in rows if kinds[row] == class_code]
            rows.sort()  # one order for the same features (the decision ranks ties by code, in any order)
            found.append({name: ([values[row] for row in rows] if name != "geom" else values[rows])
                          for name, values in columns.items()})
            if n < 2:
                segments.append(self.segments[n].take(rows))
        return Layers(*found, segments=tuple(segments))


def load_city(session: Session, stamp: tuple | None = None) -> City | None:
    """Every current feature of the city's layers, read into memory with their spatial indexes, for the decisions
    made in this process; None if there is no city yet, or if its layers changed while they were read (read
    them again later). Committed changes only: call it in a transaction of its own. ``stamp``: the stamp if
    the caller has just read it in that transaction."""
    stamp = stamp or tuple(session.execute(_STAMP).one())
    if stamp[0] is None:
        return None
    layers = _whole_layers(session, CRS.from_epsg(stamp[0]))
    if tuple(session.execute(_STAMP).one()) != stamp:  # changed in between: some layers newer than the stamp
        return None
    return City(stamp, tuple(layers), tuple(shapely.STRtree(columns["geom"]) for columns in layers),
                tuple(Segments.of(columns["geom"]) for columns in layers[:2]))


def refresh_city(session: Session) -> bool:
    """Load the city's layers into this process's memory (:func:`load_city`) if they are not there or the
    database has changed them since; return whether they were loaded. A server calls it at start and then
    every few seconds: until it has, reports search the database (:func:`stamp_query`)."""
    database = database_key(session)
    held, stamp = _CITIES.get(database), tuple(session.execute(_STAMP).one())
    if held is not None and stamp == held.stamp:
        return False
    city = load_city(session, stamp)
    if city is not None:
        _CITIES[database] = city
    return city is not None


def forget_city(session: Session) -> None:
    """Drop this process's copy of the database's layers: reports search the database again."""
    _CITIES.pop(database_key(session), None)


def held_stamp(session: Session) -> tuple | None:
    """The stamp of the city's layers this process holds for the session's database (None: it holds none)."""
    city = _CITIES.get(database_key(session))
    return None if city is None else city.stamp


def stamp_query(session: Session) -> tuple[str, dict] | None:
    """The single path's statement where this process holds the city's layers (the stamp alone: the features
    come from memory if it matches, see :func:`layers_in_memory`); None where it does not."""
    return STAMP_QUERY if held_stamp(session) is not None else None


def layers_in_memory(session: Session, row: tuple, *, lon: float, lat: float, accuracy_m: float | None,
                     class_code: str | None) -> tuple[Reference, Layers] | None:
    """The reference tables and the features near a fix from the city in memory, given the stamp's ``row`` read
    in the session's transaction; None if the layers in memory are not what that transaction sees (changed
    since, committed or not, or gone): then the caller searches the database (:func:`near_query`)."""
    city = _CITIES.get(database_key(session))
    if city is None or tuple(row) != city.stamp:
        return None
    ref = Reference.current(session, city.stamp)
    x, y = ref.to_metric.transform(lon, lat)
    return ref, city.near(x, y, accuracy_m, class_code)
