"""nn-loop-promote-registers, checked by execution: forwarding private elements never changes
what a kernel computes.

Kernels from convert-nn-tensor-to-nn-loop (matmuls with register tiles, reductions), unrolled
by nn-loop-unroll, must give the same outputs in the nn_loop interpreter (whose private
memory starts poisoned with NaN) before and after the pass, with fewer private accesses;
hand-written kernels with serial loops, ifs, thread loops and dynamic indices give numpy's
answer after it. tests/filecheck/passes/nn-loop-promote-registers.mlir shows the text.
"""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser

from nnjit.dialects import nn_loop
from nnjit.interp.nn_loop_eval import run_kernel, run_model
from nnjit.passes.convert_nn_tensor_to_nn_loop import ConvertNNTensorToNNLoopPass
from nnjit.passes.nn_loop_promote_registers import NNLoopPromoteRegistersPass
from nnjit.passes.nn_loop_unroll import NNLoopUnrollPass
from nnjit.registry import make_context

CTX = make_context()
RNG = np.random.default_rng()


def parse(src: str) -> ModuleOp:
    return Parser(CTX, src).parse_module()


def promoted(module: ModuleOp) -> ModuleOp:
    m = module.clone()
    NNLoopPromoteRegistersPass().apply(CTX, m)
    m.verify()
    return m


def private_accesses(module: ModuleOp) -> int:
    return sum(
        1
        for op in module.walk()
        if isinstance(op, nn_loop.LoadOp | nn_loop.StoreOp)
        and nn_loop.memory_space(op.buffer.type) == nn_loop.MemorySpace.PRIVATE  # type: ignore[arg-type]
    )


MODEL = """
func.func @main(%x: tensor<6x8xf32>, %w: tensor<8x12xf32>) -> (tensor<6x12xf32>, tensor<6x12xf32>) {
  %m = nn_tensor.matmul %x, %w : (tensor<6x8xf32>, tensor<8x12xf32>) -> tensor<6x12xf32>
  %s = nn_tensor.softmax %m {axis = 1 : i64} : tensor<6x12xf32> -> tensor<6x12xf32>
  func.return %m, %s : tensor<6x12xf32>, tensor<6x12xf32>
}"""


@pytest.mark.parametrize("target,opts", [
    ("wgsl", {}), ("wgsl", {"reg": (2, 4)}), ("wgsl", {"vec": 1}),
    ("wasm", {}), ("wasm", {"reg": (3, 4)}), ("wasm", {"rows": 2}),
])  # fmt: skip
def test_lowered_kernels_compute_the_same(target, opts):
    m = parse(MODEL)
    ConvertNNTensorToNNLoopPass(target=target, **opts).apply(CTX, m)
    NNLoopUnrollPass().apply(CTX, m)
    p = promoted(m)
    assert private_accesses(p) < private_accesses(m), "nothing was forwarded"
    ins = [RNG.standard_normal((6, 8)).astype(np.float32),
           RNG.standard_normal((8, 12)).astype(np.float32)]  # fmt: skip
    before = run_model(m, ins, {})
    after = run_model(p, ins, {})
    ref = ins[0].astype(np.float64) @ ins[1].astype(np.float64)
    for x, y in zip(before, after):
        np.testing.assert_array_equal(x, y)  # (the same arithmetic, in the same order)
    assert np.abs(after[0] - ref).max() <= 1e-5 * np.abs(ref).max()


def _kernel(module: ModuleOp) -> nn_loop.KernelOp:
    return next(o for o in module.ops if isinstance(o, nn_loop.KernelOp))


SERIAL_AND_IF = """
nn_loop.kernel @k(%x: memref<4x8xf32> read, %y: memref<4x2xf32> write) kind "t" target "wgsl" {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %zero = arith.constant 0.0 : f32
  nn_loop.for %r = 0 to 4 map "workgroup.x" {
    %acc = nn_loop.alloc : memref<2xf32, #nn_loop<space private>>
    nn_loop.store %zero, %acc[%c0] : f32, memref<2xf32, #nn_loop<space private>>
    nn_loop.store %zero, %acc[%c1] : f32, memref<2xf32, #nn_loop<space private>>
    nn_loop.for %k = 0 to 8 {
      %v = nn_loop.load %x[%r, %k] : memref<4x8xf32> -> f32
      %a = nn_loop.load %acc[%c0] : memref<2xf32, #nn_loop<space private>> -> f32
      %s = arith.addf %a, %v : f32
      nn_loop.store %s, %acc[%c0] : f32, memref<2xf32, #nn_loop<space private>>
      %pos = arith.cmpf ogt, %v, %zero : f32
      nn_loop.if %pos {
        %b = nn_loop.load %acc[%c1] : memref<2xf32, #nn_loop<space private>> -> f32
        %t = arith.addf %b, %v : f32
        nn_loop.store %t, %acc[%c1] : f32, memref<2xf32, #nn_loop<space private>>
      }
    }
    %lt = arith.cmpi slt, %r, %c2 : index
    nn_loop.if %lt {
      %a = nn_loop.load %acc[%c0] : memref<2xf32, #nn_loop<space private>> -> f32
      %d = arith.addf %a, %a : f32
      nn_loop.store %d, %acc[%c0] : f32, memref<2xf32, #nn_loop<space private>>
    }
    %i = arith.remsi %r, %c2 : index
    %e = nn_loop.load %acc[%i] : memref<2xf32, #nn_loop<space private>> -> f32
    %f = nn_loop.load %acc[%c1] : memref<2xf32, #nn_loop<space private>> -> f32
    %g = nn_loop.load %acc[%c1] : memref<2xf32, #nn_loop<space private>> -> f32
    %h = arith.addf %f, %g : f32
    nn_loop.store %e, %y[%r, %c0] : f32, memref<4x2xf32>
    nn_loop.store %h, %y[%r, %c1] : f32, memref<4x2xf32>
  }
}"""


def test_serial_loops_ifs_and_dynamic_indices():
    x = RNG.standard_normal((4, 8)).astype(np.float32)
    total = x.astype(np.float64).sum(axis=1)
    pos = np.where(x > 0, x, 0).astype(np.float64).sum(axis=1)
    doubled = np.where(np.arange(4) < 2, 2 * total, total)
    want = np.stack([np.where(np.arange(4) % 2 == 0, doubled, pos), 2 * pos], axis=1)
    m = parse(SERIAL_AND_IF)
    p = promoted(m)
    assert private_accesses(p) < private_accesses(m)
    y = np.full((4, 2), np.nan, np.float32)
    run_kernel(_kernel(p), [x, y])
    np.testing.assert_allclose(y, want, rtol=1e-5)


THREADS = """
nn_loop.kernel @k(%y: memref<9xf32> write) kind "t" target "wasm" {
  %c0 = arith.constant 0 : index
  %one = arith.constant 1.0 : f32
  %acc = nn_loop.alloc : memref<1xf32, #nn_loop<space private>>
  nn_loop.store %one, %acc[%c0] : f32, memref<1xf32, #nn_loop<space private>>
  nn_loop.for %i = 0 to 9 map "thread" {
    %a = nn_loop.load %acc[%c0] : memref<1xf32, #nn_loop<space private>> -> f32
    nn_loop.store %a, %y[%i] : f32, memref<9xf32>
    %b = arith.addf %a, %one : f32
    nn_loop.store %b, %acc[%c0] : f32, memref<1xf32, #nn_loop<space private>>
  }
}"""


def test_thread_loop_iterations_see_each_others_stores():
    """A thread loop iterates: what one iteration stores, the next one reads."""
    m = parse(THREADS)
    y1, y2 = np.full(9, np.nan, np.float32), np.full(9, np.nan, np.float32)
    run_kernel(_kernel(m), [y1])
    run_kernel(_kernel(promoted(m)), [y2])
    np.testing.assert_array_equal(y1, y2)
    assert not np.isnan(y2).any()
