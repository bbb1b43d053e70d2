"""``lod3d outline``: GeoJSON and GeoPackage output, --ndsm/--ortho separation, user errors
as one line."""

import json
import sqlite3

import numpy as np
import pytest
from click.testing import CliRunner
from test_outline_instances import scene

from lod3d.cli.main import cli
from lod3d.outline.synthetic import random_scene
from lod3d.raster import Raster


@pytest.fixture(scope="module")
def mask_tif(tmp_path_factory):
    mask, transform, _ = random_scene(4, n_side=3, noise=0.05)
    path = tmp_path_factory.mktemp("mask") / "mask.tif"
    Raster((mask > 0).astype(np.uint8), transform, "EPSG:32631").write(path)
    return path


def test_geojson_and_geopackage(mask_tif, tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["-q", "outline", str(mask_tif), "--out", str(tmp_path / "f.geojson")])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "f.geojson").read_text())
    assert len(doc["features"]) == 9 and doc["crs"]["properties"]["name"].endswith("32631")
    res = runner.invoke(cli, ["-q", "outline", str(mask_tif), "--out", str(tmp_path / "f.gpkg")])
    assert res.exit_code == 0, res.output
    con = sqlite3.connect(tmp_path / "f.gpkg")
    assert con.execute("SELECT count(*) FROM footprints").fetchone()[0] == 9
    assert con.execute("SELECT srs_id FROM gpkg_geometry_columns").fetchone()[0] == 32631
    blob = con.execute("SELECT geom FROM footprints LIMIT 1").fetchone()[0]
    assert blob[:2] == b"GP"


def test_user_errors(mask_tif, tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["outline", str(tmp_path / "missing.tif"), "--out", str(tmp_path / "x.geojson")])
    assert res.exit_code == 2 and "missing.tif" in res.output and "Traceback" not in res.output
    res = runner.invoke(cli, ["outline", str(mask_tif), "--out", str(tmp_path / "x.shp")])
    assert res.exit_code == 2 and ".shp" in res.output
    assert not (tmp_path / "x.shp").exists()


def test_ndsm_and_ortho_separate_touching_buildings(tmp_path):
    parts = [(-40, 0, -15, 15, "u", 0.22, 8.0), (0, 40, -15, 15, "u", 0.33, 8.0)]
    paths = {}
    for name, r in zip(("mask", "ndsm", "ortho"), scene(parts)):
        paths[name] = tmp_path / f"{name}.tif"
        Raster(np.asarray(r.data, np.float32 if name != "mask" else np.uint8), r.transform,
               "EPSG:32631").write(paths[name])
    runner = CliRunner()
    base = ["-q", "outline", str(paths["mask"]), "--ndsm", str(paths["ndsm"])]
    for extra, n in (([], 1), (["--ortho", str(paths["ortho"])], 2),
                     (["--ortho", str(paths["ortho"]), "--no-separate"], 1)):
        res = runner.invoke(cli, base + extra + ["--out", str(tmp_path / "f.geojson")])
        assert res.exit_code == 0, res.output
        assert len(json.loads((tmp_path / "f.geojson").read_text())["features"]) == n, extra
    small = tmp_path / "small.tif"
    Raster(np.zeros((10, 10), np.float32), Raster.read(paths["mask"]).transform,
           "EPSG:32631").write(small)
    res = runner.invoke(cli, base + ["--ortho", str(small), "--out", str(tmp_path / "g.geojson")])
    assert res.exit_code == 2 and "ortho" in res.output and "Traceback" not in res.output
