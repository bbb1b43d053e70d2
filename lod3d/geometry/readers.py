"""Read RPC camera models from the formats satellite imagery ships with.

* GDAL RPC tags in the image (GeoTIFF, NITF): :meth:`RPCModel.from_file`.
* OSSIM keyword lists (``.geom``, written by OTB/OSSIM, read by CARS and shareloc).
* Pleiades / SPOT 6-7 DIMAP v2 ``RPC_*.XML`` (the ``Inverse_Model`` is ground → image).

:func:`image_rpc` finds the model of an image: its own tags first, then a sidecar
``<stem>.geom``, then a DIMAP ``RPC_*.XML`` beside it. Image crops distributed with the
model of the full scene carry their origin as a pixel-unit geotransform (no CRS, unit
pixels, the offset of the crop): the model is shifted to the crop so that row/col index
the file's pixels. Convention everywhere: integer (row, col) = pixel centre, first pixel
(0, 0) — DIMAP counts from (1, 1) and is shifted by one.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import InputError
from .rpc import RPCModel

__all__ = ["read_geom", "read_dimap", "image_rpc"]

_OSSIM_SCALARS = {
    "line_off": "line_off", "line_scale": "line_scale", "samp_off": "samp_off",
    "samp_scale": "samp_scale", "lat_off": "lat_off", "lat_scale": "lat_scale",
    "lon_off": "long_off", "lon_scale": "long_scale", "height_off": "height_off",
    "height_scale": "height_scale",
}
_POLYS = {"line_num": "line_num_coeff", "line_den": "line_den_coeff",
          "samp_num": "samp_num_coeff", "samp_den": "samp_den_coeff"}


def read_geom(path) -> RPCModel:
    """An OSSIM ``.geom`` keyword list of type ``ossimRpcModel`` (polynomial format B)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    kw = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            kw[key.strip()] = value.strip()
    if "ossimRpcModel" not in kw.get("type", ""):
        raise InputError(f"{path}: not an OSSIM RPC model (type {kw.get('type')!r})")
    if kw.get("polynomial_format", "B") != "B":
        raise InputError(f"{path}: RPC polynomial format {kw['polynomial_format']!r} (only B is supported)")
    try:
        values = {ours: float(kw[theirs]) for ours, theirs in _OSSIM_SCALARS.items()}
        for ours, theirs in _POLYS.items():
            values[ours] = np.array([float(kw[f"{theirs}_{k:02d}"]) for k in range(20)])
    except (KeyError, ValueError) as exc:
        raise InputError(f"{path}: incomplete OSSIM RPC model ({exc})") from None
    return RPCModel(**values, err_bias=float(kw.get("bias_error", -1)),
                    err_rand=float(kw.get("rand_error", -1)))


def read_dimap(path) -> RPCModel:
    """A DIMAP v2 ``RPC_*.XML`` (Pleiades, SPOT 6/7): the ground → image ``Inverse_Model``."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise InputError(f"{path}: cannot parse DIMAP XML ({exc})") from None

    def text(tag: str) -> float:
        node = root.find(f".//{tag}")
        if node is None or node.text is None:
            raise InputError(f"{path}: DIMAP RPC lacks <{tag}>")
        return float(node.text)

    inverse = root.find(".//Inverse_Model")
    if inverse is None:
        raise InputError(f"{path}: no <Inverse_Model> (not a DIMAP v2 RPC file)")
    polys = {}
    for ours, tag in (("line_num", "LINE_NUM_COEFF"), ("line_den", "LINE_DEN_COEFF"),
                      ("samp_num", "SAMP_NUM_COEFF"), ("samp_den", "SAMP_DEN_COEFF")):
        coeffs = []
        for k in range(1, 21):
            node = inverse.find(f"{tag}_{k}")
            if node is None or node.text is None:
                raise InputError(f"{path}: DIMAP RPC lacks <{tag}_{k}>")
            coeffs.append(float(node.text))
        polys[ours] = np.array(coeffs)
    return RPCModel(
        **polys,
        line_off=text("LINE_OFF") - 1.0, line_scale=text("LINE_SCALE"),
        samp_off=text("SAMP_OFF") - 1.0, samp_scale=text("SAMP_SCALE"),
        lat_off=text("LAT_OFF"), lat_scale=text("LAT_SCALE"),
        lon_off=text("LONG_OFF"), lon_scale=text("LONG_SCALE"),
        height_off=text("HEIGHT_OFF"), height_scale=text("HEIGHT_SCALE"),
    )


def _crop_origin(path) -> tuple[float, float]:
    """(row, col) of a crop's first pixel in the full scene, from a pixel-unit geotransform."""
    import rasterio

    with rasterio.open(path) as src:
        t = src.transform
        if src.crs is None and t.a == 1 and t.e == 1 and t.b == 0 and t.d == 0:
            return float(t.f), float(t.c)
    return 0.0, 0.0


def image_rpc(path) -> RPCModel:
    """The RPC model of image ``path``: GDAL tags, else ``<stem>.geom``, else DIMAP ``RPC_*.XML``."""
    import rasterio

    path = Path(path)
    try:
        with rasterio.open(path) as src:
            rpcs = src.rpcs
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"{path}: cannot open image ({exc})") from None
    if rpcs is not None:
        return RPCModel.from_rasterio(rpcs)
    geom = path.with_suffix(".geom")
    dimap = sorted(p for p in path.parent.glob("*") if re.fullmatch(r"RPC_.*\.xml", p.name, re.I))
    if geom.is_file():
        model = read_geom(geom)
    elif len(dimap) == 1:
        model = read_dimap(dimap[0])
    else:
        raise InputError(f"{path}: no RPC camera model (no GDAL RPC tags, no {geom.name}, "
                         f"{'several' if dimap else 'no'} RPC_*.XML beside it)")
    row0, col0 = _crop_origin(path)
    return replace(model, line_off=model.line_off - row0, samp_off=model.samp_off - col0)
