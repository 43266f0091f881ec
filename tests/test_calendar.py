"""Working-time arithmetic on the Taipei demo calendar: weekends, a holiday, daily windows."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gridmap.calendar.service import CalendarError, get_calendar, load_calendar

TAIPEI = ZoneInfo("Asia/Taipei")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TAIPEI)


@pytest.fixture
def calendar(session):
    return get_calendar(session=session, code="default")


def test_hours_run_only_inside_the_daily_windows(calendar):
    # Wed 2026-11-18 11:00 + 3 h: 1.5 h until 12:30, lunch, 1.5 h from 13:30 → 15:00
    assert calendar.add_working_time(at("2026-11-18T11:00"), timedelta(hours=3)) == at("2026-11-18T15:00")
    # a report at 20:00 starts counting at 08:30 the next morning
    assert calendar.add_working_time(at("2026-11-18T20:00"), timedelta(hours=1)) == at("2026-11-19T09:30")


def test_a_weekend_is_skipped(calendar):
    # Fri 2026-11-20 16:30 + 4 h: 1 h on Friday, then Monday 08:30 + 3 h
    assert calendar.add_working_time(at("2026-11-20T16:30"), timedelta(hours=4)) == at("2026-11-23T11:30")


def test_a_holiday_and_the_weekend_are_skipped(calendar):
    # Thu 2026-10-08 17:00 + 1 working day (8 h): 0.5 h on Thursday; Fri 10-09 is 国庆日补假, then the
    # weekend; Monday 4 h in the morning and 3.5 h from 13:30
    deadline = calendar.add_working_time(at("2026-10-08T17:00"), calendar.to_duration(1, "day"))
    assert deadline == at("2026-10-12T17:00")
    assert calendar.working_time_between(at("2026-10-08T17:00"), deadline) == timedelta(hours=8)


def test_working_time_between_counts_only_open_hours(calendar):
    assert calendar.working_time_between(at("2026-11-20T12:00"), at("2026-11-23T09:00")) == timedelta(hours=5)
    assert calendar.working_time_between(at("2026-11-23T09:00"), at("2026-11-20T12:00")) == timedelta(0)


def test_naive_datetimes_are_refused(calendar):
    with pytest.raises(CalendarError, match="timezone-aware"):
        calendar.add_working_time(datetime(2026, 11, 18, 9), timedelta(hours=1))


def test_a_malformed_calendar_file_is_refused_with_its_field(session, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("code: x\ntimezone: Asia/Taipei\nweekdays: [1]\nwindows: [[\"17:00\", \"08:00\"]]\n")
    with pytest.raises(CalendarError, match="ends before it starts"):
        load_calendar(session=session, path=path)
