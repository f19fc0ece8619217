"""Matmul and gemm kernels: `nn_tensor.fused` of kind "matmul" lowered to one `nn_loop.kernel`.

The kernel is built by a generator shared with conv (conv.py): both are "GEMM-like" problems
C[b, r, c] = sum_k A[b, r, k] * B[b, k, c], described by a `GemmSpec` that says how to load
A and B elements (or 4-lane vectors) and how to finish and store an output element (bias,
alpha/beta, the fused elementwise epilogue). Matmul's spec (here) reads A and B straight from
buffers, swapping indices for transposed operands and broadcasting batch dims; conv's spec
gathers B from the input image (implicit im2col).

Schedules (`Schedule` options; the effective values are recorded in the kernel's `schedule`,
so a kernel replays from them). Options read here: `reg` = (reg_m, reg_n), `tile` =
(tile_m, tile_n[, tile_k]), `workgroup` = (x, y[, z]) (z: k slices, WGSL), `vec` (1 or 4),
`kstep`, `shared` (0, 1 or 2). Values of another arity (e.g. a 1-D `workgroup` meant for
elementwise kernels in the same pass run) are ignored for matmuls, i.e. take the default;
inconsistent or impossible combinations (tile not a multiple of reg, > 256 invocations,
> 32 KiB of workgroup memory, tile_k not a multiple of the k slices, vec 4 with
reg_n % 4 != 0) raise NNJitError. In mode k (below) reg counts k-vector accumulators (rows x
columns) and kstep unrolls the 4-wide k steps.

WGSL (target "wgsl")
  * loops: `workgroup.z` over the batch (only when batched), `workgroup.y`/`workgroup.x` over
    output tiles of tile_m x tile_n, then `invocation.z` over k slices (only when
    workgroup z > 1), `invocation.y`/`invocation.x` over a TY x TX grid with
    TY = tile_m / reg_m, TX = tile_n / reg_n (`workgroup` = (TX, TY[, TZ]), x first as in
    @workgroup_size; at most 256 invocations in all). Rows of an invocation: m0 + i*TY + ty
    (staged tiles: m0 + ty*reg_m + i, so that its A fragment is contiguous); columns
    interleaved across invocations for coalescing and conflict-free tile reads:
    n0 + (g*TX + tx)*vec.
  * each invocation keeps a reg_m x reg_n register tile in an `nn_loop.alloc` private memref;
    the register-tile code is straight-line (constant private indices).
  * `vec`=4, vectors along n ("mode n"): A element splat x B vec4 -> math.fma into
    vector<4xf32> accumulators. When B is stored transposed ([.., N, K], e.g. Q.K^T) vectors run
    along k instead ("mode k"): A vec4 x B vec4 fma, lanes summed (reduce_lanes) at the end.
    When neither fits (both operands transposed, N < 4, conv gathers) vec falls back to 1.
  * k loop serial with `unroll kstep` (a remainder loop when kstep does not divide the trip).
    Mode n with vec 4 and kstep a multiple of 4 (A contiguous along k, 4 | K) reads A as
    vectors along k, one per row and 4 k steps (kstep 1..3: scalar A loads, as before).
  * `shared`=1: A and B tiles are staged k-major in `workgroup` memrefs ([tile_k][tile_m],
    [tile_k][tile_n]; tile_k = tile[2]) by cooperative loads that read 4-lane vectors along
    each operand's contiguous dim where it allows (A along k, or along m when transposed; B
    along n, or along k when transposed; 4 | that dim), consecutive invocations on
    consecutive vectors (or rows, when the vector runs along k: its lanes go to 4 k rows with
    conflict-free scalar stores); two barriers per k tile; each register step reads the A
    fragment as reg_m/4 vectors and the B fragment as reg_n/4 vectors; the steps of a tile
    are fully unrolled by default (kstep = tile_k / slices). Loads are clamped, never guarded;
    k past K reads zeros (a select). `shared`=2: two buffers (double buffering): the next
    tile's loads are issued into registers before the current tile's steps and stored into
    the other buffer after them: one barrier per tile, global latency hidden by the steps.
    With vectors along k only (N < 4, conv tiles of short rows) shared tiles are [k][n] and
    [m][k] read as k vectors (one buffer, no k slices).
  * k slices (`workgroup` z = TZ > 1): TZ copies of the TX x TY grid each sum a contiguous
    1/TZ of k (unstaged: of the k loop; staged: of each k tile, the tiles' k dim split into
    (slice, step)); slices 1..TZ-1 then add their accumulators into slice 0's through a
    workgroup buffer, one slice at a time, and slice 0 alone runs the epilogue. This is
    split-K inside one dispatch: more parallelism where M x N gives too few workgroups
    (BERT-base: M = 128) with no scratch buffer nor second kernel.
  * ragged edges: rows are clamped for loads and stores are guarded. Columns, without shared:
    a vector group that overhangs N is shifted back to N - vec (it recomputes, and rewrites
    with identical values, a few columns of its neighbour) so every load stays in bounds and
    vectorised; with shared: partial vector groups are stored lane by lane under guards.
  * defaults: reg 4x8 (32 accumulator floats per invocation; 2x4 k-vectors in mode k), an
    8x8 invocation grid, so tile 32x64 (clamped to the problem: fewer idle invocations on
    small matrices), vec 4 when the vectorised dim is a multiple of 4, kstep 4 (1 in mode k),
    shared 0, no k slices, tile_k 16 (less where 16 KiB, WebGPU's default limit, would not
    hold the tiles; an explicit tile may use up to 32 KiB). On lavapipe (BERT dense
    128x768x768) reg 4x8 runs ~1.5x faster than 4x4 and shared is slower (no real shared
    memory). Measured on an H100 through wgpu/Vulkan (bench/gpu_matmul.py, fraction of cuBLAS
    fp32): 4096^3 `shared=2 tile=64,128,8 reg=8,8 workgroup=16,8` 0.83-0.85 (default 0.46);
    BERT-base 128x768x768 / 128x768x3072 / 128x3072x768 `reg=2,4 workgroup=8,4,8 kstep=8`
    2.09 / 0.95 / 0.96 (default 0.26 / 0.31 / 0.09): the tuner decides per device.

Wasm (target "wasm")
  * one `thread` loop outermost over (batch x column tiles x row tiles) macro tiles of
    tile_m x tile_n (cache blocking: within a macro tile the B panel K x tile_n is reused by
    every row block and the A panel reg_m x K by every column block), then serial loops over
    the reg_m x reg_n register blocks of the macro tile.
  * register tile: reg_m x reg_n/4 f32x4 accumulators (mode n) in a private memref with
    constant indices: A element splat x B vec4 -> math.fma; mode k (transposed B) as for WGSL.
  * the C tile stays in registers over the whole K loop (no k-blocking: a k-blocked kernel
    must re-read partial sums from the output, which the edge shifting below forbids).
  * B may be a weight packed in [N/nr, K, nr] panels by nn-tensor-pack-weights (the body
    unpacks it with transpose + reshape, which `_trace_packed` recognises): loads index
    [panel, k, column in panel], the panel and in-panel offset folded to one value and a
    constant where the register tile's first column is a known multiple of nr (KB.alignment).
    Row-major B rows N*4 bytes apart (3 KiB, 12 KiB in BERT) map a K x nr panel onto a few L1
    sets; packed, the panel is one contiguous stream.
  * ragged M and N: the last register block of a dimension is shifted back to end at M (N);
    it recomputes a few rows (columns) with identical results, so all code stays vectorised
    and unguarded. reg_m, reg_n are clamped to M, N.
  * tile is evened out: the same number of macro tiles, each a multiple of the register
    tile and as equal as possible (fewer recomputed edge blocks); `tile_k` is not used.
  * defaults: reg 2x16 (8 f32x4 accumulators + 4 B vectors + 1 A splat: 13 of x86-64's 16
    SIMD registers, which V8 keeps in registers), 2x4 in mode k, 4x4 when vec=1; kstep 2;
    tile = reg_n columns of B (two 8-column panels) by as many rows as keep the A block
    (rows x K) in 2 MiB, fewer where that leaves under 16 macro tiles (`_wasm_default_tile`):
    threads split the columns and share A; vec 4 whenever the layout allows it (unaligned
    v128 loads are fine in Wasm). The Wasm backend turns the k loop's addresses into pointer
    bumps with memarg offsets (convert-nn-loop-to-wasm, address streams). Measured in
    headless Chromium on a 2-core Xeon (bench/wasm_matmul/RESULTS.md, `--variants`): on
    BERT's dense shapes 2x16 gives 53-56 GFLOP/s on one thread and 105-110 on two (the
    relaxed_madd peak: ~59 / ~117), 6x8 (12 accumulators) 45-54 / 93-102 (worse for K =
    3072: six A rows 12 KiB apart share L1 sets), 4x8 and 3x8 less; kstep 2 beats 1, 3, 4;
    the previous 4x8 / 32x64 default with row-major B: ~17-26 (wasmtime), 7-23 in Chromium.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Any

from xdsl.dialects import arith
from xdsl.dialects import math as xmath
from xdsl.dialects.builtin import (
    Float32Type,
    FloatAttr,
    IndexType,
    IntegerAttr,
    MemRefType,
    StringAttr,
    TensorType,
    VectorType,
    f32,
    i1,
)
from xdsl.ir import Attribute, Block, BlockArgument, Operation, Region, SSAValue

from nnjit.dialects import nn_loop as L
from nnjit.dialects import nn_tensor as T
from nnjit.errors import NNJitError, UnsupportedError
from nnjit.ir.fastir import append as _append
from nnjit.ir.fastir import i64_attr as _i64
from nnjit.ir.fastir import new_op as _new_op
from nnjit.passes.lowering.common import KernelBuilder, memref_type
from nnjit.passes.lowering.scalar import can_vectorize, emit_value_at, map_index

INDEX = IndexType()
VEC4 = VectorType(f32, [4])
MAX_INVOCATIONS = 256
MAX_SHARED_BYTES = 32768
"""The most workgroup memory a matmul schedule may ask for (desktop adapters grant 32 KiB;
the runtime checks the device's own limit, the tuner asks only for what fits)."""
PORTABLE_SHARED_BYTES = 16384
"""WebGPU's default maxComputeWorkgroupStorageSize: default tile_k choices stay within it."""
MAX_GRID = 65535


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _roundup(a: int, b: int) -> int:
    return _ceil(a, b) * b


# ------------------------------------------------------------------------------ builder

_NO_OVERFLOW = arith.IntegerOverflowAttr("none")
_NO_FASTMATH = arith.FastMathFlagsAttr("none")
_ATTRS: dict[tuple[str, Any], Attribute] = {}


def _index_attr(n: int) -> Attribute:
    a = _ATTRS.get(("index", n))
    if a is None:
        a = _ATTRS[("index", n)] = IntegerAttr(n, INDEX)
    return a


def _str(s: str) -> Attribute:
    a = _ATTRS.get(("str", s))
    if a is None:
        a = _ATTRS[("str", s)] = StringAttr(s)
    return a


def _vec_type(elem: Attribute, n: int) -> VectorType:
    a = _ATTRS.get(("vec", elem, n))
    if a is None:
        a = _ATTRS[("vec", elem, n)] = VectorType(elem, [n])
    return a  # type: ignore[return-value]


def _memref(t: Attribute) -> MemRefType:
    """memref_type (common) of a tensor type, cached: MemRefType construction is slow."""
    a = _ATTRS.get(("buf", t))
    if a is None:
        a = _ATTRS[("buf", t)] = memref_type(t)
    return a  # type: ignore[return-value]


_CMPI = {"eq": 0, "slt": 2, "sge": 5}


class KB:
    """Appends ops to a current block and folds index arithmetic on known constants.

    Ops are made with `Op.create` and cached attributes: lowering one kernel variant has to
    take a few milliseconds, and the checked constructors cost 3x more. Index constants are
    created once, at the top of `const_block` (the SPMD body), so they dominate every use.
    """

    def __init__(self, block: Block):
        self.block = block
        self.const_block: Block | None = None
        self._anchor: Operation | None = None
        self._consts: dict[tuple[Attribute, Any], SSAValue] = {}
        self.known: dict[SSAValue, int] = {}
        self._divs: dict[tuple[Block, Any, int], SSAValue] = {}

    # -- plumbing
    def op(self, op: Operation) -> Operation:
        _append(self.block, op)
        return op

    def v(self, op: Operation) -> SSAValue:
        _append(self.block, op)
        return op.results[0]

    def new(
        self,
        cls: type[Operation],
        operands: Sequence[SSAValue],
        result_type: Attribute | None,
        props: dict[str, Attribute] | None = None,
    ) -> SSAValue:
        if result_type is None:
            _append(self.block, _new_op(cls, operands, (), props and dict(props)))
            return None  # type: ignore[return-value]
        op = _new_op(cls, operands, (result_type,), props and dict(props))
        _append(self.block, op)
        return op.results[0]

    def set_const_block(self, block: Block, anchor: Operation | None = None):
        self.const_block, self._anchor, self._consts = block, anchor, {}

    def _insert_const(self, op: Operation) -> SSAValue:
        """Inserts a constant op after the previous one at the top of const_block."""
        blk = self.const_block if self.const_block is not None else self.block
        if self._anchor is not None:
            blk.insert_op_after(op, self._anchor)
        elif blk.first_op is not None:
            blk.insert_op_before(op, blk.first_op)
        else:
            blk.add_op(op)
        self._anchor = op
        return op.results[0]

    def _const(self, attr: Attribute, typ: Attribute, key: Any) -> SSAValue:
        k = (typ, key)
        if k not in self._consts:
            op = _new_op(arith.ConstantOp, (), (typ,), {"value": attr})
            self._consts[k] = self._insert_const(op)
        return self._consts[k]

    @contextmanager
    def at(self, block: Block) -> Iterator[None]:
        old = self.block
        self.block = block
        try:
            yield
        finally:
            self.block = old

    # -- constants
    def c(self, n: int) -> SSAValue:
        v = self._consts.get((INDEX, n))
        if v is None:
            v = self._const(_index_attr(n), INDEX, n)
            self.known[v] = n
        return v

    def f(self, x: float, vec: int = 1) -> SSAValue:
        """An f32 constant (splat to a vector when vec > 1; splats are cached too)."""
        s = self._consts.get((f32, float(x)))
        if s is None:
            a = _ATTRS.get(("f32", float(x)))
            if a is None:
                a = _ATTRS[("f32", float(x))] = FloatAttr(x, f32)
            s = self._const(a, f32, float(x))
        if vec == 1:
            return s
        key = (VEC4, ("splat", float(x)))
        v = self._consts.get(key)
        if v is None:
            op = _new_op(L.SplatOp, (s,), (_vec_type(f32, vec),))
            v = self._consts[key] = self._insert_const(op)
        return v

    def ix(self, x: SSAValue | int) -> SSAValue:
        return self.c(x) if isinstance(x, int) else x

    def cv(self, x: SSAValue | int) -> int | None:
        return x if isinstance(x, int) else self.known.get(x)

    # -- index arithmetic (folded when constant)
    def _ibin(self, cls: type[Operation], a: SSAValue | int, b: SSAValue | int) -> SSAValue:
        props = {"overflowFlags": _NO_OVERFLOW} if cls in (arith.AddiOp, arith.MuliOp) else None
        return self.new(cls, [self.ix(a), self.ix(b)], INDEX, props)

    def add(self, a: SSAValue | int, b: SSAValue | int) -> SSAValue:
        ca, cb = self.cv(a), self.cv(b)
        if ca is not None and cb is not None:
            return self.c(ca + cb)
        if ca == 0:
            return self.ix(b)
        if cb == 0:
            return self.ix(a)
        return self._ibin(arith.AddiOp, a, b)

    def mul(self, a: SSAValue | int, b: SSAValue | int) -> SSAValue:
        ca, cb = self.cv(a), self.cv(b)
        if ca is not None and cb is not None:
            return self.c(ca * cb)
        if ca == 0 or cb == 0:
            return self.c(0)
        if ca == 1:
            return self.ix(b)
        if cb == 1:
            return self.ix(a)
        return self._ibin(arith.MuliOp, a, b)

    def div(self, a: SSAValue | int, n: int) -> SSAValue:
        ca = self.cv(a)
        if ca is not None:
            return self.c(ca // n)
        if n == 1:
            return self.ix(a)
        return self._ibin(arith.DivSIOp, a, n)

    def rem(self, a: SSAValue | int, n: int) -> SSAValue:
        ca = self.cv(a)
        if ca is not None:
            return self.c(ca % n)
        if n == 1:
            return self.c(0)
        return self._ibin(arith.RemSIOp, a, n)

    def alignment(self, a: SSAValue | int) -> int:
        """A known divisor of index value `a` (0: a is 0) from constants, loop ivs (lb and
        step), sums, products, min and max; 1 when nothing is known."""
        ca = self.cv(a)
        if ca is not None:
            return abs(ca)
        assert isinstance(a, SSAValue)
        if isinstance(a, BlockArgument):
            loop = a.owner.parent_op() if isinstance(a.owner, Block) else None
            if isinstance(loop, L.ForOp):
                return math.gcd(loop.lb.value.data, loop.step.value.data)
            return 1
        op = a.owner
        if isinstance(op, arith.MuliOp):
            return self.alignment(op.lhs) * self.alignment(op.rhs)
        if isinstance(op, (arith.AddiOp, arith.MinSIOp, arith.MaxSIOp)):
            return math.gcd(self.alignment(op.lhs), self.alignment(op.rhs))
        return 1

    def divmod_aligned(self, a: SSAValue | int, n: int) -> tuple[SSAValue, SSAValue] | None:
        """(a // n, a % n) for an index a >= 0 when a = x + c with x a known multiple of n
        and c >= 0 a constant: the quotient x // n + c // n and the constant remainder c % n;
        None otherwise."""
        x: SSAValue | int = a
        c = 0
        while (
            not isinstance(x, int) and self.cv(x) is None and isinstance(x.owner, arith.AddiOp)
            and self.cv(x.owner.rhs) is not None
        ):  # fmt: skip
            c += self.cv(x.owner.rhs)  # type: ignore[operator]
            x = x.owner.lhs
        cx = self.cv(x)
        if cx is not None:
            x, c = 0, c + cx
        if c >= 0 and self.alignment(x) % n == 0:
            key = (self.block, x, n)  # one quotient per block for the columns of a tile
            q = self._divs.get(key)
            if q is None:
                q = self._divs[key] = self.div(x, n)
            return self.add(q, c // n), self.c(c % n)
        return None

    def min(self, a: SSAValue | int, n: int) -> SSAValue:
        ca = self.cv(a)
        if ca is not None:
            return self.c(min(ca, n))
        return self._ibin(arith.MinSIOp, a, n)

    def max(self, a: SSAValue | int, n: int) -> SSAValue:
        ca = self.cv(a)
        if ca is not None:
            return self.c(max(ca, n))
        return self._ibin(arith.MaxSIOp, a, n)

    def _cmp(self, pred: str, a: SSAValue | int, n: int) -> SSAValue:
        return self.new(arith.CmpiOp, [self.ix(a), self.c(n)], i1, {"predicate": _i64(_CMPI[pred])})

    def lt(self, a: SSAValue | int, n: int) -> SSAValue:
        """a < n as i1."""
        return self._cmp("slt", a, n)

    def ge(self, a: SSAValue | int, n: int) -> SSAValue:
        return self._cmp("sge", a, n)

    def eq(self, a: SSAValue | int, n: int) -> SSAValue:
        return self._cmp("eq", a, n)

    def and_(self, conds: Sequence[SSAValue | None]) -> SSAValue | None:
        out: SSAValue | None = None
        for c in conds:
            if c is None:
                continue
            out = c if out is None else self.new(arith.AndIOp, [out, c], i1)
        return out

    # -- values and memory
    def splat(self, s: SSAValue, vec: int) -> SSAValue:
        if vec == 1:
            return s
        return self.new(L.SplatOp, [s], _vec_type(s.type, vec))

    def fbin(self, cls: type[Operation], a: SSAValue, b: SSAValue) -> SSAValue:
        return self.new(cls, [a, b], a.type, {"fastmath": _NO_FASTMATH})

    def fma(self, a: SSAValue, b: SSAValue, c: SSAValue) -> SSAValue:
        return self.new(xmath.FmaOp, [a, b, c], c.type, {"fastmath": _NO_FASTMATH})

    def select(self, cond: SSAValue, a: SSAValue, b: SSAValue) -> SSAValue:
        return self.new(arith.SelectOp, [cond, a, b], a.type)

    def extract(self, v: SSAValue, lane: int) -> SSAValue:
        t = v.type
        assert isinstance(t, VectorType)
        return self.new(L.ExtractOp, [v], t.get_element_type(), {"lane": _i64(lane)})

    def reduce_add(self, v: SSAValue) -> SSAValue:
        t = v.type
        assert isinstance(t, VectorType)
        return self.new(L.ReduceLanesOp, [v], t.get_element_type(), {"kind": L.REDUCTION_ATTRS["add"]})

    def load(self, buf: SSAValue, idx: Sequence[SSAValue | int], vec: int = 1) -> SSAValue:
        t = buf.type
        assert isinstance(t, MemRefType)
        elem = t.get_element_type()
        rt = elem if vec == 1 else _vec_type(elem, vec)
        return self.new(L.LoadOp, [buf, *(self.ix(i) for i in idx)], rt)

    def store(self, val: SSAValue, buf: SSAValue, idx: Sequence[SSAValue | int]):
        self.new(L.StoreOp, [val, buf, *(self.ix(i) for i in idx)], None)

    def alloc(self, shape: Sequence[int], elem: Attribute, space: str, name: str) -> SSAValue:
        key = ("memref", elem, tuple(shape), space)
        t = _ATTRS.get(key)
        if t is None:
            t = _ATTRS[key] = MemRefType(elem, list(shape), memory_space=_str(space))
        v = self.new(L.AllocOp, [], t)
        v.name_hint = name
        return v

    def barrier(self) -> None:
        self.op(_new_op(L.BarrierOp))

    # -- structure
    @contextmanager
    def for_(
        self,
        lb: int,
        ub: int,
        step: int = 1,
        map: str = "serial",
        unroll: int = 1,
        name: str | None = None,
    ) -> Iterator[SSAValue]:
        """`nn_loop.for` (`name`: the iv's name in printed IR)."""
        block = Block(arg_types=[INDEX])
        if name is not None:
            block.args[0].name_hint = name
        props = {
            "lb": _i64(lb), "ub": _i64(ub), "step": _i64(step), "map": L.MAP_ATTRS[map],
            "unroll": _i64(unroll),
        }  # fmt: skip
        _append(self.block, _new_op(L.ForOp, properties=props, regions=[Region(block)]))
        with self.at(block):
            yield block.args[0]
            _append(block, _new_op(L.YieldOp))

    @contextmanager
    def if_(self, cond: SSAValue | None) -> Iterator[None]:
        """A guarded region; no guard at all when cond is None (statically true)."""
        if cond is None:
            yield
            return
        block = Block()
        _append(self.block, _new_op(L.IfOp, (cond,), regions=[Region(block)]))
        with self.at(block):
            yield
            _append(block, _new_op(L.YieldOp))

    def loop(
        self,
        lb: int,
        ub: int,
        step: int,
        unroll: int,
        body: Callable[[SSAValue], None],
        name: str | None = None,
    ) -> None:
        """for iv in range(lb, ub, step) with `unroll`; a fully unrolled remainder loop takes
        the iterations that `unroll` does not divide; a single iteration needs no loop."""
        trip = max(0, _ceil(ub - lb, step))
        if trip == 0:
            return
        if trip == 1:
            body(self.c(lb))
            return
        u = max(1, min(unroll, trip))
        main = trip // u * u
        if main:
            with self.for_(lb, lb + main * step, step, unroll=u, name=name) as iv:
                body(iv)
        rest = trip - main
        if rest == 1:
            body(self.c(lb + main * step))
        elif rest:
            with self.for_(lb + main * step, lb + trip * step, step, unroll=rest, name=name) as iv:
                body(iv)

    def unrolled(self, n: int, body: Callable[[SSAValue], None], name: str | None = None) -> None:
        """body(i) for i in range(n), as a loop that nn-loop-unroll turns into straight-line
        code (constant i: private indices stay constant)."""
        self.loop(0, n, 1, n, body, name)


# ------------------------------------------------------------------------------ spec


class GemmSpec:
    """A GEMM-like problem: out[b, r, c] = finish(sum_k A[b, r, k] * B[b, k, c]).

    Subclasses set the sizes and capabilities and implement the access hooks. `rows`/`cols`/
    `batch`/`kinfo` return opaque per-row/column/batch/k data (index values hoisted out of
    the inner loops); loads get them back.
    """

    kind = "matmul"
    nbatch = 1  # trip count of the batch loop (1: no batch loop)
    M = N = K = 1
    a_vec_k = False  # A[r, k..k+3] is contiguous in memory
    a_vec_m = False  # A[r..r+3, k] is contiguous (load_a with vec reads it; r % 4 == 0)
    b_vec_n = False  # B[k, c..c+3] is contiguous
    b_vec_k = False  # B[k..k+3, c] is contiguous
    a_fast = "k"  # the logical dim of A that is contiguous ("k" or "m")
    b_fast = "n"  # the logical dim of B that is contiguous ("n" or "k")
    arg_types: list[MemRefType]
    access: list[str]
    bufs: Sequence[SSAValue] = ()

    def n_vec_ok(self, vec: int) -> bool:
        """Whether outputs may be finished and stored as vectors along c (groups aligned to vec)."""
        return True

    def batch(self, kb: KB, bz: SSAValue | None) -> Any:
        return None

    def row(self, kb: KB, bi: Any, r: SSAValue) -> Any:
        raise NotImplementedError

    def col(self, kb: KB, bi: Any, c: SSAValue) -> Any:
        raise NotImplementedError

    def kinfo(self, kb: KB, k: SSAValue) -> Any:
        return k

    def load_a(self, kb: KB, bi: Any, ri: Any, ki: Any, vec: int) -> SSAValue:
        """A[r, k] (vec > 1: A[r, k..k+vec), needs a_vec_k)."""
        raise NotImplementedError

    def load_b(self, kb: KB, bi: Any, ki: Any, ci: Any, vec: int, along: str) -> SSAValue:
        """B[k, c]; vec > 1: B[k, c..c+vec) (along "n") or B[k..k+vec, c] (along "k")."""
        raise NotImplementedError

    def finish(self, kb: KB, bi: Any, ri: Any, ci: Any, acc: SSAValue, vec: int) -> None:
        """Applies bias/scaling/epilogue to the accumulated value(s) and stores them."""
        raise NotImplementedError


# ------------------------------------------------------------------------------ plans


@dataclass
class Plan:
    """The effective schedule of one kernel."""

    target: str
    mode: str  # "n": vectors along the output columns; "k": vectors along k
    vec: int
    rm: int
    rn: int  # register tile columns (elements; a multiple of vec in mode n)
    tile_m: int
    tile_n: int
    tile_k: int = 0  # wgsl shared only
    tx: int = 1
    ty: int = 1
    kstep: int = 1
    shared: int = 0
    tz: int = 1  # wgsl: k slices (invocation.z) per workgroup

    def record(self, sched: Any) -> dict[str, Attribute]:
        if self.target == "wgsl":
            tile = (self.tile_m, self.tile_n) + ((self.tile_k,) if self.shared else ())
            wg = (self.tx, self.ty) + ((self.tz,) if self.tz > 1 else ())
            eff = dict(
                workgroup=wg, tile=tile, reg=(self.rm, self.rn),
                vec=self.vec, kstep=self.kstep, shared=self.shared,
            )  # fmt: skip
        else:
            eff = dict(
                workgroup=(), tile=(self.tile_m, self.tile_n), reg=(self.rm, self.rn),
                vec=self.vec, kstep=self.kstep, shared=-1,
            )  # fmt: skip
        return replace(sched, target=self.target, rows=0, **eff).as_dict()


def _opt(t: Sequence[int] | None, n: int) -> tuple[int, ...] | None:
    """A tuple option with n positive values, or None (default)."""
    if t is None:
        return None
    t = tuple(int(x) for x in t)
    if len(t) != n or any(x <= 0 for x in t):
        return None
    return t


def _int(x: int | None) -> int | None:
    return None if x is None or int(x) <= 0 else int(x)


def _bad(msg: str) -> NNJitError:
    return NNJitError(msg, hint="pick schedule options that satisfy it")


def _pick_mode(
    spec: GemmSpec, vec: int | None, shared: bool, aligned_default: bool
) -> tuple[str, int]:
    """(mode, vec): vectors along n when B (or the shared tile) is contiguous along n,
    along k when both operands are contiguous along k; else scalar. With `aligned_default`,
    the default (vec unset) is 4 only when the vectorised dim is a multiple of 4."""
    want = 4 if vec is None else vec
    if want not in (1, 4):
        raise _bad(f"matmul vec must be 1 or 4, got {want}")
    if want == 1:
        return "n", 1
    can_n = spec.N >= 4 and (shared or spec.b_vec_n) and spec.n_vec_ok(4)
    can_k = spec.K >= 4 and (shared or (spec.a_vec_k and spec.b_vec_k))
    prefer_k = not shared and spec.b_fast == "k"
    order = ("k", "n") if prefer_k else ("n", "k")
    mode = next((m for m in order if (can_k if m == "k" else can_n)), "")
    if not mode:
        return "n", 1
    if vec is None and aligned_default and (spec.N if mode == "n" else spec.K) % 4:
        return "n", 1
    return mode, 4


def _reg_vec(mode: str, vec: int, rn: int, asked: int | None) -> int:
    """vec once reg is known: in mode n the register tile holds whole vectors, so a reg_n
    that is not a multiple of 4 turns the default vec 4 into 1 (and an explicit 4 into an
    error)."""
    if mode == "n" and rn % vec:
        if asked is not None:
            raise _bad(f"matmul reg_n ({rn}) must be a multiple of vec ({vec})")
        return 1
    return vec


def plan_wgsl(spec: GemmSpec, s: Any) -> Plan:
    shared = min(2, _int(getattr(s, "shared", 0)) or 0)
    tile = _opt(s.tile, 3) or _opt(s.tile, 2)
    mode, vec = _pick_mode(spec, _int(s.vec), bool(shared), True)
    if mode == "k" and shared and tile is not None and len(tile) == 3 and tile[2] % 4:
        if _int(s.vec) is not None:
            raise _bad(f"matmul tile_k ({tile[2]}) must be a multiple of 4 with vec 4")
        mode, vec = "n", 1  # k vectors do not fit the staged k tile: scalar by default
    if shared and mode == "k":
        shared = 1  # k-vector tiles (N < 4 or no vector groups along n): no double buffer
    rm, rn = _opt(s.reg, 2) or ((4, 8) if mode == "n" else (2, 4))
    vec = _reg_vec(mode, vec, rn, _int(s.vec))
    wg3 = _opt(s.workgroup, 3)
    wg = _opt(s.workgroup, 2) or (wg3[:2] if wg3 is not None else None)
    tz = wg3[2] if wg3 is not None else 1
    if shared and mode == "k":
        tz = 1  # k-vector tiles: no k slices
    if wg is not None:
        tx, ty = wg[0], wg[1]
        tile_m, tile_n = ty * rm, tx * rn
        if tile is not None and tile[:2] != (tile_m, tile_n):
            raise _bad(
                f"matmul tile {tile[:2]} != workgroup (x={tx}, y={ty}) * reg ({rm}, {rn})"
            )
    elif tile is not None:
        tile_m, tile_n = tile[0], tile[1]
        if tile_m % rm or tile_n % rn:
            raise _bad(f"matmul tile {tile[:2]} must be a multiple of reg ({rm}, {rn})")
        ty, tx = tile_m // rm, tile_n // rn
    else:
        # an 8x8 invocation grid, fewer where the problem is smaller
        tile_m = min(8 * rm, _roundup(spec.M, rm))
        tile_n = min(8 * rn, _roundup(spec.N, rn))
        ty, tx = tile_m // rm, tile_n // rn
    if tx * ty * tz > MAX_INVOCATIONS:
        size = f"{tx}x{ty}" + (f"x{tz}" if tz > 1 else "")
        raise _bad(f"matmul workgroup {size} has more than {MAX_INVOCATIONS} invocations")
    if tz > 64:
        raise _bad(f"matmul k slices (workgroup z = {tz}) exceed WebGPU's 64")
    grid = (spec.nbatch, _ceil(spec.M, tile_m), _ceil(spec.N, tile_n))
    if max(grid) > MAX_GRID:
        raise _bad(f"matmul dispatch grid {grid} exceeds {MAX_GRID} workgroups in a dimension")
    # the k slices' partial sums meet in workgroup memory (one accumulator set at a time)
    red = 0 if tz == 1 else 4 * rm * _ceil(rn, vec if mode == "n" else 1) * vec * tx * ty
    tile_k = 0
    if shared and mode == "n":  # staged tiles, k-major, one or two buffers
        nbuf = shared
        explicit = tile is not None and len(tile) == 3
        cands = [tile[2]] if explicit else [  # type: ignore[index]
            _roundup(min(t, _roundup(spec.K, 4)), tz) for t in (16, 8, 4, 2, 1)
        ]
        cap = MAX_SHARED_BYTES if explicit else PORTABLE_SHARED_BYTES
        for tile_k in cands:
            nbytes = 4 * nbuf * tile_k * (tile_m + tile_n) + red
            if nbytes <= cap:
                break
        if tile_k % tz:
            raise _bad(f"matmul tile_k ({tile_k}) must be a multiple of the k slices ({tz})")
        kstep = _int(s.kstep) or tile_k // tz
    else:
        kstep = _int(s.kstep) or (4 if mode == "n" else 1)
        nbytes = red
        if shared:
            if tile is not None and len(tile) == 3:
                tile_k = tile[2]
            else:
                tile_k = min(16, _roundup(spec.K, vec if mode == "k" else 1))
            nbytes += 4 * tile_k * (tile_m + tile_n)
    if nbytes > MAX_SHARED_BYTES:
        what = "shared tiles" if shared else "k-slice partial sums"
        raise _bad(f"matmul {what} need {nbytes} bytes (> {MAX_SHARED_BYTES})")
    return Plan("wgsl", mode, vec, rm, rn, tile_m, tile_n, tile_k, tx, ty, kstep, shared, tz)


def _even_tile(total: int, tile: int, unit: int) -> int:
    """A multiple of `unit` splitting `total` into the same number of tiles as `tile` does,
    as evenly as possible (fixed point, so replaying the result gives itself)."""
    tile = max(unit, min(tile, _roundup(total, unit)))
    while True:
        nt = _ceil(total, tile)
        t = _roundup(_ceil(total, nt), unit)
        if t == tile:
            return t
        tile = t


WASM_A_BLOCK_BYTES = 2 << 20  # default tile_m: the A block tile_m x K stays in L2
WASM_MIN_CHUNKS = 16  # default tile_m: enough macro tiles to balance the threads


def _wasm_default_tile(spec: GemmSpec, rm: int, rn: int) -> tuple[int, int]:
    """rn columns of B per macro tile (they stay in cache while every row block of the tile
    streams past them), and as many rows as keep the A block in L2 while leaving at least
    WASM_MIN_CHUNKS macro tiles for the threads."""
    M, N, K = spec.M, spec.N, spec.K
    tile_m = max(rm, WASM_A_BLOCK_BYTES // (4 * K) // rm * rm)
    col_tiles = spec.nbatch * _ceil(N, rn)
    if col_tiles < WASM_MIN_CHUNKS:
        row_tiles = min(_ceil(WASM_MIN_CHUNKS, col_tiles), _ceil(M, rm))
        tile_m = min(tile_m, _roundup(_ceil(M, row_tiles), rm))
    return tile_m, rn


def plan_wasm(spec: GemmSpec, s: Any) -> Plan:
    mode, vec = _pick_mode(spec, _int(s.vec), False, False)
    default_reg = (2, 16) if mode == "n" and vec == 4 else (2, 4) if mode == "k" else (4, 4)
    rm, rn = _opt(s.reg, 2) or default_reg
    vec = _reg_vec(mode, vec, rn, _int(s.vec))
    rm = min(rm, spec.M)
    rn = min(rn, spec.N // vec * vec)
    tm, tn = _opt(s.tile, 2) or _wasm_default_tile(spec, rm, rn)
    tile_m = _even_tile(spec.M, tm, rm)
    tile_n = _even_tile(spec.N, tn, rn)
    kstep = _int(s.kstep) or (2 if mode == "n" and vec == 4 else 1)
    return Plan("wasm", mode, vec, rm, rn, tile_m, tile_n, 0, 1, 1, kstep, 0)


# ------------------------------------------------------------------------------ kernels


def build_kernel(spec: GemmSpec, name: str, sched: Any) -> L.KernelOp:
    """One nn_loop.kernel for `spec` under schedule options `sched` (see module doc)."""
    target = sched.target or "wgsl"
    if target == "wgsl":
        plan = plan_wgsl(spec, sched)
    elif target == "wasm":
        plan = plan_wasm(spec, sched)
    else:
        raise NNJitError(f"unknown target '{target}'", hint="use wgsl or wasm")
    block = Block(arg_types=spec.arg_types)
    for k, a in enumerate(block.args[:-1]):
        a.name_hint = f"in{k}"
    block.args[-1].name_hint = "out"
    kernel = L.KernelOp(
        name, spec.arg_types, spec.access, spec.kind, target, plan.record(sched), Region(block)
    )
    spec.bufs = block.args
    kb = KB(block)
    if target == "wgsl":
        _gen_wgsl(kb, spec, plan)
    else:
        _gen_wasm(kb, spec, plan)
    block.add_op(L.YieldOp())
    return kernel


def _named(v: SSAValue, hint: str) -> SSAValue:
    """Names a computed value in printed IR (constants and block arguments keep theirs)."""
    if not isinstance(v, BlockArgument) and not isinstance(v.owner, arith.ConstantOp):
        v.name_hint = hint
    return v


def _acc_type(p: Plan) -> Attribute:
    return VEC4 if p.vec == 4 else f32


def _ngroups(p: Plan) -> int:
    """Accumulators per register-tile row: vector groups (mode n) or columns (mode k)."""
    return p.rn // p.vec if p.mode == "n" else p.rn


def _zero_acc(kb: KB, acc: SSAValue, p: Plan):
    z = kb.f(0.0, p.vec)
    kb.unrolled(
        p.rm, lambda i: kb.unrolled(_ngroups(p), lambda g: kb.store(z, acc, [i, g]), "g"), "i"
    )


def _fma_acc(kb: KB, acc: SSAValue, i: int, g: int, a: SSAValue, b: SSAValue):
    cur = kb.load(acc, [i, g])
    kb.store(kb.fma(a, b, cur), acc, [i, g])


def _compute_step(
    kb: KB, p: Plan, acc: SSAValue,
    load_a: Callable[[int], SSAValue], load_b: Callable[[int], SSAValue],
):  # fmt: skip
    """One k step of the register tile, straight-line (constant private indices, operand
    indices hoisted out of the k loop): mode n: the B vectors of the tile row, then per row
    an A splat and one fma per vector; mode k: A and B vectors along k, one fma per
    (row, column)."""
    ng = _ngroups(p)
    if p.mode == "n":
        bs = [load_b(g) for g in range(ng)]
        for i in range(p.rm):
            a = kb.splat(load_a(i), p.vec)
            for g in range(ng):
                _fma_acc(kb, acc, i, g, a, bs[g])
    else:
        as_ = [load_a(i) for i in range(p.rm)]
        bs = [load_b(j) for j in range(ng)]
        for i in range(p.rm):
            for j in range(ng):
                _fma_acc(kb, acc, i, j, as_[i], bs[j])


def _global_k_loop(
    kb: KB, spec: GemmSpec, p: Plan, acc: SSAValue, bi, ris, cis, z: SSAValue | None = None
) -> list[int]:
    """The k loop reading operands from global memory (`unroll kstep`). Returns the scalar
    k tail of mode k (the k past the last multiple of 4), finished in the epilogue.
    With k slices (`z`: the slice, wgsl), slice z takes a contiguous 1/tz of the k steps
    and slices z < r one of the r steps left over.
    WGSL mode n with vec 4 and kstep a multiple of 4 (and A contiguous along k, 4 | K) reads
    A as vectors along k, one per row and 4 k steps (a step of the loop is then 4 k)."""
    step = p.vec if p.mode == "k" else 1
    avec = (
        p.target == "wgsl" and p.mode == "n" and p.vec == 4 and p.kstep % 4 == 0 and spec.a_vec_k
        and spec.K % 4 == 0
    )  # fmt: skip
    if avec:
        step = 4
    kmain = spec.K // step * step

    def body(k: SSAValue):
        ki = spec.kinfo(kb, k)
        if avec:
            kis = [ki] + [spec.kinfo(kb, kb.add(k, j)) for j in range(1, 4)]
            avs = [spec.load_a(kb, bi, ris[i], ki, 4) for i in range(p.rm)]
            for j in range(4):
                _compute_step(
                    kb, p, acc,
                    lambda i: kb.extract(avs[i], j),  # noqa: B023 - called right away
                    lambda g: spec.load_b(kb, bi, kis[j], cis[g], p.vec, "n"),  # noqa: B023
                )  # fmt: skip
        elif p.mode == "n":
            _compute_step(
                kb, p, acc,
                lambda i: spec.load_a(kb, bi, ris[i], ki, 1),
                lambda g: spec.load_b(kb, bi, ki, cis[g], p.vec, "n"),
            )  # fmt: skip
        else:
            _compute_step(
                kb, p, acc,
                lambda i: spec.load_a(kb, bi, ris[i], ki, p.vec),
                lambda j: spec.load_b(kb, bi, ki, cis[j], p.vec, "k"),
            )  # fmt: skip

    unroll = p.kstep // 4 if avec else p.kstep
    if z is None or p.tz == 1:
        kb.loop(0, kmain, step, unroll, body, "k")
        return list(range(kmain, spec.K))
    nsteps = kmain // step
    per = nsteps // p.tz
    base = _named(kb.mul(z, per * step), "kz")
    kb.loop(0, per * step, step, unroll, lambda j: body(kb.add(base, j)), "k")
    rest = nsteps - per * p.tz
    if rest:
        with kb.if_(kb.lt(z, rest)):
            body(kb.add(kb.mul(z, step), per * p.tz * step))
    return list(range(kmain, spec.K))


def _mode_k_value(
    kb: KB, spec: GemmSpec, acc: SSAValue, i, j, bi, ri, ci, tail: list[int]
) -> SSAValue:
    """A mode-k output: the lanes of its accumulator summed, plus the scalar k tail."""
    v = kb.load(acc, [i, j])
    s = kb.reduce_add(v) if isinstance(v.type, VectorType) else v
    for k in tail:
        ki = spec.kinfo(kb, kb.c(k))
        s = kb.fma(spec.load_a(kb, bi, ri, ki, 1), spec.load_b(kb, bi, ki, ci, 1, "k"), s)
    return s


# -------------------------------------------------------------------------------- wgsl


def _gen_wgsl(kb: KB, spec: GemmSpec, p: Plan):
    M, N = spec.M, spec.N
    TX, TY, TZ, V = p.tx, p.ty, p.tz, p.vec
    ng = _ngroups(p)
    width = V if p.mode == "n" else 1  # columns per accumulator
    ragged_m = M % p.tile_m != 0
    ragged_n = N % p.tile_n != 0
    staged = bool(p.shared) and p.mode == "n"  # k-major tiles, vector staging

    nest = ExitStack()
    bz = None
    if spec.nbatch > 1:
        bz = nest.enter_context(kb.for_(0, spec.nbatch, map="workgroup.z", name="wz"))
    by = nest.enter_context(kb.for_(0, _ceil(M, p.tile_m), map="workgroup.y", name="wy"))
    bx = nest.enter_context(kb.for_(0, _ceil(N, p.tile_n), map="workgroup.x", name="wx"))
    z = nest.enter_context(kb.for_(0, TZ, map="invocation.z", name="tz")) if TZ > 1 else None
    ty = nest.enter_context(kb.for_(0, TY, map="invocation.y", name="ty"))
    tx = nest.enter_context(kb.for_(0, TX, map="invocation.x", name="tx"))
    spmd = kb.block

    # scratch at the top of the SPMD body, constants right after
    bufs = None
    if staged:
        lead = [p.shared] if p.shared > 1 else []  # double buffer
        kdims = [TZ, p.tile_k // TZ] if TZ > 1 else [p.tile_k]  # k: (slice, step)
        bufs = (
            kb.alloc([*lead, *kdims, p.tile_m], f32, "workgroup", "a_tile"),
            kb.alloc([*lead, *kdims, p.tile_n], f32, "workgroup", "b_tile"),
        )
    elif p.shared:
        a_s = kb.alloc([p.tile_m, p.tile_k], f32, "workgroup", "a_tile")
        b_shape = [p.tile_k, p.tile_n] if p.mode == "n" else [p.tile_n, p.tile_k]
        bufs = (a_s, kb.alloc(b_shape, f32, "workgroup", "b_tile"))
    red = None
    if TZ > 1:
        red = kb.alloc([p.rm, ng, TY * TX], _acc_type(p), "workgroup", "partial")
    acc = kb.alloc([p.rm, ng], _acc_type(p), "private", "acc")
    kb.set_const_block(spmd, acc.owner)  # type: ignore[arg-type]

    bi = spec.batch(kb, bz)
    m0 = _named(kb.mul(by, p.tile_m), "m0")
    n0 = _named(kb.mul(bx, p.tile_n), "n0")

    def local_row(i: SSAValue | int) -> SSAValue:
        if staged:  # consecutive rows: the A fragment is read as vectors
            return kb.add(kb.mul(ty, p.rm), i)
        return kb.add(kb.mul(i, TY), ty)

    def local_col(g: SSAValue | int) -> SSAValue:
        return kb.mul(kb.add(kb.mul(g, TX), tx), width)

    def row(i: SSAValue | int) -> tuple[SSAValue, Any]:
        """(row, row info of the row clamped into range)."""
        r = kb.add(m0, local_row(i))
        return r, spec.row(kb, bi, kb.min(r, M - 1) if ragged_m else r)

    def col(g: SSAValue | int) -> tuple[SSAValue, Any]:
        """(first column, col info); without staging, a group overhanging N is shifted
        back to end at N (in-bounds vector loads; its values are recomputed, not lost)."""
        c = kb.add(n0, local_col(g))
        clamp = ragged_n and (not p.shared or p.mode == "k")
        return c, spec.col(kb, bi, kb.min(c, N - width) if clamp else c)

    _zero_acc(kb, acc, p)
    tail: list[int] = []
    if not p.shared:
        ris = [row(i)[1] for i in range(p.rm)]
        cis = [col(g)[1] for g in range(ng)]
        tail = _global_k_loop(kb, spec, p, acc, bi, ris, cis, z)
    else:
        lrows = [local_row(i) for i in range(p.rm)]
        lcols = [local_col(g) for g in range(ng)]
        if staged:
            _wgsl_staged(kb, spec, p, acc, bi, bufs, m0, n0, (z, ty, tx), lrows, lcols)
        else:
            _wgsl_shared_k(kb, spec, p, acc, bi, bufs, m0, n0, ty, tx, lrows, lcols)
    if z is not None:
        _reduce_slices(kb, p, acc, red, z, kb.add(kb.mul(ty, TX), tx))

    # epilogue and guarded stores, one (row, accumulator) per unrolled iteration
    partial = p.mode == "n" and p.shared and V > 1 and N % V != 0

    def epilogue(i: SSAValue, g: SSAValue):
        r, ri = row(i)
        c, ci = col(g)
        row_ok = kb.lt(r, M) if ragged_m else None
        if p.mode == "k":
            with kb.if_(kb.and_([row_ok, kb.lt(c, N) if ragged_n else None])):
                spec.finish(kb, bi, ri, ci, _mode_k_value(kb, spec, acc, i, g, bi, ri, ci, tail), 1)
            return
        if partial:
            full = kb.lt(c, N - V + 1)
        else:
            full = kb.lt(c, N) if ragged_n else None
        with kb.if_(kb.and_([row_ok, full])):
            spec.finish(kb, bi, ri, ci, kb.load(acc, [i, g]), V)
        if partial:  # the vector group that straddles N: lane by lane
            with kb.if_(kb.and_([row_ok, kb.lt(c, N), kb.ge(c, N - V + 1)])):
                v = kb.load(acc, [i, g])
                for lane in range(V):
                    cl = kb.add(c, lane)
                    with kb.if_(kb.lt(cl, N)):
                        spec.finish(kb, bi, ri, spec.col(kb, bi, cl), kb.extract(v, lane), 1)

    with kb.if_(kb.eq(z, 0) if z is not None else None):  # slice 0 holds the sums
        kb.unrolled(p.rm, lambda i: kb.unrolled(ng, lambda g: epilogue(i, g), "g"), "i")
    nest.close()


def _reduce_slices(kb: KB, p: Plan, acc: SSAValue, red, z: SSAValue, lid: SSAValue):
    """Adds the accumulators of k slices 1..tz-1 to slice 0's, one slice at a time through
    the workgroup buffer `red` ([reg_m, groups, invocations of a slice])."""
    pairs = [(i, g) for i in range(p.rm) for g in range(_ngroups(p))]
    for s in range(1, p.tz):
        with kb.if_(kb.eq(z, s)):
            for i, g in pairs:
                kb.store(kb.load(acc, [i, g]), red, [i, g, lid])
        kb.barrier()
        with kb.if_(kb.eq(z, 0)):
            for i, g in pairs:
                v = kb.fbin(arith.AddfOp, kb.load(acc, [i, g]), kb.load(red, [i, g, lid]))
                kb.store(v, acc, [i, g])
        if s < p.tz - 1:
            kb.barrier()


def _wgsl_staged(kb: KB, spec: GemmSpec, p: Plan, acc, bi, bufs, m0, n0, ids, lrows, lcols):
    """k tiles staged k-major in workgroup memory (A_s[k][m], B_s[k][n]), mode n.

    Cooperative loads read 4-lane vectors along each operand's contiguous dim where the
    layout allows (`a_vec_k` / `a_vec_m` / `b_vec_n` / `b_vec_k` and 4 | the dim), with
    consecutive invocations on consecutive vectors (a contiguous dim along the tile) or
    rows (k contiguous: the vector's lanes go to 4 k rows, conflict-free scalar stores).
    Rows and columns are clamped, never guarded; k past K reads zeros (clamp + select).
    Each register step reads reg_m/4 A vectors (the invocation's rows are consecutive) and
    reg_n/vec B vectors. shared=1: one buffer, barriers before and after the steps;
    shared=2: two buffers, the next tile's loads are issued before the steps (registers)
    and stored to the other buffer after them: one barrier per tile. k slices (tz > 1)
    take 1/tz of each tile's k steps."""
    a_s, b_s = bufs
    z, ty, tx = ids
    M, N, K = spec.M, spec.N, spec.K
    KT, TM, TN = p.tile_k, p.tile_m, p.tile_n
    nbuf = p.shared
    nthreads = p.tx * p.ty * p.tz
    lid = kb.add(kb.mul(ty, p.tx), tx)
    if z is not None:
        lid = kb.add(kb.mul(z, p.tx * p.ty), lid)
    lid = _named(lid, "lid")
    nt = _ceil(K, KT)
    ragged_k = K % KT != 0
    clamp_k = ragged_k or nbuf > 1  # the prefetch after the last tile reads past K
    ragged = {"a": M % TM != 0, "b": N % TN != 0}
    kfast = {"a": spec.a_fast == "k", "b": spec.b_fast == "k"}
    if kfast["a"]:
        ga = 4 if spec.a_vec_k and K % 4 == 0 and KT % 4 == 0 else 1
    else:
        ga = 4 if spec.a_vec_m and TM % 4 == 0 else 1
    if kfast["b"]:
        gb = 4 if spec.b_vec_k and K % 4 == 0 and KT % 4 == 0 else 1
    else:
        gb = 4 if spec.b_vec_n and N % 4 == 0 and TN % 4 == 0 else 1
    gv = {"a": ga, "b": gb}
    tdim = {"a": TM, "b": TN}
    sbuf = {"a": a_s, "b": b_s}

    def units(x: str) -> list[tuple[SSAValue | None, SSAValue, SSAValue]]:
        """(guard, t, kk) per load of operand x by this invocation (hoisted out of k)."""
        T, g = tdim[x], gv[x]
        n = T * KT // g
        nit = _ceil(n, nthreads)
        out = []
        for e in range(nit):
            u = kb.add(e * nthreads, lid)
            guard = None
            if n % nthreads and e == nit - 1:
                guard = kb.lt(u, n)
                u = kb.min(u, n - 1)  # a valid address; the store is guarded
            if kfast[x]:
                t, kk = kb.rem(u, T), kb.mul(kb.div(u, T), g)
            else:
                t, kk = kb.mul(kb.rem(u, T // g), g), kb.div(u, T // g)
            out.append((guard, t, kk))
        return out

    def load(x: str, t: SSAValue, kk: SSAValue, k0: SSAValue) -> SSAValue:
        g, kf = gv[x], kfast[x]
        kg = kb.add(k0, kk)
        kc = kb.min(kg, K - (g if kf else 1)) if clamp_k else kg
        ki = spec.kinfo(kb, kc)
        if x == "a":
            r = kb.add(m0, t)
            r = kb.min(r, M - (1 if kf else g)) if ragged["a"] else r
            v = spec.load_a(kb, bi, spec.row(kb, bi, r), ki, g)
        else:
            c = kb.add(n0, t)
            c = kb.min(c, N - (1 if kf else g)) if ragged["b"] else c
            v = spec.load_b(kb, bi, ki, spec.col(kb, bi, c), g, "k" if kf else "n")
        if ragged_k:
            v = kb.select(kb.lt(kg, K), v, kb.f(0.0, g))
        return v

    kts = KT // p.tz

    def kidx(kk: SSAValue) -> list[SSAValue]:
        """The tile's k index: (slice, step) with k slices."""
        return [kk] if p.tz == 1 else [kb.div(kk, kts), kb.rem(kk, kts)]

    def store(x: str, v: SSAValue, t: SSAValue, kk: SSAValue, bidx: list[SSAValue]):
        g = gv[x]
        if kfast[x]:  # lane j of the vector is k row kk + j
            for j in range(g):
                lane = kb.extract(v, j) if g > 1 else v
                kb.store(lane, sbuf[x], [*bidx, *kidx(kb.add(kk, j)), t])
        else:
            kb.store(v, sbuf[x], [*bidx, *kidx(kk), t])

    plan = {x: units(x) for x in ("a", "b")}

    def load_phase(k0: SSAValue) -> dict[str, list[SSAValue]]:
        return {x: [load(x, t, kk, k0) for _, t, kk in plan[x]] for x in ("a", "b")}

    def store_phase(vals: dict[str, list[SSAValue]], bidx: list[SSAValue]):
        for x in ("a", "b"):
            for (guard, t, kk), v in zip(plan[x], vals[x]):
                with kb.if_(guard):
                    store(x, v, t, kk, bidx)

    def compute(bidx: list[SSAValue]):
        def step(j: SSAValue):
            kk = [z, j] if z is not None else [j]
            if p.rm % 4 == 0:
                avals: list[SSAValue] = []
                for q in range(p.rm // 4):
                    va = kb.load(a_s, [*bidx, *kk, lrows[4 * q]], 4)
                    avals += [kb.extract(va, lane) for lane in range(4)]
            else:
                avals = [kb.load(a_s, [*bidx, *kk, lrows[i]]) for i in range(p.rm)]
            _compute_step(
                kb, p, acc,
                lambda i: avals[i],
                lambda g: kb.load(b_s, [*bidx, *kk, lcols[g]], p.vec),
            )  # fmt: skip

        kb.loop(0, kts, 1, p.kstep, step, "kk")

    if nbuf == 1:

        def tile1(k0: SSAValue):
            store_phase(load_phase(k0), [])
            kb.barrier()
            compute([])
            kb.barrier()

        kb.loop(0, nt * KT, KT, 1, tile1, "k0")
        return

    store_phase(load_phase(kb.c(0)), [kb.c(0)])
    kb.barrier()

    def tile2(k0: SSAValue):
        t = kb.div(k0, KT)
        cur, nxt = kb.rem(t, 2), kb.rem(kb.add(t, 1), 2)
        vals = load_phase(kb.add(k0, KT))  # the next tile, in flight during the steps
        compute([cur])
        store_phase(vals, [nxt])
        kb.barrier()

    kb.loop(0, nt * KT, KT, 1, tile2, "k0")


def _wgsl_shared_k(kb: KB, spec: GemmSpec, p: Plan, acc, bi, bufs, m0, n0, ty, tx, lrows, lcols):
    """k tiles staged in workgroup memory: cooperative clamped loads (k past K zero-filled),
    barrier, the register-tile steps reading the tiles, barrier."""
    a_s, b_s = bufs
    M, N, K = spec.M, spec.N, spec.K
    KT = p.tile_k
    nthreads = p.tx * p.ty
    lid = _named(kb.add(kb.mul(ty, p.tx), tx), "lid")
    ragged_k = K % KT != 0
    ragged_m = M % p.tile_m != 0
    ragged_n = N % p.tile_n != 0

    def coop(rows: int, cols: int, fast_cols: bool, elem: Callable[[SSAValue, SSAValue], None]):
        """Element (r, c) of a rows x cols tile for each idx = e*nthreads + lid; consecutive
        invocations take consecutive elements of the operand's contiguous dim."""
        total = rows * cols

        def body(e: SSAValue):
            idx = kb.add(kb.mul(e, nthreads), lid)
            with kb.if_(kb.lt(idx, total) if total % nthreads else None):
                if fast_cols:
                    elem(kb.div(idx, cols), kb.rem(idx, cols))
                else:
                    elem(kb.rem(idx, rows), kb.div(idx, rows))

        kb.loop(0, _ceil(total, nthreads), 1, 1, body, "e")

    def kval(k0: SSAValue, kk: SSAValue) -> tuple[SSAValue, Any]:
        kg = kb.add(k0, kk)
        return kg, spec.kinfo(kb, kb.min(kg, K - 1) if ragged_k else kg)

    def pad(v: SSAValue, kg: SSAValue) -> SSAValue:
        return kb.select(kb.lt(kg, K), v, kb.f(0.0)) if ragged_k else v

    def k_tile(k0: SSAValue):

        def a_elem(r: SSAValue, kk: SSAValue):
            m = kb.add(m0, r)
            kg, ki = kval(k0, kk)
            ri = spec.row(kb, bi, kb.min(m, M - 1) if ragged_m else m)
            kb.store(pad(spec.load_a(kb, bi, ri, ki, 1), kg), a_s, [r, kk])

        def b_elem(kk: SSAValue, c: SSAValue):
            n = kb.add(n0, c)
            kg, ki = kval(k0, kk)
            ci = spec.col(kb, bi, kb.min(n, N - 1) if ragged_n else n)
            v = pad(spec.load_b(kb, bi, ki, ci, 1, "n"), kg)
            kb.store(v, b_s, [kk, c] if p.mode == "n" else [c, kk])

        coop(p.tile_m, KT, spec.a_fast == "k", a_elem)
        coop(KT, p.tile_n, spec.b_fast == "n", b_elem)
        kb.barrier()

        def body(kk: SSAValue):
            if p.mode == "n":
                _compute_step(
                    kb, p, acc,
                    lambda i: kb.load(a_s, [lrows[i], kk]),
                    lambda g: kb.load(b_s, [kk, lcols[g]], p.vec),
                )  # fmt: skip
            else:
                _compute_step(
                    kb, p, acc,
                    lambda i: kb.load(a_s, [lrows[i], kk], p.vec),
                    lambda j: kb.load(b_s, [lcols[j], kk], p.vec),
                )  # fmt: skip

        kb.loop(0, KT, p.vec if p.mode == "k" else 1, p.kstep, body, "kk")
        kb.barrier()

    kb.loop(0, _ceil(K, KT) * KT, KT, 1, k_tile, "k0")


# -------------------------------------------------------------------------------- wasm


def _gen_wasm(kb: KB, spec: GemmSpec, p: Plan):
    M, N = spec.M, spec.N
    V = p.vec
    ng = _ngroups(p)
    width = V if p.mode == "n" else 1
    nmt, nnt = _ceil(M, p.tile_m), _ceil(N, p.tile_n)
    shift_m = M % p.tile_m != 0 or p.tile_m % p.rm != 0
    shift_n = N % p.tile_n != 0 or p.tile_n % p.rn != 0
    with kb.for_(0, spec.nbatch * nmt * nnt, map="thread", name="t") as t:
        acc = kb.alloc([p.rm, ng], _acc_type(p), "private", "acc")
        kb.set_const_block(kb.block, acc.owner)  # type: ignore[arg-type]
        mt = kb.rem(t, nmt)
        q = kb.div(t, nmt)
        nt = kb.rem(q, nnt)
        bi = spec.batch(kb, kb.div(q, nnt) if spec.nbatch > 1 else None)
        m0 = _named(kb.mul(mt, p.tile_m), "m0")
        n0 = _named(kb.mul(nt, p.tile_n), "n0")

        def rows_body(rb: SSAValue):
            # the last register block of M ends at M (it recomputes a few rows)
            r0 = kb.add(m0, rb)
            r0 = kb.min(r0, M - p.rm) if shift_m else r0
            ris = [spec.row(kb, bi, kb.add(r0, i)) for i in range(p.rm)]

            def cols_body(cb: SSAValue):
                c0 = kb.add(n0, cb)
                c0 = kb.min(c0, N - p.rn) if shift_n else c0
                cis = [spec.col(kb, bi, kb.add(c0, g * width)) for g in range(ng)]
                _zero_acc(kb, acc, p)
                tail = _global_k_loop(kb, spec, p, acc, bi, ris, cis)

                def epilogue(i: SSAValue, g: SSAValue):
                    ri = spec.row(kb, bi, kb.add(r0, i))
                    ci = spec.col(kb, bi, kb.add(c0, kb.mul(g, width)))
                    if p.mode == "k":
                        s = _mode_k_value(kb, spec, acc, i, g, bi, ri, ci, tail)
                        spec.finish(kb, bi, ri, ci, s, 1)
                    else:
                        spec.finish(kb, bi, ri, ci, kb.load(acc, [i, g]), V)

                kb.unrolled(p.rm, lambda i: kb.unrolled(ng, lambda g: epilogue(i, g), "g"), "i")

            kb.loop(0, p.tile_n, p.rn, 1, cols_body, "cb")

        kb.loop(0, p.tile_m, p.rm, 1, rows_body, "rb")


# ------------------------------------------------------------------------------ epilogue


def value_at(
    kb: KB,
    value: SSAValue,
    index: Sequence[SSAValue],
    load_arg: Callable[..., SSAValue],
    overrides: dict[SSAValue, SSAValue] | None,
    vec: int,
) -> SSAValue:
    """The fused body's `value` at `index` (an index of value's own shape), emitted at the
    end of the current block by the lowering core's emit_value_at."""
    return emit_value_at(KernelBuilder(kb.block), value, list(index), load_arg, overrides, vec)


def _batch_index(kb: KB, bz: SSAValue | int, dims: Sequence[int]) -> list[SSAValue]:
    """Row-major multi-index of linear `bz` over `dims` (size-1 dims read 0)."""
    out: list[SSAValue] = []
    rest: SSAValue | int = bz
    for k in range(len(dims) - 1, -1, -1):
        d = dims[k]
        if d == 1:
            out.append(kb.c(0))
        elif all(e == 1 for e in dims[:k]):
            out.append(kb.ix(rest))  # the outermost varying dim takes the rest
            rest = 0
        else:
            out.append(kb.rem(rest, d))
            rest = kb.div(rest, d)
    return out[::-1]


def _operand_batch(kb: KB, shape: Sequence[int], out_batch: Sequence[SSAValue]) -> list[SSAValue]:
    """An operand's batch indices (its dims before the last two), broadcast from the
    output's batch indices (aligned right; size-1 dims read index 0)."""
    nb = len(shape) - 2
    off = len(out_batch) - nb
    return [kb.c(0) if shape[i] == 1 else out_batch[off + i] for i in range(nb)]


@dataclass
class _Operand:
    arg: int  # block argument number = kernel buffer number
    shape: tuple[int, ...]  # stored shape (a packed operand: the unpacked [K, N])
    trans: bool  # stored with its last two dims swapped
    pack: int = 0  # > 0: stored in [N/pack, K, pack] panels (nn-tensor-pack-weights)


def _trace_operand(v: SSAValue, what: str) -> _Operand:
    trans = False
    while isinstance(v.owner, T.TransposeOp):
        t = v.owner
        perm = T.array_values(t.perm)
        r = len(perm)
        if r < 2 or tuple(perm) != (*range(r - 2), r - 1, r - 2):
            raise UnsupportedError(
                f"matmul {what} operand: transpose perm {list(perm)} is not a swap of the "
                "last two dims",
                hint="only last-two-dim transposes fuse into a matmul",
            )
        trans = not trans
        v = t.input
    packed = _trace_packed(v)
    if packed is not None:
        return _Operand(packed[0].index, T.shape_of(v), trans, packed[1])
    if not isinstance(v, BlockArgument):
        op = v.owner
        raise UnsupportedError(
            f"matmul {what} operand is computed by {getattr(op, 'name', op)} inside the fused "
            "op; only transposes of inputs are supported there",
            hint="fuse elementwise prologues into a separate kernel",
        )
    return _Operand(v.index, T.shape_of(v), trans)


def _trace_packed(v: SSAValue) -> tuple[BlockArgument, int] | None:
    """(argument, nr) when v = reshape(transpose(arg, [1, 0, 2])) unpacks a [N/nr, K, nr]
    panel argument into [K, N] (see nnjit/passes/nn_tensor_pack_weights.py)."""
    if not isinstance(v.owner, T.ReshapeOp):
        return None
    t = v.owner.input
    if not isinstance(t.owner, T.TransposeOp) or tuple(T.array_values(t.owner.perm)) != (1, 0, 2):
        return None
    arg = t.owner.input
    if not isinstance(arg, BlockArgument):
        return None
    np_, k, nr = T.shape_of(arg)
    if T.shape_of(v) != (k, np_ * nr) or nr % 4:
        return None
    return arg, nr


class MatmulSpec(GemmSpec):
    """nn_tensor.matmul / nn_tensor.gemm with transposed operands and an epilogue."""

    kind = "matmul"

    def __init__(self, fused: T.FusedOp):
        roots = [op for op in fused.body.block.ops if isinstance(op, (T.MatmulOp, T.GemmOp))]
        if len(roots) != 1:
            raise UnsupportedError(
                f"fused matmul needs exactly one nn_tensor.matmul or gemm, found {len(roots)}"
            )
        root = self.root = roots[0]
        self.alpha, self.beta = 1.0, 1.0
        self.c_value: SSAValue | None = None
        if isinstance(root, T.GemmOp):
            a = _trace_operand(root.a, "A")
            b = _trace_operand(root.b, "B")
            a.trans ^= bool(root.trans_a.value.data)
            b.trans ^= bool(root.trans_b.value.data)
            self.alpha = root.alpha.value.data
            self.beta = root.beta.value.data
            self.c_value = root.c
            lhs_t, rhs_t = root.a.type, root.b.type
        else:
            a = _trace_operand(root.lhs, "A")
            b = _trace_operand(root.rhs, "B")
            lhs_t, rhs_t = root.lhs.type, root.rhs.type
        for t in (lhs_t, rhs_t, fused.result.type):
            assert isinstance(t, TensorType)
            if not isinstance(t.get_element_type(), Float32Type):
                raise UnsupportedError(f"matmul on {t}: only f32 matmuls are supported")
        self.a, self.b = a, b
        out = T.shape_of(root.result)
        self.out_batch = out[:-2]
        self.m, self.N = out[-2], out[-1]
        self.K = a.shape[-2] if a.trans else a.shape[-1]
        nb = math.prod(self.out_batch)
        self.fold = nb > 1 and math.prod(b.shape[:-2]) == 1
        self.nbatch = 1 if self.fold else nb
        self.M = self.m * nb if self.fold else self.m
        if b.pack and b.trans:
            raise UnsupportedError("matmul B operand: a packed weight is used transposed",
                                   hint="nn-tensor-pack-weights packs the B layout of a matmul")
        self.a_vec_k = not a.trans
        self.a_vec_m = a.trans and self.m % 4 == 0
        self.b_vec_n = not b.trans
        self.b_vec_k = b.trans
        self.a_fast = "m" if a.trans else "k"
        self.b_fast = "k" if b.trans else "n"
        self.yielded = fused.body.block.last_op.operands[0]  # type: ignore[union-attr]
        self.arg_types = [_memref(v.type) for v in fused.inputs] + [_memref(fused.result.type)]
        self.access = ["read"] * len(fused.inputs) + ["write"]
        self.epilogue_vec = can_vectorize(self.yielded, [root.result]) and (
            self.c_value is None or can_vectorize(self.c_value)
        )
        if T.shape_of(self.yielded) != out:
            raise UnsupportedError(
                f"matmul epilogue changes the shape {out} to {T.shape_of(self.yielded)}"
            )

    # batch: output batch indices (None when the batch is folded into the rows)
    def batch(self, kb: KB, bz: SSAValue | None) -> Any:
        if self.fold:
            return None
        return _batch_index(kb, bz if bz is not None else 0, self.out_batch)

    def row(self, kb: KB, bi: Any, r: SSAValue) -> Any:
        if self.fold:
            m = kb.rem(r, self.m)
            bi = _batch_index(kb, kb.div(r, self.m), self.out_batch)
        else:
            m = r
        return bi, m, _operand_batch(kb, self.a.shape, bi)

    def col(self, kb: KB, bi: Any, c: SSAValue) -> Any:
        # a packed B: (panel, column in panel) where c is panel-aligned plus a constant (else
        # computed at the load)
        pk = kb.divmod_aligned(c, self.b.pack) if self.b.pack else None
        if bi is None:  # folded: B has no batch (all ones)
            return c, [kb.c(0)] * (len(self.b.shape) - 2), pk
        return c, _operand_batch(kb, self.b.shape, bi), pk

    def load_a(self, kb: KB, bi: Any, ri: Any, ki: Any, vec: int) -> SSAValue:
        _, m, ab = ri
        idx = [*ab, ki, m] if self.a.trans else [*ab, m, ki]
        return kb.load(self.bufs[self.a.arg], idx, vec)

    def load_b(self, kb: KB, bi: Any, ki: Any, ci: Any, vec: int, along: str) -> SSAValue:
        n, bb, pk = ci
        if self.b.pack:  # vectors along n stay in one panel: groups are 4-aligned
            q, r = pk if pk is not None else (kb.div(n, self.b.pack), kb.rem(n, self.b.pack))
            return kb.load(self.bufs[self.b.arg], [q, ki, r], vec)
        idx = [*bb, n, ki] if self.b.trans else [*bb, ki, n]
        return kb.load(self.bufs[self.b.arg], idx, vec)

    def _load_arg(self, kb: KB):
        def load_arg(arg: BlockArgument, idx: list[SSAValue]) -> SSAValue:
            return kb.load(self.bufs[arg.index], idx)

        return load_arg

    def finish(self, kb: KB, bi: Any, ri: Any, ci: Any, acc: SSAValue, vec: int) -> None:
        obi, m, _ = ri
        n, bb, _ = ci
        if vec > 1 and not self.epilogue_vec:
            for lane in range(vec):
                s = kb.extract(acc, lane)
                self.finish(kb, bi, ri, (kb.add(n, lane), bb, None), s, 1)
            return
        idx = [*obi, m, n]
        v = acc
        load_arg = self._load_arg(kb)
        if self.alpha != 1.0:
            v = kb.fbin(arith.MulfOp, v, kb.f(self.alpha, vec))
        if self.c_value is not None and self.beta != 0.0:
            cidx = map_index(idx, T.shape_of(self.root.result), T.shape_of(self.c_value))
            cv = value_at(kb, self.c_value, cidx, load_arg, None, vec)
            if vec > 1 and not isinstance(cv.type, VectorType):
                cv = kb.splat(cv, vec)
            if self.beta != 1.0:
                cv = kb.fbin(arith.MulfOp, cv, kb.f(self.beta, vec))
            v = kb.fbin(arith.AddfOp, v, cv)
        if self.yielded is not self.root.result:
            v = value_at(kb, self.yielded, idx, load_arg, {self.root.result: v}, vec)
        kb.store(v, self.bufs[-1], idx)


def lower_matmul(fused: T.FusedOp, name: str, sched: Any) -> L.KernelOp:
    """The nn_loop.kernel computing a fused matmul/gemm (and its epilogue) under `sched`."""
    return build_kernel(MatmulSpec(fused), name, sched)
