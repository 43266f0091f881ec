"""Warnings a case carries for the acceptor: its photos were taken far from the fix, or long before."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from pyproj import Geod

from gridmap.cases.photos import StoredPhoto
from gridmap.cases.policy import PHOTO_FAR_M, PHOTO_TIME_GAP

GEOD = Geod(ellps="WGS84")


def local_time(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    """EXIF times without an offset are the phone's local time: the city's zone is the best reading."""
    return moment.replace(tzinfo=zone) if moment is not None and moment.tzinfo is None else moment


def photo_flags(photos: list[StoredPhoto], lon: float, lat: float, accuracy: float | None,
                captured_at: datetime | None, zone: ZoneInfo) -> list[dict]:
    """One flag per photo whose EXIF position is farther from the fix than its accuracy allows, or whose
    EXIF time is far from the reported capture time. A photo without EXIF is not flagged (many apps strip it)."""
    flags = []
    for n, photo in enumerate(photos, start=1):
        if photo.lon is not None and photo.lat is not None:
            distance = GEOD.inv(lon, lat, photo.lon, photo.lat)[2]
            allowed = PHOTO_FAR_M + (accuracy or 0.0)
            if distance > allowed:
                flags.append({"kind": "photo_far", "photo": photo.sha256, "distance_m": round(distance),
                              "message": f"photo {n} was taken {distance:,.0f} m from the reported location "
                                         f"(more than {allowed:,.0f} m): check it shows this place"})
        taken = local_time(photo.taken_at, zone)
        if taken is not None and captured_at is not None and abs(taken - captured_at) > PHOTO_TIME_GAP:
            hours = abs(taken - captured_at).total_seconds() / 3600
            flags.append({"kind": "photo_time", "photo": photo.sha256, "hours": round(hours, 1),
                          "message": f"photo {n} was taken {hours:,.1f} h {'before' if taken < captured_at else 'after'}"
                                     " the report: it may be an old photo"})
    return flags
