"""lod3d terrain vs CNES bulldozer on the real Giza CARS DSM: agreement, pyramid, speed, memory.

    python3 -m venv /tmp/peers/bulldozer && /tmp/peers/bulldozer/bin/pip install bulldozer-dtm
    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/terrain_vs_bulldozer.py [--out DIR]

Both run as subprocesses on one core (bulldozer ``-workers 1``; lod3d with one Numba
thread), timed wall-clock with peak RSS from ``/usr/bin/time``, best of 3 (the Numba cache
is warmed first). Bulldozer runs with its default ``max_object_size`` (16 m) and with
250 m (the pyramid's size). Open ground = the valid DSM minus boxes around the Khufu
pyramid and the queens' pyramids. Writes ``giza_terrain.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from lod3d.raster import Raster

REPO = Path(__file__).resolve().parents[1]
DSM = REPO.parent / "shared" / "data" / "peers" / "giza_pair" / "cars_dsm.tif"
BULLDOZER = Path("/tmp/peers/bulldozer/bin/bulldozer")
ENV = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1", LOD3D_QUIET="1")
PYRAMID = (slice(150, 580), slice(130, 530))           # rows, cols of the Khufu pyramid box
QUEENS = [(slice(380, 650), slice(580, 700)), (slice(250, 290), slice(570, 640))]


def timed(cmd: list[str], runs: int = 3) -> tuple[float, float]:
    """Best wall time (s) and peak RSS (MiB) of ``cmd`` over ``runs`` runs."""
    best, mem = float("inf"), 0.0
    for _ in range(runs):
        out = subprocess.run(["/usr/bin/time", "-f", "TIME %e %M", *cmd], env=ENV, capture_output=True,
                             text=True, check=True)
        wall, kib = out.stderr.strip().splitlines()[-1].split()[1:]
        best, mem = min(best, float(wall)), max(mem, int(kib) / 1024)
    return best, mem


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "terrain_vs_bulldozer")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    dsm = Raster.read(DSM)
    z = np.where(dsm.data == dsm.nodata, np.nan, dsm.data)
    km2 = z.size * dsm.res ** 2 / 1e6
    ours_dir = args.out / "lod3d"
    # the terrain command alone (not the whole CLI group: no other subcommand's imports)
    cmd = [sys.executable, "-c", "from lod3d.cli.terrain import command; command()",
           str(DSM), "--out", str(ours_dir), "--overwrite"]
    subprocess.run(cmd, env=ENV, check=True)  # warm the Numba cache
    results = {"lod3d": (*timed(cmd), Raster.read(ours_dir / "dtm.tif").data)}
    for size in (16, 250):
        bdir = args.out / f"bulldozer_{size}"
        t, m = timed([str(BULLDOZER), "-dsm", str(DSM), "-out", str(bdir), "-workers", "1", "-max_size", str(size)])
        b = Raster.read(bdir / "dtm.tif").data
        results[f"bulldozer max_size={size}"] = (t, m, np.where(b < -1000, np.nan, b))

    open_ground = np.isfinite(z)
    for box in [PYRAMID, *QUEENS]:
        open_ground[box] = False
    pyramid = np.isfinite(z) & np.zeros_like(open_ground)
    pyramid[PYRAMID] = np.isfinite(z[PYRAMID]) & (z[PYRAMID] > np.nanpercentile(z, 60))
    ours = results["lod3d"][2]
    print(f"Giza CARS DSM {z.shape[1]}x{z.shape[0]} at {dsm.res} m = {km2:.3f} km2, 1 core")
    for name, (t, mem, dtm) in results.items():
        d = (ours - dtm)[open_ground & np.isfinite(dtm)]
        print(f"{name:26s} wall {t:5.2f} s  {km2 / t:5.3f} km2/core-s  peak RSS {mem:6.0f} MiB  "
              f"pyramid: DSM-DTM median {np.nanmedian((z - dtm)[pyramid]):6.1f} m  "
              f"open ground (-DSM) median {np.nanmedian((dtm - z)[open_ground]):+.2f} m"
              + ("" if name == "lod3d" else f"  lod3d-this on open ground: median {np.median(d):+.2f} "
                 f"NMAD {1.4826 * np.median(np.abs(d - np.median(d))):.2f} m"))
    t_b = results["bulldozer max_size=250"][0]
    print(f"speed ratio bulldozer(250)/lod3d = {t_b / results['lod3d'][0]:.2f}")
    _plot(z, results, args.out / "giza_terrain.png")
    _large(dsm, args.out)


def _large(dsm: Raster, out: Path, k: int = 3):
    """Throughput once start-up is amortised: the DSM mirrored into a k x k mosaic."""
    row = np.concatenate([dsm.data, dsm.data[:, ::-1]] * k, axis=1)[:, :dsm.shape[1] * k]
    big = np.concatenate([row, row[::-1]] * k, axis=0)[:dsm.shape[0] * k]
    path = out / "giza_mosaic.tif"
    dsm.with_data(np.ascontiguousarray(big)).write(path)
    km2 = big.size * dsm.res ** 2 / 1e6
    t_ours, m_ours = timed([sys.executable, "-c", "from lod3d.cli.terrain import command; command()",
                            str(path), "--out", str(out / "lod3d_mosaic"), "--overwrite"], runs=1)
    t_b, m_b = timed([str(BULLDOZER), "-dsm", str(path), "-out", str(out / "bulldozer_mosaic"),
                      "-workers", "1", "-max_size", "250"], runs=1)
    print(f"mosaic {big.shape[1]}x{big.shape[0]} = {km2:.2f} km2: lod3d {t_ours:.2f} s "
          f"({km2 / t_ours:.3f} km2/core-s, {m_ours:.0f} MiB), bulldozer(250) {t_b:.2f} s "
          f"({km2 / t_b:.3f} km2/core-s, {m_b:.0f} MiB), ratio {t_b / t_ours:.2f}")


def _plot(z, results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, ax = plt.subplots(2, 3, figsize=(18, 11))
    ax[0, 0].imshow(z, cmap="terrain", vmin=40, vmax=90)
    ax[0, 0].set_title("CARS DSM (EGM96 m)")
    for a, n in zip(ax[0, 1:], names[:2]):
        a.imshow(results[n][2], cmap="terrain", vmin=40, vmax=90)
        a.set_title(f"DTM {n}")
    ax[1, 0].imshow(results[names[2]][2], cmap="terrain", vmin=40, vmax=90)
    ax[1, 0].set_title(f"DTM {names[2]}")
    im = ax[1, 1].imshow(results["lod3d"][2] - results[names[2]][2], cmap="RdBu_r", vmin=-3, vmax=3)
    ax[1, 1].set_title(f"lod3d - {names[2]} (m)")
    plt.colorbar(im, ax=ax[1, 1])
    row = 400
    ax[1, 2].plot(z[row], "k", lw=0.5, label="DSM")
    for n, c in zip(names, "rbg"):
        ax[1, 2].plot(results[n][2][row], c, label=n)
    ax[1, 2].set_ylim(45, 110)
    ax[1, 2].set_title(f"row {row} (through the pyramid and a queen's pyramid)")
    ax[1, 2].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=60)
    print(f"plot: {path}")


if __name__ == "__main__":
    main()
