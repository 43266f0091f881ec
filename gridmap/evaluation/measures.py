"""Measures 指标计算: the one definition of every KPI, in plain pandas over the facts frames.

:func:`counts` turns facts into additive counts per subject — partitions of the facts can be counted
separately and the counts summed (:func:`combine`) to the same numbers as counting all at once, since
every row is judged on its own against the cut-off T. :func:`rates` derives the ratios from counts.

Raw facts are first reduced to where each case or action stood at T (:func:`case_states`,
:func:`event_states`: the flags that facts grouped in SQL come with already); the counts are sums of
those flags, weighted by the number of rows each stands for.

The rules (docs/kpi.md): a case counts as handled when ``handled_at ≤ T``, closed when ``closed_at ≤ T``,
voided when it was voided by T; events after T never count. A moment that is missing (NaT) is never
"by T"; a missing deadline counts as met.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

import pandas as pd

from gridmap.evaluation.definitions import EvaluationError, count_columns, rate_columns, subject_kind

#: the columns a case can be counted by
SUBJECT_COLUMNS = ("unit_grid", "community", "street", "district", "department", "inspector")


def counts(case_facts: pd.DataFrame, event_facts: pd.DataFrame, *, by: str, cutoff: datetime) -> pd.DataFrame:
    """Count the facts per subject ``by`` as they stood at ``cutoff``.

    Parameters
    ----------
    case_facts, event_facts : pandas.DataFrame
        From :func:`gridmap.evaluation.facts.case_facts` / :func:`~gridmap.evaluation.facts.event_facts`
        (or the same columns read from Parquet), for one period or a partition of it: raw, or grouped at
        this very cut-off.
    by : str
        The subject: ``unit_grid``, ``community``, ``street``, ``district``, ``department``, ``inspector``,
        ``dispatcher`` or ``shift_lead``.
    cutoff : datetime
        T = min(period end, now), timezone-aware.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``subject``; the kind's count columns (:func:`~gridmap.evaluation.definitions.count_columns`),
        integers except ``disposal_minutes``. Subjects without any fact do not appear.
    """
    kind = subject_kind(by)
    moment = _utc(cutoff)
    parts = COUNTERS[kind](case_states(case_facts, moment), event_states(event_facts, moment), by)
    return _tidy(pd.concat(parts, axis=1) if parts else pd.DataFrame(), by)


def combine(parts: Iterable[pd.DataFrame], *, by: str) -> pd.DataFrame:
    """Sum counts of partitions (each from :func:`counts` with the same ``by`` and cut-off)."""
    frames = [p for p in parts if len(p)]
    return _tidy(pd.concat(frames).groupby(level=0).sum() if frames else pd.DataFrame(), by)


def rates(counts: pd.DataFrame, *, by: str) -> pd.DataFrame:
    """The counts with the kind's rates appended: floats in 0–1 (``avg_disposal_hours`` in working hours),
    NaN where the denominator is 0."""
    frame = counts.copy()
    for column in rate_columns(by):
        numerator, denominator, scale = RATES[column](frame)
        frame[column] = numerator.astype(float) * scale / denominator.astype(float).where(denominator > 0)
    return frame


def case_states(facts: pd.DataFrame, cutoff: datetime) -> pd.DataFrame:
    """Where each case stood at the cut-off (the flags of :data:`gridmap.evaluation.facts.CASE_STATES`),
    weighted by ``n``; facts grouped in SQL at this cut-off already are."""
    moment = _utc(cutoff)
    if "n" in facts:
        _same_cutoff(facts, moment)
        return facts
    kept = facts[_by(facts["cohort_at"], moment)]
    ended = _by(kept["ended_at"], moment)
    states = pd.DataFrame({
        "filed_by": _by(kept["filed_at"], moment), "handled": _by(kept["handled_at"], moment),
        "closed": _by(kept["closed_at"], moment), "past_deadline": _by(kept["disposal_deadline"], moment),
        "in_time": kept["disposal_deadline"].isna() | _by(kept["handled_at"], kept["disposal_deadline"]),
        "voided": (kept["status"] == "voided") & ended, "ended": ended, "reworked": kept["rework_count"] > 0,
        "n": 1, "disposal_minutes": kept["disposal_minutes"].fillna(0.0),
        "disposal_count": kept["disposal_minutes"].notna().astype("int64")}, index=kept.index)
    keys = [c for c in kept.columns if c in ("cohort", *SUBJECT_COLUMNS, "source")]
    return pd.concat([kept[keys], states], axis=1)


def event_states(facts: pd.DataFrame, cutoff: datetime) -> pd.DataFrame:
    """Whether each action up to the cut-off was on time and was undone by then, weighted by ``n``."""
    moment = _utc(cutoff)
    if "n" in facts:
        _same_cutoff(facts, moment)
        return facts
    kept = facts[_by(facts["at"], moment)]
    states = pd.DataFrame({"on_time": kept["due_at"].isna() | _by(kept["at"], kept["due_at"]),
                           "undone": _by(kept["undone_at"], moment), "n": 1}, index=kept.index)
    return pd.concat([kept[["action", "actor", "department"]], states], axis=1)


def _same_cutoff(facts: pd.DataFrame, cutoff: pd.Timestamp) -> None:
    grouped_at = facts.attrs.get("cutoff")
    if grouped_at is not None and grouped_at != cutoff:
        raise EvaluationError(f"these facts were grouped as at {grouped_at}: they cannot be counted as at {cutoff}")


def _utc(moment: datetime) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is None:
        raise EvaluationError(f"the cut-off {moment} needs a time zone")
    return stamp.tz_convert("UTC")


def _by(left: pd.Series, right: pd.Series | pd.Timestamp) -> pd.Series:
    """``left ≤ right``, False where either is missing."""
    return (left <= right).fillna(False).astype(bool)


def _sum(flags: dict[str, pd.Series | int], weight: pd.Series, subject: pd.Series) -> pd.DataFrame:
    """Sum the flags (times each row's weight ``n``; other numbers as they are) per subject; rows without a
    subject are left out."""
    weighted = {k: v * weight if isinstance(v, int) or pd.api.types.is_bool_dtype(v) else v for k, v in flags.items()}
    frame = pd.DataFrame(weighted, index=subject.index)
    return frame.groupby(subject.rename("subject").astype(object), dropna=True).sum()


def _cases(states: pd.DataFrame, cohort: str) -> pd.DataFrame:
    return states[states["cohort"] == cohort]


def _actions(states: pd.DataFrame, action: str) -> pd.DataFrame:
    return states[states["action"] == action]


def _filed(s: pd.DataFrame) -> dict[str, pd.Series | int]:
    """The counts of the filed cohort (regions, departments) from the cases' states at T."""
    handled, voided, past = s["handled"], s["voided"], s["past_deadline"]
    due = ~voided & (handled | s["closed"] | past)
    return {"filed": 1, "due": due, "handled": handled, "handled_on_time": handled & s["in_time"],
            "overdue_unhandled": ~voided & ~handled & past, "closed": s["closed"],
            "closed_on_time": s["closed"] & handled & s["in_time"], "public": s["source"] == "hotline",
            "reworked": due & s["reworked"], "disposal_minutes": s["disposal_minutes"].where(handled, 0.0),
            "disposal_count": s["disposal_count"].where(handled, 0)}


def _regions(cases: pd.DataFrame, events: pd.DataFrame, by: str) -> list[pd.DataFrame]:
    filed = _cases(cases, "filed")
    return [_sum(_filed(filed), filed["n"], filed[by])]


def _departments(cases: pd.DataFrame, events: pd.DataFrame, by: str) -> list[pd.DataFrame]:
    returns = _actions(events, "return")
    return _regions(cases, events, by) + [_sum({"returned": 1}, returns["n"], returns["department"])]


def _inspectors(cases: pd.DataFrame, events: pd.DataFrame, by: str) -> list[pd.DataFrame]:
    reported, duty = _cases(cases, "reported"), _cases(cases, "duty")
    valid = reported["filed_by"] | (reported["source"] == "self_disposal")
    invalid = ~valid & reported["ended"]
    verified, checked = _actions(events, "verify"), _actions(events, "check")
    return [_sum({"reports": 1, "reports_valid": valid, "reports_invalid": invalid,
                  "reports_pending": ~valid & ~invalid}, reported["n"], reported["inspector"]),
            _sum({"duty_filed": 1, "duty_public": duty["source"] == "hotline"}, duty["n"], duty["inspector"]),
            _sum({"verifications": 1, "verifications_on_time": verified["on_time"]}, verified["n"], verified["actor"]),
            _sum({"checks": 1, "checks_on_time": checked["on_time"]}, checked["n"], checked["actor"])]


def _dispatchers(cases: pd.DataFrame, events: pd.DataFrame, by: str) -> list[pd.DataFrame]:
    sent = _actions(events, "dispatch")
    return [_sum({"dispatches": 1, "dispatches_on_time": sent["on_time"], "dispatches_inaccurate": sent["undone"]},
                 sent["n"], sent["actor"])]


def _shift_leads(cases: pd.DataFrame, events: pd.DataFrame, by: str) -> list[pd.DataFrame]:
    filed, closed = _actions(events, "file"), _actions(events, "close")
    return [_sum({"file_events": 1, "file_events_on_time": filed["on_time"], "file_events_voided": filed["undone"]},
                 filed["n"], filed["actor"]),
            _sum({"close_events": 1, "close_events_on_time": closed["on_time"]}, closed["n"], closed["actor"])]


COUNTERS: dict[str, Callable[..., list[pd.DataFrame]]] = {
    "region": _regions, "department": _departments, "inspector": _inspectors, "dispatcher": _dispatchers,
    "shift_lead": _shift_leads}


def _tidy(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    """The kind's count columns in order, missing ones 0, integers but for the minutes; sorted by subject."""
    columns = count_columns(by)
    frame = frame.reindex(columns=columns).fillna(0)
    frame = frame.astype({c: "float64" if c == "disposal_minutes" else "int64" for c in columns})
    frame.index = pd.Index(frame.index, dtype=object, name="subject")
    return frame.sort_index()


def _ratio(numerator: str, denominator: str | tuple[str, ...], scale: float = 1.0):
    def ratio(c: pd.DataFrame):
        below = c[denominator] if isinstance(denominator, str) else c[list(denominator)].sum(axis=1)
        return c[numerator], below, scale
    return ratio


RATES = {
    "closed_rate": _ratio("closed", "due"), "closed_on_time_rate": _ratio("closed_on_time", "due"),
    "public_rate": _ratio("public", "filed"), "handled_on_time_rate": _ratio("handled_on_time", "due"),
    "rework_rate": _ratio("reworked", "due"), "avg_disposal_hours": _ratio("disposal_minutes", "disposal_count", 1 / 60),
    "valid_rate": _ratio("reports_valid", ("reports_valid", "reports_invalid")),
    "missed_rate": _ratio("duty_public", "duty_filed"),
    "verify_on_time_rate": _ratio("verifications_on_time", "verifications"),
    "check_on_time_rate": _ratio("checks_on_time", "checks"),
    "dispatch_on_time_rate": _ratio("dispatches_on_time", "dispatches"),
    "dispatch_accuracy_rate": lambda c: (c["dispatches"] - c["dispatches_inaccurate"], c["dispatches"], 1.0),
    "file_on_time_rate": _ratio("file_events_on_time", "file_events"),
    "file_accuracy_rate": lambda c: (c["file_events"] - c["file_events_voided"], c["file_events"], 1.0),
    "close_on_time_rate": _ratio("close_events_on_time", "close_events"),
}
