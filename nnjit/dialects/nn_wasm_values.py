"""nn_wasm's scalar constants, locals, select and drop, and the WAT spellings of value types
and f32 literals (part of the dialect `nnjit.dialects.nn_wasm`, which re-exports every name)."""

from __future__ import annotations

import math
import struct

from xdsl.dialects.builtin import I64, FloatAttr, IntegerAttr, StringAttr
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.irdl import irdl_op_definition, operand_def, prop_def, result_def, traits_def
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import MemoryReadEffect, MemoryWriteEffect, Pure
from xdsl.utils.exceptions import VerifyException

from nnjit.dialects.nn_wasm_numeric import VALUE_TYPES, WasmInstr, f32, i32, v128
from nnjit.dialects.nn_wasm_numeric import print_operands as _print_operands
from nnjit.ir.fastir import fast_init as _fast_init
from nnjit.ir.fastir import i64_attr as _i64
from nnjit.ir.fastir import str_attr as _str


def wat_type(t: Attribute) -> str:
    """The WAT spelling of an nn_wasm value type."""
    if t == i32:
        return "i32"
    if t == f32:
        return "f32"
    if t == v128:
        return "v128"
    raise ValueError(f"{t} is not an nn_wasm value type")


def _check_value_type(op: Operation, t: Attribute, what: str):
    if t not in VALUE_TYPES:
        raise VerifyException(f"{op.name}: {what} has type {t}; expected i32, f32 or v128")


def f32_bits(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


def wat_f32(x: float) -> str:
    """An f32 literal that WAT parses back to exactly the same value."""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    x = struct.unpack("<f", struct.pack("<f", x))[0]
    r = repr(x)
    return r if float(r) == x else float.hex(x)


# --------------------------------------------------------------------- parsing helpers


def _parse_f32(parser: Parser) -> float:
    neg = parser.parse_optional_punctuation("-") is not None
    if parser.parse_optional_keyword("inf"):
        return -math.inf if neg else math.inf
    if parser.parse_optional_keyword("nan"):
        return math.nan
    v = parser.parse_number()
    return -float(v) if neg else float(v)


def _print_f32(printer: Printer, x: float):
    if math.isnan(x):
        printer.print_string("nan")
    elif math.isinf(x):
        printer.print_string("inf" if x > 0 else "-inf")
    else:
        x = struct.unpack("<f", struct.pack("<f", x))[0]
        printer.print_string(repr(x))




@irdl_op_definition
class I32ConstOp(WasmInstr):
    """Pushes the i32 constant `value` (kept in the signed range)."""

    name = "nn_wasm.i32.const"
    value = prop_def(IntegerAttr[I64])
    result = result_def(i32)
    traits = traits_def(Pure())

    def __init__(self, value: int):
        value = ((value + 2**31) % 2**32) - 2**31
        _fast_init(self, properties={"value": _i64(value)}, result_types=[i32])

    @classmethod
    def parse(cls, parser: Parser):
        return cls(parser.parse_integer(allow_boolean=False))

    def print(self, printer: Printer):
        printer.print_string(f" {self.value.value.data}")

    def wat(self, ident):
        return f"i32.const {self.properties['value'].value.data}"


@irdl_op_definition
class F32ConstOp(WasmInstr):
    """Pushes the f32 constant `value`."""

    name = "nn_wasm.f32.const"
    value = prop_def(FloatAttr)
    result = result_def(f32)
    traits = traits_def(Pure())

    def __init__(self, value: float):
        _fast_init(self, properties={"value": FloatAttr(value, f32)}, result_types=[f32])

    @classmethod
    def parse(cls, parser: Parser):
        return cls(_parse_f32(parser))

    def print(self, printer: Printer):
        printer.print_string(" ")
        _print_f32(printer, self.value.value.data)

    def wat(self, ident):
        return f"f32.const {wat_f32(self.properties['value'].value.data)}"




# ----------------------------------------------------------------- locals, select, calls


@irdl_op_definition
class LocalGetOp(WasmInstr):
    """Pushes the value of local (or parameter) `local`."""

    name = "nn_wasm.local.get"
    local = prop_def(StringAttr)
    result = result_def()
    traits = traits_def(MemoryReadEffect())  # (reads the local)

    def __init__(self, local: str, type: Attribute):
        _fast_init(self, properties={"local": _str(local)}, result_types=[type])

    @classmethod
    def parse(cls, parser: Parser):
        name = parser.parse_str_literal()
        parser.parse_punctuation(":")
        return cls(name, parser.parse_type())

    def print(self, printer: Printer):
        printer.print_string(" ")
        printer.print_string_literal(self.local.data)
        printer.print_string(" : ")
        printer.print_attribute(self.result.type)

    def verify_(self):
        _check_value_type(self, self.result.type, "the result")

    def wat(self, ident):
        return f"local.get {ident('local', self.properties['local'].data)}"


class _LocalWrite(WasmInstr):
    traits = traits_def(MemoryWriteEffect())  # (writes the local)

    @classmethod
    def parse(cls, parser: Parser):
        name = parser.parse_str_literal()
        v = parser.parse_unresolved_operand()
        parser.parse_punctuation(":")
        return cls(name, parser.resolve_operand(v, parser.parse_type()))

    def print(self, printer: Printer):
        printer.print_string(" ")
        printer.print_string_literal(self.local.data)  # type: ignore[attr-defined]
        printer.print_string(" ")
        printer.print_operand(self.operands[0])
        printer.print_string(" : ")
        printer.print_attribute(self.operands[0].type)

    def verify_(self):
        _check_value_type(self, self.operands[0].type, "the value")

    def wat(self, ident):
        return f"{self.name[8:]} {ident('local', self.properties['local'].data)}"


@irdl_op_definition
class LocalSetOp(_LocalWrite):
    """Pops a value into local `local`."""

    name = "nn_wasm.local.set"
    local = prop_def(StringAttr)
    value = operand_def()

    def __init__(self, local: str, value: SSAValue | Operation):
        _fast_init(self, properties={"local": _str(local)}, operands=[value])


@irdl_op_definition
class LocalTeeOp(_LocalWrite):
    """Stores a value into local `local` and leaves it on the stack."""

    name = "nn_wasm.local.tee"
    local = prop_def(StringAttr)
    value = operand_def()
    result = result_def()

    def __init__(self, local: str, value: SSAValue | Operation):
        v = SSAValue.get(value)
        _fast_init(self, properties={"local": _str(local)}, operands=[v], result_types=[v.type])

    def verify_(self):
        super().verify_()
        if self.result.type != self.value.type:
            raise VerifyException("nn_wasm.local.tee: result type must equal the value type")


@irdl_op_definition
class SelectOp(WasmInstr):
    """`cond != 0 ? a : b` (both operands evaluated); a and b of one value type."""

    name = "nn_wasm.select"
    a = operand_def()
    b = operand_def()
    cond = operand_def(i32)
    result = result_def()
    traits = traits_def(Pure())

    def __init__(self, a: SSAValue | Operation, b: SSAValue | Operation, cond: SSAValue | Operation):
        t = SSAValue.get(a).type
        _fast_init(self, operands=[a, b, cond], result_types=[t])

    @classmethod
    def parse(cls, parser: Parser):
        a = parser.parse_unresolved_operand()
        parser.parse_punctuation(",")
        b = parser.parse_unresolved_operand()
        parser.parse_punctuation(",")
        c = parser.parse_operand(i32)
        parser.parse_punctuation(":")
        t = parser.parse_type()
        return cls(parser.resolve_operand(a, t), parser.resolve_operand(b, t), c)

    def print(self, printer: Printer):
        _print_operands(printer, self.operands)
        printer.print_string(" : ")
        printer.print_attribute(self.result.type)

    def verify_(self):
        _check_value_type(self, self.a.type, "operand a")
        if self.a.type != self.b.type or self.result.type != self.a.type:
            raise VerifyException("nn_wasm.select: both operands and the result must have one type")


@irdl_op_definition
class DropOp(WasmInstr):
    """Pops and discards a value."""

    name = "nn_wasm.drop"
    value = operand_def()
    # (no memory-effect trait: dce must not remove the pop that empties the stack)

    def __init__(self, value: SSAValue | Operation):
        _fast_init(self, operands=[value])

    @classmethod
    def parse(cls, parser: Parser):
        v = parser.parse_unresolved_operand()
        parser.parse_punctuation(":")
        return cls(parser.resolve_operand(v, parser.parse_type()))

    def print(self, printer: Printer):
        _print_operands(printer, self.operands)
        printer.print_string(" : ")
        printer.print_attribute(self.value.type)


