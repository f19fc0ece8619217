"""The one table of the WGSL conversion: each nn_loop / arith / math op class -> the pattern
that converts it (a function of the shared `Emitter` and the op, in the `patterns_*` modules).
An op class missing here cannot be converted (nn_loop.yield needs nothing)."""

from __future__ import annotations

from xdsl.dialects import arith, math

from nnjit.dialects import nn_loop
from nnjit.passes.wgsl.emitter import Pattern
from nnjit.passes.wgsl.patterns_arith import (
    FLOAT_BINARY,
    INT_BINARY,
    convert_cast,
    convert_cmpf,
    convert_cmpi,
    convert_constant,
    convert_float_binary,
    convert_floor_ceil_div,
    convert_int_binary,
    convert_min_max_si,
    convert_negf,
    convert_select,
    convert_unsigned,
)
from nnjit.passes.wgsl.patterns_control import convert_for, convert_if
from nnjit.passes.wgsl.patterns_math import (
    MATH_UNARY,
    convert_fma,
    convert_powf,
    convert_unary_math,
    reject_expanded_math,
)
from nnjit.passes.wgsl.patterns_memory import (
    convert_alloc,
    convert_barrier,
    convert_load,
    convert_store,
)
from nnjit.passes.wgsl.patterns_vector import convert_extract, convert_reduce_lanes, convert_splat

PATTERNS: dict[type, Pattern] = {
    nn_loop.ForOp: convert_for,
    nn_loop.IfOp: convert_if,
    nn_loop.AllocOp: convert_alloc,
    nn_loop.LoadOp: convert_load,
    nn_loop.StoreOp: convert_store,
    nn_loop.BarrierOp: convert_barrier,
    nn_loop.SplatOp: convert_splat,
    nn_loop.ExtractOp: convert_extract,
    nn_loop.ReduceLanesOp: convert_reduce_lanes,
    arith.ConstantOp: convert_constant,
    arith.CmpiOp: convert_cmpi,
    arith.CmpfOp: convert_cmpf,
    arith.SelectOp: convert_select,
    arith.NegfOp: convert_negf,
    arith.MinSIOp: convert_min_max_si,
    arith.MaxSIOp: convert_min_max_si,
    arith.FloorDivSIOp: convert_floor_ceil_div,
    arith.CeilDivSIOp: convert_floor_ceil_div,
    **dict.fromkeys((math.ErfOp, math.TanhOp, math.SinOp, math.CosOp), reject_expanded_math),
    math.PowFOp: convert_powf,
    math.FmaOp: convert_fma,
    **{t: convert_int_binary for t in INT_BINARY},
    **{t: convert_float_binary for t in FLOAT_BINARY},
    **{t: convert_unary_math for t in MATH_UNARY},
    **{
        t: convert_unsigned
        for t in (arith.ShLIOp, arith.ShRSIOp, arith.ShRUIOp, arith.DivUIOp, arith.RemUIOp)
    },
    **{
        t: convert_cast
        for t in (
            arith.IndexCastOp, arith.SIToFPOp, arith.UIToFPOp, arith.FPToSIOp, arith.ExtUIOp,
            arith.ExtSIOp, arith.TruncIOp, arith.BitcastOp, arith.ExtFOp, arith.TruncFOp,
        )
    },
}  # fmt: skip
"""op class -> pattern (1:1 per op class; one pattern may serve a family of ops)."""
