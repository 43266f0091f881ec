"""Hotline calls (12319/12345) without GPS: the acceptor places the problem on the map, or names the road
and, when the caller can read one out, the number of a component nearby; then it is routed like any report."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.calendar.service import get_calendar
from gridmap.cases.access import require_role
from gridmap.cases.exceptions import BadCaseInput
from gridmap.cases.reports import Filed, open_case
from gridmap.cases.schemas import HotlineInput, ReportInput
from gridmap.routing.service import assign_one
from gridmap.users.service import CurrentUser

#: a component named by the caller must stand this close to the named road
COMPONENT_ON_ROAD_M = 60.0

COMPONENT_AT = text("""
SELECT ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat,
       (SELECT min(ST_Distance(r.geom::geography, c.geom::geography)) FROM road r
        WHERE r.name = :road AND r.geom && ST_Expand(c.geom, 0.01)) AS road_m
FROM component c WHERE c.code = :code
""")
# the middle of the named road: the point of the road nearest its centre; accuracy = half its extent
ROAD_MIDDLE = text("""
WITH road AS (SELECT ST_LineMerge(ST_Union(geom)) AS geom FROM road WHERE name = :road)
SELECT ST_X(p) AS lon, ST_Y(p) AS lat,
       ST_Length(ST_Boundary(ST_Envelope(geom))::geography) / 8 AS accuracy_m
FROM road, ST_ClosestPoint(road.geom, ST_Centroid(road.geom)) AS p WHERE road.geom IS NOT NULL
""")


def locate(session: Session, call: HotlineInput) -> tuple[float, float, float | None, str]:
    """(lon, lat, accuracy m, how) of a hotline call."""
    if call.lon is not None and call.lat is not None:
        return call.lon, call.lat, None, "placed on the map by the acceptor"
    if call.component_id:
        row = session.execute(COMPONENT_AT, {"code": call.component_id, "road": call.road_name}).first()
        if row is None:
            raise BadCaseInput(f"component_id: no component {call.component_id}")
        if call.road_name and (row.road_m is None or row.road_m > COMPONENT_ON_ROAD_M):
            raise BadCaseInput(f"component {call.component_id} is not on {call.road_name} (more than "
                               f"{COMPONENT_ON_ROAD_M:.0f} m from it): check the number or the road")
        return row.lon, row.lat, None, f"at component {call.component_id}"
    if call.road_name:
        row = session.execute(ROAD_MIDDLE, {"road": call.road_name}).first()
        if row is None:
            raise BadCaseInput(f"road_name: no road named {call.road_name!r}")
        return row.lon, row.lat, float(row.accuracy_m), f"middle of {call.road_name}"
    raise BadCaseInput("place the call: give lon and lat, or road_name (and component_id if the caller has one)")


def submit_hotline(*, session: Session, user: CurrentUser, call: HotlineInput, now: datetime | None = None) -> Filed:
    """File a hotline call as a case awaiting acceptance."""
    require_role(user, ("acceptor",), "entering hotline calls")
    now = now or datetime.now(timezone.utc)
    lon, lat, accuracy, how = locate(session, call)
    report = ReportInput(x=lon, y=lat, crs="wgs84", accuracy=accuracy, class_code=call.class_code,
                         case_type=call.case_type, component_id=call.component_id,
                         description=call.description, address=f"{how}; caller: {call.caller or 'anonymous'}")
    decision = assign_one(session=session, x=lon, y=lat, crs="wgs84", accuracy=accuracy, class_code=call.class_code,
                          case_type=call.case_type, component_id=call.component_id)
    case = open_case(session, decision, report, user, now, [], get_calendar(session=session), source="hotline")
    return Filed(case, replayed=False)
