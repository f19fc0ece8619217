"""Normalisations and reductions: Softmax, LayerNormalization, InstanceNormalization and the
Reduce ops.
"""

from __future__ import annotations

import math

import numpy as np

from nnjit.dialects import nn_tensor as nt
from nnjit.frontend.onnx_ops.base import (
    build_op,
    check_float,
    emit_binary,
    f32_attr,
    i64_attr,
    int_list,
    norm_axis,
    register,
    reshape_value,
)
from nnjit.frontend.values import Const, NodeContext, Value, tensor_type


@register("Softmax")
def _convert_softmax(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    check_float(cx, x)
    rank = len(x.shape)
    ax = norm_axis(cx, cx.attr("axis", -1 if cx.opset >= 13 else 1), rank)
    if cx.opset >= 13 or ax == rank - 1:
        op = build_op(nt.SoftmaxOp, [cx.ssa(x)], [tensor_type(x.shape, x.dtype)], axis=i64_attr(ax))
        return [cx.emit(op)]
    # opset < 13: softmax over the flattened dims [axis:]
    flat = (math.prod(x.shape[:ax]), math.prod(x.shape[ax:]))
    x2 = reshape_value(cx, x, flat)
    r = cx.emit(build_op(nt.SoftmaxOp, [cx.ssa(x2)], [tensor_type(flat, np.float32)], axis=i64_attr(1)))
    return [reshape_value(cx, r, x.shape)]


@register("LayerNormalization")
def _convert_layer_norm(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x, scale = cx.input(ins, 0), cx.input(ins, 1)
    bias = ins[2] if len(ins) > 2 else None
    check_float(cx, x)
    if len([o for o in cx.node.output if o]) > 1:
        raise cx.fail("the Mean/InvStdDev outputs of LayerNormalization are not supported")
    ax = norm_axis(cx, cx.attr("axis", -1), len(x.shape))
    op = build_op(
        nt.LayerNormOp,
        [cx.ssa(x), cx.ssa(scale), None if bias is None else cx.ssa(bias)],
        [tensor_type(x.shape, np.float32)],
        axis=i64_attr(ax),
        epsilon=f32_attr(cx.attr("epsilon", 1e-5)),
    )
    return [cx.emit(op)]


@register("InstanceNormalization")
def _convert_instance_norm(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    # per (n, c): a layer norm over the flattened spatial dims, then the per-channel affine
    x, scale, bias = cx.input(ins, 0), cx.input(ins, 1), cx.input(ins, 2)
    check_float(cx, x)
    if len(x.shape) < 3:
        raise cx.fail(f"expects an input of rank >= 3 (N, C, D...), got rank {len(x.shape)}")
    n, c, rest = x.shape[0], x.shape[1], x.shape[2:]
    flat = (n, c, math.prod(rest))
    ones = Const(np.ones(flat[2:], np.float32), cx.node.output[0] + "/ones")
    op = build_op(
        nt.LayerNormOp,
        [cx.ssa(reshape_value(cx, x, flat)), cx.ssa(ones), None],
        [tensor_type(flat, np.float32)],
        axis=i64_attr(2),
        epsilon=f32_attr(cx.attr("epsilon", 1e-5)),
    )
    y = reshape_value(cx, cx.emit(op), x.shape)
    channel = (c,) + (1,) * len(rest)
    y = emit_binary(cx, nt.MulOp, y, reshape_value(cx, scale, channel))
    return [emit_binary(cx, nt.AddOp, y, reshape_value(cx, bias, channel))]


_REDUCE: dict[str, type[nt.ReduceOp]] = {
    "ReduceMean": nt.ReduceMeanOp,
    "ReduceSum": nt.ReduceSumOp,
    "ReduceMax": nt.ReduceMaxOp,
}


@register(*_REDUCE)
def _convert_reduce(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    if x.dtype == np.bool_:
        raise cx.fail("cannot reduce a bool tensor")
    rank = len(x.shape)
    axes = int_list(cx.const(ins, 1, "axes"))
    if axes is None:
        axes = int_list(cx.attr("axes"))
    keep = int(cx.attr("keepdims", 1))
    if not axes:
        if int(cx.attr("noop_with_empty_axes", 0)):
            return [x]
        axes = list(range(rank))
    norm = sorted({norm_axis(cx, a, rank, "reduce axis") for a in axes})
    shape = tuple((1 if i in norm else d) for i, d in enumerate(x.shape) if keep or i not in norm)
    op = build_op(
        _REDUCE[cx.node.op_type],
        [cx.ssa(x)],
        [tensor_type(shape, x.dtype)],
        axes=nt.i64_array(norm),
        keepdims=i64_attr(keep),
    )
    return [cx.emit(op)]
