"""Foreground fattening of the stereo DSM on simulated scenes: errors at walls.

Runs ``lod3d.stereo.compute_dsm`` on a ``lod3d simulate`` output (its images, on the
grid of ``truth/dsm.tif``) and prints one JSON line: NMAD / median / completeness over
all cells, roofs and ground; the share of cells more than 2 m too high (and their share
of the squared error); RMSE within 1 m of a height step of more than 2 m in the truth
DSM ("near_wall") and elsewhere; CPU seconds of ``compute_dsm``.

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/stereo_fattening.py runs/sim5 [--param name=value ...]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy import ndimage
from stereo_acceptance import read

from lod3d.evaluate.heights import height_errors
from lod3d.geometry.rpc import RPCModel
from lod3d.stereo import compute_dsm
from lod3d.stereo.dsm import StereoParams


def near_steps(truth: np.ndarray, gsd: float, step_m: float = 2.0, within_m: float = 1.0) -> np.ndarray:
    """Cells within ``within_m`` of a 4-neighbour height step of more than ``step_m`` in ``truth``."""
    step = np.zeros(truth.shape, bool)
    dy = np.abs(np.diff(truth, axis=0)) > step_m
    dx = np.abs(np.diff(truth, axis=1)) > step_m
    step[1:] |= dy
    step[:-1] |= dy
    step[:, 1:] |= dx
    step[:, :-1] |= dx
    return ndimage.distance_transform_edt(~step) * gsd <= within_m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sim", type=Path)
    ap.add_argument("--save", type=Path, help="write the DSM here (.npy)")
    ap.add_argument("--param", action="append", default=[], help="StereoParams field=value")
    args = ap.parse_args()
    kw = {}
    for p in args.param:
        k, v = p.split("=")
        if k == "coarse":
            kw[k] = tuple(int(x) for x in v.split(",") if x)
        else:
            kw[k] = type(getattr(StereoParams(), k))(float(v) if "." in v else int(v))
    truth, transform, crs = read(args.sim / "truth/dsm.tif")
    dtm, _, _ = read(args.sim / "truth/dtm.tif")
    bld, _, _ = read(args.sim / "truth/buildings.tif")
    ny, nx = truth.shape
    bounds = (transform.c, transform.f + ny * transform.e, transform.c + nx * transform.a, transform.f)
    images = [(p, RPCModel.from_file(p)) for p in sorted((args.sim / "images").glob("*.tif"))]
    c0 = time.process_time()
    dsm, _, _ = compute_dsm(images, gsd=transform.a, bounds=bounds, crs=crs, params=StereoParams(**kw))
    cpu = time.process_time() - c0
    h = dsm.data
    if args.save:
        np.save(args.save, h)
    err = h - truth
    ok = np.isfinite(err)
    building = np.nan_to_num(bld) > 0
    ground = ~building & (truth - dtm < 0.5)
    wall = near_steps(truth, transform.a)
    high = ok & (err > 2.0)
    sq = np.where(ok, err, 0.0) ** 2
    allst = height_errors(h, truth)

    def rmse(m):
        return round(float(np.sqrt(np.mean(err[m & ok] ** 2))), 3)

    out = {"params": kw, "nmad": round(allst["nmad"], 3), "median": round(allst["median"], 3),
           "completeness": round(allst["completeness"], 3),
           "roof_nmad": round(height_errors(h, truth, building)["nmad"], 3),
           "ground_nmad": round(height_errors(h, truth, ground)["nmad"], 3),
           "high2_share_pct": round(100 * high.sum() / ok.sum(), 2),
           "high2_sq_share_pct": round(100 * sq[high].sum() / sq.sum(), 1),
           "high2_roof_pct": round(100 * (high & building).sum() / (ok & building).sum(), 2),
           "high2_ground_pct": round(100 * (high & ground).sum() / (ok & ground).sum(), 2),
           "rmse_near_wall": rmse(wall), "rmse_elsewhere": rmse(~wall), "rmse_all": rmse(np.ones_like(ok)),
           "roof_rmse": rmse(building), "cpu_s": round(cpu, 1)}
    print(json.dumps(out, default=float), flush=True)


if __name__ == "__main__":
    main()
