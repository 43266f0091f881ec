"""Unit grid generation on small hand-made cases: cul-de-sac, a community with a hole, a road on a boundary."""

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import LineString, Polygon, box

from gridmap.territory.generate import GridOptions, generate_cells

CRS = 3826  # any metric CRS will do for hand-made cases
OPTIONS = GridOptions()


def generate(communities: dict[str, shapely.Geometry], roads: list[LineString]) -> gpd.GeoDataFrame:
    frame = gpd.GeoDataFrame({"code": list(communities)}, geometry=list(communities.values()), crs=CRS)
    return generate_cells(frame, gpd.GeoSeries(roads, crs=CRS), OPTIONS)


def assert_tiles(cells: gpd.GeoDataFrame, code: str, shape: shapely.Geometry) -> None:
    mine = cells[cells["community_code"] == code].geometry.values
    union = shapely.union_all(mine)
    assert shapely.area(shapely.symmetric_difference(union, shape)) < 0.01
    assert abs(shapely.area(mine).sum() - shape.area) < 0.01  # no overlap
    assert shapely.is_valid(mine).all()


def interior_road_length(cells: gpd.GeoDataFrame, road: LineString) -> float:
    covered = shapely.union_all(cells.geometry.values)
    edges = shapely.buffer(shapely.union_all(shapely.boundary(cells.geometry.values)), 0.5)
    return shapely.length(shapely.difference(shapely.intersection(road, covered), edges))


def test_blocks_between_streets_are_cut_into_compact_cells_and_roads_stay_on_edges():
    community = box(0, 0, 600, 400)
    roads = [LineString([(300, -50), (300, 450)]), LineString([(-50, 200), (650, 200)])]
    cells = generate({"630010000001": community}, roads)
    assert_tiles(cells, "630010000001", community)
    assert len(cells) == 24  # four 300 × 200 blocks, each in six 100 × 100 cells
    assert np.allclose(cells.area, 10_000)
    assert all(interior_road_length(cells, road) < 0.01 for road in roads)


def test_codes_run_west_to_east_then_north_to_south():
    cells = generate({"630010000001": box(0, 0, 300, 200)}, [])
    assert list(cells["code"]) == [f"630010000001{n:03d}" for n in range(1, 7)]
    centres = cells.geometry.centroid
    assert list(zip(centres.x.round(), centres.y.round())) == [
        (50, 150), (150, 150), (250, 150), (50, 50), (150, 50), (250, 50)]


def test_a_cul_de_sac_leaves_its_block_tiled_without_slivers():
    community = box(0, 0, 250, 160)
    dead_end = LineString([(125, 0), (125, 90)])  # enters from the south edge and stops
    cells = generate({"630010000002": community}, [dead_end])
    assert_tiles(cells, "630010000002", community)
    assert cells.area.min() >= OPTIONS.min_fraction * OPTIONS.target_area


def test_a_community_with_a_hole_is_tiled_around_it():
    hole = box(120, 120, 180, 180)
    community = Polygon(box(0, 0, 300, 300).exterior.coords, [hole.exterior.coords])
    cells = generate({"630010000003": community}, [])
    assert_tiles(cells, "630010000003", community)
    assert shapely.area(shapely.intersection(shapely.union_all(cells.geometry.values), hole)) < 0.01


def test_a_road_exactly_on_a_community_boundary_adds_no_sliver():
    west, east = box(0, 0, 200, 200), box(200, 0, 400, 200)
    road = LineString([(200, -20), (200, 220)])
    cells = generate({"630010000004": west, "630010000005": east}, [road])
    assert_tiles(cells, "630010000004", west)
    assert_tiles(cells, "630010000005", east)
    assert len(cells) == 8 and np.allclose(cells.area, 10_000)


def test_a_large_roadless_block_is_open_land_with_larger_cells():
    mountain = box(0, 0, 2_000, 1_000)  # 2 km², no road
    cells = generate({"630120000042": mountain}, [])
    assert_tiles(cells, "630120000042", mountain)
    assert np.allclose(cells.area, OPTIONS.open_land_factor * OPTIONS.target_area)


def test_slivers_are_merged_into_their_own_block():
    community = box(0, 0, 330, 100)  # 3.3 cells: the 30 m leftover merges into a neighbour
    cells = generate({"630010000006": community}, [])
    assert_tiles(cells, "630010000006", community)
    assert len(cells) == 3 and cells.area.min() >= 10_000


def test_the_same_inputs_give_the_same_cells_and_codes():
    community = Polygon([(0, 0), (420, 30), (460, 380), (40, 300)])
    roads = [LineString([(-10, 150), (480, 190)]), LineString([(200, -10), (260, 400)])]
    first = generate({"630010000007": community}, roads)
    second = generate({"630010000007": community}, roads)
    assert list(first["code"]) == list(second["code"])
    assert all(shapely.equals_exact(a, b, 0) for a, b in zip(first.geometry, second.geometry))


def test_inputs_must_share_a_metric_crs():
    import pytest

    frame = gpd.GeoDataFrame({"code": ["630010000001"]}, geometry=[box(0, 0, 1, 1)], crs=4326)
    with pytest.raises(ValueError, match="projected"):
        generate_cells(frame, gpd.GeoSeries([], crs=4326))
