"""Terrain: DTM and nDSM from a DSM or a point cloud (see :mod:`lod3d.terrain.dtm`)."""

from .dtm import TerrainOptions, check_dsm_grid, dtm_from_array, terrain_from_dsm

__all__ = ["TerrainOptions", "check_dsm_grid", "dtm_from_array", "terrain_from_dsm"]
