"""Acceptance figures of rebuilt buildings against the DSM they came from and a truth model.

Used by ``benchmarks/lod_acceptance.py`` and the acceptance tests, so both measure the
same thing: every footprint present, share at LoD2.2, roof RMSE against the DSM (pooled
over all roof samples of the LoD2.2 parts), volume error against the truth solids (or,
for city models burnt into a DSM, the volume under that DSM),
roof-type accuracy (truth: the roof type of the largest part), validity of the quantized
CityJSON (own geometric checks, optionally the official schema).
"""

from __future__ import annotations

import numpy as np

from ..cityjson.model import Building, Solid
from ..cityjson.validate import check_geometry, check_schema
from ..cityjson.writer import to_cityjson_dict
from .partition import roof_cells

__all__ = ["solid_volume", "truth_of", "dsm_volume", "rebuild_metrics"]


def solid_volume(solid: Solid) -> float:
    """Enclosed volume of a closed, outward-oriented solid (divergence theorem; each planar
    ring fanned from its first vertex, relative to a local origin for precision)."""
    origin = solid.surfaces[0].rings[0][0]
    vol = 0.0
    for s in solid.surfaces:
        for k, ring in enumerate(s.rings):
            p = np.asarray(ring, float) - origin
            a, b, c = p[0], p[1:-1], p[2:]
            vol += float(np.sum(np.einsum("j,ij->i", a, np.cross(b, c)))) / 6.0
    return vol


def truth_of(building: Building) -> tuple[float, str | None]:
    """Total volume of a truth building's highest-LoD solids and its main roof type (the
    ``roofType``/``roof_type`` attribute of the part with the largest ground area)."""
    vol, best = 0.0, (-1.0, None)
    for p in building.parts:
        solid = max(p.solids, key=lambda s: s.lod)
        vol += solid_volume(solid)
        area = sum(_ground_area(s) for s in solid.surfaces if s.semantic == "GroundSurface")
        kind = p.attributes.get("roofType", p.attributes.get("roof_type"))
        if area > best[0]:
            best = (area, kind)
    return vol, best[1]


def dsm_volume(footprint, dsm, ground_z: float) -> float:
    """Volume under the DSM above ``ground_z`` over the footprint (mean height of the cells
    inside times the exact area): the truth for models burnt into a DSM, whose own solids
    need not be closed."""
    z = roof_cells(footprint, dsm).z
    return float(np.mean(z - ground_z) * footprint.area) if len(z) else float("nan")


def rebuild_metrics(built: list[Building], truth: dict[str, tuple[float, str | None]], crs_epsg: int,
                    schema=None) -> dict:
    """Figures for ``built`` buildings against ``truth``: building id -> (volume, main
    roof type or None)."""
    doc = to_cityjson_dict(built, crs_epsg=crs_epsg)
    bad = {str(e).split("]")[1].split()[0] for e in check_geometry(doc)}
    schema_errors = len(check_schema(doc, schema)) if schema is not None else None
    sq = n = 0.0
    verr, hits, typed = [], 0, 0
    for b in built:
        a = b.attributes
        t = truth.get(b.id)
        if "rmse_lod22" not in a or t is None:
            continue
        samples = a["roof_samples_lod22"]
        sq += a["rmse_lod22"] ** 2 * samples
        n += samples
        tv, tkind = t
        verr.append(abs(a["volume_lod22"] - tv) / tv)
        if tkind is not None:
            typed += 1
            hits += a.get("roof_type") == tkind
    invalid = [b.id for b in built if any(b.id == o or o.startswith(b.id + "-") for o in bad)]
    return {"buildings": len(built), "present": sum(b.id in truth for b in built), "truth": len(truth),
            "lod22": len(verr), "roof_rmse": float(np.sqrt(sq / n)) if n else float("nan"),
            "volume_err_mean": float(np.mean(verr)) if verr else float("nan"),
            "volume_err_max": float(np.max(verr)) if verr else float("nan"),
            "roof_type_acc": hits / typed if typed else None, "invalid": invalid, "schema_errors": schema_errors}


def _ground_area(surface) -> float:
    ring = np.asarray(surface.rings[0])[:, :2]
    x, y = ring[:, 0] - ring[0, 0], ring[:, 1] - ring[0, 1]
    return abs(0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)))
