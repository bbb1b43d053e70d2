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
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import shapely

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
            for err in validator.iter_errors(obj):
                err.path.extendleft(reversed(["CityObjects", oid]))
                yield err


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


def check_geometry(doc: dict, planar_tol: float = 0.01) -> list[ValidationError]:
    """Geometric and dataset checks (see the module docstring); empty list when valid."""
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
                for si, shell in enumerate(geom["boundaries"]):
                    errors += _check_shell(f"{where} shell {si}", shell, verts, planar_tol, inner=si > 0)
            elif gtype == "MultiSolid" or gtype == "CompositeSolid":
                for k, solid in enumerate(geom["boundaries"]):
                    for si, shell in enumerate(solid):
                        errors += _check_shell(f"{where} solid {k} shell {si}", shell, verts, planar_tol, inner=si > 0)
            elif gtype in ("MultiSurface", "CompositeSurface"):
                for fi, surface in enumerate(geom["boundaries"]):
                    errors += _check_polygon(f"{where} surface {fi}", surface, verts, planar_tol)
    if n and not used.all():
        errors.append(ValidationError("unused_vertices", "vertices", f"{int((~used).sum())} vertices not used"))
    return errors


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


def _check_polygon(where, surface, verts, planar_tol) -> list[ValidationError]:
    """Ring checks (101, 102, 104) and planarity (203) of one polygon (list of rings)."""
    out = []
    pts_all = []
    for ri, ring in enumerate(surface):
        rw = f"{where} ring {ri}"
        if len(ring) < 3:
            out.append(ValidationError(101, rw, f"{len(ring)} points"))
            continue
        if any(a == b for a, b in zip(ring, ring[1:] + ring[:1])):
            out.append(ValidationError(102, rw, "two consecutive points are the same"))
            continue
        pts_all.append(verts[ring])
    if out or not pts_all:
        return out
    pts = np.concatenate(pts_all)
    normal = _newell(pts_all[0])
    if np.linalg.norm(normal) == 0:
        out.append(ValidationError(104, f"{where} ring 0", "ring has zero area (collapsed)"))
        return out
    centroid = pts.mean(axis=0)
    # best-fit plane (smallest singular vector) for the distance test
    _, _, vt = np.linalg.svd(pts - centroid, full_matrices=False)
    dist = np.abs((pts - centroid) @ vt[-1])
    if dist.max() > planar_tol:
        out.append(ValidationError(203, where, f"a vertex is {dist.max():.4f} m from the plane (tolerance {planar_tol})"))
    # self-intersection in the plane: drop the dominant normal axis
    axis = int(np.argmax(np.abs(normal)))
    keep = [i for i in range(3) if i != axis]
    for ri, ring in enumerate(pts_all):
        if not shapely.LinearRing(ring[:, keep]).is_simple:
            out.append(ValidationError(104, f"{where} ring {ri}", "ring self-intersects"))
    return out


def _newell(ring: np.ndarray) -> np.ndarray:
    nxt = np.roll(ring, -1, axis=0)
    return np.array([
        np.sum((ring[:, 1] - nxt[:, 1]) * (ring[:, 2] + nxt[:, 2])),
        np.sum((ring[:, 2] - nxt[:, 2]) * (ring[:, 0] + nxt[:, 0])),
        np.sum((ring[:, 0] - nxt[:, 0]) * (ring[:, 1] + nxt[:, 1])),
    ])


def _check_shell(where, shell, verts, planar_tol, inner=False) -> list[ValidationError]:
    """Polygon checks on every face, then closure, manifoldness, connectivity, orientation."""
    out = []
    for fi, surface in enumerate(shell):
        out += _check_polygon(f"{where} face {fi}", surface, verts, planar_tol)
    if out:
        return out
    if len(shell) < 4:
        return [ValidationError(301, where, f"{len(shell)} polygons")]
    directed = Counter()
    face_of_edge: dict[tuple[int, int], list[int]] = {}
    for fi, surface in enumerate(shell):
        for ring in surface:
            for a, b in zip(ring, ring[1:] + ring[:1]):
                directed[(a, b)] += 1
                face_of_edge.setdefault((min(a, b), max(a, b)), []).append(fi)
    for (a, b), faces in sorted(face_of_edge.items()):
        if len(faces) == 1:
            out.append(ValidationError(302, where, f"edge {a}-{b} of face {faces[0]} has no neighbour (hole in the shell)"))
        elif len(faces) > 2:
            out.append(ValidationError(303, where, f"edge {a}-{b} is shared by {len(faces)} faces"))
        elif directed[(a, b)] != 1 or directed[(b, a)] != 1:
            out.append(ValidationError(307, where, f"faces {faces[0]} and {faces[1]} run edge {a}-{b} the same way"))
    if out:
        return out[:20]
    # connected components over shared edges
    parent = list(range(len(shell)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for faces in face_of_edge.values():
        ra, rb = find(faces[0]), find(faces[1])
        if ra != rb:
            parent[ra] = rb
    ncomp = len({find(i) for i in range(len(shell))})
    if ncomp > 1:
        return [ValidationError(305, where, f"{ncomp} separate components")]
    # outward orientation: signed volume (divergence theorem over fan triangles) > 0
    vol = 0.0
    for surface in shell:
        for ring in surface:
            p = verts[ring]
            p = p - verts[shell[0][0][0]]
            vol += float(np.sum(np.einsum("ij,ij->i", p[0][None, :].repeat(len(p) - 2, 0),
                                          np.cross(p[1:-1], p[2:]))))
    vol /= 6.0
    if (vol <= 0) != inner:
        return [ValidationError(307, where, f"normals point {'outwards' if inner else 'inwards'} (signed volume {vol:.3f} m3)")]
    return []
