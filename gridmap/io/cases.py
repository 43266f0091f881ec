"""Cases 案卷 and their events as analysts' layers: the SQL, the filters and the readable columns.

``read_layer('cases')`` (:mod:`gridmap.io.export`) gives the case file's own columns — codes, the
timestamps of each stage in the city's time zone, counts — and never the routing evidence JSON unless
``with_evidence=True`` (it is large); :func:`read_cases` adds what a person reads: class and department
names, the status in Chinese and English, on-time flags and the working hours of disposal.
"""

from __future__ import annotations

from datetime import datetime, timezone

import geopandas as gpd
import numpy as np
import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.cases.models import FINAL, STATUSES
from gridmap.cases.workflow import STATUS_TERMS
from gridmap.io.exceptions import ExportFailed

CASE_LAYERS = ("cases", "case_events")
SOURCES = {"inspector": "监督员上报", "hotline": "公众举报", "self_disposal": "自行处置",
           "import": "历史导入"}
CASE_TYPES = {"1": "component", "2": "event"}

_CASES = """
    SELECT c.number, c.case_type, c.class_code, c.local_class, c.status, c.source, c.description, c.address,
           u.name AS reporter, c.reported_at, c.filed_at, c.dispatched_at, c.disposal_deadline, c.handled_at,
           c.closed_at, c.close_kind, c.stage_deadline, c.disposal_minutes, c.disposal_limit_min,
           c.time_limit::float8 AS time_limit, c.time_limit_unit, c.rework_count, c.return_count,
           c.unit_grid, c.duty_grid, c.community, c.street, c.district, c.area_class, c.road_id, c.component_id,
           c.proposed_department, c.department, c.rule, c.ambiguous, c.accuracy_m, c.origin, c.external_number,
           c.flags::text AS flags{evidence}, c.geom
    FROM case_file c LEFT JOIN app_user u ON u.id = c.reporter_id"""
_EVENTS = """
    SELECT e.id AS event_id, c.number, e.action, e.from_status, e.to_status, u.name AS actor, e.actor_role,
           e.at, e.due_at, e.at <= e.due_at AS on_time, e.lon, e.lat, e.accuracy_m, e.note,
           array_to_string(e.photos, ',') AS photos, {data}::text AS data, c.status AS case_status,
           c.case_type, c.class_code, c.department, c.source, c.district, c.unit_grid,
           c.reported_at AS case_reported_at, c.geom
    FROM case_event e JOIN case_file c ON c.id = e.case_id LEFT JOIN app_user u ON u.id = e.actor_id"""
#: timestamp columns, shown in the city's time zone
TIMESTAMPS = {
    "cases": ("reported_at", "filed_at", "dispatched_at", "disposal_deadline", "handled_at", "closed_at",
              "stage_deadline"),
    "case_events": ("at", "due_at", "case_reported_at"),
}
#: which column ``period=`` looks at, by default and as allowed
PERIOD_FIELDS = {"cases": ("reported_at", "filed_at", "dispatched_at", "handled_at", "closed_at"),
                 "case_events": ("at",)}
#: where a filter looks in each layer
STATUS_COLUMN = {"cases": "status", "case_events": "case_status"}
SHAPEFILE_NAMES = {
    "local_class": "local_cls", "description": "descr", "reported_at": "reported", "dispatched_at": "dispatched",
    "disposal_deadline": "dispos_due", "stage_deadline": "stage_due", "disposal_minutes": "dispos_min",
    "disposal_limit_min": "dispos_lim", "time_limit_unit": "limit_unit", "rework_count": "reworks",
    "return_count": "returns", "component_id": "component", "proposed_department": "prop_dept",
    "external_number": "ext_number", "duplicate_candidates": "duplicates", "class_name_en": "class_en",
    "department_name": "dept_name", "proposed_department_name": "prop_name", "district_name": "dist_name",
    "community_name": "comm_name", "disposal_hours": "dispos_h", "disposal_limit_hours": "limit_h",
    "handled_on_time": "handled_ok", "closed_on_time": "closed_ok", "from_status": "from_stat",
    "case_status": "case_stat", "case_reported_at": "case_rep",
}


def layer_sql(name: str, *, with_evidence: bool = False) -> tuple[str, str]:
    """The SQL of case layer ``name`` and its order; the evidence JSON only ``with_evidence``."""
    if name == "cases":
        extra = ", c.evidence::text AS evidence, c.duplicate_candidates::text AS duplicate_candidates"
        return _CASES.format(evidence=extra if with_evidence else ""), "layer.reported_at, layer.number"
    # the filing event carries the routing evidence too
    return _EVENTS.format(data="e.data" if with_evidence else "(e.data - 'evidence')"), "layer.at, layer.event_id"


def conditions(*, session: Session, name: str, period=None, period_field: str | None = None, status=None,
               department=None, class_code=None, case_type: str | None = None, source=None,
               ) -> tuple[list[str], dict]:
    """SQL conditions on case layer ``name`` and their parameters.

    Parameters
    ----------
    period : str or Period, optional
        A period text of :func:`gridmap.evaluation.periods.parse_period` (``2026-10``, ``2026-W41``,
        ``2026-Q4``, ``2026-10-01..2026-10-15`` …) in the city's time zone, or a parsed ``Period``.
    period_field : str, optional
        What falls in the period: ``reported_at`` (default), ``filed_at``, ``dispatched_at``, ``handled_at``
        or ``closed_at`` for cases; the event time ``at`` for events.
    status : str or list of str, optional
        Case statuses (``closed``, ``dispatched`` …), or ``open`` for every case not yet final.
    department, source : str or list of str, optional
        Department codes; sources ``inspector``, ``hotline``, ``self_disposal``, ``import``.
    class_code : str or list of str, optional
        ``0102`` (a 4-digit code found in one catalogue only), ``20102`` / ``10118`` (case type first:
        1 component, 2 event), or a major class ``01`` with ``case_type``.
    case_type : str, optional
        ``event`` or ``component``.
    """
    where, params = [], {}
    if period is not None:
        period = resolve_period(session=session, period=period)
        start, end = period.start, period.end
        field = period_field or PERIOD_FIELDS[name][0]
        if field not in PERIOD_FIELDS[name]:
            raise ExportFailed(f"period_field {field!r}: use one of {', '.join(PERIOD_FIELDS[name])}")
        where.append(f"layer.{field} >= :period_start AND layer.{field} < :period_end")
        params.update(period_start=start, period_end=end)
    if status is not None:
        where.append(_status(name, _listed(status), params))
    if source is not None:
        params["sources"] = _checked(_listed(source), SOURCES, "source")
        where.append("layer.source = ANY(:sources)")
    if department is not None:
        params["departments"] = _departments(session, _listed(department))
        where.append("layer.department = ANY(:departments)")
    if case_type is not None:
        params["case_type"] = _checked([CASE_TYPES.get(case_type, case_type)], ("event", "component"), "case_type")[0]
        where.append("layer.case_type = :case_type")
    if class_code is not None:
        where.append(_classes(session, _listed(class_code), params.get("case_type"), params))
    return where, params


def resolve_period(*, session: Session, period):
    """The :class:`~gridmap.evaluation.periods.Period` of a period text (in the working calendar's time zone,
    as the KPIs read it), or ``period`` itself when parsed already; a bad text is an :class:`ExportFailed`."""
    from gridmap.evaluation.service import resolve_period as resolve

    try:
        return resolve(session=session, period=period)
    except ValueError as error:  # BadPeriod: its message names the text and the forms
        raise ExportFailed(str(error)) from None


def city_zone(*, session: Session):
    """The city's time zone (a ``ZoneInfo``)."""
    from zoneinfo import ZoneInfo

    name = session.execute(text("SELECT timezone FROM city WHERE id = 1")).scalar()
    if name is None:
        raise ExportFailed("no city record: load a city first (gridmap demo load)")
    return ZoneInfo(name)


def typed(*, session: Session, frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Give the columns of case layer ``name`` their types whatever the rows hold (an empty column stays a
    timestamp, a number, a flag), timestamps in the city's time zone."""
    if name not in CASE_LAYERS:
        return frame
    zone = city_zone(session=session)
    for column in TIMESTAMPS[name]:
        if column in frame.columns:
            frame[column] = pd.to_datetime(frame[column], utc=True).dt.tz_convert(zone)
    for column in FLOATS & set(frame.columns):
        frame[column] = frame[column].astype("float64")
    if "on_time" in frame.columns:
        frame["on_time"] = frame["on_time"].astype("boolean")
    return frame


#: numeric columns that may be empty in every row of a selection
FLOATS = {"disposal_minutes", "disposal_limit_min", "time_limit", "accuracy_m", "lon", "lat"}


def _listed(value) -> list[str]:
    values = [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v) for v in value]
    return [v for v in values if v]


def _checked(values: list[str], allowed, what: str) -> list[str]:
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise ExportFailed(f"unknown {what} {', '.join(map(repr, unknown))}: use {', '.join(allowed)}")
    return values


def _status(name: str, values: list[str], params: dict) -> str:
    _checked(values, (*STATUSES, "open"), "status")
    column = f"layer.{STATUS_COLUMN[name]}"
    params["statuses"], params["final"] = [s for s in values if s != "open"], list(FINAL)
    either = f"{column} = ANY(:statuses)"
    return f"({either} OR {column} <> ALL(:final))" if "open" in values else either


def _departments(session: Session, codes: list[str]) -> list[str]:
    known = set(session.execute(text("SELECT code FROM department WHERE code = ANY(:c)"), {"c": codes}).scalars())
    missing = [c for c in codes if c not in known]
    if missing:
        raise ExportFailed(f"unknown department {', '.join(map(repr, missing))} (gridmap export department lists them)")
    return codes


def _classes(session: Session, codes: list[str], case_type: str | None, params: dict) -> str:
    """One condition for class codes; a 4-digit code in both catalogues needs its case type."""
    catalogue = {(t, c): n for t, c, n in session.execute(text(
        "SELECT 'component', code, name FROM component_class UNION ALL SELECT 'event', code, name FROM event_class"))}
    pairs = []
    for code in codes:
        if len(code) == 5 and code[0] in CASE_TYPES:
            kind, code = CASE_TYPES[code[0]], code[1:]
        else:
            kinds = [t for t in ("component", "event") if (t, code) in catalogue and case_type in (None, t)]
            if len(kinds) > 1:
                both = f"both a component class ({catalogue['component', code]}) and an event class " \
                       f"({catalogue['event', code]})"
                how = f"write 1{code} or 2{code}, or give case_type" if len(code) == 4 else "give case_type"
                raise ExportFailed(f"class {code} is {both}: {how}")
            kind = kinds[0] if kinds else None
        if len(code) not in (2, 4) or not code.isdigit() or (kind, code) not in catalogue:
            raise ExportFailed(f"unknown class {code!r}: a 4-digit class (0102), with its case type first (20102), "
                               "or a 2-digit major class with case_type")
        pairs.append((kind, code))
    clauses = []
    for i, (kind, code) in enumerate(pairs):
        params[f"class_type_{i}"], params[f"class_{i}"] = kind, code
        column = "layer.class_code" if len(code) == 4 else "left(layer.class_code, 2)"
        clauses.append(f"(layer.case_type = :class_type_{i} AND {column} = :class_{i})")
    return "(" + " OR ".join(clauses) + ")"


def read_cases(*, session: Session, crs=None, now: datetime | None = None, **filters):
    """Return cases as a GeoDataFrame with readable columns.

    The columns of ``read_layer('cases')`` plus ``class_name`` / ``class_name_en`` (an imported local
    class where there is no catalogue class), ``department_name``, ``proposed_department_name``,
    ``status_zh`` / ``status_en``, ``source_zh``, ``district_name``, ``community_name``,
    ``disposal_hours`` and ``disposal_limit_hours`` (working hours, time parked left out),
    ``handled_on_time`` (handled by the disposal deadline), ``closed_on_time`` (closed as ``normal``
    rather than ``overdue``) and ``overdue`` (open and past its running stage's deadline at ``now``).

    Parameters
    ----------
    session : Session
    crs : str or int, optional
        Output CRS (EPSG:4326 by default).
    now : datetime, optional
        The moment ``overdue`` is judged at (default: now).
    **filters
        Those of :func:`gridmap.io.export.read_layer` and :func:`conditions`.
    """
    from gridmap.io.export import read_layer

    frame = read_layer(session=session, name="cases", crs=crs, **filters)
    return readable(session=session, frame=frame, now=now)


def readable(*, session: Session, frame: pd.DataFrame, now: datetime | None = None) -> pd.DataFrame:
    """Add names, terms, on-time flags and hours to a frame of ``read_layer('cases')``."""
    names = pd.read_sql(text("""SELECT 'component' AS case_type, code AS class_code, name, name_en FROM component_class
                                UNION ALL SELECT 'event', code, name, name_en FROM event_class"""), session.connection())
    names = names.set_index(["case_type", "class_code"])
    key = pd.MultiIndex.from_arrays([frame["case_type"], frame["class_code"]])
    frame["class_name"] = names["name"].reindex(key).to_numpy()
    frame["class_name"] = frame["class_name"].fillna(frame["local_class"])
    frame["class_name_en"] = names["name_en"].reindex(key).to_numpy()
    lookups = {"department": "SELECT code, name FROM department", "district": "SELECT code, name FROM district",
               "community": "SELECT code, name FROM community"}
    for column, sql in lookups.items():
        table = dict(session.execute(text(sql)).all())
        frame[f"{column}_name"] = frame[column].map(table)
        if column == "department":
            frame["proposed_department_name"] = frame["proposed_department"].map(table)
    frame["status_zh"] = frame["status"].map({s: t[0] for s, t in STATUS_TERMS.items()})
    frame["status_en"] = frame["status"].map({s: t[1] for s, t in STATUS_TERMS.items()})
    frame["source_zh"] = frame["source"].map(SOURCES)
    frame["disposal_hours"] = frame["disposal_minutes"] / 60
    frame["disposal_limit_hours"] = frame["disposal_limit_min"] / 60
    judged = frame["handled_at"].notna() & frame["disposal_deadline"].notna()
    frame["handled_on_time"] = _flag(judged, frame["handled_at"] <= frame["disposal_deadline"])
    frame["closed_on_time"] = _flag(frame["close_kind"].isin(["normal", "overdue"]), frame["close_kind"] == "normal")
    now = pd.Timestamp(now or datetime.now(timezone.utc))
    running = ~frame["status"].isin(FINAL) & frame["stage_deadline"].notna()
    frame["overdue"] = _flag(running, frame["stage_deadline"] < now)
    if isinstance(frame, gpd.GeoDataFrame):  # the geometry last, as in every layer
        geometry = frame.geometry.name
        frame = frame[[c for c in frame.columns if c != geometry] + [geometry]]
    return frame


def _flag(known: pd.Series, value: pd.Series) -> pd.Series:
    """A nullable boolean: ``value`` where ``known``, else missing."""
    return pd.Series(pd.array(np.where(known, value, None), dtype="boolean"), index=value.index)
