"""Runs a graph through onnxruntime (CPU) and through nnjit on WebGPU and Wasm, and compares.

One compile serves both backends. Before each nnjit run every activation slot (WebGPU) and
the whole activation arena (Wasm) is poisoned, so an output element that no kernel writes
cannot pass for a right one: NaN, or a large finite sentinel when the reference itself has
NaNs (where NaN would hide a missing write).

Comparison, per output (`compare`):
- shape and element type as onnxruntime's;
- bool and integer outputs: equal;
- float outputs: NaN at the same positions, +-inf at the same positions with the same sign,
  and at finite positions |nnjit - ort| <= RTOL * |ort| + ATOL * max|ort| (max over the
  output's finite values). RTOL = ATOL = 1e-4: nnjit's math approximations are within
  ~1e-6 relative; float32 reductions and contractions of the sizes generated here (<= 33
  terms a row) differ from onnxruntime's summation order by well under 1e-5 of the largest
  value; the absolute term covers outputs that come from cancelling larger intermediates.
  Where the output is ill-conditioned (a softmax of logits in the thousands, exp of large
  values), float32 rounding of the intermediates alone moves it by more than that: the
  tolerance adds twice the change of onnxruntime's own output when every float input is
  scaled by 1 + 1e-5 (one factor for all, so comparisons and equalities of inputs hold),
  which is ~10x the relative perturbation that nnjit's rounding and approximations make.
  Differences below the smallest normal f32 (1.2e-38) count as equal: WGSL may flush
  subnormals to zero (exp(-88) is 0 on lavapipe, 6e-39 in onnxruntime), and onnxruntime's
  Sigmoid gives 0 where nnjit gives 6e-39.

One known WebGPU limitation is accepted there, and only there: WGSL has no infinity literal
(and Tint rejects a constant expression that evaluates to one), so the WGSL conversion writes
+-inf constants, among them the identity of a max reduction, as +-FLT_MAX. A max over a row of
-inf only is -FLT_MAX on WebGPU (-inf on Wasm and in onnxruntime): on WebGPU, +-FLT_MAX
matches a reference +-inf. And WGSL lets a driver assume that no value is NaN or inf, and
contract or reassociate float arithmetic: lavapipe folds x - x to 0 (and x / x to 1), so
inf - inf, or a layer norm over one element (x - mean(x)) of a NaN or inf, gives a number on
WebGPU; and a prologue that a softmax recomputes in each pass may round differently in each,
which at 1e15 makes a row NaN. The generator keeps those cases out (tests/fuzz/graphs.py),
as well as NaN/inf into ReduceMax (onnxruntime's order-dependent NaN) and into a grouped Conv
(nnjit's block-diagonal weight spreads them across groups through 0 * inf).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

RTOL = 1e-4
ATOL = 1e-4
SCALE_STEP = 1e-5
SLACK = 2.0
TINY = float(np.finfo(np.float32).tiny)  # smallest normal f32: subnormals may be flushed
SENTINEL = np.float32(3.0e38)
BACKENDS = ("webgpu", "wasm")


def reference(model_bytes: bytes, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    # the ops as written, not onnxruntime's rewrites of them: its graph optimizer (1.31.1) turns
    # Transpose(0, 2, 1) + MatMul with a 1-D right operand into a wrong product
    # (tests/test_fuzz_regressions.py::test_transpose_then_matvec)
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


def compare(got: np.ndarray, ref: np.ndarray, inf_as_max: bool = False,
            slack: np.ndarray | None = None) -> str | None:
    """None when `got` matches `ref` (see the module docstring), else what differs.
    inf_as_max: +-FLT_MAX in `got` stands for +-inf (WebGPU). slack: onnxruntime's output on
    inputs scaled by 1 + SCALE_STEP; SLACK times its distance to `ref` adds to the tolerance."""
    got, ref = np.asarray(got), np.asarray(ref)
    if got.shape != ref.shape:
        return f"shape {got.shape} != {ref.shape}"
    if ref.dtype.kind != "f":
        if got.dtype.kind == "f" or not np.array_equal(got.astype(ref.dtype), ref):
            bad = np.argwhere(got.astype(ref.dtype) != ref)
            at = tuple(bad[0]) if len(bad) else ()
            return f"{ref.dtype} values differ ({len(bad)} of {ref.size}; at {at}: " \
                   f"{got[at] if at else got} vs {ref[at] if at else ref})"
        return None
    g = got.astype(np.float64)
    r = ref.astype(np.float64)
    if inf_as_max:
        top = float(np.finfo(np.float32).max)
        g = np.where(np.isinf(r) & (np.abs(g) == top), np.copysign(np.inf, g), g)
    for what, mask_g, mask_r in (
        ("NaN", np.isnan(g), np.isnan(r)),
        ("+inf", np.isposinf(g), np.isposinf(r)),
        ("-inf", np.isneginf(g), np.isneginf(r)),
    ):
        if not np.array_equal(mask_g, mask_r):
            at = tuple(np.argwhere(mask_g != mask_r)[0])
            return f"{what} positions differ ({int((mask_g != mask_r).sum())} of {r.size}; " \
                   f"at {at}: nnjit {g[at]!r} vs ort {r[at]!r})"
    fin = np.isfinite(r)
    if not fin.any():
        return None
    scale = float(np.max(np.abs(r[fin])))
    with np.errstate(invalid="ignore"):
        err = np.abs(g - r)
    tol = RTOL * np.abs(r) + ATOL * scale + TINY
    if slack is not None:
        with np.errstate(invalid="ignore"):  # (inf - inf where both are inf)
            moved = np.abs(np.asarray(slack, np.float64) - r)
        tol = tol + SLACK * np.where(np.isfinite(moved), moved, 0.0)
    bad = fin & (err > tol)
    if bad.any():
        at = tuple(np.argwhere(bad)[0])
        worst = float(np.max(err[fin])) / max(scale, 1e-30)
        return f"{int(bad.sum())} of {r.size} values off (max err / max|ort| = {worst:.2e}; " \
               f"at {at}: nnjit {g[at]!r} vs ort {r[at]!r})"
    return None


def _poison(sess, value: np.float32) -> None:
    impl = sess._impl
    if sess.backend == "webgpu":
        for buf in impl.slot_bufs:
            impl.rt.write_buffer(buf, np.full(buf.size // 4, value, np.float32))
    else:
        n = max(16, impl.bplan["arena_bytes"]) // 4
        impl.rt.write(impl.arena, np.full(n, value, np.float32))


def check(model_bytes: bytes, feeds: dict[str, np.ndarray], workdir: str | Path | None = None,
          backends: tuple[str, ...] = BACKENDS) -> list[str]:
    """Mismatches of nnjit on each backend against onnxruntime (empty: all outputs match)."""
    from nnjit.compiler import compile_model
    from nnjit.errors import NNJitError
    from nnjit.runtime.session import Session

    ref = reference(model_bytes, feeds)
    scaled = {k: (np.asarray(v * np.float32(1 + SCALE_STEP), np.float32)
                  if v.dtype == np.float32 else v) for k, v in feeds.items()}
    with np.errstate(all="ignore"):
        moved = reference(model_bytes, scaled)
    any_nan = any(a.dtype.kind == "f" and np.isnan(a).any() for a in ref.values())
    poison = SENTINEL if any_nan else np.float32(np.nan)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        bundle = Path(tmp) / "bundle"
        try:
            compile_model(model_bytes, bundle, backends=backends, web_runtime=False)
        except NNJitError as e:
            return [f"compile: {type(e).__name__}: {e}"]
        problems = []
        for backend in backends:
            sess = Session(bundle, backend, threads=2)
            _poison(sess, poison)
            try:
                outs = sess.run(feeds)
            except NNJitError as e:
                problems.append(f"{backend}: run: {type(e).__name__}: {e}")
                continue
            for name, want in ref.items():
                msg = compare(outs[name], want, inf_as_max=backend == "webgpu",
                              slack=moved[name])
                if msg is not None:
                    problems.append(f"{backend}: output {name}: {msg}")
        return problems
