"""Facts about types that the WGSL conversion asks for over and over, cached by identity, and the
attributes it builds, cached by value (hashing and comparing parametrized attributes are
recursive Python-level calls, and building a checked attribute costs tens of microseconds; the
IR shares its type objects).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from xdsl.dialects.builtin import IntegerType, VectorType, f32, i1, i32
from xdsl.ir import Attribute

from nnjit.dialects import nn_wgsl as w
from nnjit.ir.fastir import IdentityCache

shape_of: Callable[[Attribute], tuple[int, ...]] = IdentityCache(lambda t: t.get_shape())  # type: ignore
"""t.get_shape() of a memref type."""


elem_of: Callable[[Attribute], Attribute] = IdentityCache(lambda t: t.get_element_type())  # type: ignore
"""t.get_element_type() of a memref type."""


unsigned_type: Callable[[Attribute], Attribute] = IdentityCache(
    lambda t: VectorType(w.u32, t.get_shape()) if isinstance(t, VectorType) else w.u32
)
"""u32, or vecN<u32> for a vector type (the NaN tests on the bits build one per value)."""


class TypeFacts(NamedTuple):
    """What the conversion asks of a WGSL value type, computed once per type object."""

    type: Attribute  # (kept alive by the cache, so its id() is not reused)
    key: int  # the same for equal types (id() of the first of them seen): for CSE keys
    scalar: Attribute  # the lane type (a scalar type is its own)
    is_vector: bool
    is_i1: bool  # bool (a scalar)
    is_bool: bool  # bool or a vector of bools
    is_i32: bool
    is_u32: bool
    is_f32: bool
    is_float: bool  # f32 or a vector of f32


_FACTS: dict[int, TypeFacts] = {}
_CANONICAL: dict[Attribute, Attribute] = {}  # (value types: a handful of entries)


def facts(t: Attribute) -> TypeFacts:
    """The facts of value type `t`, cached by identity (hashing and comparing parametrized
    attributes are recursive Python-level calls; the IR shares its type objects)."""
    f = _FACTS.get(id(t))
    if f is None:
        if len(_FACTS) > 4096:
            _FACTS.clear()
        f = _FACTS[id(t)] = TypeFacts(
            type=t,
            key=id(_CANONICAL.setdefault(t, t)),
            scalar=w.lane_type(t),
            is_vector=isinstance(t, VectorType),
            is_i1=type(t) is IntegerType and t == i1,
            is_bool=w.is_bool(t),
            is_i32=t == i32,
            is_u32=t == w.u32,
            is_f32=t == f32,
            is_float=w.is_float(t),
        )
    return f


def tkey(t: Attribute) -> int:
    """A cheap stand-in for value type `t` in CSE keys: equal for equal types."""
    f = _FACTS.get(id(t))
    return (f if f is not None else facts(t)).key


_ARRAYS: dict[tuple[str, Attribute, int], w.ArrayType] = {}
_VEC4: dict[Attribute, VectorType] = {}


def vec4_type(elem: Attribute) -> VectorType:
    """VectorType(elem, [4]), cached (a checked attribute costs ~50 us to build)."""
    t = _VEC4.get(elem)
    if t is None:
        t = _VEC4[elem] = VectorType(elem, [4])
    return t


def cached_array_type(space: str, elem: Attribute, count: int) -> w.ArrayType:
    """w.ArrayType(space, elem, count), cached (attribute construction is slow)."""
    key = (space, elem, count)
    t = _ARRAYS.get(key)
    if t is None:
        t = w.ArrayType(space, elem, count)
        if len(_ARRAYS) < 4096:
            _ARRAYS[key] = t
    return t
