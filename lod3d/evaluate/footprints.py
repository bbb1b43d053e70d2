"""Footprint accuracy: truth polygons vs predicted polygons, vectorized over a whole city.

Matching is one-to-one at IoU > 0.5 (at that threshold a building can overlap at most one
partner that much, so no assignment problem arises). Over matched pairs:

- **IoU** — intersection over union of the two polygons.
- **C-IoU** — complexity-aware IoU (HiSup): ``IoU * (1 - |Np - Nt| / (Np + Nt))`` with N the
  vertex counts (all rings, no closing repeats).
- **N-ratio** — total predicted vertices over total truth vertices.
- **PoLiS** — mean over the vertices of each polygon of the distance to the other's
  boundary, averaged both ways (Avbelj et al. 2015), in CRS units.
- **MTA** — max tangent angle error (Frame Field Learning, HiSup), degrees: the predicted
  rings resampled every ``mta_spacing`` units and projected onto the nearest true
  contour (of any true building, as in their code); the
  largest angle between a resampled edge and its projection (edges stretched 2x or more by
  the projection left out), averaged over matched buildings. See
  :mod:`lod3d.kernels.outline_metrics`.
- **matched share** — matched truth buildings over all truth buildings (recall); the
  ``precision`` is matched over predicted.
"""

from __future__ import annotations

import numpy as np
import shapely

from lod3d.kernels.outline_metrics import max_tangent_angle

__all__ = ["match", "vertex_count", "polis", "mta", "footprint_metrics", "mask_reference"]


def match(truth, pred, min_iou: float = 0.5):
    """One-to-one matches ``(truth_index, pred_index, iou)`` with IoU > ``min_iou`` (≥ 0.5)."""
    truth = np.asarray(truth, dtype=object)
    pred = np.asarray(pred, dtype=object)
    if not len(truth) or not len(pred):
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0)
    p_idx, t_idx = shapely.STRtree(truth).query(pred, predicate="intersects")
    inter = shapely.area(shapely.intersection(truth[t_idx], pred[p_idx]))
    union = shapely.area(truth[t_idx]) + shapely.area(pred[p_idx]) - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    ok = iou > max(min_iou, 0.5)
    return t_idx[ok], p_idx[ok], iou[ok]


def vertex_count(polys) -> np.ndarray:
    """Vertices of each (multi)polygon over all its rings, closing repeats not counted."""
    polys = np.asarray(polys, dtype=object)
    parts, idx = shapely.get_parts(polys, return_index=True)
    rings = np.bincount(idx, weights=1 + shapely.get_num_interior_rings(parts), minlength=len(polys))
    return (shapely.get_num_coordinates(polys) - rings).astype(np.int64)


def mask_reference(truth, res: float) -> np.ndarray:
    """The true footprints as a mask of pixel size ``res`` can show them, for use as the
    reference of mask-derived outlines.

    Collinear vertices and jogs that stray less than ``res / 5`` from the wall (sub-
    decimetre steps at 0.5 m, a quarter of the ±0.25 m position quantization of a mask
    boundary) are removed by topology-preserving Douglas–Peucker; nothing a mask of that
    pixel size could resolve is touched, so the vertex counts, PoLiS and MTA against this
    reference still charge every corner the mask shows and the outline misses.
    """
    return shapely.simplify(np.asarray(truth, dtype=object), 0.2 * res, preserve_topology=True)


def _unique_vertices(polys):
    pts = shapely.extract_unique_points(polys)
    return shapely.get_parts(pts, return_index=True)


def polis(a, b) -> np.ndarray:
    """PoLiS distance of each aligned pair ``(a[k], b[k])``."""
    a = np.asarray(a, dtype=object)
    b = np.asarray(b, dtype=object)

    def one_way(src, dst):
        pts, idx = _unique_vertices(src)
        d = shapely.distance(pts, shapely.boundary(dst)[idx])
        return np.bincount(idx, weights=d, minlength=len(src)) / np.maximum(
            np.bincount(idx, minlength=len(src)), 1)

    return 0.5 * (one_way(a, b) + one_way(b, a))


def _rings(polys):
    """Closed rings of all (multi)polygons as flat coordinates: ``(xy, ring_offsets,
    polygon_offsets)``, polygon k owning rings ``polygon_offsets[k]:polygon_offsets[k+1]``."""
    parts, pidx = shapely.get_parts(polys, return_index=True)
    rings, ridx = shapely.get_rings(parts, return_index=True)
    coords, cidx = shapely.get_coordinates(rings, return_index=True)
    ring_off = np.concatenate(([0], np.cumsum(np.bincount(cidx, minlength=len(rings)))))
    poly_off = np.concatenate(([0], np.cumsum(np.bincount(pidx[ridx], minlength=len(polys)))))
    return np.ascontiguousarray(coords, dtype=np.float64), ring_off.astype(np.int64), poly_off.astype(np.int64)


def _edges(polys):
    """Flat edges (x0, y0, x1, y1) of all rings and per-polygon offsets."""
    xy, ring_off, poly_off = _rings(polys)
    owner_ring = np.repeat(np.arange(len(ring_off) - 1), np.diff(ring_off))
    same = owner_ring[1:] == owner_ring[:-1]
    edges = np.column_stack([xy[:-1][same], xy[1:][same]])
    ring_poly = np.repeat(np.arange(len(poly_off) - 1), np.diff(poly_off))
    owner = ring_poly[owner_ring[:-1][same]]
    offsets = np.concatenate(([0], np.cumsum(np.bincount(owner, minlength=len(polys)))))
    return np.ascontiguousarray(edges, dtype=np.float64), offsets.astype(np.int64)


def mta(truth, pred, spacing: float = 1.0, max_stretch: float = 2.0, contours=None) -> np.ndarray:
    """Max tangent angle error (degrees) of each aligned pair ``(truth[k], pred[k])``.
    ``spacing`` is in CRS units: 1 m is HiSup's 2 px at the 0.5 m of our masks; 0.5 m
    (1 px, as in Frame Field Learning) charges sub-pixel corner offsets much more.

    ``contours``: all true footprints. Frame Field Learning (and HiSup with its code)
    projects each predicted polygon onto the contours of every true building, so a
    wall along a neighbour may project onto the neighbour's ring; without ``contours``
    only the matched truth is used. The truths that can hold a nearest point are those
    within the Hausdorff distance of the pair's boundaries (no sample of the prediction
    is farther than that from its own truth), found with an STRtree."""
    pred = np.asarray(pred, dtype=object)
    truth = np.asarray(truth, dtype=object)
    xy, ring_off, poly_off = _rings(pred)
    if contours is None:
        edges, e_off = _edges(truth)
    else:
        contours = np.asarray(contours, dtype=object)
        # a point of a predicted edge is within half the edge's length of one of its ends,
        # which are within the (vertex) Hausdorff distance of the own truth's boundary
        owner = np.repeat(np.arange(len(ring_off) - 1), np.diff(ring_off))
        same = owner[1:] == owner[:-1]
        seg = np.hypot(*(xy[1:] - xy[:-1]).T)[same]
        ring_poly = np.repeat(np.arange(len(pred)), np.diff(poly_off))
        longest = np.zeros(len(pred))
        np.maximum.at(longest, ring_poly[owner[:-1][same]], seg)
        reach = shapely.hausdorff_distance(shapely.boundary(pred), shapely.boundary(truth)) + 0.5 * longest
        p_idx, c_idx = shapely.STRtree(contours).query(pred, predicate="dwithin", distance=reach)
        order = np.argsort(p_idx, kind="stable")
        p_idx, c_idx = p_idx[order], c_idx[order]
        c_edges, c_off = _edges(contours)
        counts = (c_off[1:] - c_off[:-1])[c_idx]
        starts = c_off[:-1][c_idx]
        gather = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts) + np.arange(counts.sum())
        edges = np.ascontiguousarray(c_edges[gather])
        e_off = np.concatenate(([0], np.cumsum(np.bincount(p_idx, weights=counts, minlength=len(pred))))).astype(np.int64)
    return max_tangent_angle(xy, ring_off, poly_off, edges, e_off, float(spacing), float(max_stretch))


def footprint_metrics(truth, pred, *, mta_spacing: float = 1.0) -> dict:
    """All metrics for one set of truth and predicted footprints (CRS units, degrees)."""
    truth = np.asarray(truth, dtype=object)
    pred = np.asarray(pred, dtype=object)
    ti, pi, iou = match(truth, pred)
    nt = vertex_count(truth[ti]).astype(float)
    npred = vertex_count(pred[pi]).astype(float)
    ciou = iou * (1 - np.abs(npred - nt) / np.maximum(npred + nt, 1))
    pol = polis(truth[ti], pred[pi])
    ang = mta(truth[ti], pred[pi], spacing=mta_spacing, contours=truth)

    def mean(x):
        return float(np.nanmean(x)) if len(x) else float("nan")

    return {
        "n_truth": int(len(truth)),
        "n_pred": int(len(pred)),
        "matched": int(len(ti)),
        "matched_share": len(ti) / len(truth) if len(truth) else float("nan"),
        "precision": len(pi) / len(pred) if len(pred) else float("nan"),
        "iou": mean(iou),
        "ciou": mean(ciou),
        "n_ratio": float(npred.sum() / nt.sum()) if nt.sum() else float("nan"),
        "polis": mean(pol),
        "mta": mean(ang),
    }
