"""Reports into cases: an inspector's report from the street (or a hotline call placed by an acceptor)
is routed, checked, stored with its photos and filed as a case.

A report carries an ``Idempotency-Key`` chosen by the phone: a retry with the same key and body (the
network dropped the answer, the offline queue resends) gets the original case back; the same key with a
different body is refused. Two copies racing each other meet at the key's primary key: the second waits
for the first to commit and then answers with its case.

Reports come in all day long, so filing one takes two statements. The first reads: it checks the token,
looks the key up (and draws the new case's id where the key is new), reads the calendar's version and the
features near the fix (in a server, which holds the city's layers in memory, only their stamp) and finds
open cases of its class nearby. The second writes, all or nothing: it claims the key and inserts the photos,
the case and its report event (unless the key was claimed meanwhile: then it inserts nothing and the report
is answered as a retry), and reads the proposed department's name for the receipt. A server sends them on the
connection each of its processes holds in autocommit (see :class:`~gridmap.db.engine.HeldConnection`): each
is its own transaction, two round trips in all, no ``BEGIN`` and no ``COMMIT``; elsewhere they run in the
caller's session, in its transaction (the ``BEGIN`` goes with the first, see
:func:`~gridmap.db.engine.fetch_together`).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
from psycopg import Connection
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, make_transient_to_detached

from gridmap.calendar.service import Calendar, get_calendar
from gridmap.cases import deadlines
from gridmap.cases.access import REPORTERS, require_role
from gridmap.cases.duplicates import duplicates_found, duplicates_query, find_duplicates
from gridmap.cases.exceptions import BadCaseInput, IdempotencyConflict
from gridmap.cases.flags import local_time, photo_flags
from gridmap.cases.models import CaseEvent, CaseFile, Photo
from gridmap.cases.photos import StoredPhoto, store_photo
from gridmap.cases.policy import FUTURE_SLACK
from gridmap.cases.schemas import ActionRequest, ReportInput
from gridmap.cases.service import Step, record
from gridmap.db.base import STORAGE_SRID
from gridmap.db.engine import driver_connection, fetch_together
from gridmap.routing.exceptions import BadReport
from gridmap.routing.service import decide_fix, fix_of, fix_query
from gridmap.users.service import BY_TOKEN, USER_COLUMNS, BearerToken, CurrentUser, token_query, token_user

KEY_PATTERN = r"^[\x21-\x7e]{8,128}$"  # printable ASCII; a UUID is typical
#: what the case takes from the routing decision as it is
DECIDED = ("unit_grid", "duty_grid", "community", "street", "district", "area_class", "road_id", "component_id",
           "component_version", "rule", "ambiguous", "ambiguity_reason", "evidence", "time_limit", "time_limit_unit")
#: the columns a filing writes (``geom`` is made from lon/lat; ``updated_at`` is the database's)
CASE_FIELDS = tuple(c.key for c in CaseFile.__table__.c if c.key not in ("geom", "updated_at"))
assert set(DECIDED) <= set(CASE_FIELDS), "a decided field that is no column of case_file"
EVENT_FIELDS = tuple(c.key for c in CaseEvent.__table__.c if c.key != "id")


# The statements every report runs go to the driver (driver_connection: its SQL, its tuples)

_CALENDAR_VERSION = "(SELECT updated_at FROM working_calendar WHERE code = 'default')"  # for get_calendar
#: the key's earlier use by the user ``who.id``: the case and the request's digest (NULL where the key is new)
_EARLIER = "LEFT JOIN idempotency_key k ON k.user_id = who.id AND k.key = %(idempotency_key)s"
_NEW_ID = "nextval('case_file_id_seq')"


@functools.cache
def _first_sql(by_token: bool, *reads: str) -> str:
    """A report's first statement: the key's earlier use, and in the same statement what the filing reads
    (``reads``: statements of one row and no FROM, such as the search around the fix and the open cases near it).

    Its one row: the case and digest of the key's earlier use (NULL where it is new), the new case's id (where
    the key is new and the user may report; NULL otherwise), the default calendar's version, then the columns
    of ``reads``. ``by_token``: the user is a bearer token's (parameters of ``BY_TOKEN``), checked in the same
    statement: the user's row comes first, and there is no row at all for an unknown or expired token;
    otherwise the user is ``%(user)s`` and ``%(may_report)s`` says whether they may."""
    more = "".join(f", {read.removeprefix('SELECT ')}" for read in reads)
    if by_token:
        return f"""WITH who AS ({BY_TOKEN})
SELECT who.*, k.case_id, k.request_hash,
  CASE WHEN k.case_id IS NULL AND who.role = ANY(%(roles)s) THEN {_NEW_ID} END, {_CALENDAR_VERSION}{more}
FROM who {_EARLIER}"""
    return f"""SELECT k.case_id, k.request_hash,
  CASE WHEN k.case_id IS NULL AND %(may_report)s THEN {_NEW_ID} END, {_CALENDAR_VERSION}{more}
FROM (SELECT CAST(%(user)s AS integer) AS id) AS who {_EARLIER}"""


def _first_statement(user: CurrentUser | BearerToken, key: str, reads: list[tuple[str, dict]]) -> tuple[str, dict]:
    """:func:`_first_sql` with its parameters (those of ``reads`` share only the ones of equal value)."""
    if isinstance(user, BearerToken):
        params = {"idempotency_key": key} | token_query(user.token)[1] | {"roles": list(REPORTERS)}
    else:
        params = {"idempotency_key": key, "user": user.id, "may_report": user.role in REPORTERS}
    for _, more in reads:
        assert all(params[k] == v for k, v in more.items() if k in params), "the reads' parameters disagree"
        params |= more
    return _first_sql(isinstance(user, BearerToken), *(sql for sql, _ in reads)), params


def _file_case(claim: bool = False, photos: bool = False) -> str:
    """Insert a case (as a JSON record, with its point) and its first event (likewise) in one statement,
    and read the proposed department's name for the receipt.

    Two JSON parameters cost a fraction of sixty typed ones; the event refers to the case inserted by the
    same statement, which is fine: the foreign key is checked at the statement's end. ``json`` (text) rather
    than ``jsonb``, and without its null members: PostgreSQL then reads each value straight from the text
    instead of building a ``jsonb`` of the whole record first (≈75 µs of its CPU instead of ≈170 for a case).

    ``claim``: a report's, which first claims its key (parameters ``user``, ``idempotency_key``, ``digest``,
    ``case_id``) and, with ``photos``, inserts its photos (``photos``, a JSON array of records); where the key
    is taken (a copy of the report filed meanwhile) nothing is inserted and there is no row."""
    case, event, photo = ", ".join(CASE_FIELDS), ", ".join(EVENT_FIELDS), ", ".join(PHOTO_FIELDS)
    claimed = "\nWHERE EXISTS (SELECT FROM claimed)" if claim else ""
    first = """
claimed AS (
  INSERT INTO idempotency_key (user_id, key, request_hash, case_id)
  VALUES (%(user)s, %(idempotency_key)s, %(digest)s, %(case_id)s)
  ON CONFLICT DO NOTHING RETURNING case_id),""" if claim else ""
    if photos:
        first += f"""
photos AS (
  INSERT INTO photo ({photo})
  SELECT {photo} FROM json_populate_recordset(NULL::photo, CAST(%(photos)s AS json)){claimed}
  ON CONFLICT DO NOTHING),"""
    return f"""
WITH {first}
new_case AS (
  INSERT INTO case_file ({case}, geom)
  SELECT {case}, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), {STORAGE_SRID})
  FROM json_populate_record(NULL::case_file, CAST(%(case)s AS json)){claimed})
INSERT INTO case_event ({event})
SELECT {event} FROM json_populate_record(NULL::case_event, CAST(%(event)s AS json)){claimed}
RETURNING (SELECT name FROM department WHERE code = %(department)s)"""


#: the columns a stored photo's row is given (``uploaded_at`` is the database's)
PHOTO_FIELDS = tuple(c.key for c in Photo.__table__.c if c.key != "uploaded_at")
FILE_CASE = _file_case()
#: a report's filing, without photos and with them (a report without any spares PostgreSQL the photos' table)
FILE_REPORT = {False: _file_case(claim=True), True: _file_case(claim=True, photos=True)}
SAVE_PHOTO = insert(Photo.__table__).on_conflict_do_nothing()
EARLIER = "SELECT case_id, request_hash FROM idempotency_key WHERE user_id = %(user)s AND key = %(idempotency_key)s"


class _KeyTaken(Exception):
    """The report's key was claimed between its first statement and its filing (a copy racing it)."""


@dataclass
class Upload:
    filename: str
    data: bytes


@dataclass
class Filed:
    case: CaseFile
    replayed: bool
    #: read along with the filing, so that the receipt need not read them again: department names by code,
    #: and the number of the case this one was merged into
    department_names: dict[str, str | None] = field(default_factory=dict)
    merged_into: str | None = None


def request_hash(report: ReportInput, uploads: list[Upload]) -> str:
    body = report.model_dump(mode="json") | {"photos": [hashlib.sha256(u.data).hexdigest() for u in uploads]}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def submit_report(*, session: Session, user: CurrentUser | BearerToken, report: ReportInput, uploads: list[Upload],
                  key: str, photo_dir: Path, photo_max_bytes: int, now: datetime | None = None,
                  connection: Connection | None = None) -> Filed:
    """File the report as a case (or return the case an earlier request with the same ``key`` filed).

    ``user`` may be the request's bearer token: it is then checked in the first round trip to the database,
    together with the key's lookup and the searches around the fix (the features near it, open cases of its
    class), which every new report needs. A report is refused for the first of these reasons: not logged in,
    not allowed to report, its key used for another report, a bad time, a bad fix or class.

    ``connection``: a psycopg connection in autocommit (a server's :class:`~gridmap.db.engine.HeldConnection`)
    to send the report's two statements on, each its own transaction: the second files it, all or nothing, and
    nothing is left to commit. Without it they run in ``session``'s transaction, which the caller commits.
    ``session`` serves the rest either way (a retry's case, a reload of the city or the calendar)."""
    now = now or datetime.now(timezone.utc)
    digest = request_hash(report, uploads)
    try:
        fix, unroutable = fix_of(x=report.x, y=report.y, crs=report.crs, accuracy=report.accuracy,
                                 class_code=report.class_code, case_type=report.case_type,
                                 component_id=report.component_id), None
    except BadReport as error:  # raised below, in its turn
        fix, unroutable = None, error
    reads = [] if fix is None else [
        fix_query(session, fix), duplicates_query(lon=fix.lon, lat=fix.lat, class_code=report.class_code[-4:], now=now)]
    first = _first_statement(user, key, reads)
    (rows,) = fetch_together(session, [first]) if connection is None else [connection.execute(*first).fetchall()]
    if isinstance(user, BearerToken):  # the user's row first, or no row
        user = token_user(rows)
        rows = [rows[0][USER_COLUMNS:]]
    require_role(user, REPORTERS, "reporting")
    earlier, earlier_digest, case_id, calendar_stamp, *found = rows[0]
    if earlier is not None:
        return _replayed(session, key, digest, earlier_digest, earlier)
    _check_time(report, now)
    if report.self_disposed and not uploads:
        raise BadCaseInput("a report closed on the spot (self_disposed) needs a photo of the result")
    if unroutable is not None:
        raise unroutable
    decision = decide_fix(session, fix, tuple(found[:-1]))
    photos = [store_photo(u.data, directory=photo_dir, filename=u.filename, max_bytes=photo_max_bytes)
              for u in uploads]
    calendar = get_calendar(session=session, stamp=calendar_stamp)
    claim = {"user": user.id, "idempotency_key": key, "digest": digest, "case_id": case_id}
    if photos:
        claim["photos"] = orjson.dumps(_photo_rows(photos, user, calendar.timezone)).decode()
    try:
        return _open(session, decision, report, user, now, photos, calendar, None, case_id, near_cases=found[-1],
                     claim=claim, connection=connection)
    except _KeyTaken:  # a copy of this report, filed meanwhile
        earlier, earlier_digest = (connection or driver_connection(session)).execute(EARLIER, claim).fetchone()
        return _replayed(session, key, digest, earlier_digest, earlier)


def _replayed(session: Session, key: str, digest: str, earlier_digest: str, case_id: int) -> Filed:
    """The case filed before with ``key``, if the report is the same (its ``digest``); else the refusal."""
    if earlier_digest != digest:
        raise IdempotencyConflict(f"Idempotency-Key {key!r} was used for a different report: use a new key "
                                  "for a new report")
    return Filed(session.get(CaseFile, case_id), replayed=True)


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
    if photos:
        session.execute(SAVE_PHOTO, _photo_rows(photos, user, zone))


def _photo_rows(photos: list[StoredPhoto], user: CurrentUser, zone: ZoneInfo) -> list[dict]:
    return [dict(sha256=p.sha256, media_type=p.media_type, size=p.size, width=p.width, height=p.height,
                 taken_at=local_time(p.taken_at, zone), lon=p.lon, lat=p.lat, uploaded_by=user.id) for p in photos]


def open_case(session: Session, decision: dict, report: ReportInput, user: CurrentUser, now: datetime,
              photos: list[StoredPhoto], calendar: Calendar, source: str | None = None,
              case_id: int | None = None) -> CaseFile:
    """Insert the case of a routed report, start its clock, propose duplicates and record the report event."""
    return _open(session, decision, report, user, now, photos, calendar, source, case_id).case


def _open(session: Session, decision: dict, report: ReportInput, user: CurrentUser, now: datetime,
          photos: list[StoredPhoto], calendar: Calendar, source: str | None, case_id: int | None,
          near_cases: str | None = None, claim: dict | None = None, connection: Connection | None = None) -> Filed:
    """:func:`open_case`, with what the receipt needs besides the case; ``near_cases``: what the duplicates'
    search found, if the caller has run it (:func:`duplicates_query`); ``claim`` and ``connection``: a report's
    (see :func:`_insert`)."""
    source = source or ("self_disposal" if report.self_disposed else "inspector")
    case = _new_case(session, decision, report, user, now, photos, calendar, source, case_id)
    step = Step(session, case, user, ActionRequest(version=1, lon=decision["lon"], lat=decision["lat"],
                                                   accuracy=report.accuracy, note=report.description,
                                                   photos=[p.sha256 for p in photos]),
                calendar, now, {"evidence": decision["evidence"], "source": source})
    # only an inspector's own repeat merges at once: hotline calls entered by one acceptor are different callers
    reporter = case.reporter_id if source == "inspector" else None
    proposals, repeat = (duplicates_found(near_cases, reporter_id=reporter, now=now) if near_cases is not None else
                         find_duplicates(session, lon=decision["lon"], lat=decision["lat"], class_code=case.class_code,
                                         reporter_id=reporter, now=now))
    case.duplicate_candidates = proposals
    if report.self_disposed:
        case.status, case.closed_at, case.close_kind, case.handled_at = "closed", now, "self", now
    elif repeat is not None:
        case.status, case.merged_into_id = "merged", repeat[0]
        step.data.update(auto_merged_into=repeat[1])
    deadlines.start_stage(case, step.calendar, now) if case.status == "reported" else None
    event = record(step, "self_dispose" if report.self_disposed else "report", None, add=False)
    name = _insert(session, case, event, decision["lon"], decision["lat"], claim, connection)
    names = {case.proposed_department: name} if case.proposed_department else {}
    return Filed(case, replayed=False, department_names=names, merged_into=repeat[1] if case.merged_into_id else None)


def _new_case(session: Session, decision: dict, report: ReportInput, user: CurrentUser, now: datetime,
              photos: list[StoredPhoto], calendar: Calendar, source: str, case_id: int | None) -> CaseFile:
    """The case as it is reported, every column set (the database's defaults too), not yet in the session."""
    case_id = case_id or session.scalar(select(func.nextval("case_file_id_seq")))
    values = dict.fromkeys(CASE_FIELDS) | {k: decision[k] for k in DECIDED} | dict(
        id=case_id, number=f"{now.astimezone(calendar.timezone):%Y%m%d}{case_id:06d}", source=source,
        status="reported", version=1, case_type=decision["case_type"], class_code=report.class_code[-4:],
        description=report.description, address=report.address, reporter_id=user.id, reported_at=now,
        captured_at=report.captured_at, reported_x=report.x, reported_y=report.y, reported_crs=report.crs,
        accuracy_m=report.accuracy, proposed_department=decision["department"], duplicate_candidates=[],
        disposal_used_min=0.0, rework_count=0, return_count=0,
        flags=photo_flags(photos, decision["lon"], decision["lat"], report.accuracy, report.captured_at,
                          calendar.timezone))
    # all columns at once, as a load from the database sets them: the constructor would set each of the sixty
    # through the attribute events, at six times the cost (later changes still go through them)
    case = CaseFile.__mapper__.class_manager.new_instance()
    case.__dict__.update(values)
    return case


def _insert(session: Session, case: CaseFile, event: CaseEvent, lon: float, lat: float, claim: dict | None = None,
            connection: Connection | None = None) -> str | None:
    """Insert the case and its event, then put the case in the session as if loaded from the database (its
    geometry and ``updated_at`` are loaded when first used); return the proposed department's name.

    ``claim``: a report's key and photos (the parameters of :data:`FILE_REPORT`), claimed and inserted in the same
    statement, on ``connection`` if given; raises :class:`_KeyTaken`, having inserted nothing, if the key is.
    A case filed on ``connection`` stays out of the session, whose transaction never saw it: a plain object
    of the columns as filed (its geometry and ``updated_at`` read None)."""
    params = {"case": _record(case, CASE_FIELDS), "event": _record(event, EVENT_FIELDS), "lon": lon, "lat": lat,
              "department": case.proposed_department}
    if claim is None:
        row = driver_connection(session).execute(FILE_CASE, params).fetchone()
    else:
        sql = FILE_REPORT["photos" in claim]
        row = (connection or driver_connection(session)).execute(sql, params | claim).fetchone()
        if row is None:
            raise _KeyTaken(claim["idempotency_key"])
    if connection is None:
        make_transient_to_detached(case)
        session.add(case)
    return row[0]


def _record(row: CaseFile | CaseEvent, fields: tuple[str, ...]) -> str:
    """The row's ``fields`` as a JSON object for ``json_populate_record``, which sets a missing one to null."""
    values = row.__dict__  # what was set, as set (an attribute never set reads None: left out like one)
    return orjson.dumps({k: values[k] for k in fields if values.get(k) is not None}, default=_exact).decode()


def _exact(value):
    """JSON for what orjson does not know: decimals as their digits."""
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} {value!r} cannot go into a JSON record")
