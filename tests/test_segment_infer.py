"""Tiled inference: seamless blending, equality with whole-image inference, batching."""

import numpy as np
import pytest
import torch
from torch import nn

from lod3d.segment.infer import ALIGN, _edges, _window, predict_logits, tile_layout, tile_window

torch.set_num_threads(1)


class Constant(nn.Module):
    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, x):
        return torch.full((x.shape[0], 1, *x.shape[2:]), self.value)


def small_rf_net(seed=0):
    """Fully convolutional, receptive-field radius 3 (< the 32-cell margin)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(4, 1, 3, padding=1)).eval()


def test_windows_of_neighbouring_tiles_sum_to_one():
    tile, margin, ramp = 256, 32, 32
    stride = tile - 2 * margin - ramp
    a = tile_window(tile, margin, ramp, True, False)
    b = tile_window(tile, margin, ramp, False, True)
    overlap = a[stride:] + b[: tile - stride]
    np.testing.assert_allclose(overlap, 1.0, atol=1e-12)


@pytest.mark.parametrize("length", [1, 33, 300, 1024, 1025, 2000, 4000, 10000])
@pytest.mark.parametrize("tile,overlap", [(1536, 416), (1024, 96), (512, 288), (192, 96)])
def test_tile_layout_spans_the_aligned_raster_with_weights_summing_to_one(length, tile, overlap):
    origins, size = tile_layout(length, tile, overlap)
    full = -(-length // ALIGN) * ALIGN
    assert size <= tile and size % ALIGN == 0
    assert origins[0] == 0 and origins[-1] + size == full and all(o % ALIGN == 0 for o in origins)
    assert all(size - (b - a) >= overlap for a, b in zip(origins, origins[1:]))
    if len(origins) > 1:  # the fewest tiles: one fewer cannot cover the raster with this overlap
        assert (len(origins) - 1) * tile - (len(origins) - 2) * -(-overlap // ALIGN) * ALIGN < full
    edges = _edges(origins, size, 32)
    total = np.zeros(full)
    for i, o in enumerate(origins):
        total[o:o + size] += _window(size, i, edges)
    np.testing.assert_allclose(total, 1.0, atol=1e-12)


@pytest.mark.parametrize("shape", [(1, 700, 500), (2, 37, 1100)])
def test_constant_model_gives_a_constant_output(shape):
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    out = predict_logits(Constant(2.5), x, tile=256, batch=3)
    assert out.shape == (1, *shape[1:])
    np.testing.assert_allclose(out, 2.5, rtol=0, atol=1e-6)


def test_tiled_equals_whole_image_on_2000_by_2000():
    x = np.random.default_rng(1).normal(size=(2, 2000, 2000)).astype(np.float32)
    net = small_rf_net()
    tiled = predict_logits(net, x, tile=512, margin=32, ramp=32, batch=4)
    with torch.inference_mode():
        whole = net(torch.from_numpy(x)[None])[0].numpy()
    inner = (slice(None), slice(8, -8), slice(8, -8))
    np.testing.assert_allclose(tiled[inner], whole[inner], atol=1e-5)
