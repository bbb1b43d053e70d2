"""Validate a CityJSON document: the official schema plus geometric checks.

Two layers, like cjval + val3dity:

* **schema** — jsonschema (Draft 7) against ``cityjson.min.schema.json`` (the official
  CityJSON 2.0 schema; a copy ships in ``lod3d/data``, MIT licensed, any other path can be
  given). It catches wrong lod strings, a missing ``transform``, unknown semantic types.
* **geometry** — the checks val3dity makes on solids, reported with its error codes:
  101 too few points, 102 consecutive points same, 104 ring self-intersection,
  203 non-planar polygon (distance to plane > ``planar_tol``), 301 too few polygons,
  302 shell not closed, 303 non-manifold edge, 305 multiple connected components,
  307 wrong orientation (inconsistent across an edge, or inward normals);
  plus the dataset checks of cjval: duplicate and unused vertices, out-of-range vertex
  indices, semantics arrays that do not match the boundaries, and parent/child links that
  are missing or not reciprocal.

The shell checks work on shared vertex indices: in a closed 2-manifold shell every
directed edge (a, b) occurs exactly once and its reverse (b, a) exactly once.
CityJSONSeq files (``.jsonl``) are checked feature by feature under their header.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from itertools import chain
from pathlib import Path

import numpy as np
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..errors import InputError

__all__ = ["ValidationError", "validate_file", "validate_document", "check_geometry", "check_schema",
           "default_schema_path"]

VAL3DITY_NAMES = {
    101: "TOO_FEW_POINTS", 102: "CONSECUTIVE_POINTS_SAME", 104: "RING_SELF_INTERSECTION",
    203: "NON_PLANAR_POLYGON_DISTANCE_PLANE", 301: "TOO_FEW_POLYGONS", 302: "SHELL_NOT_CLOSED",
    303: "NON_MANIFOLD_CASE", 305: "MULTIPLE_CONNECTED_COMPONENTS", 307: "POLYGON_WRONG_ORIENTATION",
}


@dataclass(frozen=True)
class ValidationError:
    """One problem: a val3dity code (int) or a cjval-style name (str), where, and what."""

    code: int | str
    where: str
    message: str

    def __str__(self) -> str:
        name = VAL3DITY_NAMES.get(self.code, "") if isinstance(self.code, int) else ""
        code = f"{self.code} {name}".strip()
        return f"[{code}] {self.where}: {self.message}"


def default_schema_path() -> Path:
    """The CityJSON 2.0 min schema shipped with lod3d."""
    return Path(str(resources.files("lod3d") / "data" / "cityjson.min.schema.json"))


def validate_file(path, schema: str | Path | None = None, planar_tol: float = 0.01) -> list[ValidationError]:
    """All problems of a CityJSON (``.json``) or CityJSONSeq (``.jsonl``) file; empty if valid."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".jsonl":
            lines = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            lines = [json.loads(text)]
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not lines or not isinstance(lines[0], dict):
        raise InputError(f"{path}: empty or not a JSON object")
    if path.suffix != ".jsonl":
        return validate_document(lines[0], schema, planar_tol)
    header, errors = lines[0], []
    if header.get("CityObjects"):
        errors.append(ValidationError("cityjsonseq", "header", "the first line must have no CityObjects"))
    for n, feature in enumerate(lines[1:], start=2):
        if feature.get("type") != "CityJSONFeature":
            errors.append(ValidationError("cityjsonseq", f"line {n}", "not a CityJSONFeature"))
            continue
        doc = {**header, "CityObjects": feature.get("CityObjects", {}), "vertices": feature.get("vertices", [])}
        errors += [ValidationError(e.code, f"line {n}: {e.where}", e.message)
                   for e in validate_document(doc, schema, planar_tol)]
    return errors


def validate_document(doc: dict, schema: str | Path | None = None, planar_tol: float = 0.01) -> list[ValidationError]:
    """Schema errors, then (if the structure allows it) geometric errors."""
    errors = check_schema(doc, schema)
    if errors:
        return errors  # geometry checks assume a well-formed document
    return check_geometry(doc, planar_tol)


@lru_cache(maxsize=4)
def _validator(schema_path: str) -> "_SchemaValidator":
    try:
        schema = json.loads(Path(schema_path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{schema_path}: cannot read the schema ({exc})") from None
    return _SchemaValidator(schema)


class _SchemaValidator:
    """The official schema, each CityObject checked against its own type's branch only.

    The schema validates a CityObject with ``oneOf`` over its ~35 object types, so a plain
    validator checks every object (geometry included) once per type: ~80 ms per building,
    hours for a city. Branches are told apart by their ``type`` constant, so checking only
    the branch whose constant matches the object's ``type`` is the same test, ~35× faster.
    Objects of a type no branch names (e.g. extensions) fall back to the full ``oneOf``.
    """

    def __init__(self, schema: dict):
        import jsonschema

        objects = schema.get("properties", {}).get("CityObjects", {})
        one_of = objects.get("additionalProperties", {}).get("oneOf")
        self.by_type, self.any_object = {}, None
        if one_of is None:  # not the layout we know: validate plainly
            self.root = jsonschema.Draft7Validator(schema)
            return
        for branch in one_of:
            const = _type_const(branch)
            if const is not None and const not in self.by_type:
                self.by_type[const] = jsonschema.Draft7Validator(branch)
        self.any_object = jsonschema.Draft7Validator(objects["additionalProperties"])
        skeleton = json.loads(json.dumps(schema))
        skeleton["properties"]["CityObjects"]["additionalProperties"] = {"type": "object"}
        self.root = jsonschema.Draft7Validator(skeleton)

    def iter_errors(self, doc):
        yield from self.root.iter_errors(doc)
        objects = doc.get("CityObjects") if isinstance(doc, dict) else None
        if self.any_object is None or not isinstance(objects, dict):
            return
        for oid, obj in objects.items():
            kind = obj.get("type") if isinstance(obj, dict) else None
            validator = self.by_type.get(kind, self.any_object) if isinstance(kind, str) else self.any_object
            for err in _boundary_errors(obj):
                err.path.extendleft(reversed(["CityObjects", oid]))
                yield err
            for err in validator.iter_errors(_with_short_arrays(obj)):
                err.path.extendleft(reversed(["CityObjects", oid]))
                yield err


# Nesting depth of ``boundaries`` per geometry type (CityJSON 2.0 §3.3).
_DEPTH = {"MultiPoint": 1, "MultiLineString": 2, "MultiSurface": 3, "CompositeSurface": 3, "Solid": 4,
          "MultiSolid": 5, "CompositeSolid": 5, "GeometryInstance": 1}


def _with_short_arrays(obj):
    """``obj`` with every geometry's ``boundaries`` and semantic ``values`` cut to their first
    element at each nesting level.

    The schema checks these arrays' nesting and leaf types with ``oneOf`` over geometry
    types, which makes it re-walk every vertex index several times; the structure is checked
    on the first element here and every leaf by :func:`_boundary_errors`, exactly.
    """
    if not isinstance(obj, dict) or not isinstance(obj.get("geometry"), list):
        return obj
    geoms = []
    for g in obj["geometry"]:
        if isinstance(g, dict):
            g = dict(g)
            if "boundaries" in g:
                g["boundaries"] = _first_only(g["boundaries"])
            if isinstance(g.get("semantics"), dict) and "values" in g["semantics"]:
                g["semantics"] = dict(g["semantics"], values=_first_only(g["semantics"]["values"]))
        geoms.append(g)
    return dict(obj, geometry=geoms)


def _first_only(x):
    return [_first_only(x[0])] if isinstance(x, list) and x else x


def _boundary_errors(obj):
    """Schema errors of the arrays :func:`_with_short_arrays` cut: every leaf of a geometry's
    ``boundaries`` must be a vertex index (integer ≥ 0) at its type's nesting depth."""
    import jsonschema

    if not isinstance(obj, dict) or not isinstance(obj.get("geometry"), list):
        return
    for k, g in enumerate(obj["geometry"]):
        depth = _DEPTH.get(g.get("type")) if isinstance(g, dict) else None
        if depth is None or "boundaries" not in g:
            continue  # the schema reports unknown types and missing members
        bad = _bad_leaf(g["boundaries"], depth)
        if bad is not None:
            yield jsonschema.ValidationError(f"boundaries: {bad!r} is not a vertex index at nesting depth {depth}",
                                             path=["geometry", k, "boundaries"])


def _bad_leaf(x, depth: int):
    """The first element of ``x`` that is not a list down to ``depth`` levels of non-negative ints."""
    stack = [(x, 0)]
    while stack:
        node, level = stack.pop()
        if level < depth:
            if not isinstance(node, list):
                return node
            stack.extend((child, level + 1) for child in node)
        elif isinstance(node, bool) or not isinstance(node, int) or node < 0:
            return node
    return None


def _type_const(branch) -> str | None:
    """The ``{"properties": {"type": {"const": X}}}`` constant somewhere in a branch."""
    if isinstance(branch, dict):
        const = branch.get("properties", {}).get("type", {}).get("const")
        if isinstance(const, str):
            return const
        for sub in branch.get("allOf", []):
            found = _type_const(sub)
            if found is not None:
                return found
    return None


def check_schema(doc: dict, schema: str | Path | None = None) -> list[ValidationError]:
    """Errors from the official JSON schema (Draft 7)."""
    validator = _validator(str(schema or default_schema_path()))
    out = []
    for err in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        where = "/".join(map(str, err.absolute_path)) or "(root)"
        # oneOf over CityObject types hides the real cause: report the deepest sub-error
        best = err
        while best.context:
            best = max(best.context, key=lambda e: len(e.absolute_path))
        msg = best.message if len(best.message) < 300 else best.message[:300] + "..."
        out.append(ValidationError("schema", where, msg))
    return out


# ------------------------------------------------------------------------------ pieces

def _all_indices(boundaries) -> np.ndarray:
    flat: list[int] = []

    def walk(x):
        if isinstance(x, list):
            for y in x:
                walk(y)
        else:
            flat.append(x)

    walk(boundaries)
    return np.asarray(flat, dtype=np.int64)


def _check_links(oid, obj, objects) -> list[ValidationError]:
    out = []
    for child in obj.get("children", []):
        if child not in objects:
            out.append(ValidationError("parents_children", oid, f"child {child!r} does not exist"))
        elif oid not in objects[child].get("parents", []):
            out.append(ValidationError("parents_children", oid, f"child {child!r} does not name it as parent"))
    for parent in obj.get("parents", []):
        if parent not in objects:
            out.append(ValidationError("parents_children", oid, f"parent {parent!r} does not exist"))
        elif oid not in objects[parent].get("children", []):
            out.append(ValidationError("parents_children", oid, f"parent {parent!r} does not list it as child"))
    if obj.get("type") == "BuildingPart" and not obj.get("parents"):
        out.append(ValidationError("parents_children", oid, "BuildingPart without a parent"))
    return out


def _check_semantics(where, geom) -> list[ValidationError]:
    sem = geom.get("semantics")
    if sem is None:
        return []
    surfaces, values = sem.get("surfaces", []), sem.get("values")
    b = geom.get("boundaries", [])
    gtype = geom.get("type")
    if gtype == "Solid":
        shape, vals = [len(shell) for shell in b], values
    elif gtype in ("MultiSurface", "CompositeSurface"):
        shape, vals = [len(b)], [values]
    else:
        return []
    if vals is None:
        return []
    if not isinstance(vals, list) or [len(v) if isinstance(v, list) else -1 for v in vals] != shape:
        return [ValidationError("semantics_arrays", where, "semantics values do not match the boundaries")]
    bad = [v for shell in vals for v in shell if v is not None and not (0 <= v < len(surfaces))]
    if bad:
        return [ValidationError("semantics_arrays", where, f"semantic value {bad[0]} points to no surface")]
    return []


def check_geometry(doc: dict, planar_tol: float = 0.01) -> list[ValidationError]:
    """Geometric and dataset checks (see the module docstring); empty list when valid.

    Every polygon and shell of the document is checked in one batch of array operations
    (:func:`_check_polygons`, :func:`_check_shells`), so a city costs a few NumPy calls
    per check, not a Python loop per face.
    """
    errors: list[ValidationError] = []
    tf = doc.get("transform") or {"scale": [1, 1, 1], "translate": [0, 0, 0]}
    raw = np.asarray(doc.get("vertices", []), dtype=np.int64).reshape(-1, 3)
    verts = raw * np.asarray(tf["scale"], float) + np.asarray(tf["translate"], float)
    n = len(verts)
    if n:
        uniq = np.unique(raw, axis=0)
        if len(uniq) != n:
            errors.append(ValidationError("duplicate_vertices", "vertices", f"{n - len(uniq)} duplicate vertices"))
    used = np.zeros(n, bool)
    owners = []  # (where, polygons, inner shell?) with None for a surface collection
    objects = doc.get("CityObjects", {})
    for oid in sorted(objects):
        obj = objects[oid]
        errors += _check_links(oid, obj, objects)
        for gi, geom in enumerate(obj.get("geometry", [])):
            where = f"{oid} geometry {gi} (lod {geom.get('lod')})"
            idx = _all_indices(geom.get("boundaries", []))
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                errors.append(ValidationError("vertex_index", where, f"vertex index out of range 0..{n - 1}"))
                continue
            used[idx] = True
            errors += _check_semantics(where, geom)
            gtype = geom.get("type")
            if gtype == "Solid":
                owners += [(f"{where} shell {si}", shell, si > 0) for si, shell in enumerate(geom["boundaries"])]
            elif gtype == "MultiSolid" or gtype == "CompositeSolid":
                owners += [(f"{where} solid {k} shell {si}", shell, si > 0)
                           for k, solid in enumerate(geom["boundaries"]) for si, shell in enumerate(solid)]
            elif gtype in ("MultiSurface", "CompositeSurface"):
                owners.append((where, geom["boundaries"], None))
    errors += _check_owners(owners, verts, planar_tol)
    if n and not used.all():
        errors.append(ValidationError("unused_vertices", "vertices", f"{int((~used).sum())} vertices not used"))
    return errors


def _check_owners(owners, verts, planar_tol) -> list[ValidationError]:
    """Polygon checks on every polygon of every owner (shell or surface collection); then
    the shell checks on the shells whose polygons all passed."""
    polys = [(o, fi, surface) for o, (_, surfaces, _) in enumerate(owners) for fi, surface in enumerate(surfaces)]
    out: list[list[ValidationError]] = [[] for _ in owners]
    for pi, code, ri, msg in _check_polygons([p for _, _, p in polys], verts, planar_tol):
        o, fi, _ = polys[pi]
        where, _, inner = owners[o]
        ring = "" if ri is None else f" ring {ri}"
        out[o].append(ValidationError(code, f"{where} {'surface' if inner is None else 'face'} {fi}{ring}", msg))
    shells = []
    for o, (where, shell, inner) in enumerate(owners):
        if inner is None or out[o]:
            continue
        if len(shell) < 4:
            out[o].append(ValidationError(301, where, f"{len(shell)} polygons"))
        else:
            shells.append(o)
    for o, found in zip(shells, _check_shells([owners[o][1] for o in shells], [owners[o][2] for o in shells], verts)):
        out[o] += [ValidationError(code, owners[o][0], msg) for code, msg in found]
    return [e for errs in out for e in errs]


def _rings_flat(polys):
    """Flattened rings of ``polys`` (lists of rings of vertex indices): vertex indices, the
    ring of each vertex, each ring's polygon, index within its polygon, start and length,
    and the position of each vertex's successor in its ring."""
    poly, ridx, rings = [], [], []
    for pi, surface in enumerate(polys):
        for ri, ring in enumerate(surface):
            poly.append(pi)
            ridx.append(ri)
            rings.append(ring)
    lens = np.fromiter(map(len, rings), np.int64, len(rings))
    idx = np.fromiter(chain.from_iterable(rings), np.int64, int(lens.sum()))
    start = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    ring_of = np.repeat(np.arange(len(rings)), lens)
    pos = np.arange(len(idx))
    nxt = np.where(pos + 1 == (start + lens)[ring_of], start[ring_of], pos + 1) if len(idx) else pos
    return idx, ring_of, np.asarray(poly, np.int64), np.asarray(ridx, np.int64), start, lens, nxt


def _check_polygons(polys, verts, planar_tol) -> list[tuple[int, int, int | None, str]]:
    """Ring checks (101, 102, 104) and planarity (203) of all ``polys`` (lists of rings)
    at once: ``(polygon, code, ring or None, message)`` per problem, by polygon.

    A polygon with a ring under three points or with repeated consecutive points gets only
    those errors; one whose outer ring has zero area only 104. Planarity is the largest
    distance of its vertices to the least-squares plane (smallest eigenvector of the
    covariance, as the SVD of the centred points); self-intersection is tested per ring in
    the plane that drops the polygon's dominant normal axis.
    """
    idx, ring_of, face, ridx, _, lens, nxt = _rings_flat(polys)
    nf, nr = len(polys), len(lens)
    if not nr:
        return []
    short = lens < 3
    same = np.bincount(ring_of, weights=idx == idx[nxt], minlength=nr) > 0
    out = []
    for k in np.nonzero(short | same)[0]:
        msg = (101, f"{lens[k]} points") if short[k] else (102, "two consecutive points are the same")
        out.append((int(face[k]), msg[0], int(ridx[k]), msg[1]))
    checked = np.ones(nf, bool)
    checked[face[short | same]] = False
    # Newell normal of each polygon's outer ring
    p, q = verts[idx], verts[idx[nxt]]
    terms = np.column_stack([(p[:, 1] - q[:, 1]) * (p[:, 2] + q[:, 2]), (p[:, 2] - q[:, 2]) * (p[:, 0] + q[:, 0]),
                             (p[:, 0] - q[:, 0]) * (p[:, 1] + q[:, 1])])
    ring_normal = np.zeros((nr, 3))
    np.add.at(ring_normal, ring_of, terms)
    normal = np.zeros((nf, 3))
    normal[face[ridx == 0]] = ring_normal[ridx == 0]
    collapsed = checked & ~np.any(normal != 0, axis=1)
    out += [(int(fi), 104, 0, "ring has zero area (collapsed)") for fi in np.nonzero(collapsed)[0]]
    checked &= ~collapsed
    vf = face[ring_of]
    use = checked[vf]
    fu, pu = vf[use], p[use]
    cnt = np.maximum(np.bincount(fu, minlength=nf), 1)
    centroid = np.column_stack([np.bincount(fu, weights=pu[:, j], minlength=nf) for j in range(3)]) / cnt[:, None]
    d = pu - centroid[fu]
    cov = np.zeros((nf, 3, 3))
    for i in range(3):
        for j in range(i, 3):
            cov[:, i, j] = cov[:, j, i] = np.bincount(fu, weights=d[:, i] * d[:, j], minlength=nf)
    plane = np.zeros((nf, 3))
    plane[checked] = np.linalg.eigh(cov[checked])[1][:, :, 0]
    dist = np.zeros(nf)
    np.maximum.at(dist, fu, np.abs(np.einsum("ij,ij->i", d, plane[fu])))
    out += [(int(fi), 203, None, f"a vertex is {dist[fi]:.4f} m from the plane (tolerance {planar_tol})")
            for fi in np.nonzero(checked & (dist > planar_tol))[0]]
    rsel = np.nonzero(checked[face])[0]
    if len(rsel):
        vsel = use  # the vertices of the rings of checked polygons, in ring order
        local = np.searchsorted(rsel, ring_of[vsel])
        keep = np.array([[1, 2], [0, 2], [0, 1]])[np.argmax(np.abs(normal), axis=1)[face[rsel]]]
        xy = np.take_along_axis(pu, keep[local], axis=1)
        simple = shapely.is_simple(shapely.linearrings(xy, indices=local))
        out += [(int(face[k]), 104, int(ridx[k]), "ring self-intersects") for k in rsel[~simple]]
    return sorted(out, key=lambda e: e[0])


def _check_shells(shells, inner, verts) -> list[list[tuple[int, str]]]:
    """Closure (302), manifoldness (303), orientation across edges and of the whole shell
    (307) and connectivity (305) of ``shells`` whose polygons passed their own checks, all
    at once: ``(code, message)`` lists per shell.

    In a closed 2-manifold shell every undirected edge occurs exactly twice, once in each
    direction; edges are grouped by ``(shell, lower vertex, higher vertex)``.
    """
    if not shells:
        return []
    polys = [surface for shell in shells for surface in shell]
    shell_of_face = np.repeat(np.arange(len(shells)), [len(s) for s in shells])
    face_start = np.concatenate([[0], np.cumsum([len(s) for s in shells])[:-1]])
    a, ring_of, face, _, start, lens, nxt = _rings_flat(polys)
    b = a[nxt]
    face = face[ring_of]
    shell = shell_of_face[face]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    pos = np.arange(len(a))
    order = np.lexsort((pos, hi, lo, shell))  # by shell and undirected edge, then in shell order
    s_o, lo_o, hi_o = shell[order], lo[order], hi[order]
    first = np.ones(len(order), bool)
    first[1:] = (s_o[1:] != s_o[:-1]) | (lo_o[1:] != lo_o[:-1]) | (hi_o[1:] != hi_o[:-1])
    group = np.cumsum(first) - 1
    count = np.bincount(group)
    forward = np.bincount(group, weights=a[order] < b[order])
    gstart = np.nonzero(first)[0]
    out: list[list[tuple[int, str]]] = [[] for _ in shells]
    for g in np.nonzero((count != 2) | (forward != 1))[0]:
        e = order[gstart[g]:gstart[g] + count[g]]
        si = int(shell[e[0]])
        if len(out[si]) >= 20:
            continue
        ea, eb, faces = lo[e[0]], hi[e[0]], face[e] - face_start[si]
        if count[g] == 1:
            out[si].append((302, f"edge {ea}-{eb} of face {faces[0]} has no neighbour (hole in the shell)"))
        elif count[g] > 2:
            out[si].append((303, f"edge {ea}-{eb} is shared by {count[g]} faces"))
        else:
            out[si].append((307, f"faces {faces[0]} and {faces[1]} run edge {ea}-{eb} the same way"))
    good = np.array([not o for o in out])
    # connected components over shared edges (pairs of consecutive edges in a group of two)
    pair = first[:-1] & (count[group[:-1]] == 2)
    fa, fb = face[order[:-1][pair]], face[order[1:][pair]]
    graph = coo_matrix((np.ones(len(fa)), (fa, fb)), shape=(len(polys),) * 2)
    comp = connected_components(graph, directed=False)[1]
    ncomp = np.bincount(shell_of_face[np.unique(comp, return_index=True)[1]], minlength=len(shells))
    # outward orientation: signed volume (divergence theorem over fan triangles) > 0
    origin = verts[[s[0][0][0] for s in shells]]
    pts = verts[a] - origin[shell]
    k = pos - start[ring_of]
    fan = (k >= 1) & (k <= lens[ring_of] - 2)
    p0, p1, p2 = pts[start[ring_of]][fan], pts[fan], pts[nxt][fan]
    six = (p0[:, 0] * (p1[:, 1] * p2[:, 2] - p1[:, 2] * p2[:, 1]) + p0[:, 1] * (p1[:, 2] * p2[:, 0] - p1[:, 0] * p2[:, 2])
           + p0[:, 2] * (p1[:, 0] * p2[:, 1] - p1[:, 1] * p2[:, 0]))
    vol = np.bincount(shell[fan], weights=six, minlength=len(shells)) / 6.0
    for si in np.nonzero(good)[0]:
        if ncomp[si] > 1:
            out[si].append((305, f"{ncomp[si]} separate components"))
        elif (vol[si] <= 0) != inner[si]:
            out[si].append((307, f"normals point {'outwards' if inner[si] else 'inwards'} (signed volume {vol[si]:.3f} m3)"))
    return out
