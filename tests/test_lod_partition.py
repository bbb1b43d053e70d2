"""Roof partition on stereo-like DSMs: terraced rows split by straight cuts, spill strips merged
(when asked: ``min_width``)."""

import numpy as np
import shapely
from affine import Affine
from scipy import ndimage

from lod3d.cityjson import to_cityjson_dict
from lod3d.cityjson.validate import check_geometry
from lod3d.lod.build import build_building
from lod3d.lod.partition import partition, roof_cells, split_roof
from lod3d.raster import Raster

T = Affine(0.5, 0, 0, 0, -0.5, 40)
SHAPE = (80, 100)
GROUND = 195.0


def _grid():
    rr, cc = np.mgrid[0:SHAPE[0], 0:SHAPE[1]]
    return T @ (cc + 0.5, rr + 0.5)


def _rasters(z):
    dsm = Raster(z.astype(np.float32), T, "EPSG:32631", np.nan)
    dtm = Raster(np.full(SHAPE, GROUND, np.float32), T, "EPSG:32631", np.nan)
    return dsm, dtm


def _row(noise=0.0, seed=0):
    """A terraced row 5..41 x 10..22 of two houses with a party wall at x = 23, eaves at
    10 m: a gable with its ridge along the row (y = 16) and one with its ridge across it
    (x = 32). Their roofs meet at the eaves, so the roof is one height-continuous region,
    but no single roof fits it."""
    x, y = _grid()
    z = GROUND + 10 + np.where(x < 23, 0.5 * (6 - np.abs(y - 16)), 0.5 * (9 - np.abs(x - 32)))
    z = z + np.random.default_rng(seed).normal(0, noise, z.shape)
    inside = (x > 5) & (x < 41) & (y > 10) & (y < 22)
    return np.where(inside, z, GROUND), shapely.box(5, 10, 41, 22)


def test_terraced_row_split_at_its_party_wall():
    z, poly = _row(noise=0.1)
    dsm, _ = _rasters(z)
    cells = roof_cells(poly, dsm)
    assert len(partition(poly, cells)) == 1  # one height-continuous region
    plain = split_roof(poly, cells.x, cells.y, cells.z, GROUND, 0.15)
    swept = split_roof(poly, cells.x, cells.y, cells.z, GROUND, 0.15, sweep_step=2.0)
    assert len(plain) == 1  # a rectangle has no inside corner to cut at
    assert len(swept) == 2
    wall = shapely.intersection(swept[0][0].boundary, swept[1][0].boundary)
    assert abs(wall.centroid.x - 23) <= 0.5 and wall.length > 11
    assert all(f.roof_type == "gable" and f.rmse < 0.2 for _, f in swept)


def test_terraced_row_building_valid_and_close():
    z, poly = _row(noise=0.1)
    b = build_building("row", poly, *_rasters(z))
    parts = [p for p in b.parts if any(s.lod == "2.2" for s in p.solids)]
    assert len(parts) == 2 and b.attributes["rmse_lod22"] < 0.2
    assert check_geometry(to_cityjson_dict([b], crs_epsg=32631)) == []


def _flat_with_strip(dz):
    """A flat 12 m roof over 5..35 x 10..30 with a 2 m strip along its north edge ``dz``
    metres higher (a neighbour's roof spilt over the wall by the stereo DSM when > 0, a
    lower annex when < 0)."""
    x, y = _grid()
    z = np.where(y > 28, GROUND + 12 + dz, GROUND + 12.0)
    inside = (x > 5) & (x < 35) & (y > 10) & (y < 30)
    return np.where(inside, z, GROUND), shapely.box(5, 10, 35, 30)


def test_thin_higher_strip_along_the_outline_merged():
    z, poly = _flat_with_strip(+4.0)
    dsm, _ = _rasters(z)
    assert len(partition(poly, roof_cells(poly, dsm), min_width=2.5)) == 1
    assert len(partition(poly, roof_cells(poly, dsm))) == 2  # off by default


def test_thin_lower_strip_kept():
    z, poly = _flat_with_strip(-4.0)
    dsm, _ = _rasters(z)
    assert len(partition(poly, roof_cells(poly, dsm), min_width=2.5)) == 2


def test_screened_sweep_finds_the_exhaustive_cut():
    """The sweep screened all at once (only the best few coarse cuts fitted) finds the same
    pieces as fitting every coarse cut."""
    z, poly = _row(noise=0.1)
    cells = roof_cells(poly, _rasters(z)[0])
    args = (poly, cells.x, cells.y, cells.z, GROUND, 0.15)
    screened = split_roof(*args, sweep_step=2.0)
    exhaustive = split_roof(*args, sweep_step=2.0, sweep_keep=0)
    assert [g.wkt for g, _ in screened] == [g.wkt for g, _ in exhaustive]
    assert [f.score for _, f in screened] == [f.score for _, f in exhaustive]


def test_cut_screen_ranks_the_party_wall_first():
    from lod3d.kernels.lod_planes import screen_cuts

    z, _ = _row(noise=0.05)
    x, y = _grid()
    inside = (x > 5) & (x < 41) & (y > 10) & (y < 22)
    ts = np.arange(9.0, 38.0, 2.0)  # along x from 5 to 41, w across from 10 to 22
    score = screen_cuts(x[inside], y[inside], z[inside], ts, 5.0, 41.0, 10.0, 22.0, GROUND, 0.15,
                        np.tan(np.radians(70.0)), 24)
    assert ts[np.argmin(score)] == 23.0


def test_gross_outliers_alone_cut_nothing():
    """A single gable whose DSM has a few gross blunders (spill, mismatches) misses them by
    more than the tolerance in RMSE but not robustly: no wall is cut for them."""
    x, y = _grid()
    inside = (x > 5) & (x < 41) & (y > 10) & (y < 22)
    z = GROUND + 10 + 0.5 * (6 - np.abs(y - 16)) + np.random.default_rng(1).normal(0, 0.05, x.shape)
    blunder = inside & (np.random.default_rng(2).random(x.shape) < 0.04)
    z = np.where(inside, np.where(blunder, z + 6.0, z), GROUND)
    poly = shapely.box(5, 10, 41, 22)
    cells = roof_cells(poly, _rasters(z)[0])
    pieces = split_roof(poly, cells.x, cells.y, cells.z, GROUND, 0.15, sweep_step=2.0)
    assert len(pieces) == 1 and pieces[0][1].roof_type == "gable"


def test_long_terrace_is_split_into_every_house():
    """Ten terraced houses 4.5 m wide, flat roofs alternating 9 and 11 m high, the jumps
    blurred over three cells as a stereo DSM does (one height-continuous region): ten
    roofs need more than three levels of cuts (at most eight roofs)."""
    x, y = _grid()
    z = GROUND + ndimage.convolve1d(np.where((((x - 2) // 4.5) % 2) == 0, 9.0, 11.0), np.ones(3) / 3, axis=1)
    poly = shapely.box(2, 10, 47, 22)
    z = np.where(shapely.contains_xy(poly, x, y), z, GROUND)
    building = build_building("t", poly, *_rasters(z))
    assert len([p for p in building.parts if any(s.lod == "2.2" for s in p.solids)]) == 10


def _spilt_pair(ramp):
    """Two flat roofs in one footprint 5..41 x 10..22 meeting at a wall at x = 23: 14 m
    west, 10 m east, with the stereo DSM carrying the taller roof 1.5 m past the wall (its
    step at x = 24.5; over ``ramp`` metres, so the roof is one height-continuous region
    when the ramp is gentle), and the ortho: dark west, bright east of the wall."""
    x, y = _grid()
    z = GROUND + 10 + 4 * np.clip((24.5 + 0.5 * ramp - x) / max(ramp, 1e-9), 0, 1)
    poly = shapely.box(5, 10, 41, 22)
    inside = shapely.contains_xy(poly, x, y)
    ortho = Raster(np.where(x < 23, 300.0, 700.0).astype(np.float32), T, "EPSG:32631", np.nan)
    return np.where(inside, z, GROUND), poly, ortho


def _wall_x(building):
    """x of the wall the building's two LoD2.2 parts share."""
    parts = [p for p in building.parts if any(s.lod == "2.2" for s in p.solids)]
    assert len(parts) == 2
    feet = [shapely.Polygon(np.asarray(next(s for s in p.solids if s.lod == "2.2").surfaces[-1].rings[0])[:, :2])
            for p in parts]
    wall = shapely.intersection(feet[0].boundary, feet[1].boundary)
    return wall.centroid.x


def test_walls_follow_the_ortho_edge_not_the_spilt_step():
    """With the true ortho, the wall between a taller and a lower roof moves from the
    stereo DSM's step onto the image's edge, whether the step separates two regions (a
    sharp one) or a straight cut finds it (a gentle ramp, one region); without the ortho
    it stays at the step. The lower roof is fitted without the taller one's spill."""
    for ramp in (0.0, 2.0):
        z, poly, ortho = _spilt_pair(ramp)
        dsm, dtm = _rasters(z)
        assert (len(np.unique(roof_cells(poly, dsm).label)) == 1) == (ramp > 0)  # one region on a ramp
        plain = build_building("b", poly, dsm, dtm)
        seen = build_building("b", poly, dsm, dtm, ortho=ortho)
        assert abs(_wall_x(plain) - 24.5) <= 1.0
        assert abs(_wall_x(seen) - 23) <= 0.3
        lower = [p for p in seen.parts if any(s.lod == "2.2" for s in p.solids) and p.attributes["h_roof_50p"] < GROUND + 12]
        solid = next(s for s in lower[0].solids if s.lod == "2.2")
        roof = np.concatenate([np.asarray(r) for f in solid.surfaces if f.semantic == "RoofSurface" for r in f.rings])
        assert np.abs(roof[:, 2] - (GROUND + 10)).max() < 0.05
        assert check_geometry(to_cityjson_dict([seen], crs_epsg=32631)) == []
