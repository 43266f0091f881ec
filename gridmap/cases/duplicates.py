"""Duplicate reports: open cases of the same class near a new one, proposed to the acceptor; the same
inspector's repeat of a recent report merged at once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.cases.models import CaseFile
from gridmap.cases.policy import DUPLICATE_WINDOW, SAME_REPORT_RADIUS_M, SAME_REPORT_WINDOW, duplicate_radius

# the box test (degrees, generous) lets the spatial index cut the search; the geography test is exact
NEAR_OPEN_CASES = text("""
SELECT c.id, c.number, c.status, c.reporter_id, c.reported_at,
       round(ST_Distance(c.geom::geography, n.geom::geography)::numeric, 1)::float AS distance_m
FROM case_file c, case_file n
WHERE n.id = :case_id AND c.id <> n.id AND c.class_code = n.class_code
  AND c.status NOT IN ('closed', 'rejected', 'voided', 'merged')
  AND c.reported_at >= :since
  AND c.geom && ST_Expand(n.geom, :radius_m / 90000.0)
  AND ST_DWithin(c.geom::geography, n.geom::geography, :radius_m)
ORDER BY distance_m, c.reported_at DESC
LIMIT 5
""")


def find_duplicates(session: Session, case: CaseFile, now: datetime) -> tuple[list[dict], int | None]:
    """Open cases of the same class within the class's radius and window: as proposals for the acceptor,
    and the id of the one this report merely repeats (same inspector, a few metres, minutes ago), if any."""
    rows = session.execute(NEAR_OPEN_CASES, {"case_id": case.id, "since": now - DUPLICATE_WINDOW,
                                             "radius_m": duplicate_radius(case.class_code)}).all()
    proposals = [{"number": r.number, "status": r.status, "distance_m": r.distance_m,
                  "reported_at": r.reported_at.isoformat()} for r in rows]
    repeat = next((r.id for r in rows if case.reporter_id is not None and r.reporter_id == case.reporter_id
                   and r.distance_m <= SAME_REPORT_RADIUS_M and r.reported_at >= now - SAME_REPORT_WINDOW), None)
    return proposals, repeat
