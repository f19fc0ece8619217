"""nn_wgsl's declarations: `nn_wgsl.module` (one kernel), `nn_wgsl.binding`,
`nn_wgsl.workgroup_var`, the entry function `nn_wgsl.entry`, helper functions `nn_wgsl.func` and
the `nn_wgsl.return` that ends them."""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects.builtin import (
    I64,
    DenseArrayBase,
    DictionaryAttr,
    IntegerAttr,
    StringAttr,
    f16,
    f32,
    i32,
)
from xdsl.ir import (
    Attribute,
    Block,
    Operation,
    Region,
    SSAValue,
)
from xdsl.irdl import (
    IRDLOperation,
    irdl_op_definition,
    opt_operand_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
)
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import (
    HasParent,
    IsolatedFromAbove,
    IsTerminator,
    NoTerminator,
    SymbolOpInterface,
    SymbolTable,
)
from xdsl.utils.exceptions import VerifyException

from nnjit.dialects.nn_wgsl.attributes import (
    ACCESS_ATTRS,
    AccessMode,
    AccessModeAttr,
    AddressSpace,
    ArrayType,
    _array,
    _check_value_type,
    _i64_array,
    _parse_int_list,
    _print_int_list,
    _scalar,
    dense_values,
)
from nnjit.dialects.traits import AllocatesResult
from nnjit.ir.fastir import fast_init as _fast_init
from nnjit.ir.fastir import i64_attr as _i64

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
        return dense_values(self.dispatch)

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
        return dense_values(self.shape)

    def verify_(self) -> None:
        t = _array(self.result, self.name)
        if t.space.data != AddressSpace.STORAGE or t.count.data != 0:
            raise VerifyException(
                "nn_wgsl.binding: the type must be a runtime-sized storage array, got " + str(t)
            )
        if self.binding.value.data < 0:
            raise VerifyException("nn_wgsl.binding: binding index must not be negative")
        if any(d < 0 for d in self.logical_shape):
            raise VerifyException("nn_wgsl.binding: shape dimensions must not be negative")
        if _scalar(t.element) not in (f32, i32, f16):
            raise VerifyException(
                "nn_wgsl.binding: buffer elements must be f32, i32 or f16 (or vectors)"
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
        if _array(self.result, self.name).space.data != AddressSpace.WORKGROUP:
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
        return dense_values(self.workgroup_size)

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
