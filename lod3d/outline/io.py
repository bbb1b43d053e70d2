"""Write footprints as GeoJSON or as an OGC GeoPackage (sqlite3, no GDAL needed).

Each feature carries ``id``, ``cut`` (the building touches the tile border, so its outline
is the tile's cut, not a wall) and ``fallback`` (regularization gave up; the simplified
pixel outline is written). Files are written atomically.
"""

from __future__ import annotations

import json
import sqlite3
import struct
from pathlib import Path

import shapely
from pyproj import CRS

from lod3d.errors import OutputError
from lod3d.io.atomic import atomic_path

__all__ = ["FORMATS", "write_footprints"]

FORMATS = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GPKG"}


def write_footprints(path, footprints) -> Path:
    """Write a :class:`lod3d.outline.Footprints` to ``path`` (format from the suffix)."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise OutputError(f"{path}: unknown footprint format {path.suffix!r} "
                          f"(use {', '.join(sorted(FORMATS))})")
    if path.is_dir():
        raise OutputError(f"{path}: is a directory")
    crs = CRS.from_user_input(footprints.crs) if footprints.crs is not None else None
    with atomic_path(path) as tmp:
        (_write_geojson if fmt == "GeoJSON" else _write_gpkg)(tmp, footprints, crs)
    return path


def _write_geojson(path, fp, crs):
    """Geometries serialized by GEOS in one vectorized call and spliced into the feature
    text (no per-building shapely call or JSON round trip)."""
    geoms = shapely.to_geojson(fp.polygons).tolist() if len(fp) else []
    flag = {True: "true", False: "false"}
    features = ",".join(
        f'{{"type":"Feature","id":{i},"properties":{{"id":{i},"cut":{flag[c]},"fallback":{flag[f]}}},'
        f'"geometry":{g}}}'
        for i, g, c, f in zip(fp.ids.tolist(), geoms, fp.cut.tolist(), fp.fallback.tolist()))
    text = '{"type":"FeatureCollection","features":[' + features + "]"
    if crs is not None and crs.to_epsg():
        name = {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{crs.to_epsg()}"}}
        text += ',"crs":' + json.dumps(name, separators=(",", ":"))
    path.write_text(text + "}")


_GPKG_HEADER = struct.Struct("<2sBBi4d")   # magic, version, flags (little-endian, XY envelope), srs, envelope


def _gpkg_blobs(polygons, srs_id: int) -> list[bytes]:
    """GeoPackage geometries: header (magic, version, flags, XY envelope) + WKB; bounds and
    WKB from one vectorized shapely call each."""
    bounds = shapely.bounds(polygons).tolist()
    wkb = shapely.to_wkb(polygons, byte_order=1).tolist()
    return [_GPKG_HEADER.pack(b"GP", 0, 0b00000011, srs_id, xmin, xmax, ymin, ymax) + w
            for (xmin, ymin, xmax, ymax), w in zip(bounds, wkb)]


def _write_gpkg(path, fp, crs):
    srs_id = crs.to_epsg() if crs is not None and crs.to_epsg() else 0
    con = sqlite3.connect(path)
    try:
        con.executescript("""
            PRAGMA application_id = 1196444487;  -- 'GPKG'
            PRAGMA user_version = 10400;
            CREATE TABLE gpkg_spatial_ref_sys (srs_name TEXT NOT NULL, srs_id INTEGER PRIMARY KEY,
                organization TEXT NOT NULL, organization_coordsys_id INTEGER NOT NULL,
                definition TEXT NOT NULL, description TEXT);
            CREATE TABLE gpkg_contents (table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT NULL,
                identifier TEXT UNIQUE, description TEXT DEFAULT '',
                last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
                min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE, srs_id INTEGER);
            CREATE TABLE gpkg_geometry_columns (table_name TEXT NOT NULL, column_name TEXT NOT NULL,
                geometry_type_name TEXT NOT NULL, srs_id INTEGER NOT NULL, z TINYINT NOT NULL,
                m TINYINT NOT NULL, CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name));
            CREATE TABLE footprints (fid INTEGER PRIMARY KEY AUTOINCREMENT, geom POLYGON,
                building_id INTEGER, cut BOOLEAN, fallback BOOLEAN);
        """)
        srs = [("Undefined cartesian SRS", -1, "NONE", -1, "undefined", None),
               ("Undefined geographic SRS", 0, "NONE", 0, "undefined", None)]
        if srs_id > 0:
            srs.append((crs.name, srs_id, "EPSG", srs_id, crs.to_wkt(), None))
        con.executemany("INSERT INTO gpkg_spatial_ref_sys VALUES (?,?,?,?,?,?)", srs)
        bounds = shapely.total_bounds(fp.polygons) if len(fp) else [None] * 4
        con.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, min_x, min_y, "
                    "max_x, max_y, srs_id) VALUES ('footprints','features','footprints',?,?,?,?,?)",
                    (*[None if b is None else float(b) for b in bounds], srs_id))
        con.execute("INSERT INTO gpkg_geometry_columns VALUES ('footprints','geom','POLYGON',?,0,0)",
                    (srs_id,))
        if len(fp):
            con.executemany("INSERT INTO footprints (geom, building_id, cut, fallback) VALUES (?,?,?,?)",
                            zip(_gpkg_blobs(fp.polygons, srs_id), fp.ids.tolist(), fp.cut.tolist(),
                                fp.fallback.tolist()))
        con.commit()
    finally:
        con.close()
