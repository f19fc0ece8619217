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

Syntax: `%r = nn_wasm.<mnemonic> [immediates] [operands] [: types]`, for example
`%a = nn_wasm.local.get "x" : i32`, `%v = nn_wasm.v128.load offset=16 align=4 %a`,
`nn_wasm.f32.store offset=4 %a, %v`, `%e = nn_wasm.f32x4.extract_lane 2 %v`.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence

from xdsl.dialects.builtin import (
    I64,
    ArrayAttr,
    DictionaryAttr,
    Float32Type,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    StringAttr,
    SymbolRefAttr,
    UnitAttr,
)
from xdsl.ir import (
    Attribute,
    Block,
    Dialect,
    Operation,
    ParametrizedAttribute,
    Region,
    SSAValue,
    TypeAttribute,
)
from xdsl.irdl import (
    IRDLOperation,
    irdl_attr_definition,
    irdl_op_definition,
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
    IsolatedFromAbove,
    NoTerminator,
    SymbolOpInterface,
    SymbolTable,
)
from xdsl.utils.exceptions import VerifyException

from nnjit.dialects.fastir import fast_init as _fast_init
from nnjit.dialects.fastir import i64_attr as _i64
from nnjit.dialects.fastir import str_attr as _str


@irdl_attr_definition
class V128Type(ParametrizedAttribute, TypeAttribute):
    """WebAssembly's 128-bit SIMD value type (f32x4 / i32x4 lanes)."""

    name = "nn_wasm.v128"


i32 = IntegerType(32)
f32 = Float32Type()
v128 = V128Type()
VALUE_TYPES = (i32, f32, v128)


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


def _parse_operands(parser: Parser, types: Sequence[Attribute]) -> list[SSAValue]:
    values = []
    for k, t in enumerate(types):
        if k:
            parser.parse_punctuation(",")
        values.append(parser.parse_operand(t))
    return values


def _print_operands(printer: Printer, values: Sequence[SSAValue]):
    if values:
        printer.print_string(" ")
        printer.print_list(values, printer.print_operand)


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


# ------------------------------------------------------------------------ instructions


class WasmInstr(IRDLOperation):
    """Base of nn_wasm instructions: `mnemonic()` is the WAT instruction name."""

    def mnemonic(self) -> str:
        return self.name[8:]  # len("nn_wasm.")

    def wat(self, ident: Callable[[str, str], str]) -> str:
        """The WAT line of this instruction; `ident(kind, name)` prints a local, label or
        function name ("local" | "label" | "func") as a `$identifier`."""
        return self.mnemonic()


_SIMPLE: dict[str, type[WasmInstr]] = {}
SIGNATURES: dict[type[WasmInstr], tuple[int, tuple[Attribute, ...]]] = {}
"""Instructions with fixed types and no immediates: (operand count, result types)."""


def _class_name(mnemonic: str) -> str:
    parts = mnemonic.replace(".", "_").split("_")
    return "".join(p[:1].upper() + p[1:] for p in parts) + "Op"


def _simple(mnemonic: str, ins: Sequence[Attribute], out: Attribute | None, doc: str):
    """Defines an instruction with fixed operand/result types and no immediates."""
    fields: dict[str, object] = {"name": f"nn_wasm.{mnemonic}", "__doc__": doc}
    for k, t in enumerate(ins):
        fields[f"in{k}"] = operand_def(t)
    if out is not None:
        fields["result"] = result_def(out)
    n_in = len(ins)

    def __init__(self, *operands: SSAValue | Operation):
        if len(operands) != n_in:
            raise TypeError(f"nn_wasm.{mnemonic} takes {n_in} operands")
        _fast_init(
            self, operands=list(operands), result_types=[out] if out is not None else []
        )

    @classmethod
    def parse(cls, parser: Parser):
        return cls(*_parse_operands(parser, ins))

    def print(self, printer: Printer):
        _print_operands(printer, self.operands)

    fields["__init__"] = __init__
    fields["parse"] = parse
    fields["print"] = print
    cls = type(_class_name(mnemonic), (WasmInstr,), fields)
    cls.__module__ = __name__
    cls = irdl_op_definition(cls)
    SIGNATURES[cls] = (n_in, (out,) if out is not None else ())
    _SIMPLE[mnemonic] = cls
    globals()[cls.__name__] = cls
    return cls


_F32_BIN = {
    "add": "a + b", "sub": "a - b", "mul": "a * b", "div": "a / b",
    "min": "minimum (NaN-propagating)", "max": "maximum (NaN-propagating)",
    "copysign": "magnitude of a with the sign of b",
}  # fmt: skip
_F32_UN = {
    "abs": "|a|", "neg": "-a", "sqrt": "square root", "ceil": "round up",
    "floor": "round down", "trunc": "round toward zero", "nearest": "round to nearest even",
}  # fmt: skip
_F32_CMP = {"eq": "==", "ne": "!= (true if unordered)", "lt": "<", "gt": ">", "le": "<=", "ge": ">="}
_I32_BIN = {
    "add": "a + b (wrapping)", "sub": "a - b (wrapping)", "mul": "a * b (wrapping)",
    "div_s": "signed division (traps on 0)", "div_u": "unsigned division (traps on 0)",
    "rem_s": "signed remainder", "rem_u": "unsigned remainder", "and": "bitwise and",
    "or": "bitwise or", "xor": "bitwise xor", "shl": "shift left",
    "shr_s": "arithmetic shift right", "shr_u": "logical shift right",
}  # fmt: skip
_I32_CMP = {
    "eq": "==", "ne": "!=", "lt_s": "< signed", "lt_u": "< unsigned", "gt_s": "> signed",
    "gt_u": "> unsigned", "le_s": "<= signed", "le_u": "<= unsigned", "ge_s": ">= signed",
    "ge_u": ">= unsigned",
}  # fmt: skip

for _m, _d in _F32_BIN.items():
    _simple(f"f32.{_m}", (f32, f32), f32, f"f32 {_d}.")
    if _m != "copysign":  # no f32x4.copysign in Wasm
        _simple(f"f32x4.{_m}", (v128, v128), v128, f"Lane-wise f32x4 {_d}.")
for _m, _d in _F32_UN.items():
    _simple(f"f32.{_m}", (f32,), f32, f"f32 {_d}.")
    _simple(f"f32x4.{_m}", (v128,), v128, f"Lane-wise f32x4 {_d}.")
for _m, _d in _F32_CMP.items():
    _simple(f"f32.{_m}", (f32, f32), i32, f"f32 comparison a {_d} b: i32 1 or 0.")
    _simple(f"f32x4.{_m}", (v128, v128), v128, f"Lane-wise f32x4 a {_d} b: all-ones or zero lanes.")
for _m, _d in _I32_BIN.items():
    _simple(f"i32.{_m}", (i32, i32), i32, f"i32 {_d}.")
for _m, _d in _I32_CMP.items():
    _simple(f"i32.{_m}", (i32, i32), i32, f"i32 comparison a {_d} b: 1 or 0.")
_simple("i32.eqz", (i32,), i32, "1 if a == 0 else 0.")
for _m in ("add", "sub", "mul", "min_s", "max_s"):
    _simple(f"i32x4.{_m}", (v128, v128), v128, f"Lane-wise i32x4 {_m.replace('_s', ' (signed)')}.")
for _m in ("eq", "ne", "lt_s", "gt_s", "le_s", "ge_s"):
    _simple(f"i32x4.{_m}", (v128, v128), v128, f"Lane-wise i32x4 comparison {_m}: all-ones or zero lanes.")
for _m in ("shl", "shr_s", "shr_u"):
    _simple(f"i32x4.{_m}", (v128, i32), v128, f"Lane-wise i32x4 {_m} by a scalar i32 amount.")
for _m in ("and", "or", "xor", "andnot"):
    _simple(f"v128.{_m}", (v128, v128), v128, f"Bitwise 128-bit {_m}.")
_simple("v128.not", (v128,), v128, "Bitwise 128-bit not.")
_simple("v128.bitselect", (v128, v128, v128), v128, "Bits of a where c is 1, of b where c is 0.")
_simple("v128.any_true", (v128,), i32, "1 if any bit of a is set.")
_simple("f32x4.pmin", (v128, v128), v128, "Lane-wise b < a ? b : a.")
_simple("f32x4.pmax", (v128, v128), v128, "Lane-wise a < b ? b : a.")
_simple("f32x4.relaxed_madd", (v128, v128, v128), v128,
        "Lane-wise a * b + c, fused or not (relaxed SIMD).")  # fmt: skip
_simple("f32x4.relaxed_nmadd", (v128, v128, v128), v128,
        "Lane-wise -(a * b) + c, fused or not (relaxed SIMD).")  # fmt: skip
_simple("f32x4.splat", (f32,), v128, "An f32x4 with every lane equal to a.")
_simple("i32x4.splat", (i32,), v128, "An i32x4 with every lane equal to a.")
_simple("f32.convert_i32_s", (i32,), f32, "Signed i32 to the nearest f32.")
_simple("f32.convert_i32_u", (i32,), f32, "Unsigned i32 to the nearest f32.")
_simple("i32.trunc_sat_f32_s", (f32,), i32, "f32 to signed i32 toward zero, saturating, NaN to 0.")
_simple("i32.reinterpret_f32", (f32,), i32, "The bits of an f32 as an i32.")
_simple("f32.reinterpret_i32", (i32,), f32, "The bits of an i32 as an f32.")
_simple("f32x4.convert_i32x4_s", (v128,), v128, "Lane-wise signed i32 to f32.")
_simple("i32x4.trunc_sat_f32x4_s", (v128,), v128, "Lane-wise f32 to signed i32, saturating.")


# --------------------------------------------------------------------- immediates ops


class _MemArg(WasmInstr):
    """Memory instructions: the address operand plus the static byte `offset` and `align`."""

    @property
    def WIDTH(self) -> int:  # noqa: N802 (natural alignment in bytes)
        return 16 if self.name in ("nn_wasm.v128.load", "nn_wasm.v128.store") else 4

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

    def _verify_memarg(self):
        off = self.offset.value.data  # type: ignore[attr-defined]
        if not 0 <= off < 2**32:
            raise VerifyException(f"{self.name}: offset {off} is not a u32")
        if self.align is not None:  # type: ignore[attr-defined]
            al = self.align.value.data  # type: ignore[attr-defined]
            if al not in (1, 2, 4, 8, 16) or al > self.WIDTH:
                raise VerifyException(
                    f"{self.name}: align {al} must be a power of two <= {self.WIDTH}"
                )

    def verify_(self):
        self._verify_memarg()

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
        if self.align is not None and self.align.value.data == self.WIDTH:  # type: ignore
            printer.print_string(f" align={self.WIDTH}")


def _memprops(offset: int, align: int | None) -> dict[str, Attribute]:
    props: dict[str, Attribute] = {"offset": _i64(offset)}
    if align is not None:
        props["align"] = _i64(align)
    return props


def _load(mnemonic: str, out: Attribute, width: int, doc: str):
    def __init__(self, addr: SSAValue | Operation, offset: int = 0, align: int | None = None):
        _fast_init(
            self, operands=[addr], result_types=[out], properties=_memprops(offset, align)
        )

    @classmethod
    def parse(cls, parser: Parser):
        off, al = _MemArg._parse_memarg(parser)
        return cls(parser.parse_operand(i32), off, al)

    def print(self, printer: Printer):
        self._print_memarg(printer)
        _print_operands(printer, self.operands)

    cls = type(
        _class_name(mnemonic),
        (_MemArg,),
        {
            "name": f"nn_wasm.{mnemonic}", "__doc__": doc,
            "addr": operand_def(i32), "result": result_def(out),
            "offset": prop_def(IntegerAttr[I64], default_value=IntegerAttr(0, 64)),
            "align": opt_prop_def(IntegerAttr[I64]),
            "__init__": __init__, "parse": parse, "print": print,
        },  # fmt: skip
    )
    cls.__module__ = __name__
    cls = irdl_op_definition(cls)
    _SIMPLE[mnemonic] = cls
    globals()[cls.__name__] = cls
    return cls


def _store(mnemonic: str, val: Attribute, width: int, doc: str):
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
        a, v = _parse_operands(parser, (i32, val))
        return cls(a, v, off, al)

    def print(self, printer: Printer):
        self._print_memarg(printer)
        _print_operands(printer, self.operands)

    cls = type(
        _class_name(mnemonic),
        (_MemArg,),
        {
            "name": f"nn_wasm.{mnemonic}", "__doc__": doc,
            "addr": operand_def(i32), "value": operand_def(val),
            "offset": prop_def(IntegerAttr[I64], default_value=IntegerAttr(0, 64)),
            "align": opt_prop_def(IntegerAttr[I64]),
            "__init__": __init__, "parse": parse, "print": print,
        },  # fmt: skip
    )
    cls.__module__ = __name__
    cls = irdl_op_definition(cls)
    _SIMPLE[mnemonic] = cls
    globals()[cls.__name__] = cls
    return cls


_load("i32.load", i32, 4, "Loads an i32 from memory[addr + offset].")
_load("f32.load", f32, 4, "Loads an f32 from memory[addr + offset].")
_load("v128.load", v128, 16, "Loads 16 bytes (4 lanes) from memory[addr + offset].")
_load("v128.load32_splat", v128, 4, "Loads one 32-bit value and splats it to 4 lanes.")
_store("i32.store", i32, 4, "Stores an i32 to memory[addr + offset].")
_store("f32.store", f32, 4, "Stores an f32 to memory[addr + offset].")
_store("v128.store", v128, 16, "Stores 16 bytes to memory[addr + offset].")


def _lane_ops(shape: str, scalar: Attribute):
    def ex_init(self, vec: SSAValue | Operation, lane: int):
        _fast_init(
            self, operands=[vec], result_types=[scalar], properties={"lane": _i64(lane)}
        )

    def rep_init(self, vec: SSAValue | Operation, value: SSAValue | Operation, lane: int):
        _fast_init(
            self, operands=[vec, value], result_types=[v128],
            properties={"lane": _i64(lane)},
        )  # fmt: skip

    @classmethod
    def ex_parse(cls, parser: Parser):
        lane = parser.parse_integer(allow_boolean=False, allow_negative=False)
        return cls(parser.parse_operand(v128), lane)

    @classmethod
    def rep_parse(cls, parser: Parser):
        lane = parser.parse_integer(allow_boolean=False, allow_negative=False)
        a, b = _parse_operands(parser, (v128, scalar))
        return cls(a, b, lane)

    def lane_print(self, printer: Printer):
        printer.print_string(f" {self.lane.value.data}")
        _print_operands(printer, self.operands)

    def lane_wat(self, ident):
        return f"{self.mnemonic()} {self.lane.value.data}"

    def lane_verify(self):
        if not 0 <= self.lane.value.data < 4:
            raise VerifyException(f"{self.name}: lane {self.lane.value.data} is not in 0..3")

    for kind, init, parse, fields in (
        ("extract_lane", ex_init, ex_parse, {"vec": operand_def(v128), "result": result_def(scalar)}),
        ("replace_lane", rep_init, rep_parse,
         {"vec": operand_def(v128), "value": operand_def(scalar), "result": result_def(v128)}),
    ):  # fmt: skip
        mnemonic = f"{shape}.{kind}"
        doc = (
            f"Lane `lane` of an {shape} as a scalar."
            if kind == "extract_lane"
            else f"The {shape} with lane `lane` replaced by the scalar operand."
        )
        cls = type(
            _class_name(mnemonic),
            (WasmInstr,),
            {
                "name": f"nn_wasm.{mnemonic}", "__doc__": doc, **fields,
                "lane": prop_def(IntegerAttr[I64]), "__init__": init, "parse": parse,
                "print": lane_print, "wat": lane_wat, "verify_": lane_verify,
            },  # fmt: skip
        )
        cls.__module__ = __name__
        cls = irdl_op_definition(cls)
        _SIMPLE[mnemonic] = cls
        globals()[cls.__name__] = cls


_lane_ops("f32x4", f32)
_lane_ops("i32x4", i32)


@irdl_op_definition
class I32ConstOp(WasmInstr):
    """Pushes the i32 constant `value` (kept in the signed range)."""

    name = "nn_wasm.i32.const"
    value = prop_def(IntegerAttr[I64])
    result = result_def(i32)

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
    shape = prop_def(StringAttr)
    lanes = prop_def(ArrayAttr)
    result = result_def(v128)

    def __init__(self, shape: str, lanes: Sequence[float | int]):
        if shape == "f32x4":
            attrs: list[Attribute] = [FloatAttr(float(x), f32) for x in lanes]
        else:
            attrs = [IntegerAttr(((int(x) + 2**31) % 2**32) - 2**31, 64) for x in lanes]
        _fast_init(self,
            properties={"shape": StringAttr(shape), "lanes": ArrayAttr(attrs)}, result_types=[v128]
        )

    def lane_values(self) -> list[float | int]:
        return [a.value.data for a in self.lanes.data]  # type: ignore[attr-defined]

    def verify_(self):
        if self.shape.data not in ("f32x4", "i32x4"):
            raise VerifyException(f"nn_wasm.v128.const: shape '{self.shape.data}' is not f32x4 or i32x4")
        if len(self.lanes.data) != 4:
            raise VerifyException(f"nn_wasm.v128.const: {len(self.lanes.data)} lanes; expected 4")
        want = FloatAttr if self.shape.data == "f32x4" else IntegerAttr
        if not all(isinstance(a, want) for a in self.lanes.data):
            raise VerifyException(f"nn_wasm.v128.const: lanes do not match shape {self.shape.data}")

    @classmethod
    def parse(cls, parser: Parser):
        shape = parser.parse_identifier()
        if shape not in ("f32x4", "i32x4"):
            parser.raise_error("expected f32x4 or i32x4")
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
    traits = traits_def()

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
    """block / loop / if: a label and a body that starts and ends with an empty stack."""

    def wat(self, ident):
        return f"{self.mnemonic()} {ident('label', self.label.data)}"  # type: ignore[attr-defined]


def _structured(mnemonic: str, doc: str, with_cond: bool):
    fields: dict[str, object] = {
        "name": f"nn_wasm.{mnemonic}", "__doc__": doc, "label": prop_def(StringAttr),
        "body": region_def("single_block"), "traits": traits_def(NoTerminator()),
    }  # fmt: skip
    if with_cond:
        fields["cond"] = operand_def(i32)

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

    else:

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

    fields.update(__init__=__init__, parse=parse, print=print)
    cls = type(_class_name(mnemonic), (_Structured,), fields)
    cls.__module__ = __name__
    return irdl_op_definition(cls)


BlockOp = _structured("block", "A block; `br label` inside jumps to its end.", False)
LoopOp = _structured("loop", "A loop; `br label` inside jumps back to its start.", False)
IfOp = _structured("if", "Runs its body when the popped i32 is non-zero.", True)


class _Branch(WasmInstr):
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
    traits = traits_def(SymbolOpInterface(), IsolatedFromAbove(), NoTerminator())

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


INSTRUCTIONS: dict[str, type[IRDLOperation]] = dict(_SIMPLE)
"""WAT mnemonic -> op class, for the instructions with fixed types (builders use it)."""
INSTRUCTIONS.update({
    "i32.const": I32ConstOp, "f32.const": F32ConstOp, "v128.const": V128ConstOp,
    "local.get": LocalGetOp, "local.set": LocalSetOp, "local.tee": LocalTeeOp,
    "select": SelectOp, "drop": DropOp, "call": CallOp, "return": ReturnOp,
    "block": BlockOp, "loop": LoopOp, "if": IfOp, "br": BrOp, "br_if": BrIfOp,
})  # fmt: skip

NNWasm = Dialect(
    "nn_wasm",
    [
        ModuleOp, ImportMemoryOp, FuncOp, *INSTRUCTIONS.values(),
    ],
    [V128Type],
)
