"""Roof shape fitting: model-driven primitives chosen by fit and complexity.

A satellite DSM at 0.5 m gives a few hundred noisy heights per roof, too few and too
smooth for reliable free-form plane segmentation, so the roof is explained by a small
family of primitives laid out in the footprint's own frame (the long axis of its minimum
rotated rectangle, so ridges and eaves snap to the footprint's orientation):

========  ======  ==============================================================
type      planes  regions (in the rectangle frame u along, v across)
========  ======  ==============================================================
flat      1       all (horizontal)
shed      1       all
gable     2       v < 0 | v >= 0 (ridge along the long axis) or the same across
hip       4       nearest rectangle edge (or nearest after normalizing by the half sides)
pyramid   4       as hip, when the planes meet in a point (ridge under 1 m / 10 %)
mansard   5       a band along the outline split by nearest edge, plus the top
hip       any     nearest outline edge, holes included (non-rectangular outlines only)
========  ======  ==============================================================

Each region's plane is fitted by least squares, refitted once without outliers (residual
over 3 robust sigmas), and the roof is the lower envelope of the planes
(:mod:`lod3d.lod.solid`).

When no primitive explains the heights to within ``2 * noise`` RMSE, a data-driven
candidate joins them: planes found one after another by seeded RANSAC (fixed seed, so
deterministic) on the samples not yet explained, each refitted on its inliers with its
downhill direction snapped to the nearest footprint edge direction (within 15 degrees),
so ridges and eaves between such planes run parallel to the outline. Its type is
``flat``/``shed`` with one plane, ``complex`` otherwise. Candidates are scored on the envelope's residuals with a BIC:
``n log(mse + s0^2) + p log n`` (``s0`` = DSM noise floor, ``p`` = 3 per free plane), so
a more complex roof wins only when it explains clearly more. Planes steeper than
``max_slope_deg`` or an envelope that dips near the ground (its eaves under 1 m, or under half
the roof height on lower structures) disqualify a candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from lod3d.kernels.lod_planes import nearest_segment, score_candidates

__all__ = ["RoofFit", "fit_roof", "frame"]


@dataclass
class RoofFit:
    """The chosen roof: type, planes (K, 3) as ``z = a x + b y + c`` in CRS coordinates, RMSE."""

    roof_type: str
    planes: np.ndarray
    rmse: float
    score: float


def frame(polygon) -> tuple[float, float, float, np.ndarray]:
    """``(cx, cy, theta, corners)``: the minimum rotated rectangle's centre, long-axis
    angle and four corners."""
    xy = np.asarray(shapely.minimum_rotated_rectangle(polygon).exterior.coords)[:4]
    edges = np.diff(np.vstack([xy, xy[:1]]), axis=0)
    k = int(np.argmax(np.hypot(edges[:, 0], edges[:, 1])))
    theta = float(np.arctan2(edges[k, 1], edges[k, 0]))
    c = xy.mean(axis=0)
    return float(c[0]), float(c[1]), theta, xy


def fit_roof(polygon, x: np.ndarray, y: np.ndarray, z: np.ndarray, ground_z: float,
             noise: float = 0.15, max_slope_deg: float = 70.0, data_driven: bool = True) -> RoofFit | None:
    """Best primitive for the heights ``z`` at ``(x, y)`` inside ``polygon``; None if no
    candidate is usable (too few points, or all disqualified). ``data_driven=False``
    leaves out the RANSAC candidate (a quicker fit, to compare partitions)."""
    n = len(z)
    if n < 8:
        return None
    cx, cy, th, corners = frame(polygon)
    cos, sin = np.cos(th), np.sin(th)
    u = (x - cx) * cos + (y - cy) * sin
    v = -(x - cx) * sin + (y - cy) * cos
    cu = (corners[:, 0] - cx) * cos + (corners[:, 1] - cy) * sin
    cv = -(corners[:, 0] - cx) * sin + (corners[:, 1] - cy) * cos
    hl, hw = max(np.abs(cu).max(), 1e-3), max(np.abs(cv).max(), 1e-3)
    du, dv = hl - np.abs(u), hw - np.abs(v)
    edge = np.where(du < dv, np.where(u > 0, 0, 1), np.where(v > 0, 2, 3))
    edge_norm = np.where(du / hl < dv / hw, np.where(u > 0, 0, 1), np.where(v > 0, 2, 3))
    band = np.minimum(du, dv) < 0.35 * hw
    candidates = {
        "flat": (np.zeros(n, np.int64), True),
        "shed": (np.zeros(n, np.int64), False),
        "gable": ((v >= 0).astype(np.int64), False),
        "gable_across": ((u >= 0).astype(np.int64), False),
        "hip": (edge, False),
        "hip_normalized": (edge_norm, False),
        "mansard": (np.where(band, edge, 4), False),
    }
    if len(polygon.interiors) or len(polygon.exterior.coords) > 5:
        candidates["hip_edges"] = (_nearest_edge(polygon.simplify(0.5), x, y), False)  # not per raster step
    fx, fy = np.asarray(polygon.exterior.coords).T
    floor = ground_z + min(1.0, 0.5 * (float(np.median(z)) - ground_z))  # lowest eave allowed
    names = list(candidates)
    labels = np.stack([candidates[k][0] for k in names]).astype(np.int64)
    flat = np.array([candidates[k][1] for k in names])
    planes, usable, mse, score = score_candidates(
        u, v, z, labels, labels.max(axis=1) + 1, flat, (fx - cx) * cos + (fy - cy) * sin,
        -(fx - cx) * sin + (fy - cy) * cos, floor, noise, np.tan(np.radians(max_slope_deg)))
    best = None
    if usable.any():
        c = int(np.argmin(np.where(usable, score, np.inf)))
        kind = names[c].split("_")[0]
        if names[c] in ("hip", "hip_normalized") and _ridge_length(planes[c, :4], hl, hw) < max(1.0, 0.1 * hl):
            kind = "pyramid"  # four planes meeting (nearly) in one point
        best = RoofFit(kind, _to_global(planes[c, :labels[c].max() + 1], cx, cy, cos, sin),
                       float(np.sqrt(mse[c])), float(score[c]))
    if data_driven and (best is None or best.rmse > 2 * noise):
        planes = _ransac_planes(x, y, z, _edge_directions(polygon), noise)
        if len(planes):
            best = _better(best, planes, x, y, z, fx, fy, floor, noise, max_slope_deg)
    return best


def _ridge_length(planes, hl, hw, tol=0.05, steps=61) -> float:
    """Length of the top of the envelope of local-frame ``planes`` over the rectangle
    ``|u| <= hl, |v| <= hw``: the extent of the grid points within ``tol`` of the highest
    (a hip roof's ridge; about one grid step for a pyramid's apex)."""
    u, v = np.meshgrid(np.linspace(-hl, hl, steps), np.linspace(-hw, hw, steps))
    env = np.min(planes[:, 0:1] * u.ravel() + planes[:, 1:2] * v.ravel() + planes[:, 2:3], axis=0)
    top = env >= env.max() - tol
    return float(max(np.ptp(u.ravel()[top]), np.ptp(v.ravel()[top])))


def _better(best, g, x, y, z, fx, fy, floor, noise, max_slope_deg):
    """``best`` or the data-driven roof with global planes ``g``, whichever scores lower
    (scored as :func:`lod3d.kernels.lod_planes.score_candidates` scores the primitives);
    skipped with too steep a plane or an eave under ``floor``."""
    if np.degrees(np.arctan(np.hypot(g[:, 0], g[:, 1]).max())) > max_slope_deg:
        return best
    env = np.min(g[:, 0:1] * x[None] + g[:, 1:2] * y[None] + g[:, 2:3], axis=0)
    low = np.min(g[:, 0:1] * fx[None] + g[:, 1:2] * fy[None] + g[:, 2:3], axis=0).min()
    if low < floor:
        return best
    n = len(z)
    mse = float(np.mean((env - z) ** 2))
    score = n * np.log(mse + noise**2) + 3 * len(g) * np.log(n)
    if best is None or score < best.score:
        slope = np.hypot(g[0, 0], g[0, 1])
        kind = "complex" if len(g) > 1 else "flat" if slope < 0.05 else "shed"
        best = RoofFit(kind, g, float(np.sqrt(mse)), float(score))
    return best


def _edge_directions(polygon) -> np.ndarray:
    """Unit vectors along the footprint's edges longer than 2 m and their perpendiculars."""
    xy = np.asarray(polygon.exterior.coords)
    d = np.diff(xy, axis=0)
    d = d[np.hypot(d[:, 0], d[:, 1]) > 2.0]
    d = d / np.hypot(d[:, 0], d[:, 1])[:, None]
    return np.vstack([d, np.column_stack([-d[:, 1], d[:, 0]])]) if len(d) else np.zeros((0, 2))


def _ransac_planes(x, y, z, dirs, noise, max_planes=6, trials=128, seed=0):
    """Planes (K, 3) found greedily by seeded RANSAC, each explaining at least 10 % of
    the samples (and 12) within ``2 * noise``; gradients snapped to ``dirs``."""
    rng = np.random.default_rng(seed)
    n = len(z)
    xc, yc = x - x.mean(), y - y.mean()
    free = np.ones(n, bool)
    planes = []
    thr = 2 * noise
    while len(planes) < max_planes:
        idx = np.nonzero(free)[0]
        if len(idx) < max(12, 0.1 * n):
            break
        tri = idx[rng.integers(0, len(idx), size=(trials, 3))]
        A = np.stack([xc[tri], yc[tri], np.ones((trials, 3))], axis=2)
        ok = np.abs(np.linalg.det(A)) > 1e-6
        if not ok.any():
            break
        coef = np.linalg.solve(A[ok], z[tri[ok]][..., None])[..., 0]
        res = np.abs(coef[:, 0:1] * xc[idx] + coef[:, 1:2] * yc[idx] + coef[:, 2:3] - z[idx])
        count = (res <= thr).sum(axis=1)
        k = int(np.argmax(count))
        if count[k] < max(12, 0.1 * n):
            break
        inl = idx[res[k] <= thr]
        plane = _snapped_plane(xc[inl], yc[inl], z[inl], dirs)
        near = np.abs(plane[0] * xc + plane[1] * yc + plane[2] - z) <= thr
        free &= ~near
        planes.append(plane)
    if not planes:
        return np.zeros((0, 3))
    p = np.asarray(planes)
    p[:, 2] -= p[:, 0] * x.mean() + p[:, 1] * y.mean()
    return p


def _snapped_plane(x, y, z, dirs, tol_deg=15.0):
    """Least-squares plane ``(a, b, c)``; a gradient within ``tol_deg`` of a direction in
    ``dirs`` is rotated onto it (the offset refitted), a gradient under 2 % is zeroed."""
    a, b, c = np.linalg.lstsq(np.column_stack([x, y, np.ones(len(z))]), z, rcond=None)[0]
    g = np.hypot(a, b)
    if g < 0.02:
        return np.array([0.0, 0.0, float(np.median(z))])
    if len(dirs):
        cosang = (dirs @ np.array([a, b])) / g
        k = int(np.argmax(cosang))
        if cosang[k] >= np.cos(np.radians(tol_deg)):
            s = float(dirs[k] @ np.array([a, b]))  # slope along the snapped direction
            a, b = s * dirs[k]
            c = float(np.median(z - a * x - b * y))
    return np.array([a, b, c])


def _nearest_edge(polygon, x, y) -> np.ndarray:
    """Index of the outline edge (longer than 1 m; holes included) nearest to each point:
    one roof plane per edge gives a hip roof over any outline, courtyards included."""
    p, d = [], []
    for ring in [polygon.exterior, *polygon.interiors]:
        xy = np.asarray(ring.coords)
        e = np.diff(xy, axis=0)
        long = np.hypot(e[:, 0], e[:, 1]) > 1.0
        p.append(xy[:-1][long])
        d.append(e[long])
    p, d = np.concatenate(p), np.concatenate(d)
    if not len(p):
        return np.zeros(len(x), np.int64)
    return nearest_segment(np.asarray(x, float), np.asarray(y, float), p, d)


def _to_global(planes, cx, cy, cos, sin):
    """Local-frame planes (z = a_u u + a_v v + c) as global z = a x + b y + c."""
    au, av, c = planes[:, 0], planes[:, 1], planes[:, 2]
    a = au * cos - av * sin
    b = au * sin + av * cos
    return np.column_stack([a, b, c - a * cx - b * cy])
