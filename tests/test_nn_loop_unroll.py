"""nn-loop-unroll, checked by execution: unrolling never changes what a kernel computes.

Kernels from convert-nn-tensor-to-nn-loop (and hand-written ones) get `unroll` factors on
their loops, go through nn-loop-unroll, and must give the same outputs in the nn_loop
interpreter; the structural effects (no marked loop left, steps multiplied, private-buffer
indices constant after a full unroll) are checked on the IR.
"""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.dialects import arith
from xdsl.dialects.builtin import IntegerAttr, ModuleOp
from xdsl.parser import Parser

from nnjit.dialects import nn_loop
from nnjit.interp.nn_loop_eval import run_kernel, run_model
from nnjit.passes.convert_nn_tensor_to_nn_loop import ConvertNNTensorToNNLoopPass
from nnjit.passes.nn_loop_unroll import NNLoopUnrollPass
from nnjit.registry import make_context

CTX = make_context()
RNG = np.random.default_rng(99)


def parse(src: str) -> ModuleOp:
    return Parser(CTX, src).parse_module()


def mark_unroll(module: ModuleOp, pick) -> int:
    """Sets `unroll` on every loop for which pick(loop) gives a factor; returns how many."""
    n = 0
    for op in module.walk():
        if isinstance(op, nn_loop.ForOp):
            u = pick(op)
            if u and u > 1 and op.trip_count % u == 0:
                op.unroll = IntegerAttr(u, 64)
                n += 1
    return n


def unrolled(module: ModuleOp) -> ModuleOp:
    m = module.clone()
    NNLoopUnrollPass().apply(CTX, m)
    m.verify()
    assert not any(
        isinstance(o, nn_loop.ForOp) and o.unroll.value.data > 1 for o in m.walk()
    ), "a marked loop survived"
    return m


SOFTMAX_LN = """
func.func @main(%x: tensor<3x8xf32>, %g: tensor<8xf32>, %b: tensor<8xf32>) -> tensor<3x8xf32> {
  %s = nn_tensor.softmax %x {axis = 1 : i64} : tensor<3x8xf32> -> tensor<3x8xf32>
  %l = nn_tensor.layer_norm %s, %g, %b {axis = 1 : i64, epsilon = 1.0e-05 : f32} : (tensor<3x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<3x8xf32>
  %t = nn_tensor.transpose %l {perm = array<i64: 1, 0>} : tensor<3x8xf32> -> tensor<8x3xf32>
  func.return %t : tensor<8x3xf32>
}"""


@pytest.mark.parametrize("target,opts", [("wgsl", {"workgroup": (2,), "vec": 1}),
                                         ("wgsl", {"workgroup": (4,), "tile": (8,)}),
                                         ("wasm", {"vec": 1}), ("wasm", {"rows": 3})])  # fmt: skip
@pytest.mark.parametrize("mode", ["full", "partial"])
def test_unrolled_kernels_compute_the_same(target, opts, mode):
    m = parse(SOFTMAX_LN)
    ConvertNNTensorToNNLoopPass(target=target, **opts).apply(CTX, m)

    def pick(loop: nn_loop.ForOp) -> int:
        if loop.map.data != "serial":
            return 0
        return loop.trip_count if mode == "full" else 2

    assert mark_unroll(m, pick) > 0
    ins = [RNG.standard_normal((3, 8)).astype(np.float32) for _ in range(1)]
    ins += [RNG.standard_normal(8).astype(np.float32) for _ in range(2)]
    before = run_model(m, ins, {})
    after = run_model(unrolled(m), ins, {})
    for x, y in zip(before, after):
        np.testing.assert_array_equal(x, y)


def test_unroll_of_mapped_loops_and_barriers():
    """Unrolling a workgroup loop and a serial loop around barriers keeps SPMD semantics."""
    src = """
nn_loop.kernel @k(%x: memref<4x4xf32> read, %o: memref<4x4xf32> write) kind "t" target "wgsl" {
  nn_loop.for %w = 0 to 4 map "workgroup.x" unroll 2 {
    nn_loop.for %l = 0 to 4 map "invocation.x" {
      %sh = nn_loop.alloc : memref<4xf32, #nn_loop<space workgroup>>
      %v = nn_loop.load %x[%w, %l] : memref<4x4xf32> -> f32
      nn_loop.store %v, %sh[%l] : f32, memref<4xf32, #nn_loop<space workgroup>>
      nn_loop.barrier
      nn_loop.for %s = 1 to 4 unroll 3 {
        %c4 = arith.constant 4 : index
        %n = arith.addi %l, %s : index
        %m = arith.remsi %n, %c4 : index
        %u = nn_loop.load %sh[%m] : memref<4xf32, #nn_loop<space workgroup>> -> f32
        %a = nn_loop.load %sh[%l] : memref<4xf32, #nn_loop<space workgroup>> -> f32
        %b = arith.addf %a, %u : f32
        nn_loop.barrier
        nn_loop.store %b, %sh[%l] : f32, memref<4xf32, #nn_loop<space workgroup>>
        nn_loop.barrier
      }
      %r = nn_loop.load %sh[%l] : memref<4xf32, #nn_loop<space workgroup>> -> f32
      nn_loop.store %r, %o[%w, %l] : f32, memref<4x4xf32>
    }
  }
}"""
    m = parse(src)
    k = next(o for o in m.ops if isinstance(o, nn_loop.KernelOp))
    x = RNG.standard_normal((4, 4)).astype(np.float32)
    o1 = np.full((4, 4), np.nan, np.float32)
    o2 = np.full((4, 4), np.nan, np.float32)
    run_kernel(k, [x, o1])
    u = unrolled(m)
    k2 = next(o for o in u.ops if isinstance(o, nn_loop.KernelOp))
    run_kernel(k2, [x, o2])
    np.testing.assert_array_equal(o1, o2)
    assert not np.isnan(o1).any()
    text = str(k2)
    assert 'nn_loop.for %w = 0 to 4 step 2 map "workgroup.x"' in text or "step 2" in text
    assert text.count("nn_loop.barrier") == 2 * (1 + 3 * 2)  # two copies of the body


def test_full_unroll_makes_private_indices_constant():
    """The wasm rule: after unrolling, every index into private memory is a constant."""
    src = """
nn_loop.kernel @k(%x: memref<4x4xf32> read, %o: memref<4xf32> write) kind "t" target "wasm" {
  nn_loop.for %r = 0 to 4 map "thread" {
    %acc = nn_loop.alloc : memref<4xf32, #nn_loop<space private>>
    nn_loop.for %j = 0 to 4 unroll 4 {
      %v = nn_loop.load %x[%r, %j] : memref<4x4xf32> -> f32
      %c1 = arith.constant 1 : index
      %c4 = arith.constant 4 : index
      %n = arith.addi %j, %c1 : index
      %m = arith.remsi %n, %c4 : index
      nn_loop.store %v, %acc[%m] : f32, memref<4xf32, #nn_loop<space private>>
    }
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %a = nn_loop.load %acc[%c0] : memref<4xf32, #nn_loop<space private>> -> f32
    %b = nn_loop.load %acc[%c1] : memref<4xf32, #nn_loop<space private>> -> f32
    %s = arith.subf %a, %b : f32
    nn_loop.store %s, %o[%r] : f32, memref<4xf32>
  }
}"""
    m = parse(src)
    u = unrolled(m)
    for op in u.walk():
        if isinstance(op, nn_loop.StoreOp | nn_loop.LoadOp) and nn_loop.memory_space(op.buffer.type) == "private":
            for i in op.indices:
                owner = i.owner
                folded = isinstance(owner, arith.ConstantOp) or (
                    isinstance(owner, arith.RemSIOp)
                    and all(isinstance(v.owner, arith.ConstantOp) for v in owner.operands)
                )  # remsi of constants is left to the backend's folding
                assert folded, f"non-constant private index in {op}"
    x = RNG.standard_normal((4, 4)).astype(np.float32)
    o1 = np.full(4, np.nan, np.float32)
    o2 = np.full(4, np.nan, np.float32)
    run_kernel(next(o for o in m.ops if isinstance(o, nn_loop.KernelOp)), [x, o1])
    run_kernel(next(o for o in u.ops if isinstance(o, nn_loop.KernelOp)), [x, o2])
    np.testing.assert_array_equal(o1, x[:, 3] - x[:, 0])
    np.testing.assert_array_equal(o1, o2)
