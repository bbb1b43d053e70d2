"""The ``lod3d`` command: one subcommand per library stage, mirroring the Python API.

Each subcommand lives in its own module of this package and exposes a click command named
``command``; :data:`COMMANDS` lists them. User mistakes (:class:`lod3d.errors.Lod3dError`)
print one line and exit with status 2; nothing else is caught.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from lod3d import __version__
from lod3d.errors import Lod3dError
from lod3d.progress import set_quiet

# Subcommand modules of lod3d.cli, in the order ``lod3d --help`` lists them.
COMMANDS = ("aoi", "simulate", "city", "dsm", "terrain", "outline", "validate", "lod", "segment", "train", "pretrain",
            "evaluate", "report")


class _Group(click.Group):
    """A click group that imports a subcommand's module only when it is used (so
    ``lod3d dsm`` does not pay for torch or matplotlib) and turns user errors into one
    line and a non-zero exit."""

    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        return importlib.import_module(f"lod3d.cli.{name}").command

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Lod3dError as exc:
            click.echo(f"lod3d: error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("lod3d: interrupted", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lod3d")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or info messages.")
def cli(verbose: int, quiet: bool) -> None:
    """lod3d: satellite stereo to 3D building models (DSM, DTM, footprints, LOD0-2, CityJSON)."""
    set_quiet(quiet)
    level = logging.WARNING if quiet else (logging.INFO, logging.DEBUG)[min(verbose, 1)]
    logging.basicConfig(level=level, format="lod3d: %(message)s", stream=sys.stderr)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="lod3d")
