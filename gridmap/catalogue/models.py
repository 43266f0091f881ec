"""ORM models of the catalogue: major classes (2 digits) and minor classes (4 digits) in one table each."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Boolean, CheckConstraint, Numeric, String, Text, false
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from gridmap.db.base import Base, Timestamped


class CatalogueClass(Timestamped):
    """Columns shared by component and event classes.

    A minor class carries its default 立案条件 (filing condition) and its disposal time limit per
    area class A/B/C, counted in working hours (``limit_unit = 'hour'``) or working days (``'day'``).
    """

    @declared_attr.directive
    def __table_args__(cls):
        return (
            CheckConstraint("code ~ '^[0-9]{2}([0-9]{2})?$'", name="code_format"),
            CheckConstraint("limit_unit IS NULL OR limit_unit IN ('hour', 'day')", name="limit_unit"),
            CheckConstraint(
                "length(code) = 2 OR (major_code = left(code, 2) AND limit_a IS NOT NULL AND limit_b IS NOT NULL "
                "AND limit_c IS NOT NULL AND limit_unit IS NOT NULL)",
                name="minor_complete",
            ),
        )

    code: Mapped[str] = mapped_column(String(4), primary_key=True)
    major_code: Mapped[str | None] = mapped_column(String(2))
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    is_local: Mapped[bool] = mapped_column(Boolean, server_default=false())
    filing_condition: Mapped[str | None] = mapped_column(Text)
    limit_a: Mapped[Decimal | None] = mapped_column(Numeric(8, 2))
    limit_b: Mapped[Decimal | None] = mapped_column(Numeric(8, 2))
    limit_c: Mapped[Decimal | None] = mapped_column(Numeric(8, 2))
    limit_unit: Mapped[str | None] = mapped_column(String(4))


class ComponentClass(CatalogueClass, Base):
    """部件类: e.g. 01 公用设施, 0118 路灯."""

    __tablename__ = "component_class"


class EventClass(CatalogueClass, Base):
    """事件类: e.g. 01 市容环境, 0104 道路不洁. ``road_bound`` events go to the unit responsible for the road."""

    __tablename__ = "event_class"

    road_bound: Mapped[bool] = mapped_column(Boolean, server_default=false())
