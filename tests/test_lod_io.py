"""Footprints for the LOD stage: GeoJSON and the GeoPackage that outline and city write."""

import numpy as np
import pytest
import shapely
from click.testing import CliRunner

from lod3d.cli.main import cli
from lod3d.errors import InputError
from lod3d.lod.io import read_footprints
from lod3d.outline import Footprints
from lod3d.outline.io import write_footprints


def _footprints(crs):
    polys = np.array([shapely.box(0, 0, 10, 8), shapely.Polygon([(20, 0), (30, 0), (30, 6), (25, 9), (20, 6)],
                                                               [[(22, 2), (24, 2), (24, 4), (22, 4)]])])
    return Footprints(ids=np.array([7, 3]), polygons=polys, cut=np.zeros(2, bool), raw=polys,
                      fallback=np.zeros(2, bool), crs=crs)


def test_gpkg_round_trip(tmp_path):
    fp = _footprints("EPSG:2154")
    write_footprints(tmp_path / "f.gpkg", fp)
    got = read_footprints(tmp_path / "f.gpkg", "EPSG:2154")
    assert [i for i, _ in got] == ["7", "3"]
    assert all(shapely.equals_exact(g, p, 1e-9) for (_, g), p in zip(got, fp.polygons))


def test_gpkg_is_reprojected(tmp_path):
    write_footprints(tmp_path / "f.gpkg", _footprints("EPSG:2154"))
    write_footprints(tmp_path / "f.geojson", _footprints("EPSG:2154"))
    a = read_footprints(tmp_path / "f.gpkg", "EPSG:4326")
    b = read_footprints(tmp_path / "f.geojson", "EPSG:4326")
    assert a[0][1].bounds[0] < 0 and shapely.equals_exact(a[0][1], b[0][1], 1e-12)


@pytest.mark.parametrize("content", [b"not a database", b""])
def test_bad_gpkg_is_named(tmp_path, content):
    (tmp_path / "bad.gpkg").write_bytes(content)
    with pytest.raises(InputError, match=r"bad\.gpkg: not a readable GeoPackage"):
        read_footprints(tmp_path / "bad.gpkg")


def test_gpkg_with_two_feature_tables_is_refused(tmp_path):
    import sqlite3

    write_footprints(tmp_path / "f.gpkg", _footprints("EPSG:2154"))
    con = sqlite3.connect(tmp_path / "f.gpkg")
    con.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier) VALUES ('roads', 'features', 'roads')")
    con.execute("INSERT INTO gpkg_geometry_columns VALUES ('roads', 'geom', 'LINESTRING', 2154, 0, 0)")
    con.commit()
    con.close()
    with pytest.raises(InputError, match="expected one feature table, found 2"):
        read_footprints(tmp_path / "f.gpkg")


def test_lod_cli_reads_gpkg(tmp_path):
    from test_lod_build import _rasters, gable_building

    bc = _rasters([gable_building(), gable_building("h", x0=130.0)])
    bc.dsm.write(tmp_path / "dsm.tif")
    bc.dtm.write(tmp_path / "dtm.tif")
    polys = np.array([p for _, p in bc.footprints])
    fp = Footprints(ids=np.arange(1, len(polys) + 1), polygons=polys, cut=np.zeros(len(polys), bool), raw=polys,
                    fallback=np.zeros(len(polys), bool), crs="EPSG:2154")
    write_footprints(tmp_path / "fp.gpkg", fp)
    res = CliRunner().invoke(cli, ["lod", "--dsm", str(tmp_path / "dsm.tif"), "--dtm", str(tmp_path / "dtm.tif"),
                                   "--footprints", str(tmp_path / "fp.gpkg"), "--out", str(tmp_path / "x.city.json")])
    assert res.exit_code == 0, res.output
    assert f"{len(polys)} buildings" in res.output
    res = CliRunner().invoke(cli, ["lod", "--dsm", str(tmp_path / "dsm.tif"), "--dtm", str(tmp_path / "dtm.tif"),
                                   "--footprints", str(tmp_path / "fp.shp"), "--out", str(tmp_path / "y.city.json")])
    assert res.exit_code == 2 and "fp.shp" in res.output and "GeoPackage" in res.output
    assert not (tmp_path / "y.city.json").exists()
