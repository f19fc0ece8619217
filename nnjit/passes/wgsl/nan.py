"""NaN as onnxruntime propagates it, although WGSL leaves it to the driver (lavapipe's max and
clamp drop it, SwiftShader's exp(NaN) is inf): tests on the bits (`x != x` may be folded away
by a driver), a quiet NaN built from a value's bits (WGSL has no NaN literal).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from xdsl.ir import SSAValue

from nnjit.dialects import nn_wgsl as w
from nnjit.passes.wgsl.typefacts import unsigned_type

if TYPE_CHECKING:
    from nnjit.passes.wgsl.emitter import Emitter


def is_nan(cx: Emitter, a: SSAValue) -> SSAValue:
    """a is NaN (per lane), from its bits: exponent all ones, mantissa not zero."""
    ut = unsigned_type(a.type)
    bits = cx.binary("&", cx.bitcast(a, ut), cx.const(0x7FFFFFFF, ut))
    return cx.binary(">", bits, cx.const(0x7F800000, ut))


def keep_nan(
    cx: Emitter, r: SSAValue, args: Sequence[SSAValue], hint: SSAValue | None = None
) -> SSAValue:
    """r, or the first NaN among `args` (constants are not NaN: not tested)."""
    tested = [a for n, a in enumerate(args) if not is_const(cx, a) and a not in args[:n]]
    for n, a in enumerate(reversed(tested)):
        r = cx.call("select", [r, a, is_nan(cx, a)], hint if n == len(tested) - 1 else None)
    return r


def is_finite(cx: Emitter, a: SSAValue) -> SSAValue:
    """a is neither infinite nor NaN (per lane), from its bits."""
    ut = unsigned_type(a.type)
    bits = cx.binary("&", cx.bitcast(a, ut), cx.const(0x7FFFFFFF, ut))
    return cx.binary("<", bits, cx.const(0x7F800000, ut))


def nan(cx: Emitter, like: SSAValue) -> SSAValue:
    """A quiet NaN of like's type: like's bits with exponent and quiet bit set (WGSL has no
    NaN literal, and Tint rejects a NaN constant expression, so it depends on `like`)."""
    ut = unsigned_type(like.type)
    return cx.bitcast(cx.binary("|", cx.bitcast(like, ut), cx.const(0x7FC00000, ut)), like.type)


def inf(cx: Emitter, like: SSAValue) -> SSAValue:
    """+inf of like's type, built at run time from like's bits (Tint rejects an infinite
    constant expression, as it does NaN)."""
    ut = unsigned_type(like.type)
    bits = cx.binary("&", cx.bitcast(like, ut), cx.const(0, ut))
    return cx.bitcast(cx.binary("|", bits, cx.const(0x7F800000, ut)), like.type)


def is_const(cx: Emitter, v: SSAValue) -> bool:
    if cx.cval(v) is not None:
        return True
    o = v.owner
    return isinstance(o, w.ConstructOp) and all(cx.cval(x) is not None for x in o.args)
