"""A procedural city with Toulouse-like morphology, exact and deterministic per seed.

Layout, from coarse to fine:

1. **Terrain**: a smooth analytic function, a gentle plane plus three long waves around
   195 m (Toulouse lies near 145 m altitude, ~50 m above the WGS84 ellipsoid).
2. **Districts**: a power diagram (weighted Voronoi) of jittered seeds; each cell has a
   morphology class and its own rotated street grid. The district at the scene's centre
   is historic and weighted to be larger (the historic core of Toulouse). A border between two districts is a street, or, for
   some, a boulevard with a planted median. Power cells are convex, so a rectangle whose
   corners keep clear of every border road lies wholly inside its cell.
3. **Blocks**: the street-grid cells. A cell crossing its district's border (or the
   scene's) is filled both as the whole cell keeping only the buildings that fit (ragged
   îlots along the boulevards) and as the largest fitting rectangle of an 11 × 11 lattice
   (whole halls, slabs); the option with more floor area wins. A few whole cells are left
   open as squares.
4. **Buildings**: each block is filled by the recipe of its class: historic îlots (a
   perimeter of attached buildings, 14-20 m deep, around small courtyards, with L-shaped
   corners, courtyard annexes and inner wings, or one courtyard building of four wings),
   terraced rows of narrow houses with rear extensions, detached houses in lots (L wings,
   garages), modern flat-roofed slabs and L/U/T/courtyard/tower blocks, industrial halls
   (flat, shed, low gable, sawtooth, office annexes). Everything is laid out in the
   block's own frame, so attached neighbours share exact coordinates and never overlap.
   Historic districts come out about half built over, a whole scene about 40 %.
5. **Trees**: rough, irregular crowns in rows on the boulevards' medians, and scattered
   in squares, courtyards and gardens (mostly in detached and terraced districts); never
   over a building and never rooted on a road.

A building is one or more **parts**: rectangles (rotated with their block) that abut and
each carry one analytic roof (``kernels.scene.roof_height``): flat, shed, gable, hip or
pyramid, with eave and ridge heights. The building stands on ``base``, the lowest terrain
under its footprint; every part's eave is at least 3 m above base and 2.5 m above the
highest terrain under the footprint, and no ridge is more than 40 m above base.

All randomness comes from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import shapely
from scipy.spatial import cKDTree
from shapely import affinity
from shapely.geometry import box

from lod3d.errors import InputError
from lod3d.kernels.scene import FLAT, GABLE, HIP, PYRAMID, SHED, road_points, terrain_points

__all__ = ["Scene", "Terrain", "Districts", "Parts", "BuildingRecord", "Trees", "Noise",
           "generate_scene", "ROOF_NAMES", "MORPHOLOGIES"]

ROOF_NAMES = {FLAT: "flat", SHED: "shed", GABLE: "gable", HIP: "hip", PYRAMID: "pyramid"}
MORPHOLOGIES = ("historic", "terraced", "detached", "modern", "industrial")

_MIN_EAVE, _MAX_RIDGE, _CLEARANCE = 3.0, 40.0, 2.5
# Per class: block length, block depth, street width (m), power-weight factor, tree
# acceptance in its blocks. Blocks are further capped by the district spacing.
_CLASS = {
    "historic": dict(w=(60, 100), d=(45, 75), street=(7, 10), power=0.15, trees=0.12),
    "terraced": dict(w=(60, 140), d=(40, 55), street=(8, 12), power=0.0, trees=0.25),
    "detached": dict(w=(60, 130), d=(40, 60), street=(9, 12), power=0.0, trees=0.6),
    "modern": dict(w=(60, 120), d=(50, 90), street=(11, 16), power=0.0, trees=0.3),
    "industrial": dict(w=(120, 260), d=(90, 180), street=(12, 18), power=0.3, trees=0.05),
}
_CLASS_WEIGHTS = np.array([0.65, 0.15, 0.05, 0.1, 0.05])
_CORE_POWER = 0.9  # power-weight factor of the central historic district: a larger core
_SPACING = 250.0  # mean district size (m)
_BOULEVARD = 0.3  # share of district borders that are boulevards
_SQUARE = 0.04  # share of whole street-grid cells left open as squares
_OPEN_TREES = 0.3  # tree acceptance outside blocks (squares, leftovers)
_SIDEWALK = 1.0  # buildings keep this clear of every road (m)


@dataclass(frozen=True)
class Terrain:
    """``z = z0 + g·(p - c) + Σ amp·sin(k·(p - c) + phase)``, metres (ellipsoidal)."""

    z0: float
    center: tuple[float, float]
    gradient: tuple[float, float]
    k: np.ndarray  # (n, 2) wave vectors, rad/m
    amp: np.ndarray
    phase: np.ndarray

    def kernel_args(self) -> tuple:
        return (self.z0, self.center[0], self.center[1], self.gradient[0], self.gradient[1],
                np.ascontiguousarray(self.k[:, 0]), np.ascontiguousarray(self.k[:, 1]),
                self.amp, self.phase)

    def __call__(self, x, y) -> np.ndarray:
        xs = np.atleast_1d(np.asarray(x, np.float64)).ravel()
        ys = np.atleast_1d(np.asarray(y, np.float64)).ravel()
        return terrain_points(xs, ys, *self.kernel_args()).reshape(np.shape(x))


@dataclass(frozen=True)
class Districts:
    """Power-diagram cells, each with a class and a rotated street grid.

    ``width[a, b]`` is the road along the border of adjacent districts ``a`` and ``b``
    (0 where they do not touch), ``median[a, b]`` its planted median (0: none).
    """

    seeds: np.ndarray  # (k, 2)
    power: np.ndarray  # weights w of the power distance |p - s|² - w
    morphology: tuple[str, ...]
    origin: np.ndarray  # (k, 2) street-grid origin
    angle: np.ndarray  # radians, counter-clockwise from east
    pitch: np.ndarray  # (k, 2) street-grid periods along u and v
    street: np.ndarray  # street widths
    width: np.ndarray  # (k, k)
    median: np.ndarray  # (k, k)

    def kernel_args(self) -> tuple:
        return (np.ascontiguousarray(self.seeds[:, 0]), np.ascontiguousarray(self.seeds[:, 1]),
                self.power, np.ascontiguousarray(self.origin[:, 0]),
                np.ascontiguousarray(self.origin[:, 1]), np.cos(self.angle), np.sin(self.angle),
                np.ascontiguousarray(self.pitch[:, 0]), np.ascontiguousarray(self.pitch[:, 1]),
                self.street, self.width, self.median)

    def power_distance(self, pts: np.ndarray) -> np.ndarray:
        """(n, k) power distances of points to every seed."""
        d = pts[:, None, :] - self.seeds[None, :, :]
        return (d**2).sum(-1) - self.power[None, :]

    def clearance(self, pts: np.ndarray, district: int) -> np.ndarray:
        """Distance of points inside ``district``'s cell to the nearest border road's edge
        (negative on or beyond it)."""
        pd = self.power_distance(pts)
        sep = np.linalg.norm(self.seeds - self.seeds[district], axis=1)
        others = np.arange(len(self.seeds)) != district
        m = (pd[:, others] - pd[:, [district]]) / (2.0 * sep[others]) \
            - self.width[district, others] / 2
        return m.min(axis=1) if m.shape[1] else np.full(len(pts), np.inf)

    def is_road(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return road_points(np.asarray(x, np.float64), np.asarray(y, np.float64),
                           *self.kernel_args())

    def district_of(self, pts: np.ndarray) -> np.ndarray:
        return self.power_distance(pts).argmin(axis=1)


def _bisector(seeds, power, a, b, centre, length):
    """The half-plane where ``a``'s power distance is the lesser, as a big polygon, and its
    border line (a segment of ``length`` centred near ``centre``)."""
    n = seeds[b] - seeds[a]
    sep = float(np.linalg.norm(n))
    n = n / sep
    c = (seeds[b] @ seeds[b] - seeds[a] @ seeds[a] + power[a] - power[b]) / (2 * sep)
    p0 = centre + (c - n @ centre) * n
    t = np.array([-n[1], n[0]])
    line = np.array([p0 - length * t, p0 + length * t])
    half = shapely.Polygon([line[0], line[1], line[1] - length * n, line[0] - length * n])
    return half, shapely.LineString(line)


def _cells(seeds, power, bounds):
    """The power cells clipped to ``bounds`` (shapely polygons) and, for every pair of
    districts sharing a border longer than 2 m, that border as a line: {(a, b): line}."""
    xmin, ymin, xmax, ymax = bounds
    centre = np.array([(xmin + xmax) / 2, (ymin + ymax) / 2])
    length = 10 * math.hypot(xmax - xmin, ymax - ymin)
    k = len(seeds)
    cells = []
    for a in range(k):
        cell = box(*bounds)
        for b in range(k):
            if b != a:
                cell = cell.intersection(_bisector(seeds, power, a, b, centre, length)[0])
        cells.append(cell)
    borders = {}
    for a in range(k):
        for b in range(a + 1, k):
            line = _bisector(seeds, power, a, b, centre, length)[1]
            shared = line.intersection(cells[a].buffer(0.01)).intersection(cells[b].buffer(0.01))
            if shared.length > 2.0:
                borders[(a, b)] = shared
    return cells, borders


@dataclass(frozen=True)
class Parts:
    """Building parts as arrays (one row per part) for the kernels.

    A part is the rectangle ``|u| <= a, |v| <= b`` around ``(cx, cy)`` in the frame
    rotated by ``angle`` (u = ridge direction); roofs are ``kernels.scene`` codes;
    ``base``, ``eave``, ``ridge`` are absolute heights (m); ``building`` is the owner's id.
    """

    building: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    angle: np.ndarray
    a: np.ndarray
    b: np.ndarray
    roof: np.ndarray
    base: np.ndarray
    eave: np.ndarray
    ridge: np.ndarray
    albedo: np.ndarray

    def __len__(self) -> int:
        return len(self.cx)

    def kernel_args(self) -> tuple:
        return (self.cx, self.cy, np.cos(self.angle), np.sin(self.angle), self.a, self.b,
                self.roof, self.eave, self.ridge)

    def corners(self, p: int) -> np.ndarray:
        """(4, 2) world corners of part ``p``, counter-clockwise seen from above."""
        c, s = math.cos(self.angle[p]), math.sin(self.angle[p])
        local = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [self.a[p], self.b[p]]
        return np.column_stack([self.cx[p] + local[:, 0] * c - local[:, 1] * s,
                                self.cy[p] + local[:, 0] * s + local[:, 1] * c])


@dataclass(frozen=True)
class BuildingRecord:
    """One building: integer id (> 0), class, its part rows, footprint, base height."""

    id: int
    morphology: str
    parts: np.ndarray
    footprint: object
    base: float
    wall_albedo: float


@dataclass(frozen=True)
class Trees:
    """Tree crowns (see ``kernels.scene.draw_trees``); heights absolute except trunk/crown."""

    x: np.ndarray
    y: np.ndarray
    ground: np.ndarray
    trunk: np.ndarray
    crown: np.ndarray
    radius: np.ndarray
    harm_amp: np.ndarray  # (n, 3)
    harm_phase: np.ndarray  # (n, 3)
    rough: np.ndarray
    albedo: np.ndarray
    rough_scale: float = 0.8

    def __len__(self) -> int:
        return len(self.x)

    def reach(self) -> np.ndarray:
        """Largest crown radius of each tree."""
        return self.radius * (1.0 + np.abs(self.harm_amp).sum(axis=1))


@dataclass(frozen=True)
class Noise:
    """Lattice tables of ``kernels.scene.value_noise``, drawn from the scene seed."""

    perm: np.ndarray
    values: np.ndarray


@dataclass
class Scene:
    """The procedural city: analytic terrain, districts/roads, buildings, trees.

    ``buildings[k]`` has id ``k + 1`` (ids are the values of the truth building raster);
    ``blocks`` are the block rectangles (shapely polygons) that the buildings fill (a
    ragged block's rectangle reaches past its district's border roads).
    """

    bounds: tuple[float, float, float, float]
    crs: str
    seed: int
    terrain: Terrain
    districts: Districts
    parts: Parts
    buildings: list[BuildingRecord]
    trees: Trees
    noise: Noise
    blocks: list = field(default_factory=list)

    def building(self, building_id: int) -> BuildingRecord:
        return self.buildings[building_id - 1]

    def statistics(self, bounds=None) -> dict:
        """Counts by roof type (parts and buildings) and class, heights, trees, built-up share.

        With ``bounds`` (xmin, ymin, xmax, ymax) the counts cover the buildings whose
        footprint intersects them (all their parts), the trees rooted inside them, and the
        built-up share is the footprint area inside them over their area; by default the
        whole scene.
        """
        area = box(*(self.bounds if bounds is None else bounds))
        buildings = [b for b in self.buildings if b.footprint.intersects(area)]
        p = self.parts
        idx = np.concatenate([b.parts for b in buildings]) if buildings else np.zeros(0, int)
        rel_ridge = p.ridge - p.base
        heights = np.array([rel_ridge[b.parts].max() for b in buildings])
        main_roof = [ROOF_NAMES[int(p.roof[b.parts[np.argmax(p.a[b.parts] * p.b[b.parts])]])]
                     for b in buildings]
        built = sum(b.footprint.intersection(area).area for b in buildings)
        trees = shapely.contains_xy(area, self.trees.x, self.trees.y)
        return {
            "n_buildings": len(buildings),
            "n_parts": len(idx),
            "n_trees": int(trees.sum()),
            "n_multipart_buildings": sum(len(b.parts) > 1 for b in buildings),
            "parts_by_roof_type": {name: int((p.roof[idx] == code).sum())
                                   for code, name in ROOF_NAMES.items()},
            "buildings_by_main_roof_type": {name: main_roof.count(name)
                                            for name in ROOF_NAMES.values()},
            "buildings_by_morphology": {m: sum(b.morphology == m for b in buildings)
                                        for m in MORPHOLOGIES},
            "height_m": {"min": float(heights.min()) if len(heights) else None,
                         "median": float(np.median(heights)) if len(heights) else None,
                         "max": float(heights.max()) if len(heights) else None},
            "built_up_share": float(built / area.area),
        }


# --------------------------------------------------------------------------- recipes
# A recipe fills a block [0, W] x [0, D] (block frame) and returns buildings as lists of
# part specs: (u0, u1, v0, v1, roof, axis, eave, rise, albedo, flip). ``axis`` "u" puts
# the ridge along the block's u axis; ``rise`` is ridge - eave; ``flip`` turns a shed.


def _spec(u0, u1, v0, v1, roof, axis, eave, pitch_deg, albedo, flip=False):
    across = (v1 - v0) if axis == "u" else (u1 - u0)
    along = (u1 - u0) if axis == "u" else (v1 - v0)
    if roof == SHED:
        rise = math.tan(math.radians(pitch_deg)) * across
    elif roof == GABLE:
        rise = math.tan(math.radians(pitch_deg)) * across / 2
    elif roof in (HIP, PYRAMID):
        rise = math.tan(math.radians(pitch_deg)) * min(across, along) / 2
    else:
        rise = 0.0
    rise = min(rise, _MAX_RIDGE - 1.0 - eave)
    return (u0, u1, v0, v1, roof, axis, eave, max(rise, 0.0), albedo, flip)


def _split(length, lo, hi, rng):
    """Cut [0, length] into consecutive pieces of lengths in [lo, hi] (last may be longer)."""
    cuts = [0.0]
    while length - cuts[-1] >= lo + hi:
        cuts.append(cuts[-1] + rng.uniform(lo, hi))
    cuts.append(length)
    return list(zip(cuts[:-1], cuts[1:]))


def _tile_albedo(rng):
    return rng.uniform(0.22, 0.34)


def _flat_albedo(rng):
    return rng.uniform(0.15, 0.45)


def _pick(rng, options, probs):
    return options[rng.choice(len(options), p=probs)]


def _historic(W, D, rng):
    """An îlot: rows of attached buildings 14-20 m deep along the four streets, corner
    L-buildings, low annexes and often an inner wing across the courtyard (which leaves
    two small courtyards); or, sometimes, one courtyard building of four wings."""
    d = rng.uniform(14, 20)
    if W < 2 * d + 10 or D < 2 * d + 10 or rng.random() < 0.12:
        return [("historic", _courtyard(W, D, d, rng, modern=False))]
    out = []

    def roof_for(length):
        if abs(length - d) < 3 and rng.random() < 0.5:
            return PYRAMID
        return _pick(rng, [GABLE, HIP, FLAT, SHED], [0.6, 0.17, 0.12, 0.11])

    def row_part(u0, u1, v0, v1, axis, eave):
        roof = roof_for((u1 - u0) if axis == "u" else (v1 - v0))
        pitch = rng.uniform(8, 18) if roof == SHED else rng.uniform(15, 35)
        return _spec(u0, u1, v0, v1, roof, axis, eave, pitch, _tile_albedo(rng),
                     flip=bool(rng.random() < 0.5))

    rows = {
        "S": [(u0, u1, 0.0, d, "u") for u0, u1 in _split(W, 7, 18, rng)],
        "N": [(u0, u1, D - d, D, "u") for u0, u1 in _split(W, 7, 18, rng)],
        "W": [(0.0, d, v0 + d, v1 + d, "v") for v0, v1 in _split(D - 2 * d, 7, 18, rng)],
        "E": [(W - d, W, v0 + d, v1 + d, "v") for v0, v1 in _split(D - 2 * d, 7, 18, rng)],
    }
    court = D - 2 * d
    # An inner wing across the courtyard, from the west row to the east row or short of one.
    inner = rng.uniform(8, 12) if court >= 24 and rng.random() < 0.9 else 0.0
    if inner:
        gap = rng.uniform(4, 8) if rng.random() < 0.5 else 0.0
        u0, u1 = (d + gap, W - d) if rng.random() < 0.5 else (d, W - d - gap)
        parts = [_spec(u0, u1, D / 2 - inner / 2, D / 2 + inner / 2, GABLE, "u",
                       rng.uniform(7, 14), rng.uniform(15, 35), _tile_albedo(rng))]
        out.append(("historic", parts))
    free = (court - inner) / 2 - (3 if inner else 0) - 3  # annex depth left in a courtyard
    # Corner L-buildings: merge a row's end segment with the adjoining column's segment.
    corners = {("S", 0, "W", 0), ("S", -1, "E", 0), ("N", 0, "W", -1), ("N", -1, "E", -1)}
    merged = set()
    for r, ri, c, ci in sorted(corners):
        if rng.random() < 0.5 and len(rows[c]) > 1:
            ri, ci = ri % len(rows[r]), ci % len(rows[c])
            eave = rng.uniform(10, 20)
            out.append(("historic", [row_part(*rows[r][ri], eave),
                                     row_part(*rows[c][ci], eave + rng.uniform(-2, 2))]))
            merged |= {(r, ri), (c, ci)}
    for r, segs in rows.items():
        for k, seg in enumerate(segs):
            if (r, k) in merged:
                continue
            eave = rng.uniform(9, 21)
            parts = [row_part(*seg, eave)]
            u0, u1 = seg[0], seg[1]
            if r in "SN" and u0 >= d and u1 <= W - d and u1 - u0 > 5 and free >= 3 \
                    and rng.random() < 0.5:
                e = rng.uniform(3, min(10, free))
                v0, v1 = (d, d + e) if r == "S" else (D - d - e, D - d)
                parts.append(_spec(u0 + 1, u1 - 1, v0, v1, FLAT, "u",
                                   rng.uniform(3.2, 4.5), 0, _flat_albedo(rng)))
            out.append(("historic", parts))
    return out


def _courtyard(W, D, d, rng, modern):
    """One building of four wings around a courtyard (or one part if the block is small)."""
    def wing(u0, u1, v0, v1, axis):
        if modern:
            return _spec(u0, u1, v0, v1, FLAT, axis, rng.uniform(12, 30), 0, _flat_albedo(rng))
        roof = _pick(rng, [GABLE, HIP], [0.7, 0.3])
        return _spec(u0, u1, v0, v1, roof, axis, rng.uniform(9, 18), rng.uniform(15, 35),
                     _tile_albedo(rng))

    if W - 2 * d < 6 or D - 2 * d < 6:
        return [wing(0, W, 0, D, "u" if W >= D else "v")]
    return [wing(0, W, 0, d, "u"), wing(0, W, D - d, D, "u"),
            wing(0, d, d, D - d, "v"), wing(W - d, W, d, D - d, "v")]


def _terraced(W, D, rng):
    d = rng.uniform(9, 13)
    two_rows = D >= 2 * d + 15
    space = (D - 2 * d) / 2 if two_rows else D - d
    out = []
    for row in ("S", "N") if two_rows else ("S",):
        u = rng.uniform(0, 4)
        while True:
            w = rng.uniform(4.5, 8.0)
            if u + w > W:
                break
            v0, v1 = (0.0, d) if row == "S" else (D - d, D)
            roof = _pick(rng, [GABLE, SHED, FLAT], [0.7, 0.15, 0.15])
            pitch = rng.uniform(8, 15) if roof == SHED else rng.uniform(18, 35)
            parts = [_spec(u, u + w, v0, v1, roof, "u", rng.uniform(5.5, 10), pitch,
                           _tile_albedo(rng) if roof != FLAT else _flat_albedo(rng),
                           flip=bool(rng.random() < 0.5))]
            if rng.random() < 0.6 and space >= 9:
                e = rng.uniform(3, min(8, space - 4))
                ew = w * rng.uniform(0.5, 1.0)
                ev0, ev1 = (d, d + e) if row == "S" else (D - d - e, D - d)
                roof = _pick(rng, [FLAT, SHED], [0.6, 0.4])
                parts.append(_spec(u, u + ew, ev0, ev1, roof, "u", rng.uniform(3.0, 3.6),
                                   rng.uniform(5, 12), _flat_albedo(rng), flip=row == "S"))
            out.append(("terraced", parts))
            u += w
            if rng.random() < 0.06:
                u += rng.uniform(2, 4)
    return out


def _detached(W, D, rng):
    rows = 2 if D >= 36 else 1
    depth = D / rows
    out = []
    for row in range(rows):
        for u0, u1 in _split(W, 15, 24, rng):
            L = u1 - u0
            lot = _house(L, depth, rng)
            for parts in lot:
                mapped = []
                for x0, x1, y0, y1, *rest in parts:
                    # Lot frame: x along the street from u0, y away from the street.
                    v0, v1 = (y0, y1) if row == 0 else (D - y1, D - y0)
                    mapped.append((u0 + x0, u0 + x1, v0, v1, *rest))
                out.append(("detached", mapped))
    return out


def _house(L, depth, rng):
    """A house in a lot [0, L] x [0, depth] (street at y = 0), 1.5 m clear of lot edges."""
    w = rng.uniform(8, min(13, L - 4))
    dd = rng.uniform(7, min(10, depth - 8))
    if w < 6 or dd < 6:
        return []
    roof = _pick(rng, [PYRAMID, HIP, GABLE], [0.3, 0.35, 0.35])
    if roof == PYRAMID:
        w = dd = min(w, dd)
    y0 = rng.uniform(3, 6)
    x0 = 2 + rng.uniform(0, max(L - 4 - w, 0))
    eave = rng.uniform(3, 6.5)
    axis = "u" if w >= dd else "v"
    parts = [_spec(x0, x0 + w, y0, y0 + dd, roof, axis, eave, rng.uniform(20, 38),
                   _tile_albedo(rng))]
    if rng.random() < 0.3:
        ww, wl = rng.uniform(4, 0.6 * w), rng.uniform(3, 6)
        if y0 + dd + wl <= depth - 1.5:
            wroof = _pick(rng, [GABLE, FLAT], [0.6, 0.4])
            parts.append(_spec(x0, x0 + ww, y0 + dd, y0 + dd + wl, wroof, "v",
                               rng.uniform(3, eave), rng.uniform(20, 35), _tile_albedo(rng)))
    if rng.random() < 0.3 and x0 + w + 3.5 <= L - 1.5:
        parts.append(_spec(x0 + w, x0 + w + 3.5, y0, y0 + 6, FLAT, "u", rng.uniform(3, 3.2), 0,
                           _flat_albedo(rng)))
    return [parts]


def _modern(W, D, rng):
    sb = rng.uniform(2, 6)
    w_all, h = W - 2 * sb, D - 2 * sb
    lots = [(sb, sb + w_all)] if w_all < 80 else \
        [(sb, sb + w_all / 2 - 5), (sb + w_all / 2 + 5, sb + w_all)]
    out = []
    for u0, u1 in lots:
        w = u1 - u0
        t = rng.uniform(12, 20)

        def flat(a0, a1, b0, b1, eave=None):
            roof = FLAT if rng.random() < 0.9 else SHED
            return _spec(u0 + a0, u0 + a1, sb + b0, sb + b1, roof, "u",
                         rng.uniform(12, 32) if eave is None else eave, rng.uniform(4, 9),
                         _flat_albedo(rng))

        shape = _pick(rng, ["slab", "L", "U", "T", "tower", "court"],
                      [0.25, 0.2, 0.15, 0.15, 0.1, 0.15])
        if shape in ("L", "U", "T", "court") and (w < 2 * t + 8 or h < 2 * t + 8):
            shape = "slab"
        if shape == "slab" and h >= 2 * t + 12:  # two parallel slabs, front and back
            out.append(("modern", [flat(0, w, 0, t)]))
            parts = [flat(0, w, h - t, h)]
        elif shape == "slab":
            c = h / 2
            parts = [flat(0, w, c - t / 2, c + t / 2)]
        elif shape == "L":
            parts = [flat(0, w, 0, t), flat(0, t, t, h)]
        elif shape == "U":
            parts = [flat(0, w, 0, t), flat(0, t, t, h), flat(w - t, w, t, h)]
        elif shape == "T":
            parts = [flat(0, w, h - t, h), flat(w / 2 - t / 2, w / 2 + t / 2, 0, h - t)]
        elif shape == "tower":
            s = min(rng.uniform(18, 28), w, h)
            c0, c1 = w / 2 - s / 2, h / 2 - s / 2
            parts = [flat(c0, c0 + s, c1, c1 + s, eave=rng.uniform(28, 39))]
            if c0 >= 12:
                parts.append(flat(c0 - rng.uniform(8, min(20, c0)), c0, c1, c1 + s / 2,
                                  eave=rng.uniform(5, 9)))
        else:
            parts = [(a0 + u0, a1 + u0, b0 + sb, b1 + sb, *rest) for a0, a1, b0, b1, *rest
                     in _courtyard(w, h, t, rng, modern=True)]
        out.append(("modern", parts))
    return out


def _industrial(W, D, rng):
    sb = rng.uniform(4, 10)
    w_all, h = W - 2 * sb, D - 2 * sb
    if w_all < 20 or h < 20:
        return []
    lots = [(sb, sb + w_all)]
    if w_all > 2 * h and w_all > 140:
        gap = rng.uniform(12, 20)
        lots = [(sb, sb + (w_all - gap) / 2), (sb + (w_all + gap) / 2, sb + w_all)]
    out = []
    for u0, u1 in lots:
        w = u1 - u0
        parts = []
        v0 = sb
        if rng.random() < 0.4 and h > 50:
            front = rng.uniform(8, 12)
            ow = min(rng.uniform(15, 30), w)
            parts.append(_spec(u0, u0 + ow, sb, sb + front, FLAT, "u", rng.uniform(6, 10), 0,
                               _flat_albedo(rng)))
            v0 = sb + front
        eave = rng.uniform(7, 13)
        metal = rng.uniform(0.35, 0.6)
        roof = _pick(rng, ["flat", "shed", "gable", "saw"], [0.3, 0.2, 0.25, 0.25])
        axis = "u" if w >= h else "v"
        if roof == "saw":
            teeth = max(2, round(w / rng.uniform(8, 14)))
            pitch = rng.uniform(18, 25)
            edges = u0 + w * np.arange(teeth + 1) / teeth
            for t0, t1 in zip(edges[:-1], edges[1:]):
                parts.append(_spec(t0, t1, v0, sb + h, SHED, "v", eave, pitch, metal))
        elif roof == "gable":
            parts.append(_spec(u0, u1, v0, sb + h, GABLE, axis, eave, rng.uniform(5, 12), metal))
        elif roof == "shed":
            parts.append(_spec(u0, u1, v0, sb + h, SHED, axis, eave, rng.uniform(3, 6), metal,
                               flip=bool(rng.random() < 0.5)))
        else:
            parts.append(_spec(u0, u1, v0, sb + h, FLAT, axis, eave, 0, metal))
        out.append(("industrial", parts))
    return out


_RECIPES = {"historic": _historic, "terraced": _terraced, "detached": _detached,
            "modern": _modern, "industrial": _industrial}


# --------------------------------------------------------------------------- assembly


def _check_bounds(bounds) -> tuple[float, float, float, float]:
    try:
        xmin, ymin, xmax, ymax = (float(v) for v in bounds)
    except (TypeError, ValueError) as exc:
        raise InputError(f"scene bounds must be four numbers (xmin, ymin, xmax, ymax), "
                         f"got {bounds!r}") from exc
    if not all(map(math.isfinite, (xmin, ymin, xmax, ymax))) or xmax <= xmin or ymax <= ymin:
        raise InputError(f"scene bounds {bounds!r} are empty or not finite")
    if min(xmax - xmin, ymax - ymin) < 50 or max(xmax - xmin, ymax - ymin) > 20_000:
        raise InputError(f"scene bounds {bounds!r}: sides must be 50 m to 20 km")
    return xmin, ymin, xmax, ymax


def _terrain(bounds, rng) -> Terrain:
    xmin, ymin, xmax, ymax = bounds
    slope = rng.uniform(0.003, 0.008)
    direction = rng.uniform(0, 2 * np.pi)
    wavelength = rng.uniform(300, 1200, size=3)
    heading = rng.uniform(0, 2 * np.pi, size=3)
    k = np.column_stack([np.cos(heading), np.sin(heading)]) * (2 * np.pi / wavelength)[:, None]
    return Terrain(z0=195.0 + rng.uniform(-3, 3),
                   center=((xmin + xmax) / 2, (ymin + ymax) / 2),
                   gradient=(slope * math.cos(direction), slope * math.sin(direction)),
                   k=k, amp=wavelength * 0.003 * rng.uniform(0.4, 1.0, size=3),
                   phase=rng.uniform(0, 2 * np.pi, size=3))


def _districts(bounds, rng) -> Districts:
    xmin, ymin, xmax, ymax = bounds
    W, H = xmax - xmin, ymax - ymin
    nx, ny = max(1, round(W / _SPACING)), max(1, round(H / _SPACING))
    while nx * ny < 5:
        nx, ny = (nx + 1, ny) if W / nx >= H / ny else (nx, ny + 1)
    gx, gy = np.meshgrid((np.arange(nx) + 0.5) / nx, (np.arange(ny) + 0.5) / ny)
    jitter = rng.uniform(-0.2, 0.2, size=(nx * ny, 2)) / [nx, ny]
    seeds = np.column_stack([gx.ravel(), gy.ravel()]) + jitter
    seeds = np.column_stack([xmin + seeds[:, 0] * W, ymin + seeds[:, 1] * H])
    k = len(seeds)
    classes = list(rng.choice(len(MORPHOLOGIES), size=k, p=_CLASS_WEIGHTS))
    classes[:5] = rng.permutation(5)  # every class once, whatever the scene size
    classes = [MORPHOLOGIES[c] for c in rng.permutation(classes)]
    # The district at the centre is historic: swap classes with a historic one.
    centre = int(np.argmin(np.hypot(seeds[:, 0] - (xmin + xmax) / 2, seeds[:, 1] - (ymin + ymax) / 2)))
    other = classes.index("historic")
    classes[centre], classes[other] = classes[other], classes[centre]
    spacing = math.sqrt(W * H / k)
    base = rng.uniform(0, np.pi / 2)
    orientations = base + np.radians([0.0, 22.0, 57.0])
    angle = orientations[rng.integers(0, 3, size=k)] + np.radians(rng.normal(0, 2, size=k))
    street = np.array([rng.uniform(*_CLASS[c]["street"]) for c in classes])
    blocks = np.array([[min(rng.uniform(*_CLASS[c]["w"]), (1.2 if c == "industrial" else 0.45)
                            * spacing),
                        min(rng.uniform(*_CLASS[c]["d"]), (0.9 if c == "industrial" else 0.4)
                            * spacing)] for c in classes])
    power = np.array([(_CLASS[c]["power"] * spacing) ** 2 for c in classes])
    power[centre] = (_CORE_POWER * spacing) ** 2
    # Each street grid is centred on its seed: the middle block sits in the cell's heart.
    half = blocks / 2 + street[:, None]
    origin = seeds - half[:, :1] * np.column_stack([np.cos(angle), np.sin(angle)]) \
        - half[:, 1:] * np.column_stack([-np.sin(angle), np.cos(angle)])
    # Border roads: a boulevard (with a planted median) or a street as wide as the wider
    # of the two districts' streets.
    width, median = np.zeros((k, k)), np.zeros((k, k))
    for a, b in sorted(_cells(seeds, power, bounds)[1]):
        if rng.random() < _BOULEVARD:
            width[a, b], median[a, b] = rng.uniform(20, 26), rng.uniform(4, 6)
        else:
            width[a, b] = max(street[a], street[b]) + rng.uniform(0, 2)
    return Districts(seeds=seeds, power=power, morphology=tuple(classes), origin=origin,
                     angle=angle, pitch=blocks + street[:, None], street=street,
                     width=np.maximum(width, width.T), median=np.maximum(median, median.T))


# Candidate sub-rectangles of a street-grid cell, as indices into an 11 x 11 lattice of
# tenths of the cell: cut 0-50 % off each side; sorted largest first.
_CUT = np.array(np.meshgrid(*[np.arange(6)] * 4, indexing="ij")).reshape(4, -1).T
_RECT = np.column_stack([_CUT[:, 0], 10 - _CUT[:, 1], _CUT[:, 2], 10 - _CUT[:, 3]])
_RECT = _RECT[np.argsort(-(_RECT[:, 1] - _RECT[:, 0]) * (_RECT[:, 3] - _RECT[:, 2]),
                         kind="stable")]


def _blocks(bounds, districts: Districts, rng):
    """Street-grid cells as (district, origin xy, angle, W, D, shrunk), fitted to the
    district and the scene.

    A cell whose lattice of 11 × 11 points keeps clear of every border road and of the
    scene edge is whole (``shrunk`` None); it becomes an open square with probability
    ``_SQUARE``. A cell crossing the border is kept if a tenth of it fits, with
    ``shrunk`` = (origin, W, D) of its largest rectangle whose corners all fit (corners
    suffice: the region is convex), of those left after cutting 0-50 % off each side, or
    ``False`` if none does; :func:`_fill` then chooses how to build it.
    """
    xmin, ymin, xmax, ymax = bounds
    scene_corners = np.array([[xmin, ymin], [xmax, ymin], [xmax, ymax], [xmin, ymax]])
    tenths = np.arange(11) / 10
    out = []
    for d in range(len(districts.seeds)):
        c, s = math.cos(districts.angle[d]), math.sin(districts.angle[d])
        eu, ev = np.array([c, s]), np.array([-s, c])
        rel = scene_corners - districts.origin[d]
        u, v = rel @ eu, rel @ ev
        pu, pv = districts.pitch[d]
        sw = districts.street[d]
        W0, D0 = pu - sw, pv - sw
        big = np.minimum((_RECT[:, 1] - _RECT[:, 0]) * W0 / 10,
                         (_RECT[:, 3] - _RECT[:, 2]) * D0 / 10) >= 25
        angle = float(districts.angle[d])
        for ku in range(int(math.floor(u.min() / pu)), int(math.ceil(u.max() / pu))):
            for kv in range(int(math.floor(v.min() / pv)), int(math.ceil(v.max() / pv))):
                o0 = districts.origin[d] + (ku * pu + sw) * eu + (kv * pv + sw) * ev
                centre = o0 + W0 / 2 * eu + D0 / 2 * ev
                if districts.clearance(centre[None], d)[0] < -math.hypot(W0, D0) / 2:
                    continue  # the cell cannot reach into this district
                lattice = (o0 + (tenths[:, None, None] * W0) * eu
                           + (tenths[None, :, None] * D0) * ev).reshape(-1, 2)
                fits = _fits(lattice, d, bounds, districts)
                if fits.all():
                    if rng.random() >= _SQUARE:
                        out.append((d, o0, angle, W0, D0, None))
                    continue
                if fits.mean() < 0.1:
                    continue
                fits = fits.reshape(11, 11)
                ok = big & fits[_RECT[:, 0], _RECT[:, 2]] & fits[_RECT[:, 1], _RECT[:, 2]] \
                    & fits[_RECT[:, 1], _RECT[:, 3]] & fits[_RECT[:, 0], _RECT[:, 3]]
                shrunk = False
                if ok.any():
                    i0, i1, j0, j1 = _RECT[np.argmax(ok)] / 10
                    shrunk = (o0 + i0 * W0 * eu + j0 * D0 * ev, (i1 - i0) * W0, (j1 - j0) * D0)
                out.append((d, o0, angle, W0, D0, shrunk))
    return out


def _fill(block, districts: Districts, bounds, rng):
    """Origin, angle, size and buildings ``[(morphology, specs)]`` of one block.

    A whole cell takes its class's recipe. A cell crossing the border is filled both ways,
    keeping the one with more floor area: the whole cell, trimmed to the buildings whose
    every corner fits (ragged îlots along the border), or its shrunk rectangle.
    """
    d, origin, angle, W, D, shrunk = block
    recipe = _RECIPES[districts.morphology[d]]
    whole = [(m, specs) for m, specs in recipe(W, D, rng) if specs]
    if shrunk is None:
        return origin, angle, W, D, whole
    corners = [np.array([[u0, v0], [u1, v0], [u1, v1], [u0, v1]])
               for _, specs in whole for u0, u1, v0, v1, *_ in specs]
    ok = _fits(_to_world(np.concatenate(corners), origin, angle), d, bounds, districts) \
        if corners else np.zeros(0, bool)
    ends = np.cumsum([4 * len(specs) for _, specs in whole])
    options = [(origin, angle, W, D, [b for b, chunk in zip(whole, np.split(ok, ends[:-1]))
                               if chunk.all()])]
    if shrunk:
        o, w, h = shrunk
        options.append((o, angle, w, h, [(m, specs) for m, specs in recipe(w, h, rng) if specs]))

    def floor_area(option):
        return sum((u1 - u0) * (v1 - v0) for _, specs in option[4] for u0, u1, v0, v1, *_ in specs)

    return max(options, key=floor_area)


def _fits(pts, district, bounds, districts: Districts) -> np.ndarray:
    """Whether world points may carry a building of ``district``: clear of its border roads
    and 1 m inside the scene."""
    xmin, ymin, xmax, ymax = bounds
    return ((pts[:, 0] >= xmin + 1) & (pts[:, 0] <= xmax - 1)
            & (pts[:, 1] >= ymin + 1) & (pts[:, 1] <= ymax - 1)
            & (districts.clearance(pts, district) >= _SIDEWALK))


def _to_world(uv, origin, angle) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.column_stack([origin[0] + uv[:, 0] * c - uv[:, 1] * s,
                            origin[1] + uv[:, 0] * s + uv[:, 1] * c])


def _realize(specs, origin, angle, terrain: Terrain):
    """World parts, footprint and base height of one building from block-frame specs."""
    c, s = math.cos(angle), math.sin(angle)
    local = shapely.union_all([box(u0, v0, u1, v1) for u0, u1, v0, v1, *_ in specs])
    footprint = affinity.affine_transform(local, [c, -s, s, c, origin[0], origin[1]])
    # Terrain extremes under the footprint: a 1 m lattice over each part, plus its corners.
    pts = []
    for u0, u1, v0, v1, *_ in specs:
        uu, vv = np.meshgrid(np.linspace(u0, u1, max(2, int(u1 - u0) + 2)),
                             np.linspace(v0, v1, max(2, int(v1 - v0) + 2)))
        pts.append(np.column_stack([uu.ravel(), vv.ravel()]))
    pts = np.concatenate(pts)
    z = terrain(origin[0] + pts[:, 0] * c - pts[:, 1] * s, origin[1] + pts[:, 0] * s + pts[:, 1] * c)
    base, relief = float(z.min()), float(z.max() - z.min())
    low = min(sp[6] for sp in specs)
    top = max(sp[6] + sp[7] for sp in specs)
    lift = min(max(0.0, relief + _CLEARANCE - low), max(0.0, _MAX_RIDGE - top))
    rows = []
    for u0, u1, v0, v1, roof, axis, eave, rise, albedo, flip in specs:
        uc, vc = (u0 + u1) / 2, (v0 + v1) / 2
        cx, cy = origin[0] + uc * c - vc * s, origin[1] + uc * s + vc * c
        phi, a, b = (angle, (u1 - u0) / 2, (v1 - v0) / 2) if axis == "u" else \
            (angle + np.pi / 2, (v1 - v0) / 2, (u1 - u0) / 2)
        if roof == HIP and a < b:
            phi, a, b = phi + np.pi / 2, b, a
        if flip:
            phi += np.pi
        e = base + eave + lift
        rows.append((cx, cy, math.remainder(phi, 2 * np.pi), a, b, roof, base, e, e + rise, albedo))
    return footprint, base, rows


def _alleys(bounds, districts: Districts, rng) -> np.ndarray:
    """Planting points every 8-11 m along the boulevards' medians (a few left out)."""
    pts = []
    for (a, b), line in sorted(_cells(districts.seeds, districts.power, bounds)[1].items()):
        if districts.median[a, b] > 0:
            step = rng.uniform(8, 11)
            at = np.arange(rng.uniform(0, step), line.length, step)
            at = at[rng.random(len(at)) >= 0.15]
            pts.extend((p.x, p.y) for p in shapely.line_interpolate_point(line, at))
    return np.array(pts, np.float64).reshape(-1, 2)


def _trees(bounds, districts, blocks_geom, footprints, terrain, rng) -> Trees:
    """Trees: boulevard alleys first, then random candidates accepted by where they fall
    (a block's class, or open ground); thinned so that crowns touch but do not merge."""
    xmin, ymin, xmax, ymax = bounds
    alleys = _alleys(bounds, districts, rng)
    scattered = int((xmax - xmin) * (ymax - ymin) / 90)
    x = np.concatenate([alleys[:, 0], rng.uniform(xmin, xmax, scattered)])
    y = np.concatenate([alleys[:, 1], rng.uniform(ymin, ymax, scattered)])
    n = len(x)
    radius = np.where(np.arange(n) < len(alleys), rng.uniform(2.5, 3.8, n),
                      rng.uniform(2.0, 5.5, n))
    harm_amp = rng.uniform(0, 0.12, (n, 3))
    harm_phase = rng.uniform(0, 2 * np.pi, (n, 3))
    height = np.clip(radius * rng.uniform(2.2, 3.5, n) + rng.uniform(0, 3, n), 6, 22)
    crown = height * rng.uniform(0.45, 0.7, n)
    rough = rng.uniform(0.8, 1.5, n)
    albedo = rng.uniform(0.05, 0.1, n)
    draw = rng.random(n)
    reach = radius * (1 + harm_amp.sum(axis=1))

    pts = np.column_stack([x, y])
    cls = np.array([_CLASS[m]["trees"] for m in districts.morphology])[districts.district_of(pts)]
    in_block = np.zeros(n, bool)
    if blocks_geom:
        hit = shapely.STRtree(blocks_geom).query(shapely.points(pts), predicate="within")
        in_block[np.unique(hit[0])] = True
    accept = np.where(in_block, cls, _OPEN_TREES) > draw
    accept[:len(alleys)] = True
    accept &= ~districts.is_road(x, y)
    if footprints:
        disks = shapely.buffer(shapely.points(pts), reach + 1.0, quad_segs=8)
        hit = shapely.STRtree(footprints).query(disks, predicate="intersects")
        accept[np.unique(hit[0])] = False
    keep = []
    idx = np.flatnonzero(accept)
    tree = cKDTree(pts[idx])
    taken = np.zeros(len(idx), bool)
    for k in range(len(idx)):  # greedy thinning: crowns may touch, not merge
        near = tree.query_ball_point(pts[idx[k]], 2 * 5.5 * 1.36)
        ok = all(not taken[m] or np.hypot(*(pts[idx[k]] - pts[idx[m]])) >=
                 0.8 * (reach[idx[k]] + reach[idx[m]]) for m in near if m != k)
        if ok:
            taken[k] = True
            keep.append(idx[k])
    keep = np.array(keep, dtype=np.int64)
    ground = terrain(x[keep], y[keep]) if len(keep) else np.zeros(0)
    return Trees(x=x[keep], y=y[keep], ground=np.asarray(ground, np.float64),
                 trunk=height[keep] - crown[keep], crown=crown[keep], radius=radius[keep],
                 harm_amp=np.ascontiguousarray(harm_amp[keep]),
                 harm_phase=np.ascontiguousarray(harm_phase[keep]), rough=rough[keep],
                 albedo=albedo[keep])


def generate_scene(bounds, crs: str = "EPSG:32631", seed: int = 7) -> Scene:
    """Populate ``bounds`` (xmin, ymin, xmax, ymax in metres of ``crs``) with a city."""
    bounds = _check_bounds(bounds)
    rng = np.random.default_rng(seed)
    terrain = _terrain(bounds, rng)
    districts = _districts(bounds, rng)
    blocks = [_fill(b, districts, bounds, rng) for b in _blocks(bounds, districts, rng)]
    rows, records = [], []
    for origin, angle, _, _, buildings in blocks:
        for morphology, specs in buildings:
            footprint, base, part_rows = _realize(specs, origin, angle, terrain)
            bid = len(records) + 1
            first = len(rows)
            rows.extend((bid, *r) for r in part_rows)
            records.append(BuildingRecord(id=bid, morphology=morphology,
                                          parts=np.arange(first, len(rows)),
                                          footprint=footprint, base=base,
                                          wall_albedo=float(rng.uniform(0.28, 0.45))))
    cols = list(zip(*rows)) if rows else [()] * 11
    parts = Parts(building=np.array(cols[0], np.int32),
                  **{k: np.array(v, np.float64) for k, v in
                     zip(("cx", "cy", "angle", "a", "b"), cols[1:6])},
                  roof=np.array(cols[6], np.int64),
                  **{k: np.array(v, np.float64) for k, v in
                     zip(("base", "eave", "ridge", "albedo"), cols[7:11])})
    block_geoms = [shapely.Polygon(_to_world(np.array([[0, 0], [W, 0], [W, D], [0, D]]), o, t))
                   for o, t, W, D, _ in blocks]
    trees = _trees(bounds, districts, block_geoms, [b.footprint for b in records], terrain, rng)
    size = 4096
    noise = Noise(perm=rng.permutation(size).astype(np.int64), values=rng.random(size))
    return Scene(bounds=bounds, crs=crs, seed=seed, terrain=terrain, districts=districts,
                 parts=parts, buildings=records, trees=trees, noise=noise, blocks=block_geoms)
