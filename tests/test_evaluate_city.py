"""lod3d evaluate: metrics against a small synthetic truth with known errors, the ASPRS /
CityGML classes, and the command line."""

import json

import numpy as np
import pytest
import shapely
from affine import Affine
from click.testing import CliRunner
from rasterio.features import rasterize

from lod3d.cityjson import write_cityjson
from lod3d.cityjson.model import Building, BuildingPart, Solid, Surface
from lod3d.cli.main import cli
from lod3d.evaluate import standards
from lod3d.evaluate.city import corner_offsets, evaluate_run, find_truth, instance_scores
from lod3d.io.raster import write_raster

EPSG = 32631
RES = 0.5
X0, Y0 = 374000.0, 4829040.0          # top-left corner of the 80 x 80 grid (40 m)
TRANSFORM = Affine(RES, 0, X0, 0, -RES, Y0)
GROUND = 150.0
# (xmin, ymin, xmax, ymax, roof height above ground)
BOXES = [(X0 + 5, Y0 - 15, X0 + 20, Y0 - 5, 10.0), (X0 + 25, Y0 - 35, X0 + 35, Y0 - 22, 6.0)]
TREE = (slice(50, 60), slice(8, 18))  # rows, cols of a 5 m "tree" in the truth DSM
SHIFT = 0.5                           # the output's second building is 0.5 m east of the truth
DSM_BIAS = 0.3                        # the output DSM is 0.3 m high on open ground


def _box(x0, y0, x1, y1, z0, z1, lod) -> Solid:
    """A closed, outward-oriented box solid."""
    def face(pts, sem):
        return Surface([np.array(pts, float)], sem)

    return Solid(lod, [
        face([(x0, y0, z0), (x0, y1, z0), (x1, y1, z0), (x1, y0, z0)], "GroundSurface"),
        face([(x0, y0, z1), (x1, y0, z1), (x1, y1, z1), (x0, y1, z1)], "RoofSurface"),
        face([(x0, y0, z0), (x1, y0, z0), (x1, y0, z1), (x0, y0, z1)], "WallSurface"),
        face([(x1, y0, z0), (x1, y1, z0), (x1, y1, z1), (x1, y0, z1)], "WallSurface"),
        face([(x1, y1, z0), (x0, y1, z0), (x0, y1, z1), (x1, y1, z1)], "WallSurface"),
        face([(x0, y1, z0), (x0, y0, z0), (x0, y0, z1), (x0, y1, z1)], "WallSurface"),
    ])


def _buildings(shift: float, truth: bool) -> list[Building]:
    out = []
    for k, (x0, y0, x1, y1, h) in enumerate(BOXES):
        dx = shift if k == 1 else 0.0
        x0, x1 = x0 + dx, x1 + dx
        lods = ("2.2",) if truth else ("1.2", "2.2")
        part_attrs = {"roofType": "flat"} if truth else {"roof_type": "flat"}
        part = BuildingPart(f"b{k}-0", [_box(x0, y0, x1, y1, GROUND, GROUND + h, lod) for lod in lods], part_attrs)
        attrs = {} if truth else {"roof_type": "flat", "h_ground": GROUND, "h_roof_70p": GROUND + h,
                                  "rmse_lod22": 0.1, "rmse_lod12": 0.1, "nodata_share": 0.0}
        out.append(Building(f"b{k}", shapely.box(x0, y0, x1, y1), GROUND, [part], attrs))
    return out


def make_scene(root):
    """``root/truth`` and ``root/result`` with the known differences of the module constants."""
    truth, result = root / "truth", root / "result"
    truth.mkdir(parents=True)
    result.mkdir(parents=True)
    shape = (80, 80)
    t_ids = rasterize([(shapely.box(*b[:4]), k + 1) for k, b in enumerate(BOXES)], out_shape=shape,
                      transform=TRANSFORM, dtype="int32")
    heights = np.array([0.0] + [b[4] for b in BOXES])
    dtm = np.full(shape, GROUND, np.float32)
    dsm = (dtm + heights[t_ids]).astype(np.float32)
    dsm[TREE] += 5.0
    kw = dict(transform=TRANSFORM, crs=f"EPSG:{EPSG}")
    write_raster(truth / "dsm.tif", dsm, nodata=float("nan"), **kw)
    write_raster(truth / "dtm.tif", dtm, nodata=float("nan"), **kw)
    write_raster(truth / "buildings.tif", t_ids, **kw)
    feats = [{"type": "Feature", "id": k + 1, "properties": {},
              "geometry": json.loads(shapely.to_geojson(shapely.box(*b[:4])))} for k, b in enumerate(BOXES)]
    (truth / "footprints.geojson").write_text(json.dumps({
        "type": "FeatureCollection", "features": feats,
        "crs": {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{EPSG}"}}}))
    write_cityjson(truth / "buildings.city.json", _buildings(0.0, truth=True), crs_epsg=EPSG)

    out_b = _buildings(SHIFT, truth=False)
    r_ids = rasterize([(b.footprint, k + 1) for k, b in enumerate(out_b)], out_shape=shape, transform=TRANSFORM,
                      dtype="int32")
    r_dsm = (dtm + heights[r_ids] + np.where(r_ids == 0, DSM_BIAS, 0.0)).astype(np.float32)
    r_dsm[TREE] = dtm[TREE] + DSM_BIAS  # the output misses the tree
    write_raster(result / "dsm.tif", r_dsm, nodata=float("nan"), **kw)
    write_raster(result / "dtm.tif", dtm, nodata=float("nan"), **kw)
    write_raster(result / "ndsm.tif", r_dsm - dtm, nodata=float("nan"), **kw)
    write_raster(result / "mask.tif", (r_ids > 0).astype(np.uint8), **kw)
    write_raster(result / "ortho.tif", (100 + 50 * (r_ids > 0)).astype(np.uint16), **kw)
    write_raster(result / "confidence.tif", np.full(shape, 0.8, np.float32), nodata=float("nan"), **kw)
    write_cityjson(result / "city.city.json", out_b, crs_epsg=EPSG)
    return truth, result


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return make_scene(tmp_path_factory.mktemp("eval"))


@pytest.fixture(scope="module")
def metrics(scene):
    return evaluate_run(*scene)


def test_height_errors_by_class(metrics):
    dsm = metrics["dsm"]
    tree = TREE[0].stop - TREE[0].start
    assert dsm["vegetation"]["n"] == tree * (TREE[1].stop - TREE[1].start)
    assert dsm["vegetation"]["median"] == pytest.approx(DSM_BIAS - 5.0, abs=1e-4)
    assert dsm["ground"]["median"] == pytest.approx(DSM_BIAS, abs=1e-4)
    assert dsm["ground"]["nmad"] < 1e-3
    assert dsm["all"]["completeness"] == 1.0
    assert metrics["dtm"]["all"]["rmse"] == pytest.approx(0.0, abs=1e-6)


def test_detection_and_footprints(metrics):
    det = metrics["detection"]
    # the shifted building loses one column of cells on the west and gains one on the east
    assert 0.9 < det["pixel"]["iou"] < 1.0
    assert det["instances_mask"]["f1"] == 1.0
    assert det["instances_footprints"]["matched"] == 2
    fp = metrics["footprints"]
    assert fp["matched"] == 2 and fp["n_ratio"] == pytest.approx(1.0)
    h = fp["horizontal"]
    assert h["checkpoints"] == 8  # four corners of each box
    assert h["rmse_x"] == pytest.approx(SHIFT / np.sqrt(2), abs=1e-6)  # half the corners moved by SHIFT
    assert h["rmse_y"] == pytest.approx(0.0, abs=1e-6)


def test_lod_quality(metrics):
    lod = metrics["lod"]
    assert lod["validity"]["valid_share"] == {"0": 1.0, "1.2": 1.0, "2.2": 1.0}
    # exact roofs: only the shifted building's strip outside the truth footprint misses
    assert lod["roof_lod22"]["median"] == pytest.approx(0.0, abs=1e-3)
    assert 0.95 < lod["roof_lod22"]["completeness"] < 1.0
    # the shifted building's 0.5 m x 13 m strip lies outside the truth: 6.5 of 280 m² of roofs
    assert lod["roof_lod22"]["outside_share"] == pytest.approx(6.5 / 280.0, abs=1e-3)
    assert lod["volume_lod22"]["buildings"] == 2
    assert lod["volume_lod22"]["mean_abs_rel"] == pytest.approx(0.0, abs=1e-6)
    assert lod["roof_type"] == {"matched": 2, "accuracy": 1.0, "confusion": {"flat->flat": 2}}


def test_accuracy_classes(metrics):
    cls = metrics["accuracy_classes"]
    # open ground: +0.3 m everywhere but on the strip the shifted building wrongly covers
    x0, y0, x1, y1, h = BOXES[1]
    strip = int(round((y1 - y0) / RES * SHIFT / RES))
    n = metrics["dsm"]["ground"]["n"]
    rmse = np.sqrt(((n - strip) * DSM_BIAS ** 2 + strip * h ** 2) / n)
    v = cls["dsm_vertical"]
    assert v["asprs_2023"]["rmse_v_m"] == pytest.approx(rmse, rel=1e-4)
    assert v["asprs_2023"]["class"] == "66.7-cm"
    # ASPRS 2014 also needs VVA (95th percentile 4.7 m) <= 3 x class: 4.7 / 3 -> the 200-cm class
    assert v["asprs_2014"]["class"] == "200-cm" and v["asprs_2014"]["class_nva_only"] == "66.7-cm"
    assert cls["footprints_horizontal"]["asprs_2014"]["class"] == "50-cm"  # RMSEx 0.354 m
    assert cls["lod"]["lod"] == "2.2" and cls["lod"]["verified_against_truth"]


def test_json_is_strict(metrics):
    json.dumps(metrics, allow_nan=False)


def test_standards_rules():
    v = standards.asprs_vertical(0.12, 40)
    assert v["asprs_2014"]["class"] == "12.5-cm" and v["asprs_2014"]["nva_95_m"] == pytest.approx(0.2352)
    assert not standards.asprs_vertical(0.12, 25)["asprs_2023"]["enough_checkpoints"]
    assert standards.asprs_vertical(0.12, 40, survey_rmse=0.05)["asprs_2023"]["class"] == "15-cm"
    assert standards.asprs_vertical(42.0, 40)["asprs_2014"]["class"] == "4200-cm"
    h = standards.asprs_horizontal(0.3, 0.4, 30)
    assert h["asprs_2014"]["class"] == "50-cm" and h["asprs_2023"]["class"] == "50-cm"
    assert standards.asprs_horizontal(0.3, 0.3, 30)["asprs_2014"]["class"] == "33.3-cm"
    assert standards.asprs_horizontal(0.3, 0.3, 30)["asprs_2023"]["class"] == "50-cm"  # radial 0.42 m
    q = standards.lod_qualification({"0": 1.0, "1.2": 1.0, "2.2": 0.9}, {"1.2": 1.0, "2.2": 0.5}, 0.4)
    assert q["lod"] == "1.2" and "valid share" in q["checks"]["2.2"]["reasons"][0]
    q = standards.lod_qualification({"0": 1.0, "1.2": 1.0, "2.2": 1.0}, {"1.2": 1.0, "2.2": 2.5}, 0.4)
    assert q["lod"] == "1.2" and "roof RMSE" in q["checks"]["2.2"]["reasons"][0]
    assert standards.lod_qualification({"0": 1.0, "2.2": 1.0}, schema_errors=3)["lod"] is None
    assert not standards.lod_qualification({"2.2": 1.0})["verified_against_truth"]
    q = standards.lod_qualification({"0": 1.0, "2.2": 1.0}, {"2.2": 0.5}, 0.4, detection_f1=0.5)
    assert q["lod"] is None and "detection F1" in q["checks"]["0"]["reasons"][0]


def test_instance_scores_merge_and_split():
    truth = np.zeros((10, 10), int)
    truth[1:4, 1:4], truth[1:4, 5:8], truth[6:9, 1:9] = 1, 2, 3
    pred = np.zeros_like(truth)
    pred[1:4, 1:8] = 1   # merges truth 1 and 2 (IoU 9/21 each: no match)
    pred[6:9, 1:9] = 2   # exact
    s = instance_scores(truth, pred)
    assert (s["matched"], s["n_truth"], s["n_pred"]) == (1, 3, 2)
    assert s["f1"] == pytest.approx(2 / 5)


def test_corner_offsets_pair_mutual_nearest():
    t = [shapely.box(0, 0, 10, 10)]
    p = [shapely.Polygon([(0.3, 0), (10.3, 0), (10.3, 10), (0.3, 10), (0.3, 5)])]  # a collinear extra vertex
    d = corner_offsets(t, p)
    assert d.shape == (4, 2) and np.allclose(d, [0.3, 0.0])


def test_find_truth_layouts(scene, tmp_path):
    truth, _ = scene
    assert set(find_truth(truth)) == {"dsm", "dtm", "buildings", "footprints", "city"}
    run = tmp_path / "run"
    (run / "simulation").mkdir(parents=True)
    (run / "simulation" / "truth").symlink_to(truth)
    assert find_truth(run)["dsm"].parent == run / "simulation" / "truth"


def test_partial_truth_footprints_only(scene, tmp_path):
    truth, result = scene
    only = tmp_path / "ref"
    only.mkdir()
    (only / "footprints.geojson").write_text((truth / "footprints.geojson").read_text())
    m = evaluate_run(only, result)
    assert m["dsm"] is None and "dsm" in m["skipped"]
    assert m["detection"]["pixel"]["iou"] > 0.9  # truth buildings rasterized from the footprints
    assert m["footprints"]["matched"] == 2


def test_cli(scene, tmp_path):
    truth, result = scene
    out = tmp_path / "m.json"
    r = CliRunner().invoke(cli, ["evaluate", "--truth", str(truth), "--result", str(result), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text())["footprints"]["matched"] == 2
    assert "qualifies for LoD2.2" in r.output
    empty = tmp_path / "empty"
    empty.mkdir()
    r = CliRunner().invoke(cli, ["evaluate", "--truth", str(empty), "--result", str(result)])
    assert r.exit_code == 2 and "no truth files" in r.output and "Traceback" not in r.output


def test_part_without_solid_is_uncovered():
    """A part without a solid at the LoD leaves its cells uncovered (not roofs at ground height)."""
    from lod3d.evaluate.city import _at_lod, _burn_roofs
    from lod3d.raster import Raster

    x0, y0, x1, y1, _ = BOXES[0]
    xm = 0.5 * (x0 + x1)
    parts = [BuildingPart("b-0", [_box(x0, y0, xm, y1, GROUND, GROUND + 10, lod) for lod in ("1.2", "2.2")], {}),
             BuildingPart("b-1", [_box(xm, y0, x1, y1, GROUND, GROUND + 8, "1.2")], {})]
    b = Building("b", shapely.box(x0, y0, x1, y1), GROUND, parts, {})
    from rasterio.crs import CRS

    grid = Raster(np.zeros((80, 80), np.float32), TRANSFORM, CRS.from_epsg(EPSG), None, {})
    top = _burn_roofs(_at_lod([b], "2.2"), grid)
    cells = np.isfinite(top)
    assert cells.sum() == pytest.approx((xm - x0) * (y1 - y0) / RES**2, abs=2)
    assert np.nanmin(top) == pytest.approx(GROUND + 10, abs=1e-3)
    assert np.isfinite(_burn_roofs(_at_lod([b], "1.2"), grid)).sum() == pytest.approx(600, abs=2)
