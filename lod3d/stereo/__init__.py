"""Multi-view stereo: images with RPC models → DSM, confidence and true ortho (the ``dsm`` stage)."""

from .dsm import DSM, StereoParams, compute_dsm

__all__ = ["DSM", "StereoParams", "compute_dsm"]
