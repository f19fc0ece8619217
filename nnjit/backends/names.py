"""Identifiers for generated code: never a reserved word, never a raw name from a model."""

from __future__ import annotations

import functools
import re

# WGSL keywords and reserved words (WGSL spec, sections 15.1-15.2) and predeclared names
# that generated code must not shadow.
WGSL_RESERVED = frozenset(
    """
    alias break case const const_assert continue continuing default diagnostic discard else
    enable false fn for if let loop override requires return struct switch true var while
    NULL Self abstract active alignas alignof as asm asm_fragment async attribute auto await
    become cast catch class co_await co_return co_yield coherent column_major common compile
    compile_fragment concept const_cast consteval constexpr constinit crate debugger decltype
    delete demote demote_to_helper do dynamic_cast enum explicit export extends extern
    external fallthrough filter final finally friend from fxgroup get goto groupshared highp
    impl implements import inline instanceof interface layout lowp macro macro_rules match
    mediump meta mod module move mut mutable namespace new nil noexcept noinline
    nointerpolation non_coherent noncoherent noperspective null nullptr of operator package
    packoffset partition pass patch pixelfragment precise precision premerge priv protected
    pub public readonly ref regardless register reinterpret_cast require resource restrict
    self set shared sizeof smooth snorm static static_assert static_cast std subroutine super
    target template this thread_local throw trait try type typedef typeid typename typeof
    union unless unorm unsafe unsized use using varying virtual volatile wgsl where with
    writeonly yield
    array atomic bool f16 f32 i32 mat2x2 mat2x3 mat2x4 mat3x2 mat3x3 mat3x4 mat4x2 mat4x3
    mat4x4 ptr sampler sampler_comparison texture_1d texture_2d texture_2d_array texture_3d
    texture_cube texture_cube_array u32 vec2 vec3 vec4 storage uniform workgroup private
    function read write read_write main
    """.split()
)

# WAT keywords: identifiers are $-prefixed there, but keep them out anyway for readability.
WAT_RESERVED = frozenset(
    """
    module func param result local global memory table import export type block loop if
    then else end br br_if br_table return call call_indirect drop select unreachable nop
    mut shared offset align data elem start
    """.split()
)

_IDENT = re.compile(r"[^A-Za-z0-9_]")


@functools.lru_cache(maxsize=8192)
def sanitize(name: str) -> str:
    """A valid identifier derived from any string (the model's names included)."""
    s = _IDENT.sub("_", name)
    s = re.sub(r"_+", "_", s).strip("_")
    if not s or s[0].isdigit():
        s = "n_" + s
    if s.startswith("__"):  # WGSL reserves identifiers starting with two underscores
        s = "n" + s
    return s[:48]


class NameSupply:
    """Hands out unique, sanitised identifiers that avoid WGSL and WAT reserved words."""

    def __init__(self, reserved: frozenset[str] = WGSL_RESERVED | WAT_RESERVED):
        self._reserved = reserved
        self._used: set[str] = set()
        self._next: dict[str, int] = {}  # per hint: the next suffix to try (keeps fresh O(1))

    def fresh(self, hint: str = "v") -> str:
        base = sanitize(hint)
        if base in self._reserved:
            base = base + "_"
        name, n = base, self._next.get(base, 0)
        if n:
            name = f"{base}_{n}"
        while name in self._used or name in self._reserved:
            n += 1
            name = f"{base}_{n}"
        self._next[base] = n + 1
        self._used.add(name)
        return name
