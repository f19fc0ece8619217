"""The nn_tensor reference evaluator, op by op, against independent numpy/loop references.

(The frontend tests also check it against onnxruntime on whole ONNX graphs.)
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from xdsl.parser import Parser

from nnjit.dialects import nn_tensor as nt
from nnjit.errors import ShapeError
from nnjit.interp import evaluate
from nnjit.interp.nn_tensor_eval import _OPS, erf, eval_op
from nnjit.registry import make_context

RNG = np.random.default_rng()


def run(body: str, args: str, result: str, inputs, weights=None, dtype=np.float64):
    text = f"func.func @main({args}) -> {result} {{\n{body}\n}}"
    module = Parser(make_context(), text).parse_module()
    module.verify()
    return evaluate(module, inputs, weights or {}, dtype=dtype)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def test_every_nn_tensor_op_has_a_rule():
    missing = [op.name for op in nt.NNTensor.operations if op not in _OPS and op is not nt.YieldOp]
    assert missing == []


def test_float_dtype_and_precision():
    x = rand(3, 4)
    body = """
  %r = nn_tensor.exp %x : tensor<3x4xf32> -> tensor<3x4xf32>
  func.return %r : tensor<3x4xf32>"""
    (r64,) = run(body, "%x: tensor<3x4xf32>", "tensor<3x4xf32>", [x])
    (r32,) = run(body, "%x: tensor<3x4xf32>", "tensor<3x4xf32>", [x], dtype=np.float32)
    assert r64.dtype == np.float64 and r32.dtype == np.float32
    np.testing.assert_allclose(r64, np.exp(x.astype(np.float64)), rtol=1e-15)


def test_integer_division_truncates():
    a = np.array([-7, 7, -7, 7, 6, -6, 0], np.int64)
    b = np.array([2, 2, -2, -2, 3, 3, 5], np.int64)
    (r,) = run(
        "  %r = nn_tensor.div %a, %b : (tensor<7xi64>, tensor<7xi64>) -> tensor<7xi64>\n"
        "  func.return %r : tensor<7xi64>",
        "%a: tensor<7xi64>, %b: tensor<7xi64>",
        "tensor<7xi64>",
        [a, b],
    )
    assert r.dtype == np.int64
    assert r.tolist() == [-3, 3, 3, -3, 2, -2, 0]


def test_casts():
    x = np.array([-2.7, 2.7, 0.0, 0.4, -0.6], np.float32)
    i, b, f = run(
        """
  %i = nn_tensor.cast %x : tensor<5xf32> -> tensor<5xi64>
  %b = nn_tensor.cast %i : tensor<5xi64> -> tensor<5xi1>
  %f = nn_tensor.cast %b : tensor<5xi1> -> tensor<5xf32>
  func.return %i, %b, %f : tensor<5xi64>, tensor<5xi1>, tensor<5xf32>""",
        "%x: tensor<5xf32>",
        "(tensor<5xi64>, tensor<5xi1>, tensor<5xf32>)",
        [x],
    )
    assert i.tolist() == [-2, 2, 0, 0, 0]
    assert b.tolist() == [True, True, False, False, False]
    assert f.tolist() == [1.0, 1.0, 0.0, 0.0, 0.0]


def test_constants_splat_and_bool():
    a, b = run(
        """
  %a = nn_tensor.constant dense<1.500000e+00> : tensor<2x3xf32>
  %b = nn_tensor.constant dense<[true, false, true]> : tensor<3xi1>
  func.return %a, %b : tensor<2x3xf32>, tensor<3xi1>""",
        "",
        "(tensor<2x3xf32>, tensor<3xi1>)",
        [],
    )
    np.testing.assert_array_equal(a, np.full((2, 3), 1.5))
    assert b.dtype == np.bool_ and b.tolist() == [True, False, True]


def test_elementwise_broadcast_and_logic():
    x, y = rand(2, 1, 4), rand(3, 1)
    mx, wh, nn = run(
        """
  %m = nn_tensor.max %x, %y : (tensor<2x1x4xf32>, tensor<3x1xf32>) -> tensor<2x3x4xf32>
  %g = nn_tensor.greater %x, %y : (tensor<2x1x4xf32>, tensor<3x1xf32>) -> tensor<2x3x4xi1>
  %w = nn_tensor.where %g, %x, %y : (tensor<2x3x4xi1>, tensor<2x1x4xf32>, tensor<3x1xf32>) -> tensor<2x3x4xf32>
  %n = nn_tensor.not %g : tensor<2x3x4xi1> -> tensor<2x3x4xi1>
  func.return %m, %w, %n : tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xi1>""",
        "%x: tensor<2x1x4xf32>, %y: tensor<3x1xf32>",
        "(tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xi1>)",
        [x, y],
    )
    np.testing.assert_array_equal(mx, np.maximum(x, y))
    np.testing.assert_array_equal(wh, mx)  # where(x > y, x, y) is max
    np.testing.assert_array_equal(nn, ~(x > y))


def test_erf_and_gelu():
    pts = np.array([-3.0, -0.5, 0.0, 0.5, 1.0, 2.5], np.float64)
    np.testing.assert_allclose(erf(pts), [math.erf(p) for p in pts], rtol=0, atol=0)
    x = rand(4, 5)
    (g,) = run(
        "  %r = nn_tensor.gelu %x : tensor<4x5xf32> -> tensor<4x5xf32>\n"
        "  func.return %r : tensor<4x5xf32>",
        "%x: tensor<4x5xf32>",
        "tensor<4x5xf32>",
        [x],
    )
    ref = [[v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in row] for row in x.astype(float)]
    np.testing.assert_allclose(g, ref, rtol=1e-14)


def test_matmul_and_gemm():
    a, b, c = rand(2, 1, 3, 4), rand(5, 4, 6), rand(6)
    (m,) = run(
        "  %r = nn_tensor.matmul %a, %b : (tensor<2x1x3x4xf32>, tensor<5x4x6xf32>) -> tensor<2x5x3x6xf32>\n"
        "  func.return %r : tensor<2x5x3x6xf32>",
        "%a: tensor<2x1x3x4xf32>, %b: tensor<5x4x6xf32>",
        "tensor<2x5x3x6xf32>",
        [a, b],
    )
    ref = np.einsum("pik,rkj->prij", a.astype(float)[:, 0], b.astype(float))
    np.testing.assert_allclose(m, ref, rtol=1e-12)
    a2, b2 = rand(4, 3), rand(6, 4)
    (g,) = run(
        "  %r = nn_tensor.gemm %a, %b, %c {alpha = 0.5 : f32, beta = 2.0 : f32, trans_a = 1 : i64, trans_b = 1 : i64}"
        " : (tensor<4x3xf32>, tensor<6x4xf32>, tensor<6xf32>) -> tensor<3x6xf32>\n"
        "  func.return %r : tensor<3x6xf32>",
        "%a: tensor<4x3xf32>, %b: tensor<6x4xf32>, %c: tensor<6xf32>",
        "tensor<3x6xf32>",
        [a2, b2, c],
    )
    np.testing.assert_allclose(g, 0.5 * a2.T.astype(float) @ b2.T + 2.0 * c, rtol=1e-12)


def _conv_loops(x, w, b, strides, pads, dil, group):
    n, c, h, wd = x.shape
    f, cg, kh, kw = w.shape
    oh = (h + pads[0] + pads[2] - dil[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (wd + pads[1] + pads[3] - dil[1] * (kw - 1) - 1) // strides[1] + 1
    out = np.zeros((n, f, oh, ow))
    fg = f // group
    for ni in range(n):
        for fi in range(f):
            g = fi // fg
            for y in range(oh):
                for xx in range(ow):
                    acc = b[fi] if b is not None else 0.0
                    for ci in range(cg):
                        for ky in range(kh):
                            for kx in range(kw):
                                iy = y * strides[0] - pads[0] + ky * dil[0]
                                ix = xx * strides[1] - pads[1] + kx * dil[1]
                                if 0 <= iy < h and 0 <= ix < wd:
                                    acc += x[ni, g * cg + ci, iy, ix] * w[fi, ci, ky, kx]
                    out[ni, fi, y, xx] = acc
    return out


@pytest.mark.parametrize(
    "strides,pads,dil,group,bias",
    [([1, 1], [0, 0, 0, 0], [1, 1], 1, True), ([2, 1], [1, 0, 2, 1], [1, 2], 1, False),
     ([1, 2], [1, 1, 1, 1], [1, 1], 2, True)],
)  # fmt: skip
def test_conv(strides, pads, dil, group, bias):
    x = rand(1, 4, 7, 6)
    w = rand(6, 4 // group, 3, 2)
    b = rand(6)
    xd, wd, bd = (v.astype(np.float64) for v in (x, w, b))
    ref = _conv_loops(xd, wd, bd if bias else None, strides, pads, dil, group)
    a = lambda v: ", ".join(map(str, v))  # noqa: E731
    rt = f"tensor<1x6x{ref.shape[2]}x{ref.shape[3]}xf32>"
    operands = "%x, %w, %b" if bias else "%x, %w"
    types = f"tensor<1x4x7x6xf32>, tensor<6x{4 // group}x3x2xf32>" + (", tensor<6xf32>" if bias else "")
    (got,) = run(
        f"  %r = nn_tensor.conv {operands} {{strides = array<i64: {a(strides)}>, pads = array<i64: {a(pads)}>,"
        f" dilations = array<i64: {a(dil)}>, group = {group} : i64}} : ({types}) -> {rt}\n"
        f"  func.return %r : {rt}",
        f"%x: tensor<1x4x7x6xf32>, %w: tensor<6x{4 // group}x3x2xf32>, %b: tensor<6xf32>",
        rt,
        [x, w, b],
    )
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_softmax_layer_norm_reductions():
    x = rand(2, 3, 5)
    s, b = rand(3, 5), rand(5)
    sm, ln, mean, mx = run(
        """
  %sm = nn_tensor.softmax %x {axis = 1 : i64} : tensor<2x3x5xf32> -> tensor<2x3x5xf32>
  %ln = nn_tensor.layer_norm %x, %s, %b {axis = 1 : i64, epsilon = 1.0e-03 : f32} : (tensor<2x3x5xf32>, tensor<3x5xf32>, tensor<5xf32>) -> tensor<2x3x5xf32>
  %m = nn_tensor.reduce_mean %x {axes = array<i64: 0, 2>, keepdims = 0 : i64} : tensor<2x3x5xf32> -> tensor<3xf32>
  %x2 = nn_tensor.reduce_max %x {axes = array<i64: 2>} : tensor<2x3x5xf32> -> tensor<2x3x1xf32>
  func.return %sm, %ln, %m, %x2 : tensor<2x3x5xf32>, tensor<2x3x5xf32>, tensor<3xf32>, tensor<2x3x1xf32>""",
        "%x: tensor<2x3x5xf32>, %s: tensor<3x5xf32>, %b: tensor<5xf32>",
        "(tensor<2x3x5xf32>, tensor<2x3x5xf32>, tensor<3xf32>, tensor<2x3x1xf32>)",
        [x, s, b],
    )
    xd = x.astype(float)
    e = np.exp(xd)
    np.testing.assert_allclose(sm, e / e.sum(1, keepdims=True), rtol=1e-12)
    for n in range(2):
        v = xd[n]
        eps = float(np.float32(1e-3))
        ref = (v - v.mean()) / math.sqrt(v.var() + eps) * s + b
        np.testing.assert_allclose(ln[n], ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(mean, xd.mean(axis=(0, 2)), rtol=1e-12)
    np.testing.assert_array_equal(mx[..., 0], xd.max(axis=2))


def test_data_movement():
    x = rand(5, 6)
    sl, tr, ex, cc, sp0, sp1, rs = run(
        """
  %sl = nn_tensor.slice %x {starts = array<i64: 4, 1>, steps = array<i64: -2, 2>} : tensor<5x6xf32> -> tensor<3x3xf32>
  %tr = nn_tensor.transpose %x {perm = array<i64: 1, 0>} : tensor<5x6xf32> -> tensor<6x5xf32>
  %c = nn_tensor.slice %x {starts = array<i64: 0, 2>, steps = array<i64: 1, 1>} : tensor<5x6xf32> -> tensor<1x1xf32>
  %ex = nn_tensor.expand %c : tensor<1x1xf32> -> tensor<2x3x4xf32>
  %cc = nn_tensor.concat %x, %x {axis = 1 : i64} : (tensor<5x6xf32>, tensor<5x6xf32>) -> tensor<5x12xf32>
  %a, %b = nn_tensor.split %x {axis = 1 : i64} : tensor<5x6xf32> -> tensor<5x2xf32>, tensor<5x4xf32>
  %rs = nn_tensor.reshape %x : tensor<5x6xf32> -> tensor<3x10xf32>
  func.return %sl, %tr, %ex, %cc, %a, %b, %rs : tensor<3x3xf32>, tensor<6x5xf32>, tensor<2x3x4xf32>, tensor<5x12xf32>, tensor<5x2xf32>, tensor<5x4xf32>, tensor<3x10xf32>""",
        "%x: tensor<5x6xf32>",
        "(tensor<3x3xf32>, tensor<6x5xf32>, tensor<2x3x4xf32>, tensor<5x12xf32>, tensor<5x2xf32>, tensor<5x4xf32>, tensor<3x10xf32>)",
        [x],
    )
    np.testing.assert_array_equal(sl, x[4::-2, 1::2])
    np.testing.assert_array_equal(tr, x.T)
    np.testing.assert_array_equal(ex, np.full((2, 3, 4), x[0, 2]))
    np.testing.assert_array_equal(cc, np.hstack([x, x]))
    np.testing.assert_array_equal(sp0, x[:, :2])
    np.testing.assert_array_equal(sp1, x[:, 2:])
    np.testing.assert_array_equal(rs, x.reshape(3, 10))


def test_gathers():
    x = rand(4, 5, 3)
    idx = np.array([[3, -1], [0, -4]], np.int64)
    nd_idx = np.array([[[1], [4]], [[0], [2]], [[3], [3]], [[-1], [0]]], np.int64)
    g, s, nd = run(
        """
  %g = nn_tensor.gather %x, %i {axis = 1 : i64} : (tensor<4x5x3xf32>, tensor<2x2xi64>) -> tensor<4x2x2x3xf32>
  %k = nn_tensor.constant dense<-2> : tensor<i64>
  %s = nn_tensor.gather %x, %k {axis = 0 : i64} : (tensor<4x5x3xf32>, tensor<i64>) -> tensor<5x3xf32>
  %nd = nn_tensor.gather_nd %x, %j {batch_dims = 1 : i64} : (tensor<4x5x3xf32>, tensor<4x2x1xi64>) -> tensor<4x2x3xf32>
  func.return %g, %s, %nd : tensor<4x2x2x3xf32>, tensor<5x3xf32>, tensor<4x2x3xf32>""",
        "%x: tensor<4x5x3xf32>, %i: tensor<2x2xi64>, %j: tensor<4x2x1xi64>",
        "(tensor<4x2x2x3xf32>, tensor<5x3xf32>, tensor<4x2x3xf32>)",
        [x, idx, nd_idx],
    )
    for a in range(2):
        for b in range(2):
            np.testing.assert_array_equal(g[:, a, b], x[:, idx[a, b] % 5])
    np.testing.assert_array_equal(s, x[2])
    for n in range(4):
        for j in range(2):
            np.testing.assert_array_equal(nd[n, j], x[n, nd_idx[n, j, 0] % 5])


def test_refusals_as_onnxruntime():
    """onnxruntime fails on an integer division by zero ("Integer division by zero") and on
    gather / gather_nd indices outside [-dim, dim); so does the reference (it gave 0 with a
    numpy warning, and read index -4 of a dim of 3 as -1)."""
    div = "  %r = nn_tensor.div %a, %b : (tensor<2xi64>, tensor<2xi64>) -> tensor<2xi64>\n"
    with pytest.raises(ZeroDivisionError):
        run(div + "  func.return %r : tensor<2xi64>", "%a: tensor<2xi64>, %b: tensor<2xi64>",
            "tensor<2xi64>", [np.array([1, 2]), np.array([1, 0])])  # fmt: skip
    nd = (
        "  %r = nn_tensor.gather_nd %x, %i {batch_dims = 0 : i64} : "
        "(tensor<2x3xf32>, tensor<1x2xi64>) -> tensor<1xf32>\n  func.return %r : tensor<1xf32>"
    )
    x = rand(2, 3)
    for bad in ([0, 3], [0, -4], [2, 0]):
        with pytest.raises(IndexError):
            run(nd, "%x: tensor<2x3xf32>, %i: tensor<1x2xi64>", "tensor<1xf32>",
                [x, np.array([bad])])  # fmt: skip
    (r,) = run(nd, "%x: tensor<2x3xf32>, %i: tensor<1x2xi64>", "tensor<1xf32>",
               [x, np.array([[-2, -3]])])  # fmt: skip
    assert r.tolist() == [float(x[0, 0])]


def test_ieee_results_without_numpy_warnings():
    body = """
  %s = nn_tensor.sub %x, %x : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  %l = nn_tensor.log %s : tensor<3xf32> -> tensor<3xf32>
  %g = nn_tensor.sigmoid %x : tensor<3xf32> -> tensor<3xf32>
  %n = nn_tensor.neg %b : tensor<2xi1> -> tensor<2xi1>
  func.return %l, %g, %n : tensor<3xf32>, tensor<3xf32>, tensor<2xi1>"""
    x = np.array([np.inf, -1000.0, 1.0], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lg, g, n = run(body, "%x: tensor<3xf32>, %b: tensor<2xi1>",
                      "(tensor<3xf32>, tensor<3xf32>, tensor<2xi1>)",
                      [x, np.array([True, False])])  # fmt: skip
    assert np.isnan(lg[0]) and lg[1] == -np.inf and lg[2] == -np.inf
    assert g.tolist()[:2] == [1.0, 0.0]
    assert n.tolist() == [True, False]  # -x in one bit: x


def test_eval_op_one_op_in_the_result_types():
    module = Parser(make_context(), """
func.func @main(%a: tensor<3xi32>, %b: tensor<3xf32>) -> tensor<3xi32> {
  %c = nn_tensor.cast %b : tensor<3xf32> -> tensor<3xi32>
  %r = nn_tensor.div %a, %c : (tensor<3xi32>, tensor<3xi32>) -> tensor<3xi32>
  func.return %r : tensor<3xi32>
}""").parse_module()  # fmt: skip
    cast, div = [op for op in module.walk() if op.name in ("nn_tensor.cast", "nn_tensor.div")]
    (c,) = eval_op(cast, [np.array([2.9, -2.9, -1.5], np.float32)])
    assert c.dtype == np.int32 and c.tolist() == [2, -2, -1]
    (q,) = eval_op(div, [np.array([7, 7, -2**31], np.int64), c])
    assert q.dtype == np.int32 and q.tolist() == [3, -3, -2**31]
    (e,) = eval_op(cast, [np.array([0.1, 0.2, 0.3])], dtype=np.float32)
    assert e.dtype == np.int32


def test_fused_evaluates_its_body():
    x, w, bias = rand(3, 4), rand(4, 5), rand(5)
    (r,) = run(
        """
  %r = nn_tensor.fused %x, %w, %b {kind = "matmul"} : (tensor<3x4xf32>, tensor<4x5xf32>, tensor<5xf32>) -> tensor<3x5xf32> {
  ^bb0(%a: tensor<3x4xf32>, %ww: tensor<4x5xf32>, %bb: tensor<5xf32>):
    %m = nn_tensor.matmul %a, %ww : (tensor<3x4xf32>, tensor<4x5xf32>) -> tensor<3x5xf32>
    %h = nn_tensor.constant dense<2.0> : tensor<f32>
    %s = nn_tensor.add %m, %bb : (tensor<3x5xf32>, tensor<5xf32>) -> tensor<3x5xf32>
    %t = nn_tensor.mul %s, %h : (tensor<3x5xf32>, tensor<f32>) -> tensor<3x5xf32>
    %g = nn_tensor.gelu %t : tensor<3x5xf32> -> tensor<3x5xf32>
    nn_tensor.yield %g : tensor<3x5xf32>
  }
  func.return %r : tensor<3x5xf32>""",
        "%x: tensor<3x4xf32>, %w: tensor<4x5xf32>, %b: tensor<5xf32>",
        "tensor<3x5xf32>",
        [x, w, bias],
    )
    t = (x.astype(float) @ w + bias) * 2.0
    np.testing.assert_allclose(r, t * 0.5 * (1 + erf(t / math.sqrt(2))), rtol=1e-12)


def test_weights_and_errors():
    w = rand(2, 3)
    body = """
  %w = nn_tensor.weight "a \\22key\\22" : tensor<2x3xf32>
  %r = nn_tensor.add %x, %w : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  func.return %r : tensor<2x3xf32>"""
    x = rand(2, 3)
    (r,) = run(body, "%x: tensor<2x3xf32>", "tensor<2x3xf32>", [x], {'a "key"': w})
    np.testing.assert_allclose(r, x.astype(float) + w)
    with pytest.raises(KeyError, match="no weight"):
        run(body, "%x: tensor<2x3xf32>", "tensor<2x3xf32>", [x], {})
    with pytest.raises(ShapeError, match="weight"):
        run(body, "%x: tensor<2x3xf32>", "tensor<2x3xf32>", [x], {'a "key"': w.T})
    with pytest.raises(ShapeError, match="input 0 has shape"):
        run(body, "%x: tensor<2x3xf32>", "tensor<2x3xf32>", [x.T], {'a "key"': w})
    with pytest.raises(ShapeError, match="takes 1 inputs"):
        run(body, "%x: tensor<2x3xf32>", "tensor<2x3xf32>", [], {'a "key"': w})


def test_erf_large_arrays_match_math_erf():
    x = RNG.standard_normal(10_000) * 3
    np.testing.assert_allclose(erf(x), [math.erf(v) for v in x], rtol=0, atol=1e-15)
