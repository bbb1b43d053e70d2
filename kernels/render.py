"""Ray casting through a 2.5-D box heightfield (Numba): image rays, sun rays, ortho sampling.

Grid convention: cell (i, j) is the box [j, j+1) × [i, i+1) in continuous (u, v) cell
units — u east, v south (row direction) — with a flat top at ``height[i, j]`` metres. Walls
are the vertical faces between neighbouring cells of different heights, so a ray can hit
a facade, and a point hidden behind a taller cell is never seen: visibility is real, not a
heightfield warp. Traversal is the Amanatides–Woo grid walk (each cell crossed once, in
order), with the ray's height linear in its parameter.

Directions are given in (cell units, cell units, metres) per unit parameter; a map-frame
unit vector (east, north, up) becomes ``(e / res, -n / res, up)``.
"""

import numba as nb
import numpy as np

_INF = 1e30


@nb.njit(cache=True)
def _axis_init(p0, d, cell):
    """Step, parameter of the first boundary crossing and parameter per cell along one axis."""
    if d > 0.0:
        return 1, (cell + 1.0 - p0) / d, 1.0 / d
    if d < 0.0:
        return -1, (cell - p0) / d, -1.0 / d
    return 0, _INF, _INF


@nb.njit(cache=True)
def occluded(height, u, v, z, su, sv, sz, hmax):
    """Whether the ray from (u, v, z) along (su, sv, sz), sz > 0, is blocked by a cell.

    The start cell is not tested (the point lies on its top or just outside its wall). The
    walk ends unblocked once the ray is above ``hmax`` or leaves the grid.
    """
    ny, nx = height.shape
    j = int(np.floor(u))
    i = int(np.floor(v))
    sj, tmu, tdu = _axis_init(u, su, j)
    si, tmv, tdv = _axis_init(v, sv, i)
    while True:
        if tmu < tmv:
            j += sj
            p = tmu
            tmu += tdu
        else:
            i += si
            p = tmv
            tmv += tdv
        if p >= _INF or i < 0 or j < 0 or i >= ny or j >= nx:
            return False
        ze = z + p * sz
        if ze >= hmax:
            return False
        if ze < height[i, j]:
            return True


@nb.njit(cache=True, parallel=True)
def visibility_map(height, bias, su, sv, sz, hmax):
    """1 where the top centre of a cell (raised by ``bias``) sees along (su, sv, sz), else 0."""
    ny, nx = height.shape
    out = np.zeros((ny, nx), np.uint8)
    for i in nb.prange(ny):
        for j in range(nx):
            if not occluded(height, j + 0.5, i + 0.5, height[i, j] + bias[i, j], su, sv, sz, hmax):
                out[i, j] = 1
    return out


@nb.njit(cache=True)
def trace_ray(height, top_rad, wall_alb, u0, v0, z0, u1, v1, z1,
              sun_e, sun_n, sun_up, res, e_sun, e_sky, hmax):
    """Radiance seen along the segment (u0, v0, z0) → (u1, v1, z1), z0 > z1; NaN if nothing.

    A top hit returns the precomputed top radiance of the cell; a wall hit is shaded here:
    Lambert with the face normal, its own sun-visibility ray, and half the sky.
    """
    ny, nx = height.shape
    du = u1 - u0
    dv = v1 - v0
    dz = z1 - z0
    # Clip the parameter range [0, 1] to the grid box; remember which face it enters.
    plo = 0.0
    phi = 1.0
    axis = -1
    if du != 0.0:
        a = (0.0 - u0) / du
        b = (nx - u0) / du
        if a > b:
            a, b = b, a
        if a > plo:
            plo = a
            axis = 0
        phi = min(phi, b)
    elif u0 < 0.0 or u0 >= nx:
        return np.nan
    if dv != 0.0:
        a = (0.0 - v0) / dv
        b = (ny - v0) / dv
        if a > b:
            a, b = b, a
        if a > plo:
            plo = a
            axis = 1
        phi = min(phi, b)
    elif v0 < 0.0 or v0 >= ny:
        return np.nan
    if plo >= phi:
        return np.nan
    j = min(max(int(np.floor(u0 + plo * du)), 0), nx - 1)
    i = min(max(int(np.floor(v0 + plo * dv)), 0), ny - 1)
    sj, tmu, tdu = _axis_init(u0, du, j)
    si, tmv, tdv = _axis_init(v0, dv, i)
    if axis == 0 and sj == 0:
        axis = -1
    p_in = plo
    while p_in < phi:
        p_out = min(tmu, tmv, phi)
        h = height[i, j]
        z_in = z0 + p_in * dz
        if z_in <= h:
            if axis < 0:
                return top_rad[i, j]
            # Wall face entered: its outward normal points back along the step.
            if axis == 0:
                n_e, n_n = -float(sj), 0.0
            else:
                n_e, n_n = 0.0, float(si)
            cos_i = n_e * sun_e + n_n * sun_n
            direct = 0.0
            if cos_i > 0.0:
                uh = u0 + p_in * du + n_e * 1e-3
                vh = v0 + p_in * dv - n_n * 1e-3
                if not occluded(height, uh, vh, z_in, sun_e / res, -sun_n / res, sun_up, hmax):
                    direct = cos_i
            return wall_alb[i, j] * (e_sun * direct + 0.5 * e_sky)
        if z0 + p_out * dz <= h:
            return top_rad[i, j]
        if tmu < tmv:
            j += sj
            p_in = tmu
            tmu += tdu
            axis = 0
        else:
            i += si
            p_in = tmv
            tmv += tdv
            axis = 1
        if i < 0 or j < 0 or i >= ny or j >= nx:
            return np.nan
    return np.nan


@nb.njit(cache=True, parallel=True)
def trace_view(height, top_rad, wall_alb, top_u, top_v, bot_u, bot_v, node_r0, node_c0, node_step,
               z_top, z_bot, rows, cols, ss, sun_e, sun_n, sun_up, res, e_sun, e_sky, hmax):
    """Mean radiance of ``ss × ss`` rays per image pixel, NaN where no ray hits the grid.

    Each ray is the segment between its line of sight's points at heights ``z_top`` and
    ``z_bot``, given as (u, v) cell coordinates on a coarse node grid of image positions
    (row ``node_r0 + a * node_step``, col ``node_c0 + b * node_step``) and bilinearly
    interpolated in between (the sensor model is smooth at that scale).
    """
    out = np.empty((rows, cols), np.float32)
    na, nb_ = top_u.shape
    for r in nb.prange(rows):
        for c in range(cols):
            acc = 0.0
            n = 0
            for a in range(ss):
                fa = (r - 0.5 + (a + 0.5) / ss - node_r0) / node_step
                ia = min(max(int(fa), 0), na - 2)
                wa = fa - ia
                for b in range(ss):
                    fb = (c - 0.5 + (b + 0.5) / ss - node_c0) / node_step
                    ib = min(max(int(fb), 0), nb_ - 2)
                    wb = fb - ib
                    w00 = (1 - wa) * (1 - wb)
                    w01 = (1 - wa) * wb
                    w10 = wa * (1 - wb)
                    w11 = wa * wb
                    u0 = (w00 * top_u[ia, ib] + w01 * top_u[ia, ib + 1]
                          + w10 * top_u[ia + 1, ib] + w11 * top_u[ia + 1, ib + 1])
                    v0 = (w00 * top_v[ia, ib] + w01 * top_v[ia, ib + 1]
                          + w10 * top_v[ia + 1, ib] + w11 * top_v[ia + 1, ib + 1])
                    u1 = (w00 * bot_u[ia, ib] + w01 * bot_u[ia, ib + 1]
                          + w10 * bot_u[ia + 1, ib] + w11 * bot_u[ia + 1, ib + 1])
                    v1 = (w00 * bot_v[ia, ib] + w01 * bot_v[ia, ib + 1]
                          + w10 * bot_v[ia + 1, ib] + w11 * bot_v[ia + 1, ib + 1])
                    val = trace_ray(height, top_rad, wall_alb, u0, v0, z_top, u1, v1, z_bot,
                                    sun_e, sun_n, sun_up, res, e_sun, e_sky, hmax)
                    if not np.isnan(val):
                        acc += val
                        n += 1
            out[r, c] = acc / n if n > 0 else np.nan
    return out


@nb.njit(cache=True, parallel=True)
def sample_ortho(top_rad, au, bu, cu, av, bv, cv, rows, cols, ss):
    """Orthographic view: mean top radiance of ``ss × ss`` points per output pixel.

    Output pixel coordinates (x = col, y = row, corner convention) map to cell coordinates
    by ``u = au*x + bu*y + cu``, ``v = av*x + bv*y + cv``; points off the grid are skipped
    (NaN if all are).
    """
    ny, nx = top_rad.shape
    out = np.empty((rows, cols), np.float32)
    for r in nb.prange(rows):
        for c in range(cols):
            acc = 0.0
            n = 0
            for a in range(ss):
                y = r + (a + 0.5) / ss
                for b in range(ss):
                    x = c + (b + 0.5) / ss
                    j = int(np.floor(au * x + bu * y + cu))
                    i = int(np.floor(av * x + bv * y + cv))
                    if 0 <= i < ny and 0 <= j < nx:
                        acc += top_rad[i, j]
                        n += 1
            out[r, c] = acc / n if n > 0 else np.nan
    return out
