"""The dask path gives the PostGIS path's numbers: batch assignment over partitioned GeoParquet equals
``gridmap.assign`` row for row, and KPIs aggregated over monthly fact partitions equal
``gridmap.evaluation.service.kpi``. One local cluster (2 worker processes) serves the whole module."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import create_engine, pool, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

import gridmap
from gridmap.cli import app
from gridmap.crs import wgs84_to_gcj02
from gridmap.evaluation.definitions import count_columns
from gridmap.evaluation.service import kpi
from gridmap.routing.exceptions import BadReport
from gridmap.scale.assign import assign_partitioned
from gridmap.scale.cluster import connect
from gridmap.scale.kpi import FactsMissing, export_facts, kpi_partitioned
from gridmap.scale.parquet import NotPartitioned, read_partitioned, write_partitioned


@pytest.fixture(scope="module")
def client():
    with connect(workers=2) as client:
        yield client


def points(session, n: int = 600) -> gpd.GeoDataFrame:
    """Reports of every kind: random, on grid corners and edges, on roads, between two components, and
    component cases naming the component picked (one of another class, one that does not exist)."""
    rng = np.random.default_rng(7)
    random = rng.uniform([121.50, 25.02], [121.58, 25.07], (n, 2))
    corners = session.execute(text("""SELECT ST_X(p), ST_Y(p) FROM (SELECT (ST_DumpPoints(geom)).geom AS p
        FROM unit_grid WHERE valid_to IS NULL AND left(code, 6) = '630050' ORDER BY code LIMIT 60) t""")).all()
    edges = session.execute(text("""SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_LineInterpolatePoint(
        ST_GeometryN(ST_Boundary(geom), 1), 0.37) AS p FROM unit_grid WHERE valid_to IS NULL
        AND left(code, 6) = '630030' ORDER BY code LIMIT :n) t"""), {"n": n}).all()
    roads = session.execute(text("""SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_LineInterpolatePoint(ST_GeometryN(geom, 1),
        0.5) AS p FROM road ORDER BY code LIMIT :n) t"""), {"n": n}).all()
    between = session.execute(text("""SELECT (ST_X(p.geom) + ST_X(q.geom)) / 2, (ST_Y(p.geom) + ST_Y(q.geom)) / 2
        FROM component p JOIN component q ON q.class_code = p.class_code AND q.code > p.code
          AND ST_DWithin(p.geom, q.geom, 0.0004) WHERE p.class_code IN ('0203', '0210') ORDER BY p.code LIMIT :n"""),
        {"n": n // 2}).all()
    xy = np.vstack([random, np.array(corners[:n], float), np.array(edges, float), np.array(roads, float),
                    np.array(between, float)])
    classes = rng.choice(["20102", "20104", "20406", "20505", "10203", "10210", "0118", "10136"], len(xy))
    frame = pd.DataFrame({"class": classes, "accuracy": rng.choice([np.nan, 0, 5, 12, 30, 60], len(xy)),
                          "component_id": None})
    picked = session.execute(text("""SELECT code, class_code, ST_X(geom), ST_Y(geom) FROM component
        WHERE class_code IN ('0203', '0210') ORDER BY code LIMIT 40""")).all()
    picks = pd.DataFrame({"class": ["1" + c for _, c, _, _ in picked], "accuracy": 10.0,
                          "component_id": [code for code, *_ in picked]})
    picks.loc[0, "class"], picks.loc[1, "component_id"] = "10210" if picked[0][1] == "0203" else "10203", "no-such"
    frame = pd.concat([frame, picks], ignore_index=True)
    xy = np.vstack([xy, np.array([(x, y) for *_, x, y in picked], float) + 0.00005])
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs=4326)


def flat(output: str) -> str:
    """The command's output without the console's line breaks."""
    return " ".join(output.split())


def rows(frame: gpd.GeoDataFrame) -> tuple[list[dict], np.ndarray]:
    """Each row as plain values (None for missing; the decision's columns win over input ones of the same
    name), and the coordinates."""
    frame = frame.loc[:, ~frame.columns.duplicated(keep="last")]
    plain = pd.DataFrame(frame.drop(columns=frame.geometry.name)).astype(object)
    records = [{k: None if pd.isna(v) else v for k, v in row.items()} for row in plain.to_dict("records")]
    return records, shapely.get_coordinates(frame.geometry.values)


def assert_same(distributed: gpd.GeoDataFrame, local: gpd.GeoDataFrame) -> None:
    got, got_xy = rows(distributed)
    want, want_xy = rows(local)
    assert len(got) == len(want)
    for k, (a, b) in enumerate(zip(got, want)):
        assert a == b, (k, {name: (a[name], b.get(name)) for name in a if a[name] != b.get(name)})
    assert np.array_equal(got_xy, want_xy)


def test_distributed_assignment_equals_the_batch_path(session, client, tmp_path):
    reports = points(session)
    assert len(reports) > 2000
    gcj = reports.iloc[::3].reset_index(drop=True)
    gx, gy = wgs84_to_gcj02(shapely.get_x(gcj.geometry.values), shapely.get_y(gcj.geometry.values))
    gcj = gcj.set_geometry(gpd.points_from_xy(gx, gy, crs=4326))
    for frame, crs, name in ((reports, None, "wgs84"), (gcj, "gcj02", "gcj02")):
        write_partitioned(frame, tmp_path / name, partitions=4)
        summary = assign_partitioned(session=session, client=client, source=tmp_path / name,
                                     target=tmp_path / f"{name}-out", crs=crs)
        local = gridmap.assign(frame, session=session, crs=crs)
        written = read_partitioned(tmp_path / f"{name}-out").compute()
        assert summary.partitions == 4 and len(list((tmp_path / f"{name}-out").glob("*.parquet"))) == 4
        assert (summary.reports, summary.rejected) == (len(frame), int(local["error"].notna().sum()))
        assert written.index.tolist() == frame.index.tolist() and written.crs == local.crs
        assert_same(written, local)
        decided = local["error"].isna()
        assert decided.mean() > 0.6 and local.loc[decided, "ambiguous"].astype(bool).any()
        assert {"unit_grid", "road_id", "road_grade", "component_id", "department", "time_limit", "ambiguous",
                "ambiguity_reason", "evidence"} <= set(written.columns)
        picked = written[frame["component_id"].notna().to_numpy()]  # the reports naming their component
        assert picked["component_id"].notna().mean() > 0.9
        assert picked["error"].str.contains("is of class|does not exist").any()


def test_the_scale_assign_command_uses_a_given_scheduler(scratch_url, client, tmp_path):
    lon, lat = 121.5435, 25.0416
    glon, glat = (float(v) for v in wgs84_to_gcj02(lon, lat))
    frame = gpd.GeoDataFrame({"class": ["20102", "20102", "20102"], "accuracy": [8.0, 8.0, 8.0]},
                             geometry=gpd.points_from_xy([glon, 120.0, glon], [glat, 23.0, glat]), crs=4326)
    write_partitioned(frame, tmp_path / "in", partitions=2)
    env = {"GRIDMAP_DATABASE_URL": scratch_url}
    runner = CliRunner()
    result = runner.invoke(app, ["scale", "assign", str(tmp_path / "in"), str(tmp_path / "out"), "--crs", "gcj02",
                                 "--scheduler", client.scheduler.address], env=env)
    assert result.exit_code == 0, result.output
    assert "3 reports in 2 partitions" in flat(result.output) and "1 rejected" in flat(result.output)
    out = read_partitioned(tmp_path / "out").compute()
    assert out["unit_grid"][0].startswith("630030") and "territory" in out["error"][1]
    assert abs(out.geometry.x[0] - lon) < 1e-7

    for args, words in (([str(tmp_path / "nothing"), str(tmp_path / "o2")], "not a folder of Parquet files"),
                        ([str(tmp_path / "in"), str(tmp_path / "o3"), "--crs", "EPSG:99999"], "no such EPSG code"),
                        ([str(tmp_path / "in"), str(tmp_path / "out")], "exists and is not an empty folder")):
        result = runner.invoke(app, ["scale", "assign", *args, "--scheduler", client.scheduler.address], env=env)
        assert result.exit_code == 1 and words in flat(result.output), result.output
        assert "Traceback" not in result.output


def test_an_unreachable_scheduler_is_named():
    with pytest.raises(ConnectionError, match="no dask scheduler answers at tcp://127.0.0.1:9"):
        with connect("tcp://127.0.0.1:9", timeout=1):
            pass


def test_bad_input_is_refused_before_any_work(session, client, tmp_path):
    frame = gpd.GeoDataFrame({"kind": ["x"]}, geometry=gpd.points_from_xy([121.5], [25.0]), crs=4326)
    write_partitioned(frame, tmp_path / "in")
    with pytest.raises(BadReport, match="no 'class' column"):
        assign_partitioned(session=session, client=client, source=tmp_path / "in", target=tmp_path / "out")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.parquet").write_bytes(b"not parquet")
    with pytest.raises(NotPartitioned, match="cannot be read"):
        read_partitioned(tmp_path / "junk")


# ---- KPIs ----------------------------------------------------------------------------------------------

#: the demo history's last day is 2026-11-20: November is still running at this moment
NOW = datetime(2026, 11, 20, 12, tzinfo=timezone(timedelta(hours=8)))
CASES = [("2026-10", "department"), ("2026-10", "unit_grid"), ("2026-W41", "district"), ("2026-Q4", "inspector"),
         ("2026-11-01..2026-11-20", "dispatcher"), ("2026-09", "shift_lead"), ("2026-08", "community"),
         ("2026-10", "street")]


@pytest.fixture(scope="module")
def history(history_url):
    engine = create_engine(history_url, poolclass=pool.NullPool)
    with Session(engine) as session:
        yield session
        session.rollback()
    engine.dispose()


@pytest.fixture(scope="module")
def facts(history, tmp_path_factory):
    directory = tmp_path_factory.mktemp("facts")
    export = export_facts(session=history, directory=directory, now=NOW)
    return directory, export


def assert_same_kpis(distributed: pd.DataFrame, local: pd.DataFrame, by: str) -> None:
    """Counts exactly, rates (and the minutes, a sum of floats in another order) to 1e-12."""
    assert list(distributed.columns) == list(local.columns)
    assert distributed["subject"].tolist() == local["subject"].tolist()
    exact = [c for c in count_columns(by) if c != "disposal_minutes"] + ["subject", "name", "band", "rank"]
    pd.testing.assert_frame_equal(distributed[exact], local[exact], check_exact=True)
    floats = [c for c in local.columns if c not in exact]
    pd.testing.assert_frame_equal(distributed[floats], local[floats], check_exact=False, rtol=1e-12, atol=1e-12)
    assert {k: distributed.attrs[k] for k in ("period", "cutoff", "complete")} == \
        {k: local.attrs[k] for k in ("period", "cutoff", "complete")}


def test_facts_are_written_by_month_as_geoparquet(facts):
    directory, export = facts
    assert export.months == ["2026-08", "2026-09", "2026-10", "2026-11"] and export.rows["cases"] > 5000
    cases = read_partitioned(directory / "cases", filters=[("month", "in", ["2026-10"])]).compute()
    assert cases.crs.to_epsg() == 4326 and cases.geometry.notna().all() and set(cases["month"]) == {"2026-10"}
    local = cases["cohort_at"].dt.tz_convert("Asia/Taipei")
    assert (local.dt.strftime("%Y-%m") == "2026-10").all()
    assert {"filed", "reported", "duty"} <= set(cases["cohort"])


def test_kpis_on_dask_equal_the_postgis_path(history, facts, client):
    directory, _ = facts
    for period, by in CASES:
        local = kpi(session=history, period=period, by=by, now=NOW)
        distributed = kpi_partitioned(session=history, directory=directory, period=period, by=by, now=NOW)
        assert_same_kpis(distributed, local, by)
        assert len(local) > 0 or by == "street", (period, by)  # Taipei has no street level
    with pytest.raises(FactsMissing, match="no facts for 2026-07"):
        kpi_partitioned(session=history, directory=directory, period="2026-07", by="district", now=NOW)


def test_the_scale_kpi_commands(history_url, history, client, tmp_path):
    env, runner = {"GRIDMAP_DATABASE_URL": history_url}, CliRunner()
    result = runner.invoke(app, ["scale", "export-facts", str(tmp_path / "facts"), "--period", "2026-W41"], env=env)
    assert result.exit_code == 0 and "2026-10 to 2026-10" in result.output, result.output
    result = runner.invoke(app, ["scale", "kpi", str(tmp_path / "facts"), "--period", "2026-W41", "--by", "district",
                                 "--as-of", NOW.isoformat(), "--out", str(tmp_path / "kpi.csv"),
                                 "--scheduler", client.scheduler.address], env=env)
    assert result.exit_code == 0 and "KPI 2026-W41 by district" in result.output, result.output
    written = pd.read_csv(tmp_path / "kpi.csv", dtype={"subject": str})
    local = kpi(session=history, period="2026-W41", by="district", now=NOW)
    assert written["subject"].tolist() == local["subject"].tolist()
    assert written["due"].tolist() == local["due"].tolist()
    for args, words in ((["--period", "2026-09"], "no facts for 2026-09"),
                        (["--period", "2026-13"], "period '2026-13'"),
                        (["--period", "2026-10", "--by", "nobody"], "unknown subject 'nobody'")):
        result = runner.invoke(app, ["scale", "kpi", str(tmp_path / "facts"), *args, "--as-of", NOW.isoformat(),
                                     "--scheduler", client.scheduler.address], env=env)
        assert result.exit_code == 1 and words in flat(result.output), result.output
        assert "Traceback" not in result.output
    result = runner.invoke(app, ["scale", "kpi", str(tmp_path), "--period", "2026-10"], env=env)
    assert result.exit_code == 1 and "not an export of KPI facts" in flat(result.output), result.output
