"""Accuracy classes under named standards: ASPRS positional accuracy, CityGML LoD.

**ASPRS Positional Accuracy Standards for Digital Geospatial Data.** Both editions name a
class by its RMSE bound in centimetres ("10-cm class") and allow any bound; we report the
smallest class of a ladder of commonly specified values (:data:`CLASSES_CM`) that the
measured RMSE meets, with the RMSE itself, so a buyer's own class can be checked too.

- *Edition 1, Version 1.0 (November 2014)* — vertical (Table 7.5): class X-cm when the
  non-vegetated RMSEz ≤ X; the non-vegetated vertical accuracy is then reported at 95 %
  confidence as NVA = 1.96 × RMSEz, and the vegetated vertical accuracy (95th percentile
  of |error| in vegetated land cover) must be ≤ 3.0 × X. Horizontal (Table 7.1): class
  X-cm when RMSEx and RMSEy are both ≤ X (RMSEr = √(RMSEx² + RMSEy²) ≤ 1.414 X; accuracy at
  95 % confidence 2.4477 × X). At least 20 checkpoints.
- *Edition 2, Version 1.0 (August 2023)* — the 95 % confidence figures are dropped and
  accuracy is the RMSE alone. Vertical: class X-cm when the NVA RMSEV ≤ X; the VVA RMSEV is
  reported "as found" (no pass/fail). Horizontal: class X-cm when the radial RMSEH =
  √(RMSEx² + RMSEy²) ≤ X. At least 30 checkpoints. Edition 2 also folds the checkpoints' own
  survey error into the product RMSE (√(RMSE² + RMSE_survey²)); ``survey_rmse`` takes it
  (0 for simulated truth).

**CityGML LoD.** The OGC CityGML 2.0 standard (OGC 12-019, as 1.0, OGC 08-007r1) gives
each LoD a proposed absolute 3-D point accuracy (position / height): LoD1 5 m, LoD2 2 m,
LoD3 0.5 m, LoD4 0.2 m (:data:`CITYGML_LOD_ACCURACY_M`). Our documented rule
(:func:`lod_qualification`): the product qualifies for LoD X.Y when at least
:data:`MIN_VALID_SHARE` of its buildings carry a geometry at that LoD that passes the
validator, and — when truth is available — its buildings match the truth footprints with
an F1 of at least :data:`MIN_DETECTION_F1` (a model missing or inventing many buildings is
no city model at any LoD), and the roof RMSE of that LoD against the truth DSM and the
footprints' horizontal RMSEr are within the CityGML accuracy of LoD X. LoD0 (footprints)
has no accuracy bound. Without truth the qualification is structural
only and says so. LoD X.Y refinement levels are those of Biljecki et al. (2016), the
ones CityJSON files carry ("1.2", "2.2").
"""

from __future__ import annotations

import math

__all__ = ["CLASSES_CM", "CITYGML_LOD_ACCURACY_M", "MIN_VALID_SHARE", "asprs_vertical", "asprs_horizontal",
           "lod_qualification", "MIN_DETECTION_F1"]

ASPRS_2014 = "ASPRS Positional Accuracy Standards for Digital Geospatial Data, Edition 1, Version 1.0 (2014)"
ASPRS_2023 = "ASPRS Positional Accuracy Standards for Digital Geospatial Data, Edition 2, Version 1.0 (2023)"
CITYGML = "OGC CityGML 2.0 (12-019), proposed LoD accuracy; LoD X.Y per Biljecki et al. 2016"

# Class bounds (cm) of the ASPRS tables' examples, finest first; anything coarser is
# reported as the RMSE rounded up to the next centimetre.
CLASSES_CM = (1.0, 2.5, 5.0, 7.5, 10.0, 12.5, 15.0, 20.0, 25.0, 33.3, 50.0, 66.7, 100.0, 150.0, 200.0,
              250.0, 333.3, 500.0, 1000.0)
CITYGML_LOD_ACCURACY_M = {1: 5.0, 2: 2.0, 3: 0.5, 4: 0.2}
MIN_VALID_SHARE = 0.95
MIN_DETECTION_F1 = 0.8
MIN_CHECKPOINTS = {2014: 20, 2023: 30}


def _class_cm(rmse_m: float) -> float | None:
    """Smallest class bound (cm) not below ``rmse_m``; None for a NaN RMSE."""
    if rmse_m is None or not math.isfinite(rmse_m):
        return None
    cm = 100.0 * rmse_m
    for bound in CLASSES_CM:
        if cm <= bound + 1e-9:
            return bound
    return float(math.ceil(cm))


def _name(bound: float | None) -> str | None:
    return None if bound is None else f"{bound:g}-cm"


def asprs_vertical(nva_rmse: float, n_nva: int, vva_le95: float | None = None, vva_rmse: float | None = None,
                   n_vva: int = 0, survey_rmse: float = 0.0) -> dict:
    """Vertical accuracy class of an elevation product under both ASPRS editions.

    ``nva_rmse``: RMSE (m) on non-vegetated checkpoints (``n_nva`` of them);
    ``vva_le95``/``vva_rmse``: 95th percentile of |error| and RMSE (m) in vegetated cover.
    """
    rmse23 = math.hypot(nva_rmse, survey_rmse) if math.isfinite(nva_rmse) else float("nan")
    c14 = _class_cm(nva_rmse)
    out14 = {"standard": ASPRS_2014, "rmse_z_m": nva_rmse, "class": _name(c14),
             "nva_95_m": 1.96 * nva_rmse, "checkpoints": n_nva,
             "enough_checkpoints": n_nva >= MIN_CHECKPOINTS[2014]}
    if vva_le95 is not None and math.isfinite(vva_le95) and c14 is not None:
        # The class must also hold its vegetated bound VVA ≤ 3 × X.
        bound = _class_cm(max(nva_rmse, vva_le95 / 3.0))
        out14.update({"vva_95th_percentile_m": vva_le95, "vva_checkpoints": n_vva, "class": _name(bound),
                      "class_nva_only": _name(c14)})
    out23 = {"standard": ASPRS_2023, "rmse_v_m": rmse23, "class": _name(_class_cm(rmse23)),
             "survey_rmse_m": survey_rmse, "checkpoints": n_nva,
             "enough_checkpoints": n_nva >= MIN_CHECKPOINTS[2023]}
    if vva_rmse is not None:
        out23.update({"vva_rmse_v_m_as_found": vva_rmse, "vva_checkpoints": n_vva})
    return {"asprs_2014": out14, "asprs_2023": out23}


def asprs_horizontal(rmse_x: float, rmse_y: float, n: int, survey_rmse: float = 0.0) -> dict:
    """Horizontal accuracy class of a planimetric product (m) under both ASPRS editions."""
    rmse_r = math.hypot(rmse_x, rmse_y)
    rmse_h = math.hypot(rmse_r, survey_rmse)
    return {
        "asprs_2014": {"standard": ASPRS_2014, "rmse_x_m": rmse_x, "rmse_y_m": rmse_y, "rmse_r_m": rmse_r,
                       "class": _name(_class_cm(max(rmse_x, rmse_y))), "accuracy_95_m": 1.7308 * rmse_r,
                       "checkpoints": n, "enough_checkpoints": n >= MIN_CHECKPOINTS[2014]},
        "asprs_2023": {"standard": ASPRS_2023, "rmse_h_m": rmse_h, "class": _name(_class_cm(rmse_h)),
                       "survey_rmse_m": survey_rmse, "checkpoints": n,
                       "enough_checkpoints": n >= MIN_CHECKPOINTS[2023]},
    }


def lod_qualification(valid_share: dict[str, float], roof_rmse: dict[str, float] | None = None,
                      horizontal_rmse: float | None = None, schema_errors: int = 0,
                      detection_f1: float | None = None) -> dict:
    """The highest LoD the product qualifies for under the rule of this module's docstring.

    ``valid_share``: per LoD string ("0", "1.2", "2.2") the share of buildings with a valid
    geometry at that LoD; ``roof_rmse``: per LoD the roof RMSE (m) against truth;
    ``horizontal_rmse``: footprint RMSEr (m); ``schema_errors``: CityJSON schema errors of
    the file (any fails every LoD); ``detection_f1``: F1 of the footprints against truth.
    Without ``roof_rmse`` and ``detection_f1`` the check is structural.
    """
    checks = {}
    for lod, share in sorted(valid_share.items()):
        reasons = [f"{schema_errors} CityJSON schema errors"] if schema_errors else []
        if not share >= MIN_VALID_SHARE:
            reasons.append(f"valid share {share:.1%} < {MIN_VALID_SHARE:.0%}")
        if detection_f1 is not None and not detection_f1 >= MIN_DETECTION_F1:
            reasons.append(f"building detection F1 {detection_f1:.2f} < {MIN_DETECTION_F1}")
        major = int(float(lod))
        limit = CITYGML_LOD_ACCURACY_M.get(major)
        if roof_rmse is not None and limit is not None:
            rmse = roof_rmse.get(lod)
            if rmse is None or not rmse <= limit:
                reasons.append(f"roof RMSE {rmse if rmse is None else round(rmse, 2)} m > {limit:g} m")
            if horizontal_rmse is None or not horizontal_rmse <= limit:
                h = horizontal_rmse if horizontal_rmse is None else round(horizontal_rmse, 2)
                reasons.append(f"footprint RMSEr {h} m > {limit:g} m")
        checks[lod] = {"qualifies": not reasons, "reasons": reasons, "accuracy_limit_m": limit}
    passed = [lod for lod, c in checks.items() if c["qualifies"]]
    best = max(passed, key=float) if passed else None
    return {"standard": CITYGML, "lod": best,
            "verified_against_truth": roof_rmse is not None or detection_f1 is not None,
            "min_valid_share": MIN_VALID_SHARE, "min_detection_f1": MIN_DETECTION_F1, "checks": checks}
