"""Full-size models on both backends, checked against onnxruntime: the README's correctness table.

    python bench/full_models.py [MODEL.onnx ...]   (default: every models/*.onnx but the *_past
                                                    decoders, which generate; build them with
                                                    `python tools/build_models.py --full`)
    python bench/full_models.py --smoke            (or NNJIT_BENCH_SMOKE=1: the tiny BERT of
                                                    tests/models, 1 warm run; bench/smoke.py)
For each model: `nnjit compile` time (both backends), then per backend the relative error of each
output against onnxruntime (CPU, float32) on random valid inputs, and the median of 3 warm runs.
WebGPU runs on whatever adapter wgpu-py finds (lavapipe on a machine without a GPU).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")


def rel_err(got: np.ndarray, ref: np.ndarray) -> float:
    if not np.all(np.isfinite(got)):
        return float("inf")
    ref = ref.astype(np.float64)
    return float(np.max(np.abs(got.astype(np.float64) - ref)) / max(np.max(np.abs(ref)), 1e-30))


def main() -> int:
    from bench.smoke import add_flag, tiny_model

    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*")
    ap.add_argument("--backends", default="webgpu,wasm")
    ap.add_argument("--repeat", type=int, default=3)
    add_flag(ap)
    args = ap.parse_args()
    models = [Path(m) for m in args.models] or sorted(
        p for p in (ROOT / "models").glob("*.onnx") if "_past" not in p.name
    )
    if args.smoke:
        models, args.repeat = [tiny_model(m) for m in models[:1] or ["bert-legacy.onnx"]], 1
    if not models:
        raise SystemExit("no models in models/: build them with `python tools/build_models.py --full`")
    backends = args.backends.split(",")

    import onnxruntime as ort

    from nnjit.compiler import CompileReport, compile_model
    from nnjit.runtime.session import Session, random_feeds

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print("\n| model | compile (s) | backend | max rel. error vs onnxruntime | first run (ms) | "
          "warm median (ms) |\n|---|---|---|---|---|---|")  # fmt: skip
    for m in models:
        with tempfile.TemporaryDirectory() as d:
            report = CompileReport()
            t0 = time.perf_counter()
            compile_model(m, Path(d) / "b", backends=backends, report=report)
            ctime = time.perf_counter() - t0
            so = ort.SessionOptions()
            so.log_severity_level = 3
            ref_sess = ort.InferenceSession(str(m), so, providers=["CPUExecutionProvider"])
            for backend in backends:
                sess = Session(Path(d) / "b", backend)
                feeds = random_feeds(sess.plan, seed=7)
                t0 = time.perf_counter()
                outs = sess.run(feeds)
                first = time.perf_counter() - t0
                times = []
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    sess.run(feeds)
                    times.append(time.perf_counter() - t0)
                refs = ref_sess.run(list(outs), feeds)
                err = max(rel_err(outs[n], r) for n, r in zip(outs, refs))
                med = sorted(times)[len(times) // 2]
                print(f"| {m.name} | {ctime:.1f} | {backend} | {err:.2e} | {first * 1000:.0f} | "
                      f"{med * 1000:.0f} |", flush=True)  # fmt: skip
                del sess
    return 0


if __name__ == "__main__":
    sys.exit(main())
