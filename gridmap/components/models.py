"""ORM models of components and their versions.

``component`` holds the current state. Database triggers (see the migration) raise ``version`` whenever
an attribute or the location changes and keep every state in ``component_version`` with its validity
interval, so an old case can still show the component as it was.
"""

from __future__ import annotations

from datetime import date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import CheckConstraint, Date, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gridmap.db.base import STORAGE_SRID, Base, Timestamped

#: 完好 intact, 破损 damaged, 丢失 missing, 废弃 abandoned, 移除 removed
STATUSES = ("完好", "破损", "丢失", "废弃", "移除")
STATUS_ALIASES = {"intact": "完好", "damaged": "破损", "missing": "丢失", "abandoned": "废弃", "removed": "移除"}
_STATUS_CHECK = "status IN ('完好', '破损', '丢失', '废弃', '移除')"


def point_geometry():
    return mapped_column(Geometry("POINT", srid=STORAGE_SRID, spatial_index=False), nullable=False)


def department_ref():
    return mapped_column(ForeignKey("department.id", ondelete="RESTRICT"))


class ComponentState:
    """Attributes a component has in each of its versions."""

    code: Mapped[str] = mapped_column(String(16))
    class_code: Mapped[str] = mapped_column(ForeignKey("component_class.code", ondelete="RESTRICT"))
    name: Mapped[str | None] = mapped_column(Text)
    competent_department_id: Mapped[int | None] = department_ref()  # 主管部门
    owner_department_id: Mapped[int | None] = department_ref()  # 权属单位
    maintainer_department_id: Mapped[int | None] = department_ref()  # 养护单位
    status: Mapped[str] = mapped_column(Text, server_default="完好")
    survey_date: Mapped[date | None] = mapped_column(Date)
    change_date: Mapped[date | None] = mapped_column(Date)
    source: Mapped[str | None] = mapped_column(Text)
    source_id: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    geom = point_geometry()


class Component(ComponentState, Base, Timestamped):
    """部件: 16-digit ID = county 6 + major 2 + minor 2 + sequence 6."""

    __tablename__ = "component"
    __table_args__ = (
        CheckConstraint("code ~ '^[0-9]{16}$'", name="code_format"),
        CheckConstraint("substr(code, 7, 4) = class_code", name="code_matches_class"),
        CheckConstraint(_STATUS_CHECK, name="status"),
        UniqueConstraint("code"),
        Index("ix_component_geom", "geom", postgresql_using="gist"),
        Index("ix_component_class_code", "class_code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)


class ComponentVersion(ComponentState, Base):
    """One state of a component, valid from ``valid_from`` until ``valid_to`` (open = current)."""

    __tablename__ = "component_version"
    __table_args__ = (UniqueConstraint("component_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    component_id: Mapped[int] = mapped_column(ForeignKey("component.id", ondelete="CASCADE"))
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
