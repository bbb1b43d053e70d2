"""Label efficiency: IoU on held-out simulated seeds for encoder init × label fraction.

Inits: ``random``, ``imagenet`` (packaged EfficientNet-Lite0 weights) and ``mae``
(masked-image-modelling pretraining, ``lod3d.segment.pretrain``, on the training scenes
without their labels, from a random init). Label fractions keep that share of 32 × 32
label blocks (:func:`lod3d.segment.train.restrict_labels`). Each cell is run
``--repeats`` times (seed r = 0, 1, ... for the label blocks, the patch draws, the random
init and the MAE pretraining) and reported as mean (min–max); runs already in
``OUT/label_efficiency.json`` with the same settings are kept (an interrupted run resumes). The classical fallback is
the baseline row. Writes ``OUT/label_efficiency.json`` and ``OUT/label_efficiency.md``.

    python benchmarks/segment_label_efficiency.py --scenes runs/seg_scenes --train 1-8 --test 9-12 --out runs/le
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from lod3d.raster import Raster
from lod3d.segment.classical import classical_probability
from lod3d.segment.models import ModelSpec
from lod3d.segment.pretrain import PretrainConfig, pretrain, save_pretrained
from lod3d.segment.train import TrainConfig, evaluate, load_scene, restrict_labels, train


def seeds(text: str) -> list[int]:
    a, b = map(int, text.split("-"))
    return list(range(a, b + 1))


def classical_iou(scene_dirs) -> float:
    inter = union = 0
    for d in scene_dirs:
        t = Path(d) / "truth"
        dsm, dtm = Raster.read(t / "dsm.tif"), Raster.read(t / "dtm.tif")
        truth = Raster.read(t / "buildings.tif").data > 0
        pred = classical_probability(dsm.data - dtm.data, dsm.res) > 0.5
        inter += int((pred & truth).sum())
        union += int((pred | truth).sum())
    return inter / union


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=Path, required=True)
    ap.add_argument("--train", default="1-8")
    ap.add_argument("--test", default="9-12")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--fractions", default="0.01,0.1,1.0")
    ap.add_argument("--inits", default="random,imagenet,mae")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--pretrain-steps", type=int, default=60)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3, help="runs per cell, seeds 0..N-1; cells give mean (min–max)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    spec = ModelSpec()
    train_dirs = [args.scenes / f"seed_{s}" for s in seeds(args.train)]
    test_dirs = [args.scenes / f"seed_{s}" for s in seeds(args.test)]
    train_samples = [load_scene(d, spec.channels) for d in train_dirs]
    test_samples = [load_scene(d, spec.channels) for d in test_dirs]
    results = {"classical": classical_iou(test_dirs), "cells": {}, "settings": vars(args) | {"scenes": str(args.scenes), "out": str(args.out)}}
    done_path = args.out / "label_efficiency.json"
    if done_path.is_file():  # resume: keep the runs already measured with the same settings
        old = json.loads(done_path.read_text())
        keep = ("train", "test", "steps", "pretrain_steps", "batch", "patch")
        if all(old.get("settings", {}).get(k) == results["settings"][k] for k in keep) and isinstance(
                next(iter(old.get("cells", {}).values()), []), list):
            results["cells"], results["pretrain"] = old["cells"], old.get("pretrain", [])
    inits = args.inits.split(",")
    fracs = [float(f) for f in args.fractions.split(",")]
    for rep in range(args.repeats):  # repeat r: label blocks, patch draws, init and MAE pretraining seeded with r
        def done(init, frac, rep=rep):
            return any(r["seed"] == rep for r in results["cells"].get(f"{init}@{frac:g}", []))

        if all(done(i, f) for i in inits for f in fracs):
            continue
        if "mae" in inits and not all(done("mae", f) for f in fracs):
            t0 = time.perf_counter()
            model, hist = pretrain(spec, [s.x for s in train_samples],
                                   PretrainConfig(steps=args.pretrain_steps, batch=args.batch, patch=args.patch, seed=rep))
            mae_path = save_pretrained(args.out / f"mae_encoder_{rep}.pt", model, spec, hist, [str(d) for d in train_dirs])
            results.setdefault("pretrain", []).append(hist | {"seconds": time.perf_counter() - t0})
        for init in inits:
            for frac in fracs:
                if done(init, frac):
                    continue
                t0 = time.perf_counter()
                samples = restrict_labels(train_samples, frac, seed=rep)
                model, hist = train(spec, samples, TrainConfig(steps=args.steps, batch=args.batch, patch=args.patch,
                                                               seed=rep),
                                    init=str(mae_path) if init == "mae" else init)
                metrics = evaluate(model, test_samples)
                results["cells"].setdefault(f"{init}@{frac:g}", []).append(
                    {"seed": rep, "iou": metrics["iou"], "init": hist["init"], "seconds": time.perf_counter() - t0})
                print(init, frac, rep, round(metrics["iou"], 4), flush=True)
                (args.out / "label_efficiency.json").write_text(json.dumps(results, indent=2))

    def cell(init, frac):
        v = np.array([r["iou"] for r in results["cells"][f"{init}@{frac:g}"] if r["seed"] < args.repeats])
        return f"{v.mean():.3f}" if len(v) == 1 else f"{v.mean():.3f} ({v.min():.3f}–{v.max():.3f})"

    lines = ["| encoder init | " + " | ".join(f"{100 * f:g} % labels" for f in fracs) + " |",
             "|---|" + "---|" * len(fracs)]
    for init in inits:
        lines.append(f"| {init} | " + " | ".join(cell(init, f) for f in fracs) + " |")
    lines.append("| classical (no labels) | " + " | ".join(f"{results['classical']:.3f}" for _ in fracs) + " |")
    (args.out / "label_efficiency.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
