"""Training pieces: label budgets, boundary weights, losses."""

import numpy as np
import pytest
import torch

from lod3d.errors import InputError
from lod3d.segment.train import IGNORE, Sample, boundary_weights, iou, restrict_labels, segmentation_loss


def test_restrict_labels_keeps_the_requested_share_of_blocks():
    y = (np.random.default_rng(0).random((256, 256)) > 0.8).astype(np.uint8)
    samples = [Sample(np.zeros((2, 256, 256), np.float32), y)]
    kept = restrict_labels(samples, 0.1, seed=3)[0].y
    labelled = kept != IGNORE
    assert labelled.sum() == round(0.1 * 64) * 32 * 32
    np.testing.assert_array_equal(kept[labelled], y[labelled])
    np.testing.assert_array_equal(restrict_labels(samples, 0.1, seed=3)[0].y, kept)  # deterministic
    assert restrict_labels(samples, 1.0)[0].y is y


def test_boundary_weights_peak_at_edges_and_vanish_where_unlabelled():
    y = np.zeros((40, 40), np.uint8)
    y[10:30, 10:30] = 1
    y[:, 38:] = IGNORE
    w = boundary_weights(y, strength=2.0)
    assert w[20, 20] == pytest.approx(1.0, abs=1e-3)
    assert w[10, 20] > 2.5
    assert (w[:, 38:] == 0).all()


@pytest.mark.parametrize("kind", ["bce", "focal", "dice", "lovasz", "bce+dice"])
def test_losses_prefer_the_right_answer_and_ignore_unlabelled(kind):
    y = torch.zeros(1, 16, 16, dtype=torch.uint8)
    y[:, 4:12, 4:12] = 1
    w = torch.ones(1, 16, 16)
    good = (y.float() * 2 - 1)[:, None] * 6
    bad = -good
    assert segmentation_loss(good, y, w, kind) < segmentation_loss(bad, y, w, kind)
    y2, w2 = y.clone(), w.clone()
    y2[:, :2] = IGNORE
    w2[:, :2] = 0
    noisy = good.clone()
    noisy[:, :, :2] = -50  # wrong, but only where unlabelled
    torch.testing.assert_close(segmentation_loss(noisy, y2, w2, kind), segmentation_loss(good, y2, w2, kind))


def test_unknown_loss_term_is_a_user_error():
    with pytest.raises(InputError, match="hinge"):
        segmentation_loss(torch.zeros(1, 1, 4, 4), torch.zeros(1, 4, 4, dtype=torch.uint8), torch.ones(1, 4, 4), "hinge")


def test_iou():
    a = np.array([1, 1, 0, 0], bool)
    assert iou(a, np.array([1, 0, 1, 0], bool)) == pytest.approx(1 / 3)
    assert iou(~a & a, ~a & a) == 1.0


def test_masked_autoencoder_learns_on_a_tiny_vit():
    from lod3d.segment.pretrain import MaskedAutoencoderViT
    from lod3d.torch_compat import ensure_torchvision

    ensure_torchvision()
    import timm

    torch.manual_seed(0)
    torch.set_num_threads(1)
    vit = timm.create_model("vit_tiny_patch16_224", img_size=64, in_chans=2, num_classes=0, depth=2,
                            dynamic_img_size=True)
    mae = MaskedAutoencoderViT(vit, in_chans=2, dim=32, depth=1)
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    x = torch.stack([torch.sin(xx / 5), torch.cos(yy / 7)])[None].repeat(4, 1, 1, 1)
    opt = torch.optim.AdamW(mae.parameters(), lr=2e-3)
    losses = []
    for _ in range(60):
        loss = mae(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
