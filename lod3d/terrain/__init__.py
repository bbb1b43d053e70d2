"""Terrain: DTM and nDSM from a DSM or a point cloud (method: :mod:`lod3d.terrain.dtm`)."""

from .dtm import TerrainOptions, check_dsm_grid, dtm_from_array, terrain_from_dsm, tiled_dtm
from .points import PointCloud, read_points, rasterize_points, terrain_from_points
from .stage import Terrain

__all__ = ["TerrainOptions", "check_dsm_grid", "dtm_from_array", "terrain_from_dsm", "tiled_dtm",
           "PointCloud", "read_points", "rasterize_points", "terrain_from_points", "Terrain"]
