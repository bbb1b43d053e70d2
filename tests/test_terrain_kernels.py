"""Terrain Numba kernels against direct references."""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spl
from scipy.ndimage import maximum_filter, minimum_filter

from lod3d.kernels.terrain_membrane import membrane_fit
from lod3d.kernels.terrain_morph import block_quantile, label_regions, multiscale_tophat_objects, opening
from lod3d.kernels.terrain_points import cell_heights

NO_START = np.empty((0, 0))


@pytest.mark.parametrize("r", [1, 3, 12])
def test_opening_matches_scipy_with_holes(r):
    rng = np.random.default_rng(r)
    a = rng.normal(size=(41, 53)).astype(np.float32)
    a[3:9, 4:20] = np.nan
    padded = np.pad(np.where(np.isnan(a), np.inf, a), r, constant_values=np.inf)
    ref = maximum_filter(minimum_filter(padded, size=2 * r + 1, mode="constant", cval=np.inf),
                         size=2 * r + 1, mode="constant", cval=-np.inf)[r:-r, r:-r]
    ok = ~np.isnan(a)
    np.testing.assert_array_equal(opening(a, r, r)[ok], ref[ok])


def test_opening_keeps_a_sloped_plane_and_removes_a_box():
    y, x = np.mgrid[:80, :90].astype(np.float32)
    z = 0.3 * x - 0.2 * y
    np.testing.assert_allclose(opening(z, 20, 20), z, atol=1e-5)
    z[30:40, 30:45] += 10
    obj = multiscale_tophat_objects(z, np.array([2, 4, 8]), np.array([1.0, 1.0, 1.0]), 8)
    assert obj[30:40, 30:45].all() and obj.sum() == 150


def test_membrane_fit_equals_sparse_solution():
    rng = np.random.default_rng(1)
    h, w, lam = 37, 29, 0.7
    z = rng.normal(size=(h, w))
    wt = (rng.random((h, w)) < 0.3).astype(float)
    idx = np.arange(h * w).reshape(h, w)
    i = np.concatenate([idx[:-1].ravel(), idx[:, :-1].ravel()])
    j = np.concatenate([idx[1:].ravel(), idx[:, 1:].ravel()])
    adj = sp.coo_matrix((np.ones(2 * i.size), (np.r_[i, j], np.r_[j, i])), shape=(h * w,) * 2).tocsr()
    lap = sp.diags(np.asarray(adj.sum(1)).ravel()) - adj
    exact = spl.spsolve((sp.diags(wt.ravel()) + lam * lap).tocsc(), (wt * z).ravel()).reshape(h, w)
    np.testing.assert_allclose(membrane_fit(z, wt, lam, 6, NO_START), exact, atol=1e-6)


def test_membrane_fills_a_large_gap_in_a_plane():
    y, x = np.mgrid[:300, :340].astype(float)
    z = 0.05 * x + 0.02 * y + 10
    wt = np.ones_like(z)
    wt[40:260, 60:300] = 0  # a 220-cell gap
    assert np.abs(membrane_fit(z, wt, 0.1, 3, NO_START) - z).max() < 0.02


def test_block_quantile_and_cell_heights():
    z = np.arange(16, dtype=np.float32).reshape(4, 4)
    z[0, 0] = np.nan
    np.testing.assert_array_equal(block_quantile(z, 2, 0.0), [[1, 2], [8, 10]])
    np.testing.assert_array_equal(block_quantile(z, 2, 1.0), [[5, 7], [13, 15]])
    cell = np.array([0, 0, 0, 2], np.int64)
    zz = np.array([1, 2, 9, 5], np.float32)
    low, high = cell_heights(cell, zz, 3, 1.0)
    np.testing.assert_array_equal(low, [1, np.nan, 5])
    np.testing.assert_array_equal(high, [9, np.nan, 5])


def test_label_regions_matches_scipy():
    from scipy.ndimage import find_objects, label

    mask = np.random.default_rng(3).random((40, 50)) < 0.45
    labels, boxes = label_regions(mask)
    ref, n = label(mask)
    assert len(boxes) == n
    np.testing.assert_array_equal(labels, ref)  # both number regions in raster-scan order
    for k, sl in enumerate(find_objects(ref)):
        assert tuple(boxes[k]) == (sl[0].start, sl[1].start, sl[0].stop, sl[1].stop)
