"""Height-continuous regions of a roof raster: the cells a BuildingPart's roof spans.

Two 4-neighbour cells belong to the same region when the surface is continuous between
them: their height difference is at most ``step``, or it continues the slope on either
side (second difference at most ``step / 2``), so steep roof planes are not cut into
strips while a vertical jump (a wall between two roof levels) separates regions.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _continuous(z, r0, c0, r1, c1, step):
    """Whether the surface is continuous from cell (r0, c0) to its neighbour (r1, c1)."""
    d = z[r1, c1] - z[r0, c0]
    if abs(d) <= step:
        return True
    nr, nc = z.shape
    dr, dc = r1 - r0, c1 - c0
    rb, cb = r0 - dr, c0 - dc  # the cell before (r0, c0) on the same line
    if 0 <= rb < nr and 0 <= cb < nc and np.isfinite(z[rb, cb]) and abs(d - (z[r0, c0] - z[rb, cb])) <= 0.5 * step:
        return True
    ra, ca = r1 + dr, c1 + dc  # the cell after (r1, c1)
    return 0 <= ra < nr and 0 <= ca < nc and np.isfinite(z[ra, ca]) and abs((z[ra, ca] - z[r1, c1]) - d) <= 0.5 * step


@numba.njit(cache=True)
def label_regions(z, step):
    """Label the finite cells of ``z`` (float64, NaN = not part of the roof) into
    height-continuous regions ``1..n`` (0 elsewhere), numbered in raster order of their
    first cell; returns ``(labels int32, n)``."""
    nr, nc = z.shape
    labels = np.zeros((nr, nc), np.int32)
    stack = np.empty(nr * nc, np.int64)
    n = 0
    for r in range(nr):
        for c in range(nc):
            if labels[r, c] or not np.isfinite(z[r, c]):
                continue
            n += 1
            labels[r, c] = n
            stack[0] = r * nc + c
            top = 1
            while top:
                top -= 1
                k = stack[top]
                rr, cc = k // nc, k % nc
                for m in range(4):
                    r2 = rr + (1 if m == 0 else -1 if m == 1 else 0)
                    c2 = cc + (1 if m == 2 else -1 if m == 3 else 0)
                    if r2 < 0 or r2 >= nr or c2 < 0 or c2 >= nc or labels[r2, c2] or not np.isfinite(z[r2, c2]):
                        continue
                    if _continuous(z, rr, cc, r2, c2, step):
                        labels[r2, c2] = n
                        stack[top] = r2 * nc + c2
                        top += 1
    return labels, n
