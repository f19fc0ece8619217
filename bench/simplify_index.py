"""nn-loop-simplify-index in the loop pipeline: the speed of every kernel whose generated code
it changes, without the pass ("before") and with it ("after"), in one process:

    python bench/simplify_index.py --shipped --models models/bert-legacy.onnx models/minilm-legacy.onnx
    python bench/simplify_index.py --sample 150 --seed 1      # tests/models, 150 changed candidates
    python bench/simplify_index.py --smoke                    # or NNJIT_BENCH_SMOKE=1: 2 candidates

Candidates are those of tools/codegen_corpus.py (every kernel's default point and its schedule
space on the generic device), lowered twice: with the Target's loop_passes as they are and with
nn-loop-simplify-index taken out. Only those whose WGSL / WAT differ are timed (with
--sample N, N of them drawn with --seed), on wasmtime (1 thread, before/after interleaved run
by run, WasmtimeRunner.measure_set) and on the default wgpu adapter (here lavapipe, a CPU
adapter: before and after alternate in --rounds rounds of 5 timed runs). Prints one line per
candidate (median ms before / after, ratio, max |before - after| of the outputs) and per
backend the geometric mean of the ratios; --json writes the rows.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.smoke import add_flag  # noqa: E402
from nnjit import targets  # noqa: E402
from nnjit.errors import NNJitError  # noqa: E402

BACKENDS = {"wasm": "wasmtime", "webgpu": "wgpu"}


@contextmanager
def without_simplify(backend: str):
    """The backend's Target with nn-loop-simplify-index taken out of its loop_passes."""
    t = targets.TARGETS[backend]
    steps = [s for s in t.loop_passes.split(",") if s and s != targets.SIMPLIFY_INDEX]
    targets.TARGETS[backend] = dataclasses.replace(t, loop_passes=",".join(steps))
    targets._SCHEDULE_PASSES.clear()
    try:
        yield
    finally:
        targets.TARGETS[backend] = t
        targets._SCHEDULE_PASSES.clear()


def changed_candidates(models: list[Path], backend: str, shipped: bool, log=print) -> list[tuple]:
    """(model, info, point, before, after) of every candidate whose code the pass changes
    (with `shipped`, of each kernel's default point only: what `nnjit compile` ships)."""
    from nnjit.tuning.kernels import lower_candidate, model_kernels
    from nnjit.tuning.plugins import space_for
    from nnjit.tuning.space import DeviceInfo
    from nnjit.tuning.tuner import load_fused_model

    out, seen = [], set()
    for model in models:
        module, _ = load_fused_model(str(model), None)
        n = same = 0
        for info in model_kernels(module, backend):
            space = [] if shipped else space_for(info, DeviceInfo.generic(info.target))
            for point in [{}, *space]:
                key = (info.signature, json.dumps(point, sort_keys=True))
                if key in seen:
                    continue
                seen.add(key)
                try:
                    after = lower_candidate(info, point)
                    with without_simplify(backend):
                        before = lower_candidate(info, point)
                except NNJitError:
                    continue
                n += 1
                if _code(before) == _code(after):
                    same += 1
                    continue
                out.append((model.name, info, point, before, after))
        log(f"{model.name} {backend}: {n} candidates, {n - same} changed")
    return out


def _code(cand) -> bytes:
    return cand.binary if cand.binary is not None else cand.source.encode()


def time_pair(runner, backend: str, before, after, rounds: int, min_time: float) -> tuple[list, list, float]:
    """Times (s) of before and after, and max |before - after| of their outputs."""
    if backend == "wasm":
        mb, ma = runner.measure_set([before, after], timeout=600, min_time=min_time)
        return mb.times, ma.times, _diff(mb.output, ma.output)
    tb, ta, outs = [], [], {}
    for r in range(rounds):
        for cand in (before, after) if r % 2 == 0 else (after, before):
            m = runner.measure(cand, timeout=600)
            (tb if cand is before else ta).extend(m.times)
            outs[id(cand)] = m.output
    return tb, ta, _diff(outs[id(before)], outs[id(after)])


def _diff(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("nan")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def main() -> int:
    from nnjit.tuning.runners import TimingPolicy, WasmtimeRunner, WebGPURunner

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", type=Path, default=None,
                    help="ONNX models (default: the fixed-shape ones of tests/models)")  # fmt: skip
    ap.add_argument("--backends", default="wasm,webgpu")
    ap.add_argument("--sample", type=int, default=0, help="time N changed candidates (0: all)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--shipped", action="store_true", help="only each kernel's default point")
    ap.add_argument("--rounds", type=int, default=8, help="WebGPU: alternating rounds")
    ap.add_argument("--min-time", type=float, default=0.2, help="Wasm: seconds of runs per side")
    ap.add_argument("--json", type=Path, default=None)
    add_flag(ap)
    args = ap.parse_args()
    if args.models is None:
        sys.path.insert(0, str(ROOT / "tools"))
        from codegen_corpus import _default_models

        args.models = _default_models()
    if args.smoke:
        args.sample, args.rounds, args.min_time = 2, 2, 0.01
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    rows = []
    for backend in [b for b in args.backends.split(",") if b]:
        cands = changed_candidates(args.models, backend, args.shipped)
        if args.sample and len(cands) > args.sample:
            cands = random.Random(args.seed).sample(cands, args.sample)
        if backend == "wasm":
            timing = TimingPolicy(min_runs=10, max_runs=200, min_time=args.min_time)
            runner = WasmtimeRunner(threads=1, timing=timing)
        else:
            runner = WebGPURunner(TimingPolicy(min_runs=5, max_runs=5, min_time=0.0))
        ratios = []
        try:
            if backend == "webgpu":
                fp = runner.device().fingerprint
                print(f"webgpu adapter: {fp.get('name')} ({fp.get('driver')})")
            current = None
            for model, info, point, before, after in cands:
                if current != info.signature:
                    runner.prepare(info, seed=0)
                    current = info.signature
                t0 = time.perf_counter()
                tb, ta, diff = time_pair(runner, backend, before, after, args.rounds, args.min_time)
                b, a = statistics.median(tb) * 1e3, statistics.median(ta) * 1e3
                ratios.append(a / b)
                row = {"backend": backend, "model": model, "signature": info.signature,
                       "kind": info.kind, "point": point, "before_ms": b, "after_ms": a,
                       "ratio": a / b, "max_abs_diff": diff, "runs": [len(tb), len(ta)],
                       "bytes": [len(_code(before)), len(_code(after))]}  # fmt: skip
                rows.append(row)
                print(f"{backend:6} {model:20} {info.kind:10} {info.signature[:12]} "
                      f"{json.dumps(point, sort_keys=True):48.48} {b:9.4f} {a:9.4f} {a / b:6.3f} "
                      f"{diff:.1e} ({time.perf_counter() - t0:.1f} s)", flush=True)  # fmt: skip
        finally:
            runner.close()
        if ratios:
            gm = math.exp(statistics.fmean(math.log(r) for r in ratios))
            print(f"{backend}: {len(ratios)} changed candidates timed, geometric mean after/before "
                  f"{gm:.3f}, median {statistics.median(ratios):.3f}, "
                  f"min {min(ratios):.3f}, max {max(ratios):.3f}")  # fmt: skip
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
