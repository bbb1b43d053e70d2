"""LoD acceptance: real city models burnt at 0.5 m and simulated Toulouse, rebuilt.

Usage: python benchmarks/lod_acceptance.py [--sim DIR] [--repeat N]
       python benchmarks/lod_acceptance.py --attribute RUN [RUN ...]

Real models (``shared/data/cityjson/real``): burnt into DSM/DTM with
:func:`lod3d.cityjson.rasterize.burn_cityjson` and rebuilt from that DSM and their own
footprints; truth volume = the volume under that DSM above the model's ground. Simulated Toulouse: ``DIR/truth`` from
``lod3d simulate --aoi toulouse --out DIR --size-m 300 --seed 7`` (simulated into a
temporary folder when ``--sim`` is not given); rebuilt from the truth DSM/DTM and
footprints; truth = ``buildings.city.json``. Prints one row per data set: buildings
present, LoD2.2 share, roof RMSE, volume error, invalid buildings, schema errors,
roof-type accuracy, buildings per core-second (process CPU time, one thread) and the
number of buildings cut by the DSM's edge (LoD2.2 made, volume not judged).

``--attribute RUN``: where the LoD2.2 roof error of a ``lod3d city`` run on a simulated
AOI comes from. Its LoD2.2 models are rebuilt from each pairing of surface (S: the run's
stereo DSM and DTM, T: the simulation's truth DSM and DTM) and footprints (O: the run's
own, T: the truth's) and burnt onto the grid as ``lod3d evaluate`` does; one row per
pairing: roof RMSE on the truth building cells, coverage of them, share of the roof cells
outside every truth building, RMSE within 1 m of a truth wall and further inside, RMSE by
the truth roof type (the building's first), and the stereo DSM itself as a reference row.
The stereo pairings are also rebuilt with the run's true ortho (``ortho.tif``), whose
edges place the walls between parts of different heights (rows ending in ``+ ortho``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

from lod3d.cityjson.rasterize import burn_cityjson  # noqa: E402
from lod3d.cityjson.reader import read_cityjson  # noqa: E402
from lod3d.lod import build_buildings  # noqa: E402
from lod3d.lod.io import read_footprints  # noqa: E402
from lod3d.lod.metrics import dsm_volume, rebuild_metrics, truth_of  # noqa: E402
from lod3d.raster import Raster  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared/data"
REAL = ("rotterdam_subset.json", "DH_01_subs.city.json", "delft.json")


def real_case(name):
    """(footprints, dsm, dtm, truth by id, epsg) of a real model burnt at 0.5 m."""
    bc = burn_cityjson(DATA / "cityjson/real" / name, crs_epsg=28992)
    truth = {b.id: (dsm_volume(fp, bc.dsm, b.ground_z), None) for b, (_, fp) in zip(bc.buildings, bc.footprints)}
    return bc.footprints, bc.dsm, bc.dtm, truth, 28992


def sim_case(folder):
    """(footprints, dsm, dtm, truth by footprint id, epsg) of a simulated scene's truth."""
    t = Path(folder) / "truth"
    dsm, dtm = Raster.read(t / "dsm.tif"), Raster.read(t / "dtm.tif")
    fps = read_footprints(t / "footprints.geojson", dsm.crs)
    truth = {str(b.attributes["truth_id"]): truth_of(b) for b in read_cityjson(t / "buildings.city.json").buildings()}
    return fps, dsm, dtm, truth, dsm.crs.to_epsg()


def simulate(folder):
    subprocess.run([str(Path(sys.executable).with_name("lod3d")), "simulate", "--aoi", "toulouse", "--out", str(folder),
                    "--size-m", "300", "--seed", "7"], check=True, capture_output=True)


def measure(label, case, repeat, schema):
    fps, dsm, dtm, truth, epsg = case
    build_buildings(fps[:2], dsm, dtm)  # warm-up (Numba, imports)
    times = []
    for _ in range(repeat):
        t = time.process_time()
        built = build_buildings(fps, dsm, dtm)
        times.append(time.process_time() - t)
    m = rebuild_metrics(built, truth, epsg, schema)
    acc = "-" if m["roof_type_acc"] is None else f"{m['roof_type_acc']:.0%}"
    print(f"{label:<22} {m['present']:>4}/{len(fps):<4} {m['lod22'] / len(built):>6.0%} {m['roof_rmse']:>8.3f}"
          f" {m['volume_err_mean']:>7.2%} {m['volume_err_max']:>7.2%} {len(m['invalid']):>7} {m['schema_errors']:>6}"
          f" {acc:>6} {len(built) / min(times):>8.1f} {len(m['uncovered']):>5}")
    return m


def attribute(run) -> None:
    """Print the attribution rows of a ``lod3d city`` run folder (see the module docstring)."""
    import numpy as np
    import shapely
    from rasterio.enums import Resampling
    from scipy import ndimage

    from lod3d.evaluate.city import _at_lod, _burn_roofs, _roof_errors, on_grid

    run = Path(run)
    t = run / "simulation/truth"
    grid = Raster.read(run / "dsm.tif")
    surfaces = {"S": (grid, Raster.read(run / "dtm.tif")), "T": (Raster.read(t / "dsm.tif"), Raster.read(t / "dtm.tif"))}
    t_ids = np.nan_to_num(on_grid(t / "buildings.tif", grid, Resampling.nearest)).astype(np.int64)
    t_dsm = on_grid(t / "dsm.tif", grid, Resampling.bilinear)
    wall = np.zeros(t_ids.shape, bool)
    for axis in (0, 1):
        d = np.diff(t_ids, axis=axis) != 0
        wall[tuple(slice(1, None) if a == axis else slice(None) for a in (0, 1))] |= d
        wall[tuple(slice(None, -1) if a == axis else slice(None) for a in (0, 1))] |= d
    near = ndimage.binary_dilation(wall, iterations=1) & (t_ids > 0)  # cells within ~1 m of a wall
    kind = {int(b.attributes["truth_id"]): (b.attributes.get("roof_types") or ["?"])[0]
            for b in read_cityjson(t / "buildings.city.json").buildings()}
    kinds = np.array(["-"] + [kind.get(i, "?") for i in range(1, t_ids.max() + 1)], dtype=object)[t_ids]
    box = shapely.box(*grid.bounds)
    footprints = {"O": [(b.id, b.footprint) for b in read_cityjson(run / "city.city.json").buildings()],
                  "T": [(i, p.intersection(box)) for i, p in read_footprints(t / "footprints.geojson", grid.crs)
                        if p.intersection(box).area > 2.0]}
    types = ("flat", "shed", "gable", "hip", "pyramid")
    print(f"{'surface+footprints':<29} {'RMSE':>6} {'cover':>6} {'outside':>7} {'<1m wall':>8} {'inside':>6} "
          + " ".join(f"{k:>7}" for k in types) + f" {'cpu s':>6}")

    def row(label, top, seconds=float("nan")):
        e = _roof_errors(top, t_dsm, t_ids)
        err = top - t_dsm
        ok = (t_ids > 0) & np.isfinite(err)
        rmse = [float(np.sqrt(np.mean(err[ok & m] ** 2))) if (ok & m).any() else float("nan")
                for m in [near, ~near] + [kinds == k for k in types]]
        print(f"{label:<29} {e['rmse']:>6.3f} {e['completeness']:>6.1%} {e['outside_share']:>7.1%} "
              + " ".join(f"{v:>6.3f}" for v in rmse[:2]) + "  " + " ".join(f"{v:>7.3f}" for v in rmse[2:])
              + f" {seconds:>6.1f}")

    stereo = grid.data[-1] if grid.data.ndim == 3 else grid.data
    row("stereo DSM itself", np.where(np.isfinite(stereo), stereo, np.nan).astype(np.float64))
    ortho = Raster.read(run / "ortho.tif")
    for s_key, f_key, o in (("S", "O", None), ("S", "O", ortho), ("S", "T", None), ("S", "T", ortho),
                            ("T", "O", None), ("T", "T", None)):
        dsm, dtm = surfaces[s_key]
        start = time.process_time()
        built = build_buildings(footprints[f_key], dsm, dtm, ortho=o)
        seconds = time.process_time() - start
        row(f"{'stereo' if s_key == 'S' else 'truth'} DSM + {'our' if f_key == 'O' else 'truth'} fp"
            + (" + ortho" if o is not None else ""), _burn_roofs(_at_lod(built, "2.2"), grid), seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim", help="folder of a simulated scene (with truth/); simulated if absent")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--attribute", nargs="+", metavar="RUN", help="lod3d city run folders of simulated AOIs: "
                    "attribute their LoD2.2 roof error (rows above) instead")
    args = ap.parse_args()
    if args.attribute:
        for run in args.attribute:
            print(run)
            attribute(run)
        return
    schema = DATA / "cityjson/schema-2.0/cityjson.min.schema.json"
    print(f"{'data set':<22} {'present':>9} {'LoD2.2':>6} {'RMSE m':>8} {'vol mean':>7} {'vol max':>7}"
          f" {'invalid':>7} {'schema':>6} {'type':>6} {'bldg/cs':>8} {'edge':>5}")
    for name in REAL:
        measure(name, real_case(name), args.repeat, schema)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.sim or tmp
        if not args.sim:
            simulate(folder)
        measure("toulouse (sim, truth)", sim_case(folder), args.repeat, schema)


if __name__ == "__main__":
    main()
