"""Pydantic schemas of a routing request and its decision (the API's contract)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class AssignRequest(BaseModel):
    """A report's location and what it is about."""

    x: float = Field(description="longitude (or easting in a projected EPSG system)", examples=[121.5435])
    y: float = Field(description="latitude (or northing)", examples=[25.0416])
    crs: str = Field(default="wgs84", description="wgs84, cgcs2000, gcj02, bd09 or EPSG:nnnn", examples=["gcj02"])
    accuracy: float | None = Field(default=None, ge=0, le=100_000, description="horizontal accuracy the phone reported, m")
    class_code: str = Field(pattern=r"^[12]?[0-9]{4}$", description="catalogue class, e.g. 0102, or 20102 with the "
                            "case type first (1 component, 2 event)", examples=["20102"])
    case_type: Literal["component", "event"] | None = None
    component_id: str | None = Field(default=None, pattern=r"^[0-9]{16}$", description="the component the inspector picked")


class Decision(BaseModel):
    """Where a report goes and why."""

    lon: float
    lat: float
    case_type: str
    unit_grid: str
    duty_grid: str | None
    community: str
    street: str | None
    district: str
    area_class: str
    road_id: str | None
    road_name: str | None
    road_grade: str | None
    road_distance_m: float | None
    component_id: str | None
    component_version: int | None
    component_distance_m: float | None
    department: str | None
    rule: str | None
    time_limit: float | None
    time_limit_unit: str | None
    ambiguous: bool
    ambiguity_reason: str | None
    evidence: dict[str, Any]
