"""Touching buildings → instances: a binary building mask is cut into one instance per
building along straight party walls where the nDSM or the ortho shows a change between
the roofs either side (see :mod:`lod3d.kernels.outline_instances` for the algorithm).
The result is an instance-id raster that the tracing keeps apart
(:func:`.polygonize.trace_buildings`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lod3d.errors import InputError
from lod3d.kernels.outline_instances import separate_instances
from lod3d.raster import Raster

from .polygonize import mask_ids

__all__ = ["InstanceParams", "separate"]


@dataclass(frozen=True)
class InstanceParams:
    """Evidence a party-wall cut needs (medians along the cut) and the smallest pieces."""

    step_m: float = 1.0          # height step between the roofs either side (m)
    step_rel: float = 0.1        # relative ortho step between the roofs either side
    ridge_pitch: float = 0.25    # change of roof pitch (rise / run) across a ridge, valley or
                                 # hip line, where the ortho step is shading, no party wall
    ridge_hump: float = 0.06     # mean pitch (rise / run) up to a line from the roof up to
    hump_reach_m: float = 4.0    # this far either side: a ridge, even where the stereo nDSM
                                 # rounds it off (the tone step there is shading too)
    valley_pitch: float = 0.3    # a valley (change of pitch) along the line, two roofs sloping
    valley_rel: float = 0.05     # down to a party wall, with this relative ortho step there
    min_len_m: float = 4.0       # shortest cut
    min_width_m: float = 3.0     # narrowest building a cut leaves on either side
    min_area_m2: float = 20.0    # smallest piece; smaller ones rejoin a neighbour


def _grey(ortho: Raster, shape, name: str) -> np.ndarray:
    data = np.asarray(ortho.data, dtype=np.float64)
    if data.ndim == 3:
        data = data.mean(axis=0)
    if data.shape != shape:
        raise InputError(f"{name}: shape {data.shape} differs from the mask's {shape}")
    if ortho.nodata is not None and not np.isnan(ortho.nodata):
        data = np.where(data == ortho.nodata, np.nan, data)
    return data


def separate(mask: Raster, ndsm: Raster | None, ortho: Raster | None,
             params: InstanceParams = InstanceParams(), name: str = "mask") -> np.ndarray:
    """Instance ids (int32, 0 = background) of ``mask`` with touching buildings cut apart.

    The mask's buildings are its non-zero cells (an instance raster is flattened to
    building / not building first); ``ndsm`` and ``ortho`` (grey or multi-band) are on the
    mask's grid, either may be None.
    """
    ids = mask_ids(mask.data, mask.nodata, name)
    shape = ids.shape
    heights = np.zeros((0, 0))
    if ndsm is not None:
        if ndsm.shape != shape:
            raise InputError(f"ndsm: shape {ndsm.shape} differs from the mask's {shape}")
        heights = np.asarray(ndsm.data, dtype=np.float64)
    grey = np.zeros((0, 0)) if ortho is None else _grey(ortho, shape, "ortho")
    px = abs(mask.transform.a)
    px_area = abs(mask.transform.a * mask.transform.e - mask.transform.b * mask.transform.d)
    return separate_instances(ids > 0, heights, grey, params.step_m, params.step_rel,
                              params.ridge_pitch * px, params.ridge_hump * px,
                              max(4, int(round(params.hump_reach_m / px))),
                              params.valley_pitch * px, params.valley_rel,
                              max(2, int(round(params.min_len_m / px))),
                              max(2, int(round(params.min_width_m / px))),
                              max(1, int(round(params.min_area_m2 / px_area))))
