"""Duplicate reports: open cases of the same class near a new one, proposed to the acceptor; the same
inspector's repeat of a recent report merged at once."""

from __future__ import annotations

from datetime import datetime

import orjson
from sqlalchemy.orm import Session

from gridmap.cases.policy import DUPLICATE_WINDOW, SAME_REPORT_RADIUS_M, SAME_REPORT_WINDOW, duplicate_radius
from gridmap.db.engine import driver_connection

# searched before the new case is inserted (it goes in with its event in one statement), around its point;
# the box test (degrees, generous) lets the spatial index cut the search; the geography test is exact
NEAR_OPEN_CASES = """
SELECT c.id, c.number, c.status, c.reporter_id, c.reported_at,
       round(ST_Distance(c.geom::geography, n.geom::geography)::numeric, 1)::float AS distance_m
FROM case_file c, (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326) AS geom) n
WHERE c.class_code = %(class_code)s
  AND c.status NOT IN ('closed', 'rejected', 'voided', 'merged')
  AND c.reported_at >= %(since)s
  AND c.geom && ST_Expand(n.geom, %(radius_m)s / 90000.0)
  AND ST_DWithin(c.geom::geography, n.geom::geography, %(radius_m)s)
ORDER BY distance_m, c.reported_at DESC
LIMIT 5
"""


#: the same as one column, one row: its rows as a JSON array (which a statement reading other things in the same
#: round trip can take as one of its columns)
NEAR_OPEN_CASES_JSON = f"""SELECT (SELECT coalesce(json_agg(n ORDER BY n.distance_m, n.reported_at DESC), '[]')::text
FROM ({NEAR_OPEN_CASES}) n)"""


def find_duplicates(session: Session, *, lon: float, lat: float, class_code: str, reporter_id: int | None,
                    now: datetime) -> tuple[list[dict], tuple[int, str] | None]:
    """Open cases of class ``class_code`` within the class's radius of (``lon``, ``lat``) and its window: as
    proposals for the acceptor, and the (id, number) of the one a new report merely repeats (same inspector,
    a few metres, minutes ago), if any."""
    sql, params = duplicates_query(lon=lon, lat=lat, class_code=class_code, now=now)
    (found,) = driver_connection(session).execute(sql, params).fetchone()
    return duplicates_found(found, reporter_id=reporter_id, now=now)


def duplicates_query(*, lon: float, lat: float, class_code: str, now: datetime) -> tuple[str, dict]:
    """The statement (driver SQL and parameters) of :func:`find_duplicates`, for a caller that sends it together
    with others: one row, one column, which :func:`duplicates_found` reads."""
    return NEAR_OPEN_CASES_JSON, {"lon": lon, "lat": lat, "class_code": class_code, "since": now - DUPLICATE_WINDOW,
                                  "radius_m": duplicate_radius(class_code)}


def duplicates_found(found: str, *, reporter_id: int | None,
                     now: datetime) -> tuple[list[dict], tuple[int, str] | None]:
    """:func:`find_duplicates`'s answer from the column of :func:`duplicates_query`."""
    rows = [(n["id"], n["number"], n["status"], n["reporter_id"], datetime.fromisoformat(n["reported_at"]),
             float(n["distance_m"])) for n in orjson.loads(found)]
    proposals = [{"number": number, "status": status, "distance_m": distance, "reported_at": at.isoformat()}
                 for _, number, status, _, at, distance in rows]
    repeat = next(((id_, number) for id_, number, _, reporter, at, distance in rows
                   if reporter_id is not None and reporter == reporter_id and distance <= SAME_REPORT_RADIUS_M
                   and at >= now - SAME_REPORT_WINDOW), None)
    return proposals, repeat
