"""Writing imported cases as they are decided: new ones streamed by binary COPY
(:mod:`gridmap.cases.imports_copy`) straight into ``case_file`` from a thread of their own, changed ones
through a staging table and one ``UPDATE`` at the end; cases worked on in gridmap since their import are
left alone.

The COPY runs while the caller routes the next chunk of rows: PostgreSQL takes in one chunk (on its own
core) while Python decides the next. A large import rebuilds the table's indexes afterwards
(:mod:`gridmap.cases.imports_indexes`). It all happens under one savepoint, so an import that fails
half-way — a database error, a rejected row in a later chunk of a strict import — leaves ``case_file``
as it was, indexes included; nothing is committed here.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.cases import imports_indexes as indexes
from gridmap.cases.imports_copy import Column, copy_batches, copy_rows
from gridmap.db.base import STORAGE_SRID

#: the columns an import writes (besides id and number), with their COPY encodings; the database's
#: defaults fill the rest (version 1, counts 0, empty flags and duplicate lists, updated_at). Those of the
#: same width in every row come first: the encoder copies such neighbours as one block.
CASE_COLUMNS = (
    ("source", "text"), ("origin", "text"), ("reported_crs", "text"), ("reported_at", "timestamptz"),
    ("geom", "point"), ("reported_x", "float8"), ("reported_y", "float8"), ("accuracy_m", "float8"),
    ("ambiguous", "bool"), ("filed_at", "timestamptz"), ("dispatched_at", "timestamptz"),
    ("clock_resumed_at", "timestamptz"), ("component_version", "int4"), ("disposal_deadline", "timestamptz"),
    ("disposal_limit_min", "float8"), ("time_limit", "numeric"), ("stage_started_at", "timestamptz"),
    ("stage_warn_at", "timestamptz"), ("stage_deadline", "timestamptz"), ("handled_at", "timestamptz"),
    ("disposal_minutes", "float8"), ("closed_at", "timestamptz"),
    ("status", "text"), ("case_type", "text"), ("class_code", "text"), ("local_class", "text"),
    ("external_number", "text"), ("description", "text"), ("address", "text"), ("unit_grid", "text"),
    ("duty_grid", "text"), ("community", "text"), ("street", "text"), ("district", "text"), ("area_class", "text"),
    ("road_id", "text"), ("component_id", "text"), ("proposed_department", "text"), ("department", "text"),
    ("rule", "text"), ("ambiguity_reason", "text"), ("time_limit_unit", "text"), ("close_kind", "text"),
    ("evidence", "jsonb"),
)
#: what a re-import compares to decide whether a case changed (the evidence says where it came from)
COMPARED = tuple(name for name, _kind in CASE_COLUMNS if name != "evidence")
STAGE = "gridmap_case_import"
#: the cases an origin has already, and whether each has been worked on in gridmap since (has events)
KNOWN = text("SELECT c.external_number, c.id, EXISTS (SELECT 1 FROM case_event e WHERE e.case_id = c.id) "
             "FROM case_file c WHERE c.origin = :origin")
NEW, CHANGED, KEPT = 0, 1, 2  # what becomes of a row: inserted, updated (if it differs), left alone
_END, _ABANDON = object(), object()


class Abandoned(Exception):
    """The import stopped sending rows: the COPY under way is cancelled."""


@dataclass
class Written:
    """What :class:`CaseWriter` did, and how long each step took."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    kept: int = 0
    indexes_rebuilt: bool = False
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def lap(self, step: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[step] = round(self.seconds.get(step, 0.0) + now - since, 3)
        return now

    @property
    def counts(self) -> tuple[int, int, int, int]:
        return self.inserted, self.updated, self.unchanged, self.kept


class CaseWriter:
    """Writes an import's cases a chunk at a time (:meth:`send`), in a ``with`` block.

    ``numbers`` are the file's case numbers (one per row of the file) and ``rows`` the rows that may be
    written (they passed the checks; routing may still reject some). On entering, the cases ``origin``
    has already are looked up, and for a large import ``case_file`` is locked and its secondary indexes
    dropped; new cases then stream into the table while the caller decides the next chunk. Leaving the
    block normally finishes the COPY, builds the indexes again, runs ``ANALYZE`` and updates the changed
    cases; leaving it with an error, or after :meth:`abandon`, undoes everything written.
    """

    def __init__(self, session: Session, numbers: np.ndarray, rows: np.ndarray, *, origin: str,
                 rebuild_indexes: bool | None = None, progress: Callable[[str, float], None] | None = None):
        self.session, self.origin, self.rebuild_indexes = session, origin, rebuild_indexes
        self.numbers, self.rows = numbers, rows
        self.tell = progress or (lambda phase, done: None)
        self.written = Written()
        self.fate = np.full(len(numbers), KEPT, dtype=np.int8)
        self.known_id = np.zeros(len(numbers), dtype=np.int64)
        self.changed: list[tuple[dict, np.ndarray]] = []
        self.queue: queue.Queue = queue.Queue(maxsize=1)
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.abandoned, self.expected, self.queued, self.copied = False, 0, 0, 0
        self.savepoint, self.dropped, self.started = None, None, 0.0

    def __enter__(self) -> CaseWriter:
        if self.abandoned:  # abandoned before it began: nothing to write, nothing to undo
            return self
        clock = time.perf_counter()
        self.savepoint = self.session.begin_nested()
        try:
            self._sort_rows()
            clock = self.written.lap("known", clock)
            if self.expected:
                self._prepare_table()
                self.written.lap("drop indexes", clock)
                cursor = _cursor(self.session)  # the session's own connection: the same transaction
                self.thread = threading.Thread(target=self._copy, args=(cursor,), name="case-import-copy",
                                               daemon=True)
                self.started = time.perf_counter()
                self.thread.start()
        except BaseException:
            self.savepoint.rollback()
            raise
        return self

    def send(self, cases: dict, rows: np.ndarray) -> None:
        """Write the cases of file rows ``rows`` (:func:`gridmap.cases.imports_cases.case_columns`): new ones
        go to the COPY (waiting while it is a chunk behind), changed ones are kept for the end."""
        if self.abandoned:
            return
        fate = self.fate[rows]
        self.written.kept += int((fate == KEPT).sum())
        changed = np.flatnonzero(fate == CHANGED)
        if len(changed):
            self.changed.append((_take(cases, changed), self.known_id[rows[changed]]))
        new = np.flatnonzero(fate == NEW)
        if len(new):
            self._put(_take(cases, new) if len(new) < len(rows) else cases)
            self.queued += len(new)

    def abandon(self) -> None:
        """Write nothing more: the COPY under way is cancelled now, and everything is undone on leaving."""
        if not self.abandoned:
            self.abandoned = True
            self._stop(_ABANDON)

    def __exit__(self, kind, error, trace) -> bool:
        if kind is None and not self.abandoned:
            try:
                self._finish()
            except BaseException:
                self._undo()
                raise
            self.savepoint.commit()
        else:
            self._undo()
        return False

    def _sort_rows(self) -> None:
        """Each row's fate: new, a known case to update, or one worked on in gridmap since (kept)."""
        known = pd.DataFrame(self.session.execute(KNOWN, {"origin": self.origin}).all(),
                             columns=["external_number", "id", "touched"])
        at = pd.Index(known["external_number"]).get_indexer(pd.Series(self.numbers[self.rows], dtype=object))
        touched = np.append(known["touched"].to_numpy(dtype=bool), False)[at]  # at -1: not known
        self.fate[self.rows] = np.where(at < 0, NEW, np.where(touched, KEPT, CHANGED))
        self.known_id[self.rows] = np.append(known["id"].to_numpy(dtype=np.int64), 0)[at]
        self.expected = int((at < 0).sum())

    def _prepare_table(self) -> None:
        """For a large import: lock ``case_file`` and drop its secondary indexes (unless the table is busy)."""
        rebuild = (indexes.should_rebuild(self.session, self.expected) if self.rebuild_indexes is None
                   else self.rebuild_indexes)
        if not rebuild:
            return
        if not indexes.lock_case_file(self.session):
            self.written.notes.append(f"case_file is in use (no lock within {indexes.LOCK_TIMEOUT}): its indexes "
                                      "were kept up to date row by row instead of rebuilt")
            return
        self.dropped = indexes.drop_indexes(self.session)

    def _copy(self, cursor) -> None:
        """The COPY thread: new ids, then every chunk sent, until the end (or an abandon)."""
        try:
            ids = _draw_ids(cursor, self.expected)
            copy_batches(cursor, "case_file", ["id", *(n for n, _ in CASE_COLUMNS), "number"], self._batches(ids),
                         on_chunk=self._copied)
        except BaseException as error:  # handed to the caller's thread
            self.error = error

    def _copied(self, rows: int) -> None:
        self.copied = rows

    def _batches(self, ids: np.ndarray) -> Iterator[list[Column]]:
        start = 0
        while (cases := self.queue.get()) is not _END:
            if cases is _ABANDON:
                raise Abandoned("the import was abandoned: nothing of it is kept")
            day = cases["opened_day"]
            mine, start = ids[start:start + len(day)], start + len(day)
            digits = pc.utf8_lpad(pa.array(mine).cast(pa.string()), 6, "0")
            number = pc.binary_join_element_wise("I", pa.array(day).cast(pa.string()), digits, "")
            yield [Column("id", "int4", mine), *_columns(cases), Column("number", "text", number)]

    def _put(self, item) -> None:
        """Queue ``item`` for the COPY thread, waiting while it is busy; its error is raised here."""
        while True:
            if self.error is not None:
                raise self.error
            if self.thread is None or not self.thread.is_alive():
                return
            try:
                self.queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def _stop(self, last) -> None:
        """Send ``last`` (the end, or abandon) and wait for the COPY thread, telling how far it got."""
        if self.thread is None:
            return
        while self.thread.is_alive():
            try:
                self.queue.put(last, timeout=0.2)
                break
            except queue.Full:
                continue
        while self.thread.is_alive():
            self.thread.join(0.25)
            if last is _END:
                self.tell("writing", self.copied / max(self.queued, 1))
        self.thread = None

    def _finish(self) -> None:
        clock = time.perf_counter()
        if self.expected:
            self._stop(_END)
            if self.error is not None:
                raise self.error
            self.written.inserted = self.copied
            self.written.seconds["copy (beside routing)"] = round(time.perf_counter() - self.started, 3)
            clock = self.written.lap("copy, after routing", clock)
        if self.dropped is not None:
            self.tell("indexes", 0.0)
            indexes.rebuild(self.session, self.dropped)
            self.written.indexes_rebuilt = True
            clock = self.written.lap("build indexes", clock)
        if self.written.inserted >= indexes.REBUILD_MIN_ROWS:  # the planner's statistics, for the KPIs that follow
            self.tell("analyzing", 0.0)
            self.session.execute(text("ANALYZE case_file"))
            clock = self.written.lap("analyze", clock)
        if self.changed:
            cases = _concat([cases for cases, _ids in self.changed])
            ids = np.concatenate([ids for _cases, ids in self.changed])
            self.written.updated = _update(self.session, cases, ids)
            self.written.unchanged = len(ids) - self.written.updated
            self.written.lap("update", clock)

    def _undo(self) -> None:
        self.abandoned = True
        try:
            self._stop(_ABANDON)
        finally:
            if self.savepoint is not None:
                self.savepoint.rollback()


def _take(cases: dict, rows: np.ndarray) -> dict:
    """The cases ``rows`` of the columns ``cases``."""
    return {name: values.take(pa.array(rows)) if isinstance(values, pa.Array) else values[rows]
            for name, values in cases.items() if not name.startswith("_")}


def _concat(chunks: list[dict]) -> dict:
    """The columns of ``chunks`` end to end (Arrow where every chunk has Arrow, else numpy)."""
    def joined(parts: list):
        if all(isinstance(part, pa.Array) for part in parts) and len({part.type for part in parts}) == 1:
            return pa.concat_arrays(parts)
        return np.concatenate([part.to_numpy(zero_copy_only=False) if isinstance(part, pa.Array) else part
                               for part in parts])

    return {name: joined([chunk[name] for chunk in chunks]) for name in chunks[0]}


def _columns(cases: dict) -> list[Column]:
    """The :data:`CASE_COLUMNS` of ``cases``."""
    return [Column(name, kind, (cases["lon"], cases["lat"], STORAGE_SRID) if kind == "point" else cases[name])
            for name, kind in CASE_COLUMNS]


def _cursor(session: Session):
    """A cursor of the session's own connection (the same transaction), for COPY."""
    return session.connection().connection.driver_connection.cursor()


def _draw_ids(cursor, count: int) -> np.ndarray:
    """``count`` new case ids from the table's sequence (native cases draw theirs from it too). Drawn in
    one statement they are usually one run, which two numbers describe; when another session drew some
    meanwhile, they are listed. Ids of rows the routing engine rejects afterwards stay unused."""
    draw = f"SELECT nextval('case_file_id_seq') AS id FROM generate_series(1, {int(count)})"
    low, high = cursor.execute(f"SELECT min(id), max(id) FROM ({draw}) drawn").fetchone()
    if high - low + 1 == count:
        return np.arange(low, high + 1, dtype=np.int64)
    listed = cursor.execute(f"SELECT string_agg(id::text, ',') FROM ({draw}) drawn").fetchone()[0]
    return np.sort(np.array(listed.split(","), dtype=np.int64))


def _update(session: Session, cases: dict, ids: np.ndarray) -> int:
    """Update the known cases ``ids`` from ``cases`` where their data differ and nobody worked on them since."""
    names = [name for name, _kind in CASE_COLUMNS]
    # the columns' types without their constraints (a staged row has no number)
    session.execute(text(f"CREATE TEMP TABLE {STAGE} ON COMMIT DROP AS SELECT id, {', '.join(names)} "
                         "FROM case_file WITH NO DATA"))
    copy_rows(_cursor(session), STAGE, [Column("id", "int4", ids), *_columns(cases)])
    updated = session.execute(text(
        f"UPDATE case_file t SET ({', '.join(names)}) = ({', '.join('s.' + c for c in names)}), "
        f"version = t.version + 1, updated_at = now() FROM {STAGE} s WHERE t.id = s.id "
        f"AND ({', '.join('t.' + c for c in COMPARED)}) IS DISTINCT FROM ({', '.join('s.' + c for c in COMPARED)}) "
        "AND NOT EXISTS (SELECT 1 FROM case_event e WHERE e.case_id = t.id)")).rowcount
    session.execute(text(f"DROP TABLE {STAGE}"))
    return updated
