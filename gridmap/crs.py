"""Coordinate systems: the storage CRS, the city's metric CRS, and the Gauss-Krüger zone rule."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from pyproj import CRS, Transformer
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


@lru_cache(maxsize=32)
def transformer(source, target) -> Transformer:
    """A cached lon/lat-ordered transformer (building one costs milliseconds)."""
    return Transformer.from_crs(source, target, always_xy=True)


# -- phone coordinate systems -----------------------------------------------------------------------
# GCJ-02 (AMap, Tencent, WeChat) is WGS84 shifted by a published obfuscation; BD-09 (Baidu) shifts
# GCJ-02 again. PROJ does not know them (PROJ issue 982), so they are computed here. The shift applies
# inside the rectangle the phone SDKs use for "China" (which includes Taiwan, Hong Kong and Macau);
# outside it GCJ-02 and BD-09 coordinates are WGS84 already.

_A = 6378245.0  # Krasovsky 1940 semi-major axis used by GCJ-02
_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0
PHONE_SYSTEMS = ("wgs84", "cgcs2000", "gcj02", "bd09")


class UnknownCRS(ValueError):
    """A coordinate system gridmap does not know."""


class ImpossibleCoordinate(ValueError):
    """Coordinates that cannot be a place on Earth in the stated system."""


def in_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return (lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271)


def _delta(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = lon - 105.0, lat - 35.0
    common = (20 * np.sin(6 * x * np.pi) + 20 * np.sin(2 * x * np.pi)) * 2 / 3
    dlat = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x)) + common
    dlat += (20 * np.sin(y * np.pi) + 40 * np.sin(y / 3 * np.pi)) * 2 / 3
    dlat += (160 * np.sin(y / 12 * np.pi) + 320 * np.sin(y * np.pi / 30)) * 2 / 3
    dlon = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x)) + common
    dlon += (20 * np.sin(x * np.pi) + 40 * np.sin(x / 3 * np.pi)) * 2 / 3
    dlon += (150 * np.sin(x / 12 * np.pi) + 300 * np.sin(x / 30 * np.pi)) * 2 / 3
    rad = lat / 180 * np.pi
    magic = 1 - _EE * np.sin(rad) ** 2
    dlat = dlat * 180 / ((_A * (1 - _EE)) / (magic * np.sqrt(magic)) * np.pi)
    dlon = dlon * 180 / (_A / np.sqrt(magic) * np.cos(rad) * np.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    dlon, dlat = _delta(lon, lat)
    inside = in_china(lon, lat)
    return np.where(inside, lon + dlon, lon), np.where(inside, lat + dlat, lat)


def gcj02_to_bd09(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    inside = in_china(lon, lat)
    return np.where(inside, z * np.cos(theta) + 0.0065, lon), np.where(inside, z * np.sin(theta) + 0.006, lat)


def _invert(forward, lon, lat, tolerance: float = 1e-9, iterations: int = 30):
    """Solve forward(w) = (lon, lat) for w by fixed-point iteration; the shifts are smooth and small."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    wlon, wlat = lon.copy(), lat.copy()
    for _ in range(iterations):
        flon, flat = forward(wlon, wlat)
        elon, elat = flon - lon, flat - lat
        wlon, wlat = wlon - elon, wlat - elat
        if np.nanmax(np.abs(np.concatenate([np.ravel(elon), np.ravel(elat)])), initial=0.0) < tolerance:
            break
    return wlon, wlat


def gcj02_to_wgs84(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """Iterative inverse of :func:`wgs84_to_gcj02`, to 1e-9° (0.1 mm); plain subtraction leaves metres."""
    return _invert(wgs84_to_gcj02, lon, lat)


def bd09_to_wgs84(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    return _invert(lambda x, y: gcj02_to_bd09(*wgs84_to_gcj02(x, y)), lon, lat)


def to_wgs84(x, y, system: str) -> tuple[np.ndarray, np.ndarray]:
    """Normalise coordinates in ``system`` (``wgs84``, ``cgcs2000``, ``gcj02``, ``bd09`` or ``EPSG:nnnn``)
    to WGS84 longitude/latitude. Raises :class:`UnknownCRS` or :class:`ImpossibleCoordinate`."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    name = system.strip().lower()
    if not np.isfinite(x).all() or not np.isfinite(y).all():
        raise ImpossibleCoordinate("coordinates must be finite numbers")
    if name in PHONE_SYSTEMS or name in ("epsg:4326", "epsg:4490"):
        if (np.abs(x) > 180).any() or (np.abs(y) > 90).any():
            raise ImpossibleCoordinate(
                f"longitude must be within ±180 and latitude within ±90 in {system} (got x={x.tolist()}, y={y.tolist()}); "
                "are x and y, or the coordinate system, swapped?")
        if name == "gcj02":
            return gcj02_to_wgs84(x, y)
        if name == "bd09":
            return bd09_to_wgs84(x, y)
        return x, y  # CGCS2000 and WGS84 agree to centimetres
    if not name.startswith("epsg:"):
        raise UnknownCRS(f"unknown coordinate system {system!r}: use wgs84, cgcs2000, gcj02, bd09 or EPSG:nnnn")
    try:
        source = CRS.from_user_input(system.upper())
    except Exception:
        raise UnknownCRS(f"unknown coordinate system {system!r}: no such EPSG code") from None
    lon, lat = transformer(source, 4326).transform(x, y)
    if not (np.isfinite(lon).all() and np.isfinite(lat).all()):
        raise ImpossibleCoordinate(f"x={x.tolist()}, y={y.tolist()} are outside the area of {system}")
    return np.asarray(lon), np.asarray(lat)
