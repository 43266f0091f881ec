"""The demo city's case history (issue #7): the 2,817 real 1999 hotline calls of a week in 2023 replayed
in October 2026, and generated inspector reports from 1 August to 20 November 2026 — all played through
the case services (:func:`~gridmap.cases.hotline.submit_hotline`, :func:`~gridmap.cases.reports.submit_report`,
:func:`~gridmap.cases.service.act`) with the time of each action given, as `gridmap demo history` does.

The plan (:mod:`gridmap.demo.history_plan`) says what each case's people do and how long each waits;
here every action is taken at its moment, all cases' actions in time order (so a new report sees the
cases open at that moment as its possible duplicates). Nothing happens after :data:`TODAY` begins:
the cases still on their way then stay open where they are, some of them overdue.
"""

from __future__ import annotations

import heapq
import io
import time as clock
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

from PIL import Image, ImageDraw
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridmap.calendar.service import Calendar, get_calendar
from gridmap.cases.exceptions import BadCaseInput, InvalidTransition, StaleCase
from gridmap.cases.hotline import submit_hotline
from gridmap.cases.models import FINAL, CaseEvent, CaseFile
from gridmap.cases.photos import MAX_BYTES
from gridmap.cases.reports import Upload, submit_report, upload_photo
from gridmap.cases.schemas import ActionRequest, HotlineInput, ReportInput
from gridmap.cases.service import act
from gridmap.demo.history_patrol import CLASS_WEIGHTS, plan_patrols
from gridmap.demo.history_plan import (ALTERNATIVE, DEFAULT_SEED, HistoryError, Script, Step, plan_hotline,
                                       punctuality)
from gridmap.demo.users import Staff, demo_staff
from gridmap.routing.exceptions import BadReport
from gridmap.territory.service import territory_is_empty
from gridmap.users.exceptions import Forbidden
from gridmap.users.service import CurrentUser, current_user

#: the history's "today": nothing happens from its first moment on
TODAY = date(2026, 11, 21)
PATROL_START, PATROL_END = date(2026, 8, 1), TODAY - timedelta(days=1)
DEFAULT_INSPECTOR_CASES = 1000
HISTORY_MARK = "1999 案件 %"  # the replayed cases' descriptions start so
#: errors a step may meet that stop its case's script (reported, never expected: the tests check there are none)
STEP_ERRORS = (BadCaseInput, InvalidTransition, StaleCase, Forbidden, BadReport)


@dataclass
class HistoryReport:
    """What :func:`load_history` did."""

    seed: int
    cases: dict[str, int] = field(default_factory=dict)  # by source
    statuses: dict[str, int] = field(default_factory=dict)
    events: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    skipped: bool = False


def load_history(*, session: Session, photo_dir: Path, seed: int = DEFAULT_SEED,
                 inspector_cases: int = DEFAULT_INSPECTOR_CASES, if_empty: bool = False,
                 photo_max_bytes: int = MAX_BYTES, on_progress: Callable[[int, int], None] | None = None
                 ) -> HistoryReport:
    """Load the demo history into the demo city (which must be loaded); the caller commits.

    Parameters
    ----------
    session
        The demo city's database.
    photo_dir
        The photo store, for the placeholder photos the history's reports and handlings carry.
    seed
        The same seed gives the same history.
    inspector_cases
        How many inspector reports to generate (besides the 2,817 hotline calls).
    if_empty
        Do nothing when the database has any case.
    on_progress
        Called with (actions done, actions planned) now and then.

    Raises
    ------
    HistoryError
        The history is loaded already, or its input files are malformed.
    """
    started = clock.perf_counter()
    report = HistoryReport(seed)
    if if_empty and session.scalar(select(CaseFile.id).limit(1)) is not None:
        report.skipped = True
        return report
    if history_exists(session=session):
        raise HistoryError("the demo history is loaded already (cases replaying 1999 calls exist)")
    if territory_is_empty(session=session):
        raise HistoryError("the city has no districts: load the demo city first (gridmap demo load)")
    events_before = session.scalar(select(func.count(CaseEvent.id)))
    staff = demo_staff(session=session)
    calendar = get_calendar(session=session)
    scripts = plan_hotline(seed=seed, timezone=calendar.timezone)
    scripts += plan_patrols(session=session, seed=seed, count=inspector_cases, calendar=calendar,
                            start=PATROL_START, end=PATROL_END, staff=staff)
    player = Player(session, staff, calendar, punctuality(seed, staff), Path(photo_dir), photo_max_bytes)
    player.play(scripts, until=datetime.combine(TODAY, time(0), calendar.timezone), on_progress=on_progress)
    report.problems = player.problems
    report.cases = dict(Counter(case.source for case in player.cases.values()))
    report.statuses = dict(Counter(case.status for case in player.cases.values()))
    report.events = session.scalar(select(func.count(CaseEvent.id))) - events_before
    report.seconds = clock.perf_counter() - started
    return report


class Player:
    """Plays scripts through the case services, every action at its moment."""

    def __init__(self, session: Session, staff: Staff, calendar: Calendar, chances: dict[str, float],
                 photo_dir: Path, photo_max_bytes: int):
        self.session, self.staff, self.calendar, self.chances = session, staff, calendar, chances
        self.photo_dir, self.photo_max_bytes = photo_dir, photo_max_bytes
        self.users: dict[str, CurrentUser] = {}
        self.cases: dict[str, CaseFile] = {}  # script key → case
        self.problems: list[str] = []
        self.photos, self.handled_photo = self._placeholders()

    def play(self, scripts: list[Script], *, until: datetime,
             on_progress: Callable[[int, int], None] | None = None) -> None:
        """Take every scripted action before ``until``, all scripts' actions in time order."""
        queue = [(s.reported_at, i, -1, s.reporter) for i, s in enumerate(scripts) if s.reported_at < until]
        heapq.heapify(queue)
        total, done = sum(len(s.steps) + 1 for s in scripts), 0
        while queue:
            at, i, k, actor = heapq.heappop(queue)
            script = scripts[i]
            case = self._report(script, actor, at) if k < 0 else self._act(script, script.steps[k], actor, at)
            done += 1
            if on_progress and done % 500 == 0:
                on_progress(done, max(total, done))
            if case is None or case.status in FINAL or k + 1 >= len(script.steps):
                continue
            following = script.steps[k + 1]
            try:
                actor = self._actor(following.actor, case)
            except KeyError as error:
                self.problems.append(f"{script.key} {following.action}: nobody to act ({error})")
                continue
            moment = self._when(following, case, at, actor)
            if moment < until:
                heapq.heappush(queue, (moment, i, k + 1, actor))
        if on_progress:
            on_progress(done, done)

    def _report(self, script: Script, reporter: str, at: datetime) -> CaseFile | None:
        user = self._user(self._actor(reporter, None))
        try:
            if script.source == "hotline":
                call = HotlineInput(lon=script.lon, lat=script.lat, class_code=script.class_code,
                                    description=script.description, caller="1999 市民熱線 (replay)")
                case = submit_hotline(session=self.session, user=user, call=call, now=at).case
            else:
                case = self._patrol_report(script, user, at)
        except STEP_ERRORS as error:
            self.problems.append(f"{script.key} report: {error}")
            return None
        self.cases[script.key] = case
        return case

    def _patrol_report(self, script: Script, user: CurrentUser, at: datetime) -> CaseFile:
        report = ReportInput(x=script.lon, y=script.lat, accuracy=script.accuracy, class_code=script.class_code,
                             component_id=script.component_id, description=script.description,
                             captured_at=script.captured_at, self_disposed=script.self_disposed)
        photo = Upload(f"{script.class_code}.jpg", self.photos[script.class_code])
        return submit_report(session=self.session, user=user, report=report, uploads=[photo], key=script.key,
                             photo_dir=self.photo_dir, photo_max_bytes=self.photo_max_bytes, now=at).case

    def _act(self, script: Script, step: Step, actor: str, at: datetime) -> CaseFile | None:
        case = self.cases[script.key]
        body = dict(step.body, version=case.version)
        if body.get("photos") == "handled":
            body["photos"] = [self.handled_photo]
        if body.get("department") == ALTERNATIVE:
            body["department"] = self._alternative(case)
        if step.actor == "inspector":  # on site: the phone's fix, near the case
            body.update(lon=round(script.lon, 6), lat=round(script.lat, 6), accuracy=8.0)
        try:
            return act(session=self.session, user=self._user(actor), number=case.number, action=step.action,
                       request=ActionRequest(**body), now=at, calendar=self.calendar)
        except STEP_ERRORS as error:
            self.problems.append(f"{script.key} ({case.number}) {step.action} at {at:%Y-%m-%d %H:%M}: {error}")
            return None

    def _when(self, step: Step, case: CaseFile, previous: datetime, actor: str) -> datetime:
        """When ``step`` happens: its wait after ``previous``, or (a share of the disposal limit) from the
        disposal clock's start; never before ``previous``."""
        amount = step.on if step.u < self.chances.get(actor, 1.0) else step.late
        if step.share and case.clock_resumed_at is not None:
            left = amount * (case.disposal_limit_min or 0.0) - (case.disposal_used_min or 0.0)
            moment = self.calendar.add_working_time(case.clock_resumed_at, timedelta(minutes=max(left, 0.0)))
        else:
            moment = self.calendar.add_working_time(previous, timedelta(minutes=amount))
        return max(moment, previous + timedelta(minutes=1))

    def _actor(self, actor: str, case: CaseFile | None) -> str:
        """The user name behind a desk (``dispatcher:1``), or the case's department or inspector."""
        if actor == "department":
            return self.staff.department_user[case.department]
        if actor == "inspector":
            return self.staff.inspector_of_duty_grid[case.duty_grid]
        role, _, desk = actor.partition(":")
        return self.staff.centre[role][int(desk)] if desk else actor

    def _alternative(self, case: CaseFile) -> str:
        """Where a returned case goes instead: the district's street office, or for a case that was
        with the street office, the district's cleaning squad."""
        office = f"JD-{case.district}"
        return f"HW-{case.district}" if case.department == office else office

    def _user(self, name: str) -> CurrentUser:
        if name not in self.users:
            self.users[name] = current_user(session=self.session, name=name)
        return self.users[name]

    def _placeholders(self) -> tuple[dict[str, bytes], str]:
        """Placeholder photos: one per reported class (sent with each report), and the handled one, stored
        now (the department's handling refers to it by its hash)."""
        photos = {code: _placeholder(code, (90 + 5 * n, 120, 160 - 3 * n))
                  for n, code in enumerate(sorted(CLASS_WEIGHTS))}
        stored = upload_photo(session=self.session, user=self._user(self.staff.centre["supervisor"][0]),
                              upload=Upload("handled.jpg", _placeholder("handled", (70, 150, 90))),
                              photo_dir=self.photo_dir, photo_max_bytes=self.photo_max_bytes)
        return photos, stored["sha256"]


def _placeholder(label: str, colour: tuple[int, int, int]) -> bytes:
    """A small JPEG standing in for a field photo (the same bytes every time)."""
    image = Image.new("RGB", (320, 240), colour)
    draw = ImageDraw.Draw(image)
    draw.rectangle((12, 12, 308, 228), outline=(255, 255, 255), width=3)
    draw.text((24, 24), f"gridmap demo photo: {label}", fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=70)
    return out.getvalue()


def history_exists(*, session: Session) -> bool:
    """Whether the demo history (its replayed 1999 calls) is in the database."""
    return session.scalar(select(CaseFile.id).where(CaseFile.description.like(HISTORY_MARK)).limit(1)) is not None
