"""The schedule options of convert-nn-tensor-to-nn-loop: `Schedule`, their bounds and checks.

`Schedule` holds the options of convert-nn-tensor-to-nn-loop (merged with a fused op's own
`schedule` attribute); each lowering resolves the defaults of its kind and records the
effective values on the kernel (`Schedule.as_dict`), so one kernel replays from one line.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    DictionaryAttr,
    IntegerAttr,
    StringAttr,
    i64,
)
from xdsl.ir import Attribute

from nnjit.errors import UnsupportedError
from nnjit.ir.fastir import i64_attr as _int64

MAX_INVOCATIONS = 256
"""WebGPU's default maxComputeInvocationsPerWorkgroup (and per-dimension limit)."""
MAX_GRID = 65535
"""WebGPU's default maxComputeWorkgroupsPerDimension."""


# ------------------------------------------------------------------------------ schedule


_SCHEDULE_KEYS = ("workgroup", "tile", "reg", "vec", "kstep", "shared", "rows", "f16")
_TUPLE_KEYS = ("workgroup", "tile", "reg")

# Bounds on schedule options: the register tile and the k unroll are unrolled into code (its
# size grows with their product), the others are loop bounds. Past these a kernel only gets
# slower to build and to run (reg=1000,1000 on a 512^3 matmul took minutes and gigabytes).
MAX_REGISTER_TILE = 256
"""reg: elements of the per-invocation / per-thread register tile (rows x cols)."""
MAX_KSTEP = 64
"""kstep: matmul k-loop unroll."""
MAX_UNROLLED = 4096
"""reg x kstep: multiply-adds unrolled in one matmul k step."""
MAX_TILE = 1 << 16
"""tile and rows entries."""
F16_MODES = (0, 1, 2)
"""f16 (WGSL matmuls, device feature shader-f16): 0 reads B as f32; 1 reads B (a weight stored
as float16) as f16 and multiplies and accumulates in f32; 2 also multiplies and accumulates
in f16 (A rounded to f16 in registers). Activations stay f32 in memory either way."""


def check_schedule(s: Schedule) -> None:
    """Rejects option values no lowering can use, naming the option and its bound."""

    def bad(key: str, value: object, why: str) -> UnsupportedError:
        text = ",".join(map(str, value)) if isinstance(value, tuple) else value
        return UnsupportedError(f"schedule option {key}={text}: {why}",
                                hint="the schedule options: docs/tuning.md")  # fmt: skip

    for key in _TUPLE_KEYS:
        value = getattr(s, key)
        if any(not isinstance(v, int) or v < 1 for v in value):
            raise bad(key, value, "each entry must be a positive integer")
        if len(value) > 3:
            raise bad(key, value, "must have at most 3 entries")
    if s.workgroup and (max(s.workgroup) > MAX_INVOCATIONS or math.prod(s.workgroup) > MAX_INVOCATIONS):
        raise bad("workgroup", s.workgroup, f"exceeds {MAX_INVOCATIONS} invocations per workgroup")
    if s.tile and max(s.tile) > MAX_TILE:
        raise bad("tile", s.tile, f"entries must be at most {MAX_TILE}")
    if s.reg and math.prod(s.reg) > MAX_REGISTER_TILE:
        raise bad("reg", s.reg, f"must give a register tile of at most {MAX_REGISTER_TILE} elements")
    if s.vec not in (0, 1, 4):
        raise bad("vec", s.vec, "must be 1 or 4 (0: the default)")
    if not 0 <= s.kstep <= MAX_KSTEP:
        raise bad("kstep", s.kstep, f"must be from 1 to {MAX_KSTEP} (0: the default)")
    if s.reg and s.kstep and math.prod(s.reg) * s.kstep > MAX_UNROLLED:
        raise bad("reg", s.reg, f"reg x kstep = {math.prod(s.reg) * s.kstep} unrolled multiply-adds, "
                  f"over {MAX_UNROLLED}")  # fmt: skip
    if s.shared not in (-1, 0, 1, 2):
        raise bad("shared", s.shared, "must be 0, 1 or 2 (-1: the default)")
    if not 0 <= s.rows <= MAX_TILE:
        raise bad("rows", s.rows, f"must be from 1 to {MAX_TILE} (0: the default)")
    if s.f16 not in F16_MODES:
        raise bad("f16", s.f16, "must be 0 (f32), 1 (f16 weights, f32 arithmetic) or 2 (f16 arithmetic)")


@dataclass(frozen=True)
class Schedule:
    """Schedule options of one kernel (see ConvertNNTensorToNNLoopPass).

    Empty tuples, 0 and -1 mean "the kind's default for the target"; a lowering replaces
    them by the values it uses (`dataclasses.replace`) and stores `as_dict()` on the kernel.
    """

    target: str = "wgsl"
    workgroup: tuple[int, ...] = ()
    tile: tuple[int, ...] = ()
    reg: tuple[int, ...] = ()
    vec: int = 0
    kstep: int = 0
    shared: int = -1
    rows: int = 0
    f16: int = 0

    @classmethod
    def from_pass(cls, pass_: object) -> Schedule:
        """The schedule named by a pass's options (any object with these attributes)."""
        values = {f.name: getattr(pass_, f.name) for f in dataclasses.fields(cls)}
        values["workgroup"] = tuple(values["workgroup"])
        values["tile"] = tuple(values["tile"])
        values["reg"] = tuple(values["reg"])
        schedule = cls(**values)
        check_schedule(schedule)
        return schedule

    def merged(self, attr: DictionaryAttr | dict[str, Attribute] | None) -> Schedule:
        """This schedule overridden by a `schedule` dictionary (ints or dense i64 arrays)."""
        if attr is None:
            return self
        data = attr.data if isinstance(attr, DictionaryAttr) else attr
        changes: dict[str, object] = {}
        for key, value in data.items():
            if key == "target":
                if not isinstance(value, StringAttr):
                    raise UnsupportedError(f"schedule key 'target' must be a string, got {value}")
                changes[key] = value.data
                continue
            if key not in _SCHEDULE_KEYS:
                raise UnsupportedError(
                    f"unknown schedule key '{key}'",
                    hint=f"known keys: {', '.join(_SCHEDULE_KEYS)}",
                )
            ints = _attr_ints(key, value)
            if key in _TUPLE_KEYS:
                changes[key] = ints
            else:
                if len(ints) != 1:
                    raise UnsupportedError(f"schedule key '{key}' takes one integer, got {value}")
                changes[key] = ints[0]
        merged = dataclasses.replace(self, **changes)  # type: ignore[arg-type]
        check_schedule(merged)
        return merged

    def as_dict(self) -> dict[str, Attribute]:
        """The options that differ from "default" as attributes, for the kernel's `schedule`."""
        out: dict[str, Attribute] = {}
        for key in _SCHEDULE_KEYS:
            value = getattr(self, key)
            if key in _TUPLE_KEYS:
                if value:
                    out[key] = i64_array(tuple(value))
            elif value != (-1 if key == "shared" else 0):
                out[key] = _int64(value)
        return out

    def replace(self, **changes: object) -> Schedule:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def _attr_ints(key: str, value: Attribute) -> tuple[int, ...]:
    if isinstance(value, IntegerAttr):
        return (int(value.value.data),)
    if isinstance(value, DenseArrayBase):
        return tuple(int(v) for v in value.get_values())
    if isinstance(value, ArrayAttr) and all(isinstance(v, IntegerAttr) for v in value.data):
        return tuple(int(v.value.data) for v in value.data)  # type: ignore[union-attr]
    raise UnsupportedError(
        f"schedule key '{key}' must be an integer or an array of integers, got {value}"
    )


_I64_ARRAYS: dict[tuple[int, ...], DenseArrayBase] = {}


def i64_array(values: tuple[int, ...]) -> DenseArrayBase:
    """A cached dense i64 array attribute."""
    attr = _I64_ARRAYS.get(values)
    if attr is None:
        attr = DenseArrayBase.from_list(i64, list(values))
        if len(_I64_ARRAYS) < 4096:
            _I64_ARRAYS[values] = attr
    return attr


__all__ = [
    "Schedule", "check_schedule", "i64_array", "MAX_INVOCATIONS", "MAX_GRID", "MAX_REGISTER_TILE",
    "MAX_KSTEP", "MAX_UNROLLED", "MAX_TILE", "F16_MODES",
]  # fmt: skip
