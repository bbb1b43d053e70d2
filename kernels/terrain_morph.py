"""Grey-level morphology and block pooling for ground filtering (pure Numba kernels).

Erosion/dilation by a flat square window use the van Herk / Gil-Werman running min/max,
so their cost does not depend on the window size: a 250 m building at 2 m cells needs a
window of ~140 cells, and a direct min filter would cost 140x more. NaN cells are holes:
erosion ignores them (they count as +inf), so a hole never creates false ground.
"""

import numpy as np
from numba import njit


@njit(cache=True)
def _running_1d(src, dst, n, r, tmp_g, tmp_h, is_max):
    """dst[i] = min (or max) of src[i-r : i+r+1] clipped to [0, n); van Herk / Gil-Werman."""
    w = 2 * r + 1
    # g: prefix extrema inside blocks of length w; h: suffix extrema inside the blocks.
    pad = n + 2 * r
    fill = -np.inf if is_max else np.inf
    for i in range(pad):
        j = i - r
        v = src[j] if 0 <= j < n else fill
        if i % w == 0:
            tmp_g[i] = v
        else:
            a = tmp_g[i - 1]
            tmp_g[i] = (v if v > a else a) if is_max else (v if v < a else a)
    for i in range(pad - 1, -1, -1):
        j = i - r
        v = src[j] if 0 <= j < n else fill
        if i % w == w - 1 or i == pad - 1:
            tmp_h[i] = v
        else:
            a = tmp_h[i + 1]
            tmp_h[i] = (v if v > a else a) if is_max else (v if v < a else a)
    for i in range(n):
        # the window [i, i + 2r] in padded coordinates spans at most two blocks
        a = tmp_h[i]
        b = tmp_g[i + 2 * r]
        dst[i] = (a if a > b else b) if is_max else (a if a < b else b)


@njit(cache=True)
def _filter2d(a, r, is_max):
    h, w = a.shape
    out = np.empty_like(a)
    if r <= 0:
        out[:] = a
        return out
    n = max(h, w) + 2 * r
    g = np.empty(n, a.dtype)
    hh = np.empty(n, a.dtype)
    row = np.empty(w, a.dtype)
    for i in range(h):
        _running_1d(a[i], row, w, r, g, hh, is_max)
        out[i] = row
    col = np.empty(h, a.dtype)
    res = np.empty(h, a.dtype)
    for j in range(w):
        for i in range(h):
            col[i] = out[i, j]
        _running_1d(col, res, h, r, g, hh, is_max)
        for i in range(h):
            out[i, j] = res[i]
    return out


@njit(cache=True)
def opening(z, r, pad):
    """Flat square opening (erosion then dilation) of radius ``r`` cells; NaN = hole.

    Holes are ignored by the erosion (+inf), so the result at a valid cell is the highest
    minimum over the windows containing it, clipped to valid cells: planes rising towards
    a hole are kept exactly. Windows may reach ``pad`` cells beyond the grid border, which
    does the same there; with ``pad`` = 0 a building cut by the border is still removed
    (its window centred on the border reaches the ground inside), at the price of
    lowering planes that rise towards the border by up to slope x ``r``.
    """
    h, w = z.shape
    e = np.full((h + 2 * pad, w + 2 * pad), np.inf, z.dtype)
    for i in range(h):
        for j in range(w):
            if not np.isnan(z[i, j]):
                e[i + pad, j + pad] = z[i, j]
    e = _filter2d(_filter2d(e, r, False), r, True)
    return e[pad:pad + h, pad:pad + w].copy()


@njit(cache=True)
def block_quantile(z, f, q):
    """Pool ``f``x``f`` blocks to their ``q`` quantile of valid (non-NaN) cells.

    A low quantile sits on the ground between trees yet ignores isolated stereo pits,
    which a plain minimum would keep. Blocks without valid cells are NaN.
    """
    h, w = z.shape
    hc = (h + f - 1) // f
    wc = (w + f - 1) // f
    out = np.full((hc, wc), np.nan, np.float32)
    buf = np.empty(f * f, np.float64)
    for bi in range(hc):
        for bj in range(wc):
            n = 0
            for i in range(bi * f, min(h, bi * f + f)):
                for j in range(bj * f, min(w, bj * f + f)):
                    v = z[i, j]
                    if not np.isnan(v):
                        buf[n] = v
                        n += 1
            if n > 0:
                s = np.sort(buf[:n])
                out[bi, bj] = s[int(q * (n - 1) + 0.5)]
    return out


@njit(cache=True)
def multiscale_tophat_objects(z, radii, thresholds, pad):
    """Cells that stick out of the opening at some scale: ``z - opening(z, r_k) > t_k``.

    The opening preserves planes of any slope and steps wider than the window, so only
    objects narrower than the window (buildings, trees) and sharp convex relief rise above
    it. ``thresholds`` grow with the radius (slope allowance) and are capped so that a
    wide, low building is still caught at the window that removes it. NaN cells are False.
    ``pad``: how far windows may leave the grid (see :func:`opening`).
    """
    h, w = z.shape
    obj = np.zeros((h, w), np.bool_)
    for k in range(radii.shape[0]):
        o = opening(z, radii[k], min(pad, radii[k]))
        t = thresholds[k]
        for i in range(h):
            for j in range(w):
                v = z[i, j]
                if not np.isnan(v) and v - o[i, j] > t:
                    obj[i, j] = True
    return obj


@njit(cache=True)
def label_regions(mask):
    """4-connected regions of ``mask``: int64 labels (0 = background, 1..n) and each
    region's bounding box as rows ``(row0, col0, row1, col1)`` (exclusive ends)."""
    h, w = mask.shape
    labels = np.zeros((h, w), np.int64)
    boxes = []
    stack = np.empty((h * w, 2), np.int64)
    n = 0
    for i0 in range(h):
        for j0 in range(w):
            if not mask[i0, j0] or labels[i0, j0]:
                continue
            n += 1
            labels[i0, j0] = n
            top = 0
            stack[0, 0], stack[0, 1] = i0, j0
            r0, c0, r1, c1 = i0, j0, i0 + 1, j0 + 1
            while top >= 0:
                i, j = stack[top, 0], stack[top, 1]
                top -= 1
                r0, c0, r1, c1 = min(r0, i), min(c0, j), max(r1, i + 1), max(c1, j + 1)
                for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                    a, b = i + di, j + dj
                    if 0 <= a < h and 0 <= b < w and mask[a, b] and not labels[a, b]:
                        labels[a, b] = n
                        top += 1
                        stack[top, 0], stack[top, 1] = a, b
            boxes.append((r0, c0, r1, c1))
    out = np.zeros((n, 4), np.int64)
    for k in range(n):
        out[k, 0], out[k, 1], out[k, 2], out[k, 3] = boxes[k]
    return labels, out
