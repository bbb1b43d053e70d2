"""Pixel rings → regularized, valid, non-overlapping georeferenced footprints.

The geometry work is one call of :func:`lod3d.kernels.outline_regularize.regularize_buildings`
for all buildings (see its docstring for the MDL segmentation). This module turns its flat
arrays into shapely polygons in one vectorized step (``from_ragged_array``) and enforces
the guarantees the kernel alone cannot: every polygon valid (invalid ones are repaired,
or replaced by the Douglas–Peucker simplification of the pixel outline when the repair
would lose the building), holes that vanished dropped, and no two neighbours overlapping
(the overlap goes to the building whose pixels cover more of it; slivers left by the cut
are removed). Overlap checks use an STRtree over all polygons; only the few overlapping
pairs are handled one by one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine

from lod3d.kernels.outline_regularize import regularize_buildings

from .polygonize import Rings

__all__ = ["Params", "regularize", "pixel_polygons", "rings_to_polygons"]


@dataclass(frozen=True)
class Params:
    """Fit-versus-complexity weights (pixel units; see the kernel's docstring)."""

    sigma: float = 0.5           # expected boundary noise, pixels
    corner_penalty: float = 20.0  # cost of one more wall (two parameters: position, length)
    angle_penalty: float = 8.0    # cost of a free wall direction
    diag_penalty: float = 3.0     # cost of a wall at 45 degrees to the main axis
    cand_eps: float = 0.75        # Douglas–Peucker tolerance for candidate corners, pixels
    max_cand: int = 150           # candidates per ring before the tolerance is raised
    circles: bool = True          # let circles compete with polygons


def rings_to_polygons(xy: np.ndarray, ring_offsets: np.ndarray, building_offsets: np.ndarray,
                      transform: Affine) -> np.ndarray:
    """Shapely polygons (outer ring first, then holes) from flat pixel rings, georeferenced
    by ``transform`` and oriented counter-clockwise outside."""
    n_rings = len(ring_offsets) - 1
    lengths = np.diff(ring_offsets)
    closed_len = lengths + 1
    idx = np.repeat(ring_offsets[:-1], closed_len) + (np.arange(closed_len.sum())
                                                      - np.repeat(np.cumsum(closed_len) - closed_len, closed_len))
    last = np.cumsum(closed_len) - 1
    idx[last] = ring_offsets[:-1]                         # close each ring
    pts = xy[idx] if n_rings else np.zeros((0, 2))
    t = transform
    world = np.column_stack([t.a * pts[:, 0] + t.b * pts[:, 1] + t.c,
                             t.d * pts[:, 0] + t.e * pts[:, 1] + t.f])
    geoms = shapely.from_ragged_array(
        shapely.GeometryType.POLYGON, world,
        (np.concatenate(([0], np.cumsum(closed_len))), building_offsets))
    return shapely.orient_polygons(geoms)


def pixel_polygons(rings: Rings, transform: Affine) -> np.ndarray:
    """The pixel-exact outlines (staircases) of the buildings."""
    return rings_to_polygons(rings.xy, rings.ring_offsets, rings.building_offsets, transform)


def regularize(rings: Rings, transform: Affine, params: Params = Params()):
    """Regularized footprints of ``rings``.

    Returns ``(polygons, raw, theta, fallback)``: the footprints, the pixel outlines, each
    building's main axis (radians, pixel frame) and whether it fell back to the simplified
    pixel outline.
    """
    raw = pixel_polygons(rings, transform)
    if len(rings) == 0:
        return raw, raw, np.zeros(0), np.zeros(0, dtype=bool)
    out_xy, out_off, theta = regularize_buildings(
        rings.xy, rings.ring_offsets, rings.building_offsets, params.sigma, params.corner_penalty,
        params.angle_penalty, params.diag_penalty, params.cand_eps, params.max_cand, params.circles)
    # rings that collapsed below 3 vertices: holes are dropped, outers fall back
    n_vert = np.diff(out_off)
    ring_building = np.repeat(np.arange(len(rings)), np.diff(rings.building_offsets))
    is_outer = np.zeros(len(n_vert), dtype=bool)
    is_outer[rings.building_offsets[:-1]] = True
    ok_ring = n_vert >= 3
    collapsed = np.zeros(len(rings), dtype=bool)
    collapsed[ring_building[is_outer & ~ok_ring]] = True
    keep = ok_ring | is_outer
    keep &= ~collapsed[ring_building] | is_outer
    kept_len = n_vert[keep]
    starts = out_off[:-1][keep]
    gather = np.repeat(starts, kept_len) + (np.arange(kept_len.sum())
                                            - np.repeat(np.cumsum(kept_len) - kept_len, kept_len))
    b_off = np.concatenate(([0], np.cumsum(np.bincount(ring_building[keep], minlength=len(rings)))))
    # a collapsed outer ring gets a placeholder triangle, replaced below
    xy = out_xy[gather]
    r_off = np.concatenate(([0], np.cumsum(kept_len)))
    if collapsed.any():
        xy, r_off = _pad_collapsed(xy, r_off, kept_len)
    polys = rings_to_polygons(xy, r_off, b_off, transform)
    polys, fallback = _enforce_valid(polys, raw, collapsed, transform)
    polys = _remove_overlaps(polys, raw)
    return polys, raw, theta, fallback


def _pad_collapsed(xy, r_off, lengths):
    """Give rings with fewer than 3 vertices a zero-area triangle so arrays stay aligned."""
    pieces = []
    for r in range(len(lengths)):
        ring = xy[r_off[r]:r_off[r + 1]]
        if len(ring) < 3:
            base = ring[0] if len(ring) else np.zeros(2)
            ring = np.vstack([base, base, base])
        pieces.append(ring)
    new_len = np.array([len(p) for p in pieces])
    return np.vstack(pieces), np.concatenate(([0], np.cumsum(new_len)))


def _enforce_valid(polys, raw, collapsed, transform):
    """Repair invalid or implausible polygons; returns (polygons, fallback flags)."""
    res = abs(transform.a * transform.e - transform.b * transform.d) ** 0.5
    raw_valid = shapely.make_valid(raw)
    raw_area = shapely.area(raw_valid)
    bad = collapsed | ~shapely.is_valid(polys)
    if bad.any():
        polys[bad] = _largest_part(shapely.make_valid(polys[bad]))
    # implausible: a repaired polygon that lost its shape (IoU with its pixels < 0.85), or
    # any polygon whose area strays more than 15 % from its pixels' (cheap: no overlay)
    area = shapely.area(polys)
    fallback = np.abs(area - raw_area) > 0.15 * raw_area
    if bad.any():
        inter = shapely.area(shapely.intersection(polys[bad], raw_valid[bad]))
        union = area[bad] + raw_area[bad] - inter
        fallback[bad] |= inter < 0.85 * union
    if fallback.any():
        simple = shapely.simplify(raw_valid[fallback], 0.5 * res, preserve_topology=True)
        polys[fallback] = _largest_part(shapely.make_valid(simple))
    return polys, fallback


def _largest_part(geoms: np.ndarray) -> np.ndarray:
    """The polygon of largest area of each geometry (an empty polygon if none)."""
    parts, index = shapely.get_parts(geoms, return_index=True)
    is_poly = shapely.get_type_id(parts) == shapely.GeometryType.POLYGON
    parts, index = parts[is_poly], index[is_poly]
    out = np.array([shapely.Polygon()] * len(geoms), dtype=object)
    if len(parts):
        area = shapely.area(parts)
        order = np.lexsort((-area, index))
        first = np.ones(len(order), dtype=bool)
        first[1:] = index[order][1:] != index[order][:-1]
        out[index[order][first]] = parts[order][first]
    return out


def _remove_overlaps(polys: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Cut every overlap out of the neighbour whose pixels cover less of it."""
    tree = shapely.STRtree(polys)
    left, right = tree.query(polys, predicate="overlaps")
    pairs = left < right
    left, right = left[pairs], right[pairs]
    if not len(left):
        return polys
    raw_valid = shapely.make_valid(raw)
    polys = polys.copy()
    for i, j in zip(left.tolist(), right.tolist()):
        overlap = shapely.intersection(polys[i], polys[j])
        if shapely.area(overlap) <= 0:
            continue
        keep_i = shapely.area(shapely.intersection(overlap, raw_valid[i])) >= \
            shapely.area(shapely.intersection(overlap, raw_valid[j]))
        loser, winner = (j, i) if keep_i else (i, j)
        cut = shapely.difference(polys[loser], polys[winner])
        polys[loser] = _largest_part(np.array([shapely.make_valid(cut)], dtype=object))[0]
    return polys
