"""Cut an AOI's raster grid into tiles: exact core windows plus a clipped halo.

The AOI grid (origin at the AOI's top-left corner, square cells of ``res`` metres) is
partitioned into core windows of ``tile_size`` cells; the last row/column of tiles takes
the remainder, so cores partition the grid exactly. Each tile also has a halo window,
``halo`` cells wider on every side and clipped at the grid edges: stages compute on the
halo window and keep the core.

Ownership: a feature (a building) belongs to the tile whose core holds its anchor point
(e.g. a footprint's representative point), so a feature crossing tile borders is emitted
once. Cells are half-open: a point on the border between two cores belongs to the tile to
the east / south of it; points on the grid's far east/south edge belong to the last tile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from affine import Affine
from rasterio.windows import Window

from .errors import InputError

__all__ = ["Tile", "TileGrid"]


@dataclass(frozen=True)
class Tile:
    """One tile: its index (row, col) in the tile grid and its windows in grid cells."""

    row: int
    col: int
    core: Window
    halo: Window

    @property
    def id(self) -> str:
        return f"r{self.row:03d}c{self.col:03d}"

    @property
    def core_in_halo(self) -> tuple[slice, slice]:
        """Slices that cut the core out of an array laid on the halo window."""
        r0 = int(self.core.row_off - self.halo.row_off)
        c0 = int(self.core.col_off - self.halo.col_off)
        return slice(r0, r0 + int(self.core.height)), slice(c0, c0 + int(self.core.width))


class TileGrid:
    """Tiles over a grid of ``shape`` cells with geotransform ``transform``.

    Build it from AOI bounds with :meth:`from_bounds`.
    """

    def __init__(self, transform: Affine, shape: tuple[int, int], tile_size: int, halo: int = 0):
        rows, cols = (int(v) for v in shape)
        if rows < 1 or cols < 1:
            raise InputError(f"tile grid: empty grid {rows} × {cols}")
        if int(tile_size) < 1:
            raise InputError(f"tile size {tile_size}: must be at least 1 cell")
        if int(halo) < 0:
            raise InputError(f"halo {halo}: must be ≥ 0 cells")
        self.transform = transform
        self.shape = (rows, cols)
        self.tile_size = int(tile_size)
        self.halo = int(halo)
        self.row_edges = _edges(rows, self.tile_size)
        self.col_edges = _edges(cols, self.tile_size)

    @classmethod
    def from_bounds(cls, bounds, res: float, tile_size_m: float, halo_m: float = 0.0) -> "TileGrid":
        """Tiles of about ``tile_size_m`` metres with ``halo_m`` metres of halo over ``bounds``.

        The grid is ``ceil(extent / res)`` cells in each direction from the top-left corner.
        """
        xmin, ymin, xmax, ymax = bounds
        if res <= 0:
            raise InputError(f"resolution {res}: must be > 0")
        shape = (math.ceil((ymax - ymin) / res - 1e-9), math.ceil((xmax - xmin) / res - 1e-9))
        transform = Affine(res, 0.0, xmin, 0.0, -res, ymax)
        return cls(transform, shape, max(1, round(tile_size_m / res)), math.ceil(halo_m / res - 1e-9))

    @property
    def n_rows(self) -> int:
        return len(self.row_edges) - 1

    @property
    def n_cols(self) -> int:
        return len(self.col_edges) - 1

    def __len__(self) -> int:
        return self.n_rows * self.n_cols

    def __iter__(self):
        for r in range(self.n_rows):
            for c in range(self.n_cols):
                yield self.tile(r, c)

    def tile(self, row: int, col: int) -> Tile:
        """The tile at tile-grid position (row, col)."""
        r0, r1 = int(self.row_edges[row]), int(self.row_edges[row + 1])
        c0, c1 = int(self.col_edges[col]), int(self.col_edges[col + 1])
        h = self.halo
        hr0, hc0 = max(0, r0 - h), max(0, c0 - h)
        hr1, hc1 = min(self.shape[0], r1 + h), min(self.shape[1], c1 + h)
        return Tile(row, col, Window(c0, r0, c1 - c0, r1 - r0), Window(hc0, hr0, hc1 - hc0, hr1 - hr0))

    def window_transform(self, window: Window) -> Affine:
        """The geotransform of an array laid on ``window``."""
        return self.transform @ Affine.translation(window.col_off, window.row_off)

    def window_bounds(self, window: Window) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of ``window``."""
        x0, y0 = self.transform @ (window.col_off, window.row_off)
        x1, y1 = self.transform @ (window.col_off + window.width, window.row_off + window.height)
        return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)

    def owner(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """Tile (row, col) whose core holds each point (x, y); (-1, -1) outside the grid.

        Vectorized over arrays of points.
        """
        col_f, row_f = ~self.transform @ (np.asarray(x, float), np.asarray(y, float))
        rows, cols = self.shape
        row_c = np.floor(np.asarray(row_f)).astype(np.int64)
        col_c = np.floor(np.asarray(col_f)).astype(np.int64)
        # Points on the far east/south edge of the grid belong to the last cell.
        row_c = np.where(np.isclose(row_f, rows), rows - 1, row_c)
        col_c = np.where(np.isclose(col_f, cols), cols - 1, col_c)
        inside = (row_c >= 0) & (row_c < rows) & (col_c >= 0) & (col_c < cols)
        tr = np.searchsorted(self.row_edges, row_c, side="right") - 1
        tc = np.searchsorted(self.col_edges, col_c, side="right") - 1
        return np.where(inside, tr, -1), np.where(inside, tc, -1)


def _edges(n: int, size: int) -> np.ndarray:
    """Core boundaries: multiples of ``size``, a short last tile merged if under half a tile."""
    edges = list(range(0, n, size)) + [n]
    if len(edges) > 2 and (edges[-1] - edges[-2]) < size / 2:
        del edges[-2]
    return np.asarray(edges, dtype=np.int64)
