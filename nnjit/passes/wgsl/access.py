"""What storage each memref of a kernel gets, from how the kernel accesses it: an array of
scalars or of vec4 (every vector access a vector<4> at a multiple of 4), flat or nested (a
workgroup alloc of rank >= 2, one level per dim); and the launch geometry (grid and
workgroup size) from the mapped loops.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod
from typing import TYPE_CHECKING

from xdsl.dialects.builtin import MemRefType, f16
from xdsl.ir import Attribute, SSAValue

from nnjit.dialects import nn_loop
from nnjit.dialects import nn_wgsl as w
from nnjit.ir.fastir import operands_of, type_of
from nnjit.ir.fastir import walk as _walk
from nnjit.passes.wgsl.typefacts import cached_array_type, elem_of, facts, shape_of, vec4_type

if TYPE_CHECKING:
    from nnjit.passes.wgsl.emitter import Emitter


DIM = {"x": 0, "y": 1, "z": 2}
"""The index of a dim in a grid or workgroup size."""


class _Accesses:
    """What `analyse` gathers about the loads and stores of one memref: how many, how many
    of vectors, and whether every vector access fits vec4 storage (a vector<4> at a flat
    offset, or for a nested array an innermost index, that is a multiple of 4)."""

    __slots__ = (
        "buf", "workgroup", "nested", "elem_ok", "count", "vectors", "lanes4", "flat4",
        "inner4",
    )  # fmt: skip

    def __init__(self, buf: SSAValue):
        t: MemRefType = type_of(buf)  # type: ignore[assignment]
        self.buf = buf
        self.workgroup = nn_loop.memory_space(t) == nn_loop.MemorySpace.WORKGROUP
        self.nested = self.workgroup and len(shape_of(t)) >= 2  # one array level per dim
        elem = facts(elem_of(t))
        self.elem_ok = elem.is_f32 or elem.is_i32 or elem.type == f16  # (else never vec4 storage)
        self.count = 0
        self.vectors = 0
        self.lanes4 = True
        self.flat4 = True
        self.inner4 = True


def flat_multiple_of(cx: Emitter, t: MemRefType, indices: Sequence[SSAValue], m: int) -> bool:
    """Whether `m` divides every flat (row-major) offset of an access, from nnjit/ir/affine.py's
    divisors of its indices: each index times its stride must be a multiple of `m`, which
    holds without looking at the index where `m` divides the stride (the outer dims)."""
    divisor = cx.index.divisor
    shape = shape_of(t)
    stride = 1
    for k in range(len(shape) - 1, -1, -1):
        if stride % m == 0:
            return True
        if divisor(indices[k]) * stride % m != 0:
            return False
        stride *= shape[k]
    return True


def analyse(cx: Emitter) -> tuple[list[int], list[int], list[nn_loop.ForOp]]:
    """Grid and workgroup size from the mapped loops; picks vec4 storage per memref."""
    grid, ws = [1, 1, 1], [1, 1, 1]
    seen: set[str] = set()
    mapped: list[nn_loop.ForOp] = []
    accesses: dict[int, _Accesses] = {}  # by id() of the memref
    for op in _walk(cx.kernel):
        cls = type(op)
        if cls is nn_loop.ForOp and (
            op.properties["unroll"].value.data > 1 or op.properties["map"].data != "serial"
        ):
            u = op.properties["unroll"].value.data
            if u > 1:
                raise cx.error(f"a loop marked unroll {u} is not converted to WGSL: run nn-loop-unroll "
                               "before convert-nn-loop-to-wgsl")  # fmt: skip
            m = op.properties["map"].data
            if m == "thread":
                raise cx.error('map "thread" is for target wasm, not wgsl')
            if m in seen:
                raise cx.error(f'two loops are mapped to "{m}"')
            seen.add(m)
            cx.maps.add(m)
            p = op.parent_op()
            while isinstance(p, nn_loop.ForOp) and p.properties["map"].data != "serial":
                p = p.parent_op()
            if p is not cx.kernel:
                raise cx.error(
                    f'the loop mapped to "{m}" is inside a serial loop or an nn_loop.if; '
                    "mapped loops must be perfectly nested at the top of the kernel"
                )
            kind, dim = m.split(".")
            (grid if kind == "workgroup" else ws)[DIM[dim]] = op.trip_count
            mapped.append(op)
        elif cls is nn_loop.LoadOp or cls is nn_loop.StoreOp:
            if cls is nn_loop.LoadOp:
                buf, *indices = operands_of(op)
                (r,) = op.results
                t = type_of(r)
            else:
                value, buf, *indices = operands_of(op)
                t = type_of(value)
            acc = accesses.get(id(buf))
            if acc is None:
                acc = accesses[id(buf)] = _Accesses(buf)
            acc.count += 1
            if facts(t).is_vector:
                acc.vectors += 1
                if acc.elem_ok:  # (else vec4 storage is out of the question)
                    acc.lanes4 = acc.lanes4 and shape_of(t) == (4,)
                    if acc.nested:
                        acc.inner4 = acc.inner4 and cx.index.divisor(indices[-1]) % 4 == 0
                    else:
                        acc.flat4 = acc.flat4 and flat_multiple_of(cx, type_of(buf), indices, 4)
    for acc in accesses.values():
        buf = acc.buf
        if acc.nested:
            cx.nested.add(id(buf))
        if not acc.elem_ok:
            continue
        if acc.nested:  # vectors along the innermost dim, which 4 divides
            ok = shape_of(type_of(buf))[-1] % 4 == 0 and acc.inner4
        else:
            ok = acc.flat4
        if not ok or not acc.lanes4:
            continue
        if acc.vectors == acc.count:
            cx.vec4.add(id(buf))
        elif acc.vectors and acc.workgroup:
            # vec4 accesses stay vec4; scalar ones address one lane (a[i >> 2][i & 3])
            cx.vec4.add(id(buf))
    return grid, ws, mapped


def array_type(cx: Emitter, mem: SSAValue, space: str) -> w.ArrayType:
    t = type_of(mem)
    assert isinstance(t, MemRefType)
    n = prod(shape_of(t))
    elem = elem_of(t)
    if id(mem) in cx.nested:  # one array level per dim
        shape = list(shape_of(t))
        if id(mem) in cx.vec4:
            leaf: Attribute = vec4_type(elem)
            shape[-1] //= 4
        else:
            leaf = cx.wtype(elem)
        at = cached_array_type(space, leaf, shape[-1])
        for d in reversed(shape[:-1]):
            at = cached_array_type(space, at, d)
        return at
    if id(mem) in cx.vec4:
        count = 0 if space == "storage" else -(-n // 4)
        return cached_array_type(space, vec4_type(elem), count)
    et = cx.wtype(elem)
    if w.is_bool(et):
        raise cx.error(f"buffers of {elem} are not supported (store bools as i32)")
    return cached_array_type(space, et, 0 if space == "storage" else n)
