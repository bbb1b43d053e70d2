"""Model factory, packaged ImageNet weights, external foundation checkpoints, checkpoint format."""

import numpy as np
import pytest
import torch

from lod3d.errors import InputError
from lod3d.segment.checkpoint import load_checkpoint, save_checkpoint
from lod3d.segment.inputs import NORMALIZATION
from lod3d.segment.models import (ModelSpec, adapt_input_weight, build_model, encoder_module,
                                  load_encoder_file, load_imagenet_lite0)
from lod3d.torch_compat import ensure_torchvision

torch.set_num_threads(1)
VIT = ModelSpec(arch="DPT", encoder="tu-vit_tiny_patch16_224", channels=("red", "green", "blue", "ndsm"),
                decoder_channels=None)


def test_extra_channels_get_rgb_based_filters_not_a_cyclic_copy():
    w = torch.randn(8, 3, 3, 3)
    out = adapt_input_weight(w, ("red", "green", "blue"), ("pan", "ndsm", "green"))
    torch.testing.assert_close(out[:, 0], w.sum(1))
    torch.testing.assert_close(out[:, 1], w.mean(1))
    torch.testing.assert_close(out[:, 2], w[:, 1])


def test_imagenet_lite0_remap_is_complete_and_classifies_a_photo():
    ensure_torchvision()
    import matplotlib.cbook as cbook
    import timm
    from PIL import Image

    net = timm.create_model("tf_efficientnet_lite0").eval()
    load_imagenet_lite0(net, ("red", "green", "blue"))  # raises if any key is unmatched
    img = Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB").resize((224, 224))
    x = torch.tensor(np.asarray(img), dtype=torch.float32).permute(2, 0, 1)[None] / 127.5 - 1.0
    with torch.inference_mode():
        top = net(x).argmax(1).item()
    assert top == 652  # ImageNet "military uniform": Grace Hopper in her uniform


def test_imagenet_init_of_the_segmentation_encoder_uses_pan_and_ndsm_rules():
    model = build_model(ModelSpec(decoder_channels=(16, 16, 8, 8, 8)))
    load_imagenet_lite0(model, ("pan", "ndsm"))
    stem = encoder_module(model).conv_stem.weight
    assert stem.shape[1] == 2
    torch.testing.assert_close(stem[:, 0], 3 * stem[:, 1])  # pan = sum of RGB, ndsm = mean of RGB


@pytest.fixture(scope="module")
def dpt():
    """One DPT model shared by the loading tests (each load overwrites the encoder)."""
    return build_model(VIT)


def _timm_vit_state():
    ensure_torchvision()
    import timm

    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", num_classes=0).state_dict()


def test_mae_style_checkpoint_loads_into_dpt(tmp_path, dpt):
    """facebookresearch/mae layout: {'model': encoder keys + decoder_*/mask_token}."""
    sd = _timm_vit_state()
    dec = {"mask_token": torch.zeros(1, 1, 128), "decoder_embed.weight": torch.zeros(128, 192),
           "decoder_pos_embed": torch.zeros(1, 197, 128), "decoder_pred.weight": torch.zeros(768, 128)}
    path = tmp_path / "mae_pretrain_vit_tiny.pth"
    torch.save({"model": {**sd, **dec}, "epoch": 799}, path)
    model = dpt
    stats = load_encoder_file(model, path, VIT.channels)
    vit = encoder_module(model)
    assert stats["matched"] == stats["total"]
    torch.testing.assert_close(vit.blocks[3].attn.qkv.weight, sd["blocks.3.attn.qkv.weight"])
    w = sd["patch_embed.proj.weight"]
    torch.testing.assert_close(vit.patch_embed.proj.weight[:, :3], w)
    torch.testing.assert_close(vit.patch_embed.proj.weight[:, 3], w.mean(1))


def test_prithvi_style_checkpoint_loads_into_dpt(tmp_path, dpt):
    """Prithvi-EO-2.0 layout: 'encoder.' prefix, (D, 6, T, p, p) patch embedding, decoder keys."""
    sd = _timm_vit_state()
    prithvi = {f"encoder.{k}": v for k, v in sd.items() if k != "patch_embed.proj.weight"}
    w6 = torch.randn(192, 6, 1, 16, 16)
    prithvi["encoder.patch_embed.proj.weight"] = w6
    prithvi["encoder.pos_embed"] = torch.randn(1, 1 + 14 * 14, 192)
    prithvi["decoder.decoder_embed.weight"] = torch.zeros(512, 192)
    path = tmp_path / "Prithvi_EO_V2_tiny.pt"
    torch.save(prithvi, path)
    model = dpt
    stats = load_encoder_file(model, path, VIT.channels)
    assert stats["matched"] == stats["total"]
    got = encoder_module(model).patch_embed.proj.weight
    torch.testing.assert_close(got[:, 0], w6[:, 2, 0])  # red is HLS band 3
    torch.testing.assert_close(got[:, 2], w6[:, 0, 0])  # blue is HLS band 1


def test_foundation_file_problems_are_user_errors(tmp_path, dpt):
    model = dpt
    with pytest.raises(InputError, match="not found"):
        load_encoder_file(model, tmp_path / "missing.pt", VIT.channels)
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(InputError, match="corrupt.pt: not a readable"):
        load_encoder_file(model, bad, VIT.channels)
    other = tmp_path / "resnet.pt"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(10, 512)}, other)
    with pytest.raises(InputError, match="resnet.pt: only 0 of"):
        load_encoder_file(model, other, VIT.channels)


def test_checkpoint_round_trip_and_bad_files(tmp_path):
    spec = ModelSpec(decoder_channels=(16, 16, 8, 8, 8))
    torch.manual_seed(0)
    model = build_model(spec).eval()
    path = save_checkpoint(tmp_path / "m.pt", model, spec, normalization=NORMALIZATION, threshold=0.4,
                           training={"data": ["seed_1"]})
    loaded, meta = load_checkpoint(path)
    assert meta["spec"] == spec and meta["threshold"] == 0.4 and meta["training"]["data"] == ["seed_1"]
    x = torch.randn(1, 2, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(x), model(x), atol=2e-2, rtol=0)  # float16 storage
    with pytest.raises(InputError, match="nope.pt: model file not found"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00" * 100)
    with pytest.raises(InputError, match="junk.pt: not a readable model checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"state_dict": {}}, tmp_path / "plain.pt")
    with pytest.raises(InputError, match="plain.pt: not a lod3d segmentation checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")
