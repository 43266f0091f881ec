"""Pydantic schemas of the KPI answers (``GET /api/v1/kpi``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class KpiColumn(BaseModel):
    """The definition of one column of the rows."""

    column: str
    zh: str = Field(description="the Chinese name, e.g. 按时处置率")
    en: str
    formula: str
    unit: str = Field(description="count, minutes, rate (0–1), hours, score, band or rank")
    better: str | None = Field(default=None, description="rates: higher or lower is better (None: not scored)")


class PeriodOut(BaseModel):
    label: str
    kind: str = Field(description="day, week, month, quarter, year or range")
    start: datetime
    end: datetime = Field(description="exclusive")


class KpiTable(BaseModel):
    """KPIs of one kind of subject for one period: a row per subject with cases (or actions) in it."""

    by: str
    kind: str
    period: PeriodOut
    cutoff: datetime = Field(description="T = min(period end, now): nothing after it counts")
    complete: bool = Field(description="the period has ended (T = its end)")
    columns: list[KpiColumn]
    scoring: dict[str, Any] = Field(description="the weights and bands the scores were computed with")
    rows: list[dict[str, Any]] = Field(description="subject, name, counts, rates (null when undefined), score, "
                                       "band, rank; best first")
