"""KPIs over monthly GeoParquet facts on dask: the numbers of :func:`gridmap.evaluation.service.kpi`.

:func:`export_facts` writes the KPI facts (:mod:`gridmap.evaluation.facts`, every cohort and action, every
subject column) month by month as GeoParquet, each row with its case's location. :func:`kpi_partitioned`
reads the months a period touches, counts each file on a worker with
:func:`gridmap.evaluation.measures.counts`, sums the counts (:func:`~gridmap.evaluation.measures.combine`)
and finishes them as the PostGIS path does (:func:`gridmap.evaluation.service.present`: rates, names,
scores, bands, ranks). Counting is additive over rows, so the sum over files equals counting all at once;
this module only moves data.

The facts are a snapshot: a case's state (handled, closed, its deadline) is as it stood at the export, and
each KPI judges it against the cut-off T = min(period end, ``now``), ``now`` being the export's moment by
default.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import geopandas as gpd
import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.calendar.service import get_calendar
from gridmap.evaluation import measures
from gridmap.evaluation.definitions import EvaluationError, subject_kind
from gridmap.evaluation.facts import case_facts, event_facts
from gridmap.evaluation.periods import Period, parse_period
from gridmap.evaluation.scoring import Scoring
from gridmap.evaluation.service import present, resolve_period
from gridmap.scale import require
from gridmap.scale.parquet import MANIFEST, month_files, pandas_types, write_month

#: the moment that puts a row of each kind of facts in a month (and in a period)
MOMENT = {"cases": "cohort_at", "events": "at"}
LOCATION_SQL = text("SELECT id, ST_X(geom) AS x, ST_Y(geom) AS y FROM case_file WHERE id = ANY(:ids)")
SPAN_SQL = text("SELECT min(reported_at), greatest(max(reported_at), (SELECT max(at) FROM case_event)) FROM case_file")


class FactsMissing(EvaluationError):
    """The export does not hold the months a period needs, or is not an export of facts."""


@dataclass(frozen=True)
class FactsExport:
    """What :func:`export_facts` wrote (also kept in ``DIR/facts.json``)."""

    directory: Path
    months: list[str]
    rows: dict[str, int]
    timezone: str
    exported_at: datetime


def export_facts(*, session: Session, directory: str | Path, period: str | Period | None = None,
                 now: datetime | None = None) -> FactsExport:
    """Write the KPI facts as GeoParquet partitioned by month: ``DIR/cases/month=2026-10/…``, ``DIR/events/…``.

    Parameters
    ----------
    session
        The city's database.
    directory
        Folder to write; months already there are replaced.
    period
        Export the months this period touches (default: every month from the first case to now).
    now
        The export's moment (default: the current time), the default cut-off of KPIs computed from it.

    Returns
    -------
    FactsExport
        The months written and the rows of each kind.
    """
    zone = get_calendar(session=session).timezone
    exported_at = now or datetime.now(timezone.utc)
    months = period_months(resolve_period(session=session, period=period)) if period else \
        history_months(session=session, zone=zone, now=exported_at)
    rows = {"cases": 0, "events": 0}
    for month in months:
        whole = parse_period(month, tz=zone)
        for kind, facts in (("cases", case_facts), ("events", event_facts)):
            frame = located(session=session, facts=facts(session=session, period=whole))
            write_month(frame, directory, kind=kind, month=month)
            rows[kind] += len(frame)
    export = FactsExport(Path(directory), months, rows, str(zone), exported_at)
    _write_manifest(export)
    return export


def located(*, session: Session, facts: pd.DataFrame) -> gpd.GeoDataFrame:
    """The facts with their case's location (EPSG:4326)."""
    ids = facts["case_id"].unique().tolist()
    places = pd.read_sql(LOCATION_SQL, session.connection(), params={"ids": ids}, index_col="id")
    xy = places.reindex(facts["case_id"].to_numpy())
    return gpd.GeoDataFrame(facts, geometry=gpd.points_from_xy(xy["x"], xy["y"]), crs=4326)


def history_months(*, session: Session, zone, now: datetime) -> list[str]:
    """Every month from the first report to the latest of the last action and ``now``, in the city's zone."""
    first, last = session.execute(SPAN_SQL).one()
    if first is None:
        return []
    last = max(last, now)
    return months_between(first.astimezone(zone).date(), last.astimezone(zone).date())


def period_months(period: Period, *, until: datetime | None = None) -> list[str]:
    """The months (``YYYY-MM``, in the period's time zone) a period touches, up to ``until`` if earlier."""
    end = min(period.end, until) if until is not None else period.end
    if end <= period.start:
        return []
    last = (end - timedelta(microseconds=1)).astimezone(period.start.tzinfo)
    return months_between(period.start.date(), last.date())


def months_between(first: date, last: date) -> list[str]:
    months, (year, month) = [], (first.year, first.month)
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def read_manifest(directory: str | Path) -> dict:
    """The export's description; raises :class:`FactsMissing` when ``directory`` is no export of facts."""
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        manifest["exported_at"] = datetime.fromisoformat(manifest["exported_at"])
        return manifest
    except (OSError, ValueError, KeyError) as error:
        raise FactsMissing(f"{directory}: not an export of KPI facts ({path.name}: {error}); write one with "
                           "`gridmap scale export-facts DIR`") from None


def _write_manifest(export: FactsExport) -> None:
    export.directory.mkdir(parents=True, exist_ok=True)
    known = read_manifest(export.directory)["months"] if (export.directory / MANIFEST).exists() else []
    manifest = {"exported_at": export.exported_at.isoformat(), "timezone": export.timezone,
                "months": sorted(set(known) | set(export.months)), "rows": export.rows}
    (export.directory / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def kpi_partitioned(*, session: Session, directory: str | Path, period: str | Period, by: str,
                    now: datetime | None = None, scoring: Scoring | str | Path | None = None) -> pd.DataFrame:
    """The KPIs of ``period`` per subject ``by``, counted on dask from an export of :func:`export_facts`.

    Parameters
    ----------
    session
        The city's database: the calendar's time zone and the subjects' names (no facts are read from it).
    directory
        The export.
    period, by, scoring
        As for :func:`gridmap.evaluation.service.kpi`.
    now
        Cut-off of a period still running (default: the export's moment).

    Returns
    -------
    pandas.DataFrame
        As :func:`gridmap.evaluation.service.kpi` returns it.

    Notes
    -----
    dask runs the counting on its current scheduler: the client of :func:`gridmap.scale.cluster.connect`
    when one is open, else threads in this process.
    """
    subject_kind(by)
    manifest = read_manifest(directory)
    period = resolve_period(session=session, period=period)
    cutoff = period.cutoff(now or manifest["exported_at"])
    months = period_months(period, until=cutoff)  # months past the cut-off count nothing
    missing = sorted(set(months) - set(manifest["months"]))
    if missing:
        raise FactsMissing(f"{directory}: the export holds no facts for {', '.join(missing)} (it has "
                           f"{_span(manifest['months'])}): export them with `gridmap scale export-facts "
                           f"{directory} --period {period.label}`")
    empty = {kind: empty_facts(directory, kind) for kind in MOMENT}
    dask = require("dask")
    with pandas_types():  # the facts as the PostGIS path has them
        counted = [count_files(month_files(directory, kind=kind, months=months), kind=kind, by=by,
                               period=period, cutoff=cutoff, empty=empty) for kind in MOMENT]
        counts = measures.combine(dask.compute(*counted), by=by)
    return present(session=session, counts=counts, by=by, scoring=scoring, period=period, cutoff=cutoff)


def count_files(files: list[Path], *, kind: str, by: str, period: Period, cutoff: datetime,
                empty: dict[str, pd.DataFrame]):
    """A lazy frame of the counts of each file of ``kind`` (a partition each); ``empty`` holds both kinds'
    facts without rows: counting is additive, so each kind is counted beside the other kind's empty frame."""
    dd = require("dask.dataframe")
    other = empty["events" if kind == "cases" else "cases"]
    meta = measures.counts(empty["cases"], empty["events"], by=by, cutoff=cutoff)
    if not files:
        return dd.from_pandas(meta, npartitions=1)
    return dd.from_map(read_facts, files, enforce_metadata=False, meta=empty[kind]).map_partitions(
        _count, kind=kind, by=by, period=period, cutoff=cutoff, other=other, meta=meta)


def read_facts(path: Path) -> pd.DataFrame:
    """One file of facts as :mod:`gridmap.evaluation.facts` returns them (Arrow's types, no geometry)."""
    import pyarrow.parquet as pq

    columns = [name for name in pq.read_schema(path).names if name != "geometry"]
    return pq.read_table(path, columns=columns).to_pandas()


def empty_facts(directory: str | Path, kind: str) -> pd.DataFrame:
    """Facts of ``kind`` with no rows, typed as the export's."""
    files = sorted((Path(directory) / kind).glob("month=*/*.parquet"))
    if not files:
        raise FactsMissing(f"{directory}: no {kind} facts; write an export with `gridmap scale export-facts DIR`")
    import pyarrow.parquet as pq

    schema = pq.read_schema(files[0])
    return schema.remove(schema.get_field_index("geometry")).empty_table().to_pandas()


def _count(facts: pd.DataFrame, *, kind: str, by: str, period: Period, cutoff: datetime,
           other: pd.DataFrame) -> pd.DataFrame:
    """measures.counts of the rows of one file that fall in ``period``."""
    moment = facts[MOMENT[kind]]
    inside = facts[(moment >= period.start) & (moment < period.end)]
    cases, events = (inside, other) if kind == "cases" else (other, inside)
    return measures.counts(cases, events, by=by, cutoff=cutoff)


def _span(months: list[str]) -> str:
    return f"{months[0]} to {months[-1]}" if months else "no months"
