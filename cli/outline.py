"""``lod3d outline MASK --out footprints.geojson|.gpkg``: regularized building footprints."""

from __future__ import annotations

import logging
from pathlib import Path

import click
import rasterio

from lod3d.errors import InputError
from lod3d.outline import InstanceParams, Params, outline_mask
from lod3d.outline.io import FORMATS, write_footprints
from lod3d.progress import progress
from lod3d.raster import Raster

log = logging.getLogger(__name__)


def _read(path: Path, what: str, band: int | None = 1) -> Raster:
    try:
        return Raster.read(path, band=band)
    except (rasterio.errors.RasterioIOError, OSError) as exc:
        raise InputError(f"{path}: cannot read {what} ({exc})") from None


@click.command("outline")
@click.argument("mask", type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help=f"Output footprints ({', '.join(sorted(FORMATS))}).")
@click.option("--ndsm", type=click.Path(path_type=Path), default=None,
              help="nDSM on the mask's grid: separates touching buildings at roof-height jumps.")
@click.option("--ortho", type=click.Path(path_type=Path), default=None,
              help="True ortho on the mask's grid (grey or RGB): with --ndsm, touching buildings "
                   "are cut apart along party walls where roof tone or height changes.")
@click.option("--no-separate", is_flag=True, help="Keep touching buildings of one height together.")
@click.option("--max-step", default=2.0, show_default=True, help="Height jump (m) that separates buildings.")
@click.option("--min-piece", default=20.0, show_default=True,
              help="Smallest piece a height jump cuts off a roof (CRS units²); smaller ones rejoin it.")
@click.option("--min-area", default=2.0, show_default=True, help="Smallest building kept (CRS units²).")
@click.option("--corner-penalty", default=Params.corner_penalty, show_default=True,
              help="Cost of one more wall in the fit-vs-complexity criterion (higher: fewer vertices).")
def command(mask: Path, out: Path, ndsm: Path | None, ortho: Path | None, no_separate: bool,
            max_step: float, min_piece: float, min_area: float, corner_penalty: float) -> None:
    """Building footprints from a building MASK GeoTIFF (binary, instance ids or probability).

    Buildings are polygonized per instance (holes kept; with --ndsm and --ortho, touching
    buildings are first cut apart along straight party walls), regularized (walls parallel or
    perpendicular to the building's axis, 45-degree and free walls and circles where the
    pixels demand them), made valid and non-overlapping. Buildings touching the raster
    border get the property cut=true.
    """
    if out.suffix.lower() not in FORMATS:
        raise InputError(f"{out}: unknown footprint format {out.suffix!r} (use {', '.join(sorted(FORMATS))})")
    with progress(total=3, desc="outline", unit="step") as bar:
        raster = _read(mask, "mask")
        heights = _read(ndsm, "nDSM") if ndsm is not None else None
        image = _read(ortho, "ortho", band=None) if ortho is not None else None
        if image is not None and heights is None:
            raise InputError(f"{ortho}: --ortho separates buildings together with --ndsm; give both")
        bar.update()
        result = outline_mask(raster, heights, image, params=Params(corner_penalty=corner_penalty),
                              instances=None if no_separate else InstanceParams(),
                              max_step=max_step, min_piece=min_piece, min_area=min_area, name=str(mask))
        bar.update()
        write_footprints(out, result)
        bar.update()
    if len(result) == 0:
        log.warning("%s: no buildings in the mask; wrote an empty %s", mask, out)
    log.info("%d footprints (%d cut by the border, %d fallbacks) -> %s", len(result),
             int(result.cut.sum()), int(result.fallback.sum()), out)
