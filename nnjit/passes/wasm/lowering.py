"""The core of the Wasm conversion: one nn_loop.kernel (target "wasm") to one nn_wasm.module.

`KernelContext` is the state the per-op patterns share: where each nn_loop value lives (a local,
a constant, an affine expression of ivs, or folded into its user's operand tree), the function's
locals, the kernel's analyses (`facts`, `folds`, `access`) and the math helper library. It emits
blocks statement by statement, dispatching each op through `PATTERNS` (op class -> pattern: one
function per op kind, from the `patterns_*` modules). `lower_kernel` assembles the module: the
`run` function's params (thread id, thread count, one byte offset per kernel argument), the
manifest, the memory import and the helpers.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseIntOrFPElementsAttr,
    DictionaryAttr,
    Float32Type,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    MemRefType,
    VectorType,
)
from xdsl.ir import Attribute, Block, BlockArgument, Operation, Region, SSAValue

from nnjit.backends.names import NameSupply
from nnjit.dialects import nn_loop
from nnjit.dialects import nn_wasm as W
from nnjit.errors import UnsupportedError
from nnjit.ir.affine import Affine
from nnjit.ir.fastir import first_op_of, next_op_of, operands_of, type_of, walk
from nnjit.passes.wasm import (
    patterns_arith,
    patterns_control,
    patterns_math,
    patterns_memory,
    patterns_vector,
)
from nnjit.passes.wasm.access import AccessPlan, elem_bytes
from nnjit.passes.wasm.builder import Builder, Locals, f32, i32
from nnjit.passes.wasm.facts import FoldPlan, IndexFacts, prop
from nnjit.passes.wasm.math_helpers import HelperLib

Pattern = Callable[["KernelContext", Builder, Operation], "SSAValue | None"]
"""Emits one op: a value pattern pushes the op's result and returns it; a statement pattern
emits the op and returns None."""


def _table() -> dict[type[Operation], tuple[Pattern, bool]]:
    table: dict[type[Operation], tuple[Pattern, bool]] = {}
    for module in (patterns_arith, patterns_math, patterns_memory, patterns_vector,
                   patterns_control):  # fmt: skip
        for kinds, value in ((module.VALUE_PATTERNS, True), (module.STATEMENT_PATTERNS, False)):
            for cls, fn in kinds.items():
                assert cls not in table, f"{cls.name} has two patterns"
                table[cls] = (fn, value)
    return table


PATTERNS = _table()
"""op class -> (pattern, whether it pushes a value): the one table of the conversion."""


class KernelContext:
    """The state of lowering one kernel, passed to every pattern."""

    def __init__(self, kernel: nn_loop.KernelOp, relaxed_simd: bool):
        self.kernel = kernel
        self.kname = kernel.sym_name.data
        self.relaxed = relaxed_simd
        self.used_relaxed = False
        self.module_names = NameSupply()
        self.helpers = HelperLib(self.module_names)
        self.loc = Locals()
        self.facts = facts = IndexFacts()
        self.folds = FoldPlan(facts)
        self.access = AccessPlan(facts, self.loc, self.error)
        # (the facts' tables and methods read per emitted instruction, bound once)
        self.iv_const = facts.iv_const
        self.affine, self.is_virtual = facts.affine, facts.is_virtual
        self.arg_param: dict[SSAValue, str] = {}  # kernel argument -> its byte-offset param
        # (keyed by id: xDSL hashes IR objects in Python, ints hash in C)
        self.val_local: dict[int, str] = {}  # value -> local holding it
        self.iv_local: dict[int, str] = {}  # loop iv -> its local
        self.private: dict[int, list[str]] = {}  # private buffer -> a local per element
        self._wt: dict[int, Attribute] = {}  # id(type) -> Wasm type
        self.thread_chunks = 1
        self.tid = self.nthreads = ""  # (the params, named in lower_kernel)
        self.top_block: Block | None = None  # the kernel's body (where thread loops may be)

    def error(self, msg: str, hint: str | None = None) -> UnsupportedError:
        return UnsupportedError(msg, where=f"nn_loop.kernel @{self.kname} (target wasm)", hint=hint)

    def unsupported(self, op: Operation) -> UnsupportedError:
        return self.error(f"operation {op.name} is not supported by the wasm backend")

    def wtype(self, t: Attribute) -> Attribute:
        """The Wasm value type (i32, f32, v128) of an nn_loop value type."""
        # by identity (hashing a type attribute costs more); the kernel keeps its types alive
        w = self._wt.get(id(t))
        if w is None:
            w = self._wt[id(t)] = self._wtype(t)
        return w

    def _wtype(self, t: Attribute) -> Attribute:
        if type(t) is IndexType or (type(t) is IntegerType and t.width.data in (1, 32)):
            return i32
        if type(t) is Float32Type:
            return f32
        if type(t) is VectorType and t.get_shape() == (4,):
            e = t.get_element_type()
            if type(e) is Float32Type or (type(e) is IntegerType and e.width.data in (1, 32)):
                return W.v128
        if t == nn_loop.WIDENED_I8:
            return W.v128
        raise self.error(f"type {t} has no Wasm equivalent",
                         "use f32, i32, i1, index or 4-lane vectors of them")  # fmt: skip

    # --------------------------------------------------------------------------- values

    def emit_const(self, b: Builder, v: SSAValue) -> SSAValue:
        a = self.facts.const_attr(v)
        t = v.type
        if isinstance(a, IntegerAttr):
            return b.i32c(self.facts.const_int(v))  # type: ignore[arg-type]
        if isinstance(a, FloatAttr):
            if type(t) is not Float32Type:
                raise self.error(f"float constant of type {t}", "only f32 is supported")
            return b.f32c(a.value.data)
        if isinstance(a, DenseIntOrFPElementsAttr) and type(t) is VectorType:
            self.wtype(t)
            vals = a.get_values()
            if len(vals) == 1:
                vals = vals * 4
            e = t.get_element_type()
            if type(e) is Float32Type:
                return b.v128c("f32x4", [float(x) for x in vals])
            if e.width.data == 1:  # type: ignore[attr-defined]
                return b.v128c("i32x4", [-1 if int(x) & 1 else 0 for x in vals])
            return b.v128c("i32x4", [int(x) for x in vals])
        raise self.error(f"unsupported constant {a}")

    def push(self, b: Builder, v: SSAValue) -> SSAValue:
        """Pushes the value of nn_loop value v onto the wasm stack."""
        name = self.val_local.get(id(v))
        if name is not None:
            return b.get(name, self.wtype(type_of(v)))
        name = self.iv_local.get(id(v))
        if name is not None:
            return b.get(name, i32)
        if id(v) in self.iv_const:
            return b.i32c(self.iv_const[id(v)])
        if type(v) is BlockArgument:
            raise self.error("a buffer is used as a value", "only loads/stores may use buffers")
        op = v.op
        if op.name == "arith.constant":
            return self.emit_const(b, v)
        if op.name in ("arith.index_cast", "arith.index_castui"):
            return self.push(b, operands_of(op)[0])
        if self.is_virtual(op):
            return self.emit_affine(b, self.affine(v))
        if id(op) in self.folds.folded:
            return self.emit_expr(b, op)
        raise self.error(f"internal: value of {op.name} used before it is computed")

    def emit_affine(self, b: Builder, aff: Affine, start: SSAValue | None = None) -> SSAValue:
        """Pushes sum(coeff * atom) + const (added to `start` when given)."""
        terms, c = aff
        acc = start
        for atom, k in terms.items():
            if k == 0:
                continue
            name = self.iv_local.get(id(atom))  # an iv
            x = b.get(name, i32) if name is not None else self.push(b, atom)
            if k != 1:
                x = b.op("i32.mul", x, b.i32c(k))
            acc = x if acc is None else b.op("i32.add", acc, x)
        if acc is None:
            return b.i32c(c)
        if c != 0:
            acc = b.op("i32.add", acc, b.i32c(c))
        return acc

    def reusable(self, b: Builder, v: SSAValue, hint: str = "t"):
        """A function that pushes v again each time it is called: constants and values
        already in locals are re-pushed, anything else is computed once into a local."""
        cheap = id(v) in self.iv_const or id(v) in self.val_local or id(v) in self.iv_local
        if not cheap and type(v) is not BlockArgument:
            cheap = v.owner.name == "arith.constant"
        if cheap:
            return lambda: self.push(b, v)
        name = self.to_local(b, v, hint)
        t = self.wtype(v.type)
        return lambda: b.get(name, t)

    def to_local(self, b: Builder, v: SSAValue, hint: str = "t") -> str:
        """Pushes v and stores it in a fresh local (for values needed more than once)."""
        t = self.wtype(v.type)
        name = self.loc.new(hint, t)
        b.set(name, self.push(b, v))
        return name

    # ------------------------------------------------------------------------- emitting

    def emit_expr(self, b: Builder, op: Operation) -> SSAValue:
        """Pushes the result of a (non-virtual) value op."""
        entry = PATTERNS.get(type(op))
        if entry is None or not entry[1]:
            raise self.unsupported(op)
        return entry[0](self, b, op)  # type: ignore[return-value]

    def emit_block(self, b: Builder, block: Block) -> None:
        """Emits the ops of a block: statements in order, each value op into a local of its
        own unless it is folded into its user, virtual or dead."""
        self.folds.analyse_block(block)
        folded, dead, is_virtual = self.folds.folded, self.folds.dead, self.is_virtual
        next_op = first_op_of(block)
        while next_op is not None:
            op, next_op = next_op, next_op_of(next_op)
            t = type(op)
            if t is nn_loop.YieldOp or id(op) in folded or id(op) in dead:
                continue
            if op.results and is_virtual(op):
                continue
            entry = PATTERNS.get(t)
            if entry is None:
                raise self.unsupported(op)
            pattern, value = entry
            if not value:
                pattern(self, b, op)
                continue
            (v,) = op.results
            name = self.loc.new(v.name_hint or "v", self.wtype(type_of(v)))
            b.set(name, pattern(self, b, op))  # type: ignore[arg-type]
            self.val_local[id(v)] = name


def lower_kernel(kernel: nn_loop.KernelOp, relaxed_simd: bool = True) -> W.ModuleOp:
    """The nn_wasm.module for one nn_loop kernel with target "wasm"."""
    ctx = KernelContext(kernel, relaxed_simd)
    k, loc = kernel, ctx.loc
    for op in walk(k):
        if type(op) is nn_loop.ForOp:
            if op.properties["map"].data not in ("serial", "thread"):
                raise ctx.error(f'loop map "{op.properties["map"].data}" is not available on target wasm',
                                'use "serial" or "thread"')  # fmt: skip
            if prop(op, "unroll") > 1:
                raise ctx.error(f"a loop marked unroll {prop(op, 'unroll')} is not converted to Wasm",
                                "run nn-loop-unroll before convert-nn-loop-to-wasm")  # fmt: skip
    ctx.tid = loc.param("tid", i32)
    ctx.nthreads = loc.param("nthreads", i32)
    params = []
    for idx, (arg, mode) in enumerate(zip(k.body.block.args, k.access.data)):
        t = arg.type
        assert isinstance(t, MemRefType)
        et = t.get_element_type()
        if type(et) is Float32Type:
            dtype = "f32"
        elif type(et) is IntegerType and et.width.data in (8, 32):
            dtype = f"i{et.width.data}"
        else:
            raise ctx.error(f"argument {idx} has element type {et}", "use f32, i32 or i8 buffers")
        ctx.arg_param[arg] = loc.param(f"b{idx}", i32)
        shape = list(t.get_shape())
        params.append(DictionaryAttr({
            "index": W._i64(idx), "access": W._str(mode.data.value), "dtype": W._str(dtype),
            "shape": ArrayAttr([W._i64(s) for s in shape]),
            "bytes": W._i64(elem_bytes(et) * math.prod(shape)),
        }))  # (attributes are immutable: the cached ones are shared)  # fmt: skip
    body = Region(Block())
    b = Builder(body.block)
    top_threads = any(
        type(o) is nn_loop.ForOp and o.map.data == "thread" for o in k.body.block.ops
    )
    if not top_threads:
        only0 = b.nest("if", loc.label("not_thread0"), b.get(ctx.tid, i32))
        only0.ret()
    ctx.top_block = k.body.block
    ctx.emit_block(b, k.body.block)
    b.ret()
    run = W.FuncOp(ctx.module_names.fresh("run"), loc.params, [], loc.locals, "run", body)
    features = ["simd128"] + (["relaxed-simd"] if ctx.used_relaxed else []) + ["threads"]
    return W.ModuleOp(ctx.kname, k.kind.data, params, ctx.thread_chunks, features, k.schedule,
                      Region(Block([W.ImportMemoryOp(), run, *ctx.helpers.funcs])))  # fmt: skip
