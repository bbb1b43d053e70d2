"""Scan-line rasterization of planar polygons onto a north-up grid (cell centres).

Each polygon is given by its edges (all rings together: the even-odd rule makes holes
and non-convex outlines work without triangulation) and a plane ``z = a*x + b*y + c``.
A cell is covered when its centre lies inside; the kernel keeps, per cell, the highest
(``keep_max``) or lowest plane value and the label of the polygon that gave it.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def burn_planes(out, labels, edges, edge_ptr, planes, poly_label, x0, y0, res, keep_max):
    """Burn polygons into ``out`` (float64, NaN = empty) and ``labels`` (int32).

    ``edges``: (E, 4) rows ``x0, y0, x1, y1``; polygon ``p`` owns rows
    ``edge_ptr[p]:edge_ptr[p+1]``. ``planes``: (P, 3) ``a, b, c``. ``x0, y0``: the grid's
    upper-left corner; ``res``: cell size (rows go down, y decreasing).
    """
    nrows, ncols = out.shape
    xs = np.empty(edges.shape[0], np.float64)
    for p in range(edge_ptr.shape[0] - 1):
        e0, e1 = edge_ptr[p], edge_ptr[p + 1]
        if e1 - e0 < 3:
            continue
        ymin = np.inf
        ymax = -np.inf
        for e in range(e0, e1):
            ymin = min(ymin, edges[e, 1], edges[e, 3])
            ymax = max(ymax, edges[e, 1], edges[e, 3])
        r0 = max(0, int(np.floor((y0 - ymax) / res - 0.5)))
        r1 = min(nrows - 1, int(np.ceil((y0 - ymin) / res - 0.5)))
        a, b, c = planes[p, 0], planes[p, 1], planes[p, 2]
        for r in range(r0, r1 + 1):
            yc = y0 - (r + 0.5) * res
            n = 0
            for e in range(e0, e1):
                ya, yb = edges[e, 1], edges[e, 3]
                if (ya <= yc < yb) or (yb <= yc < ya):
                    t = (yc - ya) / (yb - ya)
                    xs[n] = edges[e, 0] + t * (edges[e, 2] - edges[e, 0])
                    n += 1
            if n < 2:
                continue
            cross = np.sort(xs[:n])
            for k in range(0, n - 1, 2):
                c0 = max(0, int(np.ceil((cross[k] - x0) / res - 0.5)))
                c1 = min(ncols - 1, int(np.ceil((cross[k + 1] - x0) / res - 0.5)) - 1)
                for col in range(c0, c1 + 1):
                    xc = x0 + (col + 0.5) * res
                    z = a * xc + b * yc + c
                    cur = out[r, col]
                    if np.isnan(cur) or (keep_max and z > cur) or (not keep_max and z < cur):
                        out[r, col] = z
                        labels[r, col] = poly_label[p]
