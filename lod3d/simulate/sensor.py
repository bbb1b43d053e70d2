"""The simulated satellite: an exact pushbroom camera model and the tri-stereo view design.

Geometry is physical: ground points (projected x, y + ellipsoidal height) go to WGS84
geodetic, then to Earth-centred Earth-fixed (ECEF) coordinates, and are imaged by a linear
array moving on a straight line at orbital speed (~695 km altitude; over the fraction of a
second one image takes, the orbit's curvature is far below a millimetre).

Pushbroom model. The camera attitude is constant during one image, so its *scan plane* —
the plane through the platform that holds the linear array's lines of sight, spanned by the
view axis ``e_d`` and the across-track axis ``e_c`` — sweeps along with the platform,
``P(t) = p0 + vel * t``. Image row = acquisition time / line period; a point ``X`` is seen
at the time its scan plane passes over it, ``t = (X - p0)·n / (vel·n)`` (``n`` = plane
normal), and its column is the perspective coordinate across the array,
``col = col0 + f * (u·e_c) / (u·e_d)`` with ``u = X - P(t)``. Both are closed-form, so
``project`` needs no iteration; ``localize`` (image → ground at a height) intersects the
line of sight with the height surface by Newton steps.

Integer (row, col) are pixel centres, the RPC convention (GDAL's RPC transformer makes the
half-pixel shift to its corner convention itself).

With a fixed attitude the scan plane's ground trace moves at the platform speed, so the
line period is ``gsd / speed``: square nadir pixels.

``design_views`` places a Pleiades-like tri-stereo acquisition: one pass, ground track
heading a few degrees off south (sun-synchronous descending), views looking forward, at
nadir and backward along track (incidence angles given or derived from a B/H ratio), a
small across-track roll, and image extents covering the AOI at every height of the scene's
range plus a margin.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pyproj import CRS, Transformer

from ..errors import InputError

__all__ = ["PushbroomCamera", "Sun", "design_views", "surface_bounds", "geodetic_to_ecef"]

WGS84_A = 6378137.0
WGS84_F = 1.0 / 298.257223563
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)
GM_EARTH = 3.986004418e14  # m³/s²


def geodetic_to_ecef(lon, lat, h) -> np.ndarray:
    """WGS84 geodetic (degrees, degrees, metres) → ECEF (…, 3) metres."""
    lon = np.radians(np.asarray(lon, float))
    lat = np.radians(np.asarray(lat, float))
    h = np.asarray(h, float)
    sl, cl = np.sin(lat), np.cos(lat)
    n = WGS84_A / np.sqrt(1.0 - WGS84_E2 * sl * sl)
    return np.stack(np.broadcast_arrays((n + h) * cl * np.cos(lon), (n + h) * cl * np.sin(lon),
                                        (n * (1.0 - WGS84_E2) + h) * sl), axis=-1)


def _ecef_to_geodetic(xyz: np.ndarray):
    """ECEF → (lon°, lat°, h), Bowring's closed form refined by two fixed-point steps (µm)."""
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    p = np.hypot(x, y)
    lon = np.arctan2(y, x)
    lat = np.arctan2(z, p * (1.0 - WGS84_E2))
    for _ in range(4):
        sl = np.sin(lat)
        n = WGS84_A / np.sqrt(1.0 - WGS84_E2 * sl * sl)
        h = p / np.cos(lat) - n
        lat = np.arctan2(z, p * (1.0 - WGS84_E2 * n / (n + h)))
    sl = np.sin(lat)
    n = WGS84_A / np.sqrt(1.0 - WGS84_E2 * sl * sl)
    h = p / np.cos(lat) - n
    return np.degrees(lon), np.degrees(lat), h


def _up(lon, lat) -> np.ndarray:
    """Ellipsoid normal (ECEF unit vector) at geodetic lon/lat (degrees)."""
    lo, la = np.radians(lon), np.radians(lat)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


@dataclass(frozen=True)
class Sun:
    """Sun direction in the scene's map frame: azimuth clockwise from grid north, elevation.

    Defaults: a late-morning (≈10:30 solar time) spring pass over southern France.
    """

    azimuth_deg: float = 150.0
    elevation_deg: float = 50.0

    def direction(self) -> np.ndarray:
        """Unit vector towards the sun, (east, north, up)."""
        az, el = np.radians(self.azimuth_deg), np.radians(self.elevation_deg)
        return np.array([np.sin(az) * np.cos(el), np.cos(az) * np.cos(el), np.sin(el)])


@dataclass(frozen=True, eq=False)
class PushbroomCamera:
    """An exact pushbroom camera: linear array on a straight-moving platform, fixed attitude.

    ``p0``/``vel``: ECEF platform position at row 0 (m) and velocity (m/s); ``line_period``
    (s); ``e_d``/``e_c``: ECEF unit view axis and across-track axis (columns grow along
    ``e_c``); ``focal_px``: focal length in pixels; ``col0``: column of the view axis;
    ``shape``: (rows, cols); ``crs``: the projected CRS of ``project``/``localize``.
    ``incidence_deg``: along-track incidence at the scene centre (metadata).
    """

    crs: str
    p0: np.ndarray
    vel: np.ndarray
    line_period: float
    e_d: np.ndarray
    e_c: np.ndarray
    focal_px: float
    col0: float
    shape: tuple[int, int]
    incidence_deg: float = 0.0
    name: str = "view"
    _tf: dict = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ frames
    @property
    def normal(self) -> np.ndarray:
        """Unit normal of the scan plane."""
        return _unit(np.cross(self.e_c, self.e_d))

    def _transformer(self, inverse: bool) -> Transformer:
        key = "inv" if inverse else "fwd"
        if key not in self._tf:
            src, dst = (self.crs, "EPSG:4326") if not inverse else ("EPSG:4326", self.crs)
            self._tf[key] = Transformer.from_crs(src, dst, always_xy=True)
        return self._tf[key]

    def to_lonlat(self, x, y):
        """Projected (x, y) → (lon°, lat°)."""
        return self._transformer(False).transform(np.asarray(x, float), np.asarray(y, float))

    def from_lonlat(self, lon, lat):
        """(lon°, lat°) → projected (x, y)."""
        return self._transformer(True).transform(np.asarray(lon, float), np.asarray(lat, float))

    # ---------------------------------------------------------------- geometry
    def project_ecef(self, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ECEF points (…, 3) → image (row, col)."""
        n = self.normal
        d = xyz - self.p0
        t = (d @ n) / (self.vel @ n)
        u = d - t[..., None] * self.vel
        return t / self.line_period, self.col0 + self.focal_px * (u @ self.e_c) / (u @ self.e_d)

    def project(self, x, y, z) -> tuple[np.ndarray, np.ndarray]:
        """Ground (projected x, y in metres, ellipsoidal height z) → image (row, col)."""
        x, y, z = np.broadcast_arrays(*(np.asarray(a, float) for a in (x, y, z)))
        lon, lat = self.to_lonlat(x, y)
        return self.project_ecef(geodetic_to_ecef(lon, lat, z))

    def project_lonlat(self, lon, lat, h) -> tuple[np.ndarray, np.ndarray]:
        """Ground (lon°, lat°, ellipsoidal height) → image (row, col)."""
        return self.project_ecef(geodetic_to_ecef(*np.broadcast_arrays(lon, lat, h)))

    def ray(self, row, col) -> tuple[np.ndarray, np.ndarray]:
        """Line of sight of image (row, col): ECEF origin and unit direction."""
        row, col = np.broadcast_arrays(np.asarray(row, float), np.asarray(col, float))
        origin = self.p0 + (row * self.line_period)[..., None] * self.vel
        w = self.e_d + ((col - self.col0) / self.focal_px)[..., None] * self.e_c
        return origin, _unit(w)

    def localize_lonlat(self, row, col, h, tol_m: float = 1e-6):
        """Image (row, col) at ellipsoidal height h → (lon°, lat°), exact (Newton on the ray)."""
        row, col, h = np.broadcast_arrays(*(np.asarray(a, float) for a in (row, col, h)))
        origin, w = self.ray(row, col)
        lon, lat, alt = _ecef_to_geodetic(origin)
        s = (alt - h) / -np.sum(w * _up(lon, lat), axis=-1)
        for _ in range(10):
            lon, lat, hh = _ecef_to_geodetic(origin + s[..., None] * w)
            err = hh - h
            s = s - err / np.sum(w * _up(lon, lat), axis=-1)
            if np.all(np.abs(err) < tol_m):
                break
        lon, lat, _ = _ecef_to_geodetic(origin + s[..., None] * w)
        return lon, lat

    def localize(self, row, col, h):
        """Image (row, col) at ellipsoidal height h → projected (x, y)."""
        return self.from_lonlat(*self.localize_lonlat(row, col, h))

    def view_direction(self, x, y, z) -> np.ndarray:
        """Unit vector from ground point(s) towards the sensor, in the map frame (E, N, up).

        Computed by finite difference of ``localize`` over height, so it includes the
        map projection's rotation (meridian convergence) and scale.
        """
        r, c = self.project(x, y, z)
        x1, y1 = self.localize(r, c, np.asarray(z, float) + 1.0)
        v = np.stack(np.broadcast_arrays(x1 - x, y1 - y, np.ones_like(x1)), axis=-1)
        return _unit(v)


def _enu_basis(lon: float, lat: float):
    lo, la = np.radians(lon), np.radians(lat)
    east = np.array([-np.sin(lo), np.cos(lo), 0.0])
    north = np.array([-np.sin(la) * np.cos(lo), -np.sin(la) * np.sin(lo), np.cos(la)])
    up = np.array([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])
    return east, north, up


def design_views(aoi_bounds, crs, *, gsd: float = 0.5, n_views: int = 3,
                 along_track_deg=None, b_over_h: float | None = None,
                 z_range=(0.0, 100.0), seed: int = 0, altitude_m: float = 695e3,
                 heading_deg: float | None = None, roll_deg: float | None = None,
                 margin_px: int = 24) -> list[PushbroomCamera]:
    """Cameras of one Pleiades-like along-track stereo pass over ``aoi_bounds`` (xmin, ymin, xmax, ymax).

    Incidence angles along track (at the AOI centre, positive = looking forward) are
    ``along_track_deg`` if given, else spread symmetrically so the outermost pair has base
    over height ``b_over_h`` (default 0.42, i.e. ≈ ±12° for three views). ``heading_deg``
    (ground-track azimuth) defaults to a seeded ≈190° (descending, off south) and
    ``roll_deg`` to a seeded 1–3° across-track tilt shared by the pass. Each image covers the
    AOI at every height in ``z_range`` plus ``margin_px`` pixels; the nadir GSD is ``gsd``.
    """
    xmin, ymin, xmax, ymax = map(float, aoi_bounds)
    if not (xmax > xmin and ymax > ymin):
        raise InputError(f"empty AOI bounds {aoi_bounds}")
    if gsd <= 0 or not 1 <= n_views <= 5:
        raise InputError(f"bad sensor design: gsd={gsd}, n_views={n_views}")
    zmin, zmax = map(float, z_range)
    rng = np.random.default_rng(seed)
    if along_track_deg is None:
        bh = 0.42 if b_over_h is None else float(b_over_h)
        half = np.degrees(np.arctan(bh / 2.0))
        along_track_deg = [0.0] if n_views == 1 else list(np.linspace(-half, half, n_views))
    along_track_deg = [float(a) for a in along_track_deg]
    if len(along_track_deg) != n_views or max(abs(a) for a in along_track_deg) >= 45:
        raise InputError(f"need {n_views} along-track angles within ±45°, got {along_track_deg}")
    heading = float(heading_deg if heading_deg is not None else 190.0 + rng.uniform(-3.0, 3.0))
    roll = float(roll_deg if roll_deg is not None else rng.choice([-1, 1]) * rng.uniform(1.0, 3.0))

    crs_s = CRS.from_user_input(crs).to_string()
    to_ll = Transformer.from_crs(crs_s, "EPSG:4326", always_xy=True)
    lon_c, lat_c = to_ll.transform((xmin + xmax) / 2, (ymin + ymax) / 2)
    z_c = (zmin + zmax) / 2
    target = geodetic_to_ecef(lon_c, lat_c, z_c)
    east, north, up = _enu_basis(lon_c, lat_c)
    hd = np.radians(heading)
    along = np.sin(hd) * east + np.cos(hd) * north
    across = np.cross(along, up)  # right of the track
    r_sat = np.linalg.norm(target) - z_c + altitude_m

    # AOI sample points at the extreme heights, for the image extents.
    gx, gy = np.meshgrid(np.linspace(xmin, xmax, 9), np.linspace(ymin, ymax, 9))
    glon, glat = to_ll.transform(gx.ravel(), gy.ravel())
    pts = np.concatenate([geodetic_to_ecef(glon, glat, zz) for zz in (zmin, zmax)])

    cams = []
    for k, inc in enumerate(along_track_deg):
        # Direction from the target to the satellite; forward-looking = satellite behind.
        s = _unit(-np.tan(np.radians(inc)) * along - np.tan(np.radians(roll)) * across + up)
        ts = target @ s
        dist = -ts + np.sqrt(ts * ts - target @ target + r_sat * r_sat)
        pos = target + dist * s
        pu = pos / np.linalg.norm(pos)
        vdir = _unit(along - (along @ pu) * pu)
        speed = np.sqrt(GM_EARTH / np.linalg.norm(pos))
        vel = speed * vdir
        e_d = _unit(target - pos)
        e_c = _unit(np.cross(vel, e_d))
        focal = altitude_m / gsd
        proto = PushbroomCamera(crs=crs_s, p0=pos, vel=vel, line_period=gsd / speed,
                                e_d=e_d, e_c=e_c, focal_px=focal, col0=0.0, shape=(1, 1))
        r, c = proto.project_ecef(pts)
        r0 = np.floor(r.min()) - margin_px
        c0 = np.floor(c.min()) - margin_px
        rows = int(np.ceil(r.max()) - r0 + margin_px + 1)
        cols = int(np.ceil(c.max()) - c0 + margin_px + 1)
        cams.append(PushbroomCamera(
            crs=crs_s, p0=pos + vel * (r0 * proto.line_period), vel=vel,
            line_period=proto.line_period, e_d=e_d, e_c=e_c, focal_px=focal, col0=-c0,
            shape=(rows, cols), incidence_deg=inc, name=f"view{k + 1}"))
    return cams


def surface_bounds(cams, z_range, pad_m: float = 2.0):
    """Map bounds (xmin, ymin, xmax, ymax) that every image pixel's line of sight crosses
    between the heights ``z_range``: the area the rendered surface must cover (+ ``pad_m``)."""
    xs, ys = [], []
    for cam in cams:
        rows, cols = cam.shape
        r = np.concatenate([np.linspace(-1, rows, 33), np.full(33, rows), np.linspace(-1, rows, 33), np.full(33, -1.0)])
        c = np.concatenate([np.full(33, -1.0), np.linspace(-1, cols, 33), np.full(33, cols), np.linspace(-1, cols, 33)])
        for z in z_range:
            x, y = cam.localize(r, c, z)
            xs.append(x)
            ys.append(y)
    xs, ys = np.concatenate(xs), np.concatenate(ys)
    return (float(xs.min() - pad_m), float(ys.min() - pad_m), float(xs.max() + pad_m), float(ys.max() + pad_m))
