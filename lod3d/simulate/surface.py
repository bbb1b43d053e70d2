"""The simulated scene as the sensor renderer sees it: a fine 2.5-D surface with materials."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from affine import Affine

__all__ = ["SurfaceModel", "KIND_GROUND", "KIND_ROAD", "KIND_ROOF", "KIND_TREE"]

KIND_GROUND, KIND_ROAD, KIND_ROOF, KIND_TREE = 0, 1, 2, 3


@dataclass
class SurfaceModel:
    """A north-up grid of square cells (``transform``, ``crs``) finer than the sensor GSD.

    ``height``: top-surface height at cell centres (m, WGS84 ellipsoidal), float32.
    ``albedo``: reflectance of the top surface, in [0, 1], float32.
    ``wall_albedo``: reflectance of the vertical faces that rise at this cell (facades,
    trunk/crown sides), float32.
    ``kind``: uint8 surface class (``KIND_*``), for statistics and tests.
    """

    transform: Affine
    crs: str
    height: np.ndarray
    albedo: np.ndarray
    wall_albedo: np.ndarray
    kind: np.ndarray

    @property
    def res(self) -> float:
        return float(self.transform.a)

    @property
    def shape(self) -> tuple[int, int]:
        return self.height.shape
