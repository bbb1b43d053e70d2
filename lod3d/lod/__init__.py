"""LOD0 / LoD1.2 / LoD1.3 / LoD2.2 building models from footprints, DSM and DTM (see :mod:`.build`)."""

from .build import build_building, build_buildings
from .roof import RoofFit, fit_roof
from .solid import envelope_solid, roof_height
from .stage import LOD

__all__ = ["build_building", "build_buildings", "RoofFit", "fit_roof", "envelope_solid", "roof_height", "LOD"]
