"""Read and write georeferenced rasters (GeoTIFF/COG) through rasterio, atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.errors import RasterioIOError

from ..errors import InputError
from .atomic import atomic_path

__all__ = ["write_raster", "read_raster"]


def write_raster(path, array: np.ndarray, *, transform=None, crs=None, nodata=None,
                 tags: dict | None = None, band_tags: list[dict] | None = None,
                 rpcs=None, cog: bool = False, compress: str = "deflate") -> Path:
    """Write a 2-D (or bands-first 3-D) array as a tiled, compressed GeoTIFF.

    ``rpcs`` (rasterio ``RPC``) writes GDAL RPC tags for sensor-geometry images.
    ``cog`` writes a Cloud-Optimized GeoTIFF with overviews. The file appears only when
    complete.
    """
    path = Path(path)
    data = array[None] if array.ndim == 2 else array
    profile = dict(
        count=data.shape[0], height=data.shape[1], width=data.shape[2], dtype=data.dtype,
        transform=transform, crs=crs, nodata=nodata, compress=compress,
    )
    if rpcs is not None:
        profile["rpcs"] = rpcs
    if data.shape[1] >= 16 and data.shape[2] >= 16:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    if compress == "deflate" and np.issubdtype(data.dtype, np.floating):
        profile["predictor"] = 3
    driver = "COG" if cog else "GTiff"
    with atomic_path(path) as tmp:
        if cog:
            gtiff = tmp.with_name(tmp.name + ".src.tif")
            try:
                _write_gtiff(gtiff, data, profile, tags, band_tags)
                with rasterio.open(gtiff) as src:
                    rasterio.shutil.copy(src, tmp, driver=driver, compress=compress,
                                         overviews="AUTO")
            finally:
                gtiff.unlink(missing_ok=True)
        else:
            _write_gtiff(tmp, data, profile, tags, band_tags)
    return path


def _write_gtiff(path, data, profile, tags, band_tags):
    with rasterio.open(path, "w", driver="GTiff", **profile) as dst:
        dst.write(data)
        if tags:
            dst.update_tags(**{k: str(v) for k, v in tags.items()})
        for i, bt in enumerate(band_tags or [], start=1):
            dst.update_tags(i, **{k: str(v) for k, v in bt.items()})


def read_raster(path, band: int | None = 1):
    """Read a raster: ``(array, profile)``; ``band=None`` reads all bands (bands first).

    A missing or unreadable file raises :class:`InputError` naming it.
    """
    try:
        with rasterio.open(path) as src:
            arr = src.read() if band is None else src.read(band)
            profile = src.profile.copy()
            profile["tags"] = src.tags()
    except RasterioIOError as exc:
        raise InputError(f"{path}: cannot read raster ({exc})") from None
    return arr, profile
