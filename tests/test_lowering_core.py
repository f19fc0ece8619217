"""convert-nn-tensor-to-nn-loop, checked by execution.

Each case is a small nn_tensor @main (lone ops, which the pass wraps, or explicit fused ops
with prologues/epilogues). It is lowered for wgsl and wasm with the default schedule and a
few non-default ones, run with the nn_loop interpreter (outputs and intermediates poisoned
with NaN), and compared with nn_tensor_eval in float64 by relative error. Shapes are tiny
(the interpreter is slow) but ragged: not multiples of 4 or of the workgroup sizes, and
with size-1 dims.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from xdsl.dialects.builtin import ModuleOp
from xdsl.parser import Parser

from nnjit.dialects import nn_loop
from nnjit.errors import UnsupportedError
from nnjit.interp.nn_loop_eval import run_model
from nnjit.interp.nn_tensor_eval import evaluate
from nnjit.passes.convert_nn_tensor_to_nn_loop import ConvertNNTensorToNNLoopPass
from nnjit.registry import make_context

CTX = make_context()
RNG = np.random.default_rng(1234)


def parse(src: str) -> ModuleOp:
    return Parser(CTX, src).parse_module()


def _t(shape, elem="f32") -> str:
    return "tensor<" + "".join(f"{d}x" for d in shape) + elem + ">"


def _random(shape, elem):
    if elem == "f32":
        return RNG.standard_normal(shape).astype(np.float32)
    if elem == "i1":
        return RNG.random(shape) < 0.5
    if elem in ("i64", "i32"):
        return RNG.integers(-5, 6, shape).astype(np.int64 if elem == "i64" else np.int32)
    raise AssertionError(elem)


def lower(src: str, **opts) -> ModuleOp:
    m = parse(src)
    ConvertNNTensorToNNLoopPass(**opts).apply(CTX, m)
    m.verify()
    return m


def check(src: str, inputs, weights=None, tol=1e-5, **opts) -> ModuleOp:
    """Lowers `src` with `opts`, runs it and compares every output with the reference."""
    weights = weights or {}
    ref = evaluate(parse(src), inputs, weights)
    m = lower(src, **opts)
    got = run_model(m, inputs, weights)
    assert len(got) == len(ref)
    for k, (g, r) in enumerate(zip(got, ref)):
        r = np.asarray(r)
        if r.dtype.kind == "f":
            assert g.dtype == np.float32
            assert not np.isnan(g).any() or np.isnan(r).any(), f"output {k} has unwritten NaNs"
            scale = max(float(np.abs(r).max()) if r.size else 0.0, 1e-30)
            err = float(np.abs(g.astype(np.float64) - r).max()) / scale if r.size else 0.0
            assert err <= tol, f"output {k}: relative error {err:.3g} > {tol} ({opts})"
        else:
            np.testing.assert_array_equal(g, r.astype(np.int32), err_msg=f"output {k} ({opts})")
    return m


def kernels(m: ModuleOp) -> list[nn_loop.KernelOp]:
    return [op for op in m.ops if isinstance(op, nn_loop.KernelOp)]


TARGETS = ["wgsl", "wasm"]


# ------------------------------------------------------------------------------- elementwise


def unary_src(op: str, shape, elem="f32", out_elem=None) -> str:
    t, r = _t(shape, elem), _t(shape, out_elem or elem)
    return f"""
func.func @main(%x: {t}) -> {r} {{
  %y = nn_tensor.{op} %x : {t} -> {r}
  func.return %y : {r}
}}"""


def binary_src(op: str, sa, sb, so, elem="f32", out_elem=None) -> str:
    ta, tb, to = _t(sa, elem), _t(sb, elem), _t(so, out_elem or elem)
    return f"""
func.func @main(%a: {ta}, %b: {tb}) -> {to} {{
  %y = nn_tensor.{op} %a, %b : ({ta}, {tb}) -> {to}
  func.return %y : {to}
}}"""


UNARY = ["sqrt", "erf", "tanh", "exp", "log", "neg", "abs", "reciprocal", "relu", "sigmoid", "gelu"]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("op", UNARY)
def test_unary(op, target):
    shape = (3, 6)
    x = _random(shape, "f32")
    if op in ("sqrt", "log"):
        x = np.abs(x) + 0.1
    if op == "reciprocal":
        x = np.sign(x) * (np.abs(x) + 0.5)
    check(unary_src(op, shape), [x], target=target)


BINARY = ["add", "sub", "mul", "div", "max", "min", "pow"]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("op", BINARY)
def test_binary_broadcast(op, target):
    sa, sb, so = (2, 3, 8), (3, 1), (2, 3, 8)
    a, b = _random(sa, "f32"), _random(sb, "f32")
    if op == "pow":
        a = np.abs(a) + 0.5
    if op == "div":
        b = np.sign(b) * (np.abs(b) + 0.5)
    check(binary_src(op, sa, sb, so), [a, b], target=target)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize(
    "shapes",
    [((5,), (5,), (5,)), ((1, 7), (4, 1), (4, 7)), ((), (2, 5), (2, 5)), ((9,), (), (9,)),
     ((2, 1, 12), (3, 12), (2, 3, 12))],
)  # fmt: skip
def test_add_shapes(shapes, target):
    sa, sb, so = shapes
    a, b = _random(sa, "f32"), _random(sb, "f32")
    check(binary_src("add", sa, sb, so), [a, b], target=target)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("op,elem", [("add", "i64"), ("sub", "i32"), ("mul", "i64"),
                                     ("max", "i32"), ("min", "i64"), ("div", "i64")])  # fmt: skip
def test_integer_binary(op, elem, target):
    a, b = _random((3, 5), elem), _random((5,), elem)
    if op == "div":
        b[b == 0] = 3
    check(binary_src(op, (3, 5), (5,), (3, 5), elem), [a, b], target=target)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("op", ["equal", "less", "greater"])
@pytest.mark.parametrize("elem", ["f32", "i64"])
def test_compare(op, elem, target):
    a, b = _random((2, 5), elem), _random((5,), elem)
    if elem == "f32":
        b[1] = a[0, 1]  # an equal pair
    check(binary_src(op, (2, 5), (5,), (2, 5), elem, "i1"), [a, b], target=target)


@pytest.mark.parametrize("target", TARGETS)
def test_logic_where_isnan_cast(target):
    src = """
func.func @main(%a: tensor<2x5xi1>, %b: tensor<5xi1>, %x: tensor<2x5xf32>, %n: tensor<2x5xi64>, %y: tensor<2x5xf32>)
    -> (tensor<2x5xf32>, tensor<2x5xi1>, tensor<2x5xi64>, tensor<2x5xf32>, tensor<2x5xi1>) {
  %and = nn_tensor.and %a, %b : (tensor<2x5xi1>, tensor<5xi1>) -> tensor<2x5xi1>
  %or = nn_tensor.or %a, %b : (tensor<2x5xi1>, tensor<5xi1>) -> tensor<2x5xi1>
  %not = nn_tensor.not %or : tensor<2x5xi1> -> tensor<2x5xi1>
  %w = nn_tensor.where %and, %x, %x : (tensor<2x5xi1>, tensor<2x5xf32>, tensor<2x5xf32>) -> tensor<2x5xf32>
  %neg = nn_tensor.neg %x : tensor<2x5xf32> -> tensor<2x5xf32>
  %w2 = nn_tensor.where %not, %w, %neg : (tensor<2x5xi1>, tensor<2x5xf32>, tensor<2x5xf32>) -> tensor<2x5xf32>
  %nan = nn_tensor.isnan %y : tensor<2x5xf32> -> tensor<2x5xi1>
  %ci = nn_tensor.cast %x : tensor<2x5xf32> -> tensor<2x5xi64>
  %sum = nn_tensor.add %ci, %n : (tensor<2x5xi64>, tensor<2x5xi64>) -> tensor<2x5xi64>
  %cf = nn_tensor.cast %sum : tensor<2x5xi64> -> tensor<2x5xf32>
  %cb = nn_tensor.cast %a : tensor<2x5xi1> -> tensor<2x5xf32>
  %cf2 = nn_tensor.add %cf, %cb : (tensor<2x5xf32>, tensor<2x5xf32>) -> tensor<2x5xf32>
  %bi = nn_tensor.cast %n : tensor<2x5xi64> -> tensor<2x5xi1>
  func.return %w2, %nan, %sum, %cf2, %bi : tensor<2x5xf32>, tensor<2x5xi1>, tensor<2x5xi64>, tensor<2x5xf32>, tensor<2x5xi1>
}"""
    y = _random((2, 5), "f32")
    y[0, 2] = y[1, 4] = np.nan
    ins = [_random((2, 5), "i1"), _random((5,), "i1"), _random((2, 5), "f32") * 3,
           _random((2, 5), "i64"), y]  # fmt: skip
    ref = evaluate(parse(src), ins, {})
    got = run_model(lower(src, target=target), ins, {})
    np.testing.assert_array_equal(got[0], ref[0].astype(np.float32))
    np.testing.assert_array_equal(got[1], ref[1].astype(np.int32))
    np.testing.assert_array_equal(got[2], ref[2].astype(np.int32))
    np.testing.assert_array_equal(got[3], ref[3].astype(np.float32))
    np.testing.assert_array_equal(got[4], ref[4].astype(np.int32))


FUSED_EW = """
func.func @main(%x: tensor<3x10xf32>, %b: tensor<10xf32>) -> tensor<3x10xf32> {
  %r = nn_tensor.fused %x, %b {kind = "elementwise"} : (tensor<3x10xf32>, tensor<10xf32>) -> tensor<3x10xf32> {
  ^bb0(%a0: tensor<3x10xf32>, %a1: tensor<10xf32>):
    %two = nn_tensor.constant dense<2.0> : tensor<f32>
    %half = nn_tensor.constant dense<0.5> : tensor<f32>
    %s = nn_tensor.add %a0, %a1 : (tensor<3x10xf32>, tensor<10xf32>) -> tensor<3x10xf32>
    %p = nn_tensor.pow %s, %two : (tensor<3x10xf32>, tensor<f32>) -> tensor<3x10xf32>
    %q = nn_tensor.pow %p, %half : (tensor<3x10xf32>, tensor<f32>) -> tensor<3x10xf32>
    %g = nn_tensor.gelu %q : tensor<3x10xf32> -> tensor<3x10xf32>
    %m = nn_tensor.mul %g, %s : (tensor<3x10xf32>, tensor<3x10xf32>) -> tensor<3x10xf32>
    nn_tensor.yield %m : tensor<3x10xf32>
  }
  func.return %r : tensor<3x10xf32>
}"""

SCHEDULES = {
    "wgsl": [{}, {"vec": 1}, {"workgroup": (4,), "tile": (32,)}, {"workgroup": (3,), "vec": 4}],
    "wasm": [{}, {"vec": 1}, {"rows": 2}, {"tile": (12,)}],
}


def _schedules():
    return [(t, s) for t in TARGETS for s in SCHEDULES[t]]


@pytest.mark.parametrize("target,sched", _schedules())
def test_fused_elementwise_schedules(target, sched):
    ins = [_random((3, 10), "f32"), _random((10,), "f32")]
    m = check(FUSED_EW, ins, target=target, **sched)
    (k,) = kernels(m)
    assert k.kind.data == "elementwise"
    # the kernel records the effective schedule; pow 2 became a multiply, pow 0.5 a sqrt
    text = str(k)
    assert "math.powf" not in text and "math.sqrt" in text
    if sched.get("vec") == 1:
        assert "vector" not in text


def test_vectorised_ragged_wasm_has_remainder():
    ins = [_random((3, 10), "f32"), _random((10,), "f32")]
    m = check(FUSED_EW, ins, target="wasm")
    text = str(kernels(m)[0])
    assert "vector<4xf32>" in text and " = 8 to 10 {" in text  # vector steps, then 2 scalars


# ------------------------------------------------------------------------------- movement


@pytest.mark.parametrize("target,sched", _schedules())
@pytest.mark.parametrize("shape,perm", [((2, 3, 5), (2, 0, 1)), ((3, 8), (1, 0)),
                                        ((2, 3, 8), (1, 0, 2)), ((1, 4, 1), (2, 1, 0))])  # fmt: skip
def test_transpose(shape, perm, target, sched):
    out = tuple(shape[p] for p in perm)
    src = f"""
func.func @main(%x: {_t(shape)}) -> {_t(out)} {{
  %y = nn_tensor.transpose %x {{perm = array<i64: {', '.join(map(str, perm))}>}} : {_t(shape)} -> {_t(out)}
  func.return %y : {_t(out)}
}}"""
    check(src, [_random(shape, "f32")], target=target, **sched)


@pytest.mark.parametrize("target,sched", _schedules())
@pytest.mark.parametrize("dshape,ishape,axis", [((7, 8), (2, 3), 0), ((3, 5), (4,), 1),
                                                 ((2, 6, 4), (3,), 1), ((5,), (), 0)])  # fmt: skip
def test_gather(dshape, ishape, axis, target, sched):
    out = (*dshape[:axis], *ishape, *dshape[axis + 1 :])
    src = f"""
func.func @main(%d: {_t(dshape)}, %i: {_t(ishape, 'i64')}) -> {_t(out)} {{
  %y = nn_tensor.gather %d, %i {{axis = {axis} : i64}} : ({_t(dshape)}, {_t(ishape, 'i64')}) -> {_t(out)}
  func.return %y : {_t(out)}
}}"""
    n = dshape[axis]
    idx = RNG.integers(-n, n, ishape).astype(np.int64)  # negative indices wrap
    check(src, [_random(dshape, "f32"), idx], target=target, **sched)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("dshape,ishape,batch", [((4, 5, 8), (3, 2), 0), ((2, 3, 5), (2, 1), 1),
                                                  ((3, 4), (2, 2), 0)])  # fmt: skip
def test_gather_nd(dshape, ishape, batch, target):
    depth = ishape[-1]
    out = (*ishape[:-1], *dshape[batch + depth :])
    src = f"""
func.func @main(%d: {_t(dshape)}, %i: {_t(ishape, 'i64')}) -> {_t(out)} {{
  %y = nn_tensor.gather_nd %d, %i {{batch_dims = {batch} : i64}} : ({_t(dshape)}, {_t(ishape, 'i64')}) -> {_t(out)}
  func.return %y : {_t(out)}
}}"""
    idx = np.stack(
        [RNG.integers(0, dshape[batch + t], ishape[:-1]) for t in range(depth)], axis=-1
    ).astype(np.int64)
    check(src, [_random(dshape, "f32"), idx], target=target)


@pytest.mark.parametrize("target,sched", _schedules())
@pytest.mark.parametrize("shape,starts,steps,out", [
    ((4, 10), (1, 2), (1, 1), (2, 8)),
    ((6, 9), (5, 8), (-2, -3), (3, 3)),
    ((3, 4, 12), (0, 1, 0), (1, 1, 2), (3, 2, 6)),
])  # fmt: skip
def test_slice(shape, starts, steps, out, target, sched):
    src = f"""
func.func @main(%x: {_t(shape)}) -> {_t(out)} {{
  %y = nn_tensor.slice %x {{starts = array<i64: {', '.join(map(str, starts))}>, steps = array<i64: {', '.join(map(str, steps))}>}} : {_t(shape)} -> {_t(out)}
  func.return %y : {_t(out)}
}}"""
    check(src, [_random(shape, "f32")], target=target, **sched)


@pytest.mark.parametrize("target,sched", _schedules())
@pytest.mark.parametrize("shapes,axis", [([(2, 3), (2, 5), (2, 1)], 1), ([(1, 8), (3, 8)], 0),
                                         ([(2, 4), (2, 8)], 1)])  # fmt: skip
def test_concat(shapes, axis, target, sched):
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    names = [f"%x{k}" for k in range(len(shapes))]
    args = ", ".join(f"{n}: {_t(s)}" for n, s in zip(names, shapes))
    types = ", ".join(_t(s) for s in shapes)
    src = f"""
func.func @main({args}) -> {_t(out)} {{
  %y = nn_tensor.concat {', '.join(names)} {{axis = {axis} : i64}} : ({types}) -> {_t(out)}
  func.return %y : {_t(out)}
}}"""
    check(src, [_random(s, "f32") for s in shapes], target=target, **sched)


@pytest.mark.parametrize("target,sched", _schedules())
@pytest.mark.parametrize("shape,out", [((3, 1), (2, 3, 8)), ((5,), (3, 5)), ((1,), (6,))])
def test_expand(shape, out, target, sched):
    src = f"""
func.func @main(%x: {_t(shape)}) -> {_t(out)} {{
  %y = nn_tensor.expand %x : {_t(shape)} -> {_t(out)}
  func.return %y : {_t(out)}
}}"""
    check(src, [_random(shape, "f32")], target=target, **sched)


@pytest.mark.parametrize("target", TARGETS)
def test_integer_movement(target):
    src = """
func.func @main(%x: tensor<3x5xi64>, %b: tensor<3x5xi1>) -> (tensor<5x3xi64>, tensor<3x2xi1>) {
  %t = nn_tensor.transpose %x {perm = array<i64: 1, 0>} : tensor<3x5xi64> -> tensor<5x3xi64>
  %s = nn_tensor.slice %b {starts = array<i64: 0, 1>, steps = array<i64: 1, 2>} : tensor<3x5xi1> -> tensor<3x2xi1>
  func.return %t, %s : tensor<5x3xi64>, tensor<3x2xi1>
}"""
    check(src, [_random((3, 5), "i64"), _random((3, 5), "i1")], target=target)


# ------------------------------------------------------------------------------- reductions

ROW_SCHEDULES = {
    "wgsl": [{}, {"vec": 1}, {"workgroup": (3,), "rows": 2}, {"workgroup": (8,), "vec": 4}],
    "wasm": [{}, {"vec": 1}, {"rows": 2}],
}


def _row_schedules():
    return [(t, s) for t in TARGETS for s in ROW_SCHEDULES[t]]


@pytest.mark.parametrize("target,sched", _row_schedules())
@pytest.mark.parametrize("shape,axis", [((3, 10), 1), ((2, 3, 8), 2), ((5, 3), 0), ((1, 1), 1),
                                        ((2, 37), 1)])  # fmt: skip
def test_softmax(shape, axis, target, sched):
    src = f"""
func.func @main(%x: {_t(shape)}) -> {_t(shape)} {{
  %y = nn_tensor.softmax %x {{axis = {axis} : i64}} : {_t(shape)} -> {_t(shape)}
  func.return %y : {_t(shape)}
}}"""
    check(src, [_random(shape, "f32") * 4], target=target, **sched)


@pytest.mark.parametrize("target,sched", _row_schedules())
@pytest.mark.parametrize("shape,axis,pshape", [((3, 10), 1, (10,)), ((2, 3, 8), 1, (3, 8)),
                                               ((4, 6), 1, (1,)), ((5, 1), 1, (1,))])  # fmt: skip
def test_layer_norm(shape, axis, pshape, target, sched):
    src = f"""
func.func @main(%x: {_t(shape)}, %s: {_t(pshape)}, %b: {_t(pshape)}) -> {_t(shape)} {{
  %y = nn_tensor.layer_norm %x, %s, %b {{axis = {axis} : i64, epsilon = 1.0e-05 : f32}} : ({_t(shape)}, {_t(pshape)}, {_t(pshape)}) -> {_t(shape)}
  func.return %y : {_t(shape)}
}}"""
    x = _random(shape, "f32") + 3.0  # an offset mean: the variance must not cancel
    check(src, [x, _random(pshape, "f32"), _random(pshape, "f32")], target=target, tol=2e-5, **sched)


@pytest.mark.parametrize("target", TARGETS)
def test_layer_norm_without_bias(target):
    src = """
func.func @main(%x: tensor<3x12xf32>, %s: tensor<12xf32>) -> tensor<3x12xf32> {
  %y = nn_tensor.layer_norm %x, %s {axis = 1 : i64, epsilon = 1.0e-03 : f32} : (tensor<3x12xf32>, tensor<12xf32>) -> tensor<3x12xf32>
  func.return %y : tensor<3x12xf32>
}"""
    check(src, [_random((3, 12), "f32"), _random((12,), "f32")], target=target)


@pytest.mark.parametrize("target,sched", _row_schedules())
@pytest.mark.parametrize("op", ["reduce_sum", "reduce_mean", "reduce_max"])
@pytest.mark.parametrize("shape,axes,keep", [((3, 10), (1,), 1), ((2, 3, 8), (1, 2), 0),
                                             ((4, 6, 8), (1,), 1), ((3, 5, 4), (0, 2), 0),
                                             ((6,), (0,), 0), ((2, 3, 4), (0,), 0)])  # fmt: skip
def test_reduce(op, shape, axes, keep, target, sched):
    out = tuple((1 if d in axes else s) for d, s in enumerate(shape) if keep or d not in axes)
    src = f"""
func.func @main(%x: {_t(shape)}) -> {_t(out)} {{
  %y = nn_tensor.{op} %x {{axes = array<i64: {', '.join(map(str, axes))}>, keepdims = {keep} : i64}} : {_t(shape)} -> {_t(out)}
  func.return %y : {_t(out)}
}}"""
    check(src, [_random(shape, "f32")], target=target, **sched)


# ------------------------------------------------------------------- prologues and epilogues


SOFTMAX_FUSED = """
func.func @main(%x: tensor<2x3x9xf32>, %mask: tensor<2x1x9xf32>) -> tensor<2x3x9xf32> {
  %r = nn_tensor.fused %x, %mask {kind = "softmax"} : (tensor<2x3x9xf32>, tensor<2x1x9xf32>) -> tensor<2x3x9xf32> {
  ^bb0(%a: tensor<2x3x9xf32>, %m: tensor<2x1x9xf32>):
    %s = nn_tensor.constant dense<0.125> : tensor<f32>
    %xs = nn_tensor.mul %a, %s : (tensor<2x3x9xf32>, tensor<f32>) -> tensor<2x3x9xf32>
    %xm = nn_tensor.add %xs, %m : (tensor<2x3x9xf32>, tensor<2x1x9xf32>) -> tensor<2x3x9xf32>
    %y = nn_tensor.softmax %xm {axis = 2 : i64} : tensor<2x3x9xf32> -> tensor<2x3x9xf32>
    %e = nn_tensor.mul %y, %s : (tensor<2x3x9xf32>, tensor<f32>) -> tensor<2x3x9xf32>
    nn_tensor.yield %e : tensor<2x3x9xf32>
  }
  func.return %r : tensor<2x3x9xf32>
}"""


@pytest.mark.parametrize("target,sched", _row_schedules())
def test_softmax_prologue_epilogue(target, sched):
    mask = np.where(RNG.random((2, 1, 9)) < 0.3, -1e4, 0.0).astype(np.float32)
    check(SOFTMAX_FUSED, [_random((2, 3, 9), "f32") * 8, mask], target=target, **sched)


LN_FUSED = """
func.func @main(%x: tensor<4x16xf32>, %res: tensor<4x16xf32>, %g: tensor<16xf32>, %b: tensor<16xf32>) -> tensor<4x16xf32> {
  %r = nn_tensor.fused %x, %res, %g, %b {kind = "layer_norm"} : (tensor<4x16xf32>, tensor<4x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<4x16xf32> {
  ^bb0(%a: tensor<4x16xf32>, %c: tensor<4x16xf32>, %s: tensor<16xf32>, %o: tensor<16xf32>):
    %sum = nn_tensor.add %a, %c : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
    %y = nn_tensor.layer_norm %sum, %s, %o {axis = 1 : i64, epsilon = 1.0e-05 : f32} : (tensor<4x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<4x16xf32>
    %t = nn_tensor.tanh %y : tensor<4x16xf32> -> tensor<4x16xf32>
    nn_tensor.yield %t : tensor<4x16xf32>
  }
  func.return %r : tensor<4x16xf32>
}"""


@pytest.mark.parametrize("target,sched", _row_schedules())
def test_layer_norm_prologue_epilogue(target, sched):
    ins = [_random((4, 16), "f32"), _random((4, 16), "f32"), _random((16,), "f32"),
           _random((16,), "f32")]  # fmt: skip
    check(LN_FUSED, ins, target=target, tol=2e-5, **sched)


REDUCE_FUSED = """
func.func @main(%x: tensor<3x5x8xf32>, %b: tensor<3x8xf32>) -> tensor<3x8xf32> {
  %r = nn_tensor.fused %x, %b {kind = "reduce"} : (tensor<3x5x8xf32>, tensor<3x8xf32>) -> tensor<3x8xf32> {
  ^bb0(%a: tensor<3x5x8xf32>, %c: tensor<3x8xf32>):
    %e = nn_tensor.exp %a : tensor<3x5x8xf32> -> tensor<3x5x8xf32>
    %y = nn_tensor.reduce_mean %e {axes = array<i64: 1>, keepdims = 0 : i64} : tensor<3x5x8xf32> -> tensor<3x8xf32>
    %z = nn_tensor.sub %y, %c : (tensor<3x8xf32>, tensor<3x8xf32>) -> tensor<3x8xf32>
    nn_tensor.yield %z : tensor<3x8xf32>
  }
  func.return %r : tensor<3x8xf32>
}"""


@pytest.mark.parametrize("target,sched", _schedules())
def test_strided_reduce_prologue_epilogue(target, sched):
    check(REDUCE_FUSED, [_random((3, 5, 8), "f32"), _random((3, 8), "f32")], target=target, **sched)


GATHER_FUSED = """
func.func @main(%w: tensor<10x8xf32>, %ids: tensor<2x3xi64>, %pos: tensor<3x8xf32>) -> tensor<2x3x8xf32> {
  %r = nn_tensor.fused %w, %ids, %pos {kind = "gather"} : (tensor<10x8xf32>, tensor<2x3xi64>, tensor<3x8xf32>) -> tensor<2x3x8xf32> {
  ^bb0(%a: tensor<10x8xf32>, %i: tensor<2x3xi64>, %p: tensor<3x8xf32>):
    %g = nn_tensor.gather %a, %i {axis = 0 : i64} : (tensor<10x8xf32>, tensor<2x3xi64>) -> tensor<2x3x8xf32>
    %s = nn_tensor.add %g, %p : (tensor<2x3x8xf32>, tensor<3x8xf32>) -> tensor<2x3x8xf32>
    nn_tensor.yield %s : tensor<2x3x8xf32>
  }
  func.return %r : tensor<2x3x8xf32>
}"""


@pytest.mark.parametrize("target,sched", _schedules())
def test_gather_epilogue(target, sched):
    ids = RNG.integers(-10, 10, (2, 3)).astype(np.int64)
    check(GATHER_FUSED, [_random((10, 8), "f32"), ids, _random((3, 8), "f32")], target=target, **sched)


# ------------------------------------------------------------------------ the model level


MODEL = """
func.func @main(%x: tensor<2x6xf32>, %ids: tensor<2xi64>) -> (tensor<2x6xf32>, tensor<3x4xf32>, tensor<2xi64>, tensor<2x6xf32>, tensor<2x6xf32>) attributes {nnjit.input_names = ["x", "ids"], nnjit.output_names = ["a", "b", "c", "d", "e"]} {
  %w = nn_tensor.weight "emb" : tensor<5x6xf32>
  %c = nn_tensor.constant dense<[[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]> : tensor<1x6xf32>
  %g = nn_tensor.gather %w, %ids {axis = 0 : i64} : (tensor<5x6xf32>, tensor<2xi64>) -> tensor<2x6xf32>
  %s = nn_tensor.add %g, %x : (tensor<2x6xf32>, tensor<2x6xf32>) -> tensor<2x6xf32>
  %t = nn_tensor.mul %s, %c : (tensor<2x6xf32>, tensor<1x6xf32>) -> tensor<2x6xf32>
  %v = nn_tensor.reshape %t : tensor<2x6xf32> -> tensor<3x4xf32>
  func.return %t, %v, %ids, %t, %x : tensor<2x6xf32>, tensor<3x4xf32>, tensor<2xi64>, tensor<2x6xf32>, tensor<2x6xf32>
}"""


@pytest.mark.parametrize("target", TARGETS)
def test_model_bufferization(target):
    w = {"emb": _random((5, 6), "f32")}
    ins = [_random((2, 6), "f32"), np.array([4, -1], np.int64)]
    m = check(MODEL, ins, w, target=target)
    main = next(op for op in m.ops if op.name == "func.func")
    text = str(main)
    assert 'nn_loop.weight "emb" : memref<5x6xf32>' in text
    assert "nn_loop.constant" in text and "nn_loop.view" in text
    assert "nnjit.num_outputs = 5 : i64" in text and "nnjit.input_names" in text
    args = main.body.block.args
    assert [str(a.type) for a in args][:2] == ["memref<2x6xf32>", "memref<2xi32>"]
    names = [k.sym_name.data for k in kernels(m)]
    # gather, add, mul (written straight into output 0), then copies for the view, the
    # input returned as an output, the value returned twice and the input x
    assert names[:3] == ["k0_gather", "k1_elementwise", "k2_elementwise"]
    assert names[3:] == ["k3_copy", "k4_copy", "k5_copy", "k6_copy"]
    launches = [op for op in main.body.block.ops if isinstance(op, nn_loop.LaunchOp)]
    assert launches[2].args[-1] is args[2]  # in place into the first output


def test_fused_schedule_attribute_overrides_pass():
    src = FUSED_EW.replace('{kind = "elementwise"}', '{kind = "elementwise", schedule = {vec = 1 : i64, workgroup = array<i64: 16>}}')
    ins = [_random((3, 10), "f32"), _random((10,), "f32")]
    m = check(src, ins, target="wgsl", vec=4)
    (k,) = kernels(m)
    sched = k.schedule.data
    assert sched["vec"].value.data == 1  # type: ignore[union-attr]
    assert list(sched["workgroup"].get_values()) == [16]  # type: ignore[union-attr]
    assert "vector" not in str(k)


def test_kernel_replays_from_its_schedule():
    """Lowering again with the recorded schedule gives the same kernel."""
    for target in TARGETS:
        m = lower(SOFTMAX_FUSED, target=target)
        (k,) = kernels(m)
        opts = {
            key: (tuple(v.get_values()) if hasattr(v, "get_values") else v.value.data)
            for key, v in k.schedule.data.items()
        }
        m2 = lower(SOFTMAX_FUSED, target=target, **opts)
        assert str(kernels(m2)[0]) == str(k)


def test_pass_options_round_trip():
    p = ConvertNNTensorToNNLoopPass(target="wasm", workgroup=(8, 4), vec=4, rows=2)
    text = str(p)
    assert text.startswith("convert-nn-tensor-to-nn-loop{")
    from xdsl.passes import PassPipeline

    from nnjit.registry import get_all_passes

    (q,) = PassPipeline.parse_spec(get_all_passes(), text).passes
    assert q == p
    (r,) = PassPipeline.parse_spec(get_all_passes(), "convert-nn-tensor-to-nn-loop{tile=16}").passes
    assert r.tile == (16,)


def test_wasm_single_row_is_split_into_chunks():
    src = unary_src("relu", (140000,))
    m = check(src, [_random((140000,), "f32")], target="wasm")
    (k,) = kernels(m)
    assert list(k.schedule.data["tile"].get_values()) == [2048]  # type: ignore[union-attr]
    assert 'nn_loop.for %chunk = 0 to 69 map "thread"' in str(k)


@pytest.mark.parametrize("kind", ["elementwise", "transpose", "softmax", "layer_norm"])
def test_wasm_small_kernels_run_as_one_chunk(kind):
    """Outputs of at most WASM_ONE_CHUNK_MAX elements default to one thread-loop iteration
    (one thread); `rows` splits them again; larger ones split by rows."""
    from nnjit.passes.lowering.elementwise import WASM_ONE_CHUNK_MAX

    def src(shape):
        s = _t(shape)
        if kind == "elementwise":
            return unary_src("relu", shape)
        if kind == "transpose":
            t = _t((shape[1], shape[0]))
            return f"""
func.func @main(%x: {s}) -> {t} {{
  %y = nn_tensor.transpose %x {{perm = array<i64: 1, 0>}} : {s} -> {t}
  func.return %y : {t}
}}"""
        if kind == "softmax":
            return f"""
func.func @main(%x: {s}) -> {s} {{
  %y = nn_tensor.softmax %x {{axis = 1 : i64}} : {s} -> {s}
  func.return %y : {s}
}}"""
        p = _t(shape[1:])
        return f"""
func.func @main(%x: {s}, %g: {p}, %b: {p}) -> {s} {{
  %y = nn_tensor.layer_norm %x, %g, %b {{axis = 1 : i64, epsilon = 1.0e-05 : f32}} : ({s}, {p}, {p}) -> {s}
  func.return %y : {s}
}}"""

    def thread_trips(**opts) -> tuple[int, int]:
        (k,) = kernels(lower(src(shape), target="wasm", **opts))
        (loop,) = [op for op in k.walk() if isinstance(op, nn_loop.ForOp) and op.map.data == "thread"]
        trips = -(-(loop.ub.value.data - loop.lb.value.data) // loop.step.value.data)
        return trips, k.schedule.data["rows"].value.data  # type: ignore[union-attr]

    shape = (128, 384)
    rows = 384 if kind == "transpose" else 128  # the output's rows
    assert thread_trips() == (1, rows)
    assert thread_trips(rows=2) == (rows // 2, 2)
    shape = (WASM_ONE_CHUNK_MAX // 64 + 1, 64)
    assert thread_trips() == (64 if kind == "transpose" else shape[0], 1)


def test_big_grid_splits_into_y():
    src = unary_src("relu", (70000,))
    m = lower(src, target="wgsl", vec=1, workgroup=(1,))
    text = str(kernels(m)[0])
    assert 'map "workgroup.y"' in text and "to 65535" not in text.split("workgroup.x")[0]


@pytest.mark.parametrize(
    "src,opts,match",
    [
        (unary_src("relu", (4,)), {"target": "webgl"}, "unknown target"),
        (unary_src("relu", (4,)), {"vec": 3}, "vec=3: must be 1 or 4"),
        (unary_src("relu", (4,)), {"workgroup": (512,)}, "exceeds 256"),
        (unary_src("relu", (4,)), {"workgroup": (4,), "tile": (6,)}, "multiple of workgroup size"),
        (unary_src("relu", (8,)), {"target": "wasm", "tile": (6,)}, "multiple of vec 4"),
    ],
)  # fmt: skip
def test_bad_options(src, opts, match):
    with pytest.raises(UnsupportedError, match=match):
        lower(src, **opts)


def test_unknown_kind_names_op():
    src = """
func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
  %r = nn_tensor.fused %x {kind = "fft"} : (tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%a: tensor<4xf32>):
    nn_tensor.yield %a : tensor<4xf32>
  }
  func.return %r : tensor<4xf32>
}"""
    with pytest.raises(UnsupportedError, match=r"@main op #0 \(nn_tensor.fused\).*fft"):
        lower(src)


def test_through_fuse_pipeline():
    """nn-tensor-fuse output (the real contract) lowers and runs."""
    from nnjit.compiler import run_pipeline

    src = """
func.func @main(%x: tensor<2x4x12xf32>, %g: tensor<12xf32>, %b: tensor<12xf32>) -> tensor<2x4x12xf32> {
  %c = nn_tensor.constant dense<0.5> : tensor<f32>
  %s = nn_tensor.mul %x, %c : (tensor<2x4x12xf32>, tensor<f32>) -> tensor<2x4x12xf32>
  %y = nn_tensor.softmax %s {axis = 2 : i64} : tensor<2x4x12xf32> -> tensor<2x4x12xf32>
  %l = nn_tensor.layer_norm %y, %g, %b {axis = 2 : i64, epsilon = 1.0e-05 : f32} : (tensor<2x4x12xf32>, tensor<12xf32>, tensor<12xf32>) -> tensor<2x4x12xf32>
  %r = nn_tensor.relu %l : tensor<2x4x12xf32> -> tensor<2x4x12xf32>
  func.return %r : tensor<2x4x12xf32>
}"""
    ins = [_random((2, 4, 12), "f32"), _random((12,), "f32"), _random((12,), "f32")]
    ref = evaluate(parse(src), ins, {})
    for target in TARGETS:
        m = parse(src)
        run_pipeline(m, f"nn-tensor-fuse,convert-nn-tensor-to-nn-loop{{target={target}}}")
        m.verify()
        got = run_model(m, ins, {})
        assert np.abs(got[0] - ref[0]).max() / np.abs(ref[0]).max() < 2e-5


# ------------------------------------------------------------------------------ tiny models

TINY = sorted((Path(__file__).parent / "models").glob("*-legacy.onnx"))
TINY = [p for p in TINY if p.stem in ("bert-legacy", "gpt2-legacy")]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("model", TINY, ids=[p.stem for p in TINY])
def test_tiny_model_through_the_interpreter(model, target):
    """A whole tiny transformer (imported, folded, fused) lowered for `target` and run by the
    nn_loop interpreter matches nn_tensor_eval (float64) on random inputs."""
    from nnjit.compiler import TENSOR_PIPELINE, _int_ranges, main_func, run_pipeline
    from nnjit.frontend import import_onnx

    imported = import_onnx(model)
    m = imported.module
    run_pipeline(m, TENSOR_PIPELINE)
    ranges = _int_ranges(m)
    ins = []
    for i, a in enumerate(main_func(m).body.block.args):
        shape = a.type.get_shape()
        if str(a.type.get_element_type()) == "f32":
            ins.append(RNG.standard_normal(shape).astype(np.float32))
        else:
            ins.append(RNG.integers(0, ranges.get(i, 2), shape).astype(np.int64))
    ref = evaluate(m, ins, imported.weights)
    lowered = m.clone()
    run_pipeline(lowered, f"convert-nn-tensor-to-nn-loop{{target={target}}}")
    lowered.verify()
    got = run_model(lowered, ins, imported.weights)
    for g, r in zip(got, ref):
        r = np.asarray(r)
        assert float(np.abs(g - r).max()) / float(np.abs(r).max()) < 1e-5


def test_make_op_matches_create():
    """make_op (the lowering's fast constructor) builds what Operation.create builds."""
    from xdsl.dialects import arith
    from xdsl.dialects.builtin import FloatAttr, f32

    from nnjit.passes.lowering.common import cmpf_op, make_op

    c = arith.ConstantOp(FloatAttr(1.0, f32))
    for fast, slow in [
        (make_op(arith.AddfOp, c.result, c.result), arith.AddfOp(c.result, c.result)),
        (cmpf_op("olt", c.result, c.result), arith.CmpfOp(c.result, c.result, "olt")),
        (make_op(nn_loop.BarrierOp, type=None), nn_loop.BarrierOp()),
    ]:
        fast.verify()
        assert str(fast) == str(slow)
        assert fast.properties == slow.properties and fast.attributes == slow.attributes
        assert fast.parent is None and fast.regions == () and list(fast.successors) == []
        for k, v in enumerate(fast.operands):
            assert any(u.operation is fast and u.index == k for u in v.uses)


@pytest.mark.parametrize("target_src", ["ew", "softmax", "reduce"])
def test_grids_over_the_dimension_limit(monkeypatch, target_src):
    """Grids larger than the per-dimension limit use workgroup.y (limit lowered to 3 here so
    that tiny shapes exercise it): workgroups past the end are skipped (pointwise) or compute
    a clamped row without storing (row kernels, which have barriers)."""
    from nnjit.passes.lowering import common, reduce

    monkeypatch.setattr(common, "MAX_GRID", 3)
    monkeypatch.setattr(reduce, "MAX_GRID", 3)
    if target_src == "ew":
        ins = [_random((3, 10), "f32"), _random((10,), "f32")]
        src, opts = FUSED_EW, {"workgroup": (2,), "vec": 1}
    elif target_src == "softmax":
        src, ins, opts = SOFTMAX_FUSED, [_random((2, 3, 9), "f32"), _random((2, 1, 9), "f32")], {}
    else:
        src = """
func.func @main(%x: tensor<7x5xf32>) -> tensor<7x1xf32> {
  %y = nn_tensor.reduce_max %x {axes = array<i64: 1>, keepdims = 1 : i64} : tensor<7x5xf32> -> tensor<7x1xf32>
  func.return %y : tensor<7x1xf32>
}"""
        ins, opts = [_random((7, 5), "f32")], {}
    m = check(src, ins, target="wgsl", **opts)
    assert 'map "workgroup.y"' in str(m)


def test_weights_and_constants_inside_a_fused_body_become_operands():
    src = """
func.func @main(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %r = nn_tensor.fused %x {kind = "elementwise"} : (tensor<2x3xf32>) -> tensor<2x3xf32> {
  ^bb0(%a: tensor<2x3xf32>):
    %w = nn_tensor.weight "w" : tensor<3xf32>
    %c = nn_tensor.constant dense<[[1.0], [-2.0]]> : tensor<2x1xf32>
    %s = nn_tensor.mul %a, %w : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
    %t = nn_tensor.add %s, %c : (tensor<2x3xf32>, tensor<2x1xf32>) -> tensor<2x3xf32>
    nn_tensor.yield %t : tensor<2x3xf32>
  }
  func.return %r : tensor<2x3xf32>
}"""
    w = {"w": _random((3,), "f32")}
    for target in TARGETS:
        m = check(src, [_random((2, 3), "f32")], w, target=target)
        (k,) = kernels(m)
        assert len(k.body.block.args) == 4  # x, w, c, out
