import subprocess
import sys
from pathlib import Path

import pytest

from lod3d.parallel import run_tasks

REPO = Path(__file__).resolve().parents[1]


def test_serial_run_orders_results_retries_and_records_failures():
    calls = {}

    def fn(x):
        calls[x] = calls.get(x, 0) + 1
        if x == 3 and calls[x] == 1:
            raise RuntimeError("flaky once")
        if x == 5:
            raise ValueError("always bad")
        return x * x

    results = run_tasks(list(range(8)), fn, skip=lambda x: x == 7)
    assert [r.index for r in results] == list(range(8))
    assert results[3].ok and results[3].value == 9 and results[3].attempts == 2
    assert not results[5].ok and "always bad" in results[5].error and results[5].attempts == 2
    assert results[7].skipped and 7 not in calls
    assert [r.value for r in results[:3]] == [0, 1, 4]


SCRIPT = """
import time
from lod3d.parallel import get_comm, run_tasks
comm = get_comm()
res = run_tasks(list(range(13)), lambda x: (time.sleep(0.01 * (x % 3)), x + 100)[1], comm=comm)
if comm is None or comm.rank == 0:
    print("VALUES", [r.value for r in res], "RANKS", sorted({r.rank for r in res}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("ranks", [2, 3])
def test_mpi_ranks_share_a_dynamic_queue(ranks, tmp_path):
    mpiexec = Path(sys.executable).parent / "mpiexec"
    if not mpiexec.exists():
        pytest.skip("no mpiexec in the environment")
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    out = subprocess.run([str(mpiexec), "-n", str(ranks), sys.executable, str(script)],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    line = next(line for line in out.stdout.splitlines() if line.startswith("VALUES"))
    assert line.split("RANKS")[0].strip() == "VALUES " + str([x + 100 for x in range(13)])
