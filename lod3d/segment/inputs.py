"""Turn an ortho and an nDSM into the normalized channel stack a segmentation model reads.

No torch here: the classical fallback and the stage's input checks use it too.

Channels are named, so a checkpoint records what it was trained on and a mismatch is
caught before inference:

- ``pan`` (one-band ortho) or ``red``/``green``/``blue`` (three-band ortho): scaled per
  raster by robust percentiles to [-1, 1], which makes the model indifferent to the
  sensor's bit depth and gain;
- ``nir`` (a fourth ortho band), scaled the same way, and ``ndvi`` computed from it;
- ``ndsm``: height above ground in metres divided by :data:`NDSM_SCALE_M`, clipped, with
  invalid cells set to 0 (ground).

Ortho and nDSM must describe the same area in the same CRS; an nDSM on another grid of that
CRS (other resolution or origin) is resampled bilinearly onto the ortho's grid, anything
else is refused with an :class:`~lod3d.errors.InputError` naming the file.
"""

from __future__ import annotations

import numpy as np
from rasterio.crs import CRS
from rasterio.warp import Resampling, reproject

from ..errors import InputError
from ..raster import Raster

__all__ = ["NORMALIZATION", "NDSM_SCALE_M", "channels_for", "stack_channels", "align_ndsm",
           "scale_band"]

NDSM_SCALE_M = 10.0
NORMALIZATION = {
    "image": "percentile", "p_low": 1.0, "p_high": 99.0, "range": [-1.0, 1.0],
    "ndsm": "metres/scale, clipped", "ndsm_scale_m": NDSM_SCALE_M, "ndsm_clip": [-0.5, 4.0],
}
_ORTHO_BANDS = {1: ("pan",), 3: ("red", "green", "blue"), 4: ("red", "green", "blue", "nir")}


def channels_for(n_ortho_bands: int, ndvi: bool = False) -> tuple[str, ...]:
    """The channel names produced for an ortho with that many bands (plus ``ndsm``)."""
    if n_ortho_bands not in _ORTHO_BANDS:
        raise InputError(f"ortho has {n_ortho_bands} bands; expected 1 (pan), 3 (RGB) or 4 (RGB+NIR)")
    names = _ORTHO_BANDS[n_ortho_bands]
    return names + (("ndvi",) if ndvi and "nir" in names else ()) + ("ndsm",)


def scale_band(band: np.ndarray, p_low: float = 1.0, p_high: float = 99.0) -> np.ndarray:
    """Robust linear scaling of one image band to [-1, 1]; non-finite cells become 0."""
    band = band.astype(np.float32, copy=False)
    valid = np.isfinite(band)
    if not valid.any():
        return np.zeros_like(band)
    sample = band[valid]
    if sample.size > 1_000_000:  # percentiles of a regular subsample: same answer, less time
        sample = sample[:: sample.size // 1_000_000]
    lo, hi = np.percentile(sample, [p_low, p_high])
    out = (band - lo) / max(float(hi - lo), 1e-6) * 2.0 - 1.0
    out = np.clip(out, -1.5, 1.5)
    out[~valid] = 0.0
    return out.astype(np.float32)


def scale_ndsm(ndsm: np.ndarray) -> np.ndarray:
    """nDSM in metres to the model's scale; invalid cells become ground (0)."""
    lo, hi = NORMALIZATION["ndsm_clip"]
    out = np.clip(ndsm.astype(np.float32) / NDSM_SCALE_M, lo, hi)
    out[~np.isfinite(out)] = 0.0
    return out


def align_ndsm(ortho: Raster, ndsm: Raster, ndsm_name: str = "nDSM") -> np.ndarray:
    """The nDSM's heights on the ortho's grid (NaN where it has none).

    Same grid: returned as is. Same CRS, other grid: bilinear resampling. No CRS on one of
    them, different CRSs, or no overlap: :class:`InputError`.
    """
    heights = ndsm.data if ndsm.data.ndim == 2 else ndsm.data[0]
    heights = heights.astype(np.float32)
    if ndsm.nodata is not None and np.isfinite(ndsm.nodata):
        heights = np.where(heights == ndsm.nodata, np.nan, heights)
    same_crs = (ortho.crs is None and ndsm.crs is None) or (
        ortho.crs is not None and ndsm.crs is not None and CRS.from_user_input(ortho.crs) == CRS.from_user_input(ndsm.crs))
    if not same_crs:
        raise InputError(f"{ndsm_name}: CRS {ndsm.crs} differs from the ortho's ({ortho.crs}); "
                         "reproject it onto the ortho's grid first")
    if ndsm.shape == ortho.shape and ndsm.transform.almost_equals(ortho.transform, precision=1e-6 * abs(ortho.res)):
        return heights
    if ortho.crs is None:
        raise InputError(f"{ndsm_name}: grid differs from the ortho's and neither has a CRS to resample with")
    ox0, oy0, ox1, oy1 = ortho.bounds
    nx0, ny0, nx1, ny1 = ndsm.bounds
    if nx0 >= ox1 or nx1 <= ox0 or ny0 >= oy1 or ny1 <= oy0:
        raise InputError(f"{ndsm_name}: does not overlap the ortho ({ndsm.bounds} vs {ortho.bounds})")
    out = np.full(ortho.shape, np.nan, dtype=np.float32)
    reproject(heights, out, src_transform=ndsm.transform, src_crs=ndsm.crs, src_nodata=np.nan,
              dst_transform=ortho.transform, dst_crs=ortho.crs, dst_nodata=np.nan,
              resampling=Resampling.bilinear)
    return out


def stack_channels(ortho: Raster, ndsm: Raster, channels: tuple[str, ...] | list[str],
                   ortho_name: str = "ortho", ndsm_name: str = "nDSM") -> np.ndarray:
    """The ``(C, H, W)`` float32 model input with the named ``channels``, on the ortho's grid.

    Raises :class:`InputError` when the ortho cannot provide a requested channel.
    """
    bands = ortho.data[None] if ortho.data.ndim == 2 else ortho.data
    bands = bands.astype(np.float32)
    if ortho.nodata is not None and np.isfinite(ortho.nodata):
        bands = np.where(bands == ortho.nodata, np.nan, bands)
    have = _ORTHO_BANDS.get(bands.shape[0])
    if have is None:
        raise InputError(f"{ortho_name}: {bands.shape[0]} bands; expected 1 (pan), 3 (RGB) or 4 (RGB+NIR)")
    by_name = dict(zip(have, bands))
    lo, hi = NORMALIZATION["p_low"], NORMALIZATION["p_high"]
    out = []
    for name in channels:
        if name == "ndsm":
            out.append(scale_ndsm(align_ndsm(ortho, ndsm, ndsm_name)))
        elif name == "pan" and name not in by_name and {"red", "green", "blue"} <= set(by_name):
            out.append(scale_band((by_name["red"] + by_name["green"] + by_name["blue"]) / 3.0, lo, hi))
        elif name == "ndvi" and "nir" in by_name:
            nir, red = by_name["nir"], by_name["red"]
            ndvi = (nir - red) / np.maximum(nir + red, 1e-6)
            out.append(np.nan_to_num(np.clip(ndvi, -1, 1), nan=0.0).astype(np.float32))
        elif name in by_name:
            out.append(scale_band(by_name[name], lo, hi))
        else:
            raise InputError(f"{ortho_name}: has bands {list(have)}, the model needs channel {name!r} "
                             f"(model channels: {list(channels)})")
    return np.stack(out).astype(np.float32)
