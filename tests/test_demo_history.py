"""The demo case history: the 1999 hotline replay and the generated inspector cases, as loaded once per run
by the ``history_url`` fixture (through the real case services), checked from the database."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pyogrio
import pytest
from sqlalchemy import create_engine, func, pool, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from gridmap.calendar.service import get_calendar
from gridmap.cli import app
from gridmap.demo.history import DEFAULT_INSPECTOR_CASES, PATROL_END, PATROL_START, TODAY
from gridmap.demo.history_patrol import HOT_GRIDS, plan_patrols
from gridmap.demo.history_plan import (ATTRIBUTION, DEFAULT_SEED, HOTLINE_FILE, REPLAY_WEEKS, HistoryError,
                                       plan_hotline, read_classes)
from gridmap.demo.users import demo_staff
from gridmap.users.models import AppUser

TAIPEI = ZoneInfo("Asia/Taipei")
NOW = datetime.combine(TODAY, datetime.min.time(), TAIPEI)
REPLAYED = re.compile(r"^1999 案件 (\d{13})（(.+?)），replayed \+(\d+) weeks from ")


@pytest.fixture(scope="module")
def db(history_url):
    engine = create_engine(history_url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        yield conn
    engine.dispose()


def frame(db, sql: str, **params) -> pd.DataFrame:
    return pd.DataFrame(db.execute(text(sql), params).mappings().all())


def test_cases_per_source_and_month(db):
    counts = frame(db, """SELECT source, to_char(reported_at AT TIME ZONE 'Asia/Taipei', 'YYYY-MM') AS month,
                          count(*) AS n FROM case_file GROUP BY 1, 2""")
    by_source = counts.groupby("source")["n"].sum()
    assert by_source["hotline"] == 2817
    assert by_source["inspector"] + by_source["self_disposal"] == DEFAULT_INSPECTOR_CASES
    assert 0.05 < by_source["self_disposal"] / DEFAULT_INSPECTOR_CASES < 0.2
    hotline = counts[counts["source"] == "hotline"]
    assert hotline["month"].tolist() == ["2026-10"]
    patrols = counts[counts["source"] != "hotline"].groupby("month")["n"].sum()
    assert patrols.index.tolist() == ["2026-08", "2026-09", "2026-10", "2026-11"]
    assert patrols["2026-10"] > patrols["2026-08"]  # patrols grow busier; November ends on the 20th
    first, last = db.execute(text("SELECT min(reported_at), max(reported_at) FROM case_file "
                                  "WHERE source <> 'hotline'")).one()
    assert first.astimezone(TAIPEI).date() >= PATROL_START and last.astimezone(TAIPEI).date() <= PATROL_END


def test_every_case_has_its_events_in_order_and_ends_in_its_status(db):
    broken = db.execute(text("""
        WITH e AS (SELECT case_id, action, from_status, to_status, at, row_number() OVER w AS n,
                          lag(to_status) OVER w AS before, lag(at) OVER w AS previous_at,
                          last_value(to_status) OVER (PARTITION BY case_id ORDER BY id
                                                      ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS last
                   FROM case_event WINDOW w AS (PARTITION BY case_id ORDER BY id))
        SELECT count(*) FILTER (WHERE n = 1 AND (from_status IS NOT NULL OR action NOT IN ('report', 'self_dispose'))),
               count(*) FILTER (WHERE n > 1 AND (from_status IS DISTINCT FROM before OR at < previous_at)),
               count(*) FILTER (WHERE n = 1 AND at <> c.reported_at),
               count(*) FILTER (WHERE n = 1 AND last <> c.status)
        FROM e JOIN case_file c ON c.id = e.case_id""")).one()
    assert tuple(broken) == (0, 0, 0, 0)
    assert db.execute(text("SELECT count(*) FROM case_file c WHERE NOT EXISTS "
                           "(SELECT 1 FROM case_event e WHERE e.case_id = c.id)")).scalar_one() == 0
    # the case's own record agrees with its trail
    wrong = db.execute(text("""
        SELECT count(*) FILTER (WHERE status = 'closed' AND (closed_at IS NULL OR close_kind IS NULL)),
               count(*) FILTER (WHERE status = 'closed' AND source <> 'self_disposal' AND closed_at IS DISTINCT FROM
                                (SELECT max(at) FROM case_event e WHERE e.case_id = c.id AND e.action = 'close')),
               count(*) FILTER (WHERE status = 'dispatched' AND disposal_deadline IS NULL),
               count(*) FILTER (WHERE status = 'parked' AND disposal_deadline IS NOT NULL),
               count(*) FILTER (WHERE rework_count <> (SELECT count(*) FROM case_event e WHERE e.case_id = c.id
                                AND e.action = 'check' AND (e.data->>'passed')::boolean IS FALSE))
        FROM case_file c""")).one()
    assert tuple(wrong) == (0, 0, 0, 0, 0)


def test_every_replayed_call_is_traceable_to_its_1999_case(db):
    source = pyogrio.read_dataframe(HOTLINE_FILE)
    expected = {row.案件編號: (pd.Timestamp(row.成案時間).to_pydatetime() - timedelta(hours=8)).replace(tzinfo=TAIPEI)
                + timedelta(weeks=REPLAY_WEEKS) for row in source.itertuples()}
    cases = frame(db, "SELECT description, reported_at, ST_X(geom) AS lon, ST_Y(geom) AS lat "
                      "FROM case_file WHERE source = 'hotline'")
    found = cases["description"].str.extract(REPLAYED.pattern)
    assert found[0].notna().all() and found[0].is_unique and set(found[0]) == set(expected)
    assert (found[2].astype(int) == REPLAY_WEEKS).all()
    assert cases["description"].str.contains(ATTRIBUTION, regex=False).all()
    reported = dict(zip(found[0], cases["reported_at"]))
    assert all(abs(reported[number] - moment) < timedelta(milliseconds=1) for number, moment in expected.items())
    # the weekday and the time of day are the call's own, the place too
    places = source.set_index("案件編號").geometry
    located = dict(zip(found[0], zip(cases["lon"], cases["lat"])))
    assert all(abs(located[n][0] - p.x) < 1e-9 and abs(located[n][1] - p.y) < 1e-9 for n, p in places.items())
    assert {m.astimezone(TAIPEI).date().isoformat() for m in reported.values()} <= {
        f"2026-10-{d:02d}" for d in range(8, 16)}


def test_nothing_happens_after_today(db):
    latest_event, latest_case = db.execute(text("SELECT (SELECT max(at) FROM case_event), "
                                                "(SELECT max(reported_at) FROM case_file)")).one()
    assert latest_event < NOW and latest_case < NOW
    assert latest_event > NOW - timedelta(days=2)  # but right up to it: "today" has a recent past


def test_departments_differ_in_handling_on_time(db):
    handled = frame(db, """SELECT c.department, avg(((e.data->>'on_time')::boolean)::int) AS on_time, count(*) AS n
                           FROM case_event e JOIN case_file c ON c.id = e.case_id WHERE e.action = 'handle'
                           GROUP BY 1 HAVING count(*) >= 40""")
    assert len(handled) >= 10
    assert ((handled["on_time"] > 0) & (handled["on_time"] < 1)).all()  # each department: some on time, some late
    assert handled["on_time"].max() - handled["on_time"].min() > 0.2  # and they are not alike
    assert 0.6 < (handled["on_time"] * handled["n"]).sum() / handled["n"].sum() < 0.95


def test_side_paths_happen_and_open_cases_are_overdue_now(db):
    actions = dict(db.execute(text("SELECT action, count(*) FROM case_event GROUP BY 1")).all())
    for action in ("request_verification", "verify", "reject", "void", "return", "refuse_return",
                   "request_extension", "approve_extension", "refuse_extension", "park", "resume", "self_dispose"):
        assert actions.get(action, 0) > 0, action
    redispatched = db.execute(text("SELECT count(*) FROM case_event WHERE action = 'dispatch' "
                                   "AND (data->>'redispatch')::boolean")).scalar_one()
    reworked = db.execute(text("SELECT count(*) FROM case_file WHERE rework_count > 0")).scalar_one()
    assert redispatched > 0 and reworked > 0
    open_ = frame(db, """SELECT status, count(*) AS n, count(*) FILTER (WHERE stage_deadline < :now) AS overdue
                         FROM case_file WHERE status NOT IN ('closed', 'rejected', 'voided', 'merged') GROUP BY 1""",
                  now=NOW)
    assert open_["n"].sum() >= 20 and len(open_) >= 3  # open at several stages
    assert open_["overdue"].sum() >= 5  # and some of them red on the dashboard "today"


def test_inspectors_report_in_their_districts_with_hot_spots(db):
    per_grid = frame(db, "SELECT unit_grid, count(*) AS n FROM case_file WHERE source <> 'hotline' GROUP BY 1 "
                         "ORDER BY 2 DESC")
    assert per_grid["n"].head(HOT_GRIDS).sum() > 0.2 * DEFAULT_INSPECTOR_CASES  # a few grids stand out
    assert per_grid["n"].iloc[HOT_GRIDS] < per_grid["n"].iloc[HOT_GRIDS - 1] / 3
    elsewhere = db.execute(text("""SELECT count(*) FROM case_file c JOIN app_user u ON u.id = c.reporter_id
                                   JOIN inspector i ON i.id = u.inspector_id
                                   WHERE c.source <> 'hotline' AND i.code NOT LIKE 'I-' || c.district || '-%'""")
                           ).scalar_one()
    assert elsewhere < 0.02 * DEFAULT_INSPECTOR_CASES  # only a component's fix a few metres over a district line
    at_components = db.execute(text("SELECT count(*) FROM case_file WHERE source <> 'hotline' "
                                    "AND component_id IS NOT NULL")).scalar_one()
    assert at_components > 0.03 * DEFAULT_INSPECTOR_CASES


def test_cases_are_worked_by_the_demo_staff(db):
    roles = dict(db.execute(text("SELECT e.actor_role, count(DISTINCT e.actor_id) FROM case_event e "
                                 "GROUP BY 1")).all())
    assert roles["inspector"] >= 10 and roles["dispatcher"] == 2 and roles["shift_lead"] == 2
    assert roles["acceptor"] == 2 and roles["department"] >= 20
    # a department user only ever acts on its department's cases, an inspector only in their duty grids
    elsewhere = db.execute(text("""SELECT count(*) FROM case_event e JOIN app_user u ON u.id = e.actor_id
                                   JOIN department d ON d.id = u.department_id JOIN case_file c ON c.id = e.case_id
                                   WHERE e.action = 'handle' AND c.department <> d.code
                                     AND NOT EXISTS (SELECT 1 FROM case_event later WHERE later.case_id = c.id
                                                     AND later.action = 'dispatch' AND later.id > e.id)"""))
    assert elsewhere.scalar_one() == 0


def test_the_plan_is_the_same_for_the_same_seed(session, history_url):
    calendar = get_calendar(session=session)
    staff = demo_staff(session=session)
    first = plan_patrols(session=session, seed=7, count=50, calendar=calendar, start=PATROL_START, end=PATROL_END,
                         staff=staff)
    again = plan_patrols(session=session, seed=7, count=50, calendar=calendar, start=PATROL_START, end=PATROL_END,
                         staff=staff)
    other = plan_patrols(session=session, seed=8, count=50, calendar=calendar, start=PATROL_START, end=PATROL_END,
                         staff=staff)
    assert first == again and first != other
    hotline = plan_hotline(seed=7, timezone=calendar.timezone)
    assert hotline == plan_hotline(seed=7, timezone=calendar.timezone)
    assert [s.steps for s in hotline] != [s.steps for s in plan_hotline(seed=8, timezone=calendar.timezone)]
    # the loaded history is the default seed's plan, played: same reports, same moments
    engine = create_engine(history_url, poolclass=pool.NullPool)
    with Session(engine) as loaded:
        planned = plan_patrols(session=loaded, seed=DEFAULT_SEED, count=DEFAULT_INSPECTOR_CASES,
                               calendar=calendar, start=PATROL_START, end=PATROL_END, staff=demo_staff(session=loaded))
        moments = loaded.scalars(text("SELECT reported_at FROM case_file WHERE source <> 'hotline' "
                                      "ORDER BY reported_at")).all()
        loaded.rollback()
    engine.dispose()
    assert moments == sorted(s.reported_at for s in planned)


def test_staff_are_created_once(session):
    demo_staff(session=session)
    before = session.scalar(select(func.count(AppUser.id)))
    staff = demo_staff(session=session)
    assert session.scalar(select(func.count(AppUser.id))) == before
    assert len(staff.inspector_of_district) == 12 and staff.inspector_of_district["630050"] == "demo-inspector"
    assert staff.department_user["HW"] == "demo-department" and len(staff.centre["dispatcher"]) == 2


def test_bad_input_is_named(tmp_path):
    classes = tmp_path / "classes.csv"
    classes.write_text("type,case_type,class_code,disposition,note\n路燈故障或設施損壞,component,118,,\n",
                       encoding="utf-8")
    with pytest.raises(HistoryError, match=r"classes.csv, row 1, field class_code: must be 4 digits \(value '118'\)"):
        read_classes(classes)
    mapping = read_classes()
    del mapping["路燈故障或設施損壞"]
    with pytest.raises(HistoryError, match=r"row \d+, field 案件類型: '路燈故障或設施損壞' is not mapped"):
        plan_hotline(seed=1, timezone=TAIPEI, classes=mapping)


def test_the_command_loads_once(history_url):
    runner = CliRunner()
    env = {"GRIDMAP_DATABASE_URL": history_url, "COLUMNS": "200"}
    before = db_count(history_url)
    skipped = runner.invoke(app, ["demo", "history", "--if-empty"], env=env)
    assert skipped.exit_code == 0 and "not loaded" in skipped.stdout
    again = runner.invoke(app, ["demo", "history"], env=env)
    assert again.exit_code == 1 and "loaded already" in again.stderr
    assert db_count(history_url) == before


def db_count(url: str) -> int:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM case_event")).scalar_one()
    finally:
        engine.dispose()
