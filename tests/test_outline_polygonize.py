"""Polygonization: instances, holes, touching buildings, nDSM splits, bad masks."""

import numpy as np
import pytest
import shapely
from affine import Affine

from lod3d.errors import InputError
from lod3d.outline import outline_mask, polygonize_mask
from lod3d.raster import Raster

T = Affine(0.5, 0, 100.0, 0, -0.5, 200.0)


def raster(a, nodata=None):
    return Raster(np.asarray(a), T, "EPSG:32631", nodata)


def test_courtyard_keeps_hole_and_exact_area():
    m = np.zeros((30, 30), np.uint8)
    m[5:25, 5:25] = 1
    m[10:20, 10:20] = 0
    fp = polygonize_mask(raster(m))
    assert len(fp) == 1
    poly = fp.polygons[0]
    assert len(poly.interiors) == 1
    assert poly.area == pytest.approx((400 - 100) * 0.25)
    assert shapely.is_ccw(poly.exterior)
    assert poly.bounds == pytest.approx((102.5, 187.5, 112.5, 197.5))


def test_instances_touching_stay_apart_and_binary_merges():
    m = np.zeros((20, 30), np.int32)
    m[5:15, 5:15] = 7
    m[5:15, 15:25] = 9
    fp = outline_mask(raster(m))
    assert sorted(fp.ids.tolist()) == [7, 9]
    assert shapely.area(shapely.intersection(fp.polygons[0], fp.polygons[1])) == pytest.approx(0, abs=1e-9)
    assert len(outline_mask(raster(m > 0))) == 1


def test_ndsm_height_jump_separates_touching_buildings():
    m = np.zeros((20, 30), np.uint8)
    m[5:15, 5:25] = 1
    h = np.where(np.arange(30)[None, :] < 15, 6.0, 12.0) * np.ones((20, 1))
    assert len(outline_mask(raster(m), raster(h))) == 2
    assert len(outline_mask(raster(m), raster(h), max_step=10.0)) == 1


def test_ndsm_speck_rejoins_its_roof():
    """A stereo blunder cuts a 3 x 3 speck off a roof at a height jump: it rejoins the roof
    (no building of its own, no notch), while a real lower wing of 25 m2 stays apart."""
    m = np.zeros((30, 40), np.uint8)
    m[5:25, 5:35] = 1
    h = np.full(m.shape, 9.0)
    h[10:13, 10:13] = 20.0                # speck: 2.25 m2
    h[5:25, 25:35] = 3.0                  # wing: 50 m2
    fp = outline_mask(raster(m), raster(h))
    assert len(fp) == 2
    assert sorted(p.area for p in fp.polygons) == pytest.approx([50.0, 100.0])
    unabsorbed = polygonize_mask(raster(m), raster(h), min_piece=0.0)   # a building, and a hole
    assert sorted(p.area for p in unabsorbed.polygons) == pytest.approx([2.25, 50.0, 97.75])
    assert len(outline_mask(raster(m), raster(h), min_piece=60.0)) == 1


@pytest.mark.parametrize("seed", range(6))
def test_absorbed_pieces_merge_into_their_best_neighbour(seed):
    """Every component of ``absorb_small_pieces``'s output is a union of input components
    of one source id, 4-connected, numbered in raster order; an input component below the
    size joins a neighbour of its source when it has one, and larger ones stay apart."""
    from scipy import ndimage

    from lod3d.kernels.outline_trace import absorb_small_pieces, label_instances

    rng = np.random.default_rng(seed)
    ids = (rng.random((31, 43)) < 0.8) * rng.integers(1, 3, size=(31, 43))
    labels, source = label_instances(ids, rng.random(ids.shape) * 6, 2.0)
    out, out_source = absorb_small_pieces(labels, source, 4.0)
    assert np.array_equal(out > 0, labels > 0)
    sizes = np.bincount(labels.ravel())
    for k in range(1, labels.max() + 1):
        pix = labels == k
        assert len(np.unique(out[pix])) == 1                    # input components stay whole
        assert out_source[out[pix][0]] == source[k]
    for j in range(1, out.max() + 1):
        _, n = ndimage.label(out == j)
        assert n == 1
        big = [k for k in np.unique(labels[out == j]) if sizes[k] >= 4]
        assert len(big) <= 1                                    # big components never merge
    first = [np.flatnonzero(out.ravel() == j)[0] for j in range(1, out.max() + 1)]
    assert np.all(np.diff(first) > 0)
    for k in np.flatnonzero(sizes[1:] < 4) + 1:                 # small ones left alone only
        if (out == out[labels == k][0]).sum() == sizes[k]:      # without a same-source neighbour
            grown = ndimage.binary_dilation(labels == k) & ~(labels == k) & (labels > 0)
            assert not np.any(source[labels[grown]] == source[k])


def test_small_blobs_dropped_border_flagged_and_full_tile():
    m = np.zeros((40, 40), np.uint8)
    m[20, 20] = 1                  # single pixel
    m[0:10, 0:10] = 1              # cut by the tile border
    m[20:30, 5:15] = 1
    fp = outline_mask(raster(m))
    assert len(fp) == 2
    assert fp.cut.tolist() == [True, False]
    full = outline_mask(raster(np.ones((40, 40), np.uint8)))
    assert len(full) == 1 and full.cut[0]
    assert full.polygons[0].area == pytest.approx(400.0)


def test_empty_mask_gives_no_footprints():
    fp = outline_mask(raster(np.zeros((10, 10), np.uint8)))
    assert len(fp) == 0 and fp.items() == []


def test_probability_mask_is_thresholded_and_bad_masks_rejected():
    p = np.zeros((20, 20), np.float32)
    p[5:15, 5:15] = 0.8
    assert len(outline_mask(raster(p))) == 1
    with pytest.raises(InputError, match="outside"):
        outline_mask(raster(p * 3.3))
    with pytest.raises(InputError, match="negative"):
        outline_mask(raster(-np.ones((5, 5), np.int16)))
    with pytest.raises(InputError, match="2-D"):
        outline_mask(raster(np.zeros((2, 5, 5), np.uint8)))


def test_nodata_is_background():
    m = np.full((20, 20), 255, np.uint8)
    m[5:15, 5:15] = 1
    fp = outline_mask(raster(m, nodata=255))
    assert len(fp) == 1 and not fp.cut[0]


@pytest.mark.parametrize("seed", range(6))
def test_run_labelling_matches_pixel_connectivity(seed):
    """The union-find over runs gives exactly the 4-connected, same-id, no-height-jump
    components: every joinable neighbour pair shares a label, and no label spans two
    scipy components of one id (or, with heights, crosses a jump without a path)."""
    from lod3d.kernels.outline_trace import label_instances
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    ids = (rng.random((37, 53)) < 0.65) * rng.integers(1, 4, size=(37, 53))
    heights = rng.random(ids.shape) * 6 if seed % 2 else np.zeros((0, 0))
    labels, source = label_instances(ids, heights, 2.0)
    assert np.array_equal(labels > 0, ids > 0)
    assert np.array_equal(source[labels[ids > 0]], ids[ids > 0])
    first = [np.flatnonzero(labels.ravel() == k)[0] for k in range(1, labels.max() + 1)]
    assert np.all(np.diff(first) > 0)                     # numbered in raster order
    for dr, dc in ((0, 1), (1, 0)):
        a, b = labels[: 37 - dr, : 53 - dc], labels[dr:, dc:]
        joins = (ids[: 37 - dr, : 53 - dc] > 0) & (ids[: 37 - dr, : 53 - dc] == ids[dr:, dc:])
        if heights.size:
            joins &= np.abs(heights[: 37 - dr, : 53 - dc] - heights[dr:, dc:]) <= 2.0
        assert np.all(a[joins] == b[joins])
    if not heights.size:   # no label larger than its scipy component
        for v in (1, 2, 3):
            comp, n = ndimage.label(ids == v)
            pairs = {(int(x), int(y)) for x, y in zip(labels[ids == v], comp[ids == v])}
            assert len(pairs) == n == len({x for x, _ in pairs})


@pytest.mark.parametrize("seed", range(8))
def test_kept_buildings_match_a_scipy_reference(seed):
    """The kernel's choice of buildings and rings (``polygonize_ids``) against scipy: an
    instance raster keeps each id's largest 4-connected piece (ties: first in raster order)
    if big enough, a binary one every big enough piece; each building's rings enclose
    exactly its pixels less the holes it dropped, outer ring first, and ``cut`` says
    whether it touches the border. (Pixel rings need not be valid polygons: a ring may
    pinch at a saddle; the regularizer repairs those.)"""
    from scipy import ndimage

    from lod3d.outline.polygonize import trace_buildings
    from lod3d.outline.regularize import pixel_polygons

    rng = np.random.default_rng(seed)
    h, w = rng.integers(5, 60, 2)
    ids = ((rng.random((h, w)) < 0.6) * rng.integers(1, 2 if seed % 2 else 5, (h, w))).astype(np.int32)
    min_area, min_hole = float(rng.integers(0, 6)), float(rng.integers(0, 4))
    rings = trace_buildings(ids, min_area_px=min_area, min_hole_px=min_hole)
    expect = []   # (id, mask) of the kept pieces, in raster order of their first pixel
    for v in np.unique(ids[ids > 0]):
        comp, n = ndimage.label(ids == v)
        sizes = np.bincount(comp.ravel())[1:]
        firsts = [np.flatnonzero(comp.ravel() == k + 1)[0] for k in range(n)]
        pieces = range(n) if ids.max() <= 1 else [max(range(n), key=lambda k: (sizes[k], -firsts[k]))]
        expect += [(firsts[k], v, comp == k + 1) for k in pieces if sizes[k] >= min_area]
    expect.sort(key=lambda e: e[0])
    assert len(rings) == len(expect)
    polys = pixel_polygons(rings, Affine.identity())
    for b, (_, v, piece) in enumerate(expect):
        assert np.array_equal(rings.labels == rings.label[b], piece)
        assert rings.ids[b] == (v if ids.max() > 1 else b + 1)
        assert rings.cut[b] == (piece[0].any() or piece[-1].any() or piece[:, 0].any() or piece[:, -1].any())
        # the piece is 4-connected, so the other pixels are 8-connected (through saddles)
        filled = ndimage.binary_fill_holes(piece, structure=np.ones((3, 3)))
        holes, _ = ndimage.label(filled & ~piece, structure=np.ones((3, 3)))
        kept_holes = sum(int(s) for s in np.bincount(holes.ravel())[1:] if s >= min_hole)
        assert polys[b].area == pytest.approx(piece.sum() + (filled & ~piece).sum() - kept_holes)
        assert rings.area_px[b] == pytest.approx(polys[b].area)


def test_pixel_polygons_of_some_buildings_are_those_of_all():
    """The regularizer builds pixel outlines only for the buildings it repairs or cuts:
    any selection (repeats, unordered, with holes) equals the same rows of the full set."""
    from lod3d.outline.polygonize import trace_buildings
    from lod3d.outline.regularize import pixel_polygons

    rng = np.random.default_rng(3)
    ids = ((rng.random((40, 50)) < 0.55) * rng.integers(1, 4, (40, 50))).astype(np.int32)
    ids[5:15, 5:15] = 4    # a building with a hole
    ids[9:11, 9:11] = 0
    rings = trace_buildings(ids, min_area_px=1.0, min_hole_px=0.0)
    assert np.any(np.diff(rings.building_offsets) > 1)   # some building has holes
    t = Affine(0.5, 0.0, 100.0, 0.0, -0.5, 200.0)
    full = pixel_polygons(rings, t)
    which = np.array([2, 0, 2, len(rings) - 1], dtype=np.int64)
    assert shapely.equals_exact(pixel_polygons(rings, t, which), full[which], tolerance=0).all()
    assert len(pixel_polygons(rings, t, which[:0])) == 0


def _instance_scenes():
    """Instance rasters of every kind the id tracing must take: ids of one piece each,
    noise specks apart, specks touching other buildings, split instances with holes."""
    from lod3d.outline.synthetic import random_scene

    yield random_scene(1, n_side=4, noise=0.0)[0]
    for seed in range(4):
        yield random_scene(seed, n_side=4, noise=0.15, touching=0.5)[0]
    rng = np.random.default_rng(5)
    for _ in range(4):
        yield ((rng.random((40, 50)) < 0.6) * rng.integers(1, 6, (40, 50))).astype(np.int32)
    split = np.zeros((30, 40), np.int32)
    split[2:12, 2:12] = 7      # two pieces of id 7, the later one with a hole
    split[15:28, 20:35] = 7
    split[19:23, 24:28] = 0
    split[20, 25] = 3          # a speck inside that hole
    split[2:14, 22:34] = 9     # id 9: the larger outer ring has the smaller area (its hole)
    split[4:12, 24:32] = 0
    split[2:12, 36:40] = 9
    yield split


def test_instance_rasters_traced_on_their_ids_are_the_labelled_ones():
    """``polygonize_instances`` (the ids as labels, no label raster unless some pieces
    need their own) gives the rings and buildings of the labelling path, and a label
    raster that the regularizer reads to the same footprints."""
    from lod3d.kernels.outline_regularize import regularize_buildings
    from lod3d.kernels.outline_trace import polygonize_ids, polygonize_instances

    own = 0
    for ids in _instance_scenes():
        ids = np.ascontiguousarray(ids, dtype=np.int32)
        fast = polygonize_instances(ids, 4.0, 2.0)
        ref = polygonize_ids(ids, np.zeros((0, 0)), 2.0, 4.0, 2.0)
        for a, b in zip(fast[1:9], ref[1:9]):   # lo, hi, rings, buildings, areas, cut
            assert np.array_equal(a, b)
        labels, label = fast[0], fast[9]
        own += labels is ids
        for b, lab in enumerate(ref[9]):        # each building's pixels carry its label
            assert np.all(labels[ref[0] == lab] == label[b])
        outs = [regularize_buildings(r[3], r[4], r[5], r[0], r[9], 0.2, 50.0, 40.0, 10.0, 0.75, 150, True)
                for r in (fast, ref)]
        for a, b in zip(*outs):
            assert np.array_equal(a, b)
    assert 0 < own < 10                         # both ways were taken
