"""Reading cases: one with its history, pages of them with filters, overdue counts — each limited to
what the user may see, each case with its traffic light and the actions the user may take."""

from __future__ import annotations

from datetime import datetime, timezone

from geoalchemy2.shape import to_shape
from sqlalchemy import and_, case as when, func, select
from sqlalchemy.orm import Session, aliased

from gridmap.cases import deadlines
from gridmap.cases.access import CASE_READERS, duty_grids, require_role, visible
from gridmap.cases.exceptions import BadCaseInput, CaseNotFound
from gridmap.cases.models import FINAL, CaseEvent, CaseFile
from gridmap.cases.stats import period
from gridmap.cases.schemas import CaseOut, CasePage, CaseQuery, EventOut
from gridmap.cases.workflow import ACTIONS, STATUS_TERMS, actions_for
from gridmap.catalogue.models import ComponentClass, EventClass
from gridmap.users.models import AppUser
from gridmap.users.service import CurrentUser

SORTS = {"reported_at": CaseFile.reported_at, "deadline": CaseFile.stage_deadline, "number": CaseFile.number,
         "status": CaseFile.status, "class": CaseFile.class_code, "department": CaseFile.department}
GROUPS = {"department": CaseFile.department, "unit_grid": CaseFile.unit_grid, "class": CaseFile.class_code,
          "district": CaseFile.district, "street": CaseFile.street}


def light_of(now: datetime):
    """The traffic light as SQL, so that lists can be filtered by it."""
    return when((CaseFile.stage_deadline.is_(None), None), (CaseFile.stage_deadline < now, "red"),
                (CaseFile.stage_warn_at <= now, "yellow"), else_="green")


def get_case(*, session: Session, user: CurrentUser, number: str, now: datetime | None = None) -> CaseOut:
    """One case with its evidence and events; :class:`CaseNotFound` if it does not exist or is not the user's."""
    require_role(user, CASE_READERS, "reading cases")
    case = session.scalar(select(CaseFile).where(CaseFile.number == number, visible(session, user)))
    if case is None:
        raise CaseNotFound(f"no case {number} (or it is not one you may see)")
    out = to_out(session, [case], user, now)[0]
    actors = {u.id: u.name for u in session.execute(select(AppUser.id, AppUser.name))}
    events = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id))
    out.evidence = case.evidence
    out.events = [EventOut(action=e.action, term=ACTIONS[e.action].term if e.action in ACTIONS else
                           {"report": "上报", "self_dispose": "自行处置"}.get(e.action, e.action),
                           from_status=e.from_status, to_status=e.to_status, actor=actors.get(e.actor_id),
                           actor_role=e.actor_role, at=e.at, lon=e.lon, lat=e.lat, accuracy_m=e.accuracy_m,
                           note=e.note, photos=e.photos, data=e.data) for e in events]
    return out


def list_cases(*, session: Session, user: CurrentUser, query: CaseQuery | None = None, sort: str = "reported_at",
               descending: bool = True, page: int = 1, size: int = 50, now: datetime | None = None,
               **filters) -> CasePage:
    """A page of the cases the user may see, filtered (``query``, or its fields as keywords) and sorted."""
    require_role(user, CASE_READERS, "reading cases")
    now = now or datetime.now(timezone.utc)
    if sort not in SORTS:
        raise BadCaseInput(f"unknown sort {sort!r}: use one of {', '.join(SORTS)}")
    where = and_(*conditions(session, user, query or CaseQuery(**filters), now))
    total = session.scalar(select(func.count()).select_from(CaseFile).where(where))
    order = SORTS[sort].desc().nulls_last() if descending else SORTS[sort].asc().nulls_last()
    rows = session.scalars(select(CaseFile).where(where).order_by(order, CaseFile.id.desc())
                           .offset((page - 1) * size).limit(size)).all()
    return CasePage(total=total, page=page, size=size, items=to_out(session, rows, user, now))


def conditions(session: Session, user: CurrentUser, query: CaseQuery, now: datetime) -> list:
    """The WHERE conditions of ``query`` for ``user`` (who sees what included)."""
    where = [visible(session, user)]
    if query.status:
        where.append(CaseFile.status.in_(query.status))
    if query.open_only or query.overdue or query.light:
        where.append(CaseFile.status.not_in(FINAL))
    if query.overdue:
        where.append(CaseFile.stage_deadline < now)
    if query.light:
        where.append(light_of(now) == query.light)
    for column in ("department", "unit_grid", "class_code", "district", "street"):
        if getattr(query, column):
            where.append(getattr(CaseFile, column) == getattr(query, column))
    return where + period(session, query.date_from, query.date_to)


MAP_LIMIT = 20_000


def cases_geojson(*, session: Session, user: CurrentUser, query: CaseQuery, now: datetime | None = None) -> dict:
    """The cases of ``query`` as a GeoJSON FeatureCollection (WGS84) for the map, newest first; each with its
    light and the actions the user may take. At most :data:`MAP_LIMIT` (``truncated`` says when cut)."""
    require_role(user, CASE_READERS, "reading cases")
    now = now or datetime.now(timezone.utc)
    rows = session.scalars(select(CaseFile).where(and_(*conditions(session, user, query, now)))
                           .order_by(CaseFile.reported_at.desc()).limit(MAP_LIMIT + 1)).all()
    features = [{"type": "Feature", "id": c.number,
                 "geometry": {"type": "Point", "coordinates": [round(c.lon, 7), round(c.lat, 7)]},
                 "properties": c.model_dump(mode="json", include=MAP_FIELDS)}
                for c in to_out(session, rows[:MAP_LIMIT], user, now)]
    return {"type": "FeatureCollection", "features": features, "truncated": len(rows) > MAP_LIMIT,
            "as_of": now.isoformat()}


MAP_FIELDS = {"number", "version", "status", "status_term", "case_type", "class_code", "class_name", "description",
              "reported_at", "unit_grid", "department", "proposed_department", "ambiguous", "ambiguity_reason",
              "light", "stage_deadline", "disposal_deadline", "photos", "actions", "source"}


def overdue_counts(*, session: Session, user: CurrentUser, by: str, now: datetime | None = None) -> list[dict]:
    """Open cases past their stage deadline, counted by department, unit grid, class, district or street."""
    require_role(user, CASE_READERS, "reading cases")
    if by not in GROUPS:
        raise BadCaseInput(f"unknown grouping {by!r}: use one of {', '.join(GROUPS)}")
    now = now or datetime.now(timezone.utc)
    key = GROUPS[by]
    rows = session.execute(select(key, func.count()).where(visible(session, user), CaseFile.status.not_in(FINAL),
                                                           CaseFile.stage_deadline < now)
                           .group_by(key).order_by(func.count().desc(), key))
    return [{by: value, "overdue": count} for value, count in rows]


def to_out(session: Session, cases: list[CaseFile], user: CurrentUser, now: datetime | None) -> list[CaseOut]:
    now = now or datetime.now(timezone.utc)
    names = _class_names(session, {c.class_code for c in cases})
    merged = aliased(CaseFile)
    targets = dict(session.execute(select(merged.id, merged.number).where(
        merged.id.in_({c.merged_into_id for c in cases if c.merged_into_id}))).all())
    photos = _photos(session, [c.id for c in cases])
    mine = set(duty_grids(session, user)) if user.role == "inspector" else set()
    out = []
    for c in cases:
        point = to_shape(c.geom)
        allowed = actions_for(user.role, c.status)
        if (user.role == "department" and c.department != user.department) or \
                (user.role == "inspector" and c.duty_grid not in mine):
            allowed = []
        out.append(CaseOut(
            number=c.number, version=c.version, status=c.status, status_term=STATUS_TERMS[c.status][0],
            source=c.source, case_type=c.case_type, class_code=c.class_code, class_name=names.get((c.case_type, c.class_code)),
            description=c.description, address=c.address, lon=point.x, lat=point.y, accuracy_m=c.accuracy_m,
            reported_at=c.reported_at, captured_at=c.captured_at, unit_grid=c.unit_grid, duty_grid=c.duty_grid,
            community=c.community, street=c.street, district=c.district, area_class=c.area_class,
            road_id=c.road_id, component_id=c.component_id, proposed_department=c.proposed_department,
            department=c.department, rule=c.rule, ambiguous=c.ambiguous, ambiguity_reason=c.ambiguity_reason,
            flags=c.flags, duplicate_candidates=c.duplicate_candidates, merged_into=targets.get(c.merged_into_id),
            time_limit=float(c.time_limit) if c.time_limit is not None else None, time_limit_unit=c.time_limit_unit,
            stage_deadline=c.stage_deadline, light=deadlines.light(c, now), disposal_deadline=c.disposal_deadline,
            dispatched_at=c.dispatched_at, handled_at=c.handled_at, closed_at=c.closed_at, close_kind=c.close_kind,
            rework_count=c.rework_count, return_count=c.return_count, photos=photos.get(c.id, []), actions=allowed))
    return out


def _class_names(session: Session, codes: set[str]) -> dict[tuple[str, str], str]:
    names = {}
    for case_type, model in (("component", ComponentClass), ("event", EventClass)):
        names.update(((case_type, code), name)
                     for code, name in session.execute(select(model.code, model.name).where(model.code.in_(codes))))
    return names


def _photos(session: Session, case_ids: list[int]) -> dict[int, list[str]]:
    rows = session.execute(select(CaseEvent.case_id, func.unnest(CaseEvent.photos))
                           .where(CaseEvent.case_id.in_(case_ids)).order_by(CaseEvent.id))
    found: dict[int, list[str]] = {}
    for case_id, sha in rows:
        found.setdefault(case_id, []).append(sha)
    return found
