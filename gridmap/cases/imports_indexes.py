"""``case_file``'s indexes around a bulk import: dropped before the rows stream in, built again after.

Keeping ten indexes up to date row by row costs more than the COPY itself; a large import into a
small table drops the secondary indexes and builds them again afterwards (in the import's transaction,
so a failed import restores them), which holds an exclusive lock on ``case_file`` until the caller
commits. When another session is using the table the lock is not waited for: the indexes stay and are
kept up to date row by row.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateIndex

from gridmap.cases.models import CaseFile

#: an import of at least this many new cases into a table not much bigger rebuilds the indexes
REBUILD_MIN_ROWS = 100_000
LOCK_TIMEOUT = "5s"


def should_rebuild(session: Session, count: int) -> bool:
    """Whether ``count`` new cases are a large import for ``case_file`` as it is."""
    existing = session.execute(text("SELECT greatest(reltuples, 0) FROM pg_class "
                                    "WHERE oid = 'case_file'::regclass")).scalar()
    return count >= REBUILD_MIN_ROWS and count >= (existing or 0) / 2


def lock_case_file(session: Session) -> bool:
    """Take ``case_file`` for this transaction alone (until it ends); False when another session is using it
    and does not let go within :data:`LOCK_TIMEOUT`."""
    savepoint = session.begin_nested()
    try:
        previous = session.execute(text("SHOW lock_timeout")).scalar_one()
        session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        session.execute(text("LOCK TABLE case_file IN ACCESS EXCLUSIVE MODE"))
        session.execute(text("SELECT set_config('lock_timeout', :value, true)"), {"value": previous})
    except OperationalError:
        savepoint.rollback()
        return False
    savepoint.commit()
    return True


def drop_indexes(session: Session) -> list[str]:
    """Drop ``case_file``'s indexes that back no constraint (the table locked); return how to create them
    again."""
    found = session.execute(text("""
        SELECT i.indexname, i.indexdef FROM pg_indexes i
        WHERE i.schemaname = current_schema() AND i.tablename = 'case_file'
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = to_regclass(quote_ident(i.indexname)))
        ORDER BY i.indexname""")).all()
    for name, _definition in found:
        session.execute(text(f'DROP INDEX "{name}"'))
    return [_create_statement(session, name, definition) for name, definition in found]


def _create_statement(session: Session, name: str, deparsed: str) -> str:
    """How to create index ``name`` again: as the model declares it (the migrations made it from the same
    words), else as PostgreSQL prints it — which may word a predicate differently each time."""
    for index in CaseFile.__table__.indexes:
        if index.name == name:
            return str(CreateIndex(index).compile(dialect=session.get_bind().dialect))
    return deparsed


def rebuild(session: Session, definitions: list[str]) -> None:
    for definition in definitions:
        session.execute(text(definition))

