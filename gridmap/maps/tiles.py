"""Mapbox vector tiles (MVT) of the heavy layers, one SQL statement per layer, straight from PostGIS.

Tiles follow the XYZ scheme in Web Mercator (EPSG:3857); geometries are stored in EPSG:4326, so each
statement selects rows with ``geom && ST_Transform(ST_TileEnvelope(z, x, y, margin), 4326)`` (which the
GiST index on ``geom`` answers) and projects only those. ``ST_AsMVTGeom`` clips to the tile plus a
buffer, quantises to the 4096 × 4096 tile grid and drops collinear points; polygons and lines are first
simplified by half a tile unit, so a low-zoom tile carries no detail finer than it can show.

Below a layer's minimum zoom its tiles are empty (the map should not ask for them): in a city of
100,000 unit grids and 1,000,000 components a zoom-12 tile holds ~8,000 unit grids of 3 px (450 KB)
and ~80,000 components, which no one reads at that scale and which take longer than a tile should.

- ``unit_grid`` 单元网格 (current versions): code, community_code, community_name, duty_grid_code,
  area_class, responsible_department_code; from zoom 13.
- ``duty_grid`` 责任网格: code, name; the union of the member unit grids, computed per tile, which is
  affordable only for the few dozen duty grids a tile from zoom 14 shows.
- ``road``: code, name, grade_code; from zoom 11, and below zoom 14 only the grades of rank ≤ 2 (special,
  grade 1, grade 2).
- ``component`` 部件: from zoom 15 one point per component with code, class_code, class_name, status,
  owner_department_code, maintainer_department_code, competent_department_code; at zooms 13–14, clusters:
  the tile is cut into 8 × 8 cells and each cell with components gives one point (their mean position)
  with ``count``; a component lies in exactly one tile, so the counts of a tile add up to its components.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

EXTENT = 4096  # tile units per side (the MVT default)
BUFFER = 256  # tile units drawn beyond each edge, so lines and symbols at an edge join their neighbour's
MAX_ZOOM = 22
HIGH_GRADE_MAX_RANK = 2  # special 0, grade1 1, grade2 2 (road_grade.rank)
ALL_GRADES_ZOOM = 14
POINTS_ZOOM = 15  # components one by one from here, clustered below
CLUSTER_CELLS = 8  # clusters per tile side (32 px cells on a 256 px tile)


class UnknownLayer(LookupError):
    """No tile layer of that name; the message lists the layers."""


class BadTile(ValueError):
    """Zoom, x or y outside the tile pyramid; the message gives the valid range."""


@dataclass(frozen=True)
class TileLayer:
    name: str
    min_zoom: int
    description: str


LAYERS = {layer.name: layer for layer in (
    TileLayer("unit_grid", 13, "unit grids 单元网格 (current versions)"),
    TileLayer("duty_grid", 14, "duty grids 责任网格 (union of their unit grids)"),
    TileLayer("road", 11, f"road segments (below zoom {ALL_GRADES_ZOOM} special, grade 1 and grade 2 only)"),
    TileLayer("component", 13, f"components 部件 (clustered with a count below zoom {POINTS_ZOOM})"),
)}

_TILE = "ST_TileEnvelope(:z, :x, :y)"
_QUERY_BOX = "ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => :margin), 4326)"


def _mvt_geom(geom: str, simplify: bool = True) -> str:
    if simplify:
        geom = f"ST_Simplify({geom}, :tolerance, true)"
    return f"ST_AsMVTGeom(ST_Transform({geom}, 3857), {_TILE}, :extent, :buffer, true)"


def _tile_of(layer: str, features: str, feature_id: str | None = "id") -> str:
    id_argument = f", '{feature_id}'" if feature_id else ""
    return (f"WITH feature AS ({features}) "
            f"SELECT coalesce(ST_AsMVT(feature.*, '{layer}', :extent, 'geom'{id_argument}), ''::bytea) FROM feature")


UNIT_GRID = _tile_of("unit_grid", f"""
    SELECT g.id, g.code, c.code AS community_code, c.name AS community_name, dg.code AS duty_grid_code,
           g.area_class, dep.code AS responsible_department_code, {_mvt_geom("g.geom")} AS geom
    FROM unit_grid g JOIN community c ON c.id = g.community_id
    LEFT JOIN duty_grid_member m ON m.unit_grid_code = g.code
    LEFT JOIN duty_grid dg ON dg.id = m.duty_grid_id
    LEFT JOIN department dep ON dep.id = g.responsible_department_id
    WHERE g.valid_to IS NULL AND g.geom && {_QUERY_BOX}""")

# Only the unit grids near the tile are merged: the union is right within the clip box, which is all the
# tile shows. Cells are merged in tile units, after ST_AsMVTGeom has snapped them to integers, so edges
# that two cells share up to float noise coincide exactly.
DUTY_GRID = _tile_of("duty_grid", f"""
    SELECT dg.id, dg.code, dg.name, ST_Union(cell.geom) AS geom
    FROM (SELECT m.duty_grid_id, {_mvt_geom("g.geom", simplify=False)} AS geom
          FROM unit_grid g JOIN duty_grid_member m ON m.unit_grid_code = g.code
          WHERE g.valid_to IS NULL AND g.geom && {_QUERY_BOX}) AS cell
    JOIN duty_grid dg ON dg.id = cell.duty_grid_id
    GROUP BY dg.id""")

ROAD = _tile_of("road", f"""
    SELECT r.id, r.code, r.name, r.grade_code, {_mvt_geom("r.geom")} AS geom
    FROM road r JOIN road_grade rg ON rg.code = r.grade_code
    WHERE r.geom && {_QUERY_BOX} AND rg.rank <= :max_rank""")

COMPONENT_POINTS = _tile_of("component", f"""
    SELECT p.id, p.code, p.class_code, cc.name AS class_name, p.status,
           od.code AS owner_department_code, md.code AS maintainer_department_code,
           cd.code AS competent_department_code, {_mvt_geom("p.geom", simplify=False)} AS geom
    FROM component p JOIN component_class cc ON cc.code = p.class_code
    LEFT JOIN department od ON od.id = p.owner_department_id
    LEFT JOIN department md ON md.id = p.maintainer_department_id
    LEFT JOIN department cd ON cd.id = p.competent_department_id
    WHERE p.geom && {_QUERY_BOX}""")

# Clusters are counted over the tile itself, no margin, with half-open bounds: neighbouring tiles share
# their edge values exactly, so every component is counted in one tile only. Cells are cut in
# longitude/latitude, which within one tile differs from the Mercator cut by a fraction of a pixel.
# OFFSET 0 keeps the inner query whole, so each point's coordinates are read once, not once per use.
COMPONENT_CLUSTERS = _tile_of("component", f"""
    SELECT count(*) AS count,
           {_mvt_geom("ST_SetSRID(ST_MakePoint(avg(lon), avg(lat)), 4326)", simplify=False)} AS geom
    FROM (SELECT ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat, t.xmin, t.ymin, t.xmax, t.ymax
          FROM component p,
               (SELECT b AS box, ST_XMin(b) AS xmin, ST_YMin(b) AS ymin, ST_XMax(b) AS xmax, ST_YMax(b) AS ymax
                FROM ST_Transform({_TILE}, 4326) AS b) AS t
          WHERE p.geom && t.box OFFSET 0) AS point
    WHERE lon >= xmin AND lon < xmax AND lat >= ymin AND lat < ymax
    GROUP BY floor((lon - xmin) / (xmax - xmin) * :cells), floor((lat - ymin) / (ymax - ymin) * :cells)""",
                              feature_id=None)


# text() clauses made once, not parsed again for every tile
_STATEMENTS = {name: text(sql) for name, sql in (
    ("unit_grid", UNIT_GRID), ("duty_grid", DUTY_GRID), ("road", ROAD),
    ("component_points", COMPONENT_POINTS), ("component_clusters", COMPONENT_CLUSTERS))}


def tile(*, session: Session, layer: str, z: int, x: int, y: int) -> bytes:
    """Return tile ``z/x/y`` of ``layer`` as a Mapbox vector tile.

    Parameters
    ----------
    session
        Open session; nothing is written.
    layer
        One of :data:`LAYERS`.
    z, x, y
        XYZ tile address in Web Mercator: ``0 <= z <= 22``, ``0 <= x, y < 2**z``, y counted from the north.

    Returns
    -------
    bytes
        The encoded tile with one layer named ``layer``; empty bytes when the tile holds no feature or
        ``z`` is below the layer's minimum zoom.

    Raises
    ------
    UnknownLayer
        ``layer`` is not a tile layer.
    BadTile
        ``z``, ``x`` or ``y`` lies outside the tile pyramid.
    """
    check_tile(layer, z, x, y)
    if z < LAYERS[layer].min_zoom:
        return b""
    params = {"z": z, "x": x, "y": y, "extent": EXTENT, "buffer": BUFFER, "margin": BUFFER / EXTENT,
              # half a tile unit, in degrees of longitude (a little more than that in latitude)
              "tolerance": 360.0 / (EXTENT * 2**z) / 2}
    statement = layer
    if layer == "road":
        params["max_rank"] = HIGH_GRADE_MAX_RANK if z < ALL_GRADES_ZOOM else 32767
    elif layer == "component" and z >= POINTS_ZOOM:
        statement = "component_points"
    elif layer == "component":
        statement = "component_clusters"
        params["cells"] = CLUSTER_CELLS
    return bytes(session.execute(_STATEMENTS[statement], params).scalar_one())


def check_tile(layer: str, z: int, x: int, y: int) -> None:
    """Raise :class:`UnknownLayer` or :class:`BadTile` unless ``layer`` and ``z/x/y`` name a tile."""
    if layer not in LAYERS:
        raise UnknownLayer(f"unknown tile layer {layer!r}; layers: {', '.join(LAYERS)}")
    if not 0 <= z <= MAX_ZOOM:
        raise BadTile(f"zoom must lie within 0…{MAX_ZOOM}, not {z}")
    last = 2**z - 1
    if not (0 <= x <= last and 0 <= y <= last):
        raise BadTile(f"at zoom {z} x and y must lie within 0…{last}, not x={x}, y={y}")


def tile_index(lon: float, lat: float, z: int) -> tuple[int, int]:
    """Return the ``(x, y)`` of the zoom-``z`` tile holding longitude/latitude ``lon, lat`` (EPSG:4326)."""
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)
