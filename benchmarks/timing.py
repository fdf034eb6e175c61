"""Timing helpers shared by the ``bench_*.py`` modules (``make bench``).

The benchmarks run as scripts from this folder (``python benchmarks/run.py``
or ``python benchmarks/bench_conv.py``), so Python puts the folder on
``sys.path`` and they import this module as ``timing``.
"""

from __future__ import annotations

import platform
import time

import numpy as np
from threadpoolctl import threadpool_info

import dlbook


def median_ms(fn, calls: int, warmup: int, repeats: int) -> float:
    """Milliseconds per call of ``fn``: the median over ``repeats`` runs of the mean of
    ``calls`` calls, after ``warmup`` calls that are not timed (the allocator settles)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t0) / calls)
    return 1e3 * float(np.median(times))


def blas_libraries() -> list[str]:
    """The BLAS libraries NumPy uses, as ``"openblas 0.3.31 (SkylakeX)"``."""
    return [
        f"{i['internal_api']} {i['version']} ({i.get('architecture', '?')})"
        for i in threadpool_info()
        if i["user_api"] == "blas"
    ]


def versions(torch=None) -> str:
    """``"Python 3.11.7, NumPy 2.4.6, dlbook 0.2.0, torch 2.13.0+cpu"`` (torch only if given)."""
    text = f"Python {platform.python_version()}, NumPy {np.__version__}, dlbook {dlbook.__version__}"
    return text if torch is None else f"{text}, torch {torch.__version__}"
