"""nn_wgsl's enumerations, attributes and value types: the WGSL address spaces, access modes,
builtins, operators and builtin functions as enum attributes (one shared attribute per word),
the value-type rules (`binary_result_type`, `type_name`) and `!nn_wgsl.array`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from xdsl.dialects.builtin import (
    DenseArrayBase,
    Float16Type,
    Float32Type,
    IntAttr,
    IntegerType,
    Signedness,
    VectorType,
    f16,
    f32,
    i1,
    i32,
    i64,
)
from xdsl.dialects.utils import EnumAttribute
from xdsl.ir import (
    Attribute,
    ParametrizedAttribute,
    SpacedOpaqueSyntaxAttribute,
    SSAValue,
    TypeAttribute,
)
from xdsl.irdl import (
    irdl_attr_definition,
)
from xdsl.parser import AttrParser, Parser
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException
from xdsl.utils.str_enum import StrEnum

from nnjit.ir.fastir import IdentityCache

u32 = IntegerType(32, Signedness.UNSIGNED)
"""The WGSL u32 type (builtin `ui32`)."""


# ------------------------------------------------------------------------ enumerations


class AddressSpace(StrEnum):
    """Where an array variable lives (WGSL address spaces)."""

    STORAGE = "storage"
    WORKGROUP = "workgroup"
    FUNCTION = "function"


class AccessMode(StrEnum):
    """Binding access modes (those of nn_loop): "write" prints as WGSL read_write."""

    READ = "read"
    WRITE = "write"
    READ_WRITE = "read_write"


class Builtin(StrEnum):
    """The WGSL builtin values a kernel reads."""

    WORKGROUP_ID = "workgroup_id"
    LOCAL_INVOCATION_ID = "local_invocation_id"


class Dim(StrEnum):
    X = "x"
    Y = "y"
    Z = "z"


class BinaryOperator(StrEnum):
    """WGSL's binary operators."""

    ADD = "+"
    SUB = "-"
    MUL = "*"
    DIV = "/"
    REM = "%"
    AND = "&"
    OR = "|"
    XOR = "^"
    SHL = "<<"
    SHR = ">>"
    EQ = "=="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    LOGICAL_AND = "&&"
    LOGICAL_OR = "||"


class UnaryOperator(StrEnum):
    """WGSL's unary operators."""

    NEG = "-"
    NOT = "!"
    COMPLEMENT = "~"


class BuiltinFunction(StrEnum):
    """The WGSL builtin functions nn_wgsl.call may call (CALLS gives their arities)."""

    EXP = "exp"
    EXP2 = "exp2"
    LOG = "log"
    LOG2 = "log2"
    TANH = "tanh"
    SQRT = "sqrt"
    INVERSE_SQRT = "inverseSqrt"
    ABS = "abs"
    FLOOR = "floor"
    CEIL = "ceil"
    ROUND = "round"
    SIGN = "sign"
    SIN = "sin"
    COS = "cos"
    POW = "pow"
    MAX = "max"
    MIN = "min"
    DOT = "dot"
    FMA = "fma"
    CLAMP = "clamp"
    SELECT = "select"


@irdl_attr_definition
class AddressSpaceAttr(EnumAttribute[AddressSpace], SpacedOpaqueSyntaxAttribute):
    """`#nn_wgsl<space workgroup>` (!nn_wgsl.array prints it as its first parameter)."""

    name = "nn_wgsl.space"


@irdl_attr_definition
class AccessModeAttr(EnumAttribute[AccessMode], SpacedOpaqueSyntaxAttribute):
    """`#nn_wgsl<access read>` (nn_wgsl.binding prints it after the binding index)."""

    name = "nn_wgsl.access"


@irdl_attr_definition
class BuiltinAttr(EnumAttribute[Builtin], SpacedOpaqueSyntaxAttribute):
    """`#nn_wgsl<builtin workgroup_id>` (nn_wgsl.builtin prints it bare)."""

    name = "nn_wgsl.builtin"


@irdl_attr_definition
class DimAttr(EnumAttribute[Dim], SpacedOpaqueSyntaxAttribute):
    """`#nn_wgsl<dim x>` (nn_wgsl.builtin prints it bare)."""

    name = "nn_wgsl.dim"


@irdl_attr_definition
class BinaryOperatorAttr(EnumAttribute[BinaryOperator], SpacedOpaqueSyntaxAttribute):
    """`#nn_wgsl<binary_op "+">` (nn_wgsl.binary prints it as a string)."""

    name = "nn_wgsl.binary_op"


@irdl_attr_definition
class UnaryOperatorAttr(EnumAttribute[UnaryOperator], SpacedOpaqueSyntaxAttribute):
    """`#nn_wgsl<unary_op "-">` (nn_wgsl.unary prints it as a string)."""

    name = "nn_wgsl.unary_op"


@irdl_attr_definition
class BuiltinFunctionAttr(EnumAttribute[BuiltinFunction], SpacedOpaqueSyntaxAttribute):
    """`#nn_wgsl<function exp>` (nn_wgsl.call prints it as a string)."""

    name = "nn_wgsl.function"


# One shared attribute per value (attributes are immutable; the builders look them up by name).
SPACE_ATTRS = {m.value: AddressSpaceAttr(m) for m in AddressSpace}
ACCESS_ATTRS = {m.value: AccessModeAttr(m) for m in AccessMode}
BUILTIN_ATTRS = {m.value: BuiltinAttr(m) for m in Builtin}
DIM_ATTRS = {m.value: DimAttr(m) for m in Dim}
BINARY_OP_ATTRS = {m.value: BinaryOperatorAttr(m) for m in BinaryOperator}
UNARY_OP_ATTRS = {m.value: UnaryOperatorAttr(m) for m in UnaryOperator}
FUNCTION_ATTRS = {m.value: BuiltinFunctionAttr(m) for m in BuiltinFunction}

SPACES = tuple(SPACE_ATTRS)
ACCESS = tuple(ACCESS_ATTRS)
BUILTINS = tuple(BUILTIN_ATTRS)
DIMS = tuple(DIM_ATTRS)

ARITH_OPS = ("+", "-", "*", "/", "%")
BIT_OPS = ("&", "|", "^")
SHIFT_OPS = ("<<", ">>")
CMP_OPS = ("==", "!=", "<", "<=", ">", ">=")
LOGIC_OPS = ("&&", "||")
BINARY_OPS = tuple(BINARY_OP_ATTRS)
UNARY_OPS = tuple(UNARY_OP_ATTRS)

# builtin function -> number of arguments
CALLS: dict[str, int] = {
    "exp": 1, "exp2": 1, "log": 1, "log2": 1, "tanh": 1, "sqrt": 1, "inverseSqrt": 1,
    "abs": 1, "floor": 1, "ceil": 1, "round": 1, "sign": 1, "sin": 1, "cos": 1,
    "pow": 2, "max": 2, "min": 2, "dot": 2, "fma": 3, "clamp": 3, "select": 3,
}  # fmt: skip
assert set(CALLS) == set(FUNCTION_ATTRS) and set(BINARY_OPS) == set(
    ARITH_OPS + BIT_OPS + SHIFT_OPS + CMP_OPS + LOGIC_OPS
)


# ------------------------------------------------------------------------------- types


def _scalar(t: Attribute) -> Attribute:
    return t.get_element_type() if isinstance(t, VectorType) else t


def lane_type(t: Attribute) -> Attribute:
    """The element type of a vector type (a scalar type is its own)."""
    return _scalar(t)


def is_scalar_type(t: Attribute) -> bool:
    return t in (f32, i32, u32, i1, f16)


def is_value_type(t: Attribute) -> bool:
    """f32, i32, u32, bool, f16 (`enable f16;`) or vecN of them (N = 2..4)."""
    if isinstance(t, VectorType):
        shape = t.get_shape()
        return len(shape) == 1 and 2 <= shape[0] <= 4 and is_scalar_type(t.get_element_type())
    return is_scalar_type(t)


def is_float(t: Attribute) -> bool:
    return isinstance(_scalar(t), Float32Type | Float16Type)


def uses_f16(t: Attribute) -> bool:
    """Whether a value or array type holds f16 (a module using it needs `enable f16;`)."""
    if isinstance(t, ArrayType):
        return uses_f16(t.leaf)
    return isinstance(_scalar(t), Float16Type)


def is_int(t: Attribute) -> bool:
    s = _scalar(t)
    return s == i32 or s == u32


def is_bool(t: Attribute) -> bool:
    return _scalar(t) == i1


def lanes(t: Attribute) -> int:
    """1 for a scalar, N for vecN."""
    return t.get_shape()[0] if isinstance(t, VectorType) else 1


def bool_like(t: Attribute) -> Attribute:
    """bool, or vecN<bool> for a vecN type."""
    return VectorType(i1, [lanes(t)]) if isinstance(t, VectorType) else i1


def type_name(t: Attribute) -> str:
    """The WGSL spelling of a value type (f32, i32, u32, bool, vec4<f32>, ...)."""
    if t == f32:
        return "f32"
    if t == f16:
        return "f16"
    if t == i32:
        return "i32"
    if t == u32:
        return "u32"
    if t == i1:
        return "bool"
    if isinstance(t, VectorType) and is_value_type(t):
        return f"vec{t.get_shape()[0]}<{type_name(t.get_element_type())}>"
    raise ValueError(f"{t} is not a WGSL value type")



@irdl_attr_definition
class ArrayType(ParametrizedAttribute, TypeAttribute):
    """An array variable in `space` (storage, workgroup or function) with `count` elements of
    `element` (count 0: a runtime-sized storage array)."""

    name = "nn_wgsl.array"

    space: AddressSpaceAttr
    element: Attribute
    count: IntAttr

    def __init__(self, space: str, element: Attribute, count: int = 0):
        super().__init__(SPACE_ATTRS[space], element, IntAttr(count))

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            printer.print_string(self.space.data)
            printer.print_string(", ")
            printer.print_attribute(self.element)
            if self.count.data:
                printer.print_string(f", {self.count.data}")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> tuple[AddressSpaceAttr, Attribute, IntAttr]:
        with parser.in_angle_brackets():
            space = parser.parse_str_enum(AddressSpace)
            parser.parse_punctuation(",")
            elem = parser.parse_type()
            count = 0
            if parser.parse_optional_punctuation(",") is not None:
                count = parser.parse_integer(allow_negative=False, allow_boolean=False)
        return SPACE_ATTRS[space], elem, IntAttr(count)

    def verify(self) -> None:
        e = self.element
        if isinstance(e, ArrayType):
            if self.space.data == AddressSpace.STORAGE or e.space != self.space or e.count.data == 0:
                raise VerifyException(
                    "nn_wgsl.array: nested arrays are fixed-size workgroup or function arrays "
                    "of one space"
                )
        elif not is_value_type(e) or is_bool(e):
            raise VerifyException(
                f"nn_wgsl.array: element type {e} must be f32, i32, u32, f16 or a vector of them"
            )
        if self.count.data < 0:
            raise VerifyException("nn_wgsl.array: element count must not be negative")
        if self.count.data == 0 and self.space.data != AddressSpace.STORAGE:
            raise VerifyException(
                f"nn_wgsl.array: a {self.space.data} array needs a fixed element count"
            )

    def wgsl(self) -> str:
        """`array<T>` or `array<T, N>` (T itself an array when nested)."""
        e = self.element
        t = e.wgsl() if isinstance(e, ArrayType) else type_name(e)
        return f"array<{t}, {self.count.data}>" if self.count.data else f"array<{t}>"

    @property
    def leaf(self) -> Attribute:
        """The value type at the bottom of nested arrays."""
        e = self.element
        return e.leaf if isinstance(e, ArrayType) else e

    @property
    def total_count(self) -> int:
        """Elements of `leaf` type in all (0: runtime-sized)."""
        e = self.element
        return self.count.data * (e.total_count if isinstance(e, ArrayType) else 1)


def _array(v: SSAValue, op: str) -> ArrayType:
    t = v.type
    if not isinstance(t, ArrayType):
        raise VerifyException(f"{op}: expected an !nn_wgsl.array value, got {t}")
    return t


def _check_value_type(op: str, what: str, t: Attribute) -> None:
    if not is_value_type(t):
        raise VerifyException(f"{op}: {what} has type {t}, which is not a WGSL value type")


def _i64_array(values: Sequence[int]) -> DenseArrayBase:
    return _i64_array_cached(tuple(values))


@functools.lru_cache(maxsize=1024)
def _i64_array_cached(values: tuple[int, ...]) -> DenseArrayBase:
    """(attributes are immutable: building them is the slow part of building ops)"""
    return DenseArrayBase.from_list(i64, list(values))


dense_values: Callable[[DenseArrayBase], tuple[int | float, ...]] = IdentityCache(
    lambda a: tuple(a.get_values())
)
"""The values of a dense array attribute (decoding one costs ~10 us; the ops share
theirs, `_i64_array`)."""


def _print_int_list(printer: Printer, values: Sequence[int]) -> None:
    printer.print_string("[" + ", ".join(str(v) for v in values) + "]")


def _parse_int_list(parser: Parser) -> list[int]:
    return parser.parse_comma_separated_list(
        Parser.Delimiter.SQUARE, lambda: parser.parse_integer(allow_boolean=False)
    )




def binary_result_type(op: str, a: Attribute, b: Attribute) -> Attribute:
    """The type of `a OP b` in WGSL; ValueError says why the operands do not fit."""
    if op in SHIFT_OPS:
        if not is_int(a) or _scalar(b) != u32 or lanes(a) != lanes(b):
            raise ValueError(f"'{op}' needs an integer left operand and a u32 right operand")
        return a
    if op in LOGIC_OPS:
        if a != i1 or b != i1:
            raise ValueError(f"'{op}' needs bool operands")
        return i1
    if op in ARITH_OPS:
        if a == b:
            if is_bool(a):
                raise ValueError(f"'{op}' is not defined on bool")
            return a
        # vector OP scalar and scalar OP vector
        if isinstance(a, VectorType) and b == a.get_element_type() and not is_bool(b):
            return a
        if isinstance(b, VectorType) and a == b.get_element_type() and not is_bool(a):
            return b
        raise ValueError(f"'{op}' operand types {a} and {b} do not match")
    if a != b:
        raise ValueError(f"'{op}' operand types {a} and {b} differ")
    if op in BIT_OPS:
        if is_float(a) or (op == "^" and is_bool(a)):
            raise ValueError(f"'{op}' is not defined on {a}")
        return a
    if op in CMP_OPS:
        if is_bool(a) and op not in ("==", "!="):
            raise ValueError(f"'{op}' is not defined on bool")
        return bool_like(a)
    raise ValueError(f"'{op}' is not a WGSL binary operator")
