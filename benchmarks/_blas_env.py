"""The benchmarks' own BLAS environment (imported before numpy by each benchmark script).

Some machines set ``OPENBLAS_CORETYPE=Haswell`` and ``OPENBLAS_L2_SIZE`` (a
workaround for old OpenBLAS builds), which keep a current numpy's OpenBLAS off
its best kernels. :func:`clean` re-executes the running script once with both
unset (in its own process only: tests and CI keep the environment as it is);
:func:`describe` names the BLAS library, kernel and threads actually in use
(threadpoolctl, from the ``bench`` extra) so every benchmark prints it.
"""

from __future__ import annotations

import os
import sys

VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_MARK = "LINFA_BENCH_BLAS_ENV_CLEANED"


def clean() -> None:
    """Re-exec this script without :data:`VARIABLES` (a no-op when none is set)."""
    if not any(v in os.environ for v in VARIABLES) or os.environ.get(_MARK):
        return
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    env[_MARK] = ",".join(f"{v}={os.environ[v]}" for v in VARIABLES if v in os.environ)
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def describe() -> str:
    """One line: what was unset, and the BLAS in use (library, kernel, threads)."""
    removed = os.environ.get(_MARK)
    head = f"environment: unset {removed} for this benchmark" if removed else "environment: as given"
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return head + "; BLAS kernel unknown (pip install threadpoolctl, in the bench extra)"
    import numpy  # noqa: F401  (load numpy's BLAS so that threadpoolctl sees it)

    blas = [
        f"{i.get('internal_api')} {i.get('version')} kernel {i.get('architecture')} ({i.get('num_threads')} threads)"
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    ]
    return head + "; BLAS: " + ("; ".join(blas) or "none found")
