"""Height-error statistics between a result raster and a reference on the same grid.

The figures are the ones DSM producers and the ASPRS standard use: median (bias), NMAD
(1.4826 × median absolute deviation from the median: a robust σ), RMSE, MAE, LE90 (90th
percentile of |error|) and completeness (share of reference cells where the result has a
value). ``by_class`` splits them over a label raster (roofs, ground, vegetation ...).
"""

from __future__ import annotations

import numpy as np

__all__ = ["height_errors", "height_errors_by_class", "nmad"]


def nmad(values: np.ndarray) -> float:
    """Normalized median absolute deviation of finite ``values`` (NaN when empty)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan")
    return float(1.4826 * np.median(np.abs(v - np.median(v))))


def height_errors(result: np.ndarray, reference: np.ndarray, mask: np.ndarray | None = None,
                  offset: float = 0.0) -> dict:
    """Statistics of ``result - offset - reference`` over cells where the reference is valid.

    ``mask`` restricts the evaluated cells; ``offset`` removes a known vertical datum shift
    (e.g. EGM96 geoid height when comparing to an ellipsoidal reference).
    """
    ref_ok = np.isfinite(reference)
    if mask is not None:
        ref_ok &= mask
    both = ref_ok & np.isfinite(result)
    err = (result[both].astype(np.float64) - offset) - reference[both]
    n_ref = int(ref_ok.sum())
    if err.size == 0:
        return {"n": 0, "completeness": 0.0 if n_ref else float("nan"), "median": float("nan"),
                "nmad": float("nan"), "rmse": float("nan"), "mae": float("nan"), "le90": float("nan")}
    return {
        "n": int(err.size),
        "completeness": float(err.size / n_ref),
        "median": float(np.median(err)),
        "nmad": nmad(err),
        "rmse": float(np.sqrt(np.mean(err ** 2))),
        "mae": float(np.mean(np.abs(err))),
        "le90": float(np.percentile(np.abs(err), 90)),
    }


def height_errors_by_class(result, reference, labels: np.ndarray, names: dict[int, str],
                           offset: float = 0.0) -> dict:
    """:func:`height_errors` overall and for each label value named in ``names``."""
    out = {"all": height_errors(result, reference, offset=offset)}
    for value, name in names.items():
        out[name] = height_errors(result, reference, labels == value, offset=offset)
    return out
