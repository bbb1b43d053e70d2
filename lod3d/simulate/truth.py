"""Ground truth of a procedural scene: rasters, the renderer's surface, footprints, LOD2.

Everything here is derived from the analytic scene (``lod3d.simulate.scene``), never from
another raster, so each product is exact at its own sampling:

- :func:`rasterize_truth`: DSM, DTM and building-id rasters point-sampled at cell
  centres by the z-buffer kernels of ``kernels.scene`` (terrain, then tree crowns, then
  roofs, keeping the highest surface).
- :func:`scene_surface`: the same sampling on a fine grid plus materials (albedo of the
  top surface and of the facades rising there, surface class) for the sensor renderer.
- :func:`footprints_geojson`: one polygon feature per building, in the scene CRS.
- :func:`truth_buildings`: exact LOD2.2 solids per part for the CityJSON writer: a ground
  face at the building's base, walls up to the roof's edge (gable ends as pentagons), roof
  faces per roof type with slope/azimuth, all outward-oriented and closed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine

from lod3d.cityjson.model import Building, BuildingPart, Solid, Surface
from lod3d.errors import InputError
from lod3d.kernels.scene import (FLAT, GABLE, HIP, PYRAMID, SHED, draw_parts, draw_trees,
                                 road_grid, surface_albedo, terrain_grid)
from lod3d.simulate.scene import ROOF_NAMES, Scene
from lod3d.simulate.surface import KIND_GROUND, KIND_ROAD, KIND_ROOF, KIND_TREE, SurfaceModel

__all__ = ["Truth", "rasterize_truth", "scene_surface", "footprints_geojson", "truth_buildings",
           "part_solid"]


@dataclass
class Truth:
    """Truth rasters on one grid: ``dsm``, ``dtm`` (float32, m ellipsoidal), ``buildings``
    (int32 id of the building whose roof is the top surface, 0 none)."""

    transform: Affine
    crs: str
    dsm: np.ndarray
    dtm: np.ndarray
    buildings: np.ndarray


def _grid(transform: Affine, shape) -> tuple[float, float, float, int, int]:
    t = Affine(*transform[:6]) if not isinstance(transform, Affine) else transform
    if t.b != 0 or t.d != 0 or t.a <= 0 or not math.isclose(t.e, -t.a):
        raise InputError(f"truth grid must be north-up with square cells, got {tuple(t)[:6]}")
    nrows, ncols = (int(n) for n in shape)
    if nrows <= 0 or ncols <= 0:
        raise InputError(f"truth grid shape {shape!r} is empty")
    return t.c, t.f, t.a, nrows, ncols


def _zbuffer(scene: Scene, transform, shape):
    """Terrain (float64), top surface (float64) and top label (see ``kernels.scene``)."""
    x0, y0, res, nrows, ncols = _grid(transform, shape)
    terrain = terrain_grid(x0, y0, res, nrows, ncols, *scene.terrain.kernel_args())
    height = terrain.copy()
    top = np.zeros((nrows, ncols), np.int32)
    t = scene.trees
    if len(t):
        draw_trees(height, top, x0, y0, res, t.x, t.y, t.ground, t.trunk, t.crown, t.radius,
                   t.harm_amp, t.harm_phase, t.rough, t.rough_scale, scene.noise.perm,
                   scene.noise.values)
    if len(scene.parts):
        draw_parts(height, top, x0, y0, res, *scene.parts.kernel_args())
    return terrain, height, top


def _building_ids(scene: Scene, top: np.ndarray) -> np.ndarray:
    lookup = np.concatenate([[0], scene.parts.building]).astype(np.int32)
    return lookup[np.maximum(top, 0)]


def rasterize_truth(scene: Scene, transform, shape) -> Truth:
    """DSM (terrain, trees and roofs), DTM (terrain everywhere) and building ids."""
    terrain, height, top = _zbuffer(scene, transform, shape)
    return Truth(transform=transform, crs=scene.crs, dsm=height.astype(np.float32),
                 dtm=terrain.astype(np.float32), buildings=_building_ids(scene, top))


def scene_surface(scene: Scene, res: float = 0.25, bounds=None) -> SurfaceModel:
    """The scene on a fine north-up grid over ``bounds`` (default: the scene's) for the
    renderer: heights, top and facade albedo, surface class.

    Albedo carries fixed value-noise texture (a function of position, so every sampling
    sees the same ground): mottled grass/soil, asphalt, tiles or roofing, leafy crowns;
    see ``kernels.scene.surface_albedo``.
    """
    xmin, ymin, xmax, ymax = scene.bounds if bounds is None else bounds
    if not res > 0:
        raise InputError(f"surface resolution must be positive, got {res!r}")
    ncols, nrows = math.ceil((xmax - xmin) / res - 1e-9), math.ceil((ymax - ymin) / res - 1e-9)
    transform = Affine(res, 0.0, xmin, 0.0, -res, ymax)
    _, height, top = _zbuffer(scene, transform, (nrows, ncols))
    road = road_grid(xmin, ymax, res, nrows, ncols, *scene.districts.kernel_args())
    kind = np.full((nrows, ncols), KIND_GROUND, np.uint8)
    kind[road] = KIND_ROAD
    kind[top < 0] = KIND_TREE
    kind[top > 0] = KIND_ROOF
    parts = scene.parts
    walls = np.array([b.wall_albedo for b in scene.buildings], np.float64)
    albedo, wall = surface_albedo(xmin, ymax, res, top, road, parts.albedo,
                                  walls[parts.building - 1], scene.trees.albedo,
                                  scene.noise.perm, scene.noise.values)
    return SurfaceModel(transform=transform, crs=scene.crs, height=height.astype(np.float32),
                        albedo=albedo, wall_albedo=wall, kind=kind)


def _building_attributes(scene: Scene, b) -> dict:
    p = scene.parts
    idx = b.parts
    return {
        "roof_types": sorted({ROOF_NAMES[int(r)] for r in p.roof[idx]}),
        "morphology": b.morphology,
        "n_parts": int(len(idx)),
        "base_z": round(float(b.base), 3),
        "eave_height_min": round(float((p.eave[idx] - b.base).min()), 3),
        "height": round(float((p.ridge[idx] - b.base).max()), 3),
    }


def footprints_geojson(scene: Scene) -> dict:
    """GeoJSON FeatureCollection of building footprints (scene CRS, id = raster id)."""
    features = [{"type": "Feature", "id": b.id,
                 "properties": {"id": b.id, **_building_attributes(scene, b)},
                 "geometry": shapely.geometry.mapping(b.footprint)} for b in scene.buildings]
    epsg = scene.crs.split(":")[-1]
    return {"type": "FeatureCollection",
            "crs": {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{epsg}"}},
            "features": features}


def _roof_faces(kind, a, b, eave, ridge):
    """Roof polygons (local u, v, z), counter-clockwise seen from above."""
    e, r = eave, ridge
    if kind == FLAT:
        return [[(-a, -b, e), (a, -b, e), (a, b, e), (-a, b, e)]]
    if kind == SHED:
        return [[(-a, -b, e), (a, -b, e), (a, b, r), (-a, b, r)]]
    if kind == GABLE:
        return [[(-a, -b, e), (a, -b, e), (a, 0, r), (-a, 0, r)],
                [(a, b, e), (-a, b, e), (-a, 0, r), (a, 0, r)]]
    if kind == PYRAMID or (kind == HIP and a - b <= 1e-9):
        return [[(-a, -b, e), (a, -b, e), (0, 0, r)], [(a, -b, e), (a, b, e), (0, 0, r)],
                [(a, b, e), (-a, b, e), (0, 0, r)], [(-a, b, e), (-a, -b, e), (0, 0, r)]]
    h = a - b  # hip: ridge from (-h, 0) to (h, 0)
    return [[(-a, -b, e), (a, -b, e), (h, 0, r), (-h, 0, r)],
            [(a, b, e), (-a, b, e), (-h, 0, r), (h, 0, r)],
            [(a, -b, e), (a, b, e), (h, 0, r)], [(-a, b, e), (-a, -b, e), (-h, 0, r)]]


def _wall_tops(kind, a, b, eave, ridge):
    """For each footprint edge (CCW from (-a, -b)), the roof's edge profile along it."""
    e, r = eave, ridge
    corners = [(-a, -b), (a, -b), (a, b), (-a, b)]
    z = [e, e, e, e]
    mid = [None, None, None, None]
    if kind == SHED:
        z = [e, e, r, r]
    elif kind == GABLE:
        mid = [None, (a, 0.0, r), None, (-a, 0.0, r)]
    out = []
    for k in range(4):
        k1 = (k + 1) % 4
        top = [(*corners[k1], z[k1])] + ([mid[k]] if mid[k] else []) + [(*corners[k], z[k])]
        out.append((corners[k], corners[k1], top))
    return out


def _slope_azimuth(ring: np.ndarray) -> tuple[float, float | None]:
    n = np.zeros(3)
    for p, q in zip(ring, np.roll(ring, -1, axis=0)):  # Newell's normal
        n += np.cross(p, q)
    n /= np.linalg.norm(n)
    slope = math.degrees(math.acos(min(1.0, n[2])))
    if slope < 1e-6:
        return 0.0, None
    return round(slope, 4), round(math.degrees(math.atan2(n[0], n[1])) % 360.0, 4)


def part_solid(scene: Scene, p: int) -> Solid:
    """The exact LOD2.2 solid of part ``p`` (ground, walls, roof), outward-oriented."""
    parts = scene.parts
    a, b = float(parts.a[p]), float(parts.b[p])
    base, eave, ridge = float(parts.base[p]), float(parts.eave[p]), float(parts.ridge[p])
    kind = int(parts.roof[p])
    c, s = math.cos(parts.angle[p]), math.sin(parts.angle[p])
    cx, cy = float(parts.cx[p]), float(parts.cy[p])

    def world(pts):
        pts = np.asarray(pts, np.float64)
        return np.column_stack([cx + pts[:, 0] * c - pts[:, 1] * s,
                                cy + pts[:, 0] * s + pts[:, 1] * c, pts[:, 2]])

    surfaces = [Surface([world([(-a, -b, base), (-a, b, base), (a, b, base), (a, -b, base)])],
                        "GroundSurface")]
    for p0, p1, top in _wall_tops(kind, a, b, eave, ridge):
        ring = world([(*p0, base), (*p1, base), *top])
        surfaces.append(Surface([ring], "WallSurface"))
    for face in _roof_faces(kind, a, b, eave, ridge):
        ring = world(face)
        slope, azimuth = _slope_azimuth(ring)
        attrs = {"slope": slope} if azimuth is None else {"slope": slope, "azimuth": azimuth}
        surfaces.append(Surface([ring], "RoofSurface", attrs))
    return Solid(lod="2.2", surfaces=surfaces)


def truth_buildings(scene: Scene) -> list[Building]:
    """The scene's buildings as exact LOD2.2 models, one BuildingPart per part."""
    p = scene.parts
    out = []
    for b in scene.buildings:
        parts = [BuildingPart(id=f"b{b.id:05d}-{k}", solids=[part_solid(scene, int(i))],
                              attributes={"roofType": ROOF_NAMES[int(p.roof[i])],
                                          "eave_z": round(float(p.eave[i]), 3),
                                          "ridge_z": round(float(p.ridge[i]), 3),
                                          "height": round(float(p.ridge[i] - b.base), 3)})
                 for k, i in enumerate(b.parts)]
        out.append(Building(id=f"b{b.id:05d}", footprint=b.footprint, ground_z=float(b.base),
                            parts=parts, attributes={"truth_id": b.id,
                                                     **_building_attributes(scene, b)}))
    return out
