"""The run report: every figure drawn from a small synthetic run, with and without truth."""

import json
import shutil

import matplotlib.image
import pytest
from click.testing import CliRunner
from test_evaluate_city import make_scene

from lod3d.cli.main import cli
from lod3d.errors import InputError
from lod3d.report import build_report

FIGURES = ["dsm.png", "ndsm.png", "mask.png", "footprints.png", "errors.png", "buildings_3d.png", "quality.png",
           "timings.png"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """The synthetic result as a run folder: truth under simulation/truth, run.json timings."""
    root = tmp_path_factory.mktemp("report")
    truth, result = make_scene(root)
    (result / "simulation").mkdir()
    shutil.move(truth, result / "simulation" / "truth")
    tiles = {"r000c000": {"seconds": 1.5}, "r000c001": {"seconds": 2.0}}
    (result / "run.json").write_text(json.dumps({
        "aoi": {"name": "synthetic"}, "n_tiles": 2, "complete": True,
        "truth": str(result / "simulation" / "truth"),
        "timings": {"dsm": {"seconds": 3.5, "tiles": tiles}, "terrain": {"seconds": 0.4, "tiles": tiles}}}))
    return result


def test_report_with_truth(run_dir):
    page = build_report(run_dir)
    html = page.read_text()
    for name in FIGURES:
        assert f"src='{name}'" in html
        img = matplotlib.image.imread(page.parent / name)
        assert img.shape[0] > 200 and img.shape[1] > 200 and img[..., :3].std() > 0.02  # not blank
    metrics = json.loads((page.parent / "metrics.json").read_text())
    assert metrics["footprints"]["matched"] == 2
    assert "Accuracy classes" in html and "ASPRS" in html and "LoD2.2" in html


def test_report_without_truth_and_cli(run_dir, tmp_path):
    plain = tmp_path / "plain"
    shutil.copytree(run_dir, plain, ignore=shutil.ignore_patterns("simulation", "report"))
    run = json.loads((plain / "run.json").read_text())
    (plain / "run.json").write_text(json.dumps({**run, "truth": None}))  # as a run on real images
    r = CliRunner().invoke(cli, ["report", str(plain)])
    assert r.exit_code == 0, r.output
    html = (plain / "report" / "index.html").read_text()
    assert "errors.png" not in html and "No truth available" in html
    assert not (plain / "report" / "metrics.json").exists()
    assert sorted(p.name for p in (plain / "report").glob("*.png")) == sorted(set(FIGURES) - {"errors.png"})


def test_report_missing_dir(tmp_path):
    with pytest.raises(InputError, match="no such run directory"):
        build_report(tmp_path / "nope")
