"""Rasterization kernels for the procedural scene: terrain, roofs, trees, roads, materials.

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


@numba.njit(cache=True, inline="always")
def _nearest_seed(x, y, sx, sy, power, candidates, pd):
    """Index of the least power distance ``|p - s|² - w`` among ``candidates`` (fills ``pd``)."""
    best = candidates[0]
    for d in candidates:
        pd[d] = (x - sx[d]) ** 2 + (y - sy[d]) ** 2 - power[d]
        if pd[d] < pd[best]:
            best = d
    return best


@numba.njit(cache=True, inline="always")
def _is_road(x, y, sx, sy, power, inv_sep, ox, oy, cos_t, sin_t, pitch_u, pitch_v, street,
             width, median, candidates, pd):
    best = _nearest_seed(x, y, sx, sy, power, candidates, pd)
    # The nearest border of the cell lies on the nearest bisector of (best, d).
    near, dist = best, np.inf
    for d in candidates:
        if d != best and 0.5 * (pd[d] - pd[best]) * inv_sep[best, d] < dist:
            near, dist = d, 0.5 * (pd[d] - pd[best]) * inv_sep[best, d]
    if near != best and median[best, near] <= 2.0 * dist < width[best, near]:
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
def _street_tile(out, ti, tj, tile, x0, y0, res, ox, oy, cos_t, sin_t, pitch_u, pitch_v, street):
    """The street-grid test of one district over a tile of ``out``."""
    nrows, ncols = out.shape
    for i in range(ti, min(ti + tile, nrows)):
        dy = y0 - (i + 0.5) * res - oy
        for j in range(tj, min(tj + tile, ncols)):
            dx = x0 + (j + 0.5) * res - ox
            u = dx * cos_t + dy * sin_t
            v = -dx * sin_t + dy * cos_t
            out[i, j] = (u % pitch_u) < street or (v % pitch_v) < street


@numba.njit(cache=True)
def road_grid(x0, y0, res, nrows, ncols, sx, sy, power, ox, oy, cos_t, sin_t,
              pitch_u, pitch_v, street, width, median):
    """Road mask at the cell centres: district street grids plus border roads.

    A point belongs to the district of least power distance ``|p - s|² - w`` (a power
    diagram: convex cells). It is a road when it lies within the first ``street`` metres of
    a period of its district's rotated street grid (origin ``o``, angle ``t``, periods
    ``pitch_u``, ``pitch_v``), or when its cell's nearest border, shared with district
    ``b``, is closer than ``width[a, b] / 2`` but not closer than ``median[a, b] / 2`` (a
    boulevard's planted median). At a corner the wider road is mitred along the bisector
    of the two borders.

    The grid is processed in tiles of 32 × 32 cells, testing only the districts whose
    bisector with the tile centre's district passes within the tile radius plus half the
    widest road. This is exact: distances to bisectors are 1-Lipschitz, so any other
    district is neither the owner of a cell of the tile nor across a border close enough
    to put a road on it.
    """
    out = np.zeros((nrows, ncols), np.bool_)
    k = sx.shape[0]
    inv_sep = _inverse_separation(sx, sy)
    pd = np.empty(k)
    everyone = np.arange(k)
    reach = 0.5 * width.max()
    tile = 32
    radius = tile * res / math.sqrt(2.0)
    candidates = np.empty(k, np.int64)
    for ti in range(0, nrows, tile):
        for tj in range(0, ncols, tile):
            cx = x0 + (tj + tile / 2) * res
            cy = y0 - (ti + tile / 2) * res
            centre = _nearest_seed(cx, cy, sx, sy, power, everyone, pd)
            n = 0
            candidates[n] = centre
            n += 1
            for d in range(k):
                if d != centre and 0.5 * (pd[d] - pd[centre]) * inv_sep[centre, d] < radius + reach:
                    candidates[n] = d
                    n += 1
            near = candidates[:n]
            if n == 1:  # the tile lies inside one district, clear of its borders' roads
                _street_tile(out, ti, tj, tile, x0, y0, res, ox[centre], oy[centre],
                             cos_t[centre], sin_t[centre], pitch_u[centre], pitch_v[centre],
                             street[centre])
                continue
            for i in range(ti, min(ti + tile, nrows)):
                y = y0 - (i + 0.5) * res
                for j in range(tj, min(tj + tile, ncols)):
                    out[i, j] = _is_road(x0 + (j + 0.5) * res, y, sx, sy, power, inv_sep, ox,
                                         oy, cos_t, sin_t, pitch_u, pitch_v, street, width,
                                         median, near, pd)
    return out


@numba.njit(cache=True)
def road_points(xs, ys, sx, sy, power, ox, oy, cos_t, sin_t, pitch_u, pitch_v, street,
                width, median):
    """The road test of :func:`road_grid` at arbitrary points."""
    out = np.zeros(xs.shape[0], np.bool_)
    inv_sep = _inverse_separation(sx, sy)
    pd = np.empty(sx.shape[0])
    everyone = np.arange(sx.shape[0])
    for n in range(xs.shape[0]):
        out[n] = _is_road(xs[n], ys[n], sx, sy, power, inv_sep, ox, oy, cos_t, sin_t,
                          pitch_u, pitch_v, street, width, median, everyone, pd)
    return out


@numba.njit(cache=True)
def surface_albedo(x0, y0, res, top, road, part_albedo, part_wall, tree_albedo, perm, values):
    """Top-surface and facade albedo per cell, with value-noise texture (float32, 0.01-1).

    ``top`` is the z-buffer label (see the module docstring), ``road`` the road mask.
    Only the octaves of the cell's own material are evaluated: ground is mottled grass and
    soil (lattices 23, 3.1 and 0.7 m), asphalt slightly grainy (1.3, 0.7 m), roofing
    varies ±8 % around its part's albedo (0.7 m), leaves ±45 % (0.9 m). Facades take their
    building's wall albedo under a roof, a darker leaf under a crown, else the ground's.
    """
    nrows, ncols = top.shape
    albedo = np.empty((nrows, ncols), np.float32)
    wall = np.empty((nrows, ncols), np.float32)
    for i in range(nrows):
        y = y0 - (i + 0.5) * res
        for j in range(ncols):
            x = x0 + (j + 0.5) * res
            t = top[i, j]
            if t > 0:
                a = part_albedo[t - 1] * (1.0 + 0.16 * (value_noise(x, y, 0.7, perm, values) - 0.5))
                w = part_wall[t - 1]
            elif t < 0:
                a = tree_albedo[-t - 1] * (1.0 + 0.9 * (value_noise(x, y, 0.9, perm, values) - 0.5))
                w = 0.8 * a
            elif road[i, j]:
                a = (0.10 + 0.025 * (value_noise(x, y, 1.3, perm, values) - 0.5)
                     + 0.01 * (value_noise(x, y, 0.7, perm, values) - 0.5))
                w = a
            else:
                a = (0.16 + 0.08 * (value_noise(x, y, 23.0, perm, values) - 0.5)
                     + 0.05 * (value_noise(x, y, 3.1, perm, values) - 0.5)
                     + 0.03 * (value_noise(x, y, 0.7, perm, values) - 0.5))
                w = a
            albedo[i, j] = min(max(a, 0.01), 1.0)
            wall[i, j] = min(max(w, 0.01), 1.0)
    return albedo, wall
