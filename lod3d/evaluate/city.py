"""Evaluate a ``lod3d city`` result against truth: ``metrics.json`` for ``lod3d evaluate``.

Truth is a folder holding any of (the names of ``lod3d simulate``'s ``truth/`` folder):

=========================  ================================================================
``dsm.tif``                reference surface model (simulated truth, or a LiDAR DSM)
``dtm.tif``                reference terrain model
``buildings.tif``          building instance ids (0 = none); made from the footprints if absent
``footprints.geojson``     reference building footprints (e.g. an official cadastre)
``buildings.city.json``    reference city model (LoD1/LoD2 solids, ``roofType`` per part)
=========================  ================================================================

A ``lod3d city`` run folder (``simulation/truth/``) or a ``lod3d simulate`` folder
(``truth/``) may be given instead. Every section whose inputs exist on both sides is
computed; the others are ``null`` with the reason in ``skipped``.

Everything is compared on the result's grid (``dsm.tif``): truth rasters are resampled
onto it (bilinear heights, nearest labels; exact when the grids are aligned, as for
simulated truth). Sections:

- ``dsm``, ``dtm`` — :func:`~lod3d.evaluate.heights.height_errors` overall and by class:
  ``roofs`` (truth building cells), ``vegetation`` (truth DSM − DTM > 2.5 m outside
  buildings), ``ground`` (the rest). Without a truth DTM, ``ground`` is all non-building cells.
- ``detection`` — pixel IoU/precision/recall/F1 of ``mask.tif`` against the truth
  buildings; instance precision/recall/F1 at IoU ≥ 0.5 of the mask's connected components
  against truth instances, and of the output footprints against the truth footprints.
- ``footprints`` — :func:`~lod3d.evaluate.footprints.footprint_metrics` (IoU, C-IoU,
  PoLiS, MTA, N-ratio) and the horizontal error of building corners (the "well-defined
  points" of the ASPRS standard): truth corners (turn > 30°) paired with the mutually
  nearest output corner within ``corner_max_m`` on matched buildings.
- ``lod`` — LoD1.2 and LoD2.2 roof errors: the output solids burnt onto the grid
  (:func:`~lod3d.cityjson.rasterize.burn_buildings`) against the truth DSM on truth building
  cells (completeness = share of those cells the models cover; ``outside_share`` = share of
  the burnt roof cells outside every truth building); volume error of matched
  buildings lying wholly inside the result's extent against the truth solids; roof-type
  accuracy (truth: the type of the largest part); validity of ``city.city.json`` under
  :func:`~lod3d.cityjson.validate.validate_file` per LoD.
- ``accuracy_classes`` — :mod:`lod3d.evaluate.standards`: ASPRS 2014 and 2023 vertical
  classes of the DSM and DTM (NVA: open-ground cells; VVA: vegetation cells), horizontal
  classes of the footprints (corner checkpoints), and the CityGML LoD qualification.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import rasterio
import shapely
from rasterio.enums import Resampling
from rasterio.features import rasterize
from rasterio.warp import reproject
from scipy import ndimage
from scipy.spatial import cKDTree

from .. import __version__
from ..cityjson.rasterize import burn_buildings
from ..cityjson.reader import read_cityjson
from ..cityjson.validate import validate_file
from ..errors import InputError
from ..io.atomic import atomic_path
from ..lod.io import read_footprints
from ..lod.metrics import solid_volume, truth_of
from ..raster import Raster
from .footprints import footprint_metrics, match
from .heights import height_errors, height_errors_by_class
from .standards import asprs_horizontal, asprs_vertical, lod_qualification

__all__ = ["evaluate_run", "find_truth", "write_metrics", "on_grid", "truth_footprints", "class_labels",
           "instance_scores", "corner_offsets", "CLASS_NAMES", "VEGETATION_M"]

TRUTH_FILES = {"dsm": "dsm.tif", "dtm": "dtm.tif", "buildings": "buildings.tif",
               "footprints": "footprints.geojson", "city": "buildings.city.json"}
CLASS_NAMES = {1: "roofs", 2: "ground", 3: "vegetation"}
VEGETATION_M = 2.5        # truth DSM − DTM above this, outside buildings, is vegetation
MIN_TRUTH_PIECE_M2 = 2.0  # truth footprints clipped to the result extent: smaller slivers dropped
CORNER_TURN_DEG = 30.0
LODS = ("1.2", "2.2")


def find_truth(truth_dir) -> dict[str, Path]:
    """The truth files present under ``truth_dir`` (a truth folder, a ``lod3d city`` run
    folder or a ``lod3d simulate`` folder), by role."""
    d = Path(truth_dir)
    if not d.is_dir():
        raise InputError(f"{d}: no such truth directory")
    for sub in (d / "simulation" / "truth", d / "truth"):
        if sub.is_dir():
            d = sub
            break
    found = {role: d / name for role, name in TRUTH_FILES.items() if (d / name).is_file()}
    if not found:
        raise InputError(f"{d}: no truth files (expected any of {', '.join(TRUTH_FILES.values())})")
    return found


def evaluate_run(truth_dir, result_dir, *, vertical_offset: float = 0.0, corner_max_m: float = 2.0) -> dict:
    """All metrics of the products in ``result_dir`` against the truth in ``truth_dir``.

    ``vertical_offset`` (m) is subtracted from the result heights first (a known datum
    shift, e.g. a geoid height when the reference is orthometric).
    """
    truth = find_truth(truth_dir)
    result = Path(result_dir)
    grid_path = next((result / n for n in ("dsm.tif", "mask.tif") if (result / n).is_file()), None)
    if grid_path is None:
        raise InputError(f"{result}: no dsm.tif or mask.tif (not a lod3d result folder)")
    grid = Raster.read(grid_path)
    skipped: dict[str, str] = {}
    metrics: dict = {"lod3d_version": __version__, "truth": {k: str(v) for k, v in truth.items()},
                     "result": str(result), "vertical_offset_m": vertical_offset,
                     "grid": {"crs": str(grid.crs), "res_m": grid.res, "shape": list(grid.shape)}}

    t_dsm = on_grid(truth.get("dsm"), grid, Resampling.bilinear)
    t_dtm = on_grid(truth.get("dtm"), grid, Resampling.bilinear)
    t_fp = truth_footprints(truth, grid)
    t_ids = on_grid(truth.get("buildings"), grid, Resampling.nearest)
    if t_ids is None and t_fp:
        t_ids = rasterize([(p, k + 1) for k, (_, p) in enumerate(t_fp)], out_shape=grid.shape,
                          transform=grid.transform, dtype="int32")
    t_ids = None if t_ids is None else np.nan_to_num(t_ids).astype(np.int64)
    labels = class_labels(t_ids, t_dsm, t_dtm)

    for name in ("dsm", "dtm"):
        ref = t_dsm if name == "dsm" else t_dtm
        res = on_grid(result / f"{name}.tif" if (result / f"{name}.tif").is_file() else None, grid,
                       Resampling.nearest)
        if ref is None or res is None:
            metrics[name] = None
            skipped[name] = f"no {name}.tif in the {'truth' if ref is None else 'result'}"
        elif labels is None:
            metrics[name] = {"all": height_errors(res, ref, offset=vertical_offset)}
        else:
            metrics[name] = height_errors_by_class(res, ref, labels, CLASS_NAMES, offset=vertical_offset)
            for value, cls in CLASS_NAMES.items():  # ASPRS 2014 states the VVA as a 95th percentile
                err = res[labels == value] - vertical_offset - ref[labels == value]
                err = np.abs(err[np.isfinite(err)])
                metrics[name][cls]["le95"] = float(np.percentile(err, 95)) if err.size else float("nan")

    model_path = result / "city.city.json"
    built = read_cityjson(model_path).buildings() if model_path.is_file() else None
    mask = on_grid(result / "mask.tif" if (result / "mask.tif").is_file() else None, grid, Resampling.nearest)
    metrics["detection"] = _detection(t_ids, mask, t_fp, built, skipped)
    metrics["footprints"] = _footprints(t_fp, built, corner_max_m, skipped)
    t_city = read_cityjson(truth["city"]).buildings() if "city" in truth else None
    metrics["lod"] = _lod(built, model_path, t_city, t_ids, t_dsm, grid, skipped)
    metrics["accuracy_classes"] = _classes_of(metrics)
    metrics["skipped"] = skipped
    return _finite(metrics)


def write_metrics(metrics: dict, path) -> Path:
    """Write ``metrics`` as indented JSON (NaN already turned into null), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(metrics, indent=1))
    return path


# ------------------------------------------------------------------ inputs
def on_grid(path, grid: Raster, resampling) -> np.ndarray | None:
    """Band 1 of ``path`` resampled onto ``grid`` as float64 (nodata → NaN), or None."""
    if path is None:
        return None
    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"{path}: not a readable raster ({exc})") from None
    with src:
        data = src.read(1).astype(np.float64)
        if src.nodata is not None and not np.isnan(src.nodata):
            data[data == src.nodata] = np.nan
        if src.crs is None:
            raise InputError(f"{path}: no CRS")
        out = np.full(grid.shape, np.nan)
        reproject(data, out, src_transform=src.transform, src_crs=src.crs, dst_transform=grid.transform,
                  dst_crs=grid.crs, src_nodata=np.nan, dst_nodata=np.nan, resampling=resampling)
    if np.isnan(out).all():
        raise InputError(f"{path}: does not overlap the result grid")
    return out


def truth_footprints(truth: dict, grid: Raster) -> list[tuple[str, object]] | None:
    """Truth footprints (from the GeoJSON, else the truth city model) clipped to the grid."""
    if "footprints" in truth:
        fps = read_footprints(truth["footprints"], target_crs=grid.crs)
    elif "city" in truth:
        fps = [(b.id, b.footprint) for b in read_cityjson(truth["city"]).buildings()]
    else:
        return None
    box = shapely.box(*grid.bounds)
    out = []
    for fid, poly in fps:
        piece = poly.intersection(box)
        if piece.area >= MIN_TRUTH_PIECE_M2:
            out.append((fid, piece))
    return out


def class_labels(t_ids, t_dsm, t_dtm) -> np.ndarray | None:
    """1 roofs, 2 ground, 3 vegetation (see module docstring); None without truth buildings."""
    if t_ids is None:
        return None
    labels = np.where(t_ids > 0, 1, 2).astype(np.int8)
    if t_dsm is not None and t_dtm is not None:
        with np.errstate(invalid="ignore"):
            labels[(t_ids == 0) & (t_dsm - t_dtm > VEGETATION_M)] = 3
    return labels


# ------------------------------------------------------------------ detection and footprints
def instance_scores(truth_ids: np.ndarray, pred_ids: np.ndarray, min_iou: float = 0.5) -> dict:
    """Precision, recall and F1 of predicted instances (labels > 0) matched one-to-one to
    truth instances at IoU ≥ ``min_iou`` (greedy by decreasing IoU)."""
    t = truth_ids.ravel().astype(np.int64)
    p = pred_ids.ravel().astype(np.int64)
    n_t, n_p = len(np.unique(t[t > 0])), len(np.unique(p[p > 0]))
    both = (t > 0) & (p > 0)
    tp = 0
    if both.any():
        pairs, inter = np.unique(np.stack([t[both], p[both]]), axis=1, return_counts=True)
        area_t, area_p = np.bincount(t), np.bincount(p)
        iou = inter / (area_t[pairs[0]] + area_p[pairs[1]] - inter)
        used_t, used_p = set(), set()
        for k in np.argsort(-iou, kind="stable"):
            if iou[k] < min_iou:
                break
            if pairs[0, k] not in used_t and pairs[1, k] not in used_p:
                used_t.add(pairs[0, k])
                used_p.add(pairs[1, k])
        tp = len(used_t)
    return _prf(tp, n_t, n_p)


def _prf(tp: int, n_truth: int, n_pred: int) -> dict:
    precision = tp / n_pred if n_pred else float("nan")
    recall = tp / n_truth if n_truth else float("nan")
    f1 = 2 * tp / (n_truth + n_pred) if n_truth + n_pred else float("nan")
    return {"n_truth": n_truth, "n_pred": n_pred, "matched": tp, "precision": precision, "recall": recall,
            "f1": f1}


def _detection(t_ids, mask, t_fp, built, skipped) -> dict | None:
    out = {}
    if t_ids is not None and mask is not None:
        truth = t_ids > 0
        pred = np.nan_to_num(mask) > 0
        inter, union = int((truth & pred).sum()), int((truth | pred).sum())
        npred, ntrue = int(pred.sum()), int(truth.sum())
        out["pixel"] = {"iou": inter / union if union else float("nan"),
                        "precision": inter / npred if npred else float("nan"),
                        "recall": inter / ntrue if ntrue else float("nan"),
                        "f1": 2 * inter / (npred + ntrue) if npred + ntrue else float("nan")}
        components, _ = ndimage.label(pred)
        out["instances_mask"] = instance_scores(t_ids, components)
    else:
        skipped["detection.pixel"] = "needs truth buildings and the result mask.tif"
    if t_fp is not None and built is not None:
        ti, _, _ = match([p for _, p in t_fp], [b.footprint for b in built])
        out["instances_footprints"] = _prf(len(ti), len(t_fp), len(built))
    else:
        skipped["detection.footprints"] = "needs truth footprints and the result city.city.json"
    return out or None


def _corners(poly, min_turn_deg: float = CORNER_TURN_DEG) -> np.ndarray:
    """Vertices of all rings of ``poly`` where the boundary turns more than ``min_turn_deg``."""
    out = []
    for part in shapely.get_parts(poly):
        for ring in [part.exterior, *part.interiors]:
            xy = np.asarray(ring.coords)[:-1]
            if len(xy) < 3:
                continue
            a = xy - np.roll(xy, 1, axis=0)
            b = np.roll(xy, -1, axis=0) - xy
            cos = np.einsum("ij,ij->i", a, b) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1),
                                                           1e-12)
            out.append(xy[cos < np.cos(np.radians(min_turn_deg))])
    return np.concatenate(out) if out else np.zeros((0, 2))


def corner_offsets(truth_polys, pred_polys, max_dist: float = 2.0) -> np.ndarray:
    """``(n, 2)`` offsets (dx, dy), output minus truth, of corner checkpoints on aligned
    pairs: each truth corner with its mutually nearest output corner within ``max_dist``."""
    offsets = []
    for t, p in zip(truth_polys, pred_polys):
        tc, pc = _corners(t), _corners(p)
        if not len(tc) or not len(pc):
            continue
        d_tp, j = cKDTree(pc).query(tc)
        _, i_back = cKDTree(tc).query(pc)
        ok = (d_tp <= max_dist) & (i_back[j] == np.arange(len(tc)))
        offsets.append(pc[j[ok]] - tc[ok])
    return np.concatenate(offsets) if offsets else np.zeros((0, 2))


def _footprints(t_fp, built, corner_max_m, skipped) -> dict | None:
    if t_fp is None or built is None:
        skipped["footprints"] = "needs truth footprints and the result city.city.json"
        return None
    truth = np.array([p for _, p in t_fp], dtype=object)
    pred = np.array([b.footprint for b in built], dtype=object)
    out = footprint_metrics(truth, pred)
    ti, pi, _ = match(truth, pred)
    d = corner_offsets(truth[ti], pred[pi], corner_max_m)
    rx, ry = (float(np.sqrt(np.mean(d[:, k] ** 2))) if len(d) else float("nan") for k in (0, 1))
    out["horizontal"] = {"checkpoints": int(len(d)), "rmse_x": rx, "rmse_y": ry, "rmse_r": math.hypot(rx, ry),
                         "mean_dx": float(d[:, 0].mean()) if len(d) else float("nan"),
                         "mean_dy": float(d[:, 1].mean()) if len(d) else float("nan"),
                         "corner_max_m": corner_max_m}
    return out


# ------------------------------------------------------------------ LoD
def _at_lod(buildings, lod: str):
    """Copies of ``buildings`` keeping only their solids at ``lod`` (buildings without dropped)."""
    out = []
    for b in buildings:
        parts = [dataclasses.replace(p, solids=[s for s in p.solids if s.lod == lod]) for p in b.parts]
        parts = [p for p in parts if p.solids]
        if parts:
            out.append(dataclasses.replace(b, parts=parts))
    return out


def _burn_roofs(buildings, grid: Raster) -> np.ndarray:
    """Top heights of ``buildings`` on ``grid`` (NaN outside their solids).

    The burnt DSM falls back to the burnt ground inside a footprint where no solid stands
    (a part without a solid at this LoD): those cells are uncovered, not roofs at ground
    height."""
    burnt = burn_buildings(buildings, res=grid.res, pad=grid.res, crs_epsg=grid.crs.to_epsg())
    roofed = (burnt.building_id.data > 0) & (burnt.dsm.data != burnt.dtm.data)
    top = np.where(roofed, burnt.dsm.data, np.nan).astype(np.float64)
    out = np.full(grid.shape, np.nan)
    reproject(top, out, src_transform=burnt.transform, src_crs=grid.crs, dst_transform=grid.transform,
              dst_crs=grid.crs, src_nodata=np.nan, dst_nodata=np.nan, resampling=Resampling.nearest)
    return out


def _validity(model_path: Path, built) -> dict:
    """Share of buildings whose geometry at each LoD passes the validator."""
    errors = validate_file(model_path)
    objects = read_cityjson(model_path).objects
    schema_errors = sum(1 for e in errors if e.code == "schema")
    bad: dict[str, set[str]] = {}
    for e in errors:
        if " geometry " not in e.where or "(lod " not in e.where:
            continue
        oid = e.where.split(": ", 1)[-1].split(" geometry ")[0]
        lod = e.where.split("(lod ", 1)[1].split(")")[0]
        owner = (objects.get(oid, {}).get("parents") or [oid])[0]
        bad.setdefault(lod, set()).add(owner)
    n = len(built)
    share = {}
    for lod in ("0", *LODS):
        have = [b.id for b in built if lod == "0" or any(s.lod == lod for p in b.parts for s in p.solids)]
        valid = [bid for bid in have if bid not in bad.get(lod, set())]
        share[lod] = len(valid) / n if n else float("nan")
    return {"buildings": n, "errors": len(errors), "schema_errors": schema_errors, "valid_share": share,
            "invalid_buildings": sorted(set().union(*bad.values())) if bad else []}


def _roof_errors(top, t_dsm, t_ids) -> dict:
    """:func:`height_errors` of burnt roofs ``top`` on the truth building cells
    (``completeness``: the share of them covered), with ``outside_share``: the share of the
    burnt roof cells lying outside every truth building (roofs over streets and yards)."""
    out = height_errors(top, t_dsm, t_ids > 0)
    burnt = np.isfinite(top)
    n = int(burnt.sum())
    out["roof_cells"] = n
    out["outside_share"] = float((burnt & (t_ids == 0)).sum() / n) if n else float("nan")
    return out


def _lod(built, model_path, t_city, t_ids, t_dsm, grid, skipped) -> dict | None:
    if built is None:
        skipped["lod"] = "no city.city.json in the result"
        return None
    out = {"validity": _validity(model_path, built)}
    if t_ids is not None and t_dsm is not None and built:
        for lod in LODS:
            sel = _at_lod(built, lod)
            out[f"roof_lod{lod.replace('.', '')}"] = _roof_errors(_burn_roofs(sel, grid), t_dsm, t_ids) if sel else None
    else:
        skipped["lod.roof"] = "needs truth DSM and buildings"
    if t_city is None:
        skipped["lod.volume"] = "no truth buildings.city.json"
        return out
    inside = shapely.box(*grid.bounds).buffer(1e-6)
    t_fp = np.array([b.footprint for b in t_city], dtype=object)
    ti, pi, _ = match(t_fp, np.array([b.footprint for b in built], dtype=object))
    rel = {lod: [] for lod in LODS}
    hits, typed, confusion = 0, 0, {}
    for i, j in zip(ti, pi):
        t, b = t_city[i], built[j]
        t_volume, t_kind = truth_of(t)
        kind = b.attributes.get("roof_type")
        if t_kind is not None:
            typed += 1
            hits += kind == t_kind
            key = f"{t_kind}->{kind}"
            confusion[key] = confusion.get(key, 0) + 1
        if not inside.contains(t.footprint) or b.attributes.get("cut_by_aoi"):
            continue  # a building cut by the extent: its truth solid holds more than the output can
        for lod in LODS:
            solids = [s for p in b.parts for s in p.solids if s.lod == lod]
            if solids and t_volume > 0:
                rel[lod].append(sum(solid_volume(s) for s in solids) / t_volume - 1.0)
    for lod in LODS:
        r = np.asarray(rel[lod])
        out[f"volume_lod{lod.replace('.', '')}"] = {
            "buildings": int(len(r)), "mean_abs_rel": float(np.mean(np.abs(r))) if len(r) else float("nan"),
            "median_rel": float(np.median(r)) if len(r) else float("nan"),
            "p90_abs_rel": float(np.percentile(np.abs(r), 90)) if len(r) else float("nan")}
    out["roof_type"] = {"matched": typed, "accuracy": hits / typed if typed else float("nan"),
                        "confusion": dict(sorted(confusion.items()))}
    return out


# ------------------------------------------------------------------ classes
def _classes_of(m: dict) -> dict:
    out = {}
    for name in ("dsm", "dtm"):
        e = m.get(name)
        if e and "ground" in e and e["ground"]["n"]:
            veg = e.get("vegetation") or {}
            out[f"{name}_vertical"] = asprs_vertical(
                e["ground"]["rmse"], e["ground"]["n"], vva_le95=_p95(veg), vva_rmse=veg.get("rmse"),
                n_vva=veg.get("n", 0))
    fp = m.get("footprints")
    horizontal = None
    if fp and fp["horizontal"]["checkpoints"]:
        h = fp["horizontal"]
        horizontal = h["rmse_r"]
        out["footprints_horizontal"] = asprs_horizontal(h["rmse_x"], h["rmse_y"], h["checkpoints"])
    lod = m.get("lod")
    if lod:
        v = lod["validity"]
        roof = {k: lod[f"roof_lod{k.replace('.', '')}"]["rmse"] for k in LODS
                if lod.get(f"roof_lod{k.replace('.', '')}")}
        f1 = ((m.get("detection") or {}).get("instances_footprints") or {}).get("f1")
        out["lod"] = lod_qualification(v["valid_share"], roof or None, horizontal, schema_errors=v["schema_errors"],
                                       detection_f1=f1)
    return out


def _p95(e: dict) -> float | None:
    return e.get("le95") if e and e.get("n") else None


def _finite(x):
    """``x`` with NaN/inf floats replaced by None (strict JSON) and numpy scalars unwrapped."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x
