"""Time to generate one kernel variant (lowering + web-level conversion + printing, no driver
compile), per kernel of a model, without the model file:

    python bench/generation_time.py KERNELS.json     # from bench/tuning_bert.py --save-kernels
Prints the median over the kernels for WGSL and Wasm, and per kind; the machine is named.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    from xdsl.parser import Parser

    from nnjit.compiler import kernels_of, lower_for_backend
    from nnjit.registry import make_context

    entries = json.loads(Path(sys.argv[1]).read_text())
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    for backend in ("webgpu", "wasm"):
        per_kind: dict[str, list[float]] = {}
        for e in entries:
            module = Parser(make_context(), e["module_text"]).parse_module()
            best = float("inf")
            for _ in range(5):
                t0 = time.perf_counter()
                kernels_of(lower_for_backend(module, backend), backend)
                best = min(best, time.perf_counter() - t0)
            per_kind.setdefault(e["kind"], []).append(best)
        allt = [t for ts in per_kind.values() for t in ts]
        detail = ", ".join(f"{k} {statistics.median(v) * 1e3:.1f}" for k, v in sorted(per_kind.items()))
        print(f"{backend}: median {statistics.median(allt) * 1e3:.2f} ms per variant over "
              f"{len(allt)} kernels ({detail})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
