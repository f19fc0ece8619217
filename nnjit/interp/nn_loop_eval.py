"""Reference interpreter of nn_loop IR in numpy/Python (slow: tests use tiny shapes).

`run_kernel(kernel, buffers)` executes one `nn_loop.kernel` on numpy arrays (f32 buffers are
float32 arrays, i32 buffers int32 arrays), writing in place. Each kernel is translated to a
Python function once per call and run:

* "serial" and "workgroup.*" loops are Python loops; "thread" loops run their iterations
  chunk by chunk (3 simulated threads, the last chunk first, to shake out order bugs);
* the invocation loops of a wgsl kernel run SPMD: every invocation of a workgroup is a
  Python generator that yields at `nn_loop.barrier`; the workgroup's invocations advance in
  lockstep from barrier to barrier (all must reach the same barriers); "workgroup" memory
  is shared by the invocations of one workgroup, "private" memory belongs to one invocation
  (fresh scratch is filled with NaN / a poison integer so reads before writes show up);
* loads and stores are bounds-checked (a vector access must fit in the innermost dim);
* `unroll` is ignored (it does not change the meaning).

Values: index and i32 are Python ints (i32 arithmetic wraps), i1 is bool, f32 is
np.float32, vectors are numpy arrays of 4 lanes.

`run_model(module, inputs, weights)` runs a bufferized `func.func @main` (docs/ir.md "The
model"): it allocates outputs and intermediates (poisoned), makes views share storage, and
launches kernels in order; it returns the output buffers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from xdsl.dialects import arith, func
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    Float32Type,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    MemRefType,
    ModuleOp,
    VectorType,
)
from xdsl.ir import Attribute, Operation, SSAValue

from nnjit.dialects import nn_loop

POISON_I32 = -0x5A5A5A5A
"""What fresh i32 buffers and scratch hold before anything is written."""

_CMPI = {0: "==", 1: "!=", 2: "<", 3: "<=", 4: ">", 5: ">="}
_CMPI_U = {6: "<", 7: "<=", 8: ">", 9: ">="}


def np_dtype(elem: Attribute) -> type:
    if isinstance(elem, Float32Type):
        return np.float32
    if isinstance(elem, IntegerType) and elem.width.data == 32:
        return np.int32
    if isinstance(elem, IntegerType) and elem.width.data == 1:
        return np.bool_
    if isinstance(elem, IntegerType) and elem.width.data in (8, 16):
        return np.int8 if elem.width.data == 8 else np.int16
    raise NotImplementedError(f"nn_loop_eval: no numpy type for {elem}")


def _poisoned(shape: Sequence[int], elem: Attribute) -> np.ndarray:
    if isinstance(elem, VectorType):
        shape = (*shape, *elem.get_shape())
        elem = elem.get_element_type()
    dt = np_dtype(elem)
    if dt is np.float32:
        return np.full(shape, np.nan, np.float32)
    if dt is np.int32:
        return np.full(shape, POISON_I32, np.int32)
    return np.zeros(shape, np.bool_)


# ------------------------------------------------------------------------ runtime helpers


def _w32(x: int) -> int:
    return ((x + 0x80000000) & 0xFFFFFFFF) - 0x80000000


def _divs(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a64, b64 = np.asarray(a, np.int64), np.asarray(b, np.int64)
        q = np.abs(a64) // np.abs(b64)
        return (np.sign(a64) * np.sign(b64) * q).astype(np.int32)
    if b == 0:
        raise ZeroDivisionError("nn_loop_eval: integer division by zero")
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _rems(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (np.asarray(a, np.int64) - _divs(a, b).astype(np.int64) * np.asarray(b, np.int64)).astype(np.int32)
    return a - _divs(a, b) * b


def _check(buf: np.ndarray, idx: tuple, width: int = 1) -> None:
    shape = buf.shape
    if len(idx) != len(shape):
        raise IndexError(f"nn_loop_eval: {len(idx)} indices for a rank-{len(shape)} buffer")
    for k, (i, n) in enumerate(zip(idx, shape)):
        lim = n - width + 1 if k == len(shape) - 1 else n
        if not 0 <= i < lim:
            raise IndexError(
                f"nn_loop_eval: index {list(idx)} (width {width}) out of bounds of {list(shape)}"
            )


def _ld(buf: np.ndarray, idx: tuple):
    _check(buf, idx)
    v = buf[idx]
    if buf.dtype == np.int32:
        return int(v)
    if buf.dtype == np.bool_:
        return bool(v)
    return v


def _ldv(buf: np.ndarray, idx: tuple, width: int):
    _check(buf, idx, width)
    return buf[(*idx[:-1], slice(idx[-1], idx[-1] + width))].copy()


def _st(buf: np.ndarray, idx: tuple, v) -> None:
    _check(buf, idx)
    buf[idx] = v


def _dot_i16x2(a: np.ndarray, b: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """nn_loop.dot_i16x2: acc + the products of the 16-bit halves of each i32 lane."""
    x = np.asarray(a, np.int32).view(np.int16).astype(np.int64).reshape(4, 2)
    b = np.asarray(b)  # (i32 lanes of two halves, or the 8 i16 lanes of a widened load)
    y = (b if b.size == 8 else b.astype(np.int32).view(np.int16)).astype(np.int64).reshape(4, 2)
    return (np.asarray(acc, np.int64) + (x * y).sum(axis=1)).astype(np.int32)


def _pair_splat(lo, hi) -> np.ndarray:
    """nn_loop.pair_splat: sat16(lo) | sat16(hi) << 16 in 4 lanes."""
    pair = np.clip(np.array([int(lo), int(hi)], np.int64), -32768, 32767).astype(np.int16)
    return np.full(4, pair.view(np.int32)[0], np.int32)


def _quad_splat(c0, c1, c2, c3) -> np.ndarray:
    """nn_loop.quad_splat: the four values + 256, saturated to u16, as halves, twice."""
    q = np.clip(np.array([int(c) + 256 for c in (c0, c1, c2, c3)], np.int64), 0, 65535)
    return np.tile(q.astype(np.uint16).view(np.int32), 2)


def _byte_plane(w, shift: int) -> np.ndarray:
    """nn_loop.byte_plane: the 8 u16 halves as bytes (v & 127, or sat_u8(v >> 7)), twice."""
    v = np.asarray(w, np.int32).view(np.uint16).astype(np.int64)
    t = v & 127 if shift == 0 else np.minimum(v >> 7, 255)
    return np.tile(t.astype(np.uint8), 2).view(np.int32).copy()


def _dot_i8x4(a, b, acc) -> np.ndarray:
    """nn_loop.dot_i8x4: acc + a's signed bytes times b's (unsigned) bytes, 4 per lane."""
    x = np.asarray(a, np.int32).view(np.int8).astype(np.int64).reshape(4, 4)
    y = np.asarray(b, np.int32).view(np.uint8).astype(np.int64).reshape(4, 4)
    return ((np.asarray(acc, np.int64) + (x * y).sum(axis=1) + 2**31) % 2**32 - 2**31).astype(np.int32)


def _stv(buf: np.ndarray, idx: tuple, v, width: int) -> None:
    _check(buf, idx, width)
    buf[(*idx[:-1], slice(idx[-1], idx[-1] + width))] = v


def _pld(buf: np.ndarray, idx: tuple):
    """Load from scratch whose element may be a vector (trailing lane dim)."""
    v = buf[idx]
    if isinstance(v, np.ndarray):
        return v.copy()
    if buf.dtype == np.int32:
        return int(v)
    if buf.dtype == np.bool_:
        return bool(v)
    return v


def _pcheck(buf: np.ndarray, idx: tuple, rank: int) -> None:
    for i, n in zip(idx, buf.shape[:rank]):
        if not 0 <= i < n:
            raise IndexError(f"nn_loop_eval: scratch index {list(idx)} out of bounds")


def _cmpf(pred: int, a, b):
    with np.errstate(invalid="ignore"):
        nan = np.isnan(a) | np.isnan(b)
        r = {
            0: np.zeros_like(nan), 1: ~nan & (a == b), 2: ~nan & (a > b), 3: ~nan & (a >= b),
            4: ~nan & (a < b), 5: ~nan & (a <= b), 6: ~nan & (a != b), 7: ~nan,
            8: nan | (a == b), 9: nan | (a > b), 10: nan | (a >= b), 11: nan | (a < b),
            12: nan | (a <= b), 13: nan | (a != b), 14: nan, 15: np.ones_like(nan),
        }[pred]  # fmt: skip
    return bool(r) if np.ndim(r) == 0 else np.asarray(r)


def _select(c, a, b):
    if isinstance(c, np.ndarray):
        return np.where(c, a, b)
    return a if c else b


def _fptosi(a):
    if isinstance(a, np.ndarray):
        x = np.nan_to_num(np.trunc(a.astype(np.float64)), nan=0.0)
        return np.clip(x, -(2**31), 2**31 - 1).astype(np.int32)
    x = float(a)
    if x != x:
        return 0
    return int(max(-(2.0**31), min(2.0**31 - 1, math.trunc(x) if math.isfinite(x) else x)))


def _bitcast(a, to_float: bool):
    """arith.bitcast between f32 and i32 (scalars: numpy f32 / Python int; vectors: arrays)."""
    if isinstance(a, np.ndarray):
        src, dst = (np.int32, np.float32) if to_float else (np.float32, np.int32)
        return a.astype(src).view(dst)
    if to_float:
        return np.array([_w32(int(a))], np.int32).view(np.float32)[0]
    return int(np.array([a], np.float32).view(np.int32)[0])


def _sitofp(a):
    if isinstance(a, np.ndarray):
        return a.astype(np.float32)
    return np.float32(a)


def _erf(a):
    if isinstance(a, np.ndarray):
        return np.array([math.erf(float(x)) for x in a], np.float32)
    return np.float32(math.erf(float(a)))


def _rsqrt(a):
    return np.float32(1.0) / np.sqrt(a)


def _f32(x):
    """Rounds a numpy result back to f32 (scalars stay numpy scalars)."""
    if isinstance(x, np.ndarray):
        return x.astype(np.float32)
    return np.float32(x)


def _thread_chunks(lb: int, ub: int, step: int, threads: int = 3):
    its = list(range(lb, ub, step))
    n = len(its)
    per = -(-n // threads) if n else 0
    chunks = [its[t * per : (t + 1) * per] for t in range(threads)]
    for chunk in reversed(chunks):
        yield from chunk


def _run_spmd(gens: list) -> None:
    """Advances the invocations of one workgroup from barrier to barrier."""
    while True:
        done = 0
        for g in gens:
            try:
                next(g)
            except StopIteration:
                done += 1
        if done == len(gens):
            return
        if done:
            raise RuntimeError(
                "nn_loop_eval: some invocations finished while others wait at a barrier "
                "(barrier in non-uniform control flow)"
            )


_RUNTIME = {
    "np": np, "_w32": _w32, "_divs": _divs, "_rems": _rems, "_ld": _ld, "_ldv": _ldv,
    "_st": _st, "_stv": _stv, "_dot_i16x2": _dot_i16x2, "_pair_splat": _pair_splat, "_quad_splat": _quad_splat, "_byte_plane": _byte_plane, "_dot_i8x4": _dot_i8x4, "_pld": _pld, "_pcheck": _pcheck, "_cmpf": _cmpf,
    "_select": _select, "_bitcast": _bitcast, "_fptosi": _fptosi, "_sitofp": _sitofp,
    "_erf": _erf, "_rsqrt": _rsqrt, "_f32": _f32, "_thread_chunks": _thread_chunks, "_run_spmd": _run_spmd,
    "_poisoned": _poisoned, "math": math,
}  # fmt: skip


# ------------------------------------------------------------------------ code generation


class _Gen:
    """Translates one kernel into the source of a Python function."""

    def __init__(self, kernel: nn_loop.KernelOp):
        self.kernel = kernel
        self.lines: list[str] = []
        self.names: dict[SSAValue, str] = {}
        self.consts: list[Any] = []
        self.depth = 1
        self.in_spmd = False
        self.spmd_count = 0

    def name(self, v: SSAValue) -> str:
        n = self.names.get(v)
        if n is None:
            n = f"v{len(self.names)}"
            self.names[v] = n
        return n

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.depth + line)

    def const(self, value: Any) -> str:
        self.consts.append(value)
        return f"_c[{len(self.consts) - 1}]"

    def generate(self) -> str:
        args = [self.name(a) for a in self.kernel.body.block.args]
        self.lines.append(f"def _kernel({', '.join(args)}):")
        self.emit("pass")
        self.block(self.kernel.body.block.ops)
        return "\n".join(self.lines)

    def block(self, ops) -> None:
        for op in ops:
            self.op(op)

    # -- structure --------------------------------------------------------------------

    def op(self, op: Operation) -> None:
        if isinstance(op, nn_loop.YieldOp):
            return
        if isinstance(op, nn_loop.ForOp):
            return self.for_(op)
        if isinstance(op, nn_loop.IfOp):
            self.emit(f"if {self.name(op.cond)}:")
            self.depth += 1
            self.emit("pass")
            self.block(op.body.block.ops)
            self.depth -= 1
            return
        if isinstance(op, nn_loop.BarrierOp):
            if not self.in_spmd:
                raise ValueError("nn_loop_eval: nn_loop.barrier outside the invocation loops")
            self.emit("yield")
            return
        self.simple(op)

    def for_(self, op: nn_loop.ForOp) -> None:
        lb, ub, st = op.lb.value.data, op.ub.value.data, op.step.value.data
        m = op.map.data
        if m.startswith("invocation.") and not self.in_spmd:
            return self.spmd(op)
        iv = self.name(op.iv)
        if m == "thread":
            self.emit(f"for {iv} in _thread_chunks({lb}, {ub}, {st}):")
        else:
            self.emit(f"for {iv} in range({lb}, {ub}, {st}):")
        self.depth += 1
        self.emit("pass")
        self.block(op.body.block.ops)
        self.depth -= 1

    def spmd(self, outer: nn_loop.ForOp) -> None:
        """The perfect nest of invocation loops starting at `outer`: one generator per
        invocation, run in lockstep by _run_spmd."""
        loops = [outer]
        pre: list[list[Operation]] = []
        while True:
            body = [o for o in loops[-1].body.block.ops if not isinstance(o, nn_loop.YieldOp)]
            inner = [
                o for o in body
                if isinstance(o, nn_loop.ForOp) and o.map.data.startswith("invocation.")
            ]  # fmt: skip
            if len(inner) == 1 and body[-1] is inner[0]:
                pre.append(body[:-1])
                loops.append(inner[0])
                continue
            if inner:
                raise ValueError("nn_loop_eval: invocation loops must be perfectly nested")
            pre.append(body)
            break
        k = self.spmd_count
        self.spmd_count += 1
        ivs = [self.name(lp.iv) for lp in loops]
        self.emit(f"_wg{k} = {{}}")
        self.emit(f"def _inv{k}({', '.join(ivs)}):")
        self.depth += 1
        self.emit("if False:")
        self.emit("    yield")
        self.in_spmd = True
        self.wg_name = f"_wg{k}"
        for ops in pre:
            self.block(ops)
        self.in_spmd = False
        self.depth -= 1
        gens = f"_inv{k}({', '.join(ivs)})"
        for lp, iv in zip(loops, ivs):
            lb, ub, st = lp.lb.value.data, lp.ub.value.data, lp.step.value.data
            gens += f" for {iv} in range({lb}, {ub}, {st})"
        self.emit(f"_run_spmd([{gens}])")

    # -- ops --------------------------------------------------------------------------

    def simple(self, op: Operation) -> None:
        n = self.name
        ops = [n(o) for o in op.operands]
        res = n(op.results[0]) if op.results else None
        rt = op.results[0].type if op.results else None
        expr = self.expr(op, ops, rt)
        if res is None:
            self.emit(expr)
        else:
            self.emit(f"{res} = {expr}")

    def expr(self, op: Operation, a: list[str], rt: Attribute | None) -> str:
        if isinstance(op, arith.ConstantOp):
            return self.const(_constant(op.value, rt))
        if isinstance(op, nn_loop.LoadOp):
            idx = _tuple(a[1:])
            scalar_elems = not isinstance(op.buffer.type.get_element_type(), VectorType)  # type: ignore[union-attr]
            if memory_space(op.buffer) != nn_loop.MemorySpace.GLOBAL and not (isinstance(rt, VectorType) and scalar_elems):
                rank = len(op.buffer.type.get_shape())  # type: ignore[union-attr]
                return f"(_pcheck({a[0]}, {idx}, {rank}), _pld({a[0]}, {idx}))[1]"
            if isinstance(rt, VectorType):
                return f"_ldv({a[0]}, {idx}, {rt.get_shape()[0]})"
            return f"_ld({a[0]}, {idx})"
        if isinstance(op, nn_loop.StoreOp):
            idx = _tuple(a[2:])
            vt = op.value.type
            scalar_elems = not isinstance(op.buffer.type.get_element_type(), VectorType)  # type: ignore[union-attr]
            if memory_space(op.buffer) != nn_loop.MemorySpace.GLOBAL and not (isinstance(vt, VectorType) and scalar_elems):
                rank = len(op.buffer.type.get_shape())  # type: ignore[union-attr]
                return f"_pcheck({a[1]}, {idx}, {rank}); {a[1]}[{idx}] = {a[0]}"
            if isinstance(vt, VectorType):
                return f"_stv({a[1]}, {idx}, {a[0]}, {vt.get_shape()[0]})"
            return f"_st({a[1]}, {idx}, {a[0]})"
        if isinstance(op, nn_loop.AllocOp):
            t = op.result.type
            assert isinstance(t, MemRefType)
            shape = tuple(t.get_shape())
            elem = self.const(t.get_element_type())
            if memory_space(op.result) == nn_loop.MemorySpace.WORKGROUP:
                if not self.in_spmd:
                    raise ValueError("nn_loop_eval: workgroup memory outside the invocation loops")
                key = self.name(op.result)
                return (
                    f"{self.wg_name}.get({key!r}) if {key!r} in {self.wg_name} else "
                    f"{self.wg_name}.setdefault({key!r}, _poisoned({shape}, {elem}))"
                )
            return f"_poisoned({shape}, {elem})"
        if isinstance(op, nn_loop.SplatOp):
            t = rt
            assert isinstance(t, VectorType)
            dt = np_dtype(t.get_element_type()).__name__
            return f"np.full({t.get_shape()[0]}, {a[0]}, np.{dt})"
        if isinstance(op, nn_loop.ExtractOp):
            lane = op.lane.value.data
            if rt == Float32Type():
                return f"{a[0]}[{lane}]"
            if rt == IntegerType(1):
                return f"bool({a[0]}[{lane}])"
            return f"int({a[0]}[{lane}])"
        if isinstance(op, nn_loop.DotI16x2Op):
            return f"_dot_i16x2({a[0]}, {a[1]}, {a[2]})"
        if isinstance(op, nn_loop.PairSplatOp):
            return f"_pair_splat({a[0]}, {a[1]})"
        if isinstance(op, nn_loop.QuadSplatOp):
            return f"_quad_splat({a[0]}, {a[1]}, {a[2]}, {a[3]})"
        if isinstance(op, nn_loop.BytePlaneOp):
            return f"_byte_plane({a[0]}, {op.shift.value.data})"
        if isinstance(op, nn_loop.DotI8x4Op):
            return f"_dot_i8x4({a[0]}, {a[1]}, {a[2]})"
        if isinstance(op, nn_loop.FPToSIOp):
            return f"_fptosi({a[0]})"
        if isinstance(op, nn_loop.SIToFPOp):
            return f"_sitofp({a[0]})"
        if isinstance(op, nn_loop.WidenHalfOp):
            h = op.half.value.data
            return f"np.asarray({a[0]}[{4 * h}:{4 * h + 4}], np.float32)"
        if isinstance(op, nn_loop.ReduceLanesOp):
            k = op.kind.data
            conv = "np.float32" if rt == Float32Type() else "int"
            if k == "add":
                if rt == Float32Type():
                    return f"np.float32(np.sum({a[0]}, dtype=np.float32))"
                return f"_w32(int(np.sum({a[0]}, dtype=np.int64)))"
            return f"{conv}(np.max({a[0]}))"
        return self.arith(op, a, rt)

    def arith(self, op: Operation, a: list[str], rt: Attribute | None) -> str:
        is_vec = isinstance(rt, VectorType)
        scalar_rt = rt.get_element_type() if isinstance(rt, VectorType) else rt
        i32 = scalar_rt == IntegerType(32) and not is_vec
        name = op.name
        binf = {"arith.addf": "+", "arith.subf": "-", "arith.mulf": "*", "arith.divf": "/"}
        if name in binf:
            return f"_f32({a[0]} {binf[name]} {a[1]})"
        bini = {"arith.addi": "+", "arith.subi": "-", "arith.muli": "*"}
        if name in bini:
            e = f"{a[0]} {bini[name]} {a[1]}"
            return f"_w32({e})" if i32 else e
        if name in ("arith.andi", "arith.ori", "arith.xori"):
            sym = {"arith.andi": "&", "arith.ori": "|", "arith.xori": "^"}[name]
            return f"({a[0]} {sym} {a[1]})"
        if name == "arith.shli" and not is_vec:  # (Wasm's i32.shl: the amount mod 32)
            return f"_w32({a[0]} << ({a[1]} & 31))"
        if name == "arith.divsi":
            e = f"_divs({a[0]}, {a[1]})"
            return f"_w32({e})" if i32 else e
        if name == "arith.remsi":
            return f"_rems({a[0]}, {a[1]})"
        if name in ("arith.minsi", "arith.maxsi"):
            fn = "min" if name == "arith.minsi" else "max"
            return f"np.{fn}imum({a[0]}, {a[1]})" if is_vec else f"{fn}({a[0]}, {a[1]})"
        if name in ("arith.maximumf", "arith.minimumf"):
            fn = "maximum" if name == "arith.maximumf" else "minimum"
            return f"np.{fn}({a[0]}, {a[1]})"
        if name == "arith.negf":
            return f"(-{a[0]})"
        if name == "arith.cmpi":
            p = op.predicate.value.data  # type: ignore[attr-defined]
            if p in _CMPI:
                e = f"({a[0]} {_CMPI[p]} {a[1]})"
            else:
                e = f"(({a[0]}) & 0xFFFFFFFF {_CMPI_U[p]} ({a[1]}) & 0xFFFFFFFF)"
            return e
        if name == "arith.cmpf":
            return f"_cmpf({op.predicate.value.data}, {a[0]}, {a[1]})"  # type: ignore[attr-defined]
        if name == "arith.select":
            return f"_select({a[0]}, {a[1]}, {a[2]})"
        if name == "arith.sitofp":
            return f"_sitofp({a[0]})"
        if name == "arith.bitcast":
            return f"_bitcast({a[0]}, {scalar_rt == Float32Type()})"
        if name == "arith.fptosi":
            return f"_fptosi({a[0]})"
        if name == "arith.extui":
            return f"int({a[0]})" if not is_vec else f"{a[0]}.astype(np.int32)"
        if name == "arith.trunci":
            return f"bool({a[0]} & 1)" if not is_vec else f"({a[0]} & 1).astype(np.bool_)"
        if name == "arith.index_cast":
            return f"_w32({a[0]})" if i32 else a[0]
        mathf = {
            "math.exp": "np.exp", "math.tanh": "np.tanh", "math.log": "np.log",
            "math.sin": "np.sin", "math.cos": "np.cos",
            "math.sqrt": "np.sqrt", "math.absf": "np.abs", "math.erf": "_erf",
            "math.rsqrt": "_rsqrt", "math.powf": "np.power", "math.roundeven": "np.rint",
        }  # fmt: skip
        if name in mathf:
            return f"_f32({mathf[name]}({', '.join(a)}))"
        if name == "math.fma":
            return f"_f32({a[0]} * {a[1]} + {a[2]})"
        raise NotImplementedError(f"nn_loop_eval: {name} is not supported")


def memory_space(v: SSAValue) -> nn_loop.MemorySpace | None:
    t = v.type
    assert isinstance(t, MemRefType)
    return nn_loop.memory_space(t)


def _tuple(items: list[str]) -> str:
    if not items:
        return "()"
    return "(" + ", ".join(items) + ",)"


def _constant(value: Attribute, rt: Attribute | None) -> Any:
    if isinstance(value, FloatAttr):
        return np.float32(value.value.data)
    if isinstance(value, IntegerAttr):
        v = int(value.value.data)
        if isinstance(value.type, IntegerType) and value.type.width.data == 1:
            return v != 0
        return v
    if isinstance(value, DenseIntOrFPElementsAttr):
        elem = value.get_element_type()
        vals = value.get_values()
        if isinstance(elem, IntegerType) and elem.width.data == 1:
            arr = np.array([v != 0 for v in vals], np.bool_)
        elif isinstance(elem, IndexType):
            arr = np.array(vals, np.int64)
        else:
            arr = np.array(vals, np_dtype(elem))
        shape = value.get_shape()
        if arr.size == 1 and np.prod(shape) != 1:
            arr = np.full(shape, arr[0], arr.dtype)
        return arr.reshape(shape)
    raise NotImplementedError(f"nn_loop_eval: constant {value}")


def compile_kernel(kernel: nn_loop.KernelOp):
    """The Python function (taking the buffers) that runs `kernel`, and its source."""
    gen = _Gen(kernel)
    src = gen.generate()
    env = dict(_RUNTIME)
    env["_c"] = gen.consts
    exec(compile(src, f"<nn_loop kernel @{kernel.sym_name.data}>", "exec"), env)
    return env["_kernel"], src


def run_kernel(kernel: nn_loop.KernelOp, buffers: list[np.ndarray]) -> None:
    """Executes `kernel` on `buffers` (one numpy array per argument, in order), in place."""
    args = kernel.body.block.args
    if len(buffers) != len(args):
        raise ValueError(
            f"kernel @{kernel.sym_name.data} takes {len(args)} buffers, got {len(buffers)}"
        )
    for k, (a, buf) in enumerate(zip(args, buffers)):
        t = a.type
        assert isinstance(t, MemRefType)
        if tuple(buf.shape) != tuple(t.get_shape()) or buf.dtype != np_dtype(t.get_element_type()):
            raise ValueError(
                f"kernel @{kernel.sym_name.data} argument {k}: expected {t}, got "
                f"{buf.dtype}{list(buf.shape)}"
            )
    fn, _ = compile_kernel(kernel)
    with np.errstate(all="ignore"):
        fn(*buffers)


# ----------------------------------------------------------------------------------- model


def _to_storage(x: np.ndarray, t: MemRefType) -> np.ndarray:
    dt = np_dtype(t.get_element_type())
    arr = np.asarray(x)
    if tuple(arr.shape) != tuple(t.get_shape()):
        arr = arr.reshape(t.get_shape()) if arr.size == math.prod(t.get_shape()) else arr
    if tuple(arr.shape) != tuple(t.get_shape()):
        raise ValueError(f"expected shape {list(t.get_shape())}, got {list(arr.shape)}")
    return np.array(arr, dtype=dt, order="C", copy=True)


def find_main(module: ModuleOp) -> func.FuncOp:
    for op in module.ops:
        if isinstance(op, func.FuncOp) and op.sym_name.data == "main":
            return op
    raise ValueError("no func.func @main in the module")


def run_model(
    module: ModuleOp, inputs: list[np.ndarray], weights: dict[str, np.ndarray]
) -> list[np.ndarray]:
    """Runs a bufferized @main: returns its output buffers (f32 as float32, i32 storage of
    i64/bool outputs as int32)."""
    main = find_main(module)
    kernels = {
        op.sym_name.data: op for op in module.ops if isinstance(op, nn_loop.KernelOp)
    }
    block = main.body.block
    n_out_attr = main.attributes.get("nnjit.num_outputs")
    n_out = int(n_out_attr.value.data) if isinstance(n_out_attr, IntegerAttr) else 0
    args = list(block.args)
    n_in = len(args) - n_out
    if len(inputs) != n_in:
        raise ValueError(f"@main takes {n_in} inputs, got {len(inputs)}")
    env: dict[SSAValue, np.ndarray] = {}
    for a, x in zip(args[:n_in], inputs):
        assert isinstance(a.type, MemRefType)
        env[a] = _to_storage(x, a.type)
    outputs = []
    for a in args[n_in:]:
        assert isinstance(a.type, MemRefType)
        env[a] = _poisoned(a.type.get_shape(), a.type.get_element_type())
        outputs.append(env[a])
    for op in block.ops:
        if isinstance(op, nn_loop.WeightOp):
            key = op.key.data
            if key not in weights:
                raise KeyError(f"weight '{key}' missing")
            env[op.result] = _to_storage(weights[key], op.result.type)  # type: ignore[arg-type]
        elif isinstance(op, nn_loop.ConstantOp):
            t = op.result.type
            assert isinstance(t, MemRefType)
            env[op.result] = _to_storage(_constant(op.value, t), t)
        elif isinstance(op, nn_loop.BufferOp):
            t = op.result.type
            assert isinstance(t, MemRefType)
            env[op.result] = _poisoned(t.get_shape(), t.get_element_type())
        elif isinstance(op, nn_loop.ViewOp):
            t = op.result.type
            assert isinstance(t, MemRefType)
            src = env[op.input]
            view = src.reshape(t.get_shape())
            assert np.shares_memory(view, src) or src.size == 0
            env[op.result] = view
        elif isinstance(op, nn_loop.LaunchOp):
            name = op.callee.root_reference.data
            kernel = kernels.get(name)
            if kernel is None:
                raise ValueError(f"@main launches @{name}, which is not an nn_loop.kernel here")
            run_kernel(kernel, [env[a] for a in op.args])
        elif isinstance(op, func.ReturnOp):
            break
        else:
            raise NotImplementedError(f"nn_loop_eval: {op.name} in @main")
    return outputs


__all__ = ["run_kernel", "run_model", "compile_kernel", "np_dtype", "POISON_I32"]
