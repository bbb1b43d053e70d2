"""Side by side on the real Giza pair: CARS 1.3.0 (own venv) and ``lod3d dsm``, same cores.

Runs both on ``../shared/data/stereo/giza_pair`` in one go and reports wall time, the
speed ratio, peak memory (max RSS of each process tree) and agreement — NMAD, median,
completeness — of lod3d with the stored CARS and s2p DSMs and with the CARS DSM of this
run. CARS heights are EGM96: the geoid offset is estimated robustly as the median of
(s2p − CARS) over common cells (s2p is ellipsoidal) and removed.

Completeness has one definition for the three tools, all on lod3d's grid (which is the
CARS grid): the share of the cells inside the area both images see (their footprints at
the mean RPC height intersected) that hold a height (``completeness_inside_both_images``).
The share of the whole grid is reported too (``completeness_on_cars_grid``, the old
figure): ~32 % of the CARS grid lies outside the common footprint.

    python benchmarks/stereo_vs_cars.py [--cars-venv /tmp/peers/cars] [--threads 2] [--skip-cars]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.warp import Resampling, reproject

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stereo_acceptance import common_footprint  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
PEERS = DATA / "peers" / "giza_pair"


def on_grid(ref: Path, path: Path) -> np.ndarray:
    """``path`` resampled (nearest) onto the grid of ``ref``, NaN nodata."""
    with rasterio.open(ref) as r, rasterio.open(path) as s:
        a = s.read(1).astype(np.float32)
        if s.nodata is not None and not np.isnan(s.nodata):
            a[a == s.nodata] = np.nan
        out = np.full(r.shape, np.nan, np.float32)
        reproject(a, out, src_transform=s.transform, src_crs=s.crs, dst_transform=r.transform,
                  dst_crs=r.crs, src_nodata=np.nan, dst_nodata=np.nan, resampling=Resampling.nearest)
    return out


def agreement(ours: np.ndarray, peer: np.ndarray) -> dict:
    d = (ours - peer)[np.isfinite(ours) & np.isfinite(peer)]
    med = float(np.median(d))
    return {"median_m": round(med, 3), "nmad_m": round(float(1.4826 * np.median(np.abs(d - med))), 3),
            "p90_abs_m": round(float(np.percentile(np.abs(d), 90)), 3), "common_cells": int(d.size)}


def timed(cmd: list[str], env: dict) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of the largest child so far (lod3d runs first, so its
    figure is its own; CARS's is the max of both)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=sys.stderr)   # stdout: the JSON report only
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cars-venv", default="/tmp/peers/cars")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-cars", action="store_true", help="only lod3d (compare with stored peers)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="stereo_vs_cars."))
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), NUMBA_NUM_THREADS=str(args.threads),
               LOD3D_QUIET="1")
    report: dict = {"threads": args.threads}

    with rasterio.open(PEERS / "cars_dsm.tif") as src:
        b = src.bounds
    cmd = [sys.executable, "-c", "from lod3d.cli.main import main; main()", "-q", "dsm", str(DATA / "stereo/giza_pair/img1.tif"),
           str(DATA / "stereo/giza_pair/img2.tif"), "--out", str(work / "lod3d"), "--gsd", "0.6",
           "--crs", "EPSG:32636", "--bounds", *map(str, (b.left, b.bottom, b.right, b.top))]
    wall, peak = timed(cmd, env)
    report["lod3d"] = {"wall_s": round(wall, 1), "peak_rss_mb_max_child": round(peak)}
    if not args.skip_cars:
        cfg = (PEERS / "cars_config.yaml").read_text()
        cfg = cfg.replace("../../stereo/giza_pair", str(DATA / "stereo" / "giza_pair"))
        cfg = cfg.replace("directory: out", f"directory: {work / 'cars'}")
        cfg = cfg.replace("nb_workers: 2", f"nb_workers: {args.threads}")
        (work / "cars.yaml").write_text(cfg)
        wall, peak = timed([f"{args.cars_venv}/bin/cars", str(work / "cars.yaml")], env)
        report["cars"] = {"wall_s": round(wall, 1), "peak_rss_mb_max_child": round(peak)}

    if "cars" in report:
        report["speedup_vs_cars"] = round(report["cars"]["wall_s"] / report["lod3d"]["wall_s"], 1)

    ours_path = work / "lod3d" / "dsm.tif"
    ours = on_grid(ours_path, ours_path)
    s2p = on_grid(ours_path, PEERS / "s2p_dsm.tif")
    cars = on_grid(ours_path, PEERS / "cars_dsm.tif")
    geoid = float(np.nanmedian(s2p - cars))
    report["geoid_offset_m_estimated"] = round(geoid, 2)
    report["vs_cars_stored"] = agreement(ours, cars + geoid)
    report["vs_s2p_stored"] = agreement(ours, s2p)
    fresh = sorted((work / "cars").rglob("dsm.tif")) if "cars" in report else []
    if fresh:
        report["vs_cars_this_run"] = agreement(ours, on_grid(ours_path, fresh[0]) + geoid)
    paths = [DATA / "stereo/giza_pair/img1.tif", DATA / "stereo/giza_pair/img2.tif"]
    with rasterio.open(ours_path) as grid:
        inside = common_footprint(grid, paths)
    report["grid_inside_both_images"] = round(float(inside.mean()), 3)
    report["completeness_inside_both_images"] = {
        name: round(float(np.isfinite(a)[inside].mean()), 3) for name, a in (("lod3d", ours), ("cars", cars), ("s2p", s2p))}
    report["completeness_on_cars_grid"] = {
        name: round(float(np.isfinite(a).mean()), 3) for name, a in (("lod3d", ours), ("cars", cars), ("s2p", s2p))}
    print(json.dumps(report, indent=1))
    (work / "report.json").write_text(json.dumps(report, indent=1))
    print(f"outputs in {work}", file=sys.stderr)


if __name__ == "__main__":
    main()
