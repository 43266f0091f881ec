"""Preview where a report would go, without filing a case."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import SessionDep
from gridmap.routing.schemas import AssignRequest, Decision
from gridmap.routing.service import assign_one

router = APIRouter(tags=["routing"])


@router.post("/assign")
def preview_assignment(request: AssignRequest, session: SessionDep) -> Decision:
    """Decide the unit grid, road, component, department and time limit of a report, with the evidence."""
    return Decision(**assign_one(session=session, **request.model_dump()))
