"""Areas of interest: named built-ins, or user bounds / GeoJSON, always on a projected CRS.

Every AOI is a rectangle in a projected, metric CRS: the grids of all products are laid on
it. A geographic AOI (lon/lat bounds or a GeoJSON polygon in EPSG:4326) is moved to the UTM
zone of its centre. ``toulouse`` is a real 1 km × 1 km area of central Toulouse (Capitole,
Saint-Sernin, the Garonne quays side), in **UTM zone 31N, EPSG:32631**.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from .errors import InputError

__all__ = ["AOI", "aoi", "list_aois", "aoi_from_bounds", "aoi_from_geojson", "MAX_SIZE_M"]

MAX_SIZE_M = 100_000.0  # 100 km: larger areas are for several runs, not one typo
MIN_SIZE_M = 10.0


@dataclass(frozen=True)
class AOI:
    """A rectangular area on a projected CRS.

    ``bounds`` are (xmin, ymin, xmax, ymax) in metres of ``crs`` (an ``"EPSG:n"`` string).
    ``ground_height`` is a typical ellipsoidal ground height (m), used by the simulator.
    """

    name: str
    bounds: tuple[float, float, float, float]
    crs: str
    description: str = ""
    ground_height: float = 0.0

    @property
    def width(self) -> float:
        return self.bounds[2] - self.bounds[0]

    @property
    def height(self) -> float:
        return self.bounds[3] - self.bounds[1]

    @property
    def center(self) -> tuple[float, float]:
        return (self.bounds[0] + self.bounds[2]) / 2, (self.bounds[1] + self.bounds[3]) / 2

    @property
    def epsg(self) -> int:
        return int(self.crs.split(":")[1])

    def crop(self, size_m: float | None) -> "AOI":
        """A square of side ``size_m`` centred on this AOI (``None``: unchanged)."""
        if size_m is None:
            return self
        size_m = _check_size(size_m, f"--size-m {size_m}")
        if size_m > min(self.width, self.height) + 1e-6:
            raise InputError(f"--size-m {size_m:g}: larger than AOI {self.name!r} "
                             f"({self.width:g} m × {self.height:g} m)")
        cx, cy = self.center
        h = size_m / 2
        return replace(self, bounds=(cx - h, cy - h, cx + h, cy + h))

    def to_dict(self) -> dict:
        return {"name": self.name, "bounds": list(self.bounds), "crs": self.crs,
                "description": self.description, "ground_height": self.ground_height,
                "size_m": [self.width, self.height]}


_REGISTRY = {
    "toulouse": AOI(
        name="toulouse",
        bounds=(373940.0, 4828620.0, 374940.0, 4829620.0),
        crs="EPSG:32631",
        description="Central Toulouse, France: 1 km x 1 km around the Capitole "
                    "(43.6045 N, 1.4442 E); historic blocks with courtyards, terraced rows, "
                    "modern blocks. UTM 31N.",
        # Toulouse city centre ground ≈ 146 m above the geoid; the geoid is ≈ 49.5 m above
        # the WGS84 ellipsoid there (EGM96), so ellipsoidal ground ≈ 195 m.
        ground_height=195.0,
    ),
}


def list_aois() -> list[AOI]:
    """The built-in AOIs, by name."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def aoi(name: str) -> AOI:
    """A built-in AOI by name (``lod3d.aoi("toulouse")``)."""
    try:
        return _REGISTRY[name.lower()]
    except KeyError:
        raise InputError(f"unknown AOI {name!r}; built-in AOIs: {', '.join(sorted(_REGISTRY))}") from None


def aoi_from_bounds(bounds, crs: str, name: str = "custom") -> AOI:
    """An AOI from ``(xmin, ymin, xmax, ymax)`` in ``crs`` (``"EPSG:n"``).

    Geographic bounds are moved to the UTM zone of their centre (the AOI becomes the
    bounding box of the transformed rectangle).
    """
    try:
        xmin, ymin, xmax, ymax = (float(v) for v in bounds)
    except (TypeError, ValueError):
        raise InputError(f"--bounds {bounds}: need four numbers xmin ymin xmax ymax") from None
    if not all(math.isfinite(v) for v in (xmin, ymin, xmax, ymax)) or xmin >= xmax or ymin >= ymax:
        raise InputError(f"--bounds {xmin:g} {ymin:g} {xmax:g} {ymax:g}: need xmin < xmax and ymin < ymax")
    crs_obj = _parse_crs(crs)
    if crs_obj.is_geographic:
        if not (-180 <= xmin and xmax <= 180 and -90 <= ymin and ymax <= 90):
            raise InputError(f"--bounds {xmin:g} {ymin:g} {xmax:g} {ymax:g}: not valid lon/lat for {crs}")
        utm = _utm_crs((xmin + xmax) / 2, (ymin + ymax) / 2)
        to_utm = Transformer.from_crs(crs_obj, utm, always_xy=True)
        xmin, ymin, xmax, ymax = to_utm.transform_bounds(xmin, ymin, xmax, ymax)
        crs_obj = utm
    elif not crs_obj.is_projected:
        raise InputError(f"--crs {crs}: need a projected or geographic 2-D CRS")
    _check_size(xmax - xmin, "AOI width")
    _check_size(ymax - ymin, "AOI height")
    epsg = crs_obj.to_epsg()
    if epsg is None:
        raise InputError(f"--crs {crs}: has no EPSG code")
    return AOI(name=name, bounds=(xmin, ymin, xmax, ymax), crs=f"EPSG:{epsg}")


def aoi_from_geojson(path) -> AOI:
    """An AOI from the bounding box of a GeoJSON file's geometries (EPSG:4326 unless a
    legacy ``crs`` member says otherwise)."""
    from shapely.geometry import shape

    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not readable GeoJSON ({exc})") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: not a GeoJSON object")
    kind = doc.get("type")
    if kind == "FeatureCollection":
        geoms = [f.get("geometry") for f in doc.get("features", []) if isinstance(f, dict)]
    elif kind == "Feature":
        geoms = [doc.get("geometry")]
    else:
        geoms = [doc]
    try:
        shapes = [shape(g) for g in geoms if g]
    except Exception as exc:  # shapely raises several types on malformed geometry
        raise InputError(f"{path}: invalid geometry ({exc})") from None
    if not shapes:
        raise InputError(f"{path}: no geometry")
    xs = [b for s in shapes for b in (s.bounds[0], s.bounds[2])]
    ys = [b for s in shapes for b in (s.bounds[1], s.bounds[3])]
    crs = doc.get("crs", {}).get("properties", {}).get("name", "EPSG:4326") if isinstance(doc.get("crs"), dict) else "EPSG:4326"
    return aoi_from_bounds((min(xs), min(ys), max(xs), max(ys)), crs, name=path.stem)


def _parse_crs(crs: str) -> CRS:
    try:
        return CRS.from_user_input(crs)
    except (CRSError, TypeError):
        raise InputError(f"--crs {crs}: not a known CRS (use EPSG:n)") from None


def _utm_crs(lon: float, lat: float) -> CRS:
    zone = int((lon + 180) // 6) + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def _check_size(size: float, what: str) -> float:
    size = float(size)
    if not math.isfinite(size) or size < MIN_SIZE_M or size > MAX_SIZE_M:
        raise InputError(f"{what}: {size:g} m is outside the usable range "
                         f"{MIN_SIZE_M:g} m to {MAX_SIZE_M:g} m")
    return size
