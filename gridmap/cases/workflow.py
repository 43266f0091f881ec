"""The case loop as a table: which action moves a case from which states to which, and who may take it
(DOMAIN.md §6, CJ/T 315). Everything else (clocks, events, checks) is in :mod:`gridmap.cases.service`.

    上报 reported ─受理 accept→ accepted ─立案 file→ filed ─派遣 dispatch→ dispatched ─处置 handle→ handled
      │ 核实 request_verification ⇄ verify        回退 return ↙ ↖ re-dispatch    │ 核查 check: pass → checked
      └ 不予受理 reject / 合并 merge / 作废 void   挂账 park ⇄ resume (clock paused)   └ fail → dispatched (返工)
                                                                                 checked ─结案 close→ closed
"""

from __future__ import annotations

from dataclasses import dataclass

from gridmap.cases.exceptions import InvalidTransition
from gridmap.cases.models import FINAL

OPEN_BEFORE_DISPOSAL = ("reported", "verifying", "accepted", "filed", "returned", "parked")
COMMAND = ("shift_lead", "supervisor")  # the command centre's lead roles


@dataclass(frozen=True)
class Action:
    name: str
    term: str  # the Chinese term on forms and in the audit trail
    sources: tuple[str, ...]
    target: str  # for check, the target when the check passes (a failed check goes back to dispatched)
    roles: tuple[str, ...]


ACTIONS = {a.name: a for a in [
    Action("accept", "受理", ("reported",), "accepted", ("acceptor",)),
    Action("request_verification", "核实派发", ("reported",), "verifying", ("acceptor",)),
    Action("verify", "核实", ("verifying",), "reported", ("inspector",)),
    Action("reject", "不予受理", ("reported",), "rejected", ("acceptor",)),
    Action("merge", "合并", ("reported",), "merged", ("acceptor",)),
    Action("file", "立案", ("accepted",), "filed", ("shift_lead",)),
    Action("dispatch", "派遣", ("filed", "returned"), "dispatched", ("dispatcher",)),
    Action("return", "回退", ("dispatched",), "returned", ("department",)),
    Action("refuse_return", "回退驳回", ("returned",), "dispatched", ("dispatcher",)),
    Action("request_extension", "延时申请", ("dispatched",), "dispatched", ("department",)),
    Action("approve_extension", "延时批准", ("dispatched", "parked"), "=", ("dispatcher", *COMMAND)),
    Action("refuse_extension", "延时驳回", ("dispatched", "parked"), "=", ("dispatcher", *COMMAND)),
    Action("park", "挂账", ("dispatched",), "parked", ("dispatcher", *COMMAND)),
    Action("resume", "恢复", ("parked",), "dispatched", ("dispatcher", *COMMAND)),
    Action("handle", "处置反馈", ("dispatched",), "handled", ("department",)),
    Action("check", "核查", ("handled",), "checked", ("inspector",)),
    Action("close", "结案", ("checked",), "closed", COMMAND),
    Action("void", "作废", OPEN_BEFORE_DISPOSAL, "voided", ("acceptor", *COMMAND)),
]}

#: status → what it means, for people (zh-CN, en)
STATUS_TERMS = {
    "reported": ("待受理", "reported, awaiting acceptance"), "verifying": ("核实中", "being verified on site"),
    "accepted": ("待立案", "accepted, awaiting filing"), "filed": ("待派遣", "filed, awaiting dispatch"),
    "dispatched": ("处置中", "with the department"), "returned": ("回退待审", "returned by the department"),
    "parked": ("挂账", "parked, clock paused"), "handled": ("待核查", "handled, awaiting check"),
    "checked": ("待结案", "checked, awaiting closing"), "closed": ("已结案", "closed"),
    "rejected": ("不予受理", "rejected"), "voided": ("已作废", "voided"), "merged": ("已合并", "merged into another case"),
}


def action(name: str) -> Action:
    if name not in ACTIONS:
        raise InvalidTransition(f"unknown action {name!r}: use one of {', '.join(ACTIONS)}")
    return ACTIONS[name]


def check_transition(act: Action, status: str) -> None:
    """Refuse ``act`` on a case in ``status``, saying what the case is waiting for instead."""
    if status in act.sources:
        return
    if status in FINAL:
        raise InvalidTransition(f"the case is {status} ({STATUS_TERMS[status][0]}): no further action is possible")
    possible = [a.name for a in ACTIONS.values() if status in a.sources]
    raise InvalidTransition(
        f"cannot {act.name} ({act.term}) a case that is {status} ({STATUS_TERMS[status][0]}); "
        f"{act.name} needs a case that is {' or '.join(act.sources)}; possible now: {', '.join(possible)}")


def actions_for(role: str, status: str) -> list[str]:
    """The actions a role may take on a case in ``status`` (for the UI's buttons)."""
    return [a.name for a in ACTIONS.values() if status in a.sources and role in a.roles]
