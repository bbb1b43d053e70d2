"""``simulate``: a complete synthetic acquisition over an AOI, with its ground truth.

The chain: a procedural city (:mod:`.scene`) → exact truth rasters, footprints and LOD2
solids (:mod:`.truth`) → a fine 2.5-D surface for the renderer → 2–3 pushbroom views
ray-cast against it (:mod:`.sensor`, :mod:`.render`) → an RPC00B model fitted to each
view's exact camera (:mod:`lod3d.geometry.rpcfit`). The images are written in sensor
geometry with GDAL RPC tags, so every later stage sees exactly what it would see with
real Pleiades data: pixels and RPCs.

Output directory (written to a temporary name, renamed when complete)::

    images/img_01.tif ...      uint16 views, sensor geometry, RPC tags
    truth/dsm.tif dtm.tif       float32, ellipsoidal heights (m)
    truth/ortho.tif             uint16 true orthophoto, the views' radiometry
    truth/buildings.tif         int32 building id per cell (0 = none)
    truth/footprints.geojson    building footprints with ids and attributes
    truth/buildings.city.json   truth LOD2 buildings, CityJSON 2.0
    simulation.json             parameters, scene statistics, RPC fit residuals, timings
    report/*.png                quick looks
"""

from __future__ import annotations

import json
import math
import pickle
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from affine import Affine

from .. import __version__
from ..aoi import AOI
from ..cityjson import write_cityjson
from ..errors import InputError
from ..geometry.rpcfit import fit_rpc
from ..io.atomic import atomic_path, check_output_dir, remove_path, replace_dir
from ..io.raster import write_raster
from ..progress import progress
from .render import render_ortho, render_view, shade_surface
from .scene import generate_scene
from .sensor import Sun, design_views, surface_bounds
from .truth import footprints_geojson, rasterize_truth, scene_surface, truth_buildings

__all__ = ["SCENE_MARGIN_M", "SimulationResult", "simulate"]

# Ground margin populated around the AOI: the images cover the AOI with a margin, their
# footprints are rotated with the ground track, and off-nadir lines of sight travel up to
# (height range) × tan(view angle) further.
SCENE_MARGIN_M = 150.0
HEIGHT_DATUM = "WGS84 ellipsoidal height (m)"
# The simulated acquisition's date: fixed, so that outputs depend only on the inputs and seed.
SIMULATED_DATE = "2025-04-17"


@dataclass
class SimulationResult:
    """Where the products are and what the run measured."""

    out: Path
    images: list[Path]
    summary: dict


def simulate(aoi: AOI, out, *, size_m: float | None = None, seed: int = 0, views: int = 3,
             gsd: float = 0.5, view_angle_deg: float = 12.0, overwrite: bool = False,
             map_tasks=None, write: bool = True, side_tasks: Sequence[Callable[[], Any]] = ()
             ) -> SimulationResult | None:
    """Simulate a tri-stereo (or stereo) acquisition over ``aoi`` into directory ``out``.

    The scene's preparation (scene, truth, cameras, shaded fine surface), the views and
    the true ortho are tasks run by ``map_tasks(tasks, fn) -> [fn(t) ...]`` (default: one
    after the other here); ``lod3d city`` passes one that scatters them over its MPI ranks,
    every rank calling ``simulate`` and only the one with ``write`` writing. The scene is
    prepared once, by one task, and shared with the ranks that render through a file in
    the staging folder (computing it on every rank cost each rank as much as rendering a
    view). ``side_tasks``: callables, unrelated to the simulation, queued right after the
    preparation so that the ranks that would wait for the scene run them meanwhile
    (``lod3d city``: loading the segmentation model); their results are dropped.
    """
    if views not in (2, 3):
        raise InputError(f"--views {views}: the simulator makes 2 or 3 views")
    if not (0.1 <= gsd <= 5.0):
        raise InputError(f"--gsd {gsd:g}: use a ground sampling distance between 0.1 and 5 m")
    if not (2.0 <= view_angle_deg <= 30.0):
        raise InputError(f"--view-angle {view_angle_deg:g}: use 2 to 30 degrees along track")
    area = aoi.crop(size_m)
    cells = (area.width / gsd) * (area.height / gsd)
    if cells > 64e6:
        raise InputError(f"AOI {area.width:g} m × {area.height:g} m at {gsd:g} m is {cells / 1e6:.0f} M cells "
                         "per view; simulate at most 64 M (e.g. 4 km × 4 km at 0.5 m)")
    out = Path(out)
    # Every product is written into a staging folder beside ``out`` that replaces it once
    # complete. Its name is fixed, so that the ranks sharing the writing tasks find it: the
    # writer empties it before the rendering tasks, and ``map_tasks`` starts no task before
    # every rank has called it.
    staging = out.with_name(f".{out.name}.part")
    if write:
        check_output_dir(out, overwrite)  # refuse before the work, not after
        remove_path(staging)
        staging.mkdir(parents=True)
    try:
        timings: dict[str, float] = {}
        clock = time.perf_counter()

        def lap(name):
            nonlocal clock
            now = time.perf_counter()
            timings[name] = round(now - clock, 3)
            clock = now

        steps = progress(total=3 + views, desc="simulate", unit="step")
        xmin, ymin, xmax, ymax = area.bounds
        grid = Affine(gsd, 0.0, xmin, 0.0, -gsd, ymax)
        shape = (round(area.height / gsd), round(area.width / gsd))
        angles = (-view_angle_deg, 0.0, view_angle_deg) if views == 3 else (-view_angle_deg, view_angle_deg)
        sun = Sun()
        gains = 1.0 + np.random.default_rng(seed).uniform(-0.15, 0.15, size=views)
        nadir = int(np.argmin(np.abs(angles)))

        def prepare() -> dict:
            """The scene, its truth rasters, the views' cameras and the shaded fine surface:
            what every rendering and writing task reads."""
            start = time.perf_counter()
            scene, z_range, cams, needed = _scene_and_views(area, gsd, views, angles, seed)
            made = time.perf_counter()
            steps.update()
            truth = rasterize_truth(scene, grid, shape)
            surface = scene_surface(scene, res=gsd / 2, bounds=needed)
            shading = shade_surface(surface, sun)
            steps.update()
            timed = {"scene": round(made - start, 3), "truth": round(time.perf_counter() - made, 3)}
            return {"scene": {"scene": scene, "truth": truth, "timings": timed},
                    "views": {"z_range": z_range, "cams": cams, "surface": surface, "shading": shading}}

        # One task prepares the scene; a rank that renders or writes without having prepared
        # it reads it from the staging folder (with one process it stays in memory).
        prepared = _Shared(staging if map_tasks is not None else None)

        def render(task):
            """Task ``"scene"``: prepare the scene; a callable: a side task of the caller;
            ``k < views``: view k+1 and its fitted RPC; ``k == views``: the true ortho."""
            if task == "scene":
                prepared.make(prepare)
                return None
            if callable(task):
                task()
                return None
            p, k = prepared.get("views"), task
            if k == views:
                return render_ortho(p["surface"], grid, shape, sun, gain=float(gains[nadir]), seed=seed * 100,
                                    shading=p["shading"])
            img = render_view(p["surface"], p["cams"][k], sun, seed=seed * 100 + k + 1, gain=float(gains[k]),
                              shading=p["shading"])
            rpc, stats = fit_rpc(p["cams"][k], area.crs, p["z_range"])
            steps.update()
            return img, rpc, stats

        # The scene first, then the side tasks, which fill the time other ranks would wait
        # for the scene, then the renders.
        rendered = (map_tasks or _in_order)(["scene", *side_tasks, *range(views + 1)], render)
        rendered = rendered[1 + len(side_tasks):]
        lap("prepare_and_render")
        ortho, images = rendered[views], [staging / "images" / f"img_{k:02d}.tif" for k in range(1, views + 1)]

        def save(part: str) -> None:
            """Writing task: the quick looks, the truth, or the images (the costliest first)."""
            shared = prepared.get("scene") if part in ("quicklooks", "truth") else None
            if part == "quicklooks":
                _write_quicklooks(staging / "report", shared["truth"], ortho, [r[0] for r in rendered[:views]])
            elif part == "truth":
                _write_truth(staging / "truth", shared["truth"], ortho, grid, area, shared["scene"])
            else:
                (staging / "images").mkdir(exist_ok=True)
                for k, (img, rpc, _) in enumerate(rendered[:views], start=1):
                    write_raster(images[k - 1], img, rpcs=rpc.to_rasterio(),
                                 tags={"SENSOR": "lod3d simulated pushbroom", "VIEW": k, "HEIGHT_DATUM": HEIGHT_DATUM})

        (map_tasks or _in_order)(["quicklooks", "truth", "images"], save)
        lap("write"); steps.update()
        steps.close()
        if not write:
            return None
        scene = prepared.get("scene")["scene"]
        timings = {**prepared.get("scene")["timings"], **timings}
        prepared.remove(["scene", "views"])
        summary = {
            "lod3d_version": __version__,
            "aoi": area.to_dict(),
            "seed": seed, "views": views, "gsd": gsd, "view_angle_deg": view_angle_deg,
            "sun": {"azimuth_deg": sun.azimuth_deg, "elevation_deg": sun.elevation_deg},
            "height_datum": HEIGHT_DATUM,
            "scene": scene.statistics(area.bounds),
            "rpc_fit": [{"view": k, "along_track_deg": angles[k - 1], **stats}
                        for k, (_, _, stats) in enumerate(rendered[:views], start=1)],
            "timings_s": timings,
        }
        (staging / "simulation.json").write_text(json.dumps(summary, indent=2, default=_json_default))
        replace_dir(staging, out)
        return SimulationResult(out, [out / "images" / p.name for p in images], summary)
    except BaseException:
        if write:
            remove_path(staging)  # nothing half-written is left behind
        raise


class _Shared:
    """Values one task computes and tasks on other ranks read, in named parts.

    With a ``folder``, the task that makes them also writes each part there (atomically,
    ``.<part>.pkl``), and a rank that did not make them reads only the parts it needs,
    sleeping until they appear; if making them fails, a ``.failed`` file tells the waiting
    ranks to fail too. Without a folder (one process) they stay in memory.
    """

    def __init__(self, folder: Path | None, poll_s: float = 0.01):
        self.folder, self.poll_s, self.parts = folder, poll_s, {}

    def _path(self, part: str) -> Path:
        return self.folder / f".{part}.pkl"

    def make(self, fn: Callable[[], dict[str, Any]]) -> None:
        try:
            self.parts = fn()
        except BaseException as exc:
            if self.folder is not None:
                self._path("failed").write_text(f"{type(exc).__name__}: {exc}")
            raise
        if self.folder is not None:
            for part, value in self.parts.items():
                with atomic_path(self._path(part)) as tmp:
                    tmp.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))

    def get(self, part: str):
        if part not in self.parts:
            if self.folder is None:
                raise RuntimeError(f"shared {part!r} read before it was made")
            path = self._path(part)
            while not path.exists():
                if self._path("failed").exists():
                    raise RuntimeError(f"preparing the scene failed: {self._path('failed').read_text()}")
                time.sleep(self.poll_s)
            self.parts[part] = pickle.loads(path.read_bytes())
        return self.parts[part]

    def remove(self, names) -> None:
        """Remove the files (once every rank is done with them)."""
        if self.folder is not None:
            for part in names:
                remove_path(self._path(part))


def _in_order(tasks, fn):
    return [fn(t) for t in tasks]


def _scene_and_views(area: AOI, gsd: float, views: int, angles, seed: int):
    """The scene around ``area``, its height range, the views' cameras and the bounds the
    rendered surface needs: every pixel's line of sight through the height range.

    The scene reaches ``SCENE_MARGIN_M`` beyond the area; when its tallest buildings make
    the oblique views look farther (a large area holds taller towers), it is generated
    again with a margin that holds the lines of sight (the scene then differs, but stays a
    function of the area and the seed)."""
    xmin, ymin, xmax, ymax = area.bounds
    margin = SCENE_MARGIN_M
    for _ in range(4):
        scene_bounds = (xmin - margin, ymin - margin, xmax + margin, ymax + margin)
        scene = generate_scene(scene_bounds, crs=area.crs, seed=seed)
        z_range = _height_range(scene, scene_bounds)
        cams = design_views(area.bounds, area.crs, gsd=gsd, n_views=views, along_track_deg=angles,
                            z_range=z_range, seed=seed)
        needed = surface_bounds(cams, z_range)
        reach = max(xmin - needed[0], ymin - needed[1], needed[2] - xmax, needed[3] - ymax)
        if reach <= margin:
            return scene, z_range, cams, needed
        margin = 50.0 * np.ceil((reach + 25.0) / 50.0)
    raise RuntimeError(f"no scene margin holds the views' lines of sight (last tried {margin} m)")


def _height_range(scene, bounds, res: float = 2.0) -> tuple[float, float]:
    """Lowest and highest surface of the scene over ``bounds``, with a 5 m pad, from a coarse
    point sampling (sampling misses no more than a fraction of a roof's height)."""
    xmin, ymin, xmax, ymax = bounds
    shape = (math.ceil((ymax - ymin) / res), math.ceil((xmax - xmin) / res))
    coarse = rasterize_truth(scene, Affine(res, 0.0, xmin, 0.0, -res, ymax), shape)
    return float(np.nanmin(coarse.dtm)) - 5.0, float(np.nanmax(coarse.dsm)) + 5.0


def _write_truth(folder: Path, truth, ortho, grid, area: AOI, scene) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tags = {"HEIGHT_DATUM": HEIGHT_DATUM}
    write_raster(folder / "dsm.tif", truth.dsm.astype(np.float32), transform=grid, crs=area.crs,
                 nodata=float("nan"), tags=tags)
    write_raster(folder / "dtm.tif", truth.dtm.astype(np.float32), transform=grid, crs=area.crs,
                 nodata=float("nan"), tags=tags)
    write_raster(folder / "buildings.tif", truth.buildings.astype(np.int32), transform=grid, crs=area.crs,
                 nodata=None)
    write_raster(folder / "ortho.tif", ortho, transform=grid, crs=area.crs)
    # Truth vectors hold the buildings that reach into the AOI (the scene's margin is only
    # there for the sensor's oblique lines of sight).
    aoi_box = shapely.box(*area.bounds)
    keep = {b.id for b in scene.buildings if b.footprint.intersects(aoi_box)}
    footprints = footprints_geojson(scene)
    footprints["features"] = [f for f in footprints["features"] if f["id"] in keep]
    (folder / "footprints.geojson").write_text(json.dumps(footprints, default=_json_default))
    buildings = [b for b in truth_buildings(scene) if b.attributes["truth_id"] in keep]
    write_cityjson(folder / "buildings.city.json", buildings, crs_epsg=area.epsg,
                   metadata={"title": f"lod3d simulated truth, {area.name}",
                             "referenceDate": SIMULATED_DATE,
                             "lineage": {"source": "procedural scene (lod3d.simulate), exact LoD2.2 solids",
                                         "heightDatum": HEIGHT_DATUM}})


def _write_quicklooks(folder: Path, truth, ortho, views) -> None:
    """PNG quick looks: truth DSM (hillshaded), ortho, building ids, each view."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LightSource

    folder.mkdir(parents=True, exist_ok=True)
    ids = np.ma.masked_equal(truth.buildings, 0) % 20  # building ids, background left blank
    panels = [("truth DSM (hillshade)", LightSource(315, 45).shade(truth.dsm, plt.cm.terrain, vert_exag=2,
                                                                  blend_mode="soft"), {}),
              ("truth ortho", ortho, {"cmap": "gray"}),
              ("truth buildings", ids, {"cmap": "tab20", "vmin": 0, "vmax": 19})]
    panels += [(f"view {k}", v, {"cmap": "gray"}) for k, v in enumerate(views, start=1)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4.4))
    for ax, (title, img, style) in zip(axes, panels):
        if style.get("cmap") == "gray":
            style = dict(style, vmin=np.percentile(img, 1), vmax=np.percentile(img, 99))
        ax.imshow(img, interpolation="nearest", **style)
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(folder / "simulation.png", dpi=90)
    plt.close(fig)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    raise TypeError(f"not JSON serializable: {type(obj)}")
