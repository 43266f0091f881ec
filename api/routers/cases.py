"""The case loop: list, read and act on cases; hotline calls."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import SessionDep, UserDep
from gridmap.cases.hotline import submit_hotline
from gridmap.cases.queries import get_case, list_cases, overdue_counts
from gridmap.cases.schemas import ActionRequest, CaseOut, CasePage, HotlineInput
from gridmap.cases.service import act
from gridmap.cases.workflow import ACTIONS

router = APIRouter(tags=["cases"])
ActionName = Literal[tuple(ACTIONS)]  # type: ignore[valid-type]


@router.get("/cases")
def cases(session: SessionDep, user: UserDep, status: Annotated[list[str] | None, Query()] = None,
          light: Literal["green", "yellow", "red"] | None = None, department: str | None = None,
          unit_grid: str | None = None, class_code: str | None = None, district: str | None = None,
          open_only: bool = False, overdue: bool = False, sort: str = "reported_at", descending: bool = True,
          page: Annotated[int, Query(ge=1)] = 1, size: Annotated[int, Query(ge=1, le=500)] = 50) -> CasePage:
    """The cases you may see, filtered (status, light, department, grid, class, district, overdue) and paged."""
    return list_cases(session=session, user=user, status=status, light=light, department=department,
                      unit_grid=unit_grid, class_code=class_code, district=district, open_only=open_only,
                      overdue=overdue, sort=sort, descending=descending, page=page, size=size)


@router.get("/cases/overdue")
def overdue(session: SessionDep, user: UserDep,
            by: Literal["department", "unit_grid", "class", "district", "street"] = "department") -> list[dict]:
    """Open cases past their stage deadline, counted by department, unit grid, class, district or street."""
    return overdue_counts(session=session, user=user, by=by)


@router.post("/cases/hotline", status_code=201)
def hotline(call: HotlineInput, session: SessionDep, user: UserDep) -> CaseOut:
    """Enter a hotline call (no GPS): placed on the map, or by road name and a nearby component's number."""
    filed = submit_hotline(session=session, user=user, call=call)
    return get_case(session=session, user=user, number=filed.case.number)


@router.get("/cases/{number}")
def case(number: str, session: SessionDep, user: UserDep) -> CaseOut:
    """One case with its routing evidence and its whole history."""
    return get_case(session=session, user=user, number=number)


@router.post("/cases/{number}/{action}")
def take_action(number: str, action: ActionName, request: ActionRequest, session: SessionDep, user: UserDep) -> CaseOut:
    """Act on a case (accept, file, dispatch, handle, check, close, …); 409 if its state or version forbids it."""
    act(session=session, user=user, number=number, action=action, request=request)
    return get_case(session=session, user=user, number=number)
