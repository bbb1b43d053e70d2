"""Key layouts of released geospatial/vision foundation checkpoints, mapped onto timm encoders.

Two layouts that a plain timm state dict does not cover are converted here, from the
tensors of a local file (no network, no third-party model code):

- **DINOv3 ViTs** (Meta's ``dinov3_vits16_pretrain_lvd1689m-*.pth`` and siblings, including
  the SAT-493M satellite ViT-L): ``cls_token``, ``storage_tokens`` (register tokens),
  ``mask_token``, ``rope_embed.periods`` (RoPE, no learned position embedding),
  ``patch_embed.proj.*``, ``blocks.N.{norm1, attn.qkv (+ bias_mask), attn.proj, ls1.gamma,
  norm2, mlp.fc1, mlp.fc2, ls2.gamma}``, ``norm.*``. Target: timm's own DINOv3 ports
  (``vit_small_patch16_dinov3``, ``vit_large_patch16_dinov3``, ``*_qkvb``...; timm.models.eva),
  the same renaming as timm's converter: ``storage_tokens`` -> ``reg_token``, ``ls1.gamma``
  -> ``gamma_1``, the masked-K ``qkv.bias`` -> ``q_bias`` + ``v_bias`` (``*_qkvb`` encoders)
  or dropped where it is zero (the released distilled ViT-S/B/L). The checkpoint's RoPE
  periods must equal the ones timm computes for the encoder (else: wrong RoPE base).
- **TerraMind v1** (IBM/ESA, ``TerraMind_v1_base.pt`` / ``_large.pt``, the 4M-style
  any-to-any model): ``encoder_embeddings.<modality>.{proj.weight, pos_emb, mod_emb}``
  per input modality (``untok_sen2l2a@224``, ``untok_sen2rgb@224``, ``untok_dem@224``...,
  a bias-free linear patch projection over ``(ph pw c)``-ordered pixels and fixed
  sin-cos positions), ``encoder.N.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2,
  mlp.fc3}`` (bias-free, SwiGLU: ``fc2(silu(fc1 x) * fc3 x)``), ``encoder_norm``, plus the
  decoder (``decoder*``, ``mask_token``), dropped. Target: the timm ViTs registered here,
  ``terramind_v1_base`` / ``terramind_v1_large`` (no class token, SwiGLU without biases,
  LayerNorm eps 1e-6), encoders ``tu-terramind_v1_base`` for smp's DPT. One image
  modality's projection becomes the patch embedding (the first present of
  :data:`TERRAMIND_MODALITIES`, or the one named); its ``pos_emb + mod_emb`` become the
  position embedding.

Each converter returns ``(state_dict in timm names, names of the checkpoint's input
bands, keys dropped on purpose)``; anything else that does not fit is the caller's error.
"""

from __future__ import annotations

import re
from functools import partial

import torch
from torch import nn

from ..errors import InputError

__all__ = ["detect_layout", "convert_dinov3", "convert_terramind", "register_terramind",
           "TERRAMIND_MODALITIES", "TERRAMIND_BANDS"]

# Image modalities of TerraMind v1 with a pixel patch projection, in order of preference
# for very-high-resolution optical input, and their band order (terratorch PRETRAINED_BANDS)
# in lod3d's channel names.
_S2 = ("coastal", "blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir_narrow")
TERRAMIND_BANDS = {
    "untok_sen2l2a@224": _S2 + ("water_vapour", "swir1", "swir2"),
    "untok_sen2l1c@224": _S2 + ("water_vapour", "cirrus", "swir1", "swir2"),
    "untok_sen2rgb@224": ("red", "green", "blue"),
    "untok_sen1grd@224": ("vv", "vh"),
    "untok_sen1rtc@224": ("vv", "vh"),
    "untok_dem@224": ("dem",),
}
TERRAMIND_MODALITIES = tuple(TERRAMIND_BANDS)


def detect_layout(sd: dict) -> str:
    """``"dinov3"``, ``"terramind"`` or ``"generic"`` from a checkpoint's key names."""
    keys = list(sd)
    if any(k.startswith("encoder_embeddings.") for k in keys) and any(re.match(r"encoder\.\d+\.", k) for k in keys):
        return "terramind"
    if any(k.endswith(("rope_embed.periods", "storage_tokens")) for k in keys):
        return "dinov3"
    return "generic"


def convert_dinov3(sd: dict, target: nn.Module, path) -> tuple[dict, tuple[str, ...], list[str]]:
    """DINOv3 ViT keys -> timm ``Eva`` (DINOv3 port) keys; see the module docstring."""
    own = target.state_dict()
    for prefix in ("module.", "backbone."):
        if all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    out, dropped = {}, []
    periods = sd.get("rope_embed.periods")
    rope = getattr(target, "rope", None)
    if periods is not None:
        mine = getattr(rope, "periods", None)  # the released files store them as bfloat16
        if mine is None or mine.shape != periods.shape or not torch.allclose(mine.float(), periods.float(), rtol=1e-2):
            raise InputError(f"{path}: DINOv3 RoPE periods {tuple(periods.shape)} do not match encoder "
                             f"{type(target).__name__}'s (another RoPE base or head size: pick the matching "
                             "tu-vit_*_dinov3 encoder)")
    for key, value in sd.items():
        if key in ("mask_token", "rope_embed.periods") or key.endswith(".bias_mask") \
                or key.startswith(("local_cls_norm.", "projectors.", "head.")):
            dropped.append(key)  # pretraining-only or recomputed
            continue
        k = key.replace("storage_tokens", "reg_token").replace("ls1.gamma", "gamma_1").replace("ls2.gamma", "gamma_2")
        if k.endswith("attn.qkv.bias"):
            q, _, v = value.chunk(3)
            q_key, v_key = k.replace("qkv.bias", "q_bias"), k.replace("qkv.bias", "v_bias")
            if q_key in own:
                out[q_key], out[v_key] = q, v
            elif torch.count_nonzero(q) or torch.count_nonzero(v):
                raise InputError(f"{path}: {key} has non-zero query/value biases but the encoder has none; "
                                 "use its *_qkvb variant (e.g. tu-vit_small_patch16_dinov3_qkvb)")
            else:
                dropped.append(key)  # all-zero biases (the released distilled ViTs)
            continue
        out[k] = value
    return out, ("red", "green", "blue"), dropped


def convert_terramind(sd: dict, path, modality: str | None = None,
                      patch_size: int = 16) -> tuple[dict, tuple[str, ...], list[str]]:
    """TerraMind v1 keys -> keys of the timm ViT of :func:`register_terramind`."""
    for prefix in ("module.", "model."):
        if all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    present = sorted({k.split(".")[1] for k in sd if k.startswith("encoder_embeddings.") and k.endswith(".proj.weight")})
    if modality is None:
        modality = next((m for m in TERRAMIND_MODALITIES if m in present), present[0] if present else None)
    if modality not in present:
        raise InputError(f"{path}: no TerraMind image modality {modality!r} with a patch projection "
                         f"(found {present or 'none'})")
    emb = f"encoder_embeddings.{modality}."
    out, dropped = {}, []
    w = sd[emb + "proj.weight"]  # (D, ph * pw * C), pixels ordered (ph, pw, c)
    n_in = w.shape[1]
    if n_in % (patch_size * patch_size):
        raise InputError(f"{path}: {emb}proj.weight has {n_in} inputs, not a multiple of {patch_size}x{patch_size}")
    c = n_in // (patch_size * patch_size)
    out["patch_embed.proj.weight"] = w.reshape(w.shape[0], patch_size, patch_size, c).permute(0, 3, 1, 2).contiguous()
    if emb + "pos_emb" not in sd or emb + "mod_emb" not in sd:
        raise InputError(f"{path}: {emb}pos_emb / mod_emb missing; not a TerraMind v1 checkpoint?")
    out["pos_embed"] = sd[emb + "pos_emb"] + sd[emb + "mod_emb"]
    out["patch_embed.proj.bias"] = torch.zeros(w.shape[0], dtype=w.dtype)  # timm's conv has a bias, TerraMind none
    mlp = {"fc1": "fc1_g", "fc3": "fc1_x", "fc2": "fc2"}
    for key, value in sd.items():
        if key.startswith(emb):
            continue
        m = re.fullmatch(r"encoder\.(\d+)\.(.+)", key)
        if m:
            rest = m.group(2)
            mm = re.fullmatch(r"mlp\.(fc[123])\.(weight|bias)", rest)
            if mm:
                rest = f"mlp.{mlp[mm.group(1)]}.{mm.group(2)}"
            out[f"blocks.{m.group(1)}.{rest}"] = value
        elif key.startswith("encoder_norm."):
            out["norm." + key[len("encoder_norm."):]] = value
        elif key.startswith(("encoder_embeddings.", "decoder", "mask_token", "register_tokens", "tokenizer")):
            dropped.append(key)  # other modalities, the any-to-any decoder
        else:
            out[key] = value  # unknown: reported as unexpected by the caller
    # LayerNorms without bias keep a zero buffer, which some exports leave out
    for key in [k for k in out if re.fullmatch(r"(blocks\.\d+\.norm[12]|norm)\.weight", k)]:
        out.setdefault(key[:-len("weight")] + "bias", torch.zeros_like(out[key]))
    bands = TERRAMIND_BANDS.get(modality, ())
    return out, bands if len(bands) == c else (), dropped


def _terramind_vit(variant: str, size: tuple[int, int, int], pretrained: bool = False, **kwargs):
    from timm.layers import SwiGLU
    from timm.models import build_model_with_cfg
    from timm.models.vision_transformer import VisionTransformer

    if pretrained:
        raise InputError(f"{variant}: weights come from a local file (lod3d train --init TerraMind_v1_*.pt)")
    embed_dim, depth, num_heads = size
    embed_dim = kwargs.pop("embed_dim", embed_dim)
    hidden = int(2 * 4 * embed_dim / 3)  # TerraMind's gated MLP: 2/3 of 4 x dim
    args = dict(img_size=224, patch_size=16, embed_dim=embed_dim, depth=depth, num_heads=num_heads,
                mlp_ratio=(hidden + 0.5) / embed_dim, mlp_layer=SwiGLU, act_layer=nn.SiLU,
                qkv_bias=False, proj_bias=False, class_token=False, global_pool="avg", fc_norm=False,
                norm_layer=partial(nn.LayerNorm, eps=1e-6))
    args.update(kwargs)
    out_indices = args.pop("out_indices", 3)
    args["pretrained_cfg"] = args.get("pretrained_cfg") or dict(input_size=(3, 224, 224), num_classes=0)
    return build_model_with_cfg(VisionTransformer, variant, pretrained=False,
                                feature_cfg=dict(out_indices=out_indices, feature_cls="getter"), **args)


def register_terramind() -> None:
    """Register ``terramind_v1_base`` and ``terramind_v1_large`` with timm (idempotent)."""
    import timm
    from timm.models import register_model

    if "terramind_v1_base" in timm.list_models("terramind_*"):
        return

    def terramind_v1_base(pretrained: bool = False, **kwargs):
        """TerraMind v1 base encoder (ViT-B/16, SwiGLU, no biases, no class token)."""
        return _terramind_vit("terramind_v1_base", (768, 12, 12), pretrained, **kwargs)

    def terramind_v1_large(pretrained: bool = False, **kwargs):
        """TerraMind v1 large encoder (ViT-L/16, SwiGLU, no biases, no class token)."""
        return _terramind_vit("terramind_v1_large", (1024, 24, 16), pretrained, **kwargs)

    for fn in (terramind_v1_base, terramind_v1_large):
        fn.__module__ = __name__
        register_model(fn)
