"""Building segmentation from a true ortho and an nDSM.

- :mod:`.inputs` — named, normalized input channels; grid alignment (no torch);
- :mod:`.classical` — the no-model fallback (nDSM height and roughness rules);
- :mod:`.models` — model factory on segmentation-models-pytorch/timm and encoder weights
  (packaged ImageNet EfficientNet-Lite0, external foundation checkpoints);
- :mod:`.checkpoint` — checkpoint format with metadata, the shipped default model;
- :mod:`.infer` — tiled, seamless inference over rasters of any size;
- :mod:`.pretrain` — masked-autoencoder pretraining of encoders on unlabelled tiles;
- :mod:`.train` — fine-tuning on simulated scenes or user image/mask pairs;
- :mod:`.stage` — the ``segment`` pipeline stage and :func:`segment`.

Importing this package does not import torch; the model paths import it when used.
"""

from .stage import Segment, segment

__all__ = ["Segment", "segment"]
