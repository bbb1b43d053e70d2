"""Buildings cut by the raster frame: their outlines end on the frame and never leave it."""

import numpy as np
import pytest
import rasterio.features
import shapely
from affine import Affine
from shapely import affinity

from lod3d.evaluate import vertex_count
from lod3d.outline import outline_mask
from lod3d.raster import Raster

T = Affine(0.5, 0, 0, 0, -0.5, 60.0)   # the frame: [0, 60] x [0, 60] metres
FRAME = shapely.box(0, 0, 60, 60)


def cut_outline(truth):
    mask = rasterio.features.rasterize([(truth, 1)], out_shape=(120, 120), transform=T, dtype="uint8")
    fp = outline_mask(Raster(mask, T, None))
    assert len(fp) == 1 and fp.cut[0]
    return fp.polygons[0], truth.intersection(FRAME)


def max_vertex_gap(poly, truth):
    """Largest distance from a vertex of either polygon to the nearest vertex of the other."""
    a = shapely.points(np.asarray(poly.exterior.coords))
    b = shapely.points(np.asarray(truth.exterior.coords))
    return max(shapely.distance(a[:, None], b[None, :]).min(axis=1).max(),
               shapely.distance(b[:, None], a[None, :]).min(axis=1).max())


@pytest.mark.parametrize("angle", [16.0, -16.0, 8.0])
def test_wall_at_a_shallow_angle_ends_on_the_frame(angle):
    # a long wall crosses the frame at 8 to 16 degrees: its corner is where it crosses the
    # frame, not a step the pixels seem to show
    truth = affinity.rotate(shapely.box(-3, 10, 12, 50), angle, origin=(0, 30))
    poly, cut = cut_outline(truth)
    assert vertex_count([poly])[0] == vertex_count([cut])[0]
    assert max_vertex_gap(poly, cut) < 0.25


@pytest.mark.parametrize("angle", [1.5, -2.0])
def test_side_along_the_frame_is_the_frame(angle):
    # a building turned a degree or two from the frame: the side the tile cut is the frame
    # itself, not a wall on the building's axis that strays outside
    truth = affinity.rotate(shapely.box(-5, 15, 6, 45), angle, origin=(0, 30))
    poly, cut = cut_outline(truth)
    assert FRAME.covers(poly)
    xy = np.asarray(poly.exterior.coords)
    assert (xy[:, 0] == 0.0).sum() >= 2
    assert poly.symmetric_difference(cut).area / cut.area < 0.03


def test_corner_beyond_the_frame_is_cut_along_it():
    truth = affinity.rotate(shapely.box(20, -3, 40, 15), 30, origin=(30, 6))
    poly, cut = cut_outline(truth)
    assert FRAME.covers(poly)
    assert poly.symmetric_difference(cut).area / cut.area < 0.03
