"""Time to generate one kernel variant (lowering + web-level conversion + printing, no driver
compile), per kernel of a model, without the model file:

    python bench/generation_time.py KERNELS.json     # from bench/tuning_bert.py --save-kernels
    python bench/generation_time.py --smoke [KERNELS.json]   # or NNJIT_BENCH_SMOKE=1: one run per
        # kernel; the kernels of tests/models/bert-legacy.onnx when KERNELS.json does not exist
Prints the median over the kernels of each kernel's best of 5 runs for WGSL and Wasm, per kind,
and the median over the kernels of each kernel's mean of its runs (what a tuner pays per
candidate on average, the cyclic garbage collector's passes included); the machine is named.
"""

from __future__ import annotations

import argparse
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

    from bench.smoke import TINY_DEFAULT, add_flag
    from nnjit.pipeline import lower_and_print
    from nnjit.registry import make_context

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kernels", nargs="?", help="JSON from bench/tuning_bert.py --save-kernels")
    add_flag(ap)
    args = ap.parse_args()
    repeat = 1 if args.smoke else 5
    if args.kernels is not None and Path(args.kernels).is_file():
        entries = json.loads(Path(args.kernels).read_text())
    elif args.smoke:
        from nnjit.tuning.kernels import model_kernels
        from nnjit.tuning.tuner import load_fused_model

        print(f"smoke: the kernels of {TINY_DEFAULT.relative_to(TINY_DEFAULT.parents[2])}")
        module, _ = load_fused_model(TINY_DEFAULT)
        entries = [i.to_json(module=True) for i in model_kernels(module, "webgpu")]
    else:
        ap.error(f"no kernels file {args.kernels or ''} (bench/tuning_bert.py --save-kernels writes one)")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    for backend in ("webgpu", "wasm"):
        per_kind: dict[str, list[float]] = {}
        means: list[float] = []  # (each kernel's mean over its runs)
        for e in entries:
            module = Parser(make_context(), e["module_text"]).parse_module()
            best, runs = float("inf"), []
            for _ in range(repeat):
                t0 = time.perf_counter()
                lower_and_print(module, backend)
                t = time.perf_counter() - t0
                best = min(best, t)
                runs.append(t)
            per_kind.setdefault(e["kind"], []).append(best)
            means.append(statistics.mean(runs))
        allt = [t for ts in per_kind.values() for t in ts]
        detail = ", ".join(f"{k} {statistics.median(v) * 1e3:.1f}" for k, v in sorted(per_kind.items()))
        print(f"{backend}: median {statistics.median(allt) * 1e3:.2f} ms per variant over "
              f"{len(allt)} kernels ({detail}); median of the kernels' means "
              f"{statistics.median(means) * 1e3:.2f} ms (garbage collections included)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
