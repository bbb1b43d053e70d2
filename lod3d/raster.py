"""A georeferenced array: the form rasters take between stages."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from affine import Affine

from .io.raster import read_raster, write_raster

__all__ = ["Raster"]


@dataclass
class Raster:
    """``data`` (2-D, or bands-first 3-D) on the grid ``transform``/``crs``.

    ``nodata`` marks invalid cells (NaN for float rasters by convention); ``tags`` are
    written as GeoTIFF metadata (e.g. the vertical datum of heights).
    """

    data: np.ndarray
    transform: Affine
    crs: object
    nodata: float | None = None
    tags: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.data.shape[-2:]

    @property
    def res(self) -> float:
        """Cell size in CRS units (grids are square-celled)."""
        return float(self.transform.a)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of the grid's outer edges (north-up grids)."""
        h, w = self.shape
        x0, y0 = self.transform @ (0, 0)
        x1, y1 = self.transform @ (w, h)
        return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)

    def with_data(self, data: np.ndarray, **changes) -> "Raster":
        """The same grid with other values (and optionally other nodata/tags)."""
        return replace(self, data=data, **changes)

    def write(self, path, cog: bool = False):
        """Write as a (Cloud-Optimized) GeoTIFF, atomically."""
        return write_raster(path, self.data, transform=self.transform, crs=self.crs,
                            nodata=self.nodata, tags=self.tags, cog=cog)

    @classmethod
    def read(cls, path, band: int | None = 1) -> "Raster":
        """Read a GeoTIFF (one band by default; ``band=None`` for all)."""
        data, profile = read_raster(path, band=band)
        return cls(data, profile["transform"], profile["crs"], profile.get("nodata"),
                   profile.get("tags", {}))
