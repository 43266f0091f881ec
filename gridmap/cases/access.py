"""Who sees which cases and may act on them: department users their department's, inspectors their
duty grids' (and their own reports), the centre's roles everything."""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, or_, select, true
from sqlalchemy.orm import Session

from gridmap.cases.models import CaseFile
from gridmap.cases.workflow import Action
from gridmap.territory.models import DutyGrid, DutyGridInspector
from gridmap.users.exceptions import Forbidden
from gridmap.users.service import CurrentUser

#: roles that take part in the case loop or watch it (everyone but the user administrator)
CASE_READERS = ("inspector", "acceptor", "shift_lead", "dispatcher", "department", "supervisor", "analyst")
#: roles that may file a report (inspectors in the street; acceptors for hotline calls)
REPORTERS = ("inspector", "acceptor")


def require_role(user: CurrentUser, roles: tuple[str, ...], what: str) -> None:
    if user.role not in roles:
        raise Forbidden(f"{what} is for {', '.join(roles)}; you are logged in as {user.role}")


def duty_grids(session: Session, user: CurrentUser) -> list[str]:
    """The codes of the duty grids an inspector user patrols."""
    if user.inspector_id is None:
        return []
    return list(session.scalars(select(DutyGrid.code).join(DutyGridInspector)
                                .where(DutyGridInspector.inspector_id == user.inspector_id)))


def visible(session: Session, user: CurrentUser) -> ColumnElement[bool]:
    """A WHERE clause selecting the cases ``user`` may see."""
    if user.role == "department":
        return CaseFile.department == user.department
    if user.role == "inspector":
        return or_(CaseFile.reporter_id == user.id, CaseFile.duty_grid.in_(duty_grids(session, user)))
    return true() if user.role in CASE_READERS else false()


def check_may_act(session: Session, user: CurrentUser, act: Action, case: CaseFile) -> None:
    """Refuse with :class:`Forbidden` unless ``user``'s role takes ``act`` and the case is theirs to act on."""
    require_role(user, act.roles, f"{act.name} ({act.term})")
    if user.role == "department" and case.department != user.department:
        raise Forbidden(f"case {case.number} is with {case.department}, not your department {user.department}")
    if user.role == "inspector" and case.duty_grid not in duty_grids(session, user):
        raise Forbidden(f"case {case.number} lies in duty grid {case.duty_grid}, which is not one of yours")
