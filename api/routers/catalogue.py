"""The catalogue of component and event classes."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import SessionDep
from gridmap.catalogue.schemas import CatalogueClassOut
from gridmap.catalogue.service import search_classes

router = APIRouter(tags=["catalogue"])


@router.get("/catalogue/{case_type}")
def list_classes(
    case_type: Literal["component", "event"],
    session: SessionDep,
    q: Annotated[str | None, Query(description="code prefix, or part of the Chinese or English name")] = None,
) -> list[CatalogueClassOut]:
    """Search the component or event classes."""
    return [CatalogueClassOut.model_validate(c) for c in search_classes(session=session, case_type=case_type, query=q)]
