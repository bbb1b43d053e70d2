"""``lod3d dsm``: 2–3 (up to 8) images with RPC models → dsm.tif, confidence.tif, ortho.tif."""

from __future__ import annotations

import click

from lod3d.geometry.readers import image_rpc
from lod3d.io.atomic import atomic_dir
from lod3d.stereo import compute_dsm


@click.command("dsm")
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option("--gsd", type=float, default=None, help="Cell size in metres (default: the images' GSD).")
@click.option("--bounds", type=float, nargs=4, default=None, metavar="XMIN YMIN XMAX YMAX",
              help="Output extent in --crs units (default: the images' common footprint).")
@click.option("--crs", default=None, help="Output CRS, e.g. EPSG:32631 (default: UTM zone of the scene).")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty output directory.")
def command(images, out, gsd, bounds, crs, overwrite) -> None:
    """Match IMAGES (GeoTIFF with RPC tags, or beside a .geom / DIMAP RPC_*.XML) into a DSM.

    Heights are ellipsoidal (WGS84). Writes OUT/dsm.tif, OUT/confidence.tif, OUT/ortho.tif.
    """
    if bounds and crs is None:
        raise click.UsageError("--bounds needs --crs")
    pairs = [(path, image_rpc(path)) for path in images]
    dsm, conf, ortho = compute_dsm(pairs, gsd=gsd, bounds=bounds or None, crs=crs)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        dsm.write(tmp / "dsm.tif")
        conf.write(tmp / "confidence.tif")
        ortho.write(tmp / "ortho.tif")
    valid = float((dsm.data == dsm.data).mean())
    click.echo(f"{out}/dsm.tif: {dsm.shape[1]}×{dsm.shape[0]} cells at {dsm.res:g} m, {valid:.1%} valid")
