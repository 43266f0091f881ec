"""The words a routing decision explains itself with, shared by the column path
(:mod:`gridmap.routing.decide`) and the single-fix path (:mod:`gridmap.routing.single`), which must
agree on every reason to the letter."""

from __future__ import annotations

OUTSIDE = "outside the city's territory (no unit grid contains the fix)"
CONTAINS = "contains the fix"
#: the names of the two decisions no rule of the city makes
LOCALITY_FALLBACK = "属地兜底: no rule applies"


def owner_first(role: str) -> str:
    """A component case given to the component's maintainer or owner (先属主)."""
    return f"先属主: {role}"


def shared_edge(codes: list[str]) -> str:
    return f"the fix lies on the shared edge of {sorted(codes)}: the lowest code wins"


def other_body(accuracy: float, code: str, distance: float, theirs, own, count: int) -> str:
    """The accuracy circle reaches ``count`` grids of other responsible bodies, the nearest ``code``."""
    more = f" (and {count - 1} more such grids)" if count > 1 else ""
    return (f"the accuracy circle ({accuracy:.0f} m) reaches unit grid {code} ({distance:.1f} m away), whose "
            f"responsible body is {theirs}, not {own}{more}")


def road_tie(a: str, grade_a, distance_a: float, b: str, grade_b, distance_b: float) -> str:
    return (f"two roads are nearly equally close: {a} ({grade_a}, {distance_a:.1f} m) and "
            f"{b} ({grade_b}, {distance_b:.1f} m)")


def component_tie(a: str, distance_a: float, b: str, distance_b: float) -> str:
    return f"two components are nearly equally close: {a} ({distance_a:.1f} m) and {b} ({distance_b:.1f} m)"


def poor_accuracy(accuracy: float, kind: str, limit: float) -> str:
    """``kind``: component, road_event or event."""
    return f"accuracy {accuracy:.0f} m is too poor for a {kind.replace('_', '-')} case (at most {limit:.0f} m)"


def picked_far(code: str, distance: float) -> str:
    return f"the picked component {code} is {distance:.0f} m from the fix"


def picked_missing(code: str) -> str:
    return f"component {code} does not exist (or was removed)"


def picked_of_other_class(code: str, its_class, wanted: str) -> str:
    return f"component {code} is of class {its_class}, not {wanted}"
