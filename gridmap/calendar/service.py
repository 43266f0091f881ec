"""Working-time arithmetic on a working calendar (working days, holidays, daily windows).

A limit in working days counts whole standard working days: 1 working day = the length of the
calendar's standard daily windows (8 h for 08:30–12:30 + 13:30–17:30), so "1 working day" from
15:00 on Friday ends at 15:00 on Monday when Monday works.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from gridmap.calendar.models import CalendarDay, WorkingCalendar
from gridmap.db.engine import database_key

Window = tuple[time, time]


class CalendarError(ValueError):
    """A calendar definition is malformed; the message names the field."""


def _windows(raw: list, where: str) -> list[Window]:
    try:
        windows = [(time.fromisoformat(start), time.fromisoformat(end)) for start, end in raw]
    except (TypeError, ValueError):
        raise CalendarError(f"{where}: windows must be a list of [\"HH:MM\", \"HH:MM\"] pairs") from None
    for start, end in windows:
        if end <= start:
            raise CalendarError(f"{where}: window {start}–{end} ends before it starts")
    return sorted(windows)


@dataclass(frozen=True)
class Calendar:
    """A working calendar held in memory for arithmetic."""

    code: str
    timezone: ZoneInfo
    weekdays: frozenset[int]
    windows: tuple[Window, ...]
    days: dict[date, tuple[Window, ...]] = field(default_factory=dict)  # exceptions: () = day off

    def windows_on(self, day: date) -> tuple[Window, ...]:
        if day in self.days:
            return self.days[day]
        return self.windows if day.isoweekday() in self.weekdays else ()

    @property
    def day_length(self) -> timedelta:
        return sum((_span(start, end) for start, end in self.windows), timedelta())

    def to_duration(self, amount: float, unit: str) -> timedelta:
        """Convert a limit (``unit`` ``hour`` or ``day``) into working time."""
        if unit == "hour":
            return timedelta(hours=float(amount))
        if unit == "day":
            return self.day_length * float(amount)
        raise CalendarError(f"unknown limit unit {unit!r}: use 'hour' or 'day'")

    def _local(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            raise CalendarError("working-time arithmetic needs timezone-aware datetimes")
        return moment.astimezone(self.timezone)

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Working time elapsed from ``start`` to ``end`` (zero if ``end`` is earlier)."""
        start, end = self._local(start), self._local(end)
        total, day = timedelta(), start.date()
        while day <= end.date():
            for open_, close in self.windows_on(day):
                lo = max(start, datetime.combine(day, open_, self.timezone))
                hi = min(end, datetime.combine(day, close, self.timezone))
                if hi > lo:
                    total += hi - lo
            day += timedelta(days=1)
        return total

    def add_working_time(self, start: datetime, amount: timedelta) -> datetime:
        """The moment when ``amount`` of working time has passed after ``start``."""
        moment, remaining = self._local(start), amount
        day, idle_days = moment.date(), 0
        while True:
            windows = self.windows_on(day)
            for open_, close in windows:
                lo = max(moment, datetime.combine(day, open_, self.timezone))
                hi = datetime.combine(day, close, self.timezone)
                if hi <= lo:
                    continue
                if hi - lo >= remaining:
                    return lo + remaining
                remaining -= hi - lo
            idle_days = 0 if windows else idle_days + 1
            if idle_days > 366:
                raise CalendarError(f"calendar {self.code} has no working window in a whole year")
            day += timedelta(days=1)
            moment = datetime.combine(day, time(0), self.timezone)


def _span(start: time, end: time) -> timedelta:
    return datetime.combine(date.min, end) - datetime.combine(date.min, start)


def load_calendar(*, session: Session, path: Path) -> str:
    """Create or replace the calendar defined in the YAML file ``path``; return its code."""
    spec = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    where = str(path)
    try:
        code, timezone = spec["code"], spec["timezone"]
        weekdays = [int(d) for d in spec["weekdays"]]
    except (KeyError, TypeError, ValueError) as error:
        raise CalendarError(f"{where}: missing or malformed field {error}") from None
    ZoneInfo(timezone)
    _windows(spec["windows"], where)
    values = dict(code=code, name=spec.get("name", code), timezone=timezone, weekdays=weekdays,
                  windows=spec["windows"])
    # updated_at moves on every load: it is what get_calendar's cache is checked against
    session.execute(insert(WorkingCalendar).values(values).on_conflict_do_update(
        index_elements=["code"], set_=values | {"updated_at": func.clock_timestamp()}))
    session.execute(delete(CalendarDay).where(CalendarDay.calendar_code == code))
    for index, entry in enumerate(spec.get("days", []), start=1):
        if not isinstance(entry.get("day"), date):
            raise CalendarError(f"{where}: days entry {index}: 'day' must be a date YYYY-MM-DD")
        windows = entry.get("windows")
        if windows is not None:
            _windows(windows, f"{where}: days entry {index}")
        session.add(CalendarDay(calendar_code=code, day=entry["day"], is_working=bool(entry.get("working", False)),
                                windows=windows, note=entry.get("note")))
    session.flush()
    return code


#: calendars built before, by (database, code), with the updated_at they were built from
_BUILT: dict[tuple[tuple, str], tuple[datetime, Calendar]] = {}


def get_calendar(*, session: Session, code: str = "default", stamp: datetime | None = None) -> Calendar:
    """Return the calendar ``code`` ready for arithmetic (rebuilt only when it has been loaded again).

    ``stamp`` is the calendar's ``updated_at`` if the caller has just read it in its transaction (saves a
    round trip); it is read here otherwise."""
    if stamp is None:
        stamp = session.scalar(select(WorkingCalendar.updated_at).where(WorkingCalendar.code == code))
    key = (database_key(session), code)
    cached = _BUILT.get(key)
    if stamp is not None and cached is not None and cached[0] == stamp:
        return cached[1]
    calendar = _build_calendar(session, code)
    _BUILT[key] = (stamp, calendar)
    return calendar


def _build_calendar(session: Session, code: str) -> Calendar:
    row = session.get(WorkingCalendar, code)
    if row is None:
        raise CalendarError(f"no working calendar {code!r}: load one with `gridmap calendar load FILE`")
    standard = tuple(_windows(row.windows, code))
    days = {
        day.day: (tuple(_windows(day.windows, code)) if day.windows else standard) if day.is_working else ()
        for day in session.scalars(select(CalendarDay).where(CalendarDay.calendar_code == code))
    }
    return Calendar(code=code, timezone=ZoneInfo(row.timezone), weekdays=frozenset(row.weekdays),
                    windows=standard, days=days)
