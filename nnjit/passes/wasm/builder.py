"""Building nn_wasm function bodies: `Builder` appends instructions to a block (stack order),
`Locals` names a function's params and locals (through a NameSupply)."""

from __future__ import annotations

import functools
import math

from xdsl.dialects.builtin import FloatAttr
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue

from nnjit.backends.names import NameSupply
from nnjit.dialects import nn_wasm as W
from nnjit.ir.fastir import append as _append
from nnjit.ir.fastir import new_op as _new_op
from nnjit.ir.fastir import type_of

i32, f32, v128 = W.i32, W.f32, W.v128


class Builder:
    """Appends nn_wasm instructions to a block; each call returns the pushed value (if any).

    Python evaluates call arguments left to right, so nested calls such as
    `b.op("f32.add", b.get("x", f32), b.f32c(1.0))` push in stack order."""

    def __init__(self, block: Block):
        self.block = block

    def add(self, op: Operation) -> SSAValue | None:
        _append(self.block, op)
        res = op.results
        if res:
            (r,) = res  # (unpacking: SSAValues' indexing is a Python call)
            return r
        return None

    def op(self, mnemonic: str, *operands: SSAValue) -> SSAValue:
        return self.add(_instr(mnemonic, operands))  # type: ignore[return-value]

    def stmt(self, mnemonic: str, *operands: SSAValue) -> None:
        self.add(_instr(mnemonic, operands))

    def i32c(self, v: int) -> SSAValue:
        v = ((v + 2**31) % 2**32) - 2**31
        op = _new_op(W.I32ConstOp, (), (i32,), {"value": W._i64(v)})
        _append(self.block, op)
        (r,) = op.results
        return r

    def f32c(self, v: float) -> SSAValue:
        op = _new_op(W.F32ConstOp, (), (f32,), {"value": _f32_attr(v, math.copysign(1.0, v))})
        _append(self.block, op)
        (r,) = op.results
        return r

    def v128c(self, shape: str, lanes) -> SSAValue:
        return self.add(W.V128ConstOp(shape, lanes))  # type: ignore[return-value]

    def get(self, name: str, t: Attribute) -> SSAValue:
        op = _new_op(W.LocalGetOp, (), (t,), {"local": W._str(name)})
        _append(self.block, op)
        (r,) = op.results
        return r

    def set(self, name: str, v: SSAValue) -> None:
        _append(self.block, _new_op(W.LocalSetOp, (v,), (), {"local": W._str(name)}))

    def tee(self, name: str, v: SSAValue) -> SSAValue:
        op = _new_op(W.LocalTeeOp, (v,), (type_of(v),), {"local": W._str(name)})
        _append(self.block, op)
        (r,) = op.results
        return r

    def load(self, mnemonic: str, addr: SSAValue, offset: int = 0, align: int | None = None):
        cls, t = _LOADS[mnemonic]
        op = _new_op(cls, (addr,), (t,), W._memprops(offset, align))
        _append(self.block, op)
        (r,) = op.results
        return r

    def store(self, mnemonic: str, addr: SSAValue, v: SSAValue, offset=0, align=None) -> None:
        op = _new_op(W.INSTRUCTIONS[mnemonic], (addr, v), (), W._memprops(offset, align))
        _append(self.block, op)

    def lane(self, mnemonic: str, *args) -> SSAValue:
        """`{shape}.extract_lane vec lane` or `{shape}.replace_lane vec value lane`."""
        *operands, lane = args
        cls, t = _LANE_OPS[mnemonic]
        op = _new_op(cls, operands, (t,), {"lane": W._i64(lane)})
        _append(self.block, op)
        (r,) = op.results
        return r

    def select(self, a: SSAValue, b: SSAValue, c: SSAValue) -> SSAValue:
        return self.add(W.SelectOp(a, b, c))  # type: ignore[return-value]

    def call(self, callee: str, args: list[SSAValue], results: list[Attribute]):
        return self.add(W.CallOp(callee, args, results))

    def ret(self, values: list[SSAValue] = ()) -> None:  # type: ignore[assignment]
        self.add(W.ReturnOp(values))

    def nest(self, kind: str, label: str, cond: SSAValue | None = None) -> Builder:
        body = Region(Block())
        if kind == "if":
            assert cond is not None
            self.add(W.IfOp(label, cond, body))
        elif kind == "loop":
            self.add(W.LoopOp(label, body))
        else:
            self.add(W.BlockOp(label, body))
        return Builder(body.block)


# mnemonic -> (op class, result type) of the loads and lane ops the builder makes directly
_LOADS = {m: (W.INSTRUCTIONS[m], t) for m, t in (
    ("i32.load", i32), ("f32.load", f32), ("v128.load", v128), ("v128.load32_splat", v128),
    ("v128.load64_splat", v128), ("v128.load8x8_s", v128))}  # fmt: skip
_LANE_OPS = {m: (W.INSTRUCTIONS[m], t) for m, t in (
    ("f32x4.extract_lane", f32), ("i32x4.extract_lane", i32),
    ("f32x4.replace_lane", v128), ("i32x4.replace_lane", v128))}  # fmt: skip


@functools.lru_cache(maxsize=4096)
def _f32_attr(v: float, sign: float) -> FloatAttr:
    """A shared f32 FloatAttr of v (`sign`: copysign(1, v), so that 0.0 and -0.0, equal as
    keys, get attributes of their own)."""
    return FloatAttr(v, f32)


def _instr(mnemonic: str, operands: tuple[SSAValue, ...]) -> Operation:
    """W.INSTRUCTIONS[mnemonic](*operands), built directly for the fixed-type instructions."""
    cls = W.INSTRUCTIONS[mnemonic]
    sig = W.SIGNATURES.get(cls)
    if sig is None or len(operands) != sig[0]:
        return cls(*operands)
    return _new_op(cls, operands, sig[1])


class Locals:
    """The params and locals of one function, named through a NameSupply."""

    def __init__(self, names: NameSupply | None = None):
        self.names = names if names is not None else NameSupply()
        self.params: list[tuple[str, Attribute]] = []
        self.locals: list[tuple[str, Attribute]] = []

    def param(self, hint: str, t: Attribute) -> str:
        n = self.names.fresh(hint)
        self.params.append((n, t))
        return n

    def new(self, hint: str, t: Attribute) -> str:
        n = self.names.fresh(hint)
        self.locals.append((n, t))
        return n

    def label(self, hint: str) -> str:
        return self.names.fresh(hint)


