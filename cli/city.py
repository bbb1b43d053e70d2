"""``lod3d city``: the whole chain over an AOI, alone or under ``mpirun -n N``."""

from __future__ import annotations

from pathlib import Path

import click

from lod3d.city import CityConfig, run_city
from lod3d.parallel import get_comm, set_compute_threads

from .options import aoi_options, resolve_aoi


@click.command("city")
@aoi_options
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option("--images", multiple=True, type=click.Path(dir_okay=False),
              help="Images with RPCs (repeat, or list after one --images). Default: simulate the AOI.")
@click.argument("more_images", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--size-m", type=float, default=None, help="Side of a square centred on the AOI (m).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the simulated acquisition.")
@click.option("--gsd", type=float, default=0.5, show_default=True, help="Output grid cell size (m).")
@click.option("--tile-m", type=float, default=150.0, show_default=True, help="Tile core size (m).")
@click.option("--segment", "segment_method", type=click.Choice(["model", "classical"]), default="model",
              show_default=True, help="Building segmentation: the shipped/--model network, or nDSM+texture rules.")
@click.option("--model", type=click.Path(dir_okay=False), default=None, help="Segmentation checkpoint.")
@click.option("--lod", "lods", default="0,1,2", show_default=True, help="LoDs to build.")
@click.option("--threads", type=int, default=1, show_default=True, help="Compute threads per rank.")
@click.option("--reference-date", default=None, help="CityJSON referenceDate (default: acquisition date).")
@click.option("--resume", is_flag=True, help="Skip tiles a previous run of the same configuration finished.")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty output directory.")
@click.option("--allow-partial", is_flag=True, help="Write the city model even if some tiles failed.")
def command(aoi_name, bounds, crs, out, images, more_images, size_m, seed, gsd, tile_m, segment_method,
            model, lods, threads, reference_date, resume, overwrite, allow_partial) -> None:
    """Images (or a simulated acquisition) → DSM, DTM, mask, footprints, LOD0-2 CityJSON."""
    set_compute_threads(threads)
    comm = get_comm()
    area = resolve_aoi(aoi_name, bounds, crs).crop(size_m)
    try:
        levels = tuple(int(v) for v in lods.split(","))
    except ValueError:
        raise click.BadParameter(f"{lods!r}: a comma-separated list of 0, 1, 2", param_hint="--lod") from None
    config = CityConfig(aoi=area, out=Path(out), images=tuple(Path(p) for p in (*images, *more_images)),
                        seed=seed, gsd=gsd, tile_m=tile_m, segment_method=segment_method, model=model,
                        lods=levels, reference_date=reference_date, threads=threads)
    summary = run_city(config, comm=comm, resume=resume, overwrite=overwrite, allow_partial=allow_partial)
    if comm is None or comm.rank == 0:
        ranks = comm.size if comm is not None else 1
        click.echo(f"{summary['n_buildings']} buildings over {area.width:g} m × {area.height:g} m "
                   f"in {summary['n_tiles']} tiles on {ranks} rank(s)")
        click.echo(f"city model: {Path(out) / 'city.city.json'}   run summary: {Path(out) / 'run.json'}")
        if summary.get("report"):
            click.echo(f"report: {summary['report']}")
