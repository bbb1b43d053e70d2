"""`lod3d segment`, `lod3d train`, `lod3d pretrain` end to end on a tiny synthetic scene."""

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner

from lod3d.cli.main import cli
from lod3d.io.raster import write_raster

T = Affine(0.5, 0, 500000, 0, -0.5, 4800000)


@pytest.fixture()
def scene(tmp_path):
    """A simulator-shaped scene directory: truth/{ortho,dsm,dtm,buildings}.tif, 96 x 96."""
    rng = np.random.default_rng(0)
    n = 96
    ids = np.zeros((n, n), np.int32)
    ids[10:40, 12:50] = 1
    ids[60:85, 55:90] = 2
    dtm = np.full((n, n), 150.0, np.float32)
    dsm = dtm + np.where(ids > 0, 8.0, 0.0).astype(np.float32) + rng.normal(0, 0.05, (n, n)).astype(np.float32)
    ortho = (900 + 300 * (ids > 0) + rng.normal(0, 15, (n, n))).astype(np.uint16)
    truth = tmp_path / "scene" / "truth"
    for name, arr in (("ortho", ortho), ("dsm", dsm), ("dtm", dtm), ("buildings", ids)):
        write_raster(truth / f"{name}.tif", arr, transform=T, crs="EPSG:32631")
    write_raster(tmp_path / "ndsm.tif", dsm - dtm, transform=T, crs="EPSG:32631")
    return tmp_path


def run(*args):
    return CliRunner().invoke(cli, ["-q", *args])


def test_segment_classical_writes_georeferenced_mask_and_probability(scene):
    out = scene / "out" / "mask.tif"
    r = run("segment", "--ortho", str(scene / "scene/truth/ortho.tif"), "--ndsm", str(scene / "ndsm.tif"),
            "--out", str(out), "--classical")
    assert r.exit_code == 0, r.output
    with rasterio.open(out) as m, rasterio.open(out.with_name("mask_probability.tif")) as p:
        assert m.transform == T and m.crs.to_epsg() == 32631 and m.dtypes[0] == "uint8"
        assert p.dtypes[0] == "float32"
        mask = m.read(1)
    assert mask[20, 30] == 1 and mask[50, 5] == 0


def test_missing_model_is_one_line_exit_2(scene):
    r = run("segment", "--ortho", str(scene / "scene/truth/ortho.tif"), "--ndsm", str(scene / "ndsm.tif"),
            "--out", str(scene / "m.tif"), "--model", str(scene / "nope.pt"))
    assert r.exit_code == 2
    assert "nope.pt: model file not found" in r.output and "Traceback" not in r.output
    assert not (scene / "m.tif").exists()


@pytest.mark.slow
def test_pretrain_then_train_then_segment(scene):
    enc = scene / "enc.pt"
    r = run("pretrain", "--scene", str(scene / "scene"), "--out", str(enc), "--steps", "2", "--batch", "2",
            "--patch", "64", "--decoder-channels", "16,16,8,8,8")
    assert r.exit_code == 0, r.output
    ckpt = scene / "model.pt"
    r = run("train", "--scene", str(scene / "scene"), "--val-scene", str(scene / "scene"), "--out", str(ckpt),
            "--init", str(enc), "--steps", "2", "--batch", "2", "--patch", "64", "--decoder-channels", "16,16,8,8,8")
    assert r.exit_code == 0, r.output
    assert "240/240 tensors" in r.output and "validation IoU" in r.output
    out = scene / "seg.tif"
    r = run("segment", "--ortho", str(scene / "scene/truth/ortho.tif"), "--ndsm", str(scene / "ndsm.tif"),
            "--out", str(out), "--model", str(ckpt), "--tile", "128")
    assert r.exit_code == 0, r.output
    with rasterio.open(out) as m:
        assert m.shape == (96, 96) and m.transform == T
        assert m.tags()["encoder"] == "tu-tf_efficientnet_lite0"


def test_model_needing_a_band_the_ortho_lacks_is_refused(scene):
    ckpt = scene / "rgb.pt"
    r = run("train", "--scene", str(scene / "scene"), "--out", str(ckpt), "--channels", "pan,nir,ndsm",
            "--steps", "1")
    assert r.exit_code == 2 and "'nir'" in r.output
