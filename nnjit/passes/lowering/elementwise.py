"""Pointwise kernels: "elementwise" and "copy", and the loop structure that the data-movement
kinds (movement.py) and strided reductions (reduce.py) share.

A pointwise kernel computes each output element (or 4 consecutive ones along the innermost
dim) independently:

* wgsl: the output is split into units of `vec` elements, numbered row-major; workgroup `w`
  of `workgroup` = (W,) invocations handles units [w*T, (w+1)*T) (`tile` = (T,), a multiple
  of W; invocation `i` takes units w*T + k*W + i, k < T/W, so neighbours touch neighbours;
  the recorded `tile` is T*vec elements);
  grids over 65535 workgroups use workgroup.y too; ragged ends are guarded with nn_loop.if.
  Defaults: W = 64 (fewer for tiny outputs), T = W, vec = 4 when the innermost dim is a
  multiple of 4 and the computation is f32, else 1.
* wasm: a "thread" loop over the rows (all dims but the innermost; `rows` rows per
  iteration, default 1, or all rows (one chunk, one thread) for outputs of at most
  WASM_ONE_CHUNK_MAX elements), then a serial loop along the row in vector<4xf32> steps (vec = 4
  by default for f32 computations) and a scalar remainder loop when the row is ragged.
  With `tile` = (T,) (default for single-row outputs of 8192+ elements: 2048), the thread
  loop runs over chunks of T elements in row-major order instead (vec = 4 only when the
  innermost dim is a multiple of 4).

`tile` counts output elements on both targets (a multiple of W*vec on wgsl, of vec on wasm).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from xdsl.dialects.builtin import VectorType
from xdsl.ir import Operation, SSAValue

from nnjit.dialects import nn_loop
from nnjit.dialects import nn_tensor as nt
from nnjit.errors import UnsupportedError
from nnjit.passes.lowering.common import (
    Idx,
    KernelBuilder,
    ceil_div,
    check_target,
    check_workgroup,
    fused_kernel,
    grid_loops,
    next_pow2,
    tensor_shape,
)
from nnjit.passes.lowering.scalar import (
    LoadArg,
    buffer_loader,
    can_vectorize,
    emit_value_at,
    to_storage,
)
from nnjit.passes.lowering.schedule import MAX_GRID, Schedule

Emit = Callable[[SSAValue], None]
Compute = Callable[[KernelBuilder, list[Idx], int, LoadArg, Emit], None]
"""compute(b, out_index, vec, load_arg, emit): emits the code of the root value at
`out_index` (vec lanes from index[-1]) and calls emit(value), possibly inside nn_loop.if."""


def yielded(fused: Operation) -> SSAValue:
    """The value a fused body yields."""
    last = fused.regions[0].block.last_op
    if not isinstance(last, nt.YieldOp) or len(last.values) != 1:
        raise UnsupportedError(f"{fused.name}: body must end in nn_tensor.yield of one value")
    return last.values[0]


def find_root(fused: Operation, classes: tuple[type, ...], kind: str) -> Operation:
    """The one op of `classes` in the fused body (the kernel's root)."""
    roots = [o for o in fused.regions[0].block.ops if isinstance(o, classes)]
    if len(roots) != 1:
        raise UnsupportedError(
            f"nn_tensor.fused kind '{kind}' needs exactly one root op, found {len(roots)}"
        )
    root = roots[0]
    if tensor_shape(yielded(fused)) != tensor_shape(root.results[0]):
        raise UnsupportedError(
            f"nn_tensor.fused kind '{kind}': the epilogue changes the shape of {root.name}'s "
            "result, which is not supported"
        )
    return root


def _split_units(units: int, vec: int, sched: Schedule, what: str) -> tuple[int, int]:
    """(W, T): invocations per workgroup and units (of vec elements) per workgroup."""
    if sched.workgroup:
        w = math.prod(sched.workgroup)
    else:
        w = min(64, max(1, next_pow2(units)))
    check_workgroup((w,), what)
    tile = sched.tile[0] if sched.tile else w * vec
    if tile < w * vec or tile % (w * vec):
        raise UnsupportedError(
            f"{what}: tile {tile} must be a multiple of workgroup size x vec = {w * vec}"
        )
    return w, tile // vec


WASM_FLAT_MIN = 8192
"""wasm: a single-row output of at least this many elements is split into `tile` chunks."""
WASM_FLAT_TILE = 2048
WASM_ONE_CHUNK_MAX = 131072
"""wasm: by default, a kernel whose output has at most this many elements (512 KiB of f32)
runs as one chunk (on one thread): waking the other threads and waiting for the slowest
costs more than the tens of microseconds of work it would share (in Chromium, 2 threads
took longer than 1 on MiniLM's and BERT-base's transposes and layer norms, and far longer
on a loaded machine). `rows` / `tile` split it again."""


def wasm_default_rows(n_rows: int, elements: int) -> int:
    """Rows per thread-loop iteration when the schedule leaves `rows` open (wasm)."""
    return max(1, n_rows) if elements <= WASM_ONE_CHUNK_MAX else 1


def lower_pointwise(
    fused: Operation,
    name: str,
    sched: Schedule,
    kind: str,
    compute: Compute,
    vectorizable: bool,
    root: Operation | None = None,
) -> nn_loop.KernelOp:
    """A pointwise kernel for `fused`: compute() gives the root value at each output index;
    when `root` is given, the rest of the body (the epilogue) is applied to it."""
    check_target(sched)
    out = yielded(fused)
    shape = tensor_shape(out)
    rank = len(shape)
    inner = shape[-1] if rank else 1
    total = math.prod(shape)
    wasm = sched.target == "wasm"
    vec_ok = vectorizable and rank > 0 and (inner >= 4 if wasm else inner % 4 == 0)
    if sched.vec not in (0, 1, 4):
        raise UnsupportedError(f"{kind}: vec must be 1 or 4, got {sched.vec}")
    vec = (4 if vec_ok else 1) if sched.vec == 0 else (sched.vec if vec_ok else 1)

    flat = 0
    if wasm:
        flat = sched.tile[0] if sched.tile else 0
        one_chunk = not sched.rows and total <= WASM_ONE_CHUNK_MAX
        if not flat and not one_chunk and total >= WASM_FLAT_MIN and math.prod(shape[:-1]) == 1:
            flat = WASM_FLAT_TILE
        if flat:
            if vec > 1 and inner % vec:
                vec = 1  # flat chunks need whole vectors along the row
            if flat % vec:
                raise UnsupportedError(f"{kind}: tile {flat} must be a multiple of vec {vec}")
            eff = Schedule(target="wasm", vec=vec, tile=(flat,))
        else:
            rows_per = sched.rows or wasm_default_rows(math.prod(shape[:-1]), total)
            eff = Schedule(target="wasm", vec=vec, rows=rows_per)
    else:
        units = total // vec
        w, t = _split_units(units, vec, sched, kind)
        eff = Schedule(target="wgsl", vec=vec, workgroup=(w,), tile=(t * vec,))
    kernel, b = fused_kernel(fused, name, kind, eff)
    args = list(kernel.body.block.args)
    dest = args[-1]
    load = buffer_loader(b, args[:-1], fused.regions[0].block.args)

    def store_at(idx: list[Idx], width: int) -> Emit:
        def emit(v: SSAValue) -> None:
            if root is not None and out is not root.results[0]:
                v = emit_value_at(b, out, idx, load, {root.results[0]: v}, width)
            if width > 1 and not isinstance(v.type, VectorType):
                v = b.splat(v, width)
            b.store(to_storage(b, v), dest, idx)

        return emit

    def at(idx: list[Idx], width: int) -> None:
        compute(b, idx, width, load, store_at(idx, width))

    if flat:
        _wasm_chunks(b, shape, vec, flat // vec, at)
    elif wasm:
        _wasm_rows(b, shape, vec, rows_per, at)
    else:
        _wgsl_units(b, shape, vec, w, t, at)
    b.erase_unused()
    return kernel


def _wgsl_units(
    b: KernelBuilder, shape: tuple[int, ...], vec: int, w: int, t: int,
    at: Callable[[list[Idx], int], None],
) -> None:  # fmt: skip
    units_shape = (*shape[:-1], shape[-1] // vec) if shape else ()
    units = math.prod(units_shape)
    groups = ceil_div(units, t)
    per = t // w

    def unit(u: Idx) -> None:
        idx = b.delinearize(u, units_shape) if units_shape else []
        if vec > 1:
            idx[-1] = b.mul(idx[-1], vec)
        at(idx, vec)

    def in_group(wid: Idx) -> None:
        def lanes(ivs: list[SSAValue]) -> None:
            lane = ivs[0]
            base = b.add(b.mul(wid, t), lane)

            def k_body(k: Idx) -> None:
                u = b.name(b.add(base, b.mul(k, w)), "unit")
                b.if_(b.lt(u, units) if groups * t != units or groups > MAX_GRID else True, lambda: unit(u))

            if per == 1:
                k_body(0)
            else:
                b.loop(0, per, k_body, name="k")

        b.loop(0, w, lambda i: lanes([i]), map="invocation.x", name="lane")

    # (over 65535 groups the grid is 2-D and may hold more groups than `groups`: their units
    # are past the end, which the unit guard skips; an nn_loop.if around the invocation loop
    # would not lower)
    grid_loops(b, groups, in_group, guard=False)


def _wasm_chunks(
    b: KernelBuilder, shape: tuple[int, ...], vec: int, per: int,
    at: Callable[[list[Idx], int], None],
) -> None:  # fmt: skip
    """wasm: a "thread" loop over chunks of `per` units (of vec elements), row-major."""
    units_shape = (*shape[:-1], shape[-1] // vec) if shape else ()
    units = math.prod(units_shape)
    chunks = ceil_div(units, per)

    def chunk(c: SSAValue) -> None:
        def one(k: SSAValue) -> None:
            u = b.name(b.add(b.mul(c, per), k), "unit")

            def body() -> None:
                idx = b.delinearize(u, units_shape) if units_shape else []
                if vec > 1:
                    idx[-1] = b.mul(idx[-1], vec)
                at(idx, vec)

            b.if_(b.lt(u, units) if chunks * per != units else True, body)

        b.loop(0, per, one, name="k")

    b.loop(0, chunks, chunk, map="thread", name="chunk")


def _wasm_rows(
    b: KernelBuilder, shape: tuple[int, ...], vec: int, rows_per: int,
    at: Callable[[list[Idx], int], None],
) -> None:  # fmt: skip
    outer = shape[:-1]
    n_rows = math.prod(outer)
    cols = shape[-1] if shape else 1

    def row(r: Idx) -> None:
        idx0 = b.delinearize(r, outer) if outer else []
        if not shape:
            at([], 1)
            return
        main = cols // vec * vec

        def col(width: int) -> Callable[[Idx], None]:
            return lambda j: at([*idx0, j], width)

        if main:
            if main == vec:
                col(vec)(0)
            else:
                b.loop(0, main, col(vec), step=vec, name="j")
        if cols - main == 1:
            col(1)(main)
        elif cols > main:
            b.loop(main, cols, col(1), name="j")

    thread_rows(b, n_rows, rows_per, row)


def thread_rows(b: KernelBuilder, n_rows: int, rows_per: int, row: Callable[[Idx], None]) -> None:
    """The wasm "thread" loop over `n_rows` independent rows, `rows_per` per iteration."""
    if rows_per <= 1 or n_rows == 1:
        b.loop(0, n_rows, row, map="thread", name="row")
        return
    rows_per = min(rows_per, n_rows)
    chunks = ceil_div(n_rows, rows_per)

    def chunk(r0: SSAValue) -> None:
        def one(rr: SSAValue) -> None:
            r = b.add(r0, rr)
            b.if_(b.lt(r, n_rows) if chunks * rows_per != n_rows else True, lambda: row(r))

        b.loop(0, rows_per, one, name="rr")

    b.loop(0, chunks * rows_per, chunk, step=rows_per, map="thread", name="row0")



# ---------------------------------------------------------------------------------- kinds


def lower_elementwise(fused: Operation, name: str, sched: Schedule) -> nn_loop.KernelOp:
    """Kind "elementwise": the fused body's elementwise DAG at each output element."""
    out = yielded(fused)

    def compute(b: KernelBuilder, idx: list[Idx], vec: int, load: LoadArg, emit: Emit) -> None:
        emit(emit_value_at(b, out, idx, load, vec=vec))

    ints = sched.target == "wasm"  # (i32x4 lanes)
    return lower_pointwise(fused, name, sched, "elementwise", compute, can_vectorize(out, ints=ints))


def lower_copy(fused: Operation, name: str, sched: Schedule) -> nn_loop.KernelOp:
    """Kind "copy": the output is the (single) input, element for element (no conversion:
    buffers are copied in their storage type, vectorised for f32 and i32)."""
    args = fused.regions[0].block.args
    if len(args) != 1 or args[0].type != fused.results[0].type:
        raise UnsupportedError("a copy kernel takes one input of the output's type")
    src_arg = fused.regions[0].block.args[0]

    def compute(b: KernelBuilder, idx: list[Idx], vec: int, load: LoadArg, emit: Emit) -> None:
        emit(load(src_arg, b.indices(idx), vec))

    return lower_pointwise(fused, name, sched, "copy", compute, True)


__all__ = [
    "lower_elementwise", "lower_copy", "lower_pointwise", "thread_rows", "yielded",
    "find_root", "Compute", "Emit", "wasm_default_rows", "WASM_ONE_CHUNK_MAX",
]  # fmt: skip
