"""Touching buildings pool their main-axis votes (``_group_axis``): a block of terraced
houses at a shallow angle to the pixel grid gets the block's axis, not each house's own
(a house wall of 10-20 pixels at 1-3 degrees shows one step or none)."""

import numpy as np
import rasterio.features
import shapely
from affine import Affine
from shapely import affinity

from lod3d.outline import outline_mask
from lod3d.raster import Raster

T = Affine(0.5, 0, 0, 0, -0.5, 80.0)


def _terraced_block(angle: float, seed: int):
    """Two rows of touching houses of random widths and depths (back to back), rotated by
    ``angle`` degrees, as an instance mask; and the angle."""
    rng = np.random.default_rng(seed)
    houses = []
    for front, y0 in ((True, 20.0), (False, 42.0)):
        x = 6.0 + rng.uniform(0, 2)
        while x < 62:
            w, d = rng.uniform(5, 9), rng.uniform(8, 13)
            houses.append(shapely.box(x, y0 if front else y0 + 13 - d, x + w, y0 + d if front else y0 + 13))
            x += w
    houses = [affinity.rotate(h, angle, origin=(40.0, 40.0)) for h in houses]
    return rasterio.features.rasterize([(h, i + 1) for i, h in enumerate(houses)],
                                       out_shape=(160, 160), transform=T, dtype="int32")


def _worst_wall_error(poly, angle: float) -> float:
    """Largest angle (degrees, modulo 90) between a wall longer than 2 m and the block's axis."""
    d = np.diff(np.asarray(poly.exterior.coords), axis=0)
    a = np.degrees(np.arctan2(d[:, 1], d[:, 0]))
    err = np.abs((a - angle + 45.0) % 90.0 - 45.0)
    return float(err[np.hypot(d[:, 0], d[:, 1]) > 2.0].max())


def test_terraced_houses_at_shallow_angles_take_the_blocks_axis():
    """Mean over houses of each house's worst wall direction error, 12 blocks at 1.3, 2.1
    and 3 degrees: 0.48 degrees with pooled votes; 1.02 when each house estimated its own
    axis and a later house adopted a touching neighbour's."""
    errors = []
    for angle in (1.3, 2.1, 3.0):
        for seed in range(4):
            fp = outline_mask(Raster(_terraced_block(angle, seed), T, None))
            assert not fp.fallback.any()
            errors += [_worst_wall_error(p, angle) for p in fp.polygons]
    assert np.mean(errors) < 0.65
