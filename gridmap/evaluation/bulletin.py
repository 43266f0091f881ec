"""The monthly bulletin 月通报: one self-contained HTML file (and a PDF when Chromium is installed) that a
bureau can circulate by e-mail or USB stick and open offline.

It shows the month against the previous one (reported, filed, closed, 结案率, 按期结案率, overdue open
cases), the rankings of :func:`gridmap.evaluation.service.kpi` with scores and A–E bands, six months of
trends, the top classes, the overdue list, the hot-spot grids, a map of cases per unit grid, the KPI
definitions and the data credits. Figures follow the KPI definitions (``docs/kpi.md``); the rest is defined
here:

- *reported* = cases reported in the month (duplicates merged into another case not counted), by source;
- the map, the top classes and the hot spots count the month's reports that are problems on the street
  (not rejected, voided or merged), as :mod:`gridmap.evaluation.hotspots` does;
- *overdue open* at a cut-off T (the month's end, or now while the month runs) = cases not handled, closed,
  voided, rejected or merged whose current disposal deadline is before T; how late = working time on the
  city's calendar from the deadline to T. It reads the cases' current state, so a past month's list is
  as of today's deadlines (an extension granted later moves a deadline).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.calendar.service import get_calendar
from gridmap.evaluation import bulletin_charts as charts
from gridmap.evaluation.bulletin_charts import render_bulletin
from gridmap.evaluation.definitions import BY_COLUMN, KPIS, SCORE_COLUMNS, count_columns, kpis_for, subject_kind
from gridmap.evaluation.measures import rates
from gridmap.evaluation.periods import Period, parse_period
from gridmap.evaluation.service import kpi
from gridmap.maps.context import territory_bounds
from gridmap.maps.style import CHOROPLETH_BREAKS, CHOROPLETH_COLOURS
from gridmap.territory.service import attributions, get_city

TREND_MONTHS = 6
TOP_CLASSES, OVERDUE_SHOWN, HOTSPOTS_SHOWN = 10, 50, 10
#: the ranking tables: subject kind, zh-CN and English title, rows shown (None = all)
RANKINGS = [("district", "各区考核排名", "Districts", None), ("street", "各街道考核排名", "Streets", None),
            ("department", "专业部门考核排名", "Departments", None),
            ("inspector", "监督员考核（前 10 名）", "Inspectors (top 10)", 10),
            ("dispatcher", "派遣员考核（前 10 名）", "Dispatchers (top 10)", 10)]
#: the counts a ranking shows before the rates, per subject kind
RANKING_COUNTS = {"region": ("filed", "due", "closed"), "department": ("due", "handled", "overdue_unhandled"),
                  "inspector": ("reports",), "dispatcher": ("dispatches",), "shift_lead": ("file_events",)}
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
PDF_SECONDS = 120
#: reports that are not problems on the street (refused, voided, duplicates): left out of the map, the classes
#: and the hot spots, as :mod:`gridmap.evaluation.hotspots` leaves them out
NOT_PROBLEMS = ("rejected", "voided", "merged")
#: simplification of the map's grids and districts, in degrees (≈ 2 m and ≈ 30 m)
GRID_TOLERANCE, DISTRICT_TOLERANCE = 0.00002, 0.0003


class BulletinError(ValueError):
    """The bulletin cannot be made as asked (bad month text, unwritable folder); the message says why."""


@dataclass(frozen=True)
class BulletinFiles:
    """What :func:`write_bulletin` wrote: the HTML (always), the PDF (when a browser printed it) and why not."""

    html: Path
    pdf: Path | None
    pdf_note: str
    html_bytes: int
    seconds: float


def parse_month(month: str, *, tz) -> Period:
    """Return the calendar month ``YYYY-MM`` in time zone ``tz``; :class:`BulletinError` for anything else."""
    try:
        period = parse_period(month, tz=tz)
    except ValueError:
        period = None
    if period is None or period.kind != "month":
        what = f"is a {period.kind}, not a month" if period else "is not a month"
        raise BulletinError(f"--month {month!r} {what}: the bulletin is monthly, give YYYY-MM (e.g. 2026-10)")
    return period


def bulletin_data(*, session: Session, month: str, now: datetime | None = None) -> dict:
    """Gather everything the bulletin of ``month`` shows.

    Parameters
    ----------
    session
        Open session; nothing is written.
    month
        ``YYYY-MM``.
    now
        The moment the bulletin is made (default: now); a month still running is cut off here.

    Returns
    -------
    dict
        ``period``, ``previous``, ``cutoff``, ``city``, ``headline`` (rows of this and the previous month),
        ``rankings`` (title, DataFrame from :func:`~gridmap.evaluation.service.kpi`, columns shown),
        ``trend`` (DataFrame per month), ``classes``, ``overdue`` (DataFrame, total), ``hotspots``,
        ``layers`` (GeoJSON of grids and districts, bounds), ``definitions``, ``credits``, ``empty``.
    """
    now = now or datetime.now(timezone.utc)
    calendar = get_calendar(session=session)
    period = parse_month(month, tz=calendar.timezone)
    months = [period]
    while len(months) < TREND_MONTHS:
        months.insert(0, months[0].previous())
    cutoff = period.cutoff(now)
    rankings = []
    for by, zh, en, limit in RANKINGS:
        table = kpi(session=session, period=period, by=by, now=now).sort_values("rank")
        table["name"] = table["name"].where(table["name"].notna(), table["subject"])
        rankings.append({"by": by, "zh": zh, "en": en, "table": table.head(limit) if limit else table,
                         "total": len(table), "columns": ranking_columns(by, table)})
    trend = monthly_trend(session=session, months=months, now=now)
    overdue, overdue_total = overdue_cases(session=session, cutoff=cutoff, calendar=calendar)
    headline = headline_figures(session=session, periods=months[-2:], trend=trend, now=now)
    city = get_city(session=session)
    return {
        "period": period, "previous": months[-2], "cutoff": cutoff, "now": now, "timezone": calendar.timezone,
        "city": {"name": city.name if city else "gridmap", "name_en": city.name_en if city else ""},
        "headline": headline, "rankings": rankings, "trend": trend,
        "classes": top_classes(session=session, period=period, previous=months[-2]),
        "overdue": overdue, "overdue_total": overdue_total,
        "hotspots": hot_grids(session=session, period=period),
        "layers": grid_layers(session=session, period=period),
        "definitions": definitions(rankings), "credits": attributions(session=session),
        "empty": int(trend["reported"].iloc[-1]) == 0 and headline["filed"][0] == 0,
    }


def ranking_columns(by: str, table: pd.DataFrame) -> list[tuple[str, str, str, str]]:
    """Return the columns a ranking shows for ``by``: its main counts, then every rate (and the average disposal
    time), as (column, zh, en, unit); the full tables are ``gridmap kpi``'s."""
    shown = [BY_COLUMN[c] for c in RANKING_COUNTS[subject_kind(by)]]
    shown += [k for k in kpis_for(by) if k.unit in ("rate", "hours")]
    return [(k.column, k.zh, k.en, k.unit) for k in shown if k.column in table.columns]


def headline_figures(*, session: Session, periods: list, trend: pd.DataFrame, now: datetime) -> dict:
    """This month and the previous one: reported, filed, closed, 结案率, 按期结案率, overdue open at the cut-off
    (each value a pair ``[this month, previous month]``)."""
    figures = {"reported": [], "filed": [], "closed": [], "closure_rate": [], "on_time_rate": [], "overdue": []}
    calendar = get_calendar(session=session)
    for period in reversed(periods):
        cutoff = period.cutoff(now)
        filed, closed = session.execute(text(
            "SELECT count(*) FILTER (WHERE filed_at >= :start AND filed_at < :end AND status <> 'merged'), "
            "count(*) FILTER (WHERE closed_at >= :start AND closed_at < :end) FROM case_file "
            "WHERE (filed_at >= :start AND filed_at < :end) OR (closed_at >= :start AND closed_at < :end)"),
            {"start": period.start, "end": cutoff}).one()
        row = trend.loc[period.label]
        figures["reported"].append(int(row["reported"]))
        figures["filed"].append(filed)
        figures["closed"].append(closed)
        figures["closure_rate"].append(row["closure_rate"])
        figures["on_time_rate"].append(row["on_time_rate"])
        figures["overdue"].append(overdue_cases(session=session, cutoff=cutoff, calendar=calendar, limit=0)[1])
    return figures


def monthly_trend(*, session: Session, months: list, now: datetime) -> pd.DataFrame:
    """Per month: cases reported by source (and in all), and the city's 结案率 and 按期结案率 (KPI definitions)."""
    zone = months[0].start.tzinfo.key
    rows = session.execute(text(
        "SELECT to_char(reported_at AT TIME ZONE :zone, 'YYYY-MM') AS month, source, count(*) AS cases "
        "FROM case_file WHERE reported_at >= :start AND reported_at < :end AND status <> 'merged' "
        "GROUP BY 1, 2"), {"zone": zone, "start": months[0].start, "end": min(months[-1].end, now)}).all()
    counts = pd.DataFrame(rows, columns=["month", "source", "cases"])
    trend = (counts.pivot_table(index="month", columns="source", values="cases", aggfunc="sum", fill_value=0)
             .reindex([m.label for m in months], fill_value=0).reindex(columns=list(charts.SOURCES), fill_value=0))
    trend["reported"] = trend.sum(axis=1)
    closure = [city_rates(session=session, period=m, now=now) for m in months]
    trend["closure_rate"] = [r[0] for r in closure]
    trend["on_time_rate"] = [r[1] for r in closure]
    return trend


def city_rates(*, session: Session, period: Period, now: datetime) -> tuple[float, float]:
    """The whole city's 结案率 and 按期结案率 for ``period``: the KPI's additive district counts summed, then its
    rate formulas (NaN when nothing was due)."""
    table = kpi(session=session, period=period, by="district", now=now)
    columns = count_columns("district")
    city = rates(table[columns].sum().to_frame("city").T.rename_axis("subject"), by="district")
    return float(city["closed_rate"].iloc[0]), float(city["closed_on_time_rate"].iloc[0])


def overdue_cases(*, session: Session, cutoff: datetime, calendar, limit: int = OVERDUE_SHOWN):
    """Open cases past their disposal deadline at ``cutoff``, most late first: (DataFrame of ``limit`` rows
    with how late in working hours, total count)."""
    where = ("c.disposal_deadline < :cutoff AND c.filed_at < :cutoff AND (c.handled_at IS NULL OR c.handled_at > "
             ":cutoff) AND (c.closed_at IS NULL OR c.closed_at > :cutoff) AND c.status NOT IN ('voided', "
             "'rejected', 'merged')")
    total = session.execute(text(f"SELECT count(*) FROM case_file c WHERE {where}"), {"cutoff": cutoff}).scalar_one()
    frame = pd.DataFrame(session.execute(text(
        f"SELECT c.number, c.class_code, coalesce(ec.name, cc.name, c.local_class) AS class_name, c.unit_grid, "
        f"cm.name AS community, c.department, d.name AS department_name, c.disposal_deadline, c.status "
        f"FROM case_file c LEFT JOIN event_class ec ON c.case_type = 'event' AND ec.code = c.class_code "
        f"LEFT JOIN component_class cc ON c.case_type = 'component' AND cc.code = c.class_code "
        f"LEFT JOIN community cm ON cm.code = c.community LEFT JOIN department d ON d.code = c.department "
        f"WHERE {where} ORDER BY c.disposal_deadline, c.number LIMIT :limit"),
        {"cutoff": cutoff, "limit": limit}).mappings().all(),
        columns=["number", "class_code", "class_name", "unit_grid", "community", "department",
                 "department_name", "disposal_deadline", "status"])
    # working time to the cut-off shrinks as the deadline moves later, so the first rows are the latest
    frame["late_hours"] = [calendar.working_time_between(deadline, cutoff).total_seconds() / 3600
                           for deadline in frame["disposal_deadline"]]
    return frame, total


def top_classes(*, session: Session, period, previous) -> pd.DataFrame:
    """The month's most reported classes, with the previous month's count."""
    rows = session.execute(text(
        "SELECT c.case_type, coalesce(c.class_code, '') AS code, coalesce(ec.name, cc.name, c.local_class) AS name, "
        "count(*) FILTER (WHERE c.reported_at >= :start) AS cases, "
        "count(*) FILTER (WHERE c.reported_at < :start) AS previous FROM case_file c "
        "LEFT JOIN event_class ec ON c.case_type = 'event' AND ec.code = c.class_code "
        "LEFT JOIN component_class cc ON c.case_type = 'component' AND cc.code = c.class_code "
        "WHERE c.reported_at >= :before AND c.reported_at < :end AND c.status <> ALL(:ended) "
        "GROUP BY 1, 2, 3 HAVING count(*) FILTER (WHERE c.reported_at >= :start) > 0 "
        "ORDER BY cases DESC, code LIMIT :limit"),
        {"before": previous.start, "start": period.start, "end": period.end, "limit": TOP_CLASSES,
         "ended": list(NOT_PROBLEMS)}).all()
    frame = pd.DataFrame(rows, columns=["case_type", "code", "name", "cases", "previous"])
    kind = frame["case_type"].map({"event": "事件", "component": "部件"}).fillna("")
    frame["label"] = (frame["code"] + " " + frame["name"].fillna("") + " (" + kind + ")").str.strip()
    return frame


def hot_grids(*, session: Session, period: Period) -> pd.DataFrame:
    """The month's grids with most cases (高发网格), with Getis-Ord Gi* from :mod:`gridmap.evaluation.hotspots`
    (whether they and their neighbours form a significant cluster) and their community's and district's names."""
    from gridmap.evaluation.hotspots import hotspots

    counted = session.execute(text(
        "SELECT count(*) FROM case_file WHERE reported_at >= :start AND reported_at < :end "
        "AND status <> ALL(:ended)"),
        {"start": period.start, "end": period.end, "ended": list(NOT_PROBLEMS)}).scalar_one()
    if not counted:  # no Gi* without cases
        return pd.DataFrame(columns=["code", "community", "district", "cases"])
    grids = hotspots(session=session, period=period)
    frame = pd.DataFrame(grids.drop(columns=grids.geometry.name))
    frame = frame[frame["cases"] > 0].sort_values(["cases", "gi_z", "code"], ascending=[False, False, True])
    frame = frame.head(HOTSPOTS_SHOWN)
    names = session.execute(text(
        "SELECT cm.code, cm.name, d.name FROM community cm LEFT JOIN district d ON d.id = cm.district_id "
        "WHERE cm.code = ANY(:codes)"), {"codes": list(frame["community_code"])}).all()
    community = {code: (name, district) for code, name, district in names}
    frame["community"] = frame["community_code"].map(lambda c: community.get(c, (None, None))[0])
    frame["district"] = frame["community_code"].map(lambda c: community.get(c, (None, None))[1])
    return frame


def _fill_sql() -> str:
    steps = " ".join(f"WHEN n >= {low} THEN '{colour}'" for low, colour in
                     reversed(list(zip(CHOROPLETH_BREAKS, CHOROPLETH_COLOURS))))
    return f"CASE {steps} ELSE '#ffffff' END"


def grid_layers(*, session: Session, period) -> dict:
    """The map's layers as GeoJSON built in SQL: the grids with ≥ 1 case reported in ``period`` (simplified,
    with their count and fill) and the district boundaries; plus the bounds to open on."""
    fill = _fill_sql()
    grids, box = session.execute(text(
        "WITH n AS (SELECT unit_grid, count(*) AS n FROM case_file WHERE reported_at >= :start "
        "AND reported_at < :end AND status <> ALL(:ended) GROUP BY unit_grid), "
        "g AS (SELECT DISTINCT ON (u.code) u.code, u.geom, cm.name AS community, n.n FROM n "
        "JOIN unit_grid u ON u.code = n.unit_grid JOIN community cm ON cm.id = u.community_id "
        "ORDER BY u.code, u.valid_to DESC NULLS FIRST) "
        "SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(json_build_object("
        "'type', 'Feature', 'geometry', ST_AsGeoJSON(ST_SimplifyPreserveTopology(geom, :tolerance), 5)::json, "
        "'properties', json_build_object('code', code, 'community', community, 'cases', n, 'style', "
        f"json_build_object('fillColor', {fill}, 'color', {fill})))), '[]'::json))::text, "
        "ARRAY[ST_YMin(ST_Extent(geom)), ST_XMin(ST_Extent(geom)), ST_YMax(ST_Extent(geom)), "
        "ST_XMax(ST_Extent(geom))] FROM g"),
        {"start": period.start, "end": period.end, "tolerance": GRID_TOLERANCE, "ended": list(NOT_PROBLEMS)}).one()
    districts = session.execute(text(
        "SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(json_build_object("
        "'type', 'Feature', 'geometry', ST_AsGeoJSON(ST_SimplifyPreserveTopology(geom, :tolerance), 5)::json, "
        "'properties', json_build_object('code', code, 'name', name))), '[]'::json))::text FROM district"),
        {"tolerance": DISTRICT_TOLERANCE}).scalar_one()
    if box[0] is None:
        west, south, east, north = territory_bounds(session=session)
        box = [south, west, north, east]
    return {"grids": json.loads(grids), "districts": json.loads(districts),
            "bounds": [[box[0], box[1]], [box[2], box[3]]]}


def definitions(rankings: list[dict]) -> list[dict]:
    """The definitions (``gridmap.evaluation.definitions``) of the KPIs the bulletin shows, in the KPIs' order."""
    used = {"filed", "due", "closed", "closed_on_time", "closed_rate", "closed_on_time_rate"}
    used |= {column for ranking in rankings for column, *_ in ranking["columns"]}
    return [{"column": k.column, "zh": k.zh, "en": k.en, "formula": k.formula}
            for k in (*KPIS, *SCORE_COLUMNS[:2]) if k.column in used or k in SCORE_COLUMNS]


def write_bulletin(*, session: Session, month: str, out: Path, now: datetime | None = None, pdf: bool = True,
                   browser: str | None = None) -> BulletinFiles:
    """Write ``out/bulletin-<month>.html`` and, if a Chromium is found, ``out/bulletin-<month>.pdf``.

    Parameters
    ----------
    session
        Open session; nothing is written to the database.
    month
        ``YYYY-MM``; anything else raises :class:`BulletinError`.
    out
        Folder to write to (created if missing).
    now
        The moment of the figures (default: now).
    pdf
        Whether to print the PDF as well.
    browser
        Chromium/Chrome executable (default: found on ``PATH``).
    """
    started = time.perf_counter()
    label = parse_month(month, tz=get_calendar(session=session).timezone).label  # a bad month fails first
    path = Path(out) / f"bulletin-{label}.html"
    _writable(path.parent)  # before the work, not after
    html = render_bulletin(bulletin_data(session=session, month=month, now=now))
    try:
        path.write_text(html, encoding="utf-8")
    except OSError as error:
        raise BulletinError(f"{path}: cannot write the bulletin ({error.strerror})") from None
    printed, note = None, "PDF not asked for"
    if pdf:
        executable = browser or find_browser()
        if executable is None:
            note = ("no PDF: no Chromium or Chrome found (install the Debian package chromium, or give "
                    "--browser PATH); the HTML is complete without it")
        else:
            printed, note = print_pdf(path, path.with_suffix(".pdf"), browser=executable)
    return BulletinFiles(html=path, pdf=printed, pdf_note=note, html_bytes=path.stat().st_size,
                         seconds=time.perf_counter() - started)


def _writable(folder: Path) -> None:
    """Make ``folder`` if it is missing; :class:`BulletinError` if the bulletin cannot be written there."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
    except OSError as error:
        raise BulletinError(f"{folder}: cannot write the bulletin there ({error.strerror})") from None


def find_browser() -> str | None:
    """Return the path of a Chromium or Chrome on ``PATH``, or None."""
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


def print_pdf(html: Path, pdf: Path, *, browser: str) -> tuple[Path | None, str]:
    """Print ``html`` to an A4 ``pdf`` with headless Chromium; return (the PDF or None, what happened)."""
    with tempfile.TemporaryDirectory(prefix="gridmap-pdf-") as profile:
        command = [browser, "--headless", "--disable-gpu", "--no-pdf-header-footer", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                   f"--user-data-dir={profile}", "--virtual-time-budget=5000", f"--print-to-pdf={pdf}",
                   html.resolve().as_uri()]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.insert(2, "--no-sandbox")  # Chromium refuses to run as root inside its sandbox
        pdf.unlink(missing_ok=True)
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=PDF_SECONDS, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            return None, f"no PDF: {browser} failed ({error})"
    if not pdf.is_file() or pdf.read_bytes()[:4] != b"%PDF":
        detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [f"exit status {result.returncode}"]
        return None, f"no PDF: {browser} did not print it ({detail[0]})"
    return pdf, f"PDF printed with {browser}"
