"""Acceptance figures of rebuilt buildings against the DSM they came from and a truth model.

Used by ``benchmarks/lod_acceptance.py`` and the acceptance tests, so both measure the
same thing: every footprint present, share at LoD2.2, roof RMSE against the DSM (pooled
over all roof samples of the LoD2.2 parts), volume error against the truth solids (or,
for city models burnt into a DSM, the volume under that DSM) over the buildings the DSM
covers,
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
    rings = [np.asarray(r, float) for s in solid.surfaces for r in s.rings]
    origin = rings[0][0]
    first = np.concatenate([np.repeat(r[:1], len(r) - 2, axis=0) for r in rings]) - origin
    b = np.concatenate([r[1:-1] for r in rings]) - origin
    c = np.concatenate([r[2:] for r in rings]) - origin
    return float(np.sum(first[:, 0] * (b[:, 1] * c[:, 2] - b[:, 2] * c[:, 1])
                        + first[:, 1] * (b[:, 2] * c[:, 0] - b[:, 0] * c[:, 2])
                        + first[:, 2] * (b[:, 0] * c[:, 1] - b[:, 1] * c[:, 0]))) / 6.0


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
                    schema=None, max_nodata: float = 0.05) -> dict:
    """Figures for ``built`` buildings against ``truth``: building id -> (volume, main
    roof type or None).

    Volume errors are taken over the buildings the DSM covers (``nodata_share`` at most
    ``max_nodata``): where part of a footprint lies beyond the DSM's edge (buildings cut
    by the scene border) the roof there is extrapolated, not measured; ``uncovered``
    lists them.
    """
    doc = to_cityjson_dict(built, crs_epsg=crs_epsg)
    bad = {str(e).split("]")[1].split()[0] for e in check_geometry(doc)}
    schema_errors = len(check_schema(doc, schema)) if schema is not None else None
    sq = n = 0.0
    verr, uncovered, hits, typed, lod22 = [], [], 0, 0, 0
    for b in built:
        a = b.attributes
        t = truth.get(b.id)
        if "rmse_lod22" not in a or t is None:
            continue
        samples = a["roof_samples_lod22"]
        sq += a["rmse_lod22"] ** 2 * samples
        n += samples
        tv, tkind = t
        if a["nodata_share"] <= max_nodata:
            verr.append(abs(a["volume_lod22"] - tv) / tv)
        else:
            uncovered.append(b.id)
        lod22 += 1
        if tkind is not None:
            typed += 1
            hits += a.get("roof_type") == tkind
    invalid = [b.id for b in built if any(b.id == o or o.startswith(b.id + "-") for o in bad)]
    return {"buildings": len(built), "present": sum(b.id in truth for b in built), "truth": len(truth),
            "lod22": lod22, "uncovered": uncovered, "roof_rmse": float(np.sqrt(sq / n)) if n else float("nan"),
            "volume_err_mean": float(np.mean(verr)) if verr else float("nan"),
            "volume_err_max": float(np.max(verr)) if verr else float("nan"),
            "roof_type_acc": hits / typed if typed else None, "invalid": invalid, "schema_errors": schema_errors}


def _ground_area(surface) -> float:
    ring = np.asarray(surface.rings[0])[:, :2]
    x, y = ring[:, 0] - ring[0, 0], ring[:, 1] - ring[0, 1]
    return abs(0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)))
