"""Facts 考核事实: what the KPIs are counted from, fetched from PostGIS.

``case_facts`` holds the cases per *cohort* — ``filed`` (filed 立案 in the period: regions, departments),
``reported`` (reported in the period by an inspector: 有效上报率) and ``duty`` (filed in the period in a duty
grid, once per inspector patrolling it: 漏报率). ``event_facts`` holds the actions taken in the period that
people are judged by. The only thing worked out here is when an action was undone (a dispatch returned
or reworked, a filing voided) and when a report ended (rejected, voided, merged), since that needs the
case's later events, which may lie outside the frame.

Two shapes, one meaning (:mod:`gridmap.evaluation.measures` counts either):

- *raw*: a row per case (or action) with its moments as UTC timestamps — for exports and partitions, to be
  judged against any cut-off later;
- *grouped* (``grouped=True``): the rows grouped in SQL by subject and by where they stood at the cut-off
  (:data:`CASE_STATES`, :data:`EVENT_STATES`), with their number ``n``: a month of a million-case city
  comes back as a few thousand rows instead of a million.

Rows are read with ``COPY (SELECT …) TO STDOUT`` as CSV and parsed by pyarrow.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy.orm import Session

from gridmap.evaluation.definitions import subject_kind
from gridmap.evaluation.periods import Period

REGIONS = ("unit_grid", "community", "street", "district")
#: where a case stood at the cut-off T, in SQL over its columns (measures.case_states does the same in pandas)
CASE_STATES = {
    "filed_by": "x.filed_at <= %(cutoff)s",
    "handled": "x.handled_at <= %(cutoff)s",
    "closed": "x.closed_at <= %(cutoff)s",
    "past_deadline": "x.disposal_deadline <= %(cutoff)s",
    "in_time": "x.disposal_deadline IS NULL OR x.handled_at <= x.disposal_deadline",
    "voided": "x.status = 'voided' AND x.ended_at <= %(cutoff)s",
    "ended": "x.ended_at <= %(cutoff)s",
    "reworked": "x.rework_count > 0",
}
#: where an action stood at the cut-off (measures.event_states does the same in pandas)
EVENT_STATES = {"on_time": "x.due_at IS NULL OR x.at <= x.due_at", "undone": "x.undone_at <= %(cutoff)s"}
TIMES = ("cohort_at", "filed_at", "handled_at", "closed_at", "disposal_deadline", "ended_at", "at", "due_at",
         "undone_at")
TEXTS = ("cohort", *REGIONS, "department", "inspector", "source", "status", "action", "actor")
TYPES = ({"case_id": pa.int64(), "rework_count": pa.int64(), "disposal_minutes": pa.float64(), "n": pa.int64(),
          "disposal_count": pa.int64(), "passed": pa.bool_()} | dict.fromkeys(TIMES, pa.int64())
         | dict.fromkeys(TEXTS, pa.string()) | dict.fromkeys((*CASE_STATES, *EVENT_STATES), pa.bool_()))
#: the cohorts each kind of subject is counted from (None: all, for exports)
CASE_COHORTS = {None: ("filed", "reported", "duty"), "region": ("filed",), "department": ("filed",),
                "inspector": ("reported", "duty"), "dispatcher": (), "shift_lead": ()}
#: the actions each kind of subject is judged by (a department by its returns 回退)
ACTIONS = {"region": (), "department": ("return",), "inspector": ("verify", "check"),
           "dispatcher": ("dispatch",), "shift_lead": ("file", "close")}

# when a case reached rejected / voided / merged (those states set no column of their own)
ENDED_STATES = "('rejected', 'voided', 'merged')"
ENDED_AT = "(SELECT max(e.at) FROM case_event e WHERE e.case_id = c.id AND e.to_status = c.status)"
ENDED = f"CASE WHEN c.status IN {ENDED_STATES} THEN {ENDED_AT} END"
IN_PERIOD = "{0} >= %(start)s AND {0} < %(end)s AND {0} <= %(cutoff)s"
FILED = "c.filed_at IS NOT NULL AND " + IN_PERIOD.format("c.filed_at") + " AND c.status <> 'merged'"
COHORTS = {  # cohort: (the inspector it counts for, FROM, WHERE, the moment that puts a case in it)
    "filed": ("NULL", "case_file c", FILED, "c.filed_at"),
    "reported": ("u.name", "case_file c JOIN app_user u ON u.id = c.reporter_id AND u.role = 'inspector'",
                 IN_PERIOD.format("c.reported_at") + " AND c.source IN ('inspector', 'self_disposal')",
                 "c.reported_at"),
    "duty": ("u.name", "case_file c JOIN duty_grid g ON g.code = c.duty_grid JOIN duty_grid_inspector gi ON "
             "gi.duty_grid_id = g.id JOIN app_user u ON u.inspector_id = gi.inspector_id AND u.role = 'inspector'",
             FILED, "c.filed_at"),
}
# a dispatch is undone by the first return or failed check after it and before the case's next dispatch;
# a filing by the case's voiding
AFTER = "(f.at, f.id) > (e.at, e.id)"
UNDONE = f"""CASE e.action
  WHEN 'dispatch' THEN (SELECT min(f.at) FROM case_event f WHERE f.case_id = e.case_id AND {AFTER}
    AND (f.action = 'return' OR (f.action = 'check' AND f.data->>'passed' = 'false'))
    AND f.at < coalesce((SELECT min(f.at) FROM case_event f WHERE f.case_id = e.case_id AND {AFTER}
                         AND f.action = 'dispatch'), 'infinity'))
  WHEN 'file' THEN (SELECT min(f.at) FROM case_event f WHERE f.case_id = e.case_id AND {AFTER} AND f.action = 'void')
END"""
EVENTS = """SELECT e.case_id, e.action, u.name AS actor, e.data->>'department' AS department, e.at, e.due_at,
  (e.data->>'passed')::boolean AS passed, {undone} AS undone_at
FROM case_event e LEFT JOIN app_user u ON u.id = e.actor_id
WHERE """ + IN_PERIOD.format("e.at") + " AND e.action = ANY(%(actions)s)"


def case_facts(*, session: Session, period: Period, by: str | None = None, cutoff: datetime | None = None,
               grouped: bool = False) -> pd.DataFrame:
    """The cases of ``period`` counted for subjects ``by`` (every kind when None), one row per cohort.

    Parameters
    ----------
    session : Session
        Any session: uncommitted work in its transaction is seen.
    period : Period
        Cases enter a cohort by a moment in [start, end) that is also at or before ``cutoff``.
    by : str, optional
        A subject (:data:`~gridmap.evaluation.definitions.SUBJECTS`): only its cohorts and subject column
        are fetched. None fetches every cohort with every subject column (for exports and partitions).
    cutoff : datetime, optional
        T; defaults to the period's end.
    grouped : bool
        Group the rows by subject and state at T, with their number ``n`` (only for counting at T).

    Returns
    -------
    pandas.DataFrame
        ``cohort``, the subject column(s) (``unit_grid`` … ``department``; ``inspector``: the inspector's login),
        ``source``; raw: ``case_id``, ``status``, ``cohort_at``, ``filed_at``, ``handled_at``, ``closed_at``,
        ``disposal_deadline``, ``ended_at`` (rejected, voided or merged; UTC timestamps), ``rework_count``,
        ``disposal_minutes``; grouped: the :data:`CASE_STATES` flags, ``n``, ``disposal_minutes`` (sum),
        ``disposal_count``.
    """
    kind = subject_kind(by) if by else None
    cohorts = CASE_COHORTS[kind] or ("filed",)  # people judged by actions only: no rows, the same columns
    nothing = "" if CASE_COHORTS[kind] else " AND false"
    columns = (*REGIONS, "department") if by is None else (by,) if kind in ("region", "department") else ()
    columns += ("inspector",) if kind in (None, "inspector") else ()
    if not grouped:
        query = " UNION ALL ".join(_cohort(cohort, columns, nothing) for cohort in cohorts)
    else:
        query = _grouped(cohorts, columns, nothing)
    return _copy(session, query, _params(period, cutoff), grouped)


def _grouped(cohorts: tuple[str, ...], columns: tuple[str, ...], also: str) -> str:
    """The cohorts' cases grouped by subject and state at T. A case that ended without closing needs its
    last event to say when: a subquery per case, which would keep the scan of all the others from running
    in parallel, so those few are grouped by a query of their own."""
    keys = ["cohort", *columns, "source"]
    states = [f"coalesce({sql}, false) AS {name}" for name, sql in CASE_STATES.items()]
    group = (f"SELECT {', '.join(f'x.{k}' for k in keys)}, {', '.join(states)}, count(*) AS n, "
             "sum(x.disposal_minutes) AS disposal_minutes, count(x.disposal_minutes) AS disposal_count "
             f"FROM ({{}}) x GROUP BY {_positions(len(keys) + len(states))}")
    return " UNION ALL ".join(group.format(_cohort(cohort, columns, also, ended=ended))
                              for cohort in cohorts for ended in (False, True))


def _positions(count: int) -> str:
    return ", ".join(str(i + 1) for i in range(count))


def event_facts(*, session: Session, period: Period, by: str | None = None, cutoff: datetime | None = None,
                grouped: bool = False) -> pd.DataFrame:
    """The actions in ``period`` (up to ``cutoff``) that subjects ``by`` are judged by (all when None).

    Returns
    -------
    pandas.DataFrame
        ``action``, ``actor`` (login), ``department`` (the event's: for a return, the department that
        returned it); raw: ``case_id``, ``at``, ``due_at`` (the deadline of the stage the action ended;
        NULL: no clock), ``passed`` (checks), ``undone_at`` (a dispatch: the first return or failed check
        before the next dispatch; a filing: the voiding); grouped: the :data:`EVENT_STATES` flags and ``n``.
    """
    kinds = [subject_kind(by)] if by else list(ACTIONS)
    actions = [a for kind in kinds for a in ACTIONS[kind]]
    # only dispatches and filings can be undone (the subqueries would keep the others' scan from going parallel)
    undone = UNDONE if {"dispatch", "file"} & set(actions) else "NULL::timestamptz"
    query = EVENTS.format(undone=undone) + ("" if actions else " AND false")
    if grouped:
        states = [f"coalesce({sql}, false) AS {name}" for name, sql in EVENT_STATES.items()]
        query = (f"SELECT x.action, x.actor, x.department, {', '.join(states)}, count(*) AS n FROM ({query}) x "
                 "GROUP BY 1, 2, 3, 4, 5")
    else:
        query = f"SELECT case_id, action, actor, department, {_us('at')}, {_us('due_at')}, passed, " \
                f"{_us('undone_at')} FROM ({query}) x"
    return _copy(session, query, _params(period, cutoff) | {"actions": actions}, grouped)


def _subjects(cohort: str, columns: tuple[str, ...]) -> str:
    return "".join(f"{COHORTS[cohort][0] if c == 'inspector' else 'c.' + c} AS {c}, " for c in columns)


def _cohort(cohort: str, columns: tuple[str, ...], also: str, *, ended: bool | None = None) -> str:
    """The rows of ``cohort``: all, moments in µs (``ended`` None); or only the cases that did not end without
    closing (False) or only those (True), moments as timestamps."""
    _, source, where, moment = COHORTS[cohort]
    last = {None: ENDED, False: "NULL::timestamptz", True: ENDED_AT}[ended]
    moments = {"cohort_at": moment, "filed_at": "c.filed_at", "handled_at": "c.handled_at",
               "closed_at": "c.closed_at", "disposal_deadline": "c.disposal_deadline", "ended_at": last}
    times = ", ".join(_us(sql, name) if ended is None else f"{sql} AS {name}" for name, sql in moments.items())
    # OFFSET 0: the subquery is computed once per case, not once per reference to ended_at
    where += also + {None: "", False: f" AND c.status NOT IN {ENDED_STATES}",
                     True: f" AND c.status IN {ENDED_STATES} OFFSET 0"}[ended]
    return (f"SELECT '{cohort}' AS cohort, c.id AS case_id, {_subjects(cohort, columns)}c.source, c.status, {times}, "
            f"c.rework_count, c.disposal_minutes FROM {source} WHERE {where}")


def _us(expression: str, name: str | None = None) -> str:
    """A timestamp as integer microseconds since 1970 (cheap in CSV, and exact: 2^53 µs is 285 years)."""
    return f"(date_part('epoch', {expression}) * 1000000)::int8 AS {name or expression}"


def _params(period: Period, cutoff: datetime | None) -> dict:
    return {"start": period.start, "end": period.end, "cutoff": cutoff or period.end}


def _copy(session: Session, query: str, params: dict, grouped: bool) -> pd.DataFrame:
    """Run ``query`` through COPY in the session's transaction and read the CSV with pyarrow."""
    session.flush()
    cursor = session.connection().connection.driver_connection.cursor()
    data = bytearray()
    with cursor, cursor.copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER)", params) as copy:
        for block in copy:
            data += block
    convert = pacsv.ConvertOptions(column_types=TYPES, strings_can_be_null=True, quoted_strings_can_be_null=False,
                                   true_values=["t"], false_values=["f"])
    table = pacsv.read_csv(pa.py_buffer(bytes(data)), convert_options=convert)
    for index, name in enumerate(table.column_names):
        if name in TIMES:
            table = table.set_column(index, name, table[name].cast(pa.timestamp("us", tz="UTC")))
    frame = table.to_pandas()
    if grouped:
        frame.attrs["cutoff"] = pd.Timestamp(params["cutoff"]).tz_convert("UTC")
    return frame
