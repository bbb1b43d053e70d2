"""Numba helpers of the footprint repairs after regularization (see
:mod:`lod3d.outline.regularize`): rings to polygons, overlap areas between neighbours,
candidate pairs by bounding box, point in a pixel outline, simple-ring checks and short
edges left by overlap cuts. Pure array functions, all in pixel units.

Like :mod:`lod3d.kernels.outline_regularize`, they compile with NumPy's error model: a
division by zero gives inf or NaN, which the caller's validity check catches.
"""

import math

import numba
import numpy as np

AMBIGUOUS = 16.0   # overlap_areas: pieces within this many eps of a boundary, but not eps, are unclear


@numba.njit(cache=True, error_model="numpy")
def _ring_area2(xy, a, b):
    """Twice the signed area of the closed ring xy[a:b] (last coordinate = first)."""
    s = 0.0
    for i in range(a, b - 1):
        s += xy[i, 0] * xy[i + 1, 1] - xy[i + 1, 0] * xy[i, 1]
    return s


@numba.njit(cache=True, error_model="numpy")
def _inside(px, py, xy, ring_off, r0, r1):
    """Even-odd test of (px, py) against rings r0..r1 (a polygon with its holes)."""
    inside = False
    for r in range(r0, r1):
        for i in range(ring_off[r], ring_off[r + 1] - 1):
            ax, ay = xy[i, 0], xy[i, 1]
            bx, by = xy[i + 1, 0], xy[i + 1, 1]
            if (ay > py) != (by > py):
                x = ax + (py - ay) * (bx - ax) / (by - ay)
                if px < x:
                    inside = not inside
    return inside


@numba.njit(cache=True, error_model="numpy")
def _nearest_edge(px, py, xy, ring_off, r0, r1, sign):
    """Distance from (px, py) to the nearest edge of rings r0..r1 and that edge's direction
    (with the ring's orientation factor ``sign[r]``)."""
    best = np.inf
    ex = 0.0
    ey = 0.0
    for r in range(r0, r1):
        for i in range(ring_off[r], ring_off[r + 1] - 1):
            ax, ay = xy[i, 0], xy[i, 1]
            bx, by = xy[i + 1, 0], xy[i + 1, 1]
            gx = max(min(ax, bx) - px, px - max(ax, bx), 0.0)   # distance to its box:
            gy = max(min(ay, by) - py, py - max(ay, by), 0.0)   # a lower bound, no division
            if gx * gx + gy * gy > best:
                continue
            vx, vy = bx - ax, by - ay
            vv = vx * vx + vy * vy
            t = 0.0
            if vv > 0.0:
                t = min(max(((px - ax) * vx + (py - ay) * vy) / vv, 0.0), 1.0)
            dx, dy = ax + t * vx - px, ay + t * vy - py
            d = dx * dx + dy * dy
            if d < best:
                best = d
                ex = sign[r] * vx
                ey = sign[r] * vy
    return math.sqrt(best), ex, ey


@numba.njit(cache=True, error_model="numpy")
def _half_overlap(xy, ring_off, sign, a0, a1, b0, b1, box, ox, oy, count_same, eps, ts):
    """Green's-theorem share of ``area(A & B)`` from the boundary of A (rings a0..a1) that
    lies inside B (rings b0..b1): each edge of A is split where it crosses B's edges and
    each piece inside B adds its ``cross / 2`` about (ox, oy). A piece on B's boundary
    (within ``eps``) counts when both run the same way (the two interiors are on the same
    side) and ``count_same``; one running the other way (a shared wall between
    neighbours) bounds no common area. Returns (area, ambiguous): ambiguous when a piece
    is too close to B's boundary to classify but not on it. ``box``: B's bounding box
    grown by the ambiguity band; edges of A outside it add nothing. ``ts``: scratch for an
    edge's crossings, grown when full and returned (one buffer for all pairs)."""
    total = 0.0
    ambiguous = False
    for ra in range(a0, a1):
        sa = sign[ra]
        for i in range(ring_off[ra], ring_off[ra + 1] - 1):
            px, py = xy[i, 0], xy[i, 1]
            qx, qy = xy[i + 1, 0], xy[i + 1, 1]
            ux, uy = qx - px, qy - py
            if max(px, qx) < box[0] or min(px, qx) > box[2] or max(py, qy) < box[1] \
                    or min(py, qy) > box[3]:
                continue
            lu = math.sqrt(ux * ux + uy * uy)
            if lu <= eps:
                continue
            nt = 0
            ts[nt] = 0.0
            nt += 1
            # edges of B whose bounding box misses this edge's (both grown by a band far
            # wider than the rounding of t and s) cannot cross it: skipped before dividing
            tol = 1e-6 * lu + eps
            lox, hix = min(px, qx) - tol, max(px, qx) + tol
            loy, hiy = min(py, qy) - tol, max(py, qy) + tol
            for rb in range(b0, b1):
                for j in range(ring_off[rb], ring_off[rb + 1] - 1):
                    rx, ry = xy[j, 0], xy[j, 1]
                    sx, sy = xy[j + 1, 0], xy[j + 1, 1]
                    grow = 1e-6 * (abs(sx - rx) + abs(sy - ry))
                    if max(rx, sx) + grow < lox or min(rx, sx) - grow > hix \
                            or max(ry, sy) + grow < loy or min(ry, sy) - grow > hiy:
                        continue
                    vx, vy = sx - rx, sy - ry
                    den = ux * vy - uy * vx
                    lv = math.sqrt(vx * vx + vy * vy)
                    if abs(den) <= 1e-12 * lu * lv:
                        continue   # parallel: pieces along it are classified below
                    wx, wy = rx - px, ry - py
                    t = (wx * vy - wy * vx) / den
                    s = (wx * uy - wy * ux) / den
                    if 0.0 < t < 1.0 and -1e-9 <= s <= 1.0 + 1e-9:
                        if nt == ts.shape[0]:
                            grown = np.empty(2 * nt, dtype=np.float64)
                            grown[:nt] = ts[:nt]
                            ts = grown
                        ts[nt] = t
                        nt += 1
            if nt == ts.shape[0]:
                grown = np.empty(2 * nt, dtype=np.float64)
                grown[:nt] = ts[:nt]
                ts = grown
            ts[nt] = 1.0
            nt += 1
            # sort the crossings; 1.0 (last) is already not below any of them
            for k in range(2, nt - 1):   # insertion sort (few crossings); ts[0] = 0 stays first
                v = ts[k]
                q = k - 1
                while ts[q] > v:
                    ts[q + 1] = ts[q]
                    q -= 1
                ts[q + 1] = v
            for k in range(nt - 1):
                t0, t1 = ts[k], ts[k + 1]
                if (t1 - t0) * lu <= eps:
                    continue
                mx = px + 0.5 * (t0 + t1) * ux
                my = py + 0.5 * (t0 + t1) * uy
                d, ex, ey = _nearest_edge(mx, my, xy, ring_off, b0, b1, sign)
                if d <= eps:
                    take = count_same and (ex * ux + ey * uy) * sa > 0.0
                elif d <= AMBIGUOUS * eps:
                    ambiguous = True
                    take = False
                else:
                    take = _inside(mx, my, xy, ring_off, b0, b1)
                if take:
                    ax, ay = px + t0 * ux - ox, py + t0 * uy - oy
                    bx, by = px + t1 * ux - ox, py + t1 * uy - oy
                    total += 0.5 * sa * (ax * by - bx * ay)
    return total, ambiguous, ts


@numba.njit(cache=True, error_model="numpy")
def _axis_gap(xy, a0, a1, b0, b1, ux, uy, ox, oy):
    """Gap between the projections of the points xy[a0:a1] and xy[b0:b1] onto the
    direction (ux, uy) (about (ox, oy)); negative when the projections overlap."""
    lo_a = lo_b = np.inf
    hi_a = hi_b = -np.inf
    for i in range(a0, a1):
        t = (xy[i, 0] - ox) * ux + (xy[i, 1] - oy) * uy
        lo_a = min(lo_a, t)
        hi_a = max(hi_a, t)
    for i in range(b0, b1):
        t = (xy[i, 0] - ox) * ux + (xy[i, 1] - oy) * uy
        lo_b = min(lo_b, t)
        hi_b = max(hi_b, t)
    return max(lo_b - hi_a, lo_a - hi_b)


@numba.njit(cache=True, error_model="numpy")
def _separated(xy, sa, na, sb, nb, box_a, box_b, tol):
    """Whether the line of an edge of either exterior, xy[sa:sa+na+1] or xy[sb:sb+nb+1]
    (closed), separates the two polygons up to a strip ``tol`` wide: one polygon on one
    side of it but ``wa``, the other on the other side but ``wb``, ``wa + wb <= tol``.
    Each polygon lies in its exterior's convex hull, so their common part then lies
    within ``tol`` of both boundaries (it lies in the strip, and crossing the strip leaves
    both): neighbours whose walls meet along a line, up to rounding. Only the edges that
    meet the other's box (``box_b``, ``box_a``) are tried. Differences of near
    coordinates are exact, so large map coordinates do not blur the test."""
    for w in range(2):
        sp, n_p, sq, n_q = (sa, na, sb, nb) if w == 0 else (sb, nb, sa, na)
        box = box_b if w == 0 else box_a
        for i in range(n_p):
            px, py = xy[sp + i, 0], xy[sp + i, 1]
            qx, qy = xy[sp + i + 1, 0], xy[sp + i + 1, 1]
            if max(px, qx) < box[0] or min(px, qx) > box[2] or max(py, qy) < box[1] \
                    or min(py, qy) > box[3]:
                continue
            ux, uy = qx - px, qy - py
            lim = tol * math.sqrt(ux * ux + uy * uy)   # distances across the line times |u|
            lo = hi = 0.0
            for k in range(n_p):
                c = ux * (xy[sp + k, 1] - py) - uy * (xy[sp + k, 0] - px)
                lo, hi = min(lo, c), max(hi, c)
                if lo < -lim and hi > lim:
                    break
            # room left for the other polygon right of the line (this one left), and left
            room_r, room_l = lim + min(lo, 0.0), lim - max(hi, 0.0)
            for k in range(n_q):
                if room_r < 0.0 and room_l < 0.0:
                    break
                c = ux * (xy[sq + k, 1] - py) - uy * (xy[sq + k, 0] - px)
                if c > room_r:
                    room_r = -1.0
                if -c > room_l:
                    room_l = -1.0
            if room_r >= 0.0 or room_l >= 0.0:
                return True
    return False


@numba.njit(cache=True, error_model="numpy")
def overlap_areas(xy, ring_off, poly_off, left, right, eps):
    """Common area of each pair of polygons ``(left[k], right[k])`` and whether it could
    not be told reliably (then ask an exact overlay). Polygons as closed rings: ring r is
    ``xy[ring_off[r]:ring_off[r+1]]`` (last = first), polygon k owns rings
    ``poly_off[k]:poly_off[k+1]``, its exterior first; any orientation. ``eps``: the
    distance (CRS units) under which a point is on a boundary.

    By Green's theorem the common area is the integral of ``x dy - y dx`` / 2 over its
    boundary: the parts of each polygon's boundary inside the other (one copy of the
    parts on both boundaries that run the same way). About the pair's own origin, so
    large map coordinates lose no precision."""
    n_r = ring_off.shape[0] - 1
    sign = np.ones(n_r, dtype=np.float64)
    for k in range(poly_off.shape[0] - 1):
        for r in range(poly_off[k], poly_off[k + 1]):
            a2 = _ring_area2(xy, ring_off[r], ring_off[r + 1])
            outer = r == poly_off[k]
            if (outer and a2 < 0.0) or (not outer and a2 > 0.0):
                sign[r] = -1.0   # exterior counter-clockwise, holes clockwise
    n_p = poly_off.shape[0] - 1
    boxes = np.empty((n_p, 4), dtype=np.float64)
    grow = AMBIGUOUS * eps
    for k in range(n_p):
        boxes[k, 0] = boxes[k, 1] = np.inf
        boxes[k, 2] = boxes[k, 3] = -np.inf
        if poly_off[k + 1] > poly_off[k]:
            r = poly_off[k]
            for i in range(ring_off[r], ring_off[r + 1]):
                boxes[k, 0] = min(boxes[k, 0], xy[i, 0] - grow)
                boxes[k, 1] = min(boxes[k, 1], xy[i, 1] - grow)
                boxes[k, 2] = max(boxes[k, 2], xy[i, 0] + grow)
                boxes[k, 3] = max(boxes[k, 3], xy[i, 1] + grow)
    # each polygon's axis: its longest exterior edge (buildings are mostly square to it)
    axis = np.zeros((n_p, 2), dtype=np.float64)
    for k in range(n_p):
        if poly_off[k + 1] > poly_off[k]:
            r = poly_off[k]
            longest = 0.0
            for i in range(ring_off[r], ring_off[r + 1] - 1):
                ux, uy = xy[i + 1, 0] - xy[i, 0], xy[i + 1, 1] - xy[i, 1]
                length = math.sqrt(ux * ux + uy * uy)
                if length > longest:
                    longest = length
                    axis[k, 0] = ux / length
                    axis[k, 1] = uy / length
    n = left.shape[0]
    area = np.zeros(n, dtype=np.float64)
    ambiguous = np.zeros(n, dtype=np.bool_)
    ts = np.empty(64, dtype=np.float64)
    for k in range(n):
        a0, a1 = poly_off[left[k]], poly_off[left[k] + 1]
        b0, b1 = poly_off[right[k]], poly_off[right[k] + 1]
        if a1 == a0 or b1 == b0:
            continue
        ba = boxes[left[k]]
        bb = boxes[right[k]]
        if ba[2] < bb[0] or bb[2] < ba[0] or ba[3] < bb[1] or bb[3] < ba[1]:
            continue
        ox = xy[ring_off[a0], 0]
        oy = xy[ring_off[a0], 1]
        # apart along either axis or its normal by more than the ambiguity band: no piece
        # of either boundary is inside, on or near the other, so the area is 0, clearly
        apart = False
        for q in range(4):
            ax = axis[left[k] if q < 2 else right[k]]
            ux, uy = (ax[0], ax[1]) if q % 2 == 0 else (-ax[1], ax[0])
            if _axis_gap(xy, ring_off[a0], ring_off[a0 + 1], ring_off[b0], ring_off[b0 + 1],
                         ux, uy, ox, oy) > 2.0 * grow:
                apart = True
                break
        # separated by a wall's line up to eps / 2: what they share lies within eps of
        # both boundaries, where pieces running opposite ways bound no common area
        if apart or _separated(xy, ring_off[a0], ring_off[a0 + 1] - ring_off[a0] - 1, ring_off[b0],
                               ring_off[b0 + 1] - ring_off[b0] - 1, ba, bb, 0.5 * eps):
            continue
        s1, amb1, ts = _half_overlap(xy, ring_off, sign, a0, a1, b0, b1, bb, ox, oy, True, eps, ts)
        s2, amb2, ts = _half_overlap(xy, ring_off, sign, b0, b1, a0, a1, ba, ox, oy, False, eps, ts)
        area[k] = s1 + s2
        ambiguous[k] = amb1 or amb2
    return area, ambiguous


@numba.njit(cache=True)
def inside_pixel_rings(xy, ring_off, building_off, which, px, py, a, b, c, d, e, f):
    """Whether point k, ``(px[k], py[k])``, lies in the interior of the pixel outline of
    building ``which[k]``, georeferenced by ``(a x + b y + c, d x + e y + f)``.

    Flat pixel rings as traced (ring r is ``xy[ring_off[r]:ring_off[r+1]]``, no closing
    repeat; building q owns rings ``building_off[q]:building_off[q+1]``); each vertex is
    georeferenced on the fly with the same arithmetic as :func:`closed_world_rings`, so
    no outline is built. Under a transform without rotation every edge is horizontal or
    vertical and the test needs comparisons only, no arithmetic, so it is exact: the
    answer of an exact predicate (GEOS ``contains``). Returns int8: 1 inside, 0 outside
    or on the boundary, -1 when an edge of that building is oblique (not decided here)."""
    n = which.shape[0]
    out = np.zeros(n, dtype=np.int8)
    for k in range(n):
        q = which[k]
        x = px[k]
        y = py[k]
        inside = False
        state = 0   # 0: not decided yet, 1: on the boundary, -1: oblique edge
        for r in range(building_off[q], building_off[q + 1]):
            s = ring_off[r]
            m = ring_off[r + 1] - s
            for i in range(m):
                j = s + i
                t = s + (i + 1) % m
                ax = a * xy[j, 0] + b * xy[j, 1] + c
                ay = d * xy[j, 0] + e * xy[j, 1] + f
                bx = a * xy[t, 0] + b * xy[t, 1] + c
                by = d * xy[t, 0] + e * xy[t, 1] + f
                if ax == bx:        # vertical: a crossing of the ray to +x, or the point on it
                    if x == ax and min(ay, by) <= y <= max(ay, by):
                        state = 1
                    elif (ay > y) != (by > y) and x < ax:
                        inside = not inside
                elif ay == by:      # horizontal: the point may lie on it
                    if y == ay and min(ax, bx) <= x <= max(ax, bx):
                        state = 1
                else:
                    state = -1
                    break
            if state == -1:
                break
        if state == -1:
            out[k] = -1
        elif state == 0 and inside:
            out[k] = 1
    return out


@numba.njit(cache=True)
def box_pairs(boxes):
    """Pairs ``(i, j)``, i < j, of boxes ``(x0, y0, x1, y1)`` that meet (touching counts),
    sorted by i then j; a sweep over x. A box with a NaN bound (an empty geometry's)
    meets none."""
    n = boxes.shape[0]
    order = np.argsort(boxes[:, 0], kind="mergesort")
    cap = 4 * n + 16
    key = np.empty(cap, dtype=np.int64)
    m = 0
    for a in range(n):
        i = order[a]
        x1, y0, y1 = boxes[i, 2], boxes[i, 1], boxes[i, 3]
        for b in range(a + 1, n):
            j = order[b]
            if not boxes[j, 0] <= x1:   # sorted by x0, NaN last: no later box can meet
                break
            if boxes[j, 1] <= y1 and y0 <= boxes[j, 3]:
                if m == cap:
                    grown = np.empty(2 * cap, dtype=np.int64)
                    grown[:m] = key[:m]
                    key = grown
                    cap *= 2
                key[m] = min(i, j) * n + max(i, j)
                m += 1
    key = np.sort(key[:m])
    return key // n, key % n

@numba.njit(cache=True, error_model="numpy")
def closed_world_rings(xy, ring_offsets, a, b, c, d, e, f, reverse):
    """Flat pixel rings (no closing repeat) as closed rings in map coordinates
    ``(a x + b y + c, d x + e y + f)``, each ring's first vertex repeated at its end;
    ``reverse`` walks every ring backwards (p0, p[n-1], ..., p1, p0). Returns the
    coordinates and the closed rings' offsets."""
    n_rings = ring_offsets.shape[0] - 1
    out = np.empty((xy.shape[0] + n_rings, 2), dtype=np.float64)
    off = np.empty(n_rings + 1, dtype=np.int64)
    off[0] = 0
    o = 0
    for r in range(n_rings):
        s = ring_offsets[r]
        n = ring_offsets[r + 1] - s
        for k in range(n + 1):
            if n == 0:
                break
            q = k % n if not reverse else (n - k) % n
            x = xy[s + q, 0]
            y = xy[s + q, 1]
            out[o, 0] = a * x + b * y + c
            out[o, 1] = d * x + e * y + f
            o += 1
        off[r + 1] = o
    return out[:o], off


@numba.njit(cache=True, error_model="numpy")
def kept_rings(out_xy, out_off, building_offsets):
    """The rings of ``regularize_buildings``'s output to build polygons from: holes that
    collapsed below 3 vertices are dropped; an outer ring that did marks its building
    ``collapsed`` (the caller falls back), loses its holes and becomes a zero-area
    triangle on its first vertex so that arrays stay aligned. Returns ``(xy, ring_offsets,
    building_offsets, collapsed)``."""
    n_b = building_offsets.shape[0] - 1
    xy = np.empty((out_xy.shape[0] + 3 * n_b, 2), dtype=np.float64)
    r_off = np.empty(out_off.shape[0], dtype=np.int64)
    b_off = np.empty(n_b + 1, dtype=np.int64)
    collapsed = np.zeros(n_b, dtype=np.bool_)
    o = 0
    nr = 0
    r_off[0] = 0
    b_off[0] = 0
    for b in range(n_b):
        r0 = building_offsets[b]
        for r in range(r0, building_offsets[b + 1]):
            s = out_off[r]
            n = out_off[r + 1] - s
            if n < 3:
                if r > r0:
                    continue          # a vanished hole
                collapsed[b] = True   # placeholder triangle on the first vertex
                for k in range(3):
                    xy[o + k, 0] = out_xy[s, 0] if n > 0 else 0.0
                    xy[o + k, 1] = out_xy[s, 1] if n > 0 else 0.0
                o += 3
                nr += 1
                r_off[nr] = o
                break                 # its holes go with it
            for k in range(n):
                xy[o + k, 0] = out_xy[s + k, 0]
                xy[o + k, 1] = out_xy[s + k, 1]
            o += n
            nr += 1
            r_off[nr] = o
        b_off[b + 1] = nr
    return xy[:o], r_off[:nr + 1], b_off, collapsed


@numba.njit(cache=True, error_model="numpy")
def _geos_ring_area(xy, s, e):
    """Unsigned area of the closed ring xy[s:e] (last = first) with GEOS's arithmetic
    (``Area::ofRingSigned``: shoelace about the first vertex's x), so that it equals
    ``shapely.area`` to the bit."""
    n = e - s
    if n < 3:
        return 0.0
    x0 = xy[s, 0]
    total = 0.0
    for i in range(s + 1, e - 1):
        total += (xy[i, 0] - x0) * (xy[i - 1, 1] - xy[i + 1, 1])
    return abs(total / 2.0)


@numba.njit(cache=True, error_model="numpy")
def footprint_rings(out_xy, out_off, building_offsets, a, b, c, d, e, f, reverse, tol):
    """Everything the regularizer's repairs read from ``regularize_buildings``'s output,
    in one pass: :func:`kept_rings`, those rings closed and georeferenced
    (:func:`closed_world_rings`), which polygons are certainly valid
    (:func:`simple_polygons` at ``tol``, on the pixel rings), each polygon's area as GEOS
    computes it (exterior less holes) and its bounding box ``(x0, y0, x1, y1)`` (its
    exterior's, as GEOS's bounds).

    Returns ``(world_xy, closed_ring_offsets, building_offsets, collapsed, certain, area,
    boxes)``."""
    xy, r_off, b_off, collapsed = kept_rings(out_xy, out_off, building_offsets)
    world, closed = closed_world_rings(xy, r_off, a, b, c, d, e, f, reverse)
    certain = simple_polygons(xy, r_off, b_off, tol, False)
    n_b = b_off.shape[0] - 1
    area = np.zeros(n_b, dtype=np.float64)
    boxes = np.empty((n_b, 4), dtype=np.float64)
    for q in range(n_b):
        r0 = b_off[q]
        for r in range(r0, b_off[q + 1]):
            ring_area = _geos_ring_area(world, closed[r], closed[r + 1])
            area[q] += ring_area if r == r0 else -ring_area
        boxes[q, 0] = boxes[q, 1] = np.inf
        boxes[q, 2] = boxes[q, 3] = -np.inf
        for i in range(closed[r0], closed[r0 + 1]):
            boxes[q, 0] = min(boxes[q, 0], world[i, 0])
            boxes[q, 1] = min(boxes[q, 1], world[i, 1])
            boxes[q, 2] = max(boxes[q, 2], world[i, 0])
            boxes[q, 3] = max(boxes[q, 3], world[i, 1])
    return world, closed, b_off, collapsed, certain, area, boxes


@numba.njit(cache=True, error_model="numpy")
def _edges_apart(ax, ay, bx, by, cx, cy, dx, dy, tol):
    """Whether segments ab and cd are certainly disjoint: one lies strictly (by more than
    ``tol`` times its length) on one side of the other's line, or their boxes are apart."""
    if max(ax, bx) + tol < min(cx, dx) or max(cx, dx) + tol < min(ax, bx) \
            or max(ay, by) + tol < min(cy, dy) or max(cy, dy) + tol < min(ay, by):
        return True
    ux, uy = bx - ax, by - ay
    lu = tol * math.sqrt(ux * ux + uy * uy)
    o1 = ux * (cy - ay) - uy * (cx - ax)
    o2 = ux * (dy - ay) - uy * (dx - ax)
    if (o1 > lu and o2 > lu) or (o1 < -lu and o2 < -lu):
        return True
    vx, vy = dx - cx, dy - cy
    lv = tol * math.sqrt(vx * vx + vy * vy)
    o3 = vx * (ay - cy) - vy * (ax - cx)
    o4 = vx * (by - cy) - vy * (bx - cx)
    return (o3 > lv and o4 > lv) or (o3 < -lv and o4 < -lv)


@numba.njit(cache=True, error_model="numpy")
def _ring_simple(xy, s, k, tol):
    """Whether the ring xy[s:s+k] (no closing repeat) is certainly simple: at least 3
    vertices, consecutive edges longer than ``tol`` that do not fold back onto each other,
    other edge pairs certainly apart (``_edges_apart``)."""
    if k < 3:
        return False
    for i in range(k):
        j = s + (i + 1) % k
        h = s + (i + 2) % k
        ux, uy = xy[j, 0] - xy[s + i, 0], xy[j, 1] - xy[s + i, 1]
        vx, vy = xy[h, 0] - xy[j, 0], xy[h, 1] - xy[j, 1]
        lu = math.sqrt(ux * ux + uy * uy)
        lv = math.sqrt(vx * vx + vy * vy)
        if not (lu > tol and lv > tol):      # also catches NaN and infinity
            return False
        if abs(ux * vy - uy * vx) <= tol * lu * lv and ux * vx + uy * vy <= 0.0:
            return False                     # folds back (a spike)
    for i in range(k - 2):
        ax, ay = xy[s + i, 0], xy[s + i, 1]
        bx, by = xy[s + i + 1, 0], xy[s + i + 1, 1]
        for j in range(i + 2, k if i > 0 else k - 1):   # not the edges beside edge i
            jn = s + (j + 1) % k
            if not _edges_apart(ax, ay, bx, by, xy[s + j, 0], xy[s + j, 1],
                                xy[jn, 0], xy[jn, 1], tol):
                return False
    return True


@numba.njit(cache=True, error_model="numpy")
def _rings_apart(xy, s1, k1, s2, k2, tol):
    """Whether every edge of ring xy[s1:s1+k1] is certainly apart from every edge of ring
    xy[s2:s2+k2] (rings without closing repeat)."""
    for i in range(k1):
        a = s1 + i
        b = s1 + (i + 1) % k1
        for j in range(k2):
            c = s2 + j
            d = s2 + (j + 1) % k2
            if not _edges_apart(xy[a, 0], xy[a, 1], xy[b, 0], xy[b, 1],
                                xy[c, 0], xy[c, 1], xy[d, 0], xy[d, 1], tol):
                return False
    return True


@numba.njit(cache=True, error_model="numpy")
def _in_ring(px, py, xy, s, k):
    """Even-odd test of (px, py) against the ring xy[s:s+k] (no closing repeat)."""
    inside = False
    for i in range(k):
        ax, ay = xy[s + i, 0], xy[s + i, 1]
        j = s + (i + 1) % k
        bx, by = xy[j, 0], xy[j, 1]
        if (ay > py) != (by > py) and px < ax + (py - ay) * (bx - ax) / (by - ay):
            inside = not inside
    return inside


@numba.njit(cache=True, error_model="numpy")
def simple_polygons(xy, ring_off, poly_off, tol, closed):
    """Which polygons are certainly valid without asking GEOS (exterior first; ``closed``:
    each ring ends with a repeat of its first vertex, else not): every ring simple
    (``_ring_simple``), rings pairwise apart, each hole inside the exterior and in no
    other hole. Rings that are simple and apart leave a connected interior, so such a
    polygon is valid; ``False`` means only "not certain" (the caller asks GEOS). ``tol``
    (coordinate units) is far above the rounding of the georeferencing (an affine map),
    so validity survives it."""
    rep = 1 if closed else 0
    n_p = poly_off.shape[0] - 1
    ok = np.zeros(n_p, dtype=np.bool_)
    for q in range(n_p):
        r0, r1 = poly_off[q], poly_off[q + 1]
        good = r1 > r0
        for r in range(r0, r1):
            if not good:
                break
            good = _ring_simple(xy, ring_off[r], ring_off[r + 1] - ring_off[r] - rep, tol)
        for r in range(r0 + 1, r1):     # holes: inside the exterior, apart from every ring
            if not good:
                break
            s = ring_off[r]
            good = _in_ring(xy[s, 0], xy[s, 1], xy, ring_off[r0], ring_off[r0 + 1] - ring_off[r0] - rep)
            for r2 in range(r0, r1):
                if not good:
                    break
                if r2 == r:
                    continue
                s2, k2 = ring_off[r2], ring_off[r2 + 1] - ring_off[r2] - rep
                if r2 > r0 and _in_ring(xy[s, 0], xy[s, 1], xy, s2, k2):
                    good = False                # nested in another hole
                elif r2 < r:                     # each pair of rings once
                    good = _rings_apart(xy, s, ring_off[r + 1] - s - rep, s2, k2, tol)
        ok[q] = good
    return ok


@numba.njit(cache=True, error_model="numpy")
def _cross(ax, ay, bx, by, cx, cy):
    """Twice the signed area of the triangle (a, b, c): positive when it turns left."""
    return (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)


@numba.njit(cache=True, error_model="numpy")
def _clear_triangle(xy, ring_off, r0, r1, alive, p, k, q):
    """Whether no live vertex of the rings ``r0:r1`` but ``p``, ``k``, ``q`` lies in the
    closed triangle (p, k, q), which turns left."""
    px, py, kx, ky, qx, qy = xy[p, 0], xy[p, 1], xy[k, 0], xy[k, 1], xy[q, 0], xy[q, 1]
    for i in range(ring_off[r0], ring_off[r1]):
        if not alive[i] or i == p or i == k or i == q:
            continue
        x, y = xy[i, 0], xy[i, 1]
        if (_cross(px, py, kx, ky, x, y) >= 0.0 and _cross(kx, ky, qx, qy, x, y) >= 0.0
                and _cross(qx, qy, px, py, x, y) >= 0.0):
            return False
    return True


@numba.njit(cache=True, error_model="numpy")
def drop_short_edges(xy, ring_off, poly_off, min_len):
    """Remove edges shorter than ``min_len`` from polygons by dropping convex vertices.

    Polygons as closed rings (ring r is ``xy[ring_off[r]:ring_off[r+1]]``, last = first;
    polygon k owns rings ``poly_off[k]:poly_off[k+1]``), oriented so that the polygon lies
    left of every edge (outer rings counter-clockwise, holes clockwise). Dropping vertex k
    replaces its two edges by one from its predecessor to its successor and cuts off the
    triangle of the three: only convex vertices (the triangle turns left) are dropped, so
    a polygon only shrinks. A drop is made when no other vertex of the polygon lies in the
    closed triangle (then no boundary enters it: the polygon stays valid, save touching
    cases the caller leaves to GEOS). Per polygon, the short edges are taken in ring
    order, of an edge's two ends the one cutting off the smaller triangle first; after a
    drop the scan starts again; rings keep at least three vertices.

    Returns ``(xy, ring_offsets, dropped, short)``: the polygons' closed rings (same
    rings, each starting at its first remaining vertex), how many vertices each polygon
    lost and whether it still has an edge shorter than ``min_len``."""
    n_pts = xy.shape[0]
    n_poly = poly_off.shape[0] - 1
    alive = np.ones(n_pts, dtype=np.bool_)
    nxt = np.empty(n_pts, dtype=np.int64)
    prv = np.empty(n_pts, dtype=np.int64)
    size = np.empty(ring_off.shape[0] - 1, dtype=np.int64)   # live vertices per ring
    for r in range(ring_off.shape[0] - 1):
        a, b = ring_off[r], ring_off[r + 1] - 1      # the closing point b is not a vertex
        alive[b] = False
        size[r] = b - a
        for i in range(a, b):
            nxt[i] = i + 1 if i + 1 < b else a
            prv[i] = i - 1 if i > a else b - 1
    min2 = min_len * min_len
    dropped = np.zeros(n_poly, dtype=np.int64)
    for k in range(n_poly):
        r0, r1 = poly_off[k], poly_off[k + 1]
        again = True
        while again:
            again = False
            for r in range(r0, r1):
                if size[r] <= 3:
                    continue
                for i in range(ring_off[r], ring_off[r + 1] - 1):
                    if not alive[i]:
                        continue
                    j = nxt[i]
                    dx, dy = xy[j, 0] - xy[i, 0], xy[j, 1] - xy[i, 1]
                    if dx * dx + dy * dy >= min2:
                        continue
                    # the two ends' triangles; the smaller first, right turns never
                    ci = _cross(xy[prv[i], 0], xy[prv[i], 1], xy[i, 0], xy[i, 1], xy[j, 0], xy[j, 1])
                    cj = _cross(xy[i, 0], xy[i, 1], xy[j, 0], xy[j, 1], xy[nxt[j], 0], xy[nxt[j], 1])
                    first, second, c1, c2 = (i, j, ci, cj) if ci <= cj else (j, i, cj, ci)
                    for v, c in ((first, c1), (second, c2)):
                        if c >= 0.0 and _clear_triangle(xy, ring_off, r0, r1, alive, prv[v], v, nxt[v]):
                            alive[v] = False
                            nxt[prv[v]] = nxt[v]
                            prv[nxt[v]] = prv[v]
                            size[r] -= 1
                            dropped[k] += 1
                            again = True
                            break
                    if again:
                        break
                if again:
                    break
    out = np.empty((n_pts, 2), dtype=np.float64)
    off = np.empty(ring_off.shape[0], dtype=np.int64)
    short = np.zeros(n_poly, dtype=np.bool_)
    off[0] = 0
    o = 0
    for k in range(n_poly):
        for r in range(poly_off[k], poly_off[k + 1]):
            s = ring_off[r]
            while size[r] and not alive[s]:       # the ring's first remaining vertex
                s += 1
            i = s
            for _ in range(size[r]):
                out[o] = xy[i]
                o += 1
                i = nxt[i]
            out[o] = xy[s]
            o += 1
            off[r + 1] = o
            for q in range(off[r], o - 1):
                if math.hypot(out[q + 1, 0] - out[q, 0], out[q + 1, 1] - out[q, 1]) < min_len:
                    short[k] = True
    return out[:o], off, dropped, short


@numba.njit(cache=True, error_model="numpy")
def _scan_line(ring, m):
    """The height of GEOS's ``InteriorPointArea`` scan line for the polygon ring[:m+1]
    (closed): half way between the vertex heights next to the middle of its extent."""
    lo, hi = np.inf, -np.inf
    for i in range(m):
        lo = min(lo, ring[i, 1])
        hi = max(hi, ring[i, 1])
    centre = 0.5 * (lo + hi)
    for i in range(m + 1):
        y = ring[i, 1]
        if y <= centre:
            if y > lo:
                lo = y
        elif y < hi:
            hi = y
    return 0.5 * (hi + lo)


@numba.njit(cache=True, error_model="numpy")
def _widest_section(ring, m, scan):
    """The midpoint of the widest section of the polygon ring[:m+1] (closed) along the
    line y = ``scan``, as GEOS's ``InteriorPointArea`` finds it: ``(x, width)``; x NaN
    when the line crosses nothing."""
    xs = np.empty(m, dtype=np.float64)
    k = 0
    for i in range(1, m + 1):
        x0, y0 = ring[i - 1, 0], ring[i - 1, 1]
        x1, y1 = ring[i, 0], ring[i, 1]
        if (y0 > scan and y1 > scan) or (y0 < scan and y1 < scan) or y0 == y1:
            continue
        if (y0 == scan and y1 < scan) or (y1 == scan and y0 < scan):
            continue
        x = x0 if x0 == x1 else x0 + (scan - y0) / ((y1 - y0) / (x1 - x0))
        q = k                   # insertion sort: a few crossings
        while q > 0 and xs[q - 1] > x:
            xs[q] = xs[q - 1]
            q -= 1
        xs[q] = x
        k += 1
    best, px = 0.0, np.nan
    for i in range(0, k - 1, 2):
        if xs[i + 1] - xs[i] > best:
            best = xs[i + 1] - xs[i]
            px = 0.5 * (xs[i] + xs[i + 1])
    return px, best


@numba.njit(cache=True, error_model="numpy")
def _centroid_y(ring, m, ox, oy):
    """The height of the centroid of the polygon ring[:m+1] (closed), summed about
    (ox, oy)."""
    a2 = cy = 0.0
    for i in range(m):
        x0, y0 = ring[i, 0] - ox, ring[i, 1] - oy
        x1, y1 = ring[i + 1, 0] - ox, ring[i + 1, 1] - oy
        f = x0 * y1 - x1 * y0
        a2 += f
        cy += (y0 + y1) * f
    return oy + cy / (3.0 * a2) if a2 != 0.0 else oy


@numba.njit(cache=True, error_model="numpy")
def _side(xy, p, r, s):
    """Twice the signed area of the triangle (xy[r], xy[s], xy[p]): negative when vertex
    p lies right of the line from r to s. Always this expression for a vertex and a
    line, so the edges that share a vertex see it on the same side."""
    vx, vy = xy[s, 0] - xy[r, 0], xy[s, 1] - xy[r, 1]
    return vx * (xy[p, 1] - xy[r, 1]) - vy * (xy[p, 0] - xy[r, 0])


@numba.njit(cache=True, error_model="numpy")
def _crossing(xy, p, r):
    """Whether edge p (xy[p] to xy[p+1]) crosses edge r (xy[r] to xy[r+1]): the ends of
    each lie on opposite sides of the other's line (:func:`_side`; a vertex on a line
    counts as left of it, a consistent tie-break, so a vertex on the other's wall is a
    crossing or not, never both or half). ``(crosses, f0, f1, g0, g1)``: the sides of
    p's ends on r's line and of r's ends on p's line."""
    f0, f1 = _side(xy, p, r, r + 1), _side(xy, p + 1, r, r + 1)
    if (f0 < 0.0) == (f1 < 0.0):
        return False, f0, f1, 0.0, 0.0
    g0, g1 = _side(xy, r, p, p + 1), _side(xy, r + 1, p, p + 1)
    return (g0 < 0.0) != (g1 < 0.0), f0, f1, g0, g1


@numba.njit(cache=True, error_model="numpy")
def _in_box(xy, p, x, y):
    """Whether (x, y) lies in the bounding box of edge p (xy[p] to xy[p+1])."""
    return min(xy[p, 0], xy[p + 1, 0]) <= x <= max(xy[p, 0], xy[p + 1, 0]) \
        and min(xy[p, 1], xy[p + 1, 1]) <= y <= max(xy[p, 1], xy[p + 1, 1])


@numba.njit(cache=True, error_model="numpy")
def _nearest_end(p, r, d0, d1, e0, e1):
    """Of the ends p, p+1 of one edge and r, r+1 of another, at squared distances d0,
    d1, e0, e1 from the other edge's line, the nearest (the first on ties): GEOS's
    ``LineIntersector`` crossing where its computed point falls off either edge."""
    v, d = p, d0
    if d1 < d:
        v, d = p + 1, d1
    if e0 < d:
        v, d = r, e0
    if e1 < d:
        v = r + 1
    return v


@numba.njit(cache=True, error_model="numpy")
def _crossings(xy, sa, na, sb, nb):
    """Where the boundary of ring A (xy[sa:sa+na+1], closed) crosses that of ring B
    (xy[sb:sb+nb+1], closed), B counter-clockwise (:func:`_crossing`).

    Returns ``(c, entry)``: per crossing k, ``c[k] = (i, t, j, s, x, y)``, A's edge and
    the parameter along it, B's edge and the parameter along it and the point (on A's
    edge), and ``entry[k]``, whether A's boundary enters B there. Where two walls on one
    line cross at a grazing angle the crossing's position along them is ill-conditioned:
    GEOS, which rounds it correctly, may place it up to about 1e-4 units away."""
    n = 0
    for i in range(na):
        for j in range(nb):
            n += _crossing(xy, sa + i, sb + j)[0]
    c = np.empty((n, 6), dtype=np.float64)
    entry = np.empty(n, dtype=np.bool_)
    k = 0
    for i in range(na):
        p = sa + i
        for j in range(nb):
            r = sb + j
            crosses, f0, f1, g0, g1 = _crossing(xy, p, r)
            if not crosses:
                continue
            t = f0 / (f0 - f1)
            c[k, 0], c[k, 1], c[k, 2], c[k, 3] = i, t, j, g0 / (g0 - g1)
            x = xy[p, 0] + t * (xy[p + 1, 0] - xy[p, 0])
            y = xy[p, 1] + t * (xy[p + 1, 1] - xy[p, 1])
            uu = (xy[p + 1, 0] - xy[p, 0]) ** 2 + (xy[p + 1, 1] - xy[p, 1]) ** 2
            vv = (xy[r + 1, 0] - xy[r, 0]) ** 2 + (xy[r + 1, 1] - xy[r, 1]) ** 2
            if g0 == 0.0 or g1 == 0.0 or not (_in_box(xy, p, x, y) and _in_box(xy, r, x, y)):
                # at a vertex of B on A's edge (one of A on B's edge has t 0 or 1), or
                # rounded off either edge: GEOS takes the end nearest the other's line
                v = _nearest_end(p, r, f0 * f0 / vv, f1 * f1 / vv, g0 * g0 / uu, g1 * g1 / uu)
                x, y = xy[v, 0], xy[v, 1]
            c[k, 4], c[k, 5] = x, y
            entry[k] = f0 < 0.0      # from the right of B's wall: from outside B
            k += 1
    return c, entry


@numba.njit(cache=True, error_model="numpy")
def _rank(c, col, order, rank):
    """The crossings ``c`` in order along a ring, by edge (``c[:, col]``) then parameter
    (``c[:, col + 1]``): fills ``order`` (crossing at each place) and ``rank`` (place of
    each crossing). Insertion sort: a pair has a few crossings."""
    n = c.shape[0]
    for k in range(n):
        q = k
        while q > 0 and (c[order[q - 1], col] > c[k, col] or (c[order[q - 1], col] == c[k, col]
                                                              and c[order[q - 1], col + 1] > c[k, col + 1])):
            order[q] = order[q - 1]
            q -= 1
        order[q] = k
    for q in range(n):
        rank[order[q]] = q


@numba.njit(cache=True, error_model="numpy")
def _append_run(dst, m, xy, s, n, first, count, step):
    """Copy ``count`` vertices of the ring ``xy[s:s + n]``, from index ``first`` on in
    steps of ``step`` (+1 forward, -1 backward, cyclic), to ``dst[m:]``; returns the next
    free row of ``dst``."""
    for q in range(count):
        j = (first + step * q) % n
        dst[m, 0], dst[m, 1] = xy[s + j, 0], xy[s + j, 1]
        m += 1
    return m


@numba.njit(cache=True, error_model="numpy")
def _between(e0, e1, r0, r1, n):
    """How many ring vertices lie between a crossing on edge e0 and the next one met
    (edge e1) walking forward along a ring of n vertices; ``r0``, ``r1``: the two
    crossings' ranks along that walk (a walk back to an earlier rank on the same edge
    goes all the way round)."""
    count = (e1 - e0) % n
    return n if count == 0 and r1 < r0 else count


@numba.njit(cache=True, error_model="numpy")
def _cut(xy, sa, na, sb, nb, area, area_tol, tol, ox, oy, point):
    """A - B in Numba, for the exteriors A = xy[sa:sa+na+1] and B = xy[sb:sb+nb+1]
    (closed, both counter-clockwise) sharing ``area``, and (``point``) a point inside A & B.

    Their boundaries cross at an even number of points (:func:`_crossings`), alternately
    entering and leaving the other along either: then every piece of A - B is bounded by
    A's boundary from a point X where it leaves B to the next crossing E (it enters B
    there), B's boundary back from E to the crossing before it along B, and so on round;
    every piece of A & B by A's boundary from an entry to the next exit and B's boundary
    on from there. Neighbours sharing a wall line (a corner of one on the other's wall,
    walls on one line) cross there or not by the sign of the rounding, as GEOS, which
    decides exactly, mostly does: 4 or 6 crossings, slivers of A - B or A & B (GEOS's
    largest part drops them too) and edges of about the rounding, which are collapsed
    into their first end (``_drop_short_edges`` would remove them). The cut is taken when
    the largest piece of A - B is then certainly simple (``_ring_simple`` at ``tol``) and
    the pieces of A & B add up to ``area`` within ``area_tol`` (about (ox, oy); an
    independent check of the construction).

    Returns ``(ring, px, py)``: the largest piece of A - B (GEOS ``make_valid(A - B)``'s
    largest part, counter-clockwise; no closing repeat; empty where the cut is left to
    GEOS) and GEOS ``point_on_surface(A & B)``: the midpoint of the widest section of
    the pieces along GEOS's scan line (:func:`_scan_line`, :func:`_widest_section`), on
    each piece's ring as GEOS builds it: GEOS's to the bit where the crossings round
    alike; where walls on one line cross at a grazing angle (:func:`_crossings`) GEOS may
    place a crossing otherwise and pick another section, and the point is then inside
    A & B up to that rounding. Where the scan line meets a piece only in a needle no
    wider than ``tol`` (two walls crossing at a sharp angle leave one), the line through
    the piece's centroid is taken instead: GEOS's point would lie on the needle, on the
    boundary up to rounding. The point is NaN where the cut is left to GEOS, where
    ``point`` is False, and where no section is wider than ``tol``."""
    if na < 3 or nb < 3 or _ring_area2(xy, sa, sa + na + 1) <= 0.0 or _ring_area2(xy, sb, sb + nb + 1) <= 0.0:
        return np.empty((0, 2)), np.nan, np.nan
    c, entry = _crossings(xy, sa, na, sb, nb)
    n = c.shape[0]
    ranks = np.zeros((6, n), dtype=np.int64)   # orders and ranks along A and B, walk marks
    order_a, rank_a, order_b, rank_b, done = ranks[0], ranks[1], ranks[2], ranks[3], ranks[4:]
    _rank(c, 0, order_a, rank_a)
    _rank(c, 2, order_b, rank_b)
    for q in range(n):
        if entry[order_a[q]] == entry[order_a[(q + 1) % n]] or entry[order_b[q]] == entry[order_b[(q + 1) % n]]:
            return np.empty((0, 2)), np.nan, np.nan
    cap = na + nb + n + 2
    rings = np.empty((3, cap, 2), dtype=np.float64)
    work, best, geos = rings[0], rings[1], rings[2]
    m_best, a_best = 0, -np.inf
    inner_area, px, py, width = 0.0, np.nan, np.nan, -1.0
    for w in range(2):
        outside = w == 0        # from the exits: A - B; from the entries: A & B
        for k0 in range(n):
            if entry[k0] == outside or done[w, k0]:
                continue
            m = 0
            k = k0
            first_exit = n          # A & B: the rank along A of its first exit, and where
            q = 0                   # the ring has the vertex before it
            while True:
                nxt = order_a[(rank_a[k] + 1) % n]           # on along A, to the other kind
                ia, ja, jb = int(c[k, 0]), int(c[nxt, 0]), int(c[nxt, 2])
                run_a = _between(ia, ja, rank_a[k], rank_a[nxt], na)
                if outside:                                   # back along B, inside A
                    after = order_b[(rank_b[nxt] - 1) % n]
                    run_b = _between(int(c[after, 2]), jb, rank_b[after], rank_b[nxt], nb)
                else:                                         # on along B, inside A
                    after = order_b[(rank_b[nxt] + 1) % n]
                    run_b = _between(jb, int(c[after, 2]), rank_b[nxt], rank_b[after], nb)
                if done[w, k] or m + run_a + run_b + 3 > cap:
                    return np.empty((0, 2)), np.nan, np.nan  # the walk does not close
                done[w, k] = 1
                work[m, 0], work[m, 1] = c[k, 4], c[k, 5]
                m = _append_run(work, m + 1, xy, sa, na, ia + 1, run_a, 1)
                work[m, 0], work[m, 1] = c[nxt, 4], c[nxt, 5]
                if rank_a[nxt] < first_exit:
                    first_exit, q = rank_a[nxt], m - 1
                if outside:
                    m = _append_run(work, m + 1, xy, sb, nb, jb, run_b, -1)
                else:
                    m = _append_run(work, m + 1, xy, sb, nb, jb + 1, run_b, 1)
                k = after
                if k == k0:
                    break
            work[m, 0], work[m, 1] = work[0, 0], work[0, 1]
            a2 = 0.0
            for i in range(m):
                a2 += (work[i, 0] - ox) * (work[i + 1, 1] - oy) - (work[i + 1, 0] - ox) * (work[i, 1] - oy)
            if outside:
                if a2 > a_best:
                    a_best, m_best = a2, m
                    best[:m] = work[:m]
            else:
                inner_area += 0.5 * a2
                if not point:
                    continue
                for i in range(m + 1):   # as GEOS builds it: clockwise, from the vertex
                    v = (q - i) % m          # before its first exit along A
                    geos[i, 0], geos[i, 1] = work[v, 0], work[v, 1]
                y = _scan_line(geos, m)
                x, wide = _widest_section(geos, m, y)
                if not wide > tol:   # the line meets only a needle: through the centroid
                    y = _centroid_y(geos, m, ox, oy)
                    x, wide = _widest_section(geos, m, y)
                if wide > width:
                    px, py, width = x, y, wide
    # edges of A - B no longer than tol (a crossing at a vertex, up to rounding) collapse
    # into their first end
    m = 0
    for i in range(m_best):
        if m == 0 or (best[i, 0] - best[m - 1, 0]) ** 2 + (best[i, 1] - best[m - 1, 1]) ** 2 > tol * tol:
            best[m, 0], best[m, 1] = best[i, 0], best[i, 1]
            m += 1
    while m > 1 and (best[m - 1, 0] - best[0, 0]) ** 2 + (best[m - 1, 1] - best[0, 1]) ** 2 <= tol * tol:
        m -= 1
    if abs(inner_area - area) > area_tol or m < 3 or not _ring_simple(best, 0, m, tol):
        return np.empty((0, 2)), np.nan, np.nan
    if not width > tol:   # no section to speak of: GEOS places the point
        px = py = np.nan
    return best[:m].copy(), px, py


@numba.njit(cache=True, error_model="numpy")
def _exterior(ring_off, poly_off, p):
    """Start and vertex count (closing repeat not counted) of polygon p's exterior, and
    whether it is the polygon's only ring."""
    s = ring_off[poly_off[p]]
    return s, ring_off[poly_off[p] + 1] - s - 1, poly_off[p + 1] - poly_off[p] == 1


@numba.njit(cache=True, error_model="numpy")
def overlap_points(xy, ring_off, poly_off, left, right, area, area_tol, tol):
    """A point inside the common part of each pair of polygons ``(left[k], right[k])``
    sharing ``area[k]`` (:func:`overlap_areas`), found where Numba cuts the pair, left
    from right or else right from left (:func:`_cut`; polygons without holes): GEOS's
    ``point_on_surface`` construction of A & B, on the rings the cut builds for it.
    Polygons as closed rings (``xy``, ``ring_off``, ``poly_off`` as in
    :func:`overlap_areas`).

    Returns ``(px, py)``, NaN where Numba cuts neither way or the widest section is too
    thin to place the point (the caller asks GEOS)."""
    n = left.shape[0]
    px = np.full(n, np.nan)
    py = np.full(n, np.nan)
    for k in range(n):
        ox, oy = xy[ring_off[poly_off[left[k]]], 0], xy[ring_off[poly_off[left[k]]], 1]
        for w in range(2):
            sa, na, a_simple = _exterior(ring_off, poly_off, left[k] if w == 0 else right[k])
            sb, nb, b_simple = _exterior(ring_off, poly_off, right[k] if w == 0 else left[k])
            if not (a_simple and b_simple):
                break
            ring, px[k], py[k] = _cut(xy, sa, na, sb, nb, area[k], area_tol, tol, ox, oy, True)
            if ring.shape[0]:   # cut; a point refused one way is refused the other way too
                break
    return px, py


@numba.njit(cache=True, error_model="numpy")
def cuts_in_turn(xy, ring_off, poly_off, loser, winner, area, area_tol, tol):
    """Each polygon ``loser[k]`` less its neighbours ``winner[k]``, cut in Numba
    (:func:`_cut`) one after the other. Entries with the same loser are consecutive (a
    group); each cut starts from the ring the group's earlier cuts left and a cut Numba
    refuses is skipped (the caller makes it with GEOS: the polygons only shrink, so the
    order of the cuts is free). ``area[k]``: the common area of the uncut pair, the
    check of the construction; where an earlier cut took part of it, the check fails
    and the cut is left to GEOS. Losers with holes are left to GEOS. Polygons as closed
    rings (``xy``, ``ring_off``, ``poly_off`` as in :func:`overlap_areas`).

    Returns ``(cut, out_xy, out_off)``: whether entry k was cut here, and group g's
    loser after its cuts, closed, ``out_xy[out_off[g]:out_off[g+1]]`` (empty where no
    cut was made)."""
    n = loser.shape[0]
    cut = np.zeros(n, dtype=np.bool_)
    n_groups = 0
    cap = 0
    for k in range(n):
        if k == 0 or loser[k] != loser[k - 1]:
            n_groups += 1
            cap += _exterior(ring_off, poly_off, loser[k])[1] + 1
        cap += _exterior(ring_off, poly_off, winner[k])[1] + 2
    out_xy = np.empty((cap, 2), dtype=np.float64)
    out_off = np.zeros(n_groups + 1, dtype=np.int64)
    pair = np.empty((64, 2))   # the loser's current ring, then the winner's (both closed)
    o = 0
    g = 0
    k0 = 0
    while k0 < n:
        k1 = k0 + 1
        while k1 < n and loser[k1] == loser[k0]:
            k1 += 1
        sa, na, a_simple = _exterior(ring_off, poly_off, loser[k0])
        if pair.shape[0] < na + 1:
            pair = np.empty((2 * (na + 1), 2))
        pair[:na + 1] = xy[sa:sa + na + 1]
        ox, oy = xy[sa, 0], xy[sa, 1]
        for k in range(k0, k1 if a_simple else k0):
            sb, nb, b_simple = _exterior(ring_off, poly_off, winner[k])
            if not b_simple:
                continue
            if pair.shape[0] < na + nb + 2:
                grown = np.empty((2 * (na + nb + 2), 2))
                grown[:na + 1] = pair[:na + 1]
                pair = grown
            pair[na + 1:na + nb + 2] = xy[sb:sb + nb + 1]
            ring = _cut(pair, 0, na, na + 1, nb, area[k], area_tol, tol, ox, oy, False)[0]
            m = ring.shape[0]
            if m:
                cut[k] = True
                if pair.shape[0] < m + 1:
                    pair = np.empty((2 * (m + 1), 2))
                pair[:m] = ring[:m]
                pair[m] = ring[0]
                na = m
        if cut[k0:k1].any():
            if out_xy.shape[0] < o + na + 1:   # more crossings than the estimate's two
                grown = np.empty((2 * (o + na + 1), 2))
                grown[:o] = out_xy[:o]
                out_xy = grown
            out_xy[o:o + na + 1] = pair[:na + 1]
            o += na + 1
        g += 1
        out_off[g] = o
        k0 = k1
    return cut, out_xy[:o], out_off
