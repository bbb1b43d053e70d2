"""Roof samples of a footprint and its partition into parts at height jumps (LoD1.3).

The DSM cells whose centres fall inside the footprint are the roof samples. They are
grouped into height-continuous regions (:func:`lod3d.kernels.lod_regions.label_regions`:
a jump of more than ``step`` metres between neighbours that does not continue the local
slope separates two regions); regions smaller than ``min_area`` (chimneys, dormers,
noise) are not parts of their own. Every cell of the window then takes the label of the
nearest kept region, so the labels tile the whole footprint; the tiles are polygonized,
simplified as one coverage (neighbouring parts keep an exact common boundary) and clipped
by the footprint. Boundary segments within ``snap_deg`` of one of the footprint's own edge
directions are rotated onto it (about their midpoint, before clipping), so part walls run
parallel to the outline as on real buildings.

Each part polygon can then carry its own prism (LoD1.3) and roof (LoD2.2); adjacent parts
share a wall, and each part's solid is closed on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import rasterio.features
import shapely
from affine import Affine
from scipy import ndimage

from lod3d.kernels.lod_regions import label_regions

from ..raster import Raster

__all__ = ["RoofCells", "roof_cells", "partition"]

GRID = 1e-3  # metres: the node grid of the solids (equal to the CityJSON quantization)


@dataclass
class RoofCells:
    """The valid DSM samples inside one footprint polygon and their regions.

    ``x, y, z`` are cell centres and heights; ``label`` the region of each (0 = in no kept
    region); ``grid`` the region labels on the raster window (0 outside the footprint) and
    ``transform`` that window's transform; ``nodata`` counts cells inside without a height,
    those beyond the raster's edge included.
    """

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    label: np.ndarray
    grid: np.ndarray
    transform: Affine
    nodata: int


def roof_cells(poly, dsm: Raster, step: float = 1.0, min_area: float = 4.0) -> RoofCells:
    """Samples of ``dsm`` inside ``poly`` and their height-continuous regions."""
    inv = ~dsm.transform
    x0, y0, x1, y1 = poly.bounds
    c0, r0 = inv * (x0, y1)
    c1, r1 = inv * (x1, y0)
    h, w = dsm.shape
    r0, c0, r1, c1 = int(np.floor(r0)) - 1, int(np.floor(c0)) - 1, int(np.ceil(r1)) + 1, int(np.ceil(c1)) + 1
    outside = 0  # cells of the footprint beyond the raster: nodata too
    if r0 < 0 or c0 < 0 or r1 > h or c1 > w:
        rr, cc = np.mgrid[r0:r1, c0:c1]
        beyond = (rr < 0) | (rr >= h) | (cc < 0) | (cc >= w)
        outside = int(shapely.contains_xy(poly, *(dsm.transform * (cc[beyond] + 0.5, rr[beyond] + 0.5))).sum())
        r0, c0, r1, c1 = max(0, r0), max(0, c0), min(h, r1), min(w, c1)
    win = dsm.transform * Affine.translation(c0, r0)
    if r1 <= r0 or c1 <= c0:
        e = np.zeros(0)
        return RoofCells(e, e, e, np.zeros(0, np.int32), np.zeros((0, 0), np.int32), win, outside)
    rr, cc = np.mgrid[0:r1 - r0, 0:c1 - c0]
    xs, ys = win * (cc + 0.5, rr + 0.5)
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
    m = np.isfinite(z)
    return RoofCells(xs[m], ys[m], z[m], grid[m], grid, win, nodata)


def partition(poly, cells: RoofCells, snap_deg: float = 15.0, min_area: float = 4.0) -> list[tuple[object, int]]:
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
    simple = shapely.coverage_simplify([g for g, _ in shapes], res)
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
    pieces = _merge_small(pieces, min_area)
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


def _merge_small(pieces, min_area):
    """Merge pieces under ``min_area`` into the neighbour they share most boundary with
    (one touching others only at a corner is dropped)."""
    while len(pieces) > 1:
        areas = [p.area for p, _ in pieces]
        i = int(np.argmin(areas))
        if areas[i] >= min_area:
            break
        p = pieces.pop(i)[0]
        shared = [shapely.intersection(p.boundary, q.boundary).length for q, _ in pieces]
        j = int(np.argmax(shared))
        if shared[j] <= 0:
            continue  # isolated sliver (touching only at a corner): dropped
        merged = shapely.set_precision(shapely.union(pieces[j][0], p), GRID)
        merged = max(shapely.get_parts(merged), key=lambda g: g.area) if merged.geom_type != "Polygon" else merged
        pieces[j][0] = merged
    return pieces
