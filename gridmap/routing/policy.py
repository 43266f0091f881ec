"""The numbers behind a routing decision, in one place, each with its reason.

Road tolerance by management grade: how far from a road's centreline a report still concerns that
road. Centrelines run down the middle of the carriageway, so the tolerance is about half the width of
such a road plus a phone's typical error; FixMyStreet uses 10 m (15 m for motorways) for the same job.
"""

from __future__ import annotations

ROAD_TOLERANCE_M = {
    "special": 30.0,  # expressways and arterials with 6–8 lanes and frontage roads
    "grade1": 25.0,
    "grade2": 20.0,
    "grade3": 15.0,
    "grade4": 10.0,
    "lane": 8.0,
}
DEFAULT_ROAD_TOLERANCE_M = 10.0  # a grade not in the table (a city's own grades)
MAX_ROAD_TOLERANCE_M = max(ROAD_TOLERANCE_M.values())

#: a fix this close to a grid counts as on it: on a shared edge, the lowest grid code wins
ON_EDGE_M = 0.001

#: a component is looked for this far from the fix, or as far as the fix's accuracy, if that is larger
SNAP_RADIUS_M = 50.0

#: two candidates are "nearly equally close" when their distances differ by less than this …
NEAR_TIE_M = 2.0
#: … or by less than this share of the nearer distance
NEAR_TIE_SHARE = 0.2

#: the poorest accuracy still good enough: a component must be told apart from its neighbours; a
#: road-bound event placed on the right road; any other event placed in the right unit grid
MAX_ACCURACY_M = {"component": 20.0, "road_event": 30.0, "event": 50.0}


def accuracy_kind(case_type: str, road_bound: bool) -> str:
    """Which of :data:`MAX_ACCURACY_M` a case's fix must meet."""
    return "component" if case_type == "component" else "road_event" if road_bound else "event"

#: an inspector's picked component farther than this from the fix is flagged
PICKED_COMPONENT_FAR_M = 100.0


def road_tolerance(grade: str | None) -> float:
    return ROAD_TOLERANCE_M.get(grade, DEFAULT_ROAD_TOLERANCE_M)


def nearly_equal(nearest: float, second: float) -> bool:
    return second - nearest <= max(NEAR_TIE_M, NEAR_TIE_SHARE * nearest)
