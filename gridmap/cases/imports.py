"""Historical cases from another system (``gridmap cases import FILE``), at bulk speed.

A file of cases (CSV with x/y, GeoParquet, GeoPackage, GeoJSON …) is read, its columns and categories
mapped (:mod:`gridmap.cases.imports_mapping`), every row checked — location, class, timestamps, number,
department, status — and each row that cannot be used is reported with its field and why. The rest
are routed in one batch (as :func:`gridmap.routing.service.assign` does: grid, duty grid, community, street,
district, area class, road, component, proposed department, time limit), their clocks worked out on
the working calendar for the whole column at once (:mod:`gridmap.cases.imports_clock`) and written
with binary COPY (:mod:`gridmap.cases.imports_write`). One import is one transaction; the caller commits.

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
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.calendar.service import get_calendar
from gridmap.cases import imports_write
from gridmap.cases.imports_cases import case_columns
from gridmap.cases.imports_checks import Issues, check_rows, mapping_errors, pairs
from gridmap.cases.imports_mapping import FIELDS, REQUIRED, CaseMapping, Rows, read_rows
from gridmap.io.exceptions import ImportFailed
from gridmap.io.report import RowIssue
from gridmap.routing.layers import Reference
from gridmap.routing.responsible import time_limits
from gridmap.routing.service import decide_rows

ORIGIN_MAX = 32  # case_file.origin
OPEN = ("filed", "dispatched", "handled", "checked")
#: what the routing engine decides and the case keeps
PLACES = ("unit_grid", "duty_grid", "community", "street", "district", "area_class")
GRID_SQL = text("""
SELECT g.code AS unit_grid, dg.code AS duty_grid, c.code AS community, s.code AS street, d.code AS district,
       g.area_class, coalesce(dep.code, (SELECT o.code FROM department o WHERE o.kind = 'street_office'
                                         AND o.street_id IS NULL AND o.district_id = c.district_id
                                         ORDER BY o.code LIMIT 1)) AS locality
FROM unit_grid g JOIN community c ON c.id = g.community_id JOIN district d ON d.id = c.district_id
LEFT JOIN street s ON s.id = c.street_id LEFT JOIN department dep ON dep.id = g.responsible_department_id
LEFT JOIN duty_grid_member m ON m.unit_grid_code = g.code LEFT JOIN duty_grid dg ON dg.id = m.duty_grid_id
WHERE g.valid_to IS NULL AND g.code = ANY(:codes)""")

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
    clock.lap(report, "read", "checking", 0.1)
    issues = Issues(len(rows.frame))
    checked = check_rows(rows, _columns(rows, mapping), mapping, issues, ref, departments, zone, keep_local, now)
    clock.lap(report, "check", "routing", 0.2)
    decided = _route(session, checked, issues, ref)
    clock.lap(report, "route", "deadlines", 0.5)
    _note_location(report, issues, rows, mapping)
    report.rejected = issues.rows()
    if strict and report.rejected:
        raise CaseImportRejected(report)
    keep = issues.ok
    kept = checked | decided if keep.all() else {k: v[keep] for k, v in (checked | decided).items()}
    cases = case_columns(kept, np.flatnonzero(keep) + 1, calendar, origin=origin, file=Path(report.file).name)
    _count(report, cases)
    clock.lap(report, "compute", "writing", 0.55)
    written = imports_write.write_cases(session, cases, origin=origin, rebuild_indexes=rebuild_indexes,
                                        progress=lambda done: clock.tell("writing", 0.55 + 0.45 * done))
    report.inserted, report.updated, report.unchanged, report.kept = written.counts
    report.indexes_rebuilt, report.notes = written.indexes_rebuilt, report.notes + written.notes
    report.seconds |= {f"write: {step}": seconds for step, seconds in written.seconds.items()}
    clock.lap(report, "write", "done", 1.0)
    return report


class _Stopwatch:
    """Times the phases and tells ``progress`` what comes next."""

    def __init__(self, progress: Progress | None):
        self.progress, self.last = progress, time.perf_counter()
        self.tell("reading", 0.0)

    def tell(self, phase: str, done: float) -> None:
        if self.progress:
            self.progress(phase, done)

    def lap(self, report: CaseImportReport, phase: str, following: str, done: float) -> None:
        now = time.perf_counter()
        report.seconds[phase] = round(now - self.last, 3)
        self.last = now
        self.tell(following, done)


def _count(report: CaseImportReport, cases: dict) -> None:
    report.filled = {k: int(v.sum()) for k, v in cases.pop("_filled").items()}
    report.closed = int((cases["status"] == "closed").sum())
    report.open = int(pd.Series(cases["status"], dtype=object).isin(OPEN).sum())
    report.local_class = int(pd.notna(cases["local_class"]).sum())


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


def _route(session: Session, checked: dict, issues: Issues, ref: Reference) -> dict[str, np.ndarray]:
    """Route the rows that passed the checks in one batch; rows the engine cannot place are rejected.
    A local class is routed as an event for its place only, and goes to the grid's responsible body."""
    rows = np.flatnonzero(issues.ok)
    n = len(issues.ok)
    local = pd.notna(checked["local_class"][rows])
    stand_in = min(ref.known["event"])
    classes = np.where(local, "2" + stand_in, np.where(checked["case_type"][rows] == "component", "1", "2")
                       + checked["class_code"][rows].astype(str))
    frame = pd.DataFrame({"lon": checked["lon"][rows], "lat": checked["lat"][rows], "class": classes,
                          "accuracy": checked["accuracy_m"][rows]})
    decided = decide_rows(frame, session=session, ref=ref) if len(rows) else None
    out = {name: np.full(n, None, dtype=object) for name in
           (*PLACES, "road_id", "component_id", "component_version", "proposed_department", "rule",
            "time_limit_unit", "ambiguous", "ambiguity_reason", "locality")}
    out["time_limit"] = np.full(n, np.nan)
    if decided is None:
        return out
    for name in (*PLACES, "road_id", "component_id", "component_version", "rule", "time_limit_unit", "ambiguous",
                 "ambiguity_reason"):
        out[name][rows] = decided[name].to_numpy(dtype=object, na_value=None)
    out["proposed_department"][rows] = decided["department"].to_numpy(dtype=object, na_value=None)
    out["time_limit"][rows] = decided["time_limit"].to_numpy(dtype=float, na_value=np.nan)
    error = decided["error"].to_numpy(dtype=object, na_value=None)
    outside = pd.Series(error, dtype=object).str.contains("territory", regex=False).fillna(False).to_numpy(dtype=bool)
    where = pairs(checked["lon"][rows], checked["lat"][rows], outside)
    issues.reject(rows[outside], "location", "outside the city's territory", _spread(where, rows, outside, n))
    issues.reject(rows, "location", _spread(error, rows, np.ones(len(rows), dtype=bool), n))
    _grids_given(session, checked, out, issues, ref)
    _localities(session, out, rows[local])
    return out


def _spread(values: np.ndarray, rows: np.ndarray, take: np.ndarray, n: int) -> np.ndarray:
    full = np.full(n, None, dtype=object)
    full[rows[take]] = values[take]
    return full


def _lookup_grids(session: Session, codes) -> pd.DataFrame:
    codes = sorted({c for c in codes if c is not None})
    found = pd.DataFrame(session.execute(GRID_SQL, {"codes": codes}).mappings().all(),
                         columns=[*PLACES, "locality"])
    return found.drop_duplicates("unit_grid").set_index("unit_grid")


def _grids_given(session: Session, checked: dict, out: dict, issues: Issues, ref: Reference) -> None:
    """Where the file names the unit grid, it stands: the places follow from it, and the time limit from its
    area class."""
    given = np.flatnonzero(pd.notna(checked["file_grid"]) & issues.ok)
    if len(given) == 0:
        return
    grids = _lookup_grids(session, checked["file_grid"][given])
    codes = checked["file_grid"][given]
    known = pd.Series(codes, dtype=object).isin(grids.index).to_numpy()
    issues.reject(given[~known], "unit_grid", "not a current unit grid", _spread(codes, given, ~known, len(issues.ok)))
    given, codes = given[known], codes[known]
    for name in PLACES[1:]:
        out[name][given] = grids.loc[codes, name].to_numpy(dtype=object)
    out["unit_grid"][given] = codes
    amount, unit, _ = time_limits(checked["case_type"][given], checked["class_code"][given],
                                  out["area_class"][given], ref)
    out["time_limit"][given], out["time_limit_unit"][given] = amount, unit


def _localities(session: Session, out: dict, local: np.ndarray) -> None:
    """Local classes go to the grid's responsible body (属地), without a time limit."""
    if len(local) == 0:
        return
    grids = _lookup_grids(session, out["unit_grid"][local])
    known = pd.notna(out["unit_grid"][local])
    rows = local[known]
    out["proposed_department"][rows] = grids.loc[out["unit_grid"][rows], "locality"].to_numpy(dtype=object)
    out["rule"][local], out["time_limit"][local], out["time_limit_unit"][local] = "属地兜底: local class", np.nan, None
    out["component_id"][local] = out["component_version"][local] = None


def _note_location(report: CaseImportReport, issues: Issues, rows: Rows, mapping: CaseMapping) -> None:
    outside = int(np.sum(issues.reason == "outside the city's territory"))
    if outside and outside >= 0.5 * len(issues.ok):
        label = mapping.crs or (rows.crs.to_string() if rows.crs is not None else "none")
        report.notes.append(f"{outside:,} of {len(issues.ok):,} rows fall outside the city: is the coordinate "
                            f"system right? (read as {label}; --crs overrides the file's label)")
