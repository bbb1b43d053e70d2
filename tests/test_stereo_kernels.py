"""Stereo kernels on small arrays: census cost, SGM, subpixel, speckles, visibility, tie points."""

import numpy as np

from lod3d.kernels.stereo_post import remove_speckles, visible
from lod3d.kernels.stereo_sgm import sgm8, winner_subpixel
from lod3d.kernels.stereo_sweep import field_at, sweep_cost_volume
from lod3d.kernels.stereo_tiepoints import match_patches


def _shifted_views(shift_per_m: float, true_h: float, size=64, seed=0):
    """Two views of a textured plane at ``true_h``: view 1's columns move with height."""
    rng = np.random.default_rng(seed)
    tex = rng.random((size + 40, size + 40)).astype(np.float32)
    imgs = np.stack([tex, np.roll(tex, int(round(shift_per_m * true_h)), axis=1)])
    h_nodes = np.array([0.0, 10.0, 20.0])
    g = np.arange(0, size + 32, 16, dtype=float)
    ii, jj = np.meshgrid(g, g, indexing="ij")
    frow = np.stack([np.stack([ii + 10] * 3), np.stack([ii + 10] * 3)])
    fcol = np.stack([np.stack([jj + 10] * 3), np.stack([jj + 10 + shift_per_m * h for h in h_nodes])])
    return imgs, frow, fcol, h_nodes


def test_field_interpolation_is_exact_for_affine_fields():
    _, frow, fcol, h_nodes = _shifted_views(0.5, 0.0)
    r, c = field_at(frow, fcol, 1, h_nodes, 16, 7, 9, 13.0)
    assert abs(r - 17.0) < 1e-12 and abs(c - (19.0 + 6.5)) < 1e-12


def test_sweep_and_sgm_find_the_true_height():
    imgs, frow, fcol, h_nodes = _shifted_views(1.0, 12.0)
    labels = np.arange(0.0, 20.01, 1.0)
    lo = np.zeros((40, 40), np.int64)
    hi = np.full((40, 40), len(labels) - 1, np.int64)
    cost = np.empty((40, 40, len(labels)), np.uint8)
    nvalid = np.empty((40, 40), np.int64)
    sweep_cost_volume(imgs, frow, fcol, h_nodes, 16, labels, lo, hi, 0, 0, 2, cost, nvalid)
    assert np.mean(cost[10:30, 10:30].argmin(axis=2) == 12) > 0.95
    assert np.all(cost[10:30, 10:30, 12] == 0)
    label, uniq = winner_subpixel(sgm8(cost, 4, 30), 2)
    assert np.all(np.abs(label[5:35, 5:35] - 12) < 0.5)
    assert np.median(uniq) > 0.3


def test_sweep_skips_labels_outside_the_cell_range():
    imgs, frow, fcol, h_nodes = _shifted_views(1.0, 12.0)
    labels = np.arange(0.0, 20.01, 1.0)
    lo = np.full((40, 40), 14, np.int64)
    hi = np.full((40, 40), 20, np.int64)
    cost = np.empty((40, 40, len(labels)), np.uint8)
    nvalid = np.empty((40, 40), np.int64)
    sweep_cost_volume(imgs, frow, fcol, h_nodes, 16, labels, lo, hi, 0, 0, 2, cost, nvalid)
    assert np.all(cost[:, :, :14] == 24)
    assert nvalid[20, 20] == 7


def test_subpixel_parabola():
    agg = np.zeros((1, 1, 5), np.uint16)
    agg[0, 0] = [50, 20, 10, 16, 60]          # parabola through (1,20),(2,10),(3,16): vertex 2.125
    label, _ = winner_subpixel(agg, 1)
    assert abs(label[0, 0] - 2.125) < 1e-9


def test_remove_speckles():
    dsm = np.full((20, 20), 10.0)
    dsm[5:7, 5:7] = 30.0                       # 4-cell blob
    dsm[12:19, 12:19] = 20.0                   # 49-cell block
    removed = remove_speckles(dsm, 1.0, 10)
    assert removed == 4 and np.isnan(dsm[5:7, 5:7]).all() and not np.isnan(dsm[12:19, 12:19]).any()


def test_visibility_zbuffer():
    heights = np.array([[0.0, 10.0, 0.0]])
    rows = np.zeros((1, 3))
    cols = np.array([[0.0, 1.0, 1.2]])         # cell 2 projects onto the pixel of the tall cell 1
    vis = visible(rows, cols, heights, (1, 3), 0.5)
    assert vis.tolist() == [[True, True, False]]


def test_tie_point_shift_subpixel():
    rng = np.random.default_rng(1)
    from scipy import ndimage
    a = ndimage.gaussian_filter(rng.random((96, 96)), 1.5)
    b = ndimage.shift(a, (2.0, -5.4), order=3)
    block = lambda x: x.reshape(24, 4, 24, 4).mean(axis=(1, 3))  # noqa: E731
    out = match_patches(a, b, block(a), block(b), np.array([[48, 48]], np.int64), 12,
                        np.array([-3, 3, -3, 3], np.int64))
    assert out[0, 0] > 0.9
    assert abs(out[0, 1] - 2.0) < 0.15 and abs(out[0, 2] + 5.4) < 0.2
