"""Segmentation checkpoints: weights plus everything needed to use them correctly.

A checkpoint is a ``torch.save`` dict (loaded with ``weights_only=True``: no code runs)::

    format         "lod3d-segment/1"
    spec           ModelSpec as a dict (architecture, encoder, channels, decoder widths)
    channels       input channel names, in order (also in spec; kept top-level for tools)
    normalization  how inputs were scaled (lod3d.segment.inputs.NORMALIZATION)
    threshold      probability above which a cell is a building
    training       free-form provenance: data, seeds, init, steps, losses, metrics
    state_dict     the weights, stored as float16 to halve the file (float32 at load)

The shipped default model lives in ``lod3d/data/models/`` (:data:`DEFAULT_MODEL`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import InputError
from ..io.atomic import atomic_path
from .models import ModelSpec, build_model

__all__ = ["FORMAT", "DEFAULT_MODEL", "save_checkpoint", "load_checkpoint", "read_checkpoint"]

FORMAT = "lod3d-segment/1"
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "data" / "models" / "buildings_lite0_pan_ndsm.pt"


def save_checkpoint(path, model: nn.Module, spec: ModelSpec, *, normalization: dict,
                    threshold: float = 0.5, training: dict | None = None) -> Path:
    """Write ``model`` and its metadata to ``path`` atomically."""
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    payload = {"format": FORMAT, "spec": spec.to_dict(), "channels": list(spec.channels),
               "normalization": normalization, "threshold": float(threshold),
               "training": training or {}, "state_dict": state}
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def read_checkpoint(path) -> dict:
    """The checkpoint dict, validated; :class:`InputError` naming the file if unusable."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: model file not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged zip/pickle raises one of many exception types
        raise InputError(f"{path}: not a readable model checkpoint ({type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise InputError(f"{path}: not a lod3d segmentation checkpoint (format {found!r}, expected {FORMAT!r}); "
                         "`lod3d train` writes one")
    return ckpt


def load_checkpoint(path) -> tuple[nn.Module, dict]:
    """``(model in eval mode, metadata)`` from a checkpoint file."""
    ckpt = read_checkpoint(path)
    spec = ModelSpec.from_dict(ckpt["spec"])
    model = build_model(spec)
    own = model.state_dict()
    state = {k: v.to(own[k].dtype) if k in own else v for k, v in ckpt["state_dict"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise InputError(f"{path}: weights do not fit {spec.arch}/{spec.encoder}: {str(exc).splitlines()[0]}") from None
    meta = {k: v for k, v in ckpt.items() if k != "state_dict"}
    meta["spec"] = spec
    meta["path"] = str(path)
    return model.eval(), meta
