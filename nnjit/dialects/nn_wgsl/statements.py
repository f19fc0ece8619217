"""nn_wgsl's statements: function-scope arrays, loads and stores (one index per level of nested
arrays), `for`, `if` and `barrier`; and `is_uniform`, WGSL's uniformity rule as far as
barriers need it.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects.builtin import (
    I64,
    IntegerAttr,
    VectorType,
    i1,
    i32,
)
from xdsl.ir import (
    Attribute,
    Block,
    BlockArgument,
    Operation,
    Region,
    SSAValue,
)
from xdsl.irdl import (
    IRDLOperation,
    irdl_op_definition,
    operand_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.parser import Parser, UnresolvedOperand
from xdsl.printer import Printer
from xdsl.traits import (
    MemoryReadEffect,
    MemoryWriteEffect,
    NoTerminator,
    RecursivelySpeculatable,
    RecursiveMemoryEffect,
)
from xdsl.utils.exceptions import VerifyException

from nnjit.dialects.nn_wgsl.attributes import (
    AddressSpace,
    ArrayType,
    _array,
    u32,
)
from nnjit.dialects.nn_wgsl.declarations import (
    BindingOp,
    EntryOp,
    _check_in_entry,
)
from nnjit.dialects.nn_wgsl.expressions import (
    BinaryOp,
    BitcastOp,
    BuiltinOp,
    CallFuncOp,
    CallOp,
    ConstOp,
    ConstructOp,
    ConvertOp,
    LaneOp,
    UnaryOp,
)
from nnjit.dialects.traits import AllocatesResult
from nnjit.ir.fastir import fast_init as _fast_init
from nnjit.ir.fastir import i64_attr as _i64

# -------------------------------------------------------------------------- statements


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
        if _array(self.result, self.name).space.data != AddressSpace.FUNCTION:
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

    def __init__(self):
        _fast_init(self)  # (IRDL's generic constructor costs ~15 us, a kernel has dozens)

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


# ------------------------------------------------------------------------- uniformity


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
