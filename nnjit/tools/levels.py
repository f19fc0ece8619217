"""Which level a module of IR is at, and whether a conversion or a printer has anything to do.

nnjit's IR goes nn_tensor (a func.func of tensor ops) -> nn_loop (nn_loop.kernel ops, each with
a target "wgsl" or "wasm") -> nn_wgsl / nn_wasm (nn_wgsl.module / nn_wasm.module, one per
kernel). A conversion or a printer given IR of another level finds nothing to do, and would
print nothing: nnjit-opt and nnjit-translate ask `check_pass` / `check_target` first and stop
with one line that says what the input is and what the command expects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from xdsl.ir import Operation

from nnjit.errors import NNJitError
from nnjit.targets import LOOP_PASS, TARGETS, Target, by_printer

# conversion pass -> (level it takes, level it gives)
_CONVERSIONS = {
    LOOP_PASS: ("nn_tensor", "nn_loop"),
    **{t.convert: ("nn_loop", t.web_dialect) for t in TARGETS.values()},
}
_WEB = {f"{t.web_dialect}.module": t.web_dialect for t in TARGETS.values()}
_KERNEL_TARGET = {t.web_dialect: t.kernel_target for t in TARGETS.values()}


@dataclass
class Level:
    """The levels of IR a module holds, and the targets of its nn_loop kernels."""

    levels: set[str] = field(default_factory=set)
    kernel_targets: set[str] = field(default_factory=set)

    def describe(self) -> str:
        if not self.levels:
            return "IR with no nnjit ops"
        parts = []
        for lv in ("nn_tensor", "nn_loop", "nn_wgsl", "nn_wasm"):
            if lv not in self.levels:
                continue
            if lv == "nn_loop":
                targets = ", ".join(f'"{t}"' for t in sorted(self.kernel_targets))
                parts.append(f"nn_loop kernels (target {targets})")
            else:
                parts.append(f"{lv} IR" if lv == "nn_tensor" else f"{lv} modules")
        return " and ".join(parts)


def level_of(module: Operation) -> Level:
    lv = Level()
    for op in module.walk():
        name = op.name
        if name in _WEB:
            lv.levels.add(_WEB[name])
        elif name == "nn_loop.kernel":
            lv.levels.add("nn_loop")
            lv.kernel_targets.add(op.target.data)  # type: ignore[attr-defined]
        elif name.startswith("nn_tensor."):
            lv.levels.add("nn_tensor")
    return lv


def _to_web(t: Target) -> str:
    """The pipeline from a target's nn_loop kernels to its web level."""
    return ",".join(p for p in (t.loop_passes, t.convert) if p)


def _hint_for(lv: Level, kernel_target: str | None) -> str:
    if "nn_tensor" in lv.levels:
        t = kernel_target or "wgsl"
        return f"lower it first: -p 'nn-tensor-fuse,convert-nn-tensor-to-nn-loop{{target={t}}}'"
    if lv.kernel_targets and kernel_target and kernel_target not in lv.kernel_targets:
        other = next(iter(sorted(lv.kernel_targets)))
        return f"its kernels are for target \"{other}\": convert or print them for that target"
    if lv.levels & {"nn_wgsl", "nn_wasm"}:
        return "it is converted already: print it with -t nnjit-wgsl or -t nnjit-wat"
    if "nn_loop" in lv.levels:
        ways = " or ".join(f"'{_to_web(t)}'" for t in TARGETS.values())
        return f"it is lowered already: go on with -p {ways}"
    return "check the input file"


def check_passes(module: Operation, passes: Iterable) -> None:
    """Follows the module's level through a pipeline: each conversion must find IR of the
    level it takes (a convert-nn-loop-to-X pass: kernels with target X)."""
    lv = level_of(module)
    for p in passes:
        conv = _CONVERSIONS.get(p.name)
        if conv is None:
            continue
        want, gives = conv
        kernel_target = getattr(p, "target", None) if gives == "nn_loop" else _KERNEL_TARGET[gives]
        ok = want in lv.levels and (want != "nn_loop" or kernel_target in lv.kernel_targets)
        if not ok:
            wanted = f"nn_loop kernels with target \"{kernel_target}\"" if want == "nn_loop" else f"{want} IR"
            raise NNJitError(
                f"{p.name} has nothing to convert: the input is {lv.describe()}, and it converts {wanted}",
                hint=_hint_for(lv, kernel_target),
            )
        if want == "nn_loop":
            lv.kernel_targets.discard(kernel_target)
            if not lv.kernel_targets:
                lv.levels.discard("nn_loop")
        else:
            lv.levels.discard(want)
        lv.levels.add(gives)
        if gives == "nn_loop":
            lv.kernel_targets.add(str(kernel_target))


def check_target(module: Operation, target: str, converts: bool) -> None:
    """A printer target (nnjit-wgsl, nnjit-wat) has web-level modules to print (or, where the
    tool `converts` nn_loop kernels first, as nnjit-translate does: kernels of its target)."""
    t = by_printer(target)
    if t is None:
        return
    web, kernel_target = t.web_dialect, t.kernel_target
    lv = level_of(module)
    if web in lv.levels or (converts and kernel_target in lv.kernel_targets):
        return
    wanted = f"{web} modules" + (f" or nn_loop kernels with target \"{kernel_target}\"" if converts else "")
    other = [t.printer for t in TARGETS.values() if t.web_dialect in lv.levels and t.printer != target]
    if other:
        hint = f"print it with -t {other[0]}"
    elif converts or "nn_loop" not in lv.levels or kernel_target not in lv.kernel_targets:
        hint = _hint_for(lv, kernel_target)
    else:
        hint = f"convert them first: -p '{_to_web(t)}'"
    raise NNJitError(
        f"-t {target} has nothing to print: the input is {lv.describe()}, and it prints {wanted}",
        hint=hint,
    )
