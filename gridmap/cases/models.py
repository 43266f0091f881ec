"""ORM models of cases 案卷, their append-only events, photos and idempotency keys."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from geoalchemy2 import Geometry
from sqlalchemy import (BigInteger, Boolean, CheckConstraint, DateTime, Float, ForeignKey, Index, Integer, Numeric,
                        String, Text, func)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gridmap.db.base import STORAGE_SRID, Base

STATUSES = ("reported", "verifying", "accepted", "filed", "dispatched", "returned", "parked", "handled",
            "checked", "closed", "rejected", "voided", "merged")
#: where a case no longer moves
FINAL = ("closed", "rejected", "voided", "merged")


class CaseFile(Base):
    """A case 案卷: where and what, where the routing engine sent it and why, where it stands now and
    the clocks running on it. Its history is the list of :class:`CaseEvent`."""

    __tablename__ = "case_file"
    __table_args__ = (
        CheckConstraint("status IN ('" + "', '".join(STATUSES) + "')", name="status"),
        CheckConstraint("case_type IN ('component', 'event')", name="case_type"),
        CheckConstraint("source IN ('inspector', 'hotline', 'self_disposal', 'import')", name="source"),
        CheckConstraint("class_code IS NOT NULL OR local_class IS NOT NULL", name="class"),
        Index("ix_case_file_external", "origin", "external_number", unique=True,
              postgresql_where="origin IS NOT NULL"),
        Index("ix_case_file_open", "status", "stage_deadline", postgresql_where="status NOT IN "
              "('closed', 'rejected', 'voided', 'merged')"),
        Index("ix_case_file_geom", "geom", postgresql_using="gist"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    source: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(12))
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    case_type: Mapped[str | None] = mapped_column(String(9))
    class_code: Mapped[str | None] = mapped_column(String(4))  # empty only for an imported local class
    local_class: Mapped[str | None] = mapped_column(Text)  # an imported system's own class, kept as it was
    origin: Mapped[str | None] = mapped_column(String(32))  # the system an imported case came from
    external_number: Mapped[str | None] = mapped_column(Text)  # its number there
    description: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="RESTRICT"), index=True)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
    captured_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # where: as reported (x, y in its CRS) and normalised to WGS84
    geom = mapped_column(Geometry("POINT", srid=STORAGE_SRID, spatial_index=False, nullable=False), nullable=False)
    reported_x: Mapped[float | None] = mapped_column(Float)
    reported_y: Mapped[float | None] = mapped_column(Float)
    reported_crs: Mapped[str | None] = mapped_column(Text)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    # the routing decision at report time, and the department the case is with now
    unit_grid: Mapped[str] = mapped_column(String(15), index=True)
    duty_grid: Mapped[str | None] = mapped_column(String(32))
    community: Mapped[str | None] = mapped_column(String(12))
    street: Mapped[str | None] = mapped_column(String(9))
    district: Mapped[str | None] = mapped_column(String(6))
    area_class: Mapped[str | None] = mapped_column(String(1))
    road_id: Mapped[str | None] = mapped_column(Text)
    component_id: Mapped[str | None] = mapped_column(String(16))
    component_version: Mapped[int | None] = mapped_column(Integer)
    proposed_department: Mapped[str | None] = mapped_column(String(32))
    department: Mapped[str | None] = mapped_column(String(32), index=True)
    rule: Mapped[str | None] = mapped_column(String(32))
    ambiguous: Mapped[bool] = mapped_column(Boolean, server_default="false")
    ambiguity_reason: Mapped[str | None] = mapped_column(Text)
    evidence: Mapped[dict] = mapped_column(JSONB)
    flags: Mapped[list] = mapped_column(JSONB, server_default="[]")  # e.g. photo far from the fix
    duplicate_candidates: Mapped[list] = mapped_column(JSONB, server_default="[]")
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("case_file.id", ondelete="RESTRICT"))
    # the running stage's clock (working time on the calendar); NULL deadline = no clock (parked, final)
    stage_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stage_warn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stage_deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # disposal 处置: the limit from the catalogue × area class, extended on approval, paused while parked
    time_limit: Mapped[Decimal | None] = mapped_column(Numeric(8, 2))
    time_limit_unit: Mapped[str | None] = mapped_column(String(4))
    disposal_limit_min: Mapped[float | None] = mapped_column(Float)  # working minutes, extensions included
    disposal_used_min: Mapped[float] = mapped_column(Float, server_default="0")  # before the last resume
    filed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)  # first 立案
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    clock_resumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disposal_deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    extension_requested_min: Mapped[float | None] = mapped_column(Float)
    handled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disposal_minutes: Mapped[float | None] = mapped_column(Float)  # working minutes to the last handling
    rework_count: Mapped[int] = mapped_column(Integer, server_default="0")
    return_count: Mapped[int] = mapped_column(Integer, server_default="0")
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    close_kind: Mapped[str | None] = mapped_column(String(8))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                 onupdate=func.now())


class CaseEvent(Base):
    """One action on a case: who, in which role, when, where, with what. Never updated or deleted (a
    trigger refuses it)."""

    __tablename__ = "case_event"
    __table_args__ = (Index("ix_case_event_action_at", "action", "at"),)  # a period's actions of one kind

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id", ondelete="RESTRICT"), index=True)
    action: Mapped[str] = mapped_column(String(24))
    from_status: Mapped[str | None] = mapped_column(String(12))
    to_status: Mapped[str] = mapped_column(String(12))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="RESTRICT"))
    actor_role: Mapped[str | None] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # the ended stage's deadline
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    note: Mapped[str | None] = mapped_column(Text)
    photos: Mapped[list[str]] = mapped_column(ARRAY(String(64)), server_default="{}")
    data: Mapped[dict] = mapped_column(JSONB, server_default="{}")


class Photo(Base):
    """A stored photo, by the SHA-256 of its bytes (the file lives outside the web root)."""

    __tablename__ = "photo"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    media_type: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="RESTRICT"))
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class IdempotencyKey(Base):
    """A client's ``Idempotency-Key`` and the request it first came with: a retry gets the same case."""

    __tablename__ = "idempotency_key"

    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    # the case's id is drawn when the key is claimed; the case row follows in the same transaction
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case_file.id", ondelete="RESTRICT", deferrable=True,
                                                           initially="DEFERRED"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
