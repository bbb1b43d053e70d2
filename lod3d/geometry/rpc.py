"""Rational polynomial camera models (RPC00B), vectorized.

An RPC maps ground (lon, lat, h) — degrees, degrees, metres above the WGS84 ellipsoid — to
image (row, col), pixel centres at integer coordinates, as the ratio of two cubic
polynomials in normalized coordinates (the 20-term RPC00B ordering, the one GDAL, OSSIM
and the NITF RPC00B TRE use). ``project`` is the forward model; ``localize`` inverts it for
a known height by Newton iteration, because RPCs have no closed-form inverse.

The same object reads and writes GDAL's RPC metadata (rasterio's ``RPC``), so a model read
from a Pleiades GeoTIFF and one fitted by the simulator are interchangeable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from rasterio.rpc import RPC as _RasterioRPC

from ..errors import InputError

__all__ = ["RPCModel", "rpc_monomials"]


def rpc_monomials(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """The 20 RPC00B monomials of normalized lon ``x``, lat ``y``, height ``z``.

    Returns an array of shape ``x.shape + (20,)``, in the RPC00B order
    1, L, P, H, LP, LH, PH, L², P², H², PLH, L³, LP², LH², L²P, P³, PH², L²H, P²H, H³.
    """
    x, y, z = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (x, y, z)))
    one = np.ones_like(x)
    return np.stack(
        [one, x, y, z, x * y, x * z, y * z, x * x, y * y, z * z,
         x * y * z, x ** 3, x * y * y, x * z * z, x * x * y, y ** 3, y * z * z,
         x * x * z, y * y * z, z ** 3],
        axis=-1,
    )


@dataclass(frozen=True)
class RPCModel:
    """An RPC00B model: offsets, scales and the four 20-coefficient polynomials."""

    line_num: np.ndarray
    line_den: np.ndarray
    samp_num: np.ndarray
    samp_den: np.ndarray
    line_off: float
    line_scale: float
    samp_off: float
    samp_scale: float
    lat_off: float
    lat_scale: float
    lon_off: float
    lon_scale: float
    height_off: float
    height_scale: float
    err_bias: float = -1.0
    err_rand: float = -1.0
    extra: dict = field(default_factory=dict, compare=False)

    # ---------------------------------------------------------------- I/O
    @classmethod
    def from_rasterio(cls, rpc: _RasterioRPC) -> "RPCModel":
        """Build from rasterio's ``RPC`` (``dataset.rpcs``)."""
        return cls(
            line_num=np.asarray(rpc.line_num_coeff, float), line_den=np.asarray(rpc.line_den_coeff, float),
            samp_num=np.asarray(rpc.samp_num_coeff, float), samp_den=np.asarray(rpc.samp_den_coeff, float),
            line_off=float(rpc.line_off), line_scale=float(rpc.line_scale),
            samp_off=float(rpc.samp_off), samp_scale=float(rpc.samp_scale),
            lat_off=float(rpc.lat_off), lat_scale=float(rpc.lat_scale),
            lon_off=float(rpc.long_off), lon_scale=float(rpc.long_scale),
            height_off=float(rpc.height_off), height_scale=float(rpc.height_scale),
            err_bias=float(rpc.err_bias if rpc.err_bias is not None else -1.0),
            err_rand=float(rpc.err_rand if rpc.err_rand is not None else -1.0),
        )

    def to_rasterio(self) -> _RasterioRPC:
        """Convert to rasterio's ``RPC``, to write as GDAL RPC tags (``rpcs=`` in a profile)."""
        return _RasterioRPC(
            height_off=self.height_off, height_scale=self.height_scale,
            lat_off=self.lat_off, lat_scale=self.lat_scale,
            line_den_coeff=list(map(float, self.line_den)), line_num_coeff=list(map(float, self.line_num)),
            line_off=self.line_off, line_scale=self.line_scale,
            long_off=self.lon_off, long_scale=self.lon_scale,
            samp_den_coeff=list(map(float, self.samp_den)), samp_num_coeff=list(map(float, self.samp_num)),
            samp_off=self.samp_off, samp_scale=self.samp_scale,
            err_bias=self.err_bias, err_rand=self.err_rand,
        )

    @classmethod
    def from_gdal_tags(cls, tags: dict) -> "RPCModel":
        """Build from a GDAL ``RPC`` metadata-domain dict (string values)."""
        try:
            return cls.from_rasterio(_RasterioRPC.from_gdal(tags))
        except (KeyError, ValueError, TypeError) as exc:
            raise InputError(f"malformed RPC metadata: {exc}") from None

    @classmethod
    def from_file(cls, path) -> "RPCModel":
        """Read the RPC tags of a raster (GeoTIFF, NITF, ...) through rasterio/GDAL."""
        import rasterio

        try:
            with rasterio.open(path) as src:
                rpcs = src.rpcs
        except rasterio.errors.RasterioIOError as exc:
            raise InputError(f"{path}: cannot open raster ({exc})") from None
        if rpcs is None:
            raise InputError(f"{path}: no RPC camera model (no GDAL RPC tags)")
        return cls.from_rasterio(rpcs)

    # ---------------------------------------------------------- geometry
    def project(self, lon, lat, h) -> tuple[np.ndarray, np.ndarray]:
        """Ground (lon°, lat°, h m) → image (row, col); arrays broadcast together."""
        x = (np.asarray(lon, float) - self.lon_off) / self.lon_scale
        y = (np.asarray(lat, float) - self.lat_off) / self.lat_scale
        z = (np.asarray(h, float) - self.height_off) / self.height_scale
        m = rpc_monomials(x, y, z)
        row = (m @ self.line_num) / (m @ self.line_den) * self.line_scale + self.line_off
        col = (m @ self.samp_num) / (m @ self.samp_den) * self.samp_scale + self.samp_off
        return row, col

    def localize(self, row, col, h, iterations: int = 20, tol_px: float = 1e-6):
        """Image (row, col) at height h → ground (lon°, lat°), by Newton iteration.

        Starts from the affine approximation at the model's centre and refines with a
        finite-difference Jacobian; converges to < ``tol_px`` in a few steps for any RPC
        that is locally invertible (all satellite pushbroom models are).
        """
        row, col, h = np.broadcast_arrays(*(np.asarray(a, float) for a in (row, col, h)))
        lon = np.full(row.shape, self.lon_off)
        lat = np.full(row.shape, self.lat_off)
        d_lon = 1e-6 * self.lon_scale
        d_lat = 1e-6 * self.lat_scale
        for _ in range(iterations):
            r0, c0 = self.project(lon, lat, h)
            r1, c1 = self.project(lon + d_lon, lat, h)
            r2, c2 = self.project(lon, lat + d_lat, h)
            a, b = (r1 - r0) / d_lon, (r2 - r0) / d_lat
            c, d = (c1 - c0) / d_lon, (c2 - c0) / d_lat
            er, ec = row - r0, col - c0
            det = a * d - b * c
            lon = lon + (d * er - b * ec) / det
            lat = lat + (-c * er + a * ec) / det
            if np.all(np.abs(er) + np.abs(ec) < tol_px):
                break
        return lon, lat
