"""Terrain acceptance: DTM/nDSM against truth on the simulated Toulouse and real city models.

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/terrain_acceptance.py [--sim DIR]

Simulated: ``lod3d simulate --aoi toulouse --size-m 300 --seed 7`` (run here if ``--sim`` is
not given); the truth DSM is used clean and with stereo-like damage (noise 0.3/0.5 m, 0.1 %
pits, 3 % holes). Targets: DTM RMSE <= 0.3 m on open ground, <= 0.5 m under buildings;
IoU(nDSM > 2.5 m, truth buildings U objects > 2.5 m) >= 0.95.
Real: the CityJSON models of ``../shared/data/cityjson/real`` burnt into DSM/DTM
(:func:`lod3d.cityjson.rasterize.burn_cityjson`); target: DTM error <= 0.3 m.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lod3d.cityjson.rasterize import burn_cityjson
from lod3d.raster import Raster
from lod3d.terrain import dtm_from_array
from lod3d.terrain.synthetic import damage

REPO = Path(__file__).resolve().parents[1]


def scores(dsm, dtm, truth_dsm, truth_dtm, buildings, ids=None):
    """DTM RMSE on open ground / under buildings (and under buildings not cut by the grid
    border, given building ``ids``), max |error|, nDSM > 2.5 m IoU."""
    err = dtm - truth_dtm
    objects = buildings | (truth_dsm - truth_dtm > 2.5)
    open_ground = ~objects
    nd = np.nan_to_num(dsm - dtm, nan=0.0) > 2.5
    return dict(open_rmse=float(np.sqrt(np.mean(err[open_ground] ** 2))),
                bldg_rmse=float(np.sqrt(np.mean(err[buildings] ** 2))) if buildings.any() else float("nan"),
                **({} if ids is None else dict(uncut_bldg_rmse=_uncut_rmse(err, ids))),
                max_abs=float(np.abs(err).max()),
                iou=float((nd & objects).sum() / max(1, (nd | objects).sum())))


def _uncut_rmse(err, ids):
    border = np.unique(np.concatenate([ids[0], ids[-1], ids[:, 0], ids[:, -1]]))
    inner = (ids > 0) & ~np.isin(ids, border)
    return float(np.sqrt(np.mean(err[inner] ** 2)))


def simulated(sim: Path):
    truth = sim / "truth"
    dsm = Raster.read(truth / "dsm.tif").data
    tdtm = Raster.read(truth / "dtm.tif").data
    ids = Raster.read(truth / "buildings.tif").data
    bld = ids > 0
    for noise in (0.0, 0.3, 0.5):
        inp = damage(dsm, noise, 0.03, np.random.default_rng(7)) if noise else dsm
        t = time.perf_counter()
        dtm, _ = dtm_from_array(inp, 0.5)
        dt = time.perf_counter() - t
        s = scores(inp, dtm, dsm, tdtm, bld, ids)
        print(f"sim toulouse noise {noise:.1f}: " + " ".join(f"{k}={v:.3f}" for k, v in s.items())
              + f" time={dt:.2f}s")


def real_cities():
    for path in sorted((REPO.parent / "shared" / "data" / "cityjson" / "real").glob("*.json")):
        city = burn_cityjson(path, res=0.5, pad=30.0)
        dsm, tdtm = city.dsm.data, city.dtm.data
        bld = city.building_id.data > 0
        ok = np.isfinite(dsm) & np.isfinite(tdtm)
        dsm = np.where(ok, dsm, np.nan)
        dtm, _ = dtm_from_array(dsm, 0.5)
        s = scores(dsm[ok], dtm[ok], dsm[ok], tdtm[ok], bld[ok])
        print(f"real {path.name} {dsm.shape}: " + " ".join(f"{k}={v:.3f}" for k, v in s.items()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim", type=Path, help="output of lod3d simulate (default: simulate now)")
    args = ap.parse_args()
    real_cities()
    if args.sim:
        simulated(args.sim)
        return
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([str(Path(sys.executable).parent / "lod3d"), "-q", "simulate", "--aoi", "toulouse",
                        "--out", f"{tmp}/sim", "--size-m", "300", "--seed", "7"], check=True)
        simulated(Path(tmp) / "sim")


if __name__ == "__main__":
    main()
