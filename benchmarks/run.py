"""Run every ``benchmarks/bench_*.py`` module's ``main()`` in turn (``make bench``).

Modules are loaded by file path with importlib, so nothing is added to
``sys.path``; each prints its own table.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    paths = sorted(HERE.glob("bench_*.py"))
    if not paths:
        print(f"no bench_*.py files in {HERE}")
    for path in paths:
        spec = importlib.util.spec_from_file_location(f"benchmarks.{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(f"==== {path.name} " + "=" * max(0, 60 - len(path.name)))
        t0 = time.perf_counter()
        module.main()
        print(f"({path.name}: {time.perf_counter() - t0:.1f} s)\n")


if __name__ == "__main__":
    main()
