"""The demo history, planned: which cases, where and when, and what each case's people do — drawn from a
seed, reading the city but writing nothing (:mod:`gridmap.demo.history` plays the plan through the case
services).

Each case gets a *script*: the report, then the actions that follow it with how long each actor waits.
Every case draws from its own random generator (seed, source, index), so a case's script does not
depend on the others, and the same seed gives the same plan.
"""

from __future__ import annotations

import csv
import unicodedata
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyogrio

from gridmap.cases.policy import STAGE_LIMIT_MIN
from gridmap.demo.users import Staff

DATA = Path(__file__).resolve().parents[2] / "data" / "taipei"
HOTLINE_FILE = DATA / "hotline_1999.geojson"
HOTLINE_CLASSES = DATA / "hotline_1999_classes.csv"
ATTRIBUTION = ("資料來源：臺北市政府（臺北市資料大平臺 data.taipei／臺北城市儀表板 Taipei City Dashboard），"
               "政府資料開放授權條款－第1版")
#: 2023-05-25 (a Thursday) + 176 weeks = 2026-10-08: the replayed week keeps its weekdays and holds the
#: 國慶日 make-up holiday (Friday 9 October)
REPLAY_WEEKS = 176
#: 成案時間 runs 8 h ahead of Taipei time: minus 8 h, every call's date is its 案件編號's and the calls come
#: by day and evening (as written they would be most frequent at 01:00 and fewest at midday)
SOURCE_CLOCK_AHEAD = timedelta(hours=8)
DEFAULT_SEED = 20261121

#: the centre's desks (as many as :data:`gridmap.demo.users.CENTRE` creates) and their chance of acting within
#: the stage's limit
CENTRE_PUNCTUALITY = {"acceptor": (0.97, 0.9), "shift_lead": (0.96, 0.86), "dispatcher": (0.97, 0.82),
                      "supervisor": (0.95,)}
HANDLED_NOTE, PASSED_NOTE = "已处置，附处置后照片", "现场核查：问题已解决"
#: how late a late department handles a case (shares of the disposal limit) and how often
LATE = [((1.05, 2.0), 0.7), ((2.5, 6.0), 0.2), ((8.0, 30.0), 0.1)]
#: the department a returned case is sent to instead (resolved when it happens)
ALTERNATIVE = "@alternative"


class HistoryError(ValueError):
    """The history's input is malformed; the message names the file, row and field."""


@dataclass(frozen=True)
class Step:
    """One action of a script. ``actor`` is a centre desk (``dispatcher:1``) or the case's ``department`` /
    ``inspector``; ``handle``-like steps (``share`` true) wait a share of the disposal limit, the others
    working minutes. The actor keeps to time when ``u`` is below their punctuality (then ``on``, else ``late``)."""

    action: str
    actor: str
    on: float
    late: float
    u: float = 0.0
    share: bool = False
    body: dict = field(default_factory=dict)


@dataclass
class Script:
    """A case to be: how it is reported and what happens to it."""

    key: str
    source: str  # hotline | inspector
    reported_at: datetime
    lon: float
    lat: float
    class_code: str  # with the case type first: 1xxxx component, 2xxxx event
    description: str
    reporter: str  # acceptor desk, or the inspector user
    accuracy: float | None = None
    component_id: str | None = None
    self_disposed: bool = False
    captured_at: datetime | None = None
    steps: list[Step] = field(default_factory=list)


class Draw:
    """The steps of one script, drawn from its generator."""

    def __init__(self, rng: np.random.Generator):
        self.rng, self.steps = rng, []
        desk = {role: f"{role}:{int(rng.integers(len(p)))}" for role, p in CENTRE_PUNCTUALITY.items()}
        self.acceptor, self.shift_lead = desk["acceptor"], desk["shift_lead"]
        self.dispatcher, self.supervisor = desk["dispatcher"], desk["supervisor"]

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def stage(self, action: str, actor: str, stage: str, **body) -> None:
        """An action ending a clocked stage: within its limit, or 1.1–4 × late."""
        limit, u = STAGE_LIMIT_MIN[stage], self.rng.random()
        self.steps.append(Step(action, actor, limit * self.rng.uniform(0.1, 0.9), limit * self.rng.uniform(1.1, 4),
                               u, body=body))

    def wait(self, action: str, actor: str, low: float, high: float, **body) -> None:
        """An action on no clock of its own, ``low``–``high`` working minutes later."""
        minutes = self.rng.uniform(low, high)
        self.steps.append(Step(action, actor, minutes, minutes, body=body))

    def disposal(self, action: str, on: tuple[float, float], late: tuple[float, float] | None = None,
                 actor: str = "department", **body) -> None:
        """An action at a share of the disposal limit (late: past it, sometimes far past it)."""
        u = self.rng.random()
        if late is None:  # mostly a little late; some cases lie forgotten for a while, a few for weeks
            late = LATE[int(self.rng.choice(len(LATE), p=[share for _, share in LATE]))][0]
        self.steps.append(Step(action, actor, self.rng.uniform(*on), self.rng.uniform(*late), u, True, body))


def draw_loop(d: Draw) -> None:
    """From acceptance to closing, with the side paths: void, return, extension, park, rework."""
    if d.chance(0.012):
        return d.stage("void", d.shift_lead, "accepted", reason="不符合立案条件")
    d.stage("file", d.shift_lead, "accepted", confirm=True)
    if d.chance(0.008):
        return d.stage("void", d.shift_lead, "filed", reason="立案有误：与已立案件重复")
    d.stage("dispatch", d.dispatcher, "filed", confirm=True)
    if d.chance(0.04):
        d.wait("return", "department", 20, 300, reason="不属本单位职责范围，请改派")
        if d.chance(0.7):
            d.stage("dispatch", d.dispatcher, "returned", department=ALTERNATIVE, reason="回退属实，改派")
        else:
            d.stage("refuse_return", d.dispatcher, "returned", reason="经核查属本单位职责，请按期处置")
    if d.chance(0.05):
        hours = float(d.rng.choice([4.0, 8.0, 16.0]))
        d.disposal("request_extension", (0.4, 0.85), (0.4, 0.85), extension=hours, extension_unit="hour",
                   reason="需协调施工或等待材料")
        approve, approver = d.chance(0.8), d.dispatcher if d.chance(0.6) else d.shift_lead
        d.wait("approve_extension" if approve else "refuse_extension", approver, 5, 90,
               **({} if approve else {"reason": "延时理由不充分"}))
    if d.chance(0.015):
        parker = d.supervisor if d.chance(0.3) else d.dispatcher
        d.disposal("park", (0.2, 0.6), (0.2, 0.6), actor=parker, reason="涉及产权或多部门协调，暂挂账")
        d.wait("resume", parker, 2 * 480, 15 * 480, note="协调完毕，恢复处置")
    d.disposal("handle", (0.15, 0.95), photos="handled", note=HANDLED_NOTE)
    for p in (0.06, 0.2):
        if not d.chance(p):
            break
        d.stage("check", "inspector", "handled", passed=False, note="现场核查：问题仍在，返工")
        on, late = d.rng.uniform(60, 600), d.rng.uniform(600, 2400)
        d.steps.append(Step("handle", "department", on, late, d.rng.random(),
                            body={"photos": "handled", "note": "返工完成"}))
    d.stage("check", "inspector", "handled", passed=True, note=PASSED_NOTE)
    d.stage("close", d.shift_lead, "checked")


def rng_for(seed: int, source: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(source.encode()), index])


def punctuality(seed: int, staff: Staff) -> dict[str, float]:
    """Each actor's chance of keeping to time, by user name: the centre's desks as set, the inspectors
    (0.8–0.98) and the departments (0.55–0.98, so that their ranking means something) drawn from the seed."""
    chances = {name: CENTRE_PUNCTUALITY[role][i] for role, names in staff.centre.items()
               for i, name in enumerate(names)}
    for names, low in ((staff.inspector_of_district.values(), 0.8), (staff.department_user.values(), 0.55)):
        for name in names:
            chances[name] = float(rng_for(seed, "punctuality", zlib.crc32(name.encode())).uniform(low, 0.98))
    return chances


# -- the 1999 hotline replay ----------------------------------------------------------------------------
def read_classes(path: Path = HOTLINE_CLASSES) -> dict[str, dict]:
    """The 1999 types on the national catalogue: 案件類型 → its row (case_type, class_code, disposition
    ``reject`` or empty, reason, note).

    Raises
    ------
    HistoryError
        A malformed row (file, row, field).
    """
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    for number, row in enumerate(rows, start=1):
        if row.get("case_type") not in ("component", "event"):
            raise HistoryError(f"{path}, row {number}, field case_type: must be component or event "
                               f"(value {row.get('case_type')!r})")
        if not (row.get("class_code") or "").isdigit() or len(row["class_code"]) != 4:
            raise HistoryError(f"{path}, row {number}, field class_code: must be 4 digits (value "
                               f"{row.get('class_code')!r})")
        if (row.get("disposition") or "") not in ("", "reject"):
            raise HistoryError(f"{path}, row {number}, field disposition: must be empty or reject (value "
                               f"{row.get('disposition')!r})")
    return {_key(row["type"]): row for row in rows}


def _key(kind: str) -> str:
    """案件類型 as a lookup key: NFKC folds the source's compatibility ideographs (處理 is written with
    U+F9E4 in one of them) into the ordinary ones."""
    return unicodedata.normalize("NFKC", str(kind)).strip()


def plan_hotline(*, seed: int, timezone, path: Path = HOTLINE_FILE,
                 classes: dict[str, dict] | None = None) -> list[Script]:
    """The real 1999 calls as scripts: at their place and time of day, ``REPLAY_WEEKS`` later.

    Parameters
    ----------
    seed
        The same seed gives the same scripts.
    timezone
        The city's time zone (the calls' local time).
    path
        The 1999 calls (GeoJSON points with 成案時間, 案件編號, 案件類型).
    classes
        案件類型 → catalogue class (default: :func:`read_classes`).

    Returns
    -------
    list of Script
        In the order of the calls' time.

    Raises
    ------
    HistoryError
        A call without a time, number or point, or of a type the mapping does not know (file, row, field).
    """
    classes = classes if classes is not None else read_classes()
    frame = pyogrio.read_dataframe(path)
    calls = [_call(row, number, path, timezone, classes)
             for number, row in enumerate(frame.itertuples(index=False), start=1)]
    calls.sort(key=lambda call: (call.local, call.number))
    return [_hotline_script(seed, index, call) for index, call in enumerate(calls)]


class Call(NamedTuple):
    """One 1999 call, read and checked."""

    number: str
    kind: str
    mapped: dict
    local: datetime
    lon: float
    lat: float


def _call(row, number: int, path: Path, timezone, classes: dict[str, dict]) -> Call:
    where = f"{path}, row {number}"
    written = _timestamp(row.成案時間)
    if written is None:
        raise HistoryError(f"{where}, field 成案時間: not a local date-time (value {row.成案時間!r})")
    if not isinstance(row.案件編號, str) or not row.案件編號.strip():
        raise HistoryError(f"{where}, field 案件編號: missing (value {row.案件編號!r})")
    mapped = classes.get(_key(row.案件類型))
    if mapped is None:
        raise HistoryError(f"{where}, field 案件類型: {row.案件類型!r} is not mapped in {HOTLINE_CLASSES.name}")
    point = row.geometry
    if point is None or point.is_empty or point.geom_type != "Point":
        raise HistoryError(f"{where}, field geometry: a point is needed (value {point!r})")
    local = (written - SOURCE_CLOCK_AHEAD).replace(tzinfo=timezone)
    return Call(row.案件編號.strip(), row.案件類型, mapped, local, float(point.x), float(point.y))


def _timestamp(value) -> datetime | None:
    """The value as a naive date-time, None if it is none."""
    try:
        written = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    return None if pd.isna(written) or written.tzinfo is not None else written.to_pydatetime()


def _hotline_script(seed: int, index: int, call: Call) -> Script:
    d = Draw(rng_for(seed, "hotline", index))
    description = (f"1999 案件 {call.number}（{call.kind}），replayed +{REPLAY_WEEKS} weeks from "
                   f"{call.local:%Y-%m-%d %H:%M}. {ATTRIBUTION}")
    kind = call.mapped
    prefix = "1" if kind["case_type"] == "component" else "2"
    script = Script(f"hotline-{call.number}", "hotline", call.local + timedelta(weeks=REPLAY_WEEKS), call.lon,
                    call.lat, prefix + kind["class_code"], description, d.acceptor)
    if kind["disposition"] == "reject":
        d.stage("reject", d.acceptor, "reported", reason=kind.get("reason") or "不属城市管理受理范围")
    elif d.chance(0.015):
        d.stage("reject", d.acceptor, "reported", reason="经核实不属城市管理受理范围")
    elif d.chance(0.01):
        d.stage("void", d.acceptor, "reported", reason="重复来电，已有案件处理中")
    else:
        if d.chance(0.04):
            d.stage("request_verification", d.acceptor, "reported", note="请监督员现场核实")
            d.stage("verify", "inspector", "verifying", note="现场核实属实")
        d.stage("accept", d.acceptor, "reported")
        draw_loop(d)
    script.steps = d.steps
    return script


# -- generated inspector reports ------------------------------------------------------------------------
def working_moments(calendar, start: datetime, end: datetime, count: int, rng: np.random.Generator,
                    growth: float = 0.0) -> list[datetime]:
    """``count`` random moments in the working time between ``start`` and ``end``, in order; their rate
    rises linearly by ``growth`` (0.6: the last day has 1.6 × the first day's rate)."""
    total = calendar.working_time_between(start, end).total_seconds() / 60
    u = rng.uniform(0, 1, count)
    # inverse of the distribution function of a density rising linearly from 1 to 1 + growth
    share = u if growth == 0 else (np.sqrt(1 + growth * (2 + growth) * u) - 1) / growth
    offsets = np.sort(share * total)
    moments, previous, at = [], 0.0, start
    for offset in offsets:
        at = calendar.add_working_time(at, timedelta(minutes=float(offset - previous)))
        moments.append(at)
        previous = offset
    return moments


def history_window(start: date, end: date, timezone) -> tuple[datetime, datetime]:
    return datetime.combine(start, time(0), timezone), datetime.combine(end, time(23, 59), timezone)
