"""Progress bars for long work, silenced by ``--quiet`` (or when not on a terminal in CI)."""

from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm

_quiet = False


def set_quiet(quiet: bool) -> None:
    """Turn progress bars off (``True``) or back on for this process."""
    global _quiet
    _quiet = quiet


def progress(iterable=None, *, total=None, desc: str = "", unit: str = "it"):
    """A tqdm bar on stderr, or a silent pass-through when quiet or under a non-zero MPI rank."""
    disable = _quiet or os.environ.get("LOD3D_QUIET") == "1" or _mpi_rank() != 0
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, file=sys.stderr,
                leave=False, dynamic_ncols=True)


def _mpi_rank() -> int:
    for var in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        if var in os.environ:
            return int(os.environ[var])
    return 0
