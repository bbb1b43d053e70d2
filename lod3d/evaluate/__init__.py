"""Accuracy metrics of lod3d products against truth (footprints: :mod:`.footprints`)."""

from .footprints import footprint_metrics, match, mta, polis, vertex_count

__all__ = ["footprint_metrics", "match", "mta", "polis", "vertex_count"]
