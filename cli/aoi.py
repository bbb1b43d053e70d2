"""``lod3d aoi list|show``: the built-in areas of interest."""

from __future__ import annotations

import json

import click

from lod3d.aoi import list_aois

from .options import aoi_options, resolve_aoi


@click.group("aoi")
def command() -> None:
    """List and show areas of interest."""


@command.command("list")
def list_command() -> None:
    """List the built-in AOIs."""
    for a in list_aois():
        click.echo(f"{a.name:12s} {a.crs:11s} {a.width:g} m × {a.height:g} m  {a.description.split(':')[0]}")


@command.command("show")
@click.argument("name", required=False)
@aoi_options
def show_command(name, aoi_name, bounds, crs) -> None:
    """Show one AOI (a built-in NAME, a GeoJSON file, or --bounds/--crs) as JSON."""
    click.echo(json.dumps(resolve_aoi(name or aoi_name, bounds, crs).to_dict(), indent=2))
