"""nn-loop-simplify-index, checked by execution: the canonical form computes the same.

Kernels from convert-nn-tensor-to-nn-loop (both targets, a few schedules, unrolled and not)
go through the pass and must give bit-identical outputs in the nn_loop interpreter; a second
run changes nothing (the form is canonical), and the facts of nnjit/ir/affine.py are checked
on small hand-written cases.
"""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser

from nnjit.dialects import nn_loop
from nnjit.interp.nn_loop_eval import run_model
from nnjit.ir.affine import IndexAnalysis
from nnjit.passes.convert_nn_tensor_to_nn_loop import ConvertNNTensorToNNLoopPass
from nnjit.passes.nn_loop_simplify_index import NNLoopSimplifyIndexPass, simplify_index
from nnjit.passes.nn_loop_unroll import NNLoopUnrollPass
from nnjit.registry import make_context

CTX = make_context()
RNG = np.random.default_rng(7)

MODEL = """
func.func @main(%x: tensor<2x6x8xf32>, %w: tensor<8x12xf32>, %g: tensor<12xf32>, %b: tensor<12xf32>) -> (tensor<12x2x6xf32>, tensor<2x3x8xf32>) {
  %m = nn_tensor.matmul %x, %w : (tensor<2x6x8xf32>, tensor<8x12xf32>) -> tensor<2x6x12xf32>
  %l = nn_tensor.layer_norm %m, %g, %b {axis = 2 : i64, epsilon = 1.0e-05 : f32} : (tensor<2x6x12xf32>, tensor<12xf32>, tensor<12xf32>) -> tensor<2x6x12xf32>
  %s = nn_tensor.softmax %l {axis = 2 : i64} : tensor<2x6x12xf32> -> tensor<2x6x12xf32>
  %t = nn_tensor.transpose %s {perm = array<i64: 2, 0, 1>} : tensor<2x6x12xf32> -> tensor<12x2x6xf32>
  %sl = nn_tensor.slice %x {starts = array<i64: 0, 1, 0>, steps = array<i64: 1, 2, 1>} : tensor<2x6x8xf32> -> tensor<2x3x8xf32>
  func.return %t, %sl : tensor<12x2x6xf32>, tensor<2x3x8xf32>
}"""


def lowered(target: str, opts: dict) -> ModuleOp:
    m = Parser(CTX, MODEL).parse_module()
    ConvertNNTensorToNNLoopPass(target=target, **opts).apply(CTX, m)
    return m


def inputs() -> list[np.ndarray]:
    shapes = [(2, 6, 8), (8, 12), (12,), (12,)]
    return [RNG.standard_normal(s).astype(np.float32) for s in shapes]


@pytest.mark.parametrize("target,opts", [
    ("wgsl", {}), ("wgsl", {"workgroup": (4,), "vec": 1}), ("wgsl", {"workgroup": (8,), "reg": (2, 4)}),
    ("wasm", {}), ("wasm", {"vec": 1}), ("wasm", {"rows": 3, "reg": (2, 8)}),
])  # fmt: skip
@pytest.mark.parametrize("unroll", [False, True])
def test_simplified_kernels_compute_the_same(target, opts, unroll):
    m = lowered(target, opts)
    if unroll:
        NNLoopUnrollPass().apply(CTX, m)
    s = m.clone()
    NNLoopSimplifyIndexPass().apply(CTX, s)
    s.verify()
    ins = inputs()
    for x, y in zip(run_model(m, ins, {}), run_model(s, ins, {})):
        np.testing.assert_array_equal(x, y)
    assert simplify_index(s) == 0, "a second run changed the canonical form"


def test_unrolled_index_arithmetic_folds():
    m = lowered("wasm", {"rows": 3, "reg": (2, 8)})
    NNLoopUnrollPass().apply(CTX, m)
    n = simplify_index(m)
    assert n > 0
    # no index op of two constants is left
    facts = IndexAnalysis()
    for op in m.walk():
        if op.name in ("arith.addi", "arith.subi", "arith.muli") and str(op.results[0].type) == "index":
            a, b = op.operands
            assert facts.const_int(a) is None or facts.const_int(b) is None, op


FACTS = """
nn_loop.kernel @k(%a: memref<64xf32> read_write) kind "t" target "wasm" {
  nn_loop.for %i = 0 to 8 step 2 {
    nn_loop.for %j = -4 to 4 {
      %c3 = arith.constant 3 : index
      %c4 = arith.constant 4 : index
      %x = arith.muli %i, %c4 : index
      %y = arith.addi %x, %c3 : index
      %z = arith.subi %y, %j : index
      %q = arith.divsi %y, %c4 : index
      %v = nn_loop.load %a[%z] : memref<64xf32> -> f32
      nn_loop.store %v, %a[%q] : f32, memref<64xf32>
    }
  }
}"""


def test_index_facts():
    m = Parser(CTX, FACTS).parse_module()
    vals = {v.name_hint: v for op in m.walk() for v in op.results if v.name_hint}
    loops = [op for op in m.walk() if isinstance(op, nn_loop.ForOp)]
    i, j = (lp.body.block.args[0] for lp in loops)
    f = IndexAnalysis()
    assert f.const_int(vals["c3"]) == 3 and f.const_int(vals["x"]) is None
    assert f.affine(vals["y"]) == ({i: 4}, 3)
    assert f.affine(vals["z"]) == ({i: 4, j: -1}, 3)
    assert f.nonneg(vals["y"]) and f.nonneg(vals["q"]) and not f.nonneg(vals["z"])
    assert not f.nonneg(j)
    assert f.divisor(i) == 2 and f.divisor(vals["x"]) == 8 and f.divisor(vals["y"]) == 1
    f2 = IndexAnalysis()
    f2.iv_const[id(i)] = 6
    assert f2.affine(vals["y"]) == ({}, 27) and f2.divisor(i) == 6
