"""The Wasm GEMM kernel (target "wasm"): a `Plan` and a `GemmSpec` turned into nn_loop ops
(one `thread` loop over macro tiles, serial loops over register blocks, the register tile
over the whole k loop, the epilogue).

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

from xdsl.dialects import arith
from xdsl.ir import SSAValue

from nnjit.passes.lowering.common import ceil_div
from nnjit.passes.lowering.gemm.builder import KB
from nnjit.passes.lowering.gemm.plan import GemmSpec, Plan
from nnjit.passes.lowering.gemm.steps import (
    acc_type,
    global_k_loop,
    mode_k_value,
    named,
    ngroups,
    zero_acc,
)


def gen_wasm(kb: KB, spec: GemmSpec, p: Plan):
    M, N = spec.M, spec.N
    V = p.vec
    ng = ngroups(p)
    width = V if p.mode == "n" else 1
    nmt, nnt = ceil_div(M, p.tile_m), ceil_div(N, p.tile_n)
    shift_m = M % p.tile_m != 0 or p.tile_m % p.rm != 0
    shift_n = N % p.tile_n != 0 or p.tile_n % p.rn != 0
    with kb.for_(0, spec.nbatch * nmt * nnt, map="thread", name="t") as t:
        acc = kb.alloc([p.rm, ng * (2 if p.int8 else 1)], acc_type(p), "private", "acc")
        kb.set_const_block(kb.block, acc.owner)  # type: ignore[arg-type]
        mt = kb.rem(t, nmt)
        q = kb.div(t, nmt)
        nt = kb.rem(q, nnt)
        bi = spec.batch(kb, kb.div(q, nnt) if spec.nbatch > 1 else None)
        m0 = named(kb.mul(mt, p.tile_m), "m0")
        n0 = named(kb.mul(nt, p.tile_n), "n0")

        def rows_body(rb: SSAValue):
            # the last register block of M ends at M (it recomputes a few rows)
            r0 = kb.add(m0, rb)
            r0 = kb.min(r0, M - p.rm) if shift_m else r0
            ris = [spec.row(kb, bi, kb.add(r0, i)) for i in range(p.rm)]

            def cols_body(cb: SSAValue):
                c0 = kb.add(n0, cb)
                c0 = kb.min(c0, N - p.rn) if shift_n else c0
                cis = [spec.col(kb, bi, kb.add(c0, g * width)) for g in range(ng)]
                zero_acc(kb, acc, p)
                tail = global_k_loop(kb, spec, p, acc, bi, ris, cis)

                def epilogue(i: SSAValue, g: SSAValue):
                    ri = spec.row(kb, bi, kb.add(r0, i))
                    ci = spec.col(kb, bi, kb.add(c0, kb.mul(g, width)))
                    if p.int8:  # low plane + 128 * high plane + B's last word row
                        lo, hi = kb.load(acc, [i, g]), kb.load(acc, [i, kb.add(g, ng)])
                        v = kb.ibin(arith.AddiOp, lo, kb.ibin(arith.MuliOp, hi, kb.i(128, V)))
                        bias = spec.load_b(kb, bi, spec.kinfo(kb, kb.c(spec.K)), ci, V, "n")
                        spec.finish(kb, bi, ri, ci, kb.ibin(arith.AddiOp, v, bias), V)
                    elif p.mode == "k":
                        s = mode_k_value(kb, spec, acc, i, g, bi, ri, ci, tail)
                        spec.finish(kb, bi, ri, ci, s, 1)
                    else:
                        spec.finish(kb, bi, ri, ci, kb.load(acc, [i, g]), V)

                kb.unrolled(p.rm, lambda i: kb.unrolled(ng, lambda g: epilogue(i, g), "g"), "i")

            kb.loop(0, p.tile_n, p.rn, 1, cols_body, "cb")

        kb.loop(0, p.tile_m, p.rm, 1, rows_body, "rb")


__all__ = ["gen_wasm"]
