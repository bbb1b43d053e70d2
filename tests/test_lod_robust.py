"""A footprint the LOD builder cannot model still gives a building, with the reason."""

import numpy as np
import shapely
from affine import Affine
from rasterio.features import rasterize

from lod3d.cityjson import to_cityjson_dict
from lod3d.cityjson.validate import check_geometry
from lod3d.lod.build import build_building
from lod3d.raster import Raster

# A ragged footprint with two holes, as outlines of a noisy stereo mask come out.
RAGGED = shapely.from_wkt("POLYGON ((51.5 44.5, 52 44.5, 52 45.5, 52.5 45.5, 52.5 46, 52 46, 52 47, 53 47, 53 47.5, 53.5 47.5, 53.5 48.5, 53 48.5, 53 49, 53.5 49, 53.5 51, 52.5 51, 52.5 52, 53 52, 53 54, 53.5 54, 53.5 55, 54.5 55, 54.5 55.5, 53.5 56, 53.5 56.5, 54 56.5, 54 61, 54.5 61, 55 60, 58 60, 58 58, 57.5 58, 57.5 53.5, 58 53.5, 58 52.5, 57.5 52.5, 57.5 50.5, 57 50.5, 57 49.5, 56.5 49.5, 56.5 48.5, 56 48.5, 56 46, 55.5 46, 55.5 45.5, 56 45.5, 56 44, 55.5 44, 55.5 40, 54 40, 54 39.5, 53.5 39.5, 53.5 40, 52 40, 52 39.5, 51.5 39.5, 51.5 37.5, 51 37.5, 51 40, 50.5 40, 50.5 40.5, 51 40.5, 51 41.5, 50.5 41.5, 50.5 43, 51.5 43, 51.5 44.5), (51.5 42.5, 51 42.5, 51 42, 52 42, 52 43, 51.5 43, 51.5 42.5), (56 53.5, 55.5 53.5, 55.5 54, 54 54, 54 53.5, 53.5 53.5, 53.5 51.5, 54.5 51.5, 54.5 52, 56 52, 56 53.5))")


def test_unmodellable_footprint_degrades_instead_of_raising():
    transform = Affine(0.5, 0, 0, 0, -0.5, 107)
    inside = rasterize([RAGGED], out_shape=(214, 240), transform=transform).astype(bool)
    rng = np.random.default_rng(0)
    dsm = Raster(np.where(inside, 210 + rng.normal(0, 0.5, inside.shape), 195).astype(np.float32),
                 transform, "EPSG:32631", np.nan)
    dtm = Raster(np.full(inside.shape, 195, np.float32), transform, "EPSG:32631", np.nan)
    building = build_building("b", RAGGED, dsm, dtm)
    assert building.id == "b" and building.footprint.area > 70
    assert abs(building.ground_z - 195) < 0.5
    # its first courtyard touches the outline at a corner: separated by 2 cm, all levels build
    levels = {s.lod for p in building.parts for s in p.solids}
    assert levels == {"1.2", "1.3", "2.2"} and building.attributes["lod_fallback_reason"] is None
    assert check_geometry(to_cityjson_dict([building], crs_epsg=32631)) == []


def test_failed_roof_gets_a_flat_lod22(monkeypatch):
    """A roof whose solid cannot be made (here: every multi-plane envelope raises) keeps a
    flat LoD2.2 roof, so the LoD2.2 model still covers the footprint, with the reason."""
    from lod3d.lod import build

    real = build.envelope_solid

    def failing(poly, planes, ground, lod):
        if lod == "2.2" and len(planes) > 1:
            raise ValueError("degenerate face")
        return real(poly, planes, ground, lod)

    monkeypatch.setattr(build, "envelope_solid", failing)
    transform = Affine(0.5, 0, 0, 0, -0.5, 40)
    cc = np.mgrid[0:80, 0:80][1]
    x = transform.c + 0.5 * (cc + 0.5)
    box = shapely.box(10, 10, 30, 24)
    inside = rasterize([box], out_shape=(80, 80), transform=transform).astype(bool)
    gable = 210 + 3 - 0.5 * np.abs(x - 20)  # ridge along y at x = 20
    dsm = Raster(np.where(inside, gable, 195).astype(np.float32), transform, "EPSG:32631", np.nan)
    dtm = Raster(np.full((80, 80), 195, np.float32), transform, "EPSG:32631", np.nan)
    building = build_building("b", box, dsm, dtm)
    roofs = [p for p in building.parts if any(s.lod == "2.2" for s in p.solids)]
    assert roofs and building.attributes["roof_type"] == "flat"
    assert "flat instead" in building.attributes["lod_fallback_reason"]
    assert check_geometry(to_cityjson_dict([building], crs_epsg=32631)) == []


def test_envelope_cell_edge_along_the_outline_gives_closed_rings():
    """A plane's cell whose edge runs along a footprint edge (a part cut from a stereo
    roof, seed 5 Toulouse): that edge, intersected in floating point, lies a hair off the
    footprint's; noding and then rounding to the grid left slivers whose edges no longer
    paired up, and the ground face fell apart into one-node rings (the volume raised
    "negative dimensions are not allowed"). Snap-rounded noding keeps the faces a coverage."""
    from lod3d.lod.metrics import solid_volume
    from lod3d.lod.solid import envelope_solid, roof_height

    poly = shapely.from_wkt("POLYGON ((374569.36 4828975.514, 374568.72 4828970, 374566.707 4828970, "
                            "374562.998 4828970, 374553.429 4828970, 374554.272 4828977.264, 374569.36 4828975.514))")
    planes = np.array([[0.5410201237864988, 0.7024841837906547, -3594709.2600634457],
                       [-0.27846633272202365, 0.2376208528681581, -1042948.6790595182],
                       [0.337048794360871, 0.3724784851074221, -1924720.7827243614],
                       [0.013230172010922542, 0.03649672328012997, -180984.20941479693]])
    ground = 194.49
    solid, used = envelope_solid(poly, planes, ground, "2.2")
    assert all(len(r) >= 3 for s in solid.surfaces for r in s.rings)
    grounds = [s for s in solid.surfaces if s.semantic == "GroundSurface"]
    assert len(grounds) == 1 and len(grounds[0].rings) == 1
    # the volume equals the roof's height above the ground integrated over the footprint
    x0, y0, x1, y1 = poly.bounds
    xx, yy = np.meshgrid(np.arange(x0, x1, 0.02) + 0.01, np.arange(y0, y1, 0.02) + 0.01)
    m = shapely.contains_xy(poly, xx, yy)
    expected = float(np.sum(roof_height(used, xx[m], yy[m]) - ground)) * 0.02**2
    assert abs(solid_volume(solid) - expected) < 0.01 * expected
