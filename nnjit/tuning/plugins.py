"""Registries of the tuner's spaces, runners and search strategies, over the built-in ones
(space.py, runners.py, search.py), and `space_for`: a kernel's space in prior order.

Two ways in, both documented in docs/tuning.md:

* Python: `register_space(kind, target, fn)`, `register_runner(name, factory)`,
  `register_search(name, fn)`. A later registration replaces an earlier one.
* Entry points (a package's pyproject.toml), loaded once, on first lookup:

      [project.entry-points."nnjit.spaces"]
      "matmul:wasm" = "my_pkg.spaces:my_matmul_space"     # name: "<kind>:<target>"
      [project.entry-points."nnjit.runners"]
      mybrowser = "my_pkg.runners:MyRunner"               # factory(**options) -> Runner
      [project.entry-points."nnjit.search"]
      random = "my_pkg.search:random_search"              # fn(ctx: SearchContext) -> None

  Python registrations win over entry points of the same name.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from nnjit.errors import NNJitError
from nnjit.targets import TARGETS
from nnjit.tuning import runners
from nnjit.tuning.kernels import KernelInfo, lower_candidate
from nnjit.tuning.prior import device_class, prior_order
from nnjit.tuning.search import BUILTIN_SEARCH
from nnjit.tuning.space import BUILTIN_SPACES, DeviceInfo, Point, default_only

log = logging.getLogger("nnjit.tuning")

KERNEL_TARGETS = tuple(t.kernel_target for t in TARGETS.values())
"""What a space registered for target "*" covers: every backend's kernel target."""

_SPACES: dict[tuple[str, str], Callable] = {}
_RUNNERS: dict[str, Callable[..., Any]] = {}
_SEARCH: dict[str, Callable] = {}
_loaded: set[str] = set()


def register_space(kind: str, target: str, fn: Callable) -> None:
    """`fn(kernel_info, device) -> list[dict]` becomes the space of fused `kind` kernels for
    `target` ("wgsl" | "wasm"; "*" for both)."""
    for t in (KERNEL_TARGETS if target == "*" else (target,)):
        _SPACES[(kind, t)] = fn


def register_runner(name: str, factory: Callable[..., Any]) -> None:
    """`factory(**options) -> Runner` (see runners.Runner) under `name` (`nnjit tune --runner`)."""
    _RUNNERS[name] = factory


def register_search(name: str, fn: Callable) -> None:
    """`fn(ctx: SearchContext) -> None` under `name` (`nnjit tune --search`): it measures
    candidates through `ctx.measure(i)` until it is done or `ctx.time_left() <= 0`."""
    _SEARCH[name] = fn


def unregister(group: str, name: str | tuple[str, str]) -> None:
    """Removes a Python registration (tests)."""
    table: dict = {"spaces": _SPACES, "runners": _RUNNERS, "search": _SEARCH}[group]
    table.pop(name, None)


def _load_entry_points(group: str) -> None:
    if group in _loaded:
        return
    _loaded.add(group)
    for ep in entry_points(group=f"nnjit.{group}"):
        try:
            if group == "spaces":
                kind, _, target = ep.name.partition(":")
                targets = KERNEL_TARGETS if target in ("", "*") else (target,)
                missing = [t for t in targets if (kind, t) not in _SPACES]
                if missing:
                    fn = ep.load()
                    for t in missing:
                        _SPACES[(kind, t)] = fn
            elif group == "runners":
                if ep.name not in _RUNNERS:
                    _RUNNERS[ep.name] = ep.load()
            else:
                if ep.name not in _SEARCH:
                    _SEARCH[ep.name] = ep.load()
        except Exception as e:  # noqa: BLE001 - a broken plugin must not stop tuning
            log.warning("nnjit.%s entry point %r failed to load: %s", group, ep.name, e)


def reload_entry_points() -> None:
    """Reads the entry points again (after installing a plugin in the same process)."""
    _loaded.clear()


def get_space(kind: str, target: str) -> Callable:
    _load_entry_points("spaces")
    fn = _SPACES.get((kind, target))
    if fn is not None:
        return fn
    return BUILTIN_SPACES.get((kind, target), default_only)


def get_runner(name: str, **options: Any) -> Any:
    _load_entry_points("runners")
    factory = _RUNNERS.get(name) or _builtin_runners().get(name)
    if factory is None:
        raise NNJitError(f"unknown runner '{name}'", hint=f"known: {', '.join(runner_names())}")
    return factory(**options)


def runner_names() -> list[str]:
    _load_entry_points("runners")
    return sorted(set(_builtin_runners()) | set(_RUNNERS))


def get_search(name: str) -> Callable:
    _load_entry_points("search")
    fn = _SEARCH.get(name) or BUILTIN_SEARCH.get(name)
    if fn is None:
        raise NNJitError(f"unknown search strategy '{name}'", hint=f"known: {', '.join(search_names())}")
    return fn


def search_names() -> list[str]:
    _load_entry_points("search")
    return sorted(set(BUILTIN_SEARCH) | set(_SEARCH))


def _builtin_runners() -> dict[str, Callable[..., Any]]:
    return {"wasmtime": runners.WasmtimeRunner, "node": runners.NodeRunner, "wgpu": runners.WebGPURunner}


def space_for(info: KernelInfo, device: DeviceInfo) -> list[Point]:
    """The space of a kernel: a registered plugin, else the built-in one; always `{}` first."""
    if info.default is None:
        try:
            info.default = lower_candidate(info, {}).effective
        except Exception:  # noqa: BLE001 - the tuner reports a default that does not lower
            info.default = {}
    if info.target == "wgsl":
        # a binding over the device's limit fails whatever the schedule: nothing to tune
        lim = device.limit("max-storage-buffer-binding-size")
        sizes = [4 * math.prod(b["shape"]) for b in [*info.inputs, info.output]]
        if lim and max(sizes) > lim:
            return [{}]
    points = get_space(info.kind, info.target)(info, device)
    rest = [p for p in points if p != {}]
    # prior order: points one option away from the default first (stable within a distance),
    # or, on a device class with measurements (prior.py), the measured ranking
    rest.sort(key=lambda p: distance(p, info.default or {}))
    return [{}] + prior_order(info, rest, device_class(device))


def distance(point: Point, effective: dict) -> int:
    """How many options of `point` differ from an effective schedule."""
    n = 0
    for k, v in point.items():
        if k.startswith("@"):
            n += 1
            continue
        e = effective.get(k)
        if isinstance(v, (list, tuple)):
            v = list(v)
            e = list(e) if isinstance(e, (list, tuple)) else e
        if k == "relaxed-simd":
            e = bool(e) if e is not None else True
        if v != e:
            n += 1
    return n


__all__ = [
    "space_for", "distance",
    "register_space", "register_runner", "register_search", "get_space", "get_runner",
    "get_search", "runner_names", "search_names", "reload_entry_points", "unregister",
]  # fmt: skip
