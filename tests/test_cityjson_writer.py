"""CityJSON writer, CityJSONSeq, reader round trip."""

import json

import numpy as np
import pytest
import shapely

from lod3d.cityjson import (Building, BuildingPart, Solid, Surface, read_cityjson, validate_file,
                            write_cityjson, write_cityjsonseq)
from lod3d.errors import OutputError


def box_solid(x0, y0, x1, y1, z0, z1, lod="1.2"):
    """An axis-aligned box with outward-oriented faces."""
    c = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)
    top = np.column_stack([c, np.full(4, z1)])
    bottom = np.column_stack([c[::-1], np.full(4, z0)])
    walls = [np.array([[*c[i], z0], [*c[(i + 1) % 4], z0], [*c[(i + 1) % 4], z1], [*c[i], z1]]) for i in range(4)]
    surfaces = [Surface([top], "RoofSurface", {"slope": 0.0, "azimuth": None}), Surface([bottom], "GroundSurface")]
    surfaces += [Surface([w], "WallSurface") for w in walls]
    return Solid(lod, surfaces)


def box_building(bid, x0=500000.0, y0=6270000.0, size=10.0, height=12.0, ground=150.0):
    fp = shapely.box(x0, y0, x0 + size, y0 + size)
    part = BuildingPart(f"{bid}-0", [box_solid(x0, y0, x0 + size, y0 + size, ground, ground + height, "1.2"),
                                     box_solid(x0, y0, x0 + size, y0 + size, ground, ground + height, "2.2")])
    return Building(bid, fp, ground, [part], {"roof_type": "flat", "h_dak_70p": np.float64(ground + height)})


def test_write_valid_and_deterministic(tmp_path, cityjson_schema):
    bs = [box_building("b2", x0=500020.0), box_building("b1")]
    meta = {"referenceDate": "2024-01-01", "lineage": {"inputs": ["dsm.tif"]}}
    a = write_cityjson(tmp_path / "a.city.json", bs, crs_epsg=2154, metadata=meta)
    b = write_cityjson(tmp_path / "b.city.json", bs[::-1], crs_epsg=2154, metadata=meta)
    assert a.read_bytes() == b.read_bytes()
    assert validate_file(a, cityjson_schema) == []
    doc = json.loads(a.read_text())
    assert doc["metadata"]["referenceSystem"] == "https://www.opengis.net/def/crs/EPSG/0/2154"
    assert list(doc["CityObjects"]) == ["b1", "b1-0", "b2", "b2-0"]
    assert doc["CityObjects"]["b1"]["geometry"][0]["lod"] == "0"
    assert [g["lod"] for g in doc["CityObjects"]["b1-0"]["geometry"]] == ["1.2", "2.2"]
    # shared vertices: two boxes (8 corners each) and nothing else
    assert len(doc["vertices"]) == 16
    ext = doc["metadata"]["geographicalExtent"]
    assert ext == [500000.0, 6270000.0, 150.0, 500030.0, 6270010.0, 162.0]


def test_round_trip_through_reader(tmp_path):
    path = write_cityjson(tmp_path / "x.city.json", [box_building("b1")], crs_epsg=2154)
    model = read_cityjson(path)
    assert model.crs_epsg == 2154
    (b,) = model.buildings()
    assert b.id == "b1" and b.ground_z == pytest.approx(150.0)
    assert b.footprint.area == pytest.approx(100.0)
    roof = [s for s in b.parts[0].solids[0].surfaces if s.semantic == "RoofSurface"]
    assert roof[0].rings[0][:, 2] == pytest.approx(162.0)


def test_quantization_that_breaks_validity_is_refused(tmp_path):
    # a 0.4 mm tall box collapses at 1 mm quantization: the writer must refuse, not write
    b = box_building("b1", height=0.0004)
    with pytest.raises(OutputError):
        write_cityjson(tmp_path / "x.city.json", [b], crs_epsg=2154)
    assert not (tmp_path / "x.city.json").exists()


def test_cityjsonseq(tmp_path, cityjson_schema):
    bs = [box_building("b1"), box_building("b2", x0=500020.0)]
    path = write_cityjsonseq(tmp_path / "x.city.jsonl", bs, crs_epsg=2154, metadata={"referenceDate": "2024-01-01"})
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[1])["type"] == "CityJSONFeature"
    assert validate_file(path, cityjson_schema) == []
    assert [b.id for b in read_cityjson(path).buildings()] == ["b1", "b2"]


def split_box_solid(x0, y0, size, z0, z1):
    """A box whose front wall is two faces (as where two roof parts meet): its ground face
    gets a collinear vertex at the split."""
    c = np.array([[x0, y0], [x0 + size / 2, y0], [x0 + size, y0], [x0 + size, y0 + size], [x0, y0 + size]], float)
    top = np.column_stack([c, np.full(5, z1)])
    bottom = np.column_stack([c[::-1], np.full(5, z0)])
    walls = [np.array([[*c[i], z0], [*c[(i + 1) % 5], z0], [*c[(i + 1) % 5], z1], [*c[i], z1]]) for i in range(5)]
    return Solid("2.2", [Surface([top], "RoofSurface"), Surface([bottom], "GroundSurface")]
                 + [Surface([w], "WallSurface") for w in walls])


def test_reader_takes_the_declared_lod0_footprint(tmp_path):
    x0, y0 = 500000.0, 6270000.0
    split = Building("b1", shapely.box(x0, y0, x0 + 10, y0 + 10), 150.0,
                     [BuildingPart("b1-0", [split_box_solid(x0, y0, 10.0, 150.0, 160.0)])])
    bare = Building("b2", shapely.box(x0 + 20, y0, x0 + 30, y0 + 10), 151.0, [], {"lod_max": "0"})
    path = write_cityjson(tmp_path / "x.city.json", [split, bare], crs_epsg=2154)
    b1, b2 = read_cityjson(path).buildings()
    # the LoD0 footprint has 4 corners; the union of ground faces would keep the split's 5th
    assert len(b1.footprint.exterior.coords) == 5 and b1.footprint.area == pytest.approx(100.0)
    assert b1.ground_z == pytest.approx(150.0)
    # a building that fell back to its footprint alone is still a building
    assert b2.parts == [] and b2.footprint.area == pytest.approx(100.0) and b2.ground_z == pytest.approx(151.0)
    # without LoD0 the footprint comes from the ground faces
    doc = json.loads(path.read_text())
    doc["CityObjects"]["b1"]["geometry"] = []
    path.write_text(json.dumps(doc))
    b1, _ = read_cityjson(path).buildings()
    assert len(b1.footprint.exterior.coords) == 6 and b1.footprint.area == pytest.approx(100.0)
