"""Read footprints (GeoJSON, or the GeoPackage that ``lod3d outline`` and ``lod3d city``
write) for the ``lod`` command, reprojected to the DSM's CRS when they differ."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import numpy as np
import shapely
from pyproj import CRS, Transformer

from ..errors import InputError

__all__ = ["read_footprints"]

# GeoPackage geometry header: magic, version, flags; then srs id and an envelope whose size
# the flags give (bits 1-3: none, XY, XYZ, XYM, XYZM)
_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}


def read_footprints(path, target_crs=None) -> list[tuple[str, object]]:
    """``(id, Polygon|MultiPolygon)`` from a GeoJSON FeatureCollection or a GeoPackage.

    GeoJSON: the id is the feature's ``id`` (or ``properties.id``, else its index) and a
    ``crs`` member (EPSG name) gives the CRS. GeoPackage (one feature table): the id is the
    ``building_id`` column when there is one, else the feature id, and the CRS is the
    table's EPSG code. Footprints in a CRS other than ``target_crs`` are reprojected;
    invalid polygons are repaired with ``make_valid`` (polygonal parts kept), empty or
    non-polygonal ones are refused.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".geojson", ".json"):
        features, src = _read_geojson(path)
    elif suffix == ".gpkg":
        features, src = _read_gpkg(path)
    else:
        raise InputError(f"{path}: footprints must be GeoJSON (.geojson) or a GeoPackage (.gpkg)")
    transformer = None
    if src is not None and target_crs is not None and CRS.from_user_input(target_crs) != src:
        transformer = Transformer.from_crs(src, CRS.from_user_input(target_crs), always_xy=True)
    out, seen = [], set()
    for fid, geom in features:
        if fid in seen:
            raise InputError(f"{path}: duplicate footprint id {fid!r}")
        seen.add(fid)
        if geom is None:
            raise InputError(f"{path}: feature {fid}: unreadable geometry")
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


def _read_geojson(path: Path):
    """``([(id, geometry or None), ...], CRS or None)`` of a GeoJSON FeatureCollection."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read footprints ({exc})") from None
    feats = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(feats, list):
        raise InputError(f"{path}: not a GeoJSON FeatureCollection")
    features = []
    for i, f in enumerate(feats):
        fid = str(f.get("id", (f.get("properties") or {}).get("id", i)))
        try:
            geom = shapely.geometry.shape(f["geometry"])
        except (KeyError, TypeError, ValueError, AttributeError):
            geom = None
        features.append((fid, geom))
    return features, _geojson_crs(doc)


def _read_gpkg(path: Path):
    """``([(id, geometry or None), ...], CRS or None)`` of a GeoPackage's feature table,
    read with sqlite3 (no GDAL vector driver needed)."""
    if not path.is_file():
        raise InputError(f"{path}: cannot read footprints (no such file)")
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = con.execute(
                "SELECT c.table_name, g.column_name, c.srs_id FROM gpkg_contents c JOIN gpkg_geometry_columns g "
                "ON c.table_name = g.table_name WHERE c.data_type = 'features'").fetchall()
            if len(tables) != 1:
                raise InputError(f"{path}: expected one feature table, found {len(tables)}")
            table, column, srs_id = tables[0]
            names = [r[1] for r in con.execute(f'PRAGMA table_info("{table}")')]
            id_col = "building_id" if "building_id" in names else "rowid"
            rows = con.execute(f'SELECT "{id_col}", "{column}" FROM "{table}" ORDER BY rowid').fetchall()
            org = con.execute("SELECT organization, organization_coordsys_id FROM gpkg_spatial_ref_sys "
                              "WHERE srs_id = ?", (srs_id,)).fetchone()
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise InputError(f"{path}: not a readable GeoPackage ({exc})") from None
    src = CRS.from_epsg(int(org[1])) if org and str(org[0]).upper() == "EPSG" else None
    return [(str(fid), _gpkg_geometry(blob)) for fid, blob in rows], src


def _gpkg_geometry(blob):
    """The shapely geometry of a GeoPackage geometry blob, or None when it is not one."""
    if not isinstance(blob, bytes) or len(blob) < 8 or blob[:2] != b"GP":
        return None
    envelope = _ENVELOPE_BYTES.get((blob[3] >> 1) & 0b111)
    if envelope is None:
        return None
    try:
        return shapely.from_wkb(blob[8 + envelope:])
    except (shapely.errors.GEOSException, ValueError):
        return None


def _apply(transformer, xy):
    x, y = transformer.transform(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y])


def _geojson_crs(doc):
    name = ((doc.get("crs") or {}).get("properties") or {}).get("name")
    if not name:
        return None
    m = re.search(r"EPSG:+(\d+)", name)
    return CRS.from_epsg(int(m.group(1))) if m else CRS.from_user_input(name)
