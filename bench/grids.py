"""Unit grid generation speed on the whole Taipei demo city, in km²/min (target ≥ 50 km²/min).

Run: ``.venv/bin/python bench/grids.py``. It reads the demo city's villages and roads from ``data/taipei``,
generates the city's unit grids with gridmap, and, in the same run, the baseline a city gets without
gridmap: a square 100 m fishnet clipped to each village (fast, but blind to streets). It prints both
speeds, their ratio, and what each costs in quality: the share of main-road length inside cells.
"""

from __future__ import annotations

import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from gridmap.territory.generate import GridOptions, generate_cells

DATA = Path(__file__).resolve().parents[1] / "data" / "taipei"
METRIC = 3826
MAIN = ("grade1", "grade2")


def load() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    villages = gpd.read_file(DATA / "villages.geojson").to_crs(METRIC)
    parts = shapely.get_parts(shapely.make_valid(villages.geometry.values), return_index=True)
    polygons = [shapely.multipolygons(parts[0][(parts[1] == i) & (shapely.get_type_id(parts[0]) == 3)])
                for i in range(len(villages))]
    villages = gpd.GeoDataFrame({"code": villages["code"]}, geometry=polygons, crs=METRIC)
    roads = gpd.read_file(DATA / "roads.geojson").to_crs(METRIC)
    return villages, roads


def fishnet(villages: gpd.GeoDataFrame, side: float = 100.0) -> np.ndarray:
    """The baseline: squares of ``side`` metres clipped to each village."""
    minx, miny, maxx, maxy = villages.total_bounds
    xs, ys = np.arange(minx, maxx, side), np.arange(miny, maxy, side)
    x, y = (a.ravel() for a in np.meshgrid(xs, ys))
    squares = shapely.box(x, y, x + side, y + side)
    village_i, square_i = shapely.STRtree(squares).query(villages.geometry.values, predicate="intersects")
    cells = shapely.intersection(villages.geometry.values[village_i], squares[square_i])
    return cells[~shapely.is_empty(cells)]


def inside_share(cells: np.ndarray, roads: gpd.GeoDataFrame, territory) -> float:
    main = shapely.intersection(shapely.union_all(roads[roads["grade_code"].isin(MAIN)].geometry.values), territory)
    edges = shapely.buffer(shapely.union_all(shapely.boundary(cells)), 1.0)
    return shapely.length(shapely.difference(main, edges)) / shapely.length(main)


def main() -> None:
    villages, roads = load()
    area_km2 = villages.area.sum() / 1e6
    start = time.perf_counter()
    cells = generate_cells(villages, roads.geometry, GridOptions(), main=roads["grade_code"].isin(MAIN).to_numpy())
    ours = time.perf_counter() - start
    start = time.perf_counter()
    squares = fishnet(villages)
    baseline = time.perf_counter() - start
    territory = shapely.union_all(villages.geometry.values)
    print(f"Taipei: {len(villages)} villages, {area_km2:.1f} km², {len(roads):,} road segments")
    print(f"gridmap  : {len(cells):>6,} cells in {ours:6.2f} s = {area_km2 / ours * 60:8,.0f} km²/min; "
          f"main roads inside cells {100 * inside_share(cells.geometry.values, roads, territory):4.1f} %")
    print(f"fishnet  : {len(squares):>6,} cells in {baseline:6.2f} s = {area_km2 / baseline * 60:8,.0f} km²/min; "
          f"main roads inside cells {100 * inside_share(squares, roads, territory):4.1f} %")
    print(f"ratio    : gridmap takes {ours / baseline:.1f}× the fishnet's time; target ≥ 50 km²/min: "
          f"{'met' if area_km2 / ours * 60 >= 50 else 'NOT met'}")


if __name__ == "__main__":
    main()
