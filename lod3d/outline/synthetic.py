"""Synthetic building footprints and their noisy masks, for tests and benchmarks.

Shapes cover what the regularizer must handle: rectangles, L/T/U plans, courtyards,
chamfered corners, circles, at random orientations (some axis-aligned, some diagonal).
Buildings are placed on a grid of cells so they never overlap, optionally touching
(terraces). The mask is ``rasterio.features.rasterize`` of the polygons, with boundary
noise: each boundary pixel flips with probability ``noise``.
"""

from __future__ import annotations

import numpy as np
import rasterio.features
import shapely
from affine import Affine
from shapely import affinity

__all__ = ["KINDS", "random_building", "random_scene"]

KINDS = ("rect", "L", "T", "U", "courtyard", "chamfer", "circle")


def random_building(rng: np.random.Generator, kind: str, size: float) -> shapely.Polygon:
    """A footprint of ``kind`` about ``size`` metres across, centred on the origin."""
    w = size * rng.uniform(0.6, 1.0)
    h = size * rng.uniform(0.4, 1.0)
    a = rng.uniform(0.3, 0.45)  # wing width as a share of the size
    box = shapely.box(-w / 2, -h / 2, w / 2, h / 2)
    if kind == "rect":
        shape = box
    elif kind == "L":
        shape = box.difference(shapely.box(-w / 2 + a * w, -h / 2 + a * h, w / 2, h / 2))
    elif kind == "T":
        shape = box.difference(shapely.box(-w / 2, -h / 2, -a * w / 2, h / 2 - a * h)) \
                   .difference(shapely.box(a * w / 2, -h / 2, w / 2, h / 2 - a * h))
    elif kind == "U":
        shape = box.difference(shapely.box(-w / 2 + a * w, -h / 2 + a * h, w / 2 - a * w, h / 2))
    elif kind == "courtyard":
        shape = box.difference(shapely.box(-w / 2 + a * w, -h / 2 + a * h, w / 2 - a * w, h / 2 - a * h))
    elif kind == "chamfer":
        c = min(w, h) * rng.uniform(0.15, 0.3)
        shape = shapely.Polygon([(-w / 2 + c, -h / 2), (w / 2, -h / 2), (w / 2, h / 2 - c),
                                 (w / 2 - c, h / 2), (-w / 2, h / 2), (-w / 2, -h / 2 + c)])
    elif kind == "circle":
        shape = shapely.Point(0, 0).buffer(min(w, h) / 2, quad_segs=6)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    angle = rng.choice([0.0, 45.0, rng.uniform(0, 90)], p=[0.3, 0.1, 0.6])
    return shapely.orient_polygons(affinity.rotate(shape, angle, origin=(0, 0)))


def random_scene(seed: int, n_side: int = 10, cell: float = 30.0, res: float = 0.5,
                 noise: float = 0.1, kinds=KINDS, size=(8.0, 26.0), touching: float = 0.0):
    """A scene of ``n_side**2`` buildings on ``cell``-metre cells.

    Returns ``(mask, transform, polygons)``: a uint8 instance-id mask (ids 1..n; pass it
    through ``> 0`` for a binary mask), its north-up transform and the true polygons
    (index i has id i + 1). With ``touching`` > 0 that share of buildings is widened to
    touch its right neighbour's cell edge (pairs of touching buildings).
    """
    rng = np.random.default_rng(seed)
    polys = []
    for i in range(n_side * n_side):
        row, col = divmod(i, n_side)
        cx, cy = (col + 0.5) * cell, (n_side - row - 0.5) * cell
        p = random_building(rng, rng.choice(kinds), rng.uniform(*size))
        if touching and rng.random() < touching and col + 1 < n_side:
            p = shapely.box(cx - cell / 4, cy - cell / 4, (col + 1) * cell, cy + cell / 4)
        polys.append(affinity.translate(p, cx, cy))
    width = int(round(n_side * cell / res))
    transform = Affine(res, 0, 0, 0, -res, n_side * cell)
    mask = rasterio.features.rasterize(list(zip(polys, range(1, len(polys) + 1))),
                                       out_shape=(width, width), transform=transform,
                                       dtype="int32")
    if noise:
        mask = _boundary_noise(mask, rng, noise)
    return mask, transform, np.array(polys, dtype=object)


def _boundary_noise(mask: np.ndarray, rng: np.random.Generator, p: float) -> np.ndarray:
    """Flip boundary pixels: a building pixel next to background becomes background, or a
    background pixel next to one building takes its id, each with probability ``p``."""
    pad = np.pad(mask, 1)
    neigh = np.stack([pad[:-2, 1:-1], pad[2:, 1:-1], pad[1:-1, :-2], pad[1:-1, 2:]])
    flip = rng.random(mask.shape) < p
    out = mask.copy()
    inner_edge = (mask > 0) & (neigh == 0).any(axis=0)
    out[inner_edge & flip] = 0
    grow_id = neigh.max(axis=0)
    outer_edge = (mask == 0) & (grow_id > 0) & (neigh.min(axis=0, where=neigh > 0, initial=np.iinfo(mask.dtype).max) == grow_id)
    out[outer_edge & flip] = grow_id[outer_edge & flip]
    return out
