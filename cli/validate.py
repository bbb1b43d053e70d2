"""``lod3d validate``: official CityJSON schema + geometric checks (val3dity error codes)."""

from __future__ import annotations

import sys

import click

from lod3d.cityjson.validate import validate_file


@click.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--schema", type=click.Path(dir_okay=False, exists=True), default=None,
              help="CityJSON JSON schema (default: the CityJSON 2.0 min schema shipped with lod3d).")
@click.option("--planar-tol", type=float, default=0.01, show_default=True,
              help="Largest distance of a vertex to its face's plane (m).")
def command(file, schema, planar_tol) -> None:
    """Check FILE (CityJSON .json or CityJSONSeq .jsonl); exit 0 only when valid."""
    errors = validate_file(file, schema, planar_tol)
    if not errors:
        click.echo(f"{file}: valid")
        return
    click.echo(f"{file}: INVALID, {len(errors)} error(s)")
    for e in errors:
        click.echo(f"  {e}")
    sys.exit(1)
