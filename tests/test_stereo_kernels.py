"""Stereo kernels on small arrays: census cost, SGM/MGM on label ranges, subpixel, post-filters, tie points."""

import numpy as np
import pytest
from lod3d.kernels.stereo_post import (
    fill_from_rim,
    median_heights,
    relocate_steps,
    remove_speckles,
    smooth_heights,
    visible,
)
from lod3d.kernels.stereo_sgm import mgm8, sgm8, winner_subpixel
from lod3d.kernels.stereo_sweep import (
    field_at,
    run_census,
    run_zsad,
    sweep_cost_volume,
    upsample2,
)
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


def _nothing_hidden(nv, n):
    return np.full((nv, n, n), -np.inf, np.float32)


def test_field_interpolation_is_exact_for_affine_fields():
    _, frow, fcol, h_nodes = _shifted_views(0.5, 0.0)
    r, c = field_at(frow, fcol, 1, h_nodes, 16, 7, 9, 13.0)
    assert abs(r - 17.0) < 1e-12 and abs(c - (19.0 + 6.5)) < 1e-12


@pytest.mark.parametrize("aggregate, ad_weight", [(sgm8, 0.0), (mgm8, 0.0), (sgm8, 4.0)])
def test_sweep_and_sgm_find_the_true_height(aggregate, ad_weight):
    imgs, frow, fcol, h_nodes = _shifted_views(1.0, 12.0)
    labels = np.arange(0.0, 20.01, 1.0)
    lo = np.zeros((40, 40), np.int64)
    hi = np.full((40, 40), len(labels) - 1, np.int64)
    cost = np.empty((40, 40, len(labels)), np.uint8)
    nvalid = np.empty((40, 40), np.int64)
    sweep_cost_volume(upsample2(imgs), frow, fcol, h_nodes, 16, labels, lo, hi, 0, 0, 2, np.zeros(2),
                      np.full(2, 10.0), ad_weight, 3.0, _nothing_hidden(2, 40), cost, nvalid)
    assert np.mean(cost[10:30, 10:30].argmin(axis=2) == 12) > 0.95
    assert np.all(cost[10:30, 10:30, 12] == 0)
    flat = np.full((40, 40), np.nan, np.float32)
    label, uniq = winner_subpixel(aggregate(cost, lo, hi, flat, 1.0, 4, 30), lo, hi, 2)
    assert np.all(np.abs(label[5:35, 5:35] - 12) < 0.5)
    assert np.median(uniq) > 0.3


def test_sweep_drops_a_hidden_view_while_two_others_see_the_cell():
    """A third view showing something else (an occluder) spoils the true height's cost
    unless the view is flagged hidden there; with only two views nothing is dropped."""
    imgs, frow, fcol, h_nodes = _shifted_views(1.0, 12.0)
    other = np.random.default_rng(9).random(imgs.shape[1:]).astype(np.float32)
    imgs3 = np.concatenate([imgs, other[None]])
    frow3, fcol3 = np.concatenate([frow, frow[:1]]), np.concatenate([fcol, fcol[:1]])
    labels = np.arange(0.0, 20.01, 1.0)
    lo = np.zeros((40, 40), np.int64)
    hi = np.full((40, 40), len(labels) - 1, np.int64)
    hidden = _nothing_hidden(3, 40)
    hidden[2, :, :20] = 15.0                     # view 2 hidden below 15 m on the left half
    cost = np.empty((40, 40, len(labels)), np.uint8)
    nvalid = np.empty((40, 40), np.int64)
    sweep_cost_volume(upsample2(imgs3), frow3, fcol3, h_nodes, 16, labels, lo, hi, 0, 0, 2, np.zeros(3),
                      np.ones(3), 0.0, 3.0, hidden, cost, nvalid)
    assert np.all(cost[10:30, 10:18, 12] == 0)           # left: views 0 and 1 alone agree
    assert np.mean(cost[10:30, 22:30, 12]) > 4           # right: view 2 spoils two pairs of three
    two = _nothing_hidden(2, 40)
    two[1] = 15.0                                        # one of two views hidden: kept
    cost2 = np.empty_like(cost)
    sweep_cost_volume(upsample2(imgs), frow, fcol, h_nodes, 16, labels, lo, hi, 0, 0, 2, np.zeros(2),
                      np.ones(2), 0.0, 3.0, two, cost2, nvalid)
    assert np.all(cost2[10:30, 10:30, 12] == 0) and np.all(cost2[10:30, 10:30, 3] > 0)


def test_upsample2_keeps_pixels_and_is_cubic_between():
    """Pixels stay; half-way values are exact for quadratics (cubic convolution), linear
    next to the border and to unusable pixels, and NaN only where a neighbour is NaN."""
    r, c = np.meshgrid(np.arange(8.0), np.arange(9.0), indexing="ij")
    img = (0.5 * r * r - 2 * r * c + c * c + 3).astype(np.float32)[None]
    up = upsample2(img)
    assert up.shape == (1, 15, 17)
    assert np.array_equal(up[0, ::2, ::2], img[0])
    rr, cc = np.meshgrid(np.arange(15) / 2, np.arange(17) / 2, indexing="ij")
    exact = 0.5 * rr * rr - 2 * rr * cc + cc * cc + 3
    assert np.allclose(up[0, 2:-2, 2:-2], exact[2:-2, 2:-2], atol=1e-4)
    assert np.isclose(up[0, 0, 1], 0.5 * (img[0, 0, 0] + img[0, 0, 1]))      # border: linear
    img[0, 4, 4] = np.nan
    up = upsample2(img)
    assert np.isclose(up[0, 8, 11], 0.5 * (img[0, 4, 5] + img[0, 4, 6]))     # beside a NaN: linear
    assert np.isnan(up[0, 8, 7]) and np.isfinite(up[0, 8, 5])


@pytest.mark.parametrize("aggregate", [sgm8, mgm8])
def test_sgm_on_label_ranges_matches_full_range_inside_them(aggregate):
    """Narrow per-cell ranges that hold the answer give the full-range winner."""
    rng = np.random.default_rng(3)
    cost = rng.integers(10, 40, (30, 30, 24)).astype(np.uint8)
    cost[:, :, 9] = 2                                   # a clear surface at label 9
    full_lo, full_hi = np.zeros((30, 30), np.int64), np.full((30, 30), 23, np.int64)
    lo = 9 - rng.integers(1, 7, (30, 30)).astype(np.int64)
    hi = 9 + rng.integers(1, 7, (30, 30)).astype(np.int64)
    flat = np.full((30, 30), np.nan, np.float32)
    full, _ = winner_subpixel(aggregate(cost, full_lo, full_hi, flat, 1.0, 4, 30), full_lo, full_hi, 2)
    ranged, _ = winner_subpixel(aggregate(cost, lo, hi, flat, 1.0, 4, 30), lo, hi, 2)
    assert np.all(np.abs(ranged - full) < 0.5)
    assert np.all((ranged >= lo) & (ranged <= hi))


@pytest.mark.parametrize("aggregate", [sgm8, mgm8])
def test_p2_drops_across_image_edges(aggregate):
    """Two flat surfaces, a noisy data term: with the guide's edge at the true step, the
    step is recovered there; with a uniform guide SGM smooths across it."""
    rng = np.random.default_rng(0)
    ny, nx, nd = 20, 40, 12
    cost = rng.integers(14, 22, (ny, nx, nd)).astype(np.uint8)
    cost[:, :20, 2] -= 6
    cost[:, 20:, 9] -= 6
    cost[:, 18:22] = 20                                 # no information at the step itself
    lo, hi = np.zeros((ny, nx), np.int64), np.full((ny, nx), nd - 1, np.int64)
    guide = np.zeros((ny, nx), np.float32)
    guide[:, 20:] = 100.0
    edge, _ = winner_subpixel(aggregate(cost, lo, hi, guide, 5.0, 4, 200), lo, hi, 1)
    assert np.all(np.abs(edge[:, 19] - 2) < 1) and np.all(np.abs(edge[:, 20] - 9) < 1)
    plain, _ = winner_subpixel(aggregate(cost, lo, hi, np.zeros_like(guide), 5.0, 4, 200), lo, hi, 1)
    assert np.abs(plain[:, 18:22] - np.array([2, 2, 9, 9])).max() > 3


def test_mgm_matches_its_recursion_written_out():
    """mgm8 = the sum over 8 passes of L(p) = C(p) + mean over the two predecessors q in the
    grid of min(L(q, d), L(q, d ± 1) + P1, min L(q) + P2) − min L(q), with the predecessor
    pairs of the reference MGM code as (dx, dy) image offsets — checks the pass tables, the
    scan orders and the transposed passes."""
    rng = np.random.default_rng(5)
    ny, nx, nd, p1, p2 = 6, 7, 5, 3, 11
    cost = rng.integers(0, 30, (ny, nx, nd)).astype(np.uint8)
    pairs = [((-1, 0), (0, -1)), ((1, 0), (0, 1)), ((0, 1), (-1, 0)), ((0, -1), (1, 0)),
             ((-1, -1), (1, -1)), ((1, -1), (1, 1)), ((1, 1), (-1, 1)), ((-1, 1), (-1, -1))]
    expected = np.zeros((ny, nx, nd))
    for pair in pairs:
        memo = {}

        def path(i, j, pair=pair, memo=memo):
            if (i, j) not in memo:
                msgs = []
                for dx, dy in pair:
                    qi, qj = i + dy, j + dx
                    if 0 <= qi < ny and 0 <= qj < nx:
                        lq = path(qi, qj)
                        m = lq.min()
                        near = np.minimum(np.r_[np.inf, lq[:-1]], np.r_[lq[1:], np.inf]) + p1
                        msgs.append(np.minimum(np.minimum(lq, near), m + p2) - m)
                memo[i, j] = cost[i, j] + (np.mean(msgs, axis=0) if msgs else 0)
            return memo[i, j]

        for i in range(ny):
            for j in range(nx):
                expected[i, j] += np.floor(path(i, j) + 0.5)
    lo, hi = np.zeros((ny, nx), np.int64), np.full((ny, nx), nd - 1, np.int64)
    got = mgm8(cost, lo, hi, np.full((ny, nx), np.nan, np.float32), 1.0, p1, p2)
    assert np.abs(got - expected).max() <= 1


def test_sweep_skips_labels_outside_the_cell_range():
    imgs, frow, fcol, h_nodes = _shifted_views(1.0, 12.0)
    labels = np.arange(0.0, 20.01, 1.0)
    lo = np.full((40, 40), 14, np.int64)
    hi = np.full((40, 40), 20, np.int64)
    cost = np.empty((40, 40, len(labels)), np.uint8)
    nvalid = np.empty((40, 40), np.int64)
    sweep_cost_volume(upsample2(imgs), frow, fcol, h_nodes, 16, labels, lo, hi, 0, 0, 2, np.zeros(2), np.ones(2), 0.0, 3.0,
                      _nothing_hidden(2, 40), cost, nvalid)
    assert np.all(cost[:, :, :14] == 24)
    assert nvalid[0, 0] == 0                            # census window off the tile
    assert nvalid[20, 20] == 7


def test_run_census_matches_a_cell_by_cell_census():
    """The vectorized census of a run of cells equals the plain per-cell definition."""
    rng = np.random.default_rng(4)
    warped = rng.random((3, 12, 30)).astype(np.float32)
    warped[1, 6, 20] = np.nan                           # poisons the windows around (6, 20) of view 1
    r, i, ja, jb = 2, 5, 4, 26
    bits = np.empty((3, 30), np.uint64)
    bad = np.empty((3, 30), np.uint8)
    tol = np.array([0.0, 0.0, 0.1])
    run_census(warped, i, ja, jb, r, tol, bits, bad)
    for v in range(3):
        for j in range(ja, jb):
            win = warped[v, i - r:i + r + 1, j - r:j + r + 1].ravel()
            expect = int("".join("1" if x < warped[v, i, j] - tol[v] else "0" for x in win), 2)
            assert int(bits[v, j - ja]) == expect
            assert bad[v, j - ja] == (v == 1 and abs(j - 20) <= r)


def test_run_zsad_matches_a_cell_by_cell_definition():
    """The vectorized ZSAD of a run equals, per cell, the sum over pairs with whole census
    windows of the mean over the 3×3 window of min(|(ga·a − mean) − (gb·b − mean)|, trunc)."""
    rng = np.random.default_rng(5)
    warped = rng.random((3, 12, 30)).astype(np.float32)
    warped[2] = 3.0 * warped[0] + 7.0                   # view 2: view 0 with another offset and contrast
    gain = np.array([3.0, 3.0, 1.0])
    i, ja, jb = 5, 4, 26
    bad = np.zeros((3, 30), np.uint8)
    bad[1, 3] = 1
    zsad = np.empty(30, np.float32)
    run_zsad(warped, i, ja, jb, gain, 0.4, bad, np.empty((3, 30), np.float32), np.empty(30, np.float32), zsad)
    for j in range(ja, jb):
        win = [gain[v] * warped[v, i - 1:i + 2, j - 1:j + 2].astype(np.float64) for v in range(3)]
        expect = 0.0
        for a, b in ((0, 1), (0, 2), (1, 2)):
            if not (bad[a, j - ja] or bad[b, j - ja]):
                expect += np.minimum(np.abs((win[a] - win[a].mean()) - (win[b] - win[b].mean())), 0.4).mean()
        assert abs(zsad[j - ja] - expect) < 1e-4
    assert abs(zsad[3]) < 1e-4             # view 1 out: views 0 and 2 differ by offset and contrast alone


def test_subpixel_parabola():
    agg = np.zeros((1, 1, 5), np.uint16)
    agg[0, 0] = [50, 20, 10, 16, 60]          # parabola through (1,20),(2,10),(3,16): vertex 2.125
    lo, hi = np.zeros((1, 1), np.int64), np.full((1, 1), 4, np.int64)
    label, _ = winner_subpixel(agg, lo, hi, 1)
    assert abs(label[0, 0] - 2.125) < 1e-9
    label, uniq = winner_subpixel(agg, lo + 3, hi, 1)  # range [3, 4]: winner 3, no alternative
    assert label[0, 0] == 3 and uniq[0, 0] == 1


def test_remove_speckles():
    dsm = np.full((20, 20), 10.0)
    dsm[5:7, 5:7] = 30.0                       # 4-cell blob
    dsm[12:19, 12:19] = 20.0                   # 49-cell block
    removed = remove_speckles(dsm, 1.0, 10)
    assert removed == 4 and np.isnan(dsm[5:7, 5:7]).all() and not np.isnan(dsm[12:19, 12:19]).any()


def test_smooth_heights_keeps_steps():
    rng = np.random.default_rng(2)
    dsm = np.where(np.arange(30)[None, :] < 15, 10.0, 20.0) + rng.normal(0, 0.3, (30, 30))
    dsm[0, 0] = np.nan
    out = smooth_heights(dsm.astype(np.float32), 2, 2.0)
    assert np.isnan(out[0, 0])
    assert np.nanstd(out[:, 3:12] - 10) < 0.5 * np.nanstd(dsm[:, 3:12] - 10)
    assert np.all(np.abs(out[1:, 14] - 10) < 1.5) and np.all(np.abs(out[1:, 15] - 20) < 1.5)


def test_median_heights_removes_streaks_keeps_steps():
    dsm = np.where(np.arange(30)[None, :] < 15, 10.0, 20.0).repeat(30, axis=0).astype(np.float32)
    dsm[8, :] += 3.0                              # a one-cell streak along a row
    dsm[20, 5] = np.nan
    out = median_heights(dsm, 2)
    assert np.isnan(out[20, 5]) and np.isfinite(out).sum() == 899
    assert np.all(out[8, :12] == 10.0) and np.all(out[8, 18:] == 20.0)   # streak gone
    assert np.all(out[11:, 14] == 10.0) and np.all(out[11:, 15] == 20.0)  # step in place


def test_fill_from_rim_occlusion_takes_ground_slope_is_interpolated():
    ii, jj = np.mgrid[:20, :20].astype(float)
    step = np.where(jj < 10, 0.0, 8.0)            # ground | building: the hole at the wall foot
    slope = 0.5 * ii + 0.25 * jj                  # one sloped surface (a pyramid face)
    for dsm, expect in ((step, 0.0), (slope, slope)):
        holes = np.zeros((20, 20), np.int64)
        holes[8:12, 8:12] = 1
        rim = np.zeros((20, 20), np.int64)
        rim[7:13, 7:13] = 1
        rim[holes > 0] = 0
        a = np.where(holes > 0, np.nan, dsm)
        lower = fill_from_rim(a, holes, rim, 1, 3.0, np.zeros(2, bool))
        assert np.allclose(a[8:12, 8:12], np.broadcast_to(expect, dsm.shape)[8:12, 8:12], atol=0.35)
        assert lower[1] == (dsm is step)
    a = np.where(holes > 0, np.nan, step)           # told it is no occlusion: interpolated
    assert not fill_from_rim(a, holes, rim, 1, 3.0, np.array([False, True]))[1]
    assert 2.0 < a[9, 9] < 6.0


def test_visibility_zbuffer():
    heights = np.array([[0.0, 10.0, 0.0]])
    rows = np.zeros((1, 3))
    cols = np.array([[0.0, 1.0, 1.2]])         # cell 2 projects onto the pixel of the tall cell 1
    vis = visible(rows, cols, heights, (1, 3), 0.5)
    assert vis.tolist() == [[True, True, False]]


def test_hidden_below_a_block_along_the_line_of_sight():
    from lod3d.kernels.stereo_post import hidden_below

    dsm = np.zeros((5, 20), np.float32)
    dsm[:, 10:13] = 10.0                        # a 10 m block; sight lines climb 2 m per cell to +col
    dsm[0, 4] = np.nan
    h = hidden_below(dsm, 0.0, 1.0, 2.0, 8)
    assert h[2, 9] == 8.0 and h[2, 8] == 6.0    # beside the block: hidden below 8, then 6 m
    assert h[2, 5] == 0.0 and h[2, 13] == -2.0  # far enough / past it: the ground itself is seen
    assert h[2, 19] == -np.inf and h[0, 3] == -4.0  # nothing ahead / NaN blocks nothing
    assert hidden_below(dsm, 0.0, 1.0, 2.0, 4)[2, 5] == -2.0   # the block beyond max_steps


def test_tie_point_shift_subpixel():
    rng = np.random.default_rng(1)
    from scipy import ndimage
    a = ndimage.gaussian_filter(rng.random((96, 96)), 1.5)
    b = ndimage.shift(a, (2.0, -5.4), order=3)
    block = lambda x: x.reshape(24, 4, 24, 4).mean(axis=(1, 3))
    out = match_patches(a, b, block(a), block(b), np.array([[48, 48]], np.int64), 12,
                        np.array([-3, 3, -3, 3], np.int64))
    assert out[0, 0] > 0.9
    assert abs(out[0, 1] - 2.0) < 0.15 and abs(out[0, 2] + 5.4) < 0.2


def test_fill_background_takes_the_lower_surface():
    from lod3d.kernels.stereo_post import fill_background

    dsm = np.full((30, 30), 200.0)
    dsm[:, 10:20] = 215.0                      # a roof between two streets
    dsm[5:25, 3:8] = np.nan                     # unconfirmed street cells next to it
    dsm[12:15, 13:16] = np.nan                  # and a hole inside the roof
    mask = np.isnan(dsm)
    assert fill_background(dsm, mask, 60) == mask.sum()
    assert np.all(dsm[5:25, 3:8] == 200.0)      # the street takes the ground, not the roof
    assert np.all(dsm[12:15, 13:16] == 215.0)   # surrounded by roof: roof
    out = np.full((5, 5), np.nan)
    assert fill_background(out, np.ones((5, 5), bool), 60) == 0   # nothing in reach: stays NaN
    assert np.isnan(out).all()


def test_relocate_steps_moves_a_fattened_step_onto_the_grey_edge():
    """A 20 m roof (columns 10-29, bright) whose height SGM spread 2 cells onto the ground
    on each side: the steps go back onto the image's edges; without a clear edge, or where
    the fattened cells look like the roof, nothing moves."""
    grey = np.full((40, 40), 50.0)
    grey[:, 10:30] = 200.0
    roof = np.zeros((40, 40), np.float32)
    roof[:, 10:30] = 20.0
    fat = np.zeros((40, 40), np.float32)
    fat[:, 8:32] = 20.0
    out = relocate_steps(fat, grey, 2.0, 3, 20.0)
    np.testing.assert_array_equal(out[5:35], roof[5:35])
    np.testing.assert_array_equal(relocate_steps(fat, np.full((40, 40), 50.0), 2.0, 3, 20.0), fat)
    bright = grey.copy()
    bright[:, 8:32] = 200.0                        # the edge lies where the DSM's step is: right already
    np.testing.assert_array_equal(relocate_steps(fat, bright, 2.0, 3, 20.0), fat)
    far = np.zeros((40, 40), np.float32)
    far[:, 4:36] = 20.0                            # the edge 6 cells inside: beyond reach
    np.testing.assert_array_equal(relocate_steps(far, grey, 2.0, 3, 20.0), far)
