"""DSM clean-up kernels: speckle removal, median and edge-preserving smoothing, per-view
visibility (z-buffer), hole filling, height steps moved onto grey edges."""

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
def hidden_below(dsm, di, dj, rise, max_steps):
    """Per cell, the height below which a view cannot see it over the surface ``dsm``.

    The view's line of sight from a cell climbs ``rise`` metres per cell travelled along
    the unit grid direction (``di``, ``dj``) (rows, cols); a point of the cell at height
    ``h`` is hidden when some cell along that line, ``s`` cells away (1..``max_steps``), is
    higher than ``h + s · rise``. Returns, per cell, the largest ``dsm[q] − s · rise`` over
    that line (−inf where nothing stands in the way; NaN cells block nothing).
    """
    ny, nx = dsm.shape
    out = np.full((ny, nx), -np.inf, np.float32)
    for i in range(ny):
        for j in range(nx):
            top = -np.inf
            for s in range(1, max_steps + 1):
                a = int(np.floor(i + s * di + 0.5))
                b = int(np.floor(j + s * dj + 0.5))
                if a < 0 or b < 0 or a >= ny or b >= nx:
                    break
                h = dsm[a, b] - s * rise
                if h > top:
                    top = h
            out[i, j] = top
    return out


@numba.njit(cache=True)
def _window_heights(dsm, i, j, radius, buf):
    """Copy the non-NaN heights of the (2·radius+1)² window around (i, j) into ``buf``;
    return how many there are."""
    ny, nx = dsm.shape
    n = 0
    for a in range(max(i - radius, 0), min(i + radius + 1, ny)):
        for b in range(max(j - radius, 0), min(j + radius + 1, nx)):
            if not np.isnan(dsm[a, b]):
                buf[n] = dsm[a, b]
                n += 1
    return n


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
            n = _window_heights(dsm, i, j, radius, buf)
            med = np.median(buf[:n])
            total = 0.0
            m = 0
            for k in range(n):
                if abs(buf[k] - med) <= tol:
                    total += buf[k]
                    m += 1
            out[i, j] = total / m if m else med
    return out


@numba.njit(cache=True)
def median_heights(dsm, radius):
    """Median of the (2·radius+1)² window's heights per cell (NaN ignored, NaN cells stay NaN).

    Removes the streaks and single-cell outliers that SGM leaves on weakly textured
    ground, which an average would only spread; a median keeps steps (walls) in place.
    """
    ny, nx = dsm.shape
    out = np.full((ny, nx), np.nan, np.float32)
    buf = np.empty((2 * radius + 1) ** 2, np.float64)
    for i in range(ny):
        for j in range(nx):
            if np.isnan(dsm[i, j]):
                continue
            n = _window_heights(dsm, i, j, radius, buf)
            out[i, j] = np.median(buf[:n])
    return out


@numba.njit(cache=True)
def _group(ids, n):
    """Flat indices of the cells of each id 1..n: (order, start) with cells of id k at
    ``order[start[k]:start[k + 1]]``."""
    flat = ids.ravel()
    start = np.zeros(n + 2, np.int64)
    for c in range(flat.size):
        start[flat[c] + 1] += 1
    for k in range(1, n + 2):
        start[k] += start[k - 1]
    fill = start.copy()
    order = np.empty(flat.size, np.int64)
    for c in range(flat.size):
        order[fill[flat[c]]] = c
        fill[flat[c]] += 1
    return order, start


@numba.njit(cache=True)
def fill_from_rim(dsm, holes, rim, n, step_m, smooth):
    """Fill hole ``k`` (cells where ``holes == k``, 1..n) from its rim (``rim == k``), in place.

    A hole whose rim has a step of more than ``step_m`` between neighbouring rim cells lies
    between surfaces (a steep but continuous slope, like a pyramid face, is one surface) — mostly an occlusion at the foot of a building — and takes the median of the
    lower half of its rim: the ground, not a blend of ground and roof. Any other hole, and
    any hole ``k`` with ``smooth[k]`` set, is a gap in one surface (textureless or
    ambiguous cells) and is interpolated smoothly: inverse-square-distance weights over its
    rim cells. Holes without rim are left NaN. Returns per hole whether it took the
    lower-rim fill.
    """
    ny, nx = dsm.shape
    hole_cells, hs = _group(holes, n)
    rim_cells, rs = _group(rim, n)
    lower = np.zeros(n + 1, np.bool_)
    for k in range(1, n + 1):
        m = rs[k + 1] - rs[k]
        if m == 0:
            continue
        ri = np.empty(m, np.int64)
        rj = np.empty(m, np.int64)
        rh = np.empty(m, np.float64)
        for a in range(m):
            c = rim_cells[rs[k] + a]
            ri[a], rj[a], rh[a] = c // nx, c % nx, dsm[c // nx, c % nx]
        between = False                      # a step between neighbouring rim cells?
        for a in range(m if not smooth[k] else 0):
            for di in range(-1, 2):
                for dj in range(-1, 2):
                    qi, qj = ri[a] + di, rj[a] + dj
                    if 0 <= qi < ny and 0 <= qj < nx and rim[qi, qj] == k and abs(dsm[qi, qj] - rh[a]) > step_m:
                        between = True
        lower[k] = between
        mid = np.median(rh)
        for b in range(hs[k], hs[k + 1]):
            i, j = hole_cells[b] // nx, hole_cells[b] % nx
            if between:
                dsm[i, j] = np.median(rh[rh <= mid])
                continue
            num = 0.0
            den = 0.0
            for a in range(m):
                w = 1.0 / ((ri[a] - i) ** 2 + (rj[a] - j) ** 2)
                num += w * rh[a]
                den += w
            dsm[i, j] = num / den
    return lower


@numba.njit(cache=True)
def fill_background(dsm, mask, max_dist, rank=0):
    """Fill the NaN cells of ``mask`` with the background seen around them, in place.

    Per cell, the first height found along each of the 8 grid directions (at most
    ``max_dist`` cells away) is collected and the ``rank``-th lowest is taken — in object
    space the background is the lower surface, so this is the occlusion fill of SGM
    (Hirschmüller takes the second lowest disparity's background): an unconfirmed cell
    takes the lower of the surfaces around it, not the roof that SGM spread over it.
    (On simulated Toulouse the lowest, ``rank`` 0, took more spilled roof off than the
    second lowest: cells > 2 m too high 14.0 → 12.1 % at seed 7, roof RMSE unchanged.)
    Cells with no height in reach stay NaN. Returns the number of cells filled.
    """
    ny, nx = dsm.shape
    src = dsm.copy()
    found = np.empty(8, np.float64)
    filled = 0
    for i in range(ny):
        for j in range(nx):
            if not mask[i, j] or not np.isnan(src[i, j]):
                continue
            n = 0
            for k in range(8):
                di = (1, -1, 0, 0, 1, 1, -1, -1)[k]
                dj = (0, 0, 1, -1, 1, -1, 1, -1)[k]
                for s in range(1, max_dist + 1):
                    a, b = i + s * di, j + s * dj
                    if a < 0 or b < 0 or a >= ny or b >= nx:
                        break
                    if not np.isnan(src[a, b]):
                        found[n] = src[a, b]
                        n += 1
                        break
            if n == 0:
                continue
            f = np.sort(found[:n])
            dsm[i, j] = f[min(rank, n - 1)]
            filled += 1
    return filled


@numba.njit(cache=True)
def _relocate_line(h, g, edge, out, min_step, reach, min_edge):
    """One grid line of ``relocate_steps``, steps up in the line's direction; writes ``out``."""
    n = h.shape[0]
    for a in range(1, n - reach - 2):
        low = h[a]
        if np.isnan(low) or not (h[a - 1] < low + min_step):
            continue
        if h[a + 1] - low > min_step:
            first = a                          # the DSM's step lies between a and a + 1 ...
        elif h[a + 2] - low > min_step and h[a + 1] > low:
            first = a + 1                      # ... or is spread over a + 1 (median, smoothing)
        else:
            continue
        best, kbest = -1.0, -1
        for k in range(a - 1, a + reach + 1):  # image edge between k and k + 1
            if edge[k] > best:
                best, kbest = edge[k], k
        if kbest <= first or best < min_edge or best < 2.0 * max(edge[a], edge[first]):
            continue
        if np.isnan(h[kbest + 1]) or h[kbest + 1] - low <= min_step:
            continue                           # the image edge must still have the high side beyond it
        for k in range(a + 1, kbest + 1):
            if np.isnan(h[k]) or h[k] - low <= 0.5 * min_step:
                break
            if not 2.0 * abs(g[k] - g[a]) < abs(g[k] - g[kbest + 1]):
                break                          # the cell does not clearly look like the low side
            out[k] = low


@numba.njit(cache=True)
def relocate_steps(dsm, grey, min_step, reach, min_edge):
    """Move the DSM's height steps onto the image's grey-level edges: foreground fattening.

    The matching window (census 7×7, SGM) carries a roof's height over the first cells of
    the ground beside it, so the DSM's step lies outside the roof's edge. ``grey`` is the
    nadir view sampled at the DSM's heights: there a roof's outline is where it is on the
    ground. Along every row and column, in both directions, at a step up of more than
    ``min_step`` (over one or two cells) the strongest grey edge within ``reach`` cells on
    the high side is found (edge strength: the step between adjacent cells of ``grey``
    averaged over 3 cells along the step, so the edge must run parallel to it); when it is
    at least ``min_edge`` and twice the edge at the DSM's step, and the high side still
    lies beyond it, the cells between the two take the low side's height — those whose grey
    level is at least twice as close to the low side's (the cell at the DSM's foot) as to
    the high side's beyond the edge. Without that test seed 7's roof RMSE rose 1.229 ->
    1.250 m (roof cells lowered at an edge inside the roof); with it 1.206. Rows first, then
    columns on the result. Returns the new DSM.
    """
    ny, nx = dsm.shape
    out = dsm.copy()
    ex = np.zeros((ny, nx), np.float64)        # ex[i, j]: edge between (i, j) and (i, j + 1)
    ey = np.zeros((ny, nx), np.float64)        # ey[i, j]: edge between (i, j) and (i + 1, j)
    for i in range(ny):
        for j in range(nx):
            sx = 0.0
            sy = 0.0
            cx = 0
            cy = 0
            for d in range(-1, 2):
                if 0 <= i + d < ny and j + 1 < nx:
                    v = abs(grey[i + d, j + 1] - grey[i + d, j])
                    if not np.isnan(v):
                        sx += v
                        cx += 1
                if 0 <= j + d < nx and i + 1 < ny:
                    v = abs(grey[i + 1, j + d] - grey[i, j + d])
                    if not np.isnan(v):
                        sy += v
                        cy += 1
            ex[i, j] = sx / cx if cx else 0.0
            ey[i, j] = sy / cy if cy else 0.0
    rev = np.empty(nx, np.float64)
    for i in range(ny):
        src = out[i].copy()
        _relocate_line(src, grey[i], ex[i], out[i], min_step, reach, min_edge)
        for j in range(nx - 1):                # reversed: edge between reversed j and j + 1
            rev[j] = ex[i, nx - 2 - j]
        rev[nx - 1] = 0.0
        _relocate_line(src[::-1].copy(), grey[i, ::-1].copy(), rev, out[i, ::-1], min_step, reach, min_edge)
    revy = np.empty(ny, np.float64)
    for j in range(nx):
        src = out[:, j].copy()
        _relocate_line(src, grey[:, j].copy(), ey[:, j].copy(), out[:, j], min_step, reach, min_edge)
        for i in range(ny - 1):
            revy[i] = ey[ny - 2 - i, j]
        revy[ny - 1] = 0.0
        _relocate_line(src[::-1].copy(), grey[::-1, j].copy(), revy, out[::-1, j], min_step, reach, min_edge)
    return out
