"""Which corners an outline has: walls the segmentation did not pay for (chamfers, spikes)
weighed against another direction for the wall between them."""

import numpy as np
import pytest
import rasterio.features
import shapely
from affine import Affine
from shapely import affinity

from lod3d.cityjson.rasterize import burn_cityjson
from lod3d.evaluate import footprint_metrics, mask_reference, mta, vertex_count
from lod3d.outline import outline_mask
from lod3d.raster import Raster

T = Affine(0.5, 0, 0, 0, -0.5, 60.0)
# a Delft row house (truth 30 of delft.json, metres): long walls at 35 degrees to the grid,
# one end wall square, the other 22 degrees off square
ROW_HOUSE = shapely.Polygon([(8.11, 16.35), (4.92, 14.265), (14.135, 7.69), (16.085, 10.43)])


@pytest.mark.parametrize("dx, dy", [(0.0, 0.4), (0.1, 0.2), (0.1, 0.3)])
def test_oblique_end_wall_is_free_not_a_diagonal_with_chamfers(dx, dy):
    """Snapped to the diagonal, the oblique end wall (7 pixels) meets the long walls off
    the pixels and each meeting is cut by a chamfer: 5-6 vertices and 43-46 degrees MTA
    at these placements. Charged one wall each, the chamfers cost more than a free
    direction: 4 vertices, MTA 5.5-6.8."""
    truth = affinity.translate(affinity.rotate(ROW_HOUSE, 90.0, origin=(10, 12)), 10 + dx, 10 + dy)
    mask = rasterio.features.rasterize([(truth, 1)], out_shape=(120, 120), transform=T, dtype="uint8")
    poly = outline_mask(Raster(mask, T, None)).polygons[0]
    assert vertex_count([poly])[0] == 4
    assert mta([truth], [poly])[0] < 10.0


def test_delft_end_walls_without_spikes(shared_data):
    """Delft's row houses with oblique end walls (truth 30, 31, 84, 113): MTA 11.31 with
    the end walls snapped to the diagonal and chamfered, 10.72 with them free."""
    city = burn_cityjson(shared_data / "cityjson/real/delft.json", res=0.5)
    truth = np.array([shapely.make_valid(g) for _, g in city.footprints], dtype=object)
    m = footprint_metrics(mask_reference(truth, 0.5), outline_mask(city.building_id).polygons)
    assert m["mta"] < 11.0
    assert m["ciou"] > 0.875 and m["iou"] > 0.95
