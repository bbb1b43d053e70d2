"""Radiometry of the simulated sensor: rendered views in sensor geometry and the true ortho.

Both products go through one chain, so the ortho is "the scene as the sensor sees it":

1. **Shading** (``shade_surface``, once per scene and sun): each surface cell's top gets
   Lambertian sun light with its normal from the height field — one-sided differences,
   the smaller slope of the two, so roof edges keep the roof's normal and tree crowns stay
   rough — times a cast-shadow test (a ray towards the sun through the box heightfield),
   plus a sky term ``(1 + n_up) / 2`` so shadows are dark but not black.
2. **Geometry**: a view casts ``supersample²`` rays per pixel from the exact pushbroom model
   through the heightfield (``lod3d.kernels.render.trace_view``); hits on walls are shaded
   there with the face normal and their own shadow ray. The ortho samples the shaded tops
   orthographically on the output grid.
3. **Sensor**: Gaussian MTF blur, radiometric gain and dark offset to 12-bit DN,
   Poisson–Gaussian noise (shot noise in electrons plus read noise), quantization to uint16.

Sun directions are in the map grid's frame (azimuth from grid north); the grid's meridian
convergence of a degree or so does not matter for the look of the scene.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from affine import Affine
from scipy.ndimage import gaussian_filter

from ..errors import InputError
from ..kernels.render import sample_ortho, trace_view, visibility_map
from .sensor import PushbroomCamera, Sun
from .surface import SurfaceModel

__all__ = ["Shading", "shade_surface", "render_view", "render_ortho", "render_radiance",
           "visible_from", "DN_MAX"]

E_SUN = 0.8            # direct irradiance share (reflectance units)
E_SKY = 0.2            # diffuse sky irradiance on a horizontal surface
DN_PER_UNIT = 3000.0   # DN for radiance 1 at gain 1 (a white roof in full sun ≈ 2500 DN)
DARK_DN = 40.0         # dark offset
E_PER_DN = 8.0         # electrons per DN (shot noise)
READ_NOISE_DN = 2.0
DN_MAX = 4095          # 12-bit data in 16-bit words, as Pleiades delivers it


@dataclass(frozen=True)
class Shading:
    """Per-cell top radiance of a surface under a sun, plus what wall shading needs."""

    top_radiance: np.ndarray  # float32, reflectance units
    lit: np.ndarray           # uint8, 1 = top centre sees the sun
    sun: Sun
    hmax: float


def _slopes(height: np.ndarray, res: float):
    """dz/dx (east) and dz/dy (north): per axis the smaller-magnitude one-sided difference."""
    def one_axis(h, axis):
        d = np.diff(h, axis=axis)
        pad = [(0, 0), (0, 0)]
        pad[axis] = (1, 0)
        back = np.pad(d, pad, mode="edge")
        pad[axis] = (0, 1)
        fwd = np.pad(d, pad, mode="edge")
        return np.where(np.abs(fwd) < np.abs(back), fwd, back) / res

    return one_axis(height, 1), -one_axis(height, 0)


def _map_to_cells(direction: np.ndarray, res: float):
    """Map-frame unit vector (east, north, up) → walk direction in (u, v, metres)."""
    return float(direction[0] / res), float(-direction[1] / res), float(direction[2])


def visible_from(surface: SurfaceModel, direction, bias: np.ndarray | None = None) -> np.ndarray:
    """Boolean grid: the top of each cell sees along ``direction`` (east, north, up; up > 0).

    With the sun's direction this is the cast-shadow map; with a view's direction to the
    sensor it is that view's visibility (occlusion) map.
    """
    h = np.ascontiguousarray(surface.height, dtype=np.float64)
    res = surface.res
    if bias is None:
        gx, gy = _slopes(h, res)
        bias = np.minimum(res * (np.abs(gx) + np.abs(gy)), 2.0 * res) + 0.01
    d = np.asarray(direction, float)
    d = d / np.linalg.norm(d)
    if d[2] <= 0:
        raise InputError("visibility direction must point upwards")
    su, sv, sz = _map_to_cells(d, res)
    return visibility_map(h, np.ascontiguousarray(bias, np.float64), su, sv, sz, float(h.max())).astype(bool)


def shade_surface(surface: SurfaceModel, sun: Sun) -> Shading:
    """Lambert + cast shadow + sky radiance of every cell top (see the module docstring).

    The shadow ray starts a slope-dependent bias above the cell centre, so a sunlit
    sloped roof, stair-stepped by the grid, does not shadow itself.
    """
    h = np.asarray(surface.height, dtype=np.float64)
    res = surface.res
    gx, gy = _slopes(h, res)
    norm = np.sqrt(gx * gx + gy * gy + 1.0)
    s = sun.direction()
    cos_i = np.maximum((-gx * s[0] - gy * s[1] + s[2]) / norm, 0.0)
    bias = np.minimum(res * (np.abs(gx) + np.abs(gy)), 2.0 * res) + 0.01
    lit = visible_from(surface, s, bias).astype(np.uint8)
    sky = 0.5 * (1.0 + 1.0 / norm)
    top = surface.albedo * (E_SUN * cos_i * lit + E_SKY * sky)
    return Shading(top_radiance=top.astype(np.float32), lit=lit, sun=sun, hmax=float(h.max()))


def render_radiance(surface: SurfaceModel, cam: PushbroomCamera, sun: Sun, *,
                    supersample: int = 3, shading: Shading | None = None,
                    node_step: int = 32) -> np.ndarray:
    """Noise-free, unblurred radiance image (float32, ``cam.shape``) of ``surface``.

    Every pixel's line of sight is localized exactly at the top and bottom heights of the
    surface on a node grid every ``node_step`` pixels (bilinear in between: the pushbroom
    model's curvature over 32 pixels is below 1e-4 px). Pixels whose rays all miss the
    surface grid are NaN.
    """
    if shading is None:
        shading = shade_surface(surface, sun)
    if supersample < 1:
        raise InputError(f"supersample must be >= 1, got {supersample}")
    rows, cols = cam.shape
    h = np.ascontiguousarray(surface.height, dtype=np.float64)
    z_top, z_bot = float(h.max()) + 0.1, float(h.min()) - 0.1
    rn = np.arange(-0.5, rows - 0.5 + node_step, node_step, dtype=float)
    cn = np.arange(-0.5, cols - 0.5 + node_step, node_step, dtype=float)
    rr, cc = np.meshgrid(rn, cn, indexing="ij")
    inv = ~surface.transform
    uv = []
    for z in (z_top, z_bot):
        x, y = cam.localize(rr, cc, z)
        u, v = inv @ (x, y)
        uv += [np.ascontiguousarray(u), np.ascontiguousarray(v)]
    s = sun.direction()
    return trace_view(h, shading.top_radiance, np.ascontiguousarray(surface.wall_albedo, np.float32),
                      uv[0], uv[1], uv[2], uv[3], -0.5, -0.5, float(node_step), z_top, z_bot,
                      rows, cols, int(supersample), float(s[0]), float(s[1]), float(s[2]),
                      surface.res, E_SUN, E_SKY, shading.hmax)


def _sensor_chain(radiance: np.ndarray, *, gain: float, mtf_sigma_px: float, seed: int,
                  noise: bool) -> np.ndarray:
    """MTF blur, gain/offset to DN, Poisson–Gaussian noise, 12-bit clip, uint16."""
    rad = radiance.astype(np.float64)
    miss = np.isnan(rad)
    if miss.all():
        raise InputError("the surface does not cover any pixel of the image")
    if miss.any():
        rad[miss] = np.nanmean(rad)
    if mtf_sigma_px > 0:
        rad = gaussian_filter(rad, mtf_sigma_px, mode="nearest")
    dn = DARK_DN + gain * DN_PER_UNIT * rad
    if noise:
        rng = np.random.default_rng(seed)
        dn = rng.poisson(np.maximum(dn, 0.0) * E_PER_DN) / E_PER_DN
        dn = dn + rng.normal(0.0, READ_NOISE_DN, dn.shape)
    return np.clip(np.rint(dn), 0, DN_MAX).astype(np.uint16)


def render_view(surface: SurfaceModel, cam: PushbroomCamera, sun: Sun, *, gain: float = 1.0,
                seed: int = 0, supersample: int = 3, mtf_sigma_px: float = 0.6,
                noise: bool = True, shading: Shading | None = None) -> np.ndarray:
    """The image (uint16, ``cam.shape``) that ``cam`` takes of ``surface`` under ``sun``.

    ``gain`` is the view's radiometric gain; ``mtf_sigma_px`` the Gaussian MTF (0.6 px ≈
    MTF 0.17 at Nyquist); ``shading`` may be passed to share one ``shade_surface`` between
    the views and the ortho. Deterministic given the inputs and ``seed``.
    """
    rad = render_radiance(surface, cam, sun, supersample=supersample, shading=shading)
    return _sensor_chain(rad, gain=gain, mtf_sigma_px=mtf_sigma_px, seed=seed, noise=noise)


def render_ortho(surface: SurfaceModel, transform: Affine, shape, sun: Sun, *, gain: float = 1.0,
                 seed: int = 0, supersample: int = 3, mtf_sigma_px: float = 0.6,
                 noise: bool = True, shading: Shading | None = None) -> np.ndarray:
    """True orthophoto (uint16, ``shape``) on the north-up grid ``transform``.

    Every output cell sees its top surface, shaded and shadowed as in the views, through
    the same sensor chain (pass the nadir view's ``gain``; ``mtf_sigma_px`` in output
    pixels). Cells off the surface take the mean radiance.
    """
    if shading is None:
        shading = shade_surface(surface, sun)
    rows, cols = map(int, shape)
    m = ~surface.transform @ transform  # output pixel coords → surface cell coords
    rad = sample_ortho(shading.top_radiance, m.a, m.b, m.c, m.d, m.e, m.f, rows, cols, int(supersample))
    return _sensor_chain(rad, gain=gain, mtf_sigma_px=mtf_sigma_px, seed=seed, noise=noise)
