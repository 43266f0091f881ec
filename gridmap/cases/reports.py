"""Reports into cases: an inspector's report from the street (or a hotline call placed by an acceptor)
is routed, checked, stored with its photos and filed as a case in one transaction.

A report carries an ``Idempotency-Key`` chosen by the phone: a retry with the same key and body (the
network dropped the answer, the offline queue resends) gets the original case back; the same key with a
different body is refused. Two copies racing each other meet at the key's primary key: the second waits
for the first to commit and then answers with its case.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from gridmap.calendar.service import Calendar, get_calendar
from gridmap.cases import deadlines
from gridmap.cases.access import REPORTERS, require_role
from gridmap.cases.duplicates import find_duplicates
from gridmap.cases.exceptions import BadCaseInput, IdempotencyConflict
from gridmap.cases.flags import local_time, photo_flags
from gridmap.cases.models import CaseFile, IdempotencyKey, Photo
from gridmap.cases.photos import StoredPhoto, store_photo
from gridmap.cases.policy import FUTURE_SLACK
from gridmap.cases.schemas import ActionRequest, ReportInput
from gridmap.cases.service import Step, record
from gridmap.routing.service import assign_one
from gridmap.users.service import CurrentUser

KEY_PATTERN = r"^[\x21-\x7e]{8,128}$"  # printable ASCII; a UUID is typical


@dataclass
class Upload:
    filename: str
    data: bytes


@dataclass
class Filed:
    case: CaseFile
    replayed: bool


def request_hash(report: ReportInput, uploads: list[Upload]) -> str:
    body = report.model_dump(mode="json") | {"photos": [hashlib.sha256(u.data).hexdigest() for u in uploads]}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def submit_report(*, session: Session, user: CurrentUser, report: ReportInput, uploads: list[Upload], key: str,
                  photo_dir: Path, photo_max_bytes: int, now: datetime | None = None) -> Filed:
    """File the report as a case (or return the case an earlier request with the same ``key`` filed)."""
    require_role(user, REPORTERS, "reporting")
    now = now or datetime.now(timezone.utc)
    digest = request_hash(report, uploads)
    claimed = session.execute(insert(IdempotencyKey).values(user_id=user.id, key=key, request_hash=digest,
                                                            case_id=func.nextval("case_file_id_seq"))
                              .on_conflict_do_nothing().returning(IdempotencyKey.case_id)).first()
    if claimed is None:
        earlier = session.get(IdempotencyKey, (user.id, key), populate_existing=True)
        if earlier.request_hash != digest:
            raise IdempotencyConflict(f"Idempotency-Key {key!r} was used for a different report: use a new key "
                                      "for a new report")
        return Filed(session.get(CaseFile, earlier.case_id), replayed=True)
    _check_time(report, now)
    if report.self_disposed and not uploads:
        raise BadCaseInput("a report closed on the spot (self_disposed) needs a photo of the result")
    decision = assign_one(session=session, x=report.x, y=report.y, crs=report.crs, accuracy=report.accuracy,
                          class_code=report.class_code, case_type=report.case_type, component_id=report.component_id)
    photos = [store_photo(u.data, directory=photo_dir, filename=u.filename, max_bytes=photo_max_bytes)
              for u in uploads]
    calendar = get_calendar(session=session)
    _save_photos(session, photos, user, calendar.timezone)
    case = open_case(session, decision, report, user, now, photos, calendar, case_id=claimed.case_id)
    return Filed(case, replayed=False)


def upload_photo(*, session: Session, user: CurrentUser, upload: Upload, photo_dir: Path,
                 photo_max_bytes: int) -> dict:
    """Store one photo on its own (a department's result, an inspector's check) and return its description."""
    photo = store_photo(upload.data, directory=photo_dir, filename=upload.filename, max_bytes=photo_max_bytes)
    _save_photos(session, [photo], user, get_calendar(session=session).timezone)
    return photo.as_dict()


def _check_time(report: ReportInput, now: datetime) -> None:
    captured = report.captured_at
    if captured is not None and captured.tzinfo is None:
        raise BadCaseInput("captured_at needs a time zone offset, e.g. 2026-11-21T09:30:00+08:00")
    if captured is not None and captured > now + FUTURE_SLACK:
        raise BadCaseInput(f"captured_at {captured.isoformat()} is in the future: check the phone's clock")


def _save_photos(session: Session, photos: list[StoredPhoto], user: CurrentUser, zone: ZoneInfo) -> None:
    for p in photos:
        session.execute(insert(Photo).values(sha256=p.sha256, media_type=p.media_type, size=p.size, width=p.width,
                                             height=p.height, taken_at=local_time(p.taken_at, zone), lon=p.lon,
                                             lat=p.lat, uploaded_by=user.id).on_conflict_do_nothing())


def open_case(session: Session, decision: dict, report: ReportInput, user: CurrentUser, now: datetime,
              photos: list[StoredPhoto], calendar: Calendar, source: str | None = None,
              case_id: int | None = None) -> CaseFile:
    """Insert the case of a routed report, start its clock, propose duplicates and record the report event."""
    source = source or ("self_disposal" if report.self_disposed else "inspector")
    case_id = case_id or session.scalar(select(func.nextval("case_file_id_seq")))
    case = CaseFile(
        id=case_id, number=f"{now.astimezone(calendar.timezone):%Y%m%d}{case_id:06d}", source=source, status="reported", case_type=decision["case_type"],
        class_code=report.class_code[-4:], description=report.description, address=report.address,
        reporter_id=user.id, reported_at=now, captured_at=report.captured_at,
        geom=func.ST_SetSRID(func.ST_MakePoint(decision["lon"], decision["lat"]), 4326),
        reported_x=report.x, reported_y=report.y, reported_crs=report.crs, accuracy_m=report.accuracy,
        **{k: decision[k] for k in ("unit_grid", "duty_grid", "community", "street", "district", "area_class",
                                    "road_id", "component_id", "component_version", "rule", "ambiguous",
                                    "ambiguity_reason", "evidence", "time_limit", "time_limit_unit")},
        proposed_department=decision["department"],
        flags=photo_flags(photos, decision["lon"], decision["lat"], report.accuracy, report.captured_at,
                          calendar.timezone))
    session.add(case)
    session.flush()
    step = Step(session, case, user, ActionRequest(version=1, lon=decision["lon"], lat=decision["lat"],
                                                   accuracy=report.accuracy, note=report.description,
                                                   photos=[p.sha256 for p in photos]),
                calendar, now, {"evidence": decision["evidence"], "source": source})
    proposals, repeat = find_duplicates(session, case, now)
    case.duplicate_candidates = proposals
    if report.self_disposed:
        case.status, case.closed_at, case.close_kind, case.handled_at = "closed", now, "self", now
    elif repeat is not None:
        case.status, case.merged_into_id = "merged", repeat
        step.data.update(auto_merged_into=next(p["number"] for p in proposals))
    deadlines.start_stage(case, step.calendar, now) if case.status == "reported" else None
    record(step, "self_dispose" if report.self_disposed else "report", None)
    session.flush()
    return case
