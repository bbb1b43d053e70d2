"""Max tangent angle error between polygon outlines (Numba; no lod3d imports).

For each pair of outlines A, B (flat edge lists), points are sampled along A's edges every
``spacing`` units, skipping ``margin`` at each end of an edge (corners are where the
correspondence is ambiguous). A sample's partner on B is the nearest crossing of B by the
normal of A through the sample (within ``max_dist``; samples without one are skipped),
which pairs a wall with the facing wall, not with a nearby perpendicular one; the tangent
angle difference there is undirected, 0-90 degrees. The pair's error is the maximum
over samples in both directions (A→B and B→A).
"""

import math

import numba
import numpy as np


@numba.njit(cache=True)
def _one_way(ea, eb, spacing, margin, max_dist):
    worst = 0.0
    for i in range(ea.shape[0]):
        x0, y0, x1, y1 = ea[i, 0], ea[i, 1], ea[i, 2], ea[i, 3]
        dx, dy = x1 - x0, y1 - y0
        length = math.sqrt(dx * dx + dy * dy)
        if length == 0.0:
            continue
        ux, uy = dx / length, dy / length
        usable = length - 2.0 * margin
        if usable <= 0.0:
            n_s = 1
            first = 0.5 * length
            step = 0.0
        else:
            n_s = int(usable / spacing) + 1
            step = usable / max(n_s - 1, 1)
            first = margin if n_s > 1 else 0.5 * length
        for s in range(n_s):
            t = first + s * step
            px, py = x0 + t * ux, y0 + t * uy
            best = max_dist
            bang = -1.0
            for j in range(eb.shape[0]):
                # where the normal through the sample crosses edge j: p + t*n = a + s*v
                ax, ay, bx, by = eb[j, 0], eb[j, 1], eb[j, 2], eb[j, 3]
                vx, vy = bx - ax, by - ay
                den = -(vx * ux + vy * uy)        # cross(n, v) with n = (-uy, ux)
                if den == 0.0:
                    continue
                wx, wy = ax - px, ay - py
                t = (wx * vy - wy * vx) / den     # cross(w, v) / cross(n, v)
                s_ = (wx * ux + wy * uy) / den    # cross(w, n) / cross(n, v)
                if s_ < 0.0 or s_ > 1.0 or abs(t) >= best:
                    continue
                best = abs(t)
                cosang = abs(ux * vx + uy * vy) / math.sqrt(vx * vx + vy * vy)
                bang = math.degrees(math.acos(min(cosang, 1.0)))
            if bang > worst:
                worst = bang
    return worst


@numba.njit(cache=True)
def max_tangent_angle(edges_a, offsets_a, edges_b, offsets_b, spacing, margin, max_dist):
    """Per pair k: max tangent angle error (degrees) between the outlines with edges
    ``edges_a[offsets_a[k]:offsets_a[k+1]]`` and ``edges_b[offsets_b[k]:offsets_b[k+1]]``
    (rows x0, y0, x1, y1)."""
    n = offsets_a.shape[0] - 1
    out = np.zeros(n)
    for k in range(n):
        ea = edges_a[offsets_a[k]:offsets_a[k + 1]]
        eb = edges_b[offsets_b[k]:offsets_b[k + 1]]
        if ea.shape[0] == 0 or eb.shape[0] == 0:
            out[k] = np.nan
            continue
        out[k] = max(_one_way(ea, eb, spacing, margin, max_dist), _one_way(eb, ea, spacing, margin, max_dist))
    return out
