"""The case loop against the real database: every step and side path, the clocks on the working
calendar (across a holiday and a weekend), version checks, duplicates and the append-only audit trail."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from gridmap.cases.exceptions import BadCaseInput, InvalidTransition, StaleCase
from gridmap.cases.models import CaseEvent, CaseFile
from gridmap.cases.queries import get_case, list_cases, overdue_counts
from gridmap.cases.reports import submit_report
from gridmap.cases.schemas import ActionRequest, ReportInput
from gridmap.cases.service import act
from gridmap.demo.users import demo_users
from gridmap.users.exceptions import Forbidden
from gridmap.users.service import current_user

TAIPEI = ZoneInfo("Asia/Taipei")
# Thursday 8 October 2026; Friday 9 October is a holiday (国庆日补假), then the weekend
THURSDAY = datetime(2026, 10, 8, 15, 0, tzinfo=TAIPEI)
STATION = (121.5170, 25.0460)  # an A-class grid near Taipei Main Station: 暴露垃圾 → HW, 4 working hours


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 10, day, hour, minute, tzinfo=TAIPEI)


@pytest.fixture
def people(session):
    demo_users(session=session)
    return {role: current_user(session=session, name=f"demo-{role.replace('_', '-')}")
            for role in ("inspector", "acceptor", "shift_lead", "dispatcher", "department", "supervisor", "analyst")}


@pytest.fixture
def report(session, people, tmp_path):
    def file(lon=STATION[0], lat=STATION[1], now=THURSDAY, who="inspector", key=None, **fields):
        fields = {"class_code": "20102", "description": "暴露垃圾 3 bags", "accuracy": 5.0} | fields
        filed = submit_report(session=session, user=people[who], report=ReportInput(x=lon, y=lat, **fields),
                              uploads=[], key=key or f"key-{lon}-{lat}-{now.timestamp()}", photo_dir=tmp_path,
                              photo_max_bytes=10_000_000, now=now)
        return filed.case
    return file


def step(session, people, case, role, action, now, **body):
    return act(session=session, user=people[role], number=case.number, action=action,
               request=ActionRequest(version=case.version, **body), now=now)


def photo(session, people):
    session.execute(text("INSERT INTO photo (sha256, media_type, size, width, height) VALUES "
                         "(repeat('a', 64), 'image/jpeg', 1, 1, 1) ON CONFLICT DO NOTHING"))
    return ["a" * 64]


def test_the_whole_loop_with_its_clocks(session, people, report):
    case = report()
    assert case.status == "reported" and case.proposed_department == "HW" and case.area_class == "A"
    assert case.stage_deadline == at(8, 15, 10)  # 受理 within 10 working minutes
    step(session, people, case, "acceptor", "accept", at(8, 15, 5))
    with pytest.raises(BadCaseInput, match="filing condition"):
        step(session, people, case, "shift_lead", "file", at(8, 15, 10))
    step(session, people, case, "shift_lead", "file", at(8, 15, 10), confirm=True)
    step(session, people, case, "dispatcher", "dispatch", at(8, 16, 0))
    # 4 working hours from Thursday 16:00: 1.5 h on Thursday, the holiday and the weekend skipped, 2.5 h on Monday
    assert case.disposal_deadline == at(12, 11, 0) and case.department == "HW"
    assert case.stage_warn_at == at(12, 10, 12)  # 80 % = 3.2 h
    step(session, people, case, "department", "handle", at(12, 10, 30), photos=photo(session, people),
         note="cleared")
    step(session, people, case, "inspector", "check", at(12, 10, 50), passed=True, lat=25.046, lon=121.517,
         accuracy=6)
    step(session, people, case, "shift_lead", "close", at(12, 11, 5))
    assert (case.status, case.close_kind, case.version) == ("closed", "normal", 7)
    events = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)).all()
    assert [e.action for e in events] == ["report", "accept", "file", "dispatch", "handle", "check", "close"]
    assert events[2].data["evidence"]["department"]["code"] == "HW"  # the routing evidence at filing time
    assert events[5].lon == 121.517 and events[5].actor_role == "inspector"
    assert events[4].photos == ["a" * 64]


def test_park_resume_extension_and_rework_move_the_deadline(session, people, report):
    case = report()
    for role, action, moment, body in [("acceptor", "accept", at(8, 15, 1), {}),
                                       ("shift_lead", "file", at(8, 15, 2), {"confirm": True}),
                                       ("dispatcher", "dispatch", at(8, 16, 0), {})]:
        step(session, people, case, role, action, moment, **body)
    # parked on Monday 09:30 after 2.5 h of working time; resumed on Tuesday 14:00 with 1.5 h left
    step(session, people, case, "shift_lead", "park", at(12, 9, 30), reason="waiting for the owner's permit")
    assert case.stage_deadline is None and case.disposal_used_min == pytest.approx(150)
    assert get_case(session=session, user=people["supervisor"], number=case.number, now=at(20, 9)).light is None
    step(session, people, case, "dispatcher", "resume", at(13, 14, 0))
    assert case.disposal_deadline == at(13, 15, 30)
    # an extension of 2 working hours, approved: 17:30 the same day
    step(session, people, case, "department", "request_extension", at(13, 15, 0), extension=2, reason="pump needed")
    step(session, people, case, "dispatcher", "approve_extension", at(13, 15, 10))
    assert case.disposal_deadline == at(13, 17, 30)
    with pytest.raises(InvalidTransition, match="no extension"):
        step(session, people, case, "dispatcher", "approve_extension", at(13, 15, 11))
    # handled late, check fails: back to the department (返工), the deadline stands
    step(session, people, case, "department", "handle", at(14, 9, 0), photos=photo(session, people))
    with pytest.raises(BadCaseInput, match="note"):
        step(session, people, case, "inspector", "check", at(14, 9, 20), passed=False)
    step(session, people, case, "inspector", "check", at(14, 9, 20), passed=False, note="bags still there")
    assert (case.status, case.rework_count, case.disposal_deadline) == ("dispatched", 1, at(13, 17, 30))
    assert get_case(session=session, user=people["supervisor"], number=case.number, now=at(14, 9, 30)).light == "red"
    step(session, people, case, "department", "handle", at(14, 10, 0), photos=photo(session, people))
    step(session, people, case, "inspector", "check", at(14, 10, 20), passed=True)
    step(session, people, case, "shift_lead", "close", at(14, 10, 30))
    assert case.close_kind == "overdue"


def test_return_and_redispatch_elsewhere_needs_reasons(session, people, report):
    case = report()
    for role, action, body in [("acceptor", "accept", {}), ("shift_lead", "file", {"confirm": True}),
                               ("dispatcher", "dispatch", {})]:
        step(session, people, case, role, action, at(8, 15, 30), **body)
    with pytest.raises(BadCaseInput, match="reason"):
        step(session, people, case, "department", "return", at(8, 15, 40))
    step(session, people, case, "department", "return", at(8, 15, 40), reason="private land, not ours")
    assert case.status == "returned" and case.return_count == 1
    with pytest.raises(BadCaseInput, match="returned this case"):
        step(session, people, case, "dispatcher", "dispatch", at(8, 15, 50))
    with pytest.raises(BadCaseInput, match="instead of the proposed HW needs a reason"):
        step(session, people, case, "dispatcher", "dispatch", at(8, 15, 50), department="JD-630050")
    with pytest.raises(BadCaseInput, match="no department"):
        step(session, people, case, "dispatcher", "dispatch", at(8, 15, 50), department="NOPE", reason="x")
    step(session, people, case, "dispatcher", "dispatch", at(8, 15, 50), department="JD-630050",
         reason="the district office handles private land")
    assert case.department == "JD-630050" and case.dispatched_at == at(8, 15, 50)
    event = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.action == "dispatch")
                            .order_by(CaseEvent.id.desc())).first()
    assert event.data["override"] and event.data["redispatch"] and "private land" in event.note
    # the department that returned it no longer sees it; the new one does
    with pytest.raises(Forbidden, match="not your department"):
        step(session, people, case, "department", "handle", at(8, 16), photos=photo(session, people))


def test_illegal_transitions_stale_versions_and_roles_are_refused(session, people, report):
    case = report()
    with pytest.raises(InvalidTransition, match="cannot close .* needs a case that is checked; possible now: accept"):
        step(session, people, case, "shift_lead", "close", at(8, 15, 1))
    with pytest.raises(Forbidden, match="accept .* is for acceptor; you are logged in as dispatcher"):
        step(session, people, case, "dispatcher", "accept", at(8, 15, 1))
    old = case.version
    step(session, people, case, "acceptor", "accept", at(8, 15, 1))
    with pytest.raises(StaleCase, match="changed since you loaded it"):
        act(session=session, user=people["acceptor"], number=case.number, action="void",
            request=ActionRequest(version=old, reason="dup"), now=at(8, 15, 2))
    step(session, people, case, "acceptor", "void", at(8, 15, 3), reason="prank call")
    with pytest.raises(InvalidTransition, match="voided .* no further action"):
        step(session, people, case, "shift_lead", "file", at(8, 15, 4), confirm=True)


def test_ambiguous_routing_waits_for_the_dispatchers_confirmation(session, people, report):
    case = report(accuracy=150.0)  # too poor for an event case: ambiguous, best guess kept
    assert case.ambiguous and "too poor" in case.ambiguity_reason
    step(session, people, case, "acceptor", "accept", at(8, 15, 1))
    step(session, people, case, "shift_lead", "file", at(8, 15, 2), confirm=True)
    queue = list_cases(session=session, user=people["dispatcher"], status=["filed"], now=at(8, 15, 3))
    assert case.number in [c.number for c in queue.items if c.ambiguous]
    with pytest.raises(InvalidTransition, match="ambiguous"):
        step(session, people, case, "dispatcher", "dispatch", at(8, 15, 4))
    step(session, people, case, "dispatcher", "dispatch", at(8, 15, 4), confirm=True)
    assert case.status == "dispatched"


def test_duplicates_are_proposed_and_repeats_merged(session, people, report):
    first = report()
    # another inspector's report 20 m away: proposed as a duplicate, kept open for the acceptor
    people["inspector2"] = people["acceptor"]
    second = report(lon=STATION[0] + 0.0002, who="acceptor", now=at(8, 15, 20))
    assert second.status == "reported" and second.duplicate_candidates[0]["number"] == first.number
    assert 15 < second.duplicate_candidates[0]["distance_m"] < 30
    # the same inspector again, a few metres away, minutes later: merged at once
    repeat = report(lon=STATION[0] + 0.00003, now=at(8, 15, 10))
    assert repeat.status == "merged" and repeat.merged_into_id == first.id
    merge = session.scalars(select(CaseEvent).where(CaseEvent.case_id == repeat.id)).one()
    assert merge.data["auto_merged_into"] == first.number
    # a different class at the same place is not a duplicate
    other = report(class_code="20104", now=at(8, 15, 12))
    assert other.duplicate_candidates == [] and other.status == "reported"
    step(session, people, second, "acceptor", "merge", at(8, 15, 30), into=first.number, reason="same pile")
    assert second.status == "merged"


def test_self_disposal_needs_a_photo(session, people, report, tmp_path):
    with pytest.raises(BadCaseInput, match="photo"):
        report(self_disposed=True)


def test_visibility_and_overdue_queries(session, people, report):
    case = report()
    step(session, people, case, "acceptor", "accept", at(8, 15, 1))
    late = at(8, 17, 0)  # filing was due at 15:11
    assert overdue_counts(session=session, user=people["supervisor"], by="department", now=late) == \
        [{"department": None, "overdue": 1}]
    assert list_cases(session=session, user=people["supervisor"], overdue=True, now=late).total == 1
    assert list_cases(session=session, user=people["supervisor"], light="red", now=late).total == 1
    assert list_cases(session=session, user=people["department"], now=late).total == 0  # not dispatched to HW yet
    assert list_cases(session=session, user=people["inspector"], now=late).total == 1  # their own report
    seen = get_case(session=session, user=people["acceptor"], number=case.number, now=late)
    assert seen.actions == ["file", "void"][1:] and seen.light == "red"
    assert get_case(session=session, user=people["shift_lead"], number=case.number, now=late).actions == ["file", "void"]


def test_the_audit_trail_is_append_only(session, people, report):
    report()
    with pytest.raises(DBAPIError, match="append-only"):
        with session.begin_nested():
            session.execute(text("UPDATE case_event SET note = 'rewritten'"))
    with pytest.raises(DBAPIError, match="append-only"):
        with session.begin_nested():
            session.execute(text("DELETE FROM case_event"))
    assert session.scalar(select(CaseFile.id).limit(1)) is not None


def test_hotline_calls_are_placed_by_road_and_component(session, people):
    from gridmap.cases.hotline import submit_hotline
    from gridmap.cases.schemas import HotlineInput

    road, component, lon, lat = session.execute(text("""
        SELECT r.name, c.code, ST_X(c.geom), ST_Y(c.geom) FROM component c JOIN road r
          ON r.name IS NOT NULL AND ST_DWithin(r.geom::geography, c.geom::geography, 20)
        WHERE c.class_code = '0320' ORDER BY c.code LIMIT 1""")).one()
    at_lamp = submit_hotline(session=session, user=people["acceptor"], now=THURSDAY, call=HotlineInput(
        road_name=road, component_id=component, class_code="10320", caller="a passer-by")).case
    assert at_lamp.source == "hotline" and at_lamp.status == "reported" and at_lamp.component_id == component
    assert session.scalar(select(text("ST_X(geom)")).select_from(CaseFile).where(CaseFile.id == at_lamp.id)) == \
        pytest.approx(lon)
    assert f"at component {component}" in at_lamp.address
    on_road = submit_hotline(session=session, user=people["acceptor"], now=THURSDAY,
                             call=HotlineInput(road_name=road, class_code="20104"))
    assert on_road.case.accuracy_m > 0 and on_road.case.address.startswith(f"middle of {road}")
    with pytest.raises(BadCaseInput, match="is not on"):
        far = session.scalar(text("SELECT code FROM component WHERE class_code = '0320' AND "
                                  "ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(:x, :y), 4326)::geography) "
                                  "> 2000 LIMIT 1"), {"x": lon, "y": lat})
        submit_hotline(session=session, user=people["acceptor"], now=THURSDAY,
                       call=HotlineInput(road_name=road, component_id=far, class_code="10320"))
    with pytest.raises(Forbidden):
        submit_hotline(session=session, user=people["inspector"], now=THURSDAY,
                       call=HotlineInput(lon=lon, lat=lat, class_code="20102"))


def test_two_callers_at_one_place_are_proposed_not_merged(session, people):
    """Hotline calls entered by the same acceptor come from different citizens: the second is proposed as a
    duplicate of the first, never merged without the acceptor deciding (an inspector's repeat is)."""
    from gridmap.cases.hotline import submit_hotline
    from gridmap.cases.schemas import HotlineInput

    call = HotlineInput(lon=121.5170, lat=25.0460, class_code="20102", caller="a shopkeeper")
    first = submit_hotline(session=session, user=people["acceptor"], now=THURSDAY, call=call).case
    second = submit_hotline(session=session, user=people["acceptor"], now=THURSDAY + timedelta(minutes=5),
                            call=call).case
    assert second.status == "reported" and second.merged_into_id is None
    assert [p["number"] for p in second.duplicate_candidates] == [first.number]
