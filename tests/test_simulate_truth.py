"""Truth products of the procedural scene: rasters, surface, footprints, LOD2 solids."""

import json
import math
from collections import Counter

import numpy as np
import pytest
import rasterio.features
from affine import Affine

from lod3d.kernels.scene import roof_height
from lod3d.simulate.scene import generate_scene
from lod3d.simulate.surface import KIND_ROAD, KIND_ROOF, KIND_TREE
from lod3d.simulate.truth import (footprints_geojson, part_solid, rasterize_truth,
                                  scene_surface, truth_buildings)

X0, Y0, SIZE, RES = 370_000.0, 4_826_000.0, 300.0, 0.25
N = int(SIZE / RES)
TRANSFORM = Affine(RES, 0, X0, 0, -RES, Y0 + SIZE)


def _centre(row, col):
    return X0 + (col + 0.5) * RES, Y0 + SIZE - (row + 0.5) * RES


@pytest.fixture(scope="module")
def scene():
    return generate_scene((X0, Y0, X0 + SIZE, Y0 + SIZE), seed=7)


@pytest.fixture(scope="module")
def truth(scene):
    return rasterize_truth(scene, TRANSFORM, (N, N))


def test_rasters_deterministic_and_dsm_above_dtm(scene, truth):
    again = rasterize_truth(generate_scene((X0, Y0, X0 + SIZE, Y0 + SIZE), seed=7), TRANSFORM, (N, N))
    for a, b in ((truth.dsm, again.dsm), (truth.dtm, again.dtm), (truth.buildings, again.buildings)):
        np.testing.assert_array_equal(a, b)
    assert truth.dsm.dtype == truth.dtm.dtype == np.float32 and truth.buildings.dtype == np.int32
    assert (truth.dsm >= truth.dtm).all()
    # DTM is the terrain function at cell centres; roofs stand well above it.
    rows, cols = np.array([0, 17, N - 1]), np.array([5, N // 2, N - 1])
    x, y = _centre(rows, cols)
    np.testing.assert_allclose(truth.dtm[rows, cols], scene.terrain(x, y), atol=1e-4)
    assert 180 < truth.dtm.min() < truth.dtm.max() < 215
    roof = truth.buildings > 0
    assert (truth.dsm - truth.dtm)[roof].min() >= 2.5 - 1e-3
    assert (truth.dsm - truth.dtm)[roof].max() <= 40.5


def test_building_raster_matches_footprints(scene, truth):
    burnt = rasterio.features.rasterize(((b.footprint, b.id) for b in scene.buildings),
                                        out_shape=(N, N), transform=TRANSFORM, dtype="int32")
    mismatch = (burnt != truth.buildings).mean()
    assert mismatch < 1e-3
    assert set(np.unique(truth.buildings)) - {0} == {b.id for b in scene.buildings}


def test_roof_heights_exact_at_cell_centres(scene, truth):
    p = scene.parts
    rng = np.random.default_rng(0)
    ids = truth.buildings
    rows, cols = np.nonzero(ids > 0)
    pick = rng.choice(len(rows), 300, replace=False)
    for i, j in zip(rows[pick], cols[pick]):
        x, y = _centre(i, j)
        best = -np.inf
        for k in scene.building(int(ids[i, j])).parts:
            c, s = math.cos(p.angle[k]), math.sin(p.angle[k])
            u, v = (x - p.cx[k]) * c + (y - p.cy[k]) * s, -(x - p.cx[k]) * s + (y - p.cy[k]) * c
            if abs(u) <= p.a[k] and abs(v) <= p.b[k]:
                best = max(best, roof_height(p.roof[k], u, v, p.a[k], p.b[k], p.eave[k], p.ridge[k]))
        assert truth.dsm[i, j] == pytest.approx(best, abs=1e-4)


def test_trees_in_dsm_are_rough_not_flat(scene, truth):
    t = scene.trees
    k = int(np.argmax(t.radius))
    col, row = (t.x[k] - X0) / RES, (Y0 + SIZE - t.y[k]) / RES
    win = truth.dsm[int(row) - 6:int(row) + 7, int(col) - 6:int(col) + 7] - truth.dtm[int(row), int(col)]
    assert win.max() > 5
    assert np.abs(np.diff(win, 2, axis=1)).mean() > 0.05  # not a smooth plane like a roof


def _edges(solid):
    edges = Counter()
    for surface in solid.surfaces:
        ring = [tuple(np.round(v, 6)) for v in surface.rings[0]]
        for a, b in zip(ring, ring[1:] + ring[:1]):
            edges[(a, b)] += 1
    return edges


def _signed_volume(solid):
    """Divergence theorem over fan triangles, about a local origin (no cancellation)."""
    origin = solid.surfaces[0].rings[0][0]
    vol = 0.0
    for surface in solid.surfaces:
        ring = surface.rings[0] - origin
        for k in range(1, len(ring) - 1):
            vol += np.dot(ring[0], np.cross(ring[k], ring[k + 1])) / 6.0
    return vol


def _analytic_volume(p, k):
    area = 4 * p.a[k] * p.b[k]
    walls, rise = area * (p.eave[k] - p.base[k]), p.ridge[k] - p.eave[k]
    roof = p.roof[k]
    if roof == 0:
        return walls
    if roof in (1, 2):
        return walls + area * rise / 2
    if roof == 4:
        return walls + area * rise / 3
    a, b = p.a[k], p.b[k]
    return walls + 2 * (a - b) * b * rise + 4 * b * b * rise / 3


def test_solids_closed_planar_outward_with_exact_volume(scene):
    p = scene.parts
    for k in range(len(p)):
        solid = part_solid(scene, k)
        edges = _edges(solid)
        for (a, b), n in edges.items():
            assert n == 1 and edges[(b, a)] == 1, (k, a, b)
        for surface in solid.surfaces:
            ring = surface.rings[0]
            normal = np.cross(ring[1] - ring[0], ring[2] - ring[0])
            normal /= np.linalg.norm(normal)
            assert np.abs((ring - ring[0]) @ normal).max() < 1e-6
        volume = _signed_volume(solid)
        assert volume > 0
        assert volume == pytest.approx(_analytic_volume(p, k), rel=1e-9)


def test_solid_volume_matches_dsm_integral(scene, truth):
    from lod3d.simulate.truth import _zbuffer

    _, height, top = _zbuffer(scene, TRANSFORM, (N, N))
    p = scene.parts
    big = np.argsort(-(p.a * p.b))[:10]
    for k in big:
        cells = top == k + 1
        dsm_volume = float((height[cells] - p.base[k]).sum()) * RES * RES
        assert dsm_volume == pytest.approx(_signed_volume(part_solid(scene, int(k))), rel=0.02)


def test_roof_slope_and_azimuth_point_downhill(scene):
    p = scene.parts
    for k in np.flatnonzero(p.roof > 0)[:40]:
        c, s = math.cos(p.angle[k]), math.sin(p.angle[k])
        for surface in part_solid(scene, int(k)).surfaces:
            if surface.semantic != "RoofSurface":
                continue
            centre = surface.rings[0].mean(axis=0)
            az = math.radians(surface.attributes["azimuth"])
            step = 0.05
            pts = [centre[:2], centre[:2] + step * np.array([math.sin(az), math.cos(az)])]
            z = []
            for x, y in pts:
                u, v = (x - p.cx[k]) * c + (y - p.cy[k]) * s, -(x - p.cx[k]) * s + (y - p.cy[k]) * c
                z.append(roof_height(p.roof[k], u, v, p.a[k], p.b[k], p.eave[k], p.ridge[k]))
            slope = math.degrees(math.atan((z[0] - z[1]) / step))
            assert slope == pytest.approx(surface.attributes["slope"], abs=1e-3)


def test_truth_buildings_and_footprints(scene, tmp_path, cityjson_schema):
    buildings = truth_buildings(scene)
    assert [b.attributes["truth_id"] for b in buildings] == [b.id for b in scene.buildings]
    assert sum(len(b.parts) for b in buildings) == len(scene.parts)
    semantics = {s.semantic for b in buildings for part in b.parts for s in part.solids[0].surfaces}
    assert semantics == {"RoofSurface", "WallSurface", "GroundSurface"}
    fc = json.loads(json.dumps(footprints_geojson(scene)))
    assert [f["id"] for f in fc["features"]] == [b.id for b in scene.buildings]
    assert all(f["geometry"]["type"] == "Polygon" for f in fc["features"])

    import jsonschema

    from lod3d.cityjson.writer import write_cityjson

    path = write_cityjson(tmp_path / "truth.city.json", buildings, crs_epsg=32631)
    doc = json.loads(path.read_text())
    jsonschema.validate(doc, json.loads(cityjson_schema.read_text()))
    assert len([o for o in doc["CityObjects"].values() if o["type"] == "Building"]) == len(buildings)


def test_scene_surface_matches_truth_and_has_materials(scene, truth):
    surface = scene_surface(scene, res=RES)
    assert surface.shape == (N, N) and surface.transform == TRANSFORM
    np.testing.assert_array_equal(surface.height, truth.dsm)
    np.testing.assert_array_equal(surface.kind == KIND_ROOF, truth.buildings > 0)
    assert (surface.kind == KIND_TREE).any() and (surface.kind == KIND_ROAD).any()
    for a in (surface.albedo, surface.wall_albedo):
        assert a.dtype == np.float32 and 0 < a.min() and a.max() <= 1
    road = surface.albedo[surface.kind == KIND_ROAD].mean()
    assert road < surface.albedo[surface.kind == KIND_ROOF].mean()
    assert surface.albedo[surface.kind == KIND_TREE].mean() < road
