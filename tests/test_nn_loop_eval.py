"""The nn_loop reference interpreter (nnjit/interp/nn_loop_eval.py) on hand-written kernels:
every op docs/ir.md lists, SPMD semantics (barriers, workgroup vs private memory), bounds
checks, and running a bufferized @main."""

from __future__ import annotations

import math

import numpy as np
import pytest
from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser

from nnjit.dialects import nn_loop
from nnjit.interp.nn_loop_eval import POISON_I32, compile_kernel, run_kernel, run_model
from nnjit.registry import make_context

CTX = make_context()
RNG = np.random.default_rng(7)


def parse(src: str) -> ModuleOp:
    m = Parser(CTX, src).parse_module()
    m.verify()
    return m


def kernel(src: str) -> nn_loop.KernelOp:
    return next(op for op in parse(src).ops if isinstance(op, nn_loop.KernelOp))


# -------------------------------------------------------------------------- scalar ops


FLOAT_OPS = """
nn_loop.kernel @f(%x: memref<8xf32> read, %y: memref<8xf32> read, %o: memref<16x8xf32> write) kind "t" target "wasm" {
  nn_loop.for %i = 0 to 8 map "thread" {
    %a = nn_loop.load %x[%i] : memref<8xf32> -> f32
    %b = nn_loop.load %y[%i] : memref<8xf32> -> f32
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c3 = arith.constant 3 : index
    %c4 = arith.constant 4 : index
    %c5 = arith.constant 5 : index
    %c6 = arith.constant 6 : index
    %c7 = arith.constant 7 : index
    %c8 = arith.constant 8 : index
    %c9 = arith.constant 9 : index
    %c10 = arith.constant 10 : index
    %c11 = arith.constant 11 : index
    %c12 = arith.constant 12 : index
    %c13 = arith.constant 13 : index
    %c14 = arith.constant 14 : index
    %c15 = arith.constant 15 : index
    %r0 = arith.addf %a, %b : f32
    nn_loop.store %r0, %o[%c0, %i] : f32, memref<16x8xf32>
    %r1 = arith.subf %a, %b : f32
    nn_loop.store %r1, %o[%c1, %i] : f32, memref<16x8xf32>
    %r2 = arith.mulf %a, %b : f32
    nn_loop.store %r2, %o[%c2, %i] : f32, memref<16x8xf32>
    %r3 = arith.divf %a, %b : f32
    nn_loop.store %r3, %o[%c3, %i] : f32, memref<16x8xf32>
    %r4 = arith.maximumf %a, %b : f32
    nn_loop.store %r4, %o[%c4, %i] : f32, memref<16x8xf32>
    %r5 = arith.minimumf %a, %b : f32
    nn_loop.store %r5, %o[%c5, %i] : f32, memref<16x8xf32>
    %r6 = arith.negf %a : f32
    nn_loop.store %r6, %o[%c6, %i] : f32, memref<16x8xf32>
    %p = arith.cmpf olt, %a, %b : f32
    %r7 = arith.select %p, %a, %b : f32
    nn_loop.store %r7, %o[%c7, %i] : f32, memref<16x8xf32>
    %r8 = math.exp %a : f32
    nn_loop.store %r8, %o[%c8, %i] : f32, memref<16x8xf32>
    %r9 = math.tanh %a : f32
    nn_loop.store %r9, %o[%c9, %i] : f32, memref<16x8xf32>
    %r10 = math.erf %a : f32
    nn_loop.store %r10, %o[%c10, %i] : f32, memref<16x8xf32>
    %ab = math.absf %a : f32
    %r11 = math.sqrt %ab : f32
    nn_loop.store %r11, %o[%c11, %i] : f32, memref<16x8xf32>
    %r12 = math.rsqrt %ab : f32
    nn_loop.store %r12, %o[%c12, %i] : f32, memref<16x8xf32>
    %r13 = math.log %ab : f32
    nn_loop.store %r13, %o[%c13, %i] : f32, memref<16x8xf32>
    %r14 = math.powf %ab, %b : f32
    nn_loop.store %r14, %o[%c14, %i] : f32, memref<16x8xf32>
    %r15 = math.fma %a, %b, %a : f32
    nn_loop.store %r15, %o[%c15, %i] : f32, memref<16x8xf32>
  }
}"""


def test_float_ops():
    a = RNG.standard_normal(8).astype(np.float32)
    b = RNG.standard_normal(8).astype(np.float32)
    out = np.full((16, 8), np.nan, np.float32)
    run_kernel(kernel(FLOAT_OPS), [a, b, out])
    x, y = a.astype(np.float64), b.astype(np.float64)
    erf = np.vectorize(math.erf)
    ab = np.abs(x)
    ref = [x + y, x - y, x * y, x / y, np.maximum(x, y), np.minimum(x, y), -x,
           np.where(x < y, x, y), np.exp(x), np.tanh(x), erf(x), np.sqrt(ab), 1 / np.sqrt(ab),
           np.log(ab), ab**y, x * y + x]  # fmt: skip
    for k, r in enumerate(ref):
        np.testing.assert_allclose(out[k], r, rtol=2e-6, atol=1e-6, err_msg=f"row {k}")
        assert out[k].dtype == np.float32


INT_OPS = """
nn_loop.kernel @i(%x: memref<6xi32> read, %y: memref<6xi32> read, %o: memref<12x6xi32> write) kind "t" target "wasm" {
  nn_loop.for %i = 0 to 6 {
    %a = nn_loop.load %x[%i] : memref<6xi32> -> i32
    %b = nn_loop.load %y[%i] : memref<6xi32> -> i32
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c3 = arith.constant 3 : index
    %c4 = arith.constant 4 : index
    %c5 = arith.constant 5 : index
    %c6 = arith.constant 6 : index
    %c7 = arith.constant 7 : index
    %c8 = arith.constant 8 : index
    %c9 = arith.constant 9 : index
    %c10 = arith.constant 10 : index
    %c11 = arith.constant 11 : index
    %r0 = arith.addi %a, %b : i32
    nn_loop.store %r0, %o[%c0, %i] : i32, memref<12x6xi32>
    %r1 = arith.subi %a, %b : i32
    nn_loop.store %r1, %o[%c1, %i] : i32, memref<12x6xi32>
    %r2 = arith.muli %a, %b : i32
    nn_loop.store %r2, %o[%c2, %i] : i32, memref<12x6xi32>
    %r3 = arith.divsi %a, %b : i32
    nn_loop.store %r3, %o[%c3, %i] : i32, memref<12x6xi32>
    %r4 = arith.remsi %a, %b : i32
    nn_loop.store %r4, %o[%c4, %i] : i32, memref<12x6xi32>
    %r5 = arith.minsi %a, %b : i32
    nn_loop.store %r5, %o[%c5, %i] : i32, memref<12x6xi32>
    %r6 = arith.maxsi %a, %b : i32
    nn_loop.store %r6, %o[%c6, %i] : i32, memref<12x6xi32>
    %lt = arith.cmpi slt, %a, %b : i32
    %ge = arith.cmpi sge, %a, %b : i32
    %ne = arith.cmpi ne, %a, %b : i32
    %and = arith.andi %lt, %ne : i1
    %or = arith.ori %ge, %and : i1
    %t = arith.constant true
    %xor = arith.xori %or, %t : i1
    %r7 = arith.extui %lt : i1 to i32
    nn_loop.store %r7, %o[%c7, %i] : i32, memref<12x6xi32>
    %r8 = arith.extui %xor : i1 to i32
    nn_loop.store %r8, %o[%c8, %i] : i32, memref<12x6xi32>
    %f = arith.sitofp %a : i32 to f32
    %h = arith.constant 2.5 : f32
    %g = arith.divf %f, %h : f32
    %r9 = arith.fptosi %g : f32 to i32
    nn_loop.store %r9, %o[%c9, %i] : i32, memref<12x6xi32>
    %tr = arith.trunci %a : i32 to i1
    %r10 = arith.extui %tr : i1 to i32
    nn_loop.store %r10, %o[%c10, %i] : i32, memref<12x6xi32>
    %ix = arith.index_cast %a : i32 to index
    %ix2 = arith.muli %ix, %i : index
    %r11 = arith.index_cast %ix2 : index to i32
    nn_loop.store %r11, %o[%c11, %i] : i32, memref<12x6xi32>
  }
}"""


def test_integer_ops_truncate_and_wrap():
    a = np.array([7, -7, 7, -7, 2**31 - 1, 0], np.int32)
    b = np.array([2, 2, -2, -2, 2, 3], np.int32)
    out = np.full((12, 6), POISON_I32, np.int32)
    run_kernel(kernel(INT_OPS), [a, b, out])
    x, y = a.astype(np.int64), b.astype(np.int64)
    wrap = lambda v: ((v + 2**31) % 2**32 - 2**31).astype(np.int32)  # noqa: E731
    trunc_div = np.trunc(x / y).astype(np.int64)
    ref = [wrap(x + y), wrap(x - y), wrap(x * y), trunc_div, x - trunc_div * y,
           np.minimum(x, y), np.maximum(x, y), (x < y), ~((x >= y) | ((x < y) & (x != y))),
           np.trunc(x.astype(np.float32) / np.float32(2.5)), x & 1, wrap(x * np.arange(6))]  # fmt: skip
    for k, r in enumerate(ref):
        np.testing.assert_array_equal(out[k], np.asarray(r).astype(np.int32), err_msg=f"row {k}")


VECTOR_OPS = """
nn_loop.kernel @v(%x: memref<2x8xf32> read, %o: memref<2x8xf32> write, %s: memref<2x3xf32> write) kind "t" target "wasm" {
  nn_loop.for %r = 0 to 2 map "thread" {
    %acc = nn_loop.alloc : memref<1xvector<4xf32>, #nn_loop<space private>>
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %z = arith.constant 0.0 : f32
    %zv = nn_loop.splat %z : f32 -> vector<4xf32>
    nn_loop.store %zv, %acc[%c0] : vector<4xf32>, memref<1xvector<4xf32>, #nn_loop<space private>>
    nn_loop.for %j = 0 to 8 step 4 {
      %v = nn_loop.load %x[%r, %j] : memref<2x8xf32> -> vector<4xf32>
      %e = math.exp %v : vector<4xf32>
      %m = arith.maximumf %v, %e : vector<4xf32>
      nn_loop.store %m, %o[%r, %j] : vector<4xf32>, memref<2x8xf32>
      %a = nn_loop.load %acc[%c0] : memref<1xvector<4xf32>, #nn_loop<space private>> -> vector<4xf32>
      %n = arith.addf %a, %v : vector<4xf32>
      nn_loop.store %n, %acc[%c0] : vector<4xf32>, memref<1xvector<4xf32>, #nn_loop<space private>>
    }
    %t = nn_loop.load %acc[%c0] : memref<1xvector<4xf32>, #nn_loop<space private>> -> vector<4xf32>
    %sum = nn_loop.reduce_lanes add %t : vector<4xf32> -> f32
    %max = nn_loop.reduce_lanes max %t : vector<4xf32> -> f32
    %l2 = nn_loop.extract %t {lane = 2 : i64} : vector<4xf32> -> f32
    nn_loop.store %sum, %s[%r, %c0] : f32, memref<2x3xf32>
    nn_loop.store %max, %s[%r, %c1] : f32, memref<2x3xf32>
    nn_loop.store %l2, %s[%r, %c2] : f32, memref<2x3xf32>
  }
}"""


def test_vector_ops():
    x = RNG.standard_normal((2, 8)).astype(np.float32)
    o = np.full((2, 8), np.nan, np.float32)
    s = np.full((2, 3), np.nan, np.float32)
    run_kernel(kernel(VECTOR_OPS), [x, o, s])
    np.testing.assert_allclose(o, np.maximum(x, np.exp(x)), rtol=1e-6)
    lanes = x[:, :4] + x[:, 4:]
    np.testing.assert_allclose(s[:, 0], lanes.sum(1), rtol=1e-5)
    np.testing.assert_allclose(s[:, 1], lanes.max(1), rtol=1e-6)
    np.testing.assert_allclose(s[:, 2], lanes[:, 2], rtol=1e-6)


# ------------------------------------------------------------------------------ SPMD


ROTATE = """
nn_loop.kernel @rot(%x: memref<2x4xf32> read, %o: memref<2x4xf32> write) kind "t" target "wgsl" {
  nn_loop.for %w = 0 to 2 map "workgroup.x" {
    nn_loop.for %l = 0 to 4 map "invocation.x" {
      %sh = nn_loop.alloc : memref<4xf32, #nn_loop<space workgroup>>
      %v = nn_loop.load %x[%w, %l] : memref<2x4xf32> -> f32
      nn_loop.store %v, %sh[%l] : f32, memref<4xf32, #nn_loop<space workgroup>>
      nn_loop.barrier
      %c1 = arith.constant 1 : index
      %c4 = arith.constant 4 : index
      %n = arith.addi %l, %c1 : index
      %m = arith.remsi %n, %c4 : index
      %u = nn_loop.load %sh[%m] : memref<4xf32, #nn_loop<space workgroup>> -> f32
      nn_loop.store %u, %o[%w, %l] : f32, memref<2x4xf32>
    }
  }
}"""


def test_barrier_makes_neighbours_writes_visible():
    """Each invocation reads what its neighbour wrote before the barrier: only lockstep
    execution of a workgroup's invocations gets this right."""
    x = RNG.standard_normal((2, 4)).astype(np.float32)
    o = np.full((2, 4), np.nan, np.float32)
    run_kernel(kernel(ROTATE), [x, o])
    np.testing.assert_array_equal(o, np.roll(x, -1, axis=1))


def test_without_barrier_reads_poison():
    """Without the barrier, invocation l reads slot l+1 before its owner wrote it: NaN."""
    src = ROTATE.replace("      nn_loop.barrier\n", "")
    x = RNG.standard_normal((2, 4)).astype(np.float32)
    o = np.full((2, 4), 0.0, np.float32)
    run_kernel(kernel(src), [x, o])
    assert np.isnan(o).any()


def test_workgroup_memory_is_per_workgroup_and_private_per_invocation():
    src = """
nn_loop.kernel @k(%o: memref<3x2xf32> write) kind "t" target "wgsl" {
  nn_loop.for %w = 0 to 3 map "workgroup.x" {
    nn_loop.for %l = 0 to 2 map "invocation.x" {
      %sh = nn_loop.alloc : memref<1xf32, #nn_loop<space workgroup>>
      %p = nn_loop.alloc : memref<1xf32, #nn_loop<space private>>
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %wi = arith.index_cast %w : index to i32
      %wf = arith.sitofp %wi : i32 to f32
      %li = arith.index_cast %l : index to i32
      %lf = arith.sitofp %li : i32 to f32
      %first = arith.cmpi eq, %l, %c0 : index
      nn_loop.if %first {
        %old = nn_loop.load %sh[%c0] : memref<1xf32, #nn_loop<space workgroup>> -> f32
        %s = arith.addf %old, %wf : f32
        nn_loop.store %s, %sh[%c0] : f32, memref<1xf32, #nn_loop<space workgroup>>
      }
      nn_loop.store %lf, %p[%c0] : f32, memref<1xf32, #nn_loop<space private>>
      nn_loop.barrier
      %a = nn_loop.load %sh[%c0] : memref<1xf32, #nn_loop<space workgroup>> -> f32
      %b = nn_loop.load %p[%c0] : memref<1xf32, #nn_loop<space private>> -> f32
      %r = arith.addf %a, %b : f32
      nn_loop.store %r, %o[%w, %l] : f32, memref<3x2xf32>
    }
  }
}"""
    o = np.zeros((3, 2), np.float32)
    run_kernel(kernel(src), [o])
    # fresh workgroup memory is NaN (poison): old + w stays NaN, in every workgroup
    assert np.isnan(o).all()
    src2 = src.replace("%s = arith.addf %old, %wf : f32", "%s = arith.addf %wf, %wf : f32")
    run_kernel(kernel(src2), [o])
    np.testing.assert_array_equal(o, [[0, 1], [2, 3], [4, 5]])


def test_barrier_in_divergent_control_flow_is_detected():
    src = """
nn_loop.kernel @k(%o: memref<2xf32> write) kind "t" target "wgsl" {
  nn_loop.for %w = 0 to 1 map "workgroup.x" {
    nn_loop.for %l = 0 to 2 map "invocation.x" {
      %c0 = arith.constant 0 : index
      %p = arith.cmpi eq, %l, %c0 : index
      nn_loop.if %p {
        nn_loop.barrier
      }
    }
  }
}"""
    with pytest.raises(RuntimeError, match="non-uniform"):
        run_kernel(kernel(src), [np.zeros(2, np.float32)])


def test_two_dimensional_workgroup():
    src = """
nn_loop.kernel @k(%o: memref<4x6xi32> write) kind "t" target "wgsl" {
  nn_loop.for %wy = 0 to 2 map "workgroup.y" {
    nn_loop.for %wx = 0 to 3 map "workgroup.x" {
      nn_loop.for %iy = 0 to 2 map "invocation.y" {
        nn_loop.for %ix = 0 to 2 map "invocation.x" {
          %c2 = arith.constant 2 : index
          %r0 = arith.muli %wy, %c2 : index
          %r = arith.addi %r0, %iy : index
          %k0 = arith.muli %wx, %c2 : index
          %k = arith.addi %k0, %ix : index
          %c10 = arith.constant 10 : index
          %v0 = arith.muli %r, %c10 : index
          %v1 = arith.addi %v0, %k : index
          %v = arith.index_cast %v1 : index to i32
          nn_loop.store %v, %o[%r, %k] : i32, memref<4x6xi32>
        }
      }
    }
  }
}"""
    o = np.full((4, 6), POISON_I32, np.int32)
    run_kernel(kernel(src), [o])
    np.testing.assert_array_equal(o, np.arange(4)[:, None] * 10 + np.arange(6))


# ------------------------------------------------------------------------- bounds, types


@pytest.mark.parametrize("index,width", [("%c4", 1), ("%cm1", 1), ("%c2", 4)])
def test_out_of_bounds_access_raises(index, width):
    t = "vector<4xf32>" if width == 4 else "f32"
    src = f"""
nn_loop.kernel @k(%x: memref<4xf32> read, %o: memref<4xf32> write) kind "t" target "wasm" {{
  %c4 = arith.constant 4 : index
  %c2 = arith.constant 2 : index
  %cm1 = arith.constant -1 : index
  %v = nn_loop.load %x[{index}] : memref<4xf32> -> {t}
}}"""
    with pytest.raises(IndexError, match="out of bounds"):
        run_kernel(kernel(src), [np.zeros(4, np.float32), np.zeros(4, np.float32)])


def test_buffer_type_checked():
    with pytest.raises(ValueError, match="expected memref<8xf32>"):
        run_kernel(kernel(FLOAT_OPS), [np.zeros(8, np.float64), np.zeros(8, np.float32),
                                       np.zeros((16, 8), np.float32)])  # fmt: skip


def test_thread_loop_runs_every_iteration_and_unroll_is_ignored():
    src = """
nn_loop.kernel @k(%o: memref<10xi32> write) kind "t" target "wasm" {
  nn_loop.for %i = 0 to 10 step 2 map "thread" unroll 5 {
    %v = arith.index_cast %i : index to i32
    nn_loop.store %v, %o[%i] : i32, memref<10xi32>
    %c1 = arith.constant 1 : index
    %j = arith.addi %i, %c1 : index
    %w = arith.index_cast %j : index to i32
    nn_loop.store %w, %o[%j] : i32, memref<10xi32>
  }
}"""
    o = np.full(10, POISON_I32, np.int32)
    run_kernel(kernel(src), [o])
    np.testing.assert_array_equal(o, np.arange(10))


def test_compile_kernel_gives_source():
    fn, src = compile_kernel(kernel(ROTATE))
    assert callable(fn) and "_run_spmd" in src and "yield" in src


# ------------------------------------------------------------------------------ models


MODEL = """
nn_loop.kernel @scale(%a: memref<2x3xf32> read, %w: memref<3xf32> read, %o: memref<2x3xf32> write) kind "t" target "wasm" {
  nn_loop.for %i = 0 to 2 map "thread" {
    nn_loop.for %j = 0 to 3 {
      %x = nn_loop.load %a[%i, %j] : memref<2x3xf32> -> f32
      %y = nn_loop.load %w[%j] : memref<3xf32> -> f32
      %z = arith.mulf %x, %y : f32
      nn_loop.store %z, %o[%i, %j] : f32, memref<2x3xf32>
    }
  }
}
nn_loop.kernel @pick(%a: memref<6xf32> read, %ids: memref<2xi32> read, %c: memref<2xi32> read, %o: memref<2xf32> write) kind "t" target "wasm" {
  nn_loop.for %i = 0 to 2 map "thread" {
    %k = nn_loop.load %ids[%i] : memref<2xi32> -> i32
    %d = nn_loop.load %c[%i] : memref<2xi32> -> i32
    %s = arith.addi %k, %d : i32
    %ix = arith.index_cast %s : i32 to index
    %v = nn_loop.load %a[%ix] : memref<6xf32> -> f32
    nn_loop.store %v, %o[%i] : f32, memref<2xf32>
  }
}
func.func @main(%x: memref<2x3xf32>, %ids: memref<2xi32>, %out: memref<2xf32>) attributes {nnjit.num_outputs = 1 : i64} {
  %w = nn_loop.weight "w" : memref<3xf32>
  %c = nn_loop.constant dense<[1, 0]> : tensor<2xi32> : memref<2xi32>
  %t = nn_loop.buffer : memref<2x3xf32>
  nn_loop.launch @scale(%x, %w, %t) : memref<2x3xf32>, memref<3xf32>, memref<2x3xf32>
  %v = nn_loop.view %t : memref<2x3xf32> -> memref<6xf32>
  nn_loop.launch @pick(%v, %ids, %c, %out) : memref<6xf32>, memref<2xi32>, memref<2xi32>, memref<2xf32>
  func.return
}"""


def test_run_model():
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    w = RNG.standard_normal(3).astype(np.float32)
    ids = np.array([4, 0], np.int64)  # i64 inputs are stored as i32
    (out,) = run_model(parse(MODEL), [x, ids], {"w": w})
    flat = (x * w).reshape(6)
    np.testing.assert_allclose(out, [flat[5], flat[0]], rtol=1e-6)
    with pytest.raises(KeyError, match="weight 'w' missing"):
        run_model(parse(MODEL), [x, ids], {})
    with pytest.raises(ValueError, match="takes 2 inputs"):
        run_model(parse(MODEL), [x], {"w": w})
