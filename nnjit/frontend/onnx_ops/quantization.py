"""Quantized ONNX forms as float32 nn_tensor ops, with onnxruntime's semantics:
DequantizeLinear, QuantizeLinear, DynamicQuantizeLinear, MatMulInteger, ConvInteger and the
com.microsoft MatMulNBits and GatherBlockQuantized.

* A run-time int8/uint8 tensor is an i32 tensor of the IR holding its values (QuantizeLinear
  rounds halves to even and saturates to the output type's range, then casts to i32).
* Dequantizing a constant (an int8 initializer, MatMulNBits' packed blocks) folds at import:
  the result is a float32 `Const` computed as onnxruntime does, `float(q - zero_point) * scale`,
  which also carries the integers it came from (`Const.compact`, a `Quantized`), so that the
  compiler can keep the weight compact in the bundle (nnjit/frontend/compact.py).
* MatMulInteger and ConvInteger run as float32 contractions of `q - zero_point`: exact while
  every partial sum stays below 2**24 in magnitude, otherwise within float32 rounding. Their
  int32 result stays a float32 tensor (quantize_dynamic's graphs cast it to float at once;
  that Cast is then nothing). MatMulInteger's matmul carries `nn_tensor.integer_operands`:
  on Wasm it runs in integers, exactly (nnjit/passes/nn_tensor_integer_matmul.py).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
from xdsl.dialects.builtin import UnitAttr

from nnjit.dialects import nn_tensor as nt
from nnjit.frontend.onnx_ops.base import (
    CONVERTERS,
    build_op,
    cast_value,
    check_float,
    emit_binary,
    i64_attr,
    norm_axis,
    register,
    reshape_value,
)
from nnjit.frontend.values import Const, NodeContext, Value, tensor_type

_RANGES = {np.dtype(np.int8): (-128, 127), np.dtype(np.uint8): (0, 255)}


@dataclass
class Quantized:
    """How a folded float32 weight was dequantized: `(q - zero) * scale`, with `scale` and
    `zero` constant over blocks of `block` elements along `axis` (numpy arrays that broadcast
    to q's shape; `zero` None for 0). `bits` is 8 or 4."""

    q: np.ndarray
    scale: np.ndarray
    zero: np.ndarray | None
    axis: int
    block: int
    bits: int


def dequantize_array(q: np.ndarray, scale: np.ndarray, zero: np.ndarray | None) -> np.ndarray:
    """float(q - zero) * scale in float32, as onnxruntime computes it."""
    d = q.astype(np.int32) - (0 if zero is None else zero.astype(np.int32))
    return (d.astype(np.float32) * scale.astype(np.float32)).astype(np.float32)


def _per_axis(cx: NodeContext, p: np.ndarray, shape: tuple[int, ...], axis: int, what: str) -> np.ndarray:
    """A scale or zero point as an array that broadcasts to `shape` along `axis`."""
    if p.size == 1:
        return p.reshape(())
    a = norm_axis(cx, axis, len(shape))
    if p.ndim != 1 or p.size != shape[a]:
        raise cx.fail(f"{what} has shape {list(p.shape)}; expected a scalar or [{shape[a]}] along axis {a}")
    return p.reshape([shape[a] if i == a else 1 for i in range(len(shape))])


def _param_value(cx: NodeContext, v: Value, shape: tuple[int, ...], axis: int, what: str) -> Value:
    """A run-time or constant scale / zero point shaped to broadcast against `shape`."""
    if isinstance(v, Const):
        return Const(_per_axis(cx, v.array, shape, axis, what), v.name)
    if len(v.shape) == 0 or int(np.prod(v.shape)) == 1:
        return reshape_value(cx, v, ())
    a = norm_axis(cx, axis, len(shape))
    return reshape_value(cx, v, [shape[a] if i == a else 1 for i in range(len(shape))])


def _check_block(cx: NodeContext) -> None:
    if int(cx.attr("block_size", 0)):
        raise cx.fail("blocked quantization (block_size > 0) is not supported",
                      hint="quantize per tensor or per axis")  # fmt: skip


def fold_dequantize(cx: NodeContext, ins: list[Value | None]) -> Const:
    """DequantizeLinear of constants: the float32 result, with the integers it came from."""
    _check_block(cx)
    x = cx.input(ins, 0)
    assert isinstance(x, Const)
    shape, axis = x.shape, int(cx.attr("axis", 1))
    q = x.array
    scale = _per_axis(cx, cx.const(ins, 1, "x_scale"), shape, axis, "x_scale").astype(np.float32)
    zp = cx.const(ins, 2, "x_zero_point")
    zero = None if zp is None else _per_axis(cx, zp, shape, axis, "x_zero_point")
    out = Const(dequantize_array(q, scale, zero), x.name)
    if q.dtype in _RANGES and q.ndim >= 1:
        a = norm_axis(cx, axis, len(shape)) if scale.ndim else q.ndim - 1
        # a scale per index of `a`: constant along every other axis; blocks of one element along
        # `a` itself would be wasteful, so the block axis is the last other axis
        along = q.ndim - 1 if a != q.ndim - 1 or q.ndim == 1 else q.ndim - 2
        out.compact = Quantized(q, scale, zero, along, shape[along], 8)
    return out


@register("DequantizeLinear")
def _convert_dequantize(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x = cx.input(ins, 0)
    if all(v is None or isinstance(v, Const) for v in ins):
        return [fold_dequantize(cx, ins)]
    _check_block(cx)
    shape, axis = x.shape, int(cx.attr("axis", 1))
    if x.dtype == np.float32:
        raise cx.fail("dequantizes a float tensor; expects int8, uint8 or int32")
    y = cast_value(cx, x, np.dtype(np.float32))
    zp = ins[2] if len(ins) > 2 else None
    if zp is not None:
        y = emit_binary(cx, nt.SubOp, y, cast_value(cx, _param_value(cx, zp, shape, axis, "x_zero_point"), np.dtype(np.float32)))
    scale = _param_value(cx, cx.input(ins, 1), shape, axis, "x_scale")
    check_float(cx, scale)
    return [emit_binary(cx, nt.MulOp, y, scale)]


def _quantize(cx: NodeContext, x: Value, scale: Value, zero: Value | None, qdtype: np.dtype) -> Value:
    """saturate(round_half_even(x / scale) + zero) as an i32 tensor (int8/uint8 values)."""
    lo, hi = _RANGES[qdtype]
    f32 = np.dtype(np.float32)
    r = cx.emit(nt.RoundOp(cx.ssa(emit_binary(cx, nt.DivOp, x, scale))))
    if zero is not None:
        r = emit_binary(cx, nt.AddOp, r, cast_value(cx, zero, f32))
    r = emit_binary(cx, nt.MaxOp, r, Const(np.array(lo, np.float32), "#qmin"))
    r = emit_binary(cx, nt.MinOp, r, Const(np.array(hi, np.float32), "#qmax"))
    return cast_value(cx, r, np.dtype(np.int32))


def _quantized_dtype(cx: NodeContext, zp: Value | None) -> np.dtype:
    if zp is not None:
        dt = np.dtype(zp.dtype)
    else:
        from onnx import helper

        to = int(cx.attr("output_dtype", 0))
        dt = np.dtype(np.uint8) if to == 0 else np.dtype(helper.tensor_dtype_to_np_dtype(to))
    if dt == np.int32 and isinstance(zp, Const):  # (a run-time zero point stored as i32)
        raise cx.fail("a constant int32 zero point gives no quantized type")
    if dt == np.int32:
        return np.dtype(np.uint8)
    if dt not in _RANGES:
        raise cx.fail(f"quantizes to {dt}; nnjit supports int8 and uint8")
    return dt


@register("QuantizeLinear")
def _convert_quantize(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    _check_block(cx)
    x = cx.input(ins, 0)
    check_float(cx, x)
    shape, axis = x.shape, int(cx.attr("axis", 1))
    zp = ins[2] if len(ins) > 2 else None
    qdtype = _quantized_dtype(cx, zp)
    scale = _param_value(cx, cx.input(ins, 1), shape, axis, "y_scale")
    zero = None if zp is None else _param_value(cx, zp, shape, axis, "y_zero_point")
    if isinstance(x, Const) and isinstance(scale, Const) and (zero is None or isinstance(zero, Const)):
        lo, hi = _RANGES[qdtype]
        z = 0 if zero is None else zero.array.astype(np.float32)
        q = np.clip(np.rint(x.array / scale.array.astype(np.float32)) + z, lo, hi)
        return [Const(q.astype(qdtype), x.name)]
    return [_quantize(cx, x, scale, zero, qdtype)]


@register("DynamicQuantizeLinear")
def _convert_dynamic_quantize(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    """uint8 quantization over the tensor's range (with 0), as onnxruntime's CPU kernel:
    scale = (max - min) / 255 (1 when max == min), zero = round(saturate(-min / scale)) (255
    when -min / scale is NaN)."""
    x = cx.input(ins, 0)
    check_float(cx, x)
    axes = nt.i64_array(list(range(len(x.shape))))

    def reduce_max(v: Value) -> Value:
        op = build_op(nt.ReduceMaxOp, [cx.ssa(v)], [tensor_type((), np.float32)],
                      axes=axes, keepdims=i64_attr(0))  # fmt: skip
        return cx.emit(op)

    zero_c = Const(np.array(0.0, np.float32), "#zero")
    mx = emit_binary(cx, nt.MaxOp, reduce_max(x), zero_c)
    mn = cx.emit(nt.NegOp(cx.ssa(reduce_max(cx.emit(nt.NegOp(cx.ssa(x)))))))
    mn = emit_binary(cx, nt.MinOp, mn, zero_c)
    rng = emit_binary(cx, nt.SubOp, mx, mn)
    scale = emit_binary(cx, nt.DivOp, rng, Const(np.array(255.0, np.float32), "#q255"))
    same = emit_binary(cx, nt.EqualOp, mx, mn)
    one = Const(np.array(1.0, np.float32), "#one")
    scale = cx.emit(nt.WhereOp(cx.ssa(same), cx.ssa(one), cx.ssa(scale), tensor_type((), np.float32)))
    zp = emit_binary(cx, nt.DivOp, cx.emit(nt.NegOp(cx.ssa(mn))), scale)
    # max(0, min(255, zp)) as onnxruntime's std::min / std::max: a NaN zero point (an infinite
    # min: inf / inf) saturates to 255
    q255 = Const(np.array(255.0, np.float32), "#q255")
    below = emit_binary(cx, nt.LessOp, zp, q255)
    zp = cx.emit(nt.WhereOp(cx.ssa(below), cx.ssa(zp), cx.ssa(q255), tensor_type((), np.float32)))
    zp = emit_binary(cx, nt.MaxOp, zp, zero_c)
    zp = cx.emit(nt.RoundOp(cx.ssa(zp)))
    y = _quantize(cx, x, scale, zp, np.dtype(np.uint8))
    return [y, scale, cast_value(cx, zp, np.dtype(np.int32))]


def _centered(cx: NodeContext, v: Value, zp: Value | None, shape_for_zp: tuple[int, ...], axis: int, what: str) -> Value:
    """float(v - zp); for a constant v, a folded Const that keeps its integers."""
    if v.dtype not in (*_RANGES, np.dtype(np.int32)):
        raise cx.fail(f"{what} has element type {v.dtype}; expects int8 or uint8")
    if zp is not None and int(np.prod(zp.shape)) > 1 and len(zp.shape) != 1:
        raise cx.fail(f"{what}'s zero point has shape {list(zp.shape)}; expects a scalar or a vector")
    if isinstance(v, Const) and (zp is None or isinstance(zp, Const)):
        zero = None if zp is None else _per_axis(cx, zp.array, shape_for_zp, axis, f"{what}'s zero point")
        one = np.ones((), np.float32)
        out = Const(dequantize_array(v.array, one, zero), v.name)
        if v.dtype in _RANGES and v.array.ndim >= 2:
            k = v.array.ndim - 2
            out.compact = Quantized(v.array, one, zero, k, v.shape[k], 8)
        return out
    f = cast_value(cx, v, np.dtype(np.float32))
    if zp is None:
        return f
    z = cast_value(cx, _param_value(cx, zp, shape_for_zp, axis, f"{what}'s zero point"), np.dtype(np.float32))
    return emit_binary(cx, nt.SubOp, f, z)


@register("MatMulInteger")
def _convert_matmul_integer(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    a, b = cx.input(ins, 0), cx.input(ins, 1)
    azp = ins[2] if len(ins) > 2 else None
    bzp = ins[3] if len(ins) > 3 else None
    if len(a.shape) < 1 or len(b.shape) < 2:
        raise cx.fail(f"expects A of rank >= 1 and B of rank >= 2, got {list(a.shape)} and {list(b.shape)}")
    # a_zero_point: one per row of A (axis -2); b_zero_point: one per column of B (axis -1)
    af = _centered(cx, a, azp, a.shape, max(len(a.shape) - 2, 0), "A")
    bf = _centered(cx, b, bzp, b.shape, len(b.shape) - 1, "B")
    (y,) = CONVERTERS["MatMul"](cx, [af, bf])
    if not isinstance(y, Const):  # (the matmul, under the reshapes of 1-D operands)
        op = cx.ssa(y).owner
        while isinstance(op, nt.ReshapeOp):
            op = op.input.owner
        if isinstance(op, nt.MatmulOp):
            op.attributes[nt.INTEGER_OPERANDS] = UnitAttr()
            if isinstance(bf, Const) and bf.array.size and -128 <= bf.array.min() and bf.array.max() <= 127:
                op.attributes[nt.INT8_RHS] = UnitAttr()
    return [y]


@register("ConvInteger")
def _convert_conv_integer(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    x, w = cx.input(ins, 0), cx.input(ins, 1)
    xzp = ins[2] if len(ins) > 2 else None
    wzp = ins[3] if len(ins) > 3 else None
    if xzp is not None and int(np.prod(xzp.shape)) != 1:
        raise cx.fail("x_zero_point must be a scalar")
    xf = _centered(cx, x, xzp, x.shape, 0, "x")
    wf = _centered(cx, w, wzp, w.shape, 0, "w")
    return CONVERTERS["Conv"](cx, [xf, wf, None])


# ------------------------------------------------------------------ com.microsoft 4-bit forms


def unpack_nibbles(packed: np.ndarray) -> np.ndarray:
    """uint8 bytes -> twice as many 4-bit values, the low nibble first."""
    p = packed.astype(np.uint8)
    return np.stack([p & 0x0F, p >> 4], axis=-1).reshape(*p.shape[:-1], p.shape[-1] * 2)


def _nbits_weight(cx: NodeContext, ins: list[Value | None]) -> Const:
    """MatMulNBits' B as the float32 [K, N] weight (onnxruntime's dequantization)."""
    k, n = int(cx.attr("K", 0)), int(cx.attr("N", 0))
    bits, bs = int(cx.attr("bits", 4)), int(cx.attr("block_size", 0))
    if bits not in (4, 8):
        raise cx.fail(f"bits={bits} is not supported; nnjit reads 4- and 8-bit MatMulNBits")
    if k <= 0 or n <= 0:
        raise cx.fail(f"attributes K={k} and N={n} must be positive")
    if bs < 16 or bs & (bs - 1):
        raise cx.fail(f"block_size={bs} must be a power of two >= 16")
    nb = -(-k // bs)
    blob = bs * bits // 8
    b = cx.const(ins, 1, "B")
    scales = cx.const(ins, 2, "scales")
    if b is None or scales is None:
        raise cx.fail("B and scales are required")
    if len(ins) > 4 and ins[4] is not None:
        raise cx.fail("g_idx (act-order) is not supported")
    if b.dtype != np.uint8 or tuple(b.shape) != (n, nb, blob):
        raise cx.fail(f"B has {b.dtype} {list(b.shape)}; expects uint8 [N, ceil(K / block_size), "
                      f"block_size * bits / 8] = [{n}, {nb}, {blob}]")  # fmt: skip
    if scales.size != n * nb:
        raise cx.fail(f"scales has {scales.size} values ({list(scales.shape)}); expects N * "
                      f"ceil(K / block_size) = {n * nb}")  # fmt: skip
    q = unpack_nibbles(b) if bits == 4 else b  # [n, nb, bs]
    zp = cx.const(ins, 3, "zero_points")
    if zp is None:
        zero = np.full((n, nb, 1), 1 << (bits - 1), np.uint8)
    elif zp.dtype == np.uint8:
        per_col = -(-nb * bits // 8)
        if zp.size != n * per_col:
            raise cx.fail(f"zero_points has {zp.size} bytes; expects N * ceil(blocks * bits / 8) = {n * per_col}")
        z = zp.reshape(n, per_col)
        zero = (unpack_nibbles(z)[:, :nb] if bits == 4 else z).reshape(n, nb, 1)
    else:
        raise cx.fail(f"zero_points of type {zp.dtype} is not supported (uint8 packed only)")
    scale = scales.astype(np.float32).reshape(n, nb, 1)
    w = dequantize_array(q, scale, zero).reshape(n, nb * bs)[:, :k]
    qk = q.reshape(n, nb * bs)[:, :k].T
    full = lambda a: np.repeat(a.reshape(n, nb), bs, axis=1)[:, :k].T  # noqa: E731
    const = Const(np.ascontiguousarray(w.T), cx.node.input[1])
    const.compact = Quantized(np.ascontiguousarray(qk), full(scale), full(zero), 0, bs, bits)
    return const


@register("MatMulNBits")
def _convert_matmul_nbits(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    a = cx.input(ins, 0)
    check_float(cx, a)
    if a.shape[-1] != int(cx.attr("K", 0)):
        raise cx.fail(f"A has {a.shape[-1]} columns, attribute K is {cx.attr('K', 0)}")
    w = _nbits_weight(cx, ins)
    (y,) = CONVERTERS["MatMul"](cx, [a, w])
    bias = ins[5] if len(ins) > 5 else None
    if bias is not None:
        y = emit_binary(cx, nt.AddOp, y, cast_value(cx, bias, np.dtype(np.float32)))
    return [y]


@register("GatherBlockQuantized")
def _convert_gather_block_quantized(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    """A quantized embedding table (constant data, scales, zero points) dequantized at import,
    then gathered."""
    data = cx.const(ins, 0, "data")
    scales = cx.const(ins, 2, "scales")
    if data is None or scales is None:
        raise cx.fail("data and scales are required")
    bits, bs = int(cx.attr("bits", 4)), int(cx.attr("block_size", 128))
    qaxis = int(cx.attr("quantize_axis", 1))
    if data.dtype == np.uint8 and bits == 4:
        q = unpack_nibbles(data)
        default_zero = 8
    elif data.dtype in (np.uint8, np.int8) and bits == 8:
        q, default_zero = data, (128 if data.dtype == np.uint8 else 0)
    else:
        raise cx.fail(f"data of type {data.dtype} with bits={bits} is not supported")
    qaxis = norm_axis(cx, qaxis, q.ndim, "quantize_axis")
    if qaxis != q.ndim - 1:
        raise cx.fail("only quantize_axis = the last axis is supported")
    k = q.shape[-1]
    nb = -(-k // bs)
    if tuple(scales.shape) != (*q.shape[:-1], nb):
        raise cx.fail(f"scales has shape {list(scales.shape)}; expects {[*q.shape[:-1], nb]}")
    zp = cx.const(ins, 3, "zero_points")
    if zp is None:
        zero = np.full(scales.shape, default_zero, np.int32)
    else:
        zero = unpack_nibbles(zp)[..., :nb] if bits == 4 and zp.dtype == np.uint8 else zp
    rep = lambda a: np.repeat(a, bs, axis=-1)[..., :k]  # noqa: E731
    w = dequantize_array(q, rep(scales.astype(np.float32)), rep(zero))
    table = Const(w, cx.node.input[0])
    table.compact = Quantized(q, rep(scales.astype(np.float32)), rep(zero), q.ndim - 1, bs, bits)
    sub = copy.copy(cx)
    sub.attrs = {"axis": int(cx.attr("gather_axis", 0))}
    return CONVERTERS["Gather"](sub, [table, cx.input(ins, 1)])
