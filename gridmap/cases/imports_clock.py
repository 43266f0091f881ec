"""Working time on the city's calendar for whole columns of moments, as historical imports need it.

:class:`gridmap.calendar.service.Calendar` walks day by day for one moment; a million imported cases
would take that walk a million times. Here the calendar's working windows over the span the moments
need are laid out once as a timeline (UTC microseconds) with the working time accumulated before each
window, so "working time from a to b" is two binary searches and "a plus so much working time" is one
more: numpy over the whole column. The answers are those of :class:`Calendar`, to the microsecond (a test
compares them); a limit ending exactly where a window closes ends there, not at the next opening.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np

from gridmap.calendar.service import Calendar, CalendarError

_US_PER_MIN = 60_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


class Timeline:
    """The working windows of ``calendar`` from ``first`` to ``last`` (local dates), for column arithmetic.

    Moments are int64 microseconds since 1970-01-01 UTC (``datetime64[us]`` viewed as integers); missing
    moments are :data:`NAT` and give NaN minutes or NAT moments.
    """

    def __init__(self, calendar: Calendar, first: date, last: date):
        self.calendar, self.first, self.last = calendar, first, last
        starts, ends = [], []
        day = first
        while day <= last:
            for open_, close in calendar.windows_on(day):
                starts.append(_micros(datetime.combine(day, open_, calendar.timezone)))
                ends.append(_micros(datetime.combine(day, close, calendar.timezone)))
            day += timedelta(days=1)
        if not starts:
            raise CalendarError(f"calendar {calendar.code} has no working window from {first} to {last}")
        self.starts, self.ends = np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64)
        lengths = self.ends - self.starts
        self.done_after = np.cumsum(lengths)  # working time up to each window's end
        self.done_before = self.done_after - lengths

    @classmethod
    def covering(cls, calendar: Calendar, moments: np.ndarray, reach_minutes: float = 0.0) -> Timeline:
        """A timeline holding every moment of ``moments`` (int64 µs, :data:`NAT` ignored) and ``reach_minutes``
        of working time after the latest of them."""
        known = moments[moments != NAT]
        if known.size == 0:
            today = datetime.now(calendar.timezone).date()
            return cls(calendar, today, today + timedelta(days=7))
        local = [datetime.fromtimestamp(int(v) / 1e6, calendar.timezone).date() for v in (known.min(), known.max())]
        day_minutes = max(calendar.day_length.total_seconds() / 60, 1.0)
        margin = int(reach_minutes / day_minutes * 7 / 5) + 30  # weekends; holidays are caught below
        while True:
            timeline = cls(calendar, local[0] - timedelta(days=1), local[1] + timedelta(days=margin))
            if timeline.done_after[-1] - timeline.elapsed_us(np.array([known.max()]))[0] >= reach_minutes * _US_PER_MIN:
                return timeline
            if margin > 366 * 20:
                raise CalendarError(f"calendar {calendar.code} has too few working windows for a limit of "
                                    f"{reach_minutes:.0f} working minutes")
            margin *= 2

    def elapsed_us(self, moments: np.ndarray) -> np.ndarray:
        """Working time (µs) from the timeline's start to each moment (valid moments only)."""
        window = np.searchsorted(self.starts, moments, side="right") - 1
        inside = np.clip(moments - self.starts[np.maximum(window, 0)], 0,
                         self.ends[np.maximum(window, 0)] - self.starts[np.maximum(window, 0)])
        return np.where(window >= 0, self.done_before[np.maximum(window, 0)] + inside, 0)

    def minutes_between(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Working minutes from ``start`` to ``end`` (0 when ``end`` is earlier; NaN where either is missing),
        as :meth:`Calendar.working_time_between`."""
        missing = (start == NAT) | (end == NAT)
        self._check(start, end)
        first = self.starts[0]
        used = self.elapsed_us(np.where(missing, first, end)) - self.elapsed_us(np.where(missing, first, start))
        return np.where(missing, np.nan, np.maximum(used, 0) / _US_PER_MIN)

    def add(self, start: np.ndarray, minutes: np.ndarray) -> np.ndarray:
        """The moment ``minutes`` of working time after each ``start`` (NAT where either is missing), as
        :meth:`Calendar.add_working_time`."""
        minutes = np.broadcast_to(np.asarray(minutes, dtype=float), start.shape)
        missing = (start == NAT) | ~np.isfinite(minutes)
        self._check(start)
        start = np.where(missing, self.starts[0], start)
        amount = np.rint(np.where(missing, 0.0, np.maximum(minutes, 0.0)) * _US_PER_MIN).astype(np.int64)
        target = self.elapsed_us(start) + amount
        if target.size and target.max() > self.done_after[-1]:
            raise ValueError("working time beyond the timeline: build it with Timeline.covering(..., reach_minutes)")
        window = np.searchsorted(self.done_after, target, side="left")
        moved = self.starts[window] + (target - self.done_before[window])
        # no time to add: the moment itself inside a window, else the next window's opening
        following = np.minimum(np.searchsorted(self.ends, start, side="right"), len(self.starts) - 1)
        still = np.maximum(start, self.starts[following])
        return np.where(missing, NAT, np.where(amount > 0, moved, still))

    def _check(self, *columns: np.ndarray) -> None:
        for values in columns:
            if values.size and values.max() > self.ends[-1]:
                raise ValueError("moments beyond the timeline: build it with Timeline.covering(...)")


#: the missing moment, as int64 (numpy's NaT)
NAT = np.iinfo(np.int64).min
