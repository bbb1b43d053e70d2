"""Tiled inference: seamless blending, equality with whole-image inference, batching."""

import numpy as np
import pytest
import torch
from torch import nn

from lod3d.segment.infer import predict_logits, tile_window

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


@pytest.mark.parametrize("shape", [(1, 700, 500), (2, 37, 1100)])
def test_constant_model_gives_a_constant_output(shape):
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    out = predict_logits(Constant(2.5), x, tile=256, batch=3)
    assert out.shape == (1, *shape[1:])
    np.testing.assert_allclose(out, 2.5, rtol=0, atol=1e-6)


def test_tiled_equals_whole_image_on_2000_by_2000():
    x = np.random.default_rng(1).normal(size=(2, 2000, 2000)).astype(np.float32)
    net = small_rf_net()
    tiled = predict_logits(net, x, tile=512, batch=4)
    with torch.inference_mode():
        whole = net(torch.from_numpy(x)[None])[0].numpy()
    inner = (slice(None), slice(8, -8), slice(8, -8))
    np.testing.assert_allclose(tiled[inner], whole[inner], atol=1e-5)
