"""The case loop's local numbers: stage limits, duplicate radii and windows, flags (DOMAIN.md §6).

Stage limits are working time on the city's calendar. The disposal limit is not here: it comes from the
catalogue (class × area class) and is counted from dispatch.
"""

from __future__ import annotations

from datetime import timedelta

#: how long each waiting stage may take, in working minutes (核实 / 核查 30 min as DOMAIN.md §6 says)
STAGE_LIMIT_MIN = {
    "reported": 10,  # 受理: the acceptor takes the report in
    "verifying": 30,  # 核实: an inspector confirms on site
    "accepted": 10,  # 立案: the shift lead files it
    "filed": 10,  # 派遣: the dispatcher sends it
    "returned": 30,  # 回退: the dispatcher re-dispatches
    "handled": 30,  # 核查: an inspector checks on site
    "checked": 30,  # 结案: the shift lead closes
}
#: traffic light: yellow from this share of the limit, red past the limit
WARN_SHARE = 0.8

#: open cases of the same class within this distance are proposed as duplicates (by class, else default)
DUPLICATE_RADIUS_M = {"default": 50.0, "0101": 30.0, "0104": 100.0, "0108": 100.0}
DUPLICATE_WINDOW = timedelta(days=7)
#: the same inspector, class and place within this time: merged without asking (a double tap, a resend)
SAME_REPORT_RADIUS_M = 15.0
SAME_REPORT_WINDOW = timedelta(minutes=30)

#: a photo whose EXIF position is farther than this from the fix (beyond its accuracy) is flagged
PHOTO_FAR_M = 200.0
#: a photo taken this long before or after the reported capture time is flagged
PHOTO_TIME_GAP = timedelta(hours=2)
#: a captured time this far in the future is refused (phone clocks drift a little)
FUTURE_SLACK = timedelta(minutes=5)


def duplicate_radius(class_code: str) -> float:
    return DUPLICATE_RADIUS_M.get(class_code, DUPLICATE_RADIUS_M["default"])
