"""Historical case imports (gridmap cases import): the real Taipei 1999 hotline file, coordinate systems,
rejected rows, re-imports, the working-time arithmetic and the KPIs of imported cases."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import shapely
from psycopg.errors import DataError
from pyproj import Transformer
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from gridmap.calendar.service import get_calendar
from gridmap.cases import imports
from gridmap.cases.imports import CHUNK, CaseImportRejected, _chunks, import_cases
from gridmap.cases.imports_checks import micros
from gridmap.cases.imports_clock import NAT, Timeline
from gridmap.cases.imports_indexes import LOCK_TIMEOUT
from gridmap.cases.imports_mapping import CaseMapping, load_mapping, parse_mapping
from gridmap.cases.imports_route import _kept
from gridmap.cases.imports_copy import Column, copy_rows
from gridmap.cli import app
from gridmap.crs import wgs84_to_gcj02
from gridmap.io.exceptions import ImportFailed
from gridmap.routing.service import assign_one

TAIPEI_1999 = str(Path(__file__).parents[1] / "data/taipei/hotline_1999.geojson")  # the real 1999 file, as shipped
MAPPING = "data/examples/taipei_1999_mapping.yaml"
TAIPEI = ZoneInfo("Asia/Taipei")
NOW = datetime(2026, 11, 21, 12, tzinfo=timezone.utc)
#: places in central Taipei inside unit grids (lon, lat)
PLACES = [(121.5190, 25.0450), (121.5435, 25.0416), (121.5300, 25.0330), (121.5600, 25.0400),
          (121.5120, 25.0380), (121.5500, 25.0600)]
COLUMNS = {"number": "no", "class": "kind", "opened": "opened", "due": "due", "handled": "handled",
           "closed": "closed", "department": "unit", "x": "lon", "y": "lat"}


def frame(rows: list[dict]) -> pd.DataFrame:
    base = {"no": None, "kind": "20102", "opened": None, "due": None, "handled": None, "closed": None, "unit": None,
            "lon": PLACES[0][0], "lat": PLACES[0][1]}
    return pd.DataFrame([base | row for row in rows])


def plain(value):
    return None if not isinstance(value, str) and pd.isna(value) else value


def imported(session, origin: str) -> pd.DataFrame:
    return pd.read_sql(text("SELECT *, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM case_file WHERE origin = :o "
                            "ORDER BY external_number"), session.connection(), params={"o": origin})


def test_taipei_hotline_cases_are_routed_like_single_decisions(session):
    report = import_cases(session=session, data=TAIPEI_1999, mapping=load_mapping(MAPPING), now=NOW)
    assert report.rows_read == 2817 and report.inserted == 2817 and report.rejected == []
    # 人孔蓋…處理 is spelt with the compatibility ideograph 理 (U+F9E4) in the file: matched all the same
    assert report.local_class == 103 and report.open == 2817  # 動物救援 kept local; the file has no closed times
    cases = imported(session, "taipei1999")
    assert len(cases) == 2817 and cases["number"].str.fullmatch(r"I2023(05|06)\d{2}\d{6,}").all()
    assert (cases["source"] == "import").all() and (cases["status"] == "dispatched").all()
    assert cases["unit_grid"].notna().all() and cases["department"].notna().all()
    raw = gpd.read_file(TAIPEI_1999)
    raw = raw.set_index(raw["案件編號"].astype(str))
    opened = pd.to_datetime(raw.loc[cases["external_number"], "成案時間"]).dt.tz_localize(TAIPEI)
    assert (cases["reported_at"].to_numpy() == opened.dt.tz_convert("UTC").to_numpy()).all()
    assert (cases["filed_at"] == cases["reported_at"]).all() and (cases["dispatched_at"] == cases["reported_at"]).all()

    calendar = get_calendar(session=session)
    sample = cases[cases["local_class"].isna()].sample(25, random_state=4)
    for case in sample.itertuples():
        code = ("1" if case.case_type == "component" else "2") + case.class_code
        single = assign_one(session=session, x=case.lon, y=case.lat, class_code=code)
        for name in ("unit_grid", "duty_grid", "district", "road_id", "component_id", "rule", "time_limit_unit"):
            assert plain(getattr(case, name)) == single[name], (case.external_number, name)
        assert case.proposed_department == case.department == single["department"]
        assert float(case.time_limit) == single["time_limit"]
        limit = calendar.to_duration(single["time_limit"], single["time_limit_unit"])
        assert case.disposal_deadline == calendar.add_working_time(case.dispatched_at, limit)
        assert case.evidence["imported"] == {"origin": "taipei1999", "file": "hotline_1999.geojson",
                                             "row": int(raw.index.get_loc(case.external_number)) + 1}

    local = cases[cases["local_class"].notna()]
    assert (local["local_class"] == "動物救援").all() and local["class_code"].isna().all()
    assert local["disposal_deadline"].isna().all() and (local["rule"] == "属地兜底: local class").all()
    responsible = dict(session.execute(text(
        "SELECT g.code, d.code FROM unit_grid g JOIN department d ON d.id = g.responsible_department_id "
        "WHERE g.code = ANY(:codes)"), {"codes": list(local["unit_grid"])}).all())
    assert (local["department"] == local["unit_grid"].map(responsible)).all()


def test_a_projected_file_labelled_wrongly_is_fixed_by_crs_and_gcj02_is_normalised(session, tmp_path):
    to_twd97 = Transformer.from_crs(4326, 3826, always_xy=True)
    lon, lat = np.array(PLACES).T
    x, y = to_twd97.transform(lon, lat)
    rows = pd.DataFrame({"no": [f"P{k}" for k in range(len(x))], "kind": "20104", "opened": "2026-10-05 09:00"})
    mapping = CaseMapping(columns={"number": "no", "class": "kind", "opened": "opened"})
    csv = tmp_path / "projected.csv"
    rows.assign(x=x, y=y).to_csv(csv, index=False)
    with pytest.raises(ImportFailed, match="declares no CRS and its x/y are not longitude/latitude"):
        import_cases(session=session, data=csv, origin="csv", mapping=mapping, now=NOW)

    wrong = tmp_path / "labelled_3857.gpkg"  # TWD97 metres under a Web Mercator label
    gpd.GeoDataFrame(rows, geometry=shapely.points(x, y), crs=3857).to_file(wrong)
    report = import_cases(session=session, data=wrong, origin="gpkg", mapping=mapping, now=NOW)
    assert report.inserted == 0 and {(i.field, i.reason) for i in report.rejected} == {
        ("location", "outside the city's territory")}
    assert "is the coordinate system right?" in " ".join(report.notes)
    fixed = import_cases(session=session, data=wrong, origin="gpkg", mapping=mapping.overridden(crs="EPSG:3826"),
                         now=NOW)
    assert fixed.inserted == len(PLACES) and fixed.rejected == []

    glon, glat = wgs84_to_gcj02(lon, lat)  # a phone map's coordinates, ≈ 500 m off in Taipei
    shifted = tmp_path / "gcj02.csv"
    rows.assign(x=glon, y=glat).to_csv(shifted, index=False)
    import_cases(session=session, data=shifted, origin="gcj", mapping=mapping.overridden(crs="gcj02"), now=NOW)
    import_cases(session=session, data=csv, origin="csv", mapping=mapping.overridden(crs="EPSG:3826"), now=NOW)
    cases = {origin: imported(session, origin) for origin in ("gpkg", "gcj", "csv")}
    for origin in ("gcj", "csv"):
        assert list(cases[origin]["unit_grid"]) == list(cases["gpkg"]["unit_grid"])
        assert np.allclose(cases[origin]["lon"], lon, atol=1e-7) and np.allclose(cases[origin]["lat"], lat, atol=1e-7)
    assert set(cases["gcj"]["reported_crs"]) == {"gcj02"} and set(cases["csv"]["reported_crs"]) == {"EPSG:3826"}


def test_unusable_rows_are_reported_with_their_row_field_and_reason(session):
    rows = frame([
        {"no": "A1", "opened": "2026-10-05 09:00"},                                   # 1 fine
        {"no": "A2", "opened": "2026-10-05 09:00", "lon": None, "lat": None},         # 2 no location
        {"no": "A3", "opened": "2026-10-05 09:00", "lon": "east", "lat": 25.04},      # 3 x not a number
        {"no": "A4", "opened": "2026-10-05 09:00", "lon": 120.2, "lat": 22.99},       # 4 Tainan: outside
        {"no": "A5", "opened": "2026-10-05 09:00", "kind": "井盖冒水"},                  # 5 unknown class
        {"no": "A6", "opened": "5 Oct 2026"},                                          # 6 not a timestamp
        {"no": "A7", "opened": "2026-10-05 09:00", "closed": "2026-10-04 09:00"},      # 7 closed before opened
        {"no": "A1", "opened": "2026-10-05 09:00"},                                   # 8 duplicate number
        {"no": None, "opened": "2026-10-05 09:00"},                                   # 9 no number
        {"no": "A10", "opened": "2026-10-05 09:00", "unit": "Parks Dept."},            # 10 unknown department
        {"no": "A11", "opened": "2027-01-05 09:00"},                                   # 11 in the future
    ])
    mapping = CaseMapping(columns=COLUMNS)
    with pytest.raises(CaseImportRejected) as strict:
        import_cases(session=session, data=rows, origin="bad", mapping=mapping, strict=True, now=NOW)
    assert len(strict.value.report.rejected) == 10 and imported(session, "bad").empty

    report = import_cases(session=session, data=rows, origin="bad", mapping=mapping, now=NOW)
    found = {(i.row, i.field): (i.reason, i.value) for i in report.rejected}
    assert found == {
        (2, "location"): ("no location (no point geometry, or empty x/y)", None),
        (3, "lon"): ("not a number", "east"),
        (4, "location"): ("outside the city's territory", "120.2, 22.99"),
        (5, "class"): ("unknown class 井盖冒水: map it under classes: in the mapping file, or keep it with "
                       "--keep-local", "井盖冒水"),
        (6, "opened"): (found[6, "opened"][0], "5 Oct 2026"),
        (7, "closed"): ("before opened", "2026-10-04T01:00:00Z"),
        (8, "number"): ("duplicate number, first at row 1", "A1"),
        (9, "number"): ("missing (required: it recognises the case on re-import)", None),
        (10, "department"): ("unknown department: map it under departments: in the mapping file", "Parks Dept."),
        (11, "opened"): ("in the future", "2027-01-05T01:00:00Z"),
    }
    assert found[6, "opened"][0].startswith("not a timestamp (ISO 8601")
    assert report.inserted == 1 and list(imported(session, "bad")["external_number"]) == ["A1"]
    assert "<dataframe>, row 5, field class: unknown class 井盖冒水" in "\n".join(report.lines())
    assert ("location", "outside the city's territory", 1) in report.by_reason()

    kept = import_cases(session=session, data=rows.iloc[[4]], origin="local", mapping=mapping, keep_local=True,
                        now=NOW)
    assert kept.local_class == 1 and imported(session, "local")["local_class"].tolist() == ["井盖冒水"]


def test_a_reimport_updates_changed_cases_and_never_duplicates(session, monkeypatch):
    monkeypatch.setattr("gridmap.cases.imports.CHUNK", 4)  # pieces of 1 to 3 rows, the changed ones updated together
    rows = frame([{"no": f"R{k}", "opened": "2026-10-05 09:00", "lon": lon, "lat": lat}
                  for k, (lon, lat) in enumerate(PLACES)])
    mapping = CaseMapping(columns=COLUMNS)
    first = import_cases(session=session, data=rows, origin="again", mapping=mapping, now=NOW)
    again = import_cases(session=session, data=rows, origin="again", mapping=mapping, now=NOW)
    assert (first.inserted, again.inserted, again.unchanged, again.updated) == (6, 0, 6, 0)
    before = imported(session, "again").set_index("external_number")

    # someone worked on R1 in gridmap since; R0 closed in the other system; R5 is new
    session.execute(text("INSERT INTO case_event (case_id, action, from_status, to_status, at) "
                         "VALUES (:id, 'park', 'dispatched', 'parked', now())"), {"id": int(before.loc["R1", "id"])})
    rows.loc[[0, 1], "closed"] = "2026-10-05 10:00"
    rows = pd.concat([rows, frame([{"no": "R6", "opened": "2026-10-06 09:00"}])], ignore_index=True)
    third = import_cases(session=session, data=rows, origin="again", mapping=mapping, now=NOW)
    assert (third.inserted, third.updated, third.unchanged, third.kept) == (1, 1, 4, 1)
    after = imported(session, "again").set_index("external_number")
    assert len(after) == 7 and after.loc["R0", "status"] == "closed" and after.loc["R0", "version"] == 2
    assert after.loc["R0", "number"] == before.loc["R0", "number"] and after.loc["R0", "close_kind"] == "normal"
    assert after.loc["R1", "status"] == "dispatched" and after.loc["R1", "version"] == 1


def test_statuses_of_the_other_system_are_mapped_and_checked(session):
    rows = frame([{"no": "S1", "state": "已结案", "closed": "2026-10-05 11:00"},
                  {"no": "S2", "state": "已作废"},
                  {"no": "S3", "state": "待核查", "handled": "2026-10-05 10:00"},
                  {"no": "S4", "state": "待核查"},                                    # handled, but when?
                  {"no": "S5", "state": "处置中", "closed": "2026-10-05 11:00"},      # open, yet closed
                  {"no": "S6", "state": "挂起"}]).assign(opened="2026-10-05 09:00")  # nobody mapped it
    mapping = CaseMapping(columns=COLUMNS | {"status": "state"},
                          statuses={"已结案": "closed", "已作废": "voided", "待核查": "handled", "处置中": "dispatched"})
    report = import_cases(session=session, data=rows, origin="states", mapping=mapping, now=NOW)
    assert {(i.row, i.field, i.reason) for i in report.rejected} == {
        (4, "handled", "missing: the status says it was handled"),
        (5, "status", "says open, but the case has a closed time"),
        (6, "status", "unknown status: map it under statuses: (to filed, dispatched, handled, checked, closed, "
                      "rejected, voided)")}
    cases = imported(session, "states").set_index("external_number")
    assert cases["status"].to_dict() == {"S1": "closed", "S2": "voided", "S3": "handled"}
    assert pd.isna(cases.loc["S2", "closed_at"]) and pd.isna(cases.loc["S2", "stage_deadline"])
    assert pd.isna(cases.loc["S1", "stage_deadline"]) and cases.loc["S1", "close_kind"] == "normal"
    calendar = get_calendar(session=session)  # handled: the check (核查) is due 30 working minutes later
    handled = datetime(2026, 10, 5, 10, tzinfo=TAIPEI)
    assert cases.loc["S3", "stage_deadline"] == calendar.add_working_time(handled, timedelta(minutes=30))
    assert cases.loc["S3", "handled_at"] == handled and pd.isna(cases.loc["S3", "close_kind"])


def test_imported_closed_cases_count_in_the_kpis_like_native_ones(session):
    from gridmap.evaluation.service import kpi

    # 5 cases of the road maintenance unit SZ in 2026-10 (Taipei local time), all in one grid
    rows = frame([
        {"no": "K1", "opened": "2026-10-05 09:00", "due": "2026-10-06 09:00", "closed": "2026-10-05 15:00"},  # on time
        {"no": "K2", "opened": "2026-10-05 09:00", "due": "2026-10-06 09:00", "closed": "2026-10-07 10:00"},  # late
        {"no": "K3", "opened": "2026-10-12 10:00", "due": "2026-10-13 10:00"},                # open, overdue
        {"no": "K4", "opened": "2026-10-20 09:00", "due": "2026-12-01 09:00"},                # open, not yet due
        {"no": "K5", "opened": "2026-10-21 09:00", "closed": "2026-10-21 10:30"},             # the catalogue's limit
    ]).assign(unit="SZ", kind="20401")
    report = import_cases(session=session, data=rows, origin="kpi", mapping=CaseMapping(columns=COLUMNS), now=NOW)
    assert report.inserted == 5 and (report.closed, report.open) == (3, 2)
    cases = imported(session, "kpi").set_index("external_number")
    assert {k: plain(v) for k, v in cases["close_kind"].items()} == {
        "K1": "normal", "K2": "overdue", "K3": None, "K4": None, "K5": "normal"}
    calendar, k5 = get_calendar(session=session), cases.loc["K5"]
    limit = calendar.to_duration(float(k5["time_limit"]), k5["time_limit_unit"])
    assert limit >= timedelta(hours=2)  # 路面塌陷: 2, 4 or 8 working hours by area class
    assert k5["disposal_deadline"] == calendar.add_working_time(datetime(2026, 10, 21, 9, tzinfo=TAIPEI), limit)
    # by hand, at the end of October: due = handled (K1, K2, K5) + overdue and unhandled (K3) = 4
    department = kpi(session=session, period="2026-10", by="department", now=NOW).set_index("subject").loc["SZ"]
    assert (department["due"], department["handled"], department["handled_on_time"]) == (4, 3, 2)
    assert department["closed_rate"] == pytest.approx(3 / 4)
    assert department["handled_on_time_rate"] == pytest.approx(2 / 4)  # 按时处置率
    district = kpi(session=session, period="2026-10", by="unit_grid", now=NOW).set_index("subject")
    grid = district.loc[cases["unit_grid"].iloc[0]]
    assert (grid["due"], grid["closed"], grid["closed_on_time"]) == (4, 3, 2)
    assert grid["closed_on_time_rate"] == pytest.approx(2 / 4)  # 按期结案率


def test_a_bulk_import_rebuilds_the_indexes_or_keeps_them_when_the_table_is_busy(session, engine, monkeypatch):
    indexes = text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'case_file' ORDER BY indexname")
    before = session.execute(indexes).all()
    rows = frame([{"no": f"B{k}", "opened": "2026-10-05 09:00", "lon": lon, "lat": lat}
                  for k, (lon, lat) in enumerate(PLACES)])
    mapping = CaseMapping(columns=COLUMNS)
    monkeypatch.setattr("gridmap.cases.imports_indexes.LOCK_TIMEOUT", "200ms")
    with engine.connect() as reader:  # someone reading cases: the import gets no exclusive lock
        reader.execute(text("SELECT count(*) FROM case_file"))
        busy = import_cases(session=session, data=rows, origin="bulk", mapping=mapping, rebuild_indexes=True, now=NOW)
        reader.rollback()
    assert not busy.indexes_rebuilt and busy.inserted == len(PLACES)
    assert "case_file is in use" in " ".join(busy.notes) and session.execute(indexes).all() == before

    # nobody else reading: dropped and built again, the same indexes (this transaction holds the lock now).
    # The import's own timeout again: an autovacuum of case_file (after the earlier tests' inserts) gives way
    # only to a lock waited for longer than deadlock_timeout (1 s), not to one given up after 200 ms.
    monkeypatch.setattr("gridmap.cases.imports_indexes.LOCK_TIMEOUT", LOCK_TIMEOUT)
    report = import_cases(session=session, data=rows.assign(no=rows["no"] + "x"), origin="bulk", mapping=mapping,
                          rebuild_indexes=True, now=NOW)
    assert report.indexes_rebuilt and report.inserted == len(PLACES)
    assert session.execute(indexes).all() == before
    assert session.execute(text("SHOW lock_timeout")).scalar_one() == "0"  # the import's own timeout is gone
    assert len(imported(session, "bulk")) == 2 * len(PLACES)


CASE_FILE_SHAPE = text("""
    SELECT 'index ' || indexname || ': ' || indexdef FROM pg_indexes WHERE tablename = 'case_file'
    UNION ALL SELECT 'constraint ' || conname || ' ' || convalidated || ': ' || pg_get_constraintdef(oid)
    FROM pg_constraint WHERE conrelid = 'case_file'::regclass OR confrelid = 'case_file'::regclass ORDER BY 1""")


def chunked_rows(count: int, prefix: str) -> pd.DataFrame:
    """``count`` good rows over the central places, numbered ``prefix``0 …"""
    return frame([{"no": f"{prefix}{k}", "opened": "2026-10-05 09:00", "lon": PLACES[k % len(PLACES)][0],
                   "lat": PLACES[k % len(PLACES)][1]} for k in range(count)])


def test_a_pipelined_import_reports_rejected_rows_of_every_chunk(session, monkeypatch):
    monkeypatch.setattr("gridmap.cases.imports.CHUNK", 8)  # 30 rows: pieces of 4, 8, 8, 5 and 5 rows
    rows = chunked_rows(30, "P")
    rows.loc[[2, 17, 29], ["lon", "lat"]] = [120.2, 22.99]  # outside the city, in the first, a middle, the last piece
    mapping = CaseMapping(columns=COLUMNS)
    shape, count = session.execute(CASE_FILE_SHAPE).scalars().all(), text("SELECT count(*) FROM case_file")
    before, steps = session.execute(count).scalar_one(), []
    with pytest.raises(CaseImportRejected) as strict:
        import_cases(session=session, data=rows, origin="piped", mapping=mapping, strict=True, rebuild_indexes=True,
                     now=NOW)
    assert [i.row for i in strict.value.report.rejected] == [3, 18, 30]
    assert session.execute(count).scalar_one() == before and session.execute(CASE_FILE_SHAPE).scalars().all() == shape

    report = import_cases(session=session, data=rows, origin="piped", mapping=mapping, rebuild_indexes=True, now=NOW,
                          progress=lambda phase, done: steps.append(done))
    assert [i.row for i in report.rejected] == [3, 18, 30] and report.inserted == 27 and report.indexes_rebuilt
    cases = imported(session, "piped")
    assert sorted(cases["external_number"]) == sorted(f"P{k}" for k in range(30) if k not in (2, 17, 29))
    assert cases["id"].is_unique and cases["number"].is_unique and cases["unit_grid"].notna().all()
    assert session.execute(CASE_FILE_SHAPE).scalars().all() == shape  # indexes and constraints all back
    assert steps == sorted(steps) and steps[-1] == 1.0 and len(steps) > 6  # the bar moves on with each piece


@pytest.mark.parametrize("where", ["database", "python"])
def test_an_import_failing_midway_leaves_case_file_as_it_was(session, monkeypatch, where):
    monkeypatch.setattr("gridmap.cases.imports.CHUNK", 8)
    rows = chunked_rows(30, "F")
    shape, count = session.execute(CASE_FILE_SHAPE).scalars().all(), text("SELECT count(*) FROM case_file")
    before, threads = session.execute(count).scalar_one(), threading.active_count()
    calls, case_columns = [], imports.case_columns

    def failing(rows_, *args, **kwargs):  # the third piece goes wrong, after two went to the COPY
        calls.append(1)
        cases = case_columns(rows_, *args, **kwargs)
        if len(calls) == 3 and where == "python":
            raise RuntimeError("broken piece")
        if len(calls) == 3:
            cases["unit_grid"] = np.full(len(cases["unit_grid"]), "X" * 40, dtype=object)  # too long: varchar(15)
        return cases

    monkeypatch.setattr(imports, "case_columns", failing)
    with pytest.raises(RuntimeError if where == "python" else DataError):
        import_cases(session=session, data=rows, origin="failing", mapping=CaseMapping(columns=COLUMNS),
                     rebuild_indexes=True, now=NOW)
    assert session.execute(count).scalar_one() == before  # the session goes on: only the import was undone
    assert session.execute(CASE_FILE_SHAPE).scalars().all() == shape and imported(session, "failing").empty
    assert threading.active_count() == threads  # the COPY thread has ended


def test_a_decision_held_by_arrow_in_pieces_is_passed_on_whole():
    pieces = pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([["6301"], ["6302", None]], pa.large_string())))
    kept = _kept(pieces)
    assert isinstance(kept, pa.Array) and kept.to_pylist() == ["6301", "6302", None]
    assert list(_kept(pd.Series(["a", None], dtype=object))) == ["a", None]


def test_chunks_start_small_and_end_small():
    for count in (0, 1, 4, 5, 9, 30, 1000):
        pieces = _chunks(np.arange(count))
        assert np.array_equal(np.concatenate([np.arange(0), *pieces]), np.arange(count))
        assert all(len(piece) <= CHUNK for piece in pieces) and len(pieces[0] if pieces else []) <= CHUNK // 2 + CHUNK // 4
    sizes = [len(piece) for piece in _chunks(np.arange(1_000_000))]
    assert sizes[0] == CHUNK // 2 and max(sizes) == CHUNK and sizes[-1] < CHUNK // 2 and min(sizes) >= CHUNK // 4


def test_the_cli_imports_reports_and_writes_rejects(scratch_url, tmp_path):
    rows = frame([{"no": "C1", "opened": "2026-10-05T09:00:00+08:00"},
                  {"no": "C2", "opened": "2026-10-05 09:00", "kind": "20999"}])
    path = tmp_path / "cases.csv"
    rows.to_csv(path, index=False)
    args = ["cases", "import", str(path), "--origin", "cli", "--rejects", str(tmp_path / "rejects.csv"),
            *(f"--map={field}={column}" for field, column in COLUMNS.items())]
    env = {"GRIDMAP_DATABASE_URL": scratch_url, "COLUMNS": "200"}
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "imported (new)" in result.stdout and "unknown event class 0999" in result.stdout
    rejects = pd.read_csv(tmp_path / "rejects.csv")
    assert rejects[["row", "field"]].values.tolist() == [[2, "class"]]
    strict = CliRunner().invoke(app, [*args, "--strict"], env=env)
    assert strict.exit_code == 1 and "strict import: nothing was imported" in strict.stderr
    engine = create_engine(scratch_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM case_file WHERE origin = 'cli'")).scalar_one() == 1
    engine.dispose()
    unplaced = CliRunner().invoke(app, ["cases", "import", str(path), "--origin", "cli"], env=env)
    assert unplaced.exit_code == 1 and "no location: the file has no geometry and no x/y columns" in unplaced.stderr
    unmapped = CliRunner().invoke(app, ["cases", "import", str(path), "--origin", "cli", "--map", "x=lon",
                                        "--map", "y=lat"], env=env)
    assert unmapped.exit_code == 1 and "no column for ['number', 'class']" in unmapped.stderr


def test_the_mapping_file_is_checked_before_any_row(session, tmp_path):
    with pytest.raises(ImportFailed, match="write codes in quotes"):
        parse_mapping({"classes": {"垃圾": 102}})
    with pytest.raises(ImportFailed, match=r"unknown keys \['class'\]"):
        parse_mapping({"class": {}})
    with pytest.raises(ImportFailed, match="classes: 垃圾 → 0999: unknown class 0999"):
        import_cases(session=session, data=frame([{"no": "M1", "opened": "2026-10-05 09:00"}]), origin="m",
                     mapping=parse_mapping({"columns": COLUMNS, "classes": {"垃圾": "0999"}}), now=NOW)
    with pytest.raises(ImportFailed, match="--origin"):
        import_cases(session=session, data=frame([]), mapping=CaseMapping(columns=COLUMNS), now=NOW)


def test_working_time_for_whole_columns_is_the_calendars(session):
    calendar = get_calendar(session=session)
    rng = np.random.default_rng(11)
    start = int(datetime(2026, 9, 20, tzinfo=timezone.utc).timestamp() * 1e6)
    moments = start + rng.integers(0, 60 * 86_400, 400) * 1_000_000
    edges = [datetime(2026, 10, 8, h, m, tzinfo=TAIPEI) for h, m in ((8, 30), (12, 30), (13, 30), (17, 30), (7, 0))]
    moments[:5] = [int(e.timestamp() * 1e6) for e in edges]  # window edges; 10-09 is a holiday
    minutes = rng.choice([0.0, 10, 30, 240, 480, 960, 7200, 1234.5], 400)
    minutes[:5] = [0, 0, 240, 240, 480]
    ends = moments + rng.integers(0, 20 * 86_400, 400) * 1_000_000
    timeline = Timeline.covering(calendar, np.concatenate([moments, ends]), float(minutes.max()))
    added, between = timeline.add(moments, minutes), timeline.minutes_between(moments, ends)

    def moment(value: int) -> datetime:
        return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=int(value))

    for k in range(400):
        assert moment(added[k]) == calendar.add_working_time(moment(moments[k]), timedelta(minutes=minutes[k]))
        expected = calendar.working_time_between(moment(moments[k]), moment(ends[k])).total_seconds() / 60
        assert between[k] == pytest.approx(expected, abs=1e-6)
    assert timeline.add(np.array([NAT]), np.array([5.0]))[0] == NAT
    assert np.isnan(timeline.minutes_between(np.array([moments[0]]), np.array([NAT]))[0])


def test_binary_copy_writes_every_kind_and_null(session):
    cursor = session.connection().connection.driver_connection.cursor()
    session.execute(text("CREATE TEMP TABLE copied (t text, j jsonb, m timestamptz, f float8, i int4, b bool, "
                         "g geometry(Point, 4326), n numeric(8, 2))"))
    when = int(datetime(2026, 10, 5, 9, 30, 0, 123456, tzinfo=TAIPEI).timestamp() * 1e6)
    columns = [Column("t", "text", np.array(["中文 text", None, ""], dtype=object)),
               Column("j", "jsonb", np.array(['{"a": [1, "中"]}', None, "{}"], dtype=object)),
               Column("m", "timestamptz", np.array([when, NAT, 0])),
               Column("f", "float8", np.array([1.5, np.nan, -2.0])),
               Column("i", "int4", np.array([7, None, 123456], dtype=object)),
               Column("b", "bool", np.array([True, None, False], dtype=object)),
               Column("g", "point", (np.array([121.5, np.nan, 0.0]), np.array([25.0, np.nan, 0.0]), 4326)),
               Column("n", "numeric", np.array([15.25, np.nan, 0.5]))]
    assert copy_rows(cursor, "copied", columns, rows_per_chunk=2) == 3
    got = session.execute(text("SELECT t, j, m, f, i, b, ST_AsText(g), n::text FROM copied")).all()
    assert got[0] == ("中文 text", {"a": [1, "中"]}, datetime(2026, 10, 5, 9, 30, 0, 123456, tzinfo=TAIPEI), 1.5, 7, True,
                      "POINT(121.5 25)", "15.25")
    assert got[1] == (None,) * 8
    assert got[2] == ("", {}, datetime(1970, 1, 1, tzinfo=timezone.utc), -2.0, 123456, False, "POINT(0 0)", "0.50")


def test_binary_copy_of_many_rows_writes_repeated_and_uniform_columns(session):
    """Columns of a few values are encoded once per value, columns of one width in every row side by side."""
    cursor = session.connection().connection.driver_connection.cursor()
    session.execute(text("CREATE TEMP TABLE copied_many (k int4, c text, few text, u text, n float8, m timestamptz, "
                         "h timestamptz, g geometry(Point, 4326), d numeric(8, 2), f float8, b bool)"))
    n, rng = 3000, np.random.default_rng(5)
    few = rng.choice(np.array(["甲", "乙", None, "丙丁"], dtype=object), n)
    when = np.where(rng.random(n) < 0.3, NAT, 1_790_000_000_000_000 + rng.integers(0, 10**9, n))
    columns = [Column("k", "int4", np.arange(n)), Column("c", "text", np.full(n, "import", dtype=object)),
               Column("few", "text", few), Column("u", "text", np.array([f"n{k}" for k in range(n)], dtype=object)),
               Column("n", "float8", np.full(n, np.nan)), Column("m", "timestamptz", np.full(n, 0)),
               Column("h", "timestamptz", when), Column("g", "point", (np.full(n, 121.5), np.full(n, 25.0), 4326)),
               Column("d", "numeric", np.where(rng.random(n) < 0.5, np.nan, 8.0)),
               Column("f", "float8", np.arange(n) / 4), Column("b", "bool", np.arange(n) % 2 == 0)]
    assert copy_rows(cursor, "copied_many", columns, rows_per_chunk=1000) == n
    got = pd.read_sql(text("SELECT k, c, few, u, n, m, h, ST_X(g) AS x, d::text AS d, f, b FROM copied_many ORDER BY k"),
                      session.connection())
    assert (got["c"] == "import").all() and [plain(v) for v in got["few"]] == list(few)
    assert got["u"].tolist() == [f"n{k}" for k in range(n)] and got["n"].isna().all() and (got["x"] == 121.5).all()
    assert (got["m"] == datetime(1970, 1, 1, tzinfo=timezone.utc)).all()
    assert np.array_equal(micros(got["h"], "UTC"), when)
    assert [plain(v) for v in got["d"]] == [None if np.isnan(v) else "8.00" for v in columns[8].values]
    assert np.array_equal(got["f"], np.arange(n) / 4) and got["b"].tolist() == [k % 2 == 0 for k in range(n)]
