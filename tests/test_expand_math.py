"""nn-loop-expand-math and the approximations of nnjit/ir/approx.py, by execution.

Kernels holding math.erf / math.tanh / math.sin / math.cos (f32 and vector<4xf32>, both
targets) are expanded by the pass and run by the nn_loop reference interpreter on fresh random
inputs (wide range, NaN, +-inf, -0, tiny and subnormal values; for sin and cos |x| up to 1e5
and huge values): the result is what `approx.evaluate` computes, and within the documented
error of Python's math.erf / numpy's tanh, sin, cos in float64. Wasm kernels are also
converted (today's convert-nn-loop-to-wasm handles every op the wasm forms use) and run in
wasmtime (outputs poisoned with NaN). A dense sweep checks the error bounds stated in approx's
docstring. (The WGSL kernels of sin and cos run on lavapipe in tests/test_wgsl_backend.py.)"""

from __future__ import annotations

import math

import numpy as np
import pytest
from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser

from nnjit.backends.wat_printer import wat_kernels
from nnjit.dialects import nn_loop
from nnjit.errors import UnsupportedError
from nnjit.interp.nn_loop_eval import run_kernel
from nnjit.ir import approx
from nnjit.passes.convert_nn_loop_to_wasm import ConvertNNLoopToWasmPass
from nnjit.passes.nn_loop_expand_math import NNLoopExpandMathPass
from nnjit.passes.nn_loop_unroll import NNLoopUnrollPass
from nnjit.registry import make_context

CTX = make_context()
RNG = np.random.default_rng()  # fresh inputs each run; a failure prints the offending x
REF = {"erf": np.vectorize(math.erf, otypes=[np.float64]), "tanh": np.tanh, "sin": np.sin,
       "cos": np.cos}  # fmt: skip
# max |error| / max(|f(x)|, ...) per form: the docstring's measured bounds, rounded up
TOL = {("wgsl", "erf"): 2e-7, ("wgsl", "tanh"): 2e-7, ("wasm", "erf"): 4e-7, ("wasm", "tanh"): 4e-7}
SPECIALS = [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-45, 1e-40, -3e-39, 1e-30,
            3e38, -3e38, 0.625, 0.875, 3.9, -3.9, 4.0, 7.9053111, -7.9053111, 9.5, 10.0]  # fmt: skip


def kernel_src(fn: str, n: int, vec: bool, target: str) -> str:
    t = "vector<4xf32>" if vec else "f32"
    step = " step 4" if vec else ""
    loop_map = "thread" if target == "wasm" else "workgroup.x"
    return f"""
nn_loop.kernel @{fn}_k(%a: memref<{n}xf32> read, %y: memref<{n}xf32> write) kind "elementwise" target "{target}" {{
  nn_loop.for %i = 0 to {n}{step} map "{loop_map}" {{
    %v = nn_loop.load %a[%i] : memref<{n}xf32> -> {t}
    %o = math.{fn} %v : {t}
    nn_loop.store %o, %y[%i] : {t}, memref<{n}xf32>
  }}
}}"""


def expanded(fn: str, n: int, vec: bool, target: str) -> ModuleOp:
    m = Parser(CTX, kernel_src(fn, n, vec, target)).parse_module()
    NNLoopExpandMathPass(target=target).apply(CTX, m)
    m.verify()
    names = {op.name for op in m.walk()}
    assert f"math.{fn}" not in names
    # wasm: no exp (a helper call there); sin and cos need none on either target
    assert ("math.exp" in names) == (target == "wgsl" and fn in ("erf", "tanh"))
    return m


def inputs(n: int) -> np.ndarray:
    k = n - len(SPECIALS)
    mag = np.exp(RNG.uniform(np.log(1e-38), np.log(1e3), k // 2))
    x = np.concatenate([SPECIALS, RNG.uniform(-10, 10, k - k // 2), mag * RNG.choice([-1, 1], mag.size)])
    return x.astype(np.float32)


def check_against_reference(fn: str, target: str, x: np.ndarray, y: np.ndarray) -> None:
    """NaN exactly where x is NaN, +-1 at +-inf, the sign of zero kept, and within TOL."""
    nan = np.isnan(x)
    np.testing.assert_array_equal(np.isnan(y), nan)
    np.testing.assert_array_equal(np.signbit(y[~nan]), np.signbit(x[~nan]))
    inf = np.isinf(x)
    np.testing.assert_array_equal(y[inf], np.sign(x[inf]))
    ok = ~nan
    r = REF[fn](x[ok].astype(np.float64))
    err = np.abs(y[ok] - r) / np.maximum(np.abs(r), 1e-37)  # relative; absolute below 1e-37
    i = int(np.argmax(err))
    assert err[i] <= TOL[(target, fn)], (fn, target, float(err[i]), float(x[ok][i]))


@pytest.mark.parametrize("vec", [False, True], ids=["f32", "f32x4"])
@pytest.mark.parametrize("target", ["wgsl", "wasm"])
@pytest.mark.parametrize("fn", ["erf", "tanh"])
def test_expanded_kernel_in_interpreter(fn, target, vec):
    n = 1024
    m = expanded(fn, n, vec, target)
    k = next(op for op in m.ops if isinstance(op, nn_loop.KernelOp))
    x = inputs(n)
    y = np.zeros(n, np.float32)
    with np.errstate(all="ignore"):
        run_kernel(k, [x, y])
    check_against_reference(fn, target, x, y)
    # the numpy evaluation is the kernel's arithmetic, op for op (exp: numpy's either way)
    np.testing.assert_array_equal(y, approx.evaluate(target, fn, x))


@pytest.fixture(scope="module")
def rt():
    from nnjit.runtime.wasm import WasmRuntime

    try:
        r = WasmRuntime(threads=2, initial_bytes=4 << 20)
    except Exception as e:  # noqa: BLE001 - no wasmtime here: the interpreter tests still run
        pytest.skip(f"no Wasm runtime: {e}")
    yield r
    r.close()


@pytest.mark.parametrize("relaxed", [False, True], ids=["plain", "relaxed"])
@pytest.mark.parametrize("vec", [False, True], ids=["f32", "f32x4"])
@pytest.mark.parametrize("fn", ["erf", "tanh"])
def test_expanded_wasm_kernel_in_wasmtime(rt, fn, vec, relaxed):
    n = 4096
    m = expanded(fn, n, vec, "wasm")
    NNLoopUnrollPass().apply(CTX, m)
    ConvertNNLoopToWasmPass(relaxed_simd=relaxed).apply(CTX, m)
    ((_, wat, man),) = wat_kernels(m)
    assert "call" not in wat  # no helper functions (no exp, no erf or tanh)
    x = inputs(n)
    (y,) = rt.run_kernel(wat, man, [x, None])
    check_against_reference(fn, "wasm", x, y)
    if not relaxed:  # plain Wasm rounds every step, as the numpy evaluation does
        np.testing.assert_array_equal(y, approx.evaluate("wasm", fn, x))


@pytest.mark.parametrize("fused", [False, True], ids=["mul_add", "fma"])
@pytest.mark.parametrize("target", ["wgsl", "wasm"])
@pytest.mark.parametrize("fn", ["erf", "tanh"])
def test_documented_error_bounds_on_a_dense_sweep(fn, target, fused):
    hi = 8.0 if fn == "erf" else 12.0
    x = np.concatenate([np.linspace(-hi, hi, 200_001), np.linspace(-1e-3, 1e-3, 20_001),
                        np.logspace(-38, 1, 20_001)]).astype(np.float32)  # fmt: skip
    x = np.concatenate([x, -x])
    y = approx.evaluate(target, fn, x, fused=fused).astype(np.float64)
    r = REF[fn](x.astype(np.float64))
    abs_err = np.abs(y - r)
    assert abs_err.max() <= TOL[(target, fn)]
    assert (abs_err / np.maximum(np.abs(r), 1e-37)).max() <= TOL[(target, fn)]


def test_other_target_and_ops_outside_kernels_are_left_alone():
    src = kernel_src("erf", 8, False, "wasm") + kernel_src("tanh", 8, True, "wgsl")
    m = Parser(CTX, src).parse_module()
    NNLoopExpandMathPass(target="wasm").apply(CTX, m)
    names = [op.name for op in m.walk()]
    assert "math.erf" not in names and names.count("math.tanh") == 1


def test_bad_target_is_a_clear_error():
    m = Parser(CTX, kernel_src("erf", 8, False, "wasm")).parse_module()
    with pytest.raises(UnsupportedError, match="unknown target 'webgpu' \\(wgsl or wasm\\)"):
        NNLoopExpandMathPass(target="webgpu").apply(CTX, m)


# -------------------------------------------------------------------------- sin and cos

# |error| bounds (float64 reference, f32 arguments): approx's docstring measures 9.5e-8
# absolute for |x| <= 1e5 and 6.8e-8 relative for |x| < 0.5 (numpy's own float32: 7.0e-8)
SINCOS_RANGE = 1e5
SINCOS_ABS = 1e-7
SINCOS_REL_SMALL = 7e-8
SINCOS_SPECIALS = [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-45, 1e-30, -3e-39,
                   3e38, -3e38, 1e7, -6.6e6, 102943.0, -1e5, 1e4, math.pi / 4, -math.pi / 4,
                   math.pi / 2, math.pi, 512.0, 8191.5, 2.0**22, -(2.0**23)]  # fmt: skip


def sincos_inputs(n: int) -> np.ndarray:
    """Specials, then uniform over [-10, 10], [-1e4, 1e4] (positions times frequencies of a
    rotary embedding) and [-1e5, 1e5], and +-|x| log-uniform from 1e-38 to 1e5."""
    k = (n - len(SINCOS_SPECIALS)) // 4
    mag = np.exp(RNG.uniform(np.log(1e-38), np.log(SINCOS_RANGE), k))
    x = np.concatenate([SINCOS_SPECIALS, RNG.uniform(-10, 10, k), RNG.uniform(-1e4, 1e4, k),
                        mag * RNG.choice([-1, 1], k),
                        RNG.uniform(-SINCOS_RANGE, SINCOS_RANGE, n - len(SINCOS_SPECIALS) - 3 * k)])  # fmt: skip
    return x.astype(np.float32)


def check_sincos(fn: str, x: np.ndarray, y: np.ndarray) -> None:
    """NaN exactly where x is NaN or +-inf, |y| <= 1 for every finite x, and within SINCOS_ABS
    of the float64 value for |x| <= 1e5 (SINCOS_REL_SMALL relative below 0.5)."""
    bad = ~np.isfinite(x)
    np.testing.assert_array_equal(np.isnan(y), bad)
    assert np.all(np.abs(y[~bad]) <= 1.0)
    ok = np.abs(x) <= SINCOS_RANGE
    r = REF[fn](x[ok].astype(np.float64))
    err = np.abs(y[ok] - r)
    i = int(np.argmax(err))
    assert err[i] <= SINCOS_ABS, (fn, float(err[i]), float(x[ok][i]))
    small = np.abs(x[ok]) < 0.5
    rel = err[small] / np.maximum(np.abs(r[small]), 1e-37)
    assert rel.max(initial=0.0) <= SINCOS_REL_SMALL, (fn, float(rel.max()))


@pytest.mark.parametrize("vec", [False, True], ids=["f32", "f32x4"])
@pytest.mark.parametrize("target", ["wgsl", "wasm"])
@pytest.mark.parametrize("fn", ["sin", "cos"])
def test_sincos_expanded_kernel_in_interpreter(fn, target, vec):
    n = 1024
    m = expanded(fn, n, vec, target)
    k = next(op for op in m.ops if isinstance(op, nn_loop.KernelOp))
    x = sincos_inputs(n)
    y = np.full(n, np.nan, np.float32)
    with np.errstate(all="ignore"):
        run_kernel(k, [x, y])
    check_sincos(fn, x, y)
    np.testing.assert_array_equal(y, approx.evaluate(target, fn, x))


@pytest.mark.parametrize("relaxed", [False, True], ids=["plain", "relaxed"])
@pytest.mark.parametrize("vec", [False, True], ids=["f32", "f32x4"])
@pytest.mark.parametrize("fn", ["sin", "cos"])
def test_sincos_expanded_wasm_kernel_in_wasmtime(rt, fn, vec, relaxed):
    n = 4096
    m = expanded(fn, n, vec, "wasm")
    NNLoopUnrollPass().apply(CTX, m)
    ConvertNNLoopToWasmPass(relaxed_simd=relaxed).apply(CTX, m)
    ((_, wat, man),) = wat_kernels(m)
    assert "call" not in wat  # no helper functions
    x = sincos_inputs(n)
    (y,) = rt.run_kernel(wat, man, [x, None])
    check_sincos(fn, x, y)
    exact = [approx.evaluate("wasm", fn, x, fused=f) for f in (False, True)]
    if relaxed:  # relaxed_madd may fuse or not, per lane
        assert np.all((y == exact[0]) | (y == exact[1]) | np.isnan(y))
    else:  # plain Wasm rounds every step, as the numpy evaluation does
        np.testing.assert_array_equal(y, exact[0])


@pytest.mark.parametrize("fused", [False, True], ids=["mul_add", "fma"])
@pytest.mark.parametrize("fn", ["sin", "cos"])
def test_sincos_documented_error_bounds_on_a_dense_sweep(fn, fused):
    x = np.concatenate([np.linspace(-SINCOS_RANGE, SINCOS_RANGE, 200_001),
                        np.linspace(-10, 10, 40_001), np.logspace(-38, 0, 2_001)]).astype(np.float32)  # fmt: skip
    x = np.concatenate([x, -x])
    y = approx.evaluate("wasm", fn, x, fused=fused)
    check_sincos(fn, x, y)
    assert np.array_equal(y, approx.evaluate("wgsl", fn, x, fused=fused))  # one form


def test_sincos_reduction_survives_reassociation():
    """Each part of pi/2 multiplies its own copy of k: a driver that folds
    fma(k, b, fma(k, c, d)) into fma(k, b + c, d) (lavapipe does) finds no two parts to merge."""
    m = expanded("sin", 8, False, "wasm")
    k = next(op for op in m.walk() if op.name == "math.roundeven").results[0]
    v = next(op for op in m.walk() if op.name == "nn_loop.load").results[0]
    chain = []  # r = fma(k_i, -C_i, r), from r = x
    for _ in approx.SINCOS_PIO2:
        (op,) = [u.operation for u in v.uses if u.operation.name == "math.fma" and u.index == 2]
        chain.append(op)
        v = op.results[0]
    assert chain[0].operands[0] is k
    assert len({id(op.operands[0]) for op in chain}) == 3
