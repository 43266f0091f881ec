"""Evaluation periods 考核周期: a day, an ISO week, a month, a quarter, a year or a range of days, in the
city's time zone, as a half-open interval [start, end) of aware datetimes.

    2026-10-05   day          2026-W41   ISO week (Monday to Sunday)     2026-10   month
    2026-Q4      quarter      2026       year                            2026-10-01..2026-10-15   days, inclusive
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from gridmap.evaluation.definitions import EvaluationError

FORMS = ("2026-10-05 (day)", "2026-W41 (ISO week)", "2026-10 (month)", "2026-Q4 (quarter)", "2026 (year)",
         "2026-10-01..2026-10-15 (days, inclusive)")
KINDS = ("day", "week", "month", "quarter", "year", "range")


class BadPeriod(EvaluationError):
    """A period text that is not one of :data:`FORMS`."""


@dataclass(frozen=True)
class Period:
    """[start, end) in the city's time zone; ``label`` is the canonical text it was parsed from."""

    label: str
    kind: str
    start: datetime
    end: datetime

    def cutoff(self, now: datetime) -> datetime:
        """The moment up to which events count: the period's end, or ``now`` while it is still running."""
        return min(self.end, now)

    def previous(self) -> Period:
        """The period of the same kind just before (for a range: as many days, ending where this starts)."""
        first, zone = self.start.date(), self.start.tzinfo
        if self.kind == "range":
            days = (self.end.date() - first).days
            return _days(first - timedelta(days=days), first - timedelta(days=1), zone)
        before = first - timedelta(days=1)
        texts = {"day": before.isoformat(), "week": "{0}-W{1:02d}".format(*before.isocalendar()),
                 "month": f"{before:%Y-%m}", "quarter": f"{before.year}-Q{(before.month - 1) // 3 + 1}",
                 "year": str(before.year)}
        return parse_period(texts[self.kind], tz=zone)


def parse_period(text: str, *, tz: tzinfo | str) -> Period:
    """Parse a period text (see :data:`FORMS`) into a :class:`Period` in time zone ``tz``.

    Parameters
    ----------
    text : str
        ``2026-10-05``, ``2026-W41``, ``2026-10``, ``2026-Q4``, ``2026`` or ``2026-10-01..2026-10-15``.
    tz : tzinfo or str
        The city's time zone (the working calendar's), e.g. ``"Asia/Taipei"``.

    Returns
    -------
    Period
        With aware ``start`` and exclusive ``end``.

    Raises
    ------
    BadPeriod
        When the text is none of the forms or names a date that does not exist; the message lists the forms.
    """
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    value = (text or "").strip().upper()
    try:
        return _parse(value, zone)
    except ValueError as error:
        raise BadPeriod(f"period {text!r}: {error}; use one of {', '.join(FORMS)}") from None


def _parse(value: str, zone: tzinfo) -> Period:
    if ".." in value:
        first, _, last = value.partition("..")
        start, end = _date(first), _date(last)
        if end < start:
            raise ValueError("the range ends before it starts")
        return _days(start, end, zone)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        day = _date(value)
        return _make(value, "day", day, day + timedelta(days=1), zone)
    if match := re.fullmatch(r"(\d{4})-W(\d{2})", value):
        monday = date.fromisocalendar(int(match[1]), int(match[2]), 1)
        return _make(value, "week", monday, monday + timedelta(days=7), zone)
    if match := re.fullmatch(r"(\d{4})-(\d{2})", value):
        first = date(int(match[1]), int(match[2]), 1)
        return _make(value, "month", first, _add_months(first, 1), zone)
    if match := re.fullmatch(r"(\d{4})-Q([1-4])", value):
        first = date(int(match[1]), 3 * int(match[2]) - 2, 1)
        return _make(value, "quarter", first, _add_months(first, 3), zone)
    if re.fullmatch(r"\d{4}", value):
        first = date(int(value), 1, 1)
        return _make(value, "year", first, date(first.year + 1, 1, 1), zone)
    raise ValueError("not a period")


def _date(text: str) -> date:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        raise ValueError(f"{text.strip()!r} is not a date YYYY-MM-DD")
    return date.fromisoformat(text.strip())


def _days(first: date, last: date, zone: tzinfo) -> Period:
    return _make(f"{first.isoformat()}..{last.isoformat()}", "range", first, last + timedelta(days=1), zone)


def _add_months(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _make(label: str, kind: str, first: date, after: date, zone: tzinfo) -> Period:
    return Period(label, kind, datetime.combine(first, time(0), zone), datetime.combine(after, time(0), zone))
