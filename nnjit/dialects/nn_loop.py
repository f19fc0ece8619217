"""nn_loop: kernels as loop nests over buffers, with the schedule explicit in the IR.

Two layers live here (docs/ir.md has the full contract):

* Kernels. `nn_loop.kernel @name(%buf: memref<...>, ...)` is one GPU dispatch / one Wasm
  function. Its body is `nn_loop.for` loops with static bounds, each with a `map` saying what
  runs its iterations: "serial" (an ordinary loop), "workgroup.x|y|z" (the WebGPU grid),
  "invocation.x|y|z" (threads of one workgroup), "thread" (Wasm worker threads), and an
  `unroll` factor. Inside: `nn_loop.load`/`nn_loop.store` on buffers (scalar or vector<Nx..>
  along the innermost dim), `nn_loop.alloc` for private (registers) or workgroup (shared)
  scratch, `nn_loop.barrier`, and scalar/vector arithmetic from the `arith` and `math`
  dialects on `index`, i32, i1, f32 and vector<4xf32>.
* The model. `func.func @main` over memrefs: `nn_loop.weight`, `nn_loop.buffer` (an
  intermediate), `nn_loop.view` (a reshape: same storage, new shape) and
  `nn_loop.launch @kernel(buffers)` in program order; `func.return` names the outputs.

Ops declare their memory effects as xDSL's do, so its generic `cse`, `dce` and `canonicalize`
work on nn_loop: value ops are `Pure`, loads read, stores write, allocations allocate their
result, barriers and launches read and write, loops and ifs have their bodies' effects.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import ClassVar

from xdsl.dialects.builtin import (
    I64,
    ArrayAttr,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    DictionaryAttr,
    Float32Type,
    IndexType,
    IntAttr,
    IntegerAttr,
    IntegerType,
    MemRefType,
    NoneAttr,
    StringAttr,
    SymbolRefAttr,
    VectorType,
    i1,
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
    ParsePropInAttrDict,
    VarConstraint,
    base,
    irdl_attr_definition,
    irdl_op_definition,
    lazy_traits_def,
    operand_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
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
    RecursivelySpeculatable,
    RecursiveMemoryEffect,
    SingleBlockImplicitTerminator,
    SymbolOpInterface,
    SymbolTable,
)
from xdsl.utils.exceptions import VerifyException
from xdsl.utils.str_enum import StrEnum

from nnjit.dialects.traits import AllocatesResult
from nnjit.ir.fastir import fast_init
from nnjit.ir.fastir import i64_attr as _i64
from nnjit.ir.fastir import str_attr as _str


class LoopMap(StrEnum):
    """What executes the iterations of an nn_loop.for (docs/ir.md)."""

    SERIAL = "serial"
    WORKGROUP_X = "workgroup.x"
    WORKGROUP_Y = "workgroup.y"
    WORKGROUP_Z = "workgroup.z"
    INVOCATION_X = "invocation.x"
    INVOCATION_Y = "invocation.y"
    INVOCATION_Z = "invocation.z"
    THREAD = "thread"


class AccessMode(StrEnum):
    """How a kernel uses a buffer argument."""

    READ = "read"
    WRITE = "write"
    READ_WRITE = "read_write"


class KernelTarget(StrEnum):
    """The web level a kernel is written for."""

    WGSL = "wgsl"
    WASM = "wasm"


class MemorySpace(StrEnum):
    """Where a buffer lives: kernel arguments are global (a memref with no memory space);
    nn_loop.alloc gives private (per invocation: registers) or workgroup (shared) scratch."""

    GLOBAL = "global"
    PRIVATE = "private"
    WORKGROUP = "workgroup"


class ReductionKind(StrEnum):
    """How nn_loop.reduce_lanes combines lanes."""

    ADD = "add"
    MAX = "max"


@irdl_attr_definition
class LoopMapAttr(EnumAttribute[LoopMap], SpacedOpaqueSyntaxAttribute):
    """`#nn_loop<map workgroup.x>` (nn_loop.for prints it as `map "workgroup.x"`)."""

    name = "nn_loop.map"


@irdl_attr_definition
class AccessModeAttr(EnumAttribute[AccessMode], SpacedOpaqueSyntaxAttribute):
    """`#nn_loop<access read>` (nn_loop.kernel prints it after each argument's type)."""

    name = "nn_loop.access"


@irdl_attr_definition
class KernelTargetAttr(EnumAttribute[KernelTarget], SpacedOpaqueSyntaxAttribute):
    """`#nn_loop<target wgsl>` (nn_loop.kernel prints it as `target "wgsl"`)."""

    name = "nn_loop.target"


@irdl_attr_definition
class MemorySpaceAttr(EnumAttribute[MemorySpace], SpacedOpaqueSyntaxAttribute):
    """`#nn_loop<space private>`: a memref's memory space (`memref<4xf32, #nn_loop<space
    workgroup>>`); a memref without one is global."""

    name = "nn_loop.space"


@irdl_attr_definition
class ReductionKindAttr(EnumAttribute[ReductionKind], SpacedOpaqueSyntaxAttribute):
    """`#nn_loop<reduction add>` (nn_loop.reduce_lanes prints it as `add`)."""

    name = "nn_loop.reduction"


# One shared attribute per value (attributes are immutable; the builders look them up by name).
MAP_ATTRS = {m.value: LoopMapAttr(m) for m in LoopMap}
ACCESS_ATTRS = {m.value: AccessModeAttr(m) for m in AccessMode}
TARGET_ATTRS = {m.value: KernelTargetAttr(m) for m in KernelTarget}
REDUCTION_ATTRS = {m.value: ReductionKindAttr(m) for m in ReductionKind}
SPACE_ATTRS = {m.value: MemorySpaceAttr(m) for m in MemorySpace}

MAPS = tuple(MAP_ATTRS)
"""What executes the iterations of an nn_loop.for, by name."""

SPACES = tuple(SPACE_ATTRS)
"""Memory spaces: kernel arguments are global; nn_loop.alloc gives private or workgroup."""

ACCESS = tuple(ACCESS_ATTRS)


def memory_space(t: MemRefType) -> MemorySpace | None:
    """The memory space of a memref type: GLOBAL when it has none, None when it has an
    attribute that is not an nn_loop memory space (the verifiers reject it)."""
    ms = t.memory_space
    if isinstance(ms, MemorySpaceAttr):
        return ms.data
    return MemorySpace.GLOBAL if isinstance(ms, NoneAttr) else None


# ------------------------------------------------------------------------------ kernels



@irdl_op_definition
class YieldOp(IRDLOperation):
    """Terminates nn_loop.for and nn_loop.if bodies (implicit in the custom syntax)."""

    name = "nn_loop.yield"
    traits = lazy_traits_def(lambda: (IsTerminator(), HasParent(KernelOp, ForOp, IfOp), Pure()))
    assembly_format = "attr-dict"


@irdl_op_definition
class KernelOp(IRDLOperation):
    """One kernel: a loop nest over its buffer arguments (memrefs in the global space).

    `access` gives each argument's access mode; `kind` the kernel family (matmul, softmax,
    ...); `schedule` the options the lowering used (so the kernel replays from one line).
    """

    name = "nn_loop.kernel"
    sym_name = prop_def(StringAttr)
    access = prop_def(ArrayAttr[AccessModeAttr])
    kind = prop_def(StringAttr)
    schedule = prop_def(DictionaryAttr, default_value=DictionaryAttr({}))
    target = prop_def(KernelTargetAttr, default_value=TARGET_ATTRS["wgsl"])
    body = region_def("single_block")
    traits = traits_def(
        SymbolOpInterface(), IsolatedFromAbove(), SingleBlockImplicitTerminator(YieldOp)
    )

    def __init__(
        self,
        name: str,
        arg_types: Sequence[MemRefType],
        access: Sequence[str],
        kind: str,
        target: str = "wgsl",
        schedule: dict[str, Attribute] | None = None,
        body: Region | None = None,
    ):
        if body is None:
            body = Region(Block([YieldOp()], arg_types=arg_types))
        fast_init(
            self,
            properties={
                "sym_name": _str(name),
                "access": ArrayAttr([ACCESS_ATTRS[a] for a in access]),
                "kind": _str(kind),
                "target": TARGET_ATTRS[target],
                "schedule": DictionaryAttr(schedule or {}),
            },
            regions=[body],
        )

    def verify_(self):
        args = self.body.block.args
        if len(args) != len(self.access.data):
            raise VerifyException(
                f"nn_loop.kernel @{self.sym_name.data}: {len(args)} buffer arguments but "
                f"{len(self.access.data)} access modes"
            )
        for i, a in enumerate(args):
            if not isinstance(a.type, MemRefType) or memory_space(a.type) != MemorySpace.GLOBAL:
                raise VerifyException(
                    f"nn_loop.kernel @{self.sym_name.data}: argument {i} must be a memref "
                    f"in the global space, got {a.type}"
                )

    def print(self, printer: Printer):
        printer.print_string(" @")
        printer.print_string(self.sym_name.data)
        printer.print_string("(")
        args = self.body.block.args
        for i, (a, mode) in enumerate(zip(args, self.access.data)):
            if i:
                printer.print_string(", ")
            printer.print_ssa_value(a)
            printer.print_string(": ")
            printer.print_attribute(a.type)
            printer.print_string(f" {mode.data}")
        printer.print_string(f') kind "{self.kind.data}" target "{self.target.data}"')
        if self.schedule.data:
            printer.print_string(" schedule ")
            printer.print_attribute(self.schedule)
        printer.print_string(" ")
        printer.print_region(self.body, print_entry_block_args=False, print_block_terminators=False)

    @classmethod
    def parse(cls, parser: Parser) -> KernelOp:
        name = parser.parse_symbol_name().data

        def parse_arg():
            arg = parser.parse_argument(expect_type=True)
            mode = parser.parse_str_enum(AccessMode)
            return arg, mode

        pairs = parser.parse_comma_separated_list(Parser.Delimiter.PAREN, parse_arg)
        parser.parse_keyword("kind")
        kind = parser.parse_str_literal()
        parser.parse_keyword("target")
        target = parser.parse_str_enum(KernelTarget)
        schedule: dict[str, Attribute] = {}
        if parser.parse_optional_keyword("schedule"):
            attr = parser.parse_attribute()
            if not isinstance(attr, DictionaryAttr):
                parser.raise_error("expected a dictionary after 'schedule'")
            schedule = dict(attr.data)
        region = parser.parse_region([a for a, _ in pairs])
        op = cls(
            name,
            [a.type for a, _ in pairs],  # type: ignore[misc]
            [m for _, m in pairs],
            kind,
            target,
            schedule,
            region,
        )
        if not op.body.block.ops or not isinstance(op.body.block.last_op, YieldOp):
            op.body.block.add_op(YieldOp())
        return op


@irdl_op_definition
class ForOp(IRDLOperation):
    """`for iv = lb; iv < ub; iv += step`, static bounds, iterations run by `map`.

    A loop mapped to workgroup.* / invocation.* / thread runs its iterations in parallel; its
    body must not depend on iteration order. `unroll` > 1 asks nn-loop-unroll to replicate
    the body that many times (the trip count must be a multiple of it).
    """

    name = "nn_loop.for"
    lb = prop_def(IntegerAttr[I64])
    ub = prop_def(IntegerAttr[I64])
    step = prop_def(IntegerAttr[I64], default_value=IntegerAttr(1, 64))
    map = prop_def(LoopMapAttr, default_value=MAP_ATTRS["serial"])
    unroll = prop_def(IntegerAttr[I64], default_value=IntegerAttr(1, 64))
    body = region_def("single_block")
    traits = traits_def(SingleBlockImplicitTerminator(YieldOp), RecursiveMemoryEffect())

    def __init__(
        self,
        lb: int,
        ub: int,
        step: int = 1,
        map: str = "serial",
        unroll: int = 1,
        body: Region | None = None,
    ):
        if body is None:
            body = Region(Block([YieldOp()], arg_types=[IndexType()]))
        fast_init(
            self,
            properties={
                "lb": _i64(lb),
                "ub": _i64(ub),
                "step": _i64(step),
                "map": MAP_ATTRS[map],
                "unroll": _i64(unroll),
            },
            regions=[body],
        )

    @property
    def iv(self) -> SSAValue:
        return self.body.block.args[0]

    @property
    def trip_count(self) -> int:
        lb, ub, st = self.lb.value.data, self.ub.value.data, self.step.value.data
        return max(0, (ub - lb + st - 1) // st)

    def verify_(self):
        args = self.body.block.args
        if len(args) != 1 or not isinstance(args[0].type, IndexType):
            raise VerifyException("nn_loop.for: body must take one index argument")
        if self.step.value.data <= 0:
            raise VerifyException(f"nn_loop.for: step must be positive, got {self.step.value.data}")
        u = self.unroll.value.data
        if u < 1 or self.trip_count % u:
            raise VerifyException(
                f"nn_loop.for: unroll {u} must be >= 1 and divide the trip count {self.trip_count}"
            )

    def print(self, printer: Printer):
        printer.print_string(" ")
        printer.print_ssa_value(self.iv)
        printer.print_string(f" = {self.lb.value.data} to {self.ub.value.data}")
        if self.step.value.data != 1:
            printer.print_string(f" step {self.step.value.data}")
        if self.map.data != "serial":
            printer.print_string(f' map "{self.map.data}"')
        if self.unroll.value.data != 1:
            printer.print_string(f" unroll {self.unroll.value.data}")
        printer.print_string(" ")
        printer.print_region(self.body, print_entry_block_args=False, print_block_terminators=False)
        printer.print_op_attributes(self.attributes)

    @classmethod
    def parse(cls, parser: Parser) -> ForOp:
        iv = parser.parse_argument(expect_type=False)
        parser.parse_punctuation("=")
        lb = parser.parse_integer()
        parser.parse_keyword("to")
        ub = parser.parse_integer()
        step = parser.parse_integer() if parser.parse_optional_keyword("step") else 1
        map_ = parser.parse_str_enum(LoopMap) if parser.parse_optional_keyword("map") else "serial"
        unroll = parser.parse_integer() if parser.parse_optional_keyword("unroll") else 1
        body = parser.parse_region([iv.resolve(IndexType())])
        op = cls(lb, ub, step, map_, unroll, body)
        op.attributes |= parser.parse_optional_attr_dict()
        if not op.body.block.ops or not isinstance(op.body.block.last_op, YieldOp):
            op.body.block.add_op(YieldOp())
        return op


@irdl_op_definition
class IfOp(IRDLOperation):
    """Runs its body when `cond` (i1) holds; no results, no else (guards ragged edges)."""

    name = "nn_loop.if"
    cond = operand_def(i1)
    body = region_def("single_block")
    traits = traits_def(
        SingleBlockImplicitTerminator(YieldOp), RecursiveMemoryEffect(), RecursivelySpeculatable()
    )

    def __init__(self, cond: SSAValue | Operation, body: Region | None = None):
        if body is None:
            body = Region(Block([YieldOp()]))
        fast_init(self, operands=[cond], regions=[body])

    def print(self, printer: Printer):
        printer.print_string(" ")
        printer.print_ssa_value(self.cond)
        printer.print_string(" ")
        printer.print_region(self.body, print_entry_block_args=False, print_block_terminators=False)

    @classmethod
    def parse(cls, parser: Parser) -> IfOp:
        cond = parser.resolve_operand(parser.parse_unresolved_operand(), i1)
        body = parser.parse_region()
        op = cls(cond, body)
        if not op.body.block.ops or not isinstance(op.body.block.last_op, YieldOp):
            op.body.block.add_op(YieldOp())
        return op


def _element_count(t: Attribute) -> int:
    return t.get_shape()[0] if isinstance(t, VectorType) else 1


def _check_access(op: IRDLOperation, buf: SSAValue, indices: Sequence[SSAValue], value_type: Attribute):
    t = buf.type
    if not isinstance(t, MemRefType):
        raise VerifyException(f"{op.name}: expected a memref, got {t}")
    if len(indices) != len(t.get_shape()):
        raise VerifyException(
            f"{op.name}: {len(indices)} indices for a rank-{len(t.get_shape())} buffer"
        )
    for i in indices:
        if not isinstance(i.type, IndexType):
            raise VerifyException(f"{op.name}: indices must be of type index")
    elem = t.get_element_type()
    if value_type == elem:
        return
    if isinstance(value_type, VectorType) and value_type.get_element_type() == elem:
        if len(value_type.get_shape()) != 1:
            raise VerifyException(f"{op.name}: only 1-D vectors are supported")
        return
    if isinstance(op, LoadOp) and (elem, value_type) == (IntegerType(8), WIDENED_I8):
        return
    raise VerifyException(
        f"{op.name}: value type {value_type} does not match buffer element type {elem}"
    )


WIDENED_I8 = VectorType(IntegerType(16), [8])
"""The one widening load: 8 consecutive i8 elements of a buffer, sign-extended to i16 lanes."""


@irdl_op_definition
class LoadOp(IRDLOperation):
    """Reads buf[indices]; a vector<Nxt> result reads N consecutive elements of the last dim.
    From an i8 buffer, a vector<8xi16> result reads 8 elements sign-extended (WIDENED_I8)."""

    name = "nn_loop.load"
    buffer = operand_def(MemRefType)
    indices = var_operand_def(IndexType)
    result = result_def()
    traits = traits_def(MemoryReadEffect())
    assembly_format = "$buffer `[` $indices `]` attr-dict `:` type($buffer) `->` type($result)"

    def __init__(self, buffer: SSAValue, indices: Sequence[SSAValue], result_type: Attribute | None = None):
        if result_type is None:
            assert isinstance(buffer.type, MemRefType)
            result_type = buffer.type.get_element_type()
        fast_init(self, operands=[buffer, indices], result_types=[result_type])

    def verify_(self):
        _check_access(self, self.buffer, self.indices, self.result.type)


@irdl_op_definition
class StoreOp(IRDLOperation):
    """Writes value to buf[indices]; a vector value writes consecutive elements of the last dim."""

    name = "nn_loop.store"
    value = operand_def()
    buffer = operand_def(MemRefType)
    indices = var_operand_def(IndexType)
    traits = traits_def(MemoryWriteEffect())
    assembly_format = "$value `,` $buffer `[` $indices `]` attr-dict `:` type($value) `,` type($buffer)"

    def __init__(self, value: SSAValue, buffer: SSAValue, indices: Sequence[SSAValue]):
        fast_init(self, operands=[value, buffer, indices])

    def verify_(self):
        _check_access(self, self.buffer, self.indices, self.value.type)


@irdl_op_definition
class AllocOp(IRDLOperation):
    """Scratch memory: memory space `#nn_loop<space private>` (per invocation/thread:
    registers) or `#nn_loop<space workgroup>` (shared by a workgroup's invocations; WebGPU
    only)."""

    name = "nn_loop.alloc"
    result = result_def(MemRefType)
    traits = traits_def(AllocatesResult())
    assembly_format = "attr-dict `:` type($result)"

    def __init__(self, type: MemRefType):
        fast_init(self, result_types=[type])

    def verify_(self):
        t = self.result.type
        assert isinstance(t, MemRefType)
        if memory_space(t) not in (MemorySpace.PRIVATE, MemorySpace.WORKGROUP):
            raise VerifyException(
                "nn_loop.alloc: memory space must be #nn_loop<space private> or "
                f"#nn_loop<space workgroup>, got {t.memory_space}"
            )


@irdl_op_definition
class BarrierOp(IRDLOperation):
    """Workgroup barrier: all invocations of a workgroup reach it before any passes it, and
    workgroup-memory writes before it are visible after it. Must be in uniform control flow."""

    name = "nn_loop.barrier"
    traits = traits_def(MemoryReadEffect(), MemoryWriteEffect())
    assembly_format = "attr-dict"


@irdl_op_definition
class SplatOp(IRDLOperation):
    """A vector with every lane equal to the scalar operand."""

    name = "nn_loop.splat"
    input = operand_def()
    result = result_def(VectorType)
    traits = traits_def(Pure())
    assembly_format = "$input attr-dict `:` type($input) `->` type($result)"

    def __init__(self, input: SSAValue, result_type: VectorType):
        fast_init(self, operands=[input], result_types=[result_type])

    def verify_(self):
        t = self.result.type
        assert isinstance(t, VectorType)
        if t.get_element_type() != self.input.type:
            raise VerifyException("nn_loop.splat: lane type must equal the operand type")


@irdl_op_definition
class ExtractOp(IRDLOperation):
    """Lane `lane` of a vector."""

    name = "nn_loop.extract"
    input = operand_def(VectorType)
    lane = prop_def(IntegerAttr[I64])
    result = result_def()
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$input attr-dict `:` type($input) `->` type($result)"

    def __init__(self, input: SSAValue, lane: int):
        t = input.type
        assert isinstance(t, VectorType)
        fast_init(
            self,
            operands=[input],
            properties={"lane": _i64(lane)},
            result_types=[t.get_element_type()],
        )

    def verify_(self):
        t = self.input.type
        assert isinstance(t, VectorType)
        if not 0 <= self.lane.value.data < t.get_shape()[0]:
            raise VerifyException(f"nn_loop.extract: lane {self.lane.value.data} out of range")


class _LaneConvertOp(IRDLOperation):
    """A conversion per lane of vector<4xf32> / vector<4xi32> (arith's conversions take
    scalars only in xDSL)."""

    input = operand_def(VectorType)
    result = result_def(VectorType)
    traits = traits_def(Pure())
    assembly_format = "$input attr-dict `:` type($input) `to` type($result)"
    FROM: ClassVar[Attribute]
    TO: ClassVar[Attribute]

    def __init__(self, input: SSAValue, result_type: Attribute):
        fast_init(self, operands=[input], result_types=[result_type])

    def verify_(self):
        a, r = self.input.type, self.result.type
        assert isinstance(a, VectorType) and isinstance(r, VectorType)
        ok = a.get_shape() == r.get_shape()
        if not ok or a.get_element_type() != self.FROM or r.get_element_type() != self.TO:
            raise VerifyException(
                f"{self.name}: {a} to {r} is not vector<N x {self.FROM}> to vector<N x {self.TO}>"
            )


@irdl_op_definition
class FPToSIOp(_LaneConvertOp):
    """Per lane: f32 to i32 toward zero, saturating, NaN to 0 (Wasm's i32x4.trunc_sat_f32x4_s;
    arith.fptosi on vectors)."""

    name = "nn_loop.fptosi"
    FROM: ClassVar[Attribute] = Float32Type()
    TO: ClassVar[Attribute] = IntegerType(32)


@irdl_op_definition
class SIToFPOp(_LaneConvertOp):
    """Per lane: signed i32 to the nearest f32 (arith.sitofp on vectors)."""

    name = "nn_loop.sitofp"
    FROM: ClassVar[Attribute] = IntegerType(32)
    TO: ClassVar[Attribute] = Float32Type()


@irdl_op_definition
class PairSplatOp(IRDLOperation):
    """Two i32 values as one i16 pair in every lane: sat16(lo) | sat16(hi) << 16, each
    saturated to the signed 16-bit range (Wasm's i16x8.narrow_i32x4_s of [lo, hi, lo, hi]):
    the A operand of nn_loop.dot_i16x2."""

    name = "nn_loop.pair_splat"
    lo = operand_def(IntegerType(32))
    hi = operand_def(IntegerType(32))
    result = result_def(VectorType)
    traits = traits_def(Pure())
    assembly_format = "$lo `,` $hi attr-dict `:` type($result)"

    def __init__(self, lo: SSAValue, hi: SSAValue, result_type: Attribute):
        fast_init(self, operands=[lo, hi], result_types=[result_type])

    def verify_(self):
        t = self.result.type
        assert isinstance(t, VectorType)
        if t.get_shape() != (4,) or t.get_element_type() != IntegerType(32):
            raise VerifyException(f"nn_loop.pair_splat: {t} is not vector<4xi32>")


@irdl_op_definition
class DotI16x2Op(IRDLOperation):
    """Per i32 lane: acc + lo(a) * lo(b) + hi(a) * hi(b), the signed 16-bit halves of each
    lane (low first), wrapping mod 2**32 (Wasm's i32x4.dot_i16x8_s, then i32x4.add). b may be
    a vector<8xi16> (WIDENED_I8: 8 int8 weights widened at the load), lanes 2i and 2i + 1
    being lane i's halves."""

    name = "nn_loop.dot_i16x2"
    _T: ClassVar = VarConstraint("T", base(VectorType))
    a = operand_def(_T)
    b = operand_def(VectorType)
    acc = operand_def(_T)
    result = result_def(_T)
    traits = traits_def(Pure())
    assembly_format = "$a `,` $b `,` $acc attr-dict `:` type($b) `,` type($result)"

    def __init__(self, a: SSAValue, b: SSAValue, acc: SSAValue):
        fast_init(self, operands=[a, b, acc], result_types=[acc.type])

    def verify_(self):
        for v in (self.a, self.acc, self.result) if self.b.type == WIDENED_I8 else (self.a, self.b, self.acc, self.result):
            t = v.type
            assert isinstance(t, VectorType)
            if t.get_shape() != (4,) or t.get_element_type() != IntegerType(32):
                raise VerifyException(f"nn_loop.dot_i16x2: {t} is not vector<4xi32>")


def _check_v4i32(op: IRDLOperation, values) -> None:
    for v in values:
        t = v.type
        if not isinstance(t, VectorType) or t.get_shape() != (4,) or t.get_element_type() != IntegerType(32):
            raise VerifyException(f"{op.name}: {t} is not vector<4xi32>")


@irdl_op_definition
class QuadSplatOp(IRDLOperation):
    """Four i32 values c0..c3 as 16-bit halves, offset by 256 and saturated to 0..65535:
    lanes [u16(c0+256) | u16(c1+256) << 16, u16(c2+256) | u16(c3+256) << 16] twice (Wasm's
    i16x8.narrow_i32x4_u of [c0..c3] + 256): A's 4 k of nn_tensor.matmul_i8, for
    nn_loop.byte_plane."""

    name = "nn_loop.quad_splat"
    c0 = operand_def(IntegerType(32))
    c1 = operand_def(IntegerType(32))
    c2 = operand_def(IntegerType(32))
    c3 = operand_def(IntegerType(32))
    result = result_def(VectorType)
    traits = traits_def(Pure())
    assembly_format = "$c0 `,` $c1 `,` $c2 `,` $c3 attr-dict `:` type($result)"

    def __init__(self, cs: Sequence[SSAValue], result_type: Attribute):
        fast_init(self, operands=list(cs), result_types=[result_type])

    def verify_(self):
        _check_v4i32(self, [self.result])


@irdl_op_definition
class BytePlaneOp(IRDLOperation):
    """The 8 unsigned 16-bit halves v of `input` (low half of lane 0 first), each as the byte
    v & 127 (shift 0) or sat_u8(v >> 7) (shift 7), the 8 bytes twice (Wasm's
    i8x16.narrow_i16x8_u(t, t)): of a quad_splat, the 4-byte word of a 7-bit plane of A in
    every lane, the b operand of nn_loop.dot_i8x4."""

    name = "nn_loop.byte_plane"
    _T: ClassVar = VarConstraint("T", base(VectorType))
    input = operand_def(_T)
    shift = prop_def(IntegerAttr[I64])
    result = result_def(_T)
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$input attr-dict `:` type($result)"

    def __init__(self, input: SSAValue, shift: int):
        fast_init(self, operands=[input], properties={"shift": _i64(shift)}, result_types=[input.type])

    def verify_(self):
        _check_v4i32(self, [self.input, self.result])
        if self.shift.value.data not in (0, 7):
            raise VerifyException(f"nn_loop.byte_plane: shift {self.shift.value.data} is not 0 or 7")


@irdl_op_definition
class DotI8x4Op(IRDLOperation):
    """Per i32 lane: acc + the sum over its 4 bytes (low first) of a's signed byte times b's
    byte, wrapping mod 2**32; b's bytes must be 0..127 (else the result is the relaxed
    instruction's, implementation-defined) (Wasm's i32x4.relaxed_dot_i8x16_i7x16_add_s)."""

    name = "nn_loop.dot_i8x4"
    _T: ClassVar = VarConstraint("T", base(VectorType))
    a = operand_def(_T)
    b = operand_def(_T)
    acc = operand_def(_T)
    result = result_def(_T)
    traits = traits_def(Pure())
    assembly_format = "$a `,` $b `,` $acc attr-dict `:` type($result)"

    def __init__(self, a: SSAValue, b: SSAValue, acc: SSAValue):
        fast_init(self, operands=[a, b, acc], result_types=[acc.type])

    def verify_(self):
        _check_v4i32(self, [self.a, self.b, self.acc, self.result])


@irdl_op_definition
class WidenHalfOp(IRDLOperation):
    """Lanes [4 * half, 4 * half + 4) of a vector<8xi16> as vector<4xf32> (exact: Wasm's
    i32x4.extend_low_i16x8_s / extend_high_i16x8_s, then f32x4.convert_i32x4_s)."""

    name = "nn_loop.widen_half"
    input = operand_def(VectorType)
    half = prop_def(IntegerAttr[I64])
    result = result_def(VectorType)
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$input attr-dict `:` type($input) `->` type($result)"

    def __init__(self, input: SSAValue, half: int):
        fast_init(self, operands=[input], properties={"half": _i64(half)}, result_types=[_VEC4_F32])

    def verify_(self):
        if self.input.type != WIDENED_I8 or self.result.type != _VEC4_F32:
            raise VerifyException(
                f"nn_loop.widen_half: {self.input.type} -> {self.result.type} is not "
                "vector<8xi16> -> vector<4xf32>"
            )
        if self.half.value.data not in (0, 1):
            raise VerifyException(f"nn_loop.widen_half: half {self.half.value.data} is not 0 or 1")


_VEC4_F32 = VectorType(Float32Type(), [4])


@irdl_op_definition
class ReduceLanesOp(IRDLOperation):
    """Combines the lanes of a vector with `kind` (add or max) into a scalar."""

    name = "nn_loop.reduce_lanes"
    input = operand_def(VectorType)
    kind = prop_def(ReductionKindAttr)
    result = result_def()
    traits = traits_def(Pure())
    assembly_format = "$kind $input attr-dict `:` type($input) `->` type($result)"

    def __init__(self, input: SSAValue, kind: str):
        t = input.type
        assert isinstance(t, VectorType)
        fast_init(
            self,
            operands=[input],
            properties={"kind": REDUCTION_ATTRS[kind]},
            result_types=[t.get_element_type()],
        )


# ------------------------------------------------------------------------------- model


@irdl_op_definition
class WeightOp(IRDLOperation):
    """The weights-file entry `key`, as a read-only buffer."""

    name = "nn_loop.weight"
    key = prop_def(StringAttr)
    result = result_def(MemRefType)
    traits = traits_def(Pure())
    assembly_format = "$key attr-dict `:` type($result)"

    def __init__(self, key: str, type: MemRefType):
        fast_init(self, properties={"key": StringAttr(key)}, result_types=[type])


@irdl_op_definition
class ConstantOp(IRDLOperation):
    """A small constant buffer whose values are held in the IR (the plan stores them)."""

    name = "nn_loop.constant"
    value = prop_def(DenseIntOrFPElementsAttr)
    result = result_def(MemRefType)
    traits = traits_def(Pure())
    assembly_format = "$value attr-dict `:` type($result)"

    def __init__(self, value: DenseIntOrFPElementsAttr, type: MemRefType):
        fast_init(self, properties={"value": value}, result_types=[type])


@irdl_op_definition
class BufferOp(IRDLOperation):
    """An intermediate buffer of the model (the plan assigns it storage, possibly reused)."""

    name = "nn_loop.buffer"
    result = result_def(MemRefType)
    traits = traits_def(AllocatesResult())
    assembly_format = "attr-dict `:` type($result)"

    def __init__(self, type: MemRefType):
        fast_init(self, result_types=[type])


@irdl_op_definition
class ViewOp(IRDLOperation):
    """The same storage seen with another static shape (row-major; element counts equal)."""

    name = "nn_loop.view"
    input = operand_def(MemRefType)
    result = result_def(MemRefType)
    traits = traits_def(Pure())
    assembly_format = "$input attr-dict `:` type($input) `->` type($result)"

    def __init__(self, input: SSAValue, type: MemRefType):
        fast_init(self, operands=[input], result_types=[type])

    def verify_(self):
        import math

        a, b = self.input.type, self.result.type
        assert isinstance(a, MemRefType) and isinstance(b, MemRefType)
        if math.prod(a.get_shape()) != math.prod(b.get_shape()):
            raise VerifyException("nn_loop.view: element counts differ")
        if a.get_element_type() != b.get_element_type():
            raise VerifyException("nn_loop.view: element types differ")


@functools.lru_cache(maxsize=1024)
def _symbol_ref(name: str) -> SymbolRefAttr:
    """A shared SymbolRefAttr @name (attributes are immutable)."""
    return SymbolRefAttr(name)


@irdl_op_definition
class LaunchOp(IRDLOperation):
    """Runs kernel @callee on the given buffers (in the kernel's argument order)."""

    name = "nn_loop.launch"
    callee = prop_def(SymbolRefAttr)
    args = var_operand_def(MemRefType)
    traits = traits_def(MemoryReadEffect(), MemoryWriteEffect())
    assembly_format = "$callee `(` $args `)` attr-dict `:` type($args)"

    def __init__(self, callee: str, args: Sequence[SSAValue]):
        fast_init(self, operands=[args], properties={"callee": _symbol_ref(callee)})

    def verify_(self):
        kernel = SymbolTable.lookup_symbol(self, self.callee)
        if kernel is None:
            return  # kernels may already be converted to a web-level module
        if not isinstance(kernel, KernelOp):
            return
        types = [a.type for a in kernel.body.block.args]
        if types != [a.type for a in self.args]:
            raise VerifyException(
                f"nn_loop.launch: argument types {[str(a.type) for a in self.args]} do not "
                f"match kernel @{kernel.sym_name.data} {[str(t) for t in types]}"
            )


NNLoop = Dialect(
    "nn_loop",
    [
        KernelOp, ForOp, IfOp, YieldOp, LoadOp, StoreOp, AllocOp, BarrierOp, SplatOp,
        ExtractOp, ReduceLanesOp, WeightOp, ConstantOp, BufferOp, ViewOp, LaunchOp, DotI16x2Op,
        PairSplatOp, QuadSplatOp, BytePlaneOp, DotI8x4Op, FPToSIOp, SIToFPOp,
        WidenHalfOp,
    ],  # fmt: skip
    [LoopMapAttr, AccessModeAttr, KernelTargetAttr, MemorySpaceAttr, ReductionKindAttr],
)

__all__ = [
    "MAPS", "SPACES", "ACCESS", "LoopMap", "AccessMode", "KernelTarget", "MemorySpace",
    "ReductionKind", "LoopMapAttr", "AccessModeAttr", "KernelTargetAttr", "MemorySpaceAttr",
    "ReductionKindAttr", "MAP_ATTRS", "ACCESS_ATTRS", "TARGET_ATTRS", "SPACE_ATTRS",
    "REDUCTION_ATTRS", "memory_space", "NNLoop", "WIDENED_I8", "WidenHalfOp", "KernelOp", "ForOp", "IfOp", "YieldOp", "LoadOp", "StoreOp", "AllocOp", "BarrierOp", "SplatOp", "ExtractOp",
    "ReduceLanesOp", "DotI16x2Op", "PairSplatOp", "QuadSplatOp", "BytePlaneOp", "DotI8x4Op", "FPToSIOp", "SIToFPOp",
    "WeightOp", "ConstantOp", "BufferOp", "ViewOp", "LaunchOp", "IntAttr",
    "DenseArrayBase", "NoTerminator",
]  # fmt: skip
