"""``lod3d validate`` accepts valid files and rejects each kind of broken one."""

import copy
import json

import pytest
from click.testing import CliRunner

from lod3d.cityjson import to_cityjson_dict
from lod3d.cityjson.validate import validate_document
from lod3d.cli.main import cli
from test_cityjson_writer import box_building


@pytest.fixture()
def doc():
    return to_cityjson_dict([box_building("b1")], crs_epsg=2154, metadata={"referenceDate": "2024-01-01"})


def _codes(d, schema):
    return {e.code for e in validate_document(d, schema)}


def _solid(d):
    return d["CityObjects"]["b1-0"]["geometry"][0]


def test_valid(doc, cityjson_schema):
    assert validate_document(doc, cityjson_schema) == []


def test_flipped_face(doc, cityjson_schema):
    face = _solid(doc)["boundaries"][0][2]
    face[0] = face[0][::-1]
    assert 307 in _codes(doc, cityjson_schema)


def test_all_faces_flipped_is_inward(doc, cityjson_schema):
    shell = _solid(doc)["boundaries"][0]
    for face in shell:
        face[0] = face[0][::-1]
    assert _codes(doc, cityjson_schema) == {307}


def test_open_shell(doc, cityjson_schema):
    g = _solid(doc)
    del g["boundaries"][0][3]
    del g["semantics"]["values"][0][3]
    assert 302 in _codes(doc, cityjson_schema)


def test_non_planar_and_self_intersecting(doc, cityjson_schema):
    d = copy.deepcopy(doc)
    d["vertices"][_solid(d)["boundaries"][0][0][0][0]][2] += 500  # 0.5 m off the roof plane
    assert 203 in _codes(d, cityjson_schema)
    ring = _solid(doc)["boundaries"][0][0][0]
    ring[1], ring[2] = ring[2], ring[1]  # bow-tie
    assert 104 in _codes(doc, cityjson_schema)


def test_bad_lod_string(doc, cityjson_schema):
    _solid(doc)["lod"] = "2.5"
    assert _codes(doc, cityjson_schema) == {"schema"}


def test_missing_transform(doc, cityjson_schema):
    del doc["transform"]
    assert _codes(doc, cityjson_schema) == {"schema"}


def test_bad_semantics(doc, cityjson_schema):
    d = copy.deepcopy(doc)
    _solid(d)["semantics"]["surfaces"][0]["type"] = "Rooftop"
    assert _codes(d, cityjson_schema) == {"schema"}
    _solid(doc)["semantics"]["values"][0].pop()
    assert _codes(doc, cityjson_schema) == {"semantics_arrays"}


def test_duplicate_unused_vertices_and_links(doc, cityjson_schema):
    doc["vertices"].append(list(doc["vertices"][0]))
    doc["CityObjects"]["b1-0"]["parents"] = ["nope"]
    assert _codes(doc, cityjson_schema) == {"duplicate_vertices", "unused_vertices", "parents_children"}


def test_cli_exit_codes(tmp_path, doc, cityjson_schema):
    good = tmp_path / "good.city.json"
    good.write_text(json.dumps(doc))
    res = CliRunner().invoke(cli, ["validate", str(good)])  # the schema shipped in lod3d/data
    assert res.exit_code == 0 and "valid" in res.output
    _solid(doc)["boundaries"][0][2][0].reverse()
    bad = tmp_path / "bad.city.json"
    bad.write_text(json.dumps(doc))
    res = CliRunner().invoke(cli, ["validate", str(bad), "--schema", str(cityjson_schema)])
    assert res.exit_code == 1 and "307 POLYGON_WRONG_ORIENTATION" in res.output
    res = CliRunner().invoke(cli, ["validate", str(tmp_path / "missing.json")])
    assert res.exit_code == 2 and "no such file" in res.output


def test_real_files_are_read(shared_data, cityjson_schema):
    # DH is CityJSON 1.1: the 2.0 schema reports the version, and nothing crashes
    errs = validate_document(json.loads((shared_data / "cityjson/real/DH_01_subs.city.json").read_text()),
                             cityjson_schema)
    assert [e.code for e in errs] == ["schema"]
