"""Historical import rate and a month of KPIs over a million synthetic cases on the demo city.

Run: ``.venv/bin/python bench/kpi.py [--cases 1000000] [--share 0.25]`` after ``make setup``. It builds a
private database with the Taipei demo city, generates N historical cases of another system on it (a
GeoParquet: points inside the city's unit grids, its own category names mapped onto the catalogue by a
mapping file, a few kept local; opened over the twelve months to 2026-10, of which 2026-10 holds
``--share``; three in four closed on time, one in eight late, one in eight still open, the other system's
deadline given for half of them and a department for a third), times ``gridmap cases import`` end to
end as a user runs it (a new process: reading, checks, routing, COPY, indexes, commit; target ≥ 50,000
cases/s) and then ``gridmap.evaluation.service.kpi(period="2026-10", by=…)`` for departments and districts
(target ≤ 2 s). The same again with all N cases in 2026-10. The databases are dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import yaml
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, drop_database  # noqa: E402

from gridmap.calendar.service import get_calendar  # noqa: E402
from gridmap.cases.imports_clock import NAT, Timeline  # noqa: E402
from gridmap.config import load_settings  # noqa: E402
from gridmap.db.cluster import ensure_database  # noqa: E402
from gridmap.db.engine import database_url  # noqa: E402
from gridmap.db.migrate import upgrade  # noqa: E402
from gridmap.demo.service import load_demo  # noqa: E402

IMPORT_TARGET, KPI_TARGET = 50_000, 2.0
MONTH, NOW = "2026-10", datetime(2026, 11, 21, 12, tzinfo=timezone.utc)
#: the other system's categories: (name, catalogue code with case type, share, limit in working hours for area B)
CATEGORIES = [("垃圾暴露", "20102", 0.22, 8), ("道路不洁", "20104", 0.14, 4), ("大件垃圾", "20108", 0.12, 16),
              ("噪音扰民", "20508", 0.08, 4), ("路面坑洞", "20401", 0.06, 4), ("下水道堵塞", "20404", 0.05, 8),
              ("机动车乱停", "20505", 0.06, 4), ("店外经营", "20504", 0.05, 4), ("小广告", "20201", 0.04, 16),
              ("路灯故障", "10118", 0.07, 16), ("信号灯故障", "10210", 0.04, 8), ("标志牌损坏", "10209", 0.03, 16),
              ("行道树", "10402", 0.02, 16), ("井盖缺失", "10114", 0.01, 4), ("动物救援", "local", 0.01, 8)]
#: departments the other system names, by category (for the third of the rows that carry one)
DEPARTMENT = {"20102": "HW", "20104": "HW", "20108": "HW", "20508": "ZF", "20401": "SZ", "20404": "SW",
              "20505": "JC", "20504": "ZF", "20201": "ZF", "10118": "LD", "10210": "JT", "10209": "JT", "10402": "YL",
              "10114": "SZ", "local": "SF"}


def build_demo(base: str) -> str:
    url = make_url(base).set(database=f"gridmap_bench_kpi_{uuid.uuid4().hex[:8]}").render_as_string(hide_password=False)
    ensure_database(url)
    upgrade(url)
    engine = create_engine(url, poolclass=pool.NullPool)
    with Session(engine) as session:
        load_demo(session=session)
        session.commit()
    engine.dispose()
    return url


def clone(url: str, suffix: str) -> str:
    import psycopg

    source = make_url(url)
    target = source.set(database=f"{source.database}_{suffix}")
    with psycopg.connect(host=source.host, port=source.port, user=source.username, password=source.password,
                         dbname="postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{target.database}" TEMPLATE "{source.database}"')
    return target.render_as_string(hide_password=False)


def grid_points(session: Session, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points uniformly inside the current unit grids (grids drawn with a skew: a few produce most)."""
    grids = shapely.from_wkb(list(session.execute(text(
        "SELECT ST_AsBinary(geom) FROM unit_grid WHERE valid_to IS NULL ORDER BY code")).scalars()))
    weight = rng.pareto(1.5, len(grids)) + 0.2
    bounds = shapely.bounds(grids)
    lon, lat, have = np.empty(n), np.empty(n), 0
    while have < n:
        pick = rng.choice(len(grids), size=int((n - have) * 1.5) + 100, p=weight / weight.sum())
        x = rng.uniform(bounds[pick, 0], bounds[pick, 2])
        y = rng.uniform(bounds[pick, 1], bounds[pick, 3])
        inside = shapely.contains_xy(grids[pick], x, y)
        take = min(int(inside.sum()), n - have)
        lon[have:have + take], lat[have:have + take] = x[inside][:take], y[inside][:take]
        have += take
    return lon, lat


def opened_times(rng: np.random.Generator, n: int, share: float, zone) -> np.ndarray:
    """Opening moments (µs UTC): ``share`` of them in 2026-10, the rest over 2025-11 … 2026-09, mostly in
    office hours on weekdays."""
    months = pd.period_range("2025-11", "2026-10", freq="M")
    in_month = rng.random(n) < share
    month = np.where(in_month, len(months) - 1, rng.integers(0, len(months) - 1, n))
    starts = np.array([m.start_time.value for m in months]) // 1000
    days = np.array([m.days_in_month for m in months])
    day = np.floor(rng.random(n) * days[month]).astype(np.int64)
    hour = np.where(rng.random(n) < 0.85, rng.uniform(8.5, 17.5, n), rng.uniform(0, 24, n))
    local = starts[month] + day * 86_400_000_000 + (hour * 3_600_000_000).astype(np.int64)
    offset = int(datetime(2026, 1, 1, tzinfo=zone).utcoffset().total_seconds() * 1_000_000)
    return local - offset


def synthetic_cases(url: str, n: int, share: float, seed: int = 7) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    engine = create_engine(url, poolclass=pool.NullPool)
    with Session(engine) as session:
        lon, lat = grid_points(session, rng, n)
        calendar = get_calendar(session=session)
    engine.dispose()
    names, codes, shares, hours = zip(*CATEGORIES)
    kind = rng.choice(len(names), size=n, p=np.array(shares) / sum(shares))
    opened = np.sort(opened_times(rng, n, share, calendar.timezone))  # exports come in the order cases were opened
    limit = np.array(hours, dtype=float)[kind] * 60
    timeline = Timeline.covering(calendar, opened, float(limit.max()) * 3)
    due = timeline.add(opened, limit)
    outcome = rng.choice(3, size=n, p=[0.75, 0.125, 0.125])  # on time, late, open
    factor = np.where(outcome == 0, rng.uniform(0.05, 1.0, n), rng.uniform(1.05, 3.0, n))
    closed = np.where(outcome == 2, NAT, timeline.add(opened, limit * factor))
    closed = np.where(closed > int(NOW.timestamp() * 1e6), NAT, closed)
    frame = gpd.GeoDataFrame({
        "case_no": pd.array(np.char.add("OS-", np.arange(1, n + 1).astype(str)), dtype="string"),
        "category": pd.Categorical.from_codes(kind, categories=list(names)),
        "opened": _moments(opened), "due": _moments(np.where(rng.random(n) < 0.5, due, NAT)),
        "closed": _moments(closed),
        "unit": pd.Series(np.where(rng.random(n) < 1 / 3, np.array([DEPARTMENT[c] for c in codes])[kind], None),
                          dtype="string")},
        geometry=shapely.points(lon, lat), crs=4326)
    return frame


def _moments(values: np.ndarray) -> pd.Series:
    return pd.Series(values.astype("datetime64[us]"), dtype="datetime64[us]").dt.tz_localize("UTC")


def mapping_file(folder: Path) -> Path:
    path = folder / "bench_mapping.yaml"
    path.write_text(yaml.safe_dump({
        "origin": "bench", "columns": {"number": "case_no", "class": "category", "opened": "opened", "due": "due",
                                       "closed": "closed", "department": "unit"},
        "classes": {name: code for name, code, _share, _hours in CATEGORIES}}, allow_unicode=True), encoding="utf-8")
    return path


def time_import(url: str, parquet: Path, mapping: Path) -> tuple[float, str]:
    env = os.environ | {"GRIDMAP_DATABASE_URL": url, "COLUMNS": "120"}
    start = time.perf_counter()
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "gridmap"), "cases", "import", str(parquet), "--mapping",
                           str(mapping)], cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"gridmap cases import failed:\n{done.stdout}\n{done.stderr}")
    return elapsed, done.stdout


def time_kpi(url: str, by: str, runs: int = 3) -> tuple[list[float], int]:
    from gridmap.evaluation.service import kpi

    engine = create_engine(url, poolclass=pool.NullPool)
    times, rows = [], 0
    with Session(engine) as session:
        for _ in range(runs):
            start = time.perf_counter()
            table = kpi(session=session, period=MONTH, by=by, now=NOW)
            times.append(time.perf_counter() - start)
            rows = len(table)
    engine.dispose()
    return times, rows


def run_variant(label: str, url: str, n: int, share: float, folder: Path) -> None:
    start = time.perf_counter()
    cases = synthetic_cases(url, n, share)
    parquet = folder / f"cases_{abs(hash(label)) % 10**6}.parquet"
    cases.to_parquet(parquet)
    in_month = int((cases["opened"] >= pd.Timestamp("2026-10-01", tz="Asia/Taipei")).sum())
    print(f"[{label}] {n:,} synthetic cases, {in_month:,} ({in_month / n:.0%}) opened in {MONTH}, "
          f"{int(cases['closed'].isna().sum()):,} open; generated in {time.perf_counter() - start:.1f} s → "
          f"{parquet.stat().st_size / 1e6:.0f} MB GeoParquet")
    elapsed, output = time_import(url, parquet, mapping_file(folder))
    print("\n".join("    " + line for line in output.strip().splitlines()))
    rate = n / elapsed
    print(f"[{label}] gridmap cases import: {elapsed:.1f} s → {rate:,.0f} cases/s "
          f"(target ≥ {IMPORT_TARGET:,}: ×{rate / IMPORT_TARGET:.2f})")
    for by in ("department", "district"):
        times, rows = time_kpi(url, by)
        best, median = min(times), statistics.median(times)
        print(f"[{label}] kpi(period={MONTH!r}, by={by!r}): {rows} subjects, best {best:.2f} s, median "
              f"{median:.2f} s of {len(times)} (target ≤ {KPI_TARGET:.0f} s: ×{KPI_TARGET / median:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--share", type=float, default=0.25, help=f"share of the cases opened in {MONTH}")
    args = parser.parse_args()
    base = database_url(load_settings().database)
    start = time.perf_counter()
    demo = build_demo(base)
    urls = [demo, clone(demo, "month")]
    print(f"demo city databases ready in {time.perf_counter() - start:.0f} s")
    try:
        with tempfile.TemporaryDirectory(prefix="gridmap-bench-kpi-") as folder:
            run_variant(f"spread, {args.share:.0%} in {MONTH}", urls[0], args.cases, args.share, Path(folder))
            run_variant(f"all in {MONTH}", urls[1], args.cases, 1.0, Path(folder))
    finally:
        for url in urls:
            drop_database(url)


if __name__ == "__main__":
    main()
