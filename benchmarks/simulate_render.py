"""Time the simulator's sensor: shading, 3 ray-cast views and the true ortho of a 500 m scene.

The scene is the procedural Toulouse city (``lod3d.simulate.scene`` + ``truth.scene_surface``)
over a 500 m × 500 m crop of the ``toulouse`` AOI, surface at GSD/2 over the area every
view's lines of sight cross (``sensor.surface_bounds``). Kernels are compiled (or
loaded from Numba's cache) on a small warm-up scene first, so the figure is the render
itself. Run with the thread count to measure, e.g.::

    NUMBA_NUM_THREADS=2 OMP_NUM_THREADS=1 .venv/bin/python benchmarks/simulate_render.py
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from affine import Affine

from lod3d.aoi import aoi as get_aoi
from lod3d.geometry.rpcfit import fit_rpc
from lod3d.simulate.render import render_ortho, render_view, shade_surface
from lod3d.simulate.scene import generate_scene
from lod3d.simulate.sensor import Sun, design_views, surface_bounds
from lod3d.simulate.truth import scene_surface


def build(area_bounds, crs, gsd, seed, margin=60.0):
    """Views designed over the scene's height range, then the surface over their footprint.

    The height range comes from a coarse (2 m) preview of the scene around the AOI; the
    fine surface is then generated over ``surface_bounds`` of the views, which for a ground
    track ≈10° off north reaches well beyond a fixed margin around a square AOI.
    """
    xmin, ymin, xmax, ymax = area_bounds
    around = (xmin - margin, ymin - margin, xmax + margin, ymax + margin)
    preview = scene_surface(generate_scene(around, crs=crs, seed=seed), res=2.0, bounds=around)
    z_range = (float(preview.height.min()) - 5.0, float(preview.height.max()) + 5.0)
    cams = design_views(area_bounds, crs, gsd=gsd, n_views=3, along_track_deg=(-12, 0, 12),
                        z_range=z_range, seed=seed)
    bounds = surface_bounds(cams, z_range)
    surface = scene_surface(generate_scene(bounds, crs=crs, seed=seed), res=gsd / 2, bounds=bounds)
    return cams, surface, z_range


def render_all(cams, surface, area_bounds, gsd, sun):
    shading = shade_surface(surface, sun)
    views = [render_view(surface, cam, sun, gain=g, seed=k, shading=shading)
             for k, (cam, g) in enumerate(zip(cams, (0.95, 1.0, 1.08)))]
    xmin, ymin, xmax, ymax = area_bounds
    shape = (round((ymax - ymin) / gsd), round((xmax - xmin) / gsd))
    ortho = render_ortho(surface, Affine(gsd, 0, xmin, 0, -gsd, ymax), shape, sun, shading=shading)
    return views, ortho


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-m", type=float, default=500.0)
    ap.add_argument("--gsd", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    area = get_aoi("toulouse")
    sun = Sun(azimuth_deg=150.0, elevation_deg=55.0)
    x0, y0 = area.bounds[0], area.bounds[1]

    warm = (x0, y0, x0 + 30.0, y0 + 30.0)
    cams, surface, _ = build(warm, area.crs, args.gsd, args.seed)
    render_all(cams, surface, warm, args.gsd, sun)

    bounds = (x0, y0, x0 + args.size_m, y0 + args.size_m)
    t0 = time.perf_counter()
    cams, surface, z_range = build(bounds, area.crs, args.gsd, args.seed)
    t1 = time.perf_counter()
    views, ortho = render_all(cams, surface, bounds, args.gsd, sun)
    t2 = time.perf_counter()
    fits = [fit_rpc(cam, area.crs, z_range)[1] for cam in cams]
    t3 = time.perf_counter()

    print(f"scene {args.size_m:g} m x {args.size_m:g} m at {args.gsd:g} m, toulouse procedural city, "
          f"NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', 'all')}")
    print(f"  surface grid {surface.shape[0]} x {surface.shape[1]} cells at {surface.res:g} m; "
          f"views {[c.shape for c in cams]}; ortho {ortho.shape}")
    print(f"  scene + surface build: {t1 - t0:6.1f} s")
    print(f"  render (shading + 3 views + ortho): {t2 - t1:6.1f} s")
    print(f"  RPC fits: {t3 - t2:6.1f} s, max residual {max(f['max_px'] for f in fits):.1e} px, "
          f"rms {max(f['rms_px'] for f in fits):.1e} px")
    print(f"  view DN range {min(int(v.min()) for v in views)}..{max(int(v.max()) for v in views)}, "
          f"ortho mean {float(np.mean(ortho)):.0f}")


if __name__ == "__main__":
    main()
