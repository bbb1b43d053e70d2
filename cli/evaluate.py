"""``lod3d evaluate``: a run's products against truth → ``metrics.json`` with accuracy classes."""

from __future__ import annotations

from pathlib import Path

import click

from lod3d.evaluate.city import evaluate_run, write_metrics


def _summary(m: dict) -> list[str]:
    """A few headline lines: DSM error, detection, footprints, roof RMSE, classes."""
    lines = []
    if m.get("dsm"):
        a = m["dsm"]["all"]
        lines.append(f"DSM: NMAD {a['nmad']:.2f} m, RMSE {a['rmse']:.2f} m, completeness {100 * a['completeness']:.1f} %"
                     if a["n"] else "DSM: no common cells")
    inst = (m.get("detection") or {}).get("instances_footprints")
    if inst:
        lines.append(f"buildings: {inst['matched']} of {inst['n_truth']} found, {inst['n_pred']} output")
    lod = m.get("lod") or {}
    if lod.get("roof_lod22") and lod["roof_lod22"]["n"]:
        lines.append(f"LoD2.2 roof RMSE {lod['roof_lod22']['rmse']:.2f} m")
    for key, c in (m.get("accuracy_classes") or {}).items():
        if key == "lod":
            lines.append(f"city model qualifies for LoD{c['lod']} ({c['standard']})" if c["lod"]
                         else "city model qualifies for no LoD")
        else:
            lines.append(f"{key.replace('_', ' ')}: ASPRS 2014 class {c['asprs_2014']['class']}, "
                         f"2023 class {c['asprs_2023']['class']}")
    return lines


@click.command("evaluate")
@click.option("--truth", "truth", required=True, type=click.Path(file_okay=False, exists=True),
              help="Truth folder (simulated truth/, a lod3d city or simulate folder, or reference files).")
@click.option("--result", "result", required=True, type=click.Path(file_okay=False, exists=True),
              help="A lod3d city output folder.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="metrics.json path (default: RESULT/metrics.json).")
@click.option("--vertical-offset", type=float, default=0.0, show_default=True,
              help="Metres subtracted from the result heights first (e.g. a geoid height).")
def command(truth, result, out, vertical_offset) -> None:
    """Compare RESULT with TRUTH: height errors, detection, footprints, LoD quality, accuracy classes."""
    metrics = evaluate_run(truth, result, vertical_offset=vertical_offset)
    path = write_metrics(metrics, out or Path(result) / "metrics.json")
    for line in _summary(metrics):
        click.echo(line)
    click.echo(f"metrics: {path}")
