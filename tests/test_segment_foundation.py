"""DINOv3 and TerraMind checkpoints: the released key layouts, written here with random
values, load into timm encoders (DPT for DINOv3), the values land where they should, and
layout mismatches are one-line errors naming the file."""

import pytest
import torch
import torch.nn.functional as F

from lod3d.errors import InputError
from lod3d.segment.models import ModelSpec, build_model, encoder_module, load_encoder_file
from lod3d.torch_compat import ensure_torchvision

torch.set_num_threads(1)

DINO = ModelSpec(arch="DPT", encoder="tu-vit_small_patch16_dinov3", channels=("red", "green", "blue", "ndsm"),
                 decoder_channels=None)


def dinov3_vits16_state(seed=0, rope_base=100.0):
    """The key layout of Meta's dinov3_vits16_pretrain_lvd1689m-08c60483.pth (ViT-S/16: dim 384,
    12 blocks, 6 heads, 4 storage tokens, masked-K qkv bias, layer scale, RoPE periods)."""
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, scale=0.02):
        return torch.randn(*shape, generator=g) * scale

    dim, depth, head = 384, 12, 64
    sd = {"cls_token": rnd(1, 1, dim), "storage_tokens": rnd(1, 4, dim), "mask_token": torch.zeros(1, dim),
          "patch_embed.proj.weight": rnd(dim, 3, 16, 16), "patch_embed.proj.bias": rnd(dim),
          # dinov3.layers.RopePositionEmbedding: base ** (2 * arange(D_head // 4) / (D_head // 2)), stored bf16
          "rope_embed.periods": (rope_base ** (2 * torch.arange(head // 4) / (head // 2))).bfloat16()}
    for i in range(depth):
        b = f"blocks.{i}."
        qkv_bias = rnd(3 * dim) * 0  # the released distilled ViT-S: all-zero qkv biases
        mask = torch.ones(3 * dim)
        mask[dim:2 * dim] = 0
        sd.update({b + "norm1.weight": 1 + rnd(dim), b + "norm1.bias": rnd(dim),
                   b + "attn.qkv.weight": rnd(3 * dim, dim), b + "attn.qkv.bias": qkv_bias,
                   b + "attn.qkv.bias_mask": mask,
                   b + "attn.proj.weight": rnd(dim, dim), b + "attn.proj.bias": rnd(dim),
                   b + "ls1.gamma": 0.1 + rnd(dim), b + "norm2.weight": 1 + rnd(dim), b + "norm2.bias": rnd(dim),
                   b + "mlp.fc1.weight": rnd(4 * dim, dim), b + "mlp.fc1.bias": rnd(4 * dim),
                   b + "mlp.fc2.weight": rnd(dim, 4 * dim), b + "mlp.fc2.bias": rnd(dim),
                   b + "ls2.gamma": 0.1 + rnd(dim)})
    sd["norm.weight"], sd["norm.bias"] = 1 + rnd(dim), rnd(dim)
    return sd


@pytest.fixture(scope="module")
def dino_dpt():
    return build_model(DINO).eval()


@pytest.fixture(scope="module")
def dino_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("dinov3") / "dinov3_vits16_pretrain_lvd1689m-08c60483.pth"
    sd = dinov3_vits16_state()
    torch.save(sd, path)
    return path, sd


def _out(model, seed=3):
    x = torch.randn(1, 4, 64, 96, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        return model(x)


def test_dinov3_vits16_checkpoint_loads_into_dpt(tmp_path, dino_dpt, dino_file):
    path, sd = dino_file
    stats = load_encoder_file(dino_dpt, path, DINO.channels)
    assert stats["layout"] == "dinov3" and stats["matched"] == stats["total"] and not stats["skipped"]
    assert {"mask_token", "rope_embed.periods", "blocks.0.attn.qkv.bias_mask"} <= set(stats["dropped"])
    vit = encoder_module(dino_dpt)
    torch.testing.assert_close(vit.reg_token, sd["storage_tokens"], rtol=0, atol=0)
    torch.testing.assert_close(vit.blocks[7].gamma_2, sd["blocks.7.ls2.gamma"], rtol=0, atol=0)
    torch.testing.assert_close(vit.blocks[11].mlp.fc2.weight, sd["blocks.11.mlp.fc2.weight"], rtol=0, atol=0)
    w = sd["patch_embed.proj.weight"]
    torch.testing.assert_close(vit.patch_embed.proj.weight[:, :3], w, rtol=0, atol=0)
    torch.testing.assert_close(vit.patch_embed.proj.weight[:, 3], w.mean(1))  # nDSM: mean RGB filter

    # the weights are used: a changed weight deep in the encoder changes the segmentation
    # output, and loading the original file again restores it exactly
    before = _out(dino_dpt)
    changed = dict(sd, **{"blocks.8.mlp.fc1.weight": sd["blocks.8.mlp.fc1.weight"] * 3})
    other = tmp_path / "changed.pth"
    torch.save(changed, other)
    load_encoder_file(dino_dpt, other, DINO.channels)
    assert (_out(dino_dpt) - before).abs().max() > 1e-3
    load_encoder_file(dino_dpt, path, DINO.channels)
    torch.testing.assert_close(_out(dino_dpt), before, rtol=0, atol=0)


def test_dinov3_layout_mismatches_name_the_file(tmp_path, dino_dpt, dino_file):
    _, sd = dino_file
    cases = {
        "missing_block.pth": ({k: v for k, v in sd.items() if not k.startswith("blocks.4.mlp.")}, "missing 4"),
        "extra_block.pth": (dict(sd, **{"blocks.12.ls1.gamma": torch.ones(384)}), "unexpected or wrong shape 1"),
        "rope_base.pth": (dict(sd, **{"rope_embed.periods": 1000.0 ** (2 * torch.arange(16) / 32)}), "RoPE periods"),
        "qkv_bias.pth": (dict(sd, **{"blocks.0.attn.qkv.bias": torch.ones(3 * 384)}), "_qkvb"),
    }
    for name, (state, message) in cases.items():
        torch.save(state, tmp_path / name)
        with pytest.raises(InputError, match=rf"{name}: .*{message}"):
            load_encoder_file(dino_dpt, tmp_path / name, DINO.channels)


# ---- TerraMind v1 -------------------------------------------------------------------------

TM_DIM, TM_DEPTH, TM_HEADS = 64, 2, 2  # small dims, the TerraMind v1 layout (base: 768, 12, 12)
S2L2A = "untok_sen2l2a@224"


def terramind_state(seed=0):
    """Key layout of TerraMind_v1_base.pt (terratorch TerraMind: 4M-style encoder and decoder)."""
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, scale=0.05):
        return torch.randn(*shape, generator=g) * scale

    d, hid = TM_DIM, int(2 * 4 * TM_DIM / 3)
    sd = {}
    for mod, c in ((S2L2A, 12), ("untok_sen1grd@224", 2), ("untok_dem@224", 1)):
        e = f"encoder_embeddings.{mod}."
        sd.update({e + "pos_emb": rnd(1, 196, d), e + "mod_emb": rnd(1, 1, d), e + "proj.weight": rnd(d, 16 * 16 * c)})
    sd["encoder_embeddings.tok_lulc@224.token_emb.weight"] = rnd(4375, d)
    for i in range(TM_DEPTH):
        b = f"encoder.{i}."
        sd.update({b + "norm1.weight": 1 + rnd(d), b + "norm1.bias": torch.zeros(d),  # bias-free LN: zero buffer
                   b + "attn.qkv.weight": rnd(3 * d, d), b + "attn.proj.weight": rnd(d, d),
                   b + "norm2.weight": 1 + rnd(d), b + "norm2.bias": torch.zeros(d),
                   b + "mlp.fc1.weight": rnd(hid, d), b + "mlp.fc2.weight": rnd(d, hid), b + "mlp.fc3.weight": rnd(hid, d)})
    sd.update({"encoder_norm.weight": 1 + rnd(d), "encoder_norm.bias": torch.zeros(d), "mask_token": rnd(1, 1, d),
               "decoder_proj_context.weight": rnd(d, d), "decoder_proj_context.bias": rnd(d),
               "decoder.0.self_attn.qkv.weight": rnd(3 * d, d), "decoder.0.cross_attn.kv.weight": rnd(2 * d, d),
               "decoder_norm.weight": 1 + rnd(d), "decoder_embeddings.tok_lulc@224.token_emb.weight": rnd(4375, d)})
    return sd


def terramind_reference(sd, x, mod=S2L2A, heads=TM_HEADS):
    """TerraMind's own encoder forward (terratorch TerraMindViT, one image modality) on (B, C, H, W)."""
    b, c, h, w = x.shape
    p = 16
    e = f"encoder_embeddings.{mod}."
    patches = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1).reshape(b, -1, p * p * c)  # (ph pw c)
    t = patches @ sd[e + "proj.weight"].T + sd[e + "pos_emb"] + sd[e + "mod_emb"]
    i = 0
    while f"encoder.{i}.norm1.weight" in sd:
        k = f"encoder.{i}."
        y = F.layer_norm(t, (t.shape[-1],), sd[k + "norm1.weight"], sd[k + "norm1.bias"], eps=1e-6)
        q, kk, v = (y @ sd[k + "attn.qkv.weight"].T).reshape(b, -1, 3, heads, t.shape[-1] // heads).permute(2, 0, 3, 1, 4)
        a = torch.softmax(q @ kk.transpose(-2, -1) * q.shape[-1] ** -0.5, -1) @ v
        t = t + a.transpose(1, 2).reshape(b, -1, t.shape[-1]) @ sd[k + "attn.proj.weight"].T
        y = F.layer_norm(t, (t.shape[-1],), sd[k + "norm2.weight"], sd[k + "norm2.bias"], eps=1e-6)
        t = t + (F.silu(y @ sd[k + "mlp.fc1.weight"].T) * (y @ sd[k + "mlp.fc3.weight"].T)) @ sd[k + "mlp.fc2.weight"].T
        i += 1
    return F.layer_norm(t, (t.shape[-1],), sd["encoder_norm.weight"], sd["encoder_norm.bias"], eps=1e-6)


@pytest.fixture()
def terramind_vit():
    ensure_torchvision()
    import timm

    from lod3d.segment.foundation import register_terramind

    register_terramind()
    return timm.create_model("terramind_v1_base", embed_dim=TM_DIM, depth=TM_DEPTH, num_heads=TM_HEADS,
                             in_chans=4).eval()


def test_terramind_checkpoint_matches_terramind_forward(tmp_path, terramind_vit):
    sd = terramind_state()
    path = tmp_path / "TerraMind_v1_base.pt"
    torch.save(sd, path)
    channels = ("red", "green", "blue", "nir")
    stats = load_encoder_file(terramind_vit, path, channels)
    assert stats["layout"] == "terramind" and stats["matched"] == stats["total"] and not stats["skipped"]
    assert "decoder_norm.weight" in stats["dropped"] and "encoder_embeddings.untok_dem@224.proj.weight" in stats["dropped"]

    # our 4 channels are Sentinel-2 L2A bands 4, 3, 2, 8 (indices 3, 2, 1, 7); the others zero
    x = torch.randn(2, 4, 224, 224, generator=torch.Generator().manual_seed(1))
    s2 = torch.zeros(2, 12, 224, 224)
    s2[:, [3, 2, 1, 7]] = x
    with torch.inference_mode():
        ours = terramind_vit.forward_features(x)
    torch.testing.assert_close(ours, terramind_reference(sd, s2), rtol=1e-4, atol=1e-4)

    # a changed deep weight (last block's gated MLP) changes the output
    changed = dict(sd)
    changed[f"encoder.{TM_DEPTH - 1}.mlp.fc3.weight"] = sd[f"encoder.{TM_DEPTH - 1}.mlp.fc3.weight"] * 2
    torch.save(changed, tmp_path / "changed.pt")
    load_encoder_file(terramind_vit, tmp_path / "changed.pt", channels)
    with torch.inference_mode():
        assert (terramind_vit.forward_features(x) - ours).abs().max() > 1e-3


def test_terramind_layout_mismatches_name_the_file(tmp_path, terramind_vit):
    sd = terramind_state()
    channels = ("red", "green", "blue", "nir")
    cases = {
        "no_block.pt": ({k: v for k, v in sd.items() if not k.startswith("encoder.1.attn.")}, "missing 2"),
        "qk_norm.pt": (dict(sd, **{"encoder.0.attn.q_norm.weight": torch.ones(32)}), "unexpected or wrong shape 1"),
        "no_s2.pt": ({k: v for k, v in sd.items() if "untok_" not in k}, "no TerraMind image modality"),
    }
    for name, (state, message) in cases.items():
        torch.save(state, tmp_path / name)
        with pytest.raises(InputError, match=rf"{name}: .*{message}"):
            load_encoder_file(terramind_vit, tmp_path / name, channels)
    torch.save(sd, tmp_path / "TerraMind_v1_base.pt")
    with pytest.raises(InputError, match="TerraMind_v1_base.pt: no TerraMind image modality 'untok_sen2rgb@224'"):
        load_encoder_file(terramind_vit, tmp_path / "TerraMind_v1_base.pt", channels, modality="untok_sen2rgb@224")
