"""Sub-pixel registration of two images of the same scene (checks of geometric accuracy)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["subpixel_shift"]


def subpixel_shift(a: np.ndarray, b: np.ndarray, mask: np.ndarray, iterations: int = 20) -> np.ndarray:
    """Shift ``d`` (rows, cols) such that ``a(x) ≈ gain · b(x − d) + offset`` over ``mask``.

    Gauss–Newton on linearized brightness constancy (Lucas–Kanade), re-shifting ``b`` by
    cubic interpolation each round; the gain and offset absorb radiometric differences
    between the two images (e.g. per-view gains).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    d = np.zeros(2)
    for _ in range(iterations):
        bs = ndimage.shift(b, d, order=3, mode="nearest")
        gy, gx = np.gradient(bs)
        design = np.stack([bs[mask], np.ones(int(mask.sum())), -gy[mask], -gx[mask]], axis=1)
        gain, _, p, q = np.linalg.lstsq(design, a[mask], rcond=None)[0]
        step = np.array([p, q]) / gain
        d += step
        if np.hypot(*step) < 1e-4:
            break
    return d
