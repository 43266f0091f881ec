"""Responsibility rules: find the most specific rule for a case.

Specificity, from strongest to weakest: a minor class (4 digits) beats a major class (2 digits) beats
any class; then each place or road qualifier that matches adds weight — street (8), district (4),
road grade (2), area class (1) — so a rule naming the street and the class beats one naming only the
class. Ties go to the higher ``priority``, then the lower rule code, so the choice is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

SPECIFICITY_SQL = """
    (CASE length(coalesce(r.class_code, '')) WHEN 4 THEN 200 WHEN 2 THEN 100 ELSE 0 END)
    + (CASE WHEN r.street_id IS NOT NULL THEN 8 ELSE 0 END)
    + (CASE WHEN r.district_id IS NOT NULL THEN 4 ELSE 0 END)
    + (CASE WHEN r.road_grade_code IS NOT NULL THEN 2 ELSE 0 END)
    + (CASE WHEN r.area_class IS NOT NULL THEN 1 ELSE 0 END)
"""

MATCHING_RULES_SQL = f"""
SELECT r.code, r.target, d.code AS department_code, r.class_code, r.priority, r.note,
       {SPECIFICITY_SQL} AS specificity
FROM responsibility_rule r LEFT JOIN department d ON d.id = r.department_id
WHERE r.case_type = :case_type
  AND (r.class_code IS NULL OR r.class_code = :class_code OR r.class_code = left(:class_code, 2))
  AND (r.district_id IS NULL OR r.district_id = :district_id)
  AND (r.street_id IS NULL OR r.street_id = :street_id)
  AND (r.road_grade_code IS NULL OR r.road_grade_code = :road_grade)
  AND (r.area_class IS NULL OR r.area_class = :area_class)
ORDER BY specificity DESC, r.priority DESC, r.code
"""


@dataclass(frozen=True)
class RuleMatch:
    code: str
    target: str
    department_code: str | None
    class_code: str | None
    priority: int
    note: str | None
    specificity: int


def matching_rules(
    *,
    session: Session,
    case_type: str,
    class_code: str,
    district_id: int | None = None,
    street_id: int | None = None,
    road_grade: str | None = None,
    area_class: str | None = None,
) -> list[RuleMatch]:
    """Return every rule that applies, the winner first."""
    rows = session.execute(
        text(MATCHING_RULES_SQL),
        dict(case_type=case_type, class_code=class_code, district_id=district_id, street_id=street_id,
             road_grade=road_grade, area_class=area_class),
    ).mappings()
    return [RuleMatch(**row) for row in rows]


def uncovered_classes(*, session: Session) -> list[tuple[str, str]]:
    """Return (case type, minor class) pairs that no rule names, by the class or its major class.

    A catch-all rule (no class) still routes such a class; this lists where the bureau has not decided.
    """
    rows = session.execute(text("""
        SELECT 'component' AS case_type, c.code FROM component_class c WHERE length(c.code) = 4 AND NOT EXISTS (
            SELECT 1 FROM responsibility_rule r WHERE r.case_type = 'component'
              AND r.class_code IN (c.code, left(c.code, 2)))
        UNION ALL
        SELECT 'event', e.code FROM event_class e WHERE length(e.code) = 4 AND NOT EXISTS (
            SELECT 1 FROM responsibility_rule r WHERE r.case_type = 'event'
              AND r.class_code IN (e.code, left(e.code, 2)))
        ORDER BY 1, 2
    """))
    return [tuple(row) for row in rows]
