"""ORM models of departments and responsibility rules (DOMAIN.md §5)."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gridmap.db.base import Base, Timestamped

#: professional 专业部门, street_office 街道办/区公所 (the locality), owner 权属单位 outside the bureau
DEPARTMENT_KINDS = ("professional", "street_office", "owner")

#: Who a rule sends a case to: a named department, or a role resolved from the place and the object.
RULE_TARGETS = (
    "department",  # the rule's department_id
    "street_office",  # the street office of the grid's street or district (属地)
    "road_maintenance",  # the maintenance unit of the road segment
    "road_cleaning",  # the cleaning unit of the road segment
    "component_maintainer",  # the component's 养护单位
    "component_owner",  # the component's 权属单位
)


class Department(Base, Timestamped):
    __tablename__ = "department"
    __table_args__ = (CheckConstraint("kind IN ('professional', 'street_office', 'owner')", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    district_id: Mapped[int | None] = mapped_column(ForeignKey("district.id", ondelete="RESTRICT"), index=True)
    street_id: Mapped[int | None] = mapped_column(ForeignKey("street.id", ondelete="RESTRICT"), index=True)
    phone: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)


class ResponsibilityRule(Base, Timestamped):
    """(case type, class, optional district/street, road grade, area class) → who is responsible.

    ``class_code`` may be a minor class (4 digits), a major class (2 digits) or empty (any class). The most
    specific matching rule wins; see :func:`gridmap.departments.service.rule_specificity`.
    """

    __tablename__ = "responsibility_rule"
    __table_args__ = (
        CheckConstraint("case_type IN ('component', 'event')", name="case_type"),
        CheckConstraint("class_code IS NULL OR class_code ~ '^[0-9]{2}([0-9]{2})?$'", name="class_code"),
        CheckConstraint("area_class IS NULL OR area_class IN ('A', 'B', 'C')", name="area_class"),
        CheckConstraint(
            "target IN ('department', 'street_office', 'road_maintenance', 'road_cleaning', "
            "'component_maintainer', 'component_owner')",
            name="target",
        ),
        CheckConstraint("(target = 'department') = (department_id IS NOT NULL)", name="department_iff_target"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    case_type: Mapped[str] = mapped_column(String(9))
    class_code: Mapped[str | None] = mapped_column(String(4))
    district_id: Mapped[int | None] = mapped_column(ForeignKey("district.id", ondelete="RESTRICT"))
    street_id: Mapped[int | None] = mapped_column(ForeignKey("street.id", ondelete="RESTRICT"))
    road_grade_code: Mapped[str | None] = mapped_column(ForeignKey("road_grade.code", ondelete="RESTRICT"))
    area_class: Mapped[str | None] = mapped_column(String(1))
    target: Mapped[str] = mapped_column(String(24))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id", ondelete="RESTRICT"))
    priority: Mapped[int] = mapped_column(Integer, server_default="0")
    note: Mapped[str | None] = mapped_column(Text)
