"""RPC readers: OSSIM .geom, DIMAP v2 XML, GDAL tags, crop origins, missing models."""

from dataclasses import replace

import numpy as np
import pytest
import rasterio

from lod3d.errors import InputError
from lod3d.geometry.readers import image_rpc, read_dimap, read_geom
from lod3d.geometry.rpc import RPCModel


def _dimap_xml(m: RPCModel) -> str:
    coeffs = "".join(f"<{tag}_{k + 1}>{float(c)!r}</{tag}_{k + 1}>"
                     for tag, arr in (("LINE_NUM_COEFF", m.line_num), ("LINE_DEN_COEFF", m.line_den),
                                      ("SAMP_NUM_COEFF", m.samp_num), ("SAMP_DEN_COEFF", m.samp_den))
                     for k, c in enumerate(arr))
    val = (f"<LONG_SCALE>{m.lon_scale!r}</LONG_SCALE><LONG_OFF>{m.lon_off!r}</LONG_OFF>"
           f"<LAT_SCALE>{m.lat_scale!r}</LAT_SCALE><LAT_OFF>{m.lat_off!r}</LAT_OFF>"
           f"<HEIGHT_SCALE>{m.height_scale!r}</HEIGHT_SCALE><HEIGHT_OFF>{m.height_off!r}</HEIGHT_OFF>"
           f"<SAMP_SCALE>{m.samp_scale!r}</SAMP_SCALE><SAMP_OFF>{m.samp_off + 1!r}</SAMP_OFF>"
           f"<LINE_SCALE>{m.line_scale!r}</LINE_SCALE><LINE_OFF>{m.line_off + 1!r}</LINE_OFF>")
    return (f"<Dimap_Document><Rational_Function_Model><Global_RFM><Inverse_Model>{coeffs}</Inverse_Model>"
            f"<RFM_Validity>{val}</RFM_Validity></Global_RFM></Rational_Function_Model></Dimap_Document>")


def _same_projection(a: RPCModel, b: RPCModel):
    lon, lat = b.localize([10.0, 400.0, 700.0], [20.0, 300.0, 650.0], 60.0)
    ra, ca = a.project(lon, lat, 60.0)
    rb, cb = b.project(lon, lat, 60.0)
    np.testing.assert_allclose(ra, rb, atol=1e-6)
    np.testing.assert_allclose(ca, cb, atol=1e-6)


def test_geom_crop_matches_gdal_tags(shared_data):
    """The distributed .geom + crop origin equals the converted GDAL tags of the same crop."""
    tags = RPCModel.from_file(shared_data / "stereo/giza_pair/img1.tif")
    geom = image_rpc(shared_data / "stereo/giza_pair_geom/img1.tif")
    _same_projection(geom, tags)
    raw = read_geom(shared_data / "stereo/giza_pair_geom/img1.geom")
    assert raw.line_off - geom.line_off == 5000 and raw.samp_off - geom.samp_off == 20500


def test_dimap_roundtrip(tmp_path, shared_data):
    model = RPCModel.from_file(shared_data / "stereo/giza_pair/img2.tif")
    path = tmp_path / "RPC_PHR1B_P_TEST.XML"
    path.write_text(_dimap_xml(model))
    _same_projection(read_dimap(path), model)


def test_image_without_model_is_a_clear_error(tmp_path):
    path = tmp_path / "plain.tif"
    with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8") as dst:
        dst.write(np.ones((1, 8, 8), np.uint8))
    with pytest.raises(InputError, match="no RPC camera model"):
        image_rpc(path)


def test_bad_geom_and_dimap(tmp_path):
    geom = tmp_path / "x.geom"
    geom.write_text("type: ossimSarModel\n")
    with pytest.raises(InputError, match="not an OSSIM RPC model"):
        read_geom(geom)
    xml = tmp_path / "RPC_x.XML"
    xml.write_text("<Dimap_Document/>")
    with pytest.raises(InputError, match="Inverse_Model"):
        read_dimap(xml)


def test_geom_with_missing_coefficient(tmp_path, shared_data):
    text = (shared_data / "stereo/giza_pair_geom/img1.geom").read_text()
    bad = tmp_path / "img.geom"
    bad.write_text("\n".join(l for l in text.splitlines() if not l.startswith("samp_num_coeff_07")))
    with pytest.raises(InputError, match="incomplete"):
        read_geom(bad)
    assert replace(read_geom(shared_data / "stereo/giza_pair_geom/img1.geom")).height_off == 140
