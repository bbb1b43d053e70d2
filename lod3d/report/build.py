"""``DIR/report/``: an HTML page with the run's figures and, when truth exists, its metrics.

:func:`build_report` reads what a ``lod3d city`` run wrote (rasters, ``city.city.json``,
``run.json``); every figure whose inputs are missing is left out rather than failing, so
the report works on partial runs too. With truth (``truth_dir``, or the simulated truth
that ``run.json`` names) it runs :func:`lod3d.evaluate.city.evaluate_run`, writes
``report/metrics.json`` and adds the error maps and the accuracy classes. The folder is
replaced atomically: a failed rebuild leaves the previous report in place.
"""

from __future__ import annotations

import html
import io
import json
from pathlib import Path

import numpy as np
from rasterio.enums import Resampling

from ..cityjson.reader import read_cityjson
from ..errors import InputError
from ..evaluate.city import (CLASS_NAMES, VEGETATION_M, class_labels, evaluate_run, find_truth, on_grid,
                             truth_footprints, write_metrics)
from ..io.atomic import atomic_dir
from ..raster import Raster
from . import plots

__all__ = ["build_report"]


def build_report(run_dir, truth_dir=None, *, map_tasks=None, write: bool = True) -> Path | None:
    """Write ``run_dir/report/index.html`` and its PNGs; return the page's path.

    ``truth_dir``: reference data (see :func:`lod3d.evaluate.city.find_truth`); default the
    truth recorded in ``run.json`` (simulated acquisitions), if any.

    The metrics and each figure are independent tasks, run by
    ``map_tasks(tasks, fn) -> [fn(t) ...]`` (default: one after the other here); ``lod3d
    city`` passes one that scatters them over its MPI ranks, every rank calling
    ``build_report`` and only the one with ``write`` writing the folder.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: no such run directory")
    inputs = _Inputs(run_dir, truth_dir)
    tasks = ["metrics"] * bool(inputs.truth_dir) + [name for name in TASK_ORDER if inputs.can_draw(name)]
    results = dict(zip(tasks, (map_tasks or _in_order)(tasks, inputs.run)))
    if not write:
        return None
    metrics = results.pop("metrics", None)
    figures = [results[name] for name in FIGURES if name in results]
    with atomic_dir(run_dir / "report", overwrite=True) as out:
        for file, _, _, png in figures:
            (out / file).write_bytes(png)
        if metrics is not None:
            write_metrics(metrics, out / "metrics.json")
        page = _page(run_dir, inputs.summary, [f[:3] for f in figures], metrics, inputs.n_buildings)
        (out / "index.html").write_text(page, encoding="utf-8")
        out.chmod(0o755)  # the temporary folder is private; a report is meant to be served and shared
    return run_dir / "report" / "index.html"


def _in_order(tasks, fn):
    return [fn(t) for t in tasks]


# Figures in page order: (file, title, caption).
FIGURES = {
    "surface": ("dsm.png", "Surface model", "DSM hillshade with heights tinted, and the stereo confidence."),
    "ndsm": ("ndsm.png", "Normalized DSM", "Heights above the DTM: what the segmentation sees."),
    "mask": ("mask.png", "Building mask", "Segmentation mask over the true ortho."),
    "footprints": ("footprints.png", "Footprints", "Regularized footprints (LoD0) over the ortho."),
    "errors": ("errors.png", "Errors against truth",
               (f"Result − truth per cell and its histogram per class (roofs: truth buildings; "
                f"vegetation: truth DSM − DTM > {VEGETATION_M:g} m outside them; ground: the rest).")),
    "buildings_3d": ("buildings_3d.png", "3-D view", "LoD2.2 solids of neighbouring buildings near the centre."),
    "quality": ("quality.png", "Quality attributes", "Distribution of the per-building quality attributes."),
    "timings": ("timings.png", "Timings", "Seconds per tile and phase (from run.json)."),
}
# The order tasks are handed out in: the costliest first (measured on a 300 m run), so
# that ranks sharing them finish together.
TASK_ORDER = ("errors", "surface", "quality", "footprints", "mask", "ndsm", "buildings_3d", "timings")
RASTERS = ("dsm", "dtm", "ndsm", "ortho", "confidence", "mask")


class _Inputs:
    """What a run directory holds, read on first use (each rank reads only what its tasks need)."""

    def __init__(self, run_dir: Path, truth_dir=None):
        self.run_dir = run_dir
        self.summary = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").is_file() else {}
        truth_dir = truth_dir or self.summary.get("truth")
        if truth_dir and not Path(truth_dir).is_dir():
            truth_dir = None  # a run moved away from its simulation: report without truth
        self.truth_dir = truth_dir
        self.present = {n for n in RASTERS if (run_dir / f"{n}.tif").is_file()}
        self._rasters: dict[str, Raster] = {}
        self._buildings = None
        self._truth = None

    def raster(self, name: str) -> Raster | None:
        if name not in self.present:
            return None
        if name not in self._rasters:
            self._rasters[name] = Raster.read(self.run_dir / f"{name}.tif")
        return self._rasters[name]

    @property
    def buildings(self) -> list:
        if self._buildings is None:
            path = self.run_dir / "city.city.json"
            self._buildings = read_cityjson(path).buildings() if path.is_file() else []
        return self._buildings

    @property
    def n_buildings(self) -> int:
        return len(self.buildings)

    @property
    def truth(self) -> dict:
        if self._truth is None:
            grid = self.raster("dsm") or self.raster("mask")
            self._truth = _truth_on_grid(self.truth_dir, grid) if self.truth_dir else {}
        return self._truth

    def _error_maps(self) -> list[str]:
        if not self.truth_dir or not ({"dsm", "mask"} & self.present):
            return []
        files = find_truth(self.truth_dir)
        return [n for n in ("dsm", "dtm") if n in self.present and n in files]

    def can_draw(self, name: str) -> bool:
        has = self.present
        return {"surface": "dsm" in has, "ndsm": "ndsm" in has, "mask": {"ortho", "mask"} <= has,
                "footprints": "ortho" in has and self.n_buildings > 0, "errors": bool(self._error_maps()),
                "buildings_3d": self.n_buildings > 0, "quality": self.n_buildings > 0,
                "timings": bool(self.summary.get("timings"))}[name]

    def run(self, name: str):
        """The metrics (a dict), or one figure: ``(file, title, caption, png bytes)``."""
        if name == "metrics":
            return evaluate_run(self.truth_dir, self.run_dir)
        png = io.BytesIO()
        r, truth = self.raster, (self.truth if name in ("mask", "footprints", "errors") else {})
        if name == "surface":
            plots.surface(r("dsm"), r("confidence"), png)
        elif name == "ndsm":
            plots.ndsm(r("ndsm"), png)
        elif name == "mask":
            plots.mask_over_ortho(r("ortho"), r("mask"), png, truth.get("ids"))
        elif name == "footprints":
            plots.footprints_over_ortho(r("ortho"), [b.footprint for b in self.buildings], png,
                                        truth.get("footprints"))
        elif name == "errors":
            maps = {n: (r(n).data.astype(np.float64) - truth[n], r(n)) for n in self._error_maps() if n in truth}
            plots.errors(maps, truth.get("labels"), CLASS_NAMES, png)
        elif name == "buildings_3d":
            plots.buildings_3d(self.buildings, png)
        elif name == "quality":
            plots.quality(self.buildings, png)
        elif name == "timings":
            plots.timings(self.summary, png)
        return (*FIGURES[name], png.getvalue())


def _truth_on_grid(truth_dir, grid: Raster | None) -> dict:
    """Truth DSM/DTM/ids/labels on the result grid and the truth footprints, where present."""
    if grid is None:
        return {}
    files = find_truth(truth_dir)
    out = {}
    for name in ("dsm", "dtm"):
        if name in files:
            out[name] = on_grid(files[name], grid, Resampling.bilinear)
    if "buildings" in files:
        out["ids"] = np.nan_to_num(on_grid(files["buildings"], grid, Resampling.nearest)).astype(np.int64)
        out["labels"] = class_labels(out["ids"], out.get("dsm"), out.get("dtm"))
    fps = truth_footprints(files, grid)
    if fps is not None:
        out["footprints"] = [p for _, p in fps]
    return out


# ------------------------------------------------------------------ page
def _fmt(v, unit="", pct=False) -> str:
    if v is None:
        return "–"
    if pct:
        return f"{100 * v:.1f} %"
    return f"{v:.3g}{unit}" if isinstance(v, float) else f"{v}{unit}"


def _table(head, rows) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _metrics_html(m: dict) -> str:
    parts = []
    rows = []
    for product in ("dsm", "dtm"):
        for cls, e in (m.get(product) or {}).items():
            rows.append([product.upper(), cls, e["n"], _fmt(e["completeness"], pct=True), _fmt(e["median"], " m"),
                         _fmt(e["nmad"], " m"), _fmt(e["rmse"], " m"), _fmt(e["mae"], " m"), _fmt(e["le90"], " m")])
    if rows:
        parts.append("<h3>Height errors</h3>" + _table(
            ["product", "class", "cells", "completeness", "median", "NMAD", "RMSE", "MAE", "LE90"], rows))
    det = m.get("detection") or {}
    rows = []
    if "pixel" in det:
        p = det["pixel"]
        rows.append(["mask pixels", "–", _fmt(p["precision"], pct=True), _fmt(p["recall"], pct=True),
                     _fmt(p["f1"], pct=True), f"IoU {_fmt(p['iou'], pct=True)}"])
    for key, label in (("instances_mask", "mask components, IoU ≥ 0.5"),
                       ("instances_footprints", "footprints, IoU > 0.5")):
        if key in det:
            d = det[key]
            rows.append([label, f"{d['matched']} of {d['n_truth']} (pred {d['n_pred']})",
                         _fmt(d["precision"], pct=True), _fmt(d["recall"], pct=True), _fmt(d["f1"], pct=True), ""])
    if rows:
        parts.append("<h3>Building detection</h3>" + _table(
            ["level", "matched", "precision", "recall", "F1", ""], rows))
    fp = m.get("footprints")
    if fp:
        h = fp["horizontal"]
        parts.append("<h3>Footprints (matched buildings)</h3>" + _table(
            ["IoU", "C-IoU", "PoLiS", "MTA", "N-ratio", "corner checkpoints", "RMSEx", "RMSEy", "RMSEr"],
            [[_fmt(fp["iou"]), _fmt(fp["ciou"]), _fmt(fp["polis"], " m"), _fmt(fp["mta"], "°"),
              _fmt(fp["n_ratio"]), h["checkpoints"], _fmt(h["rmse_x"], " m"), _fmt(h["rmse_y"], " m"),
              _fmt(h["rmse_r"], " m")]]))
    lod = m.get("lod")
    if lod:
        rows = []
        for k in ("1.2", "2.2"):
            tag = k.replace(".", "")
            roof, vol = lod.get(f"roof_lod{tag}") or {}, lod.get(f"volume_lod{tag}") or {}
            rows.append([f"LoD{k}", _fmt(roof.get("rmse"), " m"), _fmt(roof.get("median"), " m"),
                         _fmt(roof.get("completeness"), pct=True), vol.get("buildings", "–"),
                         _fmt(vol.get("mean_abs_rel"), pct=True), _fmt(lod["validity"]["valid_share"].get(k), pct=True)])
        rt = lod.get("roof_type") or {}
        parts.append("<h3>LoD models</h3>" + _table(
            ["LoD", "roof RMSE", "roof median", "truth roof cells covered", "buildings for volume",
             "volume |error|", "valid"], rows)
            + f"<p>Roof-type accuracy: {_fmt(rt.get('accuracy'), pct=True)} of {rt.get('matched', 0)} matched "
              f"buildings. Validator: {lod['validity']['errors']} errors.</p>")
    rows = []
    for key, c in (m.get("accuracy_classes") or {}).items():
        if key == "lod":
            continue
        for ed in ("asprs_2014", "asprs_2023"):
            rows.append([key.replace("_", " "), c[ed]["standard"], c[ed]["class"] or "–",
                         "yes" if c[ed]["enough_checkpoints"] else "no"])
    q = (m.get("accuracy_classes") or {}).get("lod")
    if q:
        why = "; ".join(f"LoD{k}: {', '.join(v['reasons'])}" for k, v in q["checks"].items() if v["reasons"])
        rows.append(["city model LoD", q["standard"], f"LoD{q['lod']}" if q["lod"] else "none", why or "all checks pass"])
    if rows:
        parts.append("<h3>Accuracy classes</h3>" + _table(["product", "standard", "class", "enough checkpoints / notes"],
                                                          rows))
    return "\n".join(parts)


def _page(run_dir: Path, run: dict, figures, metrics, n_buildings: int) -> str:
    aoi = run.get("aoi", {})
    title = f"lod3d run report — {aoi.get('name', run_dir.name)}"
    facts = [("AOI", f"{aoi.get('name', '?')} {aoi.get('size_m', '')} {aoi.get('crs', '')}"),
             ("buildings", n_buildings), ("tiles", run.get("n_tiles", "?")),
             ("complete", run.get("complete", "?")), ("height datum", run.get("height_datum", "?")),
             ("lod3d", run.get("lod3d_version", "?")),
             ("total phase time", f"{sum(p.get('seconds', 0) for p in run.get('timings', {}).values()):.1f} s")]
    body = [f"<h1>{html.escape(title)}</h1>", _table(["", ""], facts)]
    if metrics is not None:
        body += ["<h2>Accuracy against truth</h2>",
                 f"<p>Truth: {html.escape(', '.join(sorted(metrics['truth'])))} from "
                 f"{html.escape(str(Path(next(iter(metrics['truth'].values()))).parent))}. "
                 "All figures: <a href='metrics.json'>metrics.json</a>.</p>", _metrics_html(metrics)]
    else:
        body.append("<p>No truth available: figures only (run <code>lod3d evaluate</code> with reference data).</p>")
    for name, heading, caption in figures:
        body.append(f"<h2>{html.escape(heading)}</h2><p>{html.escape(caption)}</p>"
                    f"<img src='{name}' alt='{html.escape(heading)}'>")
    style = ("body{font-family:sans-serif;max-width:1300px;margin:auto;padding:1em}"
             "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;font-size:90%}"
             "img{max-width:100%}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
