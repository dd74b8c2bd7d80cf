"""What the benchmark scripts share: pinning the BLAS/OpenMP thread count before numpy and
torch are imported, and the settings line each prints next to its table.

The scripts run as ``python benchmarks/bench_*.py``, so this module is importable as
``_env``; it imports nothing heavy at module level (``pin_threads`` must run first).
"""

from __future__ import annotations

import os
import platform

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def pin_threads(threads: int | None) -> None:
    """Set every BLAS/OpenMP thread variable to ``threads`` (None or 0: leave them)."""
    if threads:
        for var in THREAD_VARS:
            os.environ[var] = str(threads)


def settings(*extra: str) -> str:
    """python, torch (and its thread count), pyro, numpy, ``extra`` (e.g. "scikit-learn
    1.9.1"), CPUs, machine and the thread variables: the line printed above each table."""
    import numpy as np
    import pyro
    import torch

    env = {k: os.environ.get(k, "unset") for k in THREAD_VARS}
    parts = [f"torch {torch.__version__} ({torch.get_num_threads()} threads)",
             f"pyro {pyro.__version__}", f"numpy {np.__version__}", *extra,
             f"{os.cpu_count()} CPUs"]
    return (f"python {platform.python_version()}, {', '.join(parts)}, {platform.machine()}; "
            f"env {env}")
