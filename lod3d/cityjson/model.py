"""In-memory building models, the form every producer hands to the CityJSON writer.

Coordinates are metres in the model's projected CRS (x, y) and metres of height (z).
A :class:`Surface` is one planar polygon: an outer ring and optional inner rings, each an
``(n, 3)`` array, not closed (first vertex not repeated), the outer ring counter-clockwise
when seen from outside the solid (so normals point outwards, as CityJSON requires).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Surface", "Solid", "BuildingPart", "Building", "SEMANTIC_TYPES"]

SEMANTIC_TYPES = ("RoofSurface", "WallSurface", "GroundSurface")


@dataclass
class Surface:
    """One planar face of a shell: rings of 3-D points and its semantic class."""

    rings: list[np.ndarray]
    semantic: str
    attributes: dict = field(default_factory=dict)


@dataclass
class Solid:
    """A closed exterior shell at one LoD ("1.2", "1.3" or "2.2")."""

    lod: str
    surfaces: list[Surface]


@dataclass
class BuildingPart:
    """A part of a building with one roof structure; holds its solids per LoD."""

    id: str
    solids: list[Solid]
    attributes: dict = field(default_factory=dict)


@dataclass
class Building:
    """A building: its 2-D footprint (shapely Polygon/MultiPolygon), ground height, parts.

    The writer emits the footprint at ``ground_z`` as the LoD0 geometry of the Building and
    each part as a BuildingPart child.
    """

    id: str
    footprint: object
    ground_z: float
    parts: list[BuildingPart]
    attributes: dict = field(default_factory=dict)
