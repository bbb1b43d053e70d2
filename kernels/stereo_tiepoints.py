"""Tie points between two orthorectified views by normalized cross-correlation.

Used before dense matching: the displacement of textured patches between two views
warped onto the same ground plane holds the relative pointing error (across the epipolar
direction) and the terrain height (along it). Coarse-to-fine: an exhaustive search on
4×-averaged images, then a ±2-cell refinement with a parabola subpixel fit.
"""

import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def _ncc(a, b, ai, aj, bi, bj, half):
    n = 0
    sa = 0.0
    sb = 0.0
    saa = 0.0
    sbb = 0.0
    sab = 0.0
    for di in range(-half, half + 1):
        for dj in range(-half, half + 1):
            x = a[ai + di, aj + dj]
            y = b[bi + di, bj + dj]
            if np.isnan(x) or np.isnan(y):
                return -1.0
            n += 1
            sa += x
            sb += y
            saa += x * x
            sbb += y * y
            sab += x * y
    va = saa - sa * sa / n
    vb = sbb - sb * sb / n
    if va <= 1e-9 or vb <= 1e-9:
        return -1.0
    return (sab - sa * sb / n) / np.sqrt(va * vb)


@numba.njit(cache=True)
def best_shift(a, b, ci, cj, half, si0, si1, sj0, sj1):
    """Integer shift (di, dj) in [si0, si1]×[sj0, sj1] maximizing NCC of a's patch at (ci, cj)
    with b's patch at (ci + di, cj + dj); returns (score, di, dj, subpixel di, subpixel dj)."""
    ny, nx = a.shape
    best = -2.0
    bdi = 0
    bdj = 0
    if ci - half < 0 or cj - half < 0 or ci + half >= ny or cj + half >= nx:
        return best, 0, 0, 0.0, 0.0
    for di in range(si0, si1 + 1):
        for dj in range(sj0, sj1 + 1):
            bi = ci + di
            bj = cj + dj
            if bi - half < 0 or bj - half < 0 or bi + half >= ny or bj + half >= nx:
                continue
            s = _ncc(a, b, ci, cj, bi, bj, half)
            if s > best:
                best = s
                bdi = di
                bdj = dj
    fi = float(bdi)
    fj = float(bdj)
    if best > -1.0:
        vals = np.empty(2)
        for axis in range(2):
            for k in range(2):
                sgn = -1 if k == 0 else 1
                bi = ci + bdi + (sgn if axis == 0 else 0)
                bj = cj + bdj + (sgn if axis == 1 else 0)
                if bi - half < 0 or bj - half < 0 or bi + half >= ny or bj + half >= nx:
                    vals[k] = np.nan
                else:
                    vals[k] = _ncc(a, b, ci, cj, bi, bj, half)
            den = vals[0] - 2.0 * best + vals[1]
            if not np.isnan(den) and den < 0:
                off = 0.5 * (vals[0] - vals[1]) / den
                if axis == 0:
                    fi += off
                else:
                    fj += off
    return best, bdi, bdj, fi, fj


@numba.njit(cache=True)
def match_patches(a, b, a4, b4, centers, half, search4):
    """Match patches of ``a`` centred at ``centers`` (N, 2) into ``b``.

    ``a4``/``b4`` are the 4×-averaged images; ``search4`` (4,) bounds the coarse shift
    (i0, i1, j0, j1) in coarse cells. Returns (N, 3): NCC score, shift rows, shift cols
    (full-resolution cells, subpixel).
    """
    out = np.full((centers.shape[0], 3), np.nan)
    h4 = max(half // 4, 3)
    for k in range(centers.shape[0]):
        ci = centers[k, 0]
        cj = centers[k, 1]
        s4, di4, dj4, _, _ = best_shift(a4, b4, ci // 4, cj // 4, h4,
                                        search4[0], search4[1], search4[2], search4[3])
        if s4 < 0.3:
            continue
        s, _, _, fi, fj = best_shift(a, b, ci, cj, half, 4 * di4 - 4, 4 * di4 + 4,
                                     4 * dj4 - 4, 4 * dj4 + 4)
        out[k, 0] = s
        out[k, 1] = fi
        out[k, 2] = fj
    return out
