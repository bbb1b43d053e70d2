"""LOD building: primitives recovered from synthetic DSMs, validity, fallbacks, acceptance."""

import dataclasses
import json

import numpy as np
import pytest
import rasterio.crs
import shapely
from affine import Affine
from click.testing import CliRunner

from lod3d.cityjson import to_cityjson_dict
from lod3d.cityjson.rasterize import burn_buildings, burn_cityjson
from lod3d.cityjson.validate import check_geometry, validate_file
from lod3d.cli.main import cli
from lod3d.lod import LOD, build_building, build_buildings
from lod3d.lod.metrics import dsm_volume, rebuild_metrics, truth_of
from lod3d.lod.solid import envelope_solid
from lod3d.pipeline import Pipeline
from lod3d.raster import Raster
from test_cityjson_rasterize import gable_building


def _rasters(buildings):
    bc = burn_buildings(buildings, res=0.5, crs_epsg=2154)
    return bc


def test_gable_recovered_exactly():
    bc = _rasters([gable_building()])
    (b,) = build_buildings(bc.footprints, bc.dsm, bc.dtm)
    a = b.attributes
    assert a["roof_type"] == "gable" and a["roof_planes"] == 2
    assert a["rmse_lod22"] < 0.05 and a["h_ground"] == pytest.approx(10.0)
    assert a["volume_lod22"] == pytest.approx(12 * 8 * 6 + 12 * 8 * 3 / 2, rel=0.01)
    assert a["lod_fallback_reason"] is None
    assert check_geometry(to_cityjson_dict([b], crs_epsg=2154)) == []


@pytest.mark.parametrize("kind", ["flat", "shed", "hip", "mansard"])
def test_primitives_recovered(kind):
    fp = shapely.affinity.rotate(shapely.box(1000, 2000, 1020, 2012), 23)
    c = fp.centroid
    th = np.radians(23)
    u = (np.cos(th), np.sin(th))
    v = (-np.sin(th), np.cos(th))

    def pl(du, dv, h):  # plane rising du per metre along the long axis, dv across
        a, b = du * u[0] + dv * v[0], du * u[1] + dv * v[1]
        return (a, b, h - a * c.x - b * c.y)

    planes = {"flat": [pl(0, 0, 15)], "shed": [pl(0, 0.3, 15)],
              "hip": [pl(0.6, 0, 17), pl(-0.6, 0, 17), pl(0, 0.6, 14.6), pl(0, -0.6, 14.6)],
              "mansard": [pl(1.5, 0, 29), pl(-1.5, 0, 29), pl(0, 1.5, 23), pl(0, -1.5, 23), pl(0, 0, 17)]}[kind]
    solid, _ = envelope_solid(fp, np.array(planes), 5.0, "2.2")
    from lod3d.cityjson import Building, BuildingPart
    truth = Building("t", fp, 5.0, [BuildingPart("t-0", [solid])])
    bc = _rasters([truth])
    (b,) = build_buildings(bc.footprints, bc.dsm, bc.dtm)
    assert b.attributes["roof_type"] == kind
    assert b.attributes["rmse_lod22"] < 0.1


def test_every_building_emitted_with_fallback_reason():
    bc = _rasters([gable_building()])
    dsm = bc.dsm.with_data(np.full(bc.dsm.shape, np.nan, np.float32))
    b = build_building("g", bc.footprints[0][1], dsm, bc.dtm)
    assert b.parts == [] and "valid DSM samples" in b.attributes["lod_fallback_reason"]
    assert b.attributes["nodata_share"] == 1.0
    # a footprint entirely outside the DSM is still emitted (LOD0 only)
    far = shapely.box(0, 0, 10, 10)
    b = build_building("far", far, bc.dsm, bc.dtm)
    assert b.footprint.equals(far) and b.parts == []


def test_degenerate_and_multipart_footprints():
    bc = _rasters([gable_building()])
    bowtie = shapely.Polygon([(100, 200), (112, 208), (112, 200), (100, 208)])
    b = build_building("bow", bowtie, bc.dsm, bc.dtm)
    assert len(b.parts) == 2  # make_valid splits the bow-tie into two triangles
    assert check_geometry(to_cityjson_dict([b], crs_epsg=2154)) == []


def test_stage_in_pipeline_and_lod_choice():
    bc = _rasters([gable_building()])
    out = Pipeline([LOD(lods=(0, 1))]).run({"dsm": bc.dsm, "dtm": bc.dtm, "footprints": bc.footprints})
    (b,) = out["buildings"]
    assert [s.lod for p in b.parts for s in p.solids] == ["1.2", "1.3"]


def test_cli(tmp_path, cityjson_schema):
    bc = _rasters([gable_building(), gable_building("h", x0=130.0)])
    bc.dsm.write(tmp_path / "dsm.tif")
    bc.dtm.write(tmp_path / "dtm.tif")
    fc = {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::2154"}},
          "features": [{"type": "Feature", "id": i, "properties": {}, "geometry": json.loads(shapely.to_geojson(p))}
                       for i, p in bc.footprints]}
    (tmp_path / "fp.geojson").write_text(json.dumps(fc))
    args = ["lod", "--dsm", str(tmp_path / "dsm.tif"), "--dtm", str(tmp_path / "dtm.tif"),
            "--footprints", str(tmp_path / "fp.geojson"), "--reference-date", "2024-01-01"]
    res = CliRunner().invoke(cli, args + ["--out", str(tmp_path / "x.city.json")])
    assert res.exit_code == 0, res.output
    assert validate_file(tmp_path / "x.city.json", cityjson_schema) == []
    res = CliRunner().invoke(cli, args + ["--out", str(tmp_path / "y.city.jsonl")])
    assert res.exit_code == 0 and validate_file(tmp_path / "y.city.jsonl", cityjson_schema) == []
    res = CliRunner().invoke(cli, args[:-2] + ["--lod", "0,3", "--out", str(tmp_path / "z.city.json")])
    assert res.exit_code == 2 and "unknown level" in res.output
    bc.dsm.write(tmp_path / "ortho.tif")  # any image on the DSM's CRS exercises the option
    res = CliRunner().invoke(cli, args + ["--ortho", str(tmp_path / "ortho.tif"), "--out", str(tmp_path / "o.city.json")])
    assert res.exit_code == 0 and validate_file(tmp_path / "o.city.json", cityjson_schema) == []
    dataclasses.replace(bc.dsm, crs=rasterio.crs.CRS.from_epsg(32631)).write(tmp_path / "utm.tif")
    res = CliRunner().invoke(cli, args + ["--ortho", str(tmp_path / "utm.tif"), "--out", str(tmp_path / "u.city.json")])
    assert res.exit_code == 2 and "utm.tif" in res.output and "CRS" in res.output
    assert not (tmp_path / "u.city.json").exists()
    (tmp_path / "bad.geojson").write_text("{}")
    res = CliRunner().invoke(cli, args[:5] + ["--footprints", str(tmp_path / "bad.geojson"), "--out", str(tmp_path / "w.city.json")])
    assert res.exit_code == 2 and "FeatureCollection" in res.output


def _sfcgal_errors(buildings, lods=("1.2", "1.3", "2.2")):
    """Solids at ``lods`` SFCGAL finds invalid (skips when pysfcgal is absent).

    SFCGAL tests planarity in exact rational arithmetic, which a sloped face with more
    than three float corners never passes (our own check allows 1 cm, as val3dity); so,
    for this test only, sloped roof faces are triangulated (constrained Delaunay of their
    plan view, corners unchanged); horizontal and vertical faces are exactly planar and go
    as they are."""
    geometry = pytest.importorskip("pysfcgal.geometry")
    bad, seen = [], set()
    for b in buildings:
        for p in b.parts:
            for solid in p.solids:
                if solid.lod not in lods or id(solid.surfaces) in seen:  # LoD1.3 may be the LoD1.2 solid
                    continue
                seen.add(id(solid.surfaces))
                faces = []
                for s in solid.surfaces:
                    r = s.rings[0]
                    if s.semantic == "RoofSurface" and np.ptp(r[:, 2]) > 0:
                        faces += _triangles(s.rings)
                    else:
                        faces.append(s.rings)
                wkt = ",".join("(" + ",".join("(" + ",".join(" ".join(map(repr, map(float, q)))
                                                             for q in np.vstack([r, r[:1]])) + ")" for r in f) + ")"
                               for f in faces)
                g = geometry.Geometry.from_wkt(f"SOLID Z (({wkt}))")
                if not g.is_valid():
                    bad.append((p.id, solid.lod, g.is_valid_detail()))
    return bad


def _triangles(rings):
    """A roof face (rings of 3-D corners, normal up) as triangles on its own corners."""
    z = {(x, y): h for r in rings for x, y, h in r}
    poly = shapely.Polygon(rings[0][:, :2], [r[:, :2] for r in rings[1:]])
    out = []
    for t in shapely.get_parts(shapely.constrained_delaunay_triangles(poly)):
        xy = np.asarray(shapely.geometry.polygon.orient(t, 1.0).exterior.coords)[:-1]
        out.append([np.array([(x, y, z[(x, y)]) for x, y in xy])])
    return out


def test_height_jump_splits_into_lod13_parts(cityjson_schema):
    """An L of two flat blocks at 6 m and 12 m in one footprint: two parts sharing a wall,
    LoD1.3 prisms and LoD2.2 roofs at their own heights, all valid (own checks, SFCGAL)."""
    from lod3d.cityjson import Building, BuildingPart
    low, high = shapely.box(1000, 2000, 1020, 2010), shapely.box(1000, 2010, 1012, 2022)
    truth = [Building(n, fp, 5.0, [BuildingPart(n + "-0", [envelope_solid(fp, np.array([[0, 0, h]]), 5.0, "2.2")[0]])])
             for n, fp, h in (("a", low, 11.0), ("b", high, 17.0))]
    bc = _rasters(truth)
    (b,) = build_buildings([("ab", shapely.union(low, high))], bc.dsm, bc.dtm)
    lods = {p.id: [s.lod for s in p.solids] for p in b.parts}
    assert lods == {"ab-0": ["1.2"], "ab-0-0": ["1.3", "2.2"], "ab-0-1": ["1.3", "2.2"]}
    assert b.attributes["rmse_lod22"] < 0.05 and b.attributes["rmse_lod13"] < 0.05
    assert b.attributes["volume_lod22"] == pytest.approx(200 * 6 + 144 * 12, rel=0.01)
    doc = to_cityjson_dict([b], crs_epsg=2154)
    assert check_geometry(doc) == [] and _sfcgal_errors([b]) == []


def test_data_driven_roof_off_axis():
    """A shed whose slope runs 30 degrees off the footprint's axes: no primitive fits, the
    RANSAC planes do."""
    fp = shapely.box(1000, 2000, 1024, 2014)
    th = np.radians(30)
    plane = np.array([[0.3 * np.cos(th), 0.3 * np.sin(th), 0.0]])
    plane[0, 2] = 15 - plane[0, 0] * 1012 - plane[0, 1] * 2007
    from lod3d.cityjson import Building, BuildingPart
    truth = Building("t", fp, 5.0, [BuildingPart("t-0", [envelope_solid(fp, plane, 5.0, "2.2")[0]])])
    bc = _rasters([truth])
    (b,) = build_buildings(bc.footprints, bc.dsm, bc.dtm)
    assert b.attributes["rmse_lod22"] < 0.1 and b.attributes["roof_type"] == "shed"


# data set -> (roof RMSE bound, volume error bound): the acceptance goals where met. Delft
# (LoD1, low sheds) is rebuilt exactly (RMSE 0) but its model's ground sits at the median of
# the terrain around each building, ours at the 10th percentile (the rule): 0.17 m
# lower under a 2.4 m shed is 7 % of its volume.
ACCEPT = {"rotterdam_subset.json": (0.3, 0.05), "DH_01_subs.city.json": (0.3, 0.05), "delft.json": (0.01, 0.08)}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ACCEPT))
def test_real_models_rebuilt(shared_data, cityjson_schema, name):
    """Real city models burnt at 0.5 m, rebuilt: all present, valid (own checks, schema,
    SFCGAL), volume close to the DSM's, roof RMSE within the 0.3 m goal."""
    bc = burn_cityjson(shared_data / "cityjson/real" / name, crs_epsg=28992)
    bs = build_buildings(bc.footprints, bc.dsm, bc.dtm)
    assert [b.id for b in bs] == sorted(i for i, _ in bc.footprints)
    truth = {b.id: (dsm_volume(fp, bc.dsm, b.ground_z), None) for b, (_, fp) in zip(bc.buildings, bc.footprints)}
    m = rebuild_metrics(bs, truth, 28992, cityjson_schema)
    rmse, vol = ACCEPT[name]
    assert m["invalid"] == [] and m["schema_errors"] == 0 and m["lod22"] >= 0.95 * len(bs)
    assert m["volume_err_max"] < vol and m["volume_err_mean"] < 0.01 and m["roof_rmse"] <= rmse
    # SFCGAL takes ~12 ms a solid: on Delft's 160 flat-roofed buildings, the LoD2.2 ones only
    assert _sfcgal_errors(bs, ("2.2",) if name == "delft.json" else ("1.2", "1.3", "2.2")) == []


@pytest.fixture(scope="module")
def toulouse():
    """Simulated Toulouse (300 m, seed 7: the benchmark's scene) from the simulator's stage
    API, without rendering images: truth DSM/DTM rasters, footprints, truth buildings."""

    from lod3d.aoi import aoi
    from lod3d.simulate.acquisition import SCENE_MARGIN_M
    from lod3d.simulate.scene import generate_scene
    from lod3d.simulate.truth import rasterize_truth, truth_buildings
    area = aoi("toulouse").crop(300)
    x0, y0, x1, y1 = area.bounds
    m = SCENE_MARGIN_M
    scene = generate_scene((x0 - m, y0 - m, x1 + m, y1 + m), crs=area.crs, seed=7)
    grid = Affine(0.5, 0.0, x0, 0.0, -0.5, y1)
    t = rasterize_truth(scene, grid, (round((y1 - y0) / 0.5), round((x1 - x0) / 0.5)))
    box = shapely.box(*area.bounds)
    fps = [(str(b.id), b.footprint) for b in scene.buildings if b.footprint.intersects(box)]
    truth = {str(b.attributes["truth_id"]): truth_of(b) for b in truth_buildings(scene)}
    dsm, dtm = (Raster(a, grid, area.crs, nodata=float("nan")) for a in (t.dsm, t.dtm))
    return fps, dsm, dtm, {i: truth[i] for i, _ in fps}, area.epsg


def test_dsm_noise_estimate():
    """The noise of a roof DSM is told apart from its slopes and ridge."""
    from lod3d.lod.partition import dsm_noise
    rr, cc = np.mgrid[0:40, 0:60] * 0.5
    roof = 20 - 0.6 * np.abs(rr - 10)  # a gable
    assert dsm_noise(roof) < 0.01
    noisy = roof + np.random.default_rng(1).normal(0, 0.4, roof.shape)
    assert dsm_noise(noisy) == pytest.approx(0.4, rel=0.1)


@pytest.mark.slow
def test_simulated_toulouse_noisy_dsm(toulouse):
    """The same scene with 0.5 m of noise on the DSM: every building still valid, roofs
    explained down to the noise (measured RMSE 0.50 m), volumes within 1 % on average
    (0.3 %), roof type right for 91 %."""
    fps, dsm, dtm, truth, epsg = toulouse
    noisy = dsm.with_data((dsm.data + np.random.default_rng(0).normal(0, 0.5, dsm.shape)).astype(np.float32))
    m = rebuild_metrics(build_buildings(fps, noisy, dtm), truth, epsg)
    assert m["present"] == len(fps) and m["invalid"] == [] and m["lod22"] >= 0.95 * len(fps)
    assert m["roof_rmse"] < 0.55 and m["volume_err_mean"] < 0.01 and m["roof_type_acc"] >= 0.85


@pytest.mark.slow
def test_simulated_toulouse_rebuilt(toulouse, cityjson_schema):
    """Simulated Toulouse rebuilt from its truth rasters and footprints, past the acceptance
    goals: every building present and valid, roof RMSE within 0.05 m (goal 0.3, measured
    0.012), volume error within 5 % over the buildings the DSM covers (measured 0.3 % mean,
    1.3 % max); roof type right for 92 % (most misses: buildings cut by the scene edge)."""
    fps, dsm, dtm, truth, epsg = toulouse
    bs = build_buildings(fps, dsm, dtm)
    m = rebuild_metrics(bs, truth, epsg, cityjson_schema)
    assert m["present"] == len(fps) == len(truth) and m["lod22"] >= 0.95 * len(fps)
    assert m["invalid"] == [] and m["schema_errors"] == 0
    assert m["roof_rmse"] <= 0.05 and m["volume_err_max"] < 0.05 and m["roof_type_acc"] >= 0.9
    assert _sfcgal_errors(bs) == []


def test_piece_without_fit_does_not_void_partition():
    """A sliver without a roof fit is scored flat at its 70th percentile (as it is built),
    so a partition whose other pieces fit exactly still beats a misfitting one."""
    from lod3d.lod.build import _score
    from lod3d.lod.partition import RoofCells
    from lod3d.lod.roof import RoofFit

    x, y = (a.ravel() + 0.25 for a in np.meshgrid(np.arange(0, 10, 0.5), np.arange(0, 4, 0.5)))
    z = np.where(x < 9, 10.0 + 0.5 * x, 3.0)  # a shed and, beyond x = 9 m, a low sliver
    cells = RoofCells(x, y, z, np.ones(len(z), np.int32), np.zeros((0, 0), np.int32), Affine.identity(), 0)
    shed = RoofFit("shed", np.array([[0.5, 0.0, 10.0]]), 0.0, 0.0)
    good = [(shapely.box(0, 0, 9, 4), shed), (shapely.box(9, 0, 10, 4), None)]
    bad = [(shapely.box(0, 0, 10, 4), shed)]
    (s_good, worst_good), (s_bad, worst_bad) = _score(good, cells, 0.15), _score(bad, cells, 0.15)
    assert np.isfinite(s_good) and s_good < s_bad
    assert worst_good == pytest.approx(0.0, abs=1e-9) and worst_bad > 1.0
    assert _score([(shapely.box(20, 20, 21, 21), None)] + good, cells, 0.15)[0] == pytest.approx(s_good)
