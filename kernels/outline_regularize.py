"""Regularize pixel boundary rings into building outlines: one Numba call for a whole city.

Algorithm (per building, all rings of a building share its orientation):

1. **Samples.** A ring of crack corners (see ``outline_trace``) is resampled at the
   midpoints of its unit pixel edges: unbiased samples of the true boundary, one per pixel
   of perimeter.
2. **Candidate corners.** Douglas–Peucker on the crack corners (tolerance ``cand_eps``
   pixels, raised when a ring is very noisy) gives the places where a wall may end. These
   are only candidates: step 4 decides which are corners.
3. **Main axis and noise.** The spans of a coarser simplification (``ORIENT_EPS``) vote with
   their least-squares directions, modulo 90 degrees and weighted by squared length, for
   the main axis; the peak is refined by the spans near it. Their residuals give the
   building's boundary noise ``sigma^2`` (floored at ``sigma``), so that the criterion below
   counts misfit in units of the building's own noise. Touching buildings pool their votes
   (``_group_axis``): a building whose own axis is within ``SHARE_THETA`` of its group's
   takes the group's (a wall at a degree or two to the grid shows a step or none; a block
   of them shows many).
4. **Fit-versus-complexity segmentation (MDL).** A dynamic programme over the candidates
   picks the partition of the ring into straight walls that minimizes
   ``sum(residual^2) / sigma^2 + penalties``: ``corner_penalty`` per wall, nothing more for a
   wall parallel or perpendicular to the main axis (its direction is known, one parameter),
   ``diag_penalty`` for a wall at 45 degrees to it, ``angle_penalty`` for a free direction
   (a second parameter). Residuals come from prefix sums of the samples' moments, so any
   span's best line costs O(1); PELT pruning keeps the programme near linear in the
   candidates while staying exact. The number of vertices and of right angles is the
   outcome of this criterion, not of a tolerance. On a noisy boundary (noise above
   ``REFIT_SIGMA``) the main axis is then refitted on all samples of the walls chosen
   along and across it (``_refit_theta``). A circle (algebraic fit, 3 parameters)
   competes with the polygon under the same criterion, so round buildings stay round
   (a polygon of at least ``CIRCLE_MIN_VERTICES`` vertices). A long wall snapped to the
   axis whose samples reject that direction by three standard errors takes its own
   (``_turn``): real walls are a degree or two off square.
5. **Shared walls.** A wall that runs along a touching neighbour done earlier takes the
   neighbour's line for it when the two nearly agree, so party walls coincide. Each
   building files its walls that face a neighbour under its own label, so every building
   against that wall finds it (two houses against one long building both take its line).
6. **Vertices.** Consecutive walls are intersected; nearly parallel walls (a step in a
   facade) get a connecting wall perpendicular to the first, where the pixel boundary
   crosses the mid-line between them (the step as the pixels place it); on a clean mask
   a step that shows samples of its own gets its wall through them (``_step_walls``).
   An intersection that the pixels do not support (farther than about a pixel from the
   pixel boundary) is cut by a short wall along the boundary, or, a spike farther still,
   moved onto one of the two walls. Collinear neighbours are merged and duplicate
   vertices dropped. Before that, a diagonal or free wall whose ends would need such
   added walls takes another kind when that is cheaper with each added wall charged
   ``corner_penalty`` (``_settle_walls``: the end of a row house 20 degrees off square,
   snapped to the diagonal on its few samples, would otherwise get a chamfer at each end).
7. **Edge refit.** Once a ring is built, each edge of a polygon on a clean mask moves
   across itself onto the mean of the samples nearest to it, and the vertices go where
   the moved edges meet (``_refit_edges``). A party wall moves once, on the samples of the
   building that filed its line, and its neighbours (built later) follow; edges on the
   raster frame stay.

Everything is in pixel units (x = column, y = row). Validity, overlaps between neighbours
and georeferencing are handled by the caller with vectorized shapely and the Numba helpers
of :mod:`lod3d.kernels.outline_repair`.

The kernels compile with NumPy's error model: a division by zero gives inf or NaN (which
the caller's validity check catches) instead of a zero test before every division, which
costs about a tenth of the regularization time.
"""

import math

import numba
import numpy as np

ORIENT_EPS = 1.5   # Douglas–Peucker tolerance (pixels) of the spans that vote for the main axis
SHARE_MIN = 0.2    # share of a wall's samples across from one neighbour that makes it shared
SHARE_SIN = math.sin(math.radians(10.0))   # a shared wall and its neighbour's: this parallel
SHARE_DIST = 1.0   # ... and this close (pixels)
SHARE_THETA = math.radians(3.0)  # the main axis of a building's touching group this close is adopted
CHAMFER_PIXELS = 1.0  # a wall intersection farther (pixels) from the pixel boundary is cut ...
CHAMFER_SIGMAS = 4.0  # ... and farther than this many noise sigmas (chosen on synthetic-noisy)
UNTRIMMED_MIN = 8   # samples: a diagonal or free wall this long is scored untrimmed (see _span_cost)
OFF_PIXELS = 2.0    # beyond this (pixels) it is a spike: the vertex goes onto one wall
FRAME_SIN = math.sin(math.radians(2.0))  # a wall meets the raster frame at its intersection down to this angle
CHAIN_REACH = 8     # distances to the pixel boundary: its crack corners this close to the corner
CORNER_REACH = 3.0  # consecutive walls meeting farther than this (pixels) from their crack corner get a connecting wall
CAND_SIGMAS = 2.5  # candidate corners: Douglas–Peucker tolerance at least this many noise sigmas
REFIT_SIGMA = 0.3  # noise (pixels) above which the axis is refitted on the chosen walls ...
REFIT_MAX = math.radians(3.0)  # ... moving at most this far. A clean mask's noise is
# quantization (at most 0.29 px): its axis vote is exact to a bin, while the least-squares
# direction of a staircase wall near the pixel axes (one step) is biased (sim seed 11: MTA
# 9.99 -> 10.72 refitting every building)
TURN_Z2 = 9.0      # a snapped wall takes its own direction when that differs by 3 sigmas ...
TURN_QUANT = 0.15  # ... counting a digital line's offset error at each end (pixels; the floor
# study's oracle: 0.06-0.18 px on oblique walls; 0.1 turned square walls of held-out sim seed
# 3, MTA 4.21 -> 4.27) besides the samples' noise ...
TURN_MIN_SAMPLES = 20  # ... on walls of this many samples ...
TURN_MIN_STEPS = 4.0   # ... showing this many steps across (fewer: a staircase's biased direction)
CIRCLE_MIN_VERTICES = 24  # a round building's polygon: edges within 7.5 degrees of the circle's tangent
STEP_MARGIN = 0.15  # pixels: a sample off both of two near-parallel walls by their digital-line bound and this ...
STEP_REACH = 6      # ... within this many samples of their corner, in a run of at least ...
STEP_MIN = 2        # ... this many samples, lies on the step between them ...
STEP_LENGTH = 1.0   # ... which gets its own wall when at least this long (pixels)
EDGE_REACH = 2.0    # pixels: the samples this near an edge of a built ring refit its offset ...
EDGE_PARALLEL = math.radians(10.0)  # ... and edges this near parallel keep their vertex (moved)


@numba.njit(cache=True, error_model="numpy")
def _dp_levels(px, py, i0, i1, floor, level, stack, bound):
    """Douglas–Peucker on the open chain px[i0..i1] (i1 may be len: corner 0 closes the
    ring) for every tolerance above ``floor`` at once. The split points do not depend on
    the tolerance (the farthest point of a chain), only where the recursion stops does, so
    each split point gets ``level``: the smallest distance on its path of splits (its own
    and its ancestors'). Douglas–Peucker at tolerance ``eps >= floor`` keeps exactly the
    points whose level exceeds ``eps``. ``stack``, ``bound``: scratch of 2 len + 4 rows.

    The farthest point is found on the cross products with the chord (exact integers for
    crack corners, so no two tie that differ) and only its distance is divided by the
    chord's length."""
    n = px.shape[0]
    stack[0, 0] = i0
    stack[0, 1] = i1
    bound[0] = np.inf   # smallest split distance above a chain
    top = 1
    while top > 0:
        top -= 1
        a = stack[top, 0]
        b = stack[top, 1]
        above = bound[top]
        if b - a < 2:
            continue
        bw = b - n if b >= n else b
        ax, ay = px[a], py[a]
        dx, dy = px[bw] - ax, py[bw] - ay
        norm = math.sqrt(dx * dx + dy * dy)
        best = -1.0
        bi = -1
        if norm > 0:
            for i in range(a + 1, b):
                c = abs((px[i] - ax) * dy - (py[i] - ay) * dx)
                if c > best:
                    best = c
                    bi = i
            best *= 1.0 / norm
        else:   # a closed chain: distance to its end point
            for i in range(a + 1, b):
                qx, qy = px[i] - ax, py[i] - ay
                c = qx * qx + qy * qy
                if c > best:
                    best = c
                    bi = i
            best = math.sqrt(best)
        if best > floor:
            lv = min(best, above)
            level[bi] = lv
            stack[top, 0] = a
            stack[top, 1] = bi
            bound[top] = lv
            stack[top + 1, 0] = bi
            stack[top + 1, 1] = b
            bound[top + 1] = lv
            top += 2


@numba.njit(cache=True, error_model="numpy")
def _corner_levels(cx, cy, floor, level, stack, bound):
    """Douglas–Peucker levels (``_dp_levels``) of the crack corners of a closed ring into
    ``level``, cut at corner 0 and the corner farthest from it (both kept at any
    tolerance). ``stack``, ``bound``: ``_dp_levels``'s scratch."""
    k = cx.shape[0]
    level[:] = -1.0
    far = 0
    fd = -1.0
    for i in range(k):
        d = (cx[i] - cx[0]) ** 2 + (cy[i] - cy[0]) ** 2
        if d > fd:
            fd = d
            far = i
    level[0] = np.inf
    level[far] = np.inf
    _dp_levels(cx, cy, 0, far, floor, level, stack, bound)
    _dp_levels(cx, cy, far, k, floor, level, stack, bound)


@numba.njit(cache=True, error_model="numpy")
def _candidates(level, eps, max_cand, cand):
    """Indices of the crack corners kept by closed-ring Douglas–Peucker at tolerance
    ``eps`` (at least 3), from their ``_corner_levels``; the tolerance is raised by half
    until at most ``max_cand`` remain. Returns a view of ``cand`` (scratch, ``len(level)``
    or more)."""
    k = level.shape[0]
    while True:
        m = 0
        for i in range(k):   # each index written, kept when counted: one pass, not count then fill
            cand[m] = i
            m += level[i] > eps
        if m < 3:
            # a ring that is one straight chain both ways (cannot be closed) or tiny: keep all
            for i in range(k):
                cand[i] = i
            return cand[:k]
        if m <= max_cand:
            return cand[:m]
        eps *= 1.5


@numba.njit(cache=True, error_model="numpy")
def _perimeter(cx, cy):
    """Number of unit pixel edges of a crack ring (its samples, see ``_samples``)."""
    k = cx.shape[0]
    n = 0
    for i in range(k):
        j = i + 1 if i + 1 < k else 0
        n += int(round(abs(cx[j] - cx[i]) + abs(cy[j] - cy[i])))
    return n


@numba.njit(cache=True, error_model="numpy")
def _samples(cx, cy, sx, sy, side_start):
    """Unit-edge midpoints of a crack ring into ``sx, sy`` (``_perimeter`` long), and the
    sample index where each side starts into ``side_start`` (one more than the corners)."""
    k = cx.shape[0]
    n = 0
    for i in range(k):
        j = (i + 1) % k
        side_start[i] = n
        n += int(round(abs(cx[j] - cx[i]) + abs(cy[j] - cy[i])))
    side_start[k] = n
    for i in range(k):
        j = (i + 1) % k
        length = side_start[i + 1] - side_start[i]
        ux = (cx[j] - cx[i]) / length
        uy = (cy[j] - cy[i]) / length
        for t in range(length):
            sx[side_start[i] + t] = cx[i] + (t + 0.5) * ux
            sy[side_start[i] + t] = cy[i] + (t + 0.5) * uy


@numba.njit(cache=True, error_model="numpy")
def _moments(sx, sy, p):
    """Prefix sums (over the ring traversed twice) of x, y, xx, yy, xy about the centroid
    into ``p`` (2 n + 1 rows; a span's count is its length); returns the centroid."""
    n = sx.shape[0]
    mx = sx.mean()
    my = sy.mean()
    p[0, :] = 0.0
    # running sums in registers: no store-to-load round trip on the five dependency chains
    s1 = s2 = s3 = s4 = s5 = 0.0
    for t in range(2 * n):
        tw = t - n if t >= n else t
        x = sx[tw] - mx
        y = sy[tw] - my
        s1 += x
        s2 += y
        s3 += x * x
        s4 += y * y
        s5 += x * y
        p[t + 1, 0] = s1
        p[t + 1, 1] = s2
        p[t + 1, 2] = s3
        p[t + 1, 3] = s4
        p[t + 1, 4] = s5
    return mx, my


@numba.njit(cache=True, error_model="numpy", inline="always")
def _span_all(p, a, b):
    """Moments of the sample span [a, b) from the prefix sums ``p``: count, mean x, mean
    y, cxx, cyy, cxy (centred second moments)."""
    cnt = float(b - a)
    inv = 1.0 / cnt
    sx = p[b, 0] - p[a, 0]
    sy = p[b, 1] - p[a, 1]
    mx = sx * inv
    my = sy * inv
    cxx = max(p[b, 2] - p[a, 2] - sx * mx, 0.0)
    cyy = max(p[b, 3] - p[a, 3] - sy * my, 0.0)
    cxy = p[b, 4] - p[a, 4] - sx * my
    return cnt, mx, my, cxx, cyy, cxy


@numba.njit(cache=True, error_model="numpy", inline="always")
def _span(p, a, b):
    """``_span_all`` with one sample trimmed at each end of long spans (corner pixels are
    ambiguous)."""
    if b - a >= 6:
        a += 1
        b -= 1
    return _span_all(p, a, b)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _free_angle(cxx, cyy, cxy):
    """Direction (radians, in [0, pi)) of the least-squares line of centred moments."""
    a = 0.5 * math.atan2(2.0 * cxy, cxx - cyy)
    if a < 0:
        a += math.pi
    return a


@numba.njit(cache=True, error_model="numpy", inline="always")
def _span_cost(p, a, b, dirs, sigma2, angle_penalty, diag_penalty):
    """Cost of the cheapest wall over span [a, b) and its kind: 0–3 the fixed direction
    ``dirs[k]`` (rows sin, cos of theta + k * 45 degrees; 0 and 2 along the main axes,
    1 and 3 diagonal at ``diag_penalty``), 4 a free direction at ``angle_penalty``.
    The residual of a line of direction (cos, sin) through the centroid is
    ``s^2 cxx - 2 s c cxy + c^2 cyy``, and that of the perpendicular direction the total
    scatter ``cxx + cyy`` minus it; no trigonometry in this inner loop.

    A wall along the axes is scored on the span trimmed of its end samples (``_span``),
    a diagonal or free one on all its samples when it has ``UNTRIMMED_MIN`` or more: the
    end samples are where a wrong direction shows most, and a diagonal that fits only the
    trimmed middle of an oblique wall places the corners beside it off the pixels. Shorter
    spans (chamfers of 2-3 pixels) stay trimmed: their ends are mostly corner pixels."""
    return _span_cost_at(p, a, b, dirs[0, 0], dirs[0, 1], dirs[1, 0], dirs[1, 1], 1.0 / sigma2,
                         angle_penalty, diag_penalty)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _residuals(p, a, b, sn0, cs0, sn1, cs1):
    """Residuals of span [a, b) about lines along ``dirs[0]`` .. ``dirs[3]`` (``r0`` ..
    ``r3``; see ``_span_cost``), and the count and centred moments the diagonal and free
    walls are scored on: ``(r0, r1, r2, r3, cnt, cxx, cyy, cxy)``."""
    cnt, mx, my, cxx, cyy, cxy = _span(p, a, b)
    tot = cxx + cyy
    sn = sn0
    cs = cs0
    r0 = max(sn * sn * cxx - 2.0 * sn * cs * cxy + cs * cs * cyy, 0.0)
    r2 = max(tot - r0, 0.0)
    # diagonal and free walls: all samples from UNTRIMMED_MIN on (computed either way and
    # selected: a branch around the second read slows the programme's inner loop by a tenth)
    n_all, _, _, axx, ayy, axy = _span_all(p, a, b)
    if b - a >= UNTRIMMED_MIN:
        cnt, cxx, cyy, cxy = n_all, axx, ayy, axy
    tot = cxx + cyy
    sn = sn1
    cs = cs1
    r1 = max(sn * sn * cxx - 2.0 * sn * cs * cxy + cs * cs * cyy, 0.0)
    r3 = max(tot - r1, 0.0)
    return r0, r1, r2, r3, cnt, cxx, cyy, cxy


@numba.njit(cache=True, error_model="numpy", inline="always")
def _free_residual(cxx, cyy, cxy):
    """Residual about the least-squares line of centred moments (the smaller eigenvalue)."""
    return max(0.5 * (cxx + cyy) - math.sqrt(0.25 * (cxx - cyy) ** 2 + cxy * cxy), 0.0)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _span_cost_at(p, a, b, sn0, cs0, sn1, cs1, inv, angle_penalty, diag_penalty):
    """``_span_cost`` with ``dirs[0]``, ``dirs[1]`` and ``1 / sigma2`` as scalars, for the
    inner loop of ``_segment``: there they stay in registers, where array elements are
    read again after every store of the loop (and the division redone), a third of its time."""
    r0, r1, r2, r3, cnt, cxx, cyy, cxy = _residuals(p, a, b, sn0, cs0, sn1, cs1)
    best = r0 * inv
    kind = 0
    c = r1 * inv + diag_penalty
    if c < best:
        best = c
        kind = 1
    c = r2 * inv
    if c < best:
        best = c
        kind = 2
    c = r3 * inv + diag_penalty
    if c < best:
        best = c
        kind = 3
    if cnt >= 3 and best > angle_penalty:   # a free wall costs at least angle_penalty
        c = _free_residual(cxx, cyy, cxy) * inv + angle_penalty
        if c < best:
            best = c
            kind = 4
    return best, kind


@numba.njit(cache=True, error_model="numpy")
def _kind_cost(p, a, b, dirs, sigma2, angle_penalty, diag_penalty, kind):
    """Cost of a wall of the given ``kind`` over span [a, b) (see ``_span_cost``); inf
    for a free wall of fewer than 3 samples."""
    r0, r1, r2, r3, cnt, cxx, cyy, cxy = _residuals(p, a, b, dirs[0, 0], dirs[0, 1], dirs[1, 0], dirs[1, 1])
    if kind == 4:
        return _free_residual(cxx, cyy, cxy) / sigma2 + angle_penalty if cnt >= 3 else np.inf
    r = r0 if kind == 0 else (r1 if kind == 1 else (r2 if kind == 2 else r3))
    return r / sigma2 + (diag_penalty if kind == 1 or kind == 3 else 0.0)


@numba.njit(cache=True, error_model="numpy")
def _directions(theta, dirs):
    """sin, cos of theta + k * 45 degrees, k = 0..3 (see ``_span_cost``) into ``dirs``
    (4 x 2, the caller's scratch); returns it."""
    for k in range(4):
        dirs[k, 0] = math.sin(theta + 0.25 * math.pi * k)
        dirs[k, 1] = math.cos(theta + 0.25 * math.pi * k)
    return dirs


@numba.njit(cache=True, error_model="numpy")
def _best_line(p, a, b, theta, dirs, sigma2, angle_penalty, diag_penalty):
    """Cheapest line for span [a, b): returns cost, kind, angle, centroid x, centroid y.
    ``dirs``: ``_directions(theta)``, computed once per ring by the caller."""
    cost, kind = _span_cost(p, a, b, dirs, sigma2, angle_penalty, diag_penalty)
    ang, mx, my = _kind_line(p, a, b, theta, kind, dirs, sigma2)
    return cost, kind, ang, mx, my


@numba.njit(cache=True, error_model="numpy")
def _kind_line(p, a, b, theta, kind, dirs, sigma2):
    """The line of a wall of ``kind`` over span [a, b): its angle and the centroid x, y of
    the (trimmed) span. A wall snapped to the axes or their diagonals that its samples
    turn from clearly takes its own direction (``_turn``)."""
    cnt, mx, my, cxx, cyy, cxy = _span(p, a, b)
    ang = _free_angle(cxx, cyy, cxy) if kind == 4 else theta + 0.25 * math.pi * kind
    if kind < 4 and cnt >= TURN_MIN_SAMPLES and sigma2 <= REFIT_SIGMA * REFIT_SIGMA:
        ang += _turn(cnt, cxx, cyy, cxy, dirs[kind, 0], dirs[kind, 1], sigma2)
    return ang, mx, my


@numba.njit(cache=True, error_model="numpy")
def _turn(cnt, cxx, cyy, cxy, sn, cs, sigma2):
    """Angle (radians) by which a wall snapped to the direction (``cs``, ``sn``), along or
    diagonal to the main axis, turns to its own least-squares direction: that of its
    samples (centred moments, ``cnt`` of them) when they reject the snapped one, else 0.

    Real walls are off square by a degree or two (Rotterdam up to 8): on a 10 m wall a
    degree moves its ends by 0.09 m, enough to turn the corner's MTA piece by 5 degrees.
    The segmentation charges a free direction ``angle_penalty`` (it must not cut a
    staircase into free walls); here the walls are fixed and only their direction is
    tested: the angle d between the two directions against its standard error, from the
    spread ``S`` of the samples along the wall, ``(sigma^2 + q^2 n / 12) / S``. The second
    term is the digital line's own uncertainty: an offset error of ``q = TURN_QUANT``
    pixels at either end of a wall of length L = sqrt(12 S / n). A wall needs
    ``TURN_MIN_STEPS`` steps across: a wall a few degrees off the pixel axes is a
    staircase of one or two steps whose least-squares direction is biased by where they
    fall (sim seed 11: MTA 7.02 -> 10.28 without). Noisy boundaries (above
    ``REFIT_SIGMA``) are left snapped: their noise comes in blobs, not independent samples."""
    s_nn = max(sn * sn * cxx - 2.0 * sn * cs * cxy + cs * cs * cyy, 0.0)   # across the wall
    s_uu = max(cxx + cyy - s_nn, 1e-9)                                      # along it
    s_un = sn * cs * (cyy - cxx) + (cs * cs - sn * sn) * cxy
    # |tan(2 d)| / 2 >= |d|: walls that fail the test with it fail it with d (no atan2)
    t = s_un / max(s_uu - s_nn, 1e-9)
    bound = TURN_Z2 * (sigma2 + TURN_QUANT * TURN_QUANT * cnt / 12.0)
    if t * t * s_uu <= bound:
        return 0.0
    d = 0.5 * math.atan2(2.0 * s_un, s_uu - s_nn)
    if d * d * s_uu <= bound:
        return 0.0
    fs = abs(sn * math.cos(d) + cs * math.sin(d))   # the turned wall's sine and cosine
    fc = abs(cs * math.cos(d) - sn * math.sin(d))
    if cnt * min(fs, fc) / (fs + fc) < TURN_MIN_STEPS:
        return 0.0
    return d


@numba.njit(cache=True, error_model="numpy", inline="always")
def _quarter_mod(x):
    """``x % (pi / 2)`` for ``x`` in (-pi / 2, pi), equal to the modulo bit for bit (fmod
    is exact and so is the one subtraction here; below 0 both add pi / 2 once), without
    the call to fmod: a span direction less the main axis, for every span."""
    q = 0.5 * math.pi
    return x + q if x < 0.0 else (x - q if x >= q else x)


@numba.njit(cache=True, error_model="numpy")
def _orientation_hist(p, starts, ends, hist):
    """Add each span's least-squares direction (mod 90 degrees) to ``hist``, weighted by
    its squared sample count (spans of fewer than 3 samples do not vote)."""
    for i in range(starts.shape[0]):
        a = starts[i]
        b = ends[i]
        cnt = float(b - a)
        if cnt < 3:
            continue
        sx = p[b, 0] - p[a, 0]
        sy = p[b, 1] - p[a, 1]
        cxx = p[b, 2] - p[a, 2] - sx * sx / cnt
        cyy = p[b, 3] - p[a, 3] - sy * sy / cnt
        cxy = p[b, 4] - p[a, 4] - sx * sy / cnt
        ang = math.degrees(_free_angle(cxx, cyy, cxy))   # in [0, 180]: % 90 without fmod
        hist[int(ang - 90.0 if ang >= 90.0 else ang) % 90] += cnt * cnt


@numba.njit(cache=True, error_model="numpy")
def _spans(cand, side_start, n, st, en):
    """Sample spans [starts[i], ends[i]) between consecutive candidate corners (ends past
    ``n`` wrap around the ring) into the scratch ``st``, ``en``; returns their views."""
    m = cand.shape[0]
    st = st[:m]
    en = en[:m]
    for i in range(m):
        st[i] = side_start[cand[i]]
        en[i] = side_start[cand[(i + 1) % m]]
        if en[i] <= st[i]:
            en[i] += n
    return st, en


@numba.njit(cache=True, error_model="numpy")
def _dominant(hist):
    """Peak of a 90-bin circular histogram after triangular smoothing (weights 1, 2, 3, 4,
    3, 2, 1: two circular box filters of width 4), in radians."""
    box = np.empty(90, dtype=np.float64)
    run = hist[86] + hist[87] + hist[88] + hist[89]
    for i in range(90):          # box[i] = hist[i-3] + ... + hist[i]
        run += hist[i] - hist[(i + 86) % 90]
        box[i] = run
    best = -1.0
    bi = 0
    run = box[0] + box[1] + box[2] + box[3]
    for i in range(90):          # smoothed at i: box[i] + ... + box[i+3]
        if i > 0:
            run += box[(i + 3) % 90] - box[i - 1]
        if run > best:
            best = run
            bi = i
    return math.radians(bi + 0.5)


@numba.njit(cache=True, error_model="numpy")
def _refine_theta(p, starts, ends, theta0, span_ang, span_w, k):
    """Weighted mean (on the 4x angle circle) of span directions within 6 degrees of theta0,
    and the next free index of ``span_ang``/``span_w``: the direction and weight (squared
    count) of each span used (4 or more samples after trimming) are appended there from
    index ``k``, for the group's axis (``_group_axis``)."""
    sc = 0.0
    ss = 0.0
    for i in range(starts.shape[0]):
        cnt, mx, my, cxx, cyy, cxy = _span(p, starts[i], ends[i])
        if cnt < 4:
            continue
        ang = _free_angle(cxx, cyy, cxy)
        span_ang[k] = ang
        span_w[k] = cnt * cnt
        k += 1
        d = _quarter_mod(ang - theta0)
        if d > 0.25 * math.pi:
            d -= 0.5 * math.pi
        if abs(d) < math.radians(6.0):
            w = cnt * cnt
            sc += w * math.cos(4.0 * ang)
            ss += w * math.sin(4.0 * ang)
    if sc == 0.0 and ss == 0.0:
        return theta0, k
    return (0.25 * math.atan2(ss, sc)) % (0.5 * math.pi), k


@numba.njit(cache=True, error_model="numpy")
def _noise_var(p, starts, ends):
    """Boundary noise variance (pixels^2): residual of the free lines of the spans, per
    degree of freedom (spans of 6 or more samples)."""
    num = 0.0
    den = 0.0
    for i in range(starts.shape[0]):
        cnt, mx, my, cxx, cyy, cxy = _span(p, starts[i], ends[i])
        if cnt < 6:
            continue
        num += max(0.5 * (cxx + cyy) - math.sqrt(0.25 * (cxx - cyy) ** 2 + cxy * cxy), 0.0)
        den += cnt - 2.0
    return num / den if den > 0.0 else 0.0


@numba.njit(cache=True, error_model="numpy")
def _circle(sx, sy, stop=np.inf):
    """Algebraic (Kasa) circle fit: centre x, centre y, radius, sum of squared residuals.
    The sum stops as soon as it exceeds ``stop`` (the caller's circle has lost then; the
    sum returned is the partial one, above ``stop``)."""
    n = sx.shape[0]
    mx = sx.mean()
    my = sy.mean()
    suu = suv = svv = suuu = svvv = suvv = svuu = 0.0
    for t in range(n):
        u = sx[t] - mx
        v = sy[t] - my
        suu += u * u
        suv += u * v
        svv += v * v
        suuu += u * u * u
        svvv += v * v * v
        suvv += u * v * v
        svuu += v * u * u
    det = suu * svv - suv * suv
    if abs(det) < 1e-12:
        return mx, my, 0.0, np.inf
    r1 = 0.5 * (suuu + suvv)
    r2 = 0.5 * (svvv + svuu)
    uc = (r1 * svv - r2 * suv) / det
    vc = (r2 * suu - r1 * suv) / det
    rad = math.sqrt(uc * uc + vc * vc + (suu + svv) / n)
    rss = 0.0
    for t in range(n):
        d = math.sqrt((sx[t] - mx - uc) ** 2 + (sy[t] - my - vc) ** 2) - rad
        rss += d * d
        if rss > stop:
            break
    return mx + uc, my + vc, rad, rss


@numba.njit(cache=True, error_model="numpy")
def _segment(p, n, bounds, dirs, sigma2, corner_penalty, angle_penalty, diag_penalty, fbuf, ibuf):
    """Optimal partition of the ring at candidate sample indices ``bounds`` (ascending,
    last = first + n), walls along ``dirs`` (``_directions`` of the main axis) or free.
    Returns total cost and the chosen boundary positions (into bounds), ascending: a view
    of ``ibuf``. ``fbuf``, ``ibuf``: scratch of 2 and 3 rows of ``len(bounds)`` or more.

    Exact dynamic programme with PELT pruning (Killick et al. 2012): a wall over a span
    costs at least the walls over its two halves minus ``K`` (one direction penalty, and
    one pixel^2 of residual for the end samples a long span trims), so a start i whose cost to reach j
    already exceeds the best cost of j by ``K`` can never start the last wall of an
    optimal partition again and is dropped; the programme becomes about linear in the
    number of candidates instead of quadratic. A wall costs at least nothing, so a start
    whose cost so far plus ``corner_penalty`` already reaches the best found for j (from
    an earlier start, which wins ties) is not scored; it stays alive on that lower bound
    (its own cost so far): that may keep a start PELT would drop, never drop one it
    keeps. Seven in ten scorings are skipped on sim seed 7, the partition is the same."""
    m = bounds.shape[0] - 1
    sn0, cs0, sn1, cs1 = dirs[0, 0], dirs[0, 1], dirs[1, 0], dirs[1, 1]
    inv = 1.0 / sigma2
    slack = max(angle_penalty, diag_penalty, 0.0) + 1.0 / sigma2
    best = fbuf[0]
    reach = fbuf[1]
    prev = ibuf[0]
    alive = ibuf[1]
    best[0] = 0.0
    alive[0] = 0
    n_alive = 1
    for j in range(1, m + 1):
        bj = np.inf   # best[j] and prev[j] in registers while the starts are scanned
        pj = 0
        bound_j = bounds[j]
        for a in range(n_alive):
            i = alive[a]
            r = best[i]
            if r + corner_penalty >= bj:
                reach[a] = r   # a lower bound of its reach: kept alive
                continue
            c, _ = _span_cost_at(p, bounds[i], bound_j, sn0, cs0, sn1, cs1, inv, angle_penalty, diag_penalty)
            r += c
            reach[a] = r
            if i == 0 and j == m:
                continue  # one wall cannot close a ring
            if r + corner_penalty < bj:
                bj = r + corner_penalty
                pj = i
        best[j] = bj
        prev[j] = pj
        kept = 0
        for a in range(n_alive):
            if reach[a] < bj + slack:
                alive[kept] = alive[a]
                kept += 1
        alive[kept] = j
        n_alive = kept + 1
    k = 1   # walls on the path back from m
    j = m
    while j != 0:
        j = prev[j]
        k += 1
    chosen = ibuf[2, :k]
    j = m
    for t in range(k - 1, -1, -1):
        chosen[t] = j
        j = prev[j]
    return best[m], chosen


@numba.njit(cache=True, error_model="numpy")
def _refit_theta(p, bounds, chosen, theta, dirs, sigma2, angle_penalty, diag_penalty):
    """The main axis refitted on the walls the segmentation ``chosen`` put along it or
    across it: the least-squares direction of all their samples at once (a wall across
    the axis turned by 90 degrees), moved at most ``REFIT_MAX`` from ``theta``; in
    [0, pi/2). On a noisy boundary the coarse spans that vote for the axis are cut short
    by the noise and vote a degree or two off; the chosen walls pool every sample.
    ``dirs``: ``_directions(theta)``."""
    a_ = b_ = c_ = 0.0
    for i in range(chosen.shape[0] - 1):
        a = bounds[chosen[i]]
        b = bounds[chosen[i + 1]]
        _, kind = _span_cost(p, a, b, dirs, sigma2, angle_penalty, diag_penalty)
        if kind != 0 and kind != 2:
            continue
        cnt, mx, my, cxx, cyy, cxy = _span(p, a, b)
        if kind == 0:
            a_ += cxx
            c_ += cyy
            b_ += cxy
        else:   # across the axis: swap x and y spread, flip the covariance
            a_ += cyy
            c_ += cxx
            b_ -= cxy
    if a_ + c_ == 0.0:
        return theta
    t = _free_angle(a_, c_, b_) % (0.5 * math.pi)
    d = (t - theta) % (0.5 * math.pi)
    if d > 0.25 * math.pi:
        d -= 0.5 * math.pi
    if abs(d) > REFIT_MAX:
        return theta
    return (theta + d) % (0.5 * math.pi)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _emit(out, start, no, x, y):
    """Append a vertex to the ring that began at ``start`` unless it duplicates the ring's
    previous vertex (the vertex before ``start`` is another ring's: a neighbour's corner
    at a shared T-junction is exactly this one)."""
    if no > start and abs(out[no - 1, 0] - x) < 1e-6 and abs(out[no - 1, 1] - y) < 1e-6:
        return no
    out[no, 0] = x
    out[no, 1] = y
    return no + 1


@numba.njit(cache=True, error_model="numpy")
def _chain_dist(px, py, cx, cy, ci, reach):
    """Distance from (px, py) to the crack ring (cx, cy) within ``reach`` crack corners of
    corner ``ci`` (how far a vertex placed there lies from the pixel boundary), and the
    nearest boundary point. A ring shorter than ``2 * reach`` is walked once round."""
    k = cx.shape[0]
    best = np.inf
    bx = px
    by = py
    first = (ci - reach) % k
    for o in range(min(2 * reach, k)):
        a = first + o if first + o < k else first + o - k
        b = a + 1 if a + 1 < k else 0
        ax, ay = cx[a], cy[a]
        vx, vy = cx[b] - ax, cy[b] - ay
        vv = vx * vx + vy * vy
        t = 0.0
        if vv > 0.0:
            t = min(max(((px - ax) * vx + (py - ay) * vy) / vv, 0.0), 1.0)
        d = (ax + t * vx - px) ** 2 + (ay + t * vy - py) ** 2
        if d < best:
            best = d
            bx = ax + t * vx
            by = ay + t * vy
    return math.sqrt(best), bx, by


@numba.njit(cache=True, error_model="numpy")
def _step_point(x1, y1, x2, y2, ux, uy, cx, cy, ci, reach, near, qx, qy):
    """Where the pixel boundary crosses the mid-line between two near-parallel walls
    (through (x1, y1) and (x2, y2), direction (ux, uy)): the position of the step between
    them as the pixels show it, the crossing nearest to (qx, qy) among the crack ring's
    segments within ``reach`` corners of corner ``ci``; (qx, qy) if none is within ``near``."""
    k = cx.shape[0]
    mx, my = 0.5 * (x1 + x2), 0.5 * (y1 + y2)
    best = near * near
    rx, ry = qx, qy
    first = (ci - reach) % k
    for o in range(min(2 * reach, k)):
        a = first + o if first + o < k else first + o - k
        b = a + 1 if a + 1 < k else 0
        da = (cx[a] - mx) * uy - (cy[a] - my) * ux
        db = (cx[b] - mx) * uy - (cy[b] - my) * ux
        if (da < 0.0) != (db < 0.0):
            t = da / (da - db)
            px = cx[a] + t * (cx[b] - cx[a])
            py = cy[a] + t * (cy[b] - cy[a])
            d = (px - qx) ** 2 + (py - qy) ** 2
            if d < best:
                best = d
                rx, ry = px, py
    return rx, ry


@numba.njit(cache=True, error_model="numpy")
def _on_frame(ang, x0, y0, w, h):
    """Whether the line (angle, x0, y0) is an edge of the raster frame [0, w] x [0, h]:
    where a tile cuts a building its outline runs exactly along it."""
    if abs(math.sin(ang)) < 1e-9:
        return abs(y0) < 1e-6 or abs(y0 - h) < 1e-6
    if abs(math.cos(ang)) < 1e-9:
        return abs(x0) < 1e-6 or abs(x0 - w) < 1e-6
    return False


@numba.njit(cache=True, error_model="numpy")
def _frame_wall(sx, sy, a, b, w, h, line):
    """Whether most samples [a, b) (indices modulo the ring's) lie on one edge of the raster
    frame [0, w] x [0, h]; if so ``line`` (angle, x0, y0) becomes that edge. Where a tile
    cuts a building its outline runs exactly along the frame, which no fitted wall (snapped
    to the building's axes, a degree or two off the frame) should replace."""
    n = sx.shape[0]
    left = right = top = bottom = 0
    for t in range(a, b):
        x, y = sx[t % n], sy[t % n]
        left += x == 0.0
        right += x == w
        top += y == 0.0
        bottom += y == h
    most = max(left, right, top, bottom)
    if 2 * most <= b - a:
        return False
    if most == left or most == right:
        line[0], line[1] = 0.5 * math.pi, 0.0 if most == left else float(w)
    else:
        line[0], line[2] = 0.0, 0.0 if most == top else float(h)
    return True


@numba.njit(cache=True, error_model="numpy")
def _vertices(lines, corners, weight, cx, cy, corner_idx, chamfer, w, h, at_frame, out, no):
    """Intersect consecutive lines (angle, x0, y0); connect near-parallel ones at the step
    the pixel boundary shows (``_step_point``), otherwise at the crack corner.

    The mask bounds where a corner can be: true corners lie within about a pixel of the
    pixel boundary (99 % of the synthetic scenes' corners within 0.85 px). An intersection
    farther than ``chamfer`` pixels from it (the caller passes ``CHAMFER_PIXELS`` or
    ``CHAMFER_SIGMAS`` noise sigmas, whichever is larger) sticks out where the pixels show a
    cut corner: a short wall (a chamfer, the square end of a pointed row house) that the
    segmentation left out because its few samples cost less than a wall. The corner is
    then cut by a wall through the nearest boundary point, square to the direction in
    which the intersection sticks out. Beyond ``OFF_PIXELS`` the intersection is a spike
    from a short wall whose direction its few samples leave uncertain; the vertex is then
    the crack corner projected onto the better supported of the two walls (more samples,
    ``weight``), and the other wall takes the direction its end points give it. A wall
    that meets the raster frame (``w`` x ``h`` pixels, :func:`_on_frame`; ``at_frame``:
    the crack ring touches it), where a tile cut the building, ends at the frame however
    shallow the angle (down to 2 degrees): the frame is exact, not a step the pixels
    show. ``cx, cy``: the crack ring; ``corner_idx[j]``: its corner where wall j starts."""
    k = lines.shape[0]
    start = no
    sin_min = math.sin(math.radians(20.0))
    for i in range(k):
        j = (i + 1) % k
        ux, uy = math.cos(lines[i, 0]), math.sin(lines[i, 0])
        vx, vy = math.cos(lines[j, 0]), math.sin(lines[j, 0])
        qx, qy = corners[j, 0], corners[j, 1]  # crack corner between wall i and wall j
        cross = ux * vy - uy * vx
        done = False
        frame = at_frame and abs(cross) >= FRAME_SIN and (
            _on_frame(lines[i, 0], lines[i, 1], lines[i, 2], w, h)
            or _on_frame(lines[j, 0], lines[j, 1], lines[j, 2], w, h))
        if abs(cross) >= sin_min or frame:
            # lines[i] point + s*u == lines[j] point + t*v
            dx = lines[j, 1] - lines[i, 1]
            dy = lines[j, 2] - lines[i, 2]
            s = (dx * vy - dy * vx) / cross
            xx = lines[i, 1] + s * ux
            yy = lines[i, 2] + s * uy
            dq = (xx - qx) ** 2 + (yy - qy) ** 2
            if frame and abs(cross) < sin_min:
                if dq * cross * cross <= CORNER_REACH ** 2:   # a wall's offset error / |cross| along the frame
                    no = _emit(out, start, no, xx, yy)
                    done = True
            elif dq <= CORNER_REACH ** 2:
                dist = 0.0   # the crack corner is on the boundary: near it, no search
                if dq > chamfer * chamfer:
                    dist, px, py = _chain_dist(xx, yy, cx, cy, corner_idx[j], CHAIN_REACH)
                if chamfer < dist <= OFF_PIXELS:
                    # cut the corner along the pixel boundary: a wall through the nearest
                    # boundary point, square to the way the corner sticks out
                    wx, wy = -(yy - py) / dist, (xx - px) / dist
                    cross_i = ux * wy - uy * wx
                    cross_j = wx * vy - wy * vx
                    if abs(cross_i) >= sin_min and abs(cross_j) >= sin_min:
                        s1 = ((px - lines[i, 1]) * wy - (py - lines[i, 2]) * wx) / cross_i
                        s2 = ((lines[j, 1] - px) * vy - (lines[j, 2] - py) * vx) / cross_j
                        no = _emit(out, start, no, lines[i, 1] + s1 * ux, lines[i, 2] + s1 * uy)
                        no = _emit(out, start, no, px + s2 * wx, py + s2 * wy)
                        continue
                if dist > OFF_PIXELS:
                    if weight[i] >= weight[j]:
                        t1 = (qx - lines[i, 1]) * ux + (qy - lines[i, 2]) * uy
                        xx, yy = lines[i, 1] + t1 * ux, lines[i, 2] + t1 * uy
                    else:
                        t2 = (qx - lines[j, 1]) * vx + (qy - lines[j, 2]) * vy
                        xx, yy = lines[j, 1] + t2 * vx, lines[j, 2] + t2 * vy
                no = _emit(out, start, no, xx, yy)
                done = True
        if not done and abs(cross) < sin_min:
            qx, qy = _step_point(lines[i, 1], lines[i, 2], lines[j, 1], lines[j, 2], ux, uy,
                                 cx, cy, corner_idx[j], CHAIN_REACH, CORNER_REACH, qx, qy)
        if not done:
            t1 = (qx - lines[i, 1]) * ux + (qy - lines[i, 2]) * uy
            t2 = (qx - lines[j, 1]) * vx + (qy - lines[j, 2]) * vy
            ax, ay = lines[i, 1] + t1 * ux, lines[i, 2] + t1 * uy
            bx, by = lines[j, 1] + t2 * vx, lines[j, 2] + t2 * vy
            if (ax - bx) ** 2 + (ay - by) ** 2 < 0.09:
                no = _emit(out, start, no, 0.5 * (ax + bx), 0.5 * (ay + by))
            else:
                no = _emit(out, start, no, ax, ay)
                no = _emit(out, start, no, bx, by)
    return no


@numba.njit(cache=True, error_model="numpy")
def _unpaid(ai, xi, yi, aj, xj, yj, qx, qy, cx, cy, ci, chamfer):
    """1 when ``_vertices`` cannot join the walls i and j (angle, point x, y) at
    their intersection near their crack corner (qx, qy), index ``ci``: a chamfer or a
    connecting wall is added there, or a spike is moved onto one wall; else 0. Walls
    within 20 degrees of parallel count 0: the step between them is how the segmentation
    draws a jog of a pixel or so, too short to be a wall of its own."""
    ux, uy = math.cos(ai), math.sin(ai)
    vx, vy = math.cos(aj), math.sin(aj)
    cross = ux * vy - uy * vx
    if abs(cross) < math.sin(math.radians(20.0)):
        return 0
    s = ((xj - xi) * vy - (yj - yi) * vx) / cross
    xx = xi + s * ux
    yy = yi + s * uy
    dq = (xx - qx) ** 2 + (yy - qy) ** 2
    if dq > CORNER_REACH ** 2:
        return 1
    if dq <= chamfer * chamfer:
        return 0
    dist, _, _ = _chain_dist(xx, yy, cx, cy, ci, CHAIN_REACH)
    return 1 if dist > chamfer else 0


@numba.njit(cache=True, error_model="numpy")
def _settle_walls(p, bounds, chosen, kinds, lines, corners, cx, cy, cidx, mx, my,
                  theta, dirs, sigma2, corner_penalty, angle_penalty, diag_penalty, chamfer):
    """Give a diagonal or free wall another kind where that spares the walls ``_vertices``
    would add at its ends (``_unpaid``), under the segmentation's criterion with each
    added wall at ``corner_penalty``. The segmentation scores each wall on its own samples,
    blind to where it meets its neighbours: a short oblique wall (the end of a row house
    20 degrees off square) snapped to the diagonal is cheap on its few samples, but meets
    its neighbours off the pixels and comes out with a chamfer at each end (Delft: spikes
    of 45 degrees). Walls along the axes keep their kind (made free, one swallows the
    chamfer the pixels show at its end), and so do walls on a neighbour's line. ``kinds``:
    each wall's (``_span_cost``; -1 on a neighbour's line); ``lines`` (angle, x, y) and
    ``kinds`` are updated in place."""
    k = lines.shape[0]
    for i in range(k):
        if kinds[i] == -1 or kinds[i] == 0 or kinds[i] == 2:
            continue
        h = i - 1 if i > 0 else k - 1
        j = i + 1 if i + 1 < k else 0
        now = (_unpaid(lines[h, 0], lines[h, 1], lines[h, 2], lines[i, 0], lines[i, 1], lines[i, 2],
                       corners[i, 0], corners[i, 1], cx, cy, cidx[i], chamfer)
               + _unpaid(lines[i, 0], lines[i, 1], lines[i, 2], lines[j, 0], lines[j, 1], lines[j, 2],
                         corners[j, 0], corners[j, 1], cx, cy, cidx[j], chamfer))
        if now == 0:
            continue
        a = bounds[chosen[i]]
        b = bounds[chosen[i + 1]]
        best = _kind_cost(p, a, b, dirs, sigma2, angle_penalty, diag_penalty, kinds[i]) + corner_penalty * now
        for kind in range(5):
            if kind == kinds[i]:
                continue
            c = _kind_cost(p, a, b, dirs, sigma2, angle_penalty, diag_penalty, kind)
            if c >= best:
                continue
            ang, lx, ly = _kind_line(p, a, b, theta, kind, dirs, sigma2)
            lx += mx
            ly += my
            c += corner_penalty * (_unpaid(lines[h, 0], lines[h, 1], lines[h, 2], ang, lx, ly,
                                           corners[i, 0], corners[i, 1], cx, cy, cidx[i], chamfer)
                                   + _unpaid(ang, lx, ly, lines[j, 0], lines[j, 1], lines[j, 2],
                                             corners[j, 0], corners[j, 1], cx, cy, cidx[j], chamfer))
            if c < best:
                best = c
                kinds[i] = kind
                lines[i, 0], lines[i, 1], lines[i, 2] = ang, lx, ly


@numba.njit(cache=True, error_model="numpy", inline="always")
def _off_line(x, y, ang, lx, ly, tol):
    """Whether (x, y) lies farther than ``tol`` plus the digital quantization of the line
    (angle ``ang`` through (lx, ly)) from it. The crack-edge midpoints of a pixelated
    half-plane lie within half a pixel times the larger of the line's |cos|, |sin| of
    it: a staircase of an oblique wall stays inside that band, a real wall does not."""
    c, s = math.cos(ang), math.sin(ang)
    return abs((y - ly) * c - (x - lx) * s) > 0.5 * max(abs(c), abs(s)) + tol


@numba.njit(cache=True, error_model="numpy")
def _step_walls(lines, corners, weight, cidx, kinds, sx, sy, cx, cy, bounds, chosen, chamfer, nl, nc, nw, ni):
    """Give the step between two consecutive near-parallel walls (within 20 degrees) its
    own wall, placed on the samples that show it, before ``_vertices`` joins them.

    ``_vertices`` would connect them square to the first at the one point where the
    pixel boundary crosses their mid-line (``_step_point``); on an oblique wall that
    crossing is a staircase's and can sit a pixel along the wall from the step. Here the
    step's samples are the longest run of at least ``STEP_MIN`` within ``STEP_REACH`` of
    the corner off both walls' lines beyond their digital-line bound (``_off_line``) and
    ``STEP_MARGIN``; the step wall is square to the longer of the two walls (a run of two
    or three samples gives its own direction only to about 15 degrees) through their
    mean. It is kept when it meets both walls within ``CORNER_REACH`` of the crack corner
    and within ``chamfer`` of the crack ring (where ``_vertices`` keeps a corner as it is),
    in the order its samples go and at least ``STEP_LENGTH`` apart. Synthetic MTA
    6.97 -> 6.93, Delft 10.62 -> 10.53, Rotterdam 10.22 -> 10.05; simulated scenes
    unchanged. Walls on a neighbour's line (``kinds`` -1) are left alone. Returns the new
    ``(lines, corners, weight, cidx)``: views of ``nl, nc, nw, ni`` (scratch for twice
    as many walls)."""
    k = lines.shape[0]
    n = sx.shape[0]
    sin_par = math.sin(math.radians(20.0))
    m = 0
    for i in range(k):
        h = i - 1 if i > 0 else k - 1
        b = bounds[chosen[i]]
        len_h = (b - bounds[chosen[h]]) % n
        len_i = bounds[chosen[i + 1]] - b
        if k >= 3 and kinds[h] != -1 and kinds[i] != -1 and min(len_h, len_i) >= STEP_REACH \
                and abs(math.sin(lines[i, 0] - lines[h, 0])) < sin_par:
            # the longest run of samples near the corner off both walls
            lo = b - min(STEP_REACH, len_h // 2)
            hi = b + min(STEP_REACH, len_i // 2)
            best_a = best_b = run_a = lo
            for t in range(lo, hi + 1):
                off = False
                if t < hi:
                    tw = t % n
                    off = _off_line(sx[tw], sy[tw], lines[h, 0], lines[h, 1], lines[h, 2], STEP_MARGIN) and \
                        _off_line(sx[tw], sy[tw], lines[i, 0], lines[i, 1], lines[i, 2], STEP_MARGIN)
                if not off:
                    if t - run_a > best_b - best_a:
                        best_a, best_b = run_a, t
                    run_a = t + 1
            cnt = best_b - best_a
            if cnt >= STEP_MIN:
                wx = wy = 0.0
                for t in range(best_a, best_b):
                    wx += sx[t % n]
                    wy += sy[t % n]
                wx /= cnt
                wy /= cnt
                ang = lines[h if len_h >= len_i else i, 0] + 0.5 * math.pi
                cw, sw = math.cos(ang), math.sin(ang)
                ok = True
                px0 = py0 = px = py = 0.0
                for e in range(2):   # where the step meets wall h (e 0), then wall i
                    la = h if e == 0 else i
                    ux, uy = math.cos(lines[la, 0]), math.sin(lines[la, 0])
                    s = ((wx - lines[la, 1]) * sw - (wy - lines[la, 2]) * cw) / (ux * sw - uy * cw)
                    px, py = lines[la, 1] + s * ux, lines[la, 2] + s * uy
                    if (px - corners[i, 0]) ** 2 + (py - corners[i, 1]) ** 2 > CORNER_REACH ** 2 or \
                            _chain_dist(px, py, cx, cy, cidx[i], CHAIN_REACH)[0] > chamfer:
                        ok = False
                        break
                    if e == 0:
                        px0, py0 = px, py
                ex = sx[(best_b - 1) % n] - sx[best_a % n]
                ey = sy[(best_b - 1) % n] - sy[best_a % n]
                if ok and (px - px0) * ex + (py - py0) * ey > STEP_LENGTH * math.sqrt(ex * ex + ey * ey):
                    nl[m, 0], nl[m, 1], nl[m, 2] = ang, wx, wy
                    nc[m, 0], nc[m, 1] = corners[i, 0], corners[i, 1]
                    nw[m] = cnt
                    ni[m] = cidx[i]
                    m += 1
        nl[m, 0], nl[m, 1], nl[m, 2] = lines[i, 0], lines[i, 1], lines[i, 2]
        nc[m, 0], nc[m, 1] = corners[i, 0], corners[i, 1]
        nw[m] = weight[i]
        ni[m] = cidx[i]
        m += 1
    return nl[:m], nc[:m], nw[:m], ni[:m]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _edge_dist2(px, py, acc, e):
    """Squared distance from (px, py) to edge ``e`` (``acc`` rows 5-9: start x, y, unit
    direction x, y, length; see ``_refit_edges``) and the position along it."""
    dx, dy = px - acc[5, e], py - acc[6, e]
    t = dx * acc[7, e] + dy * acc[8, e]
    o = dy * acc[7, e] - dx * acc[8, e]
    if t < 0.0:
        return dx * dx + dy * dy, t
    if t > acc[9, e]:
        t2 = t - acc[9, e]
        return t2 * t2 + o * o, t
    return o * o, t


@numba.njit(cache=True, error_model="numpy")
def _refit_edges(out, start, no, sx, sy, nb, w, h, lab, store, lines_store, next_store, done, shift, acc):
    """Move each edge of the built ring ``out[start:no]`` across itself onto the mean of
    the samples ``sx, sy`` nearest to it (within ``EDGE_REACH`` pixels), and put the
    vertices where the moved edges meet.

    The segmentation fits each wall on its span of samples, cut at candidate corners: at
    a corner some samples of one wall fall in the next one's span (a 2 m wall then sits a
    tenth of a pixel off, and the corner's MTA piece turns by that over a metre), and a
    step or chamfer added later has no samples of its own. Once the ring is built, every
    sample goes to the edge it lies nearest to, as a topology oracle that knows the true
    walls would assign it. Edges on the raster frame stay. A party wall is one line for
    both neighbours (``_shared_line``): an edge with ``SHARE_MIN`` of its samples across
    from another building (``nb``: the label across each sample, 0 for none) moves only
    if this building (label ``lab``) filed its line for its neighbours, and then files
    the move in ``shift`` (by filed line; NaN: not moved); an edge on a line filed by the
    neighbour across most of its samples, refitted before (``done``, by label), moves as
    that neighbour recorded; any other edge along a neighbour stays. Consecutive edges within
    ``EDGE_PARALLEL`` of each other (a step) keep their shared vertex, moved by both
    offsets; so do both ends of an edge the moves would reverse. ``acc``: scratch of 11
    rows, a column per edge."""
    m = no - start
    if m < 3:
        return
    n = sx.shape[0]
    for e in range(m):
        i = start + e
        j = start + e + 1 if e + 1 < m else start
        vx, vy = out[j, 0] - out[i, 0], out[j, 1] - out[i, 1]
        lv = math.sqrt(vx * vx + vy * vy)
        acc[0, e] = 0.0   # samples
        acc[1, e] = 0.0   # sum of their offsets, then the edge's shift along (-uy, ux)
        acc[2, e] = 0.0   # samples across from another building
        acc[4, e] = 0.0   # the label across most of them (majority vote) ...
        acc[10, e] = 0.0  # ... and its vote count
        acc[5, e] = out[i, 0]
        acc[6, e] = out[i, 1]
        acc[7, e] = vx / lv if lv > 0.0 else 0.0
        acc[8, e] = vy / lv if lv > 0.0 else 0.0
        acc[9, e] = lv
    # samples and edges run round the ring in the same order: after a full search for the
    # first sample, each one's edge is found by walking on from the previous one's (a
    # sample within half a pixel of its edge, away from the ends, stays with it)
    e = 0
    best = np.inf
    for f in range(m):
        d, _ = _edge_dist2(sx[0], sy[0], acc, f)
        if d < best:
            best = d
            e = f
    reach2 = EDGE_REACH * EDGE_REACH
    for s in range(n):
        px, py = sx[s], sy[s]
        d0, t = _edge_dist2(px, py, acc, e)
        if d0 > 0.25 or not (EDGE_REACH <= t <= acc[9, e] - EDGE_REACH):
            while True:
                e1 = e + 1 if e + 1 < m else 0
                d1, _ = _edge_dist2(px, py, acc, e1)
                if d1 < d0:
                    e, d0 = e1, d1
                    continue
                e2 = e1 + 1 if e1 + 1 < m else 0
                d2, _ = _edge_dist2(px, py, acc, e2)
                if d2 < d0:
                    e, d0 = e2, d2
                    continue
                break
        if d0 > reach2 or acc[9, e] == 0.0:
            continue
        acc[0, e] += 1.0
        acc[1, e] += (py - acc[6, e]) * acc[7, e] - (px - acc[5, e]) * acc[8, e]
        if nb[s] > 0:
            acc[2, e] += 1.0
            if nb[s] == acc[4, e]:
                acc[10, e] += 1.0
            elif acc[10, e] == 0.0:
                acc[4, e] = nb[s]
                acc[10, e] = 1.0
            else:
                acc[10, e] -= 1.0
    for e in range(m):
        i = start + e
        j = start + e + 1 if e + 1 < m else start
        on_frame = False
        for c in range(2):
            edge = float(w) if c == 0 else float(h)
            for v in (0.0, edge):
                if abs(out[i, c] - v) < 1e-6 and abs(out[j, c] - v) < 1e-6:
                    on_frame = True
        acc[3, e] = acc[2, e] > 0.0 or on_frame   # on a line of its own: its vertices stay on it
        if acc[0, e] == 0.0 or on_frame:
            acc[1, e] = 0.0
        elif acc[2, e] == 0.0:
            acc[1, e] /= acc[0, e]
        else:   # a party wall
            acc[1, e] /= acc[0, e]
            f = _filed_line(out, i, j, store, lines_store, next_store, lab)
            other = int(acc[4, e])   # a label beyond the buildings' (a dropped speck) filed nothing
            g = -1 if f >= 0 or other >= done.shape[0] or not done[other] else \
                _filed_line(out, i, j, store, lines_store, next_store, other)
            if f >= 0 and acc[2, e] >= SHARE_MIN * acc[0, e]:
                shift[f] = acc[1, e] * _along_normal(lines_store[f, 0], acc[7, e], acc[8, e])
            elif g >= 0 and not math.isnan(shift[g]):
                acc[1, e] = shift[g] * _along_normal(lines_store[g, 0], acc[7, e], acc[8, e])
            else:
                acc[1, e] = 0.0
    # new vertices into acc[0] (x) and acc[2] (y); vertex v starts edge v
    for v in range(m):
        acc[0, v], acc[2, v] = _moved_vertex(acc, m, v)
    for e in range(m):   # an edge the moves would reverse: both its ends moved, not intersected
        f = e + 1 if e + 1 < m else 0
        if (acc[0, f] - acc[0, e]) * acc[7, e] + (acc[2, f] - acc[2, e]) * acc[8, e] <= 0.0:
            for v in (e, f):
                acc[0, v], acc[2, v] = _shifted_vertex(acc, m, v)
    for v in range(m):
        out[start + v, 0] = acc[0, v]
        out[start + v, 1] = acc[2, v]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _along_normal(ang, ux, uy):
    """+1 or -1: whether the normal (-uy, ux) of an edge of direction (ux, uy) points
    the way of the normal (-sin, cos) of a line of angle ``ang`` (the edge lies on it)."""
    return 1.0 if uy * math.sin(ang) + ux * math.cos(ang) >= 0.0 else -1.0


@numba.njit(cache=True, error_model="numpy")
def _filed_line(out, i, j, store, lines_store, next_store, lab):
    """The line filed by building ``lab`` (``_shared_line``'s store) that the edge from
    vertex ``out[i]`` to ``out[j]`` lies on (within rounding), or -1."""
    if lab >= store.shape[0]:
        return -1
    f = store[lab]
    while f >= 0:
        sn, cs = math.sin(lines_store[f, 0]), math.cos(lines_store[f, 0])
        if abs((out[i, 1] - lines_store[f, 2]) * cs - (out[i, 0] - lines_store[f, 1]) * sn) < 1e-6 \
                and abs((out[j, 1] - lines_store[f, 2]) * cs - (out[j, 0] - lines_store[f, 1]) * sn) < 1e-6:
            return f
        f = next_store[f]
    return -1


@numba.njit(cache=True, error_model="numpy", inline="always")
def _shifted_vertex(acc, m, v):
    """Vertex ``v`` (``acc`` rows 5, 6) moved by the shifts (row 1) of its two edges along
    their normals, half each: where they are nearly parallel (a step), the vertex keeps
    its place along them. A vertex of an edge on a line of its own (row 3: a party wall,
    the frame) moves with that line only: half of the other's shift would turn it off."""
    h = (v + m - 1) % m
    if acc[3, h] != 0.0 and acc[3, v] == 0.0:   # on h's line, moved with it
        return acc[5, v] - acc[1, h] * acc[8, h], acc[6, v] + acc[1, h] * acc[7, h]
    if acc[3, v] != 0.0 and acc[3, h] == 0.0:
        return acc[5, v] - acc[1, v] * acc[8, v], acc[6, v] + acc[1, v] * acc[7, v]
    x = acc[5, v] - 0.5 * (acc[1, h] * acc[8, h] + acc[1, v] * acc[8, v])
    y = acc[6, v] + 0.5 * (acc[1, h] * acc[7, h] + acc[1, v] * acc[7, v])
    return x, y


@numba.njit(cache=True, error_model="numpy", inline="always")
def _moved_vertex(acc, m, v):
    """Where edges ``v - 1`` and ``v``, each moved by its shift along its normal, meet
    (``acc`` as in ``_refit_edges``); ``_shifted_vertex`` when they are within
    ``EDGE_PARALLEL`` of parallel."""
    h = (v + m - 1) % m
    # unit directions u, normals (-uy, ux); the vertex lies on both old lines, so the
    # move d solves n_h . d = shift_h, n_v . d = shift_v
    det = acc[7, h] * acc[8, v] - acc[8, h] * acc[7, v]
    if abs(det) < math.sin(EDGE_PARALLEL):
        return _shifted_vertex(acc, m, v)
    ca = acc[1, h]
    cb = acc[1, v]
    return acc[5, v] + (ca * acc[7, v] - cb * acc[7, h]) / det, acc[6, v] + (ca * acc[8, v] - cb * acc[8, h]) / det


@numba.njit(cache=True, error_model="numpy")
def _onto_frame(out, start, no, w, h):
    """Put the vertices of the ring ``out[start:no]`` that lie within rounding of the raster
    frame [0, w] x [0, h] (a frame wall's intersections) exactly on it; returns whether a
    vertex lies outside the frame (:func:`_clip_to_frame`)."""
    outside = False
    for i in range(start, no):
        for c in range(2):
            edge = float(w) if c == 0 else float(h)
            v = out[i, c]
            if abs(v) < 1e-9:
                out[i, c] = 0.0
            elif abs(v - edge) < 1e-9:
                out[i, c] = edge
            elif v < 0.0 or v > edge:
                outside = True
    return outside


@numba.njit(cache=True, error_model="numpy")
def _clip_to_frame(out, start, no, w, h):
    """Clip the ring ``out[start:no]`` to the raster frame [0, w] x [0, h] in place
    (Sutherland–Hodgman, one frame edge at a time); returns the new end. A corner of a
    building cut by the tile, whose walls meet beyond the frame, is cut along the frame:
    the mask shows nothing there. Crossings are put exactly on the frame. Each pass adds
    at most one vertex per entry into the kept side (half the ring's vertices), so the
    scratch holds 1.5^4 times the ring; a clipped ring that would not fit in ``out`` is
    left as it is (the caller's validity checks still see it)."""
    m = no - start
    src = np.empty((8 * m + 16, 2), dtype=np.float64)
    dst = np.empty((8 * m + 16, 2), dtype=np.float64)
    src[:m] = out[start:no]
    for edge in range(4):
        bound = 0.0 if edge < 2 else (float(w) if edge == 2 else float(h))
        ax = 0 if edge % 2 == 0 else 1          # coordinate tested: x for edges 0, 2
        keep_above = edge < 2                   # x >= 0, y >= 0; then x <= w, y <= h
        k = 0
        for i in range(m):
            px, py = src[i - 1, 0] if i else src[m - 1, 0], src[i - 1, 1] if i else src[m - 1, 1]
            qx, qy = src[i, 0], src[i, 1]
            pv = px if ax == 0 else py
            qv = qx if ax == 0 else qy
            p_in = pv >= bound if keep_above else pv <= bound
            q_in = qv >= bound if keep_above else qv <= bound
            if p_in != q_in:
                t = (bound - pv) / (qv - pv)
                if ax == 0:
                    dst[k, 0], dst[k, 1] = bound, py + t * (qy - py)
                else:
                    dst[k, 0], dst[k, 1] = px + t * (qx - px), bound
                k += 1
            if q_in:
                dst[k, 0], dst[k, 1] = qx, qy
                k += 1
        src, dst, m = dst, src, k
        if m == 0:
            break
    if start + m > out.shape[0]:
        return no
    out[start:start + m] = src[:m]
    return start + m


@numba.njit(cache=True, error_model="numpy")
def _clean(out, start, no, min_turn):
    """Drop closing duplicates and vertices whose turn is below ``min_turn`` radians, the
    first such vertex in ring order at a time. After a drop only the two vertices beside
    it have new neighbours, so the next scan resumes just before it (from the start when
    the last vertex went: the first one's neighbour changed); the vertices it skips were
    kept and still would be. A turn is measured (atan2) only where its sine and cosine do
    not already show it to be well above ``min_turn`` (a wall's corner)."""
    sin_clear = 1.001 * math.sin(min_turn)
    changed = True
    first = 0
    while changed and no - start > 3:
        changed = False
        k = no - start
        for i in range(first, k):
            a = start + (i - 1) % k
            b = start + i
            c = start + (i + 1) % k
            ux, uy = out[b, 0] - out[a, 0], out[b, 1] - out[a, 1]
            vx, vy = out[c, 0] - out[b, 0], out[c, 1] - out[b, 1]
            lu = math.sqrt(ux * ux + uy * uy)
            lv = math.sqrt(vx * vx + vy * vy)
            drop = lu < 1e-6 or lv < 1e-6
            if not drop:
                cross = ux * vy - uy * vx
                dot = ux * vx + uy * vy
                if dot > 0.0 and abs(cross) <= sin_clear * lu * lv:
                    drop = abs(math.atan2(cross, dot)) < min_turn
            if drop:
                for t in range(b, no - 1):
                    out[t, 0] = out[t + 1, 0]
                    out[t, 1] = out[t + 1, 1]
                no -= 1
                changed = True
                first = max(i - 1, 0) if i < k - 1 else 0
                break
    return no


@numba.njit(cache=True, error_model="numpy")
def _ring_setup(cx, cy, level, side_start, n, cand_eps, max_cand, cand, bbuf):
    """Candidate boundaries of one ring (its corners' ``level``), ready for ``_segment``:
    ``(bounds, corner_idx)``, starting at the sharpest candidate corner (a corner for sure,
    so the cyclic ring may be cut there): views of ``bbuf`` (scratch of 2 rows of
    ``len(level) + 1`` or more). ``cand``: ``_candidates``'s scratch."""
    cand = _candidates(level, cand_eps, max_cand, cand)
    m = cand.shape[0]
    sharp = 0
    sharp_turn = -1.0
    for i in range(m):
        a = cand[(i - 1) % m]
        b = cand[i]
        c = cand[(i + 1) % m]
        ux, uy = cx[b] - cx[a], cy[b] - cy[a]
        vx, vy = cx[c] - cx[b], cy[c] - cy[b]
        # 1 - cos(turn): grows with the turn angle, no trigonometry
        norm = math.sqrt((ux * ux + uy * uy) * (vx * vx + vy * vy))
        turn = 1.0 - (ux * vx + uy * vy) / norm if norm > 0.0 else 0.0
        if turn > sharp_turn:
            sharp_turn = turn
            sharp = i
    bounds = bbuf[0, :m + 1]
    corner_idx = bbuf[1, :m + 1]
    base = side_start[cand[sharp]]
    for i in range(m + 1):
        ci = cand[(sharp + i) % m]
        s = side_start[ci]
        if s < base or (i > 0 and s == base):
            s += n
        bounds[i] = s
        corner_idx[i] = ci
    return bounds, corner_idx


@numba.njit(cache=True, error_model="numpy")
def _main_neighbour(nb, a, b):
    """The building label across most samples of span [a, b) (wrapping), and its share."""
    n = nb.shape[0]
    cand = 0
    votes = 0
    for t in range(a, b):   # Boyer–Moore majority vote
        v = nb[t - n if t >= n else t]
        if votes == 0:
            cand = v
            votes = 1
        elif v == cand:
            votes += 1
        else:
            votes -= 1
    count = 0
    for t in range(a, b):
        if nb[t - n if t >= n else t] == cand:
            count += 1
    return cand, count / max(b - a, 1)


@numba.njit(cache=True, error_model="numpy")
def _shared_line(store, lines_store, next_store, other, ang, x, y):
    """A wall already fitted by the neighbour ``other`` (label) that this wall lies on
    (parallel within ``SHARE_SIN`` and through a point within ``SHARE_DIST`` pixels), or
    -1. ``store[label]`` heads the linked list (``next_store``) of the walls that building
    filed (those facing any neighbour; -1: none): an array indexed by label, a lookup
    without hashing (labels above its length are no building's)."""
    if other >= store.shape[0]:
        return -1
    e = store[other]
    while e >= 0:
        sa = lines_store[e, 0]
        if abs(math.sin(sa - ang)) < SHARE_SIN:
            d = abs(-(math.sin(sa)) * (x - lines_store[e, 1]) + math.cos(sa) * (y - lines_store[e, 2]))
            if d < SHARE_DIST:
                return e
        e = next_store[e]
    return -1


@numba.njit(cache=True, error_model="numpy")
def _may_touch(xy, ring_offsets, building_offsets):
    """Whether each building's outer-ring bounding box, grown by one pixel, meets another
    building's: only those can have a neighbour across a crack (sweep over x). Returns
    ``(touch, box)``, ``box`` the boxes (x0, y0, x1, y1) themselves."""
    n_b = building_offsets.shape[0] - 1
    box = np.empty((n_b, 4), dtype=np.float64)
    for b in range(n_b):
        r = building_offsets[b]
        x0 = y0 = np.inf
        x1 = y1 = -np.inf
        for i in range(ring_offsets[r], ring_offsets[r + 1]):
            x0 = min(x0, xy[i, 0])
            x1 = max(x1, xy[i, 0])
            y0 = min(y0, xy[i, 1])
            y1 = max(y1, xy[i, 1])
        box[b, 0] = x0
        box[b, 1] = y0
        box[b, 2] = x1
        box[b, 3] = y1
    order = np.argsort(box[:, 0])
    touch = np.zeros(n_b, dtype=np.bool_)
    for k in range(n_b):
        i = order[k]
        for q in range(k + 1, n_b):
            j = order[q]
            if box[j, 0] > box[i, 2] + 1.0:
                break
            if box[j, 1] <= box[i, 3] + 1.0 and box[i, 1] <= box[j, 3] + 1.0:
                touch[i] = True
                touch[j] = True
    return touch, box


@numba.njit(cache=True, error_model="numpy")
def _root(parent, i):
    """Union–find root of ``i`` (path halving)."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@numba.njit(cache=True, error_model="numpy")
def _touch_units(xy, ring_offsets, building_offsets, labels, building_label, touch, sample_off, across):
    """Groups of touching buildings (joined by a crack between their pixels, on any ring;
    a building touching none is a group of one): ``(members, unit_off)``, group u's
    buildings ``members[unit_off[u]:unit_off[u+1]]`` in ascending order, groups in the
    order of their first building. ``touch``: ``_may_touch`` (only those are walked).

    The walk also files the label of the pixel across each sample of those buildings'
    rings (ring r's samples from ``sample_off[r]`` on, see ``_samples``) into ``across``
    (0: background or off the raster). The owning pixel of a crack is on its right (see
    ``outline_trace``), so the pixel across is on its left: a crack side is axis-parallel
    between integer corners, and the pixels across it are a row or column run read
    without rounding."""
    n_b = building_offsets.shape[0] - 1
    h, w = labels.shape
    n_lab = 0
    for b in range(n_b):
        n_lab = max(n_lab, building_label[b])
    lab_b = np.full(n_lab + 1, -1, dtype=np.int64)
    for b in range(n_b):
        lab_b[building_label[b]] = b
    parent = np.arange(n_b)
    for b in range(n_b):
        if not touch[b]:
            continue
        for r in range(building_offsets[b], building_offsets[b + 1]):
            i0 = ring_offsets[r]
            i1 = ring_offsets[r + 1]
            t = sample_off[r]
            last = 0   # the label across the previous sample: joined already
            for i in range(i0, i1):
                j = i + 1 if i + 1 < i1 else i0
                x0, y0 = int(xy[i, 0]), int(xy[i, 1])
                dx, dy = int(xy[j, 0]) - x0, int(xy[j, 1]) - y0
                if dy == 0:     # along +x row y - 1 from column x, along -x row y from x - 1
                    row, col = (y0 - 1, x0) if dx > 0 else (y0, x0 - 1)
                    dr, dc = 0, (1 if dx > 0 else -1)
                else:           # along +y column x from row y, along -y column x - 1 from y - 1
                    row, col = (y0, x0) if dy > 0 else (y0 - 1, x0 - 1)
                    dr, dc = (1 if dy > 0 else -1), 0
                for q in range(abs(dx) + abs(dy)):
                    rr, cc = row + dr * q, col + dc * q
                    lab = labels[rr, cc] if 0 <= rr < h and 0 <= cc < w else 0
                    across[t] = lab
                    t += 1
                    if lab == last:
                        continue
                    last = lab
                    if 0 < lab <= n_lab and lab_b[lab] >= 0:
                        ra = _root(parent, b)
                        rb = _root(parent, lab_b[lab])
                        if ra != rb:
                            parent[max(ra, rb)] = min(ra, rb)
    # counting sort by root: roots are their groups' smallest buildings, so groups come in
    # the order of their first building and members ascending
    count = np.zeros(n_b + 1, dtype=np.int64)
    root = np.empty(n_b, dtype=np.int64)
    for b in range(n_b):
        root[b] = _root(parent, b)
        count[root[b] + 1] += 1
    for b in range(n_b):
        count[b + 1] += count[b]
    members = np.empty(n_b, dtype=np.int64)
    fill = count[:-1].copy()
    for b in range(n_b):
        members[fill[root[b]]] = b
        fill[root[b]] += 1
    n_units = 0
    unit_off = np.empty(n_b + 1, dtype=np.int64)
    for b in range(n_b):
        if count[b + 1] > count[b]:
            unit_off[n_units] = count[b]
            n_units += 1
    unit_off[n_units] = n_b
    return members, unit_off[:n_units + 1].copy()


@numba.njit(cache=True, error_model="numpy")
def _group_axis(hist, ang, weight):
    """Main axis of a group of touching buildings from the votes of all its members: the
    peak of their pooled histogram, refined (as ``_refine_theta``) by the weighted mean of
    all their spans' directions ``ang`` within 6 degrees of it. A wall at a degree or two
    to the pixel grid shows one or two steps, and each building's own estimate is off by
    up to a degree or two; the pooled one averages the steps of the whole block."""
    theta0 = _dominant(hist)
    sc = 0.0
    ss = 0.0
    for k in range(ang.shape[0]):
        d = _quarter_mod(ang[k] - theta0)
        if d > 0.25 * math.pi:
            d -= 0.5 * math.pi
        if abs(d) < math.radians(6.0):
            sc += weight[k] * math.cos(4.0 * ang[k])
            ss += weight[k] * math.sin(4.0 * ang[k])
    if sc == 0.0 and ss == 0.0:
        return theta0
    return (0.25 * math.atan2(ss, sc)) % (0.5 * math.pi)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _ring_views(k, n, s0, k0, q, c_buf, lv_buf, sx_buf, sy_buf, ss_buf, p_buf):
    """A ring's slices of the scratch buffers (``k`` crack corners, ``n`` samples): its
    corners ``cx, cy`` and their Douglas–Peucker ``level``, ``side_start`` (from side
    ``k0`` on), the samples ``sx, sy`` (from sample ``s0`` on) and the prefix sums ``p``
    (two rows per sample and one per ring before it, ``q``). Both passes of
    ``regularize_buildings`` walk the rings in the same order, so they find the same slices."""
    return (c_buf[0, k0:k0 + k], c_buf[1, k0:k0 + k], lv_buf[k0:k0 + k], sx_buf[s0:s0 + n],
            sy_buf[s0:s0 + n], ss_buf[k0:k0 + k + 1], p_buf[2 * s0 + q:2 * (s0 + n) + q + 1])


@numba.njit(cache=True, error_model="numpy")
def regularize_buildings(xy, ring_offsets, building_offsets, labels, building_label, sigma,
                         corner_penalty, angle_penalty, diag_penalty, cand_eps, max_cand, circles):
    """Regularize every ring of every building.

    ``xy``/``ring_offsets``: crack rings as from ``trace_rings``; ``building_offsets``:
    building b owns rings ``building_offsets[b]:building_offsets[b+1]``; ``labels``: the
    label raster the rings were traced on, ``building_label[b]`` building b's label
    (positive; the shared walls are filed in a table indexed by label, so labels should
    stay within a few times the raster's size, as the tracing kernels' do). Buildings
    cut by the raster frame end on it (``_frame_wall``, ``_clip_to_frame``).
    Touching buildings agree. They are done group by group (``_touch_units``): a member
    whose own main axis is within ``SHARE_THETA`` of the group's (``_group_axis``, all
    members' votes pooled) takes the group's. Within a group, buildings are done in order
    and a later one adopts what an earlier neighbour chose: a wall that runs along a
    neighbour (``SHARE_MIN`` of its samples) takes the neighbour's line for that wall when
    they nearly agree, so shared walls coincide instead of overlapping. Returns
    ``(out_xy, out_ring_offsets, theta)``: one output ring per input ring (no closing
    repeat; fewer than 3 vertices means the ring vanished), oriented like the input rings
    (outer rings positive shoelace area in pixel coordinates, holes negative), and each
    building's main axis in radians, in [0, pi/2).
    """
    n_rings = ring_offsets.shape[0] - 1
    n_b = building_offsets.shape[0] - 1
    h, w = labels.shape   # the raster frame: [0, w] x [0, h]
    cap = 2 * xy.shape[0] + 72 * n_rings + 8
    out = np.empty((cap, 2), dtype=np.float64)
    ring_out = np.zeros((n_rings, 2), dtype=np.int64)   # each ring's run in ``out``
    theta_out = np.zeros(n_b, dtype=np.float64)
    store = np.full(building_label.max() + 1 if n_b else 1, -1, dtype=np.int64)
    lines_store = np.empty((xy.shape[0] + 1, 3), dtype=np.float64)
    next_store = np.empty(xy.shape[0] + 1, dtype=np.int64)
    # the edge refit's: by filed line, how far it moved (NaN: not); by label, the buildings
    # refitted so far; scratch, a column per edge, grown for a ring of more edges
    shift = np.empty(xy.shape[0] + 1, dtype=np.float64)
    done = np.zeros(store.shape[0], dtype=np.bool_)
    acc = np.empty((11, 64), dtype=np.float64)
    n_store = 0
    no = 0
    perim = np.empty(n_rings, dtype=np.int64)
    sample_off = np.zeros(n_rings + 1, dtype=np.int64)
    for r in range(n_rings):
        perim[r] = _perimeter(xy[ring_offsets[r]:ring_offsets[r + 1], 0], xy[ring_offsets[r]:ring_offsets[r + 1], 1])
        sample_off[r + 1] = sample_off[r] + perim[r]
    # the label across each sample (0: none; filled for the buildings that touch another)
    across = np.zeros(sample_off[n_rings], dtype=labels.dtype)
    touch, box = _may_touch(xy, ring_offsets, building_offsets)
    members, unit_off = _touch_units(xy, ring_offsets, building_offsets, labels, building_label, touch,
                                     sample_off, across)
    # each group's rings are sampled once and kept (corners, samples, moments) for its
    # second pass: scratch sized for the largest group, not the city (it stays in cache,
    # and a city's worth of scratch pages is not faulted in again on every call)
    s_max = k_max = r_max = 0
    for u in range(unit_off.shape[0] - 1):
        s_u = k_u = r_u = 0
        for m in members[unit_off[u]:unit_off[u + 1]]:
            for r in range(building_offsets[m], building_offsets[m + 1]):
                s_u += perim[r]
                k_u += ring_offsets[r + 1] - ring_offsets[r]
                r_u += 1
        s_max = max(s_max, s_u)
        k_max = max(k_max, k_u)
        r_max = max(r_max, r_u)
    sx_buf = np.empty(s_max, dtype=np.float64)
    sy_buf = np.empty(s_max, dtype=np.float64)
    ss_buf = np.empty(k_max + r_max, dtype=np.int64)
    p_buf = np.empty((2 * s_max + r_max, 5), dtype=np.float64)
    centre = np.empty((r_max, 2), dtype=np.float64)
    span_ang = np.empty(k_max, dtype=np.float64)
    span_w = np.empty(k_max, dtype=np.float64)
    # the corners' x and y each contiguous: Douglas–Peucker scans them a dozen times
    c_buf = np.empty((2, k_max + r_max), dtype=np.float64)
    lv_buf = np.empty(k_max + r_max, dtype=np.float64)
    dp_stack = np.empty((2 * k_max + 4, 2), dtype=np.int64)
    dp_bound = np.empty(2 * k_max + 4, dtype=np.float64)
    own_sigma2 = np.empty(n_b, dtype=np.float64)
    hist = np.empty(90, dtype=np.float64)
    group_hist = np.empty(90, dtype=np.float64)
    dirs = np.empty((4, 2), dtype=np.float64)
    seg_f = np.empty((2, k_max + 1), dtype=np.float64)
    seg_i = np.empty((3, k_max + 1), dtype=np.int64)
    cand_buf = np.empty(k_max, dtype=np.int64)
    bound_buf = np.empty((2, k_max + 1), dtype=np.int64)
    span_buf = np.empty((2, k_max + r_max), dtype=np.int64)
    # a ring's walls (row 0) and _step_walls's (row 1, up to twice as many)
    lines_buf = np.empty((2, 2 * k_max, 3), dtype=np.float64)
    corners_buf = np.empty((2, 2 * k_max, 2), dtype=np.float64)
    weight_buf = np.empty((2, 2 * k_max), dtype=np.float64)
    cidx_buf = np.empty((2, 2 * k_max), dtype=np.int64)
    kinds_buf = np.empty(k_max, dtype=np.int64)
    for u in range(unit_off.shape[0] - 1):
        unit = members[unit_off[u]:unit_off[u + 1]]
        # pass 1: each member's own main axis and noise; the group's pooled votes
        group_hist[:] = 0.0
        n_span = 0
        s0 = k0 = q = 0   # scratch offsets: samples, side starts, ring
        for bld in unit:
            r0 = building_offsets[bld]
            # main axis: histogram of the directions of the spans of a coarse
            # simplification (fine candidates cut a shallow staircase into its steps),
            # over all rings, refined on the outer ring
            hist[:] = 0.0
            for r in range(r0, building_offsets[bld + 1]):
                n = perim[r]
                k = ring_offsets[r + 1] - ring_offsets[r]
                cx, cy, level, sx, sy, side_start, p = _ring_views(k, n, s0, k0, q, c_buf, lv_buf, sx_buf,
                                                                   sy_buf, ss_buf, p_buf)
                cx[:] = xy[ring_offsets[r]:ring_offsets[r + 1], 0]
                cy[:] = xy[ring_offsets[r]:ring_offsets[r + 1], 1]
                _samples(cx, cy, sx, sy, side_start)
                centre[q, 0], centre[q, 1] = _moments(sx, sy, p)
                _corner_levels(cx, cy, min(ORIENT_EPS, cand_eps), level, dp_stack, dp_bound)   # both tolerances
                coarse = _candidates(level, ORIENT_EPS, max_cand, cand_buf)
                # each ring its own spans (as side_start): the outer ring's are read after its holes
                st, en = _spans(coarse, side_start, n, span_buf[0, k0:], span_buf[1, k0:])
                _orientation_hist(p, st, en, hist)
                if r == r0:
                    o_p, o_st, o_en = p, st, en
                s0 += n
                k0 += k + 1
                q += 1
            theta, n_span = _refine_theta(o_p, o_st, o_en, _dominant(hist), span_ang, span_w, n_span)
            theta_out[bld] = theta % (0.5 * math.pi)
            own_sigma2[bld] = max(sigma * sigma, _noise_var(o_p, o_st, o_en))
            if unit.shape[0] > 1:
                group_hist += hist
        group_theta = _group_axis(group_hist, span_ang[:n_span], span_w[:n_span]) if unit.shape[0] > 1 else 0.0
        # pass 2: segment and build each ring
        s0 = k0 = q = 0
        for bld in unit:
            r0 = building_offsets[bld]
            lab = building_label[bld]
            theta = theta_out[bld]
            sigma2 = own_sigma2[bld]
            adopted = False
            if unit.shape[0] > 1:
                d = (group_theta - theta) % (0.5 * math.pi)
                if min(d, 0.5 * math.pi - d) < SHARE_THETA:
                    theta = group_theta
                    adopted = True
            theta_out[bld] = theta
            for r in range(r0, building_offsets[bld + 1]):
                ring_start = no
                n = perim[r]
                k = ring_offsets[r + 1] - ring_offsets[r]
                cx, cy, level, sx, sy, side_start, p = _ring_views(k, n, s0, k0, q, c_buf, lv_buf, sx_buf,
                                                                   sy_buf, ss_buf, p_buf)
                nb = across[sample_off[r]:sample_off[r + 1]]
                mx, my = centre[q, 0], centre[q, 1]
                # on the raster frame: only an outer ring can be (a hole is ringed by pixels)
                at_frame = r == r0 and (box[bld, 0] == 0.0 or box[bld, 1] == 0.0
                                        or box[bld, 2] == w or box[bld, 3] == h)
                s0 += n
                k0 += k + 1
                q += 1
                bounds, corner_idx = _ring_setup(cx, cy, level, side_start, n, max(cand_eps, CAND_SIGMAS * math.sqrt(sigma2)), max_cand,
                                                 cand_buf, bound_buf)
                _directions(theta, dirs)
                poly_cost, chosen = _segment(p, n, bounds, dirs, sigma2, corner_penalty,
                                             angle_penalty, diag_penalty, seg_f, seg_i)
                # a noisy building's axis is refitted on its walls (not one adopted from a
                # neighbour: their shared walls must stay parallel); its holes use it too
                if r == r0 and not adopted and sigma2 > REFIT_SIGMA * REFIT_SIGMA:
                    theta = _refit_theta(p, bounds, chosen, theta, dirs, sigma2, angle_penalty, diag_penalty)
                    theta_out[bld] = theta
                    _directions(theta, dirs)
                use_circle = False
                # a circle costs at least 3 * angle_penalty + corner_penalty: fit it only if
                # that can beat the polygon
                if circles and n >= 24 and poly_cost > 3.0 * angle_penalty + corner_penalty:
                    # the residual sum stops where the circle cannot win (a margin of a
                    # millionth of the cost, far above rounding: the same choice as the full sum)
                    stop = (poly_cost - 3.0 * angle_penalty - corner_penalty + 1e-6 * poly_cost) * sigma2
                    ccx, ccy, rad, crss = _circle(sx, sy, stop)
                    circle_cost = crss / sigma2 + 3.0 * angle_penalty + corner_penalty
                    use_circle = rad >= 4.0 and circle_cost < poly_cost
                if use_circle:
                    # vertices: the chords stray at most a quarter pixel from the circle, and
                    # at least CIRCLE_MIN_VERTICES so that no edge turns from the circle's
                    # tangent by more than 180 / CIRCLE_MIN_VERTICES degrees
                    step = 2.0 * math.acos(max(1.0 - 0.25 / rad, -1.0))
                    nv = min(max(int(math.ceil(2.0 * math.pi / step)), CIRCLE_MIN_VERTICES), 64)
                    # radius giving the polygon the circle's area
                    rr = rad * math.sqrt(2.0 * math.pi / (nv * math.sin(2.0 * math.pi / nv)))
                    sign = 1.0 if r == r0 else -1.0
                    for i in range(nv):
                        a = sign * 2.0 * math.pi * i / nv
                        no = _emit(out, ring_start, no, ccx + rr * math.cos(a), ccy + rr * math.sin(a))
                else:
                    k = chosen.shape[0] - 1
                    lines = lines_buf[0, :k]
                    corners = corners_buf[0, :k]
                    weight = weight_buf[0, :k]
                    cidx = cidx_buf[0, :k]
                    kinds = kinds_buf[:k]   # -1: on a neighbour's line
                    for i in range(k):
                        a = bounds[chosen[i]]
                        b = bounds[chosen[i + 1]]
                        _, kinds[i], ang, lx, ly = _best_line(p, a, b, theta, dirs, sigma2, angle_penalty, diag_penalty)
                        lines[i, 0] = ang
                        lines[i, 1] = lx + mx
                        lines[i, 2] = ly + my
                        other, share = _main_neighbour(nb, a, b) if unit.shape[0] > 1 else (0, 0.0)
                        if other > 0 and share >= SHARE_MIN:
                            kinds[i] = -1
                            e = _shared_line(store, lines_store, next_store, other, ang, lines[i, 1], lines[i, 2])
                            if e >= 0:
                                lines[i, 0] = lines_store[e, 0]
                                lines[i, 1] = lines_store[e, 1]
                                lines[i, 2] = lines_store[e, 2]
                            else:
                                lines_store[n_store, 0] = lines[i, 0]
                                lines_store[n_store, 1] = lines[i, 1]
                                lines_store[n_store, 2] = lines[i, 2]
                                # filed under this building's label, for any later neighbour
                                next_store[n_store] = store[lab]
                                store[lab] = n_store
                                shift[n_store] = np.nan
                                n_store += 1
                        if at_frame and _frame_wall(sx, sy, a, b, w, h, lines[i]):
                            kinds[i] = -1   # fixed, as a neighbour's line
                        ci = corner_idx[chosen[i]]
                        cidx[i] = ci
                        weight[i] = b - a
                        corners[i, 0] = cx[ci]
                        corners[i, 1] = cy[ci]
                    chamfer = max(CHAMFER_PIXELS, CHAMFER_SIGMAS * math.sqrt(sigma2))
                    _settle_walls(p, bounds, chosen, kinds, lines, corners, cx, cy, cidx, mx, my,
                                  theta, dirs, sigma2, corner_penalty, angle_penalty, diag_penalty, chamfer)
                    if sigma2 <= REFIT_SIGMA * REFIT_SIGMA:   # a clean mask's steps (noise makes runs too)
                        lines, corners, weight, cidx = _step_walls(
                            lines, corners, weight, cidx, kinds, sx, sy, cx, cy, bounds, chosen, chamfer,
                            lines_buf[1], corners_buf[1], weight_buf[1], cidx_buf[1])
                    no = _vertices(lines, corners, weight, cx, cy, cidx, chamfer, w, h, at_frame, out, no)
                if no - ring_start > 1 and abs(out[no - 1, 0] - out[ring_start, 0]) < 1e-6 \
                        and abs(out[no - 1, 1] - out[ring_start, 1]) < 1e-6:
                    no -= 1
                # the edges of a polygon on a clean mask are refitted (a noisy boundary
                # would drag them by its blobs; a circle has no edges to refit)
                refit = not use_circle and sigma2 <= REFIT_SIGMA * REFIT_SIGMA
                if _onto_frame(out, ring_start, no, w, h):
                    no = _clip_to_frame(out, ring_start, no, w, h)
                no = _clean(out, ring_start, no, math.radians(2.0))
                # keep the input ring's orientation (outer positive, holes negative shoelace
                # area), so the caller can orient all rings without a GEOS pass
                if no - ring_start >= 3:
                    a2 = 0.0
                    for i in range(ring_start, no):
                        j = ring_start if i + 1 == no else i + 1
                        a2 += out[i, 0] * out[j, 1] - out[j, 0] * out[i, 1]
                    if (r == r0 and a2 < 0.0) or (r > r0 and a2 > 0.0):
                        refit = False   # its vertices no longer run along its samples
                        for i in range((no - ring_start) // 2):
                            lo = ring_start + 1 + i
                            hi = no - 1 - i
                            if lo >= hi:
                                break
                            tx, ty = out[lo, 0], out[lo, 1]
                            out[lo, 0], out[lo, 1] = out[hi, 0], out[hi, 1]
                            out[hi, 0], out[hi, 1] = tx, ty
                # every edge onto its samples; the filed lines it reads are the build's,
                # and the neighbours it follows were built, so refitted, before
                if refit:
                    if no - ring_start >= acc.shape[1]:
                        acc = np.empty((11, 2 * (no - ring_start)), dtype=np.float64)
                    _refit_edges(out, ring_start, no, sx, sy, nb, w, h, lab, store, lines_store,
                                 next_store, done, shift, acc)
                ring_out[r, 0] = ring_start
                ring_out[r, 1] = no
            done[lab] = True
    # the rings in input order (a group is done when its first building comes)
    out_off = np.zeros(n_rings + 1, dtype=np.int64)
    for r in range(n_rings):
        out_off[r + 1] = out_off[r] + ring_out[r, 1] - ring_out[r, 0]
    xy_out = np.empty((out_off[n_rings], 2), dtype=np.float64)
    for r in range(n_rings):
        xy_out[out_off[r]:out_off[r + 1]] = out[ring_out[r, 0]:ring_out[r, 1]]
    return xy_out, out_off, theta_out
