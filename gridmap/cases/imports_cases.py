"""The columns of imported cases: status, department, clocks and deadlines, evidence — for all rows at once.

Deadlines and working minutes come from one :class:`~gridmap.cases.imports_clock.Timeline` of the
city's calendar over the span the cases need, so they are what the live case loop would have computed
(:mod:`gridmap.cases.deadlines`) without walking the calendar once per case.
"""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from gridmap.calendar.service import Calendar
from gridmap.cases.imports_clock import NAT, Timeline
from gridmap.cases.policy import STAGE_LIMIT_MIN, WARN_SHARE

SENT = ("dispatched", "handled", "checked", "closed")  # states a department has had the case in
#: what the evidence's "filled" names stand for (the proposed department and the time limit always come
#: from the routing engine, and the road and component with the grid)
FILLED = {"unit_grid": "unit_grid, duty_grid, community, street, district, area_class, road_id, component_id",
          "department": "department (the proposed one)", "disposal_deadline": "disposal_deadline (the time limit "
                                                                               "from dispatch)"}


def case_columns(rows: dict[str, np.ndarray], row_numbers: np.ndarray, calendar: Calendar, *, origin: str,
                 file: str) -> dict:
    """The ``case_file`` columns of the checked and routed ``rows`` (numbered as in the file), plus
    ``lon``/``lat``, ``opened_day`` (the local date opened, for the case number) and ``_filled``
    (per routing field, which rows it filled)."""
    n = len(row_numbers)
    opened, due = rows["opened"], rows["due"]
    department = np.where(pd.notna(rows["file_department"]), rows["file_department"], rows["proposed_department"])
    status = np.where(pd.notna(rows["status"]), rows["status"],
                      np.where(pd.notna(department), "dispatched", "filed")).astype(object)
    sent = pd.Series(status, dtype=object).isin(SENT).to_numpy()
    dispatched = np.where(rows["dispatched"] != NAT, rows["dispatched"], np.where(sent, opened, NAT))
    closed = np.where(status == "closed", rows["closed"], NAT)
    handled = np.where(rows["handled"] != NAT, rows["handled"], closed)
    limit = rows["time_limit"] * _unit_minutes(rows["time_limit_unit"], calendar)
    stage = _stage_limits(status)
    reach = float(np.nanmax(np.concatenate([limit, stage, [0.0]])))
    timeline = Timeline.covering(calendar, np.concatenate([opened, dispatched, due, handled, closed]), reach)
    computed = timeline.add(dispatched, limit)
    deadline = np.where(due != NAT, due, computed)
    allowed = np.where(due != NAT, timeline.minutes_between(dispatched, due), limit)
    late = (deadline != NAT) & (handled != NAT) & (handled > deadline)
    out = {name: rows[name] for name in ("external_number", "case_type", "class_code", "local_class", "description",
                                         "address", "reported_x", "reported_y", "reported_crs", "accuracy_m",
                                         "unit_grid", "duty_grid", "community", "street", "district", "area_class",
                                         "road_id", "component_id", "component_version", "proposed_department",
                                         "rule", "ambiguity_reason", "time_limit", "time_limit_unit", "lon", "lat")}
    out.update(
        source=np.full(n, "import", dtype=object), origin=np.full(n, origin, dtype=object), status=status,
        department=department, ambiguous=pd.Series(rows["ambiguous"], dtype=object).fillna(False).to_numpy(dtype=bool),
        reported_at=opened, filed_at=np.where(status == "rejected", NAT, opened), dispatched_at=dispatched,
        clock_resumed_at=dispatched, disposal_deadline=deadline, disposal_limit_min=allowed, handled_at=handled,
        disposal_minutes=timeline.minutes_between(dispatched, handled), closed_at=closed,
        close_kind=np.where(status == "closed", np.where(late, "overdue", "normal"), None).astype(object),
        opened_day=_local_day(opened, calendar))
    out.update(_stage_clock(status, dispatched, handled, opened, deadline, allowed, stage, timeline))
    filled = {"unit_grid": pd.isna(rows["file_grid"]), "department": pd.isna(rows["file_department"]),
              "disposal_deadline": (due == NAT) & (computed != NAT)}
    out["evidence"] = _evidence(row_numbers, filled, origin, file)
    out["_filled"] = filled
    return out


def _unit_minutes(unit: np.ndarray, calendar: Calendar) -> np.ndarray:
    day = calendar.day_length.total_seconds() / 60
    return np.where(unit == "hour", 60.0, np.where(unit == "day", day, np.nan))


def _stage_limits(status: np.ndarray) -> np.ndarray:
    """The waiting stage's limit (working minutes) of open cases not with a department (NaN for others)."""
    codes, names = pd.factorize(status)
    limits = np.array([STAGE_LIMIT_MIN.get(s, np.nan) if s != "dispatched" else np.nan for s in names] + [np.nan])
    return limits[codes]


def _stage_clock(status, dispatched, handled, opened, deadline, allowed, stage, timeline: Timeline) -> dict:
    """The running stage's clock: the disposal clock while with the department, else the waiting stage's
    (from handling for handled/checked, from opening for filed); none for final states."""
    with_department = status == "dispatched"
    waiting = np.where(handled != NAT, handled, opened)
    start = np.where(with_department, dispatched, np.where(np.isfinite(stage), waiting, NAT))
    limit = np.where(with_department, allowed, stage)
    return {"stage_started_at": start,
            "stage_deadline": np.where(with_department, deadline, timeline.add(start, limit)),
            "stage_warn_at": timeline.add(start, limit * WARN_SHARE)}


def _local_day(moments: np.ndarray, calendar: Calendar) -> np.ndarray:
    """YYYYMMDD of each moment in the calendar's time zone."""
    local = pd.to_datetime(pd.Series(moments, dtype="int64"), unit="us", utc=True).dt.tz_convert(calendar.timezone)
    return (local.dt.year * 10000 + local.dt.month * 100 + local.dt.day).to_numpy(dtype=np.int64)


def _evidence(row_numbers: np.ndarray, filled: dict[str, np.ndarray], origin: str, file: str) -> pa.Array:
    """``{"imported": {"origin", "file", "row"}, "filled": [...]}``: where the case came from and which of
    its fields the routing engine filled where the file said nothing (:data:`FILLED`). Kept small: a
    million of them are written and read."""
    names = list(filled)
    key = np.zeros(len(row_numbers), dtype=np.int64)
    for k, name in enumerate(names):
        key |= np.asarray(filled[name], dtype=np.int64) << k
    tails = ['}, "filled": ' + orjson.dumps([n for k, n in enumerate(names) if combination >> k & 1]).decode() + "}"
             for combination in range(1 << len(names))]
    head = '{"imported": {"origin": ' + orjson.dumps(origin).decode() + ', "file": ' + orjson.dumps(file).decode() \
        + ', "row": '
    return pc.binary_join_element_wise(head, pa.array(row_numbers).cast(pa.string()),
                                       pa.array(tails).take(pa.array(key)), "")
