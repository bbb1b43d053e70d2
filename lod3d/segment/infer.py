"""Tiled, seamless inference of a segmentation model over a raster of any size.

The raster is cut into overlapping tiles at a stride that is a multiple of the
network's output stride (32), so every tile sees the same pixel phase as whole-image
inference would. Each tile's logits are weighted by a window that is

- 0 in a *margin* along inner tile edges (where the tile lacks context),
- a cosine² ramp over the next *ramp* cells,
- 1 elsewhere, and 1 right up to edges that lie on the raster's border,

and the weighted logits are divided by the summed weights. Neighbouring ramps are
complementary (sin² + cos² = 1), so the weights form a partition of unity: a model that
outputs a constant gives exactly that constant, and wherever the margin covers the
network's receptive field the result equals whole-image inference. Overlap =
2 × margin + ramp.

Tiles go through the model in batches, ``channels_last``, under ``inference_mode``; on a
GPU under autocast (bfloat16); on CPU with ``threads`` compute threads (1 per MPI rank).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..progress import progress

__all__ = ["predict_logits", "tile_window", "tile_origins", "ALIGN"]

ALIGN = 32


def tile_window(size: int, margin: int, ramp: int, at_start: bool, at_end: bool) -> np.ndarray:
    """1-D blending weights of one tile side (see the module docstring)."""
    w = np.ones(size, dtype=np.float64)
    rise = np.sin(0.5 * np.pi * (np.arange(ramp) + 0.5) / ramp) ** 2 if ramp else np.zeros(0)
    if not at_start:
        w[:margin] = 0.0
        w[margin:margin + ramp] = rise
    if not at_end:
        w[size - margin:] = 0.0
        w[size - margin - ramp:size - margin] = rise[::-1]
    return w


def tile_origins(length: int, tile: int, stride: int) -> list[int]:
    """Tile starts covering ``[0, length)`` at ``stride`` (the last tile may overhang)."""
    if length <= tile:
        return [0]
    return [i * stride for i in range(math.ceil((length - tile) / stride) + 1)]


def predict_logits(model: nn.Module, x: np.ndarray, *, tile: int = 1024, margin: int = 32, ramp: int = 32,
                   batch: int = 2, device: str | torch.device = "cpu", threads: int | None = 1,
                   desc: str = "segment") -> np.ndarray:
    """Blended logits ``(classes, H, W)`` float32 of ``model`` over the ``(C, H, W)`` input ``x``.

    ``tile`` is rounded up to a multiple of :data:`ALIGN` and shrunk, per axis, to the
    (aligned) raster when that is smaller; it must exceed the overlap by at least ALIGN.
    ``threads`` sets torch's CPU threads (``None`` leaves it as it is).
    """
    device = torch.device(device)
    if device.type == "cpu" and threads:
        torch.set_num_threads(threads)
    c, h, w = x.shape
    tile = _round_up(tile, ALIGN)
    overlap = 2 * margin + ramp
    if tile - overlap < ALIGN:
        raise ValueError(f"tile {tile} too small for overlap {overlap} (2 x margin + ramp)")
    stride = (tile - overlap) // ALIGN * ALIGN
    th, tw = min(tile, _round_up(h, ALIGN)), min(tile, _round_up(w, ALIGN))
    rows, cols = tile_origins(h, th, stride), tile_origins(w, tw, stride)
    ph, pw = rows[-1] + th, cols[-1] + tw
    padded = np.pad(x, ((0, 0), (0, ph - h), (0, pw - w)), mode="reflect" if min(h, w) > 1 else "edge")

    model = model.to(device).eval().to(memory_format=torch.channels_last)
    acc = None
    weight = np.zeros((ph, pw), dtype=np.float64)
    windows = [(r, q) for r in rows for q in cols]
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else _NoCast()
    with torch.inference_mode(), autocast:
        for start in progress(range(0, len(windows), batch), desc=desc, unit="batch"):
            chunk = windows[start:start + batch]
            xb = torch.from_numpy(np.stack([padded[:, r:r + th, q:q + tw] for r, q in chunk]))
            xb = xb.to(device).contiguous(memory_format=torch.channels_last)
            logits = model(xb).float().cpu().numpy()
            if acc is None:
                acc = np.zeros((logits.shape[1], ph, pw), dtype=np.float64)
            for (r, q), lg in zip(chunk, logits):
                wy = tile_window(th, margin, ramp, r == 0, r == rows[-1])
                wx = tile_window(tw, margin, ramp, q == 0, q == cols[-1])
                win = np.outer(wy, wx)
                acc[:, r:r + th, q:q + tw] += lg * win
                weight[r:r + th, q:q + tw] += win
    return (acc[:, :h, :w] / weight[:h, :w]).astype(np.float32)


def _round_up(n: int, k: int) -> int:
    return -(-n // k) * k


class _NoCast:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
