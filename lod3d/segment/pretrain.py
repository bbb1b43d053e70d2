"""Self-supervised pretraining of segmentation encoders on unlabelled tiles.

Two masked-image-modelling objectives, chosen by the encoder family:

- **ViT encoders** (``tu-vit_*``, used through DPT): a masked autoencoder (He et al. 2022).
  Patch tokens are shuffled and 75 % dropped; the encoder sees only the visible ones; a
  light transformer decoder puts mask tokens back in place and predicts each masked
  patch's pixels, normalized per patch; the loss is the mean squared error on masked
  patches only.
- **CNN encoders** (Unet etc.): convolutions cannot drop tokens, so masked cells are
  zeroed in the (normalized) input instead, SimMIM-style, and the full encoder-decoder with
  a reconstruction head predicts the input; the loss is the L1 error on masked cells.

Either way only the encoder's weights are kept, in a ``lod3d-pretrain/1`` checkpoint that
``lod3d train --init PATH`` loads (through :func:`lod3d.segment.models.load_encoder_file`).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..io.atomic import atomic_path
from ..progress import progress
from .inputs import NORMALIZATION
from .models import ModelSpec, build_model, encoder_module

__all__ = ["PretrainConfig", "MaskedAutoencoderViT", "pretrain", "save_pretrained", "PRETRAIN_FORMAT"]

PRETRAIN_FORMAT = "lod3d-pretrain/1"


@dataclasses.dataclass
class PretrainConfig:
    steps: int = 300
    batch: int = 8
    patch: int = 256
    lr: float = 1.5e-3
    mask_ratio: float = 0.75
    mask_cell: int = 32  # CNN objective: side of a masked square (cells)
    seed: int = 0
    device: str = "cpu"


class MaskedAutoencoderViT(nn.Module):
    """MAE around a timm ``VisionTransformer`` (kept as ``self.vit``; its keys stay timm's)."""

    def __init__(self, vit: nn.Module, in_chans: int, mask_ratio: float = 0.75, dim: int = 128, depth: int = 2):
        super().__init__()
        from timm.models.vision_transformer import Block

        self.vit, self.mask_ratio = vit, mask_ratio
        self.p = vit.patch_embed.patch_size[0]
        self.embed = nn.Linear(vit.embed_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.blocks = nn.Sequential(*[Block(dim, num_heads=4, mlp_ratio=4.0) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.pred = nn.Linear(dim, self.p * self.p * in_chans)
        nn.init.normal_(self.mask_token, std=0.02)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        p = self.p
        x = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(b, (h // p) * (w // p), p * p * c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        vit = self.vit
        tokens = vit._pos_embed(vit.patch_embed(x))  # prefix tokens + position-embedded patches
        npre = vit.num_prefix_tokens
        prefix, patches = tokens[:, :npre], tokens[:, npre:]
        b, n, d = patches.shape
        keep = max(1, int(round(n * (1 - self.mask_ratio))))
        order = torch.rand(b, n, device=x.device).argsort(1)
        restore = order.argsort(1)
        visible = torch.gather(patches, 1, order[:, :keep, None].expand(-1, -1, d))
        z = vit.norm(vit.blocks(torch.cat([prefix, visible], 1)))[:, npre:]
        z = self.embed(z)
        z = torch.cat([z, self.mask_token.expand(b, n - keep, -1)], 1)
        z = torch.gather(z, 1, restore[:, :, None].expand(-1, -1, z.shape[2]))
        z = z + self.embed(vit.pos_embed[:, npre:] if vit.pos_embed.shape[1] - npre == n
                           else _resampled_pos(vit, x))  # decoder positions from the encoder's
        pred = self.pred(self.norm(self.blocks(z)))
        target = self.patchify(x)
        target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6).sqrt()
        masked = torch.ones(b, n, device=x.device)
        masked[:, :keep] = 0
        masked = torch.gather(masked, 1, restore)
        return (((pred - target) ** 2).mean(-1) * masked).sum() / masked.sum()


def _resampled_pos(vit, x):
    from timm.layers import resample_abs_pos_embed

    grid = (x.shape[2] // vit.patch_embed.patch_size[0], x.shape[3] // vit.patch_embed.patch_size[1])
    return resample_abs_pos_embed(vit.pos_embed, grid, num_prefix_tokens=vit.num_prefix_tokens)[:, vit.num_prefix_tokens:]


def _is_vit(module: nn.Module) -> bool:
    return hasattr(module, "patch_embed") and hasattr(module, "blocks") and hasattr(module, "_pos_embed")


def _random_patches(arrays: list[np.ndarray], n: int, patch: int, rng: np.random.Generator) -> np.ndarray:
    out = []
    for _ in range(n):
        a = arrays[rng.integers(len(arrays))]
        _, h, w = a.shape
        r, c = rng.integers(max(1, h - patch + 1)), rng.integers(max(1, w - patch + 1))
        t = a[:, r:r + patch, c:c + patch]
        t = np.rot90(t, int(rng.integers(4)), axes=(1, 2))
        t = np.pad(t, ((0, 0), (0, patch - t.shape[1]), (0, patch - t.shape[2])))
        out.append(np.ascontiguousarray(t))
    return np.stack(out)


def pretrain(spec: ModelSpec, tiles: list[np.ndarray], config: PretrainConfig) -> tuple[nn.Module, dict]:
    """Pretrain ``spec``'s encoder on unlabelled ``(C, H, W)`` arrays; ``(segmentation model, history)``.

    The returned model holds the pretrained encoder (and a throw-away decoder).
    """
    if not tiles:
        raise InputError("no unlabelled tiles to pretrain on")
    for t in tiles:
        if t.shape[0] != len(spec.channels):
            raise InputError(f"a tile has {t.shape[0]} channels, the encoder takes {len(spec.channels)}")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    device = torch.device(config.device)
    c = len(spec.channels)
    model = build_model(dataclasses.replace(spec, classes=c))  # reconstruction head: one output per channel
    enc = encoder_module(model)
    if _is_vit(enc):
        objective = "mae"
        if config.patch % enc.patch_embed.patch_size[0]:
            raise InputError(f"--patch {config.patch} is not a multiple of the ViT patch size")
        net = MaskedAutoencoderViT(enc, c, config.mask_ratio)
    else:
        objective = "masked-image-modelling"
        net = model
    net = net.to(device).train()
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=0.05, betas=(0.9, 0.95))
    warmup = max(1, config.steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / config.steps))))
    losses = []
    for _ in progress(range(config.steps), desc="pretrain", unit="step"):
        x = torch.from_numpy(_random_patches(tiles, config.batch, config.patch, rng)).to(device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            if objective == "mae":
                loss = net(x)
            else:
                cells = config.patch // config.mask_cell
                hidden = torch.rand(x.shape[0], 1, cells, cells, device=device) < config.mask_ratio
                hidden = F.interpolate(hidden.float(), scale_factor=config.mask_cell, mode="nearest")
                recon = net(x * (1 - hidden)).float()
                loss = ((recon - x).abs() * hidden).sum() / (hidden.sum() * c).clamp_min(1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    return model, {"objective": objective, "steps": config.steps, "loss_first": losses[0],
                   "loss_last": float(np.mean(losses[-10:])), "config": dataclasses.asdict(config)}


def save_pretrained(path, model: nn.Module, spec: ModelSpec, history: dict, data: list[str]) -> Path:
    """Write the encoder's weights and provenance as a ``lod3d-pretrain/1`` checkpoint."""
    payload = {"format": PRETRAIN_FORMAT, "encoder": spec.encoder, "arch": spec.arch,
               "channels": list(spec.channels), "normalization": NORMALIZATION,
               "training": dict(history, data=data),
               "encoder_state_dict": {k: v.detach().cpu() for k, v in encoder_module(model).state_dict().items()}}
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path
