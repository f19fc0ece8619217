"""Memory access planning of the Wasm conversion: byte offsets of buffer accesses as affine
forms, the memory space of buffers, constant indices into private buffers, and the address
streams of serial loops (strength reduction: `AccessPlan.plan_streams`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from xdsl.dialects.builtin import IntegerType
from xdsl.ir import Block, BlockArgument, Operation, SSAValue

from nnjit.dialects import nn_loop
from nnjit.errors import UnsupportedError
from nnjit.ir.fastir import block_args_of, first_op_of, next_op_of, operands_of, type_of
from nnjit.passes.wasm.builder import Locals, i32
from nnjit.passes.wasm.facts import IndexFacts, body_of

_item = tuple.__getitem__  # operands_of(op)[k] without SSAValues.__getitem__ (a Python call)


def elem_bytes(elem) -> int:
    """Bytes of a buffer element: 1 for i8 (a weight read as int8 bytes), else 4."""
    return 1 if type(elem) is IntegerType and elem.width.data == 8 else 4


def access_of(op: Operation) -> tuple[SSAValue, list[SSAValue]]:
    """(buffer, indices) of an nn_loop.load or nn_loop.store."""
    # (unpacked: indexing or slicing an op's SSAValues is a Python-level method)
    if type(op) is nn_loop.LoadOp:
        buf, *indices = operands_of(op)
    else:
        _, buf, *indices = operands_of(op)
    return buf, indices


@dataclass
class Stream:
    """One address stream of a loop: pointer local = base of `buf` + inv terms + c * iv."""

    local: str
    buf: SSAValue
    inv: dict[SSAValue, int]
    c: int
    ops: list[Operation] = field(default_factory=list)


class AccessPlan:
    """Where a kernel's buffer accesses point: byte offsets, memory spaces, private-buffer
    elements, and the address streams planned for serial loops (`stream_of`)."""

    def __init__(self, facts: IndexFacts, loc: Locals,
                 error: Callable[[str, str | None], UnsupportedError]):  # fmt: skip
        self.facts = facts
        self.loc = loc
        self.error = error
        self._strides: dict[int, list[int]] = {}  # buffer -> strides
        self._space: dict[int, str] = {}  # buffer -> memory space
        self._shapes: dict[int, tuple[int, ...]] = {}  # private buffer -> shape
        # address streams (see plan_streams): id(access op) -> (pointer local, other terms,
        # constant byte offset)
        self.stream_of: dict[int, tuple[str, dict[SSAValue, int], int]] = {}

    def space(self, buf: SSAValue) -> nn_loop.MemorySpace | None:
        """The memory space of a buffer value (nn_loop.memory_space)."""
        r = self._space.get(id(buf))
        if r is None:
            r = self._space[id(buf)] = nn_loop.memory_space(type_of(buf))  # type: ignore[arg-type]
        return r

    def byte_terms(self, buf: SSAValue, indices) -> tuple[dict[SSAValue, int], int]:
        """The byte offset of buf[indices] from the buffer's base: (terms, constant)."""
        strides = self._strides.get(id(buf))
        if strides is None:
            t = buf.type
            shape = t.get_shape()  # type: ignore[attr-defined]
            size = elem_bytes(t.get_element_type())  # type: ignore[attr-defined]
            strides = self._strides[id(buf)] = [size * math.prod(shape[k + 1 :]) for k in range(len(shape))]
        affine = self.facts.affine
        terms: dict[SSAValue, int] = {}
        const = 0
        for idx, st in zip(indices, strides):
            tt, cc = affine(idx)
            for a, k in tt.items():
                terms[a] = terms.get(a, 0) + k * st
            const += cc * st
        return {a: k for a, k in terms.items() if k}, const

    def offset_ok(self, terms: dict[SSAValue, int]) -> bool:
        """Whether a dynamic address made of `terms` is never negative, so that a constant
        part may go to the memarg offset (Wasm adds it without wrapping)."""
        nonneg = self.facts.nonneg
        return all(k > 0 and nonneg(a) for a, k in terms.items())

    def private_index(self, buf: SSAValue, indices) -> int:
        """The element of a private buffer that buf[indices] is (indices must be constants)."""
        shape = self._shapes.get(id(buf))
        if shape is None:
            shape = self._shapes[id(buf)] = type_of(buf).get_shape()  # type: ignore[attr-defined]
        lin = 0
        for idx, n in zip(indices, shape):
            tt, cc = self.facts.affine(idx)
            if any(tt.values()):
                raise self.error(
                    "an index into a private buffer is not a constant after unrolling",
                    "fully unroll (unroll = trip count) the loops that index private buffers",
                )
            if not 0 <= cc < n:
                raise self.error(f"private buffer index {cc} is out of bounds 0..{n - 1}", None)
            lin = lin * n + cc
        return lin

    # --------------------------------------------------------------------------- streams

    def _each_access(self, block: Block, visit) -> None:
        """Calls visit(op) for the global loads and stores of `block` and of the `nn_loop.if`s
        in it; not for those of nested loops."""
        op = first_op_of(block)
        while op is not None:
            t = type(op)
            if t is nn_loop.LoadOp:
                if self.space(_item(operands_of(op), 0)) == nn_loop.MemorySpace.GLOBAL:
                    visit(op)
            elif t is nn_loop.StoreOp:
                if self.space(_item(operands_of(op), 1)) == nn_loop.MemorySpace.GLOBAL:
                    visit(op)
            elif t is nn_loop.IfOp:
                self._each_access(body_of(op), visit)
            op = next_op_of(op)

    def plan_streams(self, loop: nn_loop.ForOp) -> tuple[list[Stream], bool]:
        """Address streams of a serial loop (strength reduction): the global accesses of the
        body whose byte address is `base + sum(invariant terms) + c * iv + rest` with c > 0
        share, per (buffer, invariant terms, c), one pointer local that is set before the
        loop and bumped by c * step after each iteration; each access adds its `rest` (terms
        computed inside the body) and puts its constant in the memarg offset. Only accesses
        whose every term and constant is provably >= 0 take part (so no address wraps).

        Also returns whether every use of the iv is an address in a stream (then the loop
        needs no iv: its first pointer counts the iterations)."""
        facts = self.facts
        iv = block_args_of(body_of(loop))[0]
        if not facts.iv_nonneg.get(id(iv), False):
            return [], False
        streams: dict[tuple, Stream] = {}
        in_stream: set[Operation] = set()  # the access ops in a stream
        inside_of: dict[int, bool] = {}  # id(term) -> defined inside the loop (asked once)

        def inside(a: SSAValue) -> bool:
            r = inside_of.get(id(a))
            if r is None:
                owner = a.owner.parent_op() if type(a) is BlockArgument else a.owner
                r = inside_of[id(a)] = owner is not None and loop.is_ancestor(owner)  # type: ignore[arg-type]
            return r

        def visit(op: Operation) -> None:
            buf, indices = access_of(op)
            terms, const = self.byte_terms(buf, indices)
            c = terms.get(iv, 0)
            if c <= 0 or const < 0 or not self.offset_ok(terms):
                return
            inv: dict[SSAValue, int] = {}
            rest: dict[SSAValue, int] = {}
            for a, k in terms.items():
                if a is not iv:
                    (rest if inside(a) else inv)[a] = k
            key = (buf, frozenset(inv.items()), c)
            st = streams.get(key)
            if st is None:
                hint = (buf.name_hint or "p") if type(buf) is BlockArgument else "p"
                st = streams[key] = Stream(self.loc.new(f"p_{hint}", i32), buf, inv, c)
            st.ops.append(op)
            in_stream.add(op)
            self.stream_of[id(op)] = (st.local, rest, const)

        self._each_access(body_of(loop), visit)
        if not streams:
            return [], False
        only = all(u in in_stream for u in facts.eff_users(iv))
        return list(streams.values()), only
