"""Inference speed of a segmentation checkpoint in km²/h at the raster's resolution.

Runs tiled inference (:func:`lod3d.segment.infer.predict_logits`) over a synthetic
``--size`` × ``--size`` input (default 2000² = 1 km² at 0.5 m) in ``--procs`` processes
(one per core, like MPI ranks) with ``--threads`` torch threads each, and reports the
area per hour of the whole machine. Tiles, margins and batch default to those of the
``segment`` stage (:func:`lod3d.segment.infer.predict_logits`). Timings are of the model path only (inputs already
normalized); a GPU is used when present. On a shared machine the wall-clock figure
understates the speed; the CPU-time figure (process time of each worker, single-threaded)
is what the same cores would do when idle.

    python benchmarks/segment_speed.py --procs 2 --threads 1
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import time


def _worker(args, queue):
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import numpy as np
    import torch

    from lod3d.segment.checkpoint import DEFAULT_MODEL, load_checkpoint
    from lod3d.segment.infer import predict_logits

    torch.set_num_threads(args.threads)
    model, meta = load_checkpoint(args.model or DEFAULT_MODEL)
    x = np.random.default_rng(0).normal(size=(len(meta["spec"].channels), args.size, args.size)).astype(np.float32)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    predict_logits(model, x[:, :256, :256], tile=256, device=device, threads=args.threads)  # warm-up
    start, cpu = time.perf_counter(), time.process_time()
    kw = {k: v for k, v in (("margin", args.margin), ("ramp", args.ramp)) if v is not None}
    predict_logits(model, x, tile=args.tile, batch=args.batch, device=device, threads=args.threads, **kw)
    queue.put((time.perf_counter() - start, time.process_time() - cpu,
               resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--size", type=int, default=2000)
    ap.add_argument("--gsd", type=float, default=0.5)
    ap.add_argument("--tile", type=int, default=1536)
    ap.add_argument("--margin", type=int, default=None, help="default: predict_logits's")
    ap.add_argument("--ramp", type=int, default=None, help="default: predict_logits's")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--procs", type=int, default=2)
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(args, queue)) for _ in range(args.procs)]
    for p in procs:
        p.start()
    timings = [queue.get() for _ in procs]
    seconds, cpu_seconds = [t[0] for t in timings], [t[1] for t in timings]
    peak_mib = [round(t[2]) for t in timings]
    for p in procs:
        p.join()
    km2 = (args.size * args.gsd / 1000.0) ** 2
    from lod3d.segment.infer import predict_logits, tile_layout

    defaults = predict_logits.__kwdefaults__
    margin = defaults["margin"] if args.margin is None else args.margin
    ramp = defaults["ramp"] if args.ramp is None else args.ramp
    origins, size = tile_layout(args.size, args.tile, 2 * margin + ramp)
    result = {"size": args.size, "gsd_m": args.gsd, "procs": args.procs, "threads": args.threads, "tile": args.tile,
              "margin": margin, "ramp": ramp, "batch": args.batch,
              "tiles": f"{len(origins)} x {len(origins)} of {size}", "peak_rss_mib_per_process": peak_mib,
              "seconds_per_raster": seconds, "km2_per_hour": round(args.procs * km2 * 3600 / max(seconds), 1),
              "cpu_seconds_per_raster": cpu_seconds,
              "km2_per_hour_if_cores_were_idle": round(args.procs * km2 * 3600 / max(cpu_seconds), 1),
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs",
              "load_average_at_end": os.getloadavg()}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
