"""Shared test fixtures. One compute thread per process: the suite runs on 2 cores."""

import os

for _var in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("LOD3D_QUIET", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the project root (real Pleiades crops, CityJSON, schema)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def cityjson_schema(shared_data) -> Path:
    """The official CityJSON 2.0 schema (self-contained)."""
    return shared_data / "cityjson" / "schema-2.0" / "cityjson.min.schema.json"
