"""The backends nnjit compiles for: one `Target` per backend, the one place that says which
passes, printer, file extension, runtime and schedule keys a backend has.

    from nnjit.targets import TARGETS, target_named
    t = TARGETS["wasm"]
    t.schedule_passes({"reg": [3, 16], "relaxed-simd": False}, convert=True)
    # (ConvertNNTensorToNNLoopPass(target="wasm", reg=(3, 16)),
    #  NNLoopSimplifyIndexPass(), NNLoopExpandMathPass(target="wasm"), NNLoopUnrollPass(),
    #  ConvertNNLoopToWasmPass(False))

The compiler (nnjit/compiler.py), the shared lowering steps (nnjit/pipeline.py), the tuner
(nnjit/tuning/), the schedule spaces and the tools (nnjit-translate, levels) read these; a
new backend is a new entry here plus its conversion pass and printer (docs/extending.md).

A *schedule point* (a tuning candidate, a tuning record's "options") is a pass configuration:
`schedule_passes(point)` builds the passes, and `pipeline_text(passes)` prints them as xDSL
prints a pipeline (`nnjit-opt -p '...'` replays it). Pass classes are looked up in
nnjit.registry by name, so importing this module loads no pass.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nnjit import registry
from nnjit.errors import NNJitError

if TYPE_CHECKING:  # xDSL's pass machinery loads when a point is built, not when a tool starts
    from xdsl.passes import ModulePass

LOOP_PASS = "convert-nn-tensor-to-nn-loop"
"""The pass that lowers nn_tensor to nn_loop kernels; its options are the schedule keys."""

SIMPLIFY_INDEX = "nn-loop-simplify-index"
"""The first loop pass of every target: index arithmetic in one canonical form
(nnjit/passes/nn_loop_simplify_index.py; its speed: bench/results/simplify_index.md)."""

UNROLL = "nn-loop-unroll"
"""The one unroller (nnjit/passes/nn_loop_unroll.py), in every target's loop passes after
nn-loop-expand-math; the conversions reject a loop still marked `unroll U`."""


@dataclass(frozen=True)
class Target:
    """One backend: its names at each level and the steps that lower a fused model for it."""

    backend: str
    """The name users choose: `--backend webgpu`, plan "backends" keys, records' backend."""
    kernel_target: str
    """nn_loop.kernel's `target` (and convert-nn-tensor-to-nn-loop{target=...}): "wgsl" | "wasm"."""
    web_dialect: str
    """The dialect of the web level the conversion gives: "nn_wgsl" | "nn_wasm"."""
    convert: str
    """The pass that converts this target's nn_loop kernels to the web level."""
    printer: str
    """The nnjit-opt / nnjit-translate `-t` target that prints the web level."""
    kernels: str
    """"module:function" giving [(name, source, manifest)] of every kernel of a web-level module."""
    extension: str
    """The extension of a kernel file in a bundle: "wgsl" | "wasm" (assembled from .wat)."""
    runtime: str
    """The Python module that runs a bundle's plan for this backend."""
    loop_passes: str = ""
    """A pipeline run on the nn_loop kernels before the conversion, every path alike (the
    compiler, the tuner's candidates, replay lines): nn-loop-simplify-index writes index
    arithmetic in one canonical form (constants folded and added last), then
    nn-loop-expand-math{target=...} writes erf, tanh, sin and cos as the target's
    approximations (nnjit/ir/approx.py), then nn-loop-unroll replicates the bodies of the
    loops marked `unroll U`: the conversions do neither themselves; on wgsl
    nn-loop-promote-registers then keeps register tiles in SSA values (the WGSL conversion
    maps private accesses 1:1)."""
    tensor_passes: str = ""
    """A pipeline run on this backend's copy of the fused module, before lowering and tuning
    (Wasm: MatMulInteger's matmuls in integers, nnjit/passes/nn_tensor_integer_matmul.py,
    weights marked int8 read as bytes, nnjit/passes/nn_tensor_int8_weights.py, and matmul
    weights packed in column panels, nnjit/passes/nn_tensor_pack_weights.py)."""
    convert_keys: tuple[str, ...] = ()
    """Options of the conversion pass that are schedule keys (tuned per kernel)."""
    default_runner: str = ""
    """The tuner's runner when none is named (`nnjit tune --runner`)."""
    default_candidates: tuple[tuple[str, int], ...] = ()
    """What `nnjit compile` ships for on-device tuning when --candidates is not given: per
    device class (nnjit/runtime/adapters.py), how many candidates of each kernel, in that
    class's prior order (nnjit/tuning/prior.py). Empty: none (the default kernel alone)."""

    # ------------------------------------------------------------------ schedule points

    @property
    def loop_keys(self) -> tuple[str, ...]:
        """Schedule keys that are options of convert-nn-tensor-to-nn-loop, in its order."""
        return _option_names(LOOP_PASS, skip=("target",))

    @property
    def schedule_keys(self) -> tuple[str, ...]:
        return self.loop_keys + self.convert_keys

    def schedule_defaults(self) -> dict[str, Any]:
        """Each schedule key's default (the pass field's default: empty / 0 / -1 mean "the
        kernel kind's default for the target")."""
        out: dict[str, Any] = {}
        for name in (LOOP_PASS, self.convert):
            for f in dataclasses.fields(_pass_class(name)):
                key = f.name.replace("_", "-")
                if f.init and key in self.schedule_keys:
                    out[key] = f.default
        return out

    def schedule_passes(self, point: Mapping[str, Any], convert: bool = False) -> tuple[ModulePass, ...]:
        """The passes that lower a kernel under a schedule point: convert-nn-tensor-to-nn-loop
        with the point's loop options, then, when `convert` is set or the point sets one of
        the conversion's options, the target's `loop_passes` and the conversion. Keys
        starting with "@" are hooks, not options."""
        key = (self.backend, convert, _point_key(point), registry.passes_version())
        passes = _SCHEDULE_PASSES.get(key)
        if passes is None:
            passes = self._schedule_passes(point, convert)
            if len(_SCHEDULE_PASSES) < 4096:
                _SCHEDULE_PASSES[key] = passes
        return passes

    def _schedule_passes(self, point: Mapping[str, Any], convert: bool) -> tuple[ModulePass, ...]:
        defaults = self.schedule_defaults()
        loop: dict[str, tuple] = {"target": (self.kernel_target,)}
        conv: dict[str, tuple] = {}
        unknown = []
        for key, value in point.items():
            if key.startswith("@"):
                continue
            values = tuple(value) if isinstance(value, (list, tuple)) else (value,)
            if isinstance(defaults.get(key), bool):  # (a flag: 0 / 1 from JSON as well)
                values = tuple(bool(v) for v in values)
            else:
                values = tuple(v if isinstance(v, bool) else int(v) for v in values)
            if key in self.loop_keys:
                loop[key] = values
            elif key in self.convert_keys:
                conv[key] = values
            else:
                unknown.append(key)
        if unknown:
            raise NNJitError(f"unknown schedule option(s) {unknown}",
                             hint=f"known: {', '.join(self.schedule_keys)}")  # fmt: skip
        from xdsl.utils.arg_spec import ArgSpec

        passes = [_pass_class(LOOP_PASS).from_spec(ArgSpec(LOOP_PASS, loop))]
        if convert or conv:
            passes.extend(self.loop_pass_objects())
            passes.append(_pass_class(self.convert).from_spec(ArgSpec(self.convert, conv)))
        return tuple(passes)

    def loop_pass_objects(self) -> list[ModulePass]:
        """The passes of `loop_passes`, built from their specs."""
        from xdsl.utils.arg_spec import parse_pipeline

        return [_pass_class(spec.name).from_spec(spec) for spec in parse_pipeline(self.loop_passes)]

    def lowering_pipeline(self, loop_options: str = "", convert: bool = True) -> str:
        """convert-nn-tensor-to-nn-loop{target=... loop_options}, the target's `loop_passes`
        and (with `convert`) the conversion: what compile_model runs on the backend's fused
        module (`loop_options` as `nnjit compile --loop-options` takes them). Without
        `convert` the kernels stay nn_loop, ready for the conversion."""
        opts = f"target={self.kernel_target}" + (f" {loop_options}" if loop_options else "")
        steps = [f"{LOOP_PASS}{{{opts}}}", self.loop_passes, self.convert if convert else ""]
        return ",".join(s for s in steps if s)

    def kernels_of(self, module: Any) -> list[tuple[str, str, dict]]:
        """(name, source, manifest) of every kernel of a web-level module of this target."""
        mod, _, fn = self.kernels.partition(":")
        return getattr(importlib.import_module(mod), fn)(module)


def pipeline_text(passes: Iterable[ModulePass]) -> str:
    """A pipeline as nnjit-opt -p takes it, printed from the passes (xDSL's spec printing);
    a pass with a `target` option (convert-nn-tensor-to-nn-loop, nn-loop-expand-math) always
    names it (its default is "wgsl")."""
    from xdsl.utils.arg_spec import ArgSpec

    specs = []
    for p in passes:
        spec = p.spec()
        if "target" not in spec.parameters and isinstance(getattr(p, "target", None), str):
            spec = ArgSpec(spec.name, {"target": (p.target,), **spec.parameters})  # type: ignore[attr-defined]
        specs.append(str(spec))
    return ",".join(specs)


def _point_key(point: Mapping[str, Any]) -> tuple:
    return tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in point.items()
                 if not k.startswith("@"))  # fmt: skip


_SCHEDULE_PASSES: dict[tuple, tuple[ModulePass, ...]] = {}
"""Built passes per (backend, convert, point, registry.passes_version()): building one
resolves its options' types, which costs more than a small pass."""


def _pass_class(name: str) -> type[ModulePass]:
    return registry.get_all_passes()[name]()


def _option_names(pass_name: str, skip: tuple[str, ...] = ()) -> tuple[str, ...]:
    """A pass's option names as nnjit-opt spells them (dashes), in field order."""
    names = _OPTION_NAMES.get(pass_name)
    if names is None:
        fields = dataclasses.fields(_pass_class(pass_name))
        names = tuple(f.name.replace("_", "-") for f in fields if f.init)
        _OPTION_NAMES[pass_name] = names
    return tuple(n for n in names if n not in skip)


_OPTION_NAMES: dict[str, tuple[str, ...]] = {}


TARGETS: dict[str, Target] = {
    "webgpu": Target(
        backend="webgpu", kernel_target="wgsl", web_dialect="nn_wgsl",
        convert="convert-nn-loop-to-wgsl", printer="nnjit-wgsl",
        kernels="nnjit.backends.wgsl_printer:wgsl_kernels", extension="wgsl",
        runtime="nnjit.runtime.webgpu",
        loop_passes=f"{SIMPLIFY_INDEX},nn-loop-expand-math{{target=wgsl}},{UNROLL},nn-loop-promote-registers",
        default_runner="wgpu",
        # a GPU tunes among the prior's 6 best; a software adapter keeps the default (its
        # schedules are the CPU's: no tuning pass at load)
        default_candidates=(("gpu", 6), ("cpu", 1)),
    ),
    "wasm": Target(
        backend="wasm", kernel_target="wasm", web_dialect="nn_wasm",
        convert="convert-nn-loop-to-wasm", printer="nnjit-wat",
        kernels="nnjit.backends.wat_printer:wat_kernels", extension="wasm",
        runtime="nnjit.runtime.wasm", tensor_passes="nn-tensor-integer-matmul,nn-tensor-int8-weights,nn-tensor-pack-weights",
        loop_passes=f"{SIMPLIFY_INDEX},nn-loop-expand-math{{target=wasm}},{UNROLL}",
        convert_keys=("relaxed-simd",), default_runner="wasmtime",
    ),
}  # fmt: skip
"""backend name -> Target."""


def target_named(name: str) -> Target:
    """The Target of a backend name ("webgpu" | "wasm") or of a kernel target ("wgsl" |
    "wasm"); NNJitError naming the choices otherwise."""
    t = TARGETS.get(name) or next((t for t in TARGETS.values() if t.kernel_target == name), None)
    if t is None:
        raise NNJitError(f"unknown backend '{name}'", hint=f"choose from {', '.join(TARGETS)}")
    return t


def by_printer(printer: str) -> Target | None:
    """The Target whose web level `printer` (-t nnjit-wgsl | nnjit-wat) prints."""
    return next((t for t in TARGETS.values() if t.printer == printer), None)


__all__ = ["Target", "TARGETS", "target_named", "by_printer", "pipeline_text", "LOOP_PASS"]
