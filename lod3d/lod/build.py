"""From footprints + DSM + DTM to LOD0/LoD1.2/LoD1.3/LoD2.2 buildings with quality attributes.

Per footprint polygon (each polygon of a multi-part footprint is handled on its own):

* the DSM cells whose centres fall inside are the roof samples; the ground height is the
  10th percentile of the DTM within 1 m around the footprint (LOD0 sits there);
* LoD1.2: a prism at the 70th percentile of the roof samples (3DBAG's choice), held by the
  BuildingPart ``{id}-{k}``;
* the roof is split into parts at height jumps, and where no single roof fits a part, at
  its inside corners (:func:`~lod3d.lod.partition.partition`,
  :func:`~lod3d.lod.partition.split_roof`: the wings of L, T and courtyard buildings);
  where no single roof fits a part and no inside corner helps, by straight cuts right across
  it (terraced houses of similar height that one footprint holds);
  where cuts at the inside corners alone explain a roof with height jumps better (walls
  continuing the outline's edges, as on most annexes), they replace the raster partition.
  Each part gets a LoD1.3 prism at its own 70th percentile and a LoD2.2 roof
  (:mod:`lod3d.lod.roof`, :mod:`lod3d.lod.solid`) fitted to the samples of its largest
  height-continuous region, with the DSM noise measured inside as the noise floor.
  An unsplit polygon keeps all three LoDs in ``{id}-{k}``; a split one has BuildingParts
  ``{id}-{k}-{j}`` (largest first) holding LoD1.3 and LoD2.2, sharing walls.
  Given the true ortho (optional), walls between parts of different heights follow its
  edges, and the taller roof's spill past them stays out of the lower roof's fit.

Every building is emitted. A part whose fitted roof cannot be made (no usable roof, a
degenerate envelope, a solid failing the geometric checks after quantization) gets a flat
LoD2.2 roof instead (its prism), so the LoD2.2 model covers the whole footprint; a part
with too few valid samples keeps only the lower LoDs. The building records why in
``lod_fallback_reason``; without valid samples at all only LOD0 remains. Attributes follow 3DBAG: ground and roof heights, roof type (of the largest
part) and plane count, per-LoD RMSE against the DSM (over all samples of the parts that
have the LoD), volume and validity, and the DSM nodata share inside the footprint.
"""

from __future__ import annotations

import numpy as np
import shapely

from ..cityjson.model import Building, BuildingPart, Solid
from ..cityjson.validate import check_geometry
from ..cityjson.writer import to_cityjson_dict
from ..raster import Raster
from .metrics import solid_volume
from .partition import SWEEP_STEP, partition, roof_cells, split_roof
from .roof import fit_roof
from .solid import envelope_solid, roof_height

__all__ = ["build_building", "build_buildings", "MIN_SAMPLES"]

MIN_SAMPLES = 8  # roof samples needed for any 3-D model
NOISE = 0.15  # metres: the least DSM noise the roof fits assume (the measured noise when larger)
# levels of cuts :func:`~lod3d.lod.partition.split_roof` makes in a height-continuous piece (up to
# 2**depth roofs): a stereo DSM blurs the height jumps between terraced houses, so a whole block
# of a dozen can be one region; three levels (eight roofs) left such blocks under-split
SPLIT_DEPTH = 6
LODS = ("12", "13", "22")


def build_buildings(footprints, dsm: Raster, dtm: Raster, lods=(0, 1, 2), progress=None,
                    ortho: Raster | None = None) -> list[Building]:
    """Build every footprint ``(id, polygon)``; ``progress`` wraps the iteration if given."""
    items = sorted(footprints, key=lambda t: str(t[0]))
    it = progress(items) if progress else items
    return [build_building(str(bid), poly, dsm, dtm, lods, ortho) for bid, poly in it]


def build_building(bid: str, footprint, dsm: Raster, dtm: Raster, lods=(0, 1, 2),
                   ortho: Raster | None = None) -> Building:
    """One building with all requested LoDs (LOD0 always) and its quality attributes."""
    footprint = shapely.make_valid(footprint) if not footprint.is_valid else footprint
    polys = sorted((_separate_courtyards(p) for p in shapely.get_parts(footprint)
                    if p.geom_type == "Polygon" and p.area > 0.25), key=lambda p: (-p.area, p.bounds))
    footprint = shapely.MultiPolygon(polys) if len(polys) > 1 else polys[0] if polys else footprint
    ground = _ground_height(footprint, dtm)
    acc = {"z": [], "nodata": 0, "reasons": [], "stats": {}}
    parts = []
    for k, poly in enumerate(polys):
        parts += _build_degrading(f"{bid}-{k}", poly, dsm, ground, lods, acc, ortho)
    building = Building(bid, footprint, ground, parts)
    _drop_invalid(building, acc)
    building.parts = [p for p in parts if p.solids]
    building.attributes = _attributes(building, acc)
    return building


def _separate_courtyards(poly, gap: float = 0.02):
    """``poly`` with each courtyard that touches the outline or another courtyard shrunk
    by ``gap`` metres (mitred corners): a polygon pinched at a point is valid, but its
    extrusion is not (four walls meet on the vertical edge there, a non-manifold shell)."""
    rings = [poly.exterior, *poly.interiors]
    if len(rings) == 1:
        return poly
    holes = []
    for i, ring in enumerate(rings[1:], start=1):
        hole = shapely.Polygon(ring)
        if any(ring.intersects(other) for j, other in enumerate(rings) if j != i):
            hole = hole.buffer(-gap, join_style="mitre")
        holes += [h.exterior for h in shapely.get_parts(hole) if h.geom_type == "Polygon" and h.area > 0]
    out = shapely.Polygon(poly.exterior, holes)
    return out if out.is_valid else poly


def _attributes(building, acc) -> dict:
    """Building attributes pooled over the solids that survived the checks."""
    z = np.concatenate(acc["z"]) if acc["z"] else np.zeros(0)
    total = len(z) + acc["nodata"]
    attrs: dict = {"h_ground": building.ground_z, "nodata_share": acc["nodata"] / total if total else 1.0,
                   "lod_fallback_reason": "; ".join(acc["reasons"]) or None}
    if len(z):
        attrs.update(zip(("h_roof_50p", "h_roof_70p", "h_roof_max"), map(float, np.percentile(z, [50, 70, 100]))))
    for key in LODS:
        kept = [acc["stats"][(p.id, s.lod)] for p in building.parts for s in p.solids if s.lod.replace(".", "") == key]
        if kept:
            sq, n, vol = np.sum(kept, axis=0)
            attrs[f"rmse_lod{key}"] = float(np.sqrt(sq / n))
            attrs[f"volume_lod{key}"] = float(vol)
            if key == "22":
                attrs["roof_samples_lod22"] = int(n)
    roofs = [p.attributes for p in building.parts if any(s.lod == "2.2" for s in p.solids)]
    if roofs:  # the type of the largest part with a roof (parts come largest first)
        attrs.update(roof_type=roofs[0]["roof_type"], roof_planes=sum(a["roof_planes"] for a in roofs))
    attrs["lod_max"] = max((s.lod for p in building.parts for s in p.solids), default="0")
    return attrs


def _build_degrading(pid, poly, dsm, ground, lods, acc, ortho=None) -> list[BuildingPart]:
    """:func:`_build_polygon`, retried at LoD1 then LoD0 when a model cannot be built.

    One odd footprint must not sink a city: the failure is recorded as the fallback
    reason and the building keeps the levels that could be built.
    """
    levels = [tuple(lods), tuple(v for v in lods if v < 2), (0,)]
    for level in dict.fromkeys(levels):  # distinct, in order
        saved = (len(acc["z"]), acc["nodata"], dict(acc["stats"]), len(acc["reasons"]))
        try:
            return _build_polygon(pid, poly, dsm, ground, level, acc, ortho)
        except Exception as exc:  # any failure degrades this building, never the run
            del acc["z"][saved[0]:], acc["reasons"][saved[3]:]
            acc["nodata"], acc["stats"] = saved[1], saved[2]
            acc["reasons"].append(f"{pid}: LoD{max(level)} model failed ({type(exc).__name__}: {exc})")
    return []


def _build_polygon(pid, poly, dsm, ground, lods, acc, ortho=None) -> list[BuildingPart]:
    """The BuildingParts of one footprint polygon; collects samples, reasons and per-solid
    statistics ``(sum of squared residuals, samples, volume)`` into ``acc``."""
    cells = roof_cells(poly, dsm, ortho=ortho)
    acc["nodata"] += cells.nodata
    z = cells.z
    if len(z) < MIN_SAMPLES:
        acc["reasons"].append(f"{pid}: {len(z)} valid DSM samples inside (need {MIN_SAMPLES})")
        return []
    acc["z"].append(z)
    h50, h70, hmax = np.percentile(z, [50, 70, 100])
    main = BuildingPart(pid, [], {"h_roof_50p": h50, "h_roof_70p": h70, "h_roof_max": hmax})
    if not np.isfinite(ground):
        acc["reasons"].append(f"{pid}: no DTM height around the footprint")
        return []
    if h70 <= ground + 0.5:
        acc["reasons"].append(f"{pid}: roof not above ground (70th percentile {h70:.2f} m, ground {ground:.2f} m)")
        return []
    if 1 in lods:
        _add_solid(main, "1.2", poly, np.array([[0.0, 0.0, h70]]), cells.x, cells.y, z, ground, acc)
    if 1 not in lods and 2 not in lods:
        return [main]
    pieces = [(piece, None) for piece, _ in partition(poly, cells)]
    if 2 in lods:
        pieces = _roof_pieces(poly, [piece for piece, _ in pieces], cells, ground, ortho)
    split = len(pieces) > 1
    parts = [main]
    for j, (piece, fit) in enumerate(pieces):
        part = BuildingPart(f"{pid}-{j}", [], {}) if split else main
        if split:
            parts.append(part)
        inside = shapely.contains_xy(piece, cells.x, cells.y)
        x, y, zp = cells.x[inside], cells.y[inside], z[inside]
        if len(zp) < MIN_SAMPLES:
            acc["reasons"].append(f"{part.id}: {len(zp)} valid DSM samples inside (need {MIN_SAMPLES})")
            continue
        if split:
            part.attributes.update(zip(("h_roof_50p", "h_roof_70p", "h_roof_max"),
                                       map(float, np.percentile(zp, [50, 70, 100]))))
        if 1 in lods and not split:  # the LoD1.3 prism of an unsplit polygon is its LoD1.2 prism
            _copy_prism(part, acc)
        elif 1 in lods:
            _add_solid(part, "1.3", piece, np.array([[0.0, 0.0, np.percentile(zp, 70)]]), x, y, zp, ground, acc)
        if 2 in lods:
            if fit is not None:
                try:
                    planes = _add_solid(part, "2.2", piece, fit.planes, x, y, zp, ground, acc)
                    part.attributes.update(roof_type=fit.roof_type, roof_planes=len(planes))
                    continue
                except Exception as exc:  # a degenerate roof: the flat one below stands in
                    acc["reasons"].append(f"{part.id}: LoD2.2 roof failed ({type(exc).__name__}: {exc}), flat instead")
            else:
                acc["reasons"].append(f"{part.id}: no roof fits the DSM, flat instead")
            _add_solid(part, "2.2", piece, np.array([[0.0, 0.0, np.percentile(zp, 70)]]), x, y, zp, ground, acc)
            part.attributes.update(roof_type="flat", roof_planes=1)
    return parts


def _roof_pieces(poly, pieces, cells, ground, ortho=None) -> list:
    """``[(piece, RoofFit | None)]``, largest first: the height-jump ``pieces`` of ``poly``
    cut further at their inside corners where one roof cannot fit them, each with its roof;
    or, when cuts at the inside corners of ``poly`` alone explain a roof with height jumps
    better (walls continuing the outline's edges, as on most annexes), those instead.

    The fits assume the DSM noise measured inside (at least ``NOISE``); corners are cut
    where a roof misses its samples by more than 1.25 times that noise (at least
    ``2 * NOISE``), up to ``SPLIT_DEPTH`` levels of cuts."""
    noise = max(NOISE, cells.noise)
    tol = max(2 * NOISE, 1.25 * noise)
    spill = []
    cuts = [cut for piece in pieces for cut in split_roof(
        piece, *_fit_samples(piece, cells), ground, noise, depth=SPLIT_DEPTH, tol=tol, sweep_step=SWEEP_STEP,
        ortho=ortho, spill=spill)]
    out = _final_fits(cuts, cells, ground, noise, _spill_mask(cells, spill))
    score, worst = _score(out, cells, noise)
    if len(pieces) > 1 and worst > tol:
        corners = _final_fits(split_roof(poly, cells.x, cells.y, cells.z, ground, noise, tol=tol), cells, ground, noise)
        if _score(corners, cells, noise)[0] < score:
            out = corners
    return sorted(out, key=lambda t: (-t[0].area, t[0].bounds))


def _final_fits(pieces, cells, ground, noise, spill=None) -> list:
    """``[(piece, RoofFit)]`` with the data-driven candidate joining where the primitives
    do not explain a piece's roof (RMSE over ``2 * noise``), fitted without the samples
    where ``spill`` (a taller neighbour's roof carried over the wall)."""
    return [(piece, fit if fit is not None and fit.rmse <= 2 * noise
             else fit_roof(piece, *_fit_samples(piece, cells, spill), ground, noise)) for piece, fit in pieces]


def _score(pieces, cells, noise) -> tuple[float, float]:
    """BIC of roofs ``[(piece, RoofFit | None)]`` over all roof samples of each piece (as
    :func:`lod3d.lod.roof.fit_roof` scores one roof) and the largest RMSE of a piece. A
    piece without a fit is scored as built: flat at the 70th percentile of its samples
    (one parameter; a 5 m2 sliver without a roof must not void a partition whose other
    pieces fit to the noise); a piece without samples adds nothing."""
    total, worst = 0.0, 0.0
    for piece, fit in pieces:
        m = shapely.contains_xy(piece, cells.x, cells.y)
        n = int(m.sum())
        if n == 0:
            continue
        if fit is None:
            mse, params = float(np.mean((cells.z[m] - np.percentile(cells.z[m], 70)) ** 2)), 1
        else:
            mse = float(np.mean((roof_height(fit.planes, cells.x[m], cells.y[m]) - cells.z[m]) ** 2))
            params = 3 * len(fit.planes)
        total += n * np.log(mse + noise**2) + params * np.log(n)
        worst = max(worst, np.sqrt(mse))
    return total, worst


def _fit_samples(piece, cells, spill=None):
    """The roof samples ``(x, y, z)`` a roof over ``piece`` is fitted to: those of its
    largest height-continuous region when that holds at least half of them (chimneys,
    dormers and neighbours' overhangs left out), else all inside; without those where
    ``spill``."""
    m = shapely.contains_xy(piece, cells.x, cells.y)
    if spill is not None:
        m &= ~spill
    labels = cells.label[m]
    if labels.max(initial=0) > 0:
        main = np.bincount(labels[labels > 0]).argmax()
        own = labels == main
        if own.sum() >= max(MIN_SAMPLES, 0.5 * m.sum()):
            m[m] = own
    return cells.x[m], cells.y[m], cells.z[m]


def _spill_mask(cells, spill: list) -> np.ndarray | None:
    """Which of ``cells``' samples lie at the points ``spill`` (arrays of ``(x, y)`` rows,
    taken from the samples themselves); None when there are none."""
    if not spill:
        return None
    points = np.concatenate(spill)
    return np.isin(cells.x + 1j * cells.y, points[:, 0] + 1j * points[:, 1])


def _add_solid(part, lod, poly, planes, x, y, z, ground, acc) -> np.ndarray:
    """Append the solid of the envelope of ``planes`` over ``poly``; record its RMSE
    against the samples ``(x, y, z)``, volume and validity (True until the building's
    check says otherwise). Returns the planes used (slivers dropped)."""
    solid, used = envelope_solid(poly, planes, ground, lod)
    key = lod.replace(".", "")
    sq, vol = float(np.sum((roof_height(used, x, y) - z) ** 2)), solid_volume(solid)
    part.solids.append(solid)
    part.attributes.update({f"rmse_lod{key}": float(np.sqrt(sq / len(z))), f"volume_lod{key}": vol,
                            f"val_lod{key}": True})
    acc["stats"][(part.id, lod)] = (sq, len(z), vol)
    return used


def _copy_prism(part, acc) -> None:
    """Give ``part`` a LoD1.3 solid equal to its LoD1.2 one."""
    if not part.solids:
        return
    part.solids.append(Solid("1.3", part.solids[0].surfaces))
    a = part.attributes
    a.update(rmse_lod13=a["rmse_lod12"], volume_lod13=a["volume_lod12"], val_lod13=True)
    acc["stats"][(part.id, "1.3")] = acc["stats"][(part.id, "1.2")]


def _drop_invalid(building, acc) -> None:
    """Check all solids of ``building`` at once after CityJSON quantization; a solid that
    fails is removed (its part keeps the lower LoDs) and the reason recorded."""
    if not any(p.solids for p in building.parts):
        return
    errors = check_geometry(to_cityjson_dict([building], crs_epsg=4978))
    bad = set()
    for e in errors:
        oid, _, rest = e.where.partition(" geometry ")
        if "(lod " in rest:
            bad.add((oid, rest.split("(lod ")[1].split(")")[0]))
    for part in building.parts:
        for solid in [s for s in part.solids if (part.id, s.lod) in bad]:
            part.solids.remove(solid)
            key = solid.lod.replace(".", "")
            for k in (f"rmse_lod{key}", f"volume_lod{key}"):
                part.attributes.pop(k, None)
            part.attributes[f"val_lod{key}"] = False
            prism = next((s for s in part.solids if s.lod in ("1.3", "1.2") and (part.id, s.lod) not in bad), None)
            if solid.lod == "2.2" and prism is not None:  # the part's valid prism stands in as a flat roof
                part.solids.append(Solid("2.2", prism.surfaces))
                pk = prism.lod.replace(".", "")
                part.attributes.update(rmse_lod22=part.attributes[f"rmse_lod{pk}"],
                                       volume_lod22=part.attributes[f"volume_lod{pk}"], val_lod22=True,
                                       roof_type="flat", roof_planes=1)
                acc["stats"][(part.id, "2.2")] = acc["stats"][(part.id, prism.lod)]
                acc["reasons"].append(f"{part.id}: LoD2.2 solid failed the geometric checks, LoD{prism.lod} prism "
                                      "as a flat roof instead")
                continue
            if solid.lod == "2.2":
                part.attributes.pop("roof_type", None)
                part.attributes.pop("roof_planes", None)
            acc["reasons"].append(f"{part.id}: LoD{solid.lod} solid failed the geometric checks")


def _window(poly, raster: Raster, pad: float = 0.0):
    """Row/col ranges of ``raster`` cells covering the polygon's bounds (+ pad)."""
    inv = ~raster.transform
    x0, y0, x1, y1 = poly.bounds
    c0, r0 = inv @ (x0 - pad, y1 + pad)
    c1, r1 = inv @ (x1 + pad, y0 - pad)
    h, w = raster.shape
    r0, c0 = max(0, int(np.floor(r0))), max(0, int(np.floor(c0)))
    r1, c1 = min(h, int(np.ceil(r1))), min(w, int(np.ceil(c1)))
    return r0, r1, c0, c1


def _cells_inside(poly, raster: Raster, pad: float = 0.0):
    r0, r1, c0, c1 = _window(poly, raster, pad)
    if r1 <= r0 or c1 <= c0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    rr, cc = np.mgrid[r0:r1, c0:c1]
    x, y = raster.transform @ (cc.ravel() + 0.5, rr.ravel() + 0.5)
    target = poly.buffer(pad) if pad else poly
    inside = shapely.contains_xy(target, x, y)
    data = raster.data[-2:][0] if raster.data.ndim == 3 else raster.data
    return x[inside], y[inside], data[rr.ravel()[inside], cc.ravel()[inside]].astype(float)


def _ground_height(footprint, dtm: Raster) -> float:
    """10th percentile of the DTM within 1 m around the footprint (NaN-safe)."""
    _, _, z = _cells_inside(footprint, dtm, pad=1.0)
    z = z[np.isfinite(z)]
    if dtm.nodata is not None and np.isfinite(dtm.nodata):
        z = z[z != dtm.nodata]
    if not len(z):
        return float("nan")
    return float(np.percentile(z, 10))
