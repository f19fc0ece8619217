"""What the ONNX op converters share: the table (`CONVERTERS`, filled by `register`) and
small helpers (attributes, axes, reshapes, casts, broadcasting binary ops, index inputs).

A converter takes the node's context and its input values (`Const` or `Dyn`, None for an
omitted optional input) and returns one value per node output.
"""

from __future__ import annotations

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


def register(*op_types: str) -> Callable[[Converter], Converter]:
    def deco(fn: Converter) -> Converter:
        for t in op_types:
            CONVERTERS[t] = fn
        return fn

    return deco


def build_op(
    cls: type[Operation],
    operands: Sequence[Any],
    result_types: Sequence[Attribute | Sequence[Attribute]],
    **props: Attribute,
) -> Operation:
    return cls(operands=list(operands), result_types=list(result_types), properties=props)


def i64_attr(v: int) -> IntegerAttr[Any]:
    return IntegerAttr(int(v), 64)


def f32_attr(v: float) -> FloatAttr[Any]:
    return FloatAttr(float(v), 32)


def norm_axis(cx: NodeContext, axis: int, rank: int, what: str = "axis") -> int:
    a = int(axis)
    if a < 0:
        a += rank
    if not 0 <= a < rank:
        raise cx.fail(f"{what} {axis} is out of range for rank {rank}")
    return a


def int_list(a: np.ndarray | Sequence[int] | None) -> list[int] | None:
    if a is None:
        return None
    return [int(x) for x in np.asarray(a).reshape(-1)]


def check_float(cx: NodeContext, v: Value) -> None:
    if v.dtype != np.float32:
        raise cx.fail(f"expects a float32 input, got {v.dtype}")


def reshape_value(cx: NodeContext, v: Value, shape: Sequence[int]) -> Value:
    shape = tuple(int(d) for d in shape)
    if v.shape == shape:
        return v
    if isinstance(v, Const):
        return Const(v.array.reshape(shape), v.name)
    return cx.emit(nt.ReshapeOp(v.ssa, tensor_type(shape, v.dtype)))


def cast_value(cx: NodeContext, v: Value, dtype: np.dtype[Any]) -> Value:
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


def emit_binary(cx: NodeContext, cls: type[nt.BinaryElementwiseOp], a: Value, b: Value) -> Value:
    if cls is nt.PowOp and a.dtype != b.dtype:
        b = cast_value(cx, b, a.dtype)
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


def index_value(cx: NodeContext, idx: Value, limit: int | None) -> Value:
    if idx.dtype not in (np.int64, np.int32):
        raise cx.fail(f"indices must be int64 or int32, got {idx.dtype}")
    if isinstance(idx, Const) and limit is not None:
        a = idx.array.astype(np.int64)
        if a.size and (a.min() < -limit or a.max() >= limit):
            raise cx.fail(f"constant index out of range [-{limit}, {limit})")
        return Const(np.where(a < 0, a + limit, a), idx.name)
    return idx
