"""Point-cloud rasterization kernels (pure Numba): per-cell lowest and high-quantile height."""

import numpy as np
from numba import njit


@njit(cache=True)
def cell_heights(cell, z, ncells, q_high):
    """Per-cell minimum and ``q_high`` quantile of ``z``; NaN for empty cells.

    ``cell`` (int64 flat cell index) and ``z`` must be sorted by cell, then by height
    (``np.lexsort((z, cell))``), so each cell is one run of ascending heights.
    """
    low = np.full(ncells, np.nan, np.float32)
    high = np.full(ncells, np.nan, np.float32)
    n = cell.shape[0]
    start = 0
    while start < n:
        c = cell[start]
        end = start
        while end < n and cell[end] == c:
            end += 1
        low[c] = z[start]
        high[c] = z[start + int(q_high * (end - 1 - start) + 0.5)]
        start = end
    return low, high
