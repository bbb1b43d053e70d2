"""DTM/nDSM from DSMs: synthetic scenes with known ground, the stage, bad input, points."""

import laspy
import numpy as np
import pytest
from affine import Affine
from click.testing import CliRunner

from lod3d.cli.terrain import command
from lod3d.errors import InputError
from lod3d.pipeline import STAGES, Pipeline
from lod3d.raster import Raster
from lod3d.terrain import (Terrain, TerrainOptions, dtm_from_array, read_points, terrain_from_dsm,
                           terrain_from_points)
from lod3d.terrain.synthetic import make_scene

UTM = "EPSG:32631"


def _raster(a, res=0.5, crs=UTM):
    return Raster(a, Affine(res, 0, 500000, 0, -res, 4800000), crs, float("nan"),
                  {"HEIGHT_DATUM": "WGS84 ellipsoidal height (m)"})


@pytest.fixture(scope="module")
def scene():
    return make_scene(size_m=300, big_m=200, slope=0.08, noise=0.3, seed=5)


def test_scene_dtm_accuracy_and_ndsm(scene):
    dtm, ground = dtm_from_array(scene.dsm, scene.res)
    err = dtm - scene.dtm
    open_ground = ~scene.buildings & ~scene.trees
    assert np.sqrt(np.mean(err[open_ground] ** 2)) < 0.3
    assert np.sqrt(np.mean(err[scene.buildings] ** 2)) < 0.5
    nd = np.nan_to_num(scene.dsm - dtm) > 2.5
    truth = scene.buildings | scene.trees
    assert (nd & truth).sum() / (nd | truth).sum() > 0.95
    assert ground[scene.buildings].mean() < 0.01  # only stereo pits on roofs


def test_stage_registered_and_tags_carried(scene):
    assert STAGES["terrain"] is Terrain
    out = Pipeline([Terrain(max_object_m=220)]).run({"dsm": _raster(scene.dsm)})
    dtm, ndsm = out["dtm"], out["ndsm"]
    assert isinstance(dtm, Raster) and dtm.shape == scene.dsm.shape
    assert dtm.tags["HEIGHT_DATUM"].startswith("WGS84") and dtm.crs == UTM
    assert np.isfinite(dtm.data).all()
    np.testing.assert_array_equal(np.isnan(ndsm.data), np.isnan(scene.dsm))
    assert np.nanmin(ndsm.data) >= 0


def test_tiles_agree_with_whole():
    s = make_scene(size_m=200, big_m=0, seed=2)
    o = TerrainOptions(max_object_m=40)
    whole, _ = terrain_from_dsm(_raster(s.dsm), o)
    tiled, _ = terrain_from_dsm(_raster(s.dsm), o, tile_px=128)
    assert np.abs(whole.data - tiled.data).max() < 0.05


def test_deterministic(scene):
    a, _ = dtm_from_array(scene.dsm, scene.res)
    b, _ = dtm_from_array(scene.dsm.copy(), scene.res)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("make, message", [
    (lambda: _raster(np.full((50, 50), np.nan, np.float32)), "no valid cell"),
    (lambda: _raster(np.zeros((50, 50), np.float32), res=1e-5, crs="EPSG:4326"), "geographic"),
    (lambda: Raster(np.zeros((50, 50), np.float32), Affine(0.5, 0.1, 0, 0.1, -0.5, 0), UTM), "rotated"),
])
def test_bad_dsm_is_a_one_line_input_error(make, message):
    with pytest.raises(InputError, match=message):
        terrain_from_dsm(make(), name="bad.tif")


def test_nodata_value_is_respected():
    z = np.full((60, 60), 10.0, np.float32)
    z[:, :20] = -9999
    dtm, ndsm = terrain_from_dsm(Raster(z, Affine(0.5, 0, 0, 0, -0.5, 0), UTM, -9999.0))
    assert np.allclose(dtm.data, 10.0, atol=1e-3) and np.isnan(ndsm.data[:, :20]).all()


def _write_las(path, x, y, z):
    header = laspy.LasHeader(point_format=3, version="1.2")
    header.offsets = [x.min(), y.min(), z.min()]
    header.scales = [0.001, 0.001, 0.001]
    las = laspy.LasData(header)
    las.x, las.y, las.z = x, y, z
    las.write(path)


def _cloud(n=60000, seed=0):
    """Points over a 60 m square: a sloped ground, a 20 m box building 8 m high."""
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0, 60, n), rng.uniform(0, 60, n)
    ground = 50 + 0.05 * x
    inside = (np.abs(x - 30) < 10) & (np.abs(y - 30) < 10)
    return x, y, np.where(inside, ground + 8, ground) + rng.normal(0, 0.05, n), inside


def test_points_to_dsm_dtm_and_ground(tmp_path):
    x, y, z, inside = _cloud()
    path = tmp_path / "c.laz"
    _write_las(path, x, y, z)
    cloud = read_points(path, crs=UTM)
    dsm, dtm, ndsm, ground = terrain_from_points(cloud, res=0.5, options=TerrainOptions(max_object_m=40))
    assert ground[~inside].mean() > 0.99 and not ground[inside].any()
    truth = 50 + 0.05 * ((np.arange(dtm.shape[1]) + 0.5) * 0.5 + dsm.transform.c)
    assert np.abs(dtm.data - truth[None, :]).max() < 0.3
    assert np.nanmax(ndsm.data) == pytest.approx(8, abs=0.3)


def test_points_outside_bounds_is_an_input_error(tmp_path):
    x, y, z, _ = _cloud(1000)
    path = tmp_path / "c.las"
    _write_las(path, x, y, z)
    with pytest.raises(InputError, match="c.las: no points inside"):
        read_points(path, bounds=(1000, 1000, 1100, 1100))


def test_non_las_without_pdal_is_an_input_error(tmp_path):
    path = tmp_path / "c.xyz"
    path.write_text("0 0 0\n")
    try:
        import pdal  # noqa: F401
    except ImportError:
        with pytest.raises(InputError, match="PDAL"):
            read_points(path)
    else:
        cloud = read_points(path)
        assert cloud.x.size == 1


def test_cli_writes_outputs_and_refuses_bad_input(tmp_path, scene):
    dsm = tmp_path / "dsm.tif"
    _raster(scene.dsm).write(dsm)
    runner = CliRunner()
    res = runner.invoke(command, [str(dsm), "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["dtm.tif", "ndsm.tif"]
    assert Raster.read(tmp_path / "out" / "dtm.tif").tags["HEIGHT_DATUM"].startswith("WGS84")
    bad = tmp_path / "bad.tif"
    _raster(np.full((40, 40), np.nan, np.float32)).write(bad)
    res = runner.invoke(command, [str(bad), "--out", str(tmp_path / "out2")])
    assert isinstance(res.exception, InputError) and "bad.tif" in str(res.exception)
    assert not (tmp_path / "out2").exists()


def test_dsm_wholly_one_roof_is_taken_as_ground():
    """Documented behaviour: with no ground visible at all, the lowest surface is ground."""
    roof = np.full((80, 80), 30.0, np.float32)
    dtm, ndsm = terrain_from_dsm(_raster(roof), name="roof.tif")
    assert np.allclose(dtm.data, 30.0, atol=1e-3) and np.nanmax(ndsm.data) < 1e-3


def test_building_cut_by_the_border_is_removed():
    z = np.full((200, 200), 50.0, np.float32)
    z[:60, 40:120] += 12  # a building cut by the top edge
    dtm, _ = dtm_from_array(z, 0.5, options=TerrainOptions(max_object_m=80))
    assert np.abs(dtm - 50).max() < 0.05


def test_cli_points(tmp_path):
    x, y, z, _ = _cloud(20000)
    path = tmp_path / "c.laz"
    _write_las(path, x, y, z)
    res = CliRunner().invoke(command, ["--points", str(path), "--crs", UTM, "--max-object-m", "40",
                                       "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["dsm.tif", "dtm.tif", "ndsm.tif"]
    assert Raster.read(tmp_path / "out" / "dtm.tif").crs.to_epsg() == 32631


def test_unequal_xy_resolution_is_resampled(scene):
    """bulldozer refuses such grids; here the DTM is computed on square cells and back."""
    dsm = scene.dsm[:, ::2][:, :300]  # 1.0 m x 0.5 m cells
    r = Raster(dsm, Affine(1.0, 0, 0, 0, -0.5, 300), UTM, float("nan"))
    dtm, ndsm = terrain_from_dsm(r, TerrainOptions(max_object_m=220))
    assert dtm.shape == dsm.shape and np.isfinite(dtm.data).all()
    truth = scene.dtm[:, ::2][:, :300]
    open_ground = ~(scene.buildings | scene.trees)[:, ::2][:, :300]
    assert np.sqrt(np.mean((dtm.data - truth)[open_ground] ** 2)) < 0.3
