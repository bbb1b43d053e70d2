"""Touching buildings cut apart along party walls: roof tone, roof orientation, one building
with a shaded gable left whole, rotated blocks, determinism and the Outline stage."""

import numpy as np
import pytest
from affine import Affine

from lod3d.outline import Outline, outline_mask
from lod3d.outline.instances import separate
from lod3d.raster import Raster

T = Affine(0.5, 0, 100.0, 0, -0.5, 200.0)
SUN = np.array([0.5, -0.3, 0.8]) / np.linalg.norm([0.5, -0.3, 0.8])


def raster(a):
    return Raster(np.asarray(a), T, "EPSG:32631")


def gable(u, v, half_depth, eave=8.0, pitch=0.6):
    """Heights of a gable roof whose ridge runs along u (v = 0 on the ridge)."""
    return eave + pitch * 0.5 * (half_depth - np.abs(v))


def scene(parts, shape=(90, 120), theta_deg=0.0, seed=0, pitch=0.6):
    """Mask, nDSM and ortho of gable-roofed boxes on a grid rotated by ``theta_deg``.

    ``parts``: (u0, u1, v0, v1, ridge_axis, albedo, eave) in pixels of the rotated frame,
    centred on the raster, roofs of ``pitch`` (rise / run); the ortho is albedo times
    Lambertian shading of the roof planes.
    """
    rng = np.random.default_rng(seed)
    rows, cols = np.indices(shape, dtype=float)
    t = np.radians(theta_deg)
    x, y = cols - shape[1] / 2, rows - shape[0] / 2
    u, v = x * np.cos(t) + y * np.sin(t), -x * np.sin(t) + y * np.cos(t)
    mask = np.zeros(shape, np.uint8)
    h = np.zeros(shape)
    ortho = np.full(shape, 120.0)
    for u0, u1, v0, v1, axis, albedo, eave in parts:
        inside = (u >= u0) & (u < u1) & (v >= v0) & (v < v1)
        if axis == "u":
            hh = gable(u, v - (v0 + v1) / 2, (v1 - v0) / 2, eave, pitch)
        else:
            hh = gable(v, u - (u0 + u1) / 2, (u1 - u0) / 2, eave, pitch)
        gy, gx = np.gradient(hh)
        normal = np.dstack([-gx, -gy, np.full(shape, 1.0)])
        shade = (normal @ SUN) / np.linalg.norm(normal, axis=2)
        mask[inside] = 1
        h[inside] = hh[inside]
        ortho[inside] = 1000 * albedo * shade[inside]
    h += rng.normal(0, 0.15, shape)
    ortho += rng.normal(0, 8, shape)
    return raster(mask), raster(h), raster(ortho)


def n_pieces(labels, min_px=40):
    return int((np.bincount(labels.ravel())[1:] >= min_px).sum())


def test_one_gable_building_stays_whole():
    # ridge along the block: its two roof planes differ in tone, which is no party wall
    for theta in (0.0, 23.0):
        labels = separate(*scene([(-40, 40, -15, 15, "u", 0.3, 8.0)], theta_deg=theta))
        assert n_pieces(labels) == 1, theta


@pytest.mark.parametrize("theta", [0.0, 23.0])
def test_gable_whose_ridge_the_ndsm_flattens_stays_whole(theta):
    """A stereo nDSM rounds a ridge off (lod3d city's: within 0.05 m over 2 m across it),
    so the slope change right at the ridge is too weak to tell it from a party wall and the
    sunny and shaded roof planes' tone step would cut the house along its ridge; the roof
    still rises towards the line from both sides over a few metres."""
    from lod3d.outline.instances import InstanceParams

    mask, ndsm, ortho = scene([(-40, 40, -15, 15, "u", 0.3, 8.0)], theta_deg=theta, pitch=0.4)
    ridge = gable(0.0, 0.0, 15.0, pitch=0.4)
    flattened = raster(np.minimum(ndsm.data, ridge - 1.0))
    assert n_pieces(separate(mask, flattened, ortho)) == 1
    assert n_pieces(separate(mask, flattened, ortho, InstanceParams(ridge_hump=10.0))) == 2


@pytest.mark.parametrize("theta", [0.0, 17.0])
def test_touching_boxes_of_different_tone_split_at_the_wall(theta):
    parts = [(-40, 0, -15, 15, "u", 0.22, 8.0), (0, 40, -15, 15, "u", 0.33, 8.0)]
    mask, ndsm, ortho = scene(parts, theta_deg=theta)
    labels = separate(mask, ndsm, ortho)
    assert n_pieces(labels) == 2
    if theta == 0.0:   # the cut is the wall: columns left of x = 60 in one piece
        left, right = labels[45, 30:60], labels[45, 60:90]
        assert len(set(left.tolist())) == 1 and len(set(right.tolist())) == 1 and left[0] != right[0]
    # the same tone: one building
    same = [(-40, 0, -15, 15, "u", 0.28, 8.0), (0, 40, -15, 15, "u", 0.28, 8.0)]
    assert n_pieces(separate(*scene(same, theta_deg=theta))) == 1


def test_touching_boxes_of_different_roof_orientation_split():
    # same eave, same albedo; one ridge along the row, the next across it
    parts = [(-40, 0, -15, 15, "u", 0.28, 8.0), (0, 30, -15, 15, "v", 0.28, 8.0)]
    labels = separate(*scene(parts))
    assert n_pieces(labels) == 2


def test_terraced_row_and_determinism_and_window_independence():
    parts = [(-50, -30, -12, 12, "u", 0.22, 7.0), (-30, -12, -12, 12, "u", 0.31, 8.5),
             (-12, 10, -12, 12, "u", 0.25, 7.2), (10, 30, -12, 12, "u", 0.34, 7.0)]
    mask, ndsm, ortho = scene(parts, theta_deg=8.0)
    labels = separate(mask, ndsm, ortho)
    assert n_pieces(labels) == 4
    assert np.array_equal(labels, separate(mask, ndsm, ortho))
    # the same block in a larger raster, shifted: the same pieces
    big = [np.pad(r.data, ((7, 3), (11, 5)), constant_values=0) for r in (mask, ndsm, ortho)]
    moved = separate(*(raster(b) for b in big))[7:-3, 11:-5]
    assert np.array_equal(moved, labels)


def test_outline_stage_separates_with_ortho_and_not_when_off():
    parts = [(-40, 0, -15, 15, "u", 0.22, 8.0), (0, 40, -15, 15, "u", 0.33, 8.0)]
    mask, ndsm, ortho = scene(parts)
    products = {"mask": mask, "ndsm": ndsm, "ortho": ortho}
    assert len(Outline()(products)["footprints"]) == 2
    assert len(Outline(separate=False)(products)["footprints"]) == 1
    assert len(outline_mask(mask, ndsm)) == 1           # no ortho: no cuts
    assert len(outline_mask(mask, ndsm, ortho)) == 2
    # an instance raster's ids are kept as given, never re-cut
    assert len(outline_mask(raster(mask.data.astype(np.int32) * 7), ndsm, ortho)) == 1


def test_a_piece_split_at_a_height_jump_keeps_all_its_buildings():
    # two roofs of different tone, one with a 5 m higher tower: the tower is a building of
    # its own (as without separation), not a hole in its roof
    parts = [(-40, 0, -15, 15, "u", 0.22, 8.0), (0, 40, -15, 15, "u", 0.33, 8.0)]
    mask, ndsm, ortho = scene(parts)
    h = ndsm.data.copy()
    h[40:50, 80:90] += 5.0
    ndsm = raster(h)
    fp = outline_mask(mask, ndsm, ortho)
    assert len(fp) == 3 == len(outline_mask(mask, ndsm)) + 1
    assert sum(p.area for p in fp.raw) == pytest.approx(mask.data.sum() * 0.25)
    # the three are one block, away from the raster's border; a block cut by it is marked
    assert fp.block.tolist() == [1, 1, 1] and not fp.block_cut.any()
    cut = outline_mask(raster(mask.data[:, :80]), raster(h[:, :80]), raster(ortho.data[:, :80]))
    assert cut.block_cut.all() and len(set(cut.block.tolist())) == 1


def test_row_houses_with_gables_to_the_street_split_at_the_valley():
    """Two houses of one height and tone whose roofs slope down to their party wall: the
    stereo nDSM (blurred here) shows no step there, only a trough, and the ortho a tone
    step from shading; the cut is the wall, not the trough's lowest line. One such house
    alone (its ridge is no valley) stays whole."""
    from scipy import ndimage

    from lod3d.outline.instances import InstanceParams

    parts = [(-40, 0, -15, 15, "v", 0.28, 8.0), (0, 40, -15, 15, "v", 0.28, 8.0)]
    mask, ndsm, ortho = scene(parts)
    blurred = raster(ndimage.gaussian_filter(ndsm.data, 2.0) * (mask.data > 0))
    labels = separate(mask, blurred, ortho)
    assert n_pieces(labels) == 2
    row = labels[45, 30:90]
    assert abs(int(np.flatnonzero(row != row[0])[0]) + 30 - 60) <= 1
    assert n_pieces(separate(mask, blurred, ortho, InstanceParams(valley_pitch=10.0))) == 1
    one = scene([(-20, 20, -15, 15, "v", 0.28, 8.0)])
    assert n_pieces(separate(one[0], raster(ndimage.gaussian_filter(one[1].data, 2.0)), one[2])) == 1
