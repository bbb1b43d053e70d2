"""Synthetic DSMs with known ground, for the terrain tests and benchmarks.

A scene is sloped, gently hilly terrain with a terrace step, flat and gabled buildings
(one of them ``big_m`` wide, like an industrial hall or the Giza pyramid's footprint),
trees, and then stereo-like damage: Gaussian noise, isolated pits and holes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Scene", "make_scene", "damage"]


@dataclass
class Scene:
    dsm: np.ndarray        # float32, NaN holes, noisy
    clean_dsm: np.ndarray  # float32, the true surface
    dtm: np.ndarray        # float32, the true ground
    buildings: np.ndarray  # bool
    trees: np.ndarray      # bool
    res: float


def make_scene(size_m: float = 400.0, res: float = 0.5, big_m: float = 250.0, slope: float = 0.05,
               terrace_m: float = 3.0, noise: float = 0.3, hole_fraction: float = 0.03,
               seed: int = 0) -> Scene:
    """A square scene ``size_m`` wide; ``big_m`` = 0 leaves the big building out."""
    rng = np.random.default_rng(seed)
    n = int(round(size_m / res))
    y, x = (np.mgrid[:n, :n] + 0.5) * res
    ground = 100 + slope * x + 0.5 * slope * y
    for _ in range(3):  # hills a few hundred metres wide, a few metres high
        cx, cy = rng.uniform(0, size_m, 2)
        ground += rng.uniform(1, 4) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * rng.uniform(80, 150) ** 2))
    upper = y > 0.85 * size_m + 0.1 * (x - 0.5 * size_m)  # a terrace step, no building across it
    ground += np.where(upper, terrace_m, 0.0)
    surface = ground.copy()
    buildings = np.zeros((n, n), bool)

    def put(x0, y0, w, d, h, gable):
        m = (x >= x0) & (x < x0 + w) & (y >= y0) & (y < y0 + d)
        if buildings[m].any() or not m.any() or upper[m].any() != upper[m].all():
            return
        base = ground[m].max()
        roof = h + (gable * (1 - np.abs((x[m] - x0) / w * 2 - 1)) if gable else 0)
        surface[m] = base + roof
        buildings[m] = True

    if big_m > 0:
        put(0.5 * (size_m - big_m), 0.5 * (size_m - big_m), big_m, 0.8 * big_m, 8.0, 0)
    for _ in range(40):
        w, d = rng.uniform(8, 40, 2)
        put(rng.uniform(0, size_m - w), rng.uniform(0, size_m - d), w, d,
            rng.uniform(3, 25), rng.uniform(0, 4) * (rng.random() < 0.5))
    trees = np.zeros((n, n), bool)
    for _ in range(80):
        cx, cy = rng.uniform(0, size_m, 2)
        r, h = rng.uniform(2, 6), rng.uniform(4, 15)
        dist2 = (x - cx) ** 2 + (y - cy) ** 2
        crown = (dist2 < r * r) & ~buildings
        top = ground + h * np.sqrt(np.clip(1 - dist2 / (r * r), 0, 1)) + rng.normal(0, 0.5, (n, n))
        surface[crown] = np.maximum(surface[crown], top[crown])
        trees |= crown & (surface - ground > 2.5)
    clean = surface.astype(np.float32)
    return Scene(damage(clean, noise, hole_fraction, rng), clean, ground.astype(np.float32),
                 buildings, trees, res)


def damage(dsm: np.ndarray, noise: float, hole_fraction: float, rng) -> np.ndarray:
    """Stereo-like damage: Gaussian noise, 0.1 % pits 5-20 m deep, blob holes."""
    from scipy.ndimage import binary_dilation

    out = dsm + rng.normal(0, noise, dsm.shape).astype(np.float32)
    pits = rng.random(dsm.shape) < 0.001
    out[pits] -= rng.uniform(5, 20, int(pits.sum())).astype(np.float32)
    seeds = rng.random(dsm.shape) < hole_fraction / 25
    out[binary_dilation(seeds, iterations=2) & np.isfinite(dsm)] = np.nan
    return out.astype(np.float32)
