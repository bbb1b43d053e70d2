"""Building mask → building instances → pixel-exact boundary rings (holes kept).

The mask is read as instance ids: a binary mask (bool, or integers 0/1) has one id, an
integer raster with more values keeps its instances apart, and a probability raster
(floats in [0, 1]) is thresholded at 0.5. Instances are split further into 4-connected
components and, when an nDSM is given, at roof-height jumps (``max_step`` metres), so
touching buildings of different heights separate. Labelling, tracing and the choice of
kept buildings and holes are one call of the Numba kernel
:func:`lod3d.kernels.outline_trace.polygonize_ids` for the whole tile, so a mask is read
in a few compiled passes instead of one numpy pass per step; an int32 instance raster
without heights (the usual one) is traced on its ids, which then serve as the labels
(:func:`lod3d.kernels.outline_trace.polygonize_instances`: no label raster is written).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lod3d.errors import InputError
from lod3d.kernels.outline_trace import polygonize_ids, polygonize_instances

__all__ = ["Rings", "mask_ids", "trace_buildings"]


@dataclass
class Rings:
    """Boundary rings of the kept buildings, in pixel-corner coordinates (x = col, y = row).

    Building b owns rings ``building_offsets[b]:building_offsets[b+1]``, its outer ring
    first; ring r is ``xy[ring_offsets[r]:ring_offsets[r+1]]`` (no closing repeat).
    """

    xy: np.ndarray
    ring_offsets: np.ndarray
    building_offsets: np.ndarray
    ids: np.ndarray          # output id of each building
    area_px: np.ndarray      # pixel area of each building (outer minus holes)
    cut: np.ndarray          # building touches the raster border (cut by the tile)
    label: np.ndarray        # label of each building in ``labels``
    labels: np.ndarray       # the label raster (int32) the rings were traced on: building
                             # b's pixels are ``label[b]``; an instance raster is its own
                             # (specks of an id, apart from all, may share the id's label)

    def __len__(self) -> int:
        return len(self.ids)


def mask_ids(mask: np.ndarray, nodata=None, name: str = "mask") -> np.ndarray:
    """Instance ids (an integer array, 0 = background) of a mask array. Integer masks
    without nodata are used as they are, not copied; their range is checked by
    :func:`trace_buildings` from the kernel's pass (no separate min/max pass here)."""
    data = np.asarray(mask)
    if data.ndim != 2:
        raise InputError(f"{name}: expected a single-band 2-D mask, got shape {data.shape}")
    if nodata is not None and isinstance(nodata, float) and np.isnan(nodata):
        nodata = None
    if data.dtype.kind == "f":
        valid = np.isfinite(data) if nodata is None else np.isfinite(data) & (data != nodata)
        values = data[valid]
        if values.size and (values.min() < 0 or (values.max() > 1 and np.any(values != np.round(values)))):
            raise InputError(f"{name}: float mask with values outside [0, 1] that are not integer ids "
                             f"(range {values.min():g}..{values.max():g})")
        if values.size and np.all(values == np.round(values)):
            return np.where(valid, data, 0).astype(np.int64)
        return (valid & (np.nan_to_num(data) >= 0.5)).astype(np.int64)
    if data.dtype.kind == "b":
        return data.view(np.uint8)
    if data.dtype.kind in "iu":
        ids = data if nodata is None else np.where(data != nodata, data, 0)   # no copy when possible
        if ids.dtype.kind == "u" and ids.dtype.itemsize == 8:
            ids = ids.astype(np.int64)
        return ids
    raise InputError(f"{name}: unsupported mask data type {data.dtype}")


def trace_buildings(mask: np.ndarray, nodata=None, *, heights: np.ndarray | None = None,
                    max_step: float = 2.0, min_area_px: float = 8.0, min_hole_px: float = 8.0,
                    name: str = "mask") -> Rings:
    """Instances of the mask array (see :func:`mask_ids`) as boundary rings; buildings and
    holes below the minimum areas (in pixels) are dropped. A binary mask's buildings are
    numbered 1..n in raster order; an instance raster's keep their ids, and an instance in
    several pieces keeps its largest piece."""
    ids = mask_ids(mask, nodata, name)
    if heights is None and ids.dtype == np.int32 and ids.flags.c_contiguous and ids.flags.writeable:
        # the usual instance raster: its ids may serve as the labels (no label raster);
        # other layouts would compile the kernels (the regularizer's too) once more
        labels, lo, _, xy, ring_off, b_off, b_id, area, cut, label = polygonize_instances(
            ids, float(min_area_px), float(min_hole_px))
    else:
        hgt = np.zeros((0, 0)) if heights is None else np.asarray(heights, dtype=np.float64)
        labels, lo, _, xy, ring_off, b_off, b_id, area, cut, label = polygonize_ids(
            ids, hgt, float(max_step), float(min_area_px), float(min_hole_px))
    if lo < 0:
        raise InputError(f"{name}: negative values in an integer mask (min {lo})")
    return Rings(xy=xy, ring_offsets=ring_off, building_offsets=b_off, ids=b_id, area_px=area,
                 cut=cut, label=label, labels=labels)
