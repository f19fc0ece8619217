"""Converters from ONNX nodes (with at least one run-time input) to nn_tensor ops.

Each converter takes the node's context and its input values (`Const` or `Dyn`, None for an
omitted optional input) and returns one value per node output. Nodes whose inputs are all
constants never get here: the importer folds them (see onnx_import.py). Attribute and input
forms of both the opset-17 (torch legacy) and opset-18 (torch dynamo) exports are handled.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from xdsl.dialects.builtin import FloatAttr, IntegerAttr
from xdsl.ir import Attribute, Operation

from nnjit.dialects import nn_tensor as nt
from nnjit.frontend.values import (
    SUPPORTED_DTYPE_NAMES,
    SUPPORTED_DTYPES,
    Const,
    NodeContext,
    Value,
    tensor_type,
)

Converter = Callable[[NodeContext, list[Value | None]], list[Value]]
CONVERTERS: dict[str, Converter] = {}


def _register(*op_types: str) -> Callable[[Converter], Converter]:
    def deco(fn: Converter) -> Converter:
        for t in op_types:
            CONVERTERS[t] = fn
        return fn

    return deco


def _build(
    cls: type[Operation],
    operands: Sequence[Any],
    result_types: Sequence[Attribute | Sequence[Attribute]],
    **props: Attribute,
) -> Operation:
    return cls(operands=list(operands), result_types=list(result_types), properties=props)


def _i64(v: int) -> IntegerAttr[Any]:
    return IntegerAttr(int(v), 64)


def _f32(v: float) -> FloatAttr[Any]:
    return FloatAttr(float(v), 32)


def _axis(cx: NodeContext, axis: int, rank: int, what: str = "axis") -> int:
    a = int(axis)
    if a < 0:
        a += rank
    if not 0 <= a < rank:
        raise cx.fail(f"{what} {axis} is out of range for rank {rank}")
    return a


def _ints(a: np.ndarray | Sequence[int] | None) -> list[int] | None:
    if a is None:
        return None
    return [int(x) for x in np.asarray(a).reshape(-1)]


def _float_in(cx: NodeContext, v: Value) -> None:
    if v.dtype != np.float32:
        raise cx.fail(f"expects a float32 input, got {v.dtype}")


# ------------------------------------------------------------------ small shared helpers


def _reshape(cx: NodeContext, v: Value, shape: Sequence[int]) -> Value:
    shape = tuple(int(d) for d in shape)
    if v.shape == shape:
        return v
    if isinstance(v, Const):
        return Const(v.array.reshape(shape), v.name)
    return cx.emit(nt.ReshapeOp(v.ssa, tensor_type(shape, v.dtype)))


def _cast(cx: NodeContext, v: Value, dtype: np.dtype[Any]) -> Value:
    dtype = np.dtype(dtype)
    if v.dtype == dtype:
        return v
    if isinstance(v, Const):
        return Const(v.array.astype(dtype), v.name)
    if dtype not in SUPPORTED_DTYPES:
        raise cx.fail(
            f"cast to {dtype} is not supported (nnjit supports {SUPPORTED_DTYPE_NAMES})",
            hint="convert the model to float32",
        )
    return cx.emit(nt.CastOp(v.ssa, tensor_type(v.shape, dtype)))


def _binary(cx: NodeContext, cls: type[nt.BinaryElementwiseOp], a: Value, b: Value) -> Value:
    if cls is nt.PowOp and a.dtype != b.dtype:
        b = _cast(cx, b, a.dtype)
    if a.dtype != b.dtype:
        raise cx.fail(f"operand element types differ: {a.dtype} and {b.dtype}")
    if cls in (nt.AndOp, nt.OrOp) and a.dtype != np.bool_:
        raise cx.fail(f"expects bool operands, got {a.dtype}")
    try:
        shape = nt.broadcast_shapes(a.shape, b.shape)
    except ValueError as e:
        raise cx.fail(str(e)) from None
    dt = np.dtype(np.bool_) if issubclass(cls, nt.CompareOp) else a.dtype
    return cx.emit(cls(cx.ssa(a), cx.ssa(b), tensor_type(shape, dt)))


# ---------------------------------------------------------------------------- elementwise

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


@_register(*_BINARY)
def _convert_binary(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    return [_binary(cx, _BINARY[cx.node.op_type], cx.input(ins, 0), cx.input(ins, 1))]


_VARIADIC: dict[str, type[nt.BinaryElementwiseOp]] = {
    "Max": nt.MaxOp,
    "Min": nt.MinOp,
    "Sum": nt.AddOp,
}


@_register(*_VARIADIC)
def _convert_variadic(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    vals = [v for v in ins if v is not None]
    if not vals:
        raise cx.fail("needs at least one input")
    acc = vals[0]
    for v in vals[1:]:
        acc = _binary(cx, _VARIADIC[cx.node.op_type], acc, v)
    return [acc]


@_register("LessOrEqual", "GreaterOrEqual")
def _convert_le_ge(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    # a <= b == (a < b) or (a == b): false when a or b is NaN (not (a > b) would be true)
    cls = nt.LessOp if cx.node.op_type == "LessOrEqual" else nt.GreaterOp
    a, b = cx.input(ins, 0), cx.input(ins, 1)
    strict = _binary(cx, cls, a, b)
    equal = _binary(cx, nt.EqualOp, a, b)
    return [_binary(cx, nt.OrOp, strict, equal)]


_UNARY_FLOAT: dict[str, type[nt.UnaryElementwiseOp]] = {
    "Sqrt": nt.SqrtOp,
    "Erf": nt.ErfOp,
    "Tanh": nt.TanhOp,
    "Exp": nt.ExpOp,
    "Log": nt.LogOp,
    "Reciprocal": nt.ReciprocalOp,
    "Relu": nt.ReluOp,
    "Sigmoid": nt.SigmoidOp,
}


@_register(*_UNARY_FLOAT)
def _convert_unary_float(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    _float_in(cx, x)
    return [cx.emit(_UNARY_FLOAT[cx.node.op_type](cx.ssa(x)))]


@_register("Neg", "Abs")
def _convert_neg_abs(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    if x.dtype == np.bool_:
        raise cx.fail("expects a numeric input, got bool")
    cls = nt.NegOp if cx.node.op_type == "Neg" else nt.AbsOp
    return [cx.emit(cls(cx.ssa(x)))]


@_register("Gelu")
def _convert_gelu(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    _float_in(cx, x)
    approx = cx.attr("approximate", b"none")
    if isinstance(approx, bytes):
        approx = approx.decode()
    if approx != "none":
        raise cx.fail(f"Gelu with approximate={approx!r} is not supported", hint="use 'none'")
    return [cx.emit(nt.GeluOp(cx.ssa(x)))]


@_register("Not")
def _convert_not(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    if x.dtype != np.bool_:
        raise cx.fail(f"expects a bool input, got {x.dtype}")
    return [cx.emit(nt.NotOp(cx.ssa(x)))]


@_register("IsNaN")
def _convert_isnan(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    _float_in(cx, x)
    return [cx.emit(nt.IsNaNOp(cx.ssa(x), tensor_type(x.shape, np.bool_)))]


def _onnx_dtype(cx: NodeContext, to: int) -> np.dtype[Any]:
    from onnx import helper

    try:
        dt = np.dtype(helper.tensor_dtype_to_np_dtype(to))
    except Exception:
        raise cx.fail(f"cast to ONNX element type {to} is not supported") from None
    if dt not in SUPPORTED_DTYPES:
        raise cx.fail(
            f"cast to {dt} is not supported (nnjit supports {SUPPORTED_DTYPE_NAMES})",
            hint="convert the model to float32",
        )
    return dt


@_register("Cast")
def _convert_cast(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    return [_cast(cx, cx.input(ins, 0), _onnx_dtype(cx, int(cx.attr("to"))))]


@_register("CastLike")
def _convert_cast_like(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    return [_cast(cx, cx.input(ins, 0), cx.input(ins, 1).dtype)]


@_register("Where")
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


@_register("Clip")
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
        r = _binary(cx, nt.MaxOp, r, Const(np.array(lo, dtype=x.dtype), cx.node.output[0] + "/min"))
    if hi is not None:
        r = _binary(cx, nt.MinOp, r, Const(np.array(hi, dtype=x.dtype), cx.node.output[0] + "/max"))
    return [r]


@_register("LeakyRelu")
def _convert_leaky_relu(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    # where(x < 0, alpha * x, x): NaN < 0 is false, so NaN stays NaN (as in onnxruntime)
    x = cx.input(ins, 0)
    _float_in(cx, x)
    alpha = float(cx.attr("alpha", 0.01))
    out = cx.node.output[0]
    neg = _binary(cx, nt.LessOp, x, Const(np.array(0.0, dtype=x.dtype), out + "/zero"))
    scaled = _binary(cx, nt.MulOp, x, Const(np.array(alpha, dtype=x.dtype), out + "/alpha"))
    return [cx.emit(nt.WhereOp(cx.ssa(neg), cx.ssa(scaled), cx.ssa(x), tensor_type(x.shape, x.dtype)))]


@_register("Identity")
def _convert_identity(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    return [cx.input(ins, 0)]


@_register("Dropout")
def _convert_dropout(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    # inference: the output is the input, the mask all true
    x = cx.input(ins, 0)
    return [x, Const(np.ones(x.shape, dtype=np.bool_), cx.node.output[-1])]


# --------------------------------------------------------------------------- contractions


@_register("MatMul")
def _convert_matmul(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    a, b = cx.input(ins, 0), cx.input(ins, 1)
    _float_in(cx, a)
    _float_in(cx, b)
    sa, sb = a.shape, b.shape
    if len(sa) == 0 or len(sb) == 0:
        raise cx.fail("MatMul operands must have rank >= 1")
    a2 = _reshape(cx, a, (1, *sa)) if len(sa) == 1 else a
    b2 = _reshape(cx, b, (*sb, 1)) if len(sb) == 1 else b
    sa2, sb2 = a2.shape, b2.shape
    if sa2[-1] != sb2[-2]:
        raise cx.fail(f"contraction dims differ: {sa} @ {sb}")
    try:
        batch = nt.broadcast_shapes(sa2[:-2], sb2[:-2])
    except ValueError as e:
        raise cx.fail(f"batch dims: {e}") from None
    out = (*batch, sa2[-2], sb2[-1])
    r: Value = cx.emit(nt.MatmulOp(cx.ssa(a2), cx.ssa(b2), tensor_type(out, np.float32)))
    final = list(out)
    if len(sb) == 1:
        final.pop(-1)
    if len(sa) == 1:
        final.pop(-1 if len(sb) == 1 else -2)
    return [_reshape(cx, r, final)]


@_register("Gemm")
def _convert_gemm(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    a, b = cx.input(ins, 0), cx.input(ins, 1)
    c = ins[2] if len(ins) > 2 else None
    _float_in(cx, a)
    _float_in(cx, b)
    ta, tb = int(cx.attr("transA", 0)), int(cx.attr("transB", 0))
    if len(a.shape) != 2 or len(b.shape) != 2:
        raise cx.fail(f"Gemm operands must be 2-D, got {a.shape} and {b.shape}")
    m, k = a.shape[::-1] if ta else a.shape
    k2, n = b.shape[::-1] if tb else b.shape
    if k != k2:
        raise cx.fail(f"contraction dims differ: {a.shape} and {b.shape}")
    if c is not None:
        try:
            if nt.broadcast_shapes(c.shape, (m, n)) != (m, n):
                raise ValueError
        except ValueError:
            raise cx.fail(f"C of shape {c.shape} does not broadcast to {(m, n)}") from None
    op = _build(
        nt.GemmOp,
        [cx.ssa(a), cx.ssa(b), None if c is None else cx.ssa(c)],
        [tensor_type((m, n), np.float32)],
        alpha=_f32(cx.attr("alpha", 1.0)),
        beta=_f32(cx.attr("beta", 1.0)),
        trans_a=_i64(ta),
        trans_b=_i64(tb),
    )
    return [cx.emit(op)]


@_register("Conv")
def _convert_conv(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x, w = cx.input(ins, 0), cx.input(ins, 1)
    bias = ins[2] if len(ins) > 2 else None
    _float_in(cx, x)
    if len(x.shape) == 3 and len(w.shape) == 3:
        return _conv1d_as_2d(cx, x, w, bias)
    if len(x.shape) != 4 or len(w.shape) != 4:
        raise cx.fail(
            f"only 1-D (NCL) and 2-D (NCHW) convolution is supported, got input rank "
            f"{len(x.shape)}"
        )
    kh, kw = w.shape[2:]
    strides = _ints(cx.attr("strides")) or [1, 1]
    dil = _ints(cx.attr("dilations")) or [1, 1]
    group = int(cx.attr("group", 1))
    auto_pad = cx.attr("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    if auto_pad in ("NOTSET", ""):
        pads = _ints(cx.attr("pads")) or [0, 0, 0, 0]
    elif auto_pad == "VALID":
        pads = [0, 0, 0, 0]
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        begin, end = [], []
        for size, k, s, d in zip(x.shape[2:], (kh, kw), strides, dil):
            out = -(-size // s)
            total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
            small = total // 2
            b = small if auto_pad == "SAME_UPPER" else total - small
            begin.append(b)
            end.append(total - b)
        pads = [*begin, *end]
    else:
        raise cx.fail(f"auto_pad {auto_pad!r} is not supported")
    if len(pads) != 4 or len(strides) != 2 or len(dil) != 2:
        raise cx.fail("Conv needs 2 strides, 2 dilations and 4 pads")
    if x.shape[1] != w.shape[1] * group:
        raise cx.fail(f"input channels {x.shape[1]} != weight channels {w.shape[1]} * group {group}")
    if group > 1 and w.shape[0] * w.shape[1] * group * kh * kw > MAX_UNGROUPED_WEIGHT:
        return _conv_per_group(cx, x, w, bias, group, strides, dil, pads)
    if group > 1:
        w, group = _ungrouped_weight(cx, w, group), 1
    oh = (x.shape[2] + pads[0] + pads[2] - dil[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (x.shape[3] + pads[1] + pads[3] - dil[1] * (kw - 1) - 1) // strides[1] + 1
    op = _build(
        nt.ConvOp,
        [cx.ssa(x), cx.ssa(w), None if bias is None else cx.ssa(bias)],
        [tensor_type((x.shape[0], w.shape[0], oh, ow), np.float32)],
        strides=nt.i64_array(strides),
        pads=nt.i64_array(pads),
        dilations=nt.i64_array(dil),
        group=_i64(group),
    )
    return [cx.emit(op)]


# A grouped conv becomes a group-1 conv on a block-diagonal weight up to this many elements;
# above, one conv per group (concatenated) up to this many groups.
MAX_UNGROUPED_WEIGHT = 1 << 22
MAX_SPLIT_GROUPS = 64


def _group_weight(cx: NodeContext, w: Value, group: int) -> np.ndarray:
    if not isinstance(w, Const):
        raise cx.fail(f"Conv with group {group} and a weight computed at run time is not supported")
    if w.shape[0] % group:
        raise cx.fail(f"output channels {w.shape[0]} are not a multiple of group {group}")
    return w.array


def _ungrouped_weight(cx: NodeContext, w: Value, group: int) -> Const:
    """The weight of a grouped conv (ConvNeXt's depthwise, wav2vec2's positional conv) as the
    group-1 weight that is zero between groups: exact for finite inputs, with `group` times
    the work (a NaN or inf of one group reaches all output channels: 0 * inf)."""
    array = _group_weight(cx, w, group)
    f, cg, *k = w.shape
    dense = np.zeros((f, cg * group, *k), np.float32)
    fg = f // group
    for g in range(group):
        dense[g * fg : (g + 1) * fg, g * cg : (g + 1) * cg] = array[g * fg : (g + 1) * fg]
    return Const(dense, w.name)


def _conv_per_group(
    cx: NodeContext, x: Value, w: Value, bias: Value | None, group: int, strides: list[int],
    dil: list[int], pads: list[int],
) -> list[Value]:  # fmt: skip
    """A grouped conv too large for a block-diagonal weight as one conv per group (the
    channel slices of the input), concatenated along the channels."""
    array = _group_weight(cx, w, group)
    if group > MAX_SPLIT_GROUPS:
        raise cx.fail(
            f"Conv with group {group} on {x.shape[1]} channels: too large for a block-diagonal "
            f"weight ({MAX_UNGROUPED_WEIGHT} elements) and more than {MAX_SPLIT_GROUPS} groups "
            f"to run one by one",
            hint="grouped convolution kernels are not implemented yet",
        )
    if bias is not None and not isinstance(bias, Const):
        raise cx.fail(f"Conv with group {group} and a bias computed at run time is not supported")
    sub = copy.copy(cx)
    sub.attrs = {"strides": strides, "dilations": dil, "pads": pads, "group": 1}
    n, c, h, wd = x.shape
    cg, fg = c // group, w.shape[0] // group
    outs: list[Value] = []
    for g in range(group):
        xg = cx.emit(
            _build(
                nt.SliceOp, [cx.ssa(x)], [tensor_type((n, cg, h, wd), x.dtype)],
                starts=nt.i64_array([0, g * cg, 0, 0]), steps=nt.i64_array([1, 1, 1, 1]),
            )  # fmt: skip
        )
        name = f"{w.name}/group{g}"
        wg = Const(np.ascontiguousarray(array[g * fg : (g + 1) * fg]), name)
        bg = None if bias is None else Const(bias.array[g * fg : (g + 1) * fg], name + "/bias")
        outs.extend(_convert_conv(sub, [xg, wg, bg]))
    shape = (outs[0].shape[0], w.shape[0], *outs[0].shape[2:])
    op = _build(nt.ConcatOp, [[cx.ssa(v) for v in outs]], [tensor_type(shape, x.dtype)], axis=_i64(1))
    return [cx.emit(op)]


def _conv1d_as_2d(cx: NodeContext, x: Value, w: Value, bias: Value | None) -> list[Value]:
    """A 1-D convolution (Whisper, wav2vec2) as a 2-D one over a height-1 image."""
    strides = _ints(cx.attr("strides")) or [1]
    dil = _ints(cx.attr("dilations")) or [1]
    pads = _ints(cx.attr("pads")) or [0, 0]
    if len(strides) != 1 or len(dil) != 1 or len(pads) != 2:
        raise cx.fail("a 1-D Conv needs 1 stride, 1 dilation and 2 pads")
    attrs = dict(cx.attrs, strides=[1, *strides], dilations=[1, *dil], pads=[0, pads[0], 0, pads[1]])
    if "kernel_shape" in attrs:
        attrs["kernel_shape"] = [1, *_ints(attrs["kernel_shape"])]  # type: ignore[misc]
    x2 = _reshape(cx, x, (x.shape[0], x.shape[1], 1, x.shape[2]))
    w2 = _reshape(cx, w, (w.shape[0], w.shape[1], 1, w.shape[2]))
    cx2 = copy.copy(cx)
    cx2.attrs = attrs
    (y,) = _convert_conv(cx2, [x2, w2, bias])
    return [_reshape(cx, y, (y.shape[0], y.shape[1], y.shape[3]))]


# --------------------------------------------------------- normalisation and reductions


@_register("Softmax")
def _convert_softmax(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    _float_in(cx, x)
    rank = len(x.shape)
    ax = _axis(cx, cx.attr("axis", -1 if cx.opset >= 13 else 1), rank)
    if cx.opset >= 13 or ax == rank - 1:
        op = _build(nt.SoftmaxOp, [cx.ssa(x)], [tensor_type(x.shape, x.dtype)], axis=_i64(ax))
        return [cx.emit(op)]
    # opset < 13: softmax over the flattened dims [axis:]
    flat = (math.prod(x.shape[:ax]), math.prod(x.shape[ax:]))
    x2 = _reshape(cx, x, flat)
    r = cx.emit(_build(nt.SoftmaxOp, [cx.ssa(x2)], [tensor_type(flat, np.float32)], axis=_i64(1)))
    return [_reshape(cx, r, x.shape)]


@_register("LayerNormalization")
def _convert_layer_norm(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x, scale = cx.input(ins, 0), cx.input(ins, 1)
    bias = ins[2] if len(ins) > 2 else None
    _float_in(cx, x)
    if len([o for o in cx.node.output if o]) > 1:
        raise cx.fail("the Mean/InvStdDev outputs of LayerNormalization are not supported")
    ax = _axis(cx, cx.attr("axis", -1), len(x.shape))
    op = _build(
        nt.LayerNormOp,
        [cx.ssa(x), cx.ssa(scale), None if bias is None else cx.ssa(bias)],
        [tensor_type(x.shape, np.float32)],
        axis=_i64(ax),
        epsilon=_f32(cx.attr("epsilon", 1e-5)),
    )
    return [cx.emit(op)]


@_register("InstanceNormalization")
def _convert_instance_norm(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    # per (n, c): a layer norm over the flattened spatial dims, then the per-channel affine
    x, scale, bias = cx.input(ins, 0), cx.input(ins, 1), cx.input(ins, 2)
    _float_in(cx, x)
    if len(x.shape) < 3:
        raise cx.fail(f"expects an input of rank >= 3 (N, C, D...), got rank {len(x.shape)}")
    n, c, rest = x.shape[0], x.shape[1], x.shape[2:]
    flat = (n, c, math.prod(rest))
    ones = Const(np.ones(flat[2:], np.float32), cx.node.output[0] + "/ones")
    op = _build(
        nt.LayerNormOp,
        [cx.ssa(_reshape(cx, x, flat)), cx.ssa(ones), None],
        [tensor_type(flat, np.float32)],
        axis=_i64(2),
        epsilon=_f32(cx.attr("epsilon", 1e-5)),
    )
    y = _reshape(cx, cx.emit(op), x.shape)
    channel = (c,) + (1,) * len(rest)
    y = _binary(cx, nt.MulOp, y, _reshape(cx, scale, channel))
    return [_binary(cx, nt.AddOp, y, _reshape(cx, bias, channel))]


_REDUCE: dict[str, type[nt.ReduceOp]] = {
    "ReduceMean": nt.ReduceMeanOp,
    "ReduceSum": nt.ReduceSumOp,
    "ReduceMax": nt.ReduceMaxOp,
}


@_register(*_REDUCE)
def _convert_reduce(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    if x.dtype == np.bool_:
        raise cx.fail("cannot reduce a bool tensor")
    rank = len(x.shape)
    axes = _ints(cx.const(ins, 1, "axes"))
    if axes is None:
        axes = _ints(cx.attr("axes"))
    keep = int(cx.attr("keepdims", 1))
    if not axes:
        if int(cx.attr("noop_with_empty_axes", 0)):
            return [x]
        axes = list(range(rank))
    norm = sorted({_axis(cx, a, rank, "reduce axis") for a in axes})
    shape = tuple((1 if i in norm else d) for i, d in enumerate(x.shape) if keep or i not in norm)
    op = _build(
        _REDUCE[cx.node.op_type],
        [cx.ssa(x)],
        [tensor_type(shape, x.dtype)],
        axes=nt.i64_array(norm),
        keepdims=_i64(keep),
    )
    return [cx.emit(op)]


# ----------------------------------------------------------------------- data movement


@_register("Transpose")
def _convert_transpose(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    rank = len(x.shape)
    perm = _ints(cx.attr("perm")) or list(range(rank))[::-1]
    perm = [_axis(cx, p, rank, "perm entry") for p in perm]
    if sorted(perm) != list(range(rank)):
        raise cx.fail(f"perm {perm} is not a permutation of {rank} dims")
    if perm == list(range(rank)):
        return [x]
    shape = tuple(x.shape[p] for p in perm)
    op = _build(nt.TransposeOp, [cx.ssa(x)], [tensor_type(shape, x.dtype)], perm=nt.i64_array(perm))
    return [cx.emit(op)]


@_register("Reshape")
def _convert_reshape(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    target = _ints(cx.const(ins, 1, "shape"))
    if target is None:
        raise cx.fail("Reshape needs a shape input")
    allowzero = int(cx.attr("allowzero", 0))
    shape = [
        x.shape[i] if (d == 0 and not allowzero and i < len(x.shape)) else d
        for i, d in enumerate(target)
    ]
    n = math.prod(x.shape)
    if shape.count(-1) > 1:
        raise cx.fail(f"shape {target} has more than one -1")
    if -1 in shape:
        known = math.prod(d for d in shape if d != -1)
        if known == 0 or n % known:
            raise cx.fail(f"cannot reshape {x.shape} to {target}")
        shape[shape.index(-1)] = n // known
    if math.prod(shape) != n or any(d < 0 for d in shape):
        raise cx.fail(f"cannot reshape {x.shape} to {target}")
    return [_reshape(cx, x, shape)]


@_register("Flatten")
def _convert_flatten(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    rank = len(x.shape)
    ax = int(cx.attr("axis", 1))
    if ax < 0:
        ax += rank
    if not 0 <= ax <= rank:
        raise cx.fail(f"axis {cx.attr('axis')} is out of range for rank {rank}")
    return [_reshape(cx, x, (math.prod(x.shape[:ax]), math.prod(x.shape[ax:])))]


def _axes_input_or_attr(cx: NodeContext, ins: list[Value | None]) -> list[int] | None:
    axes = _ints(cx.const(ins, 1, "axes"))
    if axes is None:
        axes = _ints(cx.attr("axes"))
    return axes


@_register("Unsqueeze")
def _convert_unsqueeze(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    axes = _axes_input_or_attr(cx, ins)
    if not axes:
        raise cx.fail("Unsqueeze needs axes")
    out_rank = len(x.shape) + len(axes)
    norm = sorted({_axis(cx, a, out_rank) for a in axes})
    if len(norm) != len(axes):
        raise cx.fail(f"repeated axes {axes}")
    dims = iter(x.shape)
    shape = [1 if i in norm else next(dims) for i in range(out_rank)]
    return [_reshape(cx, x, shape)]


@_register("Squeeze")
def _convert_squeeze(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    rank = len(x.shape)
    axes = _axes_input_or_attr(cx, ins)
    if axes is None:
        drop = {i for i, d in enumerate(x.shape) if d == 1}
    else:
        drop = {_axis(cx, a, rank) for a in axes}
        bad = [i for i in drop if x.shape[i] != 1]
        if bad:
            raise cx.fail(f"cannot squeeze dim {bad[0]} of size {x.shape[bad[0]]}")
    return [_reshape(cx, x, [d for i, d in enumerate(x.shape) if i not in drop])]


@_register("Expand")
def _convert_expand(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    target = _ints(cx.const(ins, 1, "shape"))
    assert target is not None
    try:
        shape = nt.broadcast_shapes(x.shape, target)
    except ValueError as e:
        raise cx.fail(str(e)) from None
    if shape == x.shape:
        return [x]
    op = _build(nt.ExpandOp, [cx.ssa(x)], [tensor_type(shape, x.dtype)])
    return [cx.emit(op)]


def _index_value(cx: NodeContext, idx: Value, limit: int | None) -> Value:
    if idx.dtype not in (np.int64, np.int32):
        raise cx.fail(f"indices must be int64 or int32, got {idx.dtype}")
    if isinstance(idx, Const) and limit is not None:
        a = idx.array.astype(np.int64)
        if a.size and (a.min() < -limit or a.max() >= limit):
            raise cx.fail(f"constant index out of range [-{limit}, {limit})")
        return Const(np.where(a < 0, a + limit, a), idx.name)
    return idx


@_register("Gather")
def _convert_gather(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    data, idx = cx.input(ins, 0), cx.input(ins, 1)
    ax = _axis(cx, cx.attr("axis", 0), len(data.shape))
    idx = _index_value(cx, idx, data.shape[ax])
    shape = (*data.shape[:ax], *idx.shape, *data.shape[ax + 1 :])
    op = _build(
        nt.GatherOp, [cx.ssa(data), cx.ssa(idx)], [tensor_type(shape, data.dtype)], axis=_i64(ax)
    )
    return [cx.emit(op)]


@_register("GatherND")
def _convert_gather_nd(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    data, idx = cx.input(ins, 0), cx.input(ins, 1)
    idx = _index_value(cx, idx, None)
    b = int(cx.attr("batch_dims", 0))
    if len(idx.shape) < 1:
        raise cx.fail("indices must have rank >= 1")
    k = idx.shape[-1]
    if b + k > len(data.shape):
        raise cx.fail(f"index depth {k} + batch_dims {b} exceeds data rank {len(data.shape)}")
    shape = (*idx.shape[:-1], *data.shape[b + k :])
    op = _build(
        nt.GatherNDOp,
        [cx.ssa(data), cx.ssa(idx)],
        [tensor_type(shape, data.dtype)],
        batch_dims=_i64(b),
    )
    return [cx.emit(op)]


@_register("Split")
def _convert_split(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    ax = _axis(cx, cx.attr("axis", 0), len(x.shape))
    dim = x.shape[ax]
    n_out = len(cx.node.output)
    sizes = _ints(cx.const(ins, 1, "split"))
    if sizes is None:
        sizes = _ints(cx.attr("split"))
    if sizes is None:
        n = int(cx.attr("num_outputs", n_out))
        chunk = -(-dim // n)
        sizes = [chunk] * (n - 1) + [dim - chunk * (n - 1)]
        if sizes[-1] < 0:
            raise cx.fail(f"cannot split {dim} into {n} parts")
    if sum(sizes) != dim or len(sizes) != n_out or any(s < 0 for s in sizes):
        raise cx.fail(f"split sizes {sizes} do not divide dim {dim} into {n_out} outputs")
    types = [
        tensor_type(tuple(s if i == ax else d for i, d in enumerate(x.shape)), x.dtype)
        for s in sizes
    ]
    op = _build(nt.SplitOp, [cx.ssa(x)], [types], axis=_i64(ax))
    return cx.emit_multi(op)


def slice_params(
    shape: Sequence[int],
    starts: Sequence[int],
    ends: Sequence[int],
    axes: Sequence[int] | None,
    steps: Sequence[int] | None,
) -> tuple[list[int], list[int], list[int]]:
    """ONNX Slice normalisation: per-dim start, step and size (clamping as the spec says)."""
    rank = len(shape)
    axes = list(axes) if axes is not None else list(range(len(starts)))
    steps = list(steps) if steps is not None else [1] * len(starts)
    if not (len(starts) == len(ends) == len(axes) == len(steps)):
        raise ValueError("starts, ends, axes and steps must have one value each per sliced axis")
    out_start = [0] * rank
    out_step = [1] * rank
    out_size = list(shape)
    seen: set[int] = set()
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = int(a) + rank if int(a) < 0 else int(a)
        if not 0 <= a < rank or a in seen:
            raise ValueError(f"slice axis {a} is out of range or repeated")
        seen.add(a)
        s, e, st = int(s), int(e), int(st)
        if st == 0:
            raise ValueError("slice step is 0")
        dim = int(shape[a])
        if s < 0:
            s += dim
        if e < 0:
            e += dim
        if st > 0:
            s = min(max(s, 0), dim)
            e = min(max(e, 0), dim)
        else:
            s = min(max(s, 0), dim - 1)
            e = min(max(e, -1), dim - 1)
        size = max(0, -(-(e - s) // st))
        out_start[a] = s if size > 0 else 0
        out_step[a] = st
        out_size[a] = size
    return out_start, out_step, out_size


@_register("Slice")
def _convert_slice(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    if cx.opset < 10:
        starts, ends = _ints(cx.attr("starts")), _ints(cx.attr("ends"))
        axes, steps = _ints(cx.attr("axes")), None
    else:
        starts, ends = _ints(cx.const(ins, 1, "starts")), _ints(cx.const(ins, 2, "ends"))
        axes, steps = _ints(cx.const(ins, 3, "axes")), _ints(cx.const(ins, 4, "steps"))
    if starts is None or ends is None:
        raise cx.fail("Slice needs starts and ends")
    try:
        start, step, size = slice_params(x.shape, starts, ends, axes, steps)
    except ValueError as e:
        raise cx.fail(str(e)) from None
    if tuple(size) == x.shape and all(s == 0 for s in start) and all(s == 1 for s in step):
        return [x]
    if 0 in size:
        raise cx.fail(f"slice result {tuple(size)} is empty; empty tensors are not supported")
    op = _build(
        nt.SliceOp,
        [cx.ssa(x)],
        [tensor_type(size, x.dtype)],
        starts=nt.i64_array(start),
        steps=nt.i64_array(step),
    )
    return [cx.emit(op)]


@_register("Concat")
def _convert_concat(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    vals = [v for v in ins if v is not None]
    if not vals:
        raise cx.fail("needs at least one input")
    rank = len(vals[0].shape)
    ax = _axis(cx, cx.attr("axis"), rank)
    dtype = vals[0].dtype
    for v in vals:
        if v.dtype != dtype:
            raise cx.fail(f"input element types differ: {dtype} and {v.dtype}")
        if len(v.shape) != rank or any(
            v.shape[i] != vals[0].shape[i] for i in range(rank) if i != ax
        ):
            raise cx.fail(f"input shapes {[w.shape for w in vals]} differ off axis {ax}")
    vals = [v for v in vals if v.shape[ax] > 0] or vals[:1]
    if len(vals) == 1:
        return [vals[0]]
    shape = list(vals[0].shape)
    shape[ax] = sum(v.shape[ax] for v in vals)
    op = _build(nt.ConcatOp, [[cx.ssa(v) for v in vals]], [tensor_type(shape, dtype)], axis=_i64(ax))
    return [cx.emit(op)]


# ------------------------------------------- shape queries: constants even on run-time tensors


@_register("Shape")
def _convert_shape(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    rank = len(x.shape)
    start, end = int(cx.attr("start", 0)), cx.attr("end")
    end = rank if end is None else int(end)
    start = min(max(start + rank if start < 0 else start, 0), rank)
    end = min(max(end + rank if end < 0 else end, 0), rank)
    return [Const(np.array(x.shape[start:end], dtype=np.int64), cx.node.output[0])]


@_register("Size")
def _convert_size(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    return [Const(np.array(math.prod(x.shape), dtype=np.int64), cx.node.output[0])]


# ------------------------------------------------- decompositions into existing nn_tensor ops


@_register("CumSum")
def _convert_cumsum(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    # y[..., i, ...] = sum_j x[..., j, ...] * tri[i, j]: a broadcast multiply by a constant 0/1
    # triangle and a sum over j (O(n^2) work, fine for sequence lengths). Reductions run in
    # float32, so an integer CumSum (position ids from a mask) is exact while its running sums
    # stay below 2^24 in magnitude.
    given = cx.input(ins, 0)
    if given.dtype == np.bool_:
        raise cx.fail("cannot sum a bool tensor")
    x = _cast(cx, given, np.dtype(np.float32))
    axis = cx.const(ins, 1, "axis")
    if axis is None or axis.size != 1:
        raise cx.fail("CumSum needs a single constant axis")
    rank = len(x.shape)
    ax = _axis(cx, int(axis.reshape(-1)[0]), rank)
    n = x.shape[ax]
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    reverse, exclusive = int(cx.attr("reverse", 0)), int(cx.attr("exclusive", 0))
    keep = (j >= i if reverse else j <= i) & ((j != i) if exclusive else True)
    tri = keep.astype(x.dtype).reshape((n, n) + (1,) * (rank - ax - 1))
    spread = _reshape(cx, x, (*x.shape[:ax], 1, *x.shape[ax:]))
    prod = _binary(cx, nt.MulOp, spread, Const(tri, cx.node.output[0] + "/triangle"))
    op = _build(
        nt.ReduceSumOp,
        [cx.ssa(prod)],
        [tensor_type(x.shape, x.dtype)],
        axes=nt.i64_array([ax + 1]),
        keepdims=_i64(0),
    )
    return [_cast(cx, cx.emit(op), given.dtype)]


@_register("GatherElements")
def _convert_gather_elements(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    # out[p] = data[p with p[axis] := idx[p]]: GatherND on the index tuples (p..., idx[p]),
    # built by concatenating constant coordinate grids with the run-time indices
    data, idx = cx.input(ins, 0), cx.input(ins, 1)
    rank = len(data.shape)
    ax = _axis(cx, cx.attr("axis", 0), rank)
    idx = _index_value(cx, idx, data.shape[ax])
    if len(idx.shape) != rank or any(
        i > d and k != ax for k, (i, d) in enumerate(zip(idx.shape, data.shape))
    ):
        raise cx.fail(f"indices of shape {idx.shape} do not fit data of shape {data.shape}")
    grids = np.indices(idx.shape, dtype=idx.dtype)
    parts: list[Value] = []
    for k in range(rank):
        if k == ax:
            parts.append(_reshape(cx, idx, (*idx.shape, 1)))
        else:
            parts.append(Const(grids[k][..., None], f"{cx.node.output[0]}/grid{k}"))
    index_shape = (*idx.shape, rank)
    tuples = cx.emit(
        _build(
            nt.ConcatOp, [[cx.ssa(v) for v in parts]], [tensor_type(index_shape, idx.dtype)],
            axis=_i64(rank),
        )  # fmt: skip
    )
    op = _build(
        nt.GatherNDOp,
        [cx.ssa(data), cx.ssa(tuples)],
        [tensor_type(idx.shape, data.dtype)],
        batch_dims=_i64(0),
    )
    return [cx.emit(op)]


@_register("Pad")
def _convert_pad(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    # constant mode: concatenate constant blocks before and after each padded axis; negative
    # pads crop (a slice)
    x = cx.input(ins, 0)
    rank = len(x.shape)
    mode = cx.attr("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    if mode != "constant":
        raise cx.fail(f"Pad mode {mode!r} is not supported (only 'constant')")
    if cx.opset < 11:
        pads, value = _ints(cx.attr("pads")), float(cx.attr("value", 0.0))
        axes = None
    else:
        pads = _ints(cx.const(ins, 1, "pads"))
        fill = cx.const(ins, 2, "constant_value")
        value = 0 if fill is None or fill.size == 0 else fill.reshape(-1)[0].item()
        axes = _ints(cx.const(ins, 3, "axes"))
    if pads is None:
        raise cx.fail("Pad needs pads")
    axes = [_axis(cx, a, rank) for a in (axes if axes is not None else range(rank))]
    if len(pads) != 2 * len(axes):
        raise cx.fail(f"{len(pads)} pads for {len(axes)} axes")
    before, after = [0] * rank, [0] * rank
    for k, a in enumerate(axes):
        before[a], after[a] = pads[k], pads[k + len(axes)]
    r: Value = x
    if any(p < 0 for p in before + after):
        shape = r.shape
        starts = [max(0, -b) for b in before]
        size = [d - s - max(0, -e) for d, s, e in zip(shape, starts, after)]
        if any(s <= 0 for s in size):
            raise cx.fail(f"pads {pads} crop all of shape {shape}")
        r = cx.emit(
            _build(
                nt.SliceOp, [cx.ssa(r)], [tensor_type(size, r.dtype)],
                starts=nt.i64_array(starts), steps=nt.i64_array([1] * rank),
            )  # fmt: skip
        )
    for a in range(rank):
        lo, hi = max(0, before[a]), max(0, after[a])
        if lo == 0 and hi == 0:
            continue
        parts: list[Value] = []
        for n, where in ((lo, "before"), (hi, "after")):
            block = tuple(n if i == a else d for i, d in enumerate(r.shape))
            if n > 0:
                parts.append(Const(np.full(block, value, r.dtype), f"{cx.node.output[0]}/{where}{a}"))
        parts.insert(1 if lo > 0 else 0, r)
        shape = tuple(d + lo + hi if i == a else d for i, d in enumerate(r.shape))
        r = cx.emit(
            _build(
                nt.ConcatOp, [[cx.ssa(v) for v in parts]], [tensor_type(shape, r.dtype)],
                axis=_i64(a),
            )  # fmt: skip
        )
    return [r]


@_register("BatchNormalization")
def _convert_batch_norm(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    # inference form: y = x * a + b per channel, a = scale / sqrt(var + eps), b = bias - mean * a
    x = cx.input(ins, 0)
    _float_in(cx, x)
    if int(cx.attr("training_mode", 0)) or len([o for o in cx.node.output if o]) > 1:
        raise cx.fail("BatchNormalization in training mode (running statistics outputs) is not supported")
    stats = [cx.const(ins, i, what) for i, what in ((1, "scale"), (2, "B"), (3, "mean"), (4, "var"))]
    if any(s is None for s in stats) or len(x.shape) < 2:
        raise cx.fail("BatchNormalization needs an (N, C, ...) input and all four statistics")
    scale, bias, mean, var = (np.asarray(s, np.float64).reshape(-1) for s in stats)  # type: ignore[arg-type]
    a = scale / np.sqrt(var + float(cx.attr("epsilon", 1e-5)))
    b = bias - mean * a
    channel = (x.shape[1],) + (1,) * (len(x.shape) - 2)
    name = cx.node.output[0]
    y = _binary(cx, nt.MulOp, x, Const(a.astype(np.float32).reshape(channel), name + "/scale"))
    return [_binary(cx, nt.AddOp, y, Const(b.astype(np.float32).reshape(channel), name + "/shift"))]


@_register("MaxPool")
def _convert_max_pool(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    # the max over the kernel window's taps: one strided slice of the (-inf padded) input each
    x = cx.input(ins, 0)
    _float_in(cx, x)
    if len(x.shape) != 4:
        raise cx.fail(f"only 2-D MaxPool (NCHW) is supported, got input rank {len(x.shape)}")
    if len([o for o in cx.node.output if o]) > 1:
        raise cx.fail("the Indices output of MaxPool is not supported")
    kernel = _ints(cx.attr("kernel_shape")) or []
    strides = _ints(cx.attr("strides")) or [1, 1]
    dil = _ints(cx.attr("dilations")) or [1, 1]
    pads = _ints(cx.attr("pads")) or [0, 0, 0, 0]
    auto_pad = cx.attr("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    if auto_pad not in ("NOTSET", "", "VALID") or int(cx.attr("ceil_mode", 0)):
        raise cx.fail(f"MaxPool with auto_pad={auto_pad!r} or ceil_mode=1 is not supported")
    if len(kernel) != 2 or len(strides) != 2 or len(dil) != 2 or len(pads) != 4:
        raise cx.fail("MaxPool needs 2 kernel dims, 2 strides, 2 dilations and 4 pads")
    if auto_pad == "VALID":
        pads = [0, 0, 0, 0]
    n, c, h, w = x.shape
    out = [
        (size + pads[i] + pads[i + 2] - dil[i] * (kernel[i] - 1) - 1) // strides[i] + 1
        for i, size in enumerate((h, w))
    ]
    if min(out) <= 0:
        raise cx.fail(f"MaxPool kernel {kernel} does not fit the input {x.shape}")
    padded = x
    if any(pads):
        # pad with the lowest finite float (printed constants cannot be -inf): the same max
        # unless a whole window is padding or -inf
        lowest = float(np.finfo(np.float32).min)
        spec_list = [0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]]
        pad_cx = copy.copy(cx)
        pad_cx.attrs = {"mode": "constant", "pads": spec_list, "value": lowest}
        fill = Const(np.array(lowest, np.float32), cx.node.output[0] + "/fill")
        spec = Const(np.array(spec_list, np.int64), cx.node.output[0] + "/pads")
        (padded,) = _convert_pad(pad_cx, [x, spec, fill])
    r: Value | None = None
    for ky in range(kernel[0]):
        for kx in range(kernel[1]):
            tap = cx.emit(
                _build(
                    nt.SliceOp, [cx.ssa(padded)], [tensor_type((n, c, *out), np.float32)],
                    starts=nt.i64_array([0, 0, ky * dil[0], kx * dil[1]]),
                    steps=nt.i64_array([1, 1, *strides]),
                )  # fmt: skip
            )
            r = tap if r is None else _binary(cx, nt.MaxOp, r, tap)
    assert r is not None
    return [r]


def _resize_matrix(
    cx: NodeContext, size: int, out: int, scale: float | None, opset: int
) -> np.ndarray:
    """The (out, size) matrix of a Resize along one axis: the node itself (its mode and
    coordinate attributes) run by onnx's reference on the basis vectors of that axis."""
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    attrs = {a.name: helper.get_attribute_value(a) for a in cx.node.attribute}
    inits = [
        numpy_helper.from_array(np.eye(size, dtype=np.float32), "x"),
        numpy_helper.from_array(np.zeros(0, np.float32), "roi"),
    ]
    if scale is not None:
        inits.append(numpy_helper.from_array(np.array([1.0, scale], np.float32), "scales"))
        ins = ["x", "roi", "scales"]
    else:
        inits.append(numpy_helper.from_array(np.array([], np.float32), "scales"))
        inits.append(numpy_helper.from_array(np.array([size, out], np.int64), "sizes"))
        ins = ["x", "roi", "scales", "sizes"]
    node = helper.make_node("Resize", ins, ["y"], **attrs)
    graph = helper.make_graph([node], "resize", [], [helper.make_empty_tensor_value_info("y")], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    (basis,) = ReferenceEvaluator(model).run(None, {})
    if basis.shape != (size, out):
        raise cx.fail(f"cannot resize an axis of {size} to {out}")
    return np.ascontiguousarray(basis.T)


@_register("Resize")
def _convert_resize(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    # separable: one axis at a time, a constant matrix applied along it (nearest: a gather of
    # constant indices; linear and cubic: a matmul with the interpolation weights)
    x = cx.input(ins, 0)
    _float_in(cx, x)
    rank = len(x.shape)
    mode = cx.attr("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    coord = cx.attr("coordinate_transformation_mode", b"half_pixel")
    coord = coord.decode() if isinstance(coord, bytes) else str(coord)
    if cx.opset < 11:
        raise cx.fail("Resize before opset 11 is not supported")
    if cx.attr("axes") is not None or int(cx.attr("antialias", 0)) or coord == "tf_crop_and_resize":
        raise cx.fail(
            f"Resize with axes, antialias or coordinate_transformation_mode={coord!r} is not supported"
        )
    policy = cx.attr("keep_aspect_ratio_policy", b"stretch")
    if (policy.decode() if isinstance(policy, bytes) else str(policy)) != "stretch":
        raise cx.fail("Resize with keep_aspect_ratio_policy other than 'stretch' is not supported")
    scales_a = cx.const(ins, 2, "scales")
    sizes_a = cx.const(ins, 3, "sizes")
    if sizes_a is not None and sizes_a.size > 0:
        sizes, scales = _ints(sizes_a), None
    elif scales_a is not None and scales_a.size > 0:
        scales = [float(v) for v in scales_a.reshape(-1)]
        sizes = [int(math.floor(d * s)) for d, s in zip(x.shape, scales)]
    else:
        raise cx.fail("Resize needs scales or sizes")
    assert sizes is not None
    if len(sizes) != rank or (scales is not None and len(scales) != rank) or min(sizes) <= 0:
        raise cx.fail(f"Resize of shape {x.shape} to {sizes} is not supported")
    r: Value = x
    for a in range(rank):
        scale = None if scales is None else scales[a]
        if sizes[a] == x.shape[a] and scale in (None, 1.0):
            continue
        m = _resize_matrix(cx, x.shape[a], sizes[a], scale, cx.opset)
        name = f"{cx.node.output[0]}/axis{a}"
        picks = m.argmax(axis=1)
        if np.array_equal(m, np.eye(m.shape[1], dtype=m.dtype)[picks]):  # a selection
            shape = (*r.shape[:a], sizes[a], *r.shape[a + 1 :])
            op = _build(
                nt.GatherOp, [cx.ssa(r), cx.ssa(Const(picks.astype(np.int64), name))],
                [tensor_type(shape, np.float32)], axis=_i64(a),
            )  # fmt: skip
            r = cx.emit(op)
            continue
        perm = [i for i in range(rank) if i != a] + [a]
        moved = _convert_transpose_perm(cx, r, perm)
        mixed = _binary_matmul(cx, moved, Const(np.ascontiguousarray(m.T), name))
        r = _convert_transpose_perm(cx, mixed, [perm.index(i) for i in range(rank)])
    return [r]


def _convert_transpose_perm(cx: NodeContext, v: Value, perm: list[int]) -> Value:
    if perm == sorted(perm):
        return v
    shape = tuple(v.shape[p] for p in perm)
    return cx.emit(_build(nt.TransposeOp, [cx.ssa(v)], [tensor_type(shape, v.dtype)], perm=nt.i64_array(perm)))


def _binary_matmul(cx: NodeContext, a: Value, b: Value) -> Value:
    shape = (*a.shape[:-1], b.shape[-1])
    return cx.emit(nt.MatmulOp(cx.ssa(a), cx.ssa(b), tensor_type(shape, np.float32)))


def supported_ops() -> list[str]:
    return sorted(CONVERTERS)

