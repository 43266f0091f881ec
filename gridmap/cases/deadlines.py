"""Clocks on a case, in working time on the city's calendar (DOMAIN.md §6).

Each waiting stage has its own limit (:data:`~gridmap.cases.policy.STAGE_LIMIT_MIN`); while the case is
with the department, the stage clock is the disposal clock: it starts at dispatch with the catalogue's
limit for the class and area class, approved extensions add to it, parking pauses it (the working time
used so far is kept and the rest runs on after resuming). A re-dispatch after a return starts a new
disposal clock for the new department; rework after a failed check keeps the original deadline.

The running stage's deadline and the moment it turns yellow are stored, so "which cases are late" is a
plain indexed query and the light is ``now`` compared with two timestamps.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from gridmap.calendar.service import Calendar
from gridmap.cases.models import CaseFile
from gridmap.cases.policy import STAGE_LIMIT_MIN, WARN_SHARE

LIGHTS = ("green", "yellow", "red")


def minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60


def start_stage(case: CaseFile, calendar: Calendar, now: datetime) -> None:
    """Start the clock of the stage ``case.status`` has just entered (none for parked or final states)."""
    limit = STAGE_LIMIT_MIN.get(case.status)
    case.stage_started_at = now if limit is not None or case.status == "dispatched" else None
    if limit is None:
        case.stage_warn_at = case.stage_deadline = None
        return
    case.stage_warn_at = calendar.add_working_time(now, timedelta(minutes=limit * WARN_SHARE))
    case.stage_deadline = calendar.add_working_time(now, timedelta(minutes=limit))


def start_disposal(case: CaseFile, calendar: Calendar, now: datetime) -> None:
    """派遣: a new disposal clock with the catalogue's limit (a re-dispatch starts afresh)."""
    limit = calendar.to_duration(float(case.time_limit), case.time_limit_unit) if case.time_limit else timedelta()
    case.dispatched_at = case.clock_resumed_at = case.stage_started_at = now
    case.disposal_limit_min, case.disposal_used_min = minutes(limit), 0.0
    _run_disposal(case, calendar)


def pause_disposal(case: CaseFile, calendar: Calendar, now: datetime) -> None:
    """挂账: keep the working time used so far and stop the clock."""
    case.disposal_used_min += minutes(calendar.working_time_between(case.clock_resumed_at, now))
    case.clock_resumed_at = None
    case.stage_warn_at = case.stage_deadline = case.disposal_deadline = None


def resume_disposal(case: CaseFile, calendar: Calendar, now: datetime) -> None:
    """恢复: the rest of the limit runs on from now."""
    case.clock_resumed_at = case.stage_started_at = now
    _run_disposal(case, calendar)


def extend_disposal(case: CaseFile, calendar: Calendar, extra: timedelta) -> None:
    """延时 approved: the limit grows; the deadline moves (unless the clock is paused)."""
    case.disposal_limit_min += minutes(extra)
    if case.clock_resumed_at is not None:
        _run_disposal(case, calendar)


def disposal_minutes(case: CaseFile, calendar: Calendar, now: datetime) -> float:
    """Working minutes the department has used so far (time parked left out)."""
    running = calendar.working_time_between(case.clock_resumed_at, now) if case.clock_resumed_at else timedelta()
    return case.disposal_used_min + minutes(running)


def continue_disposal(case: CaseFile, calendar: Calendar) -> None:
    """Back with the same department (refused return, failed check 返工): the disposal deadline stands,
    since the clock has run on from the same start."""
    case.stage_started_at = case.clock_resumed_at
    _run_disposal(case, calendar)


def _run_disposal(case: CaseFile, calendar: Calendar) -> None:
    start, used, limit = case.clock_resumed_at, case.disposal_used_min, case.disposal_limit_min
    case.disposal_deadline = calendar.add_working_time(start, timedelta(minutes=max(limit - used, 0.0)))
    case.stage_warn_at = calendar.add_working_time(start, timedelta(minutes=max(limit * WARN_SHARE - used, 0.0)))
    case.stage_deadline = case.disposal_deadline


def light(case: CaseFile, now: datetime) -> str | None:
    """green before 80 % of the running stage's limit, yellow up to 100 %, red beyond; None when no clock runs."""
    if case.stage_deadline is None:
        return None
    if now > case.stage_deadline:
        return "red"
    return "yellow" if now >= case.stage_warn_at else "green"
