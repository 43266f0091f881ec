"""Phone coordinate systems: GCJ-02 and BD-09 against published pairs, iterative inverses, bad input."""

import numpy as np
import pytest
from pyproj import Geod

from gridmap.crs import (
    ImpossibleCoordinate,
    UnknownCRS,
    bd09_to_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    to_wgs84,
    wgs84_to_gcj02,
)

GEOD = Geod(ellps="WGS84")


def metres(a, b) -> np.ndarray:
    return GEOD.inv(a[0], a[1], b[0], b[1])[2]


def test_published_conversion_pairs():
    # the pairs printed by wandergis/coordtransform's test for (116.404, 39.915), Beijing
    assert np.allclose(wgs84_to_gcj02(116.404, 39.915), (116.41024449916938, 39.91640428150164), atol=1e-12)
    assert np.allclose(gcj02_to_bd09(116.404, 39.915), (116.41036949371029, 39.92133699351021), atol=1e-12)
    # Beijing's published offset is about 555 m… here, for this point, it is several hundred metres
    assert 400 < metres((116.404, 39.915), (116.41024449916938, 39.91640428150164)) < 700


def test_inverses_are_sub_millimetre_where_subtraction_leaves_metres():
    rng = np.random.default_rng(7)
    lon, lat = rng.uniform(75, 134, 2000), rng.uniform(18, 53, 2000)
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert metres((lon, lat), back).max() < 0.001
    back = bd09_to_wgs84(*gcj02_to_bd09(*wgs84_to_gcj02(lon, lat)))
    assert metres((lon, lat), back).max() < 0.001
    # the one-step inverse that many libraries use is off by metres
    glon, glat = wgs84_to_gcj02(lon, lat)
    dlon, dlat = wgs84_to_gcj02(glon, glat)
    naive = (2 * glon - dlon, 2 * glat - dlat)
    assert metres((lon, lat), naive).max() > 1.0


def test_outside_china_nothing_is_shifted():
    assert np.allclose(to_wgs84(139.767, 35.681, "gcj02"), (139.767, 35.681))  # Tokyo
    assert np.allclose(to_wgs84(-0.1276, 51.5072, "bd09"), (-0.1276, 51.5072))  # London


def test_epsg_systems_and_cgcs2000():
    lon, lat = to_wgs84(305000, 2770000, "EPSG:3826")
    assert 121.5 < lon < 121.6 and 25.0 < lat < 25.1
    assert np.allclose(to_wgs84(121.5, 25.0, "cgcs2000"), (121.5, 25.0))


@pytest.mark.parametrize("x, y, system, error, words", [
    (121.5, 25.0, "mars", UnknownCRS, "unknown coordinate system"),
    (121.5, 25.0, "EPSG:999999", UnknownCRS, "no such EPSG"),
    (25.0, 121.5, "wgs84", ImpossibleCoordinate, "swapped"),
    (float("nan"), 25.0, "gcj02", ImpossibleCoordinate, "finite"),
])
def test_bad_coordinates_are_refused_with_a_reason(x, y, system, error, words):
    with pytest.raises(error, match=words):
        to_wgs84(x, y, system)
