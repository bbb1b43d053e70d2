"""Write :class:`~lod3d.cityjson.model.Building` lists as CityJSON 2.0 or CityJSONSeq.

Layout (the 3DBAG convention): each Building carries its LoD0 footprint (a MultiSurface at
``ground_z``) and its attributes; each BuildingPart child carries one Solid per LoD
("1.2", "1.3", "2.2") with Roof/Wall/Ground semantics (surface attributes such as ``slope``
and ``azimuth`` go on the semantic surface objects).

Vertices are quantized once (``transform``: integer coordinates times ``scale`` plus a
translate at whole metres), then deduplicated with one sorted ``np.unique`` so that every
surface shares its corners and the vertex order is independent of insertion order. Rings
that lose vertices to quantization are cleaned (repeated corners dropped) and the
quantized model is re-checked with the geometric validator before anything is written:
a file that would be invalid is refused, never written. Output is deterministic: objects
sorted by id, attribute keys sorted, floats rounded, compact separators.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from pathlib import Path

import numpy as np
import shapely

from .. import __version__
from ..errors import OutputError
from ..io.atomic import atomic_path
from .model import Building

__all__ = ["write_cityjson", "write_cityjsonseq", "to_cityjson_dict", "ogc_crs_url"]

CITYJSON_VERSION = "2.0"


def ogc_crs_url(epsg: int) -> str:
    """The OGC URL form of an EPSG code, as CityJSON's ``referenceSystem`` wants it."""
    return f"https://www.opengis.net/def/crs/EPSG/0/{int(epsg)}"


def write_cityjson(path, buildings: list[Building], *, crs_epsg: int, metadata: dict | None = None,
                   scale: float = 0.001, check: bool = True) -> Path:
    """Write ``buildings`` to ``path`` as one CityJSON 2.0 document, atomically.

    ``metadata`` may hold ``referenceDate`` (ISO date; default today), ``title``,
    ``identifier`` and ``lineage`` (a dict merged into the lineage record: inputs,
    vertical datum, ...). With ``check`` the quantized geometry is validated first and an
    :class:`OutputError` listing the problems is raised instead of writing an invalid file.
    """
    doc = to_cityjson_dict(buildings, crs_epsg=crs_epsg, metadata=metadata, scale=scale)
    if check:
        _check(doc, path)
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(_dumps(doc) + "\n", encoding="utf-8")
    return path


def write_cityjsonseq(path, buildings: list[Building], *, crs_epsg: int, metadata: dict | None = None,
                      scale: float = 0.001, check: bool = True) -> Path:
    """Write ``buildings`` as CityJSONSeq (``.city.jsonl``): a header line, then one
    CityJSONFeature per building with its own local vertex list (same ``transform``)."""
    buildings = sorted(buildings, key=lambda b: b.id)
    translate = _translate(buildings)
    header = _header([], crs_epsg, metadata, scale, translate, extent=_extent(buildings))
    lines = [_dumps(header)]
    for b in buildings:
        objects, vertices = _encode([b], scale, translate)
        feature = {"type": "CityJSONFeature", "id": b.id, "CityObjects": objects, "vertices": vertices}
        if check:
            _check({**header, "CityObjects": objects, "vertices": vertices}, path)
        lines.append(_dumps(feature))
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def to_cityjson_dict(buildings: list[Building], *, crs_epsg: int, metadata: dict | None = None,
                     scale: float = 0.001) -> dict:
    """The CityJSON 2.0 document for ``buildings`` as a plain dict (nothing written)."""
    buildings = sorted(buildings, key=lambda b: b.id)
    ids = [b.id for b in buildings]
    if len(set(ids)) != len(ids):
        raise ValueError("building ids must be unique")
    translate = _translate(buildings)
    objects, vertices = _encode(buildings, scale, translate)
    doc = _header(vertices, crs_epsg, metadata, scale, translate, extent=None)
    doc["CityObjects"] = objects
    doc["vertices"] = vertices
    return doc


# --------------------------------------------------------------------------- encoding

def _header(vertices, crs_epsg, metadata, scale, translate, extent) -> dict:
    metadata = dict(metadata or {})
    lineage = {"software": f"lod3d {__version__}", **metadata.pop("lineage", {})}
    if extent is None:
        extent = _vertex_extent(vertices, scale, translate)
    meta = {
        "referenceSystem": ogc_crs_url(crs_epsg),
        "referenceDate": metadata.pop("referenceDate", _dt.date.today().isoformat()),
        "geographicalExtent": [round(v, 3) for v in extent],
        "title": metadata.pop("title", "lod3d building models"),
    }
    meta.update(_clean(metadata))
    meta["lineage"] = _clean(lineage)
    return {
        "type": "CityJSON",
        "version": CITYJSON_VERSION,
        "transform": {"scale": [scale, scale, scale], "translate": list(translate)},
        "metadata": meta,
        "CityObjects": {},
        "vertices": [],
    }


def _translate(buildings) -> tuple[float, float, float]:
    """Whole-metre minimum corner of all coordinates (footprints and solids)."""
    mins = []
    for b in buildings:
        x0, y0, _, _ = b.footprint.bounds
        mins.append((x0, y0, b.ground_z))
        for part in b.parts:
            for solid in part.solids:
                for s in solid.surfaces:
                    for r in s.rings:
                        mins.append(np.asarray(r, float).min(axis=0))
    if not mins:
        return (0.0, 0.0, 0.0)
    return tuple(float(v) for v in np.floor(np.min(np.asarray(mins, float), axis=0)))


def _extent(buildings) -> list[float]:
    pts = []
    for b in buildings:
        x0, y0, x1, y1 = b.footprint.bounds
        pts += [(x0, y0, b.ground_z), (x1, y1, b.ground_z)]
        for part in b.parts:
            for solid in part.solids:
                for s in solid.surfaces:
                    for r in s.rings:
                        r = np.asarray(r, float)
                        pts += [r.min(axis=0), r.max(axis=0)]
    if not pts:
        return [0.0] * 6
    pts = np.asarray(pts, float)
    return [*pts.min(axis=0).tolist(), *pts.max(axis=0).tolist()]


def _vertex_extent(vertices, scale, translate) -> list[float]:
    if len(vertices) == 0:
        return [0.0] * 6
    v = np.asarray(vertices, float) * scale + np.asarray(translate)
    return [*v.min(axis=0).tolist(), *v.max(axis=0).tolist()]


class _Rings:
    """Collects rings of float points; :meth:`finish` quantizes them all at once and maps
    them to shared vertex indices."""

    def __init__(self, scale, translate):
        self.scale = scale
        self.translate = np.asarray(translate, float)
        self.chunks: list[np.ndarray] = []
        self.count = 0

    def add(self, ring) -> tuple[int, int]:
        ring = np.asarray(ring, float)[:, :3]
        start = self.count
        self.chunks.append(ring)
        self.count += len(ring)
        return start, self.count

    def finish(self):
        if not self.chunks:
            self.index, self.keep = [], []
            return []
        q = np.rint((np.concatenate(self.chunks) - self.translate) / self.scale).astype(np.int64)
        unique, inverse = np.unique(q, axis=0, return_inverse=True)
        index = inverse.ravel()
        # a corner equal to the one before it in its ring (cyclically) is dropped
        lens = np.fromiter(map(len, self.chunks), np.int64, len(self.chunks))
        start = np.concatenate([[0], np.cumsum(lens)[:-1]])
        before = np.roll(index, 1)
        before[start] = index[start + lens - 1]
        self.index, self.keep = index.tolist(), (index != before).tolist()
        return unique.tolist()

    def ring(self, span) -> list[int]:
        """Indices of one ring, repeated corners (consecutive or closing) dropped."""
        s, e = span
        out = [i for i, k in zip(self.index[s:e], self.keep[s:e]) if k]
        return out or self.index[s:s + 1]


def _encode(buildings, scale, translate):
    """CityObjects dict and vertex list for ``buildings`` (sorted by id)."""
    rings = _Rings(scale, translate)
    pending = []  # (object id, object dict, [(geometry dict, nested spans)])
    for b in buildings:
        part_ids = sorted(p.id for p in b.parts)
        lod0 = [[rings.add(r) for r in _polygon_rings(poly, b.ground_z)] for poly in _polygons(b.footprint)]
        obj = {"type": "Building", "attributes": _clean(b.attributes)}
        if part_ids:
            obj["children"] = part_ids
        geom = {"type": "MultiSurface", "lod": "0"}
        pending.append((b.id, obj, [(geom, lod0)]))
        for part in sorted(b.parts, key=lambda p: p.id):
            pobj = {"type": "BuildingPart", "attributes": _clean(part.attributes), "parents": [b.id]}
            geoms = []
            for solid in sorted(part.solids, key=lambda s: s.lod):
                spans = [[rings.add(r) for r in s.rings] for s in solid.surfaces]
                geoms.append(({"type": "Solid", "lod": solid.lod, "_semantics": solid.surfaces}, spans))
            pending.append((part.id, pobj, geoms))
    vertices = rings.finish()
    objects = {}
    for oid, obj, geoms in sorted(pending, key=lambda t: t[0]):
        out = []
        for geom, spans in geoms:
            surfaces = geom.pop("_semantics", None)
            boundaries = [[rings.ring(span) for span in surface] for surface in spans]
            if geom["type"] == "Solid":
                geom["boundaries"] = [boundaries]
                geom["semantics"] = _semantics(surfaces)
            else:
                geom["boundaries"] = boundaries
            out.append(geom)
        obj["geometry"] = out
        objects[oid] = obj
    return objects, vertices


def _semantics(surfaces) -> dict:
    """Semantic surface objects (one per distinct type + attributes) and the per-face values."""
    table: dict[str, int] = {}
    entries, values = [], []
    for s in surfaces:
        entry = {"type": s.semantic, **_clean(s.attributes)}
        key = json.dumps(entry, sort_keys=True)
        if key not in table:
            table[key] = len(entries)
            entries.append(entry)
        values.append(table[key])
    return {"surfaces": entries, "values": [values]}


def _polygons(geom):
    if geom is None or geom.is_empty:
        return []
    return list(getattr(geom, "geoms", [geom]))


def _polygon_rings(poly, z):
    """Footprint rings at height ``z``: exterior counter-clockwise (normal up), holes clockwise."""
    poly = shapely.geometry.polygon.orient(poly, 1.0)
    out = []
    for ring in [poly.exterior, *poly.interiors]:
        xy = np.asarray(ring.coords, float)[:-1]
        out.append(np.column_stack([xy, np.full(len(xy), z)]))
    return out


def _clean(value):
    """JSON-ready copy: numpy scalars to Python, floats rounded to 4 decimals, NaN to null,
    dict keys sorted (stable bytes)."""
    if isinstance(value, dict):
        return {str(k): _clean(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_clean(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return None if not math.isfinite(v) else round(v, 4)
    if isinstance(value, Path):
        return str(value)
    return value


def _dumps(doc) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _check(doc: dict, path) -> None:
    from .validate import check_geometry

    errors = check_geometry(doc)
    if errors:
        listed = "; ".join(str(e) for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise OutputError(f"{path}: refusing to write invalid CityJSON after quantization: {listed}{more}")
