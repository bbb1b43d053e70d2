"""The Numba helpers of the overlap repair against GEOS: the exact point-in-pixel-outline
test, the bounding-box pair sweep, the overlap cut of polygons crossing twice and the
areas and boxes of the regularizer's rings."""

import numpy as np
import shapely
from affine import Affine

from lod3d.kernels.outline_repair import (
    box_pairs,
    footprint_rings,
    inside_pixel_rings,
    cuts_in_turn,
    overlap_areas,
    overlap_points,
)
from lod3d.outline.polygonize import trace_buildings
from lod3d.outline.regularize import VALID_TOL, pixel_polygons, rings_to_polygons


def _random_mask(seed, shape=(40, 50)):
    rng = np.random.default_rng(seed)
    m = np.zeros(shape, np.int32)
    for k in range(1, 9):
        r, c = rng.integers(0, shape[0] - 6), rng.integers(0, shape[1] - 6)
        m[r:r + rng.integers(3, 12), c:c + rng.integers(3, 12)] = k
    m[rng.random(shape) < 0.05] = 0    # holes and ragged edges
    return m


def test_inside_pixel_rings_is_geos_contains_on_and_off_the_pixel_edges():
    t = Affine(0.5, 0, 300000.0, 0, -0.5, 5000000.0)
    for seed in range(5):
        rings = trace_buildings(_random_mask(seed), min_area_px=1, min_hole_px=1)
        polys = pixel_polygons(rings, t)
        rng = np.random.default_rng(seed)
        # points on pixel corners, on pixel edges and inside pixels, of every building
        col = rng.integers(0, 100, 4000) / 2.0
        row = rng.integers(0, 80, 4000) / 2.0
        col[::3] += rng.random(len(col[::3]))
        x, y = t.a * col + t.c, t.e * row + t.f
        b = rng.integers(0, len(rings), len(x))
        got = inside_pixel_rings(rings.xy, rings.ring_offsets, rings.building_offsets, b, x, y,
                                 t.a, t.b, t.c, t.d, t.e, t.f)
        assert (got >= 0).all() and (got == 1).sum() > 20 and (got == 0).sum() > 20
        assert np.array_equal(got == 1, shapely.contains_xy(polys[b], x, y))


def test_inside_pixel_rings_refuses_oblique_edges():
    square = np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0]])
    got = inside_pixel_rings(square, np.array([0, 4]), np.array([0, 1]), np.array([0]),
                             np.array([1.0]), np.array([1.0]), 1.0, 0.5, 0.0, 0.0, 1.0, 0.0)
    assert got.tolist() == [-1]


def test_box_pairs_are_the_strtree_pairs_sorted():
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 60, 300).astype(float), rng.integers(0, 60, 300).astype(float)
    boxes = np.column_stack([x, y, x + rng.integers(0, 6, 300), y + rng.integers(0, 6, 300)])
    boxes[7] = np.nan                  # an empty geometry's bounds
    geoms = shapely.box(*boxes.T)
    left, right = shapely.STRtree(geoms).query(geoms)
    keep = left < right
    order = np.lexsort((right[keep], left[keep]))
    got_l, got_r = box_pairs(boxes)
    assert np.array_equal(got_l, left[keep][order]) and np.array_equal(got_r, right[keep][order])
    assert 7 not in got_l and 7 not in got_r


def test_separated_by_a_wall_line_up_to_the_tolerance():
    """``_separated`` (the overlap filter's shortcut) holds for neighbours whose walls meet
    on a line, up to the tolerance and in either order, not for an overlap, nor for a
    block in an L's notch (no one line separates them, though they only touch)."""
    from lod3d.kernels.outline_repair import _separated

    def sep(a, b, tol):
        xy = np.concatenate([np.asarray(a.exterior.coords), np.asarray(b.exterior.coords)])
        na, nb = len(a.exterior.coords) - 1, len(b.exterior.coords) - 1
        return _separated(xy, 0, na, na + 1, nb, np.array(a.bounds), np.array(b.bounds), tol)

    x0, y0 = 374000.0, 4829000.0
    a = shapely.Polygon([(x0, y0), (x0 + 10, y0 + 1), (x0 + 9, y0 + 9), (x0 - 1, y0 + 8)])
    u = np.array([10.0, 1.0]) / np.hypot(10.0, 1.0)         # along a's first wall
    n = np.array([u[1], -u[0]])                              # out of a, across that wall
    for depth, tol, expect in ((0.0, 1e-8, True), (3e-9, 1e-8, True), (3e-8, 1e-8, False),
                               (0.1, 1e-8, False), (0.1, 0.2, True)):
        p0 = np.array([x0, y0]) + 2 * u - depth * n          # b reaches depth into a
        b = shapely.Polygon([p0, p0 + 5 * n, p0 + 5 * n + 4 * u, p0 + 4 * u])
        assert sep(a, b, tol) == expect and sep(b, a, tol) == expect
    ell = shapely.Polygon([(0, 0), (6, 0), (6, 2), (2, 2), (2, 6), (0, 6)])
    notch = shapely.Polygon([(2, 2), (5, 2), (5, 5), (2, 5)])
    assert not sep(ell, notch, 1e-9) and not sep(notch, ell, 1e-9)


def test_in_pixels_is_geos_contains_with_and_without_rotation():
    from lod3d.outline.regularize import _in_pixels
    rings = trace_buildings(_random_mask(7), min_area_px=1, min_hole_px=1)
    rng = np.random.default_rng(7)
    left = rng.integers(0, len(rings), 500)
    right = rng.integers(0, len(rings), 500)
    col, row = rng.integers(0, 100, 500) / 2.0, rng.integers(0, 80, 500) / 2.0
    for t in (Affine(0.5, 0, 1000.0, 0, -0.5, 2000.0),
              Affine.translation(1000.0, 2000.0) @ Affine.rotation(30) @ Affine.scale(0.5, -0.5)):
        x, y = t.a * col + t.b * row + t.c, t.d * col + t.e * row + t.f
        in_left, in_right = _in_pixels(rings, t, left, right, x, y)
        polys = pixel_polygons(rings, t)
        assert np.array_equal(in_left, shapely.contains_xy(polys[left], x, y))
        assert np.array_equal(in_right, shapely.contains_xy(polys[right], x, y))
        assert in_left.any() and not in_left.all()


def _flat(polys):
    """Closed rings of polygons as the kernels read them: (xy, ring_off, poly_off)."""
    rings, ridx = shapely.get_rings(polys, return_index=True)
    coords, cidx = shapely.get_coordinates(rings, return_index=True)
    ring_off = np.concatenate(([0], np.cumsum(np.bincount(cidx)))).astype(np.int64)
    poly_off = np.concatenate(([0], np.cumsum(np.bincount(ridx)))).astype(np.int64)
    return coords, ring_off, poly_off


def _cuts(polys):
    """The Numba cuts of the pair (polys[0], polys[1]) as the regularizer makes them: the
    point inside the overlap (:func:`overlap_points`) and each way round, (0 - 1, 1 - 0),
    the cut alone (:func:`cuts_in_turn`). Returns ``(done, px, py, cut_xy, cut_off)``
    with ``done[0, w]`` and ring w ``cut_xy[cut_off[w]:cut_off[w + 1]]``."""
    coords, ring_off, poly_off = _flat(polys)
    left, right = np.array([0]), np.array([1])
    area, unclear = overlap_areas(coords, ring_off, poly_off, left, right, 1e-9)
    assert not unclear[0]
    px, py = overlap_points(coords, ring_off, poly_off, left, right, area, 1e-9, 1e-7)
    ways = np.array([0, 1]), np.array([1, 0])
    done, cut_xy, cut_off = cuts_in_turn(coords, ring_off, poly_off, *ways, np.repeat(area, 2), 1e-9, 1e-7)
    return done[None], px, py, cut_xy, cut_off


def test_numba_cuts_are_geos_difference_and_point_on_surface():
    rng = np.random.default_rng(3)
    n_done = 0
    for _ in range(200):
        # a wall between two buildings, each side tilted a little: a sliver overlap, or a
        # corner of one inside the other (an L-shaped winner too)
        x0, y0 = 374000.0 + rng.uniform(0, 50), 4829000.0 + rng.uniform(0, 50)
        tilt = rng.uniform(-0.01, 0.01, 2)
        a = shapely.Polygon([(x0, y0), (x0 + 10, y0 + tilt[0] * 10), (x0 + 10, y0 + 8), (x0, y0 + 8)])
        shift = rng.uniform(-6, 6)
        bx = [x0 + shift, x0 + shift + 12, x0 + shift + 12, x0 + shift + 6, x0 + shift + 6, x0 + shift]
        by = [y0 - 9, y0 - 9, y0 - 4, y0 - 4, y0 + tilt[1] * 6 + 0.05, y0 + tilt[1] * 6 + 0.05]
        b = shapely.Polygon(list(zip(bx, by)))
        polys = shapely.orient_polygons(np.array([a, b]))
        if not shapely.intersection(a, b).area > 1e-6:
            continue
        done, px, py, cut_xy, cut_off = _cuts(polys)
        for w, (p, q) in enumerate([(polys[0], polys[1]), (polys[1], polys[0])]):
            if done[0, w]:
                n_done += 1
                cut = shapely.Polygon(cut_xy[cut_off[w]:cut_off[w + 1]])
                assert cut.is_valid
                geos = shapely.difference(p, q)
                assert shapely.equals_exact(shapely.normalize(cut), shapely.normalize(geos), 1e-6)
        if done[0].any():
            pos = shapely.point_on_surface(shapely.intersection(polys[0], polys[1]))
            assert abs(px[0] - pos.x) < 1e-6 and abs(py[0] - pos.y) < 1e-6
    assert n_done > 100


def _assert_geos_cut(polys, done, px, py, cut_xy, cut_off, tol):
    """Each cut Numba made is GEOS ``make_valid(difference)``'s largest part up to
    ``tol`` (Hausdorff), valid; a point it gave lies in the overlap (within ``tol``)."""
    for w, (p, q) in enumerate([(polys[0], polys[1]), (polys[1], polys[0])]):
        if done[0, w]:
            cut = shapely.Polygon(cut_xy[cut_off[w]:cut_off[w + 1]])
            geos = shapely.make_valid(shapely.difference(p, q))
            if geos.geom_type != "Polygon":
                geos = max(geos.geoms, key=lambda g: g.area)
            assert cut.is_valid and cut.exterior.is_ccw
            assert shapely.hausdorff_distance(cut, geos) < tol
            assert abs(cut.area - geos.area) < tol
    if not np.isnan(px[0]):
        overlap = shapely.intersection(polys[0], polys[1])
        assert shapely.distance(shapely.Point(px[0], py[0]), overlap) < tol


def test_numba_cuts_a_comb_crossing_four_times_as_geos():
    """A winner poking two teeth through the loser's wall: the boundaries cross four
    times, A - B is one piece, A & B two (the point is in the wider tooth); cut the
    other way round, B - A falls in three pieces, of which the largest is kept."""
    a = shapely.Polygon([(0, 0), (10, 0), (10, 8), (0, 8)])
    comb = shapely.Polygon([(2, -3), (8, -3), (8, 1), (6, 1), (6, -1), (4.5, -1), (4.5, 1.5), (2, 1.5)])
    polys = shapely.orient_polygons(np.array([a, comb]))
    done, px, py, cut_xy, cut_off = _cuts(polys)
    assert done.all() and not np.isnan(px[0])
    _assert_geos_cut(polys, done, px, py, cut_xy, cut_off, 1e-12)
    pos = shapely.point_on_surface(shapely.intersection(polys[0], polys[1]))
    assert abs(px[0] - pos.x) < 1e-9 and abs(py[0] - pos.y) < 1e-9   # the wider tooth


def test_numba_cuts_neighbours_sharing_a_wall_line_as_geos():
    """T-junctions: a corner of the winner on the loser's wall (exactly, and up to the
    rounding of a wall shared by two neighbours, on either side), and a wall of one on
    the other's wall line with a step in it. Exact on-wall corners count as on the left
    of the wall, consistently: the cut is GEOS's. Corners 1e-11 off a wall make the
    boundaries cross where the walls graze: the cut is GEOS's up to that rounding and
    the point lies in the overlap, though GEOS, placing the crossings otherwise, may
    pick another section."""
    rng = np.random.default_rng(5)
    n_done = 0
    for _ in range(100):
        x0, y0 = 85000.0 + rng.uniform(0, 50), 447000.0 + rng.uniform(0, 50)
        angle = rng.choice([0.0, rng.uniform(0, np.pi)])   # 0: corners exactly on the wall
        c, s = np.cos(angle), np.sin(angle)
        def place(pts):
            pts = np.asarray(pts, float)
            return np.c_[x0 + c * pts[:, 0] - s * pts[:, 1], y0 + s * pts[:, 0] + c * pts[:, 1]]
        a = place([(0, 0), (10, 0), (10, 8), (0, 8)])
        off = rng.choice([0.0, 1e-11, -1e-11], 2)
        # the winner's wall runs along a's east wall (x = 10) from y = 2 to 6, then
        # steps 0.3 into a: an overlap bounded by the shared wall line
        b = place([(10 + off[0], 2), (14, 2), (14, 7), (9.7, 7), (9.7, 6), (10 + off[1], 6)])
        polys = shapely.orient_polygons(np.array([shapely.Polygon(a), shapely.Polygon(b)]))
        if not shapely.intersection(polys[0], polys[1]).area > 1e-6:
            continue
        done, px, py, cut_xy, cut_off = _cuts(polys)
        n_done += done.sum()
        _assert_geos_cut(polys, done, px, py, cut_xy, cut_off, 1e-6)
    assert n_done > 150


def test_cuts_in_turn_cut_a_loser_by_each_neighbour():
    """A building overlapped by two neighbours along two walls is cut by both in turn,
    as GEOS ``(a - b) - c``; where the two neighbours overlap inside it, the second cut
    takes less than the pair's overlap and is left to GEOS (the first is kept)."""
    a = shapely.Polygon([(0, 0), (10, 0.02), (10, 8), (0.03, 8)])
    b = shapely.Polygon([(9.8, -2), (16, -2), (16, 9), (9.7, 9)])      # across the east wall
    c = shapely.Polygon([(-2, 7.9), (12, 7.7), (12, 12), (-2, 12)])    # across the north wall
    polys = shapely.orient_polygons(np.array([a, b, c]))
    coords, ring_off, poly_off = _flat(polys)
    winners = np.array([1, 2])
    area, _ = overlap_areas(coords, ring_off, poly_off, np.zeros(2, np.int64), winners, 1e-9)
    done, cut_xy, cut_off = cuts_in_turn(coords, ring_off, poly_off, np.zeros(2, np.int64),
                                         winners, area, 1e-9, 1e-7)
    assert done.tolist() == [True, False]      # b and c overlap inside a: one cut only
    cut = shapely.Polygon(cut_xy[cut_off[0]:cut_off[1]])
    assert shapely.equals_exact(shapely.normalize(cut), shapely.normalize(polys[0] - polys[1]), 1e-9)
    c = shapely.Polygon([(-2, 7.9), (9.6, 7.7), (9.6, 12), (-2, 12)])    # now clear of b
    polys = shapely.orient_polygons(np.array([a, b, c]))
    coords, ring_off, poly_off = _flat(polys)
    area, _ = overlap_areas(coords, ring_off, poly_off, np.zeros(2, np.int64), winners, 1e-9)
    done, cut_xy, cut_off = cuts_in_turn(coords, ring_off, poly_off, np.zeros(2, np.int64),
                                         winners, area, 1e-9, 1e-7)
    cut = shapely.Polygon(cut_xy[cut_off[0]:cut_off[1]])
    assert done.tolist() == [True, True] and cut.is_valid
    assert shapely.equals_exact(shapely.normalize(cut), shapely.normalize(polys[0] - polys[1] - polys[2]), 1e-9)


def test_footprint_rings_areas_and_boxes_are_geos_to_the_bit():
    """The regularizer skips ``shapely.area`` and ``shapely.bounds`` on its polygons: the
    kernel's must be GEOS's exactly (the fallback test compares areas with a threshold).
    Oblique rings with holes in map coordinates, both axis orientations."""
    rng = np.random.default_rng(5)
    for t in (Affine(0.5, 0, 300000.0, 0, -0.5, 5000000.0), Affine(0.3, 0.1, -12.5, -0.2, 0.4, 7.25)):
        xy, ring_off, b_off = [], [0], [0]
        for _ in range(60):
            cx, cy = rng.uniform(0, 500, 2)
            for r, n in ((rng.uniform(8, 20), rng.integers(3, 12)), (rng.uniform(1, 4), 5)):
                a = np.sort(rng.uniform(0, 2 * np.pi, n))
                sign = 1 if r > 5 else -1      # outer rings counter-clockwise, holes clockwise
                xy.append(np.column_stack([cx + r * np.cos(sign * a), cy + r * np.sin(sign * a)]))
                ring_off.append(ring_off[-1] + n)
            b_off.append(b_off[-1] + 2)
        xy = np.concatenate(xy)
        ring_off, b_off = np.array(ring_off), np.array(b_off)
        world, closed, b_off2, collapsed, certain, area, boxes = footprint_rings(
            xy, ring_off, b_off, t.a, t.b, t.c, t.d, t.e, t.f, t.a * t.e - t.b * t.d < 0, VALID_TOL)
        polys = rings_to_polygons(xy, ring_off, b_off, t)
        assert np.array_equal(b_off2, b_off) and not collapsed.any() and certain.sum() > 30
        assert np.array_equal(area, shapely.area(polys))
        assert np.array_equal(boxes, shapely.bounds(polys))
        got = shapely.from_ragged_array(shapely.GeometryType.POLYGON, world, (closed, b_off2))
        assert shapely.equals_exact(got, polys, tolerance=0).all()


def test_overlap_point_avoids_a_needle():
    """Two Delft neighbours whose walls cross at a sharp angle: their overlap is a 0.37 m²
    body plus a needle of no width reaching 11 m off, which GEOS's scan line meets (its
    point_on_surface lies on the needle, on the boundary up to rounding). The Numba point
    is taken through the overlap's centroid instead: well inside the body."""
    a = shapely.Polygon([(3.117304586994578, 10.036118886026088), (-5.842155560632818, 2.8137653234880418),
                         (0.307789424987277, 0.8563165756640956), (9.474498776777182, 8.245736792101525),
                         (4.699864337017061, 14.168757122301031), (1.7213955369079486, 11.767769295489416)])
    b = shapely.Polygon([(9.349162901533418, 8.144701686222106), (0.39549813958001323, 0.9270198699668981),
                         (6.508987764304038, -1.0882508733775467), (15.614799936593045, 6.252079224446788),
                         (10.788833451995743, 12.238777884165756), (7.9158152552408865, 9.92279535101261)])
    polys = shapely.orient_polygons(np.array([a, b]))
    overlap = shapely.intersection(polys[0], polys[1])
    assert shapely.distance(shapely.point_on_surface(overlap), overlap.exterior) < 1e-6
    done, px, py, cut_xy, cut_off = _cuts(polys)
    assert done.any() and not np.isnan(px[0])
    _assert_geos_cut(polys, done, px, py, cut_xy, cut_off, 1e-6)
    assert shapely.distance(shapely.Point(px[0], py[0]), overlap.exterior) > 0.02


def test_pairs_geos_finds_apart_are_dropped_with_their_rings(monkeypatch):
    """Pairs the Numba overlap cannot clear go to GEOS; those GEOS finds apart (touching
    neighbours) leave the overlap removal with their ring indices, the rest are cut."""
    import importlib

    from lod3d.outline import outline_mask
    from lod3d.outline.synthetic import random_scene
    from lod3d.raster import Raster

    def unclear_overlaps(*args):
        area, unclear = overlap_areas(*args)
        return area, np.ones_like(unclear)

    monkeypatch.setattr(importlib.import_module("lod3d.outline.regularize"), "overlap_areas", unclear_overlaps)
    mask, transform, _ = random_scene(3, n_side=6, noise=0.1, touching=0.8)   # 5 pairs, 4 overlap
    polys = outline_mask(Raster(mask, transform, None)).polygons
    assert shapely.is_valid(polys).all()
    left, right = shapely.STRtree(polys).query(polys, predicate="intersects")
    keep = left < right
    assert (shapely.area(shapely.intersection(polys[left[keep]], polys[right[keep]])) < 1e-6).all()
