"""Read CityJSON 1.1 / 2.0 files (and CityJSONSeq) into plain arrays and building models.

:func:`read_cityjson` returns a :class:`CityModel`: real-world vertex coordinates (the
``transform`` undone), the CityObjects as parsed, and the EPSG code from
``referenceSystem`` (URL or legacy ``urn:ogc:def:crs:EPSG::`` forms).
:meth:`CityModel.buildings` turns Building/BuildingPart objects into the
:mod:`~lod3d.cityjson.model` dataclasses: each 3-D geometry becomes a
:class:`~lod3d.cityjson.model.Solid` (MultiSurfaces too: real LoD2 data is often stored that
way), faces keep their semantic class, or get one from their normal when the file has none
(up: roof, down: ground, else wall). A Building's footprint is its LoD0 surfaces (the
footprint its producer declared, as 3DBAG and lod3d write it) projected to 2-D; without
LoD0 it is the union of the ground faces of its solids, or of all their non-vertical faces
when there are none. A Building with a LoD0 footprint and no solids (a producer that fell
back to the footprint alone) is kept, with no parts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely

from ..errors import InputError
from .model import Building, BuildingPart, Solid, Surface

__all__ = ["CityModel", "read_cityjson", "surface_class"]


@dataclass
class CityModel:
    """A parsed CityJSON file: vertices in metres, objects as in the file, CRS."""

    version: str
    vertices: np.ndarray
    objects: dict
    crs_epsg: int | None
    metadata: dict = field(default_factory=dict)

    def buildings(self) -> list[Building]:
        """Top-level Building objects with their parts, sorted by id."""
        out = []
        for oid in sorted(self.objects):
            obj = self.objects[oid]
            if obj.get("type") != "Building" or obj.get("parents"):
                continue
            parts = []
            own = self._solids(obj)
            if own:
                parts.append(BuildingPart(oid, own, {}))
            for cid in obj.get("children", []):
                child = self.objects.get(cid)
                if child is not None and child.get("type") == "BuildingPart":
                    solids = self._solids(child)
                    if solids:
                        parts.append(BuildingPart(cid, solids, dict(child.get("attributes", {}))))
            declared = _lod0_footprint(obj, self.vertices)
            if not parts and declared is None:
                continue
            derived = _footprint(parts) if parts else None
            footprint = (declared or derived)[0]
            ground_z = (derived or declared)[1]   # the solids' lowest point when there are solids
            out.append(Building(oid, footprint, ground_z, parts, dict(obj.get("attributes", {}))))
        return out

    def _solids(self, obj) -> list[Solid]:
        solids = []
        for geom in obj.get("geometry", []):
            faces = _faces(geom)
            if faces is None or str(geom.get("lod", "")).startswith("0"):  # LoD0: footprints, not 3-D
                continue
            sem = geom.get("semantics") or {}
            table = sem.get("surfaces", [])
            values = _flat_values(geom, sem.get("values"))
            surfaces = []
            for k, rings in enumerate(faces):
                pts = [self.vertices[r] for r in rings if len(r) >= 3]
                if not pts:
                    continue
                v = values[k] if values is not None and k < len(values) else None
                semantic = table[v]["type"] if v is not None and v < len(table) else surface_class(pts[0])
                surfaces.append(Surface(pts, semantic))
            if surfaces:
                solids.append(Solid(str(geom.get("lod", "")), surfaces))
        return solids


def read_cityjson(path) -> CityModel:
    """Read a CityJSON (``.json``) or CityJSONSeq (``.jsonl``) file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        if path.suffix == ".jsonl":
            lines = [json.loads(line) for line in text.splitlines() if line.strip()]
            doc, features = lines[0], lines[1:]
        else:
            doc, features = json.loads(text), []
    except (json.JSONDecodeError, IndexError) as exc:
        raise InputError(f"{path}: not a CityJSON file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("type") != "CityJSON":
        raise InputError(f"{path}: not a CityJSON file (type is not 'CityJSON')")
    tf = doc.get("transform")
    scale = np.asarray(tf["scale"], float) if tf else np.ones(3)
    translate = np.asarray(tf["translate"], float) if tf else np.zeros(3)
    chunks = [np.asarray(doc.get("vertices", []), float).reshape(-1, 3)]
    objects = dict(doc.get("CityObjects", {}))
    offset = len(chunks[0])
    for feat in features:  # re-index each feature's local vertices into one list
        local = np.asarray(feat.get("vertices", []), float).reshape(-1, 3)
        for oid, obj in feat.get("CityObjects", {}).items():
            obj = dict(obj)
            obj["geometry"] = [{**g, "boundaries": _shift(g["boundaries"], offset)} for g in obj.get("geometry", [])]
            objects[oid] = obj
        chunks.append(local)
        offset += len(local)
    vertices = np.concatenate(chunks) * scale + translate
    meta = doc.get("metadata", {}) or {}
    return CityModel(str(doc.get("version")), vertices, objects, _epsg(meta.get("referenceSystem")), meta)


def surface_class(ring: np.ndarray) -> str:
    """Semantic class from the face normal: up-facing roof, down-facing ground, else wall."""
    n = _newell(ring)
    nz = n[2] / (np.linalg.norm(n) or 1.0)
    return "RoofSurface" if nz > 0.1 else "GroundSurface" if nz < -0.1 else "WallSurface"


def _newell(ring: np.ndarray) -> np.ndarray:
    nxt = np.roll(ring, -1, axis=0)
    return np.array([
        np.sum((ring[:, 1] - nxt[:, 1]) * (ring[:, 2] + nxt[:, 2])),
        np.sum((ring[:, 2] - nxt[:, 2]) * (ring[:, 0] + nxt[:, 0])),
        np.sum((ring[:, 0] - nxt[:, 0]) * (ring[:, 1] + nxt[:, 1])),
    ])


def _epsg(ref) -> int | None:
    if not ref:
        return None
    m = re.search(r"EPSG(?:/\d+/|::?)(\d+)", str(ref))
    return int(m.group(1)) if m else None


def _faces(geom) -> list | None:
    """The faces (lists of rings) of a surface or solid geometry, shells flattened."""
    b = geom.get("boundaries", [])
    t = geom.get("type")
    if t in ("MultiSurface", "CompositeSurface"):
        return b
    if t == "Solid":
        return [f for shell in b for f in shell]
    if t in ("MultiSolid", "CompositeSolid"):
        return [f for solid in b for shell in solid for f in shell]
    return None


def _flat_values(geom, values):
    if values is None:
        return None
    t = geom.get("type")
    if t == "Solid":
        return [v for shell in values for v in shell]
    if t in ("MultiSolid", "CompositeSolid"):
        return [v for solid in values for shell in solid for v in shell]
    return values


def _shift(x, offset):
    if isinstance(x, list):
        return [_shift(y, offset) for y in x]
    return x + offset


def _lod0_footprint(obj, vertices) -> tuple[object, float] | None:
    """2-D union and lowest height of the object's LoD0 surfaces; None without any."""
    polys, zmin = [], np.inf
    for geom in obj.get("geometry", []):
        faces = _faces(geom)
        if faces is None or not str(geom.get("lod", "")).startswith("0"):
            continue
        for rings in faces:
            pts = [vertices[r] for r in rings if len(r) >= 3]
            if pts:
                zmin = min(zmin, float(min(p[:, 2].min() for p in pts)))
                polys.append(_plan(pts))
    return (_union(polys), zmin) if polys else None


def _footprint(parts) -> tuple[object, float]:
    """2-D footprint (union of ground faces, else of non-vertical faces) and ground height."""
    ground, other, zmin = [], [], np.inf
    for part in parts:
        solid = max(part.solids, key=lambda s: s.lod)
        for s in solid.surfaces:
            zmin = min(zmin, float(min(r[:, 2].min() for r in s.rings)))
            (ground if s.semantic == "GroundSurface" else other).append(_plan(s.rings))
    return _union(ground or other), float(zmin)


def _plan(rings) -> object:
    """The valid 2-D polygon of a face's 3-D rings (outer ring first) seen from above."""
    poly = shapely.Polygon(rings[0][:, :2], [r[:, :2] for r in rings[1:]])
    return poly if poly.is_valid else shapely.make_valid(poly)


def _union(polys) -> object:
    """Union of face plans, slivers of 1e-6 m² or less left out, on a 0.1 mm grid."""
    polys = [p for p in polys if p.area > 1e-6]
    return (shapely.union_all(polys, grid_size=1e-4) if polys else shapely.Polygon()).buffer(0)
