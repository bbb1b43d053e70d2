"""Terrain end to end: simulated Toulouse truth, real city models burnt into DSMs, real Giza.

The acceptance figures of issue 4 (full runs: ``benchmarks/terrain_acceptance.py`` and
``benchmarks/terrain_vs_bulldozer.py``).
"""

import numpy as np
import pytest
from affine import Affine

from lod3d.aoi import aoi
from lod3d.raster import Raster
from lod3d.terrain import dtm_from_array, terrain_from_dsm
from lod3d.terrain.synthetic import damage

pytestmark = pytest.mark.slow


def _scores(dsm, dtm, truth_dsm, truth_dtm, buildings):
    err = dtm - truth_dtm
    objects = buildings | (truth_dsm - truth_dtm > 2.5)
    nd = np.nan_to_num(dsm - dtm, nan=0.0) > 2.5
    return (np.sqrt(np.mean(err[~objects] ** 2)), np.sqrt(np.mean(err[buildings] ** 2)),
            (nd & objects).sum() / (nd | objects).sum())


def test_simulated_toulouse_acceptance():
    from lod3d.simulate.scene import generate_scene
    from lod3d.simulate.truth import rasterize_truth

    area = aoi("toulouse").crop(300)
    xmin, ymin, xmax, ymax = area.bounds
    scene = generate_scene((xmin - 50, ymin - 50, xmax + 50, ymax + 50), crs=area.crs, seed=7)
    truth = rasterize_truth(scene, Affine(0.5, 0, xmin, 0, -0.5, ymax), (600, 600))
    stereo_like = damage(truth.dsm, 0.3, 0.03, np.random.default_rng(7))
    dtm, _ = dtm_from_array(stereo_like, 0.5)
    open_rmse, bldg_rmse, iou = _scores(stereo_like, dtm, truth.dsm, truth.dtm, truth.buildings > 0)
    assert open_rmse <= 0.3 and bldg_rmse <= 0.5 and iou >= 0.95


@pytest.mark.parametrize("name", ["rotterdam_subset.json", "DH_01_subs.city.json", "delft.json"])
def test_real_city_models_burnt(shared_data, name):
    from lod3d.cityjson.rasterize import burn_cityjson

    city = burn_cityjson(shared_data / "cityjson" / "real" / name, res=0.5, pad=30.0)
    ok = np.isfinite(city.dsm.data) & np.isfinite(city.dtm.data)
    dtm, _ = dtm_from_array(np.where(ok, city.dsm.data, np.nan), 0.5)
    err = (dtm - city.dtm.data)[ok]
    bld = (city.building_id.data > 0)[ok]
    assert np.sqrt(np.mean(err[~bld] ** 2)) <= 0.3 and np.sqrt(np.mean(err[bld] ** 2)) <= 0.3


def test_giza_pyramid_removed_and_open_ground_kept(shared_data):
    dsm = Raster.read(shared_data / "peers" / "giza_pair" / "cars_dsm.tif")
    dtm, ndsm = terrain_from_dsm(dsm, name="cars_dsm.tif")
    z = np.where(dsm.data == dsm.nodata, np.nan, dsm.data)
    assert np.isfinite(dtm.data).all() and "EGM96" in dtm.crs.to_wkt()
    top = z[300:450, 250:400]  # the upper pyramid (~100-200 m EGM96)
    assert np.nanmedian(top - dtm.data[300:450, 250:400]) > 30
    assert np.nanmax(dtm.data[150:580, 130:530]) < 70  # no bump under the pyramid
    open_ground = np.isfinite(z)
    open_ground[150:650, 130:700] = False
    assert abs(np.nanmedian((z - dtm.data)[open_ground])) < 1.5
