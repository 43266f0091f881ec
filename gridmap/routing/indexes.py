"""A layer's spatial indexes and the layer-wide work of a decision batch, computed once per layer
(:meth:`Table.cached`) and shared by the pieces of a batch."""

from __future__ import annotations

import numpy as np
import shapely

from gridmap.routing.policy import ON_EDGE_M, SNAP_RADIUS_M, road_tolerance
from gridmap.routing.spatial import CellIndex, Segments, point_boxes
from gridmap.routing.table import Table


def grid_index(grids: Table) -> tuple[Segments, CellIndex]:
    def make():
        geoms = grids.objects("geom")
        margin = np.array([-ON_EDGE_M, -ON_EDGE_M, ON_EDGE_M, ON_EDGE_M])
        return Segments.of(geoms), CellIndex(shapely.bounds(geoms).reshape(-1, 4) + margin)
    return grids.cached("index", make)


def grid_bodies(grids: Table) -> tuple[np.ndarray, np.ndarray] | None:
    """Per cell of the grid index, the least and greatest responsible body (code) among the grids hashed to
    it (see :meth:`CellIndex.cell_range`): a fix whose accuracy circle covers only cells of its own body
    cannot reach another, so :func:`other_bodies` measures the circles of the others only."""
    _, index = grid_index(grids)
    return grids.cached("bodies", lambda: index.cell_range(grids.encoded("grid_department")[0]))


def road_index(roads: Table) -> tuple[Segments, np.ndarray, CellIndex]:
    """The roads' segments, each road's tolerance, and an index of the segments' boxes widened by it."""
    def make():
        grade, grades = roads.encoded("grade")
        tolerance = np.array([road_tolerance(g) for g in grades] + [road_tolerance(None)], dtype=float)[grade]
        segments = Segments.of(roads.objects("geom"))
        return segments, tolerance, CellIndex(segments.boxes(tolerance[segments.feature]))
    return roads.cached("index", make)


def component_index(comps: Table) -> tuple[np.ndarray, CellIndex]:
    """The components' positions, indexed by class (cells of twice the snap radius)."""
    def make():
        xy = shapely.get_coordinates(comps.objects("geom")) if len(comps) else np.empty((0, 2))
        return xy, CellIndex(point_boxes(xy[:, 0], xy[:, 1]), groups=comps.encoded("class_code")[0],
                             cell=2 * SNAP_RADIUS_M)
    return comps.cached("index", make)


def layer_work(tables: tuple[Table, Table, Table]) -> list:
    """Everything the decision computes once per layer, as three independent parts to run before the pieces:
    the grids' and roads' work, the components' index, the components' columns. In two threads the first and
    the last together take about as long as the second, so that both threads start deciding pieces at about
    the same time (what one thread waits for at the start, it waits again at the end). The index is not first:
    reading a million positions holds the interpreter lock for 60 ms, and the pool's second thread could not
    even start meanwhile."""
    grids, roads, comps = tables

    def grids_and_roads():
        grid_index(grids), grid_bodies(grids), road_index(roads)
        for table, names in ((grids, ["duty_grid", "community", "street", "district", "area_class",
                                      "grid_department", "district_id", "street_id"]),
                             (roads, ["grade", "maintenance", "cleaning"])):
            for name in names:
                table.encoded(name)
        for table, name in ((grids, "code"), (grids, "grid_department"), (roads, "code"), (roads, "grade")):
            table.quoted(name)

    def components_columns():
        comps.encoded("maintainer"), comps.encoded("owner"), comps.quoted("code"), comps.objects("version")

    return [grids_and_roads, lambda: component_index(comps), components_columns]
