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
    assert mta([square], [rotated])[0] == pytest.approx(5.0, abs=0.01)


def test_unmatched_buildings_lower_matched_share():
    truth = [shapely.box(0, 0, 10, 10), shapely.box(50, 50, 60, 60)]
    m = footprint_metrics(truth, [shapely.box(0, 0, 10, 9)])
    assert m["matched_share"] == 0.5 and m["precision"] == 1.0
