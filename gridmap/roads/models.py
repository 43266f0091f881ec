"""ORM models of roads and management grades."""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gridmap.db.base import STORAGE_SRID, Base, Timestamped


class RoadGrade(Base, Timestamped):
    """Management grade 道路等级 (特级/一级/二级/三级/四级/背街小巷 by default; configurable data)."""

    __tablename__ = "road_grade"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    rank: Mapped[int] = mapped_column(Integer, unique=True)
    description: Mapped[str | None] = mapped_column(Text)


class Road(Base, Timestamped):
    """A road segment with its grade, maintenance unit (市政养护) and cleaning unit (环卫保洁)."""

    __tablename__ = "road"
    __table_args__ = (Index("ix_road_geom", "geom", postgresql_using="gist"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    source_class: Mapped[str | None] = mapped_column(Text)
    grade_code: Mapped[str] = mapped_column(ForeignKey("road_grade.code", ondelete="RESTRICT"), index=True)
    maintenance_department_id: Mapped[int | None] = mapped_column(
        ForeignKey("department.id", ondelete="RESTRICT"), index=True
    )
    cleaning_department_id: Mapped[int | None] = mapped_column(
        ForeignKey("department.id", ondelete="RESTRICT"), index=True
    )
    lanes: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str | None] = mapped_column(Text)
    geom = mapped_column(Geometry("MULTILINESTRING", srid=STORAGE_SRID, spatial_index=False), nullable=False)
