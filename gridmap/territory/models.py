"""ORM models of the territory hierarchy (DOMAIN.md §1)."""

from __future__ import annotations

from datetime import date

from geoalchemy2 import Geometry
from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from gridmap.db.base import STORAGE_SRID, Base, Timestamped


def area_geometry():
    return mapped_column(Geometry("MULTIPOLYGON", srid=STORAGE_SRID, spatial_index=False), nullable=False)


class City(Base, Timestamped):
    """The one city this database manages: its name and the projected CRS used for metric work."""

    __tablename__ = "city"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, default=1)
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    metric_srid: Mapped[int] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(Text, server_default="Asia/Shanghai")
    #: bumped by the database on every change to the rules, departments or catalogue (migration 0005): what
    #: the routing's cached copy of them is checked against
    reference_version: Mapped[int] = mapped_column(BigInteger, server_default="0")
    #: bumped by the database on every change to the unit grids, roads, components and the places they belong
    #: to (migration 0006): what a server's copy of the city's layers (gridmap.routing.layers) is checked against
    layers_version: Mapped[int] = mapped_column(BigInteger, server_default="0")


class DataSource(Base, Timestamped):
    """Where imported data came from, with the attribution its licence requires."""

    __tablename__ = "data_source"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    licence: Mapped[str] = mapped_column(Text)
    attribution: Mapped[str] = mapped_column(Text)


class District(Base, Timestamped):
    """District 区/县: 6-digit county code (GB/T 2260)."""

    __tablename__ = "district"
    __table_args__ = (
        CheckConstraint("code ~ '^[0-9]{6}$'", name="code_format"),
        Index("ix_district_geom", "geom", postgresql_using="gist"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(6), unique=True)
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    source_code: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    geom = area_geometry()


class Street(Base, Timestamped):
    """Street 街道 / town 镇: county code + 3 digits (first digit 0 街道, 1 镇, 2–3 乡)."""

    __tablename__ = "street"
    __table_args__ = (
        CheckConstraint("code ~ '^[0-9]{9}$'", name="code_format"),
        Index("ix_street_geom", "geom", postgresql_using="gist"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(9), unique=True)
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    district_id: Mapped[int] = mapped_column(ForeignKey("district.id", ondelete="RESTRICT"), index=True)
    source_code: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    geom = area_geometry()


class Community(Base, Timestamped):
    """Community 社区 / village 村/里: 12-digit code = county 6 + street 3 + community 3.

    Where a city has no street level (Taipei), the street digits are ``000`` and ``street_id`` is empty.
    The 12-digit code is the prefix of the community's unit grid codes.
    """

    __tablename__ = "community"
    __table_args__ = (
        CheckConstraint("code ~ '^[0-9]{12}$'", name="code_format"),
        Index("ix_community_geom", "geom", postgresql_using="gist"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    district_id: Mapped[int] = mapped_column(ForeignKey("district.id", ondelete="RESTRICT"), index=True)
    street_id: Mapped[int | None] = mapped_column(ForeignKey("street.id", ondelete="RESTRICT"), index=True)
    source_code: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    geom = area_geometry()


class UnitGrid(Base, Timestamped):
    """Unit grid 万米单元网格: 15-digit code = community code 12 + sequence 3; versioned by validity dates."""

    __tablename__ = "unit_grid"
    __table_args__ = (
        CheckConstraint("code ~ '^[0-9]{15}$'", name="code_format"),
        CheckConstraint("area_class IN ('A', 'B', 'C')", name="area_class"),
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="validity"),
        Index("uq_unit_grid_code_current", "code", unique=True, postgresql_where=text("valid_to IS NULL")),
        Index("uq_unit_grid_code_valid_from", "code", "valid_from", unique=True),
        Index("ix_unit_grid_geom", "geom", postgresql_using="gist"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(15))
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id", ondelete="RESTRICT"), index=True)
    area_class: Mapped[str] = mapped_column(String(1), server_default="B")
    responsible_department_id: Mapped[int | None] = mapped_column(
        ForeignKey("department.id", ondelete="RESTRICT")
    )
    valid_from: Mapped[date] = mapped_column(Date, server_default=text("CURRENT_DATE"))
    valid_to: Mapped[date | None] = mapped_column(Date)
    source: Mapped[str | None] = mapped_column(Text)
    geom = area_geometry()


class DutyGrid(Base, Timestamped):
    """Duty grid 责任网格: an inspector's patrol area, a named group of unit grids."""

    __tablename__ = "duty_grid"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(Text)
    district_id: Mapped[int | None] = mapped_column(ForeignKey("district.id", ondelete="RESTRICT"))


class DutyGridMember(Base):
    """A unit grid (by its stable code, across versions) in exactly one duty grid."""

    __tablename__ = "duty_grid_member"

    unit_grid_code: Mapped[str] = mapped_column(String(15), primary_key=True)
    duty_grid_id: Mapped[int] = mapped_column(ForeignKey("duty_grid.id", ondelete="CASCADE"), index=True)


class Inspector(Base, Timestamped):
    """Inspector 监督员 who patrols duty grids."""

    __tablename__ = "inspector"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)


class DutyGridInspector(Base):
    """Inspectors ↔ duty grids, many to many."""

    __tablename__ = "duty_grid_inspector"

    duty_grid_id: Mapped[int] = mapped_column(ForeignKey("duty_grid.id", ondelete="CASCADE"), primary_key=True)
    inspector_id: Mapped[int] = mapped_column(ForeignKey("inspector.id", ondelete="CASCADE"), primary_key=True)
