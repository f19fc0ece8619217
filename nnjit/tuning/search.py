"""Search strategies: which points of a kernel's space to measure, in what order.

    strategy(ctx: SearchContext) -> None

A strategy calls `ctx.measure(i)` (the time of point i in seconds, or None when the
candidate is broken: invalid options, rejected, hung, wrong numbers; results are cached, and
a point whose code equals an earlier one's costs nothing) until it is done or
`ctx.time_left() <= 0`. The tuner keeps the fastest correct point; point 0 (the default) is
measured before the strategy starts.

Built in: "exhaustive" (every point in the space's order, within the budget) and "greedy"
(one option at a time: from the best point so far, measure the points that differ from it in
one option — or, between points with and without shared tiles, in one group of coupled
options such as shared + tile — move to the fastest, and repeat over the options until a
round improves nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nnjit.tuning.kernels import KernelInfo

COUPLED: tuple[tuple[str, ...], ...] = (
    ("shared", "tile"),
    ("workgroup", "tile"),
    ("reg", "tile"),
)
"""Option groups that change together between WGSL points with and without shared tiles (a
shared point names its tile, whose k size only exists with shared tiles, and that tile
follows workgroup x reg): greedy treats each as one option for moves from or to a point that
sets "shared"."""


@dataclass
class SearchContext:
    """What a strategy sees: the kernel, its points, and a measuring function."""

    kernel: KernelInfo
    points: list[dict]
    _measure: Callable[[int], float | None]
    _time_left: Callable[[], float]
    results: dict[int, float | None] = field(default_factory=dict)

    def measure(self, i: int) -> float | None:
        if i not in self.results:
            self.results[i] = self._measure(i)
        return self.results[i]

    def time_left(self) -> float:
        return self._time_left()

    def best(self) -> tuple[int, float | None]:
        ok = [(t, i) for i, t in self.results.items() if t is not None]
        if not ok:
            return 0, None
        t, i = min(ok)
        return i, t

    def normalized(self, i: int) -> dict[str, Any]:
        """Point i with unset options filled in from the default's effective schedule."""
        eff = self.kernel.default or {}
        keys = {k for p in self.points for k in p if not k.startswith("@")}
        p = self.points[i]
        out = {}
        for k in sorted(keys):
            v = p.get(k, eff.get(k))
            out[k] = tuple(v) if isinstance(v, list) else v
        return out


def exhaustive(ctx: SearchContext) -> None:
    """Every point, in the space's order, while there is time."""
    for i in range(len(ctx.points)):
        if ctx.time_left() <= 0:
            return
        ctx.measure(i)


def greedy(ctx: SearchContext) -> None:
    """One option (or coupled group) at a time from the best point so far."""
    n = len(ctx.points)
    norm = [ctx.normalized(i) for i in range(n)]
    keys: list[str] = []
    for p in ctx.points:
        for k in p:
            if k not in keys and not k.startswith("@"):
                keys.append(k)
    groups: list[frozenset[str]] = [frozenset([k]) for k in keys]
    groups += [frozenset(g) for g in COUPLED if all(k in keys for k in g)]
    cur, cur_t = ctx.best()
    if cur_t is None:
        return
    improved = True
    while improved and ctx.time_left() > 0:
        improved = False
        for group in groups:
            if ctx.time_left() <= 0:
                return
            base = norm[cur]
            coupled = len(group) > 1
            nbrs = []
            for i in range(n):
                if coupled and "shared" not in ctx.points[cur] and "shared" not in ctx.points[i]:
                    continue
                diff = {k for k in base if norm[i].get(k) != base.get(k)}
                if diff and diff <= group:
                    nbrs.append(i)
            for i in nbrs:
                if ctx.time_left() <= 0:
                    break
                ctx.measure(i)
            best_i, best_t = cur, cur_t
            for i in nbrs:
                t = ctx.results.get(i)
                if t is not None and t < best_t:
                    best_i, best_t = i, t
            if best_i != cur:
                cur, cur_t = best_i, best_t
                improved = True


BUILTIN_SEARCH: dict[str, Callable[[SearchContext], None]] = {
    "exhaustive": exhaustive,
    "greedy": greedy,
}

__all__ = ["SearchContext", "exhaustive", "greedy", "BUILTIN_SEARCH", "COUPLED"]
