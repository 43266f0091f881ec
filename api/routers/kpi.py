"""KPIs 考核指标 per region, department and person for a period."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import SessionDep, UserDep
from gridmap.evaluation.definitions import SUBJECTS
from gridmap.evaluation.periods import FORMS
from gridmap.evaluation.schemas import KpiTable
from gridmap.evaluation.service import kpi_table

router = APIRouter(tags=["evaluation"])
Subject = Literal[tuple(SUBJECTS)]  # type: ignore[valid-type]


@router.get("/kpi")
def kpi(session: SessionDep, user: UserDep,
        period: Annotated[str, Query(description="one of: " + ", ".join(FORMS), examples=["2026-10"])],
        by: Subject = "department") -> KpiTable:
    """KPIs of every subject of one kind for a period, best first, with the definitions of the columns
    (supervisors, analysts, admins, shift leads and dispatchers)."""
    return kpi_table(session=session, user=user, period=period, by=by)
