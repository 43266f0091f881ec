"""What an inspector's phone shows after a report: the case, where it went, and why in plain lines."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridmap.cases.models import CaseFile
from gridmap.cases.reports import Filed
from gridmap.cases.schemas import ReportReceipt, RoutingLine
from gridmap.departments.models import Department

UNITS = {"hour": "working hours", "day": "working days"}


def receipt(session: Session, filed: Filed) -> ReportReceipt:
    case = filed.case
    department = case.department or case.proposed_department
    # a new case brings its department's name and the number it was merged into; a replayed one reads them
    if department in filed.department_names:
        name = filed.department_names[department]
    else:
        name = session.scalar(select(Department.name).where(Department.code == department)) if department else None
    merged = filed.merged_into
    if merged is None and case.merged_into_id:
        merged = session.scalar(select(CaseFile.number).where(CaseFile.id == case.merged_into_id))
    limit = (f"{float(case.time_limit):g} {UNITS.get(case.time_limit_unit, case.time_limit_unit)} from dispatch"
             if case.time_limit is not None else None)
    return ReportReceipt(
        number=case.number, status=case.status, replayed=filed.replayed, merged_into=merged,
        unit_grid=case.unit_grid, duty_grid=case.duty_grid, department=department, department_name=name,
        acceptance_deadline=case.stage_deadline if case.status == "reported" else None, disposal_time_limit=limit,
        ambiguous=case.ambiguous, ambiguity_reason=case.ambiguity_reason, flags=case.flags,
        duplicate_candidates=case.duplicate_candidates, routing=explain(case.evidence), evidence=case.evidence)


def explain(evidence: dict) -> list[RoutingLine]:
    """The routing evidence as lines a person can read on a phone."""
    lines = []
    grid = evidence.get("unit_grid")
    if grid:
        lines.append(RoutingLine(step="unit_grid", text=f"unit grid {grid['code']}: {grid['how']}"))
    for other in evidence.get("other_grids_in_accuracy") or []:
        lines.append(RoutingLine(step="accuracy", text=f"the accuracy circle also reaches grid {other['code']} "
                                                       f"({other['distance_m']} m), responsible: {other['responsible']}"))
    roads = evidence.get("roads") or []
    if roads:
        lines.append(RoutingLine(step="road", text=f"nearest road {roads[0]['code']} ({roads[0]['grade']}), "
                                                   f"{roads[0]['distance_m']} m away"))
    picked = evidence.get("picked_component")
    near = evidence.get("components") or []
    if picked:
        lines.append(RoutingLine(step="component", text=f"component {picked['code']} picked by the inspector, "
                                                        f"{picked['distance_m']} m from the fix"))
    elif near:
        lines.append(RoutingLine(step="component", text=f"nearest component {near[0]['code']}, "
                                                        f"{near[0]['distance_m']} m away"))
    rules = evidence.get("rules") or []
    for rule in (r for r in rules if not r["resolvable"]):
        lines.append(RoutingLine(step="rule", text=f"rule {rule['rule']} ({rule['target']}) passed over: "
                                                   "its target could not be resolved here"))
    department = evidence.get("department")
    if department:
        lines.append(RoutingLine(step="department", text=f"responsible: {department['code']} (by {department['by']})"))
    return lines
