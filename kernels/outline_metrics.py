"""Max tangent angle error (MTA) between matched polygons (Numba; no lod3d imports).

The definition of Frame Field Learning (Girard et al. 2021), used as-is by HiSup (Xu et
al. 2023): every edge of the predicted polygon is split into pieces of about ``spacing``
units (its vertices kept, so no piece cuts a corner); each point is projected onto the
nearest point of the
true polygon's boundary (all its rings). Each pair of consecutive samples is an edge of the
resampled contour, each pair of consecutive projections the matching edge on the truth.
Edges whose projection has zero length, or is stretched or shrunk by a factor of
``max_stretch`` or more (the projection jumped across a corner), are left out. The
polygon's error is the largest angle, over the remaining edges, between an edge and its
projection (undirected, 0–90 degrees); a polygon without any remaining edge has none
(NaN). The reference implementations use spacing 1–2 px and ``max_stretch`` 2.
"""

import math

import numba
import numpy as np


@numba.njit(cache=True)
def _nearest_on_edges(px, py, edges):
    """Nearest point to (px, py) on the segments ``edges`` (rows x0, y0, x1, y1)."""
    best = np.inf
    bx = px
    by = py
    for j in range(edges.shape[0]):
        ax, ay = edges[j, 0], edges[j, 1]
        vx, vy = edges[j, 2] - ax, edges[j, 3] - ay
        vv = vx * vx + vy * vy
        t = 0.0
        if vv > 0.0:
            t = min(max(((px - ax) * vx + (py - ay) * vy) / vv, 0.0), 1.0)
        qx, qy = ax + t * vx, ay + t * vy
        d = (qx - px) ** 2 + (qy - py) ** 2
        if d < best:
            best = d
            bx = qx
            by = qy
    return bx, by


@numba.njit(cache=True)
def _ring_min_cos(ring, truth_edges, spacing, max_stretch):
    """Smallest |cos| between the pieces of the closed ``ring`` (k+1, 2; last = first) and
    their projections onto ``truth_edges``; 2.0 when no piece qualifies."""
    k = ring.shape[0] - 1
    n = 0
    for i in range(k):
        length = math.hypot(ring[i + 1, 0] - ring[i, 0], ring[i + 1, 1] - ring[i, 1])
        n += max(1, int(round(length / spacing)))
    sx = np.empty(n + 1)
    sy = np.empty(n + 1)
    s = 0
    for i in range(k):
        length = math.hypot(ring[i + 1, 0] - ring[i, 0], ring[i + 1, 1] - ring[i, 1])
        pieces = max(1, int(round(length / spacing)))
        for t in range(pieces):
            sx[s] = ring[i, 0] + (ring[i + 1, 0] - ring[i, 0]) * t / pieces
            sy[s] = ring[i, 1] + (ring[i + 1, 1] - ring[i, 1]) * t / pieces
            s += 1
    sx[n] = sx[0]
    sy[n] = sy[0]
    qx = np.empty(n + 1)
    qy = np.empty(n + 1)
    for s in range(n):
        qx[s], qy[s] = _nearest_on_edges(sx[s], sy[s], truth_edges)
    qx[n] = qx[0]
    qy[n] = qy[0]
    worst = 2.0
    for s in range(n):
        ex, ey = sx[s + 1] - sx[s], sy[s + 1] - sy[s]
        fx, fy = qx[s + 1] - qx[s], qy[s + 1] - qy[s]
        ne = math.hypot(ex, ey)
        nf = math.hypot(fx, fy)
        if ne * nf <= 0.0:
            continue
        stretch = ne / nf
        if not (1.0 / max_stretch < stretch < max_stretch):
            continue
        c = abs(ex * fx + ey * fy) / (ne * nf)
        if c < worst:
            worst = c
    return worst


@numba.njit(cache=True)
def max_tangent_angle(pred_xy, pred_rings, pred_polys, truth_edges, truth_offsets,
                      spacing, max_stretch):
    """Per matched pair k: MTA (degrees, NaN when undefined) of the predicted polygon k
    against the truth polygon k.

    Predicted rings are closed coordinate runs: ring r is ``pred_xy[pred_rings[r]:
    pred_rings[r+1]]`` and polygon k owns rings ``pred_polys[k]:pred_polys[k+1]``. Truth
    boundaries are edge lists (rows x0, y0, x1, y1), polygon k's are
    ``truth_edges[truth_offsets[k]:truth_offsets[k+1]]``.
    """
    n = pred_polys.shape[0] - 1
    out = np.full(n, np.nan)
    for k in range(n):
        edges = truth_edges[truth_offsets[k]:truth_offsets[k + 1]]
        if edges.shape[0] == 0:
            continue
        worst = 2.0
        for r in range(pred_polys[k], pred_polys[k + 1]):
            c = _ring_min_cos(pred_xy[pred_rings[r]:pred_rings[r + 1]], edges, spacing, max_stretch)
            worst = min(worst, c)
        if worst <= 1.0:
            out[k] = math.degrees(math.acos(worst))
    return out
