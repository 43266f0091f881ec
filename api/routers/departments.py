"""Departments and the responsibility rules."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import SessionDep
from gridmap.departments.service import RuleMatch, list_departments, matching_rules

router = APIRouter(tags=["departments"])


@router.get("/departments")
def get_departments(session: SessionDep) -> list[dict]:
    """List the departments and street offices."""
    return list_departments(session=session)


@router.get("/rules/match")
def match_rules(
    session: SessionDep,
    case_type: Literal["component", "event"],
    class_code: Annotated[str, Query(pattern=r"^[0-9]{4}$", description="minor class, e.g. 0102")],
    district_id: int | None = None,
    road_grade: str | None = None,
    area_class: Literal["A", "B", "C"] | None = None,
) -> list[RuleMatch]:
    """List the responsibility rules that apply to a case, the winning rule first."""
    return matching_rules(session=session, case_type=case_type, class_code=class_code, district_id=district_id,
                          road_grade=road_grade, area_class=area_class)
