"""DSM clean-up kernels: speckle removal and per-view visibility (z-buffer)."""

import numba
import numpy as np


@numba.njit(cache=True)
def remove_speckles(dsm, max_step, min_size):
    """Set to NaN the connected patches smaller than ``min_size`` cells.

    Two 4-neighbours belong to one patch when their heights differ by at most
    ``max_step``: isolated blobs of wrong matches are small patches, true surfaces large.
    Works in place; returns the number of cells removed.
    """
    ny, nx = dsm.shape
    comp = np.full((ny, nx), -1, np.int64)
    stack = np.empty(ny * nx, np.int64)
    members = np.empty(ny * nx, np.int64)
    removed = 0
    label = 0
    for s in range(ny * nx):
        si, sj = s // nx, s % nx
        if comp[si, sj] >= 0 or np.isnan(dsm[si, sj]):
            continue
        top = 0
        n = 0
        stack[top] = s
        top += 1
        comp[si, sj] = label
        while top > 0:
            top -= 1
            p = stack[top]
            members[n] = p
            n += 1
            pi, pj = p // nx, p % nx
            for k in range(4):
                qi = pi + (1 if k == 0 else -1 if k == 1 else 0)
                qj = pj + (1 if k == 2 else -1 if k == 3 else 0)
                if qi < 0 or qj < 0 or qi >= ny or qj >= nx or comp[qi, qj] >= 0:
                    continue
                if np.isnan(dsm[qi, qj]) or abs(dsm[qi, qj] - dsm[pi, pj]) > max_step:
                    continue
                comp[qi, qj] = label
                stack[top] = qi * nx + qj
                top += 1
        if n < min_size:
            for m in range(n):
                dsm[members[m] // nx, members[m] % nx] = np.nan
            removed += n
        label += 1
    return removed


@numba.njit(cache=True)
def visible(rows, cols, heights, img_shape, tolerance):
    """Which cells a view sees: ``rows``/``cols`` are the cells' image positions.

    Along a satellite's line of sight the higher point is the nearer one, so each image
    pixel keeps the highest cell projecting into it (a z-buffer); a cell is visible when it
    is within ``tolerance`` metres of that height. NaN heights are not visible.
    """
    ny, nx = heights.shape
    hbuf = np.full(img_shape, -np.inf)
    for i in range(ny):
        for j in range(nx):
            h = heights[i, j]
            if np.isnan(h) or np.isnan(rows[i, j]):
                continue
            r = int(np.floor(rows[i, j] + 0.5))
            c = int(np.floor(cols[i, j] + 0.5))
            if 0 <= r < img_shape[0] and 0 <= c < img_shape[1] and h > hbuf[r, c]:
                hbuf[r, c] = h
    out = np.zeros((ny, nx), np.bool_)
    for i in range(ny):
        for j in range(nx):
            h = heights[i, j]
            if np.isnan(h) or np.isnan(rows[i, j]):
                continue
            r = int(np.floor(rows[i, j] + 0.5))
            c = int(np.floor(cols[i, j] + 0.5))
            if 0 <= r < img_shape[0] and 0 <= c < img_shape[1]:
                out[i, j] = h >= hbuf[r, c] - tolerance
    return out


@numba.njit(cache=True)
def smooth_heights(dsm, radius, tol):
    """Edge-preserving smoothing: per cell, the mean of the window's heights within ``tol``
    of the window median ((2·radius+1)² window, NaN ignored, NaN cells stay NaN).

    Matching noise is independent from cell to cell while surfaces are smooth, so an
    average removes it; taking only the heights near the median keeps roof edges and
    walls sharp (the window's majority surface wins, the other side is left out).
    """
    ny, nx = dsm.shape
    out = np.full((ny, nx), np.nan, np.float32)
    buf = np.empty((2 * radius + 1) ** 2, np.float64)
    for i in range(ny):
        for j in range(nx):
            if np.isnan(dsm[i, j]):
                continue
            n = 0
            for a in range(max(i - radius, 0), min(i + radius + 1, ny)):
                for b in range(max(j - radius, 0), min(j + radius + 1, nx)):
                    if not np.isnan(dsm[a, b]):
                        buf[n] = dsm[a, b]
                        n += 1
            med = np.median(buf[:n])
            total = 0.0
            m = 0
            for k in range(n):
                if abs(buf[k] - med) <= tol:
                    total += buf[k]
                    m += 1
            out[i, j] = total / m if m else med
    return out
