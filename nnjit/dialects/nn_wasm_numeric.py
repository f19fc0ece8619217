"""nn_wasm's numeric instructions: fixed operand and result types, no immediates.

Each instruction is a named op class (`F32AddOp` is `nn_wasm.f32.add`) of a family that
declares its operands (`in0`, `in1`, ...), result and traits once, as xDSL declares its
binary arith ops. The WAT value types (`i32`, `f32`, `!nn_wasm.v128`) and the base class of
all nn_wasm instructions live here too; the other instructions, functions and modules are in
the sibling `nn_wasm_*` modules, and `nnjit.dialects.nn_wasm` re-exports them all and holds the
dialect.

This module stays larger than the others (about 950 lines) on purpose: it is a table, one short
named class per WAT numeric instruction (a hundred of them, each a family and a docstring), so
that grep and type checkers see every op; splitting it would cut a table, not a concern.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from xdsl.dialects.builtin import Float32Type, IntegerType
from xdsl.ir import Attribute, Operation, ParametrizedAttribute, SSAValue, TypeAttribute
from xdsl.irdl import (
    IRDLOperation,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    result_def,
    traits_def,
)
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import NoMemoryEffect, Pure

from nnjit.ir.fastir import fast_init as _fast_init


@irdl_attr_definition
class V128Type(ParametrizedAttribute, TypeAttribute):
    """WebAssembly's 128-bit SIMD value type (f32x4 / i32x4 lanes)."""

    name = "nn_wasm.v128"


i32 = IntegerType(32)
f32 = Float32Type()
v128 = V128Type()
VALUE_TYPES = (i32, f32, v128)


def parse_operands(parser: Parser, types: Sequence[Attribute]) -> list[SSAValue]:
    """`%a, %b`: operands of known types (the instruction's signature gives them)."""
    values = []
    for k, t in enumerate(types):
        if k:
            parser.parse_punctuation(",")
        values.append(parser.parse_operand(t))
    return values


def print_operands(printer: Printer, values: Sequence[SSAValue]):
    if values:
        printer.print_string(" ")
        printer.print_list(values, printer.print_operand)


class WasmInstr(IRDLOperation):
    """Base of nn_wasm instructions: `mnemonic()` is the WAT instruction name."""

    def mnemonic(self) -> str:
        return self.name[8:]  # len("nn_wasm.")

    def wat(self, ident: Callable[[str, str], str]) -> str:
        """The WAT line of this instruction; `ident(kind, name)` prints a local, label or
        function name ("local" | "label" | "func") as a `$identifier`."""
        return self.mnemonic()


class FixedInstr(WasmInstr):
    """An instruction with fixed operand and result types and no immediates, printed
    `%r = nn_wasm.<mnemonic> %a, %b`. `OPERAND_TYPES` and `RESULT_TYPES` repeat the family's
    signature for the parser and the builders (which make these ops without IRDL)."""

    OPERAND_TYPES: ClassVar[tuple[Attribute, ...]] = ()
    RESULT_TYPES: ClassVar[tuple[Attribute, ...]] = ()

    def __init__(self, *operands: SSAValue | Operation):
        if len(operands) != len(self.OPERAND_TYPES):
            raise TypeError(f"{self.name} takes {len(self.OPERAND_TYPES)} operands")
        _fast_init(self, operands=list(operands), result_types=self.RESULT_TYPES)

    @classmethod
    def parse(cls, parser: Parser):
        return cls(*parse_operands(parser, cls.OPERAND_TYPES))

    def print(self, printer: Printer):
        print_operands(printer, self.operands)


# ------------------------------------------------------------------------------ families


class _F32Binary(FixedInstr):
    """f32 (a, b) -> f32."""

    OPERAND_TYPES: ClassVar[tuple[Attribute, ...]] = (f32, f32)
    RESULT_TYPES: ClassVar[tuple[Attribute, ...]] = (f32,)
    in0 = operand_def(f32)
    in1 = operand_def(f32)
    result = result_def(f32)
    traits = traits_def(Pure())


class _F32Unary(FixedInstr):
    """f32 (a) -> f32."""

    OPERAND_TYPES: ClassVar[tuple[Attribute, ...]] = (f32,)
    RESULT_TYPES: ClassVar[tuple[Attribute, ...]] = (f32,)
    in0 = operand_def(f32)
    result = result_def(f32)
    traits = traits_def(Pure())


class _F32Compare(FixedInstr):
    """f32 (a, b) -> i32 1 or 0."""

    OPERAND_TYPES: ClassVar[tuple[Attribute, ...]] = (f32, f32)
    RESULT_TYPES: ClassVar[tuple[Attribute, ...]] = (i32,)
    in0 = operand_def(f32)
    in1 = operand_def(f32)
    result = result_def(i32)
    traits = traits_def(Pure())


class _I32Binary(FixedInstr):
    """i32 (a, b) -> i32."""

    OPERAND_TYPES: ClassVar[tuple[Attribute, ...]] = (i32, i32)
    RESULT_TYPES: ClassVar[tuple[Attribute, ...]] = (i32,)
    in0 = operand_def(i32)
    in1 = operand_def(i32)
    result = result_def(i32)
    traits = traits_def(Pure())


class _I32Division(FixedInstr):
    """i32 (a, b) -> i32 that traps when b is 0: no memory effect, but not speculatable."""

    OPERAND_TYPES: ClassVar[tuple[Attribute, ...]] = (i32, i32)
    RESULT_TYPES: ClassVar[tuple[Attribute, ...]] = (i32,)
    in0 = operand_def(i32)
    in1 = operand_def(i32)
    result = result_def(i32)
    traits = traits_def(NoMemoryEffect())


class _I32Unary(FixedInstr):
    """i32 (a) -> i32."""

    OPERAND_TYPES: ClassVar[tuple[Attribute, ...]] = (i32,)
    RESULT_TYPES: ClassVar[tuple[Attribute, ...]] = (i32,)
    in0 = operand_def(i32)
    result = result_def(i32)
    traits = traits_def(Pure())


class _V128Binary(FixedInstr):
    """v128 (a, b) -> v128, lane-wise or bitwise."""

    OPERAND_TYPES: ClassVar[tuple[Attribute, ...]] = (v128, v128)
    RESULT_TYPES: ClassVar[tuple[Attribute, ...]] = (v128,)
    in0 = operand_def(v128)
    in1 = operand_def(v128)
    result = result_def(v128)
    traits = traits_def(Pure())


class _V128Unary(FixedInstr):
    """v128 (a) -> v128."""

    OPERAND_TYPES: ClassVar[tuple[Attribute, ...]] = (v128,)
    RESULT_TYPES: ClassVar[tuple[Attribute, ...]] = (v128,)
    in0 = operand_def(v128)
    result = result_def(v128)
    traits = traits_def(Pure())


class _V128Ternary(FixedInstr):
    """v128 (a, b, c) -> v128."""

    OPERAND_TYPES: ClassVar[tuple[Attribute, ...]] = (v128, v128, v128)
    RESULT_TYPES: ClassVar[tuple[Attribute, ...]] = (v128,)
    in0 = operand_def(v128)
    in1 = operand_def(v128)
    in2 = operand_def(v128)
    result = result_def(v128)
    traits = traits_def(Pure())


class _V128Shift(FixedInstr):
    """v128 (a) shifted lane-wise by an i32 amount -> v128."""

    OPERAND_TYPES: ClassVar[tuple[Attribute, ...]] = (v128, i32)
    RESULT_TYPES: ClassVar[tuple[Attribute, ...]] = (v128,)
    in0 = operand_def(v128)
    in1 = operand_def(i32)
    result = result_def(v128)
    traits = traits_def(Pure())


class _V128Test(FixedInstr):
    """v128 (a) -> i32."""

    OPERAND_TYPES: ClassVar[tuple[Attribute, ...]] = (v128,)
    RESULT_TYPES: ClassVar[tuple[Attribute, ...]] = (i32,)
    in0 = operand_def(v128)
    result = result_def(i32)
    traits = traits_def(Pure())


class _F32Splat(FixedInstr):
    """f32 (a) -> v128."""

    OPERAND_TYPES: ClassVar[tuple[Attribute, ...]] = (f32,)
    RESULT_TYPES: ClassVar[tuple[Attribute, ...]] = (v128,)
    in0 = operand_def(f32)
    result = result_def(v128)
    traits = traits_def(Pure())


class _I32Splat(FixedInstr):
    """i32 (a) -> v128."""

    OPERAND_TYPES: ClassVar[tuple[Attribute, ...]] = (i32,)
    RESULT_TYPES: ClassVar[tuple[Attribute, ...]] = (v128,)
    in0 = operand_def(i32)
    result = result_def(v128)
    traits = traits_def(Pure())


class _I32ToF32(FixedInstr):
    """i32 (a) -> f32."""

    OPERAND_TYPES: ClassVar[tuple[Attribute, ...]] = (i32,)
    RESULT_TYPES: ClassVar[tuple[Attribute, ...]] = (f32,)
    in0 = operand_def(i32)
    result = result_def(f32)
    traits = traits_def(Pure())


class _F32ToI32(FixedInstr):
    """f32 (a) -> i32."""

    OPERAND_TYPES: ClassVar[tuple[Attribute, ...]] = (f32,)
    RESULT_TYPES: ClassVar[tuple[Attribute, ...]] = (i32,)
    in0 = operand_def(f32)
    result = result_def(i32)
    traits = traits_def(Pure())


# ---------------------------------------------------------------------- instructions


@irdl_op_definition
class F32AddOp(_F32Binary):
    """f32 a + b."""

    name = "nn_wasm.f32.add"


@irdl_op_definition
class F32x4AddOp(_V128Binary):
    """Lane-wise f32x4 a + b."""

    name = "nn_wasm.f32x4.add"


@irdl_op_definition
class F32SubOp(_F32Binary):
    """f32 a - b."""

    name = "nn_wasm.f32.sub"


@irdl_op_definition
class F32x4SubOp(_V128Binary):
    """Lane-wise f32x4 a - b."""

    name = "nn_wasm.f32x4.sub"


@irdl_op_definition
class F32MulOp(_F32Binary):
    """f32 a * b."""

    name = "nn_wasm.f32.mul"


@irdl_op_definition
class F32x4MulOp(_V128Binary):
    """Lane-wise f32x4 a * b."""

    name = "nn_wasm.f32x4.mul"


@irdl_op_definition
class F32DivOp(_F32Binary):
    """f32 a / b."""

    name = "nn_wasm.f32.div"


@irdl_op_definition
class F32x4DivOp(_V128Binary):
    """Lane-wise f32x4 a / b."""

    name = "nn_wasm.f32x4.div"


@irdl_op_definition
class F32MinOp(_F32Binary):
    """f32 minimum (NaN-propagating)."""

    name = "nn_wasm.f32.min"


@irdl_op_definition
class F32x4MinOp(_V128Binary):
    """Lane-wise f32x4 minimum (NaN-propagating)."""

    name = "nn_wasm.f32x4.min"


@irdl_op_definition
class F32MaxOp(_F32Binary):
    """f32 maximum (NaN-propagating)."""

    name = "nn_wasm.f32.max"


@irdl_op_definition
class F32x4MaxOp(_V128Binary):
    """Lane-wise f32x4 maximum (NaN-propagating)."""

    name = "nn_wasm.f32x4.max"


@irdl_op_definition
class F32CopysignOp(_F32Binary):
    """f32 magnitude of a with the sign of b."""

    name = "nn_wasm.f32.copysign"


@irdl_op_definition
class F32AbsOp(_F32Unary):
    """f32 |a|."""

    name = "nn_wasm.f32.abs"


@irdl_op_definition
class F32x4AbsOp(_V128Unary):
    """Lane-wise f32x4 |a|."""

    name = "nn_wasm.f32x4.abs"


@irdl_op_definition
class F32NegOp(_F32Unary):
    """f32 -a."""

    name = "nn_wasm.f32.neg"


@irdl_op_definition
class F32x4NegOp(_V128Unary):
    """Lane-wise f32x4 -a."""

    name = "nn_wasm.f32x4.neg"


@irdl_op_definition
class F32SqrtOp(_F32Unary):
    """f32 square root."""

    name = "nn_wasm.f32.sqrt"


@irdl_op_definition
class F32x4SqrtOp(_V128Unary):
    """Lane-wise f32x4 square root."""

    name = "nn_wasm.f32x4.sqrt"


@irdl_op_definition
class F32CeilOp(_F32Unary):
    """f32 round up."""

    name = "nn_wasm.f32.ceil"


@irdl_op_definition
class F32x4CeilOp(_V128Unary):
    """Lane-wise f32x4 round up."""

    name = "nn_wasm.f32x4.ceil"


@irdl_op_definition
class F32FloorOp(_F32Unary):
    """f32 round down."""

    name = "nn_wasm.f32.floor"


@irdl_op_definition
class F32x4FloorOp(_V128Unary):
    """Lane-wise f32x4 round down."""

    name = "nn_wasm.f32x4.floor"


@irdl_op_definition
class F32TruncOp(_F32Unary):
    """f32 round toward zero."""

    name = "nn_wasm.f32.trunc"


@irdl_op_definition
class F32x4TruncOp(_V128Unary):
    """Lane-wise f32x4 round toward zero."""

    name = "nn_wasm.f32x4.trunc"


@irdl_op_definition
class F32NearestOp(_F32Unary):
    """f32 round to nearest even."""

    name = "nn_wasm.f32.nearest"


@irdl_op_definition
class F32x4NearestOp(_V128Unary):
    """Lane-wise f32x4 round to nearest even."""

    name = "nn_wasm.f32x4.nearest"


@irdl_op_definition
class F32EqOp(_F32Compare):
    """f32 comparison a == b: i32 1 or 0."""

    name = "nn_wasm.f32.eq"


@irdl_op_definition
class F32x4EqOp(_V128Binary):
    """Lane-wise f32x4 a == b: all-ones or zero lanes."""

    name = "nn_wasm.f32x4.eq"


@irdl_op_definition
class F32NeOp(_F32Compare):
    """f32 comparison a != (true if unordered) b: i32 1 or 0."""

    name = "nn_wasm.f32.ne"


@irdl_op_definition
class F32x4NeOp(_V128Binary):
    """Lane-wise f32x4 a != (true if unordered) b: all-ones or zero lanes."""

    name = "nn_wasm.f32x4.ne"


@irdl_op_definition
class F32LtOp(_F32Compare):
    """f32 comparison a < b: i32 1 or 0."""

    name = "nn_wasm.f32.lt"


@irdl_op_definition
class F32x4LtOp(_V128Binary):
    """Lane-wise f32x4 a < b: all-ones or zero lanes."""

    name = "nn_wasm.f32x4.lt"


@irdl_op_definition
class F32GtOp(_F32Compare):
    """f32 comparison a > b: i32 1 or 0."""

    name = "nn_wasm.f32.gt"


@irdl_op_definition
class F32x4GtOp(_V128Binary):
    """Lane-wise f32x4 a > b: all-ones or zero lanes."""

    name = "nn_wasm.f32x4.gt"


@irdl_op_definition
class F32LeOp(_F32Compare):
    """f32 comparison a <= b: i32 1 or 0."""

    name = "nn_wasm.f32.le"


@irdl_op_definition
class F32x4LeOp(_V128Binary):
    """Lane-wise f32x4 a <= b: all-ones or zero lanes."""

    name = "nn_wasm.f32x4.le"


@irdl_op_definition
class F32GeOp(_F32Compare):
    """f32 comparison a >= b: i32 1 or 0."""

    name = "nn_wasm.f32.ge"


@irdl_op_definition
class F32x4GeOp(_V128Binary):
    """Lane-wise f32x4 a >= b: all-ones or zero lanes."""

    name = "nn_wasm.f32x4.ge"


@irdl_op_definition
class I32AddOp(_I32Binary):
    """i32 a + b (wrapping)."""

    name = "nn_wasm.i32.add"


@irdl_op_definition
class I32SubOp(_I32Binary):
    """i32 a - b (wrapping)."""

    name = "nn_wasm.i32.sub"


@irdl_op_definition
class I32MulOp(_I32Binary):
    """i32 a * b (wrapping)."""

    name = "nn_wasm.i32.mul"


@irdl_op_definition
class I32DivSOp(_I32Division):
    """i32 signed division (traps on 0)."""

    name = "nn_wasm.i32.div_s"


@irdl_op_definition
class I32DivUOp(_I32Division):
    """i32 unsigned division (traps on 0)."""

    name = "nn_wasm.i32.div_u"


@irdl_op_definition
class I32RemSOp(_I32Division):
    """i32 signed remainder."""

    name = "nn_wasm.i32.rem_s"


@irdl_op_definition
class I32RemUOp(_I32Division):
    """i32 unsigned remainder."""

    name = "nn_wasm.i32.rem_u"


@irdl_op_definition
class I32AndOp(_I32Binary):
    """i32 bitwise and."""

    name = "nn_wasm.i32.and"


@irdl_op_definition
class I32OrOp(_I32Binary):
    """i32 bitwise or."""

    name = "nn_wasm.i32.or"


@irdl_op_definition
class I32XorOp(_I32Binary):
    """i32 bitwise xor."""

    name = "nn_wasm.i32.xor"


@irdl_op_definition
class I32ShlOp(_I32Binary):
    """i32 shift left."""

    name = "nn_wasm.i32.shl"


@irdl_op_definition
class I32ShrSOp(_I32Binary):
    """i32 arithmetic shift right."""

    name = "nn_wasm.i32.shr_s"


@irdl_op_definition
class I32ShrUOp(_I32Binary):
    """i32 logical shift right."""

    name = "nn_wasm.i32.shr_u"


@irdl_op_definition
class I32EqOp(_I32Binary):
    """i32 comparison a == b: 1 or 0."""

    name = "nn_wasm.i32.eq"


@irdl_op_definition
class I32NeOp(_I32Binary):
    """i32 comparison a != b: 1 or 0."""

    name = "nn_wasm.i32.ne"


@irdl_op_definition
class I32LtSOp(_I32Binary):
    """i32 comparison a < signed b: 1 or 0."""

    name = "nn_wasm.i32.lt_s"


@irdl_op_definition
class I32LtUOp(_I32Binary):
    """i32 comparison a < unsigned b: 1 or 0."""

    name = "nn_wasm.i32.lt_u"


@irdl_op_definition
class I32GtSOp(_I32Binary):
    """i32 comparison a > signed b: 1 or 0."""

    name = "nn_wasm.i32.gt_s"


@irdl_op_definition
class I32GtUOp(_I32Binary):
    """i32 comparison a > unsigned b: 1 or 0."""

    name = "nn_wasm.i32.gt_u"


@irdl_op_definition
class I32LeSOp(_I32Binary):
    """i32 comparison a <= signed b: 1 or 0."""

    name = "nn_wasm.i32.le_s"


@irdl_op_definition
class I32LeUOp(_I32Binary):
    """i32 comparison a <= unsigned b: 1 or 0."""

    name = "nn_wasm.i32.le_u"


@irdl_op_definition
class I32GeSOp(_I32Binary):
    """i32 comparison a >= signed b: 1 or 0."""

    name = "nn_wasm.i32.ge_s"


@irdl_op_definition
class I32GeUOp(_I32Binary):
    """i32 comparison a >= unsigned b: 1 or 0."""

    name = "nn_wasm.i32.ge_u"


@irdl_op_definition
class I32EqzOp(_I32Unary):
    """1 if a == 0 else 0."""

    name = "nn_wasm.i32.eqz"


@irdl_op_definition
class I32x4AddOp(_V128Binary):
    """Lane-wise i32x4 add."""

    name = "nn_wasm.i32x4.add"


@irdl_op_definition
class I32x4SubOp(_V128Binary):
    """Lane-wise i32x4 sub."""

    name = "nn_wasm.i32x4.sub"


@irdl_op_definition
class I32x4MulOp(_V128Binary):
    """Lane-wise i32x4 mul."""

    name = "nn_wasm.i32x4.mul"


@irdl_op_definition
class I32x4DotI16x8SOp(_V128Binary):
    """Per i32 lane: the sum of the products of its two signed i16 halves (i16x8 lanes 2j
    and 2j+1 of both operands)."""

    name = "nn_wasm.i32x4.dot_i16x8_s"


@irdl_op_definition
class I16x8NarrowI32x4SOp(_V128Binary):
    """The i32 lanes of a then b, each saturated to a signed i16 (8 lanes, a's first)."""

    name = "nn_wasm.i16x8.narrow_i32x4_s"


@irdl_op_definition
class I16x8NarrowI32x4UOp(_V128Binary):
    """The i32 lanes of a then b, each saturated to an unsigned i16 (8 lanes, a's first)."""

    name = "nn_wasm.i16x8.narrow_i32x4_u"


@irdl_op_definition
class I8x16NarrowI16x8UOp(_V128Binary):
    """The i16 lanes of a then b, each saturated to an unsigned i8 (16 lanes, a's first)."""

    name = "nn_wasm.i8x16.narrow_i16x8_u"


@irdl_op_definition
class I32x4RelaxedDotI8x16I7x16AddSOp(_V128Ternary):
    """Per i32 lane: c + the sum of the products of its 4 bytes, a's signed and b's (exact
    where b's bytes are 0..127; else implementation-defined) (relaxed SIMD)."""

    name = "nn_wasm.i32x4.relaxed_dot_i8x16_i7x16_add_s"


@irdl_op_definition
class I16x8ShlOp(_V128Shift):
    """Lane-wise i16x8 shl by a scalar i32 amount."""

    name = "nn_wasm.i16x8.shl"


@irdl_op_definition
class I16x8ShrSOp(_V128Shift):
    """Lane-wise i16x8 shr_s by a scalar i32 amount."""

    name = "nn_wasm.i16x8.shr_s"


@irdl_op_definition
class I16x8ShrUOp(_V128Shift):
    """Lane-wise i16x8 shr_u by a scalar i32 amount."""

    name = "nn_wasm.i16x8.shr_u"


@irdl_op_definition
class I32x4MinSOp(_V128Binary):
    """Lane-wise i32x4 min (signed)."""

    name = "nn_wasm.i32x4.min_s"


@irdl_op_definition
class I32x4MaxSOp(_V128Binary):
    """Lane-wise i32x4 max (signed)."""

    name = "nn_wasm.i32x4.max_s"


@irdl_op_definition
class I32x4EqOp(_V128Binary):
    """Lane-wise i32x4 comparison eq: all-ones or zero lanes."""

    name = "nn_wasm.i32x4.eq"


@irdl_op_definition
class I32x4NeOp(_V128Binary):
    """Lane-wise i32x4 comparison ne: all-ones or zero lanes."""

    name = "nn_wasm.i32x4.ne"


@irdl_op_definition
class I32x4LtSOp(_V128Binary):
    """Lane-wise i32x4 comparison lt_s: all-ones or zero lanes."""

    name = "nn_wasm.i32x4.lt_s"


@irdl_op_definition
class I32x4GtSOp(_V128Binary):
    """Lane-wise i32x4 comparison gt_s: all-ones or zero lanes."""

    name = "nn_wasm.i32x4.gt_s"


@irdl_op_definition
class I32x4LeSOp(_V128Binary):
    """Lane-wise i32x4 comparison le_s: all-ones or zero lanes."""

    name = "nn_wasm.i32x4.le_s"


@irdl_op_definition
class I32x4GeSOp(_V128Binary):
    """Lane-wise i32x4 comparison ge_s: all-ones or zero lanes."""

    name = "nn_wasm.i32x4.ge_s"


@irdl_op_definition
class I32x4ShlOp(_V128Shift):
    """Lane-wise i32x4 shl by a scalar i32 amount."""

    name = "nn_wasm.i32x4.shl"


@irdl_op_definition
class I32x4ShrSOp(_V128Shift):
    """Lane-wise i32x4 shr_s by a scalar i32 amount."""

    name = "nn_wasm.i32x4.shr_s"


@irdl_op_definition
class I32x4ShrUOp(_V128Shift):
    """Lane-wise i32x4 shr_u by a scalar i32 amount."""

    name = "nn_wasm.i32x4.shr_u"


@irdl_op_definition
class V128AndOp(_V128Binary):
    """Bitwise 128-bit and."""

    name = "nn_wasm.v128.and"


@irdl_op_definition
class V128OrOp(_V128Binary):
    """Bitwise 128-bit or."""

    name = "nn_wasm.v128.or"


@irdl_op_definition
class V128XorOp(_V128Binary):
    """Bitwise 128-bit xor."""

    name = "nn_wasm.v128.xor"


@irdl_op_definition
class V128AndnotOp(_V128Binary):
    """Bitwise 128-bit andnot."""

    name = "nn_wasm.v128.andnot"


@irdl_op_definition
class V128NotOp(_V128Unary):
    """Bitwise 128-bit not."""

    name = "nn_wasm.v128.not"


@irdl_op_definition
class V128BitselectOp(_V128Ternary):
    """Bits of a where c is 1, of b where c is 0."""

    name = "nn_wasm.v128.bitselect"


@irdl_op_definition
class V128AnyTrueOp(_V128Test):
    """1 if any bit of a is set."""

    name = "nn_wasm.v128.any_true"


@irdl_op_definition
class F32x4PminOp(_V128Binary):
    """Lane-wise b < a ? b : a."""

    name = "nn_wasm.f32x4.pmin"


@irdl_op_definition
class F32x4PmaxOp(_V128Binary):
    """Lane-wise a < b ? b : a."""

    name = "nn_wasm.f32x4.pmax"


@irdl_op_definition
class F32x4RelaxedMaddOp(_V128Ternary):
    """Lane-wise a * b + c, fused or not (relaxed SIMD)."""

    name = "nn_wasm.f32x4.relaxed_madd"


@irdl_op_definition
class F32x4RelaxedNmaddOp(_V128Ternary):
    """Lane-wise -(a * b) + c, fused or not (relaxed SIMD)."""

    name = "nn_wasm.f32x4.relaxed_nmadd"


@irdl_op_definition
class F32x4SplatOp(_F32Splat):
    """An f32x4 with every lane equal to a."""

    name = "nn_wasm.f32x4.splat"


@irdl_op_definition
class I32x4SplatOp(_I32Splat):
    """An i32x4 with every lane equal to a."""

    name = "nn_wasm.i32x4.splat"


@irdl_op_definition
class F32ConvertI32SOp(_I32ToF32):
    """Signed i32 to the nearest f32."""

    name = "nn_wasm.f32.convert_i32_s"


@irdl_op_definition
class F32ConvertI32UOp(_I32ToF32):
    """Unsigned i32 to the nearest f32."""

    name = "nn_wasm.f32.convert_i32_u"


@irdl_op_definition
class I32TruncSatF32SOp(_F32ToI32):
    """f32 to signed i32 toward zero, saturating, NaN to 0."""

    name = "nn_wasm.i32.trunc_sat_f32_s"


@irdl_op_definition
class I32ReinterpretF32Op(_F32ToI32):
    """The bits of an f32 as an i32."""

    name = "nn_wasm.i32.reinterpret_f32"


@irdl_op_definition
class F32ReinterpretI32Op(_I32ToF32):
    """The bits of an i32 as an f32."""

    name = "nn_wasm.f32.reinterpret_i32"


@irdl_op_definition
class F32x4ConvertI32x4SOp(_V128Unary):
    """Lane-wise signed i32 to f32."""

    name = "nn_wasm.f32x4.convert_i32x4_s"


@irdl_op_definition
class I32x4ExtendLowI16x8SOp(_V128Unary):
    """i16x8 lanes 0..3, sign-extended to i32x4."""

    name = "nn_wasm.i32x4.extend_low_i16x8_s"


@irdl_op_definition
class I32x4ExtendHighI16x8SOp(_V128Unary):
    """i16x8 lanes 4..7, sign-extended to i32x4."""

    name = "nn_wasm.i32x4.extend_high_i16x8_s"


@irdl_op_definition
class I32x4TruncSatF32x4SOp(_V128Unary):
    """Lane-wise f32 to signed i32, saturating."""

    name = "nn_wasm.i32x4.trunc_sat_f32x4_s"


NUMERIC_INSTRUCTIONS: tuple[type[FixedInstr], ...] = (
    F32AddOp, F32x4AddOp, F32SubOp, F32x4SubOp, F32MulOp, F32x4MulOp, F32DivOp, F32x4DivOp,
    F32MinOp, F32x4MinOp, F32MaxOp, F32x4MaxOp, F32CopysignOp, F32AbsOp, F32x4AbsOp, F32NegOp,
    F32x4NegOp, F32SqrtOp, F32x4SqrtOp, F32CeilOp, F32x4CeilOp, F32FloorOp, F32x4FloorOp,
    F32TruncOp, F32x4TruncOp, F32NearestOp, F32x4NearestOp, F32EqOp, F32x4EqOp, F32NeOp, F32x4NeOp,
    F32LtOp, F32x4LtOp, F32GtOp, F32x4GtOp, F32LeOp, F32x4LeOp, F32GeOp, F32x4GeOp, I32AddOp,
    I32SubOp, I32MulOp, I32DivSOp, I32DivUOp, I32RemSOp, I32RemUOp, I32AndOp, I32OrOp, I32XorOp,
    I32ShlOp, I32ShrSOp, I32ShrUOp, I32EqOp, I32NeOp, I32LtSOp, I32LtUOp, I32GtSOp, I32GtUOp,
    I32LeSOp, I32LeUOp, I32GeSOp, I32GeUOp, I32EqzOp, I32x4AddOp, I32x4SubOp, I32x4MulOp, I32x4DotI16x8SOp,
    I16x8NarrowI32x4SOp, I16x8NarrowI32x4UOp, I8x16NarrowI16x8UOp,
    I32x4RelaxedDotI8x16I7x16AddSOp, I16x8ShlOp, I16x8ShrSOp, I16x8ShrUOp,
    I32x4MinSOp, I32x4MaxSOp, I32x4EqOp, I32x4NeOp, I32x4LtSOp, I32x4GtSOp, I32x4LeSOp, I32x4GeSOp,
    I32x4ShlOp, I32x4ShrSOp, I32x4ShrUOp, V128AndOp, V128OrOp, V128XorOp, V128AndnotOp, V128NotOp,
    V128BitselectOp, V128AnyTrueOp, F32x4PminOp, F32x4PmaxOp, F32x4RelaxedMaddOp,
    F32x4RelaxedNmaddOp, F32x4SplatOp, I32x4SplatOp, F32ConvertI32SOp, F32ConvertI32UOp,
    I32TruncSatF32SOp, I32ReinterpretF32Op, F32ReinterpretI32Op, F32x4ConvertI32x4SOp,
    I32x4TruncSatF32x4SOp, I32x4ExtendLowI16x8SOp, I32x4ExtendHighI16x8SOp,
)  # fmt: skip
"""Every fixed-type instruction."""

SIGNATURES: dict[type[WasmInstr], tuple[int, tuple[Attribute, ...]]] = {
    cls: (len(cls.OPERAND_TYPES), cls.RESULT_TYPES) for cls in NUMERIC_INSTRUCTIONS
}
"""Instruction class -> (operand count, result types), for the builders."""
