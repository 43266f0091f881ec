"""Hot spots: Getis-Ord Gi* checked by hand on a 3 × 3 lattice, queen contiguity, sub-periods, and a
cluster of cases on the demo city that must come out hot (library and command)."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pyogrio
import pytest
import shapely
from scipy import sparse
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

import gridmap
from gridmap.cli import app
from gridmap.evaluation.hotspots import gi_bin, gi_star, hotspots, queen_weights, sub_periods
from gridmap.evaluation.periods import parse_period

TAIPEI = ZoneInfo("Asia/Taipei")
STATION = (121.5170, 25.0460)  # near Taipei Main Station
FAR = (121.5600, 25.1200)  # Shilin, ~9 km away


def lattice(size: int = 3, side: float = 100.0, gap: float = 0.0) -> np.ndarray:
    """size × size squares, row by row from the top left, ``gap`` metres apart."""
    step = side + gap
    return np.array([shapely.box(c * step, -r * step - side, c * step + side, -r * step)
                     for r in range(size) for c in range(size)])


def test_queen_contiguity_counts_shared_corners_and_tolerates_float_noise():
    weights = queen_weights(lattice())
    # 0 1 2 / 3 4 5 / 6 7 8: a corner has 3 neighbours (two by an edge, the centre by a corner), an edge cell 5,
    # the centre 8
    assert np.diff(weights.indptr).tolist() == [3, 5, 3, 5, 8, 5, 3, 5, 3]
    assert weights[0, 4] == 1 and weights[0, 2] == 0 and (weights != weights.T).nnz == 0
    apart = lattice(gap=1e-6)  # a micrometre apart, like generated cells: neighbours only with a tolerance
    assert queen_weights(apart).nnz == 0
    assert (queen_weights(apart, tolerance=0.01) != weights).nnz == 0


def test_gi_star_matches_the_formula_worked_by_hand():
    # counts 1 … 9 row by row; n = 9, x̄ = 45 / 9 = 5, Σx² = 285, S = √(285/9 − 25) = √(20/3) = 2.581989
    x = np.arange(1, 10, dtype=float)
    weights = queen_weights(lattice()) + sparse.identity(9, format="csr")
    z, p = gi_star(x, weights)
    # corner 0 (value 1) with itself and 1, 3, 4: Σw = 4, Σwx = 1 + 2 + 4 + 5 = 12
    #   z = (12 − 5·4) / (S·√((9·4 − 4²) / 8)) = −8 / (2.581989 · 1.581139) = −8 / 4.082483 = −1.959592
    assert z[0] == pytest.approx(-1.959592, abs=1e-6)
    # corner 8 (value 9) with 4, 5, 7: Σwx = 9 + 5 + 6 + 8 = 28, z = (28 − 20) / 4.082483 = +1.959592
    assert z[8] == pytest.approx(1.959592, abs=1e-6)
    # edge 1 (value 2) with 0, 2, 3, 4, 5: Σw = 6, Σwx = 2 + 1 + 3 + 4 + 5 + 6 = 21
    #   z = (21 − 30) / (S·√((54 − 36) / 8)) = −9 / (2.581989 · 1.5) = −9 / 3.872983 = −2.323790
    assert z[1] == pytest.approx(-2.323790, abs=1e-6)
    # the centre's neighbourhood is the whole lattice: 0 / 0, undefined
    assert np.isnan(z[4]) and np.isnan(p[4])
    # corner 2 (value 3) with 1, 4, 5: Σwx = 3 + 2 + 5 + 6 = 16, z = (16 − 20) / 4.082483 = −0.979796
    assert z[2] == pytest.approx(-0.979796, abs=1e-6)
    # two-sided p = 2 (1 − Φ(|z|)): Φ(1.959592) = 0.974978 → 0.050044, just outside 95 %; Φ(2.323790) = 0.989932
    assert p[0] == pytest.approx(0.050044, abs=2e-6) and p[1] == pytest.approx(0.020137, abs=2e-6)
    # Gi_Bin: corner 0 is a 90 % cold spot (p < 0.10 but not < 0.05), corner 8 a 90 % hot spot, edge 1 a 95 %
    # cold spot and edge 7 (value 8, the mirror image) a 95 % hot spot; the rest is not significant
    assert gi_bin(z, p).tolist() == [-1, -2, 0, 0, 0, 0, 0, 2, 1]


def test_gi_bin_levels_and_flat_data():
    z = np.array([3.0, 2.0, 1.7, 1.0, -2.6, np.nan])
    p = 2 * (1 - np.array([0.99865, 0.97725, 0.95543, 0.84134, 0.99534, np.nan]))
    assert gi_bin(z, p).tolist() == [3, 2, 1, 0, -3, 0]
    z, p = gi_star(np.zeros(9), queen_weights(lattice()) + sparse.identity(9, format="csr"))
    assert np.isnan(z).all() and (gi_bin(z, p) == 0).all()  # no cases at all: nothing is significant


def test_the_weeks_of_a_month_are_iso_weeks_cut_at_its_ends():
    october = parse_period("2026-10", tz=TAIPEI)  # 1 October 2026 is a Thursday
    edges = sub_periods(october.start, october.end, "week")
    assert [e.strftime("%m-%d") for e in edges] == ["10-01", "10-05", "10-12", "10-19", "10-26", "11-01"]
    assert all(e.tzinfo is not None and e.hour == 0 for e in edges)
    assert len(sub_periods(october.start, october.end, "day")) == 32


def insert_cases(connection, points: list[tuple[float, float]], times: list[datetime], *, class_code="0102",
                 case_type="event", status="reported", prefix="H") -> int:
    """One case per (grid under a point) × time: straight into case_file, as an import would put them."""
    return connection.execute(text("""
        INSERT INTO case_file (number, source, status, case_type, class_code, reported_at, geom, unit_grid,
                               community, district, evidence)
        SELECT left(:prefix || md5(g.code || t.at::text || :class_code || :status), 20), 'inspector', :status,
               :case_type, :class_code, t.at, ST_PointOnSurface(g.geom), g.code, c.code, left(c.code, 6), '{}'
        FROM unit_grid g JOIN community c ON c.id = g.community_id
        CROSS JOIN unnest(CAST(:times AS timestamptz[])) AS t(at)
        WHERE g.valid_to IS NULL AND g.code IN (
            SELECT g2.code FROM unit_grid g2, unnest(CAST(:xs AS float8[]), CAST(:ys AS float8[])) AS p(x, y)
            WHERE g2.valid_to IS NULL AND ST_Intersects(g2.geom, ST_SetSRID(ST_MakePoint(p.x, p.y), 4326)))"""),
        {"prefix": prefix, "class_code": class_code, "case_type": case_type, "status": status, "times": times,
         "xs": [x for x, _ in points], "ys": [y for _, y in points]}).rowcount


def cluster_codes(connection) -> list[str]:
    """The grid at the station and its queen neighbours (cells within 1 cm)."""
    return connection.execute(text("""
        SELECT n.code FROM unit_grid g JOIN unit_grid n ON ST_DWithin(n.geom, g.geom, 1e-7) AND n.valid_to IS NULL
        WHERE g.valid_to IS NULL AND ST_Intersects(g.geom, ST_SetSRID(ST_MakePoint(:x, :y), 4326)) ORDER BY n.code"""),
        {"x": STATION[0], "y": STATION[1]}).scalars().all()


def october_history(connection) -> list[str]:
    """Three 暴露垃圾 cases a week in four weeks of October in the station's grid and each of its neighbours,
    one case each in a scatter of grids across the city, and cases that must not count."""
    codes = cluster_codes(connection)
    points = connection.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM "
                                     "unit_grid WHERE code = ANY(:c)) t"), {"c": codes}).all()
    weekly = [datetime(2026, 10, day, hour, tzinfo=TAIPEI) for day in (5, 12, 19, 26) for hour in (9, 11, 15)]
    assert insert_cases(connection, points, weekly) == len(codes) * 12
    scatter = connection.execute(text(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p, row_number() OVER (ORDER BY code) AS i "
        "FROM unit_grid WHERE valid_to IS NULL AND code <> ALL(:c)) t WHERE i % 61 = 0"), {"c": codes}).all()
    insert_cases(connection, scatter + [FAR], [datetime(2026, 10, 7, 10, tzinfo=TAIPEI)], prefix="S")
    # not counted: a voided case, a component case (0102 污水井盖) when asking for events, September
    insert_cases(connection, [STATION], [datetime(2026, 10, 8, 10, tzinfo=TAIPEI)], status="voided", prefix="V")
    insert_cases(connection, [STATION], [datetime(2026, 10, 8, 11, tzinfo=TAIPEI)], case_type="component", prefix="C")
    insert_cases(connection, [STATION], [datetime(2026, 9, 30, 23, 59, tzinfo=TAIPEI)], prefix="P")
    return codes


def test_a_cluster_of_cases_comes_out_hot_on_the_demo_city(session):
    codes = october_history(session.connection())
    assert 6 <= len(codes) <= 12
    grids = hotspots(session=session, period="2026-10", class_code="20102")
    assert len(grids) == session.execute(text("SELECT count(*) FROM unit_grid WHERE valid_to IS NULL")).scalar()
    assert grids.crs.to_epsg() == 4326 and grids.attrs["cases_outside"] == 0
    cluster = grids[grids["code"].isin(codes)].set_index("code")
    assert (cluster["cases"] == 12).all() and (cluster["active_periods"] == 4).all() and cluster["recurring"].all()
    assert (cluster["gi_bin"] == 3).all() and (cluster["gi_p"] < 0.01).all()
    assert np.allclose(cluster["density_km2"], 12 / cluster["area_km2"])
    assert grids.iloc[0]["code"] in codes  # hottest first
    far = grids[grids.contains(shapely.Point(FAR))].iloc[0]
    assert (far["cases"], far["active_periods"], bool(far["recurring"]), far["gi_bin"]) == (1, 1, False, 0)
    scattered = session.execute(text("SELECT count(*) FROM case_file WHERE number LIKE 'S%'")).scalar()
    assert int(grids["cases"].sum()) == grids.attrs["cases"] == len(codes) * 12 + scattered
    assert not grids.loc[~grids["code"].isin(codes), "recurring"].any()
    assert set(grids.columns) >= {"code", "cases", "density_km2", "active_periods", "recurring", "neighbours",
                                  "gi_z", "gi_p", "gi_bin", "hotspot", "hotspot_zh", "geom"}
    # without the class filter the component case counts too; a district is its own study area
    everything = hotspots(session=session, period="2026-10").set_index("code")
    assert everything["cases"].sum() == grids["cases"].sum() + 1
    district = codes[0][:6]
    local = gridmap.hotspots(session=session, period="2026-10", class_code="20102", district=district, every="day")
    assert (local["district_code"] == district).all() and len(local.attrs["subperiods"]) == 31
    assert local.set_index("code").loc[codes[0], "gi_bin"] == 3


def test_a_period_without_cases_has_no_hot_spots(session):
    grids = hotspots(session=session, period="2025-01-01..2025-01-03", district="630050")
    assert len(grids) and (grids["cases"] == 0).all() and not grids["recurring"].any()
    assert grids["gi_z"].isna().all() and (grids["gi_bin"] == 0).all() and set(grids["hotspot"]) == {"not significant"}
    assert len(grids.attrs["subperiods"]) == 3  # a 3-day range is cut into days


def test_hotspots_command_prints_the_top_grids_and_writes_the_layer(scratch_url, tmp_path):
    engine = create_engine(scratch_url)
    try:
        with engine.begin() as connection:
            codes = october_history(connection)
    finally:
        engine.dispose()
    runner = CliRunner()
    out = tmp_path / "hot.gpkg"
    env = {"GRIDMAP_DATABASE_URL": scratch_url, "COLUMNS": "160"}
    result = runner.invoke(app, ["hotspots", "--period", "2026-10", "--class", "20102", "--out", str(out)], env=env)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert f"{len(codes)} recurring problem grids" in result.stdout
    printed = re.findall(r"^ ?([0-9]{15}) ", result.stdout, flags=re.MULTILINE)
    assert len(printed) == 10 and printed[0] in codes  # hottest first: the station's grid
    info = pyogrio.read_info(out)
    frame = pyogrio.read_dataframe(out)
    assert pyogrio.list_layers(out)[0][0] == "hotspots"
    assert len(frame) == info["features"] > 18_000 and info["crs"] == "EPSG:4326"
    assert "OpenStreetMap" in info["layer_metadata"]["attribution"]
    assert set(frame.loc[frame["code"].isin(codes), "gi_bin"]) == {3}
    bad = runner.invoke(app, ["hotspots", "--period", "2026-13"], env=env)
    assert bad.exit_code == 1 and "month must be in 1..12" in bad.stderr and "Traceback" not in bad.stdout
    ambiguous = runner.invoke(app, ["hotspots", "--period", "2026-10", "--class", "0102"], env=env)
    assert ambiguous.exit_code == 1 and "write 10102 or 20102" in " ".join(ambiguous.stderr.split())
