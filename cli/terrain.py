"""``lod3d terrain DSM --out DIR`` (or ``--points cloud.laz``): dtm.tif and ndsm.tif."""

from __future__ import annotations

import logging
from pathlib import Path

import click
import numpy as np
from rasterio.crs import CRS

from lod3d.errors import InputError
from lod3d.io.atomic import atomic_dir
from lod3d.progress import progress
from lod3d.raster import Raster
from lod3d.terrain import TerrainOptions, read_points, terrain_from_dsm, terrain_from_points

log = logging.getLogger(__name__)


@click.command("terrain")
@click.argument("dsm", required=False, type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="Output directory: dtm.tif, ndsm.tif (and dsm.tif with --points).")
@click.option("--points", type=click.Path(path_type=Path), default=None,
              help="Point cloud (LAS/LAZ; other formats with the PDAL extra) instead of a DSM.")
@click.option("--res", default=0.5, show_default=True, help="Cell size (m) for --points.")
@click.option("--bounds", nargs=4, type=float, default=None, metavar="XMIN YMIN XMAX YMAX",
              help="Area to rasterize with --points (cloud CRS); default: the cloud's extent.")
@click.option("--crs", "crs", default=None, help="CRS of the point cloud if its header has none (e.g. EPSG:32631).")
@click.option("--max-object-m", default=TerrainOptions.max_object_m, show_default=True,
              help="Widest building or object to remove (m).")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty output directory.")
def command(dsm: Path | None, out: Path, points: Path | None, res: float, bounds, crs: str | None,
            max_object_m: float, overwrite: bool) -> None:
    """Ground model (DTM) and normalized DSM (nDSM = DSM - DTM, >= 0) from a DSM GeoTIFF.

    Objects up to --max-object-m wide (buildings, trees) are removed; slopes and terraces
    stay ground; holes are interpolated in the DTM. Heights keep the input's vertical
    datum and its metadata tags.
    """
    if (dsm is None) == (points is None):
        raise InputError("give either a DSM GeoTIFF or --points CLOUD (not both)")
    options = TerrainOptions(max_object_m=max_object_m)
    with atomic_dir(out, overwrite=overwrite) as tmp, progress(total=3, desc="terrain", unit="step") as bar:
        if points is not None:
            cloud = read_points(points, bounds=bounds, crs=CRS.from_user_input(crs) if crs else None)
            bar.update()
            dsm_r, dtm, ndsm, ground = terrain_from_points(cloud, res, bounds, options, name=str(points))
            dsm_r.write(tmp / "dsm.tif")
            log.info("%s: %d of %d points are ground", points, int(ground.sum()), ground.size)
        else:
            dsm_r = Raster.read(dsm)
            bar.update()
            dtm, ndsm = terrain_from_dsm(dsm_r, options, name=str(dsm))
        bar.update()
        dtm.write(tmp / "dtm.tif")
        ndsm.write(tmp / "ndsm.tif")
        bar.update()
    log.info("DTM %.1f..%.1f m, %.1f %% of cells above 2.5 m -> %s", np.nanmin(dtm.data),
             np.nanmax(dtm.data), 100 * np.nanmean(ndsm.data > 2.5), out)
