"""The simulated sensor: pushbroom geometry, ray-cast visibility and shadows, radiometry,
and the independent check — views orthorectified by GDAL's RPC transformer onto the ortho
grid must match the rendered true ortho."""

import numpy as np
import pytest
from affine import Affine
from rasterio.warp import Resampling, reproject
from scipy.ndimage import binary_erosion, maximum_filter, minimum_filter

from lod3d.evaluate.registration import subpixel_shift
from lod3d.geometry.rpcfit import fit_rpc
from lod3d.io.raster import write_raster
from lod3d.kernels.render import trace_ray
from lod3d.simulate.render import (DARK_DN, DN_PER_UNIT, E_SKY, E_SUN, render_ortho, render_view,
                                   shade_surface, visible_from)
from lod3d.simulate.sensor import Sun, design_views, surface_bounds
from lod3d.simulate.surface import KIND_GROUND, KIND_ROOF, KIND_TREE, SurfaceModel

CRS = "EPSG:2154"


def synthetic_surface(bounds, res=0.25, seed=0, base=150.0):
    """Boxes, gable roofs, a 40 m tower and rough tree crowns on gently sloping terrain."""
    rng = np.random.default_rng(seed)
    xmin, ymin, xmax, ymax = bounds
    nx, ny = int(round((xmax - xmin) / res)), int(round((ymax - ymin) / res))
    x = xmin + (np.arange(nx) + 0.5) * res
    y = ymax - (np.arange(ny) + 0.5) * res
    X, Y = np.meshgrid(x, y)
    ground = base + 0.01 * (X - xmin) + 2.0 * np.sin((Y - ymin) / 60.0)
    h = ground.copy()
    alb = 0.18 + 0.04 * rng.random(h.shape)
    wall = np.full(h.shape, 0.3)
    kind = np.full(h.shape, KIND_GROUND, np.uint8)
    alb[np.abs((X - xmin) % 80 - 40) < 4] = 0.12  # roads
    for k in range(max(3, int((xmax - xmin) * (ymax - ymin) / 1500))):
        cx, cy = rng.uniform(xmin + 10, xmax - 10), rng.uniform(ymin + 10, ymax - 10)
        w, d = rng.uniform(6, 18), rng.uniform(6, 14)
        m = (np.abs(X - cx) < w / 2) & (np.abs(Y - cy) < d / 2)
        eave = ground[m].max() + rng.uniform(4, 15)
        top = eave + (np.tan(np.radians(35)) * (d / 2 - np.abs(Y - cy)) if k % 2 == 0 else 0.0)
        h[m] = (top * np.ones_like(h))[m]
        alb[m], wall[m], kind[m] = rng.uniform(0.3, 0.6), rng.uniform(0.25, 0.5), KIND_ROOF
    cx, cy = (xmin + xmax) / 2 + 7, (ymin + ymax) / 2 + 3
    m = (np.abs(X - cx) < 6) & (np.abs(Y - cy) < 6)
    h[m], alb[m], wall[m], kind[m] = ground[m].max() + 40, 0.6, 0.5, KIND_ROOF
    for _ in range(6):
        cx, cy = rng.uniform(xmin + 5, xmax - 5), rng.uniform(ymin + 5, ymax - 5)
        r = rng.uniform(2.5, 5)
        dd = np.hypot(X - cx, Y - cy)
        m = (dd < r) & (kind == KIND_GROUND)
        crown = ground + rng.uniform(6, 12) * np.sqrt(np.clip(1 - (dd / r) ** 2, 0, 1)) + rng.normal(0, 0.4, h.shape)
        h[m] = np.maximum(h[m], crown[m])
        alb[m], wall[m], kind[m] = 0.08 + 0.06 * rng.random(m.sum()), 0.1, KIND_TREE
    return SurfaceModel(transform=Affine(res, 0, xmin, 0, -res, ymax), crs=CRS, height=h.astype(np.float32),
                        albedo=alb.astype(np.float32), wall_albedo=wall.astype(np.float32), kind=kind)


def flat_surface(bounds, res=0.25, height=150.0, albedo=0.3):
    xmin, ymin, xmax, ymax = bounds
    shape = (int(round((ymax - ymin) / res)), int(round((xmax - xmin) / res)))
    return SurfaceModel(transform=Affine(res, 0, xmin, 0, -res, ymax), crs=CRS,
                        height=np.full(shape, height, np.float32), albedo=np.full(shape, albedo, np.float32),
                        wall_albedo=np.full(shape, 0.3, np.float32), kind=np.zeros(shape, np.uint8))


# ------------------------------------------------------------------ geometry
AOI = (574000.0, 6279000.0, 574400.0, 6279300.0)
Z = (140.0, 200.0)


@pytest.fixture(scope="module")
def cams():
    return design_views(AOI, CRS, gsd=0.5, z_range=Z, seed=4)


def test_project_localize_round_trip(cams):
    rng = np.random.default_rng(0)
    x, y, z = rng.uniform(AOI[0], AOI[2], 300), rng.uniform(AOI[1], AOI[3], 300), rng.uniform(*Z, 300)
    for cam in cams:
        r, c = cam.project(x, y, z)
        x2, y2 = cam.localize(r, c, z)
        assert np.abs(x2 - x).max() < 1e-5 and np.abs(y2 - y).max() < 1e-5


def _jacobian(cam, x=574200.0, y=6279150.0, z=170.0):
    r0, c0 = cam.project(x, y, z)
    rx, cx = cam.project(x + 1, y, z)
    ry, cy = cam.project(x, y + 1, z)
    rz, cz = cam.project(x, y, z + 1)
    return np.array([[rx - r0, ry - r0, rz - r0], [cx - c0, cy - c0, cz - c0]])


def test_tri_stereo_geometry(cams):
    """Nadir GSD, heading off north, B/H of the outer pair, pushbroom rows along track."""
    assert [round(c.incidence_deg, 1) for c in cams] == [-11.9, 0.0, 11.9]
    j = _jacobian(cams[1])
    assert np.linalg.norm(j[0, :2]) == pytest.approx(2.0, rel=0.01)  # 0.5 m along track
    assert np.linalg.norm(j[1, :2]) == pytest.approx(2.0, rel=0.01)  # 0.5 m across track
    heading = np.degrees(np.arctan2(j[0, 0], j[0, 1])) % 360  # rows grow along the track
    assert 183 < heading < 197
    # Row parallax per metre of height between aft and fore views: B/H / GSD.
    parallax = _jacobian(cams[2])[0, 2] - _jacobian(cams[0])[0, 2]
    assert parallax == pytest.approx(0.42 / 0.5, rel=0.03)
    # The small roll shows as column motion with height in the nadir view.
    assert 0.005 < abs(j[1, 2]) < 0.11  # 2·tan(roll), roll 1–3°


def test_images_cover_the_aoi_at_all_heights_with_margin(cams):
    gx, gy = np.meshgrid(np.linspace(AOI[0], AOI[2], 5), np.linspace(AOI[1], AOI[3], 5))
    for cam in cams:
        for z in Z:
            r, c = cam.project(gx, gy, z)
            assert r.min() >= 20 and c.min() >= 20
            assert r.max() <= cam.shape[0] - 21 and c.max() <= cam.shape[1] - 21


def test_surface_bounds_contain_every_line_of_sight(cams):
    xmin, ymin, xmax, ymax = surface_bounds(cams, Z)
    for cam in cams:
        rows, cols = cam.shape
        for z in Z:
            x, y = cam.localize([0, 0, rows - 1, rows - 1], [0, cols - 1, 0, cols - 1], z)
            assert (x > xmin).all() and (x < xmax).all() and (y > ymin).all() and (y < ymax).all()


def test_design_rejects_bad_input():
    from lod3d.errors import InputError

    with pytest.raises(InputError):
        design_views((0, 0, -1, 1), CRS, z_range=Z)
    with pytest.raises(InputError):
        design_views(AOI, CRS, n_views=3, along_track_deg=(-10, 10), z_range=Z)


# ------------------------------------------------------------- ray casting
def _box_grid():
    """10 × 10 cells of ground (0 m) with a 5 m box on rows 4–5, columns 4–5."""
    h = np.zeros((10, 10))
    h[4:6, 4:6] = 5.0
    top = np.full((10, 10), 0.1, np.float32)
    top[4:6, 4:6] = 0.9
    wall = np.full((10, 10), 0.5, np.float32)
    return h, top, wall


def _trace(h, top, wall, u0, v0, z0, u1, v1, z1, sun=(0.0, 0.0, 1.0)):
    return trace_ray(h, top, wall, u0, v0, z0, u1, v1, z1, sun[0], sun[1], sun[2], 1.0, E_SUN, E_SKY, 5.0)


def test_rays_hit_tops_walls_and_are_occluded():
    h, top, wall = _box_grid()
    assert _trace(h, top, wall, 4.5, 4.5, 10, 4.5, 4.5, -1) == pytest.approx(0.9)   # box top
    assert _trace(h, top, wall, 1.5, 1.5, 10, 1.5, 1.5, -1) == pytest.approx(0.1)   # ground
    # Slanted ray heading east: lands on the ground at u = 8 unless the box stands in the way.
    # It reaches the box's west face (u = 4) at z = 2.5 < 5 m: a wall hit, sky-lit only.
    assert _trace(h, top, wall, 1.5, 4.5, 5.5, 7.5, 4.5, -0.5) == pytest.approx(0.5 * 0.5 * E_SKY)
    # Same wall lit by a sun in the west: Lambert on the face normal (-1, 0, 0).
    sun = np.array([-np.cos(np.radians(30)), 0.0, np.sin(np.radians(30))])
    got = _trace(h, top, wall, 1.5, 4.5, 5.5, 7.5, 4.5, -0.5, sun=sun)
    assert got == pytest.approx(0.5 * (E_SUN * sun @ [-1, 0, 0] + 0.5 * E_SKY))
    # A ray passing south of the box reaches the ground.
    assert _trace(h, top, wall, 1.5, 7.5, 5.5, 7.5, 7.5, -0.5) == pytest.approx(0.1)
    # Rays leaving the grid see nothing.
    assert np.isnan(_trace(h, top, wall, -5, -5, 10, -4, -4, -1))


def test_cast_shadow_length_matches_sun_elevation():
    res = 0.5
    surface = flat_surface((0, 0, 40, 40), res=res, height=0.0)
    surface.height[36:44, 36:44] = 10.0  # 4 m × 4 m box, 10 m tall, centred
    sun = Sun(azimuth_deg=180.0, elevation_deg=45.0)  # from the south: shadow falls north
    lit = shade_surface(surface, sun).lit.astype(bool)
    col = lit[:, 40]
    north = col[:36][::-1]  # cells north of the box, nearest first
    shadow_len = np.argmax(north) * res  # first lit cell
    assert shadow_len == pytest.approx(10.0, abs=2 * res)
    assert col[44:].all() and lit[36:44, 36:44].all() and lit[:, :30].all()


def test_visibility_map_hides_ground_behind_a_tower():
    surface = flat_surface((0, 0, 40, 40), res=0.5, height=0.0)
    surface.height[36:44, 36:44] = 20.0
    vis = visible_from(surface, [np.sin(np.radians(20)), 0.0, np.cos(np.radians(20))])  # sensor to the east
    assert not vis[40, 30:34].any() and vis[40, 45:].all() and vis[40, :20].all()


# ------------------------------------------------------------- radiometry
def test_flat_plane_radiometry_and_gains():
    aoi = (574000.0, 6279000.0, 574040.0, 6279040.0)
    cam = design_views(aoi, CRS, z_range=(149, 151), seed=1)[1]
    surface = flat_surface(surface_bounds([cam], (149, 151)), albedo=0.3)
    sun = Sun(azimuth_deg=150, elevation_deg=50)
    shading = shade_surface(surface, sun)
    expect = 0.3 * (E_SUN * np.sin(np.radians(50)) + E_SKY)
    for gain in (0.9, 1.2):
        img = render_view(surface, cam, sun, gain=gain, noise=False, shading=shading, supersample=1)
        assert img.dtype == np.uint16 and img.shape == cam.shape
        assert np.abs(img.astype(float) - (DARK_DN + gain * DN_PER_UNIT * expect)).max() <= 0.5
    noisy = render_view(surface, cam, sun, gain=1.0, seed=3, shading=shading, supersample=1).astype(float)
    mean = DARK_DN + DN_PER_UNIT * expect
    assert noisy.std() == pytest.approx(np.sqrt(mean / 8.0 + 4.0), rel=0.1)  # shot + read noise
    again = render_view(surface, cam, sun, gain=1.0, seed=3, shading=shading, supersample=1)
    assert np.array_equal(again, noisy.astype(np.uint16))


def test_bright_patch_lands_where_the_camera_projects_it():
    """Geometry through the whole rendering chain, to a few hundredths of a pixel."""
    aoi = (574000.0, 6279000.0, 574040.0, 6279040.0)
    cam = design_views(aoi, CRS, z_range=(149, 151), seed=2)[0]
    surface = flat_surface(surface_bounds([cam], (149, 151)), albedo=0.1)
    i0, j0 = 70, 80
    surface.albedo[i0:i0 + 16, j0:j0 + 16] = 0.9  # a 4 m square
    cx, cy = surface.transform @ (j0 + 8, i0 + 8)
    img = render_view(surface, cam, Sun(), noise=False, mtf_sigma_px=0.0, supersample=5).astype(float)
    w = np.clip(img - np.median(img), 0, None)
    rr, cc = np.indices(img.shape)
    er, ec = cam.project(cx, cy, 150.0)
    assert (w * rr).sum() / w.sum() == pytest.approx(er, abs=0.02)
    assert (w * cc).sum() / w.sum() == pytest.approx(ec, abs=0.02)


# ------------------------------------------------------- independent check
@pytest.mark.slow
def test_gdal_orthorectified_views_match_true_ortho(tmp_path):
    """GDAL's RPC transformer (RPC_DEM = the surface) maps every view onto the true ortho.

    Compared over cells that the view sees and that lie ≥ 1.5 m from any height step of
    the surface (where a DSM-driven orthorectification smears facades): |shift| < 0.5 px
    (measured ≈ 0.05) and correlation > 0.9 (measured ≈ 0.996). A deliberate half-pixel
    RPC line offset is measured as such, so the check can fail.
    """
    aoi = (574000.0, 6279000.0, 574150.0, 6279150.0)
    z = (145.0, 210.0)
    cams = design_views(aoi, CRS, gsd=0.5, z_range=z, seed=3)
    surface = synthetic_surface(surface_bounds(cams, z), seed=1)
    sun = Sun()
    shading = shade_surface(surface, sun)
    dsm = write_raster(tmp_path / "dsm.tif", surface.height, transform=surface.transform, crs=CRS)
    grid, shape = Affine(0.5, 0, aoi[0], 0, -0.5, aoi[3]), (300, 300)
    ortho = render_ortho(surface, grid, shape, sun, shading=shading, seed=9).astype(float)

    # Ortho cells whose four surface sub-cells are visible to a view and away from steps.
    h = surface.height
    smooth = (maximum_filter(h, 13) - minimum_filter(h, 13)) < 1.0
    m = ~surface.transform @ grid
    rr, cc = np.indices(shape)
    corners = [(m @ (cc + dx, rr + dy)) for dx in (0.25, 0.75) for dy in (0.25, 0.75)]

    def warp(img, rpc):
        out = np.zeros(shape, np.float32)
        reproject(img.astype(np.float32), out, rpcs=rpc.to_rasterio(), src_crs="EPSG:4326", dst_crs=CRS,
                  dst_transform=grid, resampling=Resampling.bilinear, src_nodata=0, dst_nodata=0,
                  RPC_DEM=str(dsm))
        return out

    for k, cam in enumerate(cams):
        img = render_view(surface, cam, sun, gain=0.9 + 0.1 * k, seed=k, shading=shading)
        rpc, stats = fit_rpc(cam, CRS, z)
        assert stats["max_px"] < 0.01
        ortho_k = warp(img, rpc)
        vis = visible_from(surface, cam.view_direction(574075.0, 6279075.0, 170.0)) & smooth
        ok = np.ones(shape, bool)
        for u, v in corners:
            ok &= vis[v.astype(int), u.astype(int)]
        ok = binary_erosion(ok, iterations=2) & (ortho_k > 0)
        assert ok.mean() > 0.5
        shift = subpixel_shift(ortho_k, ortho, ok)
        corr = np.corrcoef(ortho_k[ok], ortho[ok])[0, 1]
        assert np.hypot(*shift) < 0.5 and corr > 0.9, (cam.name, shift, corr)
        if k == 0:  # the check can fail: half a pixel of RPC line offset shows as ≈ 0.5 px
            bad = rpc.__class__(**{**rpc.__dict__, "line_off": rpc.line_off + 0.5})
            assert np.hypot(*(subpixel_shift(warp(img, bad), ortho, ok) - shift)) > 0.4

    # Trees look rough: their ortho texture is far stronger than that of roofs.
    kind = surface.kind[(np.asarray(corners[0][1]).astype(int), np.asarray(corners[0][0]).astype(int))]
    gy, gx = np.gradient(ortho)
    contrast = np.hypot(gx, gy) / ortho
    interior = lambda mask: binary_erosion(mask, iterations=3)  # noqa: E731
    tree, roof = np.median(contrast[interior(kind == KIND_TREE)]), np.median(contrast[interior(kind == KIND_ROOF)])
    assert tree > 3 * roof, (tree, roof)
