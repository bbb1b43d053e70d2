"""The overlap repair leaves no edge under MIN_EDGE pixels where it cut a building."""

import sys

import numpy as np
import shapely

from lod3d.kernels.outline_repair import drop_short_edges
from lod3d.outline import outline_mask
from lod3d.outline.synthetic import random_scene
from lod3d.raster import Raster

regularize_module = sys.modules["lod3d.outline.regularize"]


def _short_edges(polys, min_len):
    xy, ring_off, _ = regularize_module._closed_rings(polys)
    ring = np.repeat(np.arange(len(ring_off) - 1), np.diff(ring_off))
    d = np.diff(xy, axis=0)
    return int(((np.hypot(d[:, 0], d[:, 1]) < min_len) & (ring[1:] == ring[:-1])).sum())


def _overlap(polys):
    a, b = shapely.STRtree(polys).query(polys, predicate="intersects")
    keep = a < b
    return shapely.area(shapely.intersection(polys[a[keep]], polys[b[keep]])).max(initial=0.0)


def test_cut_buildings_keep_no_short_edge_and_no_overlap(monkeypatch):
    """Touching random buildings (seed 2): cutting the overlaps leaves two edges under
    0.3 px, one beside a convex corner and one at the bottom of a notch (both ends
    reflex, filled where that enters no neighbour). Both go; polygons stay valid,
    disjoint, and the same on a second run."""
    mask, transform, _ = random_scene(2, n_side=3, noise=0.0, touching=0.5, size=(3.0, 26.0))
    min_len = regularize_module.MIN_EDGE * abs(transform.a)
    with monkeypatch.context() as m:
        m.setattr(regularize_module, "_drop_short_edges", lambda polys, *args: polys)
        cut_only = outline_mask(Raster(mask, transform, None)).polygons
    assert _short_edges(cut_only, min_len) == 2
    polys = outline_mask(Raster(mask, transform, None)).polygons
    assert _short_edges(polys, min_len) == 0
    assert shapely.is_valid(polys).all() and _overlap(polys) < 1e-6
    assert shapely.equals_exact(polys, outline_mask(Raster(mask, transform, None)).polygons, 0).all()


def test_kernel_drops_the_convex_end_only():
    """A 10 x 10 square whose top wall steps down by 0.05: of the step's two ends the
    convex one is dropped (the polygon shrinks by a triangle), the reflex one kept."""
    ring = np.array([[0, 0], [10, 0], [10, 10], [5, 10], [5, 9.95], [0, 9.95], [0, 0]], float)
    xy, ring_off, dropped, short = drop_short_edges(ring, np.array([0, 7]), np.array([0, 1]), 0.15)
    poly = shapely.Polygon(xy)
    assert dropped.tolist() == [1] and ring_off.tolist() == [0, 6] and short.tolist() == [False]
    assert [5.0, 10.0] not in xy.tolist() and [5.0, 9.95] in xy.tolist()
    assert poly.is_valid and poly.area < 10 * 9.975 and poly.within(shapely.Polygon(ring).buffer(1e-9))


def test_kernel_reports_a_short_edge_it_cannot_drop():
    """A narrow notch (0.05 wide) in a square's top wall: both ends of its bottom edge are
    reflex, so the kernel keeps them and says a short edge is left (the caller's
    ``_fill_notch`` takes it)."""
    ring = np.array([[0, 0], [10, 0], [10, 10], [5.05, 10], [5.05, 9], [5, 9], [5, 10], [0, 10], [0, 0]],
                    float)
    xy, ring_off, dropped, short = drop_short_edges(ring, np.array([0, 9]), np.array([0, 1]), 0.15)
    assert dropped.tolist() == [0] and short.tolist() == [True]
    assert np.array_equal(xy, ring)
