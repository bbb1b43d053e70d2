"""The ``terrain`` pipeline stage: DSM -> DTM + nDSM (see :mod:`lod3d.terrain.dtm`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lod3d.pipeline import register_stage

from .dtm import TerrainOptions, terrain_from_dsm

__all__ = ["Terrain"]


@register_stage
class Terrain:
    """Adds ``dtm`` and ``ndsm`` (:class:`lod3d.raster.Raster`) computed from ``dsm``.

    Options are the fields of :class:`TerrainOptions` (e.g. ``max_object_m=250``) and
    ``tile_px``, the core size of the tiles a large DSM is cut into.
    """

    name = "terrain"
    reads = ("dsm",)
    writes = ("dtm", "ndsm")

    def __init__(self, tile_px: int = 4096, **options):
        self.options = TerrainOptions(**options)
        self.tile_px = tile_px

    def __call__(self, products: Mapping[str, Any]) -> dict[str, Any]:
        dtm, ndsm = terrain_from_dsm(products["dsm"], self.options, "dsm", self.tile_px)
        return {"dtm": dtm, "ndsm": ndsm}
