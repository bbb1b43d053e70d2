"""Shared walls at a T-junction: two houses against one long building take its wall line."""

import numpy as np
import rasterio.features
import shapely
from affine import Affine
from shapely import affinity

from lod3d.outline import outline_mask
from lod3d.raster import Raster

T = Affine(0.5, 0, 0, 0, -0.5, 60.0)


def _distance_to_line(points, a, b):
    """Distances of ``points`` (n, 2) to the infinite line through a and b."""
    u = (b - a) / np.hypot(*(b - a))
    d = points - a
    return np.abs(d[:, 0] * u[1] - d[:, 1] * u[0])


def test_houses_against_one_wall_share_its_line():
    """A long building (done first) with two terraced houses against its long wall, all
    17 degrees off the grid. The wall is stored once, by the long building, and each house
    finds it there, whichever house it happened to face most: both houses' corners on that
    wall lie on its line, so all three meet without overlap or gap along it. (When lines
    were filed per pair of buildings, only the house filed with the wall found it; the
    other fitted its own line a hair off, and the overlap repair cut a sliver out.)"""
    rot = dict(angle=17.0, origin=(30.0, 34.0))
    long_block = affinity.rotate(shapely.box(8, 34, 52, 44), **rot)
    house_a = affinity.rotate(shapely.box(8, 20, 29, 34), **rot)
    house_b = affinity.rotate(shapely.box(29, 21, 52, 34), **rot)
    mask = rasterio.features.rasterize([(long_block, 1), (house_a, 2), (house_b, 3)],
                                       out_shape=(120, 120), transform=T, dtype="uint8")
    fp = outline_mask(Raster(mask, T, None))
    polys = dict(zip(fp.ids.tolist(), fp.polygons))
    assert sorted(polys) == [1, 2, 3] and not fp.fallback.any()
    # the long block's wall facing the houses: its edge nearest the midpoint of the wall
    wall_mid = np.asarray(affinity.rotate(shapely.Point(30, 34), **rot).coords[0])
    ring = np.asarray(polys[1].exterior.coords)
    mids = 0.5 * (ring[1:] + ring[:-1])
    k = int(np.argmin(np.hypot(*(mids - wall_mid).T)))
    a, b = ring[k], ring[k + 1]
    for house in (polys[2], polys[3]):
        xy = np.asarray(house.exterior.coords)[:-1]
        near = xy[_distance_to_line(xy, a, b) < 0.5]   # the house's corners on that wall
        assert len(near) == 2
        assert _distance_to_line(near, a, b).max() < 1e-6
        assert shapely.area(shapely.intersection(house, polys[1])) < 1e-6
