"""Touching buildings → instances: straight party-wall cuts through building blocks.

A block of attached buildings (one connected component of the building mask) is cut along
straight lines parallel to its walls where the roofs on either side differ: a height step
in the nDSM or a change of roof tone in the ortho, over most of the line. Per block:

1. the block's orientation (modulo 90°) is the angle whose projection profiles of the
   block's boundary pixels are the sharpest;
2. the block is resampled on a grid rotated by that angle (1 pixel steps), so candidate
   cuts are the rotated grid's row and column boundaries;
3. a candidate cut is a boundary line's maximal run across the block (ended by the block's
   outline or by a cut already accepted), scored by the medians, over the run, of the
   height step and of the relative ortho step between the two pixels either side: a cut
   needs clear evidence over at least half of its length, so hips, chimneys and shadows
   across part of a building do not cut it. The ortho step does not count where the roof
   slope across the line changes (a ridge, valley or hip: the two roof planes are shaded
   differently), nor at all when such rows are the majority or when the roof rises towards
   the line from both sides over a few metres (a ridge that the stereo nDSM rounds off, so
   the slope change right at the line is too weak to tell). A valley parallel to the
   block's walls together with a (weaker) tone step is evidence too: two roofs that slope
   down to a party wall (hipped or gabled row houses of one height), which the stereo
   nDSM shows as a smooth trough, not a step; the tone step puts the cut on the wall
   rather than on the trough's lowest line, which the smoothing shifts off it. Such cuts
   are weaker evidence and rank below every step cut, so they never crowd out a nearby
   step cut (the ``min_width`` rule below);
4. cuts are accepted greedily, strongest first, rescoring after each (a party wall that
   ends on another wall becomes a whole run once that wall is cut); no cut closer than
   ``min_width`` pixels to a parallel cut or to the block's outline on most of its run;
5. the cuts block the 4-neighbour links they cross on the original grid and the pieces
   are labelled; pieces under ``min_px`` pixels join the neighbour they share most cut
   edges with.

Pure array functions, deterministic; a block's result depends on its pixels only (all
positions are relative to its bounding box), not on the window it is computed in.
"""

from __future__ import annotations

import math

import numba
import numpy as np

VALLEY_RANK = 1e-6   # scale of a valley cut's score: below any step cut's (at least 1)


@numba.njit(cache=True)
def _components(mask):
    """4-connected components of ``mask`` (labels 1..n in raster order), their pixel lists
    (``order[offsets[k]:offsets[k+1]]`` flat indices of component k+1)."""
    rows, cols = mask.shape
    labels = np.zeros((rows, cols), np.int32)
    stack = np.empty(rows * cols, np.int64)
    order = np.empty(rows * cols, np.int64)
    offsets = [0]
    n = 0
    m = 0
    for r0 in range(rows):
        for c0 in range(cols):
            if not mask[r0, c0] or labels[r0, c0]:
                continue
            n += 1
            labels[r0, c0] = n
            top = 0
            stack[0] = r0 * cols + c0
            top = 1
            while top:
                top -= 1
                p = stack[top]
                order[m] = p
                m += 1
                r, c = p // cols, p % cols
                for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0)):
                    rr, cc = r + dr, c + dc
                    if 0 <= rr < rows and 0 <= cc < cols and mask[rr, cc] and not labels[rr, cc]:
                        labels[rr, cc] = n
                        stack[top] = rr * cols + cc
                        top += 1
            offsets.append(m)
    return labels, order[:m], np.array(offsets, np.int64)


@numba.njit(cache=True)
def _profile_score(bx, by, theta, hist):
    """Sum of squared counts of the boundary pixels projected on the two axes at ``theta``
    (1 pixel bins): high when many boundary pixels share a wall line."""
    ct = math.cos(theta)
    st = math.sin(theta)
    half = hist.shape[0] // 2
    score = 0.0
    for axis in range(2):
        hist[:] = 0
        for p in range(bx.shape[0]):
            if axis == 0:
                t = bx[p] * ct + by[p] * st
            else:
                t = -bx[p] * st + by[p] * ct
            hist[int(math.floor(t + 0.5)) + half] += 1
        for q in range(hist.shape[0]):
            score += hist[q] * hist[q]
    return score


@numba.njit(cache=True)
def _orientation(labels, k, r0, r1, c0, c1):
    """Dominant wall direction (radians, in [0, pi/2)) of component ``k``: the angle whose
    projection profiles of the block's boundary pixels are the sharpest (0.5 degree steps,
    refined to 0.1 degree; ties: the smaller angle)."""
    rows, cols = labels.shape
    bx = []
    by = []
    for r in range(r0, r1 + 1):
        for c in range(c0, c1 + 1):
            if labels[r, c] != k:
                continue
            if r == 0 or c == 0 or r == rows - 1 or c == cols - 1 or labels[r - 1, c] != k \
                    or labels[r + 1, c] != k or labels[r, c - 1] != k or labels[r, c + 1] != k:
                bx.append(float(c - c0))
                by.append(float(r - r0))
    xs = np.array(bx)
    ys = np.array(by)
    hist = np.zeros(2 * (r1 - r0 + c1 - c0) + 8, np.int64)
    best = -1.0
    theta = 0.0
    for step in range(180):
        t = math.radians(0.5 * step)
        score = _profile_score(xs, ys, t, hist)
        if score > best:
            best = score
            theta = t
    coarse = theta
    for step in range(-4, 5):
        t = coarse + math.radians(0.1 * step)
        score = _profile_score(xs, ys, t, hist)
        if score > best:
            best = score
            theta = t
    return theta % (math.pi / 2)


@numba.njit(cache=True)
def _bilinear(img, y, x):
    rows, cols = img.shape
    if rows == 0:
        return np.nan
    x0 = int(math.floor(x))
    y0 = int(math.floor(y))
    if x0 < 0 or y0 < 0 or x0 + 1 >= cols or y0 + 1 >= rows:
        xi = min(max(int(round(x)), 0), cols - 1)
        yi = min(max(int(round(y)), 0), rows - 1)
        return img[yi, xi]
    fx = x - x0
    fy = y - y0
    return ((img[y0, x0] * (1 - fx) + img[y0, x0 + 1] * fx) * (1 - fy)
            + (img[y0 + 1, x0] * (1 - fx) + img[y0 + 1, x0 + 1] * fx) * fy)


@numba.njit(cache=True)
def _slope_change(inside, h, i, j):
    """Change of the roof's slope (height per pixel) across the boundary after column ``j``
    of row ``i``: positive at a ridge, negative at a valley, NaN where unknown. Each side's
    slope is taken over 4 pixels, one pixel off the boundary, and averaged over the 5 rows
    around ``i`` (the nDSM is noisy)."""
    nv, nu = inside.shape
    if j < 5 or j + 6 >= nu:
        return np.nan
    sl = 0.0
    n = 0
    for ii in range(max(i - 2, 0), min(i + 3, nv)):
        if inside[ii, j - 5] and inside[ii, j + 6]:
            d = (h[ii, j - 1] - h[ii, j - 5]) / 4.0 - (h[ii, j + 6] - h[ii, j + 2]) / 4.0
            if np.isfinite(d):
                sl += d
                n += 1
    return sl / n if n > 0 else np.nan


@numba.njit(cache=True)
def _hump(inside, h, i, j, reach):
    """Mean rise per pixel from the roof ``k`` pixels either side up to the boundary after
    column ``j`` of row ``i`` (k as far as the block reaches on both sides, at most
    ``reach``): positive on a ridge, negative in a valley, NaN where the block is narrower
    than 4 pixels either side. Over such a baseline a ridge still shows where the stereo
    nDSM rounds it off, which the slope change right at the line misses."""
    nu = inside.shape[1]
    k = 1
    while k < reach and j - k >= 0 and j + 1 + k < nu and inside[i, j - k] and inside[i, j + 1 + k]:
        k += 1
    if k < 4:
        return np.nan
    top = 0.5 * (h[i, j] + h[i, j + 1])
    return (top - 0.5 * (h[i, j + 1 - k] + h[i, j + k])) / (k - 0.5)


@numba.njit(cache=True)
def _run_score(inside, h, o, vblock, hblock, j, a, b, min_width, max_kink, ridge_hump, reach,
               buf_h, buf_o, buf_v, buf_r, buf_k):
    """Score of the cut between rotated columns ``j`` and ``j+1`` over rows ``a..b``:
    (median height step, median relative ortho step off ridges and valleys (none when the
    median hump along the run exceeds ``ridge_hump``: the line is a ridge), median valley
    (the slope change where it is one, else 0), median relative ortho step of all rows,
    share of rows with evidence, share of rows with ``min_width`` pixels of block on both
    sides)."""
    nu = inside.shape[1]
    nh = 0
    no = 0
    nvl = 0
    nr = 0
    kinks = 0
    wide = 0
    for i in range(a, b + 1):
        if j >= 1 and j + 2 < nu and inside[i, j - 1] and inside[i, j + 2] \
                and not vblock[i, j - 1] and not vblock[i, j + 1]:
            hl = 0.5 * (h[i, j - 1] + h[i, j])
            hr = 0.5 * (h[i, j + 1] + h[i, j + 2])
            if np.isfinite(hl) and np.isfinite(hr):
                buf_h[nh] = abs(hr - hl)
                nh += 1
            change = _slope_change(inside, h, i, j)
            if np.isfinite(change):
                buf_v[nvl] = max(-change, 0.0)
                nvl += 1
            ol = o[i, j - 1] + o[i, j]
            orr = o[i, j + 1] + o[i, j + 2]
            if np.isfinite(ol) and np.isfinite(orr) and ol + orr > 0:
                tone = 2.0 * abs(orr - ol) / (ol + orr)
                buf_r[nr] = tone
                nr += 1
                if abs(change) > max_kink:
                    kinks += 1    # across a ridge, valley or hip the tone step is shading
                else:
                    buf_o[no] = tone
                    no += 1
        ok = True
        for d in range(min_width):
            jl = j - d
            jr = j + 1 + d
            if jl < 0 or jr >= nu or not inside[i, jl] or not inside[i, jr]:
                ok = False
                break
            if d > 0 and (vblock[i, jl] or vblock[i, jr - 1]):
                ok = False
                break
        wide += ok
    n = b - a + 1
    mh = np.median(buf_h[:nh]) if nh > 0 else 0.0
    mo = np.median(buf_o[:no]) if no > kinks else 0.0
    if mo > 0.0:   # the tone step counts: unless the run is a ridge the nDSM rounds off
        nk = 0
        for i in range(a, b + 1):
            hump = _hump(inside, h, i, j, reach)
            if np.isfinite(hump):
                buf_k[nk] = hump
                nk += 1
        if nk > 0 and np.median(buf_k[:nk]) > ridge_hump:
            mo = 0.0
    mv = np.median(buf_v[:nvl]) if nvl > 0 else 0.0
    mr = np.median(buf_r[:nr]) if nr > 0 else 0.0
    return mh, mo, mv, mr, max(nh, no + kinks) / n, wide / n


@numba.njit(cache=True)
def _best_cut(inside, h, o, vblock, hblock, step_m, step_rel, valley, valley_rel, min_len,
              min_width, max_kink, ridge_hump, reach, buf_h, buf_o, buf_v, buf_r, buf_k):
    """The strongest acceptable cut between columns of the rotated block: (score, j, a, b),
    score 0 when none. A run is a maximal stretch of rows where both pixels of the boundary
    are in the block, not already cut there and not crossing a perpendicular cut."""
    nv, nu = inside.shape
    best = 0.0
    bj = -1
    ba = -1
    bb = -1
    for j in range(nu - 1):
        i = 0
        while i < nv:
            if not (inside[i, j] and inside[i, j + 1]) or vblock[i, j]:
                i += 1
                continue
            a = i
            while i + 1 < nv and inside[i + 1, j] and inside[i + 1, j + 1] and not vblock[i + 1, j] \
                    and not hblock[i, j] and not hblock[i, j + 1]:
                i += 1
            b = i
            i += 1
            if b - a + 1 < min_len:
                continue
            mh, mo, mv, mr, share, wide = _run_score(inside, h, o, vblock, hblock, j, a, b,
                                                     min_width, max_kink, ridge_hump, reach, buf_h, buf_o,
                                                     buf_v, buf_r, buf_k)
            if share < 0.6 or wide < 0.5:
                continue
            score = max(mh / step_m, mo / step_rel)
            if score < 1.0:   # a valley cut ranks below every step cut (weaker evidence)
                score = min(mv / valley, mr / valley_rel) * VALLEY_RANK
                if score < VALLEY_RANK:
                    continue
            if score > best:
                best = score
                bj = j
                ba = a
                bb = b
    return best, bj, ba, bb


@numba.njit(cache=True)
def _block_cuts(inside, h, o, step_m, step_rel, valley, valley_rel, min_len, min_width, max_kink,
                ridge_hump, reach, max_cuts):
    """Greedy cuts of one rotated block: rows ``(axis, j, a, b)``, axis 0 = between columns
    j and j+1 over rows a..b, axis 1 = between rows j and j+1 over columns a..b."""
    nv, nu = inside.shape
    vblock = np.zeros((nv, nu), np.bool_)    # link (i, j)-(i, j+1) cut
    hblock = np.zeros((nv, nu), np.bool_)    # link (i, j)-(i+1, j) cut
    buf_h = np.empty(max(nv, nu), np.float64)
    buf_o = np.empty(max(nv, nu), np.float64)
    buf_v = np.empty(max(nv, nu), np.float64)
    buf_r = np.empty(max(nv, nu), np.float64)
    buf_k = np.empty(max(nv, nu), np.float64)
    cuts = []
    # transposed views share the memory: a cut between rows is a cut between their columns
    inside_t = inside.T
    h_t = h.T
    o_t = o.T
    for _ in range(max_cuts):
        s0, j0, a0, b0 = _best_cut(inside, h, o, vblock, hblock, step_m, step_rel, valley,
                                   valley_rel, min_len, min_width, max_kink, ridge_hump, reach, buf_h,
                                   buf_o, buf_v, buf_r, buf_k)
        s1, j1, a1, b1 = _best_cut(inside_t, h_t, o_t, hblock.T, vblock.T, step_m, step_rel, valley,
                                   valley_rel, min_len, min_width, max_kink, ridge_hump, reach, buf_h,
                                   buf_o, buf_v, buf_r, buf_k)
        if s0 == 0.0 and s1 == 0.0:
            break
        if s0 >= s1:
            vblock[a0:b0 + 1, j0] = True
            cuts.append((0, j0, a0, b0))
        else:
            hblock[j1, a1:b1 + 1] = True
            cuts.append((1, j1, a1, b1))
    return cuts


@numba.njit(cache=True)
def _crosses(u1, v1, u2, v2, axis, j, a, b):
    """Whether the link between rotated positions 1 and 2 crosses the cut (axis, j, a..b)."""
    if axis == 1:
        u1, v1, u2, v2 = v1, u1, v2, u2
    line = j + 0.5
    if (u1 < line) == (u2 < line):
        return False
    t = (line - u1) / (u2 - u1)
    v = v1 + t * (v2 - v1)
    return a - 0.5 <= v <= b + 0.5


@numba.njit(cache=True)
def separate_instances(mask, ndsm, ortho, step_m, step_rel, max_kink, ridge_hump, reach, valley,
                       valley_rel, min_len, min_width, min_px):
    """Instance ids (int32, 0 = background, 1..n in raster order of the first pixel) of a
    binary building ``mask``, touching buildings cut apart along straight party walls.

    ``ndsm`` and ``ortho`` (grey) are float arrays on the mask's grid (NaN: unknown), or
    0x0 arrays when missing. A cut needs, along its run of at least ``min_len`` pixels, a
    median height step of ``step_m``, or a median relative ortho step of ``step_rel`` off
    ridges and valleys (slope changes of more than ``max_kink`` height per pixel; none on a
    run whose median hump, the mean rise per pixel over up to ``reach`` pixels either side,
    exceeds ``ridge_hump``), or a
    median valley of ``valley`` (height per pixel) together with a median relative ortho
    step of ``valley_rel``; and ``min_width`` pixels of block on both sides. Pieces under
    ``min_px`` pixels rejoin a neighbour.
    """
    rows, cols = mask.shape
    comp, order, offsets = _components(mask)
    links = np.zeros((rows, cols, 2), np.bool_)   # right / down link of each pixel cut
    max_cuts = 200
    for k in range(1, offsets.shape[0]):
        pix = order[offsets[k - 1]:offsets[k]]
        if pix.shape[0] < 2 * min_px:
            continue
        r0 = rows
        r1 = 0
        c0 = cols
        c1 = 0
        for p in pix:
            r0 = min(r0, p // cols)
            r1 = max(r1, p // cols)
            c0 = min(c0, p % cols)
            c1 = max(c1, p % cols)
        theta = _orientation(comp, k, r0, r1, c0, c1)
        ct = math.cos(theta)
        st = math.sin(theta)
        # rotated coordinates of the block's pixels: u along theta, v across
        umin = 1e18
        vmin = 1e18
        umax = -1e18
        vmax = -1e18
        for p in pix:
            y = p // cols - r0
            x = p % cols - c0
            u = x * ct + y * st
            v = -x * st + y * ct
            umin = min(umin, u)
            umax = max(umax, u)
            vmin = min(vmin, v)
            vmax = max(vmax, v)
        umin = math.floor(umin) - 1.0
        vmin = math.floor(vmin) - 1.0
        nu = int(math.ceil(umax - umin)) + 3
        nv = int(math.ceil(vmax - vmin)) + 3
        inside = np.zeros((nv, nu), np.bool_)
        h = np.full((nv, nu), np.nan)
        o = np.full((nv, nu), np.nan)
        for i in range(nv):
            for j in range(nu):
                u = j + umin
                v = i + vmin
                x = u * ct - v * st
                y = u * st + v * ct
                rr = int(round(y)) + r0
                cc = int(round(x)) + c0
                if 0 <= rr < rows and 0 <= cc < cols and comp[rr, cc] == k:
                    inside[i, j] = True
                    if ndsm.shape[0] > 0:
                        h[i, j] = _bilinear(ndsm, y + r0, x + c0)
                    if ortho.shape[0] > 0:
                        o[i, j] = _bilinear(ortho, y + r0, x + c0)
        cuts = _block_cuts(inside, h, o, step_m, step_rel, valley, valley_rel, min_len, min_width,
                           max_kink, ridge_hump, reach, max_cuts)
        if len(cuts) == 0:
            continue
        for p in pix:
            r = p // cols
            c = p % cols
            y = r - r0
            x = c - c0
            u = x * ct + y * st - umin
            v = -x * st + y * ct - vmin
            for link in range(2):
                rr = r + link
                cc = c + 1 - link
                if rr >= rows or cc >= cols or comp[rr, cc] != k:
                    continue
                u2 = u + (ct if link == 0 else st)
                v2 = v + (-st if link == 0 else ct)
                for axis, j, a, b in cuts:
                    if _crosses(u, v, u2, v2, axis, j, a, b):
                        links[r, c, link] = True
                        break
    return _pieces(mask, links, min_px)


@numba.njit(cache=True)
def _find(parent, p):
    while parent[p] != p:
        parent[p] = parent[parent[p]]
        p = parent[p]
    return p


@numba.njit(cache=True)
def _pieces(mask, links, min_px):
    """Labels of the mask's pieces between cut links; a piece under ``min_px`` pixels
    joins the neighbour it shares the most cut links with (ties: the first in raster
    order), then the labels are numbered in raster order."""
    rows, cols = mask.shape
    parent = np.arange(rows * cols)
    cut_a = []
    cut_b = []
    for r in range(rows):
        for c in range(cols):
            if not mask[r, c]:
                continue
            for link in range(2):
                r2 = r + link
                c2 = c + 1 - link
                if r2 >= rows or c2 >= cols or not mask[r2, c2]:
                    continue
                if links[r, c, link]:
                    cut_a.append(r * cols + c)
                    cut_b.append(r2 * cols + c2)
                else:
                    p = _find(parent, r * cols + c)
                    q = _find(parent, r2 * cols + c2)
                    if p != q:
                        parent[max(p, q)] = min(p, q)
    size = np.zeros(rows * cols, np.int64)
    for r in range(rows):
        for c in range(cols):
            if mask[r, c]:
                size[_find(parent, r * cols + c)] += 1
    for _ in range(8):
        changed = False
        for e in range(len(cut_a)):
            for p in (_find(parent, cut_a[e]), _find(parent, cut_b[e])):
                if size[p] >= min_px:
                    continue
                best = -1
                bn = 0
                counts = {np.int64(-1): 0}
                for f in range(len(cut_a)):
                    a = _find(parent, cut_a[f])
                    b = _find(parent, cut_b[f])
                    if a == b or (a != p and b != p):
                        continue
                    q = b if a == p else a
                    n = counts.get(q, 0) + 1
                    counts[q] = n
                    if n > bn or (n == bn and q < best):
                        best = q
                        bn = n
                if best >= 0:
                    s = size[p] + size[best]
                    root = min(p, best)
                    parent[max(p, best)] = root
                    size[root] = s
                    changed = True
        if not changed:
            break
    out = np.zeros((rows, cols), np.int32)
    ids = np.zeros(rows * cols, np.int32)
    n = 0
    for r in range(rows):
        for c in range(cols):
            if mask[r, c]:
                root = _find(parent, r * cols + c)
                if ids[root] == 0:
                    n += 1
                    ids[root] = n
                out[r, c] = ids[root]
    return out
