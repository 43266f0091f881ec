"""What the KPIs 考核指标 are: the subjects they are computed for, every count and rate with its Chinese
and English name and its formula (DOMAIN.md §7; the rules in full are in docs/kpi.md).

Column names are unique across subject kinds and mean the same wherever they appear (``due`` is 应结案数
for a region and for a department alike), so a column name is enough to find its definition.
"""

from __future__ import annotations

from dataclasses import dataclass


class EvaluationError(ValueError):
    """A KPI request that cannot be answered as asked (bad period, subject or scoring); the message says why."""


#: subject ``by`` → its kind; regions nest grid → community → street → district
SUBJECTS = {"unit_grid": "region", "community": "region", "street": "region", "district": "region",
            "department": "department", "inspector": "inspector", "dispatcher": "dispatcher",
            "shift_lead": "shift_lead"}
KINDS = ("region", "department", "inspector", "dispatcher", "shift_lead")
#: the count that breaks ties between equal scores (more of it ranks first)
VOLUME = {"region": "due", "department": "due", "inspector": "reports", "dispatcher": "dispatches",
          "shift_lead": "file_events"}


@dataclass(frozen=True)
class Kpi:
    """One column of a KPI table."""

    column: str
    zh: str
    en: str
    formula: str
    kinds: tuple[str, ...]
    unit: str = "count"  # count, rate (0–1), hours, minutes
    better: str | None = None  # for rates: "higher" or "lower" (enters a score as 1 − r); None: not scored

    @property
    def scorable(self) -> bool:
        return self.unit == "rate" and self.better is not None


_R, _D = ("region",), ("department",)
_RD = ("region", "department")

KPIS: tuple[Kpi, ...] = (
    # regions and departments: the cohort of cases filed 立案 in the period
    Kpi("filed", "立案数", "cases filed", "cases whose first filing (立案) falls in P", _RD),
    Kpi("due", "应结案数", "due to close", "filed cases not voided by T that were handled or closed by T or "
        "whose disposal deadline passed by T (= handled + overdue_unhandled)", _RD),
    Kpi("handled", "处置数", "handled", "filed cases whose last handling (处置) is at or before T", _D),
    Kpi("handled_on_time", "按时处置数", "handled on time", "handled cases with handled_at ≤ disposal "
        "deadline (no deadline = on time)", _D),
    Kpi("overdue_unhandled", "超期未处置数", "overdue, not handled", "filed cases not voided, not handled by "
        "T, whose disposal deadline is at or before T", _D),
    Kpi("closed", "结案数", "closed", "filed cases closed (结案) at or before T", _RD),
    Kpi("closed_on_time", "按期结案数", "closed on time", "closed cases that were handled on time", _R),
    Kpi("public", "监督举报数", "public reports", "filed cases that came from the public (hotline 12319/12345)",
        _R),
    Kpi("reworked", "返工数", "reworked", "due cases that failed a check (返工) at least once", _D),
    Kpi("returned", "回退数", "returned", "returns (回退) by the department's users in P, up to T", _D),
    Kpi("disposal_minutes", "处置用时合计(分钟)", "disposal time, working minutes", "sum of the working minutes "
        "used up to the last handling (pauses left out) over handled cases", _D, "minutes"),
    Kpi("disposal_count", "计时案件数", "timed cases", "handled cases with a recorded disposal time", _D),
    Kpi("closed_rate", "结案率", "closure rate", "closed / due", _RD, "rate", "higher"),
    Kpi("closed_on_time_rate", "按期结案率", "on-time closure rate", "closed_on_time / due", _R, "rate", "higher"),
    Kpi("public_rate", "监督举报率", "public report rate", "public / filed", _R, "rate"),
    Kpi("handled_on_time_rate", "按时处置率", "on-time disposal rate", "handled_on_time / due", _D, "rate",
        "higher"),
    Kpi("rework_rate", "返工率", "rework rate", "reworked / due", _D, "rate", "lower"),
    Kpi("avg_disposal_hours", "平均处置时长(工作小时)", "average disposal time, working hours",
        "disposal_minutes / disposal_count / 60", _D, "hours"),
    # inspectors 监督员
    Kpi("reports", "上报数", "reports", "cases the inspector reported in P (own reports and 自行处置)",
        ("inspector",)),
    Kpi("reports_valid", "有效上报数", "valid reports", "reports filed (立案) by T, or disposed of on the spot",
        ("inspector",)),
    Kpi("reports_invalid", "无效上报数", "invalid reports", "reports not valid and rejected, voided or merged "
        "by T", ("inspector",)),
    Kpi("reports_pending", "待定上报数", "reports pending", "reports neither valid nor invalid at T (left out of "
        "有效上报率)", ("inspector",)),
    Kpi("duty_filed", "责任网格立案数", "filed in duty grids", "cases filed in P in the inspector's duty grids",
        ("inspector",)),
    Kpi("duty_public", "责任网格监督举报数", "public reports in duty grids", "of those, cases from the public "
        "(hotline)", ("inspector",)),
    Kpi("verifications", "核实数", "verifications", "verifications (核实) by the inspector in P",
        ("inspector",)),
    Kpi("verifications_on_time", "按时核实数", "verifications on time", "verifications with at ≤ due_at",
        ("inspector",)),
    Kpi("checks", "核查数", "checks", "checks (核查) by the inspector in P", ("inspector",)),
    Kpi("checks_on_time", "按时核查数", "checks on time", "checks with at ≤ due_at", ("inspector",)),
    Kpi("valid_rate", "有效上报率", "valid report rate", "reports_valid / (reports_valid + reports_invalid)",
        ("inspector",), "rate", "higher"),
    Kpi("missed_rate", "漏报率", "missed report rate", "duty_public / duty_filed", ("inspector",), "rate", "lower"),
    Kpi("verify_on_time_rate", "按时核实率", "on-time verification rate", "verifications_on_time / verifications",
        ("inspector",), "rate", "higher"),
    Kpi("check_on_time_rate", "按时核查率", "on-time check rate", "checks_on_time / checks", ("inspector",),
        "rate", "higher"),
    # dispatchers 派遣员
    Kpi("dispatches", "派遣数", "dispatches", "dispatches (派遣) by the dispatcher in P", ("dispatcher",)),
    Kpi("dispatches_on_time", "按时派遣数", "dispatches on time", "dispatches with at ≤ due_at",
        ("dispatcher",)),
    Kpi("dispatches_inaccurate", "不准确派遣数", "inaccurate dispatches", "dispatches followed, before the "
        "case's next dispatch and by T, by a return (回退) or a failed check (返工)", ("dispatcher",)),
    Kpi("dispatch_on_time_rate", "按时派遣率", "on-time dispatch rate", "dispatches_on_time / dispatches",
        ("dispatcher",), "rate", "higher"),
    Kpi("dispatch_accuracy_rate", "准确派遣率", "dispatch accuracy rate", "(dispatches − dispatches_inaccurate) "
        "/ dispatches", ("dispatcher",), "rate", "higher"),
    # shift leads 值班长
    Kpi("file_events", "立案操作数", "filings", "filings (立案) by the shift lead in P", ("shift_lead",)),
    Kpi("file_events_on_time", "按时立案数", "filings on time", "filings with at ≤ due_at", ("shift_lead",)),
    Kpi("file_events_voided", "立案后作废数", "filings voided", "filings whose case was voided (作废) later, by T",
        ("shift_lead",)),
    Kpi("close_events", "结案操作数", "closings", "closings (结案) by the shift lead in P", ("shift_lead",)),
    Kpi("close_events_on_time", "按时结案数", "closings on time", "closings with at ≤ due_at", ("shift_lead",)),
    Kpi("file_on_time_rate", "按时立案率", "on-time filing rate", "file_events_on_time / file_events",
        ("shift_lead",), "rate", "higher"),
    Kpi("file_accuracy_rate", "准确立案率", "filing accuracy rate", "(file_events − file_events_voided) / "
        "file_events", ("shift_lead",), "rate", "higher"),
    Kpi("close_on_time_rate", "按时结案率", "on-time closing rate", "close_events_on_time / close_events",
        ("shift_lead",), "rate", "higher"),
)
BY_COLUMN = {k.column: k for k in KPIS}
#: the columns every KPI table ends with
SCORE_COLUMNS = (Kpi("score", "综合得分", "composite score", "100 × Σ wᵢ·rᵢ / Σ wᵢ over the defined scored "
                     "rates (lower-is-better rates enter as 1 − r)", tuple(KINDS), "score"),
                 Kpi("band", "等级", "band", "A–E by score thresholds (scoring.yaml)", tuple(KINDS), "band"),
                 Kpi("rank", "排名", "rank", "1 = best score; ties: more due cases first", tuple(KINDS), "rank"))


def subject_kind(by: str) -> str:
    """The kind of subject ``by`` names (``region`` for the four territory levels)."""
    if by not in SUBJECTS:
        raise EvaluationError(f"unknown subject {by!r}: use one of {', '.join(SUBJECTS)}")
    return SUBJECTS[by]


def kpis_for(by: str) -> tuple[Kpi, ...]:
    """The counts, then the rates, of subject ``by``, in table order."""
    kind = subject_kind(by)
    mine = [k for k in KPIS if kind in k.kinds]
    return tuple([k for k in mine if k.unit in ("count", "minutes")] + [k for k in mine if k.unit not in
                                                                          ("count", "minutes")])


def count_columns(by: str) -> list[str]:
    return [k.column for k in kpis_for(by) if k.unit in ("count", "minutes")]


def rate_columns(by: str) -> list[str]:
    return [k.column for k in kpis_for(by) if k.unit in ("rate", "hours")]
