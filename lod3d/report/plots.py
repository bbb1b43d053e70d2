"""The report's figures: one function per PNG, each taking arrays/models and a path.

matplotlib runs on the Agg backend (no display). Rasters are drawn in map coordinates
(``extent`` from the grid) so vectors overlay them directly; north is up.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
import numpy as np  # noqa: E402
import shapely  # noqa: E402
from mpl_toolkits.mplot3d.art3d import Poly3DCollection  # noqa: E402

from ..raster import Raster  # noqa: E402

__all__ = ["hillshade", "surface", "ndsm", "mask_over_ortho", "footprints_over_ortho", "errors", "buildings_3d",
           "timings", "quality"]

DPI = 110
SURFACE_COLOURS = {"RoofSurface": "#c0504d", "WallSurface": "#d9d9d9", "GroundSurface": "#7f7f7f"}


def _extent(r: Raster):
    x0, y0, x1, y1 = r.bounds
    return (x0, x1, y0, y1)


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _stretch(img: np.ndarray) -> np.ndarray:
    """Grey values scaled to 0..1 between their 2nd and 98th percentiles."""
    v = img.astype(np.float64)
    lo, hi = np.nanpercentile(v, [2, 98]) if np.isfinite(v).any() else (0.0, 1.0)
    return np.clip((v - lo) / max(hi - lo, 1e-9), 0, 1)


def hillshade(z: np.ndarray, res: float, azimuth: float = 315.0, altitude: float = 45.0) -> np.ndarray:
    """Lambertian shading (0..1) of a height grid lit from ``azimuth``/``altitude`` degrees."""
    zf = np.where(np.isfinite(z), z, np.nanmedian(z) if np.isfinite(z).any() else 0.0)
    gy, gx = np.gradient(zf, res)
    slope = np.arctan(np.hypot(gx, gy))
    aspect = np.arctan2(-gx, gy)
    az, alt = np.radians(360.0 - azimuth + 90.0), np.radians(altitude)
    shade = np.sin(alt) * np.cos(slope) + np.cos(alt) * np.sin(slope) * np.cos(az - aspect)
    return np.where(np.isfinite(z), np.clip(shade, 0, 1), np.nan)


def surface(dsm: Raster, confidence: Raster | None, path: Path) -> Path:
    """DSM hillshade with heights tinted, beside the matching confidence."""
    n = 2 if confidence is not None else 1
    fig, axes = plt.subplots(1, n, figsize=(6.2 * n, 5.4), squeeze=False)
    ax = axes[0, 0]
    ax.imshow(hillshade(dsm.data, dsm.res), cmap="gray", extent=_extent(dsm))
    im = ax.imshow(dsm.data, cmap="terrain", alpha=0.45, extent=_extent(dsm))
    fig.colorbar(im, ax=ax, shrink=0.8, label="height (m)")
    ax.set_title("DSM (hillshade, heights tinted)")
    if confidence is not None:
        im = axes[0, 1].imshow(confidence.data, cmap="viridis", extent=_extent(confidence))
        fig.colorbar(im, ax=axes[0, 1], shrink=0.8, label="confidence")
        axes[0, 1].set_title("stereo confidence")
    for a in axes.ravel():
        a.set_xlabel("x (m)")
        a.tick_params(labelsize=7)
    return _save(fig, path)


def ndsm(nd: Raster, path: Path) -> Path:
    """Normalized DSM (heights above the DTM)."""
    fig, ax = plt.subplots(figsize=(6.4, 5.4))
    top = np.nanpercentile(nd.data, 99.5) if np.isfinite(nd.data).any() else 1.0
    im = ax.imshow(nd.data, cmap="magma", vmin=0, vmax=max(top, 1.0), extent=_extent(nd))
    fig.colorbar(im, ax=ax, shrink=0.8, label="height above terrain (m)")
    ax.set_title("nDSM = DSM − DTM")
    ax.tick_params(labelsize=7)
    return _save(fig, path)


def mask_over_ortho(ortho: Raster, mask: Raster, path: Path, truth_ids: np.ndarray | None = None) -> Path:
    """Building mask (red) over the true ortho; truth building edges (cyan) when known."""
    fig, ax = plt.subplots(figsize=(6.4, 6.4))
    ax.imshow(_stretch(ortho.data), cmap="gray", extent=_extent(ortho))
    m = np.nan_to_num(mask.data) > 0
    ax.imshow(np.ma.masked_where(~m, m), cmap="autumn", alpha=0.45, extent=_extent(mask), interpolation="nearest")
    title = f"building mask over ortho ({100 * m.mean():.1f} % of cells)"
    if truth_ids is not None:
        ax.contour(truth_ids > 0, levels=[0.5], colors="cyan", linewidths=0.5, origin="upper",
                   extent=_extent(mask))
        title += "; truth outline cyan"
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    return _save(fig, path)


def _draw_polys(ax, polys, colour, width):
    for poly in polys:
        for part in shapely.get_parts(poly):
            for ring in [part.exterior, *part.interiors]:
                xy = np.asarray(ring.coords)
                ax.plot(xy[:, 0], xy[:, 1], color=colour, lw=width)


def footprints_over_ortho(ortho: Raster, footprints, path: Path, truth=None) -> Path:
    """Output footprints (red) over the ortho, the truth footprints (cyan) beneath them."""
    fig, ax = plt.subplots(figsize=(6.4, 6.4))
    ax.imshow(_stretch(ortho.data), cmap="gray", extent=_extent(ortho))
    if truth is not None:
        _draw_polys(ax, truth, "cyan", 0.6)
    _draw_polys(ax, footprints, "red", 0.9)
    ax.set_xlim(*_extent(ortho)[:2])
    ax.set_ylim(*_extent(ortho)[2:])
    ax.set_title(f"{len(footprints)} footprints (red)" + (f", {len(truth)} truth (cyan)" if truth is not None else ""),
                 fontsize=9)
    ax.tick_params(labelsize=7)
    return _save(fig, path)


def errors(maps: dict[str, tuple[np.ndarray, Raster]], labels: np.ndarray | None, class_names: dict,
           path: Path, limit: float = 5.0) -> Path:
    """Per product (``name → (result − truth, grid)``): the error map (±``limit`` m) and the
    histogram of errors per class."""
    n = len(maps)
    fig, axes = plt.subplots(n, 2, figsize=(12, 5.0 * n), squeeze=False)
    for row, (name, (err, grid)) in enumerate(maps.items()):
        ax = axes[row, 0]
        im = ax.imshow(err, cmap="RdBu_r", vmin=-limit, vmax=limit, extent=_extent(grid))
        fig.colorbar(im, ax=ax, shrink=0.8, label=f"{name} − truth (m)")
        ax.set_title(f"{name} error (result − truth), clipped at ±{limit:g} m")
        ax.tick_params(labelsize=7)
        ax = axes[row, 1]
        bins = np.linspace(-3 * limit, 3 * limit, 121)
        groups = {"all": np.isfinite(err)} if labels is None else {
            cls: (labels == v) & np.isfinite(err) for v, cls in class_names.items()}
        for cls, sel in groups.items():
            if sel.any():
                e = err[sel]
                ax.hist(np.clip(e, bins[0], bins[-1]), bins=bins, histtype="step", lw=1.2,
                        label=f"{cls} (n={sel.sum()}, median {np.median(e):+.2f} m)")
        ax.set_yscale("log")
        ax.set_xlabel(f"{name} − truth (m), outside ±{3 * limit:g} m piled at the ends")
        ax.set_ylabel("cells")
        ax.legend(fontsize=8)
        ax.set_title(f"{name} error by class")
    return _save(fig, path)


def _sample(buildings, k: int):
    """Up to ``k`` buildings around the one nearest the centre of them all (a neighbourhood)."""
    if len(buildings) <= k:
        return list(buildings)
    c = np.array([[p.x, p.y] for p in (b.footprint.centroid for b in buildings)])
    centre = c[np.argmin(np.linalg.norm(c - c.mean(axis=0), axis=1))]
    order = np.argsort(np.linalg.norm(c - centre, axis=1), kind="stable")[:k]
    return [buildings[i] for i in sorted(order)]


def buildings_3d(buildings, path: Path, lod: str = "2.2", k: int = 12) -> Path:
    """A 3-D view of the LoD ``lod`` solids of up to ``k`` neighbouring buildings."""
    sample = _sample(buildings, k)
    faces, colours = [], []
    for b in sample:
        for part in b.parts:
            for solid in part.solids:
                if solid.lod != lod:
                    continue
                for s in solid.surfaces:
                    faces.append(np.asarray(s.rings[0], float))
                    colours.append(SURFACE_COLOURS.get(s.semantic, "#9999ff"))
    fig = plt.figure(figsize=(8, 6.5))
    ax = fig.add_subplot(projection="3d")
    if faces:
        allp = np.concatenate(faces)
        origin = allp.min(axis=0)
        # limits are set below: autoscaling here can fail after other figures in the process
        ax.add_collection3d(Poly3DCollection([f - origin for f in faces], facecolors=colours,
                                             edgecolors="#333333", linewidths=0.3), autolim=False)
        span = allp.max(axis=0) - origin
        ax.set_xlim(0, span[0])
        ax.set_ylim(0, span[1])
        ax.set_zlim(0, span[2])
        ax.set_box_aspect((span[0], span[1], max(span[2], 0.05 * max(span[:2]))))
        ax.view_init(elev=35, azim=-60)
        ax.set_xlabel("x (m)", fontsize=7)
        ax.set_ylabel("y (m)", fontsize=7)
        ax.set_zlabel("z (m)", fontsize=7)
        ax.tick_params(labelsize=6)
        title = f"LoD{lod} solids of {len(sample)} of {len(buildings)} buildings (roofs red, walls grey)"
    else:
        title = f"no LoD{lod} solids"
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def timings(run: dict, path: Path) -> Path:
    """Seconds per tile of each phase, stacked, with the phase totals (wall) in the legend."""
    phases = run.get("timings", {})
    tiles = sorted({t for p in phases.values() for t in p.get("tiles", {})})
    fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * len(tiles) + 3), 4.5))
    bottom = np.zeros(len(tiles))
    for phase, rec in phases.items():
        secs = np.array([rec.get("tiles", {}).get(t, {}).get("seconds", 0.0) for t in tiles])
        ax.bar(tiles, secs, bottom=bottom, label=f"{phase} ({rec.get('seconds', 0):.1f} s wall)")
        bottom += secs
    ax.set_ylabel("seconds")
    ax.set_xlabel("tile")
    ax.tick_params(axis="x", rotation=90, labelsize=7)
    ax.legend(fontsize=8)
    ax.set_title(f"per-tile time by phase, {len(tiles)} tiles")
    return _save(fig, path)


def quality(buildings, path: Path) -> Path:
    """Distributions of the buildings' quality attributes (3DBAG-style)."""
    attrs = [b.attributes for b in buildings]

    def values(key):
        return np.array([a[key] for a in attrs if isinstance(a.get(key), (int, float))], float)

    fig, axes = plt.subplots(2, 3, figsize=(13, 7.5))
    numeric = [("rmse_lod22", "roof RMSE LoD2.2 vs DSM (m)", 30), ("rmse_lod12", "roof RMSE LoD1.2 vs DSM (m)", 30),
               ("nodata_share", "share of footprint without DSM", np.linspace(0, 1, 21))]
    for ax, (key, label, bins) in zip(axes[0], numeric):
        v = values(key)
        ax.hist(v, bins=bins, color="#4f81bd") if len(v) else ax.text(0.5, 0.5, "none", ha="center")
        ax.set_xlabel(label)
        ax.set_ylabel("buildings")
    heights = np.array([a["h_roof_70p"] - a["h_ground"] for a in attrs
                        if isinstance(a.get("h_roof_70p"), (int, float)) and isinstance(a.get("h_ground"), (int, float))])
    axes[1, 0].hist(heights, bins=30, color="#9bbb59")
    axes[1, 0].set_xlabel("h_roof_70p − h_ground (m)")
    axes[1, 0].set_ylabel("buildings")
    for ax, key in zip(axes[1, 1:], ("roof_type", "lod_fallback_reason")):
        kinds = [str(a.get(key)) for a in attrs]
        names, counts = np.unique(kinds, return_counts=True) if kinds else ([], [])
        ax.barh(names, counts, color="#8064a2")
        ax.set_xlabel("buildings")
        ax.set_title(key, fontsize=9)
        ax.tick_params(labelsize=7)
    fig.suptitle(f"quality attributes of {len(buildings)} buildings")
    fig.tight_layout()
    return _save(fig, path)
