"""RPC00B least-squares fit against the exact pushbroom camera, and GDAL's reading of it."""

import numpy as np
import pytest
from rasterio.transform import RPCTransformer

from lod3d.errors import InputError
from lod3d.geometry.rpc import RPCModel
from lod3d.geometry.rpcfit import fit_rpc
from lod3d.io.raster import write_raster
from lod3d.simulate.sensor import design_views

CRS = "EPSG:2154"
AOI = (574000.0, 6279000.0, 574600.0, 6279500.0)
Z = (140.0, 210.0)


@pytest.fixture(scope="module")
def cams():
    return design_views(AOI, CRS, gsd=0.5, z_range=Z, seed=11)


@pytest.fixture(scope="module")
def fitted(cams):
    return [fit_rpc(cam, CRS, Z) for cam in cams]


def _random_ground(cam, n, seed):
    """Random image points localized at random heights inside the fitted domain."""
    rng = np.random.default_rng(seed)
    rows, cols = cam.shape
    r, c = rng.uniform(0, rows - 1, n), rng.uniform(0, cols - 1, n)
    h = rng.uniform(*Z, n)
    lon, lat = cam.localize_lonlat(r, c, h)
    return lon, lat, h, r, c


def test_fit_residual_on_check_grid_below_goal(fitted):
    for rpc, stats in fitted:
        assert stats["max_px"] < 0.01 and stats["rms_px"] < 0.002
        assert stats["n_check"] > 1000
        assert rpc.line_den[0] == 1.0 and rpc.samp_den[0] == 1.0


def test_fit_matches_camera_at_random_points(cams, fitted):
    for k, (cam, (rpc, _)) in enumerate(zip(cams, fitted)):
        lon, lat, h, r, c = _random_ground(cam, 500, seed=k)
        pr, pc = rpc.project(lon, lat, h)
        assert np.abs(pr - r).max() < 0.01 and np.abs(pc - c).max() < 0.01


def test_gdal_rpc_transformer_agrees_with_pixel_centre_convention(cams, fitted):
    """GDAL's transformer works in pixel-corner coordinates: centre (r, c) ↔ (r + ½, c + ½)."""
    cam, (rpc, _) = cams[0], fitted[0]
    lon, lat, h, r, c = _random_ground(cam, 200, seed=5)
    with RPCTransformer(rpc.to_rasterio()) as tr:
        gr, gc = tr.rowcol(lon, lat, zs=h, op=lambda v: v)
    assert np.abs(np.asarray(gr) - 0.5 - r).max() < 0.01
    assert np.abs(np.asarray(gc) - 0.5 - c).max() < 0.01


def test_rpc_survives_geotiff_tags(tmp_path, cams, fitted):
    cam, (rpc, _) = cams[2], fitted[2]
    path = write_raster(tmp_path / "img.tif", np.zeros(cam.shape, np.uint16), rpcs=rpc.to_rasterio())
    back = RPCModel.from_file(path)
    lon, lat, h, r, c = _random_ground(cam, 100, seed=9)
    br, bc = back.project(lon, lat, h)
    assert np.abs(br - r).max() < 0.01 and np.abs(bc - c).max() < 0.01


def test_fit_rejects_empty_height_range(cams):
    with pytest.raises(InputError):
        fit_rpc(cams[0], CRS, (100.0, 100.0))
