"""Tiled versus whole-image inference of a segmentation checkpoint on one large raster.

Reads a scene directory (``truth/ortho.tif``, ``truth/dsm.tif``, ``truth/dtm.tif``, as
written by ``benchmarks/segment_scenes.py`` or ``lod3d simulate``), or a products
directory (``ortho.tif`` + ``ndsm.tif``), runs the model once over the whole raster (one
tile) and once per ``--config TILE:MARGIN:RAMP`` tiled, and reports, away from the
raster's border (``--border`` cells):

- max and mean |probability difference| and the share of mask cells that differ;
- a seam check: the mean |difference| in rows/columns within the blend zones of tile
  boundaries against the mean elsewhere, and the largest row/column mean anywhere.

    python benchmarks/segment_seams.py runs/seg_scenes/seed_40 --config 1024:32:32 --config 1024:96:32
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np


def load_inputs(path: Path, channels):
    from lod3d.raster import Raster
    from lod3d.segment.inputs import stack_channels

    if (path / "truth" / "ortho.tif").is_file():
        t = path / "truth"
        ortho, dsm, dtm = (Raster.read(t / f"{n}.tif") for n in ("ortho", "dsm", "dtm"))
        ndsm = dsm.with_data((dsm.data - dtm.data).astype(np.float32))
    else:
        ortho, ndsm = Raster.read(path / "ortho.tif"), Raster.read(path / "ndsm.tif")
    return stack_channels(ortho, ndsm, channels)


def seam_profile(diff: np.ndarray, origins: list[int], tile: int, margin: int, ramp: int, border: int, axis: int):
    """Mean |diff| per row (axis 0) or column (axis 1): in blend zones vs elsewhere."""
    prof = diff.mean(axis=1 - axis)
    n = prof.size
    zone = np.zeros(n, bool)
    for o in origins[1:]:  # the start of every tile but the first: its rising ramp
        zone[max(o + margin, 0):min(o + margin + ramp, n)] = True
    for o in origins[:-1]:  # the end of every tile but the last: its falling ramp
        e = o + tile
        zone[max(e - margin - ramp, 0):min(e - margin, n)] = True
    inner = np.zeros(n, bool)
    inner[border:n - border] = True
    return {"mean_in_blend_zones": float(prof[zone & inner].mean()) if (zone & inner).any() else None,
            "mean_elsewhere": float(prof[~zone & inner].mean()),
            "max_line_mean": float(prof[inner].max())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scene", type=Path)
    ap.add_argument("--model", default=None)
    ap.add_argument("--size", type=int, default=2000, help="crop to SIZE x SIZE from the top-left")
    ap.add_argument("--config", action="append", default=[], help="TILE:MARGIN:RAMP (repeatable)")
    ap.add_argument("--border", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    args = ap.parse_args()

    import torch

    from lod3d.segment.checkpoint import DEFAULT_MODEL, load_checkpoint
    from lod3d.segment.infer import ALIGN, predict_logits, tile_layout

    torch.set_num_threads(args.threads)
    model, meta = load_checkpoint(args.model or DEFAULT_MODEL)
    x = load_inputs(args.scene, meta["spec"].channels)[:, :args.size, :args.size]
    h, w = x.shape[1:]
    thr = meta.get("threshold", 0.5)

    def prob(tile, margin, ramp):
        t0 = time.perf_counter()
        lg = predict_logits(model, x, tile=tile, margin=margin, ramp=ramp, threads=args.threads)[0]
        return 1 / (1 + np.exp(-lg.astype(np.float64))), time.perf_counter() - t0

    whole_tile = -(-max(h, w) // ALIGN) * ALIGN
    whole, whole_s = prob(whole_tile, 32, 32)
    b = args.border
    inner = (slice(b, h - b), slice(b, w - b))
    result = {"scene": str(args.scene), "shape": [h, w], "model": Path(meta["path"]).name,
              "whole": {"tile": whole_tile, "seconds": round(whole_s, 1)}, "border": b,
              "building_share": float((whole[inner] > thr).mean()), "tiled": []}
    for cfg in args.config:
        tile, margin, ramp = (int(v) for v in cfg.split(":"))
        tiled, secs = prob(tile, margin, ramp)
        diff = np.abs(tiled - whole)
        d = diff[inner]
        (rows, th), (cols, tw) = tile_layout(h, tile, 2 * margin + ramp), tile_layout(w, tile, 2 * margin + ramp)
        result["tiled"].append({
            "tile": tile, "margin": margin, "ramp": ramp, "tiles": [len(rows), len(cols)], "tile_shape": [th, tw],
            "seconds": round(secs, 1),
            "max_abs_prob_diff": float(d.max()), "mean_abs_prob_diff": float(d.mean()),
            "p99_abs_prob_diff": float(np.quantile(d, 0.99)),
            "mask_cells_differing": float(((tiled > thr) != (whole > thr))[inner].mean()),
            "mask_cells_differing_count": int(((tiled > thr) != (whole > thr))[inner].sum()),
            "rows": seam_profile(diff, rows, th, margin, ramp, b, 0),
            "cols": seam_profile(diff, cols, tw, margin, ramp, b, 1)})
        print(json.dumps(result["tiled"][-1]), flush=True)
    result["load_average_at_end"] = os.getloadavg()
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
