"""Building-mask IoU of the default model (and the classical fallback) on simulated scenes.

For each scene directory written by ``lod3d simulate`` (or ``benchmarks/segment_scenes.py``)
the inputs are the truth ortho and the truth nDSM (``dsm − dtm``), or, with
``--products DIR`` (one per scene, same order), the ``ortho.tif`` and ``ndsm.tif`` that
the stereo and terrain stages produced; the reference is ``truth/buildings.tif``.
Prints one JSON object: IoU per scene and pooled, per method.

    python benchmarks/segment_accuracy.py runs/sim_seed20 runs/sim_seed21 [--model CKPT]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from lod3d.raster import Raster
from lod3d.segment import segment
from lod3d.segment.checkpoint import DEFAULT_MODEL, load_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenes", nargs="+", type=Path)
    ap.add_argument("--products", nargs="*", type=Path, default=None)
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    args = ap.parse_args()
    torch.set_num_threads(1)
    loaded = load_checkpoint(args.model)
    totals = {m: [0, 0] for m in ("model", "classical")}
    per_scene = {}
    for k, scene in enumerate(args.scenes):
        t = scene / "truth"
        truth_ids = Raster.read(t / "buildings.tif")
        if args.products:
            ortho = Raster.read(args.products[k] / "ortho.tif", band=None)
            ndsm = Raster.read(args.products[k] / "ndsm.tif")
        else:
            ortho = Raster.read(t / "ortho.tif", band=None)
            dsm, dtm = Raster.read(t / "dsm.tif"), Raster.read(t / "dtm.tif")
            ndsm = dsm.with_data(dsm.data - dtm.data)
        truth = truth_ids.data > 0
        per_scene[str(scene)] = {}
        for method in totals:
            _, mask = segment(ortho, ndsm, method=method, model=loaded if method == "model" else None)
            pred = mask.data.astype(bool)
            if pred.shape != truth.shape:
                raise SystemExit(f"{scene}: prediction grid {pred.shape} differs from truth {truth.shape}")
            inter, union = int((pred & truth).sum()), int((pred | truth).sum())
            totals[method][0] += inter
            totals[method][1] += union
            per_scene[str(scene)][method] = round(inter / union, 4)
    print(json.dumps({"model": args.model, "inputs": "products" if args.products else "truth ortho + truth nDSM",
                      "iou": {m: round(i / u, 4) for m, (i, u) in totals.items()}, "per_scene": per_scene}, indent=2))


if __name__ == "__main__":
    main()
