"""Writing imported cases: new ones with binary COPY (:mod:`gridmap.cases.imports_copy`) straight into
``case_file``, changed ones through a staging table and one ``UPDATE``; cases worked on in gridmap since
their import are left alone.

Keeping ten indexes up to date row by row costs more than the COPY itself; a large import into a
small table drops the secondary indexes and builds them again afterwards (in the same transaction, so
a failed import restores them), which holds an exclusive lock on ``case_file`` until the caller commits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateIndex

from gridmap.cases.imports_copy import Column, copy_rows
from gridmap.cases.models import CaseFile
from gridmap.db.base import STORAGE_SRID


#: the columns an import writes (besides id and number), with their COPY encodings; the database's
#: defaults fill the rest (version 1, counts 0, empty flags and duplicate lists, updated_at)
CASE_COLUMNS = (
    ("source", "text"), ("status", "text"), ("case_type", "text"), ("class_code", "text"), ("local_class", "text"),
    ("origin", "text"), ("external_number", "text"), ("description", "text"), ("address", "text"),
    ("reported_at", "timestamptz"), ("geom", "point"), ("reported_x", "float8"), ("reported_y", "float8"),
    ("reported_crs", "text"), ("accuracy_m", "float8"), ("unit_grid", "text"), ("duty_grid", "text"),
    ("community", "text"), ("street", "text"), ("district", "text"), ("area_class", "text"), ("road_id", "text"),
    ("component_id", "text"), ("component_version", "int4"), ("proposed_department", "text"),
    ("department", "text"), ("rule", "text"), ("ambiguous", "bool"), ("ambiguity_reason", "text"),
    ("evidence", "jsonb"), ("stage_started_at", "timestamptz"), ("stage_warn_at", "timestamptz"),
    ("stage_deadline", "timestamptz"), ("time_limit", "numeric"), ("time_limit_unit", "text"),
    ("disposal_limit_min", "float8"), ("filed_at", "timestamptz"), ("dispatched_at", "timestamptz"),
    ("clock_resumed_at", "timestamptz"), ("disposal_deadline", "timestamptz"), ("handled_at", "timestamptz"),
    ("disposal_minutes", "float8"), ("closed_at", "timestamptz"), ("close_kind", "text"),
)
#: what a re-import compares to decide whether a case changed (the evidence says where it came from)
COMPARED = tuple(name for name, _kind in CASE_COLUMNS if name != "evidence")
STAGE = "gridmap_case_import"
#: the cases an origin has already, and whether each has been worked on in gridmap since (has events)
KNOWN = text("SELECT c.external_number, c.id, EXISTS (SELECT 1 FROM case_event e WHERE e.case_id = c.id) "
             "FROM case_file c WHERE c.origin = :origin")
#: an import of at least this many new cases into a table not much bigger rebuilds the indexes
REBUILD_MIN_ROWS = 100_000
LOCK_TIMEOUT = "5s"


@dataclass
class Written:
    """What :func:`write_cases` did, and how long each step took."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    kept: int = 0
    indexes_rebuilt: bool = False
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def lap(self, step: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[step] = round(now - since, 3)
        return now

    @property
    def counts(self) -> tuple[int, int, int, int]:
        return self.inserted, self.updated, self.unchanged, self.kept


def _columns(cases: dict, rows: np.ndarray | None) -> list[Column]:
    """The :data:`CASE_COLUMNS` of ``rows`` (None: all) of ``cases``."""
    def take(values):
        if rows is None:
            return values
        return values.take(pa.array(rows)) if isinstance(values, pa.Array) else values[rows]

    return [Column(name, kind, (take(cases["lon"]), take(cases["lat"]), STORAGE_SRID) if kind == "point"
                   else take(cases[name])) for name, kind in CASE_COLUMNS]


def write_cases(session: Session, cases: dict, *, origin: str, rebuild_indexes: bool | None = None,
                progress: Callable[[float], None] | None = None) -> Written:
    """Insert the new cases of ``cases`` (columns of :data:`CASE_COLUMNS`, ``lon``/``lat``, ``opened_day``),
    update the known ones that changed and were not worked on since; return the counts."""
    written, clock = Written(), time.perf_counter()
    known = pd.DataFrame(session.execute(KNOWN, {"origin": origin}).all(), columns=["external_number", "id", "touched"])
    at = pd.Index(known["external_number"]).get_indexer(pd.Series(cases["external_number"], dtype=object))
    new = np.flatnonzero(at < 0)
    touched = (at >= 0) & np.append(known["touched"].to_numpy(dtype=bool), False)[at]
    changed = np.flatnonzero((at >= 0) & ~touched)
    written.kept = int(touched.sum())
    tell, share = progress or (lambda done: None), len(new) / max(len(new) + len(changed), 1)
    clock = written.lap("known", clock)
    if len(new):
        rebuild = _should_rebuild(session, len(new)) if rebuild_indexes is None else rebuild_indexes
        dropped = _drop_indexes(session, written) if rebuild else None
        clock = written.lap("drop indexes", clock) if rebuild else clock
        rows = None if len(new) == len(at) else new
        written.inserted = _insert(session, cases, rows, lambda done: tell(done * share), written)
        clock = time.perf_counter()
        if dropped is not None:
            _rebuild(session, dropped)
            written.indexes_rebuilt = True
            clock = written.lap("build indexes", clock)
        if len(new) >= REBUILD_MIN_ROWS:  # the planner's statistics, for the KPIs that follow
            session.execute(text("ANALYZE case_file"))
            clock = written.lap("analyze", clock)
    if len(changed):
        written.updated = _update(session, cases, changed, known["id"].to_numpy()[at[changed]])
        written.unchanged = len(changed) - written.updated
        written.lap("update", clock)
    tell(1.0)
    return written


def _insert(session: Session, cases: dict, rows: np.ndarray | None, progress: Callable[[float], None],
            written: Written) -> int:
    """COPY the new cases ``rows`` (None: all) into ``case_file`` with new ids and numbers."""
    clock = time.perf_counter()
    day = cases["opened_day"] if rows is None else cases["opened_day"][rows]
    ids = _draw_ids(session, len(day))
    digits = pc.utf8_lpad(pa.array(ids).cast(pa.string()), 6, "0")
    number = pc.binary_join_element_wise("I", pa.array(day).cast(pa.string()), digits, "")
    columns = [Column("id", "int4", ids), Column("number", "text", number), *_columns(cases, rows)]
    clock = written.lap("draw ids", clock)
    count = copy_rows(_cursor(session), "case_file", columns, lambda done: progress(done / len(ids)))
    written.lap("encode and copy", clock)
    return count


def _cursor(session: Session):
    """A cursor of the session's own connection (the same transaction), for COPY."""
    return session.connection().connection.driver_connection.cursor()


def _draw_ids(session: Session, count: int) -> np.ndarray:
    """``count`` new case ids from the table's sequence (native cases draw theirs from it too). Drawn in
    one statement they are usually one run, which two numbers describe; when another session drew some
    meanwhile, they are listed."""
    draw = f"SELECT nextval('case_file_id_seq') AS id FROM generate_series(1, {int(count)})"
    low, high = session.execute(text(f"SELECT min(id), max(id) FROM ({draw}) drawn")).one()
    if high - low + 1 == count:
        return np.arange(low, high + 1, dtype=np.int64)
    listed = session.execute(text(f"SELECT string_agg(id::text, ',') FROM ({draw}) drawn")).scalar_one()
    return np.sort(np.array(listed.split(","), dtype=np.int64))


def _update(session: Session, cases: dict, rows: np.ndarray, ids: np.ndarray) -> int:
    names = [name for name, _kind in CASE_COLUMNS]
    # the columns' types without their constraints (a staged row has no number)
    session.execute(text(f"CREATE TEMP TABLE {STAGE} ON COMMIT DROP AS SELECT id, {', '.join(names)} "
                         "FROM case_file WITH NO DATA"))
    copy_rows(_cursor(session), STAGE, [Column("id", "int4", ids), *_columns(cases, rows)])
    updated = session.execute(text(
        f"UPDATE case_file t SET ({', '.join(names)}) = ({', '.join('s.' + c for c in names)}), "
        f"version = t.version + 1, updated_at = now() FROM {STAGE} s WHERE t.id = s.id "
        f"AND ({', '.join('t.' + c for c in COMPARED)}) IS DISTINCT FROM ({', '.join('s.' + c for c in COMPARED)}) "
        "AND NOT EXISTS (SELECT 1 FROM case_event e WHERE e.case_id = t.id)")).rowcount
    session.execute(text(f"DROP TABLE {STAGE}"))
    return updated


def _should_rebuild(session: Session, count: int) -> bool:
    existing = session.execute(text("SELECT greatest(reltuples, 0) FROM pg_class "
                                    "WHERE oid = 'case_file'::regclass")).scalar()
    return count >= REBUILD_MIN_ROWS and count >= (existing or 0) / 2


def _drop_indexes(session: Session, written: Written) -> list[str] | None:
    """Drop ``case_file``'s indexes that back no constraint; return how to create them again (None when the
    table is busy: then they stay and are kept up to date row by row)."""
    savepoint = session.begin_nested()
    try:
        previous = session.execute(text("SHOW lock_timeout")).scalar_one()
        session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        session.execute(text("LOCK TABLE case_file IN ACCESS EXCLUSIVE MODE"))
        session.execute(text("SELECT set_config('lock_timeout', :value, true)"), {"value": previous})
    except OperationalError:
        savepoint.rollback()
        written.notes.append(f"case_file is in use (no lock within {LOCK_TIMEOUT}): its indexes were kept up "
                             "to date row by row instead of rebuilt")
        return None
    savepoint.commit()
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


def _rebuild(session: Session, definitions: list[str]) -> None:
    for definition in definitions:
        session.execute(text(definition))
