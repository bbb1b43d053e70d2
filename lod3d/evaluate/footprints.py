"""Footprint accuracy: truth polygons vs predicted polygons, vectorized over a whole city.

Matching is one-to-one at IoU > 0.5 (at that threshold a building can overlap at most one
partner that much, so no assignment problem arises). Over matched pairs:

- **IoU** — intersection over union of the two polygons.
- **C-IoU** — complexity-aware IoU (HiSup): ``IoU * (1 - |Np - Nt| / (Np + Nt))`` with N the
  vertex counts (all rings, no closing repeats).
- **N-ratio** — total predicted vertices over total truth vertices.
- **PoLiS** — mean over the vertices of each polygon of the distance to the other's
  boundary, averaged both ways (Avbelj et al. 2015), in CRS units.
- **MTA** — max tangent angle error (Frame Field Learning), degrees; see
  :mod:`lod3d.kernels.outline_metrics` for the sampling.
- **matched share** — matched truth buildings over all truth buildings (recall); the
  ``precision`` is matched over predicted.
"""

from __future__ import annotations

import numpy as np
import shapely

from lod3d.kernels.outline_metrics import max_tangent_angle

__all__ = ["match", "vertex_count", "polis", "mta", "footprint_metrics"]


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
    """Vertices of each polygon over all its rings, closing repeats not counted."""
    polys = np.asarray(polys, dtype=object)
    rings = 1 + shapely.get_num_interior_rings(polys)
    return shapely.get_num_coordinates(polys) - rings


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


def _edges(polys):
    """Flat edges (x0, y0, x1, y1) of all rings and per-polygon offsets."""
    rings, ridx = shapely.get_rings(polys, return_index=True)
    coords, cidx = shapely.get_coordinates(rings, return_index=True)
    same = cidx[1:] == cidx[:-1]
    edges = np.column_stack([coords[:-1][same], coords[1:][same]])
    owner = ridx[cidx[:-1][same]]
    offsets = np.concatenate(([0], np.cumsum(np.bincount(owner, minlength=len(polys)))))
    return np.ascontiguousarray(edges, dtype=np.float64), offsets.astype(np.int64)


def mta(a, b, spacing: float = 0.25, margin: float = 1.0, max_dist: float = 3.0) -> np.ndarray:
    """Max tangent angle error (degrees) of each aligned pair; see the module docstring."""
    ea, oa = _edges(np.asarray(a, dtype=object))
    eb, ob = _edges(np.asarray(b, dtype=object))
    return max_tangent_angle(ea, oa, eb, ob, float(spacing), float(margin), float(max_dist))


def footprint_metrics(truth, pred, *, mta_margin: float = 1.0) -> dict:
    """All metrics for one set of truth and predicted footprints (CRS units, degrees)."""
    truth = np.asarray(truth, dtype=object)
    pred = np.asarray(pred, dtype=object)
    ti, pi, iou = match(truth, pred)
    nt = vertex_count(truth[ti]).astype(float)
    npred = vertex_count(pred[pi]).astype(float)
    ciou = iou * (1 - np.abs(npred - nt) / np.maximum(npred + nt, 1))
    pol = polis(truth[ti], pred[pi])
    ang = mta(truth[ti], pred[pi], margin=mta_margin)

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
