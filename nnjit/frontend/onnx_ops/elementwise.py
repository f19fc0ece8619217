"""Elementwise ONNX ops: binary (broadcasting), variadic, unary float functions, Gelu, logic,
Cast, Where, Clip, LeakyRelu, Identity, Dropout.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnjit.dialects import nn_tensor as nt
from nnjit.frontend.onnx_ops.base import cast_value, check_float, emit_binary, register
from nnjit.frontend.values import (
    SUPPORTED_DTYPE_NAMES,
    SUPPORTED_DTYPES,
    Const,
    NodeContext,
    Value,
    tensor_type,
)

_BINARY: dict[str, type[nt.BinaryElementwiseOp]] = {
    "Add": nt.AddOp,
    "Sub": nt.SubOp,
    "Mul": nt.MulOp,
    "Div": nt.DivOp,
    "Pow": nt.PowOp,
    "And": nt.AndOp,
    "Or": nt.OrOp,
    "Equal": nt.EqualOp,
    "Less": nt.LessOp,
    "Greater": nt.GreaterOp,
}


@register(*_BINARY)
def _convert_binary(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    return [emit_binary(cx, _BINARY[cx.node.op_type], cx.input(ins, 0), cx.input(ins, 1))]


_VARIADIC: dict[str, type[nt.BinaryElementwiseOp]] = {
    "Max": nt.MaxOp,
    "Min": nt.MinOp,
    "Sum": nt.AddOp,
}


@register(*_VARIADIC)
def _convert_variadic(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    vals = [v for v in ins if v is not None]
    if not vals:
        raise cx.fail("needs at least one input")
    acc = vals[0]
    for v in vals[1:]:
        acc = emit_binary(cx, _VARIADIC[cx.node.op_type], acc, v)
    return [acc]


@register("LessOrEqual", "GreaterOrEqual")
def _convert_le_ge(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    # a <= b == (a < b) or (a == b): false when a or b is NaN (not (a > b) would be true)
    cls = nt.LessOp if cx.node.op_type == "LessOrEqual" else nt.GreaterOp
    a, b = cx.input(ins, 0), cx.input(ins, 1)
    strict = emit_binary(cx, cls, a, b)
    equal = emit_binary(cx, nt.EqualOp, a, b)
    return [emit_binary(cx, nt.OrOp, strict, equal)]


_UNARY_FLOAT: dict[str, type[nt.UnaryElementwiseOp]] = {
    "Sqrt": nt.SqrtOp,
    "Erf": nt.ErfOp,
    "Tanh": nt.TanhOp,
    "Sin": nt.SinOp,
    "Cos": nt.CosOp,
    "Exp": nt.ExpOp,
    "Log": nt.LogOp,
    "Reciprocal": nt.ReciprocalOp,
    "Relu": nt.ReluOp,
    "Sigmoid": nt.SigmoidOp,
    "Round": nt.RoundOp,
}


@register(*_UNARY_FLOAT)
def _convert_unary_float(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    check_float(cx, x)
    return [cx.emit(_UNARY_FLOAT[cx.node.op_type](cx.ssa(x)))]


@register("Neg", "Abs")
def _convert_neg_abs(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    if x.dtype == np.bool_:
        raise cx.fail("expects a numeric input, got bool")
    cls = nt.NegOp if cx.node.op_type == "Neg" else nt.AbsOp
    return [cx.emit(cls(cx.ssa(x)))]


@register("Gelu")
def _convert_gelu(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    check_float(cx, x)
    approx = cx.attr("approximate", b"none")
    if isinstance(approx, bytes):
        approx = approx.decode()
    if approx != "none":
        raise cx.fail(f"Gelu with approximate={approx!r} is not supported", hint="use 'none'")
    return [cx.emit(nt.GeluOp(cx.ssa(x)))]


@register("Not")
def _convert_not(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    if x.dtype != np.bool_:
        raise cx.fail(f"expects a bool input, got {x.dtype}")
    return [cx.emit(nt.NotOp(cx.ssa(x)))]


@register("IsNaN")
def _convert_isnan(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    check_float(cx, x)
    return [cx.emit(nt.IsNaNOp(cx.ssa(x), tensor_type(x.shape, np.bool_)))]


def _onnx_dtype(cx: NodeContext, to: int) -> np.dtype[Any]:
    from onnx import helper

    try:
        dt = np.dtype(helper.tensor_dtype_to_np_dtype(to))
    except Exception:
        raise cx.fail(f"cast to ONNX element type {to} is not supported") from None
    if dt == np.float16:  # (float16 models compute in float32)
        return np.dtype(np.float32)
    if dt not in SUPPORTED_DTYPES:
        raise cx.fail(
            f"cast to {dt} is not supported (nnjit supports {SUPPORTED_DTYPE_NAMES})",
            hint="convert the model to float32",
        )
    return dt


@register("Cast")
def _convert_cast(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    return [cast_value(cx, cx.input(ins, 0), _onnx_dtype(cx, int(cx.attr("to"))))]


@register("CastLike")
def _convert_cast_like(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    return [cast_value(cx, cx.input(ins, 0), cx.input(ins, 1).dtype)]


@register("Where")
def _convert_where(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    c, a, b = cx.input(ins, 0), cx.input(ins, 1), cx.input(ins, 2)
    if c.dtype != np.bool_:
        raise cx.fail(f"condition must be bool, got {c.dtype}")
    if a.dtype != b.dtype:
        raise cx.fail(f"branch element types differ: {a.dtype} and {b.dtype}")
    try:
        shape = nt.broadcast_shapes(c.shape, a.shape, b.shape)
    except ValueError as e:
        raise cx.fail(str(e)) from None
    return [cx.emit(nt.WhereOp(cx.ssa(c), cx.ssa(a), cx.ssa(b), tensor_type(shape, a.dtype)))]


@register("Clip")
def _convert_clip(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    if cx.opset < 11:
        lo, hi = cx.attr("min"), cx.attr("max")
    else:
        lo_a, hi_a = cx.const(ins, 1, "min"), cx.const(ins, 2, "max")
        lo = None if lo_a is None else lo_a.reshape(-1)[0]
        hi = None if hi_a is None else hi_a.reshape(-1)[0]
    if x.dtype == np.float32:
        # an omitted bound is the lowest / largest finite value (the spec's default):
        # Clip(inf) without max is FLT_MAX, as in onnxruntime
        lo = np.finfo(np.float32).min if lo is None else lo
        hi = np.finfo(np.float32).max if hi is None else hi
    r: Value = x
    if lo is not None:
        r = emit_binary(cx, nt.MaxOp, r, Const(np.array(lo, dtype=x.dtype), cx.node.output[0] + "/min"))
    if hi is not None:
        r = emit_binary(cx, nt.MinOp, r, Const(np.array(hi, dtype=x.dtype), cx.node.output[0] + "/max"))
    return [r]


@register("LeakyRelu")
def _convert_leaky_relu(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    # where(x < 0, alpha * x, x): NaN < 0 is false, so NaN stays NaN (as in onnxruntime)
    x = cx.input(ins, 0)
    check_float(cx, x)
    alpha = float(cx.attr("alpha", 0.01))
    out = cx.node.output[0]
    neg = emit_binary(cx, nt.LessOp, x, Const(np.array(0.0, dtype=x.dtype), out + "/zero"))
    scaled = emit_binary(cx, nt.MulOp, x, Const(np.array(alpha, dtype=x.dtype), out + "/alpha"))
    return [cx.emit(nt.WhereOp(cx.ssa(neg), cx.ssa(scaled), cx.ssa(x), tensor_type(x.shape, x.dtype)))]


@register("Identity")
def _convert_identity(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    return [cx.input(ins, 0)]


@register("Dropout")
def _convert_dropout(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    # inference: the output is the input, the mask all true
    x = cx.input(ins, 0)
    return [x, Const(np.ones(x.shape, dtype=np.bool_), cx.node.output[-1])]
