"""LoD2.2 speed and accuracy on a real city model burnt into a 0.5 m DSM.

Usage: python benchmarks/lod_speed.py [CITYJSON] [--repeat N]
Prints buildings per core-second (process CPU time of build_buildings, 1 thread), roof
RMSE against the DSM, volume error against the burnt model and the validity rate.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from lod3d.cityjson import to_cityjson_dict  # noqa: E402
from lod3d.cityjson.rasterize import burn_cityjson  # noqa: E402
from lod3d.cityjson.validate import check_geometry  # noqa: E402
from lod3d.lod import build_buildings  # noqa: E402
from lod3d.lod.build import _cells_inside  # noqa: E402

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared/data/cityjson/real/delft.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cityjson", nargs="?", default=str(DEFAULT))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--epsg", type=int, default=28992, help="CRS when the file names none")
    args = ap.parse_args()
    bc = burn_cityjson(args.cityjson, crs_epsg=args.epsg)
    build_buildings(bc.footprints[:2], bc.dsm, bc.dtm)  # warm-up (Numba, imports)
    times = []
    for _ in range(args.repeat):
        t = time.process_time()
        bs = build_buildings(bc.footprints, bc.dsm, bc.dtm)
        times.append(time.process_time() - t)
    invalid = {str(e).split("]")[1].split()[0] for e in check_geometry(to_cityjson_dict(bs, crs_epsg=args.epsg))}
    sq = n = 0
    verr = []
    for b, (_, fp) in zip(bs, bc.footprints):
        if "volume_lod22" not in b.attributes:
            continue
        _, _, z = _cells_inside(fp, bc.dsm)
        sq += b.attributes["rmse_lod22"] ** 2 * len(z)
        n += len(z)
        vt = np.mean(z - b.ground_z) * fp.area
        verr.append(abs(b.attributes["volume_lod22"] - vt) / vt)
    n22 = len(verr)
    print(f"{Path(args.cityjson).name}: {len(bs)} buildings, {n22} at LoD2.2")
    print(f"  speed: {len(bs) / min(times):.1f} buildings per core-second (best of {args.repeat})")
    print(f"  roof RMSE {np.sqrt(sq / max(n, 1)):.3f} m; volume error mean {np.mean(verr):.2%}, max {np.max(verr):.2%}")
    print(f"  validity: {len(bs) - len(invalid)}/{len(bs)} buildings valid")


if __name__ == "__main__":
    main()
