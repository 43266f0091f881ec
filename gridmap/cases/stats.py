"""Figures for the command centre: today's flow, what is late and where, and the month's on-time rate;
and per unit grid counts for the map's choropleth. All limited to what the user may see."""

from __future__ import annotations

from datetime import date, datetime, time, timezone

from sqlalchemy import Date, and_, cast, func, select
from sqlalchemy.orm import Session

from gridmap.calendar.service import get_calendar
from gridmap.cases.access import CASE_READERS, require_role, visible
from gridmap.cases.exceptions import BadCaseInput
from gridmap.cases.models import FINAL, CaseEvent, CaseFile
from gridmap.departments.models import Department
from gridmap.users.service import CurrentUser

GRID_METRICS = ("open", "overdue", "cases")


def headline(*, session: Session, user: CurrentUser, now: datetime | None = None) -> dict:
    """Today's reports, filings and dispatches, open cases past their deadline by department, and this
    month's on-time disposal rate (handled by the deadline / handled)."""
    require_role(user, CASE_READERS, "the headline figures")
    now = now or datetime.now(timezone.utc)
    zone = get_calendar(session=session).timezone
    local = now.astimezone(zone)
    today = datetime.combine(local.date(), time(0), zone)
    month = datetime.combine(local.date().replace(day=1), time(0), zone)
    seen = visible(session, user)
    actions = dict(session.execute(
        select(CaseEvent.action, func.count()).join(CaseFile, CaseFile.id == CaseEvent.case_id)
        .where(seen, CaseEvent.at >= today, CaseEvent.action.in_(("report", "self_dispose", "file", "dispatch")))
        .group_by(CaseEvent.action)).all())
    late = session.execute(
        select(CaseFile.department, Department.name, func.count())
        .outerjoin(Department, Department.code == CaseFile.department)
        .where(seen, CaseFile.status.not_in(FINAL), CaseFile.stage_deadline < now)
        .group_by(CaseFile.department, Department.name).order_by(func.count().desc())).all()
    handled, on_time = session.execute(
        select(func.count(), func.count().filter(CaseFile.handled_at <= CaseFile.disposal_deadline))
        .where(seen, CaseFile.handled_at >= month, CaseFile.handled_at.is_not(None))).one()
    open_count = session.scalar(select(func.count()).select_from(CaseFile).where(seen, CaseFile.status.not_in(FINAL)))
    return {"as_of": now.isoformat(), "day": local.date().isoformat(),
            "reports_today": actions.get("report", 0) + actions.get("self_dispose", 0),
            "filed_today": actions.get("file", 0), "dispatched_today": actions.get("dispatch", 0),
            "open": open_count, "overdue": sum(n for _, _, n in late),
            "overdue_by_department": [{"department": code, "name": name, "overdue": n} for code, name, n in late],
            "month": local.strftime("%Y-%m"), "handled_this_month": handled, "handled_on_time_this_month": on_time,
            "on_time_disposal_rate": round(on_time / handled, 4) if handled else None}


def grid_counts(*, session: Session, user: CurrentUser, metric: str = "open", date_from: date | None = None,
                date_to: date | None = None, now: datetime | None = None) -> list[dict]:
    """Per unit grid: open cases, overdue open cases, or all cases reported in [date_from, date_to]."""
    require_role(user, CASE_READERS, "grid figures")
    if metric not in GRID_METRICS:
        raise BadCaseInput(f"unknown metric {metric!r}: use one of {', '.join(GRID_METRICS)}")
    now = now or datetime.now(timezone.utc)
    where = [visible(session, user)]
    if metric in ("open", "overdue"):
        where.append(CaseFile.status.not_in(FINAL))
    if metric == "overdue":
        where.append(CaseFile.stage_deadline < now)
    where += period(session, date_from, date_to)
    rows = session.execute(select(CaseFile.unit_grid, func.count()).where(and_(*where))
                           .group_by(CaseFile.unit_grid).order_by(CaseFile.unit_grid))
    return [{"unit_grid": code, "value": n} for code, n in rows]


def period(session: Session, date_from: date | None, date_to: date | None) -> list:
    """Conditions for cases reported between two local dates (inclusive)."""
    if date_from and date_to and date_to < date_from:
        raise BadCaseInput(f"date_to {date_to} is before date_from {date_from}")
    zone = get_calendar(session=session).timezone.key
    day = cast(func.timezone(zone, CaseFile.reported_at), Date)
    return [c for c in (day >= date_from if date_from else None, day <= date_to if date_to else None) if c is not None]

