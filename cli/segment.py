"""``lod3d segment``: building probability and mask GeoTIFFs from a true ortho and an nDSM."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("segment")
@click.option("--ortho", required=True, type=click.Path(dir_okay=False), help="True ortho GeoTIFF (pan, RGB or RGB+NIR).")
@click.option("--ndsm", required=True, type=click.Path(dir_okay=False),
              help="nDSM GeoTIFF (m above ground); another grid of the same CRS is resampled.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Mask GeoTIFF (uint8 0/1); the probability goes beside it as *_probability.tif.")
@click.option("--model", type=click.Path(dir_okay=False), default=None,
              help="Checkpoint from `lod3d train` (default: the shipped model).")
@click.option("--classical", is_flag=True, help="Use the nDSM height/roughness rules instead of a model.")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=None, help="Probability threshold (default: the model's).")
@click.option("--tile", type=click.IntRange(min=128), default=1536, show_default=True,
              help="Largest inference tile side (cells); neighbouring tiles overlap by 416 (two 192-cell margins and a 32-cell blend ramp).")
@click.option("--batch", type=int, default=1, show_default=True, help="Tiles per forward pass.")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda or auto.")
@click.option("--threads", type=int, default=1, show_default=True, help="CPU compute threads (1 per MPI rank).")
def command(ortho, ndsm, out, model, classical, threshold, tile, batch, device, threads) -> None:
    """Segment buildings: writes OUT (mask) and OUT's *_probability.tif."""
    from lod3d.raster import Raster
    from lod3d.segment import segment

    o, n = Raster.read(ortho, band=None), Raster.read(ndsm)
    prob, mask = segment(o, n, method="classical" if classical else "model", model=model, threshold=threshold,
                         tile=tile, batch=batch, device=device, threads=threads, ortho_name=ortho, ndsm_name=ndsm)
    out = Path(out)
    prob_path = out.with_name(out.stem + "_probability" + (out.suffix or ".tif"))
    prob.write(prob_path)
    mask.write(out)
    click.echo(f"{int(mask.data.sum())} building cells ({100 * mask.data.mean():.1f} %); wrote {out} and {prob_path}")
