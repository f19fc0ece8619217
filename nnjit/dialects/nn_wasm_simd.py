"""nn_wasm's v128 lane instructions (extract_lane / replace_lane) and v128 constants (part of
the dialect `nnjit.dialects.nn_wasm`, which re-exports every name)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from xdsl.dialects.builtin import I64, ArrayAttr, FloatAttr, IntegerAttr
from xdsl.dialects.utils import EnumAttribute
from xdsl.ir import Attribute, Operation, SpacedOpaqueSyntaxAttribute, SSAValue
from xdsl.irdl import (
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    prop_def,
    result_def,
    traits_def,
)
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException
from xdsl.utils.str_enum import StrEnum

from nnjit.dialects.nn_wasm_numeric import WasmInstr, f32, i32, v128
from nnjit.dialects.nn_wasm_numeric import parse_operands as _parse_operands
from nnjit.dialects.nn_wasm_numeric import print_operands as _print_operands
from nnjit.dialects.nn_wasm_values import _parse_f32, _print_f32, wat_f32
from nnjit.ir.fastir import fast_init as _fast_init
from nnjit.ir.fastir import i64_attr as _i64


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

