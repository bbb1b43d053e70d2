"""Why the terrain defaults are what they are: a sweep of the main options.

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/terrain_sweep.py [--bulldozer DIR]

Scenes: four synthetic DSMs (:mod:`lod3d.terrain.synthetic`: 5 % / 15 % slopes, noise
0.3 / 0.8 m, a 250 m hall or none), the simulated Toulouse truth DSM (seed 7, 300 m) with
0.3 m noise, and -- with ``--bulldozer`` (the output folder of
``benchmarks/terrain_vs_bulldozer.py``) -- the real Giza CARS DSM compared with bulldozer
(max_object_size 16 m) on open ground. Per scene: DTM RMSE open / under buildings (m),
nDSM > 2.5 m IoU.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from affine import Affine

from lod3d.aoi import aoi
from lod3d.raster import Raster
from lod3d.terrain import TerrainOptions, dtm_from_array
from lod3d.terrain.synthetic import damage, make_scene

REPO = Path(__file__).resolve().parents[1]
CONFIGS = [
    dict(),
    dict(quantile=0.25, dh_max=2.0),
    dict(quantile=0.25),
    dict(dh_max=2.0),
    dict(dz=1.5),
    dict(border_objects=False),
    dict(lam=0.5),
]


def _scenes():
    from lod3d.simulate.scene import generate_scene
    from lod3d.simulate.truth import rasterize_truth

    out = []
    for seed, kw in [(0, {}), (1, dict(slope=0.15)), (2, dict(noise=0.8)), (4, dict(big_m=0))]:
        s = make_scene(seed=seed, **kw)
        out.append((f"synthetic {seed} {kw}", s.dsm, s.clean_dsm, s.dtm, s.buildings, s.res))
    area = aoi("toulouse").crop(300)
    xmin, ymin, xmax, ymax = area.bounds
    scene = generate_scene((xmin - 50, ymin - 50, xmax + 50, ymax + 50), crs=area.crs, seed=7)
    t = rasterize_truth(scene, Affine(0.5, 0, xmin, 0, -0.5, ymax), (600, 600))
    out.append(("toulouse", damage(t.dsm, 0.3, 0.03, np.random.default_rng(7)), t.dsm, t.dtm,
                t.buildings > 0, 0.5))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bulldozer", type=Path, help="output folder of terrain_vs_bulldozer.py")
    args = ap.parse_args()
    scenes = _scenes()
    giza = None
    if args.bulldozer:
        dsm = Raster.read(REPO.parent / "shared" / "data" / "peers" / "giza_pair" / "cars_dsm.tif")
        z = np.where(dsm.data == dsm.nodata, np.nan, dsm.data).astype(np.float32)
        b16 = Raster.read(args.bulldozer / "bulldozer_16" / "dtm.tif").data
        open_ground = np.isfinite(z)
        for box in [np.s_[150:580, 130:530], np.s_[380:650, 580:700], np.s_[250:290, 570:640]]:
            open_ground[box] = False
        giza = (z, b16, open_ground)
    for kw in CONFIGS:
        o = TerrainOptions(**kw)
        cols = []
        for name, dsm, clean, truth, bld, res in scenes:
            dtm, _ = dtm_from_array(dsm, res, options=o)
            err = dtm - truth
            objects = bld | (clean - truth > 2.5)
            nd = np.nan_to_num(dsm - dtm) > 2.5
            cols.append(f"{np.sqrt(np.mean(err[~objects] ** 2)):.2f}/{np.sqrt(np.mean(err[bld] ** 2)):.2f}/"
                        f"{(nd & objects).sum() / (nd | objects).sum():.3f}")
        if giza:
            z, b16, open_ground = giza
            d = (dtm_from_array(z, 0.6, options=o)[0] - b16)[open_ground]
            cols.append(f"giza-bulldozer16 median {np.median(d):+.2f} NMAD "
                        f"{1.4826 * np.median(np.abs(d - np.median(d))):.2f}")
        print(f"{str(kw):40s} " + "  ".join(cols), flush=True)
    print("columns: " + ", ".join(s[0] for s in scenes) + (", giza" if giza else ""))


if __name__ == "__main__":
    main()
