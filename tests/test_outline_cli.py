"""``lod3d outline``: GeoJSON and GeoPackage output, user errors as one line."""

import json
import sqlite3

import numpy as np
import pytest
from click.testing import CliRunner

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
