"""Building mask → building instances → pixel-exact boundary rings (holes kept).

The mask is read as instance ids: a binary mask (bool, or integers 0/1) has one id, an
integer raster with more values keeps its instances apart, and a probability raster
(floats in [0, 1]) is thresholded at 0.5. Instances are split further into 4-connected
components and, when an nDSM is given, at roof-height jumps (``max_step`` metres), so
touching buildings of different heights separate. Rings are traced by the Numba kernels
in :mod:`lod3d.kernels.outline_trace` for the whole tile at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lod3d.errors import InputError
from lod3d.kernels.outline_trace import label_instances, trace_rings

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
    labels: np.ndarray       # the label raster (int32) the rings were traced on

    def __len__(self) -> int:
        return len(self.ids)


def mask_ids(mask: np.ndarray, nodata=None, name: str = "mask") -> tuple[np.ndarray, bool]:
    """Instance ids (an integer array, 0 = background) of a mask array, and whether it was
    binary. Integer masks without nodata are used as they are, not copied."""
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
            ids = np.where(valid, data, 0).astype(np.int64)
        else:
            ids = (valid & (np.nan_to_num(data) >= 0.5)).astype(np.int64)
    elif data.dtype.kind == "b":
        ids = data.astype(np.int64)
    elif data.dtype.kind in "iu":
        ids = data if nodata is None else np.where(data != nodata, data, 0)   # no copy when possible
        if ids.dtype.kind == "u" and ids.dtype.itemsize == 8:
            ids = ids.astype(np.int64)
        if ids.min(initial=0) < 0:
            raise InputError(f"{name}: negative values in an integer mask (min {ids.min()})")
    else:
        raise InputError(f"{name}: unsupported mask data type {data.dtype}")
    binary = ids.max(initial=0) <= 1
    return ids, binary


def trace_buildings(ids: np.ndarray, *, binary: bool, heights: np.ndarray | None = None,
                    max_step: float = 2.0, min_area_px: float = 8.0,
                    min_hole_px: float = 8.0) -> Rings:
    """Instances of ``ids`` as boundary rings; buildings and holes below the minimum
    areas (in pixels) are dropped. With ``binary`` the output ids number the buildings
    1..n in raster order; otherwise they are the input instance ids and an instance in
    several pieces keeps its largest piece."""
    hgt = np.zeros((0, 0)) if heights is None else np.asarray(heights, dtype=np.float64)
    labels, source = label_instances(ids, hgt, float(max_step))
    xy, offsets, ring_label, ring_area = trace_rings(labels)
    n_labels = len(source) - 1
    outer = ring_area > 0
    building_area = np.bincount(ring_label, weights=ring_area, minlength=n_labels + 1)
    keep_label = building_area >= min_area_px
    keep_label[0] = False
    if not binary:  # one piece per instance: the largest
        order = np.lexsort((-building_area[1:], source[1:]))
        first = np.ones(len(order), dtype=bool)
        first[1:] = source[1:][order][1:] != source[1:][order][:-1]
        largest = np.zeros(n_labels + 1, dtype=bool)
        largest[order[first] + 1] = True
        keep_label &= largest
    keep_ring = keep_label[ring_label] & (outer | (-ring_area >= min_hole_px))
    rings = np.nonzero(keep_ring)[0]
    rings = rings[np.lexsort((~outer[rings], ring_label[rings]))]   # by label, outer first
    lengths = np.diff(offsets)[rings]
    starts = offsets[:-1][rings]
    gather = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths) \
        + np.arange(lengths.sum())
    labels_kept = ring_label[rings][outer[rings]]
    per_building = np.bincount(np.searchsorted(labels_kept, ring_label[rings]), minlength=len(labels_kept))
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    kept_area = np.bincount(ring_label[rings], weights=ring_area[rings], minlength=n_labels + 1)
    ids_out = np.arange(1, len(labels_kept) + 1) if binary else source[labels_kept]
    return Rings(
        xy=xy[gather],
        ring_offsets=np.concatenate(([0], np.cumsum(lengths))).astype(np.int64),
        building_offsets=np.concatenate(([0], np.cumsum(per_building))).astype(np.int64),
        ids=np.asarray(ids_out, dtype=np.int64),
        area_px=kept_area[labels_kept],
        cut=np.isin(labels_kept, border),
        label=labels_kept.astype(np.int64),
        labels=labels,
    )
