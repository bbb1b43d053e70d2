"""The ``lod`` pipeline stage: footprints + DSM + DTM -> buildings (CityJSON models)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import InputError
from ..pipeline import register_stage
from ..progress import progress
from .build import build_buildings

__all__ = ["LOD"]


@register_stage
class LOD:
    """Build LOD0 and, per ``lods``, LoD1.2 and LoD2.2 for every footprint.

    Reads ``dsm``, ``dtm`` (:class:`lod3d.raster.Raster`, same CRS) and ``footprints``
    (list of ``(id, shapely Polygon)`` in that CRS), and the true ``ortho`` when present
    (the walls between parts of different heights then follow its edges rather than the
    stereo DSM's blurred steps); writes ``buildings``.
    """

    name = "lod"
    reads = ("dsm", "dtm", "footprints")
    writes = ("buildings",)

    def __init__(self, lods=(0, 1, 2)):
        bad = [v for v in lods if v not in (0, 1, 2)]
        if bad:
            raise InputError(f"--lod: unknown level(s) {bad}; choose from 0, 1, 2")
        self.lods = tuple(sorted(set(lods)))

    def __call__(self, products: Mapping[str, Any]) -> dict[str, Any]:
        dsm, dtm = products["dsm"], products["dtm"]
        if dsm.crs is not None and dtm.crs is not None and dsm.crs != dtm.crs:
            raise InputError(f"DSM and DTM are in different CRS ({dsm.crs} vs {dtm.crs}); reproject one first")
        bar = lambda it: progress(it, desc="lod", unit="bldg")  # noqa: E731
        return {"buildings": build_buildings(products["footprints"], dsm, dtm, self.lods, progress=bar,
                                             ortho=products.get("ortho"))}
