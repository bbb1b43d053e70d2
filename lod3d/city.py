"""``lod3d city``: every stage over an AOI's tile grid, on one rank or many.

The AOI grid (``gsd`` cells) is cut into tiles (:class:`lod3d.tiling.TileGrid`). The work
runs in five phases; in each, the tiles are scattered over the MPI ranks by a dynamic
queue (:func:`lod3d.parallel.run_tasks`), each tile computes on its halo window and keeps
its core, and the ranks mosaic the cores (a band each) into seamless rasters that the next
phase reads windows of:

1. ``dsm``      images → DSM, confidence, true ortho        (small halo: matching context)
2. ``terrain``  DSM mosaic → DTM, nDSM                       (wide halo: the largest building)
3. ``segment``  ortho + nDSM mosaics → building probability, mask (small halo: receptive field)
4. ``outline``  mask → footprints of the blocks the tile owns (halo grown until each fits);
                rank 0 then gives each sliver where neighbours from two tiles overlap to one
5. ``lod``      footprints + DSM + DTM (+ true ortho: where walls stand) → LOD0/1/2 buildings

A block of touching buildings (a connected component of the mask) is split into
buildings once, in a window that holds all of it, and belongs with all its buildings to
the tile whose core holds its anchor (the centroid of its pixel-exact outline, the same in
every window that holds the whole block), so a building that crosses tiles is emitted
once, complete, and split as on the whole AOI. Its id is the owning tile's id and its
rank within the tile, so ids do not depend on the number of ranks.

Every tile product is written atomically under ``OUT/tiles/<phase>/``; ``--resume`` skips
tiles already there, after checking that the run's configuration is the one that wrote
them. A tile that fails twice is reported in ``run.json``; the city model is written only
when every tile succeeded, unless partial output is allowed.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import gc
import hashlib
import json
import logging
import os
import pickle
import resource
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
import shapely
from rasterio.windows import Window
from scipy import ndimage

from . import __version__
from .aoi import AOI
from .cityjson import write_cityjson, write_cityjsonseq
from .errors import InputError, OutputError
from .geometry.rpc import RPCModel
from .io.atomic import atomic_path, check_output_dir
from .io.raster import write_raster
from .lod.stage import LOD
from .outline import Footprints, outline_mask
from .outline.io import write_footprints
from .outline.polygonize import mask_ids
from .parallel import TaskResult, barrier_wait_s, quiet_barrier, run_tasks, task_map
from .pipeline import Pipeline
from .progress import progress
from .raster import Raster
from .report import build_report
from .segment.stage import Segment
from .stereo.dsm import DSM
from .terrain.stage import Terrain
from .tiling import Tile, TileGrid

__all__ = ["CityConfig", "run_city", "PHASES"]

log = logging.getLogger(__name__)

PHASES = ("dsm", "terrain", "segment", "outline", "lod")
# Bands of each phase's tile product, in order.
PHASE_BANDS = {"dsm": ("dsm", "confidence", "ortho"), "terrain": ("dtm", "ndsm"),
               "segment": ("building_probability", "mask")}
HEIGHT_DATUM = "WGS84 ellipsoidal height (m)"
MIN_BUILDING_HEIGHT_M = 2.5  # a footprint's median nDSM must reach this to be a building
MIN_ROOF_CELLS = 8  # and it needs this many valid DSM cells to be modelled


@dataclass(frozen=True)
class CityConfig:
    """Everything that decides a city run's output (``out`` and ``threads`` aside)."""

    aoi: AOI
    out: Path
    images: tuple[Path, ...] = ()
    seed: int = 0
    gsd: float = 0.5
    tile_m: float = 150.0
    halo_m: float = 16.0
    terrain_halo_m: float = 150.0
    building_halo_m: float = 40.0
    segment_method: str = "model"
    model: str | None = None
    lods: tuple[int, ...] = (0, 1, 2)
    reference_date: str | None = None
    threads: int = 1

    def __post_init__(self):
        # Normalize types so that equal settings give equal fingerprints (40 == 40.0).
        for name in ("gsd", "tile_m", "halo_m", "terrain_halo_m", "building_halo_m"):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "lods", tuple(sorted(int(v) for v in self.lods)))
        object.__setattr__(self, "images", tuple(Path(p) for p in self.images))

    def fingerprint(self) -> str:
        """A hash of the settings that decide the output, to refuse resuming another run."""
        keep = dataclasses.asdict(self)
        for k in ("out", "threads"):
            keep.pop(k)
        keep["aoi"] = self.aoi.to_dict()
        keep["images"] = [str(Path(p).resolve()) for p in self.images]
        keep["lod3d"] = __version__
        return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class _Plan:
    """What every rank needs: the grid, the images with their RPCs, where things go."""

    config: CityConfig
    grid: TileGrid
    tiles: list[Tile]
    images: list[tuple[Path, RPCModel]]
    work: Path
    reference_date: str
    truth: Path | None = None
    timings: dict = field(default_factory=dict)
    written: dict = field(default_factory=dict)  # products already written: name → file


class _Timeline:
    """This rank's timeline for ``run.json``: the spans of the run's steps, ``(name, start,
    end, cpu)``, and the tasks it ran, ``(what, task, start, end, cpu)``, in seconds since
    the run started (wall clock, the same on every rank of a machine)."""

    def __init__(self):
        self.t0 = time.time()
        self.wait0 = barrier_wait_s()
        self.spans: list[tuple[str, float, float, float]] = []
        self.tasks: list[tuple[str, str, float, float, float]] = []

    def tasks_done(self, what: str, tasks, then=None):
        """An ``on_done`` for :func:`run_tasks` that records each of ``tasks`` this rank
        ran, then calls ``then``."""
        def on_done(result: TaskResult, done: int, total: int) -> None:
            if not result.skipped:
                start = result.start - self.t0
                self.tasks.append((what, _task_label(tasks[result.index]), round(start, 3),
                                   round(start + result.seconds, 3), round(result.cpu, 3)))
            if then is not None:
                then(result, done, total)
        return on_done

    def task_map(self, comm, what: str):
        """:func:`task_map` over ``comm``, its tasks recorded in this timeline."""
        return task_map(comm, what=what, on_done_for=functools.partial(self.tasks_done, what))

    @contextmanager
    def span(self, name: str):
        w0, c0 = time.time(), time.process_time()
        try:
            yield
        finally:
            self.spans.append((name, round(w0 - self.t0, 3), round(time.time() - self.t0, 3),
                               round(time.process_time() - c0, 3)))

    def record(self, rank: int) -> dict:
        """The timeline with this process's totals: ``run_s`` (wall since the run started),
        ``tasks_s`` (wall in tasks), ``barrier_wait_s`` (wall waiting for the other ranks
        at barriers; the rest is this rank's own serial work and collective calls), CPU
        (user and system: system time counts page faults and MPI's busy waits) and peak
        memory."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {"rank": rank, "pid": os.getpid(), "startup_s": _seconds_since_process_start(self.t0),
                "run_s": round(time.time() - self.t0, 3),
                "tasks_s": round(sum(t[3] - t[2] for t in self.tasks), 3),
                "barrier_wait_s": round(barrier_wait_s() - self.wait0, 3),
                "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
                "user_s": round(usage.ru_utime, 3), "sys_s": round(usage.ru_stime, 3),
                "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "spans": list(self.spans),
                "tasks": list(self.tasks)}


def _task_label(task) -> str:
    """A task's name in the timeline: a tile's id, a product's or view's name, a function's."""
    if isinstance(task, Tile):
        return task.id
    return getattr(getattr(task, "func", task), "__name__", None) or str(task)


def _seconds_since_process_start(t: float) -> float | None:
    """Seconds from this process's start (interpreter, imports) to ``t`` (Linux only)."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime"))
        return round(t - (boot + ticks / os.sysconf("SC_CLK_TCK")), 3)
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def run_city(config: CityConfig, *, comm=None, resume: bool = False, overwrite: bool = False,
             allow_partial: bool = False) -> dict:
    """Run the whole chain over ``config.aoi``; return the run summary (also ``run.json``)."""
    with _gc_spares_imports():
        return _run_city(config, comm=comm, resume=resume, overwrite=overwrite, allow_partial=allow_partial)


@contextmanager
def _gc_spares_imports():
    """Keep Python's cyclic garbage collector off the objects that live for the whole run.

    The modules (and, once loaded, torch and the segmentation model) are hundreds of
    thousands of objects that every full collection traverses again: a seed-5 300 m run
    spent 2.1 CPU s in the collector on 1 rank and 1.1 + 1.5 s on 2 ranks, most of it in
    full collections (0.1-0.3 s each on the rank with the model). The objects alive when
    the run starts are frozen (moved out of the collector's generations) after one
    collection, and so are those the model load makes (:func:`_load_model`); they are
    unfrozen when the run ends, so that a process running more than one city (tests) can
    reclaim them. With both, the 1-rank run spent 0.77 CPU s in the collector.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _run_city(config: CityConfig, *, comm, resume: bool, overwrite: bool, allow_partial: bool) -> dict:
    rank = comm.rank if comm is not None else 0
    clock = _Timeline()
    _SEGMENT_READY[0] = None
    with clock.span("start"):
        simulate_here = _on_rank0(comm, lambda: _start(config, resume=resume, overwrite=overwrite))
    warm = loads = 0
    if simulate_here:
        # Ranks that will segment load the model while another rank prepares the scene.
        warm = _segment_warmups(config, comm, len(_grid(config)))
        with clock.span("simulate"):
            _simulate(config, comm, clock, [functools.partial(_warm_segment, config, quiet=True)] * warm)
        if warm:
            loads = [r for r in comm.allgather(_SEGMENT_READY[0] and dict(_SEGMENT_READY[0], rank=rank)) if r]
    with clock.span("plan"):
        plan = _on_rank0(comm, lambda: _make_plan(config))
    if loads:
        plan.timings["simulate"] = {"segment_model_loads": loads}

    failures: dict[str, list[dict]] = {}
    n = len(plan.tiles)
    for phase in PHASES:
        start = time.perf_counter()
        tasks, order, take = list(plan.tiles), None, True
        if phase == "dsm" and not warm:
            # Ranks that will segment load the model now, as tasks of this long phase.
            todo = sum(not _tile_path(plan, "segment", t).exists() for t in plan.tiles)
            warm = _segment_warmups(config, comm, todo)
            tasks += [_WARM_SEGMENT] * warm
            order = list(range(n, n + warm)) + list(range(n))
        elif phase == "segment" and warm:
            # The ranks that loaded the model segment every tile (all ranks, if none could).
            ready = comm.allgather(bool(_SEGMENT_READY[0]))
            take = ready[comm.rank] or not any(ready)
        elif phase == "lod":
            order = _lod_order(plan)
            if allow_partial or not any(failures.values()):
                # The rasters are final: their COGs fill the gaps the lod tiles leave.
                tasks += list(RASTER_PRODUCTS)
                order += list(range(n, len(tasks)))
        with clock.span(f"{phase}:tiles"):
            results = run_tasks(tasks, lambda t, p=phase: _run_tile(plan, p, t), comm=comm,
                                skip=lambda t, p=phase: isinstance(t, Tile) and _tile_path(plan, p, t).exists(),
                                on_done=clock.tasks_done(phase, tasks, _progress_bar(phase, len(tasks), rank)),
                                order=order, take=take)
        plan.timings[phase] = {"seconds": round(time.perf_counter() - start, 3),
                               "tiles": {plan.tiles[r.index].id: _tile_record(r) for r in results[:n]}}
        if len(results) > n:
            plan.timings[phase]["segment_model_loads" if phase == "dsm" else "products"] = [
                _tile_record(r) for r in results[n:]]
            bad = [r for r in results[n:] if not r.ok and tasks[r.index] in RASTER_PRODUCTS]
            if bad:
                raise OutputError(f"writing {tasks[bad[0].index]}.tif failed: {bad[0].error}")
            if phase == "lod":
                for r in results[n:]:
                    plan.written.update(r.value)
        failures[phase] = [{"tile": plan.tiles[r.index].id, "error": r.error, "attempts": r.attempts,
                            "traceback": r.log[-1] if r.log else None}
                           for r in results[:n] if not r.ok]
        if phase in PHASE_BANDS:
            with clock.span(f"{phase}:mosaic"):
                clock.task_map(comm, "mosaic")(list(PHASE_BANDS[phase]), lambda b, p=phase: _mosaic(plan, p, b))
        if rank == 0 and phase == "outline":
            with clock.span("outline:merge"):
                _merge_footprints(plan)
        with clock.span(f"{phase}:barrier"):
            quiet_barrier(comm)

    return _finish(plan, failures, allow_partial, comm, clock)


# ------------------------------------------------------------------ preparation
def _on_rank0(comm, fn):
    """``fn()`` on rank 0, its result (or the error it raised) on every rank."""
    value, error = None, None
    if comm is None or comm.rank == 0:
        try:
            value = fn()
        except Exception as exc:  # every rank must learn of it, or the others wait forever
            if comm is None:
                raise
            error = exc
    if comm is not None:
        quiet_barrier(comm)
        value, error = comm.bcast((value, error), root=0)
    if error is not None:
        raise error
    return value


def _start(config: CityConfig, *, resume: bool, overwrite: bool) -> bool:
    """Check and stamp the output directory; whether the acquisition must be simulated."""
    out = Path(config.out)
    stamp = out / "city.config.json"
    if resume and stamp.exists():
        previous = json.loads(stamp.read_text()).get("fingerprint")
        if previous != config.fingerprint():
            raise InputError(f"{out}: --resume with a different configuration than the run there "
                             "(AOI, images, seed, tiling or stage options changed); use a new --out")
    elif resume and out.exists() and any(out.iterdir()):
        raise InputError(f"{out}: nothing to resume (no city.config.json); use --overwrite or a new --out")
    else:
        check_output_dir(out, overwrite)
        if overwrite and out.exists():
            shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(stamp) as tmp:
        tmp.write_text(json.dumps({"fingerprint": config.fingerprint(), "aoi": config.aoi.to_dict(),
                                   "lod3d_version": __version__}, indent=2))
    return not config.images and not (out / "simulation" / "simulation.json").exists()


def _simulate(config: CityConfig, comm, clock: _Timeline, side_tasks: list) -> None:
    """The AOI's simulated acquisition into ``OUT/simulation``, its tasks shared by all ranks
    (with ``side_tasks``, which run while the scene is prepared)."""
    from .simulate.acquisition import simulate

    simulate(config.aoi, Path(config.out) / "simulation", seed=config.seed, gsd=config.gsd, overwrite=True,
             map_tasks=None if comm is None else clock.task_map(comm, "simulation task"),
             write=comm is None or comm.rank == 0, side_tasks=side_tasks)
    quiet_barrier(comm)


def _make_plan(config: CityConfig) -> _Plan:
    """The tile grid and the images with their RPCs (rank 0)."""
    out = Path(config.out)
    truth, images, reference_date = None, list(config.images), config.reference_date
    if not images:
        from .simulate.acquisition import SIMULATED_DATE

        images = sorted((out / "simulation" / "images").glob("img_*.tif"))
        truth = out / "simulation" / "truth"
        reference_date = reference_date or SIMULATED_DATE
    pairs = []
    for path in images:
        if not Path(path).exists():
            raise InputError(f"{path}: no such image")
        pairs.append((Path(path), RPCModel.from_file(path)))
    if len(pairs) < 2:
        raise InputError("need at least 2 images for stereo")
    _check_coverage(pairs, config.aoi)

    grid = _grid(config)
    work = out / "tiles"
    for phase in PHASES:
        (work / phase).mkdir(parents=True, exist_ok=True)
    return _Plan(config, grid, list(grid), pairs, work,
                 reference_date or _dt.date.today().isoformat(), truth)


def _grid(config: CityConfig) -> TileGrid:
    """The AOI's tile grid, its bounds snapped outwards to the ``gsd``."""
    xmin, ymin, xmax, ymax = config.aoi.bounds
    g = config.gsd
    bounds = (np.floor(xmin / g) * g, np.floor(ymin / g) * g, np.ceil(xmax / g) * g, np.ceil(ymax / g) * g)
    return TileGrid.from_bounds(bounds, res=g, tile_size_m=config.tile_m)


def _check_coverage(pairs, aoi: AOI) -> None:
    """Refuse images whose footprints (at their mean height) miss part of the AOI."""
    from pyproj import Transformer

    to_aoi = Transformer.from_crs("EPSG:4326", aoi.crs, always_xy=True)
    area = shapely.box(*aoi.bounds)
    for path, rpc in pairs:
        with rasterio.open(path) as src:
            rows = np.array([0, 0, src.height - 1, src.height - 1], float)
            cols = np.array([0, src.width - 1, src.width - 1, 0], float)
        lon, lat = rpc.localize(rows, cols, np.full(4, rpc.height_off))
        footprint = shapely.Polygon(np.column_stack(to_aoi.transform(lon, lat)))
        if not footprint.buffer(1e-6).covers(area):
            share = footprint.intersection(area).area / area.area
            raise InputError(f"{path}: covers only {100 * share:.0f} % of AOI {aoi.name!r}")


# ------------------------------------------------------------------ tiles
def _tile_path(plan: _Plan, phase: str, tile: Tile) -> Path:
    suffix = ".tif" if phase in PHASE_BANDS else ".pkl"
    return plan.work / phase / f"{tile.id}{suffix}"


def _halo(plan: _Plan, tile: Tile, metres: float) -> Window:
    """The tile's core grown by ``metres``, clipped to the grid."""
    h = int(np.ceil(metres / plan.config.gsd))
    rows, cols = plan.grid.shape
    c = tile.core
    r0, c0 = max(0, int(c.row_off) - h), max(0, int(c.col_off) - h)
    r1 = min(rows, int(c.row_off + c.height) + h)
    c1 = min(cols, int(c.col_off + c.width) + h)
    return Window(c0, r0, c1 - c0, r1 - r0)


def _core_of(window: Window, tile: Tile) -> tuple[slice, slice]:
    r0 = int(tile.core.row_off - window.row_off)
    c0 = int(tile.core.col_off - window.col_off)
    return slice(r0, r0 + int(tile.core.height)), slice(c0, c0 + int(tile.core.width))


def _read(plan: _Plan, name: str, window: Window) -> Raster:
    with rasterio.open(plan.work / f"{name}.tif") as src:
        data = src.read(1, window=window)
        return Raster(data, src.window_transform(window), src.crs, src.nodata, src.tags())


# A task of the dsm phase that loads the segmentation model on the rank that takes it.
_WARM_SEGMENT = "load segmentation model"
_SEGMENT_READY: list = [None]  # this process's model load ({"seconds": ...}), if it loaded it
_SEGMENT_STAGES: dict = {}  # the Segment stage of this process, its model loaded once
# Measured on 150 m tiles (docs/cluster.md): loading torch and the model costs about as
# much as segmenting 10 tiles once it is loaded.
SEGMENT_LOAD_TILES = 10.0


def _segment_stage(cfg: CityConfig) -> Segment:
    """This process's Segment stage, its model loaded (once)."""
    key = (cfg.segment_method, cfg.model, cfg.threads)
    if key not in _SEGMENT_STAGES:
        stage = Segment(method=cfg.segment_method, model=cfg.model, threads=cfg.threads)
        _load_model(stage)
        _SEGMENT_STAGES[key] = stage
    return _SEGMENT_STAGES[key]


def _load_model(stage: Segment) -> None:
    """Load the stage's model with the cyclic collector paused, then freeze what it made.

    Importing torch and building the network create a few hundred thousand long-lived
    objects and almost no garbage (at most 168 objects found per collection), but each
    full collection during the load traversed the growing heap again (0.07-0.21 s each,
    0.7 s in all); frozen, they are not traversed by the later ones either. What is
    frozen is never collected, so the garbage is collected first: the run's so far
    (before torch, a cheap collection) and the load's (one pass over the youngest
    generation, which holds everything the load made); freezing the load's garbage
    raised a 300 m run's peak memory by 90 MB.
    """
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        stage.load()
    finally:
        gc.collect(0)
        gc.freeze()
        if enabled:
            gc.enable()


def _segment_warmups(config: CityConfig, comm, todo: int) -> int:
    """How many ranks should load the segmentation model ahead of the segment phase, for
    ``todo`` tiles to segment.

    Every rank that segments pays the model load once. With few tiles per rank that load
    outweighs the tiles, so only ``w`` ranks load it (as tasks of the simulation, or of the
    dsm phase) and segment every tile: w ≈ √(tiles × ranks / load), load in tiles, balances
    the load against the tiles' share (1 of 2 ranks for 4 tiles; every rank for thousands).
    """
    if comm is None or config.segment_method != "model" or todo == 0:
        return 0
    scale = (config.tile_m / 150.0) ** 2
    return int(min(comm.size, max(1, round(np.sqrt(todo * scale * comm.size / SEGMENT_LOAD_TILES)))))


def _warm_segment(config: CityConfig, quiet: bool = False) -> dict:
    """Load the model into this process's Segment stage (the one its tiles will use).

    ``quiet``: a failure is logged, not raised (a side task of the simulation must not
    fail it; the segment phase then reports the error on its tiles)."""
    start = time.perf_counter()
    try:
        _segment_stage(config)
    except Exception as exc:
        if not quiet:
            raise
        log.warning("loading the segmentation model failed: %s", exc)
        return {"warmup": "segment", "error": str(exc)}
    _SEGMENT_READY[0] = {"warmup": "segment", "seconds": round(time.perf_counter() - start, 3)}
    return {"warmup": "segment"}


def _lod_order(plan: _Plan) -> list[int]:
    """Tiles with the largest footprint area first, so that the queue hands out the
    costliest tiles first and the cheap ones fill the gaps.

    A tile's lod cost follows the roof cells it models: on the seed-5 300 m tiles 0.21-0.25
    CPU ms per m² of footprint, while the number of footprints misled (a 9-building tile
    cost 3.5 s, a 16-building one 2.7 s; ordered by count, one rank got both of the
    costliest tiles).
    """
    merged = pickle.loads((plan.work / "footprints.pkl").read_bytes())
    area = [sum(poly.area for _, poly, _ in merged.get(t.id, [])) for t in plan.tiles]
    return sorted(range(len(plan.tiles)), key=lambda i: (-round(area[i], 3), i))


def _run_tile(plan: _Plan, phase: str, tile: Tile) -> dict:
    """Compute one phase on one tile and write its product atomically; return timings."""
    cfg = plan.config
    if tile is _WARM_SEGMENT:
        return _warm_segment(cfg)
    if isinstance(tile, str):
        return _write_product(plan, tile, [])
    if phase == "dsm":
        window = _halo(plan, tile, cfg.halo_m)
        stage = DSM(gsd=cfg.gsd, bounds=plan.grid.window_bounds(window), crs=cfg.aoi.crs)
        products = Pipeline([stage]).run({"images": plan.images})
    elif phase == "terrain":
        window = _halo(plan, tile, cfg.terrain_halo_m)
        products = Pipeline([Terrain()]).run({"dsm": _read(plan, "dsm", window)})
    elif phase == "segment":
        window = _halo(plan, tile, cfg.halo_m)
        products = Pipeline([_segment_stage(cfg)]).run({"ortho": _read(plan, "ortho", window),
                                          "ndsm": _read(plan, "ndsm", window)})
    elif phase == "outline":
        return _outline_tile(plan, tile)
    else:
        return _lod_tile(plan, tile)
    rs, cs = _core_of(window, tile)
    bands = np.stack([np.asarray(products[b].data, np.float32)[rs, cs] for b in PHASE_BANDS[phase]])
    write_raster(_tile_path(plan, phase, tile), bands,
                 transform=plan.grid.window_transform(tile.core), crs=cfg.aoi.crs, nodata=float("nan"))
    return {"stages": products.timings}


def _outline_tile(plan: _Plan, tile: Tile) -> dict:
    """Footprints of the blocks whose anchor lies in this tile's core: ``[(id, polygon, cut), ...]``.

    A block (connected component of the mask) is split into buildings once, whole, by the
    tile whose core holds the block's anchor (the centroid of its cells). A block that the
    tile's window cuts is first followed on the mask alone (cheap) until all of it is seen;
    only its owner then outlines it, alone, on a window that holds all of it. The split so
    never depends on the tiling, and no block is split twice.
    """
    window = _halo(plan, tile, plan.config.building_halo_m)
    mask = _read(plan, "mask", window)
    fp, ndsm = _outline(plan, window, mask)
    blocks = _block_labels(mask)
    outlined = [(fp, ndsm, [])]  # (footprints, nDSM, indices of the tile's buildings)
    for b in np.unique(fp.block):
        inside, block_window, block_mask = blocks == b, window, mask
        if _cut_by_window(plan, window, inside):
            block_window, block_mask, inside = _whole_block(plan, window, inside)
        owner = plan.grid.owner(*_clamp(plan, *_anchor(plan, block_window, inside)))
        if (int(owner[0]), int(owner[1])) != (tile.row, tile.col):
            continue
        if block_window is window:
            outlined[0][2].extend(np.flatnonzero(fp.block == b).tolist())
        else:
            block_mask = dataclasses.replace(block_mask, data=np.where(inside, block_mask.data, 0))
            block_fp, block_ndsm = _outline(plan, block_window, block_mask)
            outlined.append((block_fp, block_ndsm, list(range(len(block_fp)))))
    owned = []  # (-anchor_y, anchor_x, polygon, cut)
    not_elevated = 0
    for block_fp, block_ndsm, pieces in outlined:
        pieces = np.asarray(pieces, np.int64)
        elevated = _elevated(block_ndsm, block_fp.raw[pieces])
        not_elevated += int((~elevated).sum())
        for k in pieces[elevated]:
            poly, raw = block_fp.polygons[k], block_fp.raw[k]
            if poly is not None and not poly.is_empty:
                anchor = shapely.centroid(raw)
                owned.append((-anchor.y, anchor.x, poly, bool(block_fp.cut[k])))
    owned.sort(key=lambda o: (round(o[0], 6), round(o[1], 6)))
    footprints = [(f"{tile.id}-{k:04d}", o[2], o[3]) for k, o in enumerate(owned)]
    with atomic_path(_tile_path(plan, "outline", tile)) as tmp:
        tmp.write_bytes(pickle.dumps(footprints, protocol=pickle.HIGHEST_PROTOCOL))
    return {"footprints": len(footprints), "not_elevated": not_elevated}


def _block_labels(mask: Raster) -> np.ndarray:
    """The mask's blocks: 4-connected components of its building cells, 1..n in raster
    order (as :class:`Footprints` numbers them)."""
    return ndimage.label(mask_ids(mask.data, mask.nodata, "mask") > 0)[0]


def _anchor(plan: _Plan, window: Window, inside: np.ndarray) -> tuple[float, float]:
    """A block's anchor: the centroid of its cells ``inside`` ``window`` (map coordinates)."""
    rows, cols = np.nonzero(inside)
    return plan.grid.window_transform(window) * (cols.mean() + 0.5, rows.mean() + 0.5)


def _cut_by_window(plan: _Plan, window: Window, inside: np.ndarray) -> bool:
    """Whether the block's cells ``inside`` ``window`` reach a side of the window that is
    not the grid's border."""
    rows, cols = plan.grid.shape
    r0, c0 = int(window.row_off), int(window.col_off)
    return bool((r0 > 0 and inside[0].any()) or (c0 > 0 and inside[:, 0].any())
                or (r0 + inside.shape[0] < rows and inside[-1].any())
                or (c0 + inside.shape[1] < cols and inside[:, -1].any()))


def _whole_block(plan: _Plan, window: Window, inside: np.ndarray) -> tuple[Window, Raster, np.ndarray]:
    """A window that holds all of the block whose cells ``inside`` ``window`` are seen, the
    mask in it and the block's cells there: windows grown around the block on the mask
    until it fits."""
    margin = plan.config.building_halo_m
    while True:
        rows, cols = np.nonzero(inside)
        seed = (int(rows[0] + window.row_off), int(cols[0] + window.col_off))  # grid cell of the block
        bounds = plan.grid.window_bounds(Window(window.col_off + cols.min(), window.row_off + rows.min(),
                                                cols.max() - cols.min() + 1, rows.max() - rows.min() + 1))
        window = _window_around(plan, bounds, margin)
        mask = _read(plan, "mask", window)
        blocks = _block_labels(mask)
        inside = blocks == blocks[seed[0] - int(window.row_off), seed[1] - int(window.col_off)]
        if not _cut_by_window(plan, window, inside):
            return window, mask, inside
        margin *= 2


def _elevated(ndsm: Raster, outlines) -> np.ndarray:
    """Which outlines stand on a structure: median nDSM inside ≥ ``MIN_BUILDING_HEIGHT_M``
    over at least ``MIN_ROOF_CELLS`` valid cells. The mask can hold flat blobs (shadows,
    courtyards, street furniture); they are not buildings and get no model."""
    from rasterio.features import rasterize

    if len(outlines) == 0:
        return np.zeros(0, bool)
    labels = rasterize(((g, k + 1) for k, g in enumerate(outlines)), out_shape=ndsm.shape,
                       transform=ndsm.transform, fill=0, dtype="int32")
    valid = np.isfinite(ndsm.data) & (labels > 0)
    index = np.arange(1, len(outlines) + 1)
    counts = np.bincount(labels[valid], minlength=len(outlines) + 1)[1:]
    medians = np.asarray(ndimage.median(np.where(valid, ndsm.data, 0), labels * valid, index), float)
    return (counts >= MIN_ROOF_CELLS) & (medians >= MIN_BUILDING_HEIGHT_M)


FOOTPRINT_GRID_M = 0.01  # footprints' vertices snap to this grid (m) before the LOD phase


def _merge_footprints(plan: _Plan) -> None:
    """Give each overlap between footprints of different tiles to the earlier one (rank 0).

    Each tile regularizes its buildings in its own window, so two neighbours owned by
    different tiles may disagree on their shared wall by a sliver; the later footprint (in
    tile order) gives the overlap up, which keeps the result independent of the ranks.
    """
    rows = []
    for tile in plan.tiles:
        path = _tile_path(plan, "outline", tile)
        if path.exists():
            rows += [(tile.id, *fp) for fp in pickle.loads(path.read_bytes())]
    polys = np.array([r[2] for r in rows], dtype=object)
    tiles = np.array([r[0] for r in rows])
    if len(rows):
        left, right = shapely.STRtree(polys).query(polys, predicate="intersects")
        keep = (left < right) & (tiles[left] != tiles[right])
        for j in np.unique(right[keep]):
            earlier = shapely.union_all(polys[left[keep & (right == j)]])
            polys[j] = _largest_polygon(shapely.difference(polys[j], earlier))
    merged: dict[str, list] = {}
    for (tile_id, bid, _, cut), poly in zip(rows, polys):
        if poly is not None:
            # differences and the repair of touching neighbours can leave zero-width spikes
            # (a corner doubling back within a millimetre) that the CityJSON quantization
            # turns into self-intersections: snapping to a 1 cm grid collapses them
            poly = _largest_polygon(shapely.set_precision(poly, FOOTPRINT_GRID_M))
        if poly is not None and poly.area > 1.0:
            merged.setdefault(tile_id, []).append((bid, poly, cut))
    with atomic_path(plan.work / "footprints.pkl") as tmp:
        tmp.write_bytes(pickle.dumps(merged, protocol=pickle.HIGHEST_PROTOCOL))


def _largest_polygon(geom):
    parts = [g for g in shapely.get_parts(shapely.make_valid(geom)) if g.geom_type == "Polygon"]
    return max(parts, key=lambda g: g.area) if parts else None


def _lod_tile(plan: _Plan, tile: Tile) -> dict:
    """LOD0/1/2 models of the tile's merged footprints."""
    merged = pickle.loads((plan.work / "footprints.pkl").read_bytes()).get(tile.id, [])
    buildings = []
    if merged:
        footprints = [(bid, poly) for bid, poly, _ in merged]
        box = shapely.bounds(shapely.union_all([p for _, p in footprints]))
        window = _window_around(plan, box, margin_m=3.0)
        products = Pipeline([LOD(lods=plan.config.lods)]).run(
            {"dsm": _read(plan, "dsm", window), "dtm": _read(plan, "dtm", window), "footprints": footprints,
             "ortho": _read(plan, "ortho", window)})
        buildings = products["buildings"]
        cut = {bid: c for bid, _, c in merged}
        for b in buildings:
            b.attributes["cut_by_aoi"] = cut[b.id]
    with atomic_path(_tile_path(plan, "lod", tile)) as tmp:
        tmp.write_bytes(pickle.dumps(buildings, protocol=pickle.HIGHEST_PROTOCOL))
    return {"buildings": len(buildings)}


def _outline(plan: _Plan, window: Window, mask: Raster) -> tuple[Footprints, Raster]:
    """Footprints of ``mask`` (the mask in ``window``) and the window's nDSM."""
    ndsm = _read(plan, "ndsm", window)
    return outline_mask(mask, ndsm, _read(plan, "ortho", window)), ndsm


def _window_around(plan: _Plan, bounds, margin_m: float) -> Window:
    inv = ~plan.grid.transform
    c0, r0 = inv @ (bounds[0] - margin_m, bounds[3] + margin_m)
    c1, r1 = inv @ (bounds[2] + margin_m, bounds[1] - margin_m)
    rows, cols = plan.grid.shape
    r0, c0 = max(0, int(np.floor(r0))), max(0, int(np.floor(c0)))
    r1, c1 = min(rows, int(np.ceil(r1))), min(cols, int(np.ceil(c1)))
    return Window(c0, r0, c1 - c0, r1 - r0)


def _grid_bounds(plan: _Plan) -> tuple[float, float, float, float]:
    return plan.grid.window_bounds(Window(0, 0, plan.grid.shape[1], plan.grid.shape[0]))


def _clamp(plan: _Plan, x: float, y: float) -> tuple[float, float]:
    xmin, ymin, xmax, ymax = _grid_bounds(plan)
    return min(max(x, xmin), xmax), min(max(y, ymin), ymax)


def _tile_record(result: TaskResult) -> dict:
    rec = {"ok": result.ok, "seconds": round(result.seconds, 3), "rank": result.rank,
           "attempts": result.attempts}
    if result.skipped:
        rec["resumed"] = True
    if result.value:
        rec.update(result.value)
    if result.error:
        rec["error"] = result.error
    return rec


def _progress_bar(phase: str, n: int, rank: int):
    if rank != 0:
        return None
    bar = progress(total=n, desc=phase, unit="tile")

    def update(result: TaskResult, done: int, total: int) -> None:
        bar.update()
        if done == total:
            bar.close()
    return update


# ------------------------------------------------------------------ mosaics and merge
def _mosaic(plan: _Plan, phase: str, name: str) -> None:
    """Assemble the tile cores of one band of the phase into one tiled GeoTIFF (each band
    is a task shared by the ranks: ranks waiting for rank 0 alone was a serial gap)."""
    rows, cols = plan.grid.shape
    profile = dict(driver="GTiff", height=rows, width=cols, count=1, dtype="float32",
                   crs=plan.config.aoi.crs, transform=plan.grid.transform, nodata=float("nan"),
                   tiled=True, blockxsize=256, blockysize=256, compress="deflate", predictor=3)
    b = PHASE_BANDS[phase].index(name) + 1
    tags = {"HEIGHT_DATUM": HEIGHT_DATUM} if name in ("dsm", "dtm") else {}
    with atomic_path(plan.work / f"{name}.tif") as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.update_tags(**tags)
            for tile in plan.tiles:
                path = _tile_path(plan, phase, tile)
                data = np.full((int(tile.core.height), int(tile.core.width)), np.nan, np.float32)
                if path.exists():
                    with rasterio.open(path) as src:
                        data = src.read(b)
                dst.write(data, 1, window=tile.core)


def _finish(plan: _Plan, failures: dict, allow_partial: bool, comm, clock: _Timeline) -> dict:
    """Products, ``run.json`` and the report; the products and the report's figures are
    tasks shared by every rank."""
    rank = comm.rank if comm is not None else 0
    out = Path(plan.config.out)
    failed = sorted({f["tile"] for phase in failures.values() for f in phase})
    products = {}
    if not failed or allow_partial:
        with clock.span("write"):
            products = _write_products(plan, comm, clock)
    summary = {
        "lod3d_version": __version__,
        "aoi": plan.config.aoi.to_dict(),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(plan.config).items()
                   if k not in ("aoi", "images")},
        "images": [str(p) for p, _ in plan.images],
        "height_datum": HEIGHT_DATUM,
        "n_tiles": len(plan.tiles),
        "n_buildings": sum(len(b) for b in _tile_buildings(plan)),
        "failed_tiles": failed,
        "failures": {k: v for k, v in failures.items() if v},
        "complete": not failed,
        "products": products,
        "timings": plan.timings,
        "truth": str(plan.truth) if plan.truth else None,
    }
    _on_rank0(comm, lambda: _write_summary(out, summary, [clock.record(0)]))
    if products:
        with clock.span("report"):
            build_report(out, map_tasks=clock.task_map(comm, "report task"), write=rank == 0)
        summary["report"] = str(out / "report" / "index.html")
    ranks = [clock.record(rank)] if comm is None else comm.gather(clock.record(rank), root=0)
    _on_rank0(comm, lambda: _write_summary(out, summary, ranks))
    if failed and not allow_partial:
        raise OutputError(f"{len(failed)} tile(s) failed ({', '.join(failed)}); see {out / 'run.json'}; "
                          "rerun with --resume, or --allow-partial to write what succeeded")
    return summary


def _write_summary(out: Path, summary: dict, ranks: list) -> None:
    """``run.json``, with each rank's timeline."""
    with atomic_path(out / "run.json") as tmp:
        tmp.write_text(json.dumps(dict(summary, ranks=ranks), indent=2, default=str))


def _tile_buildings(plan: _Plan) -> list[list]:
    """Each tile's buildings, in tile order, sorted by id."""
    out = []
    for tile in plan.tiles:
        path = _tile_path(plan, "lod", tile)
        out.append(sorted(pickle.loads(path.read_bytes()), key=lambda b: b.id) if path.exists() else [])
    return out


# The products, written as tasks shared by the ranks; costliest first.
PRODUCTS = ("city", "cityseq", "footprints", "dsm", "ortho", "dtm", "ndsm", "confidence", "mask")
RASTER_PRODUCTS = PRODUCTS[3:]


def _write_products(plan: _Plan, comm, clock: _Timeline) -> dict:
    buildings = []

    def write(name: str) -> dict:
        if name in ("city", "cityseq", "footprints") and not buildings:
            buildings.extend(b for tile in _tile_buildings(plan) for b in tile)
        return _write_product(plan, name, buildings)

    written = dict(plan.written)
    for part in clock.task_map(comm, "product")([p for p in PRODUCTS if p not in written], write):
        written.update(part)
    return {k: written[k] for k in ("dsm", "dtm", "ndsm", "ortho", "confidence", "mask", "city", "cityseq",
                                    "footprints")}


def _write_product(plan: _Plan, name: str, buildings: list) -> dict:
    out = Path(plan.config.out)
    cfg = plan.config
    if name in RASTER_PRODUCTS:
        with rasterio.open(plan.work / f"{name}.tif") as src:
            data, tags = src.read(1), src.tags()
        if name == "mask":
            data = np.where(np.isfinite(data), data, 0).astype(np.uint8)
        write_raster(out / f"{name}.tif", data, transform=plan.grid.transform, crs=cfg.aoi.crs,
                     nodata=None if name == "mask" else float("nan"), tags=tags, cog=True)
        return {name: f"{name}.tif"}
    meta = {"title": f"lod3d city model, {cfg.aoi.name}", "referenceDate": plan.reference_date,
            "lineage": {"inputs": [p.name for p, _ in plan.images], "heightDatum": HEIGHT_DATUM,
                        "aoi": cfg.aoi.name}}
    if name == "city":
        write_cityjson(out / "city.city.json", buildings, crs_epsg=cfg.aoi.epsg, metadata=meta)
        return {"city": "city.city.json"}
    if name == "cityseq":
        write_cityjsonseq(out / "city.city.jsonl", buildings, crs_epsg=cfg.aoi.epsg, metadata=meta)
        return {"cityseq": "city.city.jsonl"}
    # The GeoPackage keys features by integer: the 1-based position in city.city.json.
    fp = Footprints(ids=np.arange(1, len(buildings) + 1),
                    polygons=np.array([b.footprint for b in buildings], dtype=object),
                    cut=np.array([bool(b.attributes.get("cut_by_aoi")) for b in buildings]),
                    raw=np.array([b.footprint for b in buildings], dtype=object),
                    fallback=np.zeros(len(buildings), bool), crs=cfg.aoi.crs)
    write_footprints(out / "footprints.gpkg", fp)
    return {"footprints": "footprints.gpkg"}
