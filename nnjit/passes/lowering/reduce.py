"""Row reductions: "softmax", "layer_norm" and "reduce" kernels.

The root's input is viewed as rows: the reduced dims (softmax: `axis`; layer_norm: `axis`
to the end; reduce: `axes`) hold a row's N elements, the other dims number the R rows.

* wgsl: a workgroup handles `rows` rows (invocation.y, default 1); the `workgroup` = (W,)
  invocations of a row (invocation.x) stride over its elements (vec = 4: vector<4xf32>
  loads when the row is contiguous and its innermost dim allows it), each keeps a private
  partial result, and a tree over workgroup memory combines the W partials (log2 W
  barrier-separated steps, no subgroup ops). Rows past R (ragged grids) compute a clamped
  duplicate row and do not store, so every invocation reaches every barrier.
  Defaults: vec = 4 when possible, W = a power of two with ~4 vectors per invocation,
  at least 32 (or the row's vector count if smaller), at most 256 / rows.
* wasm: a "thread" loop over rows (`rows` per iteration, default 1, or all rows (one chunk,
  one thread) for inputs of at most WASM_ONE_CHUNK_MAX elements); each row is reduced by
  serial loops of vector<4xf32> steps (vec = 4 when the row is contiguous) with a scalar
  remainder loop for a ragged row.

softmax: max pass, sum-of-exp(x - max) pass, write pass exp(x - max) / sum. On wasm, when the
output is an f32 buffer of the input's shape, the sum pass also stores exp(x - max) to the
output and the write pass scales it by 1 / sum (no second prologue or exp); the max pass
takes the integer max and min of the f32 bits (`_row_max_bits`: 2 instructions per vector
instead of f32x4.max's ~8), 4 accumulator pairs, and the sum pass 2 vector accumulators.
There, exp(x - max) is computed inline (no helper call): exp(-u) for u = max - x by a
polynomial and exponent bits, ~1e-7 relative, exactly 0 below ~exp(-79.4) of the row's
largest term, with no compare, select or subnormal arithmetic (see `_exp_neg`).
layer_norm: mean pass, variance pass sum((x - mean)^2) / N (two-pass: no cancellation),
write pass (x - mean) * rsqrt(var + epsilon) * scale + bias; all in f32. On wasm the mean and
variance passes keep 4 independent vector accumulators, and an elementwise prologue (e.g. a
residual add) is computed once, by the mean pass, which keeps it in the output row.
reduce: reduce_sum / reduce_mean / reduce_max. Reduced dims that are the trailing dims use
the row scheme (one output per row, stored by lane 0); other axes use the pointwise scheme
of elementwise.py: each output element (vec = 4: four neighbouring ones along the kept
innermost dim) is reduced by serial loops over the reduced dims.
An elementwise prologue computing the input and an epilogue on the result are computed
in place (emit_value_at).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from xdsl.dialects import arith
from xdsl.dialects import math as xmath
from xdsl.dialects.builtin import VectorType
from xdsl.ir import BlockArgument, Operation, SSAValue

from nnjit.dialects import nn_loop
from nnjit.dialects import nn_tensor as nt
from nnjit.errors import UnsupportedError
from nnjit.passes.lowering.common import (
    Idx,
    KernelBuilder,
    ceil_div,
    check_target,
    check_workgroup,
    cmpi_op,
    f32,
    fused_kernel,
    grid_loops,
    i32,
    invocation_loops,
    lane_loop,
    next_pow2,
    tensor_shape,
    vector_type,
    vf32,
)
from nnjit.passes.lowering.elementwise import (
    Emit,
    find_root,
    lower_pointwise,
    thread_rows,
    wasm_default_rows,
    yielded,
)
from nnjit.passes.lowering.scalar import (
    LoadArg,
    buffer_loader,
    can_vectorize,
    emit_value_at,
    map_index,
    to_storage,
)
from nnjit.passes.lowering.schedule import MAX_GRID, MAX_INVOCATIONS, Schedule

_INIT = {"add": 0.0, "max": float("-inf")}
"""Reduction identities: a max over -inf only is -inf, as in onnxruntime (on Wasm; WGSL has
no infinity literal, so the WGSL conversion writes the lowest finite f32 for it)."""


# Wasm softmax: exp(x - max) = exp(-u), u = max - x >= 0, inline, without compares or selects
# (xDSL's arith has no vector<4xi1>) and without subnormal arithmetic:
# * u is clamped at 88 on its bits (i32x4.min_s: for u >= 0, integer order is float order;
#   -inf / -FLT_MAX entries give u = +inf / huge, clamped; a NaN row max makes every u NaN,
#   every term 0 and the row 0 * inf = NaN, as in numpy);
# * t = 1.5 * 2^23 + 115 - u log2(e) rounds n = -u log2(e) to an integer held in t's low
#   mantissa bits (t - 1.5 * 2^23 - 115 = n exactly), so 2^(n - 12) = bits(t) << 23 (an i32
#   multiply by 2^23) after clamping bits(t) at the bits of 1.5 * 2^23: for n <= -115
#   (u > 79.37, terms below 3.4e-35 of the row's largest) that is +0.0, so those terms are
#   exactly 0, and every nonzero one is 2^(n - 12) * 4096 * p >= 2^-114 * 0.7 (normal);
# * exp(-s) with s = u + n ln2 (Cody-Waite: n * _LN2_HI is exact), |s| <= ln2/2, by a
#   degree-6 polynomial (relative minimax 2e-9; 9e-8 in f32 with FMA, 1e-7 without).
_LOG2E = 1.4426950408889634
_LN2_HI = 0.693359375
_LN2_LO = -2.12194440e-4
_EXP_SHIFT = 12
_EXP_MAGIC = 12582912.0 + 127.0 - _EXP_SHIFT
_EXP_ZERO_BITS = 0x4B400000
_U_MAX_BITS = 0x42B00000  # 88.0
_EXP_POLY = (1.0, 1.0, 0.4999999403953552, 0.16666431725025177, 0.04166800156235695,
             0.00837415549904108, 0.0013843653723597527)  # fmt: skip
_EXP_NEG_POLY = tuple(c * (-1) ** k for k, c in enumerate(_EXP_POLY))
vi32 = vector_type(i32, 4)


def _exp_constants(b: KernelBuilder, width: int) -> None:
    """Creates _exp_neg's constants at the insertion point (before a loop: the loop body finds
    them there instead of splatting them on every iteration)."""
    ft, it = (vf32, vi32) if width > 1 else (f32, i32)
    for v in (-_LOG2E, _EXP_MAGIC, _EXP_MAGIC - (127 - _EXP_SHIFT), _LN2_HI, _LN2_LO,
              *_EXP_NEG_POLY, float(1 << _EXP_SHIFT)):  # fmt: skip
        b.const(v, ft)
    for v in (_U_MAX_BITS, _EXP_ZERO_BITS, 1 << 23, 127 - _EXP_SHIFT):
        b.const(v, it)


def _exp_neg(b: KernelBuilder, u: SSAValue, width: int) -> SSAValue:
    """exp(-u) for u >= 0 or NaN (f32 or vector<4xf32>), exactly 0 for u > 79.37."""
    ft, it = (vf32, vi32) if width > 1 else (f32, i32)

    def c(v: float) -> SSAValue:
        return b.const(v, ft)

    def fma(x: SSAValue, y: SSAValue, z: SSAValue) -> SSAValue:
        return b.op(xmath.FmaOp, x, y, z)

    ub = b.op(arith.MinSIOp, b.op(arith.BitcastOp, u, type=it), b.const(_U_MAX_BITS, it))
    uc = b.op(arith.BitcastOp, ub, type=ft)
    t = fma(uc, c(-_LOG2E), c(_EXP_MAGIC))
    # n = t - magic, as (t - (magic - 1.5 * 2^23)) - 1.5 * 2^23 with the first subtraction on
    # the bits (all three share one exponent): written `t - magic`, a fast-math shader
    # compiler (lavapipe) folds fma(a, b, magic) - magic into a * b and n is no integer
    t_bits = b.op(arith.BitcastOp, t, type=it)
    offset = b.const(127 - _EXP_SHIFT, it)
    n = b.op(
        arith.SubfOp,
        b.op(arith.BitcastOp, b.op(arith.SubiOp, t_bits, offset), type=ft),
        c(_EXP_MAGIC - (127 - _EXP_SHIFT)),
    )
    s = fma(n, c(_LN2_LO), fma(n, c(_LN2_HI), uc))
    p = c(_EXP_NEG_POLY[-1])
    for k in reversed(_EXP_NEG_POLY[:-1]):
        p = fma(p, s, c(k))
    bits = b.op(arith.MaxSIOp, t_bits, b.const(_EXP_ZERO_BITS, it))
    scale = b.op(arith.BitcastOp, b.op(arith.MuliOp, bits, b.const(1 << 23, it)), type=ft)
    return b.op(arith.MulfOp, p, b.op(arith.MulfOp, scale, c(float(1 << _EXP_SHIFT))))


def _combine(b: KernelBuilder, kind: str, a: SSAValue, c: SSAValue) -> SSAValue:
    if kind == "add":
        return b.op(arith.AddfOp, a, c)
    return b.op(arith.MaximumfOp, a, c)


def _widen(b: KernelBuilder, v: SSAValue, width: int) -> SSAValue:
    if width > 1 and not isinstance(v.type, VectorType):
        return b.splat(v, width)
    return v


def _lanes_like(b: KernelBuilder, v: SSAValue, width: int) -> SSAValue:
    """A uniform scalar as an operand next to a value of `width` lanes."""
    return _widen(b, v, width)


@dataclass
class RowCtx:
    """One row of a row kernel, as seen by the code of one invocation (wgsl) or thread."""

    b: KernelBuilder
    load: LoadArg
    x: SSAValue
    shape: tuple[int, ...]
    axes: tuple[int, ...]
    row: list[Idx]
    lane: Idx
    lanes: int
    vec: int
    valid: SSAValue | bool
    shared: SSAValue | None
    slot: Idx
    row_shape: list[int] = field(init=False)
    """The reduced dims' sizes."""
    keep: list[int] = field(init=False)
    """The dims that number the rows."""
    n: int = field(init=False)
    """Elements per row."""

    def __post_init__(self) -> None:
        self.row_shape = [self.shape[a] for a in self.axes]
        self.keep = [d for d in range(len(self.shape)) if d not in self.axes]
        self.n = math.prod(self.row_shape)

    def index(self, j: Idx) -> list[Idx]:
        """The full input index of element j of this row."""
        inner = self.b.delinearize(j, self.row_shape)
        idx: list[Idx] = [0] * len(self.shape)
        for d, v in zip(self.keep, self.row):
            idx[d] = v
        for d, v in zip(self.axes, inner):
            idx[d] = v
        return idx

    def x_at(self, j: Idx, width: int) -> SSAValue:
        return _widen(self.b, emit_value_at(self.b, self.x, self.index(j), self.load, vec=width), width)

    def elements(self, fn: Callable[[Idx, int], None]) -> None:
        """fn(j, width) over this invocation's share of the row: vector steps, then a
        scalar remainder."""
        n = self.n
        main = n // self.vec * self.vec if self.vec > 1 else 0
        if main:
            lane_loop(self.b, self.lane, self.lanes, 0, main, self.vec, lambda j: fn(j, self.vec))
        if n > main:
            lane_loop(self.b, self.lane, self.lanes, main, n, 1, lambda j: fn(j, 1))

    def reduce(self, kind: str, term: Callable[[Idx, int], SSAValue]) -> SSAValue:
        """The row's add / max of term(j) (f32), the same value in every invocation."""
        b = self.b
        n = self.n
        main = n // self.vec * self.vec if self.vec > 1 else 0
        accs: dict[int, SSAValue] = {}
        for width, used in ((self.vec, main > 0), (1, n > main)):
            if used and width not in accs:
                t = vf32 if width > 1 else f32
                acc = b.alloc([1], t, name="acc")
                b.store(b.const(_INIT[kind], t), acc, [0])
                accs[width] = acc

        def step(j: Idx, width: int) -> None:
            acc = accs[width]
            cur = b.load(acc, [0])
            b.store(_combine(b, kind, cur, term(j, width)), acc, [0])

        self.elements(step)
        total: SSAValue | None = None
        for width, acc in accs.items():
            v = b.load(acc, [0])
            if width > 1:
                v = b.op(nn_loop.ReduceLanesOp, v, type=f32, kind=nn_loop.REDUCTION_ATTRS[kind])
            total = v if total is None else _combine(b, kind, total, v)
        if total is None:
            total = b.f32(_INIT[kind])
        if self.lanes > 1:
            total = self._across_lanes(kind, total)
        return total

    def _across_lanes(self, kind: str, v: SSAValue) -> SSAValue:
        """Tree combination of each invocation's partial over workgroup memory."""
        b, shared, lane, y = self.b, self.shared, self.lane, self.slot
        assert shared is not None
        b.store(v, shared, [y, lane])
        b.barrier()
        s = next_pow2(self.lanes) // 2
        while s >= 1:
            active = min(s, self.lanes - s)

            def pair(s: int = s) -> None:
                a = b.load(shared, [y, lane])
                c = b.load(shared, [y, b.add(lane, s)])
                b.store(_combine(b, kind, a, c), shared, [y, lane])

            b.if_(b.lt(lane, active), pair)
            b.barrier()
            s //= 2
        total = b.load(shared, [y, 0])
        b.barrier()  # everyone has read the total before the memory is reused
        return total


def _reduce_unrolled(
    ctx: RowCtx, kind: str, term: Callable[[Idx, int], SSAValue], unroll: int = 4
) -> SSAValue:
    """ctx.reduce for one serial lane (wasm) with `unroll` independent vector accumulators
    (steps of unroll vectors, then single vectors, then scalars); lanes combined at the end."""
    b, n, vec = ctx.b, ctx.n, ctx.vec
    if vec == 1 or ctx.lanes != 1:
        return ctx.reduce(kind, term)

    def comb(b: KernelBuilder, a: SSAValue, c: SSAValue) -> SSAValue:
        return _combine(b, kind, a, c)

    main = n // vec * vec
    span = vec * unroll
    big = main // span * span if main // vec >= 2 * unroll else 0
    k = unroll if big else 1
    accs = [b.alloc([1], vf32, name="acc") for _ in range(k)]
    for acc in accs:
        b.store(b.const(_INIT[kind], vf32), acc, [0])

    def step(acc: SSAValue, j: Idx) -> None:
        b.store(comb(b, b.load(acc, [0]), term(j, vec)), acc, [0])

    def steps(j: Idx) -> None:
        vals = [term(b.add(j, u * vec), vec) for u in range(k)]
        for acc, v in zip(accs, vals):
            b.store(comb(b, b.load(acc, [0]), v), acc, [0])

    if big:
        lane_loop(b, 0, 1, 0, big, span, steps)
    if main > big:
        lane_loop(b, 0, 1, big, main, vec, lambda j: step(accs[0], j))
    vals = [b.load(acc, [0]) for acc in accs]
    while len(vals) > 1:
        vals = [_combine(b, kind, vals[i], vals[i + 1]) if i + 1 < len(vals) else vals[i]
                for i in range(0, len(vals), 2)]  # fmt: skip
    total = b.op(nn_loop.ReduceLanesOp, vals[0], type=f32, kind=nn_loop.REDUCTION_ATTRS[kind])
    if n > main:
        acc = b.alloc([1], f32, name="acc")
        b.store(total, acc, [0])
        lane_loop(b, 0, 1, main, n, 1,
                  lambda j: b.store(comb(b, b.load(acc, [0]), term(j, 1)), acc, [0]))  # fmt: skip
        total = b.load(acc, [0])
    return total


def _row_max_bits(ctx: RowCtx, unroll: int = 4) -> SSAValue:
    """The row's max for the wasm softmax, from the integer max and min of the f32 bits (two
    one-instruction i32x4 ops per vector where f32x4.max costs ~8 for its NaN and signed-zero
    rules): for floats >= +0 integer order is float order, for floats <= -0 it is reversed,
    so the max of the bits is the float max when the row holds a value >= +0 (bits >= 0),
    else the min of the bits is. A NaN without sign bit wins (and makes the row NaN); one
    with it loses, but then x - max is NaN at that element and the row is NaN all the same."""
    b, n, vec = ctx.b, ctx.n, ctx.vec
    assert vec > 1 and ctx.lanes == 1
    main = n // vec * vec
    span = vec * unroll
    big = main // span * span if main // vec >= 2 * unroll else 0
    k = unroll if big else 1
    lo_init, hi_init = 2**31 - 1, -(2**31)
    his = [b.alloc([1], vi32, name="hi") for _ in range(k)]
    los = [b.alloc([1], vi32, name="lo") for _ in range(k)]
    for hi, lo in zip(his, los):
        b.store(b.const(hi_init, vi32), hi, [0])
        b.store(b.const(lo_init, vi32), lo, [0])

    def update(hi: SSAValue, lo: SSAValue, bits: SSAValue) -> None:
        b.store(b.op(arith.MaxSIOp, b.load(hi, [0]), bits), hi, [0])
        b.store(b.op(arith.MinSIOp, b.load(lo, [0]), bits), lo, [0])

    def bits_at(j: Idx, w: int) -> SSAValue:
        return b.op(arith.BitcastOp, ctx.x_at(j, w), type=vi32 if w > 1 else i32)

    def steps(j: Idx) -> None:
        vals = [bits_at(b.add(j, u * vec), vec) for u in range(k)]
        for hi, lo, v in zip(his, los, vals):
            update(hi, lo, v)

    if big:
        lane_loop(b, 0, 1, 0, big, span, steps)
    if main > big:
        lane_loop(b, 0, 1, big, main, vec, lambda j: update(his[0], los[0], bits_at(j, vec)))

    def fold(cls: type, accs: list[SSAValue]) -> SSAValue:
        vals = [b.load(a, [0]) for a in accs]
        v = vals[0]
        for other in vals[1:]:
            v = b.op(cls, v, other)
        lanes = [b.emit(nn_loop.ExtractOp(v, lane)) for lane in range(vec)]
        r = lanes[0]
        for other in lanes[1:]:
            r = b.op(cls, r, other)
        return r

    hi_s, lo_s = fold(arith.MaxSIOp, his), fold(arith.MinSIOp, los)
    if n > main:
        hi1 = b.alloc([1], i32, name="hi")
        lo1 = b.alloc([1], i32, name="lo")
        b.store(hi_s, hi1, [0])
        b.store(lo_s, lo1, [0])
        lane_loop(b, 0, 1, main, n, 1, lambda j: update(hi1, lo1, bits_at(j, 1)))
        hi_s, lo_s = b.load(hi1, [0]), b.load(lo1, [0])
    has_pos = b.emit(cmpi_op("sge", hi_s, b.i32(0)))
    m_bits = b.op(arith.SelectOp, has_pos, hi_s, lo_s, type=i32)
    return b.op(arith.BitcastOp, m_bits, type=f32)


def _row_geometry(shape: Sequence[int], axes: Sequence[int]) -> tuple[int, int, bool]:
    keep = [d for d in range(len(shape)) if d not in axes]
    rows = math.prod(shape[d] for d in keep)
    n = math.prod(shape[a] for a in axes)
    trailing = list(axes) == list(range(len(shape) - len(axes), len(shape)))
    return rows, n, trailing


def _row_vec_ok(shape: Sequence[int], axes: Sequence[int], wasm: bool) -> bool:
    _, n, trailing = _row_geometry(shape, axes)
    if not trailing or n < 4:
        return False
    if len(axes) == 1:
        return True  # vector steps and a scalar remainder
    return shape[-1] % 4 == 0


def lower_rows(
    fused: Operation,
    name: str,
    sched: Schedule,
    kind: str,
    x: SSAValue,
    axes: tuple[int, ...],
    vectorizable: bool,
    body: Callable[[RowCtx, SSAValue], None],
) -> nn_loop.KernelOp:
    """A row kernel: body(ctx, dest) emits the code of one row (reductions via ctx.reduce,
    writes guarded by ctx.valid)."""
    check_target(sched)
    shape = tensor_shape(x)
    if nt.elem_of(x) != f32:
        raise UnsupportedError(f"{kind} kernels take f32 input, got {nt.elem_of(x)}")
    n_rows, n, _ = _row_geometry(shape, axes)
    wasm = sched.target == "wasm"
    if sched.vec not in (0, 1, 4):
        raise UnsupportedError(f"{kind}: vec must be 1 or 4, got {sched.vec}")
    vec_ok = vectorizable and _row_vec_ok(shape, axes, wasm)
    vec = (4 if vec_ok else 1) if sched.vec == 0 else (sched.vec if vec_ok else 1)

    if wasm:
        rows_per = sched.rows or wasm_default_rows(n_rows, n_rows * n)
        eff = Schedule(target="wasm", vec=vec, rows=rows_per)
    else:
        rows_per = sched.rows or 1
        if len(sched.workgroup) > 1:
            raise UnsupportedError(
                f"{kind}: workgroup takes one size (the invocations of a row); "
                "rows per workgroup is the `rows` option"
            )
        if sched.workgroup:
            lanes = sched.workgroup[0]
        else:
            units = ceil_div(n, vec)
            lanes = max(min(32, next_pow2(units)), next_pow2(ceil_div(units, 4)))
            lanes = max(1, min(lanes, MAX_INVOCATIONS // rows_per))
        check_workgroup((lanes, rows_per), kind)
        eff = Schedule(target="wgsl", vec=vec, rows=rows_per, workgroup=(lanes,))
    kernel, b = fused_kernel(fused, name, kind, eff)
    args = list(kernel.body.block.args)
    dest = args[-1]
    load = buffer_loader(b, args[:-1], fused.regions[0].block.args)
    keep_shape = [shape[d] for d in range(len(shape)) if d not in axes]

    if wasm:

        def row(r: Idx) -> None:
            ctx = RowCtx(b, load, x, shape, axes, b.delinearize(r, keep_shape), 0, 1, vec,
                         True, None, 0)  # fmt: skip
            body(ctx, dest)

        thread_rows(b, n_rows, rows_per, row)
    else:
        groups = ceil_div(n_rows, rows_per)
        exact = groups * rows_per == n_rows and groups <= MAX_GRID

        def group(wid: Idx) -> None:
            def inv(ivs: list[SSAValue]) -> None:
                lane = ivs[0]
                y: Idx = ivs[1] if len(ivs) > 1 else 0
                shared = (
                    b.alloc([rows_per, lanes], f32, "workgroup", name="partials")
                    if lanes > 1 else None
                )  # fmt: skip
                r = b.name(b.add(b.mul(wid, rows_per), y), "row")
                valid = True if exact else b.lt(r, n_rows)
                rc = r if exact else b.name(b.min(r, n_rows - 1), "row_c")
                ctx = RowCtx(b, load, x, shape, axes, b.delinearize(rc, keep_shape), lane,
                             lanes, vec, valid, shared, y)  # fmt: skip
                body(ctx, dest)

            invocation_loops(b, [lanes, rows_per] if rows_per > 1 else [lanes], inv)

        grid_loops(b, groups, group, guard=False)
    b.erase_unused()
    return kernel


def _store_out(
    ctx: RowCtx, fused: Operation, root: Operation, dest: SSAValue, idx: list[Idx],
    v: SSAValue, width: int,
) -> None:  # fmt: skip
    b = ctx.b
    out = yielded(fused)
    if out is not root.results[0]:
        v = emit_value_at(b, out, idx, ctx.load, {root.results[0]: v}, width)
    v = _widen(b, v, width)
    b.store(to_storage(b, v), dest, idx)


# ---------------------------------------------------------------------------------- kinds


def lower_softmax(fused: Operation, name: str, sched: Schedule) -> nn_loop.KernelOp:
    """exp(x - max) / sum(exp(x - max)) along `axis`, max-subtracted, one row at a time."""
    root = find_root(fused, (nt.SoftmaxOp,), "softmax")
    assert isinstance(root, nt.SoftmaxOp)
    axis = root.axis.value.data
    x = root.input
    vectorizable = can_vectorize(x) and can_vectorize(yielded(fused), stop=[root.result])

    def body(ctx: RowCtx, dest: SSAValue) -> None:
        b = ctx.b
        # Wasm rows are whole per thread: the output row can hold exp(x - max) between passes
        # when it is an f32 buffer of the input's shape (no recomputed prologue or exp).
        staged = (
            ctx.shared is None and ctx.lanes == 1 and ctx.valid is True
            and dest.type.get_element_type() == f32  # type: ignore[attr-defined]
            and tuple(dest.type.get_shape()) == ctx.shape  # type: ignore[attr-defined]
        )  # fmt: skip
        if staged:  # wasm: exp(x - max) is computed once, kept in the output, then scaled
            m = _row_max_bits(ctx) if ctx.vec > 1 else ctx.reduce("max", ctx.x_at)
            widths = {ctx.vec, 1}
            m_lanes = {w: _lanes_like(b, m, w) for w in widths}  # splat once, not per step
            for w in widths:
                _exp_constants(b, w)

            def exp_to_dest(j: Idx, w: int) -> SSAValue:
                e = _exp_neg(b, b.op(arith.SubfOp, m_lanes[w], ctx.x_at(j, w)), w)
                b.store(e, dest, ctx.index(j))
                return e

            s = _reduce_unrolled(ctx, "add", exp_to_dest, 2)
            inv = b.op(arith.DivfOp, b.f32(1.0), s)
            inv_lanes = {w: _lanes_like(b, inv, w) for w in widths}

            def scale(j: Idx, w: int) -> None:
                idx = ctx.index(j)
                e = b.load(dest, idx, vf32 if w > 1 else f32)
                _store_out(ctx, fused, root, dest, idx, b.op(arith.MulfOp, e, inv_lanes[w]), w)

            ctx.elements(scale)
            return
        m = ctx.reduce("max", ctx.x_at)

        def shifted_exp(j: Idx, w: int) -> SSAValue:
            d = b.op(arith.SubfOp, ctx.x_at(j, w), _lanes_like(b, m, w))
            return b.op(xmath.ExpOp, d)

        s = ctx.reduce("add", shifted_exp)
        inv = b.op(arith.DivfOp, b.f32(1.0), s)

        def write(j: Idx, w: int) -> None:
            v = b.op(arith.MulfOp, shifted_exp(j, w), _lanes_like(b, inv, w))
            _store_out(ctx, fused, root, dest, ctx.index(j), v, w)

        b.if_(ctx.valid, lambda: ctx.elements(write))

    return lower_rows(fused, name, sched, "softmax", x, (axis,), vectorizable, body)


def lower_layer_norm(fused: Operation, name: str, sched: Schedule) -> nn_loop.KernelOp:
    """(x - mean) * rsqrt(var + epsilon) * scale + bias over the dims from `axis` on."""
    root = find_root(fused, (nt.LayerNormOp,), "layer_norm")
    assert isinstance(root, nt.LayerNormOp)
    x = root.input
    shape = tensor_shape(x)
    axis = root.axis.value.data
    axes = tuple(range(axis, len(shape)))
    eps = float(root.epsilon.value.data)
    extra = [v for v in (root.scale, root.bias) if v is not None]
    vectorizable = (
        can_vectorize(x)
        and all(can_vectorize(v) for v in extra)
        and can_vectorize(yielded(fused), stop=[root.result])
    )
    inv_n = 1.0 / math.prod(shape[a] for a in axes)

    def body(ctx: RowCtx, dest: SSAValue) -> None:
        b = ctx.b
        # wasm: several independent accumulators per pass; an elementwise prologue (e.g. a
        # residual add) is computed once, by the mean pass, which keeps it in the output row
        # for the variance and write passes (rows are whole per thread)
        serial = ctx.lanes == 1 and ctx.shared is None and ctx.valid is True
        staged = (
            serial and not isinstance(x, BlockArgument)
            and dest.type.get_element_type() == f32  # type: ignore[attr-defined]
            and tuple(dest.type.get_shape()) == ctx.shape  # type: ignore[attr-defined]
        )  # fmt: skip
        reduce = (lambda kind, term: _reduce_unrolled(ctx, kind, term)) if serial else ctx.reduce

        def x_at(j: Idx, w: int) -> SSAValue:
            if staged:
                return b.load(dest, ctx.index(j), vf32 if w > 1 else f32)
            return ctx.x_at(j, w)

        def x_to_dest(j: Idx, w: int) -> SSAValue:
            v = ctx.x_at(j, w)
            b.store(v, dest, ctx.index(j))
            return v

        total = reduce("add", x_to_dest if staged else ctx.x_at)
        mean = b.op(arith.MulfOp, total, b.f32(inv_n))
        widths = {ctx.vec, 1}
        mean_lanes = {w: _lanes_like(b, mean, w) for w in widths}  # splat once, not per step

        def centered(j: Idx, w: int) -> SSAValue:
            return b.op(arith.SubfOp, x_at(j, w), mean_lanes[w])

        def square(j: Idx, w: int) -> SSAValue:
            d = centered(j, w)
            return b.op(arith.MulfOp, d, d)

        var = b.op(arith.MulfOp, reduce("add", square), b.f32(inv_n))
        rstd = b.op(xmath.RsqrtOp, b.op(arith.AddfOp, var, b.f32(eps)))
        rstd_lanes = {w: _lanes_like(b, rstd, w) for w in widths}

        def write(j: Idx, w: int) -> None:
            idx = ctx.index(j)
            v = b.op(arith.MulfOp, centered(j, w), rstd_lanes[w])
            for op_cls, p in ((arith.MulfOp, root.scale), (arith.AddfOp, root.bias)):
                if p is None:
                    continue
                pv = emit_value_at(b, p, map_index(idx, shape, tensor_shape(p)), ctx.load, vec=w)
                v = b.op(op_cls, v, _widen(b, pv, w))
            _store_out(ctx, fused, root, dest, idx, v, w)

        b.if_(ctx.valid, lambda: ctx.elements(write))

    return lower_rows(fused, name, sched, "layer_norm", x, axes, vectorizable, body)


_REDUCE_KIND = {nt.ReduceSumOp: "add", nt.ReduceMeanOp: "add", nt.ReduceMaxOp: "max"}


def lower_reduce(fused: Operation, name: str, sched: Schedule) -> nn_loop.KernelOp:
    """reduce_sum / reduce_mean / reduce_max over sorted `axes` (keepdims or not)."""
    root = find_root(fused, (nt.ReduceSumOp, nt.ReduceMeanOp, nt.ReduceMaxOp), "reduce")
    assert isinstance(root, nt.ReduceOp)
    x = root.input
    shape = tensor_shape(x)
    axes = tuple(nt.array_values(root.axes))
    keepdims = bool(root.keepdims.value.data)
    kind = _REDUCE_KIND[type(root)]
    n = math.prod(shape[a] for a in axes)
    scale = 1.0 / n if isinstance(root, nt.ReduceMeanOp) and n else None
    keep = [d for d in range(len(shape)) if d not in axes]
    _, _, trailing = _row_geometry(shape, axes)

    def out_index(in_keep: Sequence[Idx]) -> list[Idx]:
        """Output index from the kept dims' indices."""
        if not keepdims:
            return list(in_keep)
        idx: list[Idx] = [0] * len(shape)
        for d, v in zip(keep, in_keep):
            idx[d] = v
        return idx

    if trailing or not keep:

        def body(ctx: RowCtx, dest: SSAValue) -> None:
            b = ctx.b
            v = ctx.reduce(kind, ctx.x_at)
            if scale is not None:
                v = b.op(arith.MulfOp, v, b.f32(scale))
            first = b.cmp("eq", ctx.lane, 0) if ctx.lanes > 1 else True
            b.if_(
                b.and_(ctx.valid, first),
                lambda: _store_out(ctx, fused, root, dest, out_index(ctx.row), v, 1),
            )

        return lower_rows(fused, name, sched, "reduce", x, axes, can_vectorize(x), body)

    # Strided reduction: pointwise over the outputs, serial loops over the reduced dims.
    if nt.elem_of(x) != f32:
        raise UnsupportedError(f"reduce kernels take f32 input, got {nt.elem_of(x)}")
    def compute(b: KernelBuilder, idx: list[Idx], vec: int, load: LoadArg, emit: Emit) -> None:
        in_keep = [idx[d] for d in keep] if keepdims else list(idx)
        t = vf32 if vec > 1 else f32
        acc = b.alloc([1], t, name="acc")
        b.store(b.const(_INIT[kind], t), acc, [0])
        red_vals: list[Idx] = []

        def level(k: int) -> None:
            if k == len(axes):
                src: list[Idx] = [0] * len(shape)
                for d, v in zip(keep, in_keep):
                    src[d] = v
                for d, v in zip(axes, red_vals):
                    src[d] = v
                term = _widen(b, emit_value_at(b, x, src, load, vec=vec), vec)
                b.store(_combine(b, kind, b.load(acc, [0]), term), acc, [0])
                return

            def f(iv: SSAValue) -> None:
                red_vals.append(iv)
                level(k + 1)
                red_vals.pop()

            b.loop(0, shape[axes[k]], f, name=f"r{axes[k]}")

        level(0)
        v = b.load(acc, [0])
        if scale is not None:
            v = b.op(arith.MulfOp, v, b.const(scale, t))
        emit(v)

    vec_ok = (
        len(shape) - 1 not in axes
        and can_vectorize(x)
        and can_vectorize(yielded(fused), stop=[root.result])
    )
    return lower_pointwise(fused, name, sched, "reduce", compute, vec_ok, root)


__all__ = ["lower_softmax", "lower_layer_norm", "lower_reduce", "lower_rows", "RowCtx"]
