"""The oracles of benchmarks/outline_floor.py on toy rectangles: a wall on a pixel edge is
recovered exactly, one between pixel edges only to the nearest edge; our walls moved onto
the true lines, offsets or directions."""

import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio.features
import shapely
from affine import Affine
from shapely import affinity

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from outline_floor import jitter, topology_oracle, true_lines  # noqa: E402

from lod3d.evaluate import footprint_metrics  # noqa: E402

RES = 0.5
TRANSFORM = Affine(RES, 0, 0, 0, -RES, 20.0)     # 40 x 40 cells over (0, 0)-(20, 20)


def oracle_of(poly, min_wall=0.0):
    labels = rasterio.features.rasterize([(poly, 1)], out_shape=(40, 40), transform=TRANSFORM, dtype="int32")
    truth = np.array([poly], dtype=object)
    polys, stats = topology_oracle(labels, TRANSFORM, truth, min_wall=min_wall)
    return truth, polys, stats


def test_rectangle_on_pixel_edges_is_exact():
    truth, oracle, stats = oracle_of(shapely.box(2.0, 3.0, 12.0, 9.0))
    m = footprint_metrics(truth, oracle)
    assert m["iou"] == pytest.approx(1.0, abs=1e-12)
    assert m["mta"] == pytest.approx(0.0, abs=1e-6)
    assert stats["offset_err"] == pytest.approx([0.0] * 4, abs=1e-12)


def test_rectangle_between_pixel_edges_is_off_by_the_quantization():
    # walls at x = 2.2 and 12.2: the cell centres 2.25 (inside) and 12.25 (outside) put
    # both on the pixel edges x = 2 and x = 12, 0.2 m off, which turns the 1 m MTA pieces
    # at the corners by about atan(0.2 / 1) = 11°
    truth, oracle, stats = oracle_of(shapely.box(2.2, 3.0, 12.2, 9.0))
    assert oracle[0].bounds == pytest.approx((2.0, 3.0, 12.0, 9.0), abs=1e-12)
    m = footprint_metrics(truth, oracle)
    assert m["iou"] == pytest.approx(9.8 / 10.2, abs=1e-9)
    assert m["mta"] > 5.0
    assert sorted(np.abs(stats["offset_err"])) == pytest.approx([0.0, 0.0, 0.2, 0.2], abs=1e-9)


def test_oblique_walls_are_averaged_over_the_staircase():
    rect = affinity.rotate(shapely.box(4.0, 6.0, 16.0, 13.0), 17.0)
    truth, oracle, stats = oracle_of(rect)
    assert np.abs(stats["offset_err"]).max() < 0.05
    assert footprint_metrics(truth, oracle)["iou"] > 0.99


@pytest.mark.parametrize("dx", [0.0, 0.1, 0.2])
def test_diagonal_walls_are_known_to_within_a_pixel_diagonal(dx):
    # a 45° digital line is the same staircase for any offset within 1/sqrt(2) px across:
    # the fitted line (the middle of that range) is off by at most half of it, 0.177 m
    rect = affinity.translate(affinity.rotate(shapely.box(4.0, 6.0, 16.0, 13.0), 45.0), dx, 0.0)
    _, _, stats = oracle_of(rect)
    assert np.abs(stats["offset_err"]).max() <= 0.25 * RES * np.sqrt(2) + 1e-9


def test_walls_shorter_than_min_wall_are_dropped_and_a_jog_merged():
    # a 0.3 m jog in the bottom wall: 6 vertices; without walls under 0.5 m, a rectangle
    jogged = shapely.Polygon([(2, 3), (8, 3), (8, 3.3), (14, 3.3), (14, 9), (2, 9)])
    _, oracle, stats = oracle_of(jogged, min_wall=0.5)
    assert len(oracle[0].exterior.coords) - 1 == 4
    assert stats["walls_dropped"] == 1 and stats["jogs_merged"] == 1


def test_jitter_is_seeded_and_within_half_a_pixel():
    polys = np.array([shapely.box(0, 0, 5, 5), shapely.box(10, 10, 12, 14)], dtype=object)
    a, b = jitter(polys, seed=3), jitter(polys, seed=3)
    assert all(shapely.equals_exact(a, b, 0.0))
    shift = shapely.get_coordinates(a) - shapely.get_coordinates(polys)
    assert np.abs(shift).max() <= 0.25 and np.abs(shift).max() > 0


def test_true_lines_move_our_edges_onto_the_truth():
    truth = np.array([shapely.box(2.0, 3.0, 12.0, 9.0)], dtype=object)
    ours = np.array([affinity.translate(affinity.rotate(truth[0], 1.0), 0.15, -0.1)], dtype=object)
    assert shapely.equals_exact(true_lines(ours, truth, "lines")[0].normalize(), truth[0].normalize(), 1e-9)
    # offsets only: our (turned) directions through the true walls, so our shape turned
    offsets = true_lines(ours, truth, "offsets")[0]
    edge = np.diff(np.asarray(offsets.exterior.coords)[:2], axis=0)[0]
    angle = np.degrees(np.arctan2(abs(edge[1]), abs(edge[0])))
    assert min(angle, 90.0 - angle) == pytest.approx(1.0, abs=1e-9)
    assert footprint_metrics(truth, [offsets])["iou"] > 0.97
    # directions only: square to the truth again, each edge through our edge's midpoint
    directions = true_lines(ours, truth, "directions")[0]
    walls = np.diff(np.asarray(directions.exterior.coords), axis=0)
    assert np.abs(walls).min(axis=1) == pytest.approx([0.0] * 4, abs=1e-9)
    assert not shapely.equals_exact(directions.normalize(), truth[0].normalize(), 1e-3)


def test_true_lines_leave_unmatched_polygons_and_edges_alone():
    truth = np.array([shapely.box(2.0, 3.0, 12.0, 9.0)], dtype=object)
    far = shapely.box(30.0, 30.0, 35.0, 35.0)
    # a notch the truth does not have: its three edges run along no true wall (its bottom
    # lies 1.5 m from the nearest, beyond ALONG_DIST)
    notched = shapely.Polygon([(2, 3), (6, 3), (6, 4.5), (7, 4.5), (7, 3), (12, 3), (12, 9), (2, 9)])
    out = true_lines(np.array([notched, far], dtype=object), truth, "lines")
    assert shapely.equals_exact(out[1], far, 0.0)
    assert shapely.equals_exact(out[0].normalize(), notched.normalize(), 1e-9)
