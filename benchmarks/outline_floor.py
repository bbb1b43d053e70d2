"""The floor of footprint figures from a 0.5 m mask: oracles that know more than the mask.

A mask keeps a pixel when its centre is inside the building, so a wall along the pixel
axes is only known to within a pixel: its position is off by up to ±0.25 m, and near a
corner that offset turns a 1 m MTA piece by up to atan(0.25 / 1) ≈ 14°. The same holds,
less, for any wall whose slope is a ratio of small integers (a digital straight line of
slope p/q repeats every q pixels and fixes the line only to within 1/sqrt(p² + q²) px
across: ±0.18 m at 45°, ±0.11 m at 1:2); other oblique walls are averaged over their
staircase and known far better. Per wall class the oracle's mean offset error is given
(``abs_offset_err_mean_{axis,diagonal,other}_walls``, m) and, per polygon class, the MTA of
ours and of the oracle (``axis_aligned``: every wall within 1° of a pixel axis). To tell how much
of the acceptance (MTA ≤ 8°, N-ratio 0.9–1.2) any method can reach from the mask, each
data set of ``outline_vs_buildingregulariser.py`` is scored, with the same
:func:`lod3d.evaluate.footprint_metrics` against the same :func:`mask_reference` truth, for:

1. **topology oracle** — the truth's exact vertices and wall directions; only each wall's
   offset is estimated from the mask: the mean (least squares with the direction fixed)
   of the normal coordinate of the mask's boundary samples nearest to that wall. The
   samples are the midpoints of the crack edges between the building's pixels and the
   rest; corners are the intersections of consecutive fitted walls. This is what a
   perfect regularizer could at best do from the data. Variant ``oracle_min1px``: walls
   shorter than one pixel are dropped first (the walls they joined are intersected, or
   merged when parallel — a jog), to see how much of the truth's vertex count no 0.5 m
   mask shows;
2. **jittered truth** — the truth polygons each translated by a random shift, uniform in
   ±0.25 m per axis (seeded): what a pure quantization-sized misplacement costs;
3. **our walls on true lines** — our own polygons with each edge moved onto the true
   wall it runs along (:func:`true_lines`): its true line (``ours_true_lines``), only its
   true offset with our direction (``ours_true_offsets``), or only the true direction
   through our edge's midpoint (``ours_true_directions``). Our vertex count and corners
   stay ours, so this splits what MTA loses between topology (which corners) and the
   placement of the walls (where their lines run);
4. **ours** — :class:`lod3d.outline.Outline` on the mask, with its per-polygon MTA:
   median, share above 8°, the polygons whose MTA exceeds the oracle's by more than 3°,
   and the ten worst (``truth``: index in the set's truth list), each marked
   ``quantization`` (the oracle is at 8° or worse on it too) or ``ours-only``.

Usage (about 15 s of CPU; ``--plot`` draws truth / oracle / ours over the mask for
the three worst buildings of ``--plot-set``)::

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/outline_floor.py \
        --scene runs/base/s7/simulation --out runs/floor/floor.json --plot runs/floor/delft_worst.png
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import shapely
from affine import Affine

from lod3d.evaluate import footprint_metrics, mask_reference, match, mta
from lod3d.outline import Outline
from outline_vs_buildingregulariser import datasets

MAX_SAMPLE_DIST = 1.0      # m: a boundary sample farther from every wall is not that building's
ALONG_DEG = 10.0           # an edge of ours runs along a true wall this near in direction ...
ALONG_DIST = 1.0           # ... whose line passes this near (m) its midpoint ...
ALONG_SHARE = 0.3          # ... over at least this share of the shorter of the two
PARALLEL_DEG = 10.0        # consecutive walls closer than this in direction are not intersected
TARGET_MTA = 8.0           # degrees, the acceptance
WORSE_BY = 3.0             # degrees: ours worse than the oracle on a polygon by more than this
JITTER = 0.25              # m, half a pixel at 0.5 m


def crack_samples(inside: np.ndarray, transform) -> np.ndarray:
    """World coordinates (n, 2) of the midpoints of the crack edges between ``True`` and
    ``False`` cells of ``inside`` (cells beyond the array count as ``False``)."""
    pad = np.pad(inside, 1)
    r, c = np.nonzero(pad[:, :-1] != pad[:, 1:])         # vertical cracks at x = c
    x, y = c.astype(float), r - 0.5
    r, c = np.nonzero(pad[:-1, :] != pad[1:, :])         # horizontal cracks at y = r
    x, y = np.concatenate([x, c - 0.5]), np.concatenate([y, r.astype(float)])
    return np.column_stack(transform @ (x, y))


def _walls(poly) -> list[np.ndarray]:
    """The rings of a (multi)polygon as vertex arrays (m, 2), no closing repeat; wall i
    runs from vertex i to vertex i + 1 (cyclic)."""
    rings = []
    for part in shapely.get_parts(poly):
        for ring in [part.exterior, *part.interiors]:
            rings.append(np.asarray(ring.coords)[:-1])
    return rings


def _segment_distance(pts: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distances (n_pts, n_segments) from points to the segments a[j]–b[j]."""
    v = b - a
    vv = np.maximum((v * v).sum(1), 1e-18)
    t = np.clip(((pts[:, None, :] - a[None]) * v[None]).sum(2) / vv, 0.0, 1.0)
    return np.hypot(*(pts[:, None, :] - a[None] - t[..., None] * v[None]).transpose(2, 0, 1))


def _fit_ring(verts: np.ndarray, wall_pts: list, min_wall: float, stats: dict) -> np.ndarray:
    """Vertices of one ring rebuilt from fitted walls. ``wall_pts[i]``: the samples of wall
    i. Walls shorter than ``min_wall`` are dropped (not when fewer than three would be
    left); two walls made neighbours by a drop and within PARALLEL_DEG are one wall."""
    m = len(verts)
    seg = np.roll(verts, -1, axis=0) - verts
    length = np.hypot(*seg.T)
    keep = length >= min_wall
    if keep.sum() < 3:
        keep[:] = True
    stats["walls_dropped"] += int(m - keep.sum())
    # groups of original walls fitted as one line, in the direction of the longest member
    groups = [[i] for i in np.flatnonzero(keep)]
    if not keep.all():
        joined = []
        for g in groups:
            prev = joined[-1] if joined else None
            if prev is not None and _dropped_between(prev[-1], g[0], keep, m) and _parallel(seg, prev[0], g[0]):
                prev.extend(g)
                stats["jogs_merged"] += 1
            else:
                joined.append(g)
        if len(joined) > 1 and _dropped_between(joined[-1][-1], joined[0][0], keep, m) \
                and _parallel(seg, joined[-1][0], joined[0][0]):
            joined[0] = joined.pop() + joined[0]
            stats["jogs_merged"] += 1
        groups = joined if len(joined) >= 3 else groups
    lines = []                       # (normal, fitted offset, true start corner, direction)
    for g in groups:
        lead = max(g, key=lambda i: length[i])
        d = seg[lead] / length[lead]
        n = np.array([-d[1], d[0]])
        pts = np.concatenate([wall_pts[i] for i in g])
        if len(pts):
            c = float((pts @ n).mean())
            stats["offset_err"].append(c - float(verts[lead] @ n))
            fold = math.degrees(math.atan2(abs(d[1]), abs(d[0])))   # 0..90
            stats["wall_fold_deg"].append(min(fold, 90.0 - fold))     # 0: along a pixel axis, 45: diagonal
        else:                                           # shorter than a pixel, no sample: keep the truth line
            c = float(verts[lead] @ n)
            stats["walls_without_samples"] += 1
        lines.append((n, c, verts[g[0]], d))
    out = np.array([_corner(lines[k - 1], lines[k], stats) for k in range(len(lines))])
    # a short wall between walls at a shallow angle can come out reversed (its neighbours'
    # offset errors moved their intersections past each other): its two corners are then
    # the true corners moved onto the lines, as for near-parallel walls
    reversed_ = np.array([(out[(k + 1) % len(out)] - out[k]) @ lines[k][3] <= 0 for k in range(len(lines))])
    for k in np.flatnonzero(reversed_):
        stats["reversed_walls"] += 1
        for j in (k, (k + 1) % len(lines)):
            out[j] = _moved_corner(lines[j - 1], lines[j])
    return out


def _corner(prev, line, stats) -> np.ndarray:
    """Start of ``line`` = end of ``prev``: their intersection, or the moved true corner
    when they are near-parallel."""
    (n0, c0, _, _), (n1, c1, _, _) = prev, line
    if abs(n0[0] * n1[1] - n0[1] * n1[0]) >= math.sin(math.radians(PARALLEL_DEG)):
        return np.linalg.solve(np.array([n0, n1]), np.array([c0, c1]))
    stats["parallel_corners"] += 1
    return _moved_corner(prev, line)


def _moved_corner(prev, line) -> np.ndarray:
    """The true corner moved by the offset errors of both lines along their normals."""
    (n0, c0, _, _), (n1, c1, v, _) = prev, line
    return v + 0.5 * ((c0 - v @ n0) * n0 + (c1 - v @ n1) * n1)


def _dropped_between(i: int, j: int, keep: np.ndarray, m: int) -> bool:
    """Whether a dropped wall lies between walls i and j going forward around the ring."""
    return (j - i) % m > 1 and not keep[(i + 1) % m]


def _parallel(seg: np.ndarray, i: int, j: int) -> bool:
    """Whether walls i and j differ in direction by less than PARALLEL_DEG."""
    cross = abs(seg[i, 0] * seg[j, 1] - seg[i, 1] * seg[j, 0]) / (np.hypot(*seg[i]) * np.hypot(*seg[j]))
    return cross < math.sin(math.radians(PARALLEL_DEG))


def new_stats() -> dict:
    """Counters of the oracle's special cases, and its per-wall offset errors (m, signed
    along the wall's left normal) with the wall's angle to the nearest pixel axis."""
    return {"no_pixels": 0, "walls": 0, "walls_dropped": 0, "jogs_merged": 0, "walls_without_samples": 0,
            "parallel_corners": 0, "reversed_walls": 0, "samples_rejected": 0, "invalid_repaired": 0,
            "offset_err": [], "wall_fold_deg": []}


def building_cells(labels: np.ndarray, transform, poly):
    """``(window, window_transform, id)``: the cells of ``labels`` (an instance-id raster)
    around ``poly``, padded by MAX_SAMPLE_DIST, and the id most frequent among those whose
    centre is inside it; None when there are none."""
    inv = ~transform
    h, w = labels.shape
    x0, y0, x1, y1 = poly.bounds
    cols, rows = inv @ (np.array([x0, x1]), np.array([y0, y1]))
    pad = int(math.ceil(MAX_SAMPLE_DIST / abs(transform.a))) + 1
    c0, c1 = max(int(cols.min()) - pad, 0), min(int(math.ceil(cols.max())) + pad, w)
    r0, r1 = max(int(rows.min()) - pad, 0), min(int(math.ceil(rows.max())) + pad, h)
    win = labels[r0:r1, c0:c1]
    cc, rr = np.meshgrid(np.arange(c0, c1) + 0.5, np.arange(r0, r1) + 0.5)
    under = win[shapely.contains_xy(poly, *(transform @ (cc, rr)))]
    under = under[under > 0]
    if not under.size:
        return None
    ids, counts = np.unique(under, return_counts=True)
    return win, transform @ Affine.translation(c0, r0), ids[np.argmax(counts)]


def topology_oracle(labels: np.ndarray, transform, truth, min_wall: float = 0.0, stats: dict | None = None):
    """Per truth polygon (aligned): the topology oracle's polygon, or None when no cell of
    ``labels`` (an instance-id raster) has its centre inside it. The building's cells are
    those of the id most frequent under the polygon."""
    stats = new_stats() if stats is None else stats
    out = np.full(len(truth), None, dtype=object)
    for k, poly in enumerate(truth):
        cells = building_cells(labels, transform, poly)
        if cells is None:
            stats["no_pixels"] += 1
            continue
        win, win_transform, label = cells
        pts = crack_samples(win == label, win_transform)
        rings = _walls(poly)
        starts = np.concatenate(rings)
        ends = np.concatenate([np.roll(r, -1, axis=0) for r in rings])
        dist = _segment_distance(pts, starts, ends)
        owner = np.argmin(dist, axis=1)
        near = dist[np.arange(len(pts)), owner] <= MAX_SAMPLE_DIST
        stats["samples_rejected"] += int((~near).sum())
        stats["walls"] += len(starts)
        first = np.cumsum([0] + [len(r) for r in rings])
        fitted = []
        for j, verts in enumerate(rings):
            wall_pts = [pts[near & (owner == first[j] + i)] for i in range(len(verts))]
            fitted.append(_fit_ring(verts, wall_pts, min_wall, stats))
        # rings are given back per part: exterior first, its holes after, as _walls read them
        parts, r = [], 0
        for part in shapely.get_parts(poly):
            n_holes = len(part.interiors)
            parts.append(shapely.Polygon(fitted[r], fitted[r + 1:r + 1 + n_holes]))
            r += 1 + n_holes
        geom = shapely.MultiPolygon(parts) if len(parts) > 1 else parts[0]
        if not geom.is_valid:
            stats["invalid_repaired"] += 1
            geom = shapely.make_valid(geom)
        out[k] = geom
    return out, stats


def jitter(polys, seed: int = 0, amp: float = JITTER) -> np.ndarray:
    """Each polygon translated by its own uniform shift in [-amp, amp] per axis."""
    polys = np.asarray(polys, dtype=object)
    shift = np.random.default_rng(seed).uniform(-amp, amp, size=(len(polys), 2))
    coords, idx = shapely.get_coordinates(polys, return_index=True)
    return shapely.set_coordinates(polys.copy(), coords + shift[idx])


def _along(a0, a1, walls):
    """The true wall ``(start, unit direction)`` that the edge a0–a1 runs along (the one
    it overlaps most, see ALONG_*), or None."""
    d = a1 - a0
    length = float(np.hypot(*d))
    u, mid = d / length, 0.5 * (a0 + a1)
    best, best_overlap = None, 0.0
    for b0, b1 in walls:
        e = b1 - b0
        wall = float(np.hypot(*e))
        if wall == 0.0:
            continue
        v = e / wall
        if abs(u @ v) < math.cos(math.radians(ALONG_DEG)):
            continue
        if abs((mid - b0) @ np.array([-v[1], v[0]])) > ALONG_DIST:
            continue
        s0, s1 = sorted(((a0 - b0) @ v, (a1 - b0) @ v))
        overlap = min(s1, wall) - max(s0, 0.0)
        if overlap > ALONG_SHARE * min(length, wall) and overlap > best_overlap:
            best, best_overlap = (b0, v if u @ v > 0 else -v), overlap
    return best


def _ring_on_true_lines(ring: np.ndarray, walls: list, part: str) -> np.ndarray:
    """Vertices (m, 2) of our ring (no closing repeat) with each edge that runs along a
    true wall moved onto its true ``part`` ("lines", "offsets" or "directions"); an
    edge along none stays. Consecutive lines closer than PARALLEL_DEG keep our vertex."""
    m = len(ring)
    lines = []                                     # (point, unit direction)
    for i in range(m):
        a0, a1 = ring[i], ring[(i + 1) % m]
        u, mid = (a1 - a0) / np.hypot(*(a1 - a0)), 0.5 * (a0 + a1)
        wall = _along(a0, a1, walls)
        if wall is None:
            lines.append((mid, u))
            continue
        b0, v = wall
        on_wall = b0 + ((mid - b0) @ v) * v            # the true line's point beside our midpoint
        lines.append({"lines": (on_wall, v), "offsets": (on_wall, u), "directions": (mid, v)}[part])
    out = ring.copy()
    for i in range(m):
        (p, u), (q, w) = lines[i - 1], lines[i]
        cross = u[0] * w[1] - u[1] * w[0]
        if abs(cross) >= math.sin(math.radians(PARALLEL_DEG)):
            out[i] = p + u * (((q - p)[0] * w[1] - (q - p)[1] * w[0]) / cross)
    return out


def true_lines(ours, truth, part: str = "lines") -> np.ndarray:
    """Our polygons, each edge moved onto its matched true polygon's wall (see
    :func:`_ring_on_true_lines`); unmatched polygons stay, invalid results are made
    valid (their largest part)."""
    ours = np.asarray(ours, dtype=object).copy()
    ti, pi, _ = match(truth, ours)
    for t, p in zip(ti, pi):
        walls = [(r[i], r[(i + 1) % len(r)]) for r in _walls(truth[t]) for i in range(len(r))]
        parts = []
        for poly in shapely.get_parts(ours[p]):
            rings = [_ring_on_true_lines(np.asarray(r.coords)[:-1], walls, part)
                     for r in (poly.exterior, *poly.interiors)]
            parts.append(shapely.Polygon(rings[0], rings[1:]))
        geom = shapely.MultiPolygon(parts) if len(parts) > 1 else parts[0]
        if not geom.is_valid:
            pieces = shapely.get_parts(shapely.make_valid(geom))
            pieces = pieces[shapely.get_type_id(pieces) == shapely.GeometryType.POLYGON]
            geom = pieces[np.argmax(shapely.area(pieces))] if len(pieces) else ours[p]
        ours[p] = geom
    return ours


def per_truth_mta(truth, pred) -> np.ndarray:
    """MTA of each truth polygon's matched prediction (NaN when unmatched), as
    :func:`footprint_metrics` computes it."""
    ti, pi, _ = match(truth, pred)
    out = np.full(len(truth), np.nan)
    out[ti] = mta(truth[ti], pred[pi], contours=truth)
    return out


def _set_metrics(truth, pred) -> dict:
    m = footprint_metrics(truth, pred)
    return {k: round(m[k], 4) for k in ("matched_share", "iou", "ciou", "n_ratio", "polis", "mta")}


def _axis_aligned(poly) -> bool:
    """Whether every wall of ``poly`` runs within 1° of a pixel axis."""
    d = np.concatenate([np.roll(r, -1, axis=0) - r for r in _walls(poly)])
    return bool(np.all(np.abs(d).min(1) < math.sin(math.radians(1)) * np.hypot(*d.T)))


def _mean(x) -> float | None:
    return round(float(np.mean(x)), 3) if len(x) else None


def evaluate_set(mask, truth_raw, stage) -> tuple[dict, dict]:
    """Figures of one data set, and the polygons behind them (for plotting)."""
    res = abs(mask.transform.a)
    truth = np.asarray(mask_reference(truth_raw, res), dtype=object)
    labels = np.asarray(mask.data)
    oracle, st = topology_oracle(labels, mask.transform, truth)
    have = np.array([g is not None for g in oracle])
    short = {w: topology_oracle(labels, mask.transform, truth, min_wall=w) for w in (0.25, res, 1.0)}
    ours = np.array([g for _, g in stage({"mask": mask})["footprints"]], dtype=object)

    m_ours = per_truth_mta(truth, ours)
    m_oracle = np.full(len(truth), np.nan)     # oracle polygon k is truth k's: no matching needed
    m_oracle[have] = mta(truth[have], oracle[have], contours=truth)
    both = np.isfinite(m_ours) & np.isfinite(m_oracle)
    groups = {"all": both,
              "axis_aligned": both & np.array([_axis_aligned(p) for p in truth]),
              "inside_raster": both & shapely.contains(shapely.box(*mask.bounds), truth)}
    groups["oblique"] = both & ~groups["axis_aligned"]
    err = np.abs(np.array(st["offset_err"]))
    fold = np.array(st["wall_fold_deg"])
    wall_class = {"axis": fold < 1.0, "diagonal": fold > 44.0, "other": (fold >= 1.0) & (fold <= 44.0)}
    worst = np.argsort(-np.nan_to_num(m_ours, nan=-1.0), kind="stable")[:10]
    row = {
        "n_truth": len(truth),
        "ours": _set_metrics(truth, ours),
        "oracle": _set_metrics(truth, oracle[have]),
        "oracle_min1px": _set_metrics(truth, short[res][0][have]),
        "jitter": _set_metrics(truth, jitter(truth)),
        **{f"ours_true_{part}": _set_metrics(truth, true_lines(ours, truth, part))
           for part in ("lines", "offsets", "directions")},
        "oracle_n_ratio_min_wall": {f"{w}m": round(footprint_metrics(truth, o[have])["n_ratio"], 4)
                                    for w, (o, _) in short.items()},
        "oracle_stats": {
            **{k: v for k, v in st.items() if not isinstance(v, list) and k not in ("walls_dropped", "jogs_merged")},
            "walls_under_1px_dropped": short[res][1]["walls_dropped"],
            "jogs_under_1px_merged": short[res][1]["jogs_merged"],
            **{f"abs_offset_err_mean_{c}_walls": _mean(err[sel]) for c, sel in wall_class.items()},
            **{f"n_{c}_walls": int(sel.sum()) for c, sel in wall_class.items()},
            "abs_offset_err_p95": round(float(np.percentile(err, 95)), 4) if err.size else None,
        },
        "per_polygon_mta": {
            "ours_median": round(float(np.median(m_ours[both])), 3),
            "ours_share_over_8": round(float((m_ours[both] > TARGET_MTA).mean()), 4),
            "oracle_median": round(float(np.median(m_oracle[both])), 3),
            "oracle_share_over_8": round(float((m_oracle[both] > TARGET_MTA).mean()), 4),
            "ours_worse_than_oracle_by_3": int((m_ours[both] > m_oracle[both] + WORSE_BY).sum()),
            **{g: {"n": int(sel.sum()), "ours": _mean(m_ours[sel]), "oracle": _mean(m_oracle[sel])}
               for g, sel in groups.items()},
        },
        "worst": [{"truth": int(k), "ours": round(float(m_ours[k]), 2),
                   "oracle": round(float(m_oracle[k]), 2) if np.isfinite(m_oracle[k]) else None,
                   "cause": "quantization" if m_oracle[k] >= TARGET_MTA else "ours-only"}
                  for k in worst if np.isfinite(m_ours[k])],
    }
    return row, {"truth": truth, "oracle": oracle, "ours": ours, "labels": labels, "mask": mask}


def plot_worst(path: Path, polys: dict, row: dict, n: int = 3):
    """Truth (black), oracle (blue) and ours (red) over the mask cells of the ``n`` worst
    buildings (by our MTA)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mask = polys["mask"]
    fig, axes = plt.subplots(1, n, figsize=(5 * n, 5))
    for ax, w in zip(np.atleast_1d(axes), row["worst"][:n]):
        k = w["truth"]
        truth = polys["truth"][k]
        x0, y0, x1, y1 = shapely.buffer(truth, 2.0).bounds
        win, t, label = building_cells(polys["labels"], mask.transform, truth)
        rows, cols = win.shape
        ax.imshow((win > 0).astype(float) + (win == label), cmap="Greys", vmin=0, vmax=4, interpolation="nearest",
                  extent=(t.c, t.c + cols * t.a, t.f + rows * t.e, t.f))
        ti, pi, _ = match(polys["truth"][[k]], polys["ours"])
        for geom, colour, label in ((truth, "k", "truth"), (polys["oracle"][k], "tab:blue", "oracle"),
                                    (polys["ours"][pi[0]] if len(pi) else None, "tab:red", "ours")):
            if geom is None:
                continue
            for ring in shapely.get_rings(shapely.get_parts(geom)):
                xy = np.asarray(ring.coords)
                ax.plot(xy[:, 0], xy[:, 1], "-o", color=colour, ms=2, lw=1, label=label)
                label = None
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("equal")
        ax.set_title(f"truth {k}: MTA ours {w['ours']}°, oracle {w['oracle']}°", fontsize=9)
        ax.legend(fontsize=7, loc="upper right")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_table(results: dict):
    cols = ("matched_share", "iou", "ciou", "n_ratio", "polis", "mta")
    print(f"{'set':26s} {'method':20s} " + " ".join(f"{c:>8s}" for c in ("matched", *cols[1:])))
    for name, row in results.items():
        for method in ("ours", "oracle", "oracle_min1px", "jitter", "ours_true_lines", "ours_true_offsets",
                       "ours_true_directions"):
            print(f"{name:26s} {method:20s} " + " ".join(f"{row[method][c]:8.3f}" for c in cols))
        print(f"{'':26s} oracle N-ratio without walls shorter than 0.25 / 0.5 / 1 m: "
              + " / ".join(str(v) for v in row["oracle_n_ratio_min_wall"].values()))
        print(f"{'':26s} per-polygon MTA: {json.dumps(row['per_polygon_mta'])}")
        print(f"{'':26s} oracle: {json.dumps(row['oracle_stats'])}")
        print(f"{'':26s} worst: " + ", ".join(f"{w['truth']}:{w['ours']}/{w['oracle']} {w['cause']}"
                                              for w in row["worst"]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", type=Path, action="append", default=[],
                    help="simulated scene folder (truth/buildings.tif + truth/footprints.geojson)")
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    ap.add_argument("--plot", type=Path, default=None, help="PNG of the worst buildings of --plot-set")
    ap.add_argument("--plot-set", default="real:delft.json")
    args = ap.parse_args(argv)
    stage = Outline()
    results = {}
    for name, mask, truth_raw in datasets(args.scene):
        results[name], polys = evaluate_set(mask, truth_raw, stage)
        if args.plot and name == args.plot_set:
            plot_worst(args.plot, polys, results[name])
    print_table(results)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    sys.exit(main() and 0)
