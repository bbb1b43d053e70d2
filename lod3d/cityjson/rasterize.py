"""Burn a city model into rasters: DSM, DTM, building ids, footprints.

This turns real LoD1/LoD2 city models into the inputs the terrain, outline and LOD stages
consume, with exact answers attached. For each building part the highest-LoD geometry is
used; every non-vertical face is a plane ``z = a x + b y + c`` (Newell normal through the
centroid) and is scan-line rasterized at cell centres (Numba kernel
:func:`lod3d.kernels.cityjson_raster.burn_planes`). The DSM keeps the highest face per cell
(roofs, or the LoD1 top), then falls back to the DTM outside buildings, so it looks like a
bare-earth-plus-buildings surface model.

The DTM is the terrain objects of the file burnt in where present (TINRelief, LandUse,
Road, WaterBody: lowest face per cell; not PlantCover or generic objects, which have
height), elsewhere a linear interpolation (Delaunay, ``LinearNDInterpolator``) of the ground points:
building ground-face vertices (or footprint corners at the lowest height) plus a sparse
sample of the burnt terrain cells; nearest-neighbour outside their convex hull.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from affine import Affine
from scipy.interpolate import LinearNDInterpolator, NearestNDInterpolator

from lod3d.kernels.cityjson_raster import burn_planes

from ..errors import InputError
from ..raster import Raster
from .model import Building
from .reader import CityModel, read_cityjson

__all__ = ["BurntCity", "burn_cityjson", "burn_buildings"]

TERRAIN_TYPES = ("TINRelief", "LandUse", "Road", "WaterBody")  # ground-level objects only


@dataclass
class BurntCity:
    """Rasters of one city model on a common grid, and its building footprints.

    ``building_id`` holds 1 + the index into ``footprints`` (0 = no building).
    """

    dsm: Raster
    dtm: Raster
    building_id: Raster
    footprints: list[tuple[str, object]]
    buildings: list[Building]
    crs: object
    transform: Affine


def burn_cityjson(source, res: float = 0.5, pad: float = 5.0, crs_epsg: int | None = None) -> BurntCity:
    """Burn a CityJSON file (path) or a :class:`CityModel` at ``res`` metres.

    ``pad`` metres of terrain are added around the model. ``crs_epsg`` overrides (or
    supplies, for files without ``referenceSystem``) the CRS.
    """
    model = source if isinstance(source, CityModel) else read_cityjson(Path(source))
    buildings = model.buildings()
    if not buildings:
        raise InputError(f"{source}: no Building objects to burn")
    terrain = _terrain_faces(model)
    return burn_buildings(buildings, res=res, pad=pad, crs_epsg=crs_epsg or model.crs_epsg, terrain=terrain)


def burn_buildings(buildings: list[Building], res: float = 0.5, pad: float = 5.0, crs_epsg: int | None = None,
                   terrain: list[np.ndarray] | None = None) -> BurntCity:
    """Burn :class:`Building` models (and optional terrain faces, lists of rings) at ``res``."""
    from rasterio.crs import CRS

    buildings = sorted(buildings, key=lambda b: b.id)
    terrain = terrain or []
    roof_faces, ground_pts = [], []
    for b in buildings:
        for part in b.parts:
            solid = max(part.solids, key=lambda s: s.lod)
            for s in solid.surfaces:
                roof_faces.append(s.rings)
                if s.semantic == "GroundSurface":
                    ground_pts.extend(s.rings)
        if not any(s.semantic == "GroundSurface" for p in b.parts for s in max(p.solids, key=lambda s: s.lod).surfaces):
            for poly in getattr(b.footprint, "geoms", [b.footprint]):
                xy = np.asarray(poly.exterior.coords)
                ground_pts.append(np.column_stack([xy, np.full(len(xy), b.ground_z)]))
    allxy = np.concatenate([r[:, :2] for rings in roof_faces + terrain for r in rings]
                           + [np.asarray(shapely.get_coordinates(b.footprint)) for b in buildings])
    xmin, ymin = np.floor((allxy.min(axis=0) - pad) / res) * res
    xmax, ymax = np.ceil((allxy.max(axis=0) + pad) / res) * res
    width, height = int(round((xmax - xmin) / res)), int(round((ymax - ymin) / res))
    transform = Affine(res, 0.0, xmin, 0.0, -res, ymax)

    top = np.full((height, width), np.nan)
    labels = np.zeros((height, width), np.int32)
    _burn(top, labels, roof_faces, np.zeros(len(roof_faces), np.int32), xmin, ymax, res, True)

    ids = np.zeros((height, width), np.int32)
    fp_faces = []
    for b in buildings:
        fp_faces.append([np.column_stack([np.asarray(r.coords)[:-1], np.zeros(len(r.coords) - 1)])
                         for poly in getattr(b.footprint, "geoms", [b.footprint])
                         for r in [poly.exterior, *poly.interiors]])
    _burn(np.full((height, width), np.nan), ids, fp_faces, np.arange(1, len(buildings) + 1, dtype=np.int32),
          xmin, ymax, res, True, flat=True)

    ground = np.full((height, width), np.nan)
    if terrain:
        _burn(ground, np.zeros((height, width), np.int32), terrain, np.zeros(len(terrain), np.int32),
              xmin, ymax, res, False)
    dtm = _interpolate_ground(ground, ground_pts, transform)
    dsm = np.where(np.isnan(top), dtm, np.fmax(top, dtm))
    crs = CRS.from_epsg(crs_epsg) if crs_epsg else None
    tags = {"source": "lod3d.cityjson.rasterize"}
    return BurntCity(
        dsm=Raster(dsm.astype(np.float32), transform, crs, float("nan"), dict(tags)),
        dtm=Raster(dtm.astype(np.float32), transform, crs, float("nan"), dict(tags)),
        building_id=Raster(ids, transform, crs, None, dict(tags)),
        footprints=[(b.id, b.footprint) for b in buildings],
        buildings=buildings, crs=crs, transform=transform,
    )


def _burn(out, labels, faces, face_labels, x0, y0, res, keep_max, flat=False) -> None:
    """Pack faces (lists of rings) into edge/plane arrays and run the kernel."""
    edges, ptr, planes, keep = [], [0], [], []
    for k, rings in enumerate(faces):
        plane = (0.0, 0.0, 0.0) if flat else _plane(rings[0])
        if plane is None:
            continue
        for r in rings:
            r = np.asarray(r, float)
            edges.append(np.column_stack([r[:, :2], np.roll(r[:, :2], -1, axis=0)]))
        ptr.append(ptr[-1] + sum(len(r) for r in rings))
        planes.append(plane)
        keep.append(face_labels[k])
    if not planes:
        return
    burn_planes(out, labels, np.concatenate(edges), np.asarray(ptr, np.int64), np.asarray(planes, float),
                np.asarray(keep, np.int32), float(x0), float(y0), float(res), keep_max)


def _plane(ring: np.ndarray):
    """``(a, b, c)`` of ``z = a x + b y + c`` through the ring, or None for a vertical face."""
    ring = np.asarray(ring, float)
    nxt = np.roll(ring, -1, axis=0)
    n = np.array([np.sum((ring[:, 1] - nxt[:, 1]) * (ring[:, 2] + nxt[:, 2])),
                  np.sum((ring[:, 2] - nxt[:, 2]) * (ring[:, 0] + nxt[:, 0])),
                  np.sum((ring[:, 0] - nxt[:, 0]) * (ring[:, 1] + nxt[:, 1]))])
    norm = np.linalg.norm(n)
    if norm == 0 or abs(n[2]) / norm < 0.05:
        return None
    cx, cy, cz = ring.mean(axis=0)
    a, b = -n[0] / n[2], -n[1] / n[2]
    return a, b, cz - a * cx - b * cy


def _interpolate_ground(ground, ground_rings, transform) -> np.ndarray:
    """Fill the cells without terrain faces from building ground points + terrain samples."""
    if not np.isnan(ground).any():
        return ground
    h, w = ground.shape
    pts = [np.concatenate(ground_rings)] if ground_rings else []
    rr, cc = np.nonzero(~np.isnan(ground))
    if rr.size:
        step = max(1, rr.size // 20000)  # a sparse sample keeps the triangulation small
        rr, cc = rr[::step], cc[::step]
        x, y = transform @ (cc + 0.5, rr + 0.5)
        pts.append(np.column_stack([x, y, ground[rr, cc]]))
    pts = np.concatenate(pts)
    xy, z = pts[:, :2], pts[:, 2]
    xy, first = np.unique(np.round(xy, 3), axis=0, return_index=True)
    z = z[first]
    rows, cols = np.nonzero(np.isnan(ground))
    qx, qy = transform @ (cols + 0.5, rows + 0.5)
    q = np.column_stack([qx, qy])
    out = ground.copy()
    vals = np.full(len(q), np.nan)
    if len(xy) >= 3 and np.linalg.matrix_rank(xy - xy.mean(axis=0)) == 2:
        vals = LinearNDInterpolator(xy, z)(q)
    miss = np.isnan(vals)
    if miss.any():
        vals[miss] = NearestNDInterpolator(xy, z)(q[miss])
    out[rows, cols] = vals
    return out


def _terrain_faces(model: CityModel) -> list:
    """Faces (lists of rings in metres) of the model's terrain-like objects."""
    faces = []
    for oid in sorted(model.objects):
        obj = model.objects[oid]
        if obj.get("type") not in TERRAIN_TYPES:
            continue
        for geom in obj.get("geometry", []):
            if geom.get("type") in ("MultiSurface", "CompositeSurface"):
                for surface in geom["boundaries"]:
                    rings = [model.vertices[r] for r in surface if len(r) >= 3]
                    if rings:
                        faces.append(rings)
    return faces

