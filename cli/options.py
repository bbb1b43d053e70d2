"""Click options shared by several subcommands."""

from __future__ import annotations

import click

from lod3d.aoi import AOI, aoi, aoi_from_bounds, aoi_from_geojson
from lod3d.errors import InputError


def aoi_options(f):
    """``--aoi NAME|FILE.geojson`` or ``--bounds xmin ymin xmax ymax --crs EPSG:n``."""
    f = click.option("--crs", help="CRS of --bounds, e.g. EPSG:32631 (lon/lat bounds go to their UTM zone).")(f)
    f = click.option("--bounds", nargs=4, type=float, default=None,
                     metavar="XMIN YMIN XMAX YMAX", help="AOI bounds in --crs.")(f)
    f = click.option("--aoi", "aoi_name", metavar="NAME|FILE",
                     help="Built-in AOI name (see `lod3d aoi list`) or a GeoJSON file.")(f)
    return f


def resolve_aoi(aoi_name: str | None, bounds, crs: str | None) -> AOI:
    """The AOI chosen by :func:`aoi_options`; exactly one way must be given."""
    if aoi_name and bounds:
        raise InputError("give either --aoi or --bounds/--crs, not both")
    if bounds:
        if not crs:
            raise InputError("--bounds needs --crs (e.g. --crs EPSG:32631)")
        return aoi_from_bounds(bounds, crs)
    if crs:
        raise InputError("--crs is only used with --bounds")
    if not aoi_name:
        raise InputError("no AOI: give --aoi NAME (see `lod3d aoi list`) or --bounds ... --crs EPSG:n")
    if aoi_name.lower().endswith((".geojson", ".json")):
        return aoi_from_geojson(aoi_name)
    return aoi(aoi_name)


def model_spec(arch: str, encoder: str, channels: str, decoder_channels: str | None):
    """A segmentation :class:`lod3d.segment.models.ModelSpec` from comma-separated options."""
    from lod3d.segment.models import ModelSpec

    return ModelSpec(arch=arch, encoder=encoder, channels=tuple(c.strip() for c in channels.split(",")),
                     decoder_channels=tuple(int(c) for c in decoder_channels.split(",")) if decoder_channels else None)


def torch_device(device: str) -> str:
    """``--device auto`` is CUDA when torch sees a GPU, else the CPU."""
    import torch

    return ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
