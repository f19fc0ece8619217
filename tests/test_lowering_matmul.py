"""Matmul, gemm and conv kernels (nnjit/passes/lowering/{matmul,conv}.py), run by the nn_loop
interpreter against numpy in float64, on both targets and under many schedules.

Every schedule option is changed at least once: target, vec (1/4), reg, tile (incl. tile_k),
workgroup, kstep and shared (0/1). Shapes are tiny (the interpreter is slow) and mostly
ragged; outputs are NaN-poisoned before each run, inputs are fresh random values.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from xdsl.dialects import arith
from xdsl.dialects.builtin import FloatAttr, IntegerAttr, TensorType, f32, i1
from xdsl.ir import Block, Region, SSAValue

from nnjit.dialects import nn_loop as L
from nnjit.dialects import nn_tensor as T
from nnjit.errors import NNJitError, UnsupportedError
from nnjit.interp.nn_loop_eval import run_kernel
from nnjit.passes.lowering.matmul import lower_matmul
from nnjit.passes.lowering.schedule import Schedule
from nnjit.passes.nn_loop_unroll import unroll_all

RTOL = 2e-6


# ----------------------------------------------------------------------------- builders


def tt(shape) -> TensorType:
    return TensorType(f32, list(shape))


class Body:
    """Builds a fused body: ops are appended to the block; each helper returns its value."""

    def __init__(self, shapes):
        self.block = Block(arg_types=[tt(s) for s in shapes])
        self.args = self.block.args

    def emit(self, op):
        self.block.add_op(op)
        return op.results[0]

    def matmul(self, a, b):
        sa, sb = T.shape_of(a), T.shape_of(b)
        batch = np.broadcast_shapes(sa[:-2], sb[:-2])
        return self.emit(T.MatmulOp(a, b, tt((*batch, sa[-2], sb[-1]))))

    def gemm(self, a, b, c=None, alpha=1.0, beta=1.0, ta=0, tb=0):
        sa, sb = T.shape_of(a), T.shape_of(b)
        m = sa[1] if ta else sa[0]
        n = sb[0] if tb else sb[1]
        return self.emit(
            T.GemmOp(
                operands=[a, b, [c] if c is not None else []],
                result_types=[tt((m, n))],
                properties={
                    "alpha": FloatAttr(alpha, 32), "beta": FloatAttr(beta, 32),
                    "trans_a": IntegerAttr(ta, 64), "trans_b": IntegerAttr(tb, 64),
                },
            )  # fmt: skip
        )

    def t(self, x):
        s = T.shape_of(x)
        r = len(s)
        perm = [*range(r - 2), r - 1, r - 2]
        return self.emit(
            T.TransposeOp(
                operands=[x],
                result_types=[tt((*s[:-2], s[-1], s[-2]))],
                properties={"perm": T.i64_array(perm)},
            )
        )

    def binary(self, cls, a, b):
        shape = np.broadcast_shapes(T.shape_of(a), T.shape_of(b))
        return self.emit(cls(a, b, tt(shape)))

    def add(self, a, b):
        return self.binary(T.AddOp, a, b)

    def mul(self, a, b):
        return self.binary(T.MulOp, a, b)

    def gelu(self, x):
        return self.emit(T.GeluOp(x))

    def scalar(self, x: float):
        from xdsl.dialects.builtin import DenseIntOrFPElementsAttr

        return self.emit(T.ConstantOp(DenseIntOrFPElementsAttr.from_list(tt(()), [x])))

    def relu_by_where(self, x):
        """where(x > 0, x, 0): a compare, so the epilogue is not vectorisable."""
        zero = self.scalar(0.0)
        gt = self.emit(T.GreaterOp(x, zero, TensorType(i1, list(T.shape_of(x)))))
        return self.emit(T.WhereOp(gt, x, zero, x.type))

    def fused(self, result: SSAValue, kind: str = "matmul") -> T.FusedOp:
        self.block.add_op(T.YieldOp(result))
        srcs = [T.WeightOp(f"w{i}", a.type).result for i, a in enumerate(self.args)]
        return T.FusedOp(kind, srcs, result.type, Region(self.block))


# ------------------------------------------------------------------------------ running


def gelu_ref(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def run(fused: T.FusedOp, sched: Schedule, inputs, lower=lower_matmul, unroll=False):
    kernel = lower(fused, "k", sched)
    kernel.verify()
    if unroll:
        unroll_all(kernel)
        kernel.verify()
    out_shape = T.shape_of(fused.result)
    bufs = [np.asarray(x, np.float32) for x in inputs]
    bufs.append(np.full(out_shape, np.nan, np.float32))
    run_kernel(kernel, bufs)
    return bufs[-1], kernel


def check(fused, sched, inputs, ref, lower=lower_matmul, unroll=False):
    got, kernel = run(fused, sched, inputs, lower, unroll)
    ref = np.asarray(ref, np.float64)
    assert got.shape == ref.shape
    assert not np.isnan(got).any(), f"unwritten outputs at {np.argwhere(np.isnan(got))[:5]}"
    err = np.max(np.abs(got - ref)) / max(np.max(np.abs(ref)), 1e-30)
    assert err <= RTOL, f"relative error {err:.3g} under {kernel.schedule}"
    return kernel


_RNG = np.random.default_rng(0)


def rand(*shape, rng=_RNG):
    return rng.standard_normal(shape).astype(np.float32)


def f64(*xs):
    return [np.asarray(x, np.float64) for x in xs]


# ------------------------------------------------------------------------------ schedules

WGSL = [
    Schedule("wgsl"),
    Schedule("wgsl", shared=1),
    Schedule("wgsl", vec=1, reg=(2, 2), tile=(4, 8), kstep=3),
    Schedule("wgsl", vec=4, reg=(2, 8), workgroup=(2, 4), kstep=1),
    Schedule("wgsl", vec=4, shared=1, reg=(4, 4), tile=(8, 16, 4), kstep=2),
    Schedule("wgsl", vec=1, shared=1, reg=(1, 1), workgroup=(8, 4), tile=(4, 8, 3), kstep=5),
    # double-buffered staging; k slices (workgroup z) staged and unstaged; 8-row A fragments
    Schedule("wgsl", shared=2),
    Schedule("wgsl", shared=2, reg=(4, 4), workgroup=(2, 2, 2), tile=(8, 8, 8)),
    Schedule("wgsl", reg=(2, 4), workgroup=(2, 2, 3)),
    Schedule("wgsl", shared=1, reg=(8, 4), workgroup=(2, 1, 2), tile=(8, 8, 4), kstep=1),
]
WASM = [
    Schedule("wasm"),
    Schedule("wasm", vec=1, reg=(3, 2), kstep=2),
    Schedule("wasm", reg=(2, 4), tile=(4, 8), kstep=3),
    Schedule("wasm", vec=4, reg=(1, 12), tile=(2, 12)),
]
ALL = WGSL + WASM


def sid(s: Schedule) -> str:
    return ",".join(f"{k}={v}" for k, v in vars(s).items() if v not in ((), 0, -1))


# --------------------------------------------------------------------------------- matmul


@pytest.mark.parametrize("sched", ALL, ids=sid)
@pytest.mark.parametrize("mkn", [(7, 13, 5), (1, 1, 1), (33, 65, 17), (8, 16, 8)], ids=str)
def test_plain_2d(sched, mkn):
    m, n, k = mkn
    b = Body([(m, k), (k, n)])
    f = b.fused(b.matmul(*b.args))
    x, y = rand(m, k), rand(k, n)
    check(f, sched, [x, y], np.matmul(*f64(x, y)))


@pytest.mark.parametrize("sched", ALL, ids=sid)
@pytest.mark.parametrize(
    "sa,sb",
    [
        ((2, 3, 5, 6), (3, 6, 7)),  # batch broadcast on B: out [2, 3]
        ((1, 3, 5, 6), (2, 1, 6, 9)),  # both sides broadcast
        ((2, 5, 6), (6, 9)),  # weights without batch: the batch folds into the rows
        ((3, 5, 6), (1, 6, 8)),  # B batch of ones: folds too
    ],
    ids=str,
)
def test_batched(sched, sa, sb):
    b = Body([sa, sb])
    f = b.fused(b.matmul(*b.args))
    x, y = rand(*sa), rand(*sb)
    check(f, sched, [x, y], np.matmul(*f64(x, y)))


@pytest.mark.parametrize("sched", ALL, ids=sid)
@pytest.mark.parametrize("which", ["a", "b", "ab"])
def test_transposed_operand_prologue(sched, which):
    # attention-like: scores = Q . K^T (B transposed: vectors along k), and the others
    m, n, k = 9, 6, 10
    sa = (1, 2, k, m) if "a" in which else (1, 2, m, k)
    sb = (1, 2, n, k) if "b" in which else (1, 2, k, n)
    b = Body([sa, sb])
    x, y = b.args
    f = b.fused(b.matmul(b.t(x) if "a" in which else x, b.t(y) if "b" in which else y))
    xa, ya = rand(*sa), rand(*sb)
    xr = np.swapaxes(xa, -1, -2) if "a" in which else xa
    yr = np.swapaxes(ya, -1, -2) if "b" in which else ya
    check(f, sched, [xa, ya], np.matmul(*f64(xr, yr)))


STAGED = [
    Schedule("wgsl", shared=1, reg=(4, 4), workgroup=(2, 2), tile=(8, 8, 8)),
    Schedule("wgsl", shared=2, reg=(4, 4), workgroup=(2, 2), tile=(8, 8, 4)),
    Schedule("wgsl", shared=2, reg=(4, 8), workgroup=(1, 2, 2), tile=(8, 8, 8), kstep=2),
    # unstaged, kstep a multiple of 4: A read as vectors along k (with k slices too)
    Schedule("wgsl", reg=(2, 4), kstep=8),
    Schedule("wgsl", reg=(4, 4), workgroup=(2, 2, 2), kstep=8),
]


@pytest.mark.parametrize("sched", STAGED, ids=sid)
@pytest.mark.parametrize("which", ["", "a", "b", "ab"])
@pytest.mark.parametrize("mkn", [(8, 12, 16), (13, 7, 12), (16, 4, 24), (12, 16, 20)], ids=str)
def test_staged_vector_loads(sched, which, mkn):
    """Staged tiles read 4-lane vectors along each operand's contiguous dim (A along k or,
    transposed, along m; B along n or, transposed, along k) where 4 divides it, and scalars
    elsewhere; ragged M/N are clamped, a ragged last k tile is zero-filled. Unstaged with
    kstep 8, A is read as vectors along k where 4 divides K."""
    m, n, k = mkn
    sa = (2, k, m) if "a" in which else (2, m, k)
    sb = (2, n, k) if "b" in which else (2, k, n)
    b = Body([sa, sb])
    x, y = b.args
    f = b.fused(b.matmul(b.t(x) if "a" in which else x, b.t(y) if "b" in which else y))
    xa, ya = rand(*sa), rand(*sb)
    xr = np.swapaxes(xa, -1, -2) if "a" in which else xa
    yr = np.swapaxes(ya, -1, -2) if "b" in which else ya
    check(f, sched, [xa, ya], np.matmul(*f64(xr, yr)))


def test_double_transpose_cancels():
    b = Body([(5, 7), (7, 6)])
    x, y = b.args
    f = b.fused(b.matmul(x, b.t(b.t(y))))
    xa, ya = rand(5, 7), rand(7, 6)
    k = check(f, Schedule("wasm"), [xa, ya], np.matmul(*f64(xa, ya)))
    assert k.schedule.data["vec"].value.data == 4  # B read along n as vectors


@pytest.mark.parametrize("sched", ALL, ids=sid)
def test_bert_like_bias_gelu(sched):
    # [1, S, H] x [H, 4H] + bias, gelu (BERT intermediate), S=10, H=12
    b = Body([(1, 10, 12), (12, 20), (20,)])
    x, w, bias = b.args
    f = b.fused(b.gelu(b.add(b.matmul(x, w), bias)))
    xa, wa, ba = rand(1, 10, 12), rand(12, 20), rand(20)
    x64, w64, b64 = f64(xa, wa, ba)
    check(f, sched, [xa, wa, ba], gelu_ref(x64 @ w64 + b64))


@pytest.mark.parametrize("sched", ALL, ids=sid)
def test_residual_add_and_scale(sched):
    # (x @ w + bias) * 0.5 + residual, ragged N=11
    b = Body([(1, 6, 9), (9, 11), (11,), (1, 6, 11)])
    x, w, bias, res = b.args
    f = b.fused(b.add(b.mul(b.add(b.matmul(x, w), bias), b.scalar(0.5)), res))
    xa, wa, ba, ra = rand(1, 6, 9), rand(9, 11), rand(11), rand(1, 6, 11)
    x64, w64, b64, r64 = f64(xa, wa, ba, ra)
    check(f, sched, [xa, wa, ba, ra], (x64 @ w64 + b64) * 0.5 + r64)


@pytest.mark.parametrize("sched", [WGSL[0], WGSL[1], WASM[0]], ids=sid)
def test_epilogue_broadcast_along_rows_and_not_vectorisable(sched):
    # a [M, 1] operand (constant along the vector lanes) and a compare/where epilogue
    b = Body([(7, 5), (5, 12), (7, 1)])
    x, w, col = b.args
    f = b.fused(b.relu_by_where(b.add(b.matmul(x, w), col)))
    xa, wa, ca = rand(7, 5), rand(5, 12), rand(7, 1)
    x64, w64, c64 = f64(xa, wa, ca)
    check(f, sched, [xa, wa, ca], np.maximum(x64 @ w64 + c64, 0.0))


# ----------------------------------------------------------------------------------- gemm


@pytest.mark.parametrize("sched", [WGSL[0], WGSL[1], WGSL[3], WASM[0], WASM[1]], ids=sid)
@pytest.mark.parametrize("ta,tb", [(0, 0), (0, 1), (1, 0), (1, 1)])
@pytest.mark.parametrize("cshape", [(9,), (5, 9), (5, 1), (1,), (), None], ids=str)
def test_gemm(sched, ta, tb, cshape):
    m, n, k = 5, 9, 6
    sa = (k, m) if ta else (m, k)
    sb = (n, k) if tb else (k, n)
    shapes = [sa, sb] + ([cshape] if cshape is not None else [])
    b = Body(shapes)
    c = b.args[2] if cshape is not None else None
    f = b.fused(b.gemm(b.args[0], b.args[1], c, alpha=0.5, beta=2.0, ta=ta, tb=tb))
    ins = [rand(*s) for s in shapes]
    a64, b64 = f64(ins[0], ins[1])
    ref = 0.5 * ((a64.T if ta else a64) @ (b64.T if tb else b64))
    if cshape is not None:
        ref = ref + 2.0 * ins[2].astype(np.float64)
    check(f, sched, ins, ref)


def test_gemm_beta_zero_ignores_c():
    b = Body([(4, 8), (8, 5), (5,)])
    f = b.fused(b.gemm(*b.args, beta=0.0))
    ins = [rand(4, 8), rand(8, 5), np.full(5, np.nan, np.float32)]
    a, w = f64(ins[0], ins[1])
    check(f, WASM[0], ins, a @ w)


def test_gemm_alpha_one_beta_one_with_epilogue():
    b = Body([(4, 8), (8, 8), (8,)])
    f = b.fused(b.gelu(b.gemm(*b.args)))
    ins = [rand(4, 8), rand(8, 8), rand(8)]
    a, w, c = f64(*ins)
    for s in (WGSL[0], WASM[0]):
        check(f, s, ins, gelu_ref(a @ w + c))


# --------------------------------------------------------------------------- unrolled IR


@pytest.mark.parametrize("sched", [WGSL[0], WGSL[4], WASM[0], WASM[2]], ids=sid)
def test_unrolled_kernel_runs_and_private_indices_are_constant(sched):
    b = Body([(1, 6, 9), (9, 11), (11,)])
    x, w, bias = b.args
    f = b.fused(b.gelu(b.add(b.matmul(x, w), bias)))
    ins = [rand(1, 6, 9), rand(9, 11), rand(11)]
    x64, w64, b64 = f64(*ins)
    kernel = check(f, sched, ins, gelu_ref(x64 @ w64 + b64), unroll=True)
    from xdsl.dialects import arith

    for op in kernel.walk():
        if isinstance(op, (L.LoadOp, L.StoreOp)) and L.memory_space(op.buffer.type) == "private":
            for i in op.indices:
                assert isinstance(i.owner, arith.ConstantOp), f"{op} has a variable index"


# ------------------------------------------------------------------------ schedule record


@pytest.mark.parametrize("sched", ALL, ids=sid)
def test_effective_schedule_replays(sched):
    b = Body([(2, 7, 9), (9, 13), (13,)])
    x, w, bias = b.args
    f = b.fused(b.add(b.matmul(x, w), bias))
    k1 = lower_matmul(f, "k", sched)
    replay = Schedule(sched.target).merged(k1.schedule)
    k2 = lower_matmul(f, "k", replay)
    assert k1.schedule == k2.schedule
    assert str(k1) == str(k2)


def test_schedule_errors():
    b = Body([(8, 8), (8, 8)])
    f = b.fused(b.matmul(*b.args))
    with pytest.raises(NNJitError, match="vec must be 1 or 4"):
        lower_matmul(f, "k", Schedule("wgsl", vec=3))
    with pytest.raises(NNJitError, match="multiple of vec"):
        lower_matmul(f, "k", Schedule("wgsl", vec=4, reg=(4, 6)))
    with pytest.raises(NNJitError, match="multiple of reg"):
        lower_matmul(f, "k", Schedule("wgsl", tile=(6, 8), reg=(4, 4)))
    with pytest.raises(NNJitError, match="more than 256"):
        lower_matmul(f, "k", Schedule("wgsl", workgroup=(32, 16)))
    with pytest.raises(NNJitError, match="workgroup"):
        lower_matmul(f, "k", Schedule("wgsl", workgroup=(2, 2), reg=(4, 4), tile=(16, 16)))
    with pytest.raises(NNJitError, match="bytes"):
        lower_matmul(f, "k", Schedule("wgsl", shared=1, tile=(64, 64, 128), reg=(4, 4)))
    with pytest.raises(NNJitError, match="bytes"):  # two 64x64x64 buffers
        lower_matmul(f, "k", Schedule("wgsl", shared=2, tile=(64, 64, 64), reg=(4, 4)))
    with pytest.raises(NNJitError, match="k slices"):
        lower_matmul(f, "k", Schedule("wgsl", shared=1, workgroup=(2, 2, 3), tile=(8, 8, 8),
                                      reg=(4, 4)))  # fmt: skip
    with pytest.raises(NNJitError, match="more than 256"):
        lower_matmul(f, "k", Schedule("wgsl", workgroup=(8, 8, 8)))
    with pytest.raises(NNJitError, match="partial sums"):
        lower_matmul(f, "k", Schedule("wgsl", workgroup=(16, 16, 1), reg=(8, 8)))  # ok: z = 1
        lower_matmul(f, "k", Schedule("wgsl", workgroup=(8, 8, 2), reg=(16, 16)))
    bt = Body([(8, 8), (8, 3)])  # N < 4: shared tiles vectorise along k ("mode k")
    ft = bt.fused(bt.matmul(*bt.args))
    with pytest.raises(NNJitError, match="tile_k"):
        lower_matmul(ft, "k", Schedule("wgsl", shared=1, tile=(8, 4, 6), vec=4, reg=(4, 4)))
    kt = lower_matmul(ft, "k", Schedule("wgsl", shared=1, tile=(8, 4, 6), reg=(4, 4)))
    assert kt.schedule.data["vec"].value.data == 1  # the default falls back to scalar


def test_unsupported_prologue():
    b = Body([(4, 4), (4, 4)])
    x, y = b.args
    f = b.fused(b.matmul(b.gelu(x), y))
    with pytest.raises(UnsupportedError, match="only transposes"):
        lower_matmul(f, "k", Schedule("wgsl"))


def test_every_option_changes_the_kernel():
    b = Body([(1, 32, 32), (32, 32), (32,)])
    x, w, bias = b.args
    f = b.fused(b.add(b.matmul(x, w), bias))
    variants = [
        Schedule("wgsl"),
        Schedule("wgsl", vec=1),
        Schedule("wgsl", reg=(2, 4)),
        Schedule("wgsl", tile=(16, 32)),
        Schedule("wgsl", workgroup=(4, 2)),
        Schedule("wgsl", kstep=2),
        Schedule("wgsl", shared=1),
        Schedule("wgsl", shared=1, tile=(32, 32, 8)),
        Schedule("wasm"),
        Schedule("wasm", vec=1),
        Schedule("wasm", reg=(2, 8)),
        Schedule("wasm", tile=(8, 16)),
        Schedule("wasm", kstep=4),
    ]
    texts = [str(lower_matmul(f, "k", s)) for s in variants]
    assert len(set(texts)) == len(texts)


# ----------------------------------------------------------------------------------- conv


def conv_ref(x, w, bias, strides, pads, dil):
    """NCHW conv, group 1, float64 (direct loops over the kernel window)."""
    nb, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    t, lf, bt, r = pads
    xp = np.zeros((nb, c, h + t + bt, wd + lf + r))
    xp[:, :, t : t + h, lf : lf + wd] = x
    oh = (h + t + bt - dil[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (wd + lf + r - dil[1] * (kw - 1) - 1) // strides[1] + 1
    out = np.zeros((nb, f, oh, ow))
    for ky in range(kh):
        for kx in range(kw):
            ys = ky * dil[0]
            xs = kx * dil[1]
            rows = slice(ys, ys + strides[0] * oh, strides[0])
            cols = slice(xs, xs + strides[1] * ow, strides[1])
            patch = xp[:, :, rows, cols]
            out += np.einsum("nchw,fc->nfhw", patch, w[:, :, ky, kx])
    if bias is not None:
        out += bias[None, :, None, None]
    return out


def conv_body(xs, ws, strides, pads, dil, bias=True, extra=None):
    oh = (xs[2] + pads[0] + pads[2] - dil[0] * (ws[2] - 1) - 1) // strides[0] + 1
    ow = (xs[3] + pads[1] + pads[3] - dil[1] * (ws[3] - 1) - 1) // strides[1] + 1
    out = (xs[0], ws[0], oh, ow)
    shapes = [xs, ws] + ([(ws[0],)] if bias else []) + ([out] if extra else [])
    b = Body(shapes)
    conv = b.emit(
        T.ConvOp(
            operands=[b.args[0], b.args[1], [b.args[2]] if bias else []],
            result_types=[tt(out)],
            properties={
                "strides": T.i64_array(strides), "pads": T.i64_array(pads),
                "dilations": T.i64_array(dil),
            },
        )  # fmt: skip
    )
    res = conv
    if extra == "residual_relu":
        res = b.emit(T.ReluOp(b.add(conv, b.args[-1])))
    return b.fused(res, kind="conv"), shapes


def lower_conv(*a):
    from nnjit.passes.lowering.conv import lower_conv as lc

    return lc(*a)


CONV_SCHEDS = [
    Schedule("wgsl"),
    Schedule("wgsl", shared=1),
    Schedule("wgsl", vec=4, shared=1, reg=(2, 4), tile=(4, 8, 8)),
    Schedule("wgsl", vec=1, reg=(2, 2), workgroup=(2, 2), kstep=3),
    Schedule("wasm"),
    Schedule("wasm", vec=1, reg=(2, 3), kstep=2),
    Schedule("wasm", reg=(4, 4), tile=(4, 4)),
]


@pytest.mark.parametrize("sched", CONV_SCHEDS, ids=sid)
@pytest.mark.parametrize(
    "xs,ws,strides,pads,dil",
    [
        ((1, 3, 8, 8), (6, 3, 4, 4), (4, 4), (0, 0, 0, 0), (1, 1)),  # ViT patch embedding
        ((2, 3, 12, 8), (5, 3, 4, 4), (4, 4), (0, 0, 0, 0), (1, 1)),  # ragged F, batch 2
        ((2, 3, 6, 5), (5, 3, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),  # 3x3 stride 1 pad 1
        ((1, 2, 5, 8), (3, 2, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),  # OW % 4 == 0
        ((1, 2, 9, 7), (3, 2, 3, 2), (2, 1), (2, 0, 1, 1), (2, 1)),  # strides, dilation, pads
    ],
    ids=["patch", "patch-ragged", "3x3", "3x3-ow8", "odd"],
)
def test_conv(sched, xs, ws, strides, pads, dil):
    f, shapes = conv_body(xs, ws, strides, pads, dil)
    ins = [rand(*s) for s in shapes]
    x, w, b = f64(*ins)
    check(f, sched, ins, conv_ref(x, w, b, strides, pads, dil), lower=lower_conv)


@pytest.mark.parametrize("sched", [CONV_SCHEDS[0], CONV_SCHEDS[2], CONV_SCHEDS[4]], ids=sid)
def test_conv_epilogue_no_bias(sched):
    xs, ws, st, pads, dil = (1, 2, 5, 8), (4, 2, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1)
    f, shapes = conv_body(xs, ws, st, pads, dil, bias=False, extra="residual_relu")
    ins = [rand(*s) for s in shapes]
    x, w, r = f64(*ins)
    ref = np.maximum(conv_ref(x, w, None, st, pads, dil) + r, 0.0)
    check(f, sched, ins, ref, lower=lower_conv)


def test_conv_patch_embedding_vectorises_along_k():
    f, _ = conv_body((1, 3, 8, 8), (6, 3, 4, 4), (4, 4), (0, 0, 0, 0), (1, 1))
    for target in ("wgsl", "wasm"):
        k = lower_conv(f, "k", Schedule(target))
        assert k.schedule.data["vec"].value.data == 4
        assert any(isinstance(o, L.ReduceLanesOp) for o in k.walk())


def test_conv_groups_unsupported():
    b = Body([(1, 4, 5, 5), (4, 2, 3, 3)])
    conv = b.emit(
        T.ConvOp(
            operands=[b.args[0], b.args[1], []],
            result_types=[tt((1, 4, 3, 3))],
            properties={
                "strides": T.i64_array([1, 1]), "pads": T.i64_array([0, 0, 0, 0]),
                "dilations": T.i64_array([1, 1]), "group": IntegerAttr(2, 64),
            },
        )  # fmt: skip
    )
    f = b.fused(conv, kind="conv")
    with pytest.raises(UnsupportedError, match="group"):
        lower_conv(f, "k", Schedule("wgsl"))


# ------------------------------------------------------------------------- through the pass


@pytest.mark.parametrize(
    "options",
    [dict(target="wgsl"), dict(target="wgsl", shared=1, vec=4), dict(target="wasm", kstep=2)],
    ids=str,
)
def test_through_the_pass(options):
    """The FileCheck model (dense+GELU, Q.K^T, gemm, patch conv, a pinned matmul) through
    convert-nn-tensor-to-nn-loop and the interpreter's run_model: the kernel argument order,
    the fused op's own schedule and the launches agree with the lowering."""
    from pathlib import Path

    from xdsl.parser import Parser

    from nnjit.interp.nn_loop_eval import run_model
    from nnjit.passes.convert_nn_tensor_to_nn_loop import ConvertNNTensorToNNLoopPass
    from nnjit.registry import make_context

    path = Path(__file__).parent / "filecheck/passes/convert-nn-tensor-to-nn-loop-matmul.mlir"
    ctx = make_context()
    module = Parser(ctx, path.read_text()).parse_module()
    main = next(op for op in module.ops if getattr(op, "sym_name", None) is not None)
    shapes = [tuple(a.type.get_shape()) for a in main.body.block.args]
    ins = [rand(*s) for s in shapes]
    ConvertNNTensorToNNLoopPass(**options).apply(ctx, module)
    outs = run_model(module, ins, {})
    x, w, b, q, k, ga, gb, gc, img, pw, pb = f64(*ins)
    refs = [
        gelu_ref(x @ w + b),
        q @ np.swapaxes(k, -1, -2),
        0.5 * (ga @ gb.T) + 2.0 * gc,
        conv_ref(img, pw, pb, (4, 4), (0, 0, 0, 0), (1, 1)),
        x @ w,
    ]
    for got, ref in zip(outs, refs, strict=True):
        err = np.max(np.abs(got - ref)) / np.max(np.abs(ref))
        assert err <= RTOL


# ------------------------------------------------------------ packed weights (nn-tensor-pack-weights)


def _packed_body(m: int, k: int, n: int, nr: int, layout: str = "kn", epilogue: bool = False):
    """A fused matmul (or gemm with transB for layout "nk") whose B argument is packed in
    [n/nr, k, nr] panels and unpacked in the body as nn-tensor-pack-weights writes it."""
    b = Body([(m, k), (n // nr, k, nr)])
    x, p = b.args
    t = b.emit(T.TransposeOp.create(operands=[p], result_types=[tt((k, n // nr, nr))],
                                    properties={"perm": T.i64_array([1, 0, 2])}))  # fmt: skip
    kn = b.emit(T.ReshapeOp(t, tt((k, n))))
    if layout == "kn":
        r = b.matmul(x, kn)
    else:
        r = b.gemm(x, b.t(kn), tb=1)
    return b.fused(b.gelu(r) if epilogue else r)


PACKED = [
    Schedule("wasm"),  # 6x8 register tile = one panel: panel index and in-panel offset folded
    Schedule("wasm", reg=(2, 16), kstep=3),  # two panels per register tile
    Schedule("wasm", reg=(3, 4), tile=(3, 12)),  # tiles not panel-aligned: div/rem indices
    Schedule("wasm", vec=1, reg=(2, 3)),  # scalar loads from panels
    Schedule("wgsl"),
    Schedule("wgsl", shared=1),
]


@pytest.mark.parametrize("sched", PACKED, ids=sid)
@pytest.mark.parametrize("mkn", [(7, 5, 16), (13, 12, 24), (1, 3, 8)], ids=str)
@pytest.mark.parametrize("layout", ["kn", "nk"])
def test_packed_weight_operand(sched, mkn, layout):
    from nnjit.passes.nn_tensor_pack_weights import pack_array

    m, k, n = mkn
    f = _packed_body(m, k, n, 8, layout, epilogue=layout == "nk")
    x, w = rand(m, k), rand(k, n)
    stored = w if layout == "kn" else np.ascontiguousarray(w.T)
    ref = np.matmul(*f64(x, w))
    check(f, sched, [x, pack_array(stored, layout, 8)], gelu_ref(ref) if layout == "nk" else ref)


def test_packed_weight_loads_fold_to_panel_offsets():
    """With the default Wasm schedule (2x16) a register tile spans two 8-column panels: B
    loads index [p, k, 0], [p, k, 4], [p + 1, k, 0], [p + 1, k, 4] with one panel value p
    and constant in-panel offsets (no division or remainder by 8 at run time)."""
    f = _packed_body(12, 8, 32, 8)
    kernel = lower_matmul(f, "k", Schedule("wasm"))
    loads = [o for o in kernel.walk() if isinstance(o, L.LoadOp) and o.buffer.type.get_shape() == (4, 8, 8)]
    assert len(loads) == 4  # four vectors per k step (the k loop says unroll 2)
    p = loads[0].indices[0]
    assert loads[2].indices[0].owner.operands[0] is p  # p + 1
    assert sorted(o.indices[2].owner.value.value.data for o in loads) == [0, 0, 4, 4]
    divisors = [o.operands[1].owner.value.value.data for o in kernel.walk()
                if o.name == "arith.remsi" and isinstance(o.operands[1].owner, arith.ConstantOp)]  # fmt: skip
    assert 8 not in divisors


def test_packed_operand_used_transposed_is_rejected():
    b = Body([(3, 8), (1, 5, 8)])
    x, p = b.args
    t = b.emit(T.TransposeOp.create(operands=[p], result_types=[tt((5, 1, 8))],
                                    properties={"perm": T.i64_array([1, 0, 2])}))  # fmt: skip
    kn = b.emit(T.ReshapeOp(t, tt((5, 8))))
    f = b.fused(b.matmul(x, b.t(kn)))
    with pytest.raises(UnsupportedError, match="packed weight is used transposed"):
        lower_matmul(f, "k", Schedule("wasm"))


@pytest.mark.parametrize(
    "mkn,batch,tile",
    [((128, 768, 768), 1, (128, 16)), ((128, 3072, 768), 1, (128, 16)), ((128, 64, 128), 12, (128, 16)),
     ((1024, 3072, 768), 1, (148, 16)), ((5, 16, 8), 1, (2, 8)), ((40, 8, 16), 1, (4, 16))],
    ids=str,
)  # fmt: skip
def test_wasm_default_macro_tiles(mkn, batch, tile):
    """Default Wasm macro tile: 16 columns by as many rows as keep the A block (rows x K)
    within 2 MiB (evened out over M), fewer where that leaves under 16 tiles for the threads;
    2x16 register tile (clamped to N), k unrolled twice."""
    m, k, n = mkn
    sa, sb = ((batch, m, k), (batch, k, n)) if batch > 1 else ((m, k), (k, n))
    b = Body([sa, sb])
    f = b.fused(b.matmul(*b.args))
    sch = lower_matmul(f, "k", Schedule("wasm")).schedule.data
    assert tuple(sch["tile"].get_values()) == tile
    assert tuple(sch["reg"].get_values()) == (min(2, m), min(16, n))
    assert sch["kstep"].value.data == 2
