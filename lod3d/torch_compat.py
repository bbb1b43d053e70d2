"""Make ``import torchvision`` (and so timm and segmentation-models-pytorch) work with CPU torch.

The only torchvision wheel for torch 2.13 is a CUDA build. Under the CPU torch wheel its
import fails with ``RuntimeError: operator torchvision::nms does not exist``, because the
compiled extension that registers its operator schemas does not load. torchvision's Python
side only needs the schemas to exist (for its ``register_fake`` calls), so we define the two
it asks for and import again. Only torchvision's compiled ops (nms, roi_align, image
decoders) stay unusable; smp and timm never call them.

Where torchvision imports normally this does nothing. Call :func:`ensure_torchvision`
before importing smp or timm; it is the one place this workaround lives.
"""

from __future__ import annotations

import sys

_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_library = None  # keeps the torch.library alive for the process


def ensure_torchvision():
    """Import torchvision, defining its missing operator schemas if the build needs them."""
    global _library
    try:
        import torchvision
        return torchvision
    except RuntimeError as exc:
        if "torchvision::" not in str(exc):
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    import torch

    _library = torch.library.Library("torchvision", "DEF")
    for schema in _SCHEMAS.values():
        try:
            _library.define(schema)
        except RuntimeError:
            pass  # already defined by a partially loaded extension
    import torchvision
    return torchvision
