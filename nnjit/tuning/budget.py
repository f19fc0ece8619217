"""The tuner's budget: a deadline no step may run past, and the estimates that decide whether
the next step starts (`Clock`), kept per kernel in its `KernelState` (recent lowering and
measuring times) and from the kernels' FLOPs and bytes at nominal rates before anything is
measured. A measurement through the clock is told to stop (`max_time`) and cut (`timeout`)
at the deadline; `BudgetSpent` says that no new work starts.
"""

from __future__ import annotations

import inspect
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from nnjit.tuning.kernels import Candidate, KernelInfo
from nnjit.tuning.report import KernelResult
from nnjit.tuning.runners import CandidateError, Measurement, Runner
from nnjit.tuning.search import SearchContext

NOMINAL = {"wasm": (15e9, 4e9), "wgsl": (200e9, 50e9)}
"""target -> (FLOP/s, bytes/s) used only to order kernels and split the budget."""


class BudgetSpent(Exception):
    """The deadline is too near for the next step: no new work starts."""


@dataclass
class KernelState:
    """One kernel being tuned: its points, reference output, candidates and their times."""

    r: KernelResult
    points: list[dict]
    seed: int
    label: str
    ref: np.ndarray
    by_code: dict[str, int]
    cands: dict[int, Candidate]
    times: dict[int, list[float]]
    timeout: float
    ctx: SearchContext = None  # type: ignore[assignment]
    finished: bool = False
    weight: float = 0.0
    """Measured default time x launches: what the kernel costs the model."""
    lower_s: list[float] = field(default_factory=list)
    """Recent lowering times of its candidates (seconds)."""
    measure_s: list[float] = field(default_factory=list)
    """Recent wall times of its measurements (seconds, request to reply)."""
    finalists: list[int] = field(default_factory=list)
    final: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    """Run times of the finalists in the final rounds (all measured alike)."""
    pairs: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    """Per finalist: its time / the default's in the same final round (same interleaved set
    round, where the runner has measure_set)."""
    rounds: int = 0
    """Final rounds done (every finalist measured once per round)."""
    stop: str = ""
    """Why its search ended before the space did (the record's message when "partial")."""

    def lower_est(self) -> float:
        return 1.25 * max(self.lower_s[-8:]) if self.lower_s else 0.1

    def measure_est(self) -> float:
        return 1.25 * max(self.measure_s[-8:]) if self.measure_s else 0.2

    def step_est(self) -> float:
        return self.lower_est() + self.measure_est()


class Clock:
    """The deadline of a tuning run (`budget` seconds from the start, or a fixed `deadline`),
    less a safety `margin`, and the measurements that must end before it."""

    def __init__(self, runner: Runner, budget: float, deadline: float | None, margin: float):
        self.runner = runner
        self.budget = float(budget)
        self.fixed_deadline = deadline
        self.margin = margin
        self.t0 = time.monotonic()
        self.deadline = deadline if deadline is not None else self.t0 + self.budget
        self.measured = 0
        """Measurements so far (the first one pays the runner's start-up)."""
        self.lower_all: list[float] = []
        """Lowering times of every kernel's candidates (seconds)."""
        try:
            self._max_time = "max_time" in inspect.signature(runner.measure).parameters
        except (TypeError, ValueError):
            self._max_time = False

    def restart(self) -> None:
        """Starts the clock: now, or `budget` seconds before the fixed deadline."""
        self.t0 = time.monotonic()
        if self.fixed_deadline is not None:
            self.deadline = self.fixed_deadline
            self.t0 = self.deadline - self.budget
        else:
            self.deadline = self.t0 + self.budget

    def elapsed(self) -> float:
        """Seconds since the clock started."""
        return time.monotonic() - self.t0

    def left(self) -> float:
        """Seconds until no new work may start (the deadline less the safety margin)."""
        return self.deadline - self.margin - time.monotonic()

    def estimate(self, k: KernelInfo) -> float:
        """A kernel's share of the model time at nominal rates (orders kernels, splits the budget)."""
        flops, bw = NOMINAL.get(k.target, NOMINAL["wasm"])
        return k.occurrences * (k.flops / flops + k.bytes / bw + 5e-6)

    def first_guess(self, k: KernelInfo) -> float:
        """Seconds to lower and measure a kernel's default before anything of it is known:
        nominal rates (pessimistic), the runner's timing policy, and the runner's start-up."""
        flops, bw = NOMINAL.get(k.target, NOMINAL["wasm"])
        run = k.flops / flops + k.bytes / bw
        t = getattr(self.runner, "timing", None)
        runs, min_time = getattr(t, "min_runs", 3), getattr(t, "min_time", 0.05)
        lower = 1.25 * max(self.lower_all[-8:]) if self.lower_all else 0.15
        start = 0.5 if self.measured == 0 else 0.0
        return lower + max(min_time, runs * run) + 0.05 + start

    def measure(self, st: KernelState, cand: Candidate, cutoff: float | None = None,
                timeout: float | None = None) -> Measurement:  # fmt: skip
        """One measurement within the deadline: none starts when it is not expected to end in
        time; the runner is told when to stop (`max_time`) and cut (`timeout`) at the deadline.
        Raises BudgetSpent, or CandidateError for a broken candidate."""
        left = self.left()
        if left < st.measure_est():
            raise BudgetSpent
        full = timeout if timeout is not None else st.timeout
        limit = min(full, left + 0.5 * self.margin)
        kw = {"max_time": max(0.0, left - 0.02)} if self._max_time else {}
        t0 = time.monotonic()
        try:
            m = self.runner.measure(cand, timeout=limit, cutoff=cutoff, **kw)
        except CandidateError as e:
            if e.reason == "timeout" and limit < full:
                raise BudgetSpent from None
            raise
        finally:
            st.measure_s.append(time.monotonic() - t0)
            self.measured += 1
        return m

    def measure_set(self, st: KernelState, cands: list[Candidate]) -> list[Measurement]:
        """The runner's measure_set (runs of the candidates interleaved) within the deadline."""
        left = self.left()
        need = len(cands) * st.measure_est()
        if left < need:
            raise BudgetSpent
        full = max(60.0, st.timeout * len(cands))
        limit = min(full, left + 0.5 * self.margin)
        t0 = time.monotonic()
        try:
            ms = self.runner.measure_set(cands, timeout=limit, max_time=max(0.0, left - 0.02))  # type: ignore[attr-defined]
        except CandidateError as e:
            if e.reason == "timeout" and limit < full:
                raise BudgetSpent from None
            raise
        finally:
            st.measure_s.append((time.monotonic() - t0) / len(cands))
            self.measured += 1
        return ms


__all__ = ["NOMINAL", "BudgetSpent", "KernelState", "Clock"]
