"""The register tile of a GEMM kernel, shared by both targets: the accumulators (zeroed,
one fma per (row, vector group) per k step (an i16-pair dot for an integer matmul: Wasm), straight-line with constant private indices),
the k loop over global memory (with k slices and 4-wide A vectors on WGSL) and the mode-k
output value (lanes summed, plus the scalar k tail).

With f16 arithmetic (WGSL schedule f16 2) the accumulators are f16, A values are rounded to
f16 before the fma (B arrives as f16 from its buffer) and results are widened to f32 for the
epilogue (`as_f32`).
"""

from __future__ import annotations

from collections.abc import Callable

from xdsl.dialects import arith
from xdsl.dialects.builtin import VectorType, f16, f32
from xdsl.ir import Attribute, BlockArgument, SSAValue

from nnjit.dialects import nn_loop as L
from nnjit.ir.fastir import i64_attr
from nnjit.passes.lowering.gemm.builder import KB, VEC4, VEC4_F16, VEC4I
from nnjit.passes.lowering.gemm.plan import GemmSpec, Plan


def named(v: SSAValue, hint: str) -> SSAValue:
    """Names a computed value in printed IR (constants and block arguments keep theirs)."""
    if not isinstance(v, BlockArgument) and not isinstance(v.owner, arith.ConstantOp):
        v.name_hint = hint
    return v


def acc_type(p: Plan) -> Attribute:
    if p.integer:
        return VEC4I
    if p.f16 == 2:
        return VEC4_F16 if p.vec == 4 else f16
    return VEC4 if p.vec == 4 else f32


def as_f32(kb: KB, v: SSAValue) -> SSAValue:
    """An accumulated value as the epilogue takes it (f16 arithmetic: widened)."""
    t = v.type
    return kb.extf(v) if (t.get_element_type() if isinstance(t, VectorType) else t) == f16 else v


def ngroups(p: Plan) -> int:
    """Accumulators per register-tile row: vector groups (mode n) or columns (mode k)."""
    return p.rn // p.vec if p.mode == "n" else p.rn


def zero_acc(kb: KB, acc: SSAValue, p: Plan):
    if p.integer:
        z = kb.i(0, p.vec)
    else:
        z = kb.f(0.0, p.vec, f16 if p.f16 == 2 else f32)
    na = ngroups(p) * (2 if p.int8 else 1)
    kb.unrolled(p.rm, lambda i: kb.unrolled(na, lambda g: kb.store(z, acc, [i, g]), "g"), "i")


def _fma_acc(kb: KB, acc: SSAValue, i: int, g: int, a: SSAValue, b: SSAValue, p: Plan):
    cur = kb.load(acc, [i, g])
    kb.store(kb.dot_i16x2(a, b, cur) if p.integer else kb.fma(a, b, cur), acc, [i, g])


def compute_step(
    kb: KB, p: Plan, acc: SSAValue,
    load_a: Callable[[int], SSAValue], load_b: Callable[[int], SSAValue],
):  # fmt: skip
    """One k step of the register tile, straight-line (constant private indices, operand
    indices hoisted out of the k loop): mode n: the B vectors of the tile row, then per row
    an A splat and one fma per vector; mode k: A and B vectors along k, one fma per
    (row, column). f16 arithmetic: A rounded to f16 once per row."""
    ng = ngroups(p)
    half = p.f16 == 2
    if p.int8:  # A's 4 k as two 7-bit planes; accumulators [i, g] (low) and [i, ng + g] (high)
        bs = [load_b(g) for g in range(ng)]
        for i in range(p.rm):
            quad = load_a(i)
            planes = [kb.new(L.BytePlaneOp, [quad], quad.type, props={"shift": i64_attr(s)}) for s in (0, 7)]
            for g in range(ng):
                for h, plane in enumerate(planes):
                    cur = kb.load(acc, [i, h * ng + g])
                    kb.store(kb.new(L.DotI8x4Op, [bs[g], plane, cur], cur.type), acc, [i, h * ng + g])
    elif p.mode == "n":
        bs = [load_b(g) for g in range(ng)]
        for i in range(p.rm):
            a = kb.splat(kb.truncf(load_a(i)) if half else load_a(i), p.vec)
            for g in range(ng):
                _fma_acc(kb, acc, i, g, a, bs[g], p)
    else:
        as_ = [kb.truncf(load_a(i)) if half else load_a(i) for i in range(p.rm)]
        bs = [load_b(j) for j in range(ng)]
        for i in range(p.rm):
            for j in range(ng):
                _fma_acc(kb, acc, i, j, as_[i], bs[j], p)


def global_k_loop(
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
                compute_step(
                    kb, p, acc,
                    lambda i: kb.extract(avs[i], j),  # noqa: B023 - called right away
                    lambda g: spec.load_b(kb, bi, kis[j], cis[g], p.vec, "n"),  # noqa: B023
                )  # fmt: skip
        elif p.mode == "n" and spec.b_int8:  # (B vectors made in pairs from 8 bytes)
            bs = spec.load_b_int8(kb, bi, ki, cis)
            compute_step(kb, p, acc, lambda i: spec.load_a(kb, bi, ris[i], ki, 1), bs.__getitem__)
        elif p.mode == "n":
            compute_step(
                kb, p, acc,
                lambda i: spec.load_a(kb, bi, ris[i], ki, 1),
                lambda g: spec.load_b(kb, bi, ki, cis[g], p.vec, "n"),
            )  # fmt: skip
        else:
            compute_step(
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
    base = named(kb.mul(z, per * step), "kz")
    kb.loop(0, per * step, step, unroll, lambda j: body(kb.add(base, j)), "k")
    rest = nsteps - per * p.tz
    if rest:
        with kb.if_(kb.lt(z, rest)):
            body(kb.add(kb.mul(z, step), per * p.tz * step))
    return list(range(kmain, spec.K))


def mode_k_value(
    kb: KB, spec: GemmSpec, acc: SSAValue, i, j, bi, ri, ci, tail: list[int]
) -> SSAValue:
    """A mode-k output: the lanes of its accumulator summed, plus the scalar k tail."""
    v = kb.load(acc, [i, j])
    s = as_f32(kb, kb.reduce_add(v) if isinstance(v.type, VectorType) else v)
    for k in tail:
        ki = spec.kinfo(kb, kb.c(k))
        b = as_f32(kb, spec.load_b(kb, bi, ki, ci, 1, "k"))
        s = kb.fma(spec.load_a(kb, bi, ri, ki, 1), b, s)
    return s


__all__ = ["named", "acc_type", "as_f32", "ngroups", "zero_acc", "compute_step", "global_k_loop", "mode_k_value"]
