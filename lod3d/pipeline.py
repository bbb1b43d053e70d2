"""Stages and their composition into pipelines (PDAL-style).

A stage is an object with options (its constructor arguments), a ``name``, the product
keys it ``reads`` and ``writes``, and ``__call__(products) -> dict`` returning only the
products it adds. A :class:`Pipeline` runs stages in order over one :class:`Products`
mapping, checking that every stage finds what it reads. Stages never reach into each
other's internals: products are the only interface.

Product keys used across the project (value types in parentheses):
``images`` (list of ``(path, RPCModel)``), ``dsm``/``confidence``/``ortho``/``dtm``/``ndsm``/
``building_probability``/``mask`` (:class:`lod3d.raster.Raster`), ``footprints`` (list of
``(id, shapely Polygon)``), ``buildings`` (list of :class:`lod3d.cityjson.model.Building`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from .errors import Lod3dError

__all__ = ["Stage", "Pipeline", "Products", "register_stage", "STAGES"]


@runtime_checkable
class Stage(Protocol):
    """What every stage provides."""

    name: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]

    def __call__(self, products: Mapping[str, Any]) -> dict[str, Any]: ...


class Products(dict):
    """The products of one tile (or one whole run) so far, keyed by product name.

    ``timings`` records the wall time of each stage that ran, in seconds.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.timings: dict[str, float] = {}


STAGES: dict[str, type] = {}


def register_stage(cls: type) -> type:
    """Class decorator: make a finished stage available to :meth:`Pipeline.from_names`."""
    STAGES[cls.name] = cls
    return cls


class Pipeline:
    """An ordered list of stages run over one :class:`Products` mapping."""

    def __init__(self, stages: list[Stage]):
        self.stages = list(stages)

    @classmethod
    def from_names(cls, names: list[str], options: Mapping[str, dict] | None = None) -> "Pipeline":
        """Build from registered stage names, each with its option dict."""
        options = options or {}
        missing = [n for n in names if n not in STAGES]
        if missing:
            raise Lod3dError(f"unknown stage(s) {missing}; available: {sorted(STAGES)}")
        return cls([STAGES[n](**options.get(n, {})) for n in names])

    def run(self, products: Mapping[str, Any] | None = None) -> Products:
        """Run every stage in order; return all products (inputs included)."""
        out = Products(products or {})
        for stage in self.stages:
            absent = [k for k in stage.reads if k not in out]
            if absent:
                raise Lod3dError(f"stage {stage.name!r} needs {absent}, which no earlier stage or input provides")
            start = time.perf_counter()
            added = stage(out)
            out.timings[stage.name] = time.perf_counter() - start
            unexpected = set(added) - set(stage.writes)
            if unexpected:
                raise RuntimeError(f"stage {stage.name!r} wrote undeclared products {sorted(unexpected)}")
            out.update(added)
        return out

    def __repr__(self) -> str:
        return "Pipeline(" + " -> ".join(s.name for s in self.stages) + ")"
