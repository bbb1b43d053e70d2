"""Semi-global aggregation over 8 paths, winner-take-all with subpixel refinement.

Hirschmüller's SGM on a cost volume ``cost`` (ny, nx, D) uint8 whose labels are heights
on the output grid (an object-space sweep) — the recursion is the same as for disparities:
``L(p, d) = C(p, d) + min(L(q, d), L(q, d±1) + P1, min_k L(q, k) + P2) − min_k L(q, k)``
along each of the 8 directions, summed into ``S`` (ny, nx, D) uint16.
"""

import numba
import numpy as np

# (di, dj) of the 8 paths: the predecessor of cell (i, j) is (i - di, j - dj).
DIRECTIONS = np.array([[0, 1], [0, -1], [1, 0], [-1, 0], [1, 1], [1, -1], [-1, 1], [-1, -1]],
                      dtype=np.int64)


@numba.njit(cache=True, nogil=True)
def _path(cost, p1, p2, di, dj, agg):
    ny, nx, nd = cost.shape
    prev = np.zeros((nx, nd), np.int32)   # L of the previous row (for di != 0)
    cur = np.zeros((nx, nd), np.int32)
    prev_min = np.zeros(nx, np.int32)
    cur_min = np.zeros(nx, np.int32)
    rows = range(ny) if di >= 0 else range(ny - 1, -1, -1)
    first_row = True
    for i in rows:
        cols = range(nx) if dj >= 0 else range(nx - 1, -1, -1)
        for j in cols:
            pj = j - dj
            has_pred = 0 <= pj < nx and (di == 0 or not first_row)
            if has_pred:
                if di == 0:
                    lq = cur[pj]
                    mq = cur_min[pj]
                else:
                    lq = prev[pj]
                    mq = prev_min[pj]
                best = 1 << 30
                for d in range(nd):
                    v = lq[d]
                    if d > 0 and lq[d - 1] + p1 < v:
                        v = lq[d - 1] + p1
                    if d < nd - 1 and lq[d + 1] + p1 < v:
                        v = lq[d + 1] + p1
                    if mq + p2 < v:
                        v = mq + p2
                    v = cost[i, j, d] + v - mq
                    cur[j, d] = v
                    if v < best:
                        best = v
                cur_min[j] = best
            else:
                best = 1 << 30
                for d in range(nd):
                    v = np.int32(cost[i, j, d])
                    cur[j, d] = v
                    if v < best:
                        best = v
                cur_min[j] = best
            for d in range(nd):
                agg[i, j, d] += cur[j, d]
        prev, cur = cur, prev
        prev_min, cur_min = cur_min, prev_min
        first_row = False


@numba.njit(cache=True, nogil=True)
def sgm8(cost, p1, p2):
    """Aggregate ``cost`` along the 8 directions; returns ``S`` (ny, nx, D) uint16."""
    agg = np.zeros(cost.shape, np.uint16)
    for k in range(DIRECTIONS.shape[0]):
        _path(cost, p1, p2, DIRECTIONS[k, 0], DIRECTIONS[k, 1], agg)
    return agg


@numba.njit(cache=True, nogil=True)
def winner_subpixel(agg, exclusion):
    """Best label per cell with parabola subpixel offset, and a uniqueness confidence.

    Returns ``label`` (ny, nx) float64 — fractional label index — and ``uniq`` (ny, nx)
    float32 = 1 − S_best / S_second, where S_second is the best cost more than
    ``exclusion`` labels away from the winner (0: ambiguous, → 1: a sharp unique minimum).
    """
    ny, nx, nd = agg.shape
    label = np.empty((ny, nx), np.float64)
    uniq = np.empty((ny, nx), np.float32)
    for i in range(ny):
        for j in range(nx):
            best = 0
            for d in range(1, nd):
                if agg[i, j, d] < agg[i, j, best]:
                    best = d
            second = 1 << 30
            for d in range(nd):
                if abs(d - best) > exclusion and agg[i, j, d] < second:
                    second = agg[i, j, d]
            sb = float(agg[i, j, best])
            uniq[i, j] = 1.0 - sb / second if second < (1 << 30) and second > 0 else 0.0
            offset = 0.0
            if 0 < best < nd - 1:
                cm = float(agg[i, j, best - 1])
                cp = float(agg[i, j, best + 1])
                den = cm - 2.0 * sb + cp
                if den > 0:
                    offset = 0.5 * (cm - cp) / den
            label[i, j] = best + offset
    return label, uniq
