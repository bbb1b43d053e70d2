"""Tiled, seamless inference of a segmentation model over a raster of any size.

The raster is cut into overlapping tiles whose sizes and origins are multiples of the
network's output stride (32), so every tile sees the same pixel phase as whole-image
inference would. Per axis, the fewest equal tiles of at most ``tile`` cells are spread
evenly over exactly the raster's side rounded up to 32 (:func:`tile_layout`), the extent
whole-image inference pads to: a 2000-cell side with the defaults is 2 tiles of 1216,
not 3 of 1024 overhanging by 880 cells (which also changed the border's context).
Each tile's logits are weighted by a window that is

- 0 in a *margin* along inner tile edges (where the tile lacks context),
- a cosine² ramp over the next *ramp* cells,
- 1 elsewhere, and 1 right up to edges that lie on the raster's border,

and the weighted logits are divided by the summed weights. Neighbouring ramps are
complementary (sin² + cos² = 1) and centred in each overlap (an overlap wider than
2 × margin + ramp widens the margins), so the weights form a partition of unity: a
model that outputs a constant gives exactly that constant, and wherever the margin covers
the network's receptive field the result equals whole-image inference.

The shipped U-Net's receptive field reaches about 470 cells, more than any cheap margin,
but its influence decays fast: on a 2000 × 2000 scene the largest |probability| gap to
whole-image inference is 0.19 with a 32-cell margin, 0.012 with 128, 0.0013 with 192 (the
default) and 0.0002 with 256 (docs/segmentation.md, ``benchmarks/segment_seams.py``).

Tiles go through the model in batches (default 1: on CPU a batch of 2 tiles of 1216 took
the same time and 1.86 GB instead of 1.09 GB), ``channels_last``, under
``inference_mode``; on a GPU under autocast (bfloat16); on CPU with ``threads`` compute
threads (1 per MPI rank), with glibc keeping freed activations for reuse
(:class:`_ReuseFreedMemory`).
"""

from __future__ import annotations

import ctypes
import math

import numpy as np
import torch
from torch import nn

from ..progress import progress

__all__ = ["predict_logits", "tile_window", "tile_origins", "tile_layout", "ALIGN"]

ALIGN = 32


def tile_window(size: int, margin: int, ramp: int, at_start: bool, at_end: bool,
                end_margin: int | None = None, end_ramp: int | None = None) -> np.ndarray:
    """1-D blending weights of one tile side (see the module docstring).

    ``margin``/``ramp`` apply to the start edge and, unless ``end_margin``/``end_ramp`` are
    given, to the end edge too; an edge on the raster's border (``at_start``/``at_end``)
    keeps weight 1.
    """
    w = np.ones(size, dtype=np.float64)

    def rise(n):
        return np.sin(0.5 * np.pi * (np.arange(n) + 0.5) / n) ** 2 if n else np.zeros(0)

    if not at_start:
        w[:margin] = 0.0
        w[margin:margin + ramp] = rise(ramp)
    if not at_end:
        m = margin if end_margin is None else end_margin
        r = ramp if end_ramp is None else end_ramp
        w[size - m:] = 0.0
        w[size - m - r:size - m] = rise(r)[::-1]
    return w


def tile_origins(length: int, tile: int, stride: int) -> list[int]:
    """Tile starts covering ``[0, length)`` at ``stride`` (the last tile may overhang)."""
    if length <= tile:
        return [0]
    return [i * stride for i in range(math.ceil((length - tile) / stride) + 1)]


def tile_layout(length: int, tile: int, overlap: int) -> tuple[list[int], int]:
    """``(origins, size)``: the fewest equal tiles of at most ``tile`` cells spanning ``[0, length)``.

    The tiles span exactly the length rounded up to :data:`ALIGN` (what whole-image
    inference pads the raster to); sizes and origins are multiples of ALIGN, spread
    evenly, and consecutive tiles overlap by at least ``overlap``. One tile when the
    aligned length fits in ``tile``.
    """
    full = _round_up(length, ALIGN)
    if full <= tile:
        return [0], full
    overlap = _round_up(overlap, ALIGN)
    n = 2
    while True:
        size = _round_up(math.ceil((full + (n - 1) * overlap) / n), ALIGN)
        if size <= tile:
            break
        n += 1
    step = (full - size) / (n - 1)
    return [int(i * step) // ALIGN * ALIGN for i in range(n - 1)] + [full - size], size


def _edges(origins: list[int], size: int, ramp: int) -> list[tuple[int, int]]:
    """``(margin, ramp)`` of each pair of neighbouring tiles: the ramp centred in their overlap."""
    out = []
    for a, b in zip(origins, origins[1:]):
        overlap = size - (b - a)
        r = min(ramp, overlap)
        m = (overlap - r) // 2
        out.append((m, overlap - 2 * m))
    return out


def predict_logits(model: nn.Module, x: np.ndarray, *, tile: int = 1536, margin: int = 192, ramp: int = 32,
                   batch: int = 1, device: str | torch.device = "cpu", threads: int | None = 1,
                   desc: str = "segment") -> np.ndarray:
    """Blended logits ``(classes, H, W)`` float32 of ``model`` over the ``(C, H, W)`` input ``x``.

    ``tile`` (the largest tile side) is rounded up to a multiple of :data:`ALIGN`; per
    axis the tiles are as in :func:`tile_layout`. Where the tile does not exceed the
    overlap (``2 * margin + ramp``, rounded up to ALIGN) by ALIGN, the margin is narrowed
    to fit (e.g. 32 for ``tile=128``).
    ``threads`` sets torch's CPU threads (``None`` leaves it as it is).
    """
    device = torch.device(device)
    if device.type == "cpu" and threads:
        torch.set_num_threads(threads)
    c, h, w = x.shape
    tile = _round_up(tile, ALIGN)
    if tile - _round_up(2 * margin + ramp, ALIGN) < ALIGN:  # small tiles: a narrower margin
        margin = max(0, (tile - ALIGN - ramp) // 2 // ALIGN * ALIGN)
    overlap = 2 * margin + ramp
    if tile - _round_up(overlap, ALIGN) < ALIGN:
        raise ValueError(f"tile {tile} too small for overlap {overlap} (2 x margin + ramp)")
    (rows, th), (cols, tw) = tile_layout(h, tile, overlap), tile_layout(w, tile, overlap)
    # overlaps are at least 2 x margin + ramp; any extra widens the zero margins
    ey, ex = _edges(rows, th, ramp), _edges(cols, tw, ramp)
    ph, pw = rows[-1] + th, cols[-1] + tw
    padded = np.pad(x, ((0, 0), (0, ph - h), (0, pw - w)), mode="reflect" if min(h, w) > 1 else "edge")

    model = model.to(device).eval().to(memory_format=torch.channels_last)
    acc = None
    weight = np.zeros((ph, pw), dtype=np.float64)
    windows = [(r, q) for r in rows for q in cols]
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else _NoCast()
    heap = _ReuseFreedMemory() if device.type == "cpu" else _NoCast()
    with torch.inference_mode(), autocast, heap:
        for start in progress(range(0, len(windows), batch), desc=desc, unit="batch"):
            chunk = windows[start:start + batch]
            xb = torch.from_numpy(np.stack([padded[:, r:r + th, q:q + tw] for r, q in chunk]))
            xb = xb.to(device).contiguous(memory_format=torch.channels_last)
            logits = model(xb).float().cpu().numpy()
            if acc is None:
                acc = np.zeros((logits.shape[1], ph, pw), dtype=np.float64)
            for (r, q), lg in zip(chunk, logits):
                wy = _window(th, rows.index(r), ey)
                wx = _window(tw, cols.index(q), ex)
                win = np.outer(wy, wx)
                acc[:, r:r + th, q:q + tw] += lg * win
                weight[r:r + th, q:q + tw] += win
    return (acc[:, :h, :w] / weight[:h, :w]).astype(np.float32)


def _window(size: int, i: int, edges: list[tuple[int, int]]) -> np.ndarray:
    """Weights of the ``i``-th tile along an axis whose neighbour pairs have ``edges``."""
    start = edges[i - 1] if i > 0 else (0, 0)
    end = edges[i] if i < len(edges) else (0, 0)
    return tile_window(size, *start, i == 0, i == len(edges), *end)


def _round_up(n: int, k: int) -> int:
    return -(-n // k) * k


class _ReuseFreedMemory:
    """glibc only: while inside, freed activations stay in the heap for the next tile.

    glibc serves every block over 32 MiB (a tile's activations) with a fresh mmap and
    unmaps it on free, so each tile faulted in gigabytes of new pages: on CPU 40 % of the
    inference time was the kernel's (2000 × 2000 with the shipped model: 9.2 → 5.3 CPU
    s). Inside, large blocks come from the heap (``M_MMAP_MAX`` 0) and are not trimmed on
    free; on exit glibc's defaults are restored and the free memory is returned
    (``malloc_trim``). Elsewhere (other C libraries, no ``mallopt``) it does nothing.
    """

    _M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4

    def __enter__(self):
        self.libc = None
        try:
            libc = ctypes.CDLL(None)
            libc.mallopt, libc.malloc_trim  # noqa: B018  (glibc has both)
        except (OSError, AttributeError):
            return self
        if libc.mallopt(self._M_MMAP_MAX, 0) and libc.mallopt(self._M_TRIM_THRESHOLD, 2**31 - 1):
            self.libc = libc
        return self

    def __exit__(self, *exc):
        if self.libc is not None:
            self.libc.mallopt(self._M_MMAP_MAX, 65536)  # glibc's defaults
            self.libc.mallopt(self._M_TRIM_THRESHOLD, 128 * 1024)
            self.libc.malloc_trim(0)
        return False


class _NoCast:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
