"""nn_tensor: tensor-level ops of a neural network, on static-shape builtin tensors.

A model is a `func.func @main` whose arguments are the graph inputs and whose results are
the graph outputs. Every op has ONNX semantics (numpy broadcasting for elementwise ops) and
static shapes. Weights live outside the IR text: `nn_tensor.weight` names an entry of the
weights file. Integer tensors are i64 (ONNX int64) or i32; booleans are i1.

Fusion wraps a root op and its elementwise prologue/epilogue in an `nn_tensor.fused` region;
the tensor-to-loop lowering turns each `nn_tensor.fused` (or lone op) into one kernel.

(Size: ~900 lines, above the ~800 a module aims at, kept whole: one file per dialect, as in
xDSL, and every op a named module-level class with its one-line semantics, which grep and
type checkers see; the elementwise families already declare their operands once in shared
bases, so the length is the op list itself, 4 lines an op.)
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import ClassVar

from xdsl.dialects.builtin import (
    I64,
    AnyFloat,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    StringAttr,
    TensorType,
    i8,
    i32,
    i64,
)
from xdsl.ir import Attribute, Block, Dialect, Operation, Region, SSAValue
from xdsl.irdl import (
    AnyAttr,
    IRDLOperation,
    ParamAttrConstraint,
    ParsePropInAttrDict,
    VarConstraint,
    base,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
    var_result_def,
)
from xdsl.traits import HasParent, IsolatedFromAbove, IsTerminator, NoMemoryEffect, Pure
from xdsl.utils.exceptions import VerifyException

from nnjit.ir.fastir import fast_init, str_attr

AnyTensor = TensorType


def shape_of(value: SSAValue) -> tuple[int, ...]:
    """Static shape of a tensor value (raises VerifyException for non-tensors)."""
    t = value.type
    if not isinstance(t, TensorType):
        raise VerifyException(f"expected a tensor, got {t}")
    shape = tuple(t.get_shape())
    if any(d < 0 for d in shape):
        raise VerifyException(f"dynamic dimension in {t}: nnjit needs static shapes")
    return shape


def elem_of(value: SSAValue) -> Attribute:
    t = value.type
    assert isinstance(t, TensorType)
    return t.get_element_type()


def broadcast_shapes(*shapes: Sequence[int]) -> tuple[int, ...]:
    """Numpy/ONNX multidirectional broadcasting; raises ValueError when incompatible."""
    rank = max((len(s) for s in shapes), default=0)
    out: list[int] = []
    for i in range(rank):
        dims = {s[i - rank + len(s)] for s in shapes if i - rank + len(s) >= 0}
        dims.discard(1)
        if len(dims) > 1:
            raise ValueError(f"shapes {[tuple(s) for s in shapes]} do not broadcast")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def i64_array(values: Sequence[int]) -> DenseArrayBase:
    return DenseArrayBase.from_list(i64, list(values))


def array_values(attr: DenseArrayBase) -> tuple[int, ...]:
    return tuple(int(v) for v in attr.get_values())


def _check_broadcast(op: Operation, operands: Sequence[SSAValue], result: SSAValue):
    try:
        expected = broadcast_shapes(*(shape_of(o) for o in operands))
    except ValueError as e:
        raise VerifyException(f"{op.name}: {e}") from e
    if shape_of(result) != expected:
        raise VerifyException(
            f"{op.name}: result shape {shape_of(result)} is not the broadcast "
            f"shape {expected} of the operands"
        )


# ----------------------------------------------------------------------------- values


@irdl_op_definition
class WeightOp(IRDLOperation):
    """A named weight: the tensor stored under `key` in the model's weights file."""

    name = "nn_tensor.weight"
    key = prop_def(StringAttr)
    result = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$key attr-dict `:` type($result)"

    def __init__(self, key: str, type: TensorType):
        super().__init__(properties={"key": StringAttr(key)}, result_types=[type])


@irdl_op_definition
class ConstantOp(IRDLOperation):
    """A small constant held in the IR text (scalars, shape vectors, folded values)."""

    name = "nn_tensor.constant"
    _T: ClassVar = VarConstraint("T", base(TensorType))
    value = prop_def(ParamAttrConstraint(DenseIntOrFPElementsAttr, (_T, AnyAttr())))
    result = result_def(_T)
    traits = traits_def(Pure())
    # `nn_tensor.constant dense<...> : tensor<...>`: the typed attribute gives the result type
    assembly_format = "attr-dict $value"

    def __init__(self, value: DenseIntOrFPElementsAttr):
        super().__init__(properties={"value": value}, result_types=[value.type])

    def verify_(self):
        if self.value.type != self.result.type:
            raise VerifyException(
                f"nn_tensor.constant: value type {self.value.type} differs from "
                f"result type {self.result.type}"
            )


# ------------------------------------------------------------------------ elementwise


class ElementwiseOp(IRDLOperation, abc.ABC):
    """Marker base: ops computed independently per output element."""


class BinaryElementwiseOp(ElementwiseOp, abc.ABC):
    """`result = lhs <op> rhs` per element with numpy broadcasting."""

    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$lhs `,` $rhs attr-dict `:` `(` type($lhs) `,` type($rhs) `)` `->` type($result)"

    def __init__(self, lhs: SSAValue, rhs: SSAValue, result_type: Attribute):
        super().__init__(operands=[lhs, rhs], result_types=[result_type])

    def verify_(self):
        _check_broadcast(self, [self.lhs, self.rhs], self.result)


class ArithBinaryOp(BinaryElementwiseOp, abc.ABC):
    def verify_(self):
        super().verify_()
        if not (elem_of(self.lhs) == elem_of(self.rhs) == elem_of(self.result)):
            raise VerifyException(
                f"{self.name}: operand and result element types must match, got "
                f"{elem_of(self.lhs)}, {elem_of(self.rhs)} -> {elem_of(self.result)}"
            )


class CompareOp(BinaryElementwiseOp, abc.ABC):
    def verify_(self):
        super().verify_()
        if elem_of(self.result) != IntegerType(1):
            raise VerifyException(f"{self.name}: result must be a tensor of i1")


@irdl_op_definition
class AddOp(ArithBinaryOp):
    """Elementwise lhs + rhs."""

    name = "nn_tensor.add"


@irdl_op_definition
class SubOp(ArithBinaryOp):
    """Elementwise lhs - rhs."""

    name = "nn_tensor.sub"


@irdl_op_definition
class MulOp(ArithBinaryOp):
    """Elementwise lhs * rhs."""

    name = "nn_tensor.mul"


@irdl_op_definition
class DivOp(ArithBinaryOp):
    """Elementwise lhs / rhs (integer division truncates)."""

    name = "nn_tensor.div"


@irdl_op_definition
class PowOp(ArithBinaryOp):
    """Elementwise lhs ** rhs."""

    name = "nn_tensor.pow"


@irdl_op_definition
class MaxOp(ArithBinaryOp):
    """Elementwise max(lhs, rhs)."""

    name = "nn_tensor.max"


@irdl_op_definition
class MinOp(ArithBinaryOp):
    """Elementwise min(lhs, rhs)."""

    name = "nn_tensor.min"


@irdl_op_definition
class AndOp(ArithBinaryOp):
    """Elementwise logical and of i1 tensors."""

    name = "nn_tensor.and"


@irdl_op_definition
class OrOp(ArithBinaryOp):
    """Elementwise logical or of i1 tensors."""

    name = "nn_tensor.or"


@irdl_op_definition
class EqualOp(CompareOp):
    """Elementwise lhs == rhs, giving i1."""

    name = "nn_tensor.equal"


@irdl_op_definition
class LessOp(CompareOp):
    """Elementwise lhs < rhs, giving i1."""

    name = "nn_tensor.less"


@irdl_op_definition
class GreaterOp(CompareOp):
    """Elementwise lhs > rhs, giving i1."""

    name = "nn_tensor.greater"


class UnaryElementwiseOp(ElementwiseOp, abc.ABC):
    """`result = f(input)` per element; same shape."""

    input = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$input attr-dict `:` type($input) `->` type($result)"

    def __init__(self, input: SSAValue, result_type: Attribute | None = None):
        super().__init__(
            operands=[input],
            result_types=[result_type if result_type is not None else input.type],
        )

    def verify_(self):
        if shape_of(self.input) != shape_of(self.result):
            raise VerifyException(
                f"{self.name}: result shape {shape_of(self.result)} differs from "
                f"input shape {shape_of(self.input)}"
            )


class FloatUnaryOp(UnaryElementwiseOp, abc.ABC):
    def verify_(self):
        super().verify_()
        if not isinstance(elem_of(self.input), AnyFloat) or elem_of(
            self.input
        ) != elem_of(self.result):
            raise VerifyException(f"{self.name}: expects float input and result of one type")


@irdl_op_definition
class SqrtOp(FloatUnaryOp):
    """Elementwise square root."""

    name = "nn_tensor.sqrt"


@irdl_op_definition
class ErfOp(FloatUnaryOp):
    """Elementwise error function."""

    name = "nn_tensor.erf"


@irdl_op_definition
class TanhOp(FloatUnaryOp):
    """Elementwise hyperbolic tangent."""

    name = "nn_tensor.tanh"


@irdl_op_definition
class SinOp(FloatUnaryOp):
    """Elementwise sine (radians)."""

    name = "nn_tensor.sin"


@irdl_op_definition
class CosOp(FloatUnaryOp):
    """Elementwise cosine (radians)."""

    name = "nn_tensor.cos"


@irdl_op_definition
class ExpOp(FloatUnaryOp):
    """Elementwise e ** x."""

    name = "nn_tensor.exp"


@irdl_op_definition
class LogOp(FloatUnaryOp):
    """Elementwise natural logarithm."""

    name = "nn_tensor.log"


@irdl_op_definition
class NegOp(UnaryElementwiseOp):
    """Elementwise -x."""

    name = "nn_tensor.neg"


@irdl_op_definition
class AbsOp(UnaryElementwiseOp):
    """Elementwise |x|."""

    name = "nn_tensor.abs"


@irdl_op_definition
class ReciprocalOp(FloatUnaryOp):
    """Elementwise 1 / x."""

    name = "nn_tensor.reciprocal"


@irdl_op_definition
class ReluOp(FloatUnaryOp):
    """Elementwise max(x, 0)."""

    name = "nn_tensor.relu"


@irdl_op_definition
class SigmoidOp(FloatUnaryOp):
    """Elementwise 1 / (1 + exp(-x))."""

    name = "nn_tensor.sigmoid"


@irdl_op_definition
class RoundOp(FloatUnaryOp):
    """Elementwise rounding to the nearest integer, halves to even (ONNX Round)."""

    name = "nn_tensor.round"


@irdl_op_definition
class GeluOp(FloatUnaryOp):
    """Elementwise exact GELU: x * 0.5 * (1 + erf(x / sqrt(2))) (formed by fusion)."""

    name = "nn_tensor.gelu"


@irdl_op_definition
class NotOp(UnaryElementwiseOp):
    """Elementwise logical not of an i1 tensor."""

    name = "nn_tensor.not"


@irdl_op_definition
class IsNaNOp(UnaryElementwiseOp):
    """Elementwise x != x, giving i1."""

    name = "nn_tensor.isnan"


@irdl_op_definition
class CastOp(UnaryElementwiseOp):
    """Elementwise conversion to the result element type (ONNX Cast)."""

    name = "nn_tensor.cast"


@irdl_op_definition
class WhereOp(ElementwiseOp):
    """Elementwise `cond ? lhs : rhs` with broadcasting over all three operands."""

    name = "nn_tensor.where"
    cond = operand_def(TensorType)
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = (
        "$cond `,` $lhs `,` $rhs attr-dict `:` `(` type($cond) `,` type($lhs) `,` "
        "type($rhs) `)` `->` type($result)"
    )

    def __init__(self, cond: SSAValue, lhs: SSAValue, rhs: SSAValue, result_type: Attribute):
        super().__init__(operands=[cond, lhs, rhs], result_types=[result_type])

    def verify_(self):
        _check_broadcast(self, [self.cond, self.lhs, self.rhs], self.result)
        if elem_of(self.cond) != IntegerType(1):
            raise VerifyException("nn_tensor.where: condition must be a tensor of i1")


# ------------------------------------------------------------------------ contractions


@irdl_op_definition
class MatmulOp(IRDLOperation):
    """Numpy matmul: batched over leading dims (broadcast), contracting lhs[-1] with rhs[-2]."""

    name = "nn_tensor.matmul"
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$lhs `,` $rhs attr-dict `:` `(` type($lhs) `,` type($rhs) `)` `->` type($result)"

    def __init__(self, lhs: SSAValue, rhs: SSAValue, result_type: Attribute):
        super().__init__(operands=[lhs, rhs], result_types=[result_type])

    def verify_(self):
        a, b = shape_of(self.lhs), shape_of(self.rhs)
        if len(a) < 2 or len(b) < 2:
            raise VerifyException("nn_tensor.matmul: operands must have rank >= 2")
        if a[-1] != b[-2]:
            raise VerifyException(
                f"nn_tensor.matmul: contraction dims differ: lhs {a} vs rhs {b}"
            )
        try:
            batch = broadcast_shapes(a[:-2], b[:-2])
        except ValueError as e:
            raise VerifyException(f"nn_tensor.matmul: batch dims: {e}") from e
        expected = (*batch, a[-2], b[-1])
        if shape_of(self.result) != expected:
            raise VerifyException(
                f"nn_tensor.matmul: result shape {shape_of(self.result)}, expected {expected}"
            )


INTEGER_OPERANDS = "nn_tensor.integer_operands"
INT8_RHS = "nn_tensor.int8_rhs"
"""(with INTEGER_OPERANDS) B's integers fit int8: nn-tensor-integer-matmul may use matmul_i8."""
"""A unit attribute of nn_tensor.matmul: both operands hold integers of at most 9 bits (an
ONNX MatMulInteger's int8/uint8 values minus their zero points, as float32), so that a target
may compute it exactly in integers (Wasm: nnjit/passes/nn_tensor_integer_matmul.py)."""


def _verify_word_matmul(op: IRDLOperation, rows: int, rows_text: str, rhs_elem: Attribute = i32,
                        pairs: bool = False) -> None:  # fmt: skip
    """The checks the integer matmuls share: i32 lhs [..., M, K] and result [..., M, N], rhs
    [rows, N] of `rhs_elem` (`rows_text` says how rows follows from K), or [rows, 2N] bytes
    where `pairs` (matmul_q8p's k pairs)."""
    a, b = shape_of(op.lhs), shape_of(op.rhs)
    for v, want in ((op.lhs, i32), (op.rhs, rhs_elem), (op.result, i32)):
        t = v.type
        assert isinstance(t, TensorType)
        if t.get_element_type() != want:
            raise VerifyException(f"{op.name}: {t} is not an {want} tensor")
    if len(a) < 2 or len(b) != 2:
        raise VerifyException(f"{op.name}: lhs must have rank >= 2 and rhs rank 2")
    if pairs and (b[0] != rows or b[1] % 2):
        raise VerifyException(f"{op.name}: rhs {b} must be [{rows_text}, 2N] = "
                              f"[{rows}, 2N] bytes for K = {a[-1]}")  # fmt: skip
    if b[0] != rows:
        raise VerifyException(f"{op.name}: rhs {b} must hold {rows_text} = {rows} word rows")
    n = b[1] // 2 if pairs else b[1]
    if shape_of(op.result) != (*a[:-1], n):
        raise VerifyException(f"{op.name}: result shape {shape_of(op.result)}, expected {(*a[:-1], n)}")


@irdl_op_definition
class MatmulI16Op(IRDLOperation):
    """Integer matmul of 16-bit values, i32 result wrapping mod 2**32: lhs [..., M, K] i32
    (each value taken as a signed 16-bit integer), rhs [ceil(K / 2), N] i32 words, word
    [j, n] holding B[2j, n] in its low and B[2j+1, n] in its high signed 16-bit half (0 past
    K); out[..., m, n] = sum_k lhs[..., m, k] * B[k, n] (Wasm's i32x4.dot_i16x8_s layout)."""

    name = "nn_tensor.matmul_i16"
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$lhs `,` $rhs attr-dict `:` `(` type($lhs) `,` type($rhs) `)` `->` type($result)"

    def __init__(self, lhs: SSAValue, rhs: SSAValue, result_type: Attribute):
        super().__init__(operands=[lhs, rhs], result_types=[result_type])

    def verify_(self):
        k = shape_of(self.lhs)[-1] if shape_of(self.lhs) else 0
        _verify_word_matmul(self, (k + 1) // 2, "ceil(K / 2)")


@irdl_op_definition
class MatmulI8Op(IRDLOperation):
    """Integer matmul of 8-bit weights, i32 result wrapping mod 2**32: lhs [..., M, K] i32
    (integers in -256..255), rhs [ceil(K / 4) + 1, N] i32 words: word [j, n] (j < ceil(K / 4))
    holds B[4j + i, n] as its signed byte i (low first, 0 past K), the last row
    -256 * sum_k B[k, n]; out[..., m, n] = sum_k lhs[..., m, k] * B[k, n]. The Wasm kernel
    splits lhs + 256 (0..511) into two 7-bit planes for i32x4.relaxed_dot_i8x16_i7x16_add_s
    (the last row undoes the 256)."""

    name = "nn_tensor.matmul_i8"
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$lhs `,` $rhs attr-dict `:` `(` type($lhs) `,` type($rhs) `)` `->` type($result)"

    def __init__(self, lhs: SSAValue, rhs: SSAValue, result_type: Attribute):
        super().__init__(operands=[lhs, rhs], result_types=[result_type])

    def verify_(self):
        k = shape_of(self.lhs)[-1] if shape_of(self.lhs) else 0
        _verify_word_matmul(self, (k + 3) // 4 + 1, "ceil(K / 4) + 1")


@irdl_op_definition
class MatmulQ8POp(IRDLOperation):
    """Integer matmul of int8 weights stored in k pairs, i32 result wrapping mod 2**32: lhs
    [..., M, K] i32 (each value taken as a signed 16-bit integer), rhs [ceil(K / 2), 2N] i8
    with rhs[j, 2n + h] = B[2j + h, n] (0 past K); out[..., m, n] = sum_k lhs[..., m, k] *
    B[k, n]. Wasm: one v128.load8x8_s reads 4 columns' pairs as i16x8 for i32x4.dot_i16x8_s
    (nnjit/passes/nn_tensor_int8_weights.py, dot=i16)."""

    name = "nn_tensor.matmul_q8p"
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$lhs `,` $rhs attr-dict `:` `(` type($lhs) `,` type($rhs) `)` `->` type($result)"

    def __init__(self, lhs: SSAValue, rhs: SSAValue, result_type: Attribute):
        super().__init__(operands=[lhs, rhs], result_types=[result_type])

    def verify_(self):
        k = shape_of(self.lhs)[-1] if shape_of(self.lhs) else 0
        _verify_word_matmul(self, (k + 1) // 2, "ceil(K / 2)", rhs_elem=i8, pairs=True)


@irdl_op_definition
class GemmOp(IRDLOperation):
    """ONNX Gemm: alpha * op(A) @ op(B) + beta * C, op = optional transpose; 2-D only."""

    name = "nn_tensor.gemm"
    a = operand_def(TensorType)
    b = operand_def(TensorType)
    c = opt_operand_def(TensorType)
    result = result_def(TensorType)
    alpha = prop_def(FloatAttr, default_value=FloatAttr(1.0, 32))
    beta = prop_def(FloatAttr, default_value=FloatAttr(1.0, 32))
    trans_a = prop_def(IntegerAttr[I64], default_value=IntegerAttr(0, 64))
    trans_b = prop_def(IntegerAttr[I64], default_value=IntegerAttr(0, 64))
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$a `,` $b (`,` $c^)? attr-dict `:` functional-type(operands, results)"

    def verify_(self):
        a, b = shape_of(self.a), shape_of(self.b)
        if len(a) != 2 or len(b) != 2:
            raise VerifyException("nn_tensor.gemm: operands must be 2-D")
        m, k = (a[1], a[0]) if self.trans_a.value.data else a
        k2, n = (b[1], b[0]) if self.trans_b.value.data else b
        if k != k2:
            raise VerifyException(f"nn_tensor.gemm: contraction dims differ: {a} vs {b}")
        if shape_of(self.result) != (m, n):
            raise VerifyException(
                f"nn_tensor.gemm: result shape {shape_of(self.result)}, expected {(m, n)}"
            )


@irdl_op_definition
class ConvOp(IRDLOperation):
    """ONNX Conv, NCHW 2-D: out[n,f,y,x] = b[f] + sum w[f,c,ky,kx] * in[n,c,y*s-p+ky*d, ...]."""

    name = "nn_tensor.conv"
    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    result = result_def(TensorType)
    strides = prop_def(DenseArrayBase)
    pads = prop_def(DenseArrayBase)  # [top, left, bottom, right]
    dilations = prop_def(DenseArrayBase)
    group = prop_def(IntegerAttr[I64], default_value=IntegerAttr(1, 64))
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$input `,` $weight (`,` $bias^)? attr-dict `:` functional-type(operands, results)"

    def verify_(self):
        x, w = shape_of(self.input), shape_of(self.weight)
        if len(x) != 4 or len(w) != 4:
            raise VerifyException("nn_tensor.conv: only 2-D convolution (NCHW) is supported")
        g = self.group.value.data
        if x[1] != w[1] * g:
            raise VerifyException(
                f"nn_tensor.conv: input channels {x[1]} != weight channels {w[1]} * group {g}"
            )
        s, p, d = (array_values(a) for a in (self.strides, self.pads, self.dilations))
        if len(s) != 2 or len(d) != 2 or len(p) != 4:
            raise VerifyException("nn_tensor.conv: strides/dilations need 2 values, pads 4")
        oh = (x[2] + p[0] + p[2] - d[0] * (w[2] - 1) - 1) // s[0] + 1
        ow = (x[3] + p[1] + p[3] - d[1] * (w[3] - 1) - 1) // s[1] + 1
        if shape_of(self.result) != (x[0], w[0], oh, ow):
            raise VerifyException(
                f"nn_tensor.conv: result shape {shape_of(self.result)}, expected "
                f"{(x[0], w[0], oh, ow)}"
            )


# ----------------------------------------------------------------- normalisation, reductions


@irdl_op_definition
class SoftmaxOp(IRDLOperation):
    """exp(x - max) / sum(exp(x - max)) along `axis`."""

    name = "nn_tensor.softmax"
    input = operand_def(TensorType)
    result = result_def(TensorType)
    axis = prop_def(IntegerAttr[I64])
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$input attr-dict `:` type($input) `->` type($result)"

    def verify_(self):
        rank = len(shape_of(self.input))
        if not 0 <= self.axis.value.data < rank:
            raise VerifyException(f"nn_tensor.softmax: axis {self.axis.value.data} out of range")
        if self.input.type != self.result.type:
            raise VerifyException("nn_tensor.softmax: result type must equal input type")


@irdl_op_definition
class LayerNormOp(IRDLOperation):
    """(x - mean) / sqrt(var + epsilon) * scale + bias over the dims from `axis` to the end."""

    name = "nn_tensor.layer_norm"
    input = operand_def(TensorType)
    scale = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    result = result_def(TensorType)
    axis = prop_def(IntegerAttr[I64])
    epsilon = prop_def(FloatAttr)
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$input `,` $scale (`,` $bias^)? attr-dict `:` functional-type(operands, results)"

    def verify_(self):
        x = shape_of(self.input)
        axis = self.axis.value.data
        if not 0 <= axis < len(x):
            raise VerifyException(f"nn_tensor.layer_norm: axis {axis} out of range")
        if self.input.type != self.result.type:
            raise VerifyException("nn_tensor.layer_norm: result type must equal input type")
        for v in (self.scale, self.bias):
            if v is None:
                continue
            try:
                broadcast_shapes(x[axis:], shape_of(v))
            except ValueError:
                raise VerifyException(
                    f"nn_tensor.layer_norm: scale/bias shape {shape_of(v)} does not "
                    f"broadcast to the normalised dims {x[axis:]}"
                ) from None


class ReduceOp(IRDLOperation, abc.ABC):
    """Reduce over `axes` (sorted, non-negative); `keepdims` keeps them as size 1."""

    input = operand_def(TensorType)
    result = result_def(TensorType)
    axes = prop_def(DenseArrayBase)
    keepdims = prop_def(IntegerAttr[I64], default_value=IntegerAttr(1, 64))
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$input attr-dict `:` type($input) `->` type($result)"

    def verify_(self):
        x = shape_of(self.input)
        axes = array_values(self.axes)
        if list(axes) != sorted(set(axes)) or any(not 0 <= a < len(x) for a in axes):
            raise VerifyException(
                f"{self.name}: axes {list(axes)} must be sorted, unique and in [0, {len(x)})"
            )
        keep = self.keepdims.value.data
        expected = tuple(
            (1 if i in axes else d) for i, d in enumerate(x) if keep or i not in axes
        )
        if shape_of(self.result) != expected:
            raise VerifyException(
                f"{self.name}: result shape {shape_of(self.result)}, expected {expected}"
            )


@irdl_op_definition
class ReduceMeanOp(ReduceOp):
    """Mean over axes."""

    name = "nn_tensor.reduce_mean"


@irdl_op_definition
class ReduceSumOp(ReduceOp):
    """Sum over axes."""

    name = "nn_tensor.reduce_sum"


@irdl_op_definition
class ReduceMaxOp(ReduceOp):
    """Maximum over axes."""

    name = "nn_tensor.reduce_max"


# ------------------------------------------------------------------------- data movement


@irdl_op_definition
class TransposeOp(IRDLOperation):
    """result[i_perm[0], ...] = input[i_0, ...]: result dim k is input dim perm[k]."""

    name = "nn_tensor.transpose"
    input = operand_def(TensorType)
    result = result_def(TensorType)
    perm = prop_def(DenseArrayBase)
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$input attr-dict `:` type($input) `->` type($result)"

    def verify_(self):
        x = shape_of(self.input)
        perm = array_values(self.perm)
        if sorted(perm) != list(range(len(x))):
            raise VerifyException(f"nn_tensor.transpose: perm {list(perm)} is not a permutation")
        if shape_of(self.result) != tuple(x[p] for p in perm):
            raise VerifyException("nn_tensor.transpose: result shape does not match perm")


@irdl_op_definition
class ReshapeOp(IRDLOperation):
    """Same elements in row-major order, new static shape (the result type)."""

    name = "nn_tensor.reshape"
    input = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$input attr-dict `:` type($input) `->` type($result)"

    def __init__(self, input: SSAValue, result_type: Attribute):
        super().__init__(operands=[input], result_types=[result_type])

    def verify_(self):
        import math

        if math.prod(shape_of(self.input)) != math.prod(shape_of(self.result)):
            raise VerifyException("nn_tensor.reshape: element counts differ")
        if elem_of(self.input) != elem_of(self.result):
            raise VerifyException("nn_tensor.reshape: element types differ")


@irdl_op_definition
class ExpandOp(IRDLOperation):
    """Broadcast the input to the result shape (ONNX Expand with a folded shape)."""

    name = "nn_tensor.expand"
    input = operand_def(TensorType)
    result = result_def(TensorType)
    traits = traits_def(Pure())
    assembly_format = "$input attr-dict `:` type($input) `->` type($result)"

    def verify_(self):
        try:
            b = broadcast_shapes(shape_of(self.input), shape_of(self.result))
        except ValueError as e:
            raise VerifyException(f"nn_tensor.expand: {e}") from e
        if b != shape_of(self.result):
            raise VerifyException("nn_tensor.expand: input does not broadcast to the result")


@irdl_op_definition
class GatherOp(IRDLOperation):
    """ONNX Gather: result = take(data, indices, axis) (negative indices wrap)."""

    name = "nn_tensor.gather"
    data = operand_def(TensorType)
    indices = operand_def(TensorType)
    result = result_def(TensorType)
    axis = prop_def(IntegerAttr[I64])
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$data `,` $indices attr-dict `:` `(` type($data) `,` type($indices) `)` `->` type($result)"

    def verify_(self):
        d, i = shape_of(self.data), shape_of(self.indices)
        ax = self.axis.value.data
        if not 0 <= ax < len(d):
            raise VerifyException(f"nn_tensor.gather: axis {ax} out of range")
        if shape_of(self.result) != (*d[:ax], *i, *d[ax + 1 :]):
            raise VerifyException("nn_tensor.gather: result shape mismatch")


@irdl_op_definition
class GatherNDOp(IRDLOperation):
    """ONNX GatherND with `batch_dims`."""

    name = "nn_tensor.gather_nd"
    data = operand_def(TensorType)
    indices = operand_def(TensorType)
    result = result_def(TensorType)
    batch_dims = prop_def(IntegerAttr[I64], default_value=IntegerAttr(0, 64))
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$data `,` $indices attr-dict `:` `(` type($data) `,` type($indices) `)` `->` type($result)"

    def verify_(self):
        d, i = shape_of(self.data), shape_of(self.indices)
        b = self.batch_dims.value.data
        if len(i) < 1:
            raise VerifyException(
                "nn_tensor.gather_nd: indices need rank >= 1 (their last dim is the index depth)"
            )
        k = i[-1]
        if b + k > len(d):
            raise VerifyException("nn_tensor.gather_nd: index depth exceeds data rank")
        if shape_of(self.result) != (*i[:-1], *d[b + k :]):
            raise VerifyException("nn_tensor.gather_nd: result shape mismatch")


@irdl_op_definition
class SliceOp(IRDLOperation):
    """Static strided slice: per dim, start, step (>0 or <0) and result size from the type."""

    name = "nn_tensor.slice"
    input = operand_def(TensorType)
    result = result_def(TensorType)
    starts = prop_def(DenseArrayBase)  # one per input dim, normalised (in range)
    steps = prop_def(DenseArrayBase)  # one per input dim, non-zero
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$input attr-dict `:` type($input) `->` type($result)"

    def verify_(self):
        x, r = shape_of(self.input), shape_of(self.result)
        starts, steps = array_values(self.starts), array_values(self.steps)
        if not (len(starts) == len(steps) == len(x) == len(r)):
            raise VerifyException("nn_tensor.slice: starts/steps need one value per dim")
        for d, (n, s, st, m) in enumerate(zip(x, starts, steps, r)):
            if st == 0:
                raise VerifyException(f"nn_tensor.slice: step of dim {d} is 0")
            if m > 0 and not (0 <= s < n and 0 <= s + (m - 1) * st < n):
                raise VerifyException(f"nn_tensor.slice: dim {d} reads out of bounds")


def _check_pieces(
    name: str, whole: SSAValue, pieces: Sequence[SSAValue], ax: int, piece: str, what: str
) -> None:
    """Split/concat: the pieces match `whole` off axis `ax` and their sizes on it add up."""
    w = shape_of(whole)
    total = 0
    for v in pieces:
        s = shape_of(v)
        if len(s) != len(w) or any(s[i] != w[i] for i in range(len(w)) if i != ax):
            raise VerifyException(f"{name}: {piece} shapes must match the {what} off-axis")
        total += s[ax]
    if total != w[ax]:
        raise VerifyException(f"{name}: {piece} sizes must add up to the {what} dim")


@irdl_op_definition
class SplitOp(IRDLOperation):
    """Split along `axis` into results whose sizes are their types' dims."""

    name = "nn_tensor.split"
    input = operand_def(TensorType)
    outputs = var_result_def(TensorType)
    axis = prop_def(IntegerAttr[I64])
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$input attr-dict `:` type($input) `->` type($outputs)"

    def verify_(self):
        _check_pieces(self.name, self.input, self.outputs, self.axis.value.data, "output", "input")


@irdl_op_definition
class ConcatOp(IRDLOperation):
    """Concatenate inputs along `axis`."""

    name = "nn_tensor.concat"
    inputs = var_operand_def(TensorType)
    result = result_def(TensorType)
    axis = prop_def(IntegerAttr[I64])
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$inputs attr-dict `:` functional-type($inputs, $result)"

    def verify_(self):
        ax = self.axis.value.data
        if not 0 <= ax < len(shape_of(self.result)):
            raise VerifyException(f"nn_tensor.concat: axis {ax} out of range")
        _check_pieces(self.name, self.result, self.inputs, ax, "input", "result")


# ------------------------------------------------------------------------------ fusion


@irdl_op_definition
class FusedOp(IRDLOperation):
    """One kernel: its region computes the result from the operands (block arguments).

    `kind` names the root: "matmul", "gemm", "conv", "softmax", "layer_norm", "reduce",
    "elementwise", "gather", "transpose", ... The body is nn_tensor ops ending in
    nn_tensor.yield; ops other than the root are elementwise (prologue on the root's
    operands or epilogue on its result).
    """

    name = "nn_tensor.fused"
    inputs = var_operand_def(TensorType)
    result = result_def(TensorType)
    kind = prop_def(StringAttr)
    body = region_def("single_block")
    traits = traits_def(Pure(), IsolatedFromAbove())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$inputs attr-dict `:` functional-type($inputs, $result) $body"

    def __init__(self, kind: str, inputs: Sequence[SSAValue], result_type: Attribute, body: Region):
        fast_init(
            self,
            operands=[list(inputs)],
            result_types=[result_type],
            properties={"kind": str_attr(kind)},
            regions=[body],
        )

    @staticmethod
    def build_body(arg_types: Sequence[Attribute]) -> Block:
        return Block(arg_types=arg_types)

    def verify_(self):
        block = self.body.block
        if [a.type for a in block.args] != [v.type for v in self.inputs]:
            raise VerifyException("nn_tensor.fused: block argument types must match operands")
        last = block.last_op
        if not isinstance(last, YieldOp) or len(last.values) != 1:
            raise VerifyException("nn_tensor.fused: body must end in nn_tensor.yield of one value")
        if last.values[0].type != self.result.type:
            raise VerifyException("nn_tensor.fused: yielded type must equal the result type")


@irdl_op_definition
class YieldOp(IRDLOperation):
    """Terminates an nn_tensor.fused body with its result."""

    name = "nn_tensor.yield"
    values = var_operand_def()
    traits = traits_def(IsTerminator(), HasParent(FusedOp), NoMemoryEffect())
    assembly_format = "$values attr-dict `:` type($values)"

    def __init__(self, *values: SSAValue):
        fast_init(self, operands=[list(values)])


ELEMENTWISE_OPS: tuple[type[IRDLOperation], ...] = (
    AddOp, SubOp, MulOp, DivOp, PowOp, MaxOp, MinOp, AndOp, OrOp, EqualOp, LessOp,
    GreaterOp, SqrtOp, ErfOp, TanhOp, SinOp, CosOp, ExpOp, LogOp, NegOp, AbsOp, ReciprocalOp,
    ReluOp, SigmoidOp, RoundOp, GeluOp, NotOp, IsNaNOp, CastOp, WhereOp,
)  # fmt: skip

NNTensor = Dialect(
    "nn_tensor",
    [
        WeightOp, ConstantOp, *ELEMENTWISE_OPS, MatmulOp, GemmOp, ConvOp, SoftmaxOp,
        LayerNormOp, ReduceMeanOp, ReduceSumOp, ReduceMaxOp, TransposeOp, ReshapeOp,
        ExpandOp, GatherOp, GatherNDOp, SliceOp, SplitOp, ConcatOp, FusedOp, YieldOp,
        MatmulI16Op,
        MatmulI8Op,
        MatmulQ8POp,
    ],  # fmt: skip
    [],
)
