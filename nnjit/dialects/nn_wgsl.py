"""nn_wgsl: a WGSL compute shader as IR, one op per WGSL declaration or statement.

An `nn_wgsl.module @k` is one kernel (one WGSL module with entry point `main`). It holds
storage-buffer bindings (`nn_wgsl.binding`), workgroup memory (`nn_wgsl.workgroup_var`) and
the entry function (`nn_wgsl.entry`, with @workgroup_size). The entry body is statements:
function-scope arrays (`nn_wgsl.function_var`), `nn_wgsl.store`, `nn_wgsl.for`,
`nn_wgsl.if`, `nn_wgsl.barrier`, `nn_wgsl.return`; and expressions, each printed as one
`let`: constants (printed inline as literals), `nn_wgsl.binary`/`unary` operators,
`nn_wgsl.call` of WGSL builtin functions, `nn_wgsl.construct` (vectors), `nn_wgsl.lane`,
`nn_wgsl.convert`, `nn_wgsl.bitcast`, `nn_wgsl.load` and `nn_wgsl.builtin` (workgroup_id /
local_invocation_id). Loads and stores take one index per level of nested arrays
(`a[i][j]`), the last one possibly a lane of a vector element.

Value types are builtin types standing for WGSL ones: f32, i32, ui32 (u32), i1 (bool) and
vector<Nx...> (vecN<...>, N = 2..4). Arrays (storage, workgroup, function scope) are values of
type `!nn_wgsl.array<space, T[, N]>` (N = 0 or absent: runtime-sized, storage only); T is a
value type or, for workgroup and function arrays, a fixed-size array of the same space
(`array<array<T, N1>, N0>`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from xdsl.dialects.builtin import (
    I64,
    DenseArrayBase,
    DictionaryAttr,
    Float32Type,
    FloatAttr,
    IntAttr,
    IntegerAttr,
    IntegerType,
    Signedness,
    StringAttr,
    SymbolRefAttr,
    VectorType,
    f32,
    i1,
    i32,
    i64,
)
from xdsl.dialects.utils import EnumAttribute
from xdsl.ir import (
    Attribute,
    Block,
    BlockArgument,
    Dialect,
    Operation,
    ParametrizedAttribute,
    Region,
    SpacedOpaqueSyntaxAttribute,
    SSAValue,
    TypeAttribute,
)
from xdsl.irdl import (
    IRDLOperation,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.parser import AttrParser, Parser, UnresolvedOperand
from xdsl.printer import Printer
from xdsl.traits import (
    HasParent,
    IsolatedFromAbove,
    IsTerminator,
    MemoryReadEffect,
    MemoryWriteEffect,
    NoTerminator,
    Pure,
    RecursivelySpeculatable,
    RecursiveMemoryEffect,
    SymbolOpInterface,
    SymbolTable,
)
from xdsl.utils.exceptions import VerifyException
from xdsl.utils.str_enum import StrEnum

from nnjit.dialects.traits import AllocatesResult
from nnjit.ir.fastir import fast_init as _fast_init
from nnjit.ir.fastir import i64_attr as _i64

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
    return t in (f32, i32, u32, i1)


def is_value_type(t: Attribute) -> bool:
    """f32, i32, u32, bool or vecN of them (N = 2..4)."""
    if isinstance(t, VectorType):
        shape = t.get_shape()
        return len(shape) == 1 and 2 <= shape[0] <= 4 and is_scalar_type(t.get_element_type())
    return is_scalar_type(t)


def is_float(t: Attribute) -> bool:
    return isinstance(_scalar(t), Float32Type)


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
            if self.space.data == "storage" or e.space != self.space or e.count.data == 0:
                raise VerifyException(
                    "nn_wgsl.array: nested arrays are fixed-size workgroup or function arrays "
                    "of one space"
                )
        elif not is_value_type(e) or is_bool(e):
            raise VerifyException(
                f"nn_wgsl.array: element type {e} must be f32, i32, u32 or a vector of them"
            )
        if self.count.data < 0:
            raise VerifyException("nn_wgsl.array: element count must not be negative")
        if self.count.data == 0 and self.space.data != "storage":
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


def _print_int_list(printer: Printer, values: Sequence[int]) -> None:
    printer.print_string("[" + ", ".join(str(v) for v in values) + "]")


def _parse_int_list(parser: Parser) -> list[int]:
    return parser.parse_comma_separated_list(
        Parser.Delimiter.SQUARE, lambda: parser.parse_integer(allow_boolean=False)
    )


# ------------------------------------------------------------------------ declarations


@irdl_op_definition
class ModuleOp(IRDLOperation):
    """One kernel as a WGSL module: bindings, workgroup variables and one entry function.

    `kind` and `schedule` are carried for the manifest only (never printed into WGSL);
    `dispatch` is the workgroup grid the runtime dispatches.
    """

    name = "nn_wgsl.module"
    sym_name = prop_def(StringAttr)
    kind = prop_def(StringAttr)
    schedule = prop_def(DictionaryAttr, default_value=DictionaryAttr({}))
    dispatch = prop_def(DenseArrayBase)
    body = region_def("single_block")
    traits = traits_def(SymbolOpInterface(), SymbolTable(), IsolatedFromAbove(), NoTerminator())

    def __init__(
        self,
        name: str,
        kind: str,
        dispatch: Sequence[int],
        schedule: DictionaryAttr | dict[str, Attribute] | None = None,
        body: Region | None = None,
    ):
        if not isinstance(schedule, DictionaryAttr):
            schedule = DictionaryAttr(schedule or {})
        _fast_init(self,
            properties={
                "sym_name": StringAttr(name),
                "kind": StringAttr(kind),
                "schedule": schedule,
                "dispatch": _i64_array(dispatch),
            },
            regions=[body if body is not None else Region(Block())],
        )

    @property
    def dispatch_grid(self) -> tuple[int, ...]:
        return tuple(self.dispatch.get_values())  # type: ignore[arg-type]

    @property
    def entry(self) -> EntryOp:
        for op in self.body.block.ops:
            if isinstance(op, EntryOp):
                return op
        raise ValueError(f"nn_wgsl.module @{self.sym_name.data} has no entry function")

    def verify_(self) -> None:
        where = f"nn_wgsl.module @{self.sym_name.data}"
        grid = self.dispatch_grid
        if len(grid) != 3 or any(g < 0 for g in grid):
            raise VerifyException(f"{where}: dispatch must be three non-negative integers")
        entries = 0
        seen: set[int] = set()
        for op in self.body.block.ops:
            if isinstance(op, EntryOp):
                entries += 1
            elif isinstance(op, BindingOp):
                b = op.binding.value.data
                if b in seen:
                    raise VerifyException(f"{where}: binding {b} is declared twice")
                seen.add(b)
            elif not isinstance(op, WorkgroupVarOp | FuncOp):
                raise VerifyException(
                    f"{where}: only nn_wgsl.binding, nn_wgsl.workgroup_var, nn_wgsl.func and "
                    f"nn_wgsl.entry may appear at module level, found {op.name}"
                )
        if entries != 1:
            raise VerifyException(f"{where}: expected exactly one nn_wgsl.entry, found {entries}")

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_symbol_name(self.sym_name.data)
        printer.print_string(" kind ")
        printer.print_string_literal(self.kind.data)
        printer.print_string(" dispatch ")
        _print_int_list(printer, self.dispatch_grid)
        if self.schedule.data:
            printer.print_string(" schedule ")
            printer.print_attribute(self.schedule)
        printer.print_op_attributes(self.attributes, print_keyword=True)
        printer.print_string(" ")
        printer.print_region(self.body, print_entry_block_args=False, print_empty_block=False)

    @classmethod
    def parse(cls, parser: Parser) -> ModuleOp:
        name = parser.parse_symbol_name().data
        parser.parse_keyword("kind")
        kind = parser.parse_str_literal()
        parser.parse_keyword("dispatch")
        dispatch = _parse_int_list(parser)
        schedule: DictionaryAttr | None = None
        if parser.parse_optional_keyword("schedule"):
            attr = parser.parse_attribute()
            if not isinstance(attr, DictionaryAttr):
                parser.raise_error("expected a dictionary after 'schedule'")
            schedule = attr
        attrs = parser.parse_optional_attr_dict_with_keyword()
        body = parser.parse_region()
        if not body.blocks:
            body.add_block(Block())
        op = cls(name, kind, dispatch, schedule, body)
        if attrs is not None:
            op.attributes |= attrs.data
        return op


@irdl_op_definition
class BindingOp(IRDLOperation):
    """`@group(0) @binding(N) var<storage, read|read_write> b: array<T>`: kernel argument N.

    `shape` is the logical shape of the tensor in the buffer and `access` the kernel's access
    mode (read, write or read_write; both writing modes print as read_write)."""

    name = "nn_wgsl.binding"
    binding = prop_def(IntegerAttr[I64])
    access = prop_def(AccessModeAttr)
    shape = prop_def(DenseArrayBase)
    result = result_def(ArrayType)
    # (no memory-effect trait: a binding is the kernel's interface, which dce must keep)
    traits = traits_def(HasParent(ModuleOp))

    def __init__(self, binding: int, access: str, shape: Sequence[int], type: ArrayType):
        _fast_init(self,
            properties={
                "binding": _i64(binding),
                "access": ACCESS_ATTRS[access],
                "shape": _i64_array(shape),
            },
            result_types=[type],
        )

    @property
    def logical_shape(self) -> tuple[int, ...]:
        return tuple(self.shape.get_values())  # type: ignore[arg-type]

    def verify_(self) -> None:
        t = _array(self.result, self.name)
        if t.space.data != "storage" or t.count.data != 0:
            raise VerifyException(
                "nn_wgsl.binding: the type must be a runtime-sized storage array, got " + str(t)
            )
        if self.binding.value.data < 0:
            raise VerifyException("nn_wgsl.binding: binding index must not be negative")
        if any(d < 0 for d in self.logical_shape):
            raise VerifyException("nn_wgsl.binding: shape dimensions must not be negative")
        if _scalar(t.element) not in (f32, i32):
            raise VerifyException(
                "nn_wgsl.binding: buffer elements must be f32 or i32 (or vectors)"
            )

    def print(self, printer: Printer) -> None:
        printer.print_string(f" {self.binding.value.data} {self.access.data} shape ")
        _print_int_list(printer, self.logical_shape)
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.result.type)

    @classmethod
    def parse(cls, parser: Parser) -> BindingOp:
        binding = parser.parse_integer(allow_negative=False, allow_boolean=False)
        access = parser.parse_str_enum(AccessMode)
        parser.parse_keyword("shape")
        shape = _parse_int_list(parser)
        attrs = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        t = parser.parse_type()
        if not isinstance(t, ArrayType):
            parser.raise_error("nn_wgsl.binding: expected an !nn_wgsl.array type")
        op = cls(binding, access, shape, t)
        op.attributes |= attrs
        return op


@irdl_op_definition
class WorkgroupVarOp(IRDLOperation):
    """`var<workgroup> w: array<T, N>`: memory shared by the invocations of a workgroup."""

    name = "nn_wgsl.workgroup_var"
    result = result_def(ArrayType)
    traits = traits_def(HasParent(ModuleOp), AllocatesResult())
    assembly_format = "attr-dict `:` type($result)"

    def __init__(self, type: ArrayType):
        _fast_init(self, result_types=[type])

    def verify_(self) -> None:
        if _array(self.result, self.name).space.data != "workgroup":
            raise VerifyException("nn_wgsl.workgroup_var: the array space must be workgroup")


@irdl_op_definition
class EntryOp(IRDLOperation):
    """`@compute @workgroup_size(x, y, z) fn main(...)`: the kernel's entry function."""

    name = "nn_wgsl.entry"
    workgroup_size = prop_def(DenseArrayBase)
    body = region_def("single_block")
    traits = traits_def(HasParent(ModuleOp), NoTerminator())

    def __init__(self, workgroup_size: Sequence[int], body: Region | None = None):
        _fast_init(self,
            properties={"workgroup_size": _i64_array(workgroup_size)},
            regions=[body if body is not None else Region(Block())],
        )

    @property
    def size(self) -> tuple[int, ...]:
        return tuple(self.workgroup_size.get_values())  # type: ignore[arg-type]

    def verify_(self) -> None:
        ws = self.size
        if len(ws) != 3 or any(w < 1 for w in ws):
            raise VerifyException("nn_wgsl.entry: workgroup_size must be three positive integers")

    def print(self, printer: Printer) -> None:
        printer.print_string(" workgroup_size ")
        _print_int_list(printer, self.size)
        printer.print_op_attributes(self.attributes, print_keyword=True)
        printer.print_string(" ")
        printer.print_region(self.body, print_entry_block_args=False, print_empty_block=False)

    @classmethod
    def parse(cls, parser: Parser) -> EntryOp:
        parser.parse_keyword("workgroup_size")
        ws = _parse_int_list(parser)
        attrs = parser.parse_optional_attr_dict_with_keyword()
        body = parser.parse_region()
        if not body.blocks:
            body.add_block(Block())
        op = cls(ws, body)
        if attrs is not None:
            op.attributes |= attrs.data
        return op


# -------------------------------------------------------------------------- statements


def _function_of(op: Operation) -> Operation | None:
    p = op.parent_op()
    while p is not None:
        if isinstance(p, EntryOp | FuncOp):
            return p
        p = p.parent_op()
    return None


def _check_in_entry(op: Operation) -> None:
    # Ops built detached (e.g. during conversion) are checked once they are placed.
    if op.parent_op() is not None and _function_of(op) is None:
        raise VerifyException(f"{op.name}: must be inside nn_wgsl.entry or nn_wgsl.func")


@irdl_op_definition
class FunctionVarOp(IRDLOperation):
    """`var a: array<T, N>` in function scope: per-invocation scratch (zero-initialised)."""

    name = "nn_wgsl.function_var"
    result = result_def(ArrayType)
    traits = traits_def(AllocatesResult())
    assembly_format = "attr-dict `:` type($result)"

    def __init__(self, type: ArrayType):
        _fast_init(self, result_types=[type])

    def verify_(self) -> None:
        if _array(self.result, self.name).space.data != "function":
            raise VerifyException("nn_wgsl.function_var: the array space must be function")
        _check_in_entry(self)


def indexed_type(op: str, t: ArrayType, indices: Sequence[SSAValue]) -> Attribute:
    """The type that `a[i0][i1]...` designates: each index enters one array level (nested
    arrays), and a last index may pick a lane of a vector element."""
    if not indices:
        raise VerifyException(f"{op}: at least one index is needed")
    cur: Attribute = t
    for k, v in enumerate(indices):
        if v.type not in (i32, u32):
            raise VerifyException(f"{op}: index {k} must be i32 or u32, got {v.type}")
        if isinstance(cur, ArrayType):
            cur = cur.element
        elif isinstance(cur, VectorType) and k == len(indices) - 1:
            cur = cur.get_element_type()
        else:
            raise VerifyException(f"{op}: {len(indices)} indices are too many for {t}")
    if isinstance(cur, ArrayType):
        raise VerifyException(f"{op}: {len(indices)} indices designate an array, not a value")
    return cur


def _parse_indices(parser: Parser) -> tuple[UnresolvedOperand, list[UnresolvedOperand]]:
    ref = parser.parse_unresolved_operand()
    idx = []
    while parser.parse_optional_punctuation("[") is not None:
        idx.append(parser.parse_unresolved_operand())
        parser.parse_punctuation("]")
    if not idx:
        parser.raise_error("expected an index in square brackets")
    return ref, idx


def _print_indices(printer: Printer, op: Operation) -> None:
    printer.print_ssa_value(op.ref)  # type: ignore[attr-defined]
    for v in op.indices:  # type: ignore[attr-defined]
        printer.print_string("[")
        printer.print_ssa_value(v)
        printer.print_string("]")
    printer.print_op_attributes(op.attributes)
    printer.print_string(" : ")
    printer.print_attribute(op.ref.type)  # type: ignore[attr-defined]
    for v in op.indices:  # type: ignore[attr-defined]
        printer.print_string(", ")
        printer.print_attribute(v.type)


def _parse_index_types(parser: Parser, n: int) -> tuple[Attribute, list[Attribute]]:
    parser.parse_punctuation(":")
    rt = parser.parse_type()
    its = []
    for _ in range(n):
        parser.parse_punctuation(",")
        its.append(parser.parse_type())
    return rt, its


@irdl_op_definition
class LoadOp(IRDLOperation):
    """`let v = a[i];`: reads one element of an array (`a[i][j]...`: of nested arrays, the
    last index possibly a lane of a vector element)."""

    name = "nn_wgsl.load"
    ref = operand_def(ArrayType)
    indices = var_operand_def()
    result = result_def()
    traits = traits_def(MemoryReadEffect())

    def __init__(self, ref: SSAValue, index: SSAValue | Sequence[SSAValue]):
        t = ref.type
        assert isinstance(t, ArrayType)
        idx = [index] if isinstance(index, SSAValue) else list(index)
        rt = indexed_type(self.name, t, idx)
        _fast_init(self, operands=[ref, idx], result_types=[rt])

    @property
    def index(self) -> SSAValue:
        """The first index."""
        return self.indices[0]

    def verify_(self) -> None:
        t = _array(self.ref, self.name)
        et = indexed_type(self.name, t, self.indices)
        if self.result.type != et:
            raise VerifyException(
                f"nn_wgsl.load: result type {self.result.type} is not the element type {et}"
            )

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        _print_indices(printer, self)

    @classmethod
    def parse(cls, parser: Parser) -> LoadOp:
        ref, idx = _parse_indices(parser)
        attrs = parser.parse_optional_attr_dict()
        rt, its = _parse_index_types(parser, len(idx))
        if not isinstance(rt, ArrayType):
            parser.raise_error("nn_wgsl.load: expected an !nn_wgsl.array type")
        op = cls(
            parser.resolve_operand(ref, rt),
            [parser.resolve_operand(i, t) for i, t in zip(idx, its)],
        )
        op.attributes |= attrs
        return op


@irdl_op_definition
class StoreOp(IRDLOperation):
    """`a[i] = v;`: writes one element of an array (not a read-only binding); `a[i][j]...`
    as for nn_wgsl.load."""

    name = "nn_wgsl.store"
    value = operand_def()
    ref = operand_def(ArrayType)
    indices = var_operand_def()
    traits = traits_def(MemoryWriteEffect())

    def __init__(self, value: SSAValue, ref: SSAValue, index: SSAValue | Sequence[SSAValue]):
        idx = [index] if isinstance(index, SSAValue) else list(index)
        _fast_init(self, operands=[value, ref, idx])

    @property
    def index(self) -> SSAValue:
        """The first index."""
        return self.indices[0]

    def verify_(self) -> None:
        t = _array(self.ref, self.name)
        et = indexed_type(self.name, t, self.indices)
        if self.value.type != et:
            raise VerifyException(
                f"nn_wgsl.store: value type {self.value.type} is not the element type {et}"
            )
        owner = self.ref.owner
        if isinstance(owner, BindingOp) and owner.access.data == "read":
            raise VerifyException(
                f"nn_wgsl.store: binding {owner.binding.value.data} is read-only"
            )
        _check_in_entry(self)

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_ssa_value(self.value)
        printer.print_string(", ")
        _print_indices(printer, self)

    @classmethod
    def parse(cls, parser: Parser) -> StoreOp:
        val = parser.parse_unresolved_operand()
        parser.parse_punctuation(",")
        ref, idx = _parse_indices(parser)
        attrs = parser.parse_optional_attr_dict()
        rt, its = _parse_index_types(parser, len(idx))
        if not isinstance(rt, ArrayType):
            parser.raise_error("nn_wgsl.store: expected an !nn_wgsl.array type")
        indices = [parser.resolve_operand(i, t) for i, t in zip(idx, its)]
        try:
            et = indexed_type(cls.name, rt, indices)
        except VerifyException as e:
            parser.raise_error(str(e))
        op = cls(parser.resolve_operand(val, et), parser.resolve_operand(ref, rt), indices)
        op.attributes |= attrs
        return op


@irdl_op_definition
class ForOp(IRDLOperation):
    """`for (var i: i32 = lb; i < ub; i = i + step) { body }` with constant bounds; the body
    block's argument is `i`."""

    name = "nn_wgsl.for"
    lb = prop_def(IntegerAttr[I64])
    ub = prop_def(IntegerAttr[I64])
    step = prop_def(IntegerAttr[I64])
    body = region_def("single_block")
    traits = traits_def(NoTerminator(), RecursiveMemoryEffect())

    def __init__(self, lb: int, ub: int, step: int = 1, body: Region | None = None):
        _fast_init(self,
            properties={
                "lb": _i64(lb),
                "ub": _i64(ub),
                "step": _i64(step),
            },
            regions=[body if body is not None else Region(Block(arg_types=[i32]))],
        )

    @property
    def iv(self) -> SSAValue:
        return self.body.block.args[0]

    def verify_(self) -> None:
        args = self.body.block.args
        if len(args) != 1 or args[0].type != i32:
            raise VerifyException("nn_wgsl.for: the body must take one i32 argument")
        if self.step.value.data <= 0:
            raise VerifyException(f"nn_wgsl.for: step must be positive, got {self.step.value.data}")
        for b in (self.lb, self.ub):
            if not -(2**31) <= b.value.data < 2**31:
                raise VerifyException("nn_wgsl.for: bounds must fit in i32")
        _check_in_entry(self)

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_ssa_value(self.iv)
        printer.print_string(f" = {self.lb.value.data} to {self.ub.value.data}")
        if self.step.value.data != 1:
            printer.print_string(f" step {self.step.value.data}")
        printer.print_op_attributes(self.attributes, print_keyword=True)
        printer.print_string(" ")
        printer.print_region(self.body, print_entry_block_args=False, print_empty_block=False)

    @classmethod
    def parse(cls, parser: Parser) -> ForOp:
        iv = parser.parse_argument(expect_type=False)
        parser.parse_punctuation("=")
        lb = parser.parse_integer(allow_boolean=False)
        parser.parse_keyword("to")
        ub = parser.parse_integer(allow_boolean=False)
        step = 1
        if parser.parse_optional_keyword("step"):
            step = parser.parse_integer(allow_boolean=False)
        attrs = parser.parse_optional_attr_dict_with_keyword()
        body = parser.parse_region([iv.resolve(i32)])
        op = cls(lb, ub, step, body)
        if attrs is not None:
            op.attributes |= attrs.data
        return op


@irdl_op_definition
class IfOp(IRDLOperation):
    """`if (cond) { body }` (no else)."""

    name = "nn_wgsl.if"
    cond = operand_def(i1)
    body = region_def("single_block")
    traits = traits_def(NoTerminator(), RecursiveMemoryEffect(), RecursivelySpeculatable())

    def __init__(self, cond: SSAValue, body: Region | None = None):
        _fast_init(self,
            operands=[cond], regions=[body if body is not None else Region(Block())]
        )

    def verify_(self) -> None:
        _check_in_entry(self)

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_ssa_value(self.cond)
        printer.print_op_attributes(self.attributes, print_keyword=True)
        printer.print_string(" ")
        printer.print_region(self.body, print_entry_block_args=False, print_empty_block=False)

    @classmethod
    def parse(cls, parser: Parser) -> IfOp:
        cond = parser.resolve_operand(parser.parse_unresolved_operand(), i1)
        attrs = parser.parse_optional_attr_dict_with_keyword()
        body = parser.parse_region()
        if not body.blocks:
            body.add_block(Block())
        op = cls(cond, body)
        if attrs is not None:
            op.attributes |= attrs.data
        return op


@irdl_op_definition
class BarrierOp(IRDLOperation):
    """`workgroupBarrier();` (must be reached in uniform control flow)."""

    name = "nn_wgsl.barrier"
    traits = traits_def(MemoryReadEffect(), MemoryWriteEffect())
    assembly_format = "attr-dict"

    def verify_(self) -> None:
        _check_in_entry(self)
        p = self.parent_op()
        while p is not None and not isinstance(p, EntryOp):
            if isinstance(p, IfOp) and not is_uniform(p.cond):
                raise VerifyException(
                    "nn_wgsl.barrier: inside an nn_wgsl.if whose condition may differ between "
                    "the invocations of a workgroup (non-uniform control flow)"
                )
            p = p.parent_op()


@irdl_op_definition
class ReturnOp(IRDLOperation):
    """`return;` in the entry function (the invocation stops: used for workgroups past the
    end of a linearised grid), or `return v;` ending an nn_wgsl.func."""

    name = "nn_wgsl.return"
    value = opt_operand_def()
    traits = traits_def(IsTerminator())
    assembly_format = "($value^ `:` type($value))? attr-dict"

    def __init__(self, value: SSAValue | None = None):
        _fast_init(self, operands=[[value] if value is not None else []])

    def verify_(self) -> None:
        _check_in_entry(self)
        f = _function_of(self)
        if isinstance(f, EntryOp) and self.value is not None:
            raise VerifyException("nn_wgsl.return: the entry function returns no value")
        if isinstance(f, FuncOp):
            if self.value is None or self.value.type != f.result_type:
                raise VerifyException(
                    f"nn_wgsl.return: @{f.sym_name.data} must return a value of type "
                    f"{f.result_type}"
                )


@irdl_op_definition
class FuncOp(IRDLOperation):
    """`fn f(x: T, ...) -> R { ... return r; }`: a helper function of the kernel module (for
    expansions such as erf that are used many times). Its body ends with nn_wgsl.return."""

    name = "nn_wgsl.func"
    sym_name = prop_def(StringAttr)
    result_type = prop_def(Attribute)
    body = region_def("single_block")
    traits = traits_def(
        HasParent(ModuleOp), SymbolOpInterface(), IsolatedFromAbove(), NoTerminator()
    )

    def __init__(self, name: str, arg_types: Sequence[Attribute], result_type: Attribute,
                 body: Region | None = None):  # fmt: skip
        _fast_init(self,
            properties={"sym_name": StringAttr(name), "result_type": result_type},
            regions=[body if body is not None else Region(Block(arg_types=arg_types))],
        )

    def verify_(self) -> None:
        where = f"nn_wgsl.func @{self.sym_name.data}"
        for a in self.body.block.args:
            _check_value_type(where, "an argument", a.type)
        _check_value_type(where, "the result", self.result_type)
        if not isinstance(self.body.block.last_op, ReturnOp):
            raise VerifyException(f"{where}: the body must end with nn_wgsl.return")

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_symbol_name(self.sym_name.data)
        printer.print_string("(")
        printer.print_list(self.body.block.args, printer.print_block_argument)
        printer.print_string(") -> ")
        printer.print_attribute(self.result_type)
        printer.print_op_attributes(self.attributes, print_keyword=True)
        printer.print_string(" ")
        printer.print_region(self.body, print_entry_block_args=False)

    @classmethod
    def parse(cls, parser: Parser) -> FuncOp:
        name = parser.parse_symbol_name().data
        args = parser.parse_comma_separated_list(
            Parser.Delimiter.PAREN, lambda: parser.parse_argument(expect_type=True)
        )
        parser.parse_punctuation("->")
        rt = parser.parse_type()
        attrs = parser.parse_optional_attr_dict_with_keyword()
        body = parser.parse_region(args)
        op = cls(name, [a.type for a in args], rt, body)  # type: ignore[misc]
        if attrs is not None:
            op.attributes |= attrs.data
        return op


@irdl_op_definition
class CallFuncOp(IRDLOperation):
    """`let v = f(args);` for a helper function @f (an nn_wgsl.func of the same module)."""

    name = "nn_wgsl.call_func"
    callee = prop_def(SymbolRefAttr)
    args = var_operand_def()
    result = result_def()
    traits = traits_def(Pure())

    def __init__(self, callee: str, args: Sequence[SSAValue], result_type: Attribute):
        _fast_init(self,
            properties={"callee": SymbolRefAttr(callee)},
            operands=[args],
            result_types=[result_type],
        )

    def verify_(self) -> None:
        _check_in_entry(self)
        name = self.callee.string_value()
        f = None
        m = self.parent_op()
        while m is not None and not isinstance(m, ModuleOp):
            m = m.parent_op()
        if m is not None:
            f = next(
                (o for o in m.body.block.ops if isinstance(o, FuncOp) and o.sym_name.data == name),
                None,
            )
        if m is None:
            return  # detached: checked once placed in a module
        if not isinstance(f, FuncOp):
            raise VerifyException(f"nn_wgsl.call_func: @{name} is not an nn_wgsl.func")
        arg_types = [a.type for a in f.body.block.args]
        if [a.type for a in self.args] != arg_types or self.result.type != f.result_type:
            raise VerifyException(
                f"nn_wgsl.call_func: the operand or result types do not match @{name}"
            )

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_attribute(self.callee)
        _print_call_like(printer, self, "", self.args)

    @classmethod
    def parse(cls, parser: Parser) -> CallFuncOp:
        callee = parser.parse_symbol_name().data
        args, rt, attrs = _parse_call_like(parser)
        op = cls(callee, args, rt)
        op.attributes |= attrs
        return op


# ------------------------------------------------------------------------- expressions


def is_uniform(v: SSAValue, _memo: dict[SSAValue, bool] | None = None) -> bool:
    """Whether `v` is the same for all invocations of a workgroup, by WGSL's rules as far as
    they matter here: constants, workgroup_id, `for` counters (static bounds) and expressions
    of those are uniform; local_invocation_id and memory loads are not."""
    memo = {} if _memo is None else _memo
    r = memo.get(v)
    if r is not None:
        return r
    if isinstance(v, BlockArgument):
        r = isinstance(v.owner.parent_op(), ForOp)
    else:
        op = v.owner
        if isinstance(op, ConstOp):
            r = True
        elif isinstance(op, BuiltinOp):
            r = op.builtin.data == "workgroup_id"
        elif isinstance(
            op,
            BinaryOp | UnaryOp | CallOp | CallFuncOp | ConstructOp | LaneOp | ConvertOp | BitcastOp,
        ):
            r = all(is_uniform(o, memo) for o in op.operands)
        else:
            r = False
    memo[v] = r
    return r



@irdl_op_definition
class ConstOp(IRDLOperation):
    """A scalar literal (f32, i32, u32 or bool); printed inline where it is used."""

    name = "nn_wgsl.const"
    value = prop_def(Attribute)
    result = result_def()
    traits = traits_def(Pure())

    def __init__(self, value: IntegerAttr | FloatAttr):
        _fast_init(self, properties={"value": value}, result_types=[value.type])

    @staticmethod
    def from_value(v: int | float | bool, type: Attribute) -> ConstOp:
        if type == f32:
            return ConstOp(FloatAttr(float(v), f32))
        assert isinstance(type, IntegerType)
        if type == i1:
            return ConstOp(IntegerAttr(1 if v else 0, i1))
        return ConstOp(IntegerAttr(int(v), type))

    def verify_(self) -> None:
        v = self.value
        if not isinstance(v, IntegerAttr | FloatAttr) or not is_scalar_type(v.type):
            raise VerifyException(
                f"nn_wgsl.const: value must be an f32, i32, u32 or i1 literal, got {v}"
            )
        if self.result.type != v.type:
            raise VerifyException("nn_wgsl.const: result type must equal the literal's type")

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        v = self.value
        if isinstance(v, IntegerAttr) and v.type == i1:
            printer.print_string("true" if v.value.data else "false")
        else:
            printer.print_attribute(v)
        printer.print_op_attributes(self.attributes)

    @classmethod
    def parse(cls, parser: Parser) -> ConstOp:
        if parser.parse_optional_keyword("true"):
            op = cls(IntegerAttr(1, i1))
        elif parser.parse_optional_keyword("false"):
            op = cls(IntegerAttr(0, i1))
        else:
            v = parser.parse_attribute()
            if not isinstance(v, IntegerAttr | FloatAttr):
                parser.raise_error("nn_wgsl.const: expected an integer or float literal")
            op = cls(v)
        op.attributes |= parser.parse_optional_attr_dict()
        return op


@irdl_op_definition
class BuiltinOp(IRDLOperation):
    """`let v = i32(builtin.dim);` for builtin workgroup_id or local_invocation_id."""

    name = "nn_wgsl.builtin"
    builtin = prop_def(BuiltinAttr)
    dim = prop_def(DimAttr)
    result = result_def(i32)
    traits = traits_def(Pure())

    def __init__(self, builtin: str, dim: str):
        _fast_init(self,
            properties={"builtin": BUILTIN_ATTRS[builtin], "dim": DIM_ATTRS[dim]},
            result_types=[i32],
        )

    def verify_(self) -> None:
        _check_in_entry(self)

    def print(self, printer: Printer) -> None:
        printer.print_string(f" {self.builtin.data} {self.dim.data}")
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : i32")

    @classmethod
    def parse(cls, parser: Parser) -> BuiltinOp:
        b = parser.parse_str_enum(Builtin)
        d = parser.parse_str_enum(Dim)
        attrs = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        parser.parse_keyword("i32")
        op = cls(b, d)
        op.attributes |= attrs
        return op


@irdl_op_definition
class BinaryOp(IRDLOperation):
    """`let v = lhs OP rhs;` for a WGSL binary operator (arithmetic, bitwise, shift,
    comparison, logical). Arithmetic accepts a vector with a scalar of its element type;
    shifts take an unsigned right-hand side; comparisons give bool (vecN<bool>)."""

    name = "nn_wgsl.binary"
    op = prop_def(BinaryOperatorAttr)
    lhs = operand_def()
    rhs = operand_def()
    result = result_def()
    traits = traits_def(Pure())

    def __init__(self, op: str, lhs: SSAValue, rhs: SSAValue, result_type: Attribute | None = None):
        if result_type is None:
            result_type = binary_result_type(op, lhs.type, rhs.type)
        _fast_init(self,
            properties={"op": BINARY_OP_ATTRS[op]}, operands=[lhs, rhs], result_types=[result_type]
        )

    def verify_(self) -> None:
        o = self.op.data
        a, b = self.lhs.type, self.rhs.type
        _check_value_type(self.name, "the left operand", a)
        _check_value_type(self.name, "the right operand", b)
        try:
            expected = binary_result_type(o, a, b)
        except ValueError as e:
            raise VerifyException(f"nn_wgsl.binary: {e}") from None
        if self.result.type != expected:
            raise VerifyException(
                f"nn_wgsl.binary: '{o}' on {a} and {b} gives {expected}, not {self.result.type}"
            )

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_string_literal(self.op.data)
        printer.print_string(" ")
        printer.print_ssa_value(self.lhs)
        printer.print_string(", ")
        printer.print_ssa_value(self.rhs)
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.lhs.type)
        printer.print_string(", ")
        printer.print_attribute(self.rhs.type)
        printer.print_string(" -> ")
        printer.print_attribute(self.result.type)

    @classmethod
    def parse(cls, parser: Parser) -> BinaryOp:
        o = parser.parse_str_enum(BinaryOperator)
        a = parser.parse_unresolved_operand()
        parser.parse_punctuation(",")
        b = parser.parse_unresolved_operand()
        attrs = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        ta = parser.parse_type()
        parser.parse_punctuation(",")
        tb = parser.parse_type()
        parser.parse_punctuation("->")
        tr = parser.parse_type()
        op = cls(o, parser.resolve_operand(a, ta), parser.resolve_operand(b, tb), tr)
        op.attributes |= attrs
        return op


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


@irdl_op_definition
class UnaryOp(IRDLOperation):
    """`let v = OP x;` for `-` (numbers), `!` (bool) or `~` (integers)."""

    name = "nn_wgsl.unary"
    op = prop_def(UnaryOperatorAttr)
    input = operand_def()
    result = result_def()
    traits = traits_def(Pure())

    def __init__(self, op: str, input: SSAValue):
        _fast_init(self,
            properties={"op": UNARY_OP_ATTRS[op]}, operands=[input], result_types=[input.type]
        )

    def verify_(self) -> None:
        o, t = self.op.data, self.input.type
        _check_value_type(self.name, "the operand", t)
        ok = (
            (o == "-" and (is_float(t) or _scalar(t) == i32))
            or (o == "!" and is_bool(t))
            or (o == "~" and is_int(t))
        )
        if not ok:
            raise VerifyException(f"nn_wgsl.unary: '{o}' is not defined on {t}")
        if self.result.type != t:
            raise VerifyException("nn_wgsl.unary: result type must equal the operand type")

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_string_literal(self.op.data)
        printer.print_string(" ")
        printer.print_ssa_value(self.input)
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.input.type)

    @classmethod
    def parse(cls, parser: Parser) -> UnaryOp:
        o = parser.parse_str_enum(UnaryOperator)
        a = parser.parse_unresolved_operand()
        attrs = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        t = parser.parse_type()
        op = cls(o, parser.resolve_operand(a, t))
        op.attributes |= attrs
        return op


def _print_call_like(printer: Printer, op: IRDLOperation, head: str, args: Sequence[SSAValue]):
    printer.print_string(head)
    printer.print_string("(")
    printer.print_list(args, printer.print_ssa_value)
    printer.print_string(")")
    printer.print_op_attributes(op.attributes)
    printer.print_string(" : (")
    printer.print_list([a.type for a in args], printer.print_attribute)
    printer.print_string(") -> ")
    printer.print_attribute(op.results[0].type)


def _parse_call_like(parser: Parser) -> tuple[list[SSAValue], Attribute, dict[str, Attribute]]:
    args = parser.parse_comma_separated_list(
        Parser.Delimiter.PAREN, parser.parse_unresolved_operand
    )
    attrs = parser.parse_optional_attr_dict()
    parser.parse_punctuation(":")
    types = parser.parse_comma_separated_list(Parser.Delimiter.PAREN, parser.parse_type)
    parser.parse_punctuation("->")
    rt = parser.parse_type()
    if len(types) != len(args):
        parser.raise_error(f"{len(args)} operands but {len(types)} operand types")
    return [parser.resolve_operand(a, t) for a, t in zip(args, types)], rt, attrs


@irdl_op_definition
class CallOp(IRDLOperation):
    """`let v = f(args);` for a WGSL builtin function f (exp, tanh, max, fma, select, ...)."""

    name = "nn_wgsl.call"
    callee = prop_def(BuiltinFunctionAttr)
    args = var_operand_def()
    result = result_def()
    traits = traits_def(Pure())

    def __init__(self, callee: str, args: Sequence[SSAValue], result_type: Attribute | None = None):
        if result_type is None:
            result_type = args[0].type
            if callee == "select":
                result_type = args[0].type
            elif callee == "dot":
                result_type = _scalar(args[0].type)
        _fast_init(self,
            properties={"callee": FUNCTION_ATTRS[callee]}, operands=[args], result_types=[result_type]
        )

    def verify_(self) -> None:
        f = self.callee.data
        args = self.args
        if len(args) != CALLS[f]:
            raise VerifyException(f"nn_wgsl.call: {f} takes {CALLS[f]} arguments, got {len(args)}")
        for a in args:
            _check_value_type(self.name, "an argument", a.type)
        t0, rt = args[0].type, self.result.type
        if f == "select":
            if args[1].type != t0 or args[2].type not in (i1, bool_like(t0)):
                raise VerifyException(
                    "nn_wgsl.call: select(f, t, cond) needs f and t of one type and a bool "
                    "(or matching vector of bool) condition"
                )
            expected = t0
        elif f == "dot":
            if not isinstance(t0, VectorType) or args[1].type != t0 or is_bool(t0):
                raise VerifyException("nn_wgsl.call: dot needs two numeric vectors of one type")
            expected = _scalar(t0)
        else:
            if any(a.type != t0 for a in args):
                raise VerifyException(f"nn_wgsl.call: the arguments of {f} must have one type")
            if is_bool(t0):
                raise VerifyException(f"nn_wgsl.call: {f} is not defined on bool")
            if f not in ("abs", "max", "min", "clamp", "sign") and not is_float(t0):
                raise VerifyException(f"nn_wgsl.call: {f} needs floating-point arguments")
            expected = t0
        if rt != expected:
            raise VerifyException(f"nn_wgsl.call: {f} gives {expected}, not {rt}")

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_string_literal(self.callee.data)
        _print_call_like(printer, self, "", self.args)

    @classmethod
    def parse(cls, parser: Parser) -> CallOp:
        f = parser.parse_str_enum(BuiltinFunction)
        args, rt, attrs = _parse_call_like(parser)
        op = cls(f, args, rt)
        op.attributes |= attrs
        return op


@irdl_op_definition
class ConstructOp(IRDLOperation):
    """`let v = vecN<T>(a, b, ...)`: a vector from N scalars, or from one scalar (splat)."""

    name = "nn_wgsl.construct"
    args = var_operand_def()
    result = result_def(VectorType)
    traits = traits_def(Pure())

    def __init__(self, args: Sequence[SSAValue], result_type: VectorType):
        _fast_init(self, operands=[args], result_types=[result_type])

    def verify_(self) -> None:
        t = self.result.type
        _check_value_type(self.name, "the result", t)
        n, e = lanes(t), _scalar(t)
        if len(self.args) not in (1, n):
            raise VerifyException(
                f"nn_wgsl.construct: {t} needs 1 or {n} scalars, got {len(self.args)}"
            )
        if any(a.type != e for a in self.args):
            raise VerifyException(f"nn_wgsl.construct: the operands of {t} must be {e}")

    def print(self, printer: Printer) -> None:
        _print_call_like(printer, self, " ", self.args)

    @classmethod
    def parse(cls, parser: Parser) -> ConstructOp:
        args, rt, attrs = _parse_call_like(parser)
        if not isinstance(rt, VectorType):
            parser.raise_error("nn_wgsl.construct: the result must be a vector type")
        op = cls(args, rt)
        op.attributes |= attrs
        return op


@irdl_op_definition
class LaneOp(IRDLOperation):
    """`let v = x.y;`: lane `lane` (0..N-1) of a vector."""

    name = "nn_wgsl.lane"
    input = operand_def(VectorType)
    lane = prop_def(IntegerAttr[I64])
    result = result_def()
    traits = traits_def(Pure())

    def __init__(self, input: SSAValue, lane: int):
        _fast_init(self,
            operands=[input],
            properties={"lane": IntegerAttr(lane, 64)},
            result_types=[_scalar(input.type)],
        )

    def verify_(self) -> None:
        t = self.input.type
        _check_value_type(self.name, "the operand", t)
        if not 0 <= self.lane.value.data < lanes(t):
            raise VerifyException(f"nn_wgsl.lane: lane {self.lane.value.data} out of range for {t}")
        if self.result.type != _scalar(t):
            raise VerifyException("nn_wgsl.lane: the result type must be the lane type")

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_ssa_value(self.input)
        printer.print_string(f" {self.lane.value.data}")
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.input.type)

    @classmethod
    def parse(cls, parser: Parser) -> LaneOp:
        a = parser.parse_unresolved_operand()
        lane = parser.parse_integer(allow_negative=False, allow_boolean=False)
        attrs = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        t = parser.parse_type()
        op = cls(parser.resolve_operand(a, t), lane)
        op.attributes |= attrs
        return op


class _CastBase(IRDLOperation):
    input = operand_def()
    result = result_def()
    traits = traits_def(Pure())

    def __init__(self, input: SSAValue, result_type: Attribute):
        _fast_init(self, operands=[input], result_types=[result_type])

    def _check_types(self) -> tuple[Attribute, Attribute]:
        a, r = self.input.type, self.result.type
        _check_value_type(self.name, "the operand", a)
        _check_value_type(self.name, "the result", r)
        if lanes(a) != lanes(r):
            raise VerifyException(f"{self.name}: {a} and {r} have different lane counts")
        return a, r

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_ssa_value(self.input)
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.input.type)
        printer.print_string(" -> ")
        printer.print_attribute(self.result.type)

    @classmethod
    def parse(cls, parser: Parser):
        a = parser.parse_unresolved_operand()
        attrs = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        t = parser.parse_type()
        parser.parse_punctuation("->")
        rt = parser.parse_type()
        op = cls(parser.resolve_operand(a, t), rt)
        op.attributes |= attrs
        return op


@irdl_op_definition
class ConvertOp(_CastBase):
    """`let v = T(x);`: value conversion between f32, i32, u32 and bool (WGSL semantics:
    f32 -> i32 truncates toward zero and saturates; bool -> number gives 0 or 1)."""

    name = "nn_wgsl.convert"

    def verify_(self) -> None:
        self._check_types()


@irdl_op_definition
class BitcastOp(_CastBase):
    """`let v = bitcast<T>(x);`: reinterprets the 32 bits of f32 / i32 / u32 (lane-wise)."""

    name = "nn_wgsl.bitcast"

    def verify_(self) -> None:
        a, r = self._check_types()
        if is_bool(a) or is_bool(r):
            raise VerifyException("nn_wgsl.bitcast: bool has no bit representation")


NNWgsl = Dialect(
    "nn_wgsl",
    [
        ModuleOp, BindingOp, WorkgroupVarOp, EntryOp, FunctionVarOp, LoadOp, StoreOp, ForOp,
        IfOp, BarrierOp, ReturnOp, FuncOp, CallFuncOp, ConstOp, BuiltinOp, BinaryOp, UnaryOp,
        CallOp, ConstructOp,
        LaneOp, ConvertOp, BitcastOp,
    ],  # fmt: skip
    [
        ArrayType, AddressSpaceAttr, AccessModeAttr, BuiltinAttr, DimAttr, BinaryOperatorAttr,
        UnaryOperatorAttr, BuiltinFunctionAttr,
    ],  # fmt: skip
)

__all__ = [
    "NNWgsl", "ArrayType", "ModuleOp", "BindingOp", "WorkgroupVarOp", "EntryOp",
    "FunctionVarOp", "LoadOp", "StoreOp", "ForOp", "IfOp", "BarrierOp", "ReturnOp", "FuncOp",
    "CallFuncOp", "ConstOp",
    "BuiltinOp", "BinaryOp", "UnaryOp", "CallOp", "ConstructOp", "LaneOp", "ConvertOp",
    "BitcastOp", "is_uniform", "lane_type", "u32", "type_name", "binary_result_type",
    "is_value_type", "SPACES",
    "ACCESS", "BINARY_OPS", "UNARY_OPS", "CALLS", "BUILTINS", "AddressSpace", "AccessMode",
    "Builtin", "Dim", "BinaryOperator", "UnaryOperator", "BuiltinFunction", "AddressSpaceAttr",
    "AccessModeAttr", "BuiltinAttr", "DimAttr", "BinaryOperatorAttr", "UnaryOperatorAttr",
    "BuiltinFunctionAttr", "SPACE_ATTRS", "ACCESS_ATTRS", "BUILTIN_ATTRS", "DIM_ATTRS",
    "BINARY_OP_ATTRS", "UNARY_OP_ATTRS", "FUNCTION_ATTRS",
]  # fmt: skip
