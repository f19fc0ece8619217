"""nnjit/targets.py: one Target per backend; a schedule point is a pass configuration, and its
replay pipeline is printed from the passes (xDSL's spec printing) and parses back to them."""

from __future__ import annotations

import pytest
from xdsl.passes import PassPipeline

from nnjit import registry
from nnjit.errors import NNJitError
from nnjit.targets import TARGETS, by_printer, pipeline_text, target_named

POINTS = [
    {},
    {"reg": [3, 16], "tile": [64, 128], "kstep": 4},
    {"workgroup": [8, 4, 8], "shared": 2, "vec": 1, "rows": 2},
    {"relaxed-simd": False, "reg": (2, 8)},
    {"@transform": print, "reg": [4, 4]},
]


@pytest.mark.parametrize("backend", sorted(TARGETS))
@pytest.mark.parametrize("point", POINTS, ids=range(len(POINTS)))
def test_replay_pipeline_parses_back_to_the_points_passes(backend, point):
    target = TARGETS[backend]
    if any(k in point for k in ("relaxed-simd",)) and "relaxed-simd" not in target.convert_keys:
        point = {k: v for k, v in point.items() if k != "relaxed-simd"}
    passes = target.schedule_passes(point, convert=True)
    text = pipeline_text(passes)
    assert text.startswith(f'convert-nn-tensor-to-nn-loop{{target="{target.kernel_target}"')
    assert text.endswith(target.convert) or f"{target.convert}{{" in text
    parsed = PassPipeline.parse_spec(registry.get_all_passes(), text).passes
    assert tuple(parsed) == passes
    loop = [s.split("{")[0] for s in target.loop_passes.split(",")]
    assert [p.name for p in passes] == ["convert-nn-tensor-to-nn-loop", *loop, target.convert]
    assert loop[:3] == ["nn-loop-simplify-index", "nn-loop-expand-math", "nn-loop-unroll"]
    assert f'nn-loop-expand-math{{target="{target.kernel_target}"}}' in text


def test_a_point_without_conversion_options_stops_at_the_loop_level():
    (only,) = TARGETS["wasm"].schedule_passes({"reg": [2, 16]})
    assert only.name == "convert-nn-tensor-to-nn-loop"
    loop, simplify, expand, unroll, conv = TARGETS["wasm"].schedule_passes({"relaxed-simd": True})
    assert simplify.name == "nn-loop-simplify-index"
    assert (expand.name, expand.target) == ("nn-loop-expand-math", "wasm")
    assert unroll.name == "nn-loop-unroll"
    assert conv.name == "convert-nn-loop-to-wasm"


def test_every_lowering_path_simplifies_indices_expands_math_and_unrolls_before_the_conversion():
    for t in TARGETS.values():
        assert t.loop_passes.startswith(
            f"nn-loop-simplify-index,nn-loop-expand-math{{target={t.kernel_target}}},nn-loop-unroll"
        )
        full = t.lowering_pipeline("vec=1")
        assert full == (f"convert-nn-tensor-to-nn-loop{{target={t.kernel_target} vec=1}},"
                        f"{t.loop_passes},{t.convert}")  # fmt: skip
        assert t.lowering_pipeline(convert=False) == full.replace(" vec=1", "").rsplit(",", 1)[0]


def test_wgsl_promotes_registers_after_unrolling():
    """The WGSL conversion maps private accesses 1:1: its pipeline unrolls, then keeps
    register tiles in values (nn-loop-promote-registers); the Wasm one keeps locals."""
    assert TARGETS["webgpu"].loop_passes.endswith(",nn-loop-unroll,nn-loop-promote-registers")
    assert "promote" not in TARGETS["wasm"].loop_passes


def test_negative_unknown_schedule_keys_are_named():
    with pytest.raises(NNJitError, match=r"unknown schedule option\(s\) \['nosuch'\]"):
        TARGETS["webgpu"].schedule_passes({"nosuch": 1})
    with pytest.raises(NNJitError, match="relaxed-simd"):  # (a Wasm conversion option)
        TARGETS["webgpu"].schedule_passes({"relaxed-simd": False})


def test_schedule_keys_and_defaults_come_from_the_passes():
    wasm = TARGETS["wasm"]
    assert wasm.schedule_keys == ("workgroup", "tile", "reg", "vec", "kstep", "shared", "rows", "f16",
                                  "relaxed-simd")  # fmt: skip
    assert wasm.schedule_defaults()["shared"] == -1 and wasm.schedule_defaults()["relaxed-simd"] is True
    assert "relaxed-simd" not in TARGETS["webgpu"].schedule_keys


def test_names_at_every_level():
    assert target_named("wgsl") is target_named("webgpu") is TARGETS["webgpu"]
    assert by_printer("nnjit-wat") is TARGETS["wasm"] and by_printer("mlir") is None
    with pytest.raises(NNJitError, match="unknown backend 'cuda'"):
        target_named("cuda")
    for t in TARGETS.values():
        assert t.convert in registry.get_all_passes()
        assert t.printer in registry.get_all_targets()


def test_a_pass_registered_later_is_what_a_point_builds():
    from dataclasses import dataclass

    wasm = TARGETS["wasm"]
    original = registry.get_all_passes()[wasm.convert]
    base = original()

    @dataclass(frozen=True)
    class Mine(base):  # type: ignore[misc, valid-type]
        pass

    before = wasm.schedule_passes({"relaxed-simd": False})
    registry.register_pass(wasm.convert, lambda: Mine)
    try:
        assert type(wasm.schedule_passes({"relaxed-simd": False})[-1]) is Mine
    finally:
        registry.register_pass(wasm.convert, original)
    assert wasm.schedule_passes({"relaxed-simd": False}) == before
