"""Accuracy metrics of lod3d products against truth (footprints: :mod:`.footprints`)."""

from .footprints import footprint_metrics, mask_reference, match, mta, polis, vertex_count

__all__ = ["footprint_metrics", "mask_reference", "match", "mta", "polis", "vertex_count"]
