"""The Wasm 8-bit integer matmul (nn_tensor.matmul_i8: B in byte quads plus a bias row, A split
into two 7-bit planes, nn_loop.dot_i8x4 -> i32x4.relaxed_dot_i8x16_i7x16_add_s, or exact
16-bit dots with relaxed SIMD off): MatMulInteger's arithmetic on ragged shapes (M, N, K not
multiples of the register tile or of 4, zero points 0 and not 0, A int8 and uint8), run in
wasmtime on 1 and 2 threads, with and without relaxed SIMD, and by the nn_loop interpreter,
against exact integer numpy (the i32 result must equal onnxruntime's bit for bit); the
reference interpreter's rule for the op.
"""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser
from xdsl.utils.exceptions import VerifyException

from nnjit.backends.wat_printer import wat_kernels
from nnjit.frontend.compact import pack_quads
from nnjit.interp.nn_loop_eval import run_kernel
from nnjit.interp.nn_tensor_eval import eval_op, unpack_i8x4
from nnjit.passes.convert_nn_loop_to_wasm import ConvertNNLoopToWasmPass
from nnjit.passes.lowering import lowering_for
from nnjit.passes.lowering.schedule import Schedule
from nnjit.passes.nn_loop_unroll import NNLoopUnrollPass
from nnjit.passes.nn_tensor_integer_matmul import materialize_i8x4
from nnjit.registry import make_context
from nnjit.runtime.wasm import WasmRuntime

CTX = make_context()
RNG = np.random.default_rng(13)

# A centred (q - za, -255..255, as nn-tensor-integer-matmul's A kernel writes it), B the
# weight minus its zero point (int8 range) in byte quads
_SRC = """
func.func @f(%a: tensor<{M}x{K}xi32>, %w: tensor<{K4}x{N}xi32>) {{
  %r = nn_tensor.fused %a, %w {{kind = "matmul"}} : (tensor<{M}x{K}xi32>, tensor<{K4}x{N}xi32>) -> tensor<{M}x{N}xf32> {{
  ^bb0(%x: tensor<{M}x{K}xi32>, %y: tensor<{K4}x{N}xi32>):
    %m = nn_tensor.matmul_i8 %x, %y : (tensor<{M}x{K}xi32>, tensor<{K4}x{N}xi32>) -> tensor<{M}x{N}xi32>
    %f = nn_tensor.cast %m : tensor<{M}x{N}xi32> -> tensor<{M}x{N}xf32>
    nn_tensor.yield %f : tensor<{M}x{N}xf32>
  }}
  func.return
}}"""


def _fused(m: int, n: int, k: int):
    mod = Parser(CTX, _SRC.format(M=m, N=n, K=k, K4=(k + 3) // 4 + 1)).parse_module()
    mod.verify()
    return next(op for op in mod.walk() if op.name == "nn_tensor.fused")


def _case(m: int, n: int, k: int, a_signed: bool, zero: bool, extreme: bool = False):
    """(inputs, reference): A = q - za for q of A's type, B = w - zw in int8 range."""
    lo, hi = (-128, 128) if a_signed else (0, 256)
    q = RNG.integers(lo, hi, (m, k))
    za = int(RNG.integers(lo, hi)) if zero else 0
    if extreme:  # (the ends of both ranges: A - za = +-255, B = -128 and 127)
        q = np.where(RNG.random((m, k)) < 0.5, lo, hi - 1)
        za = hi - 1 if a_signed else lo
    zw = RNG.integers(-20, 21, n) if zero else np.zeros(n, np.int64)
    b = RNG.integers(-128, 128, (k, n))
    if extreme:
        b = np.where(RNG.random((k, n)) < 0.5, -128, 127)
    bc = np.clip(b - zw, -128, 127)  # (B - zw as the frontend folds it, in int8 range)
    a = (q - za).astype(np.int32)
    ref = (a.astype(np.int64) @ bc).astype(np.int32).astype(np.float32)
    return [a, pack_quads(bc)], ref


@pytest.fixture(scope="module")
def rts():
    rs = [WasmRuntime(threads=t, initial_bytes=8 << 20, relaxed_simd=r) for t in (1, 2) for r in (True, False)]
    yield rs
    for r in rs:
        r.close()


def _wat(m: int, n: int, k: int, sched: Schedule, relaxed: bool):
    kernel = lowering_for("matmul")(_fused(m, n, k), "k", sched)
    mod = ModuleOp([kernel])
    NNLoopUnrollPass().apply(CTX, mod)  # the conversion takes loops unrolled (nn-loop-unroll)
    ConvertNNLoopToWasmPass(relaxed_simd=relaxed).apply(CTX, mod)
    ((_, wat, man),) = wat_kernels(mod)
    return wat, man


@pytest.mark.parametrize("mnk", [(5, 7, 9), (16, 48, 48), (3, 4, 1), (37, 21, 13), (33, 40, 385), (2, 12, 1536)])
@pytest.mark.parametrize("a_signed,zero", [(False, False), (False, True), (True, True)])
@pytest.mark.parametrize("sched", [Schedule(target="wasm"), Schedule(target="wasm", reg=(3, 8), kstep=3)],
                         ids=["default", "reg3x8"])  # fmt: skip
def test_int8_matmul_exact_in_wasmtime(rts, mnk, a_signed, zero, sched):
    m, n, k = mnk
    inputs, ref = _case(m, n, k, a_signed, zero)
    for relaxed in (True, False):
        wat, man = _wat(m, n, k, sched, relaxed)
        assert ("i32x4.relaxed_dot_i8x16_i7x16_add_s" in wat) == relaxed
        assert ("relaxed-simd" in man["features"]) == relaxed
        for rt in rts:
            if rt.relaxed_simd or not relaxed:
                out = rt.run_kernel(wat, man, [*inputs, None])[0]
                np.testing.assert_array_equal(out, ref, err_msg=f"relaxed {relaxed}, {rt.threads} threads")


@pytest.mark.parametrize("mnk", [(4, 8, 64), (3, 5, 7)])
def test_int8_matmul_extreme_values(rts, mnk):
    """A - za = +-255 and B = -128 / 127 (the relaxed dot's i16 pair sums at their largest)."""
    m, n, k = mnk
    inputs, ref = _case(m, n, k, False, True, extreme=True)
    wat, man = _wat(m, n, k, Schedule(target="wasm"), True)
    np.testing.assert_array_equal(rts[0].run_kernel(wat, man, [*inputs, None])[0], ref)


@pytest.mark.parametrize("mnk", [(3, 5, 7), (2, 8, 4)])
def test_int8_matmul_in_the_nn_loop_interpreter(mnk):
    m, n, k = mnk
    kernel = lowering_for("matmul")(_fused(m, n, k), "k", Schedule(target="wasm"))
    inputs, ref = _case(m, n, k, False, True)
    out = np.full((m, n), np.nan, np.float32)
    run_kernel(kernel, [*inputs, out])
    np.testing.assert_array_equal(out, ref)


def test_reference_rule_and_quads():
    b = RNG.integers(-128, 128, (9, 3))
    words = pack_quads(b)
    assert words.shape == (4, 3) and words.dtype == np.int32
    np.testing.assert_array_equal(unpack_i8x4(words, 9), b)
    np.testing.assert_array_equal(words[-1], -256 * b.sum(0))
    inputs, ref = _case(4, 6, 7, True, True)
    (got,) = eval_op(_fused(4, 6, 7), inputs)
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(materialize_i8x4(["w#i8x4", "v"], {"w": b.astype(np.float32)})["w#i8x4"], words)
    with pytest.raises(ValueError, match="8-bit integers"):
        materialize_i8x4(["w#i8x4"], {"w": b + 200.0})


def test_verifier_needs_word_rows():
    src = _SRC.format(M=2, N=4, K=5, K4=2)
    with pytest.raises(VerifyException, match=r"ceil\(K / 4\) \+ 1 = 3"):
        Parser(CTX, src).parse_module().verify()
