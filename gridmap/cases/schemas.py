"""Pydantic schemas of the case loop: what a client sends to act on a case, and what it gets back."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

SHA256 = r"^[0-9a-f]{64}$"


class Position(BaseModel):
    """Where the actor was (the phone's GPS fix, WGS84), for the audit trail."""

    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)
    accuracy: float | None = Field(default=None, ge=0, le=100_000, description="metres")


class ActionRequest(Position):
    """An action on a case. ``version`` is the case's version the client saw: if someone acted since,
    the action is refused (409) instead of overwriting their work."""

    version: int = Field(ge=1, description="the case's version as last loaded")
    note: str | None = Field(default=None, max_length=2000)
    reason: str | None = Field(default=None, max_length=2000, description="why: needed to reject, void, return, "
                               "park, refuse, or to dispatch elsewhere than proposed")
    department: str | None = Field(default=None, max_length=32, description="dispatch: the department (default: "
                                   "the one the routing engine proposed)")
    confirm: bool = Field(default=False, description="file: the filing condition is met; dispatch: the ambiguous "
                          "routing decision has been checked")
    extension: float | None = Field(default=None, gt=0, le=10_000, description="request_extension: how much more")
    extension_unit: Literal["hour", "day"] = "hour"
    passed: bool | None = Field(default=None, description="check: whether the problem is solved")
    into: str | None = Field(default=None, max_length=20, description="merge: the case number to merge into")
    close_kind: Literal["normal", "overdue", "error", "special"] | None = None
    photos: list[str] = Field(default_factory=list, max_length=9, description="SHA-256 of photos uploaded first")


class EventOut(BaseModel):
    action: str
    term: str
    from_status: str | None
    to_status: str
    actor: str | None
    actor_role: str | None
    at: datetime
    lon: float | None
    lat: float | None
    accuracy_m: float | None
    note: str | None
    photos: list[str]
    data: dict[str, Any]


class CaseOut(BaseModel):
    """A case as the apps show it: where it stands, who has it, its clock and light, what you may do."""

    number: str
    version: int
    status: str
    status_term: str
    source: str
    case_type: str
    class_code: str
    class_name: str | None
    description: str | None
    address: str | None
    lon: float
    lat: float
    accuracy_m: float | None
    reported_at: datetime
    captured_at: datetime | None
    unit_grid: str
    duty_grid: str | None
    community: str | None
    street: str | None
    district: str | None
    area_class: str | None
    road_id: str | None
    component_id: str | None
    proposed_department: str | None
    department: str | None
    rule: str | None
    ambiguous: bool
    ambiguity_reason: str | None
    flags: list[Any]
    duplicate_candidates: list[Any]
    merged_into: str | None
    time_limit: float | None
    time_limit_unit: str | None
    stage_deadline: datetime | None
    light: Literal["green", "yellow", "red"] | None
    disposal_deadline: datetime | None
    dispatched_at: datetime | None
    handled_at: datetime | None
    closed_at: datetime | None
    close_kind: str | None
    rework_count: int
    return_count: int
    photos: list[str]
    actions: list[str] = Field(description="what the logged-in user may do now")
    evidence: dict[str, Any] | None = None
    events: list[EventOut] | None = None


class CaseQuery(BaseModel):
    """Which cases: every filter is optional and they combine with AND."""

    status: list[str] | None = Field(default=None, description="one or more statuses, e.g. filed, dispatched")
    light: Literal["green", "yellow", "red"] | None = None
    department: str | None = None
    unit_grid: str | None = None
    class_code: str | None = None
    district: str | None = None
    street: str | None = None
    open_only: bool = False
    overdue: bool = Field(default=False, description="open cases past their stage deadline")
    date_from: date | None = Field(default=None, description="reported on or after (local date)")
    date_to: date | None = Field(default=None, description="reported on or before (local date)")


class CasePage(BaseModel):
    total: int
    page: int
    size: int
    items: list[CaseOut]


class ReportInput(BaseModel):
    """An inspector's report from the street (multipart form fields of ``POST /api/v1/reports``)."""

    x: float = Field(description="longitude (or easting in a projected EPSG system)", examples=[121.5435])
    y: float = Field(description="latitude (or northing)", examples=[25.0416])
    crs: str = Field(default="wgs84", max_length=16, description="wgs84, cgcs2000, gcj02, bd09 or EPSG:nnnn")
    accuracy: float | None = Field(default=None, ge=0, le=100_000, description="horizontal accuracy, m")
    class_code: str = Field(pattern=r"^[12]?[0-9]{4}$", description="catalogue class, e.g. 0102 or 20102")
    case_type: Literal["component", "event"] | None = None
    component_id: str | None = Field(default=None, pattern=r"^[0-9]{16}$")
    description: str | None = Field(default=None, max_length=2000)
    address: str | None = Field(default=None, max_length=300)
    captured_at: datetime | None = Field(default=None, description="when the phone took the fix (ISO 8601 with offset)")
    self_disposed: bool = Field(default=False, description="自行处置: fixed on the spot; needs a photo")


class HotlineInput(BaseModel):
    """A call to the 12319/12345 hotline, placed by the acceptor: on the map (lon/lat), or by a road's
    name and, if the caller can read one out, the number of a component nearby."""

    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)
    road_name: str | None = Field(default=None, max_length=100)
    component_id: str | None = Field(default=None, pattern=r"^[0-9]{16}$")
    class_code: str = Field(pattern=r"^[12]?[0-9]{4}$")
    case_type: Literal["component", "event"] | None = None
    description: str | None = Field(default=None, max_length=2000)
    caller: str | None = Field(default=None, max_length=100)


class RoutingLine(BaseModel):
    """One line of the routing explanation, for an app to show."""

    step: str
    text: str


class ReportReceipt(BaseModel):
    """What the inspector's phone shows after sending: the case, where it went and why."""

    number: str
    status: str
    replayed: bool = Field(description="true when this answers a retry of an earlier request (same key)")
    merged_into: str | None
    unit_grid: str
    duty_grid: str | None
    department: str | None
    department_name: str | None
    acceptance_deadline: datetime | None
    disposal_time_limit: str | None = Field(description="e.g. '4 working hours from dispatch'")
    ambiguous: bool
    ambiguity_reason: str | None
    flags: list[Any]
    duplicate_candidates: list[Any]
    routing: list[RoutingLine]
    evidence: dict[str, Any]
