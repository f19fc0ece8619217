"""nn_wasm: WebAssembly text (WAT) as IR, one op per WAT instruction.

`nn_wasm` (xDSL owns the name `wasm`) models exactly what nnjit's Wasm kernels need: one
`nn_wasm.module` per kernel holding the shared-memory import and `nn_wasm.func`s (the exported
`run` and math helpers). Function bodies are WAT's stack machine written in SSA form:

* every instruction is one op named after its WAT mnemonic (`nn_wasm.f32x4.add` is
  `f32x4.add`); its operands are the values it pops and its results the values it pushes;
* the ops of a block are in WAT order and obey stack discipline: an op's operands are the
  values on top of the stack, in push order, so each value is used exactly once, in the block
  that defines it, and no value is left on the stack at the end of a block (the function
  verifier checks this). Values needed twice go through `local.set`/`local.get`/`local.tee`;
* locals, labels and functions are referred to by name (strings and symbols); the printer maps
  every name through `nnjit.backends.names.NameSupply`.

So printing is one line per op (`nnjit/backends/wat_printer.py`). Value types: `i32`, `f32` and
`!nn_wasm.v128`. Blocks, loops and ifs take and leave nothing on the stack (no block types).

Every op is a named class: the fixed-type numeric instructions (`F32AddOp`, ...) are in
`nnjit.dialects.nn_wasm_numeric`, the rest here. Ops declare their memory effects (numeric
instructions and constants are pure, loads and `local.get` read, stores and `local.set`/`tee`
write, blocks have their bodies' effects), so `dce` works on function bodies. `cse` does not
apply: merging two equal values would use one value twice, which stack discipline forbids.

Syntax: `%r = nn_wasm.<mnemonic> [immediates] [operands] [: types]`, for example
`%a = nn_wasm.local.get "x" : i32`, `%v = nn_wasm.v128.load offset=16 align=4 %a`,
`nn_wasm.f32.store offset=4 %a, %v`, `%e = nn_wasm.f32x4.extract_lane 2 %v`.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from typing import ClassVar

from xdsl.dialects.builtin import (
    I64,
    ArrayAttr,
    DictionaryAttr,
    FloatAttr,
    IntegerAttr,
    StringAttr,
    SymbolRefAttr,
    UnitAttr,
)
from xdsl.dialects.utils import EnumAttribute
from xdsl.ir import (
    Attribute,
    Block,
    Dialect,
    Operation,
    Region,
    SpacedOpaqueSyntaxAttribute,
    SSAValue,
)
from xdsl.irdl import (
    IRDLOperation,
    irdl_attr_definition,
    irdl_op_definition,
    lazy_traits_def,
    operand_def,
    opt_prop_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
    var_result_def,
)
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import (
    HasParent,
    IsolatedFromAbove,
    IsTerminator,
    MemoryReadEffect,
    MemoryWriteEffect,
    NoTerminator,
    Pure,
    RecursiveMemoryEffect,
    SymbolOpInterface,
    SymbolTable,
)
from xdsl.utils.exceptions import VerifyException
from xdsl.utils.str_enum import StrEnum

from nnjit.dialects.nn_wasm_numeric import (
    NUMERIC_INSTRUCTIONS,
    VALUE_TYPES,
    V128Type,
    WasmInstr,
    f32,
    i32,
    v128,
)
from nnjit.dialects.nn_wasm_numeric import SIGNATURES as SIGNATURES  # (for the builders)
from nnjit.dialects.nn_wasm_numeric import parse_operands as _parse_operands
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


def _parse_body(parser: Parser) -> Region:
    """A region; `{ }` gets one empty block (bodies are single blocks)."""
    r = parser.parse_region()
    if not r.blocks:
        r.add_block(Block())
    return r


def _parse_type_list(parser: Parser) -> list[Attribute]:
    if parser.parse_optional_punctuation("(") is not None:
        if parser.parse_optional_punctuation(")") is not None:
            return []
        ts = [parser.parse_type()]
        while parser.parse_optional_punctuation(",") is not None:
            ts.append(parser.parse_type())
        parser.parse_punctuation(")")
        return ts
    return [parser.parse_type()]


# --------------------------------------------------------------------- immediates ops


class _MemArg(WasmInstr):
    """Memory instructions: the address operand plus the static byte `offset` and `align`;
    `WIDTH` is the natural alignment in bytes."""

    WIDTH: ClassVar[int] = 4
    offset = prop_def(IntegerAttr[I64], default_value=IntegerAttr(0, 64))
    align = opt_prop_def(IntegerAttr[I64])

    def _memarg(self) -> str:
        props = self.properties  # (read directly: the printer calls this for every access)
        off = props["offset"].value.data
        align = props.get("align")
        al = align.value.data if align is not None else None
        s = f" offset={off}" if off else ""
        if al is not None and al != self.WIDTH:
            s += f" align={al}"
        return s

    def wat(self, ident: Callable[[str, str], str]) -> str:
        return self.mnemonic() + self._memarg()

    def verify_(self):
        off = self.offset.value.data
        if not 0 <= off < 2**32:
            raise VerifyException(f"{self.name}: offset {off} is not a u32")
        if self.align is not None:
            al = self.align.value.data
            if al not in (1, 2, 4, 8, 16) or al > self.WIDTH:
                raise VerifyException(
                    f"{self.name}: align {al} must be a power of two <= {self.WIDTH}"
                )

    @staticmethod
    def _parse_memarg(parser: Parser) -> tuple[int, int | None]:
        off, al = 0, None
        if parser.parse_optional_keyword("offset"):
            parser.parse_punctuation("=")
            off = parser.parse_integer(allow_boolean=False, allow_negative=False)
        if parser.parse_optional_keyword("align"):
            parser.parse_punctuation("=")
            al = parser.parse_integer(allow_boolean=False, allow_negative=False)
        return off, al

    def _print_memarg(self, printer: Printer):
        printer.print_string(self._memarg().replace(f" align={self.WIDTH}", ""))
        if self.align is not None and self.align.value.data == self.WIDTH:
            printer.print_string(f" align={self.WIDTH}")

    def print(self, printer: Printer):
        self._print_memarg(printer)
        _print_operands(printer, self.operands)


def _memprops(offset: int, align: int | None) -> dict[str, Attribute]:
    props: dict[str, Attribute] = {"offset": _i64(offset)}
    if align is not None:
        props["align"] = _i64(align)
    return props


class _Load(_MemArg):
    """Pops an address and pushes the value at memory[addr + offset]."""

    RESULT_TYPE: ClassVar[Attribute] = i32
    addr = operand_def(i32)
    traits = traits_def(MemoryReadEffect())

    def __init__(self, addr: SSAValue | Operation, offset: int = 0, align: int | None = None):
        _fast_init(
            self, operands=[addr], result_types=[self.RESULT_TYPE],
            properties=_memprops(offset, align),
        )  # fmt: skip

    @classmethod
    def parse(cls, parser: Parser):
        off, al = _MemArg._parse_memarg(parser)
        return cls(parser.parse_operand(i32), off, al)


class _Store(_MemArg):
    """Pops an address and a value and writes the value to memory[addr + offset]. (Each
    store declares both operands: IRDL orders a subclass's fields before its base's.)"""

    VALUE_TYPE: ClassVar[Attribute] = i32
    traits = traits_def(MemoryWriteEffect())

    def __init__(
        self,
        addr: SSAValue | Operation,
        value: SSAValue | Operation,
        offset: int = 0,
        align: int | None = None,
    ):
        _fast_init(self, operands=[addr, value], properties=_memprops(offset, align))

    @classmethod
    def parse(cls, parser: Parser):
        off, al = _MemArg._parse_memarg(parser)
        a, v = _parse_operands(parser, (i32, cls.VALUE_TYPE))
        return cls(a, v, off, al)


@irdl_op_definition
class I32LoadOp(_Load):
    """Loads an i32 from memory[addr + offset]."""

    name = "nn_wasm.i32.load"
    result = result_def(i32)


@irdl_op_definition
class F32LoadOp(_Load):
    """Loads an f32 from memory[addr + offset]."""

    name = "nn_wasm.f32.load"
    RESULT_TYPE: ClassVar[Attribute] = f32
    result = result_def(f32)


@irdl_op_definition
class V128LoadOp(_Load):
    """Loads 16 bytes (4 lanes) from memory[addr + offset]."""

    name = "nn_wasm.v128.load"
    WIDTH: ClassVar[int] = 16
    RESULT_TYPE: ClassVar[Attribute] = v128
    result = result_def(v128)


@irdl_op_definition
class V128Load32SplatOp(_Load):
    """Loads one 32-bit value and splats it to 4 lanes."""

    name = "nn_wasm.v128.load32_splat"
    RESULT_TYPE: ClassVar[Attribute] = v128
    result = result_def(v128)


@irdl_op_definition
class I32StoreOp(_Store):
    """Stores an i32 to memory[addr + offset]."""

    name = "nn_wasm.i32.store"
    addr = operand_def(i32)
    value = operand_def(i32)


@irdl_op_definition
class F32StoreOp(_Store):
    """Stores an f32 to memory[addr + offset]."""

    name = "nn_wasm.f32.store"
    VALUE_TYPE: ClassVar[Attribute] = f32
    addr = operand_def(i32)
    value = operand_def(f32)


@irdl_op_definition
class V128StoreOp(_Store):
    """Stores 16 bytes to memory[addr + offset]."""

    name = "nn_wasm.v128.store"
    WIDTH: ClassVar[int] = 16
    VALUE_TYPE: ClassVar[Attribute] = v128
    addr = operand_def(i32)
    value = operand_def(v128)


class _LaneOp(WasmInstr):
    """f32x4 / i32x4 lane access: `lane` (0..3) is an immediate; `SCALAR` the lane type."""

    SCALAR: ClassVar[Attribute] = f32
    lane = prop_def(IntegerAttr[I64])
    traits = traits_def(Pure())

    def print(self, printer: Printer):
        printer.print_string(f" {self.lane.value.data}")
        _print_operands(printer, self.operands)

    def wat(self, ident: Callable[[str, str], str]) -> str:
        return f"{self.mnemonic()} {self.lane.value.data}"

    def verify_(self):
        if not 0 <= self.lane.value.data < 4:
            raise VerifyException(f"{self.name}: lane {self.lane.value.data} is not in 0..3")


class _ExtractLane(_LaneOp):
    vec = operand_def(v128)

    def __init__(self, vec: SSAValue | Operation, lane: int):
        _fast_init(
            self, operands=[vec], result_types=[self.SCALAR], properties={"lane": _i64(lane)}
        )

    @classmethod
    def parse(cls, parser: Parser):
        lane = parser.parse_integer(allow_boolean=False, allow_negative=False)
        return cls(parser.parse_operand(v128), lane)


class _ReplaceLane(_LaneOp):
    """(Each one declares its operands `vec` and `value`: IRDL orders a subclass's fields
    before its base's.)"""

    result = result_def(v128)

    def __init__(self, vec: SSAValue | Operation, value: SSAValue | Operation, lane: int):
        _fast_init(
            self, operands=[vec, value], result_types=[v128],
            properties={"lane": _i64(lane)},
        )  # fmt: skip

    @classmethod
    def parse(cls, parser: Parser):
        lane = parser.parse_integer(allow_boolean=False, allow_negative=False)
        a, b = _parse_operands(parser, (v128, cls.SCALAR))
        return cls(a, b, lane)


@irdl_op_definition
class F32x4ExtractLaneOp(_ExtractLane):
    """Lane `lane` of an f32x4 as a scalar."""

    name = "nn_wasm.f32x4.extract_lane"
    result = result_def(f32)


@irdl_op_definition
class I32x4ExtractLaneOp(_ExtractLane):
    """Lane `lane` of an i32x4 as a scalar."""

    name = "nn_wasm.i32x4.extract_lane"
    SCALAR: ClassVar[Attribute] = i32
    result = result_def(i32)


@irdl_op_definition
class F32x4ReplaceLaneOp(_ReplaceLane):
    """The f32x4 with lane `lane` replaced by the scalar operand."""

    name = "nn_wasm.f32x4.replace_lane"
    vec = operand_def(v128)
    value = operand_def(f32)


@irdl_op_definition
class I32x4ReplaceLaneOp(_ReplaceLane):
    """The i32x4 with lane `lane` replaced by the scalar operand."""

    name = "nn_wasm.i32x4.replace_lane"
    SCALAR: ClassVar[Attribute] = i32
    vec = operand_def(v128)
    value = operand_def(i32)


class LaneShape(StrEnum):
    """How a v128 constant's lanes are written."""

    F32X4 = "f32x4"
    I32X4 = "i32x4"


@irdl_attr_definition
class LaneShapeAttr(EnumAttribute[LaneShape], SpacedOpaqueSyntaxAttribute):
    """`#nn_wasm<shape f32x4>` (nn_wasm.v128.const prints it bare)."""

    name = "nn_wasm.shape"


SHAPE_ATTRS = {m.value: LaneShapeAttr(m) for m in LaneShape}


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


@irdl_op_definition
class V128ConstOp(WasmInstr):
    """Pushes a v128 constant given as 4 lanes of `shape` ("f32x4" or "i32x4")."""

    name = "nn_wasm.v128.const"
    shape = prop_def(LaneShapeAttr)
    lanes = prop_def(ArrayAttr)
    result = result_def(v128)
    traits = traits_def(Pure())

    def __init__(self, shape: str, lanes: Sequence[float | int]):
        if shape == "f32x4":
            attrs: list[Attribute] = [FloatAttr(float(x), f32) for x in lanes]
        else:
            attrs = [IntegerAttr(((int(x) + 2**31) % 2**32) - 2**31, 64) for x in lanes]
        _fast_init(self,
            properties={"shape": SHAPE_ATTRS[shape], "lanes": ArrayAttr(attrs)},
            result_types=[v128],
        )

    def lane_values(self) -> list[float | int]:
        return [a.value.data for a in self.lanes.data]  # type: ignore[attr-defined]

    def verify_(self):
        if len(self.lanes.data) != 4:
            raise VerifyException(f"nn_wasm.v128.const: {len(self.lanes.data)} lanes; expected 4")
        want = FloatAttr if self.shape.data == "f32x4" else IntegerAttr
        if not all(isinstance(a, want) for a in self.lanes.data):
            raise VerifyException(f"nn_wasm.v128.const: lanes do not match shape {self.shape.data}")

    @classmethod
    def parse(cls, parser: Parser):
        shape = parser.parse_str_enum(LaneShape)
        if shape == "f32x4":
            lanes: list = parser.parse_comma_separated_list(
                Parser.Delimiter.SQUARE, lambda: _parse_f32(parser)
            )
        else:
            lanes = parser.parse_comma_separated_list(
                Parser.Delimiter.SQUARE, lambda: parser.parse_integer(allow_boolean=False)
            )
        return cls(shape, lanes)

    def print(self, printer: Printer):
        printer.print_string(f" {self.shape.data} [")
        for k, x in enumerate(self.lane_values()):
            if k:
                printer.print_string(", ")
            if self.shape.data == "f32x4":
                _print_f32(printer, float(x))
            else:
                printer.print_string(str(x))
        printer.print_string("]")

    def wat(self, ident):
        if self.shape.data == "f32x4":
            lanes = " ".join(wat_f32(float(x)) for x in self.lane_values())
        else:
            lanes = " ".join(str(x) for x in self.lane_values())
        return f"v128.const {self.shape.data} {lanes}"


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


@irdl_op_definition
class CallOp(WasmInstr):
    """Calls function `callee` of the enclosing module with the operands as arguments."""

    name = "nn_wasm.call"
    callee = prop_def(SymbolRefAttr)
    args = var_operand_def()
    res = var_result_def()
    traits = traits_def(MemoryReadEffect(), MemoryWriteEffect())

    def __init__(
        self, callee: str, args: Sequence[SSAValue | Operation], result_types: Sequence[Attribute]
    ):
        _fast_init(self,
            operands=[args], result_types=[result_types],
            properties={"callee": SymbolRefAttr(callee)},
        )  # fmt: skip

    @classmethod
    def parse(cls, parser: Parser):
        callee = parser.parse_symbol_name().data
        unresolved = parser.parse_comma_separated_list(
            Parser.Delimiter.PAREN, parser.parse_unresolved_operand
        )
        parser.parse_punctuation(":")
        ins = _parse_type_list(parser)
        parser.parse_punctuation("->")
        outs = _parse_type_list(parser)
        if len(ins) != len(unresolved):
            parser.raise_error(f"{len(unresolved)} arguments but {len(ins)} types")
        args = [parser.resolve_operand(u, t) for u, t in zip(unresolved, ins)]
        return cls(callee, args, outs)

    def print(self, printer: Printer):
        printer.print_string(f" @{self.callee.root_reference.data}(")
        printer.print_list(self.args, printer.print_operand)
        printer.print_string(") : (")
        printer.print_list([a.type for a in self.args], printer.print_attribute)
        printer.print_string(") -> (")
        printer.print_list([r.type for r in self.res], printer.print_attribute)
        printer.print_string(")")

    def wat(self, ident):
        return f"call {ident('func', self.callee.root_reference.data)}"

    def verify_(self):
        module = self.parent_op()
        while module is not None and not isinstance(module, ModuleOp):
            module = module.parent_op()
        if module is None:
            return
        f = module.lookup_func(self.callee.root_reference.data)
        if f is None:
            raise VerifyException(
                f"nn_wasm.call: no function @{self.callee.root_reference.data} in the module"
            )
        want_in = list(f.param_types.data)
        want_out = list(f.returns.data)
        if [a.type for a in self.args] != want_in or [r.type for r in self.res] != want_out:
            raise VerifyException(
                f"nn_wasm.call: the types do not match the signature of "
                f"@{self.callee.root_reference.data}"
            )


@irdl_op_definition
class ReturnOp(WasmInstr):
    """Returns from the function with the operands as its results."""

    name = "nn_wasm.return"
    values = var_operand_def()
    traits = traits_def(IsTerminator())

    def __init__(self, values: Sequence[SSAValue | Operation] = ()):
        _fast_init(self, operands=[values])

    @classmethod
    def parse(cls, parser: Parser):
        unresolved = []
        if (u := parser.parse_optional_unresolved_operand()) is not None:
            unresolved.append(u)
            while parser.parse_optional_punctuation(",") is not None:
                unresolved.append(parser.parse_unresolved_operand())
        if not unresolved:
            return cls()
        parser.parse_punctuation(":")
        ts = _parse_type_list(parser)
        return cls([parser.resolve_operand(u, t) for u, t in zip(unresolved, ts)])

    def print(self, printer: Printer):
        if self.values:
            _print_operands(printer, self.values)
            printer.print_string(" : ")
            printer.print_list([v.type for v in self.values], printer.print_attribute)

    def verify_(self):
        f = _enclosing_func(self)
        if f is not None and [v.type for v in self.values] != list(f.returns.data):
            raise VerifyException(
                f"nn_wasm.return: returns {[str(v.type) for v in self.values]} but the function "
                f"results are {[str(t) for t in f.returns.data]}"
            )


# ------------------------------------------------------------------------- control flow


def _enclosing_func(op: Operation) -> FuncOp | None:
    p = op.parent_op()
    while p is not None and not isinstance(p, FuncOp):
        p = p.parent_op()
    return p


class _Structured(WasmInstr):
    """block / loop / if: a label and a body that starts and ends with an empty stack; the
    body's effects are the op's."""

    label = prop_def(StringAttr)
    body = region_def("single_block")
    traits = traits_def(NoTerminator(), RecursiveMemoryEffect())

    def __init__(self, label: str, body: Region | None = None):
        _fast_init(
            self, properties={"label": _str(label)},
            regions=[body if body is not None else Region(Block())],
        )  # fmt: skip

    @classmethod
    def parse(cls, parser: Parser):
        label = parser.parse_str_literal()
        return cls(label, _parse_body(parser))

    def print(self, printer: Printer):
        printer.print_string(" ")
        printer.print_string_literal(self.label.data)
        _print_operands(printer, self.operands)
        printer.print_string(" ")
        printer.print_region(self.body, print_entry_block_args=False)

    def wat(self, ident: Callable[[str, str], str]) -> str:
        return f"{self.mnemonic()} {ident('label', self.label.data)}"


@irdl_op_definition
class BlockOp(_Structured):
    """A block; `br label` inside jumps to its end."""

    name = "nn_wasm.block"


@irdl_op_definition
class LoopOp(_Structured):
    """A loop; `br label` inside jumps back to its start."""

    name = "nn_wasm.loop"


@irdl_op_definition
class IfOp(_Structured):
    """Runs its body when the popped i32 is non-zero."""

    name = "nn_wasm.if"
    cond = operand_def(i32)

    def __init__(self, label: str, cond: SSAValue | Operation, body: Region | None = None):
        _fast_init(
            self, operands=[cond], properties={"label": _str(label)},
            regions=[body if body is not None else Region(Block())],
        )  # fmt: skip

    @classmethod
    def parse(cls, parser: Parser):
        label = parser.parse_str_literal()
        cond = parser.parse_operand(i32)
        return cls(label, cond, _parse_body(parser))


class _Branch(WasmInstr):
    """(No memory-effect trait: a branch is control flow, which dce must keep.)"""

    def wat(self, ident):
        return f"{self.mnemonic()} {ident('label', self.label.data)}"  # type: ignore[attr-defined]

    def verify_(self):
        label = self.label.data  # type: ignore[attr-defined]
        p = self.parent_op()
        while p is not None and not isinstance(p, FuncOp):
            if isinstance(p, _Structured) and p.label.data == label:  # type: ignore[attr-defined]
                return
            p = p.parent_op()
        raise VerifyException(f"{self.name}: no enclosing block, loop or if is labelled '{label}'")


@irdl_op_definition
class BrOp(_Branch):
    """Branches to `label`: the end of a block/if, the start of a loop."""

    name = "nn_wasm.br"
    label = prop_def(StringAttr)

    def __init__(self, label: str):
        _fast_init(self, properties={"label": _str(label)})

    @classmethod
    def parse(cls, parser: Parser):
        return cls(parser.parse_str_literal())

    def print(self, printer: Printer):
        printer.print_string(" ")
        printer.print_string_literal(self.label.data)


@irdl_op_definition
class BrIfOp(_Branch):
    """Pops an i32 and branches to `label` when it is non-zero."""

    name = "nn_wasm.br_if"
    label = prop_def(StringAttr)
    cond = operand_def(i32)

    def __init__(self, label: str, cond: SSAValue | Operation):
        _fast_init(self, properties={"label": _str(label)}, operands=[cond])

    @classmethod
    def parse(cls, parser: Parser):
        label = parser.parse_str_literal()
        return cls(label, parser.parse_operand(i32))

    def print(self, printer: Printer):
        printer.print_string(" ")
        printer.print_string_literal(self.label.data)
        _print_operands(printer, self.operands)


# ------------------------------------------------------------------ functions, modules


def _check_stack(block: Block, where: str):
    """Stack discipline: each op pops exactly its operands from the top of the stack."""
    stack: list[SSAValue] = []
    for op in block.ops:
        n = len(op.operands)
        if n:
            top = stack[-n:] if n <= len(stack) else None
            if top is None or any(a is not b for a, b in zip(top, op.operands)):
                raise VerifyException(
                    f"{where}: {op.name} does not take its operands from the top of the stack "
                    "(each nn_wasm value must be used once, by a later op of the same block, "
                    "in push order)"
                )
            del stack[-n:]
        stack.extend(op.results)
        for r in op.regions:
            for b in r.blocks:
                _check_stack(b, where)
    if stack:
        raise VerifyException(
            f"{where}: {len(stack)} value(s) left on the stack at the end of a block "
            f"(first defined by {stack[0].owner.name})"
        )


@irdl_op_definition
class FuncOp(IRDLOperation):
    """A Wasm function: named params and locals, results, an optional export name.

    The body is a stack-machine block (see the module docstring); it ends with an
    `nn_wasm.return` when the function has results.
    """

    name = "nn_wasm.func"
    sym_name = prop_def(StringAttr)
    export_name = opt_prop_def(StringAttr)
    param_names = prop_def(ArrayAttr[StringAttr])
    param_types = prop_def(ArrayAttr)
    returns = prop_def(ArrayAttr)
    local_names = prop_def(ArrayAttr[StringAttr])
    local_types = prop_def(ArrayAttr)
    body = region_def("single_block")
    traits = lazy_traits_def(
        lambda: (HasParent(ModuleOp), SymbolOpInterface(), IsolatedFromAbove(), NoTerminator())
    )

    def __init__(
        self,
        name: str,
        params: Sequence[tuple[str, Attribute]],
        results: Sequence[Attribute] = (),
        locals_: Sequence[tuple[str, Attribute]] = (),
        export: str | None = None,
        body: Region | None = None,
    ):
        props: dict[str, Attribute] = {
            "sym_name": _str(name),
            "param_names": ArrayAttr([_str(n) for n, _ in params]),
            "param_types": ArrayAttr([t for _, t in params]),
            "returns": ArrayAttr(list(results)),
            "local_names": ArrayAttr([_str(n) for n, _ in locals_]),
            "local_types": ArrayAttr([t for _, t in locals_]),
        }
        if export is not None:
            props["export_name"] = StringAttr(export)
        _fast_init(self, properties=props, regions=[body if body is not None else Region(Block())])

    def params(self) -> list[tuple[str, Attribute]]:
        return [(n.data, t) for n, t in zip(self.param_names.data, self.param_types.data)]

    def locals(self) -> list[tuple[str, Attribute]]:
        return [(n.data, t) for n, t in zip(self.local_names.data, self.local_types.data)]

    def set_locals(self, locals_: Sequence[tuple[str, Attribute]]):
        self.local_names = ArrayAttr([StringAttr(n) for n, _ in locals_])
        self.local_types = ArrayAttr([t for _, t in locals_])

    def verify_(self):
        where = f"nn_wasm.func @{self.sym_name.data}"
        if len(self.param_names.data) != len(self.param_types.data):
            raise VerifyException(f"{where}: param names and types differ in number")
        if len(self.local_names.data) != len(self.local_types.data):
            raise VerifyException(f"{where}: local names and types differ in number")
        types: dict[str, Attribute] = {}
        for n, t in self.params() + self.locals():
            if n in types:
                raise VerifyException(f"{where}: local '{n}' is declared twice")
            if t not in VALUE_TYPES:
                raise VerifyException(f"{where}: local '{n}' has type {t}; expected i32, f32 or v128")
            types[n] = t
        for t in self.returns.data:
            if t not in VALUE_TYPES:
                raise VerifyException(f"{where}: result type {t} is not i32, f32 or v128")
        for op in self.body.walk():
            if isinstance(op, (LocalGetOp, LocalSetOp, LocalTeeOp)):
                n = op.local.data
                t = op.result.type if isinstance(op, LocalGetOp) else op.value.type
                if n not in types:
                    raise VerifyException(f"{where}: {op.name} of undeclared local '{n}'")
                if types[n] != t:
                    raise VerifyException(
                        f"{where}: {op.name} '{n}' uses type {t} but the local is {types[n]}"
                    )
        _check_stack(self.body.block, where)
        if self.returns.data and not isinstance(self.body.block.last_op, ReturnOp):
            raise VerifyException(f"{where}: a function with results must end with nn_wasm.return")

    def print(self, printer: Printer):
        printer.print_string(f" @{self.sym_name.data}")
        if self.export_name is not None:
            printer.print_string(" export ")
            printer.print_string_literal(self.export_name.data)
            printer.print_string(" ")

        def pl(pairs):
            printer.print_string("(")
            for k, (n, t) in enumerate(pairs):
                if k:
                    printer.print_string(", ")
                printer.print_string_literal(n)
                printer.print_string(": ")
                printer.print_attribute(t)
            printer.print_string(")")

        pl(self.params())
        if self.returns.data:
            printer.print_string(" -> (")
            printer.print_list(self.returns.data, printer.print_attribute)
            printer.print_string(")")
        if self.local_names.data:
            printer.print_string(" locals ")
            pl(self.locals())
        printer.print_string(" ")
        printer.print_region(self.body, print_entry_block_args=False)

    @classmethod
    def parse(cls, parser: Parser) -> FuncOp:
        name = parser.parse_symbol_name().data
        export = None
        if parser.parse_optional_keyword("export"):
            export = parser.parse_str_literal()

        def pair():
            n = parser.parse_str_literal()
            parser.parse_punctuation(":")
            return n, parser.parse_type()

        params = parser.parse_comma_separated_list(Parser.Delimiter.PAREN, pair)
        results: list[Attribute] = []
        if parser.parse_optional_punctuation("->") is not None:
            results = _parse_type_list(parser)
        locals_: list = []
        if parser.parse_optional_keyword("locals"):
            locals_ = parser.parse_comma_separated_list(Parser.Delimiter.PAREN, pair)
        body = _parse_body(parser)
        return cls(name, params, results, locals_, export, body)


@irdl_op_definition
class ImportMemoryOp(IRDLOperation):
    """Imports linear memory `module`.`field` with `min`/`max` pages, shared when `shared`."""

    name = "nn_wasm.import_memory"
    module = prop_def(StringAttr)
    field = prop_def(StringAttr)
    min_pages = prop_def(IntegerAttr[I64])
    max_pages = prop_def(IntegerAttr[I64])
    shared = opt_prop_def(UnitAttr)
    # (no memory-effect trait: it declares the module's memory, which dce must keep)
    traits = lazy_traits_def(lambda: (HasParent(ModuleOp),))

    def __init__(self, module: str = "env", field: str = "memory", min_pages: int = 1,
                 max_pages: int = 65536, shared: bool = True):  # fmt: skip
        props: dict[str, Attribute] = {
            "module": _str(module), "field": _str(field),
            "min_pages": _i64(min_pages), "max_pages": _i64(max_pages),
        }  # fmt: skip
        if shared:
            props["shared"] = UnitAttr()
        _fast_init(self, properties=props)

    def verify_(self):
        lo, hi = self.min_pages.value.data, self.max_pages.value.data
        if not 0 <= lo <= hi <= 65536:
            raise VerifyException(
                f"nn_wasm.import_memory: pages must satisfy 0 <= min ({lo}) <= max ({hi}) <= 65536"
            )

    def wat(self) -> str:
        sh = " shared" if self.shared is not None else ""
        return (
            f'(import "{self.module.data}" "{self.field.data}" '
            f"(memory {self.min_pages.value.data} {self.max_pages.value.data}{sh}))"
        )

    def print(self, printer: Printer):
        printer.print_string(" ")
        printer.print_string_literal(self.module.data)
        printer.print_string(" ")
        printer.print_string_literal(self.field.data)
        printer.print_string(f" min {self.min_pages.value.data} max {self.max_pages.value.data}")
        if self.shared is not None:
            printer.print_string(" shared")

    @classmethod
    def parse(cls, parser: Parser):
        module = parser.parse_str_literal()
        field = parser.parse_str_literal()
        parser.parse_keyword("min")
        lo = parser.parse_integer(allow_boolean=False, allow_negative=False)
        parser.parse_keyword("max")
        hi = parser.parse_integer(allow_boolean=False, allow_negative=False)
        shared = parser.parse_optional_keyword("shared") is not None
        return cls(module, field, lo, hi, shared)


MANIFEST_KEYS = ("kind", "schedule", "params", "thread_chunks", "features")


@irdl_op_definition
class ModuleOp(IRDLOperation):
    """One kernel as a Wasm module (symbol = kernel name): a memory import and functions.

    The properties carry the kernel's manifest: `kind`, `schedule`, `params` (one dictionary
    per kernel argument: index, access, dtype, shape, bytes), `thread_chunks` (iterations of
    the thread loop; 1 without one) and `features` ("simd128", "relaxed-simd", "threads").
    """

    name = "nn_wasm.module"
    sym_name = prop_def(StringAttr)
    kind = prop_def(StringAttr)
    schedule = prop_def(DictionaryAttr, default_value=DictionaryAttr({}))
    params = prop_def(ArrayAttr[DictionaryAttr])
    thread_chunks = prop_def(IntegerAttr[I64])
    features = prop_def(ArrayAttr[StringAttr])
    body = region_def("single_block")
    traits = traits_def(SymbolOpInterface(), SymbolTable(), IsolatedFromAbove(), NoTerminator())

    def __init__(
        self,
        name: str,
        kind: str,
        params: Sequence[DictionaryAttr],
        thread_chunks: int = 1,
        features: Sequence[str] = ("simd128", "threads"),
        schedule: DictionaryAttr | None = None,
        body: Region | None = None,
    ):
        _fast_init(self,
            properties={
                "sym_name": StringAttr(name),
                "kind": StringAttr(kind),
                "schedule": schedule if schedule is not None else DictionaryAttr({}),
                "params": ArrayAttr(list(params)),
                "thread_chunks": _i64(thread_chunks),
                "features": ArrayAttr([_str(f) for f in features]),
            },
            regions=[body if body is not None else Region(Block())],
        )

    def funcs(self) -> list[FuncOp]:
        return [o for o in self.body.block.ops if isinstance(o, FuncOp)]

    def lookup_func(self, name: str) -> FuncOp | None:
        for f in self.funcs():
            if f.sym_name.data == name:
                return f
        return None

    def verify_(self):
        where = f"nn_wasm.module @{self.sym_name.data}"
        for op in self.body.block.ops:
            if not isinstance(op, (FuncOp, ImportMemoryOp)):
                raise VerifyException(f"{where}: may only hold nn_wasm.import_memory and nn_wasm.func, not {op.name}")
        mems = [o for o in self.body.block.ops if isinstance(o, ImportMemoryOp)]
        if len(mems) > 1:
            raise VerifyException(f"{where}: at most one memory import")
        exports = [f.export_name.data for f in self.funcs() if f.export_name is not None]
        if len(exports) != len(set(exports)):
            raise VerifyException(f"{where}: two functions have the same export name")
        if self.thread_chunks.value.data < 1:
            raise VerifyException(f"{where}: thread_chunks must be >= 1")
        for f in self.features.data:
            if f.data not in ("simd128", "relaxed-simd", "threads"):
                raise VerifyException(f"{where}: unknown feature '{f.data}'")
        for k, p in enumerate(self.params.data):
            for key in ("index", "access", "dtype", "shape", "bytes"):
                if key not in p.data:
                    raise VerifyException(f"{where}: param {k} lacks '{key}'")

    def print(self, printer: Printer):
        printer.print_string(f" @{self.sym_name.data} manifest ")
        printer.print_attr_dict({k: getattr(self, k) for k in MANIFEST_KEYS})
        printer.print_string(" ")
        printer.print_region(self.body, print_entry_block_args=False)

    @classmethod
    def parse(cls, parser: Parser) -> ModuleOp:
        name = parser.parse_symbol_name().data
        parser.parse_keyword("manifest")
        d = parser.parse_optional_attr_dict()
        missing = [k for k in MANIFEST_KEYS if k != "schedule" and k not in d]
        if missing:
            parser.raise_error(f"nn_wasm.module manifest lacks {', '.join(missing)}")
        body = _parse_body(parser)
        op = cls(name, "x", [], 1, (), None, body)
        for k in MANIFEST_KEYS:
            if k in d:
                op.properties[k] = d[k]
        return op


INSTRUCTIONS: dict[str, type[WasmInstr]] = {
    cls.name[8:]: cls
    for cls in (
        *NUMERIC_INSTRUCTIONS,
        I32LoadOp, F32LoadOp, V128LoadOp, V128Load32SplatOp, I32StoreOp, F32StoreOp,
        V128StoreOp, F32x4ExtractLaneOp, I32x4ExtractLaneOp, F32x4ReplaceLaneOp,
        I32x4ReplaceLaneOp, I32ConstOp, F32ConstOp, V128ConstOp, LocalGetOp, LocalSetOp,
        LocalTeeOp, SelectOp, DropOp, CallOp, ReturnOp, BlockOp, LoopOp, IfOp, BrOp, BrIfOp,
    )
}  # fmt: skip
"""WAT mnemonic -> op class, for every instruction (builders use it)."""

NNWasm = Dialect(
    "nn_wasm",
    [
        ModuleOp, ImportMemoryOp, FuncOp, *INSTRUCTIONS.values(),
    ],
    [V128Type, LaneShapeAttr],
)
