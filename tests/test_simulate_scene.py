"""The procedural scene: determinism, layout validity, heights, variety, trees."""

import numpy as np
import pytest
import shapely

from lod3d.errors import InputError
from lod3d.kernels.scene import FLAT, GABLE, HIP, PYRAMID, SHED, roof_height
from lod3d.simulate.scene import MORPHOLOGIES, ROOF_NAMES, generate_scene

X0, Y0 = 370_000.0, 4_826_000.0
BOUNDS_300 = (X0, Y0, X0 + 300, Y0 + 300)


@pytest.fixture(scope="module")
def scene():
    return generate_scene(BOUNDS_300, seed=7)


def _arrays(s):
    p, t = s.parts, s.trees
    return [p.cx, p.cy, p.angle, p.a, p.b, p.roof, p.eave, p.ridge, p.base, p.albedo,
            t.x, t.y, t.radius, t.crown, s.noise.perm, s.noise.values]


def test_same_seed_same_scene_other_seed_other_scene(scene):
    again = generate_scene(BOUNDS_300, seed=7)
    for a, b in zip(_arrays(scene), _arrays(again)):
        np.testing.assert_array_equal(a, b)
    assert [b.footprint.wkb for b in scene.buildings] == [b.footprint.wkb for b in again.buildings]
    other = generate_scene(BOUNDS_300, seed=8)
    assert len(other.parts) != len(scene.parts) or not np.array_equal(other.parts.cx, scene.parts.cx)


def test_footprints_valid_inside_and_not_overlapping(scene):
    fps = [b.footprint for b in scene.buildings]
    assert len(fps) > 20
    assert all(f.is_valid and f.area > 20 for f in fps)
    assert shapely.box(*BOUNDS_300).contains(shapely.union_all(fps))
    left, right = shapely.STRtree(fps).query(fps, predicate="intersects")
    pairs = left < right
    overlap = shapely.area(shapely.intersection(np.array(fps)[left[pairs]],
                                                np.array(fps)[right[pairs]]))
    assert overlap.max(initial=0.0) < 1e-6
    # The footprint is exactly the union of the building's parts (parts abut, never overlap).
    for b in scene.buildings:
        parts = [shapely.Polygon(scene.parts.corners(int(i))) for i in b.parts]
        assert abs(sum(p.area for p in parts) - b.footprint.area) < 1e-6 * b.footprint.area + 1e-6
        assert shapely.union_all(parts).symmetric_difference(b.footprint).area < 1e-6


def test_heights_within_3_to_40_m_above_base_and_clear_of_terrain(scene):
    p = scene.parts
    assert (p.eave - p.base >= 3.0 - 1e-9).all()
    assert (p.ridge - p.base <= 40.0 + 1e-9).all()
    assert (p.ridge >= p.eave).all()
    for b in scene.buildings:
        assert np.all(p.base[b.parts] == b.base)
        # The base is the lowest terrain under the footprint (1 m lattice + vertices).
        xy = np.asarray(b.footprint.exterior.coords)
        assert scene.terrain(xy[:, 0], xy[:, 1]).min() >= b.base - 1e-9


def test_every_roof_type_and_morphology_on_a_300_m_scene(scene):
    stats = scene.statistics()
    assert all(stats["parts_by_roof_type"][name] > 0 for name in ROOF_NAMES.values()), stats
    assert all(stats["buildings_by_morphology"][m] > 0 for m in MORPHOLOGIES), stats
    assert sum(stats["buildings_by_morphology"].values()) == stats["n_buildings"]
    assert stats["n_multipart_buildings"] > 0
    assert 3 <= stats["height_m"]["min"] <= stats["height_m"]["median"] <= stats["height_m"]["max"] <= 40
    assert 0 < stats["built_up_share"] < 1


def test_statistics_over_bounds_count_what_reaches_into_them():
    # The acquisition's setting: a 300 m AOI inside a scene with a 150 m margin.
    s = generate_scene((X0 - 150, Y0 - 150, X0 + 450, Y0 + 450), seed=7)
    stats = s.statistics(BOUNDS_300)
    aoi = shapely.box(*BOUNDS_300)
    inside = [b for b in s.buildings if b.footprint.intersects(aoi)]
    assert stats["n_buildings"] == len(inside) < len(s.buildings)
    assert stats["n_parts"] == sum(len(b.parts) for b in inside)
    assert sum(stats["buildings_by_morphology"].values()) == len(inside)
    assert stats["n_trees"] == int(shapely.contains_xy(aoi, s.trees.x, s.trees.y).sum()) > 0
    built = shapely.union_all([b.footprint for b in inside]).intersection(aoi).area / aoi.area
    assert stats["built_up_share"] == pytest.approx(built, rel=1e-9)
    assert 0.4 < built < 0.6  # a dense historic centre
    assert s.statistics() == s.statistics(s.bounds)


def test_street_grids_have_several_orientations(scene):
    angles = np.degrees(scene.districts.angle) % 90
    assert np.ptp(angles) > 10


def test_trees_clear_of_buildings_and_roads(scene):
    t = scene.trees
    assert len(t) > 20
    disks = shapely.buffer(shapely.points(np.column_stack([t.x, t.y])), t.reach())
    fps = [b.footprint for b in scene.buildings]
    assert len(shapely.STRtree(fps).query(disks, predicate="intersects")[0]) == 0
    assert not scene.districts.is_road(t.x, t.y).any()
    assert (t.trunk > 0).all() and (t.crown > 0).all()


def test_roof_height_shapes():
    a, b, e, r = 10.0, 4.0, 20.0, 24.0
    # Eaves at the long edges, ridge on the axis, shed rising to +v, pyramid apex at centre.
    assert roof_height(FLAT, 3.0, 1.0, a, b, e, e) == e
    assert roof_height(GABLE, 7.0, 0.0, a, b, e, r) == r
    assert roof_height(GABLE, 7.0, -b, a, b, e, r) == e
    assert roof_height(SHED, 0.0, -b, a, b, e, r) == e
    assert roof_height(SHED, 0.0, b, a, b, e, r) == r
    assert roof_height(HIP, a, 0.0, a, b, e, r) == e
    assert roof_height(HIP, a - b, 0.0, a, b, e, r) == r
    assert roof_height(PYRAMID, 0.0, 0.0, a, b, e, r) == r
    assert roof_height(PYRAMID, a, 0.0, a, b, e, r) == e


@pytest.mark.parametrize("bounds", [(0, 0, 0, 100), (0, 0, 10, 10), (0, 0, 1e6, 1e6),
                                    (0, 0, float("nan"), 100), "nonsense"])
def test_bad_bounds_are_input_errors(bounds):
    with pytest.raises(InputError):
        generate_scene(bounds)


@pytest.mark.slow
def test_square_km_has_courtyards_halls_and_tall_buildings():
    s = generate_scene((X0, Y0, X0 + 1000, Y0 + 1000), seed=7)
    stats = s.statistics()
    assert stats["n_buildings"] > 300
    assert any(len(b.footprint.interiors) for b in s.buildings if b.morphology == "historic")
    halls = [b for b in s.buildings if b.morphology == "industrial"]
    assert max(np.sqrt(b.footprint.minimum_rotated_rectangle.area) for b in halls) > 80
    assert stats["height_m"]["max"] > 25
