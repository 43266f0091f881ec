"""KPIs against the real database: a small case history made with the real services at chosen moments, and
every figure checked against numbers worked out by hand in the comments; periods, the cut-off of a
running period, scoring, the command and the API.

The history (Taipei, October 2026; working time Mon–Fri 08:30–12:30, 13:30–17:30; Fri 9 Oct a holiday).
Every case is 暴露垃圾 (20102) at Taipei Main Station: an A-class grid, department HW, 4 working hours to
dispose from dispatch. Stage limits: accept/file/dispatch 10 working minutes, verify/check/close 30, a
returned case's re-dispatch 30. Reporter `insp` (demo-inspector, who patrols the station's duty grid).

    A  Mon 5  on time throughout                                   disp, lead; disposal 09:15→11:00 = 105 min
    B  Mon 5  filed late (10:35 > 10:30), dispatched late by disp2 (10:50 > 10:45), handled late (Tue 09:00 >
              Mon 15:50: 340 + 30 = 370 min), checked late (09:50 > 09:30), closed by lead2
    C  Tue 6  parked 10:10 after 60 min, resumed Wed 14:00 with 180 min left → deadline Wed 17:00; handled
              16:30: on time, 60 + 150 = 210 min (the pause does not count)
    D  Wed 7  extended by 2 h: deadline 14:03 → 16:03; handled 15:30 on time (207 + 120 = 327 min)
    E  Thu 8  dispatched by disp to HW, returned by HW 09:30, re-dispatched by disp2 09:40 to JD-630050
              (new clock: deadline 14:40), handled 11:40 by JD (120 min): disp's dispatch inaccurate
    F  Thu 8  filed by lead2; handled 11:00, check fails 11:20 (返工), handled again 14:00 (deadline 15:05
              stands: on time, 10:05→14:00 = 175 min): disp's dispatch inaccurate
    G  Thu 8  dispatched 15:15: 2 h 15 on Thursday, the holiday and the weekend skipped, 1 h 45 on Monday →
              deadline Mon 12 10:15; handled 10:00 on time (225 min); closed late by lead (11:00 > 10:50)
    H  Mon 12 filed by lead2 11:05, voided 11:30 (准确立案率)
    I  Mon 12 insp2's report, rejected (有效上报率)          P  Thu 15 insp2's report, never accepted (pending)
    J  Tue 13 hotline call (漏报率), verified late by insp (09:40 > 09:32), dispatched 09:55, never handled:
              deadline Tue 13 14:55 passes (overdue, not handled)
    K  Wed 14 hotline call, verified on time (09:20 ≤ 09:31), handled 14:00 on time (175 + 30 = 205 min)
    S  Wed 14 insp disposes of a problem on the spot (自行处置): a valid report, never filed
    Q  Fri 16 insp's report, merged into J by the acceptor (an invalid report)
    N  Fri 30 dispatched 16:05 (deadline Mon 2 Nov 11:05), handled Mon 2 Nov 10:00: after October's cut-off
"""

from __future__ import annotations

import io
import math
import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from api.main import create_app
from gridmap.cases.hotline import submit_hotline
from gridmap.cases.reports import Upload, submit_report
from gridmap.cases.schemas import ActionRequest, HotlineInput, ReportInput
from gridmap.cases.service import act
from gridmap.cli import app as cli
from gridmap.config import DatabaseSettings, Settings
from gridmap.demo.users import demo_users
from gridmap.evaluation import measures
from gridmap.evaluation.definitions import KPIS, EvaluationError, kpis_for
from gridmap.evaluation.facts import case_facts, event_facts
from gridmap.evaluation.periods import BadPeriod, parse_period
from gridmap.evaluation.scoring import BadScoring, Scoring, load_scoring, score
from gridmap.evaluation.service import kpi
from gridmap.users.service import create_user, current_user
from tests.conftest import clone_database, drop_database, logged_in

TAIPEI = ZoneInfo("Asia/Taipei")
STATION = (121.5170, 25.0460)
PHOTO = "b" * 64
OCTOBER_END = datetime(2026, 11, 1, tzinfo=TAIPEI)
LATER = datetime(2026, 12, 1, tzinfo=TAIPEI)  # "now" for figures of finished periods


def at(day: int, hour: int, minute: int = 0, month: int = 10) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=TAIPEI)


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), "olive").save(buffer, "JPEG")
    return buffer.getvalue()


class History:
    """Makes the cases of the module docstring with the real services."""

    def __init__(self, session: Session, tmp_path):
        self.session, self.tmp_path = session, tmp_path
        demo_users(session=session)
        for name, role, bound in [("kpi-inspector-2", "inspector", {}), ("kpi-dispatcher-2", "dispatcher", {}),
                                  ("kpi-lead-2", "shift_lead", {}), ("kpi-jd", "department",
                                                                     {"department": "JD-630050"})]:
            create_user(session=session, name=name, role=role, password="password-kpi", display_name=name, **bound)
        names = {"insp": "demo-inspector", "insp2": "kpi-inspector-2", "acceptor": "demo-acceptor",
                 "lead": "demo-shift-lead", "lead2": "kpi-lead-2", "disp": "demo-dispatcher",
                 "disp2": "kpi-dispatcher-2", "hw": "demo-department", "jd": "kpi-jd",
                 "supervisor": "demo-supervisor"}
        self.people = {who: current_user(session=session, name=name) for who, name in names.items()}
        session.execute(text("INSERT INTO photo (sha256, media_type, size, width, height) VALUES "
                             f"('{PHOTO}', 'image/jpeg', 1, 1, 1) ON CONFLICT DO NOTHING"))

    def report(self, who: str, moment: datetime, **fields):
        uploads = [Upload("done.jpg", jpeg())] if fields.get("self_disposed") else []
        return submit_report(session=self.session, user=self.people[who], uploads=uploads,
                             report=ReportInput(x=STATION[0], y=STATION[1], accuracy=5.0, class_code="20102", **fields),
                             key=f"kpi-{uuid.uuid4()}", photo_dir=self.tmp_path, photo_max_bytes=10_000_000,
                             now=moment).case

    def hotline(self, moment: datetime):
        call = HotlineInput(lon=STATION[0], lat=STATION[1], class_code="20102", caller="a shopkeeper")
        return submit_hotline(session=self.session, user=self.people["acceptor"], call=call, now=moment).case

    def run(self, case, *steps):
        for who, action, moment, *body in steps:
            body = body[0] if body else {}
            body = ({"confirm": True} if action == "file" else {}) | (
                {"photos": [PHOTO]} if action == "handle" else {}) | ({"passed": True} if action == "check" else {}) | body
            act(session=self.session, user=self.people[who], number=case.number, action=action,
                request=ActionRequest(version=case.version, **body), now=moment)
        return case

    def build(self) -> dict:
        d, c = at, {}
        c["A"] = self.run(self.report("insp", d(5, 9)), ("acceptor", "accept", d(5, 9, 5)),
                          ("lead", "file", d(5, 9, 10)), ("disp", "dispatch", d(5, 9, 15)),
                          ("hw", "handle", d(5, 11)), ("insp", "check", d(5, 11, 20)), ("lead", "close", d(5, 11, 40)))
        c["B"] = self.run(self.report("insp", d(5, 10)), ("acceptor", "accept", d(5, 10, 20)),
                          ("lead", "file", d(5, 10, 35)), ("disp2", "dispatch", d(5, 10, 50)),
                          ("hw", "handle", d(6, 9)), ("insp", "check", d(6, 9, 50)), ("lead2", "close", d(6, 10)))
        c["C"] = self.run(self.report("insp", d(6, 9)), ("acceptor", "accept", d(6, 9, 2)),
                          ("lead", "file", d(6, 9, 5)), ("disp", "dispatch", d(6, 9, 10)),
                          ("disp", "park", d(6, 10, 10), {"reason": "waiting for the owner"}),
                          ("disp", "resume", d(7, 14)), ("hw", "handle", d(7, 16, 30)),
                          ("insp", "check", d(7, 16, 45)), ("lead", "close", d(7, 17)))
        c["D"] = self.run(self.report("insp", d(7, 9)), ("acceptor", "accept", d(7, 9, 1)),
                          ("lead", "file", d(7, 9, 2)), ("disp", "dispatch", d(7, 9, 3)),
                          ("hw", "request_extension", d(7, 11), {"extension": 2, "reason": "a truck is needed"}),
                          ("disp", "approve_extension", d(7, 11, 5)), ("hw", "handle", d(7, 15, 30)),
                          ("insp", "check", d(7, 15, 40)), ("lead", "close", d(7, 15, 50)))
        c["E"] = self.run(self.report("insp", d(8, 9)), ("acceptor", "accept", d(8, 9, 1)),
                          ("lead", "file", d(8, 9, 2)), ("disp", "dispatch", d(8, 9, 5)),
                          ("hw", "return", d(8, 9, 30), {"reason": "private land"}),
                          ("disp2", "dispatch", d(8, 9, 40), {"department": "JD-630050", "reason": "private land"}),
                          ("jd", "handle", d(8, 11, 40)), ("insp", "check", d(8, 12)), ("lead", "close", d(8, 12, 10)))
        c["F"] = self.run(self.report("insp", d(8, 10)), ("acceptor", "accept", d(8, 10, 1)),
                          ("lead2", "file", d(8, 10, 2)), ("disp", "dispatch", d(8, 10, 5)),
                          ("hw", "handle", d(8, 11)),
                          ("insp", "check", d(8, 11, 20), {"passed": False, "note": "bags still there"}),
                          ("hw", "handle", d(8, 14)), ("insp", "check", d(8, 14, 10)), ("lead", "close", d(8, 14, 20)))
        c["G"] = self.run(self.report("insp", d(8, 15)), ("acceptor", "accept", d(8, 15, 5)),
                          ("lead", "file", d(8, 15, 10)), ("disp", "dispatch", d(8, 15, 15)))
        assert c["G"].disposal_deadline == d(12, 10, 15)  # across the holiday and the weekend
        self.run(c["G"], ("hw", "handle", d(12, 10)), ("insp", "check", d(12, 10, 20)), ("lead", "close", d(12, 11)))
        c["H"] = self.run(self.report("insp", d(12, 11)), ("acceptor", "accept", d(12, 11, 1)),
                          ("lead2", "file", d(12, 11, 5)), ("acceptor", "void", d(12, 11, 30), {"reason": "a prank"}))
        c["I"] = self.run(self.report("insp2", d(12, 13, 40)), ("acceptor", "reject", d(12, 13, 45),
                                                                {"reason": "not city management"}))
        c["J"] = self.run(self.hotline(d(13, 9)), ("acceptor", "request_verification", d(13, 9, 2)),
                          ("insp", "verify", d(13, 9, 40)), ("acceptor", "accept", d(13, 9, 45)),
                          ("lead", "file", d(13, 9, 50)), ("disp", "dispatch", d(13, 9, 55)))
        c["K"] = self.run(self.hotline(d(14, 9)), ("acceptor", "request_verification", d(14, 9, 1)),
                          ("insp", "verify", d(14, 9, 20)), ("acceptor", "accept", d(14, 9, 25)),
                          ("lead", "file", d(14, 9, 30)), ("disp", "dispatch", d(14, 9, 35)),
                          ("hw", "handle", d(14, 14)), ("insp", "check", d(14, 14, 20)), ("lead", "close", d(14, 14, 40)))
        c["S"] = self.report("insp", d(14, 11), self_disposed=True)
        c["P"] = self.report("insp2", d(15, 9))
        c["Q"] = self.run(self.report("insp", d(16, 9)), ("acceptor", "merge", d(16, 9, 5),
                                                          {"into": c["J"].number, "reason": "same pile"}))
        c["N"] = self.run(self.report("insp", d(30, 16)), ("acceptor", "accept", d(30, 16, 1)),
                          ("lead", "file", d(30, 16, 2)), ("disp", "dispatch", d(30, 16, 5)),
                          ("hw", "handle", d(2, 10, month=11)))
        return c


@pytest.fixture
def history(session, tmp_path):
    cases = History(session, tmp_path).build()
    assert {c.status for c in cases.values()} == {"closed", "voided", "rejected", "reported", "merged", "dispatched",
                                                  "handled"}
    return cases


def row(frame: pd.DataFrame, subject: str) -> dict:
    found = frame[frame["subject"] == subject]
    assert len(found) == 1, f"{subject} not in {list(frame['subject'])}"
    return found.iloc[0].to_dict()


def test_the_clocks_of_the_history(session, history):
    c = history
    assert c["B"].disposal_minutes == pytest.approx(370) and c["A"].disposal_minutes == pytest.approx(105)
    assert c["C"].disposal_deadline == at(7, 17) and c["C"].disposal_minutes == pytest.approx(210)
    assert c["D"].disposal_deadline == at(7, 16, 3) and c["D"].disposal_minutes == pytest.approx(327)
    assert c["E"].department == "JD-630050" and c["E"].disposal_minutes == pytest.approx(120)
    assert c["F"].rework_count == 1 and c["F"].disposal_minutes == pytest.approx(175)
    assert c["G"].disposal_minutes == pytest.approx(225) and c["K"].disposal_minutes == pytest.approx(205)
    assert c["J"].disposal_deadline == at(13, 14, 55) and c["N"].disposal_deadline == at(2, 11, 5, month=11)
    assert c["S"].source == "self_disposal" and c["J"].source == "hotline"
    grids = {case.unit_grid for case in c.values()}
    assert len(grids) == 1  # every case in the same unit grid, so region figures are the whole history's


def test_region_figures(session, history):
    grid = history["A"].unit_grid
    frame = kpi(session=session, period="2026-10", by="unit_grid", now=LATER)
    # filed in October: A B C D E F G H J K N = 11; H voided; due = handled or closed (A B C D E F G K) + J
    # (overdue, not handled) = 9; N's deadline (2 Nov) lies after the cut-off; closed 8, on time 7 (not B);
    # public (hotline) J K = 2
    r = row(frame, grid)
    assert (r["filed"], r["due"], r["closed"], r["closed_on_time"], r["public"]) == (11, 9, 8, 7, 2)
    assert r["closed_rate"] == pytest.approx(8 / 9) and r["closed_on_time_rate"] == pytest.approx(7 / 9)
    assert r["public_rate"] == pytest.approx(2 / 11)
    # score = 100 × (0.5 · 8/9 + 0.5 · 7/9) = 83.33 → B
    assert r["score"] == pytest.approx(round(100 * (0.5 * 8 / 9 + 0.5 * 7 / 9), 2)) and r["band"] == "B"
    assert r["name"].endswith(grid[-3:]) and r["rank"] == 1 and len(frame) == 1
    district = kpi(session=session, period="2026-10", by="district", now=LATER)
    assert list(district["subject"]) == [history["A"].district] and district.loc[0, "name"] == "中正區"
    assert district.loc[0, "due"] == 9


def test_department_figures(session, history):
    frame = kpi(session=session, period="2026-10", by="department", now=LATER)
    assert list(frame["subject"]) == ["JD-630050", "HW"]  # ranked: JD 100, HW 81.25
    hw = row(frame, "HW")
    # HW: filed A B C D F G J K N = 9 (E went to JD; H was voided before dispatch: no department);
    # handled A B C D F G K = 7, on time 6 (not B); overdue not handled: J; due = 7 + 1 = 8; closed 7;
    # reworked F; returned E (by HW, 8 Oct); disposal 105 + 370 + 210 + 327 + 175 + 225 + 205 = 1617 min / 7
    assert {k: hw[k] for k in ("filed", "due", "handled", "handled_on_time", "overdue_unhandled", "closed",
                               "reworked", "returned", "disposal_count")} == dict(
        filed=9, due=8, handled=7, handled_on_time=6, overdue_unhandled=1, closed=7, reworked=1, returned=1,
        disposal_count=7)
    assert hw["disposal_minutes"] == pytest.approx(1617)
    assert hw["closed_rate"] == pytest.approx(7 / 8) and hw["handled_on_time_rate"] == pytest.approx(6 / 8)
    assert hw["rework_rate"] == pytest.approx(1 / 8) and hw["avg_disposal_hours"] == pytest.approx(1617 / 7 / 60)
    # score = 100 × (0.5 · 6/8 + 0.3 · 7/8 + 0.2 · (1 − 1/8)) = 81.25 → B
    assert hw["score"] == pytest.approx(81.25) and hw["band"] == "B" and hw["rank"] == 2
    jd = row(frame, "JD-630050")  # E: re-dispatched 09:40, handled 11:40 on time (120 min)
    assert (jd["filed"], jd["due"], jd["handled_on_time"], jd["closed"], jd["returned"]) == (1, 1, 1, 1, 0)
    assert jd["avg_disposal_hours"] == pytest.approx(2.0) and jd["score"] == 100 and jd["band"] == "A"
    assert hw["name"] and jd["name"]
    # ISO week 41 (5–11 Oct): A B C D F G for HW; G is handled on Mon 12 and due then, after the cut-off
    week = row(kpi(session=session, period="2026-W41", by="department", now=LATER), "HW")
    assert (week["filed"], week["due"], week["handled"], week["handled_on_time"], week["returned"]) == (6, 5, 5, 4, 1)
    assert week["disposal_minutes"] == pytest.approx(105 + 370 + 210 + 327 + 175)


def test_inspector_figures(session, history):
    frame = kpi(session=session, period="2026-10", by="inspector", now=LATER)
    insp = row(frame, "demo-inspector")
    # reports A B C D E F G H N S Q = 11: valid = filed by T (A–H, N; H's voiding came after filing) + S (on the
    # spot) = 10; Q merged = invalid; 有效上报率 = 10/11
    assert (insp["reports"], insp["reports_valid"], insp["reports_invalid"], insp["reports_pending"]) == (11, 10, 1, 0)
    # filed in October in the duty grid: the 11 of the region, of which J and K from the hotline: 漏报率 2/11
    assert (insp["duty_filed"], insp["duty_public"]) == (11, 2)
    # verifications: J late (09:40 > 09:32), K on time; checks: A B C D E F(fail) F G K = 9, late: B only
    assert (insp["verifications"], insp["verifications_on_time"], insp["checks"], insp["checks_on_time"]) == (2, 1, 9, 8)
    rates = {"valid_rate": 10 / 11, "missed_rate": 2 / 11, "verify_on_time_rate": 1 / 2, "check_on_time_rate": 8 / 9}
    assert {k: insp[k] for k in rates} == pytest.approx(rates)
    expected = 100 * (0.3 * 10 / 11 + 0.3 * (1 - 2 / 11) + 0.2 * 1 / 2 + 0.2 * 8 / 9)  # 79.60 → B
    assert insp["score"] == pytest.approx(round(expected, 2)) and insp["band"] == "B"
    other = row(frame, "kpi-inspector-2")
    # I rejected, P pending (left out): 有效上报率 0/1; no duty grid, no verification, no check: the score is
    # the valid rate's alone (the undefined rates are re-weighted away) = 0 → E
    assert (other["reports"], other["reports_valid"], other["reports_invalid"], other["reports_pending"]) == (2, 0, 1, 1)
    assert other["valid_rate"] == 0 and math.isnan(other["missed_rate"]) and math.isnan(other["check_on_time_rate"])
    assert other["score"] == 0 and other["band"] == "E" and other["rank"] == 2


def test_dispatcher_and_shift_lead_figures(session, history):
    dispatchers = kpi(session=session, period="2026-10", by="dispatcher", now=LATER)
    disp = row(dispatchers, "demo-dispatcher")
    # disp dispatched A C D E F G J K N = 9, all within 10 minutes of filing; E returned and F reworked: 准确 7/9
    assert (disp["dispatches"], disp["dispatches_on_time"], disp["dispatches_inaccurate"]) == (9, 9, 2)
    assert disp["dispatch_accuracy_rate"] == pytest.approx(7 / 9) and disp["dispatch_on_time_rate"] == 1
    disp2 = row(dispatchers, "kpi-dispatcher-2")
    # B late (10:50 > 10:45), E's re-dispatch on time (09:40 ≤ 10:00) and accurate
    assert (disp2["dispatches"], disp2["dispatches_on_time"], disp2["dispatches_inaccurate"]) == (2, 1, 0)
    assert disp2["dispatch_on_time_rate"] == 0.5 and disp2["dispatch_accuracy_rate"] == 1
    leads = kpi(session=session, period="2026-10", by="shift_lead", now=LATER)
    lead = row(leads, "demo-shift-lead")
    # lead filed A B C D E G J K N = 9, B late (10:35 > 10:30); closed A C D E F G K = 7, G late (11:00 > 10:50)
    assert (lead["file_events"], lead["file_events_on_time"], lead["file_events_voided"]) == (9, 8, 0)
    assert (lead["close_events"], lead["close_events_on_time"]) == (7, 6)
    assert lead["file_on_time_rate"] == pytest.approx(8 / 9) and lead["close_on_time_rate"] == pytest.approx(6 / 7)
    lead2 = row(leads, "kpi-lead-2")  # filed F and H (voided later): 准确立案率 1/2; closed B on time
    assert (lead2["file_events"], lead2["file_events_voided"], lead2["close_events"]) == (2, 1, 1)
    assert lead2["file_accuracy_rate"] == 0.5 and lead2["close_on_time_rate"] == 1
    # 100 × (0.35 · 1 + 0.3 · 0.5 + 0.35 · 1) = 85 → B; lead: 100 × (0.35 · 8/9 + 0.3 + 0.35 · 6/7) = 91.11 → A
    assert lead2["score"] == 85 and lead2["band"] == "B"
    assert lead["score"] == pytest.approx(round(100 * (0.35 * 8 / 9 + 0.3 + 0.35 * 6 / 7), 2)) and lead["band"] == "A"


def test_a_running_period_counts_up_to_now_only(session, history):
    now = at(6, 12)  # Tuesday 6 October, noon
    frame = kpi(session=session, period="2026-10", by="unit_grid", now=now)
    assert frame.attrs["cutoff"] == now and not frame.attrs["complete"]
    # filed by then: A B C; A and B handled and closed (B late); C parked, its deadline not yet passed
    r = frame.iloc[0]
    assert (r["filed"], r["due"], r["closed"], r["closed_on_time"]) == (3, 2, 2, 1)
    # on Thursday 8 at 09:20 disp had dispatched E (09:05), whose return (09:30) had not happened yet
    early = kpi(session=session, period="2026-10-08", by="dispatcher", now=at(8, 9, 20))
    assert early[["subject", "dispatches", "dispatches_inaccurate"]].values.tolist() == [["demo-dispatcher", 1, 0]]
    later = kpi(session=session, period="2026-10-08", by="dispatcher", now=at(8, 10))
    assert later.set_index("subject").loc["demo-dispatcher", "dispatches_inaccurate"] == 1
    # the same figures recomputed once the period is over stay the same
    day = kpi(session=session, period="2026-10-08", by="dispatcher", now=LATER)
    assert day.set_index("subject").loc["demo-dispatcher", "dispatches"] == 3  # E, F, G
    assert day.equals(kpi(session=session, period="2026-10-08", by="dispatcher", now=LATER + pd.Timedelta(days=400)))
    # a period that has not begun has nothing; November has N's handling but N was filed in October
    assert kpi(session=session, period="2026-12", by="department", now=LATER).empty
    assert kpi(session=session, period="2026-11", by="department", now=LATER).empty
    quarter = row(kpi(session=session, period="2026-Q4", by="department", now=LATER), "HW")
    assert (quarter["filed"], quarter["handled"], quarter["handled_on_time"]) == (9, 8, 7)  # N handled 2 Nov on time


def test_counts_add_up_over_partitions_and_grouped_facts_agree(session, history):
    period = parse_period("2026-10", tz=TAIPEI)
    for by in ("department", "inspector", "dispatcher", "shift_lead", "unit_grid"):
        cases = case_facts(session=session, period=period, by=by)
        events = event_facts(session=session, period=period, by=by)
        whole = measures.counts(cases, events, by=by, cutoff=OCTOBER_END)
        halves = [measures.counts(cases.iloc[i::2], events.iloc[i::2], by=by, cutoff=OCTOBER_END) for i in (0, 1)]
        assert measures.combine(halves, by=by).equals(whole), by
        # grouped in SQL by state at T: the same counts from a handful of rows
        grouped = (case_facts(session=session, period=period, by=by, cutoff=OCTOBER_END, grouped=True),
                   event_facts(session=session, period=period, by=by, cutoff=OCTOBER_END, grouped=True))
        assert len(grouped[0]) < max(len(cases), 1) or by in ("dispatcher", "shift_lead")
        assert measures.counts(*grouped, by=by, cutoff=OCTOBER_END).equals(whole), by
        # raw facts fetched for the whole period count at an earlier cut-off like facts fetched up to it
        early = at(8, 12)
        narrow = (case_facts(session=session, period=period, by=by, cutoff=early),
                  event_facts(session=session, period=period, by=by, cutoff=early))
        assert measures.counts(cases, events, by=by, cutoff=early).equals(
            measures.counts(*narrow, by=by, cutoff=early)), by
        with pytest.raises(EvaluationError, match="grouped as at"):
            measures.counts(*grouped, by=by, cutoff=early)
    # the frames with every subject column (for exports) give the same counts
    everything = (case_facts(session=session, period=period), event_facts(session=session, period=period))
    for by in ("department", "inspector", "dispatcher", "district"):
        narrow = measures.counts(case_facts(session=session, period=period, by=by),
                                 event_facts(session=session, period=period, by=by), by=by, cutoff=OCTOBER_END)
        assert measures.counts(*everything, by=by, cutoff=OCTOBER_END).equals(narrow), by


@pytest.mark.parametrize("text, kind, start, end", [
    ("2026-10-05", "day", (2026, 10, 5), (2026, 10, 6)),
    ("2026-W41", "week", (2026, 10, 5), (2026, 10, 12)),
    ("2026-w53", "week", (2026, 12, 28), (2027, 1, 4)),
    ("2026-10", "month", (2026, 10, 1), (2026, 11, 1)),
    ("2026-12", "month", (2026, 12, 1), (2027, 1, 1)),
    ("2026-Q4", "quarter", (2026, 10, 1), (2027, 1, 1)),
    ("2026", "year", (2026, 1, 1), (2027, 1, 1)),
    (" 2026-10-01..2026-10-15 ", "range", (2026, 10, 1), (2026, 10, 16)),
])
def test_periods_parse(text, kind, start, end):
    period = parse_period(text, tz="Asia/Taipei")
    assert period.kind == kind and period.label == text.strip().upper()
    assert period.start == datetime(*start, tzinfo=TAIPEI) and period.end == datetime(*end, tzinfo=TAIPEI)
    assert period.start.utcoffset().total_seconds() == 8 * 3600


@pytest.mark.parametrize("text, words", [("2026-13", "month must be in 1..12"), ("2026-W54", "week"),
                                         ("2026-10-15..2026-10-01", "ends before it starts"), ("Oct 2026", "not a period"),
                                         ("2026-02-30", "day is out of range"), ("", "not a period")])
def test_bad_periods_name_the_accepted_forms(text, words):
    with pytest.raises(BadPeriod, match=words) as error:
        parse_period(text, tz="Asia/Taipei")
    assert "2026-W41 (ISO week)" in str(error.value) and "2026-10-01..2026-10-15" in str(error.value)


def test_previous_periods():
    assert parse_period("2026-01", tz=TAIPEI).previous().label == "2025-12"
    assert parse_period("2026-Q1", tz=TAIPEI).previous().label == "2025-Q4"
    assert parse_period("2026-W01", tz=TAIPEI).previous().label == "2025-W52"
    assert parse_period("2026-10-11..2026-10-20", tz=TAIPEI).previous().label == "2026-10-01..2026-10-10"


def test_scoring_weights_bands_and_re_weighting(tmp_path):
    frame = pd.DataFrame({"due": [10, 10, 4, 0], "handled_on_time_rate": [0.9, 0.5, 0.9, float("nan")],
                          "closed_rate": [1.0, 0.5, 1.0, float("nan")], "rework_rate": [0.0, 0.5, 0.0, float("nan")]},
                         index=pd.Index(["X", "Y", "Z", "W"], name="subject"))
    scored = score(frame, by="department", scoring=load_scoring())
    # X: 100 × (0.5 · 0.9 + 0.3 · 1 + 0.2 · 1) = 95 → A; Z the same score with fewer due cases ranks after X;
    # Y: 100 × (0.25 + 0.15 + 0.1) = 50 → D; W: nothing defined → no score, no band, no rank
    assert list(scored.index) == ["X", "Z", "Y", "W"]
    assert scored["score"].tolist()[:3] == [95, 95, 50] and math.isnan(scored.loc["W", "score"])
    assert scored["band"].tolist() == ["A", "A", "D", None] and scored["rank"].tolist() == [1, 2, 3, pd.NA]
    # a file overriding only the department's weights and the bands
    path = tmp_path / "scoring.yaml"
    path.write_text("bands: {优: 95, 良: 80, 差: 0}\nweights:\n  department: {rework_rate: 1}\n", encoding="utf-8")
    custom = load_scoring(path)
    assert custom.weights["region"] == load_scoring().weights["region"]
    rescored = score(frame, by="department", scoring=custom)
    # only 1 − 返工率 counts now: X 100 優, Z 100 優, Y 50 差
    assert rescored.loc[["X", "Z", "Y"], "score"].tolist() == [100, 100, 50]
    assert rescored.loc[["X", "Y"], "band"].tolist() == ["优", "差"]
    # undefined rates are left out and the others re-weighted: only the closure rate is known
    lone = pd.DataFrame({"due": [1], "closed_rate": [0.8], "handled_on_time_rate": [float("nan")],
                         "rework_rate": [float("nan")]}, index=pd.Index(["V"], name="subject"))
    assert score(lone, by="department", scoring=load_scoring())["score"].tolist() == [80]
    built = Scoring(weights=custom.weights, bands=(("pass", 60), ("fail", 0)))
    assert score(frame, by="department", scoring=built)["band"].tolist()[:3] == ["pass", "pass", "fail"]


@pytest.mark.parametrize("content, words", [
    ("bands: {A: 90, B: 95, E: 0}", "thresholds must fall"),
    ("bands: {A: 90, B: 50}", "bands.B: the last band must start at 0"),
    ("bands: {A: high, E: 0}", "bands.A: must be a number"),
    ("weights:\n  department: {speed: 1}", "weights.department.speed: not a scored department rate; use"),
    ("weights:\n  department: {rework_rate: -1}", "weights.department.rework_rate: must be a number"),
    ("weights:\n  department: {rework_rate: 0}", "at least one weight must be above 0"),
    ("weights:\n  region: {public_rate: 1}", "weights.region.public_rate: not a scored"),
    ("weights:\n  boroughs: {closed_rate: 1}", "weights.boroughs: unknown kind"),
    ("band: {A: 90}", "unknown field 'band'"),
    ("bands: [A, 90\n", "not valid YAML at line"),
])
def test_bad_scoring_files_name_the_file_and_field(tmp_path, content, words):
    path = tmp_path / "mine.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BadScoring, match=words) as error:
        load_scoring(path)
    assert str(path) in str(error.value)
    with pytest.raises(BadScoring, match="cannot read"):
        load_scoring(tmp_path / "missing.yaml")


def test_bad_subjects_and_every_kpi_defined(session):
    with pytest.raises(EvaluationError, match="unknown subject 'boroughs': use one of unit_grid, community"):
        kpi(session=session, period="2026-10", by="boroughs")
    with pytest.raises(BadPeriod):
        kpi(session=session, period="October", by="department")
    assert len({k.column for k in KPIS}) == len(KPIS)
    names = {k.zh for k in KPIS}
    for term in ("结案率", "按期结案率", "按时处置率", "返工率", "应结案数", "有效上报率", "漏报率", "按时核实率",
                 "按时核查率", "按时派遣率", "准确派遣率", "按时立案率", "准确立案率", "监督举报率"):
        assert term in names
    assert [k.column for k in kpis_for("dispatcher")][-2:] == ["dispatch_on_time_rate", "dispatch_accuracy_rate"]
    docs = Path(__file__).resolve().parents[1].joinpath("docs", "kpi.md").read_text(encoding="utf-8")
    assert [k.column for k in KPIS if f"| `{k.column}` | {k.zh} |" not in docs] == []  # written down, one line each
    empty = kpi(session=session, period="2026-10", by="department", now=LATER)
    assert empty.empty and {"subject", "name", "due", "closed_rate", "score", "band", "rank"} <= set(empty.columns)


# -- the command and the API, on a committed copy of the demo city with the history --------------------

@pytest.fixture(scope="module")
def kpi_url(db_url, demo_reports, tmp_path_factory):
    url = clone_database(db_url, "kpi" + uuid.uuid4().hex[:4])
    engine = create_engine(url)
    with Session(engine) as session:
        History(session, tmp_path_factory.mktemp("photos")).build()
        session.commit()
    engine.dispose()
    yield url
    drop_database(url)


def expected(url: str, by: str) -> pd.DataFrame:
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            return kpi(session=session, period="2026-10", by=by, now=LATER)
    finally:
        engine.dispose()


def gridmap(url: str, *args: str):
    return CliRunner().invoke(cli, list(args), env={"GRIDMAP_DATABASE_URL": url, "COLUMNS": "250"})


def test_the_command_prints_and_writes_csv_and_xlsx(kpi_url, tmp_path):
    want = expected(kpi_url, "department")
    csv = tmp_path / "out" / "kpi.csv"
    result = gridmap(kpi_url, "kpi", "--period", "2026-10", "--by", "department", "--as-of", "2026-12-01T00:00:00+08:00",
                     "--out", str(csv))
    assert result.exit_code == 0, result.output
    assert "按时处置率" in result.stdout and "HW" in result.stdout and "75.0%" in result.stdout
    assert "(complete)" in result.stdout
    back = pd.read_csv(csv, dtype={"subject": str})
    assert list(back.columns) == list(want.columns)
    assert back["subject"].tolist() == want["subject"].tolist() == ["JD-630050", "HW"]
    assert back["handled_on_time_rate"].tolist() == pytest.approx(want["handled_on_time_rate"].tolist())
    assert back["due"].tolist() == [1, 8] and back["band"].tolist() == ["A", "B"]

    xlsx = tmp_path / "kpi.xlsx"
    result = gridmap(kpi_url, "kpi", "--period", "2026-10", "--by", "inspector", "--as-of", "2026-12-01T00:00:00+08:00",
                     "--out", str(xlsx))
    assert result.exit_code == 0, result.output
    sheets = pd.read_excel(xlsx, sheet_name=None, dtype={"编码": str})
    table, definitions = sheets["KPI"], sheets["定义 definitions"]
    assert {"有效上报率", "漏报率", "按时核实率", "按时核查率", "综合得分", "等级", "排名"} <= set(table.columns)
    inspectors = expected(kpi_url, "inspector").set_index("subject")
    got = table.set_index("编码")
    assert got.loc["demo-inspector", "漏报率"] == pytest.approx(inspectors.loc["demo-inspector", "missed_rate"])
    assert got.loc["kpi-inspector-2", "上报数"] == 2
    assert dict(zip(definitions["中文"], definitions["列 column"]))["漏报率"] == "missed_rate"
    assert "2026-10" in sheets["说明 about"]["值 value"].tolist()


def test_the_command_refuses_bad_input_with_a_reason(kpi_url, tmp_path):
    cases = [(["--period", "2026-13"], "month must be in 1..12"),
             (["--period", "2026-10", "--by", "mayor"], "unknown subject 'mayor'"),
             (["--period", "2026-10", "--out", str(tmp_path / "kpi.pdf")], "write a .csv or .xlsx"),
             (["--period", "2026-10", "--as-of", "yesterday"], "--as-of 'yesterday'"),
             (["--period", "2026-10", "--scoring", str(tmp_path / "none.yaml")], "none.yaml: cannot read")]
    for args, words in cases:
        result = gridmap(kpi_url, "kpi", *args)
        assert result.exit_code == 1 and words in result.stderr and "Traceback" not in result.output, args


@pytest.fixture(scope="module")
def client(kpi_url):
    with TestClient(create_app(Settings(database=DatabaseSettings(database_url=kpi_url)))) as client:
        yield client


def token(client, role: str) -> dict:
    name = role.replace("_", "-")
    return logged_in(client, {"username": f"demo-{name}", "password": f"{name}-demo"})


def test_the_api_serves_kpis_to_the_centre_only(client, kpi_url):
    for role in ("inspector", "department", "acceptor"):
        reply = client.get("/api/v1/kpi", params={"period": "2026-10", "by": "department"}, headers=token(client, role))
        assert reply.status_code == 403 and "KPIs is for supervisor" in reply.json()["detail"], role
    headers = token(client, "analyst")
    bad = client.get("/api/v1/kpi", params={"period": "2026-13", "by": "department"}, headers=headers)
    assert bad.status_code == 422 and "2026-W41 (ISO week)" in bad.json()["detail"]
    bad = client.get("/api/v1/kpi", params={"period": "2026-10", "by": "mayor"}, headers=headers)
    assert bad.status_code == 422 and "'unit_grid'" in bad.text and "'shift_lead'" in bad.text
    assert client.get("/api/v1/kpi", params={"period": "2026-10"}).status_code == 401
    for role in ("supervisor", "dispatcher", "shift_lead", "admin", "analyst"):
        reply = client.get("/api/v1/kpi", params={"period": "2026-10", "by": "shift_lead"}, headers=token(client, role))
        assert reply.status_code == 200, (role, reply.text)
    body = reply.json()
    assert body["period"]["label"] == "2026-10" and body["by"] == "shift_lead"
    # the period is over (today is after October) unless the machine's clock says otherwise
    assert body["complete"] == (datetime.now(TAIPEI) >= OCTOBER_END)
    assert {c["column"]: c["zh"] for c in body["columns"]}["file_accuracy_rate"] == "准确立案率"
    want = expected(kpi_url, "shift_lead").set_index("subject")
    got = {r["subject"]: r for r in body["rows"]}
    assert got["kpi-lead-2"]["file_accuracy_rate"] == 0.5 and got["kpi-lead-2"]["band"] == "B"
    assert got["demo-shift-lead"]["score"] == pytest.approx(want.loc["demo-shift-lead", "score"])
    assert [r["rank"] for r in body["rows"]] == [1, 2]
    grid = client.get("/api/v1/kpi", params={"period": "2026-W42", "by": "unit_grid"}, headers=headers).json()
    # week 42 (12–18 Oct): H (voided), J (hotline, overdue), K (hotline, closed on time)
    assert [(r["filed"], r["due"], r["public"], r["closed_on_time"]) for r in grid["rows"]] == [(3, 2, 2, 1)]
