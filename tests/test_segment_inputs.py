"""Segmentation inputs, the classical fallback and the stage on small synthetic rasters (no torch)."""

import numpy as np
import pytest
from affine import Affine

from lod3d.errors import InputError
from lod3d.pipeline import Pipeline
from lod3d.raster import Raster
from lod3d.segment.classical import classical_probability
from lod3d.segment.inputs import align_ndsm, channels_for, scale_band, stack_channels

T = Affine(0.5, 0, 500000, 0, -0.5, 4800000)


def _scene(n=120, seed=0):
    """A flat-roofed building (6 m) and a rough tree crown (~7 m) on flat ground."""
    rng = np.random.default_rng(seed)
    ndsm = rng.normal(0, 0.05, (n, n)).astype(np.float32)
    ndsm[20:60, 20:70] = 6.0
    yy, xx = np.mgrid[:n, :n]
    crown = (yy - 90) ** 2 + (xx - 90) ** 2 < 12 ** 2
    ndsm[crown] = 7.0 + rng.normal(0, 1.5, crown.sum())
    ortho = (1000 + 200 * (ndsm > 3) + rng.normal(0, 20, (n, n))).astype(np.uint16)
    truth = np.zeros((n, n), bool)
    truth[20:60, 20:70] = True
    return Raster(ortho, T, "EPSG:32631"), Raster(ndsm, T, "EPSG:32631"), truth, crown


def test_channel_names_by_band_count():
    assert channels_for(1) == ("pan", "ndsm")
    assert channels_for(4, ndvi=True) == ("red", "green", "blue", "nir", "ndvi", "ndsm")
    with pytest.raises(InputError):
        channels_for(2)


def test_scale_band_is_robust_and_bounded():
    band = np.linspace(0, 4000, 10_000, dtype=np.float32).reshape(100, 100)
    band[0, 0] = np.nan
    out = scale_band(band)
    assert out[0, 0] == 0.0
    assert -1.5 <= out[np.isfinite(band)].min() < -0.95 and 0.95 < out.max() <= 1.5
    np.testing.assert_allclose(scale_band(band * 3 + 100), out, atol=1e-5)  # gain/offset invariant


def test_ndsm_on_another_grid_of_the_same_crs_is_resampled():
    ortho, ndsm, _, _ = _scene()
    coarse = Raster(ndsm.data[::2, ::2].copy(), T @ Affine.scale(2), "EPSG:32631")
    out = align_ndsm(ortho, coarse)
    assert out.shape == ortho.shape
    assert abs(np.nanmedian(out[25:55, 25:65]) - 6.0) < 0.1


def test_ndsm_grid_problems_are_refused_naming_the_file():
    ortho, ndsm, _, _ = _scene()
    with pytest.raises(InputError, match="ndsm.tif: CRS"):
        align_ndsm(ortho, Raster(ndsm.data, T, "EPSG:2154"), "ndsm.tif")
    far = Raster(ndsm.data, T @ Affine.translation(10_000, 0), "EPSG:32631")
    with pytest.raises(InputError, match="ndsm.tif: does not overlap"):
        align_ndsm(ortho, far, "ndsm.tif")


def test_stack_names_a_channel_the_ortho_lacks():
    ortho, ndsm, _, _ = _scene()
    x = stack_channels(ortho, ndsm, ("pan", "ndsm"))
    assert x.shape == (2, 120, 120) and x.dtype == np.float32
    np.testing.assert_allclose(x[1, 30, 30], 0.6, atol=1e-6)  # 6 m / 10 m scale
    with pytest.raises(InputError, match="o.tif: .*'nir'"):
        stack_channels(ortho, ndsm, ("red", "green", "blue", "nir", "ndsm"), ortho_name="o.tif")


def test_classical_keeps_the_roof_and_drops_the_tree():
    ortho, ndsm, truth, crown = _scene()
    mask = classical_probability(ndsm.data, 0.5) > 0.5
    inter, union = (mask & truth).sum(), (mask | truth).sum()
    assert inter / union > 0.9
    assert mask[crown].mean() < 0.1


def test_segment_stage_classical_in_a_pipeline():
    ortho, ndsm, truth, _ = _scene()
    out = Pipeline.from_names(["segment"], {"segment": {"method": "classical"}}).run({"ortho": ortho, "ndsm": ndsm})
    prob, mask = out["building_probability"], out["mask"]
    assert prob.transform == ortho.transform and mask.crs == ortho.crs
    assert mask.data.dtype == np.uint8 and prob.data.dtype == np.float32
    np.testing.assert_array_equal(mask.data, (prob.data > 0.5).astype(np.uint8))
    assert mask.data[30, 30] == 1 and mask.data[5, 100] == 0


def test_unknown_method_is_a_user_error():
    with pytest.raises(InputError, match="method"):
        Pipeline.from_names(["segment"], {"segment": {"method": "magic"}})
