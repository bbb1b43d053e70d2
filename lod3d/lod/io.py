"""Read footprints from GeoJSON for the ``lod`` command, reprojected to the DSM's CRS
when they differ."""

from __future__ import annotations

import json
import re
from pathlib import Path

import shapely
from pyproj import CRS, Transformer

from ..errors import InputError

__all__ = ["read_footprints"]


def read_footprints(path, target_crs=None) -> list[tuple[str, object]]:
    """``(id, Polygon|MultiPolygon)`` from a GeoJSON FeatureCollection.

    The id is the feature's ``id`` (or ``properties.id``, else its index). A ``crs`` member
    (EPSG name) different from ``target_crs`` is reprojected; invalid polygons are repaired
    with ``make_valid`` (polygonal parts kept), empty or non-polygonal ones are refused.
    """
    path = Path(path)
    if path.suffix.lower() not in (".geojson", ".json"):
        raise InputError(f"{path}: footprints must be GeoJSON (.geojson)")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read footprints ({exc})") from None
    feats = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(feats, list):
        raise InputError(f"{path}: not a GeoJSON FeatureCollection")
    src = _crs_of(doc)
    transformer = None
    if src is not None and target_crs is not None and CRS.from_user_input(target_crs) != src:
        transformer = Transformer.from_crs(src, CRS.from_user_input(target_crs), always_xy=True)
    out, seen = [], set()
    for i, f in enumerate(feats):
        fid = f.get("id", (f.get("properties") or {}).get("id", i))
        fid = str(fid)
        if fid in seen:
            raise InputError(f"{path}: duplicate footprint id {fid!r}")
        seen.add(fid)
        try:
            geom = shapely.geometry.shape(f["geometry"])
        except (KeyError, TypeError, ValueError, AttributeError):
            raise InputError(f"{path}: feature {fid}: unreadable geometry") from None
        if transformer is not None:
            geom = shapely.transform(geom, lambda xy: _apply(transformer, xy))
        if not geom.is_valid:
            geom = shapely.make_valid(geom)
        polys = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon" and not p.is_empty]
        for g in shapely.get_parts(geom):
            if g.geom_type in ("MultiPolygon", "GeometryCollection"):
                polys += [p for p in shapely.get_parts(g) if p.geom_type == "Polygon"]
        if not polys:
            raise InputError(f"{path}: feature {fid}: not a polygon ({geom.geom_type})")
        out.append((fid, polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)))
    return out


def _apply(transformer, xy):
    import numpy as np

    x, y = transformer.transform(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y])


def _crs_of(doc):
    name = ((doc.get("crs") or {}).get("properties") or {}).get("name")
    if not name:
        return None
    m = re.search(r"EPSG:+(\d+)", name)
    return CRS.from_epsg(int(m.group(1))) if m else CRS.from_user_input(name)
