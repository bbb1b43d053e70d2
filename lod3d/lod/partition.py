"""Roof samples of a footprint and its partition into parts: at height jumps (LoD1.3), and
at inside corners where one roof cannot fit.

The DSM cells whose centres fall inside the footprint are the roof samples. They are
grouped into height-continuous regions (:func:`lod3d.kernels.lod_regions.label_regions`:
a jump of more than ``step`` metres between neighbours that does not continue the local
slope separates two regions); regions smaller than ``min_area`` (chimneys, dormers,
noise) are not parts of their own. Every cell of the window then takes the label of the
nearest kept region, so the labels tile the whole footprint; the tiles are polygonized,
simplified as one coverage within half a cell (neighbouring parts keep an exact common
boundary; a wider tolerance moves walls onto the neighbouring cells) and clipped
by the footprint. Boundary segments within ``snap_deg`` of one of the footprint's own edge
directions are rotated onto it (about their midpoint, before clipping), so part walls run
parallel to the outline as on real buildings.

Each part polygon can then carry its own prism (LoD1.3) and roof (LoD2.2); adjacent parts
share a wall, and each part's solid is closed on its own. :func:`split_roof` cuts a part
further at its inside corners where no single roof fits it (wings meeting at an angle at
the same height), and across it where a straight wall explains the roof better (terraced
houses of similar height in one footprint).

A stereo DSM carries a taller roof 1-3 m past its wall onto the lower roof next door and
shows no step at the real wall; the true ortho shows the wall as a sharp edge. Given the
ortho, walls between regions or pieces of different heights are moved onto its edges
(:func:`_ortho_walls`, :func:`_ortho_edge`), and the samples passed over are left out of
the lower roof's fits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import rasterio.features
import shapely
from affine import Affine
from scipy import ndimage

from lod3d.kernels.lod_planes import screen_cuts
from lod3d.kernels.lod_regions import label_regions

from ..raster import Raster
from .roof import fit_roof
from .solid import roof_height

__all__ = ["RoofCells", "dsm_noise", "partition", "roof_cells", "split_roof"]

GRID = 1e-3  # metres: the node grid of the solids (equal to the CityJSON quantization)
SWEEP_STEP = 2.0      # metres between the straight cuts :func:`split_roof` tries across a part (refined to 1/4)
SWEEP_MARGIN = 3.0    # metres: the least width of a piece such a cut leaves
MIN_PART_WIDTH = 0.0  # metres: thinner higher strips along the outline merged (off: real narrow parts go too)
SWEEP_KEEP = 3        # coarse straight cuts per axis whose roofs are fitted: the best of a screen (:func:`_sweep_screened`)
# walls placed on the ortho's edges (:func:`_ortho_walls`, :func:`_ortho_edge`)
SPILL_M = 2.5   # metres: the farthest a stereo DSM carries a taller roof past its wall (3 m moved walls too far)
EDGE_M = 1.0    # metres of ortho averaged on either side of a candidate wall
CHUNK_M = 2.0   # metres of wall per chunk: an edge must show along most chunks (a hip line or slanted shadow does not)
MIN_CONTRAST = 0.1  # the least edge (as a share of the ortho's median near the wall) a wall is moved onto
JUMP_M = 0.5    # metres: the least height step across a straight cut for a taller roof's spill to matter


@dataclass
class RoofCells:
    """The valid DSM samples inside one footprint polygon and their regions.

    ``x, y, z`` are cell centres and heights; ``label`` the region of each (0 = in no kept
    region); ``grid`` the region labels on the raster window (0 outside the footprint) and
    ``transform`` that window's transform; ``nodata`` counts cells inside without a height,
    those beyond the raster's edge included; ``noise`` is the DSM's noise inside
    (:func:`dsm_noise`).
    """

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    label: np.ndarray
    grid: np.ndarray
    transform: Affine
    nodata: int
    noise: float = 0.0


def roof_cells(poly, dsm: Raster, step: float = 1.0, min_area: float = 4.0, ortho: Raster | None = None) -> RoofCells:
    """Samples of ``dsm`` inside ``poly`` and their height-continuous regions; with the
    true ``ortho`` (any grid in the DSM's CRS), the walls between regions of different
    heights are moved onto its edges (:func:`_ortho_walls`)."""
    inv = ~dsm.transform
    x0, y0, x1, y1 = poly.bounds
    c0, r0 = inv @ (x0, y1)
    c1, r1 = inv @ (x1, y0)
    h, w = dsm.shape
    r0, c0, r1, c1 = int(np.floor(r0)) - 1, int(np.floor(c0)) - 1, int(np.ceil(r1)) + 1, int(np.ceil(c1)) + 1
    outside = 0  # cells of the footprint beyond the raster: nodata too
    if r0 < 0 or c0 < 0 or r1 > h or c1 > w:
        rr, cc = np.mgrid[r0:r1, c0:c1]
        beyond = (rr < 0) | (rr >= h) | (cc < 0) | (cc >= w)
        outside = int(shapely.contains_xy(poly, *(dsm.transform @ (cc[beyond] + 0.5, rr[beyond] + 0.5))).sum())
        r0, c0, r1, c1 = max(0, r0), max(0, c0), min(h, r1), min(w, c1)
    win = dsm.transform @ Affine.translation(c0, r0)
    if r1 <= r0 or c1 <= c0:
        e = np.zeros(0)
        return RoofCells(e, e, e, np.zeros(0, np.int32), np.zeros((0, 0), np.int32), win, outside)
    rr, cc = np.mgrid[0:r1 - r0, 0:c1 - c0]
    xs, ys = win @ (cc + 0.5, rr + 0.5)
    inside = shapely.contains_xy(poly, xs, ys)
    data = dsm.data[-1] if dsm.data.ndim == 3 else dsm.data
    z = data[r0:r1, c0:c1].astype(np.float64)
    ok = np.isfinite(z)
    if dsm.nodata is not None and np.isfinite(dsm.nodata):
        ok &= z != dsm.nodata
    nodata = int((inside & ~ok).sum()) + outside
    z = np.where(inside & ok, z, np.nan)
    grid, n = label_regions(z, step)
    if n > 1:
        size = np.bincount(grid.ravel(), minlength=n + 1)
        small = size < min_area / abs(win.a * win.e)
        small[0] = True
        grid[small[grid]] = 0
    territory = grid
    if ortho is not None and n > 1:
        territory, grid = _ortho_walls(z, grid, _sample(ortho, xs, ys), step, abs(win.a), _frame_dirs(poly))
    m = np.isfinite(z)
    return RoofCells(xs[m], ys[m], z[m], grid[m], territory, win, nodata, dsm_noise(z))


def _frame_dirs(poly) -> np.ndarray:
    """The four directions along and across the long axis of ``poly``'s minimum rotated
    rectangle, as unit ``(row, col)`` vectors of a north-up raster."""
    xy = np.asarray(shapely.minimum_rotated_rectangle(poly).exterior.coords)[:3]
    e = np.diff(xy, axis=0)
    e = e / np.maximum(np.hypot(e[:, 0], e[:, 1]), 1e-12)[:, None]
    rc = np.column_stack([-e[:, 1], e[:, 0]])  # map (dx, dy) -> raster (row, col)
    return np.concatenate([rc, -rc])


def _sample(raster: Raster, x, y) -> np.ndarray:
    """Values of ``raster`` at the points ``(x, y)`` (nearest cell; NaN beyond it or nodata)."""
    c, r = ~raster.transform @ (x, y)
    r, c = np.floor(r).astype(np.int64), np.floor(c).astype(np.int64)
    h, w = raster.shape
    ok = (r >= 0) & (r < h) & (c >= 0) & (c < w)
    data = raster.data[0] if raster.data.ndim == 3 else raster.data
    out = np.full(np.shape(x), np.nan)
    out[ok] = data[r[ok], c[ok]]
    if raster.nodata is not None and np.isfinite(raster.nodata):
        out[out == raster.nodata] = np.nan
    return out


def _ortho_walls(z, grid, ortho, step, res, dirs):
    """Region labels with each wall between a higher and a lower region moved onto the
    ortho's edge: ``(territory, labels)``.

    A stereo DSM carries a taller roof past its wall onto the lower one next door, so the
    height jump (the regions' boundary) lies inside the lower building; the image shows
    the wall sharply. For each pair of touching regions, taking each in turn as the higher,
    the cells near their boundary where the higher stands more than ``step`` above the
    lower's nearest cell (a wall, not a stretch where the two meet at one height) are
    grouped by which of the directions ``dirs`` (unit ``(row, col)`` vectors) the other
    region lies in, and each group's wall is moved into the higher region to where the
    ortho steps most across it (:func:`_edge_shift`). The cells passed over go to the lower region's territory (the
    part it gets) but to no region's samples (their heights are the spill)."""
    pairs = set()
    for a, b in ((grid[:, :-1], grid[:, 1:]), (grid[:-1], grid[1:])):
        m = (a != b) & (a > 0) & (b > 0)
        pairs |= {(min(p), max(p)) for p in zip(a[m].tolist(), b[m].tolist())}
    territory, samples = grid.copy(), grid.copy()
    near = {}
    for hi, lo in sorted(pairs | {(b, a) for a, b in pairs}):
        for k in (hi, lo):
            if k not in near:
                d, idx = ndimage.distance_transform_edt(grid != k, sampling=res, return_indices=True)
                near[k] = (d, idx)
        # cells of hi (q > 0) and of lo (q < 0) near the other, where hi stands more than
        # ``step`` above the nearest cell of lo (a wall, not a stretch of the boundary
        # where the regions meet at one height); q: metres from the DSM's wall
        (d_lo, (nr_lo, nc_lo)), (d_hi, (nr_hi, nc_hi)) = near[lo], near[hi]
        up = (grid == hi) & (d_lo <= SPILL_M + EDGE_M + res) & (z - z[nr_lo, nc_lo] > step)
        down = (grid == lo) & (d_hi <= EDGE_M + res) & (z[nr_hi, nc_hi] - z > step)
        (r_up, c_up), (r_dn, c_dn) = np.nonzero(up), np.nonzero(down)
        if len(r_up) < 8:
            continue
        r, c = np.concatenate([r_up, r_dn]), np.concatenate([c_up, c_dn])
        q = np.concatenate([d_lo[r_up, c_up] - 0.5 * res, 0.5 * res - d_hi[r_dn, c_dn]])
        # each cell's direction across the wall, from hi towards lo
        vr = np.concatenate([nr_lo[r_up, c_up] - r_up, r_dn - nr_hi[r_dn, c_dn]])
        vc = np.concatenate([nc_lo[r_up, c_up] - c_up, c_dn - nc_hi[r_dn, c_dn]])
        group = np.argmax(vr[:, None] * dirs[None, :, 0] + vc[:, None] * dirs[None, :, 1], axis=1)
        v = ortho[r, c]
        for g in range(len(dirs)):
            m = group == g
            if m.sum() < 8:
                continue
            along = (c[m] * dirs[g, 0] - r[m] * dirs[g, 1]) * res
            shift = _edge_shift(q[m], along, v[m], 0.0)
            sel = m & (q > 0) & (q <= shift)
            territory[r[sel], c[sel]] = lo
            samples[r[sel], c[sel]] = 0
    return territory, samples


def _edge_shift(q, w, v, lo_q: float) -> float:
    """The position ``q0`` in ``lo_q .. SPILL_M`` (quarter metres) where the values ``v`` at
    positions ``q`` across a wall step most: the median over ``CHUNK_M`` chunks of the
    along-wall coordinate ``w`` of the absolute difference between the means within
    ``EDGE_M`` after and before ``q0`` (a wall steps all along its length, a hip line or a
    shadow's slanted edge only in some chunks); 0 without enough values or where that
    step is under ``MIN_CONTRAST`` times the median value (two roofs alike in the image:
    no edge to go by, only texture)."""
    ok = np.isfinite(v)
    q, w, v = q[ok], w[ok], v[ok]
    if not len(v):
        return 0.0
    chunk = np.floor((w - w.min()) / CHUNK_M).astype(np.int64)
    nch = int(chunk.max()) + 1
    best, where = -1.0, 0.0
    for q0 in np.arange(lo_q, SPILL_M + 1e-9, 0.25):
        a = (q > q0 - EDGE_M) & (q <= q0)
        b = (q > q0) & (q <= q0 + EDGE_M)
        na, nb = np.bincount(chunk[a], minlength=nch), np.bincount(chunk[b], minlength=nch)
        both = (na >= 2) & (nb >= 2)
        if not both.any():
            continue
        step = np.bincount(chunk[b], v[b], nch)[both] / nb[both] - np.bincount(chunk[a], v[a], nch)[both] / na[both]
        e = float(np.median(np.abs(step)))
        if e > best:
            best, where = e, q0
    return where if best >= MIN_CONTRAST * np.median(np.abs(v)) else 0.0


def dsm_noise(z) -> float:
    """Robust standard deviation of the DSM noise in the grid ``z`` (NaN outside): from the
    second differences along rows and columns (zero on a plane; ``6 sigma^2`` variance for
    independent noise), by their median absolute value, so ridges and walls do not count."""
    d2 = np.concatenate([(z[:, :-2] - 2 * z[:, 1:-1] + z[:, 2:]).ravel(), (z[:-2] - 2 * z[1:-1] + z[2:]).ravel()])
    d2 = d2[np.isfinite(d2)]
    return float(1.4826 * np.median(np.abs(d2)) / np.sqrt(6.0)) if len(d2) >= 8 else 0.0


def partition(poly, cells: RoofCells, snap_deg: float = 15.0, min_area: float = 4.0,
              min_width: float = MIN_PART_WIDTH) -> list[tuple[object, int]]:
    """``[(part polygon, region label)]`` covering ``poly``, largest first; a single
    ``(poly, label)`` when the roof has no height jump."""
    kept = np.unique(cells.label[cells.label > 0])
    if len(kept) <= 1:
        return [(poly, int(kept[0]) if len(kept) else 0)]
    grid = cells.grid
    # every window cell takes the nearest kept region: the labels tile the footprint
    _, (ir, ic) = ndimage.distance_transform_edt(grid == 0, return_indices=True)
    filled = grid[ir, ic].astype(np.int32)
    shapes = [(shapely.geometry.shape(g), int(v)) for g, v in
              rasterio.features.shapes(filled, transform=cells.transform, connectivity=4)]
    res = abs(cells.transform.a)
    simple = shapely.coverage_simplify([g for g, _ in shapes], 0.5 * res)  # half a cell: walls stay between cells
    dirs = _edge_directions(poly)
    regions = sorted(((_snap(g, dirs, np.radians(snap_deg)), v) for g, (_, v) in zip(simple, shapes)),
                     key=lambda t: (-t[0].area, t[0].bounds))
    # the largest region takes what the others leave: the pieces tile the footprint exactly
    taken, parts = shapely.Polygon(), []
    for g, v in regions[1:]:
        g = shapely.set_precision(shapely.difference(shapely.intersection(g, poly), taken), GRID)
        taken = shapely.set_precision(shapely.union(taken, g), GRID)
        parts.append((g, v))
    parts.insert(0, (shapely.set_precision(shapely.difference(poly, taken), GRID), regions[0][1]))
    pieces = [[p, v] for g, v in parts for p in shapely.get_parts(g) if p.geom_type == "Polygon" and p.area > 0]
    labels = cells.label[cells.label > 0]
    height = dict(zip(kept.tolist(), ndimage.median(cells.z[cells.label > 0], labels, kept)))
    pieces = _merge_small(pieces, min_area, min_width, height, poly.boundary)
    if len(pieces) <= 1:
        return [(poly, int(kept[0]))]
    pieces.sort(key=lambda t: (-t[0].area, t[0].bounds))
    return [(p, v) for p, v in pieces]


def _edge_directions(poly) -> np.ndarray:
    """Directions (radians, modulo pi) of the footprint's edges longer than 2 m, and
    their perpendiculars."""
    xy = np.asarray(poly.exterior.coords)
    d = np.diff(xy, axis=0)
    keep = np.hypot(d[:, 0], d[:, 1]) > 2.0
    a = np.arctan2(d[keep, 1], d[keep, 0])
    return np.unique(np.round(np.concatenate([a, a + np.pi / 2]) % np.pi, 3))


def _snap(g, dirs, tol):
    """Rotate each straight boundary segment of ``g`` onto the nearest direction in
    ``dirs`` when within ``tol``: the corner between two snapped segments becomes the
    intersection of their lines (kept where they are not near-parallel)."""
    if not len(dirs):
        return g
    rings = [_snap_ring(np.asarray(r.coords)[:-1], dirs, tol) for r in [g.exterior, *g.interiors]]
    out = shapely.Polygon(rings[0], rings[1:])
    return out if out.is_valid and abs(out.area - g.area) < 0.25 * g.area else g


def _snap_ring(xy, dirs, tol):
    n = len(xy)
    p, q = xy, np.roll(xy, -1, axis=0)
    d = q - p
    ang = np.arctan2(d[:, 1], d[:, 0]) % np.pi
    diff = (ang[:, None] - dirs[None] + np.pi / 2) % np.pi - np.pi / 2
    k = np.argmin(np.abs(diff), axis=1)
    new = np.where(np.abs(diff[np.arange(n), k]) <= tol, dirs[k], ang)
    mid = 0.5 * (p + q)
    u = np.column_stack([np.cos(new), np.sin(new)])
    out = xy.copy()
    for i in range(n):
        j = (i - 1) % n  # the segment ending at vertex i
        cross = u[j, 0] * u[i, 1] - u[j, 1] * u[i, 0]
        if abs(cross) < 0.2:  # near-parallel lines: keep the vertex
            continue
        t = ((mid[i, 0] - mid[j, 0]) * u[i, 1] - (mid[i, 1] - mid[j, 1]) * u[i, 0]) / cross
        out[i] = mid[j] + t * u[j]
    return out


def _merge_small(pieces, min_area, min_width=0.0, height=None, outline=None):
    """Merge pieces under ``min_area`` into the neighbour they share most boundary with
    (one touching others only at a corner is dropped), smallest first.

    With ``height`` (label → roof height) and ``outline`` (the footprint's boundary), a
    piece thinner than ``min_width`` (twice its area over its perimeter: the width of a
    strip) along the outline that stands higher than that neighbour is merged too: a
    stereo DSM fattens higher surfaces, so the roof of a taller building next door spills
    over the wall onto this roof as such a strip. Thin lower strips (annexes) stay."""
    while len(pieces) > 1:
        areas = np.array([p.area for p, _ in pieces])
        small = areas < min_area
        if height is not None and min_width > 0:
            thin = 2 * areas < min_width * np.array([p.length for p, _ in pieces])
            for i in np.nonzero(thin & ~small)[0]:
                p, v = pieces[i]
                if shapely.intersection(p.boundary, outline).length < 1.0:
                    continue
                j = _main_neighbour(p, [q for k, (q, _) in enumerate(pieces) if k != i])
                j = j if j is None or j < i else j + 1
                small[i] = j is not None and height.get(v, -np.inf) > height.get(pieces[j][1], np.inf)
        if not small.any():
            break
        i = int(np.argmin(np.where(small, areas, np.inf)))
        p, v = pieces.pop(i)
        j = _main_neighbour(p, [q for q, _ in pieces])
        if j is None:
            continue  # isolated sliver (touching only at a corner): dropped
        merged = shapely.set_precision(shapely.union(pieces[j][0], p), GRID)
        merged = max(shapely.get_parts(merged), key=lambda g: g.area) if merged.geom_type != "Polygon" else merged
        pieces[j][0] = merged
    return pieces


def _main_neighbour(p, others):
    """Index of the polygon in ``others`` sharing most boundary with ``p`` (None if none does)."""
    if not others:
        return None
    shared = [shapely.intersection(p.boundary, q.boundary).length for q in others]
    j = int(np.argmax(shared))
    return j if shared[j] > 0 else None


def split_roof(poly, x, y, z, ground, noise: float = 0.15, depth: int = 3, min_area: float = 12.0,
               min_samples: int = 24, max_eval: int = 500, fit=None, tol: float | None = None,
               sweep_step: float = 0.0, sweep_penalty: float = 0.0, sweep_keep: int = SWEEP_KEEP,
               ortho: Raster | None = None, spill: list | None = None) -> list:
    """``[(piece, RoofFit | None)]``: ``poly`` cut at its inside corners into pieces that
    each carry a simpler roof, with the best primitive roof of each (``fit`` may give the
    one of ``poly`` when known).

    Wings of an L, T or courtyard building whose gables meet at an angle without a height
    jump are one height-continuous region, but no single lower envelope of planes fits
    them: one wing's plane, extended, cuts into the other. When the best primitive over
    ``poly`` misses the samples ``(x, y, z)`` by more than ``tol`` RMSE (default
    ``2 * noise``), and by more than ``tol`` robustly too (the upper quartile of the
    absolute residuals as a Gaussian sigma, over 1.1503: a quarter of the samples or
    fewer off by far, a stereo DSM's blunders and spill at walls, need no cut; a wing or
    annex holding more does), each cut
    at an inside corner along one of its edges (:func:`_corner_cuts`) is tried; the cut
    whose pieces' roofs have the lowest summed BIC wins if it beats the whole, and each
    piece is cut again (up to ``depth`` levels). The first cut whose pieces all fit to
    within ``noise`` is taken without trying the rest. With ``sweep_step`` > 0 and no such
    cut, straight cuts right across ``poly`` along its frame's axes are tried too
    (:func:`_sweep_axes`: every ``sweep_step`` metres, then refined to a quarter of it
    around the best): the party walls of terraced houses or adjoining buildings that one
    mask blob and one height-continuous region hold together. The coarse cuts along an
    axis are screened all at once by simple least-squares roofs on either side
    (:func:`_sweep_screened`), and only the best ``sweep_keep`` of them (all when 0) are
    cut and fitted. Such a cut must beat the best so far by ``sweep_penalty * log n``. Cuts are compared on a seeded random subset
    of at most ``max_eval`` samples. Pieces keep exact common edges on the solids' 1 mm
    grid.

    With the true ``ortho``, the straight cut found is moved onto the wall the image shows
    (:func:`_ortho_edge`): a stereo DSM puts the height step past the wall, inside the
    lower building. The samples the move passes over carry the taller roof's height and
    are left out of the lower piece's fits (appended to ``spill`` as ``(k, 2)`` arrays of
    their ``(x, y)`` when a list is given).
    """
    if fit is None:
        fit = fit_roof(poly, x, y, z, ground, noise, data_driven=False)
    tol = 2 * noise if tol is None else tol
    if depth == 0 or fit is None or fit.rmse <= tol:
        return [(poly, fit)]
    if np.percentile(np.abs(roof_height(fit.planes, x, y) - z), 75) / 1.1503 <= tol:
        return [(poly, fit)]  # the misfit is a few outliers (a stereo DSM's blunders, spill at walls), no wall
    # cuts are compared on at most ~max_eval samples (a seeded random subset: a regular stride
    # would keep the same raster columns, blind to cuts between them), the winner refitted on all
    step = -(-len(z) // max_eval)
    keep = np.sort(np.random.default_rng(0).permutation(len(z))[:-(-len(z) // step)]) if step > 1 else slice(None)
    xs, ys, zs = (np.ascontiguousarray(a[keep]) for a in (x, y, z))
    whole = fit if step == 1 else fit_roof(poly, xs, ys, zs, ground, noise, data_driven=False)
    best, best_score = None, whole.score if whole is not None else np.inf

    def attempt(cut):
        """(summed score of the pieces' roofs, pieces, all within the noise, their fits) or None."""
        pieces = [shapely.set_precision(g, GRID) for g in _cut(poly, cut)]
        if len(pieces) < 2 or min(g.area for g in pieces) < min_area:
            return None
        if any(g.geom_type != "Polygon" for g in pieces):
            return None  # snapping to the grid split a piece: not a clean cut
        fits, score = [], 0.0
        for g in pieces:
            m = shapely.contains_xy(g, xs, ys)
            f = fit_roof(g, xs[m], ys[m], zs[m], ground, noise, data_driven=False) if m.sum() >= min_samples // step else None
            if f is None:
                return None
            fits.append(f)
            score += f.score
        return score, pieces, all(f.rmse <= noise for f in fits), fits

    done, best_fits, left_out = False, None, None
    for cut in _corner_cuts(poly):
        r = attempt(cut)
        if r is not None and r[0] < best_score:
            best, best_score, done, best_fits = r[1], r[0], r[2], r[3]
            if done:
                break  # every piece explained to the noise: no better cut to look for
    if not done and sweep_step > 0:
        # straight cuts right across, coarse then refined around the best; each must beat
        # the best so far by sweep_penalty log n (a wall where none was seen needs evidence).
        # The coarse positions of an axis are screened all at once (:func:`_sweep_screened`)
        # and only the best few are cut and fitted.
        need = best_score - sweep_penalty * np.log(max(len(zs), 2))
        found = None
        for ax in _sweep_axes(poly, SWEEP_MARGIN):
            fitted = 0
            for t in _sweep_screened(ax, sweep_step, xs, ys, zs, ground, noise, max(min_samples // step, 8)):
                r = attempt(_sweep_line(ax, t))
                if r is None:
                    continue
                if r[0] < need and (found is None or r[0] < found[0]):
                    found = (r[0], r[1], ax, t, r[3])
                fitted += 1
                if fitted == sweep_keep:
                    break  # the rest screened out
        if found is not None:
            ax = found[2]
            for t in _sweep_positions(ax, sweep_step, around=found[3]):
                r = attempt(_sweep_line(ax, t))
                if r is not None and r[0] < found[0]:
                    found = (r[0], r[1], ax, t, r[3])
            best, best_score, best_fits = found[1], found[0], found[4]
            if ortho is not None:
                ax, t = found[2], found[3]
                t2 = _ortho_edge(ax, t, poly, x, y, z, _sample(ortho, x, y))
                r = attempt(_sweep_line(ax, t2)) if t2 != t else None
                if r is not None:
                    best = r[1]
                    s = (x - ax[1][0]) * ax[2][0] + (y - ax[1][1]) * ax[2][1]
                    left_out = (s - t) * (s - t2) < 0  # between the DSM's step and the wall: the taller roof's spill
                    if spill is not None:
                        spill.append(np.column_stack([x[left_out], y[left_out]]))
    if best is None:
        return [(poly, fit)]
    out = []
    for j, g in enumerate(best):
        m = shapely.contains_xy(g, x, y)
        f = best_fits[j]
        if left_out is not None:  # the cut moved onto the ortho's wall: refitted without the spill
            m &= ~left_out
        if step > 1 or left_out is not None:  # compared on a subset: refitted on all (on all already otherwise)
            f = fit_roof(g, x[m], y[m], z[m], ground, noise, data_driven=False) if m.sum() >= min_samples else None
        out += split_roof(g, x[m], y[m], z[m], ground, noise, depth - 1, min_area, min_samples, max_eval,
                          f, tol, sweep_step, sweep_penalty, sweep_keep, ortho, spill)
    return out


def _ortho_edge(ax, t, poly, x, y, z, o) -> float:
    """Where the ortho ``o`` (at the samples ``(x, y)``) steps most across the straight cut
    at ``t`` along the axis ``ax``: the wall the image shows near the one the DSM ``z``
    shows. A stereo DSM carries the taller roof up to ``SPILL_M`` past the wall, so the
    wall is searched from the DSM's step up to that far towards the taller side (and half
    a metre the other way), across the cut's extent in ``poly`` (:func:`_edge_shift`);
    ``t`` itself where the DSM steps by less than ``JUMP_M`` across the cut (a ridge, or
    neighbours of one height: no spill)."""
    c, u, n = ax[1], ax[2], ax[3]
    s = (x - c[0]) * u[0] + (y - c[1]) * u[1] - t
    w = (x - c[0]) * n[0] + (y - c[1]) * n[1]
    cut = shapely.intersection(_sweep_line(ax, t), poly)
    ends = shapely.get_coordinates(cut)
    if not len(ends):
        return t
    we = (ends[:, 0] - c[0]) * n[0] + (ends[:, 1] - c[1]) * n[1]
    along = (w >= we.min()) & (w <= we.max())
    left = along & (s < -0.5) & (s > -2.5)
    right = along & (s > 0.5) & (s < 2.5)
    if left.sum() < 4 or right.sum() < 4:
        return t
    jump = np.median(z[right]) - np.median(z[left])
    if abs(jump) < JUMP_M:
        return t  # no wall with a step here (a ridge, or neighbours of one height): nothing spilt
    sign = 1.0 if jump > 0 else -1.0
    q = sign * s
    near = along & (q > -0.5 - EDGE_M) & (q < SPILL_M + EDGE_M)
    where = _edge_shift(q[near], w[near], o[near], -0.5)
    return t + sign * where


def _corner_cuts(poly, min_edge: float = 1.0, max_cuts: int = 12) -> list:
    """Cut lines at the inside corners of ``poly`` along their edges (longer than
    ``min_edge``); duplicates (the same line from its two ends) removed; at most
    ``max_cuts``, those continuing the longest edges (real walls, not the steps of a
    ragged outline) first.

    At a reflex corner of the outline the cut continues one of its two edges into the
    inside up to the first boundary it meets. A courtyard's corner cut is the whole line
    of its edge across the outline with the courtyard filled (a wing on either side), as
    one cut from a courtyard to the outside would only open the ring.
    """
    poly = shapely.geometry.polygon.orient(poly, 1.0)  # inside on the left of every ring
    filled = shapely.Polygon(poly.exterior)
    x0, y0, x1, y1 = poly.bounds
    reach = 2.0 * np.hypot(x1 - x0, y1 - y0)
    cuts, seen = [], set()
    for k, ring in enumerate([poly.exterior, *poly.interiors]):
        xy = np.asarray(ring.coords)[:-1]
        prev, nxt = np.roll(xy, 1, axis=0), np.roll(xy, -1, axis=0)
        d_in, d_out = xy - prev, nxt - xy
        turn = d_in[:, 0] * d_out[:, 1] - d_in[:, 1] * d_out[:, 0]
        for i in np.nonzero(turn < 0)[0]:
            for d in (d_in[i], -d_out[i]):
                length = np.hypot(*d)
                if length < min_edge:
                    continue
                u = d / length
                if k == 0:
                    ray = shapely.LineString([xy[i] + 1e-6 * u, xy[i] + reach * u])
                    hits = shapely.get_coordinates(shapely.intersection(ray, poly.boundary))
                    if not len(hits):
                        continue
                    ends = [xy[i], xy[i] + float(np.min((hits - xy[i]) @ u)) * u]
                    segs = [shapely.LineString([ends[0], ends[1] + 1e-6 * u])]
                else:
                    line = shapely.LineString([xy[i] - reach * u, xy[i] + reach * u])
                    chunks = shapely.get_parts(shapely.intersection(line, filled))
                    segs = [shapely.LineString(c[[0, -1]] + [[-1e-6 * s for s in u], [1e-6 * s for s in u]])
                            for c in map(shapely.get_coordinates, chunks) if len(c) >= 2]
                    ends = [c for s in segs for c in shapely.get_coordinates(s)]
                if not segs:
                    continue
                key = tuple(sorted(tuple(np.round(e, 2)) for e in ends))
                if key in seen:
                    continue
                seen.add(key)
                cuts.append((-length, key, shapely.MultiLineString(segs) if len(segs) > 1 else segs[0]))
    return [cut for _, _, cut in sorted(cuts, key=lambda t: t[:2])[:max_cuts]]


def _sweep_axes(poly, margin: float = 3.0) -> list:
    """``[(axis, centre, u, n, lo, hi, reach, start, end, left, right)]``: the axes of
    ``poly``'s frame (the minimum rotated rectangle's sides) at least ``2 * margin`` long,
    each with its unit vector ``u`` (straight cuts across ``poly`` are spaced along it),
    the unit normal ``n`` (they run along it), the range ``lo..hi`` of cut positions (along
    ``u`` from the centre, ``margin`` inside the rectangle's extent ``start..end``), the half
    length of a cut line and the rectangle's extent ``left..right`` along ``n``."""
    xy = np.asarray(shapely.minimum_rotated_rectangle(poly).exterior.coords)[:4]
    c = xy.mean(axis=0)
    axes = []
    for axis, e in enumerate((xy[1] - xy[0], xy[2] - xy[1])):
        length = float(np.hypot(*e))
        if length < 2 * margin:
            continue
        u = e / length                     # the cuts run across this side
        n = np.array([-u[1], u[0]])
        s = (xy - c) @ u
        reach = float(np.ptp((xy - c) @ n)) + 1.0
        w = (xy - c) @ n
        axes.append((axis, c, u, n, s.min() + margin, s.max() - margin, reach, s.min(), s.max(), w.min(), w.max()))
    return axes


def _sweep_positions(ax, step: float = 2.0, around=None) -> np.ndarray:
    """Cut positions along the axis ``ax`` (of :func:`_sweep_axes`): every ``step`` metres
    centred in its range, or, with ``around`` (a position), every quarter step within a
    step of that one."""
    lo, hi = ax[4], ax[5]
    if around is None:
        return lo + 0.5 * (hi - lo - step * np.floor((hi - lo) / step)) + step * np.arange(int((hi - lo) // step) + 1)
    ts = around + 0.25 * step * np.array([-3, -2, -1, 1, 2, 3])
    return ts[(ts >= lo) & (ts <= hi)]


def _sweep_line(ax, t: float):
    """The straight cut line across the part at position ``t`` along the axis ``ax``."""
    p = ax[1] + t * ax[2]
    return shapely.LineString([p - ax[6] * ax[3], p + ax[6] * ax[3]])


def _sweep_screened(ax, step, x, y, z, ground, noise, min_count) -> list:
    """The coarse cut positions along the axis ``ax`` (every ``step`` metres), best first
    by a screen of all of them at once (:func:`lod3d.kernels.lod_planes.screen_cuts`: the
    primitive roofs on either side of each fitted as over the two rectangles it cuts the
    frame into, no polygons cut; those where no roof is usable on a side last); positions
    where either side keeps fewer than ``min_count`` of the samples ``(x, y, z)`` are left
    out (no roof can be fitted there)."""
    ts = _sweep_positions(ax, step)
    c, u, n = ax[1], ax[2], ax[3]
    s = (x - c[0]) * u[0] + (y - c[1]) * u[1]
    w = (x - c[0]) * n[0] + (y - c[1]) * n[1]
    score = screen_cuts(s, w, np.asarray(z, float), ts, ax[7], ax[8], ax[9], ax[10], float(ground), noise,
                        np.tan(np.radians(70.0)), min_count)
    return [float(ts[i]) for i in np.argsort(score, kind="stable") if np.isfinite(score[i])]


def _cut(poly, segment) -> list:
    """The polygons ``segment`` (running from ``poly``'s boundary across its inside and a
    hair beyond) cuts ``poly`` into: the faces of the noded boundary and segment that lie
    inside."""
    noded = shapely.union_all([poly.boundary, segment])
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    return [f for f in faces if f.area > 0 and poly.contains(f.point_on_surface())]
