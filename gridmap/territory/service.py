"""The city record, data-source attributions, and counts per layer."""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from gridmap.territory.models import City, DataSource, District

#: layers whose rows are counted on the landing page and by `gridmap db status`
COUNTED = ("district", "street", "community", "unit_grid", "duty_grid", "road", "component", "department")


def set_city(*, session: Session, name: str, name_en: str | None, metric_srid: int, timezone: str) -> None:
    """Create or update the city record."""
    values = dict(id=1, name=name, name_en=name_en, metric_srid=metric_srid, timezone=timezone)
    session.execute(insert(City).values(values).on_conflict_do_update(index_elements=["id"], set_=values))


def get_city(*, session: Session) -> City | None:
    return session.get(City, 1)


def upsert_sources(*, session: Session, sources: list[dict]) -> None:
    """Record where data came from and the attribution its licence requires."""
    for source in sources:
        statement = insert(DataSource).values(**source)
        session.execute(statement.on_conflict_do_update(index_elements=["code"], set_=source))


def attributions(*, session: Session, codes: set[str] | None = None) -> list[str]:
    """Return the attribution texts of the given sources (all when ``codes`` is None)."""
    statement = select(DataSource.attribution).order_by(DataSource.code)
    if codes is not None:
        statement = statement.where(DataSource.code.in_(codes))
    return list(session.scalars(statement))


def layer_counts(*, session: Session) -> dict[str, int]:
    """Return the number of current rows in each counted layer."""
    counts = {}
    for table in COUNTED:
        where = " WHERE valid_to IS NULL" if table == "unit_grid" else ""
        counts[table] = session.execute(text(f"SELECT count(*) FROM {table}{where}")).scalar_one()
    return counts


def territory_is_empty(*, session: Session) -> bool:
    return session.scalar(select(func.count()).select_from(District)) == 0


def postgis_version(*, session: Session) -> str:
    """The PostGIS library version of the database (a cheap proof that it answers)."""
    return session.execute(text("SELECT postgis_lib_version()")).scalar_one()
