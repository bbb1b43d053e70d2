# Two doors (see README): `make city` sets up and runs the main job; `make test` sets up and runs the tests.
PY      := .venv/bin/python
STAMP   := .venv/.installed
OUT     ?= runs/toulouse
AOI     ?= toulouse
SIZE_M  ?= 300
SEED    ?= 5
RANKS   ?= 2
# One compute thread per process: ranks and tests share 2 cores.
export OMP_NUM_THREADS ?= 1
export NUMBA_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: setup city test clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

city: $(STAMP)
	.venv/bin/mpiexec -n $(RANKS) .venv/bin/lod3d city --aoi $(AOI) --size-m $(SIZE_M) --seed $(SEED) \
		--out $(OUT) --overwrite

test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf .venv runs .pytest_cache
