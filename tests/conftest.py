"""Shared test fixtures. One compute thread per process: the suite runs on 2 cores.

Numba kernels run bounds-checked under test: a kernel reading past an array's end
raises IndexError here instead of reading whatever memory lies there, which passes on
one machine and fails on the next. The checked builds are cached apart from the
production ones (``.pytest_cache/numba``), so neither loads the other's.

Property tests draw the same examples on every run and machine (hypothesis profile
``ci``, derandomized), so CI sees what passed here; ``LOD3D_HYPOTHESIS=explore`` draws
fresh ones to hunt for new counterexamples."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

for _var in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("LOD3D_QUIET", "1")
os.environ.setdefault("NUMBA_BOUNDSCHECK", "1")
os.environ.setdefault("NUMBA_CACHE_DIR", str(REPO / ".pytest_cache" / "numba"))

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("LOD3D_HYPOTHESIS", "ci"))

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
