"""Closed, planar, outward-oriented solids from a footprint polygon and roof planes.

Every roof this package makes is the *lower envelope* of a few planes over one polygon:
``z(x, y) = min_k (a_k x + b_k y + c_k)``. Flat (one horizontal plane), shed (one plane),
gable (two), hip and pyramid (four), mansard (eight) roofs are all of this form, and so is
an LoD1 prism. The envelope is continuous, so neighbouring roof faces meet exactly on the
line where their planes are equal: no step walls, and the solid is a 2.5-D extrusion that
is watertight by construction.

Construction: each plane's cell (where it is the minimum) is a convex polygon from
half-plane clipping; the cell boundaries inside the footprint and the footprint boundary
are noded together (``union_all`` with snap-rounding to a 1 mm grid: a cell edge along
the footprint edge, a hair off it in floating point, merges with it rather than leaving
slivers whose edges no longer pair up) and polygonized, so that all faces share their
vertices exactly; each face takes the plane that is lowest at an interior
point. Walls run from the ground up to the roof along every footprint edge segment (one
vertical quad per roof-face edge on the boundary), and the ground face is the noded
footprint reversed (normal down). Planes whose cell covers less than ``min_face_area`` of
the footprint are dropped first, so no sliver faces reach the output.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry.polygon import orient

from ..cityjson.model import Solid, Surface

__all__ = ["envelope_solid", "envelope_faces", "roof_height", "GRID"]

GRID = 1e-3  # metres: the node grid, equal to the CityJSON quantization


def roof_height(planes: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Lower envelope of ``planes`` ((K, 3) rows a, b, c) at points (x, y)."""
    planes = np.asarray(planes, float)
    return np.min(planes[:, 0:1] * x[None] + planes[:, 1:2] * y[None] + planes[:, 2:3], axis=0)


def envelope_faces(polygon, planes: np.ndarray, min_face_area: float = 0.5):
    """Roof faces of the envelope over ``polygon``: list of (Polygon CCW, plane index), and
    the planes actually used (slivers removed)."""
    planes = np.asarray(planes, float)
    polygon = orient(shapely.set_precision(polygon, GRID), 1.0)
    while True:
        cells = _cells(polygon, planes)
        areas = np.array([c.area for c in cells])  # a cell may come back as a collection
        small = np.nonzero(areas < min_face_area)[0]
        if len(planes) == 1 or not len(small):
            break
        planes = np.delete(planes, small[np.argmin(areas[small])], axis=0)
    if len(planes) == 1:
        return [(polygon, 0)], planes
    lines = [polygon.boundary] + [p.boundary.intersection(polygon) for c in cells
                                  for p in shapely.get_parts(c) if p.geom_type == "Polygon"]
    noded = shapely.union_all(lines, grid_size=GRID)
    faces = []
    for face in shapely.get_parts(shapely.polygonize(shapely.get_parts(noded))):
        if face.area <= 0:
            continue
        p = face.point_on_surface()
        if not polygon.contains(p):
            continue
        k = int(np.argmin(planes[:, 0] * p.x + planes[:, 1] * p.y + planes[:, 2]))
        faces.append((orient(face, 1.0), k))
    return faces, planes


def _cells(polygon, planes):
    """The part of ``polygon`` where each plane is the lowest."""
    x0, y0, x1, y1 = polygon.bounds
    pad = 1.0 + max(x1 - x0, y1 - y0)
    box = np.array([[x0 - pad, y0 - pad], [x1 + pad, y0 - pad], [x1 + pad, y1 + pad], [x0 - pad, y1 + pad]])
    out = []
    for k in range(len(planes)):
        cell = box
        for m in range(len(planes)):
            if m != k:
                cell = _clip(cell, planes[k] - planes[m])
                if len(cell) < 3:
                    break
        out.append(polygon.intersection(shapely.Polygon(cell)) if len(cell) >= 3 else shapely.Polygon())
    return out


def _clip(poly: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman: keep the part of convex ``poly`` where h0 x + h1 y + h2 <= 0."""
    s = poly[:, 0] * h[0] + poly[:, 1] * h[1] + h[2]
    out = []
    n = len(poly)
    for i in range(n):
        j = (i + 1) % n
        if s[i] <= 0:
            out.append(poly[i])
        if (s[i] <= 0) != (s[j] <= 0):
            t = s[i] / (s[i] - s[j])
            out.append(poly[i] + t * (poly[j] - poly[i]))
    return np.asarray(out).reshape(-1, 2)


def envelope_solid(polygon, planes: np.ndarray, ground_z: float, lod: str, min_face_area: float = 0.5):
    """The solid of the envelope roof over ``polygon`` down to ``ground_z``.

    Returns ``(Solid, planes used)``. Roof surfaces carry ``slope`` (degrees) and
    ``azimuth`` (degrees clockwise from north of the downhill direction; null when flat).
    """
    faces, planes = envelope_faces(polygon, planes, min_face_area)
    surfaces, boundary = [], {}
    for face, k in faces:
        a, b, _ = planes[k]
        rings = [np.asarray(face.exterior.coords)[:-1]] + [np.asarray(r.coords)[:-1] for r in face.interiors]
        # one height per node (the envelope), so faces meeting at a node share it exactly
        rings3 = [np.column_stack([r, roof_height(planes, r[:, 0], r[:, 1])]) for r in rings]
        surfaces.append(Surface(rings3, "RoofSurface", _slope_azimuth(a, b)))
        for r in rings3:
            for i in range(len(r)):
                p, q = r[i], r[(i + 1) % len(r)]
                boundary[(_key(p), _key(q))] = (p, q)
    # footprint-boundary edges: those no other face runs the other way
    outer = {e: pq for e, pq in boundary.items() if (e[1], e[0]) not in boundary}
    for (p, q) in outer.values():
        wall = np.array([[p[0], p[1], ground_z], [q[0], q[1], ground_z], q, p])
        surfaces.append(Surface([wall], "WallSurface"))
    surfaces.append(Surface(_ground_rings(outer, shapely.set_precision(polygon, GRID), ground_z), "GroundSurface"))
    return Solid(lod, surfaces), planes


def _key(p):
    return (round(p[0] / GRID), round(p[1] / GRID))


def _ground_rings(outer: dict, polygon, ground_z: float) -> list[np.ndarray]:
    """Chain the boundary edges into rings, reversed (normal down), exterior first.

    Each edge is chained within the ring of ``polygon`` it lies on, so a courtyard that
    touches the outline at one corner (a valid polygon) gives two rings through that
    corner, not one that jumps between them."""
    rings_2d = [polygon.exterior, *polygon.interiors]
    edges = list(outer.items())
    mid = np.array([0.5 * (pq[0][:2] + pq[1][:2]) for _, pq in edges])
    dist = np.stack([shapely.distance(r, shapely.points(mid)) for r in rings_2d])
    owner = np.argmin(dist, axis=0)
    rings = []
    for k in range(len(rings_2d)):
        nxt = {e[0]: (e[1], pq[0]) for (e, pq), o in zip(edges, owner) if o == k}
        seen = set()
        for start in sorted(nxt):
            if start in seen:
                continue
            ring, key = [], start
            while key not in seen and key in nxt:
                seen.add(key)
                key2, p = nxt[key]
                ring.append(p[:2])
                key = key2
            xy = np.asarray(ring)[::-1]
            rings.append(np.column_stack([xy, np.full(len(xy), ground_z)]))
    # the exterior (largest absolute area) first
    rings.sort(key=lambda r: -abs(shapely.Polygon(r[:, :2]).area) if len(r) >= 3 else 0.0)
    return rings


def _slope_azimuth(a: float, b: float) -> dict:
    grad = float(np.hypot(a, b))
    slope = float(np.degrees(np.arctan(grad)))
    if grad < 1e-6:
        return {"slope": 0.0, "azimuth": None}
    # downhill direction is -(a, b); azimuth clockwise from north (+y)
    return {"slope": slope, "azimuth": float(np.degrees(np.arctan2(-a, -b)) % 360.0)}
