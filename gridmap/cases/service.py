"""Acting on cases: every action is checked (state, role, version), changes the case and its clocks,
and appends one event. Services never commit; the caller owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridmap.calendar.service import Calendar, get_calendar
from gridmap.cases import deadlines
from gridmap.cases.access import check_may_act
from gridmap.cases.exceptions import BadCaseInput, CaseNotFound, InvalidTransition, StaleCase
from gridmap.cases.models import FINAL, CaseEvent, CaseFile, Photo
from gridmap.cases.schemas import ActionRequest
from gridmap.cases.workflow import Action, action as action_named, check_transition
from gridmap.catalogue.models import ComponentClass, EventClass
from gridmap.departments.models import Department
from gridmap.users.service import CurrentUser

#: actions that must say why
NEEDS_REASON = {"reject", "void", "return", "park", "refuse_return", "refuse_extension", "request_extension",
                "merge"}


@dataclass
class Step:
    """One action in progress: the case, who acts, what they sent, and what the event will record."""

    session: Session
    case: CaseFile
    user: CurrentUser | None
    request: ActionRequest
    calendar: Calendar
    now: datetime
    data: dict


def act(*, session: Session, user: CurrentUser, number: str, action: str, request: ActionRequest,
        now: datetime | None = None, calendar: Calendar | None = None) -> CaseFile:
    """Take ``action`` on case ``number`` as ``user``.

    ``calendar`` is the working calendar to count in when the caller holds it already (a bulk replay of
    many actions); otherwise it is looked up (one query for its version, then the cache).

    Raises :class:`InvalidTransition` (the case's state does not allow it), :class:`StaleCase` (someone
    acted since ``request.version``), :class:`~gridmap.users.exceptions.Forbidden`, :class:`CaseNotFound`
    or :class:`BadCaseInput` (a missing reason, an unknown department, …).
    """
    act_ = action_named(action)
    case = session.scalar(select(CaseFile).where(CaseFile.number == number).with_for_update())
    if case is None:
        raise CaseNotFound(f"no case {number}")
    check_may_act(session, user, act_, case)
    if request.version != case.version:
        raise StaleCase(f"case {number} changed since you loaded it (your version {request.version}, now "
                        f"{case.version}, {case.status}): reload it and try again")
    check_transition(act_, case.status)
    if action in NEEDS_REASON and not (request.reason or request.note):
        raise BadCaseInput(f"{action} ({act_.term}) needs a reason")
    _known_photos(session, request.photos)
    step = Step(session, case, user, request, calendar or get_calendar(session=session),
                now or datetime.now(timezone.utc), {})
    before, due = case.status, case.stage_deadline
    HANDLERS.get(action, _move)(step, act_)
    case.version += 1
    record(step, act_.name, before, due=due)
    session.flush()
    return case


def record(step: Step, action: str, before: str | None, *, due: datetime | None = None,
           add: bool = True) -> CaseEvent:
    """Append the event of ``step`` (append-only: the table refuses updates and deletes); ``due`` is the
    deadline of the stage the action ended (the KPIs' "on time"). With ``add=False`` only build it, for a
    caller that inserts it itself (a new case and its first event go in together)."""
    r, user = step.request, step.user
    values = dict(case_id=step.case.id, action=action, from_status=before, to_status=step.case.status,
                  actor_id=user.id if user else None, actor_role=user.role if user else None, at=step.now, due_at=due,
                  lon=r.lon, lat=r.lat, accuracy_m=r.accuracy, note=r.note or r.reason, photos=list(r.photos),
                  data=step.data)
    if not add:  # only read by its caller: its columns set at once, without the attribute events (as _new_case)
        event = CaseEvent.__mapper__.class_manager.new_instance()
        event.__dict__.update(values)
        return event
    event = CaseEvent(**values)
    step.session.add(event)
    return event


def _known_photos(session: Session, photos: list[str]) -> None:
    if photos:
        known = set(session.scalars(select(Photo.sha256).where(Photo.sha256.in_(photos))))
        missing = [p for p in photos if p not in known]
        if missing:
            raise BadCaseInput(f"photos {', '.join(m[:12] for m in missing)}… were never uploaded: "
                               "POST them to /api/v1/photos first")


def _move(step: Step, act_: Action) -> None:
    """The plain case: go to the action's target and start that stage's clock."""
    step.case.status = act_.target
    if act_.target in FINAL:
        step.case.stage_started_at = step.case.stage_warn_at = step.case.stage_deadline = None
    else:
        deadlines.start_stage(step.case, step.calendar, step.now)


def _file(step: Step, act_: Action) -> None:
    """立案: only when the class's filing condition is met; the routing evidence is kept with the event."""
    model = ComponentClass if step.case.case_type == "component" else EventClass
    condition = step.session.scalar(select(model.filing_condition).where(model.code == step.case.class_code))
    if condition and not step.request.confirm:
        raise BadCaseInput(f"filing needs the class's filing condition to be met: 「{condition}」 — "
                           "confirm it with confirm=true")
    step.data.update(filing_condition=condition, evidence=step.case.evidence, proposed=step.case.proposed_department)
    step.case.filed_at = step.case.filed_at or step.now
    _move(step, act_)


def _dispatch(step: Step, act_: Action) -> None:
    """派遣: to the proposed department unless the dispatcher says otherwise, with a reason."""
    case, r = step.case, step.request
    department = r.department or case.proposed_department
    if department is None:
        raise BadCaseInput("the routing engine proposed no department: name one in 'department'")
    if step.session.scalar(select(Department.id).where(Department.code == department)) is None:
        raise BadCaseInput(f"no department with code {department!r}")
    if case.ambiguous and case.status == "filed" and not r.confirm and department == case.proposed_department:
        raise InvalidTransition(f"the routing decision is ambiguous ({case.ambiguity_reason}): check it and "
                                "dispatch with confirm=true, or choose another department")
    override = department != case.proposed_department
    if override and not r.reason:
        raise BadCaseInput(f"dispatching to {department} instead of the proposed {case.proposed_department} "
                           "needs a reason")
    if case.status == "returned" and department == case.department and not r.reason:
        raise BadCaseInput(f"{department} returned this case: sending it back to them needs a reason")
    step.data.update(department=department, proposed=case.proposed_department, override=override,
                     redispatch=case.status == "returned", confirmed_ambiguous=bool(case.ambiguous and r.confirm))
    case.department, case.status = department, "dispatched"
    deadlines.start_disposal(case, step.calendar, step.now)


def _return(step: Step, act_: Action) -> None:
    """回退: the department says the case is not its remit; the dispatcher decides."""
    step.case.return_count += 1
    step.data.update(department=step.case.department)
    _move(step, act_)


def _refuse_return(step: Step, act_: Action) -> None:
    step.case.status = "dispatched"
    deadlines.continue_disposal(step.case, step.calendar)


def _request_extension(step: Step, act_: Action) -> None:
    r = step.request
    if r.extension is None:
        raise BadCaseInput("request_extension needs 'extension' (how much more time) and 'extension_unit'")
    extra = step.calendar.to_duration(r.extension, r.extension_unit)
    step.case.extension_requested_min = deadlines.minutes(extra)
    step.data.update(extension=r.extension, unit=r.extension_unit)


def _decide_extension(step: Step, act_: Action) -> None:
    case = step.case
    if case.extension_requested_min is None:
        raise InvalidTransition("no extension has been requested for this case")
    step.data.update(extension_min=case.extension_requested_min, approved=act_.name == "approve_extension")
    if act_.name == "approve_extension":
        deadlines.extend_disposal(case, step.calendar, timedelta(minutes=case.extension_requested_min))
        step.data.update(disposal_deadline=case.disposal_deadline.isoformat() if case.disposal_deadline else None)
    case.extension_requested_min = None


def _park(step: Step, act_: Action) -> None:
    step.case.status = "parked"
    deadlines.pause_disposal(step.case, step.calendar, step.now)
    step.data.update(used_min=round(step.case.disposal_used_min, 1))


def _resume(step: Step, act_: Action) -> None:
    step.case.status = "dispatched"
    deadlines.resume_disposal(step.case, step.calendar, step.now)


def _handle(step: Step, act_: Action) -> None:
    """处置反馈: the department reports back, with at least one photo of the result."""
    if not step.request.photos:
        raise BadCaseInput("handle (处置反馈) needs at least one photo of the result")
    case = step.case
    case.handled_at = step.now
    case.disposal_minutes = deadlines.disposal_minutes(case, step.calendar, step.now)
    step.data.update(on_time=case.disposal_deadline is None or step.now <= case.disposal_deadline,
                     disposal_minutes=round(case.disposal_minutes, 1))
    _move(step, act_)


def _check(step: Step, act_: Action) -> None:
    """核查: passed → awaiting closing; failed → back to the same department (返工), deadline unchanged."""
    case, r = step.case, step.request
    if r.passed is None:
        raise BadCaseInput("check (核查) needs 'passed': true when the problem is solved, false for rework")
    step.data.update(passed=r.passed)
    if r.passed:
        _move(step, act_)
        return
    if not (r.note or r.reason):
        raise BadCaseInput("a failed check needs a note saying what is still wrong")
    case.rework_count += 1
    case.status, case.handled_at = "dispatched", None
    deadlines.continue_disposal(case, step.calendar)


def _close(step: Step, act_: Action) -> None:
    case = step.case
    on_time = case.handled_at is None or case.disposal_deadline is None or case.handled_at <= case.disposal_deadline
    case.close_kind = step.request.close_kind or ("normal" if on_time else "overdue")
    case.closed_at = step.now
    step.data.update(close_kind=case.close_kind, handled_on_time=on_time)
    _move(step, act_)


def _merge(step: Step, act_: Action) -> None:
    case, into = step.case, step.request.into
    target = step.session.scalar(select(CaseFile).where(CaseFile.number == into)) if into else None
    if target is None or target.id == case.id:
        raise BadCaseInput(f"merge needs 'into': the number of another open case (got {into!r})")
    if target.status in FINAL:
        raise InvalidTransition(f"case {into} is {target.status}: merge into an open case")
    case.merged_into_id = target.id
    step.data.update(into=into)
    _move(step, act_)


HANDLERS = {"file": _file, "dispatch": _dispatch, "return": _return, "refuse_return": _refuse_return,
            "request_extension": _request_extension, "approve_extension": _decide_extension,
            "refuse_extension": _decide_extension, "park": _park, "resume": _resume, "handle": _handle,
            "check": _check, "close": _close, "merge": _merge}
