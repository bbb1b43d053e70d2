"""``lod3d report``: rebuild a run's ``DIR/report/`` (figures, and accuracy when truth exists)."""

from __future__ import annotations

import click

from lod3d.report import build_report


@click.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--truth", type=click.Path(file_okay=False, exists=True), default=None,
              help="Reference data (default: the simulated truth the run recorded, if any).")
def command(run_dir, truth) -> None:
    """Write RUN_DIR/report/index.html with its PNG figures."""
    click.echo(f"report: {build_report(run_dir, truth)}")
