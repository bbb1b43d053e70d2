import numpy as np
import pytest
from affine import Affine
from hypothesis import given, settings, strategies as st

from lod3d.errors import InputError
from lod3d.tiling import TileGrid


def _cover(grid, window_of):
    count = np.zeros(grid.shape, dtype=int)
    for t in grid:
        w = window_of(t)
        count[int(w.row_off):int(w.row_off + w.height), int(w.col_off):int(w.col_off + w.width)] += 1
    return count


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 90), cols=st.integers(1, 90), size=st.integers(1, 40), halo=st.integers(0, 12))
def test_cores_partition_the_grid_and_halos_are_clipped(rows, cols, size, halo):
    grid = TileGrid(Affine(0.5, 0, 100, 0, -0.5, 200), (rows, cols), size, halo)
    assert (_cover(grid, lambda t: t.core) == 1).all()
    for t in grid:
        c, h = t.core, t.halo
        assert h.row_off == max(0, c.row_off - halo) and h.col_off == max(0, c.col_off - halo)
        assert h.row_off + h.height == min(rows, c.row_off + c.height + halo)
        assert h.col_off + h.width == min(cols, c.col_off + c.width + halo)
        rs, cs = t.core_in_halo
        assert rs.stop - rs.start == c.height and cs.stop - cs.start == c.width


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 60), cols=st.integers(1, 60), size=st.integers(1, 25))
def test_every_cell_centre_is_owned_by_the_core_that_holds_it(rows, cols, size):
    grid = TileGrid(Affine(2.0, 0, -10, 0, -2.0, 50), (rows, cols), size, 3)
    r, c = np.mgrid[0:rows, 0:cols]
    x, y = grid.transform @ (c + 0.5, r + 0.5)
    tr, tc = grid.owner(x, y)
    for t in grid:
        w = t.core
        mine = (tr == t.row) & (tc == t.col)
        expect = np.zeros(grid.shape, bool)
        expect[int(w.row_off):int(w.row_off + w.height), int(w.col_off):int(w.col_off + w.width)] = True
        assert (mine == expect).all()


def test_border_points_have_exactly_one_owner():
    grid = TileGrid.from_bounds((0, 0, 100, 100), res=1.0, tile_size_m=50, halo_m=10)
    assert (grid.n_rows, grid.n_cols) == (2, 2)
    # The shared corner of all four tiles belongs to the south-east one (half-open cells).
    tr, tc = grid.owner(50.0, 50.0)
    assert (int(tr), int(tc)) == (1, 1)
    # Grid corners: all owned, the far edges by the last tiles.
    tr, tc = grid.owner(np.array([0, 100, 0, 100.0]), np.array([100, 100, 0, 0.0]))
    assert tr.tolist() == [0, 0, 1, 1] and tc.tolist() == [0, 1, 0, 1]
    tr, tc = grid.owner(np.array([-0.1, 100.1]), np.array([50, 50]))
    assert tr.tolist() == [-1, -1] and tc.tolist() == [-1, -1]


def test_halo_windows_at_corners_and_geotransforms():
    grid = TileGrid.from_bounds((1000, 2000, 1300, 2240), res=0.5, tile_size_m=100, halo_m=20)
    assert grid.shape == (480, 600)
    t = grid.tile(0, 0)
    assert (t.halo.row_off, t.halo.col_off) == (0, 0)
    assert (t.halo.height, t.halo.width) == (240, 240)
    last = grid.tile(grid.n_rows - 1, grid.n_cols - 1)
    assert last.halo.row_off + last.halo.height == 480 and last.halo.col_off + last.halo.width == 600
    assert grid.window_bounds(t.core) == (1000, 2140, 1100, 2240)
    xmin, _, _, ymax = grid.window_bounds(last.core)
    assert grid.window_transform(last.core) @ (0, 0) == (xmin, ymax)


def test_short_last_tile_is_merged_and_bad_arguments_refused():
    grid = TileGrid(Affine.identity(), (105, 10), 50)
    assert grid.row_edges.tolist() == [0, 50, 105]
    with pytest.raises(InputError):
        TileGrid(Affine.identity(), (0, 10), 5)
    with pytest.raises(InputError):
        TileGrid(Affine.identity(), (10, 10), 0)
    with pytest.raises(InputError):
        TileGrid.from_bounds((0, 0, 10, 10), res=-1, tile_size_m=5)
