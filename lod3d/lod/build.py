"""From footprints + DSM + DTM to LOD0/LoD1.2/LoD2.2 buildings with quality attributes.

Per footprint (each polygon of a multi-part footprint becomes its own BuildingPart):

* the DSM cells whose centres fall inside are the roof samples; the ground height is the
  10th percentile of the DTM within 1 m around the footprint (LOD0 sits there);
* LoD1.2: a prism at the 70th percentile of the roof samples (3DBAG's choice);
* LoD2.2: the best roof primitive (:mod:`lod3d.lod.roof`) as an envelope solid
  (:mod:`lod3d.lod.solid`).

Every building is emitted. When LoD2.2 cannot be made (too few valid samples, no usable
primitive, a solid that fails the geometric checks after quantization), the building keeps
LoD1.2 and records why in ``lod_fallback_reason``; without valid samples at all, LoD1.2 is
skipped too and only LOD0 remains. Attributes follow 3DBAG: ground and roof heights,
roof type and plane count, per-LoD RMSE against the DSM, volume and validity, and the DSM
nodata share inside the footprint.
"""

from __future__ import annotations

import numpy as np
import shapely

from ..cityjson.model import Building, BuildingPart
from ..cityjson.validate import check_geometry
from ..cityjson.writer import to_cityjson_dict
from ..raster import Raster
from .roof import fit_roof
from .solid import envelope_faces, envelope_solid, roof_height

__all__ = ["build_building", "build_buildings", "MIN_SAMPLES"]

MIN_SAMPLES = 8  # roof samples needed for any 3-D model


def build_buildings(footprints, dsm: Raster, dtm: Raster, lods=(0, 1, 2), progress=None) -> list[Building]:
    """Build every footprint ``(id, polygon)``; ``progress`` wraps the iteration if given."""
    items = sorted(footprints, key=lambda t: str(t[0]))
    it = progress(items) if progress else items
    return [build_building(str(bid), poly, dsm, dtm, lods) for bid, poly in it]


def build_building(bid: str, footprint, dsm: Raster, dtm: Raster, lods=(0, 1, 2)) -> Building:
    """One building with all requested LoDs (LOD0 always) and its quality attributes."""
    footprint = shapely.make_valid(footprint) if not footprint.is_valid else footprint
    polys = sorted((p for p in shapely.get_parts(footprint) if p.geom_type == "Polygon" and p.area > 0.25),
                   key=lambda p: (-p.area, p.bounds))
    ground = _ground_height(footprint, dtm)
    attrs: dict = {"h_ground": ground}
    parts, reasons, counts = [], [], {"n": 0, "nodata": 0}
    for k, poly in enumerate(polys):
        part, reason = _build_part(f"{bid}-{k}", poly, dsm, ground, lods, counts)
        if part.solids:
            parts.append(part)
        if reason:
            reasons.append(reason)
    total = counts["n"] + counts["nodata"]
    attrs["nodata_share"] = counts["nodata"] / total if total else 1.0
    attrs["lod_fallback_reason"] = "; ".join(sorted(set(reasons))) or None
    if parts:
        for key in ("h_roof_50p", "h_roof_70p", "h_roof_max"):
            attrs[key] = max(p.attributes.get(key, -np.inf) for p in parts)
        for key in ("volume_lod12", "volume_lod22"):
            vals = [p.attributes[key] for p in parts if key in p.attributes]
            if vals:
                attrs[key] = float(np.sum(vals))
        attrs["roof_type"] = parts[0].attributes.get("roof_type")
        attrs["roof_planes"] = int(sum(p.attributes.get("roof_planes", 0) for p in parts))
        for key in ("rmse_lod12", "rmse_lod22"):
            vals = [p.attributes[key] for p in parts if key in p.attributes]
            if vals:
                attrs[key] = float(np.max(vals))
    attrs["lod_max"] = max((s.lod for p in parts for s in p.solids), default="0")
    return Building(bid, shapely.MultiPolygon(polys) if len(polys) > 1 else polys[0], ground, parts, attrs)


def _build_part(pid, poly, dsm, ground, lods, counts):
    """One BuildingPart and the reason LoD2.2 was not made (None when it was)."""
    x, y, z, nodata = _samples(poly, dsm)
    counts["n"] += len(z)
    counts["nodata"] += nodata
    part = BuildingPart(pid, [], {})
    if len(z) < MIN_SAMPLES:
        return part, f"{pid}: {len(z)} valid DSM samples inside (need {MIN_SAMPLES})"
    h50, h70, hmax = np.percentile(z, [50, 70, 100])
    part.attributes.update(h_roof_50p=h50, h_roof_70p=h70, h_roof_max=hmax)
    if h70 <= ground + 0.5:
        return part, f"{pid}: roof not above ground (70th percentile {h70:.2f} m, ground {ground:.2f} m)"
    if 1 in lods:
        prism = np.array([[0.0, 0.0, h70]])
        solid, _ = envelope_solid(poly, prism, ground, "1.2")
        if _valid(pid, poly, ground, solid):
            part.solids.append(solid)
            part.attributes.update(rmse_lod12=float(np.sqrt(np.mean((z - h70) ** 2))),
                                   volume_lod12=_volume(poly, prism, ground), val_lod12=True)
    if 2 not in lods:
        return part, None
    fit = fit_roof(poly, x, y, z, ground)
    if fit is None:
        return part, f"{pid}: no roof primitive fits the DSM"
    solid, planes = envelope_solid(poly, fit.planes, ground, "2.2")
    if not _valid(pid, poly, ground, solid):
        return part, f"{pid}: LoD2.2 solid failed the geometric checks"
    part.solids.append(solid)
    env = roof_height(planes, x, y)
    part.attributes.update(roof_type=fit.roof_type, roof_planes=len(planes),
                           rmse_lod22=float(np.sqrt(np.mean((env - z) ** 2))),
                           volume_lod22=_volume(poly, planes, ground), val_lod22=True)
    return part, None


def _valid(pid, poly, ground, solid) -> bool:
    """The solid passes the geometric checks after CityJSON quantization."""
    doc = to_cityjson_dict([Building("b", poly, ground, [BuildingPart(pid, [solid])])], crs_epsg=4978)
    return not check_geometry(doc)


def _volume(poly, planes, ground) -> float:
    """Exact volume between the envelope roof and the ground (roof linear on each face)."""
    faces, used = envelope_faces(poly, planes)
    vol = 0.0
    for face, k in faces:
        c = face.centroid
        vol += face.area * (used[k, 0] * c.x + used[k, 1] * c.y + used[k, 2] - ground)
    return float(vol)


def _window(poly, raster: Raster, pad: float = 0.0):
    """Row/col ranges of ``raster`` cells covering the polygon's bounds (+ pad)."""
    inv = ~raster.transform
    x0, y0, x1, y1 = poly.bounds
    c0, r0 = inv * (x0 - pad, y1 + pad)
    c1, r1 = inv * (x1 + pad, y0 - pad)
    h, w = raster.shape
    r0, c0 = max(0, int(np.floor(r0))), max(0, int(np.floor(c0)))
    r1, c1 = min(h, int(np.ceil(r1))), min(w, int(np.ceil(c1)))
    return r0, r1, c0, c1


def _cells_inside(poly, raster: Raster, pad: float = 0.0):
    r0, r1, c0, c1 = _window(poly, raster, pad)
    if r1 <= r0 or c1 <= c0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    rr, cc = np.mgrid[r0:r1, c0:c1]
    x, y = raster.transform * (cc.ravel() + 0.5, rr.ravel() + 0.5)
    target = poly.buffer(pad) if pad else poly
    inside = shapely.contains_xy(target, x, y)
    data = raster.data[-2:][0] if raster.data.ndim == 3 else raster.data
    return x[inside], y[inside], data[rr.ravel()[inside], cc.ravel()[inside]].astype(float)


def _samples(poly, dsm: Raster):
    """Valid DSM samples (x, y, z) inside the polygon and the count of nodata cells."""
    x, y, z = _cells_inside(poly, dsm)
    ok = np.isfinite(z)
    if dsm.nodata is not None and np.isfinite(dsm.nodata):
        ok &= z != dsm.nodata
    return x[ok], y[ok], z[ok], int((~ok).sum())


def _ground_height(footprint, dtm: Raster) -> float:
    """10th percentile of the DTM within 1 m around the footprint (NaN-safe)."""
    _, _, z = _cells_inside(footprint, dtm, pad=1.0)
    z = z[np.isfinite(z)]
    if dtm.nodata is not None and np.isfinite(dtm.nodata):
        z = z[z != dtm.nodata]
    if not len(z):
        return float("nan")
    return float(np.percentile(z, 10))
