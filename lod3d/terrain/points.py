"""Point clouds to DSM + DTM: LAS/LAZ through laspy, anything PDAL reads through its binding.

The DSM takes a high quantile of the points in each cell (the max would keep isolated
high blunders), small holes are filled by a membrane from their rim; the DTM is computed
by :func:`lod3d.terrain.dtm.dtm_from_array` on the per-cell *lowest* points, which see
the ground through vegetation; a point is ground when it lies within ``dz`` of the DTM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from lod3d.errors import InputError
from lod3d.kernels.terrain_membrane import membrane_fit
from lod3d.kernels.terrain_points import cell_heights
from lod3d.raster import Raster

from .dtm import TerrainOptions, dtm_from_array

__all__ = ["PointCloud", "read_points", "rasterize_points", "terrain_from_points"]


@dataclass
class PointCloud:
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    crs: object  # pyproj/rasterio CRS or None


def read_points(path, bounds=None, crs=None) -> PointCloud:
    """Read x, y, z of a LAS/LAZ (laspy) or any PDAL-readable file, clipped to ``bounds``.

    ``bounds`` = (xmin, ymin, xmax, ymax) in the cloud's CRS; ``crs`` overrides the file's.
    Raises :class:`InputError` naming the file if unreadable or no point falls in bounds.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.suffix.lower() in (".las", ".laz"):
        x, y, z, file_crs = _read_laspy(path)
    else:
        x, y, z, file_crs = _read_pdal(path)
    if bounds is not None:
        xmin, ymin, xmax, ymax = bounds
        keep = (x >= xmin) & (x < xmax) & (y >= ymin) & (y < ymax)
        x, y, z = x[keep], y[keep], z[keep]
    if x.size == 0:
        where = f" inside bounds {tuple(bounds)}" if bounds is not None else ""
        raise InputError(f"{path}: no points{where}")
    return PointCloud(x, y, z, crs if crs is not None else file_crs)


def _read_laspy(path: Path):
    import laspy

    try:
        las = laspy.read(path)
    except Exception as exc:  # laspy raises several types for corrupt files
        raise InputError(f"{path}: cannot read LAS/LAZ ({exc})") from None
    try:
        crs = las.header.parse_crs()
    except Exception:
        crs = None
    return (np.asarray(las.x, np.float64), np.asarray(las.y, np.float64),
            np.asarray(las.z, np.float64), crs)


def _read_pdal(path: Path):
    try:
        import pdal
    except ImportError:
        raise InputError(f"{path}: not LAS/LAZ, and reading other point formats needs PDAL "
                         "(pip install 'lod3d[pdal]' where libpdal is installed)") from None
    pipeline = pdal.Reader(str(path)).pipeline()
    try:
        pipeline.execute()
    except RuntimeError as exc:
        raise InputError(f"{path}: PDAL cannot read it ({exc})") from None
    arr = np.concatenate(pipeline.arrays)
    wkt = pipeline.srswkt2 or None
    return (arr["X"].astype(np.float64), arr["Y"].astype(np.float64),
            arr["Z"].astype(np.float64), wkt)


def rasterize_points(cloud: PointCloud, res: float, bounds=None, q_high: float = 0.95,
                     fill_hole_m: float = 3.0) -> tuple[Raster, Raster]:
    """``(dsm, lowest)`` rasters at ``res`` over ``bounds`` (default: the cloud's extent).

    DSM: the ``q_high`` quantile of each cell, holes up to ``fill_hole_m`` from data
    filled. Lowest: each cell's lowest point, NaN where empty.
    """
    if bounds is None:
        bounds = (math.floor(cloud.x.min() / res) * res, math.floor(cloud.y.min() / res) * res,
                  (math.floor(cloud.x.max() / res) + 1) * res, (math.floor(cloud.y.max() / res) + 1) * res)
    xmin, ymin, xmax, ymax = bounds
    w, h = int(round((xmax - xmin) / res)), int(round((ymax - ymin) / res))
    col = np.floor((cloud.x - xmin) / res).astype(np.int64)
    row = np.floor((ymax - cloud.y) / res).astype(np.int64)
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    cell = (row * w + col)[inside]
    z = cloud.z[inside].astype(np.float32)
    order = np.lexsort((z, cell))
    low, high = cell_heights(cell[order], z[order], h * w, q_high)
    low, high = low.reshape(h, w), high.reshape(h, w)
    holes = np.isnan(high)
    if holes.any() and not holes.all():
        from scipy.ndimage import distance_transform_edt  # slow to import: only when needed

        filled = membrane_fit(np.nan_to_num(high).astype(np.float64), (~holes).astype(np.float64),
                              0.01, 3, np.empty((0, 0)))
        small = holes & (distance_transform_edt(holes) * res <= fill_hole_m)
        high[small] = filled[small]
    transform = Affine(res, 0, xmin, 0, -res, ymax)
    return (Raster(high, transform, cloud.crs, float("nan"), {"PRODUCT": "dsm"}),
            Raster(low, transform, cloud.crs, float("nan"), {"PRODUCT": "lowest"}))


def terrain_from_points(cloud: PointCloud, res: float = 0.5, bounds=None,
                        options: TerrainOptions = TerrainOptions(), dz: float = 0.5,
                        name: str = "point cloud"):
    """``(dsm, dtm, ndsm, ground)``: rasters and a per-point ground mask of ``cloud``."""
    if cloud.crs is not None and CRS.from_user_input(cloud.crs).is_geographic:
        raise InputError(f"{name}: CRS is geographic (degrees); reproject the cloud or pass "
                         "a projected --crs")
    dsm, lowest = rasterize_points(cloud, res, bounds)
    dtm, _ = dtm_from_array(lowest.data, res, None, options, name)
    valid = np.isfinite(dsm.data)
    ndsm = np.where(valid, np.maximum(dsm.data - dtm, 0), np.nan).astype(np.float32)
    xmin, ymax = dsm.transform.c, dsm.transform.f
    h, w = dtm.shape
    col = np.clip(np.floor((cloud.x - xmin) / res).astype(np.int64), 0, w - 1)
    row = np.clip(np.floor((ymax - cloud.y) / res).astype(np.int64), 0, h - 1)
    ground = np.abs(cloud.z - dtm[row, col]) < dz
    return (dsm, Raster(dtm, dsm.transform, dsm.crs, None, {"PRODUCT": "dtm"}),
            Raster(ndsm, dsm.transform, dsm.crs, float("nan"), {"PRODUCT": "ndsm"}), ground)
