"""Load and look up the catalogue."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from gridmap.catalogue.models import ComponentClass, EventClass
from gridmap.io.importer import import_layer
from gridmap.io.report import ImportReport

#: file in the catalogue folder → layer, in load order
CATALOGUE_FILES = {
    "road_grades.csv": "road_grade",
    "component_classes.csv": "component_class",
    "event_classes.csv": "event_class",
}


def load_catalogue(*, session: Session, folder: Path) -> list[ImportReport]:
    """Load road grades, component classes and event classes from ``folder`` (strict: all or nothing)."""
    return [
        import_layer(session=session, layer=layer, data=Path(folder) / name, strict=True)
        for name, layer in CATALOGUE_FILES.items()
    ]


def search_classes(*, session: Session, case_type: str, query: str | None = None) -> list[ComponentClass | EventClass]:
    """Return the classes of ``case_type`` whose code, Chinese or English name contains ``query``."""
    model = ComponentClass if case_type == "component" else EventClass
    statement = select(model).order_by(model.code)
    if query:
        pattern = f"%{query}%"
        statement = statement.where(
            or_(model.code.startswith(query), model.name.ilike(pattern), model.name_en.ilike(pattern))
        )
    return list(session.scalars(statement))
