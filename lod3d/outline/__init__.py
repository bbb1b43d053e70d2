"""Building outlines: mask → per-building polygons, regularized the way buildings are built.

``outline_mask(raster)`` runs the whole step on a :class:`lod3d.raster.Raster` mask and
returns :class:`Footprints`; :class:`Outline` is the same as a pipeline stage
(``mask`` [+ ``ndsm``, ``ortho``] → ``footprints``). With both an nDSM and an ortho, a
binary mask's touching buildings are first cut apart along their party walls
(:mod:`.instances`). Polygonization is in :mod:`.polygonize`, the regularization (MDL
segmentation in Numba, validity and overlap guarantees) in :mod:`.regularize`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from lod3d.errors import InputError
from lod3d.kernels.outline_trace import absorb_small_pieces, label_instances
from lod3d.pipeline import register_stage
from lod3d.raster import Raster

from .instances import InstanceParams, separate
from .polygonize import Rings, mask_ids, trace_buildings
from .regularize import Params, pixel_polygons, regularize

__all__ = ["Footprints", "InstanceParams", "Outline", "Params", "outline_mask", "polygonize_mask"]


@dataclass
class Footprints:
    """Footprints of one mask, aligned arrays (one entry per building)."""

    ids: np.ndarray            # int64 building ids
    polygons: np.ndarray       # shapely Polygons in the mask's CRS
    cut: np.ndarray            # touches the raster border: cut by the tile
    raw: np.ndarray            # pixel-exact outlines the polygons were fitted to
    fallback: np.ndarray       # regularization failed; simplified pixel outline used
    crs: Any = None
    params: Params = field(default_factory=Params)
    # the block (4-connected component of the mask, before any separation; 1..n in raster
    # order) of each building, and whether that block touches the raster border: a tiled
    # run splits a block once, whole, in a window that holds all of it
    block: np.ndarray | None = None
    block_cut: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def items(self) -> list:
        """The pipeline's ``footprints`` product: ``[(id, Polygon), ...]``."""
        return list(zip(self.ids.tolist(), self.polygons))


def _rings(mask: Raster, ndsm: Raster | None, max_step: float, min_area: float,
           min_hole: float, name: str, ortho: Raster | None = None,
           instances: InstanceParams | None = None, min_piece: float = 0.0) -> Rings:
    heights = None
    if ndsm is not None:
        if ndsm.shape != mask.shape:
            raise InputError(f"ndsm: shape {ndsm.shape} differs from the mask's {mask.shape}")
        heights = np.asarray(ndsm.data, dtype=np.float64)
    data, nodata = mask.data, mask.nodata
    px_area = abs(mask.transform.a * mask.transform.e - mask.transform.b * mask.transform.d)
    pieces = None if heights is None else mask_ids(data, nodata, name)
    if pieces is not None and pieces.max(initial=0) <= 1:
        # a binary mask only (an instance raster's ids are kept as given): each piece of a
        # cut block (or each block), split again at height jumps, is a building of its own
        # once the specks such a split leaves have rejoined their roof
        if instances is not None and ortho is not None:
            pieces = separate(mask, ndsm, ortho, instances, name)
        labels, source = label_instances(pieces, heights, float(max_step))
        data, nodata = absorb_small_pieces(labels, source, min_piece / px_area)[0], None
        heights = None   # the pieces are final: tracing must not split them again
    return trace_buildings(data, nodata, heights=heights, max_step=max_step,
                           min_area_px=min_area / px_area, min_hole_px=min_hole / px_area, name=name)


def _blocks(mask: Raster, rings: Rings, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Per building of ``rings``: its block (4-connected component of the mask's building
    cells, 1..n in raster order) and whether the block touches the raster border."""
    blocks, n = ndimage.label(mask_ids(mask.data, mask.nodata, name) > 0)
    # a building's block is the block of its first pixel in raster order, whose top-left
    # corner is its outer ring's first corner in (row, column) order
    w = blocks.shape[1] + 1
    key = rings.xy[:, 1] * w + rings.xy[:, 0]        # exact integers
    outer = rings.building_offsets[:-1]
    ends = np.stack([rings.ring_offsets[outer], rings.ring_offsets[outer + 1]], axis=1).ravel()
    first = np.minimum.reduceat(key, ends[:-1])[::2].astype(np.int64) if len(rings) else np.zeros(0, np.int64)
    block = blocks[first // w, first % w].astype(np.int64)
    edge = np.zeros(n + 1, bool)
    edge[np.concatenate([blocks[0], blocks[-1], blocks[:, 0], blocks[:, -1]])] = True
    edge[0] = False
    return block, edge[block]


def polygonize_mask(mask: Raster, ndsm: Raster | None = None, *, max_step: float = 2.0,
                    min_piece: float = 20.0, min_area: float = 2.0, min_hole: float = 2.0,
                    name: str = "mask") -> Footprints:
    """Pixel-exact (unregularized) building outlines of ``mask``, holes kept."""
    rings = _rings(mask, ndsm, max_step, min_area, min_hole, name, min_piece=min_piece)
    raw = pixel_polygons(rings, mask.transform)
    block, block_cut = _blocks(mask, rings, name)
    return Footprints(rings.ids, raw, rings.cut, raw, np.zeros(len(rings), dtype=bool), mask.crs,
                      block=block, block_cut=block_cut)


def outline_mask(mask: Raster, ndsm: Raster | None = None, ortho: Raster | None = None, *,
                 params: Params = Params(), instances: InstanceParams | None = InstanceParams(),
                 max_step: float = 2.0, min_piece: float = 20.0, min_area: float = 2.0,
                 min_hole: float = 2.0, name: str = "mask") -> Footprints:
    """Regularized footprints of every building in ``mask``.

    ``mask``: binary, instance-id or probability raster (see :func:`.polygonize.mask_ids`).
    ``ndsm``: optional heights on the same grid; touching buildings whose roofs differ by
    more than ``max_step`` metres are separated, but a piece such a jump cuts off that is
    smaller than ``min_piece`` (CRS units squared) rejoins its roof. ``ortho``: optional
    true ortho (grey or multi-band) on the same grid; with it and ``ndsm``, touching
    buildings are cut apart along party walls (``instances``; None: no cuts). Buildings
    smaller than ``min_area`` and holes smaller than ``min_hole`` (CRS units squared) are
    dropped.
    """
    rings = _rings(mask, ndsm, max_step, min_area, min_hole, name, ortho, instances, min_piece)
    polys, _, fallback = regularize(rings, mask.transform, params)
    raw = pixel_polygons(rings, mask.transform)
    block, block_cut = _blocks(mask, rings, name)
    return Footprints(rings.ids, polys, rings.cut, raw, fallback, mask.crs, params, block, block_cut)


@register_stage
class Outline:
    """Pipeline stage: building ``mask`` (and ``ndsm``, ``ortho`` when present) →
    ``footprints``; ``separate=False`` keeps touching buildings of one height together."""

    name = "outline"
    reads = ("mask",)
    writes = ("footprints",)

    def __init__(self, max_step: float = 2.0, min_piece: float = 20.0, min_area: float = 2.0,
                 min_hole: float = 2.0, separate: bool = True, **params):
        self.max_step = max_step
        self.min_piece = min_piece
        self.instances = InstanceParams() if separate else None
        self.min_area = min_area
        self.min_hole = min_hole
        self.params = Params(**params)

    def __call__(self, products: Mapping[str, Any]) -> dict[str, Any]:
        # as outline_mask, less the pixel outlines of every building (not a product)
        mask = products["mask"]
        rings = _rings(mask, products.get("ndsm"), self.max_step, self.min_area, self.min_hole,
                       "mask", products.get("ortho"), self.instances, self.min_piece)
        polys, _, _ = regularize(rings, mask.transform, self.params)
        return {"footprints": list(zip(rings.ids.tolist(), polys))}
