"""KPIs 考核评价 as a table: facts → counts → rates → names → scores (DOMAIN.md §7, docs/kpi.md).

``kpi(session=…, period="2026-10", by="department")`` returns one row per subject with cases (or actions)
in the period. The same :func:`present` finishes counts that were summed elsewhere (dask partitions).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.calendar.service import get_calendar
from gridmap.cases.access import require_role
from gridmap.evaluation import measures
from gridmap.evaluation.definitions import SCORE_COLUMNS, EvaluationError, kpis_for, subject_kind
from gridmap.evaluation.facts import case_facts, event_facts
from gridmap.evaluation.periods import Period, parse_period
from gridmap.evaluation.schemas import KpiColumn, KpiTable, PeriodOut
from gridmap.evaluation.scoring import Scoring, load_scoring, score
from gridmap.users.service import CurrentUser

#: who may read KPIs (inspectors and departments are the evaluated, not the readers)
KPI_READERS = ("supervisor", "analyst", "admin", "shift_lead", "dispatcher")

NAMES = {
    "unit_grid": "SELECT DISTINCT ON (g.code) g.code, c.name || ' ' || right(g.code, 3) FROM unit_grid g "
                 "JOIN community c ON c.id = g.community_id WHERE g.code = ANY(:codes) ORDER BY g.code, g.valid_from DESC",
    "community": "SELECT code, name FROM community WHERE code = ANY(:codes)",
    "street": "SELECT code, name FROM street WHERE code = ANY(:codes)",
    "district": "SELECT code, name FROM district WHERE code = ANY(:codes)",
    "department": "SELECT code, name FROM department WHERE code = ANY(:codes)",
}
PEOPLE = "SELECT name, coalesce(display_name, name) FROM app_user WHERE name = ANY(:codes)"


def kpi(*, session: Session, period: str | Period, by: str, now: datetime | None = None,
        scoring: Scoring | str | Path | None = None) -> pd.DataFrame:
    """The KPIs of every subject ``by`` for ``period``.

    Parameters
    ----------
    session : Session
        The city's database.
    period : str or Period
        ``2026-10-05``, ``2026-W41``, ``2026-10``, ``2026-Q4``, ``2026`` or ``2026-10-01..2026-10-15`` (in the
        working calendar's time zone), or a parsed :class:`~gridmap.evaluation.periods.Period`.
    by : str
        ``unit_grid``, ``community``, ``street``, ``district``, ``department``, ``inspector``, ``dispatcher``
        or ``shift_lead``.
    now : datetime, optional
        The cut-off of a period still running is ``now`` (default: the current time).
    scoring : Scoring, path or None
        Weights and bands; a path to a YAML file overriding parts of ``data/evaluation/scoring.yaml``.

    Returns
    -------
    pandas.DataFrame
        ``subject`` (code or login), ``name``, additive counts, rates (0–1, NaN when undefined), ``score``,
        ``band``, ``rank``, best first; ``attrs`` holds the period, cut-off and scoring.

    Raises
    ------
    EvaluationError
        A bad period, subject or scoring file (:class:`~gridmap.evaluation.periods.BadPeriod`,
        :class:`~gridmap.evaluation.scoring.BadScoring`).
    """
    subject_kind(by)
    if now is not None and now.tzinfo is None:
        raise EvaluationError(f"now={now} needs a time zone")
    scoring = scoring if isinstance(scoring, Scoring) else load_scoring(scoring)  # a bad file fails first
    period = resolve_period(session=session, period=period)
    cutoff = period.cutoff(now or datetime.now(timezone.utc))
    cases = case_facts(session=session, period=period, by=by, cutoff=cutoff, grouped=True)
    events = event_facts(session=session, period=period, by=by, cutoff=cutoff, grouped=True)
    counts = measures.counts(cases, events, by=by, cutoff=cutoff)
    return present(session=session, counts=counts, by=by, scoring=scoring, period=period, cutoff=cutoff)


def present(*, session: Session, counts: pd.DataFrame, by: str, scoring: Scoring | str | Path | None = None,
            period: Period | None = None, cutoff: datetime | None = None) -> pd.DataFrame:
    """Finish counts (from :func:`~gridmap.evaluation.measures.counts`, possibly summed over partitions):
    rates, names, score, band and rank, as :func:`kpi` returns them."""
    scoring = scoring if isinstance(scoring, Scoring) else load_scoring(scoring)
    frame = measures.rates(counts, by=by)
    frame.insert(0, "name", pd.Series(names(session=session, by=by, codes=frame.index), index=frame.index,
                                      dtype=object))
    frame = score(frame, by=by, scoring=scoring).reset_index()
    frame.attrs.update(by=by, kind=subject_kind(by), scoring=scoring.as_dict())
    if period is not None:
        cutoff = cutoff or period.end
        frame.attrs.update(period=period.label, period_kind=period.kind, start=period.start, end=period.end,
                           cutoff=cutoff, complete=cutoff >= period.end)
    return frame


def resolve_period(*, session: Session, period: str | Period) -> Period:
    """``period`` parsed in the working calendar's time zone (a Period is returned as it is)."""
    if isinstance(period, Period):
        return period
    return parse_period(period, tz=get_calendar(session=session).timezone)


def names(*, session: Session, by: str, codes: Iterable[str]) -> dict[str, str]:
    """Display names of subjects: territory and department names; people's display names. A unit grid has
    no name of its own: its community's name and its sequence number stand for it."""
    codes = [str(c) for c in codes]
    if not codes:
        return {}
    query = NAMES.get(by, PEOPLE)
    return dict(session.execute(text(query), {"codes": codes}).all())


def kpi_table(*, session: Session, user: CurrentUser, period: str, by: str, now: datetime | None = None,
              scoring: Scoring | None = None) -> KpiTable:
    """:func:`kpi` for a logged-in reader, with the definitions of its columns (the API's answer)."""
    require_role(user, KPI_READERS, "KPIs")
    frame = kpi(session=session, period=period, by=by, now=now, scoring=scoring)
    a = frame.attrs
    columns = [KpiColumn(column=k.column, zh=k.zh, en=k.en, formula=k.formula, unit=k.unit, better=k.better)
               for k in (*kpis_for(by), *SCORE_COLUMNS)]
    rows = json.loads(frame.to_json(orient="records", double_precision=15, date_format="iso"))
    return KpiTable(by=by, kind=a["kind"], period=PeriodOut(label=a["period"], kind=a["period_kind"], start=a["start"],
                    end=a["end"]), cutoff=a["cutoff"], complete=a["complete"], columns=columns,
                    scoring=a["scoring"], rows=rows)
