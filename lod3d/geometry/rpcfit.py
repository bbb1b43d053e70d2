"""Terrain-independent least-squares fit of an RPC00B model to an exact camera.

The camera is sampled on a 3-D grid: image rows × columns over the whole image (a little
beyond its edges) × several height layers over the height range (widened by 10 %), each
node localized exactly to (lon, lat). In normalized coordinates the ratio
``row = P1 / P2`` becomes the linear system ``P1 - row * (P2 - 1) = row`` in the 39 free
coefficients of each image coordinate (78 in all, both denominators' constant = 1). It is
solved with column equilibration and a tiny ridge term (the cubic terms of a satellite
camera are nearly collinear), then re-solved with weights ``1 / P2²`` so the residual
minimized is the true image-space one (Tao & Hu's iterative scheme); a few rounds
converge.

The returned statistics are measured on an independent check grid: node positions and
heights halfway between the fitting ones, projected by the RPC and compared with the
exact (row, col).
"""

from __future__ import annotations

import numpy as np
from pyproj import Transformer

from ..errors import InputError
from .rpc import RPCModel, rpc_monomials

__all__ = ["fit_rpc"]


def _sample(cam, to_ll, rows, cols, heights):
    rr, cc, hh = np.meshgrid(rows, cols, heights, indexing="ij")
    x, y = cam.localize(rr.ravel(), cc.ravel(), hh.ravel())
    lon, lat = to_ll.transform(x, y)
    return np.asarray(lon), np.asarray(lat), hh.ravel(), rr.ravel(), cc.ravel()


def _fit_ratio(m: np.ndarray, target: np.ndarray, ridge: float, iterations: int) -> tuple[np.ndarray, np.ndarray]:
    """Numerator (20) and denominator (20, first = 1) with ``num·m / den·m ≈ target``."""
    a = np.concatenate([m, -target[:, None] * m[:, 1:]], axis=1)
    scale = np.linalg.norm(a, axis=0)
    scale[scale == 0] = 1.0
    w = np.ones(len(target))
    for _ in range(iterations):
        aw = (a / scale) * w[:, None]
        lhs = np.vstack([aw, np.sqrt(ridge) * np.eye(a.shape[1])])
        rhs = np.concatenate([target * w, np.zeros(a.shape[1])])
        sol = np.linalg.lstsq(lhs, rhs, rcond=None)[0] / scale
        num, den = sol[:20], np.concatenate([[1.0], sol[20:]])
        w = 1.0 / np.abs(m @ den)
    return num, den


def fit_rpc(cam, crs=None, z_range=(0.0, 100.0), *, n_xy: int = 21, n_z: int = 7,
            ridge: float = 1e-12, iterations: int = 4) -> tuple[RPCModel, dict]:
    """Fit an RPC00B model (lon, lat, h) → (row, col) to ``cam`` over its image and ``z_range``.

    ``cam`` needs ``shape`` and ``localize(row, col, h) -> (x, y)`` in ``crs`` (default
    ``cam.crs``), as :class:`lod3d.simulate.sensor.PushbroomCamera` has. Returns the model
    and ``{"max_px", "rms_px", "max_row_px", "max_col_px", "n_fit", "n_check"}``, residuals
    on the independent check grid.
    """
    zmin, zmax = map(float, z_range)
    if not zmax > zmin:
        raise InputError(f"empty height range {z_range}")
    crs = crs if crs is not None else cam.crs
    to_ll = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    nrows, ncols = cam.shape
    pad_z = 0.1 * (zmax - zmin)
    rows = np.linspace(-1.0, nrows, n_xy)
    cols = np.linspace(-1.0, ncols, n_xy)
    hs = np.linspace(zmin - pad_z, zmax + pad_z, n_z)
    lon, lat, h, r, c = _sample(cam, to_ll, rows, cols, hs)

    def off_scale(v):
        lo, hi = float(v.min()), float(v.max())
        return (lo + hi) / 2.0, max((hi - lo) / 2.0, 1e-12)

    lon_off, lon_scale = off_scale(lon)
    lat_off, lat_scale = off_scale(lat)
    h_off, h_scale = off_scale(h)
    line_off, line_scale = (nrows - 1) / 2.0, nrows / 2.0
    samp_off, samp_scale = (ncols - 1) / 2.0, ncols / 2.0
    m = rpc_monomials((lon - lon_off) / lon_scale, (lat - lat_off) / lat_scale, (h - h_off) / h_scale)
    line_num, line_den = _fit_ratio(m, (r - line_off) / line_scale, ridge, iterations)
    samp_num, samp_den = _fit_ratio(m, (c - samp_off) / samp_scale, ridge, iterations)
    rpc = RPCModel(line_num=line_num, line_den=line_den, samp_num=samp_num, samp_den=samp_den,
                   line_off=line_off, line_scale=line_scale, samp_off=samp_off, samp_scale=samp_scale,
                   lat_off=lat_off, lat_scale=lat_scale, lon_off=lon_off, lon_scale=lon_scale,
                   height_off=h_off, height_scale=h_scale, err_bias=0.0, err_rand=0.0)

    mid = lambda v: (v[:-1] + v[1:]) / 2.0  # noqa: E731
    clon, clat, ch, cr, cc = _sample(cam, to_ll, mid(rows), mid(cols), mid(hs))
    pr, pc = rpc.project(clon, clat, ch)
    dr, dc = pr - cr, pc - cc
    d = np.hypot(dr, dc)
    stats = {"max_px": float(d.max()), "rms_px": float(np.sqrt(np.mean(d * d))),
             "max_row_px": float(np.abs(dr).max()), "max_col_px": float(np.abs(dc).max()),
             "n_fit": int(len(r)), "n_check": int(len(cr))}
    return rpc, stats
