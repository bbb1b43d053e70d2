"""Building instances and their pixel-exact boundary rings, for a whole tile in two passes.

``label_instances`` splits a mask into 4-connected building instances with a union-find
over horizontal runs (a run: consecutive pixels of one row joined left to right), so the
union-find holds one entry per run, not per pixel. Two neighbouring pixels join only when
their input ids are equal (a binary mask has one id; an instance raster keeps its
instances apart) and, when an nDSM is given, when their heights differ by at most
``max_step``: a roof-height jump is a wall, so terraced houses of different heights come
out as separate buildings. ``absorb_small_pieces`` merges the specks such jumps cut off a
roof (stereo noise along walls) back into it.

``trace_rings`` follows the cracks between pixels (the boundary edges of every label at
once) and returns every ring as its corner vertices, in pixel-corner coordinates
(x = column, y = row, y down). Each directed crack edge has its owning pixel on its right;
at a saddle vertex (two pixels of the label touching only diagonally) the trace turns right
and hugs the pixel it walks around, which matches the 4-connectivity of the labels. In
these y-down coordinates outer rings have positive shoelace area and holes negative.
"""

import numba
import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros


@numba.njit(cache=True)
def _find(parent, i):
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:
        nxt = parent[i]
        parent[i] = root
        i = nxt
    return root


@numba.njit(cache=True)
def _union(parent, a, b):
    ra = _find(parent, a)
    rb = _find(parent, b)
    if ra < rb:
        parent[rb] = ra
    elif rb < ra:
        parent[ra] = rb


@numba.njit(cache=True)
def _joins(ids, heights, use_h, max_step, r0, c0, r1, c1):
    """Whether neighbouring pixels (r0, c0) and (r1, c1) belong to one instance."""
    if ids[r0, c0] != ids[r1, c1]:
        return False
    return not use_h or not (abs(heights[r0, c0] - heights[r1, c1]) > max_step)


@numba.njit(cache=True)
def _count_runs(ids, heights, use_h, max_step, row_runs):
    """Number of horizontal runs (see ``label_instances``), per row into ``row_runs``, and
    the smallest and largest id (the caller checks the mask with them: no separate pass).
    Without heights the loop is branch-free (vectorized: about memory speed; the min/max
    in the row's own dtype cost nothing more)."""
    h, w = ids.shape
    n = 0
    lo = np.int64(0)
    hi = np.int64(0)
    if w == 0:
        row_runs[:] = 0
        return n, lo, hi
    for r in range(h):
        row = ids[r]
        k = 1 if row[0] > 0 else 0
        rlo = row[0]
        rhi = row[0]
        if use_h:
            for c in range(1, w):
                if row[c] > 0 and not _joins(ids, heights, use_h, max_step, r, c - 1, r, c):
                    k += 1
                v = row[c]
                rlo = min(rlo, v)
                rhi = max(rhi, v)
        else:
            for c in range(1, w):
                v = row[c]
                k += (v > 0) & (v != row[c - 1])
                rlo = min(rlo, v)
                rhi = max(rhi, v)
        row_runs[r] = k
        n += k
        lo = min(lo, np.int64(rlo))
        hi = max(hi, np.int64(rhi))
    return n, lo, hi


@numba.njit(cache=True)
def _label_plain(ids, row_runs, cap):
    """``label_instances`` without heights, run by run: the runs of a row are found from a
    byte mask of where the value changes, scanned eight columns at a time (most words are
    zero), and joined to the overlapping runs of the row above with equal id by a merge
    of the two sorted run lists; pixels are written once, with their final label."""
    h, w = ids.shape
    labels = np.zeros((h, w), dtype=np.int32)
    nw = (w + 1 + 7) // 8
    buf = np.zeros(8 * nw, dtype=np.uint8)
    words = buf.view(np.uint64)
    parent = np.empty(cap, dtype=np.int64)
    run_source = np.empty(cap, dtype=np.int64)
    run_pos = np.empty((cap, 3), dtype=np.int64)   # row, first column, end column
    n_runs = 0
    prev_first = 0      # runs of the previous non-empty row: prev_first..prev_end
    prev_end = 0
    prev_row = -2
    for r in range(h):
        if row_runs[r] == 0:
            continue
        row = ids[r]
        buf[0] = row[0] != 0
        for c in range(1, w):
            buf[c] = row[c] != row[c - 1]
        buf[w] = row[w - 1] != 0
        first = n_runs
        start = -1          # start column of the open segment, if its value > 0
        for k in range(nw):
            word = words[k]
            while word != 0:   # each marked byte holds 1: its lowest bit locates it
                c = 8 * k + (trailing_zeros(word) >> 3)
                word &= word - np.uint64(1)
                if start >= 0:              # close the open run at c
                    run_pos[n_runs - 1, 2] = c
                    start = -1
                if c < w and row[c] > 0:    # open a run at c
                    parent[n_runs] = n_runs
                    run_source[n_runs] = row[c]
                    run_pos[n_runs, 0] = r
                    run_pos[n_runs, 1] = c
                    n_runs += 1
                    start = c
        for k in range(8 * nw):
            buf[k] = 0
        # join with the overlapping runs of the row above that have the same id
        if prev_row == r - 1:
            a = prev_first
            for b in range(first, n_runs):
                b0, b1 = run_pos[b, 1], run_pos[b, 2]
                while a < prev_end and run_pos[a, 2] <= b0:
                    a += 1
                q = a
                while q < prev_end and run_pos[q, 1] < b1:
                    if run_source[q] == run_source[b]:
                        _union(parent, b, q)
                    q += 1
        prev_first = first
        prev_end = n_runs
        prev_row = r
    return _write_labels(labels, parent, run_source, run_pos, n_runs)


@numba.njit(cache=True)
def _write_labels(labels, parent, run_source, run_pos, n_runs):
    """Number the union-find roots of the runs 1..n in run order (raster order of each
    component's first pixel), write each run's number over its pixels in ``labels`` and
    return ``(labels, source_id)`` (``source_id[k]``: the input id of component k)."""
    root_label = np.zeros(n_runs, dtype=np.int32)
    source = np.zeros(n_runs + 1, dtype=np.int64)
    n = 0
    for k in range(n_runs):
        root = _find(parent, k)
        if root_label[root] == 0:
            n += 1
            root_label[root] = n
            source[n] = run_source[k]
        # a slice fill of a local value: the compiler cannot tell ``labels`` and
        # ``root_label`` apart, so reading root_label[root] per pixel kept it scalar
        labels[run_pos[k, 0], run_pos[k, 1]:run_pos[k, 2]] = root_label[root]
    return labels, source[: n + 1].copy()


@numba.njit(cache=True)
def label_instances(ids, heights, max_step):
    """4-connected components of ``ids > 0`` that never join different ids or height jumps.

    ``ids`` is any integer array; ``heights`` an nDSM of the same shape, or an empty (0, 0)
    array for none; NaN heights never block a join. Returns ``(labels, source_id)``:
    ``labels`` (int32) numbers the components 1..n in raster order of their first pixel,
    ``source_id[k]`` is the input id of component k (index 0 unused).
    """
    labels, source, _, _, _ = _label(ids, heights, max_step)
    return labels, source


@numba.njit(cache=True)
def absorb_small_pieces(labels, source, min_px):
    """``labels`` (as from :func:`label_instances`) with every component of fewer than
    ``min_px`` pixels merged into the 4-adjacent component of the same source id with which
    it shares the most pixel edges (ties: the larger component, then the lower label);
    a small component without such a neighbour stays as it is.

    Height jumps in a stereo nDSM (noise along walls, a chimney, a blunder) cut specks off
    a roof that are no buildings: merged back, they neither come out as buildings of their
    own nor leave notches in the roof they belong to. Returns new int32 labels, numbered
    1..m in raster order of each component's first pixel, and their source ids.
    """
    h, w = labels.shape
    n = source.shape[0] - 1
    size = np.zeros(n + 1, dtype=np.int64)
    for r in range(h):
        for c in range(w):
            size[labels[r, c]] += 1
    # (small component, neighbour) pairs, once per shared pixel edge: counted, then filled
    n_pairs = 0
    for fill in range(2):
        if fill == 1:
            small = np.empty(n_pairs, dtype=np.int64)
            other = np.empty(n_pairs, dtype=np.int64)
            n_pairs = 0
        for r in range(h):
            for c in range(w):
                a = labels[r, c]
                if a == 0:
                    continue
                for dr, dc in ((0, 1), (1, 0)):
                    if r + dr >= h or c + dc >= w:
                        continue
                    b = labels[r + dr, c + dc]
                    if b == 0 or b == a or source[a] != source[b]:
                        continue
                    for s, o in ((a, b), (b, a)):
                        if size[s] < min_px:
                            if fill == 1:
                                small[n_pairs] = s
                                other[n_pairs] = o
                            n_pairs += 1
    # each small component's best neighbour, from its pairs sorted into runs
    order = np.argsort(small * (n + 1) + other, kind="mergesort")
    best = np.zeros(n + 1, dtype=np.int64)
    best_count = np.zeros(n + 1, dtype=np.int64)
    k = 0
    while k < n_pairs:
        s, o = small[order[k]], other[order[k]]
        count = 0
        while k < n_pairs and small[order[k]] == s and other[order[k]] == o:
            count += 1
            k += 1
        b = best[s]
        if (count > best_count[s] or (count == best_count[s]
                                      and (size[o] > size[b] or (size[o] == size[b] and o < b)))):
            best[s] = o
            best_count[s] = count
    parent = np.arange(n + 1)
    for s in range(1, n + 1):
        if best[s] > 0:
            _union(parent, s, best[s])
    # a group's root is its lowest label, whose first pixel comes first in raster order
    new_label = np.zeros(n + 1, dtype=np.int32)
    new_source = np.zeros(n + 1, dtype=np.int64)
    m = 0
    for k in range(1, n + 1):
        root = _find(parent, k)
        if root == k:
            m += 1
            new_label[k] = m
            new_source[m] = source[k]
        else:
            new_label[k] = new_label[root]
    out = np.empty((h, w), dtype=np.int32)
    for r in range(h):
        for c in range(w):
            out[r, c] = new_label[labels[r, c]]
    return out, new_source[: m + 1].copy()


@numba.njit(cache=True)
def _label(ids, heights, max_step):
    """``label_instances``, also returning the number of runs of each row (0: a row
    without buildings) and the smallest and largest id, all from the same passes."""
    h, w = ids.shape
    use_h = heights.shape[0] == h and heights.shape[1] == w
    # exact sizes up front: arrays regrown inside the scan would slow every iteration
    row_runs = np.empty(h, dtype=np.int64)
    cap, lo, hi = _count_runs(ids, heights, use_h, max_step, row_runs)
    labels, source = _label_counted(ids, heights, use_h, max_step, row_runs, cap)
    return labels, source, row_runs, lo, hi


@numba.njit(cache=True)
def _label_counted(ids, heights, use_h, max_step, row_runs, cap):
    """``label_instances`` once ``_count_runs`` has counted the runs: ``(labels, source)``."""
    h, w = ids.shape
    if not use_h and w > 0:
        return _label_plain(ids, row_runs, cap)
    labels = np.zeros((h, w), dtype=np.int32)   # first the run index + 1 of each pixel
    parent = np.empty(cap, dtype=np.int64)
    run_source = np.empty(cap, dtype=np.int64)
    run_pos = np.empty((cap, 3), dtype=np.int64)   # row, first column, end column
    n_runs = 0
    for r in range(h):
        if row_runs[r] == 0:   # empty rows (most of a sparse tile) are not scanned again
            continue
        c = 0
        while c < w:
            if ids[r, c] <= 0:
                c += 1
                continue
            run = n_runs
            parent[run] = run
            run_source[run] = ids[r, c]
            run_pos[run, 0] = r
            run_pos[run, 1] = c
            n_runs += 1
            joined = 0   # the run above last joined to this one (run index + 1)
            while True:
                labels[r, c] = run + 1
                above = labels[r - 1, c] if r > 0 else 0
                if above > 0 and above != joined and _joins(ids, heights, use_h, max_step, r, c, r - 1, c):
                    _union(parent, run, above - 1)
                    joined = above
                c += 1
                if c >= w or not _joins(ids, heights, use_h, max_step, r, c - 1, r, c):
                    break
            run_pos[run, 2] = c
    # runs come in raster order, so numbering roots at their first run numbers the
    # components in raster order of their first pixel; only run pixels are rewritten
    return _write_labels(labels, parent, run_source, run_pos, n_runs)


@numba.njit(cache=True)
def _grow(a, n):
    """``a`` with room for twice as many rows, its first ``n`` rows kept."""
    b = np.empty((2 * a.shape[0],) + a.shape[1:], dtype=a.dtype)
    b[:n] = a[:n]
    return b


@numba.njit(cache=True)
def _trace_one(labels, x0, y0, lab, xy, nv, top_seen):
    """Trace the ring of ``lab`` that starts with the east-going crack at (x0, y0), its
    corners written to ``xy`` from row ``nv``. Returns (new nv, signed area), or (-1, 0)
    when ``xy`` ran full (the caller grows it and traces the ring again)."""
    # around vertex (x, y): A = pixel (y-1, x-1), B = (y-1, x), C = (y, x-1), D = (y, x).
    # The crack leaving east has D on its right (owner) and B on its left; south: C and D;
    # west: A and C; north: B and A.
    h, w = labels.shape
    cap = xy.shape[0]
    x, y, d = x0, y0, 0
    area2 = 0.0
    px, py = x0, y0   # previous corner, for the shoelace area
    while True:
        # walk straight while the crack ahead goes on: the pixel just walked along is
        # ``lab``; turn right where the crack there is an edge (hug the owning pixel,
        # which keeps labels 4-connected at saddles), else go straight, else left. Of
        # the other three pixels around a vertex only the two that decide are read.
        if d == 0:      # walked along C; D ahead, B across
            x += 1
            while x < w and labels[y, x] == lab and not (y > 0 and labels[y - 1, x] == lab):
                x += 1
            nd = 1 if not (x < w and labels[y, x] == lab) else 3
        elif d == 1:    # walked along A; C ahead, D across
            y += 1
            while y < h and labels[y, x - 1] == lab and not (x < w and labels[y, x] == lab):
                y += 1
            nd = 2 if not (y < h and labels[y, x - 1] == lab) else 0
        elif d == 2:    # walked along B; A ahead, C across
            x -= 1
            while x > 0 and labels[y - 1, x - 1] == lab and not (y < h and labels[y, x - 1] == lab):
                x -= 1
            nd = 3 if not (x > 0 and labels[y - 1, x - 1] == lab) else 1
        else:           # walked along D; B ahead, A across
            y -= 1
            while y > 0 and labels[y - 1, x] == lab and not (x > 0 and labels[y - 1, x - 1] == lab):
                y -= 1
            nd = 0 if not (y > 0 and labels[y - 1, x] == lab) else 2
        if nv == cap:
            return -1, 0.0
        xy[nv, 0] = x
        xy[nv, 1] = y
        nv += 1
        area2 += px * y - x * py
        px, py = x, y
        if nd == 0:     # an east-going run of cracks starts here (see _mark_starts)
            top_seen[y, x >> 6] |= np.uint64(1) << np.uint64(x & 63)
            if x == x0 and y == y0:
                break
        d = nd
    return nv, 0.5 * area2


@numba.njit(cache=True)
def _mark_starts(labels, y0, buf):
    """``buf[x] = 1`` where a run of east-going cracks on top of row ``y0`` begins at
    pixel (y0, x): the pixel is labelled, the one above is not the same label, and the
    pixel to the left is not such a pixel of the same label. A ring that walks east along
    a run walks all of it, so only where a run begins may a ring start that was not
    traced yet (:func:`_trace_one` marks those). Vectorized; returns whether any is set."""
    row = labels[y0]
    w = row.shape[0]
    if w == 0:
        return False
    any_set = 0
    if y0 == 0:
        v = row[0] != 0
        buf[0] = v
        any_set |= v
        for x in range(1, w):
            v = (row[x] != 0) & (row[x] != row[x - 1])
            buf[x] = v
            any_set |= v
    else:
        above = labels[y0 - 1]
        v = (row[0] != 0) & (row[0] != above[0])
        buf[0] = v
        any_set |= v
        for x in range(1, w):
            v = ((row[x] != 0) & (row[x] != above[x])
                 & ((row[x] != row[x - 1]) | (row[x - 1] == above[x - 1])))
            buf[x] = v
            any_set |= v
    return any_set != 0


@numba.njit(cache=True)
def _scan_row(labels, y0, x_start, buf, words, xy, nv, offsets, ring_label, ring_area, ring_start, nr,
              top_seen):
    """Trace the rings starting on row ``y0`` from column ``x_start`` at the columns marked
    in ``buf`` (viewed as 64-bit ``words``: eight columns at a time, the marked ones found
    by their bits, not by testing each column).
    Returns ``(nv, nr, x)``: ``x`` is the row width when done, else the column where an
    output array ran full (grow them and call again from there)."""
    w = labels.shape[1]
    k0 = x_start // 8
    for k in range(k0, words.shape[0]):
        word = words[k]
        if k == k0:   # resuming: drop the marks left of x_start
            word &= ~((np.uint64(1) << np.uint64(8 * (x_start - 8 * k0))) - np.uint64(1))
        while word != 0:   # each marked byte holds 1: its lowest bit locates it
            x0 = 8 * k + (trailing_zeros(word) >> 3)
            word &= word - np.uint64(1)
            if top_seen[y0, x0 >> 6] & (np.uint64(1) << np.uint64(x0 & 63)):
                continue
            lab = labels[y0, x0]
            if nr + 1 == ring_label.shape[0]:
                return nv, nr, x0
            end, area = _trace_one(labels, x0, y0, lab, xy, nv, top_seen)
            if end < 0:
                # traced again from here after growing
                top_seen[y0, x0 >> 6] &= ~(np.uint64(1) << np.uint64(x0 & 63))
                return nv, nr, x0
            nv = end
            offsets[nr + 1] = nv
            ring_label[nr] = lab
            ring_area[nr] = area
            ring_start[nr] = y0 * w + x0
            nr += 1
    return nv, nr, w


@numba.njit(cache=True)
def trace_rings(labels):
    """All boundary rings of all labels.

    Returns ``(xy, ring_offsets, ring_label, ring_area)``: corner vertices ``xy`` (k, 2)
    float64 without the closing repeat, ring i is ``xy[ring_offsets[i]:ring_offsets[i+1]]``,
    its label and its signed area in pixels (> 0 outer, < 0 hole). Rings come in raster
    order of their top-left crack.

    Every ring has an east-going crack on top of one of its pixels (the pixel above is
    another label), so ring starts are looked for only there: a vectorized pass marks
    those pixels of a row and the marks are scanned eight at a time (the empty rows of a
    sparse tile and the interior rows of buildings have none). Output arrays grow by
    doubling outside the scan loops (arrays reassigned inside a loop keep Numba from
    vectorizing it).
    """
    xy, offsets, ring_label, ring_area, _ = _trace(labels, np.arange(labels.shape[0]))
    return xy.copy(), offsets.copy(), ring_label.copy(), ring_area.copy()


@numba.njit(cache=True)
def _trace(labels, rows):
    """``trace_rings`` looking for ring starts on ``rows`` only (increasing; every row
    with a labelled pixel must be in it), also returning each ring's start pixel (flat
    index ``row * w + column``: a pixel of the ring's label, its top crack on the ring).
    The arrays are views of the grown buffers, not copies: the callers gather the kept
    rings into arrays of their own anyway."""
    h, w = labels.shape
    xy = np.empty((1024, 2), dtype=np.float64)
    offsets = np.zeros(65, dtype=np.int64)
    ring_label = np.zeros(64, dtype=np.int32)
    ring_area = np.zeros(64, dtype=np.float64)
    ring_start = np.zeros(64, dtype=np.int64)
    # runs of east-going cracks already traced, marked at their first crack: one bit per
    # crack (a byte each made the tile's largest scratch array)
    top_seen = np.zeros((h + 1, (w + 64) // 64), dtype=np.uint64)
    nw = (w + 7) // 8
    buf = np.zeros(8 * nw, dtype=np.uint8)
    words = buf.view(np.uint64)
    nv = 0
    nr = 0
    for y0 in rows:
        if not _mark_starts(labels, y0, buf):
            continue
        x = 0
        while True:
            nv, nr, x = _scan_row(labels, y0, x, buf, words, xy, nv, offsets, ring_label, ring_area,
                                  ring_start, nr, top_seen)
            if x == w:
                break
            xy, offsets, ring_label, ring_area = _grow_all(xy, nv, offsets, ring_label, ring_area, nr)
            ring_start = _grow(ring_start, nr)
    return xy[:nv], offsets[: nr + 1], ring_label[:nr], ring_area[:nr], ring_start[:nr]


@numba.njit(cache=True)
def _grow_all(xy, nv, offsets, ring_label, ring_area, nr):
    """All output arrays of ``trace_rings`` with twice the room."""
    return _grow(xy, nv), _grow(offsets, nr + 1), _grow(ring_label, nr), _grow(ring_area, nr)


@numba.njit(cache=True)
def polygonize_ids(ids, heights, max_step, min_area_px, min_hole_px):
    """Building instances of an id raster as boundary rings, in one compiled call.

    Labels ``ids`` as :func:`label_instances` does, traces the rings on the rows that hold
    buildings only (a sparse tile's empty rows are read once, by the run count) and keeps
    the buildings of at least ``min_area_px`` pixels and their holes of at least
    ``min_hole_px``. An id raster with ids above 1 is an instance raster: an instance in
    several pieces keeps its largest (ties: the first in raster order) and buildings keep
    their input id; a binary one numbers its buildings 1..n in raster order.

    Returns ``(labels, lo, hi, xy, ring_offsets, building_offsets, building_id, area_px,
    cut, building_label)``: the label raster, the smallest and largest input id, the kept
    rings (building b owns rings ``building_offsets[b]:building_offsets[b+1]``, its outer
    ring first, holes in raster order; ring r is ``xy[ring_offsets[r]:ring_offsets[r+1]]``),
    each building's id, pixel area (outer less kept holes), whether it touches the raster
    border and its label in ``labels``.
    """
    labels, source, row_runs, lo, hi = _label(ids, heights, max_step)
    xy, offsets, ring_label, ring_area, _ = _trace(labels, np.nonzero(row_runs)[0])
    return (labels, lo, hi) + _select_rings(xy, offsets, ring_label, ring_area, source, labels,
                                            min_area_px, min_hole_px, hi > 1)


@numba.njit(cache=True)
def polygonize_instances(ids, min_area_px, min_hole_px):
    """``polygonize_ids`` of an int32 id raster without heights, tracing the ids
    themselves instead of a label raster when the raster is an instance raster (ids above
    1, none negative, none so large that a table indexed by id outgrows a label raster).

    The boundaries of the 4-connected pieces of the ids are those of the ids, so the rings
    are traced on ``ids``; each outer ring is a piece, and they come in raster order of
    the pieces' first pixels, the order in which the labelling numbers them. Usually
    ``ids`` is the label raster (not copied: no full-size label raster is zeroed and
    filled). Only when some piece other than its id's largest (by its outer ring) could
    be seen by a building across a crack, or could hold a hole (a split instance), is the
    label raster a copy of ``ids`` in which every lesser piece gets a label of its own
    above the largest id, by a flood fill of that piece only; otherwise the lesser pieces
    (noise specks apart from all) keep their id. Each hole ring belongs to the piece of
    its start pixel. Labels are only compared (by the regularizer too), so any one-to-one
    numbering of the pieces serves; the rings, their order and the buildings are those of
    ``polygonize_ids``, and each building's label is that of its piece here.
    The first pass over the raster only finds the id range and the rows with buildings; a
    binary mask (or one this does not take) is then labelled as ``polygonize_ids`` does.
    """
    h, w = ids.shape
    row_any = np.empty(h, dtype=np.bool_)
    lo, hi = _id_range(ids, row_any)
    rows = np.nonzero(row_any)[0]
    if not (lo >= 0 and 1 < hi <= (h * w) // 2):
        no_heights = np.zeros((0, 0))
        row_runs = np.empty(h, dtype=np.int64)
        cap = _count_runs(ids, no_heights, False, 0.0, row_runs)[0]
        labels, source = _label_counted(ids, no_heights, False, 0.0, row_runs, cap)
        xy, offsets, ring_label, ring_area, _ = _trace(labels, rows)
        return (labels, lo, hi) + _select_rings(xy, offsets, ring_label, ring_area, source, labels,
                                                min_area_px, min_hole_px, hi > 1)
    xy, offsets, ring_label, ring_area, ring_start = _trace(ids, rows)
    n_rings = ring_label.shape[0]
    # pieces in outer-ring order: 1..n; the piece of an id with the largest outer ring
    # keeps the id as its label (the others, specks mostly, are filled with new labels)
    keeper = np.zeros(hi + 1, dtype=np.int64)
    keeper_area = np.zeros(hi + 1, dtype=np.float64)
    source = np.zeros(n_rings + 1, dtype=np.int64)
    n = 0
    for i in range(n_rings):
        if ring_area[i] > 0.0:
            v = ring_label[i]
            n += 1
            source[n] = v
            if ring_area[i] > keeper_area[v]:
                keeper[v] = n
                keeper_area[v] = ring_area[i]
    # the other pieces need labels of their own only if a building may see them across a
    # crack (a labelled pixel across their boundary) or a hole of their id may be theirs
    # (a piece holds a hole only if it rings a pixel: 9 pixels inside its outer ring at
    # least). Otherwise (specks of noise, apart) they keep the id: no copy.
    has_hole = np.zeros(hi + 1, dtype=np.bool_)
    for i in range(n_rings):
        if ring_area[i] < 0.0:
            has_hole[ring_label[i]] = True
    piece_label = source[:n + 1].copy()
    extra = 0
    relabel = False
    q = 0
    for i in range(n_rings):
        if ring_area[i] > 0.0:
            q += 1
            if keeper[source[q]] != q:
                extra += 1
                piece_label[q] = hi + extra
                relabel |= ((has_hole[source[q]] and ring_area[i] >= 9.0)
                            or _touches(ids, xy, offsets[i], offsets[i + 1]))
    labels = ids
    if relabel:
        labels = ids.copy()
        stack = np.empty(64, dtype=np.int64)
        q = 0
        for i in range(n_rings):
            if ring_area[i] > 0.0:
                q += 1
                if piece_label[q] != source[q]:
                    stack = _fill(labels, ring_start[i], source[q], piece_label[q], stack)
    else:
        piece_label[:] = source[:n + 1]
    # each ring's piece: outer rings in order, holes by their start pixel's label (then
    # one-to-one: a hole's id is one piece or its pieces were relabelled)
    piece_of = np.zeros(hi + extra + 1, dtype=np.int64)
    for q in range(1, n + 1):
        if piece_label[q] != source[q] or keeper[source[q]] == q:
            piece_of[piece_label[q]] = q
    ring_piece = np.empty(n_rings, dtype=np.int64)
    q = 0
    for i in range(n_rings):
        if ring_area[i] > 0.0:
            q += 1
            ring_piece[i] = q
        else:
            s = ring_start[i]
            ring_piece[i] = piece_of[labels[s // w, s % w]]
    xy_out, ring_off, b_off, b_id, b_area, b_cut, b_piece = _select_rings(
        xy, offsets, ring_piece, ring_area, source[:n + 1], labels, min_area_px, min_hole_px, True)
    b_label = np.empty(b_piece.shape[0], dtype=np.int64)
    for b in range(b_piece.shape[0]):
        b_label[b] = piece_label[b_piece[b]]
    return labels, lo, hi, xy_out, ring_off, b_off, b_id, b_area, b_cut, b_label


@numba.njit(cache=True)
def _id_range(ids, row_any):
    """The smallest and largest id (0 included) and, into ``row_any``, whether each row
    holds a nonzero id: a min/max pass (vectorized; half the work of counting runs)."""
    h, w = ids.shape
    lo = np.int64(0)
    hi = np.int64(0)
    for r in range(h):
        row = ids[r]
        rlo = row.dtype.type(0)
        rhi = row.dtype.type(0)
        for c in range(w):
            rlo = min(rlo, row[c])
            rhi = max(rhi, row[c])
        row_any[r] = (rlo != 0) | (rhi != 0)
        lo = min(lo, np.int64(rlo))
        hi = max(hi, np.int64(rhi))
    return lo, hi


@numba.njit(cache=True)
def _touches(ids, xy, i0, i1):
    """Whether a labelled pixel lies across a crack of the ring ``xy[i0:i1]`` (corners;
    the owning pixels on the right, as traced)."""
    h, w = ids.shape
    for i in range(i0, i1):
        j = i + 1 if i + 1 < i1 else i0
        x0, y0, x1, y1 = int(xy[i, 0]), int(xy[i, 1]), int(xy[j, 0]), int(xy[j, 1])
        if y0 == y1:   # along +x the pixels across are row y - 1, along -x row y
            r = y0 - 1 if x1 > x0 else y0
            if 0 <= r < h:
                for c in range(max(min(x0, x1), 0), min(max(x0, x1), w)):
                    if ids[r, c] != 0:
                        return True
        else:          # along +y column x, along -y column x - 1
            c = x0 if y1 > y0 else x0 - 1
            if 0 <= c < w:
                for r in range(max(min(y0, y1), 0), min(max(y0, y1), h)):
                    if ids[r, c] != 0:
                        return True
    return False


@numba.njit(cache=True)
def _fill(labels, start, old, new, stack):
    """Relabel the 4-connected piece of value ``old`` holding the flat pixel ``start`` to
    ``new``; ``stack``: scratch, grown when full and returned."""
    h, w = labels.shape
    labels[start // w, start % w] = new
    stack[0] = start
    top = 1
    while top:
        top -= 1
        p = stack[top]
        r, c = p // w, p % w
        for q in range(4):
            rr, cc = (r - 1, c) if q == 0 else (r + 1, c) if q == 1 else (r, c - 1) if q == 2 else (r, c + 1)
            if 0 <= rr < h and 0 <= cc < w and labels[rr, cc] == old:
                labels[rr, cc] = new
                if top == stack.shape[0]:
                    stack = _grow(stack, top)
                stack[top] = rr * w + cc
                top += 1
    return stack


@numba.njit(cache=True)
def _select_rings(xy, offsets, ring_label, ring_area, source, labels, min_area_px, min_hole_px,
                  one_piece):
    """The kept buildings and rings of ``polygonize_ids``, gathered by label (counting
    sort: the rings come in raster order, so a label's outer ring, which starts at its
    first pixel, comes before its holes)."""
    n_labels = source.shape[0] - 1
    n_rings = ring_label.shape[0]
    area = np.zeros(n_labels + 1)
    for i in range(n_rings):
        area[ring_label[i]] += ring_area[i]
    keep = area >= min_area_px
    keep[0] = False
    if one_piece:   # the largest piece of each input id
        order = np.argsort(source[1:], kind="mergesort") + 1   # stable: label order in a tie
        j = 0
        while j < n_labels:
            best = order[j]
            q = j + 1
            while q < n_labels and source[order[q]] == source[best]:
                if area[order[q]] > area[best]:
                    best = order[q]
                q += 1
            for t in range(j, q):
                if order[t] != best:
                    keep[order[t]] = False
            j = q
    # kept rings per label, then each ring's slot in label order
    count = np.zeros(n_labels + 1, dtype=np.int64)
    kept = np.zeros(n_rings, dtype=np.bool_)
    for i in range(n_rings):
        lab = ring_label[i]
        if keep[lab] and (ring_area[i] > 0 or -ring_area[i] >= min_hole_px):
            kept[i] = True
            count[lab] += 1
    first_slot = np.zeros(n_labels + 2, dtype=np.int64)
    for k in range(n_labels + 1):
        first_slot[k + 1] = first_slot[k] + count[k]
    n_out = first_slot[n_labels + 1]
    slot_ring = np.empty(n_out, dtype=np.int64)
    fill = first_slot[:-1].copy()
    for i in range(n_rings):
        if kept[i]:
            slot_ring[fill[ring_label[i]]] = i
            fill[ring_label[i]] += 1
    ring_off = np.zeros(n_out + 1, dtype=np.int64)
    for j in range(n_out):
        i = slot_ring[j]
        ring_off[j + 1] = ring_off[j] + offsets[i + 1] - offsets[i]
    xy_out = np.empty((ring_off[n_out], 2), dtype=np.float64)
    for j in range(n_out):
        i = slot_ring[j]
        xy_out[ring_off[j]:ring_off[j + 1]] = xy[offsets[i]:offsets[i + 1]]
    # buildings: the kept labels in order
    h, w = labels.shape
    n_b = 0
    for k in range(1, n_labels + 1):
        n_b += keep[k]
    b_off = np.zeros(n_b + 1, dtype=np.int64)
    b_id = np.empty(n_b, dtype=np.int64)
    b_area = np.zeros(n_b)
    b_cut = np.empty(n_b, dtype=np.bool_)
    b_label = np.empty(n_b, dtype=np.int64)
    b = 0
    for k in range(1, n_labels + 1):
        if not keep[k]:
            continue
        b_off[b + 1] = b_off[b] + count[k]
        for j in range(first_slot[k], first_slot[k + 1]):
            b_area[b] += ring_area[slot_ring[j]]
        b_id[b] = source[k] if one_piece else b + 1
        # on the border iff its outer ring has a corner there (no scan of the raster's
        # edge columns, one cache line per row)
        outer = xy_out[ring_off[first_slot[k]]:ring_off[first_slot[k] + 1]]
        cut = False
        for v in range(outer.shape[0]):
            cut |= (outer[v, 0] == 0) | (outer[v, 0] == w) | (outer[v, 1] == 0) | (outer[v, 1] == h)
        b_cut[b] = cut
        b_label[b] = k
        b += 1
    return xy_out, ring_off, b_off, b_id, b_area, b_cut, b_label
