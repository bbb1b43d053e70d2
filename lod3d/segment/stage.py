"""The ``segment`` stage: building probability and mask from a true ortho and an nDSM.

Two methods: ``"model"`` (a checkpoint, by default the shipped one, run by tiled
inference) and ``"classical"`` (nDSM height/roughness rules: no weights, no torch).
Both write ``building_probability`` (float32 in [0, 1]) and ``mask`` (uint8 0/1) on the
ortho's grid, with its georeference.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..pipeline import register_stage
from ..raster import Raster
from .classical import classical_probability
from .inputs import align_ndsm, stack_channels

__all__ = ["Segment", "segment"]

METHODS = ("model", "classical")


def segment(ortho: Raster, ndsm: Raster, *, method: str = "model", model=None, threshold: float | None = None,
            tile: int = 1536, batch: int = 1, device: str = "auto", threads: int | None = 1,
            ortho_name: str = "ortho", ndsm_name: str = "nDSM") -> tuple[Raster, Raster]:
    """``(probability, mask)`` rasters on the ortho's grid.

    ``model`` is a checkpoint path (default: the shipped model) or a ``(module, metadata)``
    pair from :func:`lod3d.segment.checkpoint.load_checkpoint`. ``threshold`` defaults to
    the checkpoint's (0.5 for the classical method).
    """
    if method not in METHODS:
        raise InputError(f"unknown segmentation method {method!r}; choose from {METHODS}")
    if method == "classical":
        heights = align_ndsm(ortho, ndsm, ndsm_name)
        ndvi = None
        if ortho.data.ndim == 3 and ortho.data.shape[0] == 4:
            ndvi = stack_channels(ortho, ndsm, ("ndvi",), ortho_name, ndsm_name)[0]
        prob = classical_probability(heights, ortho.res, ndvi=ndvi)
        threshold = 0.5 if threshold is None else threshold
        tags = {"method": "classical"}
    else:
        import torch

        from .checkpoint import DEFAULT_MODEL, load_checkpoint
        from .infer import predict_logits

        net, meta = model if isinstance(model, tuple) else load_checkpoint(model or DEFAULT_MODEL)
        x = stack_channels(ortho, ndsm, meta["spec"].channels, ortho_name, ndsm_name)
        dev = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        logits = predict_logits(net, x, tile=tile, batch=batch, device=dev, threads=threads)
        prob = 1.0 / (1.0 + np.exp(-logits[0]))
        threshold = meta.get("threshold", 0.5) if threshold is None else threshold
        tags = {"method": "model", "model": Path(meta["path"]).name if "path" in meta else "in-memory",
                "encoder": meta["spec"].encoder, "channels": ",".join(meta["spec"].channels)}
    tags["threshold"] = f"{threshold:g}"
    prob = prob.astype(np.float32)
    probability = Raster(prob, ortho.transform, ortho.crs, nodata=None, tags=dict(tags, product="building_probability"))
    mask = Raster((prob > threshold).astype(np.uint8), ortho.transform, ortho.crs, nodata=None,
                  tags=dict(tags, product="building_mask"))
    return probability, mask


@register_stage
class Segment:
    """Building segmentation stage (options as for :func:`segment`)."""

    name = "segment"
    reads = ("ortho", "ndsm")
    writes = ("building_probability", "mask")

    def __init__(self, method: str = "model", model: str | None = None, threshold: float | None = None,
                 tile: int = 1536, batch: int = 1, device: str = "auto", threads: int | None = 1):
        if method not in METHODS:
            raise InputError(f"unknown segmentation method {method!r}; choose from {METHODS}")
        self.method, self.threshold = method, threshold
        self.tile, self.batch, self.device, self.threads = tile, batch, device, threads
        self.model_path = model
        self._loaded = None

    def load(self) -> None:
        """Load the checkpoint (method ``"model"``), once per stage, not per tile; the
        first call does it, so a caller may warm the stage up before its first raster."""
        if self.method == "model" and self._loaded is None:
            from .checkpoint import DEFAULT_MODEL, load_checkpoint

            self._loaded = load_checkpoint(self.model_path or DEFAULT_MODEL)

    def __call__(self, products: Mapping[str, Any]) -> dict[str, Any]:
        self.load()
        prob, mask = segment(products["ortho"], products["ndsm"], method=self.method, model=self._loaded,
                             threshold=self.threshold, tile=self.tile, batch=self.batch, device=self.device,
                             threads=self.threads)
        return {"building_probability": prob, "mask": mask}
