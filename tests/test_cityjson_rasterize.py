"""Burning city models into DSM/DTM/id rasters."""

import numpy as np
import pytest
import shapely

from lod3d.cityjson import Building, BuildingPart, Solid, Surface
from lod3d.cityjson.rasterize import burn_buildings, burn_cityjson


def gable_building(bid="g", x0=100.0, y0=200.0, lx=12.0, ly=8.0, ground=10.0, eave=6.0, ridge=9.0):
    """A gable-roof building (ridge along x) as an outward-oriented LoD2 solid."""
    x1, y1, ym = x0 + lx, y0 + ly, y0 + ly / 2
    ze, zr = ground + eave, ground + ridge
    a, b, c, d = (x0, y0), (x1, y0), (x1, y1), (x0, y1)
    faces = [
        Surface([np.array([[*a, ground], [*d, ground], [*c, ground], [*b, ground]])], "GroundSurface"),
        Surface([np.array([[*a, ze], [*b, ze], [x1, ym, zr], [x0, ym, zr]])], "RoofSurface"),
        Surface([np.array([[*c, ze], [*d, ze], [x0, ym, zr], [x1, ym, zr]])], "RoofSurface"),
        Surface([np.array([[*a, ground], [*b, ground], [*b, ze], [*a, ze]])], "WallSurface"),
        Surface([np.array([[*c, ground], [*d, ground], [*d, ze], [*c, ze]])], "WallSurface"),
        Surface([np.array([[*b, ground], [*c, ground], [*c, ze], [x1, ym, zr], [*b, ze]])], "WallSurface"),
        Surface([np.array([[*d, ground], [*a, ground], [*a, ze], [x0, ym, zr], [*d, ze]])], "WallSurface"),
    ]
    return Building(bid, shapely.box(x0, y0, x1, y1), ground, [BuildingPart(f"{bid}-0", [Solid("2.2", faces)])])


def test_gable_burns_exact_heights():
    bc = burn_buildings([gable_building()], res=0.5, pad=3.0)
    dsm, ids, dtm = bc.dsm.data, bc.building_id.data, bc.dtm.data
    assert (ids == 1).sum() * 0.25 == pytest.approx(96.0)
    rows, cols = np.nonzero(ids == 1)
    x, y = bc.transform @ (cols + 0.5, rows + 0.5)
    expect = 10.0 + 6.0 + 3.0 * (1 - np.abs(y - 204.0) / 4.0)
    assert np.allclose(dsm[rows, cols], expect, atol=1e-4)
    assert np.allclose(dtm, 10.0) and np.allclose(dsm[ids == 0], 10.0)
    assert bc.footprints[0][0] == "g"


@pytest.mark.slow
def test_footprint_only_building_burns_as_ground():
    # a building that fell back to its LoD0 footprint: its id is burnt, no roof above ground
    bc = burn_buildings([gable_building(), Building("f", shapely.box(130.0, 200.0, 136.0, 204.0), 10.0, [])], res=0.5)
    ids, dsm = bc.building_id.data, bc.dsm.data
    assert (ids == 1).sum() == 12 * 8 and np.allclose(dsm[ids == 1], 10.0)   # ids follow the sorted ids


def test_real_lod2_model(shared_data):
    bc = burn_cityjson(shared_data / "cityjson/real/DH_01_subs.city.json", crs_epsg=28992)
    assert bc.crs.to_epsg() == 28992 and len(bc.footprints) == 4
    ids = bc.building_id.data
    assert set(np.unique(ids)) == {0, 1, 2, 3, 4}
    # footprint area burnt within a cell-width band of the polygon area
    for k, (_, poly) in enumerate(bc.footprints, start=1):
        assert (ids == k).sum() * 0.25 == pytest.approx(poly.area, abs=poly.length * 0.5)
    assert np.all(bc.dsm.data >= bc.dtm.data - 1e-4)
    assert np.nanmax(bc.dsm.data) > np.nanmax(bc.dtm.data) + 5
