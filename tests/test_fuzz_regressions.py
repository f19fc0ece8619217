"""Graphs that differential fuzzing (tests/test_fuzz.py) found to differ from onnxruntime,
minimised and kept: each runs on WebGPU and Wasm against onnxruntime with the fuzzer's
comparison (tests/fuzz/harness.py: same NaN and inf positions, values within 1e-4)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from tests.fuzz.harness import check, reference

F = TensorProto.FLOAT


def _model(nodes, inputs, outputs, inits=(), opset=18) -> bytes:
    graph = helper.make_graph(nodes, "regression", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model.SerializeToString()


def _in(name, shape, dtype=F):
    return helper.make_tensor_value_info(name, dtype, list(shape))


def _out(name, dtype=F):
    return helper.make_tensor_value_info(name, dtype, None)


@pytest.mark.parametrize("op", ["LessOrEqual", "GreaterOrEqual"])
def test_le_ge_are_false_on_nan(op):
    # found as GreaterOrEqual(NaN, -1) -> Cast -> Mul: nnjit took a >= b as not (a < b),
    # true for NaN; onnxruntime (and IEEE) say false
    a = np.array([np.nan, 1, 2, np.nan, -np.inf, 0.5], np.float32)
    b = np.array([-1, np.nan, 2, np.nan, -np.inf, 2], np.float32)
    nodes = [
        helper.make_node(op, ["a", "b"], ["c"]),
        helper.make_node("Cast", ["c"], ["f"], to=F),
        helper.make_node("Mul", ["f", "x"], ["y"]),
    ]
    model = _model(nodes, [_in("a", [6]), _in("b", [6]), _in("x", [6])], [_out("y")])
    x = np.random.default_rng(0).standard_normal(6).astype(np.float32)
    assert check(model, {"a": a, "b": b, "x": x}) == []


def test_isnan_where_on_webgpu():
    # found as Sqrt(Sqrt(x)) -> Where(IsNaN): WebGPU's `x != x` was folded away by the driver
    nodes = [
        helper.make_node("Sqrt", ["x"], ["s"]),
        helper.make_node("IsNaN", ["s"], ["m"]),
        helper.make_node("Where", ["m", "zero", "s"], ["y"]),
    ]
    zero = helper.make_tensor("zero", F, [], [0.0])
    model = _model(nodes, [_in("x", [5])], [_out("y")], [zero])
    x = np.array([-1.0, 4.0, np.nan, np.inf, -np.inf], np.float32)
    assert check(model, {"x": x}) == []


@pytest.mark.parametrize("axes", [[0, 1], [1], [-2]])
def test_reduce_max_of_minus_inf_rows_is_minus_inf(axes):
    # found as ReduceMax over rows of -inf: the max started at -FLT_MAX and gave -3.4e38. On
    # Wasm it starts at -inf now; WGSL has no infinity literal, and WebGPU still gives
    # -FLT_MAX there (tests/fuzz/harness.py accepts that on WebGPU only)
    x = np.array([[-np.inf, -np.inf, -np.inf], [1.0, -np.inf, 2.0]], np.float32)
    nodes = [helper.make_node("ReduceMax", ["x", "axes"], ["y"], keepdims=0)]
    axes_t = helper.make_tensor("axes", TensorProto.INT64, [len(axes)], axes)
    model = _model(nodes, [_in("x", [2, 3])], [_out("y")], [axes_t])
    assert check(model, {"x": x}, backends=("wasm",)) == []
    assert check(model, {"x": x}) == []  # (WebGPU: -FLT_MAX taken for -inf)



def test_tanh_of_tiny_values_on_webgpu():
    # found as ReduceMax -> Where -> Tanh of 1e-30: WGSL's tanh (lavapipe) has an absolute
    # error of 3e-8, so tanh(1e-30) was 3e-8 (relative error 3e22; 1e-3 at 3e-5)
    nodes = [helper.make_node("Tanh", ["x"], ["y"])]
    model = _model(nodes, [_in("x", [1])], [_out("y")])
    for v in (1e-30, -1e-20, 1e-10, 3e-5, -0.0625, 0.07):
        assert check(model, {"x": np.array([v], np.float32)}) == [], v


def _tanh_gelu(x: str, out: str) -> tuple[list, list]:
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as GPT-2 exports it."""
    c = {k: helper.make_tensor(k, F, [], [v]) for k, v in
         (("three", 3.0), ("k", 0.044715), ("s", 0.7978845834732056), ("one", 1.0), ("half", 0.5))}
    nodes = [
        helper.make_node("Pow", [x, "three"], ["x3"]),
        helper.make_node("Mul", ["x3", "k"], ["kx3"]),
        helper.make_node("Add", [x, "kx3"], ["inner"]),
        helper.make_node("Mul", ["inner", "s"], ["arg"]),
        helper.make_node("Tanh", ["arg"], ["th"]),
        helper.make_node("Add", ["th", "one"], ["p"]),
        helper.make_node("Mul", ["half", x], ["hx"]),
        helper.make_node("Mul", ["hx", "p"], [out]),
    ]
    return nodes, list(c.values())


def test_tanh_gelu_of_large_negative_values_is_zero():
    # found as Gemm -> tanh-GELU with a -1e15 input: Wasm's inline tanh stopped at 1 - 1.2e-7,
    # so 1 + tanh(-huge) was 1.2e-7 and the GELU -4e7 instead of -0 (and -inf gave -inf, not
    # NaN); now tanh is exactly +-1 from its clamp on
    nodes, inits = _tanh_gelu("m", "y")
    w = helper.make_tensor("w", F, [4, 2], np.linspace(-1, 1, 8))
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), *nodes]
    model = _model(nodes, [_in("x", [3, 4])], [_out("y")], [w, *inits], opset=17)
    x = np.array([[1e15, -1e15, 2.0, -3.0], [-np.inf, 0.5, 1.0, 9.0], [1e4, -1e4, 0, 7]],
                 np.float32)
    assert check(model, {"x": x}) == []


@pytest.mark.parametrize("bounds", [(), ("", "hi"), ("lo",)])
def test_clip_without_a_bound_clamps_inf_to_the_largest_float(bounds):
    # found as Clip(x) with no min and max: an omitted bound is numeric_limits lowest() / max()
    # (the spec's default, and onnxruntime's), so +-inf becomes +-FLT_MAX; nnjit kept inf
    inits = [helper.make_tensor("lo", F, [], [-0.5]), helper.make_tensor("hi", F, [], [0.5])]
    nodes = [helper.make_node("Clip", ["x", *bounds], ["y"])]
    model = _model(nodes, [_in("x", [6])], [_out("y")], inits, opset=20)
    x = np.array([np.inf, -np.inf, np.nan, 3.0e38, -1.0, 0.25], np.float32)
    assert check(model, {"x": x}) == []


@pytest.mark.parametrize("exponent", [-2.0, -2.5, -4.0])
def test_pow_of_zero_to_a_negative_power_is_inf(exponent):
    # found as Pow(x, -2) with x = 0 or 1e-30: WGSL's pow(0, negative) is undefined and
    # lavapipe gave 0 (C's pow, and onnxruntime: +inf); now 1 / pow(|x|, 2)
    e = helper.make_tensor("e", F, [], [exponent])
    model = _model([helper.make_node("Pow", ["x", "e"], ["y"])], [_in("x", [7])], [_out("y")], [e])
    x = np.array([0.0, -0.0, 1e-30, 1e-20, 2.0, np.inf, 3.0], np.float32)
    assert check(model, {"x": x}) == []


def test_gelu_of_large_negative_values_is_zero():
    # found as Gelu -> LayerNormalization -> Softmax with a -1e6 input: Wasm's inline erf
    # stopped at 1 - 6e-8, so Gelu(-1e6) was -0.0625 instead of -0
    nodes = [helper.make_node("Gelu", ["x"], ["y"])]
    x = np.array([-1e6, -1e15, -4.0, -np.inf, np.inf, 1e6], np.float32)
    for v in (x, x[:1]):  # (one value: the tolerance scales with the largest output)
        model = _model(nodes, [_in("x", [v.size])], [_out("y")], opset=20)
        assert check(model, {"x": v}) == []


def test_transpose_then_matvec():
    """Found as MatMul(Transpose(x, 0 2 1), w) with a 1-D w of constants: nnjit was right and
    onnxruntime's optimized graph wrong (its Transpose + MatMul fusion, 1.31.1); the reference
    runs the graph unoptimized, and numpy in float64 says which is right."""
    w = helper.make_tensor("w", F, [7], np.random.default_rng(1).standard_normal(7).astype(np.float32))
    model = _model([helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 1]),
                    helper.make_node("MatMul", ["t", "w"], ["y"])], [_in("x", [7, 7, 4])], [_out("y")], [w])  # fmt: skip
    x = np.random.default_rng(0).standard_normal((7, 7, 4)).astype(np.float32)
    assert check(model, {"x": x}) == []
    want = np.transpose(x.astype(np.float64), (0, 2, 1)) @ np.random.default_rng(1).standard_normal(7).astype(np.float32)
    got = reference(model, {"x": x})["y"]
    assert np.max(np.abs(got - want)) < 1e-5 * np.max(np.abs(want))


def test_softmax_of_gelu_with_a_large_negative_value():
    """Found as Softmax(Gelu(x), axis=-4) with x = -1e6 in the column: GELU written as the
    multiply-add x/2 + x/2 erf(x/sqrt2) gave 0.014 on lavapipe (fast-math) instead of 0, and the
    whole softmax column was off by 1e-3; now x/2 (1 + erf)."""
    model = _model([helper.make_node("Gelu", ["x"], ["t"]), helper.make_node("Softmax", ["t"], ["y"], axis=0)],
                   [_in("x", [7, 1])], [_out("y")], opset=20)  # fmt: skip
    x = np.array([[0.686], [-1e6], [-0.776], [1e-30], [1.998], [-0.423], [0.391]], np.float32)
    assert check(model, {"x": x}) == []
