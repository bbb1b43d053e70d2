"""The edge refit of built rings (``_refit_edges``): each edge onto its nearest samples,
party walls once for both neighbours."""

import numpy as np

from lod3d.kernels.outline_regularize import _refit_edges

SQUARE = [(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0)]


def _samples(top=10.0, right=10.0):
    """Samples round a square (same order as SQUARE), its top and right sides at ``top``
    and ``right``."""
    t = np.arange(10) + 0.5
    x = np.concatenate([t, np.full(10, right), t[::-1], np.zeros(10)])
    y = np.concatenate([np.zeros(10), t, np.full(10, top), t[::-1]])
    return x, y


class Filed:
    """The shared-line store of ``regularize_buildings``: building 1 filed the line y = 10
    (angle 0 through (0, 10)) for its neighbours."""

    def __init__(self):
        self.store = np.array([-1, 0, -1])
        self.lines = np.array([[0.0, 0.0, 10.0]])
        self.next = np.array([-1])
        self.done = np.zeros(3, dtype=bool)
        self.shift = np.full(1, np.nan)


def _refit(sx, sy, ring=SQUARE, nb=None, w=100, h=100, lab=1, filed=None):
    out = np.array(ring)
    nb = np.zeros(len(sx), dtype=np.int32) if nb is None else nb
    f = Filed() if filed is None else filed
    _refit_edges(out, 0, 4, sx, sy, nb, w, h, lab, f.store, f.lines, f.next, f.done, f.shift,
                 np.empty((11, 5)))
    return out


def test_an_edge_off_its_samples_moves_onto_them_and_its_corners_follow():
    out = _refit(*_samples(top=10.3))
    assert np.allclose(out, [(0, 0), (10, 0), (10, 10.3), (0, 10.3)])


def test_edges_on_their_samples_stay():
    assert np.allclose(_refit(*_samples()), SQUARE)


def test_a_party_wall_moves_once_and_the_neighbour_follows():
    filed = Filed()
    sx, sy = _samples(top=10.3)
    nb = np.zeros(40, dtype=np.int32)
    nb[20:30] = 2                # the top side faces building 2, on the line 1 filed
    out = _refit(sx, sy, nb=nb, filed=filed)
    assert np.allclose(out, [(0, 0), (10, 0), (10, 10.3), (0, 10.3)])
    assert np.isclose(filed.shift[0], 0.3)
    filed.done[1] = True
    # building 2 above: its bottom side on the filed line, its own samples on y = 10
    above = [(0.0, 10.0), (10.0, 10.0), (10.0, 20.0), (0.0, 20.0)]
    t = np.arange(10) + 0.5
    bx = np.concatenate([t, np.full(10, 10.0), t[::-1], np.zeros(10)])
    by = np.concatenate([np.full(10, 10.0), 10 + t, np.full(10, 20.0), 10 + t[::-1]])
    nb2 = np.zeros(40, dtype=np.int32)
    nb2[:10] = 1
    out2 = _refit(bx, by, ring=above, nb=nb2, lab=2, filed=filed)
    assert np.allclose(out2, [(0, 10.3), (10, 10.3), (10, 20), (0, 20)])


def test_a_wall_along_a_neighbour_on_no_filed_line_stays():
    sx, sy = _samples(top=10.3)
    nb = np.zeros(40, dtype=np.int32)
    nb[20:30] = 2
    filed = Filed()
    filed.store[1] = -1          # nobody filed it
    assert np.allclose(_refit(sx, sy, nb=nb, filed=filed), SQUARE)


def test_an_edge_on_the_raster_frame_stays():
    # the right side lies on the frame (w = 10): its samples inside do not pull it in
    out = _refit(*_samples(right=9.7), w=10)
    assert np.allclose(out, SQUARE)
    assert np.allclose(_refit(*_samples(right=9.7), w=20), [(0, 0), (9.7, 0), (9.7, 10), (0, 10)])
