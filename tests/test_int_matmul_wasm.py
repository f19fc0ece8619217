"""The Wasm integer matmul (nn_tensor.matmul_i16: i16 pairs, nn_loop.dot_i16x2,
i32x4.dot_i16x8_s): MatMulInteger's arithmetic on ragged shapes (M, N, K not multiples of the
register tile, K odd, zero points 0 and not 0, int8 and uint8 weights), run in wasmtime on 1 and
2 threads and by the nn_loop interpreter, against exact integer numpy (no rounding at all: the
i32 result must equal onnxruntime's bit for bit); the reference interpreter's rule for the op.
"""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser
from xdsl.utils.exceptions import VerifyException

from nnjit.backends.wat_printer import wat_kernels
from nnjit.interp.nn_loop_eval import run_kernel
from nnjit.interp.nn_tensor_eval import unpack_i16x2
from nnjit.passes.convert_nn_loop_to_wasm import ConvertNNLoopToWasmPass
from nnjit.passes.lowering import lowering_for
from nnjit.passes.lowering.schedule import Schedule
from nnjit.passes.nn_loop_unroll import NNLoopUnrollPass
from nnjit.registry import make_context
from nnjit.runtime.wasm import WasmRuntime

CTX = make_context()
RNG = np.random.default_rng(12)

# MatMulInteger's form: A the quantized activations (i32 values of uint8), B the weight minus
# its zero point packed in i16 pairs, the A zero point corrected with B's column sums
_SRC = """
func.func @f(%a: tensor<{M}x{K}xi32>, %w: tensor<{K2}x{N}xi32>, %za: tensor<i32>, %cs: tensor<{N}xi32>) {{
  %r = nn_tensor.fused %a, %w, %za, %cs {{kind = "matmul"}} : (tensor<{M}x{K}xi32>, tensor<{K2}x{N}xi32>, tensor<i32>, tensor<{N}xi32>) -> tensor<{M}x{N}xf32> {{
  ^bb0(%x: tensor<{M}x{K}xi32>, %y: tensor<{K2}x{N}xi32>, %z: tensor<i32>, %c: tensor<{N}xi32>):
    %m = nn_tensor.matmul_i16 %x, %y : (tensor<{M}x{K}xi32>, tensor<{K2}x{N}xi32>) -> tensor<{M}x{N}xi32>
    %zc = nn_tensor.mul %z, %c : (tensor<i32>, tensor<{N}xi32>) -> tensor<{N}xi32>
    %d = nn_tensor.sub %m, %zc : (tensor<{M}x{N}xi32>, tensor<{N}xi32>) -> tensor<{M}x{N}xi32>
    %f = nn_tensor.cast %d : tensor<{M}x{N}xi32> -> tensor<{M}x{N}xf32>
    nn_tensor.yield %f : tensor<{M}x{N}xf32>
  }}
  func.return
}}"""


def pack_i16x2(b: np.ndarray) -> np.ndarray:
    """[K, N] values in int16 range -> [ceil(K / 2), N] i32 words (low half: even k)."""
    k, n = b.shape
    if k % 2:
        b = np.vstack([b, np.zeros((1, n), b.dtype)])
    pairs = b.astype(np.int16).reshape(-1, 2, n).transpose(0, 2, 1)
    return np.ascontiguousarray(pairs).view(np.int32).reshape(-1, n)


def _fused(m: int, n: int, k: int):
    mod = Parser(CTX, _SRC.format(M=m, N=n, K=k, K2=(k + 1) // 2)).parse_module()
    mod.verify()
    return next(op for op in mod.walk() if op.name == "nn_tensor.fused")


def _case(m: int, n: int, k: int, signed: bool, zero: bool):
    a = RNG.integers(0, 256, (m, k)).astype(np.int32)
    za = np.array(RNG.integers(1, 256) if zero else 0, np.int32)
    lo, hi = (-128, 128) if signed else (0, 256)
    b = RNG.integers(lo, hi, (k, n))
    zb = RNG.integers(lo, hi, n) if zero else np.zeros(n, np.int64)
    bc = (b - zb).astype(np.int32)
    ref = ((a.astype(np.int64) - za) @ bc).astype(np.int32).astype(np.float32)
    return [a, pack_i16x2(bc), za, bc.sum(0).astype(np.int32)], ref


@pytest.fixture(scope="module")
def rts():
    rs = [WasmRuntime(threads=1, initial_bytes=8 << 20), WasmRuntime(threads=2, initial_bytes=8 << 20)]
    yield rs
    for r in rs:
        r.close()


@pytest.mark.parametrize("mnk", [(5, 7, 9), (16, 48, 48), (3, 4, 1), (37, 21, 13), (33, 40, 385)])
@pytest.mark.parametrize("signed,zero", [(True, False), (True, True), (False, True)])
@pytest.mark.parametrize("sched", [Schedule(target="wasm"), Schedule(target="wasm", reg=(3, 8), kstep=3)],
                         ids=["default", "reg3x8"])  # fmt: skip
def test_integer_matmul_exact_in_wasmtime(rts, mnk, signed, zero, sched):
    m, n, k = mnk
    kernel = lowering_for("matmul")(_fused(m, n, k), "k", sched)
    mod = ModuleOp([kernel])
    NNLoopUnrollPass().apply(CTX, mod)  # the conversion takes loops unrolled (nn-loop-unroll)
    ConvertNNLoopToWasmPass().apply(CTX, mod)
    ((_, wat, man),) = wat_kernels(mod)
    assert "i32x4.dot_i16x8_s" in wat
    inputs, ref = _case(m, n, k, signed, zero)
    outs = [rt.run_kernel(wat, man, [*inputs, None])[0] for rt in rts]
    np.testing.assert_array_equal(outs[0], ref)
    np.testing.assert_array_equal(outs[1], ref)


@pytest.mark.parametrize("mnk", [(3, 5, 7), (2, 8, 4)])
def test_integer_matmul_in_the_nn_loop_interpreter(mnk):
    m, n, k = mnk
    kernel = lowering_for("matmul")(_fused(m, n, k), "k", Schedule(target="wasm"))
    inputs, ref = _case(m, n, k, True, True)
    out = np.full((m, n), np.nan, np.float32)
    run_kernel(kernel, [*inputs, out])
    np.testing.assert_array_equal(out, ref)


def test_reference_rule_unpacks_pairs_and_wraps():
    from nnjit.interp.nn_tensor_eval import eval_op

    b = RNG.integers(-32768, 32768, (5, 3)).astype(np.int32)
    np.testing.assert_array_equal(unpack_i16x2(pack_i16x2(b), 5), b)
    fused = _fused(4, 6, 7)
    inputs, ref = _case(4, 6, 7, False, True)
    (got,) = eval_op(fused, inputs)
    np.testing.assert_array_equal(got, ref)


def test_verifier_needs_word_rows():
    src = _SRC.format(M=2, N=4, K=5, K2=2)
    mod = Parser(CTX, src).parse_module()
    with pytest.raises(VerifyException, match=r"ceil\(K / 2\) = 3"):
        mod.verify()
