"""nn_wasm's memory instructions: loads and stores with their memarg immediates (`offset`,
`align`) (part of the dialect `nnjit.dialects.nn_wasm`, which re-exports every name)."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from xdsl.dialects.builtin import I64, IntegerAttr
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.irdl import (
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    prop_def,
    result_def,
    traits_def,
)
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import MemoryReadEffect, MemoryWriteEffect
from xdsl.utils.exceptions import VerifyException

from nnjit.dialects.nn_wasm_numeric import WasmInstr, f32, i32, v128
from nnjit.dialects.nn_wasm_numeric import parse_operands as _parse_operands
from nnjit.dialects.nn_wasm_numeric import print_operands as _print_operands
from nnjit.ir.fastir import fast_init as _fast_init
from nnjit.ir.fastir import i64_attr as _i64


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
class V128Load64SplatOp(_Load):
    """Loads one 64-bit value and splats it to 2 lanes (i32 lanes: a, b, a, b)."""

    name = "nn_wasm.v128.load64_splat"
    WIDTH: ClassVar[int] = 8
    RESULT_TYPE: ClassVar[Attribute] = v128
    result = result_def(v128)


@irdl_op_definition
class V128Load8x8SOp(_Load):
    """Loads 8 bytes as 8 signed i8, each sign-extended to an i16 lane."""

    name = "nn_wasm.v128.load8x8_s"
    WIDTH: ClassVar[int] = 8
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

