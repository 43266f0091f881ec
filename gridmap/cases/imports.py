"""Historical cases from another system (``gridmap cases import FILE``), at bulk speed.

A file of cases (CSV with x/y, GeoParquet, GeoPackage, GeoJSON …) is read, its columns and categories
mapped (:mod:`gridmap.cases.imports_mapping`), every row checked — location, class, timestamps, number,
department, status — and each row that cannot be used is reported with its field and why. The rest
are routed a chunk at a time by the routing engine's batch step (:mod:`gridmap.cases.imports_route`, as
:func:`gridmap.routing.service.assign` decides: grid, duty grid, community, street, district, area class,
road, component, proposed department, time limit), their clocks worked out on the working calendar for
the whole chunk at once (:mod:`gridmap.cases.imports_clock`), and written with binary COPY while the next
chunk is routed (:mod:`gridmap.cases.imports_write`): PostgreSQL takes in one chunk on its core while
Python decides the next on the other. One import is one transaction; the caller commits. A failed import,
or a strict one with a rejected row in any chunk, leaves ``case_file`` as it was.

What an imported case looks like:

- ``source='import'``, ``origin`` (the other system) and ``external_number`` (its number there); a
  gridmap ``number`` ``I`` + the local date opened + the case id (``I20230601000123``);
- ``reported_at = filed_at = opened``; ``dispatched_at`` = dispatched, else opened;
- ``disposal_deadline`` = the file's due, else the catalogue's limit for the class and the grid's area
  class, counted in working time from dispatch; ``handled_at`` = handled, else closed; ``closed_at`` =
  closed; ``close_kind`` ``overdue`` when handled after the deadline, else ``normal``;
- status: the file's (mapped by ``statuses:``), else ``closed`` when it has a closed time, else
  ``dispatched`` (to the file's department, else the routing engine's proposal); an open imported case
  has a running clock and moves on through the loop like any other;
- ``department`` = the file's, else the proposed one; a local class (``local_class``, no catalogue
  code) goes to the grid's responsible body (属地) and has no time limit unless the file gives a due;
- no events: an import writes none, so the KPIs of people (inspectors, dispatchers, shift leads) do not
  cover imported cases; region and department KPIs do.

Re-importing (the same ``origin`` and numbers) updates the cases whose data changed and leaves the rest
alone; a case that has been worked on in gridmap since (it has events) is never overwritten.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.calendar.service import get_calendar
from gridmap.cases import imports_write
from gridmap.cases.imports_cases import case_columns
from gridmap.cases.imports_checks import Issues, check_rows, mapping_errors
from gridmap.cases.imports_mapping import FIELDS, REQUIRED, CaseMapping, Rows, read_rows
from gridmap.cases.imports_route import Router
from gridmap.io.exceptions import ImportFailed
from gridmap.io.report import RowIssue
from gridmap.routing.layers import Reference

ORIGIN_MAX = 32  # case_file.origin
OPEN = ("filed", "dispatched", "handled", "checked")
#: rows routed (and written) per chunk: the database takes one in while the next is decided
CHUNK = 125_000
#: the share of the progress bar each stage of the writing ends at, after routing (which ends at 0.75)
STAGES = {"writing": (0.75, 0.8), "indexes": (0.8, 0.95), "analyzing": (0.95, 1.0)}

Progress = Callable[[str, float], None]


class CaseImportRejected(ImportFailed):
    """A strict import with rejected rows: nothing was written; ``report`` lists them."""

    def __init__(self, report: CaseImportReport):
        self.report = report
        super().__init__(f"{report.file}: {len(report.rejected)} row(s) rejected, strict import: nothing was imported")


@dataclass
class CaseImportReport:
    """What an import did: rows read, inserted, updated, unchanged, kept, and every rejected row."""

    file: str
    origin: str
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    kept: int = 0  # worked on in gridmap since the last import: left as they are
    closed: int = 0
    open: int = 0
    local_class: int = 0
    indexes_rebuilt: bool = False
    rejected: list[RowIssue] = field(default_factory=list)
    filled: dict[str, int] = field(default_factory=dict)  # routing field → rows the routing engine filled
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # per phase

    def summary(self) -> dict[str, int]:
        return {"rows read": self.rows_read, "imported (new)": self.inserted, "updated": self.updated,
                "unchanged": self.unchanged, "kept (worked on in gridmap since)": self.kept,
                "closed": self.closed, "open": self.open, "local class": self.local_class,
                "rejected": len(self.rejected)}

    def by_reason(self) -> list[tuple[str, str, int]]:
        """Rejected rows counted by field and reason, most frequent first."""
        counts = Counter((issue.field, issue.reason) for issue in self.rejected)
        return [(f, r, k) for (f, r), k in counts.most_common()]

    def lines(self) -> list[str]:
        return [f"rejected: {issue.describe(self.file)}" for issue in self.rejected]


def import_cases(*, session: Session, data: Path | str | pd.DataFrame, origin: str | None = None,
                 mapping: CaseMapping | None = None, keep_local: bool = False, strict: bool = False,
                 layer: str | None = None, rebuild_indexes: bool | None = None, now: datetime | None = None,
                 progress: Progress | None = None) -> CaseImportReport:
    """Import the cases in ``data`` and return what happened; nothing is committed here.

    Parameters
    ----------
    session : the transaction to write in (one import, one transaction).
    data : a file (CSV with x/y, GeoParquet, GeoPackage, GeoJSON …) or a (Geo)DataFrame.
    origin : the system the cases come from (or ``mapping.origin``); with each case's number it
        recognises the case when the file is imported again.
    mapping : columns, classes, departments, statuses, the CRS (which overrides the file's label, and may
        be ``gcj02`` or ``bd09``), the time zone of timestamps without offset and their format.
    keep_local : keep a category that is neither mapped nor a catalogue code as a local class (else the
        row is rejected).
    strict : import nothing when any row is rejected (raise :class:`CaseImportRejected`).
    rebuild_indexes : drop and rebuild ``case_file``'s secondary indexes around the write (locks the table
        for the import's duration); ``None`` decides by size (large imports into a small table).
    progress : called with (phase, fraction of the import done).

    Raises
    ------
    ImportFailed : the file or the mapping cannot be used at all (nothing written).
    CaseImportRejected : ``strict`` and some rows were rejected.
    """
    mapping, now = mapping or CaseMapping(), now or datetime.now(timezone.utc)
    origin = _origin(origin or mapping.origin)
    ref, calendar = Reference.current(session), get_calendar(session=session)
    departments = set(session.execute(text("SELECT code FROM department")).scalars())
    problems = mapping_errors(mapping, ref.known, departments)
    if problems:
        raise ImportFailed("the mapping names what gridmap does not know:\n  " + "\n  ".join(problems))
    zone = _zone(mapping.timezone or calendar.timezone.key)
    clock = _Stopwatch(progress)
    rows = read_rows(data, mapping, layer=layer)
    report = CaseImportReport(file=str(rows.path), origin=origin, rows_read=len(rows.frame), notes=rows.notes)
    clock.lap(report, "read", "checking", 0.05)
    issues = Issues(len(rows.frame))
    checked = check_rows(rows, _columns(rows, mapping), mapping, issues, ref, departments, zone, keep_local, now)
    clock.lap(report, "check", "routing", 0.1)
    todo = np.flatnonzero(issues.ok)
    router = Router(session, checked, todo, ref) if len(todo) else None
    clock.lap(report, "layers", "routing", 0.1)
    writer = imports_write.CaseWriter(session, checked["external_number"], todo, origin=origin,
                                      rebuild_indexes=rebuild_indexes, progress=clock.stage)
    if strict and not issues.ok.all():  # nothing will be written: only every rejected row is wanted
        writer.abandon()
    with writer:
        clock.restart()  # the writer timed its start itself
        _route_and_write(router, writer, checked, issues, report=report, calendar=calendar, clock=clock,
                         strict=strict)
        _note_location(report, issues, rows, mapping)
        report.rejected = issues.rows()
        if strict and report.rejected:
            raise CaseImportRejected(report)
    written = writer.written
    report.inserted, report.updated, report.unchanged, report.kept = written.counts
    report.indexes_rebuilt, report.notes = written.indexes_rebuilt, report.notes + written.notes
    report.seconds |= {f"write: {step}": seconds for step, seconds in written.seconds.items()}
    clock.lap(report, "write", "done", 1.0)
    return report


def _route_and_write(router: Router | None, writer: imports_write.CaseWriter, checked: dict, issues: Issues, *,
                     report: CaseImportReport, calendar, clock: _Stopwatch, strict: bool) -> None:
    """Route the rows that passed the checks a chunk at a time and hand each chunk's cases to ``writer``,
    whose COPY takes one chunk in while the next is routed. A strict import stops writing at its first
    rejected row but routes on, so that every rejected row is reported."""
    todo, routed = np.flatnonzero(issues.ok), 0
    for chunk in _chunks(todo):
        decided = router.route(chunk, issues)
        routed += len(chunk)
        clock.lap(report, "route", "routing", None)
        if strict and not issues.ok.all():
            writer.abandon()
            continue
        _write(writer, report, checked, decided, chunk, issues.ok[chunk], calendar)
        clock.lap(report, "compute", "routing", 0.1 + 0.65 * routed / len(todo))


def _chunks(rows: np.ndarray) -> list[np.ndarray]:
    """``rows`` in pieces of :data:`CHUNK`, the first half as big (the COPY starts early) and the last ones
    halving (the COPY has little left to do once the last piece is decided), none below a quarter."""
    pieces, at, size = [], 0, CHUNK // 2
    while at < len(rows):
        if len(rows) - at - size < CHUNK // 4:
            size = len(rows) - at
        pieces.append(rows[at:at + size])
        at += size
        size = min(CHUNK, max(CHUNK // 4, (len(rows) - at + 1) // 2))
    return pieces


def _write(writer: imports_write.CaseWriter, report: CaseImportReport, checked: dict, decided: dict,
           chunk: np.ndarray, keep: np.ndarray, calendar) -> None:
    """Work out the case columns of the rows of ``chunk`` still kept (``keep``) and hand them to ``writer``."""
    rows = chunk[keep]
    kept = {name: values[rows] for name, values in checked.items()} | {
        name: values.filter(pa.array(keep)) if isinstance(values, pa.Array) else values[keep]
        for name, values in decided.items()}
    cases = case_columns(kept, rows + 1, calendar, origin=report.origin, file=Path(report.file).name)
    _count(report, cases)
    writer.send(cases, rows)


class _Stopwatch:
    """Times the phases (a phase met again adds up) and tells ``progress`` what comes next."""

    def __init__(self, progress: Progress | None):
        self.progress, self.last = progress, time.perf_counter()
        self.tell("reading", 0.0)

    def tell(self, phase: str, done: float) -> None:
        if self.progress:
            self.progress(phase, done)

    def stage(self, phase: str, done: float) -> None:
        """Progress within a stage of the writing (:data:`STAGES`)."""
        start, end = STAGES[phase]
        self.tell(phase, start + (end - start) * done)

    def restart(self) -> None:
        self.last = time.perf_counter()

    def lap(self, report: CaseImportReport, phase: str, following: str, done: float | None) -> None:
        now = time.perf_counter()
        report.seconds[phase] = round(report.seconds.get(phase, 0.0) + now - self.last, 3)
        self.last = now
        if done is not None:
            self.tell(following, done)


def _count(report: CaseImportReport, cases: dict) -> None:
    """Add the cases to the report's counts."""
    for name, filled in cases.pop("_filled").items():
        report.filled[name] = report.filled.get(name, 0) + int(filled.sum())
    report.closed += int((cases["status"] == "closed").sum())
    report.open += int(pd.Series(cases["status"], dtype=object).isin(OPEN).sum())
    report.local_class += int(pd.notna(cases["local_class"]).sum())


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ImportFailed(f"--timezone {name!r}: not a time zone (e.g. Asia/Shanghai, Asia/Taipei)") from None
    return name


def _origin(origin: str | None) -> str:
    if not origin or not origin.strip():
        raise ImportFailed("say which system the cases come from: --origin NAME (or origin: in the mapping); "
                           "with each case's number it recognises the cases when the file is imported again")
    if len(origin.strip()) > ORIGIN_MAX:
        raise ImportFailed(f"--origin {origin!r}: at most {ORIGIN_MAX} characters")
    return origin.strip()


def _columns(rows: Rows, mapping: CaseMapping) -> dict[str, pd.Series]:
    """The file's column for each field (mapped, or of the field's own name); required ones must exist."""
    frame = rows.frame
    unknown = sorted(set(mapping.columns) - set(FIELDS))
    if unknown:
        raise ImportFailed(f"cannot map {unknown}: the fields are {', '.join(FIELDS)}")
    missing = {target: column for target, column in mapping.columns.items()
               if target not in ("x", "y") and column not in frame}
    if missing:
        raise ImportFailed(f"{rows.path}: no column {sorted(missing.values())} (mapped to {sorted(missing)}); "
                           f"the file has {list(frame.columns)}")
    absent = [f for f in REQUIRED if mapping.column(f) not in frame]
    if absent:
        raise ImportFailed(f"{rows.path}: no column for {absent}; map them with --map FIELD=COLUMN "
                           f"(e.g. --map {absent[0]}=…; the file has {list(frame.columns)})")
    return {f: frame[mapping.column(f)] for f in FIELDS if f not in ("x", "y") and mapping.column(f) in frame}


def _note_location(report: CaseImportReport, issues: Issues, rows: Rows, mapping: CaseMapping) -> None:
    outside = int(np.sum(issues.reason == "outside the city's territory"))
    if outside and outside >= 0.5 * len(issues.ok):
        label = mapping.crs or (rows.crs.to_string() if rows.crs is not None else "none")
        report.notes.append(f"{outside:,} of {len(issues.ok):,} rows fall outside the city: is the coordinate "
                            f"system right? (read as {label}; --crs overrides the file's label)")
