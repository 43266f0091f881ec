"""Why a report cannot be routed; each message says what to fix."""


class BadReport(ValueError):
    """Unknown class or coordinate system, impossible coordinates, an unknown or mismatched component."""


class UnknownClass(BadReport):
    """The class is not in the catalogue, or names both a component and an event class."""


class OutsideServiceArea(BadReport):
    """The fix lies outside the city's territory."""
