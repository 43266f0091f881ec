"""ORM models of working calendars."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Boolean, Date, ForeignKey, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gridmap.db.base import Base, Timestamped


class WorkingCalendar(Base, Timestamped):
    """A named calendar: which weekdays work (ISO 1 = Monday) and the daily windows ``[["08:30", "12:00"], …]``."""

    __tablename__ = "working_calendar"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    timezone: Mapped[str] = mapped_column(Text)
    weekdays: Mapped[list] = mapped_column(JSONB)
    windows: Mapped[list] = mapped_column(JSONB)


class CalendarDay(Base):
    """An exception to the weekly pattern: a holiday, a make-up working day, or other windows."""

    __tablename__ = "calendar_day"

    calendar_code: Mapped[str] = mapped_column(
        ForeignKey("working_calendar.code", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    is_working: Mapped[bool] = mapped_column(Boolean)
    windows: Mapped[list | None] = mapped_column(JSONB)
    note: Mapped[str | None] = mapped_column(Text)
