"""Robust plane fits of labelled point groups: the inner loop of roof primitive fitting.

Each group of points ``(u, v, z)`` with the same label gets a plane ``z = a u + b v + c``
(or a horizontal plane ``z = c`` at the median): fitted by least squares on all its
points, then refitted once on the points within ``max(3 * robust sigma, 5 cm)`` of the
first fit (robust sigma = 1.4826 x the median absolute deviation of the residuals), so
that a chimney or a misassigned eave cell does not tilt the plane.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _plane(u, v, z, keep, horizontal):
    """Least-squares (or median, when horizontal) plane over the points where ``keep``."""
    zk = z[keep]
    if horizontal:
        return 0.0, 0.0, np.median(zk)
    uk, vk = u[keep], v[keep]
    um, vm, zm = uk.mean(), vk.mean(), zk.mean()
    du, dv, dz = uk - um, vk - vm, zk - zm
    suu, svv, suv = (du * du).sum(), (dv * dv).sum(), (du * dv).sum()
    suz, svz = (du * dz).sum(), (dv * dz).sum()
    det = suu * svv - suv * suv
    if det <= 1e-12 * max(suu * svv, 1e-300):
        return 0.0, 0.0, zm  # collinear points: no slope can be told
    a = (suz * svv - svz * suv) / det
    b = (svz * suu - suz * suv) / det
    return a, b, zm - a * um - b * vm


@numba.njit(cache=True)
def fit_label_planes(u, v, z, labels, nlab, horizontal, min_count):
    """Planes ``(nlab, 3)`` (rows a, b, c) of the points of each label ``0..nlab-1``, and
    whether every label had at least ``min_count`` points (else the planes are unusable)."""
    planes = np.zeros((nlab, 3))
    counts = np.bincount(labels, minlength=nlab)
    for k in range(nlab):
        if counts[k] < min_count:
            return planes, False
    order = np.argsort(labels, kind="mergesort")
    start = 0
    for k in range(nlab):
        idx = order[start:start + counts[k]]
        start += counts[k]
        uk, vk, zk = u[idx], v[idx], z[idx]
        keep = np.ones(len(idx), np.bool_)
        a, b, c = _plane(uk, vk, zk, keep, horizontal)
        res = zk - (a * uk + b * vk + c)
        mad = 1.4826 * np.median(np.abs(res - np.median(res)))
        keep = np.abs(res) <= max(3.0 * mad, 0.05)
        if keep.sum() >= 3 and not keep.all():
            a, b, c = _plane(uk, vk, zk, keep, horizontal)
        planes[k, 0], planes[k, 1], planes[k, 2] = a, b, c
    return planes, True


@numba.njit(cache=True)
def _envelope(planes, k, u, v):
    """Lowest of the first ``k`` planes at ``(u, v)``."""
    e = np.inf
    for j in range(k):
        e = min(e, planes[j, 0] * u + planes[j, 1] * v + planes[j, 2])
    return e


@numba.njit(cache=True)
def score_candidates(u, v, z, labels, nlab, horizontal, fu, fv, floor, noise, max_grad):
    """Fit and score roof candidates in one pass.

    Candidate ``c`` labels the points ``labels[c]`` into ``nlab[c]`` regions, one robust
    plane each (horizontal ones when ``horizontal[c]``); the roof is the lower envelope of
    its planes. A candidate is usable when every region has enough points, no plane is
    steeper than ``max_grad`` (rise per metre) and the envelope at the outline vertices
    ``(fu, fv)`` stays at or above ``floor``. Its score is the BIC
    ``n log(mse + noise^2) + p log n`` with ``p`` = 1 for a horizontal plane, else 3 per
    plane. Returns ``(planes (C, max nlab, 3), usable, mse, score)``.
    """
    nc, n = labels.shape
    planes = np.zeros((nc, nlab.max(), 3))
    usable = np.zeros(nc, np.bool_)
    mse = np.full(nc, np.inf)
    score = np.full(nc, np.inf)
    for c in range(nc):
        k = nlab[c]
        p, ok = fit_label_planes(u, v, z, labels[c], k, horizontal[c], 3 if horizontal[c] else 6)
        if not ok:
            continue
        for j in range(k):
            if np.hypot(p[j, 0], p[j, 1]) > max_grad:
                ok = False
        for i in range(len(fu)):
            if _envelope(p, k, fu[i], fv[i]) < floor:
                ok = False
        if not ok:
            continue
        s = 0.0
        for i in range(n):
            s += (_envelope(p, k, u[i], v[i]) - z[i]) ** 2
        planes[c, :k] = p
        usable[c] = True
        mse[c] = s / n
        score[c] = n * np.log(mse[c] + noise * noise) + (1 if horizontal[c] else 3 * k) * np.log(n)
    return planes, usable, mse, score


@numba.njit(cache=True)
def _rect_roof_score(s, w, z, s0, s1, w0, w1, ground, noise, max_grad):
    """Best score of the primitive roofs over the rectangle ``s0..s1 x w0..w1`` (as
    ``lod3d.lod.roof.fit_roof`` labels and scores them in that rectangle's frame, the long
    side along ``u``; outline-edge hips left out) of the samples ``(s, w, z)``; infinite
    when none is usable."""
    n = len(z)
    sc, wc, ls, lw = 0.5 * (s0 + s1), 0.5 * (w0 + w1), 0.5 * (s1 - s0), 0.5 * (w1 - w0)
    if ls >= lw:
        u, v, hl, hw = s - sc, w - wc, ls, lw
    else:
        u, v, hl, hw = w - wc, sc - s, lw, ls
    hl, hw = max(hl, 1e-3), max(hw, 1e-3)
    labels = np.zeros((7, n), np.int64)
    for i in range(n):
        du, dv = hl - abs(u[i]), hw - abs(v[i])
        edge = (0 if u[i] > 0 else 1) if du < dv else (2 if v[i] > 0 else 3)
        labels[2, i] = 1 if v[i] >= 0 else 0
        labels[3, i] = 1 if u[i] >= 0 else 0
        labels[4, i] = edge
        labels[5, i] = (0 if u[i] > 0 else 1) if du / hl < dv / hw else (2 if v[i] > 0 else 3)
        labels[6, i] = edge if min(du, dv) < 0.35 * hw else 4
    nlab = np.zeros(7, np.int64)
    for c in range(7):
        nlab[c] = labels[c].max() + 1
    horizontal = np.zeros(7, np.bool_)
    horizontal[0] = True
    fu = np.array([hl, -hl, -hl, hl])
    fv = np.array([hw, hw, -hw, -hw])
    floor = ground + min(1.0, 0.5 * (np.median(z) - ground))
    _, usable, _, score = score_candidates(u, v, z, labels, nlab, horizontal, fu, fv, floor, noise, max_grad)
    best = np.inf
    for c in range(7):
        if usable[c] and score[c] < best:
            best = score[c]
    return best


@numba.njit(cache=True)
def screen_cuts(s, w, z, ts, s0, s1, w0, w1, ground, noise, max_grad, min_count):
    """Screening scores of straight cuts across a rectangle ``s0..s1 x w0..w1`` at the
    positions ``ts`` along ``s``: the summed best primitive roof score
    (:func:`_rect_roof_score`) of the samples ``(s, w, z)`` on either side; 1e300 when no
    roof is usable on a side, infinite when a side keeps fewer than ``max(min_count, 8)``
    samples (no roof can be fitted there)."""
    out = np.full(len(ts), np.inf)
    for j in range(len(ts)):
        t = ts[j]
        a = s < t
        na = a.sum()
        if na < max(min_count, 8) or len(s) - na < max(min_count, 8):
            continue
        b = ~a
        out[j] = min(_rect_roof_score(s[a], w[a], z[a], s0, t, w0, w1, ground, noise, max_grad)
                     + _rect_roof_score(s[b], w[b], z[b], t, s1, w0, w1, ground, noise, max_grad), 1e300)
    return out


@numba.njit(cache=True)
def nearest_segment(x, y, p, d):
    """Index of the segment ``p[k] .. p[k] + d[k]`` nearest to each point ``(x, y)`` (the
    first on a tie), renumbered ``0..`` over the segments that are nearest to any point."""
    n, m = len(x), len(p)
    near = np.zeros(n, np.int64)
    for i in range(n):
        best = np.inf
        for k in range(m):
            t = ((x[i] - p[k, 0]) * d[k, 0] + (y[i] - p[k, 1]) * d[k, 1]) / (d[k, 0] ** 2 + d[k, 1] ** 2)
            t = min(max(t, 0.0), 1.0)
            dist = np.hypot(x[i] - p[k, 0] - t * d[k, 0], y[i] - p[k, 1] - t * d[k, 1])
            if dist < best:
                best, near[i] = dist, k
    rank = np.zeros(m, np.int64)
    for i in range(n):
        rank[near[i]] = 1
    rank = np.cumsum(rank) - 1
    for i in range(n):
        near[i] = rank[near[i]]
    return near
