"""bench/wasm_matmul: its hand-written kernels (wasmtime, against numpy) and a browser smoke
run of the driver (headless Chromium; skipped where Chromium or playwright is missing).
"""

from __future__ import annotations

import importlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from nnjit.backends.wat_printer import assemble
from nnjit.runtime.wasm import WasmRuntime

BENCH = Path(__file__).resolve().parent.parent / "bench" / "wasm_matmul"
sys.path.insert(0, str(BENCH))
wat_kernels = importlib.import_module("wat_kernels")


def _manifest(params):
    return {"name": "k", "export": "run", "thread_chunks": 2, "params": params}


@pytest.mark.parametrize("threads", [1, 2])
def test_hand_written_register_block(threads):
    M, N, K = 8, 16, 12
    rng = np.random.default_rng(threads)
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    wasm = assemble(wat_kernels.handmm_wat(M, N, K, 4, 2))
    params = [
        {"index": 0, "access": "read", "dtype": "f32", "shape": [M, K], "bytes": a.nbytes},
        {"index": 1, "access": "read", "dtype": "f32", "shape": [K, N], "bytes": b.nbytes},
        {"index": 2, "access": "write", "dtype": "f32", "shape": [M, N], "bytes": 4 * M * N},
    ]
    rt = WasmRuntime(threads=threads, initial_bytes=1 << 20)
    try:
        (c,) = rt.run_kernel(wasm, _manifest(params), [a, b, None])
    finally:
        rt.close()
    ref = a.astype(np.float64) @ b
    assert np.max(np.abs(c - ref)) / np.max(np.abs(ref)) < 1e-6


@pytest.mark.parametrize("op", ["relaxed_madd", "mul_add"])
def test_peak_kernel_chains(op):
    """Each chain is x <- 0.9999 x + 0.0001 from 0.5 + 0.01 j: the stored sum is known."""
    chains, iters = 10, 1000
    wasm = assemble(wat_kernels.peak_wat(op, chains))
    rt = WasmRuntime(threads=1, initial_bytes=1 << 20)
    try:
        k = rt.compile(wasm, _manifest([]))
        out = rt.alloc(64)
        store, fn = k.runs[0]
        fn(store, 0, 1, iters, out)
        got = rt.read(out, np.float32, (4,))
    finally:
        rt.close()
    x = np.array([0.5 + 0.01 * j for j in range(chains)])
    for _ in range(iters):
        x = 0.9999 * x + 0.0001
    np.testing.assert_allclose(got, np.full(4, x.sum()), rtol=1e-4)


def test_browser_smoke(tmp_path):
    """The driver on tiny shapes (a packed weight with ragged M; a batched Q.K^T with B
    transposed): nnjit and the peak kernels in Chromium on 1 and 2 workers, results checked
    against numpy in the page."""
    pytest.importorskip("playwright")
    if not Path("/usr/lib/chromium/chromium").exists():
        pytest.skip("no Chromium")
    run = importlib.import_module("run")
    rc = run.main([
        "--rounds", "1", "--shapes", "13x8x16,2x5x8x12t", "--contenders", "peak,nnjit", "--runs", "3",
        "--warmup-ms", "20", "--peak-iters", "20000", "--peak-chains", "8,12", "--max-wait", "0",
        "--attempts", "1", "--no-report", "--out", "pytest",
    ])  # fmt: skip
    out = BENCH / "out" / "pytest"
    try:
        data = json.loads((out / "results.json").read_text())
    finally:
        shutil.rmtree(out, ignore_errors=True)
    assert rc == 0
    nn = [r for r in data["results"] if r["contender"] == "nnjit"]
    assert {(r["shape"], r["threads"]) for r in nn} == {
        (s, t) for s in ("13x8x16", "2x5x8x12t") for t in (1, 2)
    }
    assert all(r["rel_err"] < 1e-5 and r["gflops"] > 0 for r in nn)
    peaks = [r for r in data["results"] if r["contender"] == "peak"]
    assert len(peaks) == 8 and all(r["gflops"] > 0 for r in peaks)
    assert data["shapes"][0]["nnjit"]["b_key"] == "b#pack=kn8"
