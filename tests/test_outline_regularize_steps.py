"""The step between two near-parallel walls: its own wall, placed on the samples that
show it (``_step_walls``), not where one staircase crosses the walls' mid-line."""

import numpy as np
import pytest

from lod3d.evaluate import mask_reference, mta
from lod3d.outline import outline_mask
from lod3d.outline.synthetic import random_scene
from lod3d.raster import Raster


@pytest.fixture(scope="module")
def scene():
    return random_scene(11, n_side=20, noise=0.0)   # the benchmark's synthetic set


@pytest.mark.parametrize("idx, before", [(373, 19.01), (161, 14.91), (72, 10.35)])
def test_step_between_parallel_walls_is_placed_on_its_samples(scene, idx, before):
    """Oblique L-shapes and T-shapes of the synthetic set whose step between two parallel
    walls went where the staircase crosses their mid-line, a pixel along the wall: MTA
    ``before``; on the step's samples 10.4, 9.3 and 6.2 degrees, same vertex count."""
    mask, transform, truth = scene
    one = (mask == idx + 1).astype(np.uint8)
    poly = outline_mask(Raster(one, transform, None)).polygons[0]
    ref = mask_reference(np.array([truth[idx]], dtype=object), 0.5)
    assert mta(ref, [poly])[0] < before - 3.0
