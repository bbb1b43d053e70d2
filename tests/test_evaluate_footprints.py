"""Footprint metrics on cases with known answers."""

import numpy as np
import pytest
import shapely
from shapely import affinity

from lod3d.evaluate import footprint_metrics, match, mta, polis, vertex_count


def test_identical_sets_are_perfect():
    polys = np.array([shapely.box(0, 0, 10, 5), shapely.box(20, 0, 30, 8).difference(shapely.box(22, 2, 24, 4))])
    m = footprint_metrics(polys, polys)
    assert m["iou"] == pytest.approx(1) and m["ciou"] == pytest.approx(1)
    assert m["polis"] == pytest.approx(0) and m["mta"] == pytest.approx(0)
    assert m["n_ratio"] == pytest.approx(1) and m["matched_share"] == 1.0
    assert vertex_count(polys).tolist() == [4, 8]


def test_shifted_square_polis_and_iou():
    a = shapely.box(0, 0, 10, 10)
    b = affinity.translate(a, 1.0, 0)
    # a's vertices: two on b's boundary... (0,0),(0,10) are 1 m away; b's (11,*) are 1 m away
    assert polis([a], [b])[0] == pytest.approx(0.5)
    t, p, iou = match([a], [b])
    assert iou[0] == pytest.approx(90 / 110)


def test_complexity_and_angle_errors():
    square = shapely.box(0, 0, 20, 20)
    octagon = shapely.Point(10, 10).buffer(10, quad_segs=2)
    m = footprint_metrics([square], [octagon])
    assert m["n_ratio"] == pytest.approx(2.0)
    assert m["ciou"] == pytest.approx(m["iou"] * (1 - 4 / 12))
    rotated = affinity.rotate(square, 5.0)
    # short pieces: those that reach round a corner are stretched past 2x and left out
    assert mta([square], [rotated], spacing=0.25)[0] == pytest.approx(5.0, abs=0.01)


def test_mta_follows_the_frame_field_learning_definition():
    square = shapely.box(0, 0, 20, 20)
    # the predicted edges are split with their vertices kept: a chamfer is two corners
    # whose 45-degree edge projects onto the truth's walls at 45 degrees
    chamfered = shapely.Polygon([(0, 0), (20, 0), (20, 18), (18, 20), (0, 20)])
    assert mta([square], [chamfered])[0] == pytest.approx(45.0, abs=0.01)
    # a pair with no piece left (all stretched or collapsed) has no value
    assert np.isnan(mta([square], [shapely.box(30, 30, 30.1, 30.1)])[0])
    # holes count: a rotated courtyard is charged even when the outer ring is exact
    court = square.difference(shapely.box(8, 8, 12, 12))
    twisted = square.difference(affinity.rotate(shapely.box(8, 8, 12, 12), 10.0))
    assert mta([court], [twisted], spacing=0.1)[0] == pytest.approx(10.0, abs=0.5)


def test_unmatched_buildings_lower_matched_share():
    truth = [shapely.box(0, 0, 10, 10), shapely.box(50, 50, 60, 60)]
    m = footprint_metrics(truth, [shapely.box(0, 0, 10, 9)])
    assert m["matched_share"] == 0.5 and m["precision"] == 1.0


def test_mask_reference_drops_only_what_a_mask_cannot_show():
    from lod3d.evaluate import mask_reference

    jogs = shapely.Polygon([(0, 0), (10, 0), (10, 5), (10, 10), (6, 10), (6, 10.06), (3, 10.06),
                            (3, 10.6), (0, 10.6)])
    ref = mask_reference([jogs], 0.5)[0]
    # the collinear vertex (10, 5) and the 6 cm jog go; the 54 cm step (a pixel) stays
    assert vertex_count([ref])[0] == 6
    corners = shapely.get_coordinates(ref)
    assert np.min(np.hypot(*(corners - (3, 10.6)).T)) < 1e-9
    assert shapely.hausdorff_distance(ref, jogs) <= 0.1


def test_mta_projects_onto_every_true_contour():
    """As in Frame Field Learning's code, a prediction is projected onto the contours of
    all true buildings: a wall that strays towards a neighbour may project onto it."""
    left = shapely.box(0, 0, 10, 10)
    right = shapely.box(10.3, 0, 20, 10)
    pred = shapely.Polygon([(0, 0), (10.1, 0), (10.22, 10), (0, 10)])   # east wall leans out
    own_only = mta([left], [pred])[0]
    every = mta([left], [pred], contours=[left, right])[0]
    # above y = 4.2 the wall is nearer the neighbour's (x = 10.3) than its own (x = 10): the
    # piece from y = 4 to 5 (direction (0.012, 1)) projects from one to the other (0.3, 1)
    assert every == pytest.approx(np.degrees(np.arctan(0.3) - np.arctan(0.012)), abs=0.05)
    assert own_only < 1.0
    m = footprint_metrics([left, right], [pred, right])
    assert m["mta"] == pytest.approx(np.mean([every, 0.0]))
