"""Responsibility rules: find the most specific rule for a case.

Specificity, from strongest to weakest: a minor class (4 digits) beats a major class (2 digits) beats
any class; then each place or road qualifier that matches adds weight — street (8), district (4),
road grade (2), area class (1) — so a rule naming the street and the class beats one naming only the
class. Ties go to the higher ``priority``, then the lower rule code, so the choice is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

RULES_SQL = """
SELECT r.code, r.case_type, r.class_code, r.district_id, r.street_id, r.road_grade_code, r.area_class,
       r.target, d.code AS department, r.priority, r.note
FROM responsibility_rule r LEFT JOIN department d ON d.id = r.department_id"""

#: weight each qualifier adds to a rule's specificity
QUALIFIER_WEIGHTS = (("street_id", 8), ("district_id", 4), ("road_grade_code", 2), ("area_class", 1))


@dataclass(frozen=True)
class RuleMatch:
    code: str
    target: str
    department_code: str | None
    class_code: str | None
    priority: int
    note: str | None
    specificity: int


def load_rules(*, session: Session) -> pd.DataFrame:
    """All responsibility rules, one row each, with their department's code."""
    return pd.read_sql(text(RULES_SQL), session.connection())


def applicable_rules(
    rules: pd.DataFrame | list[dict], *, case_type: str, class_code: str, district_id=None, street_id=None,
    road_grade: str | None = None, area_class: str | None = None,
) -> list[RuleMatch]:
    """The rules among ``rules`` (a frame from :func:`load_rules`, or its records) that apply to a case at
    this place, the winner first."""
    cls = class_code or ""
    place = {"district_id": district_id, "street_id": street_id, "road_grade_code": road_grade,
             "area_class": area_class}
    found = []
    for rule in rules.to_dict("records") if isinstance(rules, pd.DataFrame) else rules:
        if rule["case_type"] != case_type or not (pd.isna(rule["class_code"]) or rule["class_code"] in (cls, cls[:2])):
            continue
        if any(pd.notna(rule[c]) and (pd.isna(v) or rule[c] != v) for c, v in place.items()):
            continue
        specificity = ({4: 200, 2: 100}[len(rule["class_code"])] if pd.notna(rule["class_code"]) else 0) \
            + sum(weight for column, weight in QUALIFIER_WEIGHTS if pd.notna(rule[column]))
        found.append(RuleMatch(
            code=rule["code"], target=rule["target"],
            department_code=rule["department"] if pd.notna(rule["department"]) else None,
            class_code=rule["class_code"] if pd.notna(rule["class_code"]) else None, priority=int(rule["priority"]),
            note=rule["note"] if pd.notna(rule["note"]) else None, specificity=specificity))
    return sorted(found, key=lambda match: (-match.specificity, -match.priority, match.code))


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
    return applicable_rules(load_rules(session=session), case_type=case_type, class_code=class_code,
                            district_id=district_id, street_id=street_id, road_grade=road_grade, area_class=area_class)


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


def list_departments(*, session: Session) -> list[dict]:
    """Every department and street office as plain records (codes, names, kind, district, street)."""
    from gridmap.io.export import read_layer

    frame = read_layer(session=session, name="department")
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
