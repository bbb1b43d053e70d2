"""``lod3d lod``: footprints + DSM + DTM -> LOD0/LoD1.2/LoD2.2 CityJSON 2.0 (or CityJSONSeq)."""

from __future__ import annotations

from pathlib import Path

import click
import shapely

from lod3d.cityjson.writer import write_cityjson, write_cityjsonseq
from lod3d.errors import InputError
from lod3d.lod.io import read_footprints
from lod3d.lod.stage import LOD
from lod3d.raster import Raster


def _read(path: str, what: str) -> Raster:
    try:
        return Raster.read(path)
    except Exception as exc:  # rasterio raises several types for unreadable files
        raise InputError(f"{path}: cannot read the {what} ({exc})") from None


@click.command("lod")
@click.option("--dsm", required=True, type=click.Path(dir_okay=False), help="DSM GeoTIFF.")
@click.option("--dtm", required=True, type=click.Path(dir_okay=False), help="DTM GeoTIFF (same CRS).")
@click.option("--footprints", required=True, type=click.Path(dir_okay=False), help="Footprints: GeoJSON, or the GeoPackage that `lod3d outline` and `lod3d city` write.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Output .city.json (CityJSON 2.0) or .city.jsonl (CityJSONSeq).")
@click.option("--ortho", default=None, type=click.Path(dir_okay=False),
              help="True ortho GeoTIFF (same CRS, any grid): walls between roof parts follow its edges.")
@click.option("--lod", "lods", default="0,1,2", show_default=True, help="Levels to build (comma-separated).")
@click.option("--reference-date", default=None, help="Date of the data (ISO); default today.")
def command(dsm, dtm, footprints, out, ortho, lods, reference_date) -> None:
    """Build 3-D buildings from a DSM, a DTM and footprints."""
    try:
        levels = tuple(int(v) for v in lods.split(","))
    except ValueError:
        raise InputError(f"--lod {lods!r}: expected e.g. 0,1,2") from None
    stage = LOD(levels)
    dsm_r, dtm_r = _read(dsm, "DSM"), _read(dtm, "DTM")
    if dsm_r.crs is None or dsm_r.crs.to_epsg() is None:
        raise InputError(f"{dsm}: the DSM has no EPSG CRS")
    products = {"dsm": dsm_r, "dtm": dtm_r}
    if ortho:
        products["ortho"] = _read(ortho, "ortho")
        if products["ortho"].crs != dsm_r.crs:
            raise InputError(f"{ortho}: the ortho's CRS ({products['ortho'].crs}) differs from the DSM's ({dsm_r.crs})")
    fps = read_footprints(footprints, dsm_r.crs)
    x0, y0, x1, y1 = dsm_r.bounds
    area = shapely.box(x0, y0, x1, y1)
    outside = [fid for fid, p in fps if not p.intersects(area)]
    if len(outside) == len(fps):
        raise InputError(f"{footprints}: no footprint overlaps the DSM {dsm} (wrong CRS or area?)")
    buildings = stage({**products, "footprints": fps})["buildings"]
    meta = {"lineage": {"inputs": [str(p) for p in (dsm, dtm, footprints, ortho) if p],
                        "verticalDatum": dsm_r.tags.get("VERTICAL_DATUM", dsm_r.tags.get("vertical_datum", "unknown")),
                        "lods": list(stage.lods)}}
    if reference_date:
        meta["referenceDate"] = reference_date
    writer = write_cityjsonseq if Path(out).suffix == ".jsonl" else write_cityjson
    writer(out, buildings, crs_epsg=dsm_r.crs.to_epsg(), metadata=meta)
    n2 = sum(any(s.lod == "2.2" for p in b.parts for s in p.solids) for b in buildings)
    click.echo(f"{out}: {len(buildings)} buildings ({n2} at LoD2.2, {len(outside)} outside the DSM)")
