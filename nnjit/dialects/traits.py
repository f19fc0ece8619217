"""Op traits that nnjit's dialects share beyond those of `xdsl.traits`."""

from __future__ import annotations

from collections.abc import Set as AbstractSet

from xdsl.ir import Operation
from xdsl.traits import EffectInstance, MemoryEffect, MemoryEffectKind


class AllocatesResult(MemoryEffect):
    """The op allocates the memory its result stands for, and does nothing else: an
    allocation nobody uses is dead (dce removes it), and two are never the same (cse keeps
    both). xDSL's `MemoryAllocEffect` names no value, so dce must assume it is observable."""

    @classmethod
    def get_effects(cls, op: Operation) -> AbstractSet[EffectInstance]:
        return {EffectInstance(MemoryEffectKind.ALLOC, r) for r in op.results}


__all__ = ["AllocatesResult"]
