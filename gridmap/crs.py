"""Coordinate systems: the storage CRS, the city's metric CRS, and the Gauss-Krüger zone rule."""

from __future__ import annotations

from pyproj import CRS
from sqlalchemy.orm import Session

from gridmap.db.base import STORAGE_SRID


def gauss_kruger_epsg(longitude: float) -> int:
    """EPSG code of the CGCS2000 3° Gauss-Krüger zone (central meridian in the code) for ``longitude``.

    EPSG = 4534 + (CM − 75) / 3 for central meridians 75°E…135°E (EPSG:4534–4554), e.g. 114°E → 4547.
    """
    central = 3 * round(longitude / 3)
    if not 75 <= central <= 135:
        raise ValueError(f"longitude {longitude} is outside the CGCS2000 3° zones (73.5°E–136.5°E)")
    return 4534 + (central - 75) // 3


def metric_crs(*, session: Session) -> CRS:
    """The city's projected CRS for areas and distances in metres (``city.metric_srid``)."""
    from gridmap.territory.service import get_city

    city = get_city(session=session)
    if city is None:
        raise LookupError("no city record: load a city first (gridmap demo load)")
    return CRS.from_epsg(city.metric_srid)


STORAGE_CRS = CRS.from_epsg(STORAGE_SRID)
