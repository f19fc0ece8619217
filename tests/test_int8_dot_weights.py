"""Weight-only int8 matmuls on integer dots (nn-tensor-int8-weights dot=i16, `nnjit compile
--int8-dot ROWS`): the activation rows quantized to 12-bit integers per call, the int8 weights
in k pairs (`W#q8p`, nn_tensor.matmul_q8p), the column and row scales in the epilogue. Run in
wasmtime against a float64 numpy reference of the dequantized computation A @ (q * scale), on
ragged shapes (K odd, N not a multiple of 8, M = 1..4), fresh random inputs; the kernel alone
on a poisoned output; the shapes it does not take keep the float path."""

from __future__ import annotations

import secrets

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser
from xdsl.utils.exceptions import VerifyException

from nnjit.backends.wat_printer import wat_kernels
from nnjit.compiler import compile_model
from nnjit.errors import NNJitError
from nnjit.frontend.compact import quantize
from nnjit.interp.nn_loop_eval import run_kernel
from nnjit.interp.nn_tensor_eval import eval_op, unpack_q8p
from nnjit.passes.convert_nn_loop_to_wasm import ConvertNNLoopToWasmPass
from nnjit.passes.lowering import lowering_for
from nnjit.passes.lowering.schedule import Schedule
from nnjit.passes.nn_loop_unroll import NNLoopUnrollPass
from nnjit.passes.nn_tensor_int8_weights import DOT_BITS, DOT_MAX_K, pack_k_pairs
from nnjit.registry import make_context
from nnjit.runtime.session import Session
from nnjit.runtime.wasm import WasmRuntime

CTX = make_context()
SEED = secrets.randbits(31)
RNG = np.random.default_rng(SEED)

# |A - q * s| <= s / 2 per element with s = max|A row| / (2**(DOT_BITS-1) - 1): an output's
# error is at most s / 2 * sum_k |B[k, n]| (B the dequantized weight), plus float32 rounding
# (the i32 sum is exact; a few roundings of the float32 epilogue and of s).
STEP = 1.0 / (2 ** (DOT_BITS - 1) - 1)
F32_SLACK = 1e-5


def _model(m: int, k: int, n: int, gemm: bool) -> tuple[onnx.ModelProto, np.ndarray, np.ndarray]:
    """(model, W as the matmul reads it [K, N], bias or None): MatMul A[M, K] @ W, or Gemm
    0.5 * A @ W^T (W stored [N, K], transB) + 2 * bias."""
    w = (RNG.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
    bias = RNG.standard_normal(n).astype(np.float32)
    if gemm:
        inits = [numpy_helper.from_array(np.ascontiguousarray(w.T), "W"), numpy_helper.from_array(bias, "C")]
        node = helper.make_node("Gemm", ["A", "W", "C"], ["Y"], transB=1, alpha=0.5, beta=2.0)
    else:
        inits = [numpy_helper.from_array(w, "W")]
        node = helper.make_node("MatMul", ["A", "W"], ["Y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("A", TensorProto.FLOAT, [m, k])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [m, n])], inits)  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model, w, bias if gemm else None


def _dequantized(w: np.ndarray) -> np.ndarray:
    """W [K, N] as int8 per column (what `--weights int8` stores), back in float64."""
    b = quantize(w, 0, 8)
    return b.q.astype(np.float64) * b.scale.reshape(1, -1).astype(np.float64)


def _int8_entries(plan: dict) -> set[str]:
    return {k for k in plan["weights"]["entries"] if k.startswith("W#q8")}


def _compile(tmp_path, m, k, n, gemm, dot):
    model, w, bias = _model(m, k, n, gemm)
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    out = tmp_path / f"b{dot}"
    plan = compile_model(path, out, backends=["wasm"], web_runtime=False, weights="int8", int8_dot=dot)
    return plan, out, w, bias


@pytest.mark.parametrize("m", [1, 2, 3, 4])
@pytest.mark.parametrize("k,n,gemm", [(9, 20, False), (64, 36, True), (257, 13, False), (768, 100, True),
                                      (95, 48, False), (33, 64, True)])  # fmt: skip
def test_int8_dot_against_the_dequantized_matmul(tmp_path, m, k, n, gemm):
    plan, out, w, bias = _compile(tmp_path, m, k, n, gemm, 4)
    # one layout of the bytes (no float-path copy): k pairs, in panels of 8 columns where N allows
    assert _int8_entries(plan) == {"W#q8p#pack=kn16" if n % 8 == 0 else "W#q8p", "W#q8s"}
    a = (RNG.standard_normal((m, k)) * RNG.uniform(0.1, 10, (m, 1))).astype(np.float32)
    a[0, :: max(1, k // 5)] *= 8  # (rows with outliers: a coarser step)
    for threads in (1, 2):
        got = Session(out, "wasm", threads=threads).run({"A": a})["Y"].astype(np.float64)
        b = _dequantized(w)
        ref = a.astype(np.float64) @ b
        bound = (np.abs(a).max(axis=1, keepdims=True) * STEP / 2) @ np.abs(b).sum(axis=0, keepdims=True)
        bound += F32_SLACK * (np.abs(a).astype(np.float64) @ np.abs(b))
        if gemm:
            ref, bound = 0.5 * ref + 2.0 * bias, 0.5 * bound + F32_SLACK * np.abs(2.0 * bias)
        err = np.abs(got - ref)
        assert np.all(err <= bound), f"seed {SEED}, {threads} threads: error {err.max():.3g} over bound {bound[err > bound].min():.3g}"
        # (the bound is not vacuous: the quantization step shows in the error)
        assert err.max() > 0


def test_zero_rows_and_fallbacks(tmp_path):
    """A row of zeros gives the bias; M above ROWS, and K above DOT_MAX_K, keep the float path."""
    plan, out, w, bias = _compile(tmp_path, 3, 40, 16, True, 4)
    a = RNG.standard_normal((3, 40)).astype(np.float32)
    a[1] = 0
    got = Session(out, "wasm", threads=1).run({"A": a})["Y"]
    np.testing.assert_allclose(got[1], 2.0 * bias, rtol=1e-6)
    plan, _, _, _ = _compile(tmp_path, 3, 40, 16, False, 2)  # 3 rows > 2
    assert _int8_entries(plan) == {"W#q8#pack=kn8", "W#q8s"}
    model, _, _ = _model(1, DOT_MAX_K + 1, 8, False)
    onnx.save(model, tmp_path / "long.onnx")
    plan = compile_model(tmp_path / "long.onnx", tmp_path / "long", backends=["wasm"], web_runtime=False,
                         weights="int8", int8_dot=0)  # fmt: skip
    assert _int8_entries(plan) == {"W#q8#pack=kn8", "W#q8s"}


@pytest.mark.parametrize("bad", [-1, True, "4", 1.5])
def test_bad_int8_dot_option(tmp_path, bad):
    model, _, _ = _model(1, 8, 8, False)
    onnx.save(model, tmp_path / "m.onnx")
    with pytest.raises(NNJitError, match="int8_dot"):
        compile_model(tmp_path / "m.onnx", tmp_path / "b", backends=["wasm"], weights="int8", int8_dot=bad)


def test_int8_dot_without_a_wasm_backend_is_refused(tmp_path):
    model, _, _ = _model(1, 8, 8, False)
    onnx.save(model, tmp_path / "m.onnx")
    with pytest.raises(NNJitError, match="applies to the wasm backend"):
        compile_model(tmp_path / "m.onnx", tmp_path / "b", backends=["webgpu"], weights="int8", int8_dot=0)
    assert not (tmp_path / "b").exists()


# the kernel alone: matmul_q8p of 16-bit integers and k-pair bytes, cast to float32
_SRC = """
func.func @f(%a: tensor<{M}x{K}xi32>, %w: tensor<{K2}x{N2}xi8>) {{
  %r = nn_tensor.fused %a, %w {{kind = "matmul"}} : (tensor<{M}x{K}xi32>, tensor<{K2}x{N2}xi8>) -> tensor<{M}x{N}xf32> {{
  ^bb0(%x: tensor<{M}x{K}xi32>, %y: tensor<{K2}x{N2}xi8>):
    %m = nn_tensor.matmul_q8p %x, %y : (tensor<{M}x{K}xi32>, tensor<{K2}x{N2}xi8>) -> tensor<{M}x{N}xi32>
    %f = nn_tensor.cast %m : tensor<{M}x{N}xi32> -> tensor<{M}x{N}xf32>
    nn_tensor.yield %f : tensor<{M}x{N}xf32>
  }}
  func.return
}}"""


def _fused(m: int, n: int, k: int, k2: int | None = None):
    mod = Parser(CTX, _SRC.format(M=m, N=n, K=k, K2=(k + 1) // 2 if k2 is None else k2, N2=2 * n)).parse_module()
    mod.verify()
    return next(op for op in mod.walk() if op.name == "nn_tensor.fused")


def _case(m: int, n: int, k: int):
    """(inputs, exact reference): A of 12 bits (the ends included), B int8 (-128 and 127 too)."""
    a = RNG.integers(-2047, 2048, (m, k)).astype(np.int32)
    a[:, 0] = 2047
    b = RNG.integers(-128, 128, (k, n)).astype(np.int8)
    b[0, :] = -128
    ref = (a.astype(np.int64) @ b.astype(np.int64)).astype(np.float32)
    return [a, pack_k_pairs(b)], ref


@pytest.mark.parametrize("mnk", [(1, 20, 9), (4, 13, 1), (3, 48, 768), (2, 37, 3072), (5, 4, 2)])
@pytest.mark.parametrize("sched", [Schedule(target="wasm"), Schedule(target="wasm", reg=(1, 32), kstep=3)],
                         ids=["default", "reg1x32"])  # fmt: skip
def test_q8p_kernel_exact_in_wasmtime(mnk, sched):
    m, n, k = mnk
    inputs, ref = _case(m, n, k)
    kernel = lowering_for("matmul")(_fused(m, n, k), "k", sched)
    mod = ModuleOp([kernel])
    NNLoopUnrollPass().apply(CTX, mod)
    ConvertNNLoopToWasmPass().apply(CTX, mod)
    ((_, wat, man),) = wat_kernels(mod)
    assert "v128.load8x8_s" in wat and "i32x4.dot_i16x8_s" in wat
    for threads in (1, 2):
        rt = WasmRuntime(threads=threads, initial_bytes=8 << 20)
        try:
            out = rt.run_kernel(wat, man, [*inputs, None])[0]  # (None: a poisoned output)
        finally:
            rt.close()
        np.testing.assert_array_equal(out, ref, err_msg=f"{threads} threads")


def test_q8p_in_the_interpreters():
    m, n, k = 3, 12, 7
    inputs, ref = _case(m, n, k)
    out = np.full((m, n), np.nan, np.float32)
    run_kernel(lowering_for("matmul")(_fused(m, n, k), "k", Schedule(target="wasm")), [*inputs, out])
    np.testing.assert_array_equal(out, ref)
    (got,) = eval_op(_fused(m, n, k), inputs)
    np.testing.assert_array_equal(got, ref)
    b = RNG.integers(-128, 128, (k, n)).astype(np.int8)
    np.testing.assert_array_equal(unpack_q8p(pack_k_pairs(b), k), b)
    assert pack_k_pairs(b).shape == (4, 24) and not pack_k_pairs(b)[-1, 1::2].any()  # (0 past K)


def test_verifier_needs_pair_rows():
    with pytest.raises(VerifyException, match=r"ceil\(K / 2\), 2N\] = \[4, 2N\]"):
        _fused(2, 4, 7, k2=3)
