"""``lod3d city`` end to end: rank-count independence, resume after a kill, ownership."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from click.testing import CliRunner

from lod3d.cli.main import cli
from lod3d.cityjson.reader import read_cityjson
from lod3d.outline import outline_mask
from lod3d.raster import Raster

BIN = Path(sys.executable).parent
AOI = ["--aoi", "toulouse", "--size-m", "120"]
OPTS = ["--tile-m", "40"]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    sim = tmp_path_factory.mktemp("sim") / "acq"
    result = CliRunner().invoke(cli, ["-q", "simulate", *AOI, "--seed", "5", "--out", str(sim)])
    assert result.exit_code == 0, result.output
    return sorted(str(p) for p in (sim / "images").glob("*.tif"))


def _city(out, images, *extra, ranks=1, wait=True):
    given = ["--images", *images] if images else []  # no images: the city simulates them
    cmd = [str(BIN / "lod3d"), "-q", "city", *AOI, *OPTS, "--out", str(out), *given, *extra]
    if ranks > 1:
        cmd = [str(BIN / "mpiexec"), "-n", str(ranks), *cmd]
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    if not wait:
        return subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def one_rank(images, tmp_path_factory):
    out = tmp_path_factory.mktemp("city") / "one"
    run = _city(out, images)
    assert run.returncode == 0, run.stderr
    return out


@pytest.mark.slow
def test_products_and_each_building_once(one_rank):
    for name in ("city.city.json", "city.city.jsonl", "footprints.gpkg", "run.json", "dsm.tif", "dtm.tif",
                 "ndsm.tif", "ortho.tif", "mask.tif"):
        assert (one_rank / name).exists(), name
    buildings = read_cityjson(one_rank / "city.city.json").buildings()
    assert len(buildings) > 0
    feet = [b.footprint for b in buildings]
    # Buildings that cross tile borders appear once: no two footprints overlap.
    tree = shapely.STRtree(feet)
    left, right = tree.query(feet, predicate="intersects")
    pairs = left < right
    overlap = shapely.area(shapely.intersection(np.take(feet, left[pairs]), np.take(feet, right[pairs])))
    assert (overlap < 1.0).all()
    run = CliRunner().invoke(cli, ["validate", str(one_rank / "city.city.json")])
    assert run.exit_code == 0, run.output


@pytest.mark.slow
def test_blocks_are_split_as_on_the_whole_aoi(one_rank):
    # Touching buildings are cut apart once per block, in a window that holds all of it: the
    # footprints of blocks spanning several 40 m tiles are those of the AOI outlined whole,
    # one for one (a split per tile window left 0.3 IoU pieces and roofs without footprints).
    def read(name):
        with rasterio.open(one_rank / f"{name}.tif") as src:
            return Raster(src.read(1), src.transform, src.crs, src.nodata)

    whole = outline_mask(read("mask"), read("ndsm"), read("ortho")).polygons
    feet = [b.footprint for b in read_cityjson(one_rank / "city.city.json").buildings()]
    left, right = shapely.STRtree(whole).query(feet, predicate="intersects")
    iou = shapely.area(shapely.intersection(np.take(feet, left), whole[right])) / \
        shapely.area(shapely.union(np.take(feet, left), whole[right]))
    best = np.zeros(len(feet))
    np.maximum.at(best, left, iou)
    assert (best > 0.95).all(), np.sort(best)[:5]
    assert len(set(right[iou > 0.95].tolist())) == len(feet)


@pytest.mark.slow
def test_two_ranks_write_identical_city(one_rank, images, tmp_path):
    if not (BIN / "mpiexec").exists():
        pytest.skip("no mpiexec")
    run = _city(tmp_path / "two", images, ranks=2)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "two/city.city.json").read_bytes() == (one_rank / "city.city.json").read_bytes()
    # Each rank's timeline; the model is loaded once (9 small tiles), by the rank that segments.
    summary = json.loads((tmp_path / "two/run.json").read_text())
    assert [r["rank"] for r in summary["ranks"]] == [0, 1]
    for r in summary["ranks"]:
        assert {"dsm:tiles", "lod:tiles", "report"} <= {s[0] for s in r["spans"]} and r["peak_rss_mb"] > 0
        assert 0 <= r["barrier_wait_s"] <= r["run_s"] and 0 < r["tasks_s"] <= r["run_s"]
    # Every tile of every phase is in the timeline of the rank that ran it, once.
    ran = [(t[0], t[1]) for r in summary["ranks"] for t in r["tasks"]]
    for phase in ("dsm", "terrain", "segment", "outline", "lod"):
        tiles = summary["timings"][phase]["tiles"]
        assert sorted(t for p, t in ran if p == phase and t in tiles) == sorted(tiles)
        for tile, rec in tiles.items():
            assert (phase, tile) in [(t[0], t[1]) for t in summary["ranks"][rec["rank"]]["tasks"]]
    loads = summary["timings"]["dsm"]["segment_model_loads"]
    assert len(loads) == 1 and loads[0]["ok"]
    assert {t["rank"] for t in summary["timings"]["segment"]["tiles"].values()} == {loads[0]["rank"]}
    assert {r["rank"] for r in summary["timings"]["lod"]["products"]} <= {0, 1}


@pytest.mark.slow
def test_two_ranks_simulate_once_and_load_the_model_meanwhile(one_rank, images, tmp_path):
    if not (BIN / "mpiexec").exists():
        pytest.skip("no mpiexec")
    out = tmp_path / "simulated"
    run = _city(out, [], "--seed", "5", ranks=2)
    assert run.returncode == 0, run.stderr
    # The views are those `lod3d simulate` makes alone, and so is the city model built on
    # them (its metadata aside: the simulated acquisition has its own reference date).
    for image in images:
        assert (out / "simulation/images" / Path(image).name).read_bytes() == Path(image).read_bytes()
    assert not [p.name for p in (out / "simulation").iterdir() if p.name.startswith(".")]
    mine, theirs = (json.loads((d / "city.city.json").read_text()) for d in (out, one_rank))
    assert {k: v for k, v in mine.items() if k != "metadata"} == {k: v for k, v in theirs.items() if k != "metadata"}
    # One rank loaded the model while the other prepared the scene, and it segmented.
    summary = json.loads((out / "run.json").read_text())
    loads = summary["timings"]["simulate"]["segment_model_loads"]
    assert len(loads) == 1 and "error" not in loads[0] and "segment_model_loads" not in summary["timings"]["dsm"]
    assert {t["rank"] for t in summary["timings"]["segment"]["tiles"].values()} == {loads[0]["rank"]}


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_output(one_rank, images, tmp_path):
    out = tmp_path / "killed"
    proc = _city(out, images, wait=False)
    deadline = time.time() + 300
    while time.time() < deadline and len(list((out / "tiles/dsm").glob("*.tif"))) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "city.city.json").exists()
    run = _city(out, images, "--resume")
    assert run.returncode == 0, run.stderr
    assert (out / "city.city.json").read_bytes() == (one_rank / "city.city.json").read_bytes()
    # Resuming with another configuration is refused, and nothing is overwritten.
    run = _city(out, images, "--resume", "--lod", "0,1")
    assert run.returncode == 2 and "different configuration" in run.stderr
    assert run.stderr.count("\n") == 1
