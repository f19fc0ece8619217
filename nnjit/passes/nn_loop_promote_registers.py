"""nn-loop-promote-registers: private buffers at constant indices kept in SSA values.

Takes nn_loop IR (docs/ir.md), best after nn-loop-unroll (which makes the indices of
register tiles constants); gives the same IR where, inside every `nn_loop.kernel`, loads and
stores of *promotable* private buffers are forwarded within each straight-line region:

* a load of an element whose value is known (stored, or loaded, earlier in the region)
  is replaced by that value;
* a store is sunk to the point where memory is next needed: just before the nested loop or
  `if` whose body reads or writes the buffer in a way the region's values do not cover,
  before an access of the buffer at a dynamic index, or at the end of its loop or `if`
  body; a store overwritten before that point is erased, and so is every store still
  pending at the end of the kernel (private memory dies with the invocation);
* a private alloc left without any access is erased.

A region is the kernel's body together with the bodies of the loops mapped to
`workgroup.*` / `invocation.*` (each invocation runs one iteration of those) and of serial
loops of one iteration; a serial loop or `thread` loop body is a region of its own that
starts knowing nothing; an `nn_loop.if` body is a region that starts with what its parent
knows (a constant condition: the body is part of its parent's region, or ignored when
false). Leaving a nested region, its parent forgets the elements of every buffer the nested
region wrote.

A private buffer is promotable when every use of it is the buffer operand of an
`nn_loop.load` or `nn_loop.store` whose value has the buffer's element type. Others are left
alone: a buffer used by any other op (it escapes), one read or written as a vector of its
scalar elements (an access that aliases several elements). A promotable buffer's accesses at
a dynamic (or out-of-bounds) index stay where they are, with the stores they may read
flushed before them. Workgroup and global memory are never touched.

What the conversions then see is 1:1: each remaining private load or store is one
load or store of a function-scope array (WGSL) or of a local (Wasm). On WGSL this is the
register promotion the conversion used to do while it emitted code (the generated code is
the same); the Wasm conversion keeps each private element in a local of its own already, so
the pass is not in its pipeline.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field

from xdsl.context import Context
from xdsl.dialects import arith
from xdsl.dialects.builtin import IndexType, MemRefType, ModuleOp
from xdsl.ir import Block, Operation, SSAValue
from xdsl.passes import ModulePass

from nnjit.dialects import nn_loop
from nnjit.ir.affine import IndexAnalysis
from nnjit.ir.fastir import (
    detach,
    drop_references,
    first_block_of,
    first_op_of,
    insert_before,
    kernels_under,
    next_op_of,
    next_use_of,
    operands_of,
    replace_all_uses,
    type_of,
    use_op_of,
)

_PARALLEL = frozenset(
    ("workgroup.x", "workgroup.y", "workgroup.z", "invocation.x", "invocation.y", "invocation.z")
)
"""Maps whose loops run one iteration per invocation (their bodies belong to the parent's
region); "serial" and "thread" loops iterate."""

_SIGNED: dict[int, Callable[[int, int], bool]] = {
    0: operator.eq, 1: operator.ne, 2: operator.lt, 3: operator.le, 4: operator.gt, 5: operator.ge,
}  # fmt: skip
"""arith.cmpi's signed predicates (and eq, ne) by number."""


@dataclass
class _Region:
    """What one region knows: element values by (id of the buffer, flat index), the stores
    not yet placed (same keys, in the order their elements were first stored), the buffers
    it writes (ids), and the nested op being visited in it (where its stores are placed
    when a nested region needs them in memory)."""

    known: dict[tuple[int, int], SSAValue]
    pending: dict[tuple[int, int], nn_loop.StoreOp] = field(default_factory=dict)
    written: set[int] = field(default_factory=set)
    anchor: Operation | None = None


class _Promoter:
    """One kernel's forwarding: a walk over its regions, in program order."""

    def __init__(self) -> None:
        self.facts = IndexAnalysis()
        self.consts: dict[int, int | None] = {}  # id() of an index value -> its constant
        self.shapes: dict[int, tuple[int, ...]] = {}  # promotable buffers (id) -> shape
        self.allocs: list[nn_loop.AllocOp] = []
        self.regions: list[_Region] = [_Region({})]
        self.dead: list[Operation] = []  # erased ops, kept alive (ids stay unique)

    # ------------------------------------------------------------------ the walk

    def region(self, block: Block) -> None:
        """Visits the ops of `block` (part of the current region)."""
        op = first_op_of(block)
        while op is not None:
            nxt = next_op_of(op)
            t = type(op)
            if t is nn_loop.LoadOp:
                self.load(op)
            elif t is nn_loop.StoreOp:
                self.store(op)
            elif t is nn_loop.ForOp:
                self.loop(op)
            elif t is nn_loop.IfOp:
                self.guard(op)
            elif t is nn_loop.AllocOp and _promotable(op):  # (before any access to it)
                buf = op.results[0]
                self.shapes[id(buf)] = tuple(type_of(buf).get_shape())  # type: ignore[attr-defined]
                self.allocs.append(op)
            op = nxt

    def loop(self, op: nn_loop.ForOp) -> None:
        props = op.properties
        lb, ub, step = props["lb"].value.data, props["ub"].value.data, props["step"].value.data
        trips = max(0, (ub - lb + step - 1) // step)  # (op.trip_count)
        if trips == 0:
            return
        body = first_block_of(op.regions[0])
        m = props["map"].data
        if m in _PARALLEL or (trips == 1 and m == "serial"):
            self.region(body)  # type: ignore[arg-type]
            return
        self.nested(op, body, inherit=False)  # type: ignore[arg-type]

    def guard(self, op: nn_loop.IfOp) -> None:
        c = self.cond(operands_of(op)[0])
        body = first_block_of(op.regions[0])
        if c is not None:  # (the conversions inline the body, or drop it)
            if c:
                self.region(body)  # type: ignore[arg-type]
            return
        self.nested(op, body, inherit=True)  # type: ignore[arg-type]

    def cond(self, v: SSAValue) -> int | None:
        """The value of a condition that is a constant, or a signed comparison of two
        constants (as the conversions fold them), else None."""
        c = self.facts.const_int(v)
        if c is not None or type(v.owner) is not arith.CmpiOp:
            return c
        pred = v.owner.properties["predicate"].value.data  # type: ignore[union-attr]
        x, y = (self.const(o) for o in operands_of(v.owner))  # type: ignore[arg-type]
        if x is None or y is None or pred not in _SIGNED:
            return None
        return int(_SIGNED[pred](x, y))

    def const(self, v: SSAValue) -> int | None:
        if type(type_of(v)) is IndexType:
            terms, c = self.facts.affine(v)
            return None if terms else c
        return self.facts.const_int(v)

    def nested(self, op: Operation, body: Block, inherit: bool) -> None:
        """Visits `body` as a region of its own; its stores still pending go to its end."""
        outer = self.regions[-1]
        outer.anchor = op
        inner = _Region(dict(outer.known) if inherit else {})
        self.regions.append(inner)
        self.region(body)
        self.regions.pop()
        self.place(inner, None, body.last_op)  # (before the terminator)
        outer.anchor = None
        if inner.written:
            outer.known = {k: v for k, v in outer.known.items() if k[0] not in inner.written}
            outer.written |= inner.written

    # ------------------------------------------------------------------ accesses

    def flat(self, buf: SSAValue, indices) -> int | None:
        """The flat element of a promotable buffer at constant `indices` (None: dynamic or
        out of bounds)."""
        shape = self.shapes[id(buf)]
        consts = self.consts
        lin = 0
        for idx, n in zip(indices, shape):
            c = consts.get(id(idx), -1)
            if c == -1:  # (not looked at yet: a constant is never -1 here, an index >= 0)
                terms, c = self.facts.affine(idx)
                c = consts[id(idx)] = None if terms or c < 0 else c
            if c is None or c >= n:
                return None
            lin = lin * n + c
        return lin

    def load(self, op: nn_loop.LoadOp) -> None:
        buf, *indices = operands_of(op)
        if id(buf) not in self.shapes:
            return
        c = self.flat(buf, indices)
        if c is None:
            self.flush(id(buf), op)
            return
        state = self.regions[-1]
        key = (id(buf), c)
        (r,) = op.results
        v = state.known.get(key)
        if v is None:
            self.flush(id(buf), None)
            state.known[key] = r
            return
        replace_all_uses(r, v)  # (v takes the load's name if it has none)
        self.erase(op)

    def store(self, op: nn_loop.StoreOp) -> None:
        value, buf, *indices = operands_of(op)
        a = id(buf)
        if a not in self.shapes:
            return
        state = self.regions[-1]
        state.written.add(a)
        c = self.flat(buf, indices)
        if c is None:
            self.flush(a, op)
            state.known = {k: v for k, v in state.known.items() if k[0] != a}
            return
        self.flush(a, None)
        key = (a, c)
        state.known[key] = value
        old = state.pending.get(key)
        if old is not None:
            self.dead.append(old)
            drop_references(old)
        detach(op)
        state.pending[key] = op  # (an overwritten element keeps its place in the order)

    def flush(self, buf: int, here: Operation | None) -> None:
        """Places the pending stores to `buf`: those of enclosing regions before the nested
        op being visited there, and (with `here`) those of the current region before `here`."""
        regions = self.regions
        if len(regions) > 1:
            for state in regions[:-1]:
                if state.pending:
                    self.place(state, buf, state.anchor)
        if here is not None and regions[-1].pending:
            self.place(regions[-1], buf, here)

    def place(self, state: _Region, buf: int | None, before: Operation | None) -> None:
        """Inserts the pending stores of `state` (to `buf`, or all) before `before`."""
        if not state.pending or before is None:
            return
        block = before.parent
        keep: dict[tuple[int, int], nn_loop.StoreOp] = {}
        for key, store in state.pending.items():
            if buf is not None and key[0] != buf:
                keep[key] = store
            else:
                insert_before(block, store, before)  # type: ignore[arg-type]
        state.pending = keep

    def erase(self, op: Operation) -> None:
        detach(op)
        drop_references(op)
        self.dead.append(op)

    def finish(self) -> None:
        """Drops the stores pending at the end of the kernel and the allocs left unused."""
        for store in self.regions[0].pending.values():
            drop_references(store)
            self.dead.append(store)
        for alloc in self.allocs:
            if alloc.results[0].first_use is None:
                self.erase(alloc)


def _promotable(alloc: nn_loop.AllocOp) -> bool:
    """A private buffer only loaded and stored, element by element."""
    (buf,) = alloc.results
    t: MemRefType = type_of(buf)  # type: ignore[assignment]
    if nn_loop.memory_space(t) != nn_loop.MemorySpace.PRIVATE:
        return False
    elem = t.get_element_type()
    use = buf.first_use
    while use is not None:
        user = use_op_of(use)
        cls = type(user)
        if cls is nn_loop.LoadOp:
            if type_of(user.results[0]) != elem:
                return False
        elif cls is nn_loop.StoreOp:
            value, target = operands_of(user)[:2]
            if target is not buf or value is buf or type_of(value) != elem:
                return False
        else:
            return False
        use = next_use_of(use)
    return True


def promote_registers(root: Operation) -> None:
    """Forwards the private buffers of every kernel under `root` (see the module docstring)."""
    for kernel in kernels_under(root):
        p = _Promoter()
        p.region(kernel.regions[0].block)
        p.finish()


@dataclass(frozen=True)
class NNLoopPromoteRegistersPass(ModulePass):
    """Keeps the elements of private buffers in SSA values where their indices are constants.

    Takes nn_loop IR; gives the same IR where loads of private-buffer elements whose value
    is known are replaced by that value, stores are sunk to where memory is next needed
    (dropped when nothing reads them) and unused private allocs are erased (see the module
    docstring for regions, and for the buffers left alone).
    """

    name = "nn-loop-promote-registers"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        promote_registers(op)
