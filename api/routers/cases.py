"""The case loop: list, read and act on cases; hotline calls."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from api.deps import SessionDep, UserDep
from gridmap.cases.hotline import submit_hotline
from gridmap.cases.queries import cases_geojson, get_case, list_cases, overdue_counts
from gridmap.cases.schemas import ActionRequest, CaseOut, CasePage, CaseQuery, HotlineInput
from gridmap.cases.stats import grid_counts, headline
from gridmap.cases.service import act
from gridmap.cases.workflow import ACTIONS

router = APIRouter(tags=["cases"])
ActionName = Literal[tuple(ACTIONS)]  # type: ignore[valid-type]


@router.get("/cases")
def cases(session: SessionDep, user: UserDep, query: Annotated[CaseQuery, Query()], sort: str = "reported_at",
          descending: bool = True, page: Annotated[int, Query(ge=1)] = 1,
          size: Annotated[int, Query(ge=1, le=500)] = 50) -> CasePage:
    """The cases you may see, filtered (status, light, department, grid, class, district, street, dates,
    overdue), sorted and paged."""
    return list_cases(session=session, user=user, query=query, sort=sort, descending=descending, page=page, size=size)


@router.get("/cases.geojson", response_class=JSONResponse,
            responses={200: {"content": {"application/geo+json": {}}}})
def cases_map(session: SessionDep, user: UserDep, query: Annotated[CaseQuery, Query()]) -> JSONResponse:
    """The cases you may see as GeoJSON points (WGS84) with their light and your actions, for the map."""
    return JSONResponse(cases_geojson(session=session, user=user, query=query), media_type="application/geo+json",
                        headers={"Cache-Control": "no-store"})


@router.get("/stats/headline")
def stats_headline(session: SessionDep, user: UserDep) -> dict:
    """Today's reports, filings, dispatches; what is late by department; this month's on-time disposal rate."""
    return headline(session=session, user=user)


@router.get("/stats/grids")
def stats_grids(session: SessionDep, user: UserDep, metric: Literal["open", "overdue", "cases"] = "open",
                date_from: date | None = None, date_to: date | None = None) -> list[dict]:
    """Per unit grid: open, overdue, or all cases reported in the period — for the map's choropleth."""
    return grid_counts(session=session, user=user, metric=metric, date_from=date_from, date_to=date_to)


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
