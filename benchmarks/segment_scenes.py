"""Simulated truth scenes for segmentation training and evaluation, one per seed.

Writes ``OUT/seed_S/truth/{ortho,dsm,dtm,buildings}.tif`` — the files ``lod3d simulate``
writes under ``truth/`` and that :func:`lod3d.segment.train.load_scene` reads — using the
simulator's own scene generator, truth rasterizer and true-ortho renderer, without the
sensor views and RPC fits that segmentation does not need (10× faster).

    python benchmarks/segment_scenes.py --out runs/seg_scenes --seeds 1-8 --size-m 300
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from affine import Affine

from lod3d.aoi import aoi
from lod3d.io.raster import write_raster
from lod3d.simulate.acquisition import SCENE_MARGIN_M
from lod3d.simulate.render import render_ortho
from lod3d.simulate.scene import generate_scene
from lod3d.simulate.sensor import Sun
from lod3d.simulate.truth import rasterize_truth, scene_surface


def make_scene(out: Path, seed: int, size_m: float, gsd: float = 0.5) -> Path:
    area = aoi("toulouse")
    cx, cy = (area.bounds[0] + area.bounds[2]) / 2, (area.bounds[1] + area.bounds[3]) / 2
    xmin, ymin, xmax, ymax = cx - size_m / 2, cy - size_m / 2, cx + size_m / 2, cy + size_m / 2
    m = SCENE_MARGIN_M
    scene_bounds = (xmin - m, ymin - m, xmax + m, ymax + m)
    scene = generate_scene(scene_bounds, crs=area.crs, seed=seed)
    grid = Affine(gsd, 0.0, xmin, 0.0, -gsd, ymax)
    shape = (round(size_m / gsd), round(size_m / gsd))
    truth = rasterize_truth(scene, grid, shape)
    surface = scene_surface(scene, res=gsd / 2, bounds=scene_bounds)
    gain = 1.0 + np.random.default_rng(seed).uniform(-0.15, 0.15)
    ortho = render_ortho(surface, grid, shape, Sun(azimuth_deg=150.0, elevation_deg=55.0), gain=gain, seed=seed)
    d = out / f"seed_{seed}" / "truth"
    for name, arr in (("ortho", ortho), ("dsm", truth.dsm.astype(np.float32)),
                      ("dtm", truth.dtm.astype(np.float32)), ("buildings", truth.buildings.astype(np.int32))):
        write_raster(d / f"{name}.tif", arr, transform=grid, crs=area.crs)
    return d.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", default="1-8", help="e.g. 1-8 or 1,5,9")
    ap.add_argument("--size-m", type=float, default=300.0)
    args = ap.parse_args()
    if "-" in args.seeds:
        a, b = map(int, args.seeds.split("-"))
        seeds = range(a, b + 1)
    else:
        seeds = [int(s) for s in args.seeds.split(",")]
    for s in seeds:
        print(make_scene(args.out, s, args.size_m), flush=True)


if __name__ == "__main__":
    main()
