"""Rasterization kernels for the procedural scene: terrain, roofs, trees, roads, noise.

Every surface of the simulated city is an analytic function of world (x, y), so these
kernels point-sample it exactly at cell centres of a north-up grid (origin ``x0, y0`` at
the top-left corner, square cells of ``res`` metres, rows going south). Roofs and trees
are drawn object by object over their bounding windows, keeping the highest surface per
cell (a z-buffer seen from above): the cost is the number of covered cells, not
cells × objects. Pure array functions, no I/O.

Codes shared with ``lod3d.simulate.scene``:
roof types ``FLAT, SHED, GABLE, HIP, PYRAMID = 0..4``; the ``top`` label grid holds
``part index + 1`` where a roof is the top surface, ``-(tree index + 1)`` for a tree crown,
0 for the ground.
"""

from __future__ import annotations

import math

import numba
import numpy as np

FLAT, SHED, GABLE, HIP, PYRAMID = 0, 1, 2, 3, 4


@numba.njit(cache=True)
def _terrain(x, y, z0, xc, yc, gx, gy, kx, ky, amp, phase):
    z = z0 + gx * (x - xc) + gy * (y - yc)
    for k in range(kx.shape[0]):
        z += amp[k] * math.sin(kx[k] * (x - xc) + ky[k] * (y - yc) + phase[k])
    return z


@numba.njit(cache=True)
def terrain_grid(x0, y0, res, nrows, ncols, z0, xc, yc, gx, gy, kx, ky, amp, phase):
    """Terrain height (plane + low-frequency waves) at the cell centres, float64.

    Each wave is split as ``sin(A + B) = sin A cos B + cos A sin B`` with A from the
    column and B from the row, so a cell costs multiply-adds instead of sines.
    """
    nw = kx.shape[0]
    colx = np.empty((nw, 2, ncols))
    rowy = np.empty((nw, 2, nrows))
    for k in range(nw):
        for j in range(ncols):
            a = kx[k] * (x0 + (j + 0.5) * res - xc) + phase[k]
            colx[k, 0, j] = amp[k] * math.sin(a)
            colx[k, 1, j] = amp[k] * math.cos(a)
        for i in range(nrows):
            b = ky[k] * (y0 - (i + 0.5) * res - yc)
            rowy[k, 0, i] = math.cos(b)
            rowy[k, 1, i] = math.sin(b)
    out = np.empty((nrows, ncols), np.float64)
    for i in range(nrows):
        y = y0 - (i + 0.5) * res - yc
        for j in range(ncols):
            z = z0 + gx * (x0 + (j + 0.5) * res - xc) + gy * y
            for k in range(nw):
                z += colx[k, 0, j] * rowy[k, 0, i] + colx[k, 1, j] * rowy[k, 1, i]
            out[i, j] = z
    return out


@numba.njit(cache=True)
def terrain_points(xs, ys, z0, xc, yc, gx, gy, kx, ky, amp, phase):
    """Terrain height at arbitrary points (same function as :func:`terrain_grid`)."""
    out = np.empty(xs.shape[0], np.float64)
    for n in range(xs.shape[0]):
        out[n] = _terrain(xs[n], ys[n], z0, xc, yc, gx, gy, kx, ky, amp, phase)
    return out


@numba.njit(cache=True)
def roof_height(kind, u, v, a, b, eave, ridge):
    """Roof height over a rectangle ``|u| <= a, |v| <= b`` in the part's own frame.

    The ridge runs along u (gable, hip); a shed rises towards +v; a hip roof has equal
    slopes on all four sides (needs ``a >= b``); a pyramid meets at the centre.
    """
    rise = ridge - eave
    if kind == FLAT:
        return eave
    if kind == SHED:
        return eave + rise * (v + b) / (2.0 * b)
    if kind == GABLE:
        return eave + rise * (1.0 - abs(v) / b)
    if kind == HIP:
        return eave + rise / b * min(b - abs(v), a - abs(u))
    return eave + rise * min(1.0 - abs(u) / a, 1.0 - abs(v) / b)


@numba.njit(cache=True)
def draw_parts(height, top, x0, y0, res, cx, cy, cos_t, sin_t, a, b, kind, eave, ridge):
    """Draw building parts (rotated rectangles with analytic roofs) into the z-buffer.

    A cell takes part ``p`` when its centre lies inside the rectangle and the roof there is
    higher than what ``height`` already holds; ``top`` then records ``p + 1``.
    """
    nrows, ncols = height.shape
    for p in range(cx.shape[0]):
        ext = abs(a[p] * cos_t[p]) + abs(b[p] * sin_t[p])
        eyt = abs(a[p] * sin_t[p]) + abs(b[p] * cos_t[p])
        j0 = max(int(math.floor((cx[p] - ext - x0) / res)), 0)
        j1 = min(int(math.ceil((cx[p] + ext - x0) / res)), ncols)
        i0 = max(int(math.floor((y0 - cy[p] - eyt) / res)), 0)
        i1 = min(int(math.ceil((y0 - cy[p] + eyt) / res)), nrows)
        for i in range(i0, i1):
            dy = y0 - (i + 0.5) * res - cy[p]
            for j in range(j0, j1):
                dx = x0 + (j + 0.5) * res - cx[p]
                u = dx * cos_t[p] + dy * sin_t[p]
                v = -dx * sin_t[p] + dy * cos_t[p]
                if abs(u) <= a[p] and abs(v) <= b[p]:
                    z = roof_height(kind[p], u, v, a[p], b[p], eave[p], ridge[p])
                    if z > height[i, j]:
                        height[i, j] = z
                        top[i, j] = p + 1


@numba.njit(cache=True)
def value_noise(x, y, scale, perm, values):
    """Smooth lattice value noise in [0, 1) at world point (x, y), lattice step ``scale``.

    ``perm`` is a permutation of ``0..n-1`` (n a power of two) and ``values`` n numbers in
    [0, 1); both come from the scene seed, so the noise is a fixed function of position,
    identical whatever grid samples it.
    """
    m = perm.shape[0] - 1
    fx = x / scale
    fy = y / scale
    ix = int(math.floor(fx))
    iy = int(math.floor(fy))
    tx = fx - ix
    ty = fy - iy
    sx = tx * tx * (3.0 - 2.0 * tx)
    sy = ty * ty * (3.0 - 2.0 * ty)
    v00 = values[perm[(perm[ix & m] + iy) & m]]
    v10 = values[perm[(perm[(ix + 1) & m] + iy) & m]]
    v01 = values[perm[(perm[ix & m] + iy + 1) & m]]
    v11 = values[perm[(perm[(ix + 1) & m] + iy + 1) & m]]
    top = v00 + sx * (v10 - v00)
    bottom = v01 + sx * (v11 - v01)
    return top + sy * (bottom - top)


@numba.njit(cache=True)
def noise_grid(x0, y0, res, nrows, ncols, scale, perm, values):
    """:func:`value_noise` sampled at the cell centres, float32."""
    out = np.empty((nrows, ncols), np.float32)
    for i in range(nrows):
        y = y0 - (i + 0.5) * res
        for j in range(ncols):
            out[i, j] = value_noise(x0 + (j + 0.5) * res, y, scale, perm, values)
    return out


@numba.njit(cache=True)
def draw_trees(height, top, x0, y0, res, tx, ty, ground, trunk, crown, radius,
               harm_amp, harm_phase, rough, rough_scale, perm, values):
    """Draw tree crowns into the z-buffer.

    A crown is a dome over an irregular outline: radius ``R(θ) = radius·(1 + Σ a_k
    cos(k θ + φ_k))`` for k = 2, 3, 5, height ``ground + trunk + crown·sqrt(1 - (r/R)²)``
    plus value noise of amplitude ``rough`` (lattice ``rough_scale``) for a rough canopy.
    ``top`` records ``-(tree + 1)`` where the crown is the highest surface.
    """
    nrows, ncols = height.shape
    orders = (2.0, 3.0, 5.0)
    for t in range(tx.shape[0]):
        rmax = radius[t] * (1.0 + np.abs(harm_amp[t]).sum())
        j0 = max(int(math.floor((tx[t] - rmax - x0) / res)), 0)
        j1 = min(int(math.ceil((tx[t] + rmax - x0) / res)), ncols)
        i0 = max(int(math.floor((y0 - ty[t] - rmax) / res)), 0)
        i1 = min(int(math.ceil((y0 - ty[t] + rmax) / res)), nrows)
        for i in range(i0, i1):
            y = y0 - (i + 0.5) * res
            dy = y - ty[t]
            for j in range(j0, j1):
                x = x0 + (j + 0.5) * res
                dx = x - tx[t]
                r = math.sqrt(dx * dx + dy * dy)
                if r > rmax:
                    continue
                theta = math.atan2(dy, dx)
                rt = 1.0
                for k in range(3):
                    rt += harm_amp[t, k] * math.cos(orders[k] * theta + harm_phase[t, k])
                rt *= radius[t]
                if r >= rt:
                    continue
                q = r / rt
                z = ground[t] + trunk[t] + crown[t] * math.sqrt(1.0 - q * q)
                z += rough[t] * (value_noise(x, y, rough_scale, perm, values) - 0.5)
                if z > height[i, j]:
                    height[i, j] = z
                    top[i, j] = -(t + 1)


@numba.njit(cache=True)
def _is_road(x, y, sx, sy, power, inv_sep, ox, oy, cos_t, sin_t, pitch_u, pitch_v, street,
             boulevard, pd):
    best = 0
    for d in range(sx.shape[0]):
        pd[d] = (x - sx[d]) ** 2 + (y - sy[d]) ** 2 - power[d]
        if pd[d] < pd[best]:
            best = d
    for d in range(sx.shape[0]):
        if d != best and (pd[d] - pd[best]) * inv_sep[best, d] < boulevard:
            return True
    dx = x - ox[best]
    dy = y - oy[best]
    u = dx * cos_t[best] + dy * sin_t[best]
    v = -dx * sin_t[best] + dy * cos_t[best]
    return (u % pitch_u[best]) < street[best] or (v % pitch_v[best]) < street[best]


@numba.njit(cache=True)
def _inverse_separation(sx, sy):
    n = sx.shape[0]
    out = np.zeros((n, n))
    for a in range(n):
        for b in range(n):
            if a != b:
                out[a, b] = 1.0 / math.sqrt((sx[a] - sx[b]) ** 2 + (sy[a] - sy[b]) ** 2)
    return out


@numba.njit(cache=True)
def road_grid(x0, y0, res, nrows, ncols, sx, sy, power, ox, oy, cos_t, sin_t,
              pitch_u, pitch_v, street, boulevard):
    """Road mask at the cell centres: district street grids plus boulevards.

    A point belongs to the district of least power distance ``|p - s|² - w`` (a power
    diagram: convex cells). It is a road when it lies within ``boulevard / 2`` of that
    cell's border, or within the first ``street`` metres of a period of the district's
    rotated street grid (origin ``o``, angle ``t``, periods ``pitch_u``, ``pitch_v``).
    """
    out = np.zeros((nrows, ncols), np.bool_)
    inv_sep = _inverse_separation(sx, sy)
    pd = np.empty(sx.shape[0])
    for i in range(nrows):
        y = y0 - (i + 0.5) * res
        for j in range(ncols):
            out[i, j] = _is_road(x0 + (j + 0.5) * res, y, sx, sy, power, inv_sep, ox, oy,
                                 cos_t, sin_t, pitch_u, pitch_v, street, boulevard, pd)
    return out


@numba.njit(cache=True)
def road_points(xs, ys, sx, sy, power, ox, oy, cos_t, sin_t, pitch_u, pitch_v, street,
                boulevard):
    """The road test of :func:`road_grid` at arbitrary points."""
    out = np.zeros(xs.shape[0], np.bool_)
    inv_sep = _inverse_separation(sx, sy)
    pd = np.empty(sx.shape[0])
    for n in range(xs.shape[0]):
        out[n] = _is_road(xs[n], ys[n], sx, sy, power, inv_sep, ox, oy, cos_t, sin_t,
                          pitch_u, pitch_v, street, boulevard, pd)
    return out
