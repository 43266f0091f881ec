"""Batch assignment on a synthetic city, against geopandas.sjoin and a PostGIS set join, and the
latency of single decisions on the demo city.

Run: ``.venv/bin/python bench/assign.py [--points 1000000]`` after ``make setup``. It builds a city
of ≈100,000 unit grids (100 m squares), ≈50,000 road segments and 1,000,000 components, assigns the
points in one batch (grid, road, component, department, time limit, ambiguity, evidence), times in the
same run ``geopandas.sjoin(points, grids)`` and the same grid join as one PostGIS statement, and prints
the ratios (targets: full assignment ≤ 2 × sjoin, ≥ 10 × faster than PostGIS).

The three are timed in turn, round after round (``--rounds 3``), so that a shared VM slowing down for a
while slows all of them: each is shown with its first time, its best and its median, and the ratios are
given of the best times (as ``timeit`` compares code) and of the medians.
"""

from __future__ import annotations

import argparse
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from sqlalchemy import create_engine, event
from sqlalchemy.orm import Session

from gridmap.config import load_settings
from gridmap.db.engine import database_url, driver_connection
from gridmap.routing.decide import decide
from gridmap.routing.layers import Layers, Reference
from gridmap.routing.service import assign_one

METRIC = CRS.from_epsg(3826)
SIDE, CELLS = 100.0, 316  # 316² ≈ 100,000 unit grids of 100 m
GRADES = np.array(["grade1", "grade2", "grade3", "grade4", "lane"])
CLASSES = np.array(["0101", "0102", "0103", "0118", "0203", "0209", "0210", "0305", "0402", "0136"])


def synthetic_city(rng: np.random.Generator, components: int) -> Layers:
    i, j = np.meshgrid(np.arange(CELLS), np.arange(CELLS))
    x0, y0 = 290_000 + i.ravel() * SIDE, 2_760_000 + j.ravel() * SIDE
    # street offices own blocks of 30 × 30 grids (3 km squares), so fixes near a block edge see two bodies
    office = (i.ravel() // 30) * 100 + j.ravel() // 30
    grids = pd.DataFrame({"code": [f"630050{k // 500:06d}{k % 500:03d}" for k in range(x0.size)],
                          "duty_grid": None, "community": None, "street": None, "district": "630050",
                          "district_id": 1, "street_id": None, "area_class": rng.choice(["A", "B", "C"], x0.size),
                          "grid_department": [f"JD-{o:04d}" for o in office],
                          "geom": shapely.box(x0, y0, x0 + SIDE, y0 + SIDE)})
    # roads along every other grid line, cut into 200 m segments: ≈50,000 segments
    k = np.arange(0, CELLS, 2)
    starts = np.array([(a, b) for a in k for b in range(0, CELLS - 2, 2)], dtype=float) * SIDE
    horizontal = shapely.linestrings(np.stack([
        np.column_stack([290_000 + starts[:, 1], 2_760_000 + starts[:, 0]]),
        np.column_stack([290_000 + starts[:, 1] + 2 * SIDE, 2_760_000 + starts[:, 0]])], axis=1))
    vertical = shapely.linestrings(np.stack([
        np.column_stack([290_000 + starts[:, 0], 2_760_000 + starts[:, 1]]),
        np.column_stack([290_000 + starts[:, 0], 2_760_000 + starts[:, 1] + 2 * SIDE])], axis=1))
    lines = np.concatenate([horizontal, vertical])
    roads = pd.DataFrame({"code": [f"r{n}" for n in range(lines.size)], "name": None,
                          "grade": rng.choice(GRADES, lines.size), "maintenance": "SZ", "cleaning": "HW-630050",
                          "geom": lines})
    xy = rng.uniform([290_000, 2_760_000], [290_000 + CELLS * SIDE, 2_760_000 + CELLS * SIDE], (components, 2))
    parts = pd.DataFrame({"code": [f"630050{c}{n:06d}" for c, n in zip(rng.choice(CLASSES, components), range(components))],
                          "version": 1, "name": None, "maintainer": "GJ", "owner": "GJ",
                          "geom": shapely.points(xy)})
    parts["class_code"] = parts["code"].str[6:10]
    return Layers(grids=grids, roads=roads, components=parts)


def reference() -> Reference:
    rules = pd.DataFrame({"code": ["E-ANY", "C-ANY", "E-0104"], "case_type": ["event", "component", "event"],
                          "class_code": [None, None, "0104"], "district_id": None, "street_id": None,
                          "road_grade_code": None, "area_class": None,
                          "target": ["street_office", "street_office", "road_cleaning"], "department": None,
                          "priority": 0, "note": None})
    classes = pd.DataFrame({"case_type": ["component"] * len(CLASSES) + ["event", "event"],
                            "code": [*CLASSES, "0102", "0104"], "name": "", "road_bound": False,
                            "limit_a": 2.0, "limit_b": 4.0, "limit_c": 8.0, "limit_unit": "hour"})
    return Reference(rules=rules, street_offices={1: "JD-630050"}, classes=classes, metric=METRIC)


class PostgisJoin:
    """The grid join as one PostGIS statement, on temporary tables loaded once (the loading is not timed)."""

    def __init__(self, url: str, grids: pd.DataFrame, points: np.ndarray):
        self.engine = create_engine(url)
        self.conn = self.engine.connect()
        raw = self.raw = self.conn.connection.driver_connection
        raw.execute("CREATE TEMP TABLE bench_grid (code text, geom geometry(Polygon, 3826))")
        raw.execute("CREATE TEMP TABLE bench_point (id int, geom geometry(Point, 3826))")
        with raw.cursor().copy("COPY bench_grid FROM STDIN") as copy:
            for code, wkb in zip(grids["code"], shapely.to_wkb(grids["geom"].to_numpy(), hex=True, include_srid=False)):
                copy.write_row((code, f"SRID=3826;{shapely.from_wkb(wkb).wkt}"))
        with raw.cursor().copy("COPY bench_point FROM STDIN") as copy:
            for n, (x, y) in enumerate(shapely.get_coordinates(points)):
                copy.write_row((n, f"SRID=3826;POINT({x} {y})"))
        raw.execute("CREATE INDEX ON bench_grid USING gist (geom); ANALYZE bench_grid; ANALYZE bench_point")
        raw.commit()

    def __call__(self) -> tuple[float, int]:
        """Join (timed: the statement alone), and return its time and the number of pairs."""
        self.raw.execute("DROP TABLE IF EXISTS bench_join")
        start = time.perf_counter()
        self.raw.execute("CREATE TEMP TABLE bench_join AS SELECT p.id, g.code FROM bench_point p "
                         "JOIN bench_grid g ON ST_Intersects(g.geom, p.geom)")
        elapsed = time.perf_counter() - start
        (pairs,) = self.raw.execute("SELECT count(*) FROM bench_join").fetchone()
        self.raw.commit()
        return elapsed, pairs

    def close(self) -> None:
        self.conn.close()
        self.engine.dispose()


def timed(work) -> tuple[float, object]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def single_latency(url: str, runs: int) -> tuple[np.ndarray, np.ndarray]:
    """Wall time and database time of single decisions on the demo city (random fixes in central Taipei)."""
    engine = create_engine(url)
    db_time = [0.0]

    @event.listens_for(engine, "before_cursor_execute")
    def _start(conn, cursor, statement, parameters, context, executemany):
        conn.info["t"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _stop(conn, cursor, statement, parameters, context, executemany):
        db_time[0] += time.perf_counter() - conn.info["t"]

    rng = np.random.default_rng(3)
    walls, dbs = [], []
    with Session(engine) as session:
        assign_one(session=session, x=121.53, y=25.04, class_code="20102")  # warm caches
        # the single path's search around the fix goes to the driver itself (driver_connection): time it there
        driver = driver_connection(session)
        execute = driver.execute

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return execute(*args, **kwargs)
            finally:
                db_time[0] += time.perf_counter() - start
        driver.execute = timed
        for lon, lat in rng.uniform([121.51, 25.03], [121.56, 25.06], (runs, 2)):
            db_time[0] = 0.0
            start = time.perf_counter()
            assign_one(session=session, x=lon, y=lat, accuracy=10, class_code="20104")
            walls.append(time.perf_counter() - start)
            dbs.append(db_time[0])
    engine.dispose()
    return np.array(walls) * 1000, np.array(dbs) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--components", type=int, default=1_000_000)
    parser.add_argument("--single", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3, help="times each of the three is timed, in turn")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    layers = synthetic_city(rng, args.components)
    print(f"synthetic city: {len(layers.grids):,} unit grids, {len(layers.roads):,} roads, "
          f"{len(layers.components):,} components; {args.points:,} points")
    xy = rng.uniform([290_000, 2_760_000], [290_000 + CELLS * SIDE, 2_760_000 + CELLS * SIDE], (args.points, 2))
    points = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "accuracy": rng.choice([5.0, 10.0, 20.0], args.points),
                           "case_type": rng.choice(["component", "event"], args.points),
                           "component_id": None})
    points["class_code"] = np.where(points["case_type"] == "component", rng.choice(CLASSES, args.points),
                                    rng.choice(["0102", "0104"], args.points))
    grid_frame = gpd.GeoDataFrame(layers.grids[["code"]], geometry=layers.grids["geom"].to_numpy(), crs=METRIC)
    point_frame = gpd.GeoDataFrame(geometry=shapely.points(xy), crs=METRIC)
    url = database_url(load_settings().database)
    walls, dbs = single_latency(url, args.single)  # before the big PostGIS load disturbs the server
    postgis = PostgisJoin(url, layers.grids, shapely.points(xy))
    times: dict[str, list[float]] = {"ours": [], "sjoin": [], "postgis": []}
    try:
        for _ in range(args.rounds):
            elapsed, decided = timed(lambda: decide(points, layers, reference()))
            times["ours"].append(elapsed)
            elapsed, joined = timed(lambda: gpd.sjoin(point_frame, grid_frame, predicate="intersects"))
            times["sjoin"].append(elapsed)
            elapsed, pairs = postgis()
            times["postgis"].append(elapsed)
    finally:
        postgis.close()
    best = {name: min(values) for name, values in times.items()}
    median = {name: float(np.median(values)) for name, values in times.items()}

    def line(name: str) -> str:
        values = times[name]
        return f"first {values[0]:6.2f} s, best {best[name]:6.2f} s, median {median[name]:6.2f} s"

    print(f"{args.rounds} rounds, each timing the three in turn")
    print(f"gridmap batch assignment : {line('ours')} ({decided['unit_grid'].notna().sum():,} decided, "
          f"{decided['ambiguous'].fillna(False).sum():,} ambiguous)")
    print(f"geopandas.sjoin (grid)   : {line('sjoin')} ({len(joined):,} pairs)")
    print(f"PostGIS grid join        : {line('postgis')} ({pairs:,} pairs)")
    print(f"ratio assignment / sjoin : best {best['ours'] / best['sjoin']:5.2f}, "
          f"median {median['ours'] / median['sjoin']:5.2f}  (target ≤ 2)")
    print(f"ratio PostGIS / assign   : best {best['postgis'] / best['ours']:5.2f}, "
          f"median {median['postgis'] / median['ours']:5.2f}  (target ≥ 10)")
    print(f"single decision, demo city, {args.single} runs: wall p50 {np.percentile(walls, 50):.1f} ms, "
          f"p99 {np.percentile(walls, 99):.1f} ms; database p50 {np.percentile(dbs, 50):.1f} ms, "
          f"p99 {np.percentile(dbs, 99):.1f} ms (target well under 5 ms)")


if __name__ == "__main__":
    main()
