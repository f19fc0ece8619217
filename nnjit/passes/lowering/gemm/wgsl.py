"""The WGSL GEMM kernel (target "wgsl"): a `Plan` and a `GemmSpec` turned into nn_loop ops
(workgroup and invocation loops, the register tile, optional shared-memory staging of k
tiles, k slices reduced in workgroup memory, the epilogue under guards).

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
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from xdsl.dialects import arith
from xdsl.dialects.builtin import f32
from xdsl.ir import SSAValue

from nnjit.passes.lowering.common import ceil_div
from nnjit.passes.lowering.gemm.builder import KB
from nnjit.passes.lowering.gemm.plan import GemmSpec, Plan
from nnjit.passes.lowering.gemm.steps import (
    acc_type,
    as_f32,
    compute_step,
    global_k_loop,
    mode_k_value,
    named,
    ngroups,
    zero_acc,
)


def gen_wgsl(kb: KB, spec: GemmSpec, p: Plan):
    M, N = spec.M, spec.N
    TX, TY, TZ, V = p.tx, p.ty, p.tz, p.vec
    ng = ngroups(p)
    width = V if p.mode == "n" else 1  # columns per accumulator
    ragged_m = M % p.tile_m != 0
    ragged_n = N % p.tile_n != 0
    staged = bool(p.shared) and p.mode == "n"  # k-major tiles, vector staging

    nest = ExitStack()
    bz = None
    if spec.nbatch > 1:
        bz = nest.enter_context(kb.for_(0, spec.nbatch, map="workgroup.z", name="wz"))
    by = nest.enter_context(kb.for_(0, ceil_div(M, p.tile_m), map="workgroup.y", name="wy"))
    bx = nest.enter_context(kb.for_(0, ceil_div(N, p.tile_n), map="workgroup.x", name="wx"))
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
        red = kb.alloc([p.rm, ng, TY * TX], acc_type(p), "workgroup", "partial")
    acc = kb.alloc([p.rm, ng], acc_type(p), "private", "acc")
    kb.set_const_block(spmd, acc.owner)  # type: ignore[arg-type]

    bi = spec.batch(kb, bz)
    m0 = named(kb.mul(by, p.tile_m), "m0")
    n0 = named(kb.mul(bx, p.tile_n), "n0")

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

    zero_acc(kb, acc, p)
    tail: list[int] = []
    if not p.shared:
        ris = [row(i)[1] for i in range(p.rm)]
        cis = [col(g)[1] for g in range(ng)]
        tail = global_k_loop(kb, spec, p, acc, bi, ris, cis, z)
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
                spec.finish(kb, bi, ri, ci, mode_k_value(kb, spec, acc, i, g, bi, ri, ci, tail), 1)
            return
        if partial:
            full = kb.lt(c, N - V + 1)
        else:
            full = kb.lt(c, N) if ragged_n else None
        with kb.if_(kb.and_([row_ok, full])):
            spec.finish(kb, bi, ri, ci, as_f32(kb, kb.load(acc, [i, g])), V)
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
    pairs = [(i, g) for i in range(p.rm) for g in range(ngroups(p))]
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
    lid = named(lid, "lid")
    nt = ceil_div(K, KT)
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
        nit = ceil_div(n, nthreads)
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
            compute_step(
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
    lid = named(kb.add(kb.mul(ty, p.tx), tx), "lid")
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

        kb.loop(0, ceil_div(total, nthreads), 1, 1, body, "e")

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
                compute_step(
                    kb, p, acc,
                    lambda i: kb.load(a_s, [lrows[i], kk]),
                    lambda g: kb.load(b_s, [kk, lcols[g]], p.vec),
                )  # fmt: skip
            else:
                compute_step(
                    kb, p, acc,
                    lambda i: kb.load(a_s, [lrows[i], kk], p.vec),
                    lambda j: kb.load(b_s, [lcols[j], kk], p.vec),
                )  # fmt: skip

        kb.loop(0, KT, p.vec if p.mode == "k" else 1, p.kstep, body, "kk")
        kb.barrier()

    kb.loop(0, ceil_div(K, KT) * KT, KT, 1, k_tile, "k0")


__all__ = ["gen_wgsl"]
