"""The tuner: for each distinct kernel of a model, measure the points of its space on a runner
and keep the fastest one that computes the same numbers as the default schedule.

    from nnjit.tuning import tune_model
    report = tune_model("model.onnx", backend="wasm", budget=30)
    compile_model("model.onnx", "out/", tuning_records=report.store)

Kernels are distinct by signature (kernels.py). A kernel's default schedule is lowered and
measured first (on fresh random inputs, `Runner.prepare`): its output is the reference, and
its time x launches its weight. The search strategy then measures points of the space; each
point is lowered and printed (cheap), identical code is measured once, and a candidate is
dropped with a logged reason when the lowering rejects its options ("invalid"), the driver
rejects it ("rejected"), it runs past the timeout ("timeout": the measuring process is killed
and restarted), it kills the measuring process ("crashed") or its output differs from the
default's by more than `tolerance` in relative error max|got - ref| / max|ref| ("wrong").
Last, final rounds measure each kernel's default and finalists again, interleaved (timing
drift and other processes' load hit them alike), and the pick is the fastest over all its
runs; it must beat the default by `min_gain` (2%) or the default stays.

Budget: a whole-model wall-clock budget (default 30 s) is a hard cap (`deadline`; tune_model
counts the model's import in it). In order: the defaults of kernels over `skip_below` of the
estimated model time (FLOPs and bytes at nominal rates, times launches); the search of kernels
over `search_below` of the measured model time, heaviest first, each a share of what is left
(less the final rounds' reserve: their expected cost, at most half of what is left) in
proportion to its weight, what it does not use passing on; the heaviest kernels' unmeasured
points while time is left (`refine`); the final rounds. The first measurement of a run pays
the runner's start-up (wgpu: making the device), so its wall time is not taken as an estimate
of the next ones. A kernel whose search the budget cut ends "partial", its record's message
saying why.
No step starts that is not expected to end before the deadline (less `margin`); the runner is
told the deadline (`max_time`, `timeout`). Every kernel ends with a record, tuned or not.

Records go to a RecordStore (records.py) keyed by the device fingerprint and the kernel
signature; a kernel that has a record is not tuned again (`force=True` retunes; `resume=True`
retunes records left incomplete by the budget).
"""

from __future__ import annotations

import inspect
import logging
import math
import os
import random
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnjit.errors import NNJitError
from nnjit.pipeline import load_fused_model
from nnjit.targets import target_named
from nnjit.tuning.kernels import Candidate, KernelInfo, lower_candidate, model_kernels, pass_options
from nnjit.tuning.plugins import get_runner, get_search, space_for
from nnjit.tuning.records import RecordStore
from nnjit.tuning.runners import CandidateError, Measurement, Runner
from nnjit.tuning.search import SearchContext
from nnjit.tuning.search import exhaustive as _exhaustive
from nnjit.tuning.space import DeviceInfo, replay_line

log = logging.getLogger("nnjit.tuning")

NOMINAL = {"wasm": (15e9, 4e9), "wgsl": (200e9, 50e9)}
"""target -> (FLOP/s, bytes/s) used only to order kernels and split the budget."""


def relative_error(got: np.ndarray, ref: np.ndarray) -> float:
    """max|got - ref| / max|ref| over the finite entries of ref; inf when the non-finite
    entries (NaN poison included) are not in the same places."""
    g = np.asarray(got, dtype=np.float64).reshape(-1)
    r = np.asarray(ref, dtype=np.float64).reshape(-1)
    if g.shape != r.shape:
        return math.inf
    bad_r, bad_g = ~np.isfinite(r), ~np.isfinite(g)
    if np.any(bad_r != bad_g):
        return math.inf
    ok = ~bad_r
    if not np.any(ok):
        return 0.0
    diff = float(np.max(np.abs(g[ok] - r[ok])))
    scale = float(np.max(np.abs(r[ok])))
    if scale == 0.0:
        return 0.0 if diff == 0.0 else math.inf
    return diff / scale


@dataclass
class Trial:
    """One measured (or dropped) point."""

    index: int
    options: dict
    time: float | None  # seconds (the runner's score), None when dropped
    median: float | None = None
    reason: str | None = None  # why it was dropped
    message: str = ""
    at: float = 0.0  # seconds since the tuning run started
    same_as: int | None = None  # index of an earlier point with identical code


@dataclass
class KernelResult:
    info: KernelInfo
    status: str = "pending"  # tuned | cached | skipped | failed | partial
    default_time: float | None = None
    best_time: float | None = None
    best_index: int = 0
    best_options: dict = field(default_factory=dict)
    best_effective: dict = field(default_factory=dict)
    points: int = 0
    trials: list[Trial] = field(default_factory=list)
    complete: bool = False
    seconds: float = 0.0
    message: str = ""
    record: dict | None = None

    @property
    def speedup(self) -> float | None:
        if self.default_time and self.best_time:
            return self.default_time / self.best_time
        return None

    @property
    def dropped(self) -> list[Trial]:
        return [t for t in self.trials if t.reason is not None]


@dataclass
class TuneReport:
    backend: str
    runner: str
    device: DeviceInfo
    kernels: list[KernelResult]
    seconds: float
    """Wall time of the whole run (tune_model: the model's import included)."""
    budget: float
    store: RecordStore | None
    search: str
    import_seconds: float = 0.0

    def model_times(self) -> tuple[float, float]:
        """Estimated model time (sum over launches) with default and with picked schedules,
        over the kernels that have both times."""
        d = b = 0.0
        for k in self.kernels:
            if k.default_time is not None:
                d += k.default_time * k.info.occurrences
                b += (k.best_time or k.default_time) * k.info.occurrences
        return d, b

    def table(self) -> str:
        """The per-kernel table printed by `nnjit tune`."""
        rows = [("kernel", "x", "status", "default ms", "best ms", "speedup", "tried", "s",
                 "replay")]  # fmt: skip
        for k in self.kernels:
            rec = k.record or {}
            rows.append((
                k.info.describe(), str(k.info.occurrences), k.status,
                f"{k.default_time * 1e3:.3f}" if k.default_time else "-",
                f"{k.best_time * 1e3:.3f}" if k.best_time else "-",
                f"{k.speedup:.2f}x" if k.speedup else "-",
                f"{len([t for t in k.trials if t.reason is None])}/{k.points}" if k.points else "-",
                f"{k.seconds:.1f}" if k.seconds else "-",
                rec.get("replay", "") if rec.get("options") else "(default)",
            ))  # fmt: skip
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
        lines = []
        for r in rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + "  " + r[-1])
        for k in self.kernels:  # why a kernel's search ended early or never ran
            if k.status in ("partial", "skipped", "failed") and k.message:
                lines.append(f"  {k.info.describe()} x{k.info.occurrences} {k.status}: {k.message}")
        d, b = self.model_times()
        if d:
            lines.append(f"estimated model time: {d * 1e3:.2f} ms default -> {b * 1e3:.2f} ms "
                         f"tuned ({d / b:.2f}x); tuning took {self.seconds:.1f} s (import "
                         f"{self.import_seconds:.1f} s included) of a {self.budget:g} s budget")  # fmt: skip
        return "\n".join(lines)


class Progress:
    """A one-line progress bar on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self, budget: float, enabled: bool = True, stream=None):
        self.budget = budget
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.t0 = time.monotonic()
        self._last = 0.0

    def update(self, text: str, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and not self.tty and now - self._last < 2.0:
            return
        self._last = now
        el = now - self.t0
        frac = min(1.0, el / self.budget) if self.budget > 0 else 1.0
        bar = "#" * int(frac * 20) + "." * (20 - int(frac * 20))
        line = f"[{bar}] {el:5.1f}/{self.budget:g} s  {text}"
        if self.tty:
            self.stream.write("\r" + line[:150].ljust(150))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


class BudgetSpent(Exception):
    """The deadline is too near for the next step: no new work starts."""


@dataclass
class _State:
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


class Tuner:
    """Tunes kernels on one runner (see the module doc)."""

    def __init__(
        self,
        runner: Runner,
        *,
        budget: float = 30.0,
        search: str | Callable[[SearchContext], None] = "greedy",
        store: RecordStore | None = None,
        tolerance: float = 1e-4,
        min_gain: float = 0.02,
        candidate_timeout: float = 10.0,
        confirm: int = 3,
        progress: bool = True,
        force: bool = False,
        resume: bool = False,
        seed: int | None = None,
        skip_below: float = 0.005,
        search_below: float = 0.01,
        on_trial: Callable[[KernelResult, Trial], None] | None = None,
        refine: bool = True,
        cutoff: float = 2.5,
        final_rounds: int = 3,
        deadline: float | None = None,
        margin: float = 0.2,
    ):
        self.runner = runner
        self.budget = float(budget)
        self.search_name = search if isinstance(search, str) else getattr(search, "__name__", "custom")
        self.search = get_search(search) if isinstance(search, str) else search
        self.device = runner.device()
        self.store = store
        self.tolerance = tolerance
        self.min_gain = min_gain
        self.candidate_timeout = candidate_timeout
        self.confirm = confirm
        self.progress = Progress(self.budget, progress)
        self.force = force
        self.resume = resume
        self.seed = seed if seed is not None else random.SystemRandom().randrange(1 << 31)
        self.skip_below = skip_below
        self.search_below = search_below
        self.on_trial = on_trial
        self.refine = refine
        self.cutoff = cutoff
        self.final_rounds = final_rounds
        self.fixed_deadline = deadline
        self.margin = margin
        self.t0 = time.monotonic()
        self.deadline = deadline if deadline is not None else self.t0 + self.budget
        self._measured = 0
        self._lower_all: list[float] = []
        try:
            self._max_time = "max_time" in inspect.signature(runner.measure).parameters
        except (TypeError, ValueError):
            self._max_time = False

    # ------------------------------------------------------------------------------ budget

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def left(self) -> float:
        """Seconds until no new work may start (the deadline less the safety margin)."""
        return self.deadline - self.margin - time.monotonic()

    def estimate(self, k: KernelInfo) -> float:
        flops, bw = NOMINAL.get(k.target, NOMINAL["wasm"])
        return k.occurrences * (k.flops / flops + k.bytes / bw + 5e-6)

    def _first_guess(self, k: KernelInfo) -> float:
        """Seconds to lower and measure a kernel's default before anything of it is known:
        nominal rates (pessimistic), the runner's timing policy, and the runner's start-up."""
        flops, bw = NOMINAL.get(k.target, NOMINAL["wasm"])
        run = k.flops / flops + k.bytes / bw
        t = getattr(self.runner, "timing", None)
        runs, min_time = getattr(t, "min_runs", 3), getattr(t, "min_time", 0.05)
        lower = 1.25 * max(self._lower_all[-8:]) if self._lower_all else 0.15
        start = 0.5 if self._measured == 0 else 0.0
        return lower + max(min_time, runs * run) + 0.05 + start

    # ------------------------------------------------------------------------------- run

    def tune(self, kernels: Sequence[KernelInfo]) -> list[KernelResult]:
        """Tunes `kernels` (distinct) within the budget (until the deadline when one was
        given); returns one result per kernel in the given order. Every kernel not taken from
        a record ends with a record, tuned or not, so a second run tunes nothing."""
        self.t0 = time.monotonic()
        if self.fixed_deadline is not None:
            self.deadline = self.fixed_deadline
            self.t0 = self.deadline - self.budget
        else:
            self.deadline = self.t0 + self.budget
        self.progress = Progress(self.budget, self.progress.enabled, self.progress.stream)
        self.progress.t0 = self.t0
        results = {k.signature: KernelResult(k) for k in kernels}
        todo: list[KernelInfo] = []
        for k in kernels:
            rec = self.store.get(k.signature) if self.store is not None else None
            if rec is not None and not self.force and not (self.resume and rec.get("status") != "tuned"):
                r = results[k.signature]
                r.status, r.record = "cached", rec
                r.default_time, r.best_time = rec.get("default_time"), rec.get("best_time")
                r.best_options = dict(rec.get("options", {}))
                r.points = int(rec.get("points", 0))
                continue
            todo.append(k)
        try:
            self._tune(todo, results)
        finally:
            for k in todo:  # every kernel gets a record: a second run tunes nothing
                r = results[k.signature]
                if r.record is None:
                    if r.status == "pending":
                        r.status, r.message = "skipped", "budget spent"
                    self._save(r, flush=False)
            if self.store is not None and todo:
                self.store.save()
            self.progress.done()
        return [results[k.signature] for k in kernels]

    def _tune(self, todo: list[KernelInfo], results: dict[str, KernelResult]) -> None:
        total = sum(self.estimate(k) for k in todo) or 1.0
        order = sorted(todo, key=self.estimate, reverse=True)
        # 1. the defaults: measured (the reference outputs), so the time goes where it matters
        states: list[_State] = []
        for n, k in enumerate(order):
            r = results[k.signature]
            share_w = self.estimate(k) / total
            if share_w < self.skip_below:
                r.status, r.message = "skipped", f"{share_w:.2%} of the estimated model time"
                continue
            if self.left() < self._first_guess(k):
                r.status, r.message = "skipped", "budget spent"
                continue
            label = f"kernel {n + 1}/{len(order)} {k.describe()} x{k.occurrences}"
            try:
                st = self._start(r, self.seed + n, label)
            except BudgetSpent:
                r.status, r.message = "skipped", "budget spent"
                continue
            if st is not None:
                states.append(st)
        model = sum(st.weight for st in states) or 1.0
        searched: list[_State] = []
        for st in sorted(states, key=lambda s: -s.weight):
            share = st.weight / model
            if share < self.search_below or len(st.points) < 2:
                st.r.status = "skipped"
                st.r.message = (f"{share:.2%} of the measured model time" if len(st.points) > 1
                                else "a space of one point")  # fmt: skip
                self._finish(st, pick=False)
                continue
            searched.append(st)
        for st in searched:  # finalists: more where the kernel matters more
            st.finalists = [0] * (1 + self._n_finalists(st, model))
        # 2. the search, kernels by measured weight, each a share of what is left after the
        # final rounds' reserve
        rest = sum(st.weight for st in searched)
        for st in searched:
            avail = self.left() - self._finals_reserve(searched)
            share = max(0.0, avail) * st.weight / (rest or 1.0)
            end = time.monotonic() + share
            rest -= st.weight
            if avail <= st.step_est():
                st.stop = (f"no time left for its search: {max(0.0, avail):.1f} s after the final "
                           f"rounds' reserve, {st.step_est():.2f} s a step")  # fmt: skip
                continue
            self.runner.prepare(st.r.info, st.seed)
            self._search(st, self.search, end, share)
        # 3. half the time left: the most expensive kernels go on with the points not measured
        # yet; the other half goes to more final rounds (on a loaded machine more samples of
        # the finalists matter more than more points)
        if self.refine:
            end = time.monotonic() + 0.5 * max(0.0, self.left() - self._finals_reserve(searched))
            for st in searched:
                if min(end, self.deadline - self.margin) - time.monotonic() <= st.step_est():
                    continue
                if all(i in st.ctx.results for i in range(len(st.points))):
                    continue
                self.runner.prepare(st.r.info, st.seed)  # the same inputs: the reference holds
                self._search(st, _exhaustive, end, end - time.monotonic())
                st.finished = st.finished or all(i in st.ctx.results for i in range(len(st.points)))
        # 4. final rounds: each kernel's default and best few again, interleaved, the kernels
        # in turn, so that load from other processes spreads over all of them alike
        self._finals(searched)
        for st in searched:
            self._finish(st)

    def _n_finalists(self, st: _State, model: float) -> int:
        """`confirm` finalists besides the default for kernels over 5% of the model time (one
        more over 20%), one below."""
        share = st.weight / model
        n = self.confirm + (1 if share >= 0.2 else 0) if share >= 0.05 else min(self.confirm, 1)
        return max(0, n)

    def _finals_cost(self, sts: list[_State]) -> float:
        """Seconds the final rounds are expected to take."""
        per_round = sum(len(st.finalists) * st.measure_est() + 0.02 for st in sts if len(st.finalists) > 1)
        return self.final_rounds * per_round

    def _finals_reserve(self, sts: list[_State]) -> float:
        """Seconds kept free for the final rounds during the search: their expected cost, but
        at most half of what is left (final rounds only compare what the search measured; they
        stop when time runs out; a reserve over what is left would starve every search)."""
        return min(self._finals_cost(sts), 0.5 * max(0.0, self.left()))

    def _save(self, r: KernelResult, flush: bool = True) -> None:
        k = r.info
        eff = r.best_effective or (k.default or {})
        rec = {
            "signature": k.signature, "kind": k.kind, "target": k.target,
            "describe": k.describe(), "options": _jsonable(pass_options(r.best_options)),
            "effective": _jsonable(eff), "default_time": r.default_time,
            "best_time": r.best_time, "speedup": r.speedup,
            "measured": len([t for t in r.trials if t.reason is None and t.same_as is None]),
            "dropped": [{"options": _jsonable(pass_options(t.options)), "reason": t.reason,
                         "message": t.message[:200]} for t in r.dropped],
            "points": r.points, "complete": r.complete, "status": r.status,
            "message": r.message, "search": self.search_name, "seconds": round(r.seconds, 3),
            "time": time.time(),
        }  # fmt: skip
        kernel_file = str(self.store.kernel_file(k.signature)) if self.store is not None else None
        rec["replay"] = replay_line(rec, kernel_file)
        r.record = rec
        if self.store is not None:
            self.store.put(rec, k.module_text)
            if flush:
                self.store.save()

    def _measure_raw(self, st: _State, cand: Candidate, cutoff: float | None = None,
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
            self._measured += 1
        return m

    def _measure_set_raw(self, st: _State, cands: list[Candidate]) -> list[Measurement]:
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
            self._measured += 1
        return ms

    def _lower(self, st: _State | None, k: KernelInfo, opts: dict) -> Candidate:
        t0 = time.monotonic()
        try:
            return lower_candidate(k, opts)
        finally:
            dt = time.monotonic() - t0
            self._lower_all.append(dt)
            if st is not None:
                st.lower_s.append(dt)

    def _start(self, r: KernelResult, seed: int, label: str) -> _State | None:
        """Fresh inputs, the default lowered and measured (the reference), the space."""
        k = r.info
        t_start = time.monotonic()
        self.progress.update(label, force=True)
        self.runner.prepare(k, seed)
        try:
            default = self._lower(None, k, {})
        except NNJitError as e:
            r.status, r.message = "failed", f"the default schedule does not lower: {e}"
            return None
        k.default = default.effective
        points = space_for(k, self.device)
        st = _State(r, points, seed, label, np.zeros(0), {default.code_hash: 0}, {0: default},
                    {}, max(60.0, 10 * self.candidate_timeout))  # fmt: skip
        st.lower_s.append(default.lower_s)
        flops, bw = NOMINAL.get(k.target, NOMINAL["wasm"])
        t = getattr(self.runner, "timing", None)
        guess = max(getattr(t, "min_time", 0.05), getattr(t, "min_runs", 3) * (k.flops / flops + k.bytes / bw))
        st.measure_s.append(guess + 0.05 + (0.5 if self._measured == 0 else 0.0))
        first = self._measured == 0
        try:
            dm = self._measure_raw(st, default)
        except CandidateError as e:
            r.status, r.message = "failed", f"the default schedule failed on the runner: {e}"
            log.warning("%s: %s", k.describe(), r.message)
            return None
        finally:
            r.seconds += time.monotonic() - t_start
        st.measure_s = st.measure_s[1:]  # the guess goes: the real one is in
        if first:  # the runner started during that one (a device, a process: 1-2 s for wgpu on
            # lavapipe), which would make every estimate of this kernel's steps, and so the
            # final rounds' reserve, seconds too long: its runs and a call's overhead instead
            st.measure_s = [min(st.measure_s[0], 0.05 + 1.5 * float(np.sum(dm.times)))]
        if k.output["dtype"] == "f32" and not np.all(np.isfinite(dm.output)):
            log.info("%s: the default's output has non-finite values on random inputs", k.describe())
        r.default_time = r.best_time = dm.score
        r.best_index = 0
        r.best_effective = dict(default.effective)
        r.points = len(points)
        r.trials.append(Trial(0, {}, dm.score, dm.median, at=self.elapsed()))
        runs = getattr(getattr(self.runner, "timing", None), "max_runs", 30)
        st.ref = dm.output
        st.times[0] = list(dm.times)
        st.timeout = self.candidate_timeout + 20 * dm.median * runs
        st.weight = dm.score * k.occurrences
        st.ctx = SearchContext(k, points, lambda i: self._measure(st, i), lambda: 0.0)
        st.ctx.results[0] = dm.score
        return st

    def _measure(self, st: _State, i: int) -> float | None:
        r, k, opts = st.r, st.r.info, st.points[i]
        if self.left() < st.step_est():
            raise BudgetSpent
        gain = r.default_time / r.best_time  # type: ignore[operator]
        self.progress.update(f"{st.label}  point {i + 1}/{len(st.points)}  best {gain:.2f}x")
        try:
            cand = self._lower(st, k, opts)
        except Exception as e:  # noqa: BLE001 - an invalid point is dropped
            return self._drop(r, i, opts, "invalid", str(e))
        same = st.by_code.get(cand.code_hash)
        if same is not None:
            t = next((x for x in r.trials if x.index == same), None)
            r.trials.append(Trial(i, opts, t.time if t else None, t.median if t else None,
                                  at=self.elapsed(), same_as=same))  # fmt: skip
            return t.time if t else None
        try:
            cutoff = self.cutoff * r.best_time  # type: ignore[operator]
            m = self._measure_raw(st, cand, cutoff=cutoff)
        except CandidateError as e:
            st.by_code[cand.code_hash] = i
            return self._drop(r, i, opts, e.reason, e.message)
        st.by_code[cand.code_hash] = i
        err = relative_error(m.output, st.ref)
        if not err <= self.tolerance:
            return self._drop(r, i, opts, "wrong", f"relative error {err:.3g} > {self.tolerance:g}")
        st.cands[i] = cand
        st.times[i] = list(m.times)
        trial = Trial(i, opts, m.score, m.median, at=self.elapsed())
        r.trials.append(trial)
        if self.on_trial is not None:
            self.on_trial(r, trial)
        if m.score < r.best_time:  # type: ignore[operator]
            r.best_time, r.best_index = m.score, i
        return m.score

    def _search(self, st: _State, strategy: Callable[[SearchContext], None], end: float,
                share: float) -> None:  # fmt: skip
        t_start = time.monotonic()
        st.ctx._time_left = lambda: min(end, self.deadline - self.margin) - time.monotonic() - st.step_est()
        done = False
        try:
            strategy(st.ctx)
            done = st.ctx.time_left() > 0
        except BudgetSpent:
            pass
        except CandidateError as e:  # a strategy that lets one through
            log.warning("%s: search stopped: %s", st.r.info.describe(), e)
            st.stop = f"search stopped: {e}"
        st.finished = done
        if not done and not st.stop.startswith("search stopped"):
            seen = len(st.ctx.results)
            st.stop = (f"the budget ran out after {seen} of {len(st.points)} points (its last "
                       f"share: {share:.1f} s)")  # fmt: skip
        st.r.seconds += time.monotonic() - t_start

    def _finals(self, sts: list[_State]) -> None:
        """Final rounds: per kernel, the default and its best few (by the search's scores) are
        measured again, each once per round in a rotating order, the kernels in turn;
        `final_rounds` rounds (their time is kept free during the search), and up to 3x as
        many more while time is left. Runners with `measure_set` interleave the finalists run by
        run (one request per kernel and round); the others measure them one after the other.
        A kernel's round counts only when all its finalists were measured in it. The pick is
        then made over every run of each finalist (`_finish`)."""
        for st in sts:
            st.finalists = [0] + self._pick_finalists(st, len(st.finalists) - 1)
        active = [st for st in sts if len(st.finalists) > 1]
        # the planned rounds (their time was kept free), then more while time is left
        for rnd in range(4 * self.final_rounds):
            went = False
            for st in active:
                if st.rounds < rnd or len(st.finalists) < 2:
                    continue
                if self.left() < len(st.finalists) * st.measure_est() + 0.02:
                    continue
                t_start = time.monotonic()
                self.progress.update(f"final round {rnd + 1}: {st.r.info.describe()}")
                self.runner.prepare(st.r.info, st.seed)
                order = st.finalists[rnd % len(st.finalists):] + st.finalists[: rnd % len(st.finalists)]
                got: dict[int, list[float]] = {}
                complete = True
                if hasattr(self.runner, "measure_set"):
                    try:
                        ms = self._measure_set_raw(st, [st.cands[i] for i in order])
                    except BudgetSpent:
                        ms = None
                    except CandidateError as e:
                        log.warning("%s: final round failed: %s", st.r.info.describe(), e)
                        ms = None
                        st.finalists = st.finalists[:1]  # no more rounds for this kernel
                    if ms is None:
                        st.r.seconds += time.monotonic() - t_start
                        continue
                    d = ms[order.index(0)].times
                    for i, m in zip(order, ms):
                        if i != 0 and relative_error(m.output, st.ref) > self.tolerance:
                            log.warning("%s: final round: point %d computes other numbers now",
                                        st.r.info.describe(), i)  # fmt: skip
                            st.finalists.remove(i)
                            st.times.pop(i, None)
                        else:
                            st.final[i].extend(m.times)
                            st.pairs[i].extend(a / b for a, b in zip(m.times, d) if b > 0)
                    st.rounds += 1
                    went = True
                    st.r.seconds += time.monotonic() - t_start
                    continue
                for i in order:
                    try:
                        m = self._measure_raw(st, st.cands[i], timeout=max(60.0, st.timeout))
                    except BudgetSpent:
                        complete = False
                        break
                    except CandidateError as e:
                        log.warning("%s: final round: point %d failed: %s", st.r.info.describe(), i, e)
                        complete = False
                        if i != 0:
                            st.finalists.remove(i)
                            st.times.pop(i, None)
                        break
                    if relative_error(m.output, st.ref) > self.tolerance and i != 0:
                        log.warning("%s: final round: point %d computes other numbers now",
                                    st.r.info.describe(), i)  # fmt: skip
                        st.finalists.remove(i)
                        st.times.pop(i, None)
                        complete = False
                        break
                    got[i] = list(m.times)
                st.r.seconds += time.monotonic() - t_start
                if complete:
                    for i, ts in got.items():
                        st.final[i].extend(ts)
                        st.pairs[i].append(_score(ts) / _score(got[0]))
                    st.rounds += 1
                    went = True
            if not went:
                break

    @staticmethod
    def _pick_finalists(st: _State, n: int) -> list[int]:
        """The best measured point by the search's scores, then the best of each other family
        (points with the same register tile, or the same value of the first option where
        there is no `reg`) not yet in, then the next best, n in all: a family whose points
        were all measured under a burst of load still gets its best one measured again."""
        ok = [i for i in st.times if i != 0 and i in st.cands and not _hook(st.points[i])]
        ranked = sorted(ok, key=lambda i: _score(st.times[i]))
        keys = [k for p in st.points for k in p if not str(k).startswith("@")]
        family_key = "reg" if "reg" in keys else (keys[0] if keys else None)
        out: list[int] = ranked[:1] if n > 0 else []
        families: set = {repr(st.ctx.normalized(i).get(family_key)) for i in [0, *out]}
        for i in ranked:
            fam = repr(st.ctx.normalized(i).get(family_key)) if family_key else None
            if len(out) < n and (fam is None or fam not in families):
                out.append(i)
                families.add(fam)
        for i in ranked:
            if len(out) < n and i not in out:
                out.append(i)
        return sorted(out, key=lambda i: _score(st.times[i]))

    def _finish(self, st: _State, pick: bool = True) -> None:
        """Makes the pick: the finalist with the lowest median ratio of its time to the
        default's in the same final round (runs interleaved: a burst of load slows both, the
        ratio holds; runs from other times are left out, so a default timed at a quiet moment
        cannot beat candidates that only met load), among those that beat the default by
        `min_gain` by that ratio and are not slower than it by the minimum over the final
        rounds' runs (the two statistics disagree when the load is too high to tell: the
        default stays). Without final rounds: the fastest measured point by the search's
        scores, by `min_gain`. Times shown are the minimum over the final rounds' runs."""
        r = st.r
        best = 0
        if pick:
            if st.rounds > 0:
                times = {i: st.final[i] for i in st.finalists if st.final.get(i)}
                rel = {i: _median(st.pairs[i]) for i in times if i != 0 and st.pairs.get(i)}
                rel[0] = 1.0
            else:
                times = {i: t for i, t in st.times.items() if i in st.cands and not _hook(st.points[i])}
                rel = {}
            if 0 not in times:
                times[0] = st.times[0]
            r.default_time = _score(times[0])
            if rel:  # the median ratio to the default over the rounds: load cancels out; a pick
                # must also not be slower than the default by the minimum over the rounds
                ok = [i for i in rel if i == 0 or (rel[i] <= 1 - self.min_gain
                                                   and _score(times[i]) <= _score(times[0]))]  # fmt: skip
                best = min(ok, key=lambda i: (rel[i], _score(times[i])))
            else:
                best = min(times, key=lambda i: _score(times[i]))
                if best != 0 and _score(times[best]) > r.default_time * (1 - self.min_gain):
                    best = 0
            r.best_time = _score(times[best])
        r.best_index = best
        if not pick:
            r.best_time = r.default_time
        r.best_options = dict(st.points[best]) if best else {}
        r.best_effective = dict(st.cands[best].effective)
        r.complete = all(i in st.ctx.results for i in range(len(st.points)))
        if pick:
            r.status = "tuned" if (st.finished or r.complete) else "partial"
            parts = [st.stop] if r.status == "partial" and st.stop else []
            if r.status == "partial" and not parts:
                parts.append("the search ended before the space did")
            if st.rounds:
                rounds = f"{st.rounds} final round(s) over {len(st.finalists)} finalists"
                if best:
                    rounds += f"; {_median(st.pairs[best]):.3f} of the default's time (paired median)"
                parts.append(rounds)
            r.message = "; ".join(parts)
        self._save(r, flush=False)

    def _drop(self, r: KernelResult, i: int, opts: dict, reason: str, message: str) -> None:
        msg = " ".join(str(message).split())[:300]
        log.info("%s: point %s dropped (%s): %s", r.info.describe(), pass_options(opts), reason, msg)
        trial = Trial(i, opts, None, reason=reason, message=msg, at=self.elapsed())
        r.trials.append(trial)
        if self.on_trial is not None:
            self.on_trial(r, trial)
        return None


def _median(xs: list[float]) -> float:
    v = sorted(xs)
    n = len(v)
    return (v[n // 2] + v[(n - 1) // 2]) / 2 if n else math.inf


def _hook(point: dict) -> bool:
    return any(str(key).startswith("@") for key in point)


def _score(times: list[float]) -> float:
    m = Measurement(times, np.zeros(0))
    return m.score


def _jsonable(d: Any) -> Any:
    if isinstance(d, dict):
        return {str(k): _jsonable(v) for k, v in d.items() if not str(k).startswith("@")}
    if isinstance(d, (list, tuple)):
        return [_jsonable(v) for v in d]
    if isinstance(d, (np.integer,)):
        return int(d)
    if isinstance(d, (np.floating,)):
        return float(d)
    return d


# --------------------------------------------------------------------------- model level


def default_runner(backend: str) -> str:
    return target_named(backend).default_runner


def _check_seconds(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise NNJitError(f"{name}={value!r}: give a finite number of seconds > 0")


def tune_model(
    model: Any,
    *,
    backend: str = "wasm",
    runner: str | Runner | None = None,
    runner_options: dict | None = None,
    budget: float = 30.0,
    search: str = "greedy",
    shapes: dict | None = None,
    cache_dir: str | os.PathLike | None = None,
    store: bool = True,
    progress: bool = True,
    force: bool = False,
    resume: bool = False,
    kernels: Sequence[str] | None = None,
    start: float | None = None,
    **tuner_options: Any,
) -> TuneReport:
    """Tunes every distinct kernel of an ONNX model for `backend` ("wasm" | "webgpu") on a
    runner (default: wasmtime for wasm, wgpu for webgpu) within `budget` seconds, saving
    records under the cache directory (see records.py). `kernels` restricts tuning to these
    signatures (prefixes).

    The budget is a hard cap on this call's wall time, everything included (the model's
    import and fusion, the runner's start, lowering, measuring, records, closing the runner),
    counted from `start` (a time.monotonic() value; default: the call). Kernels the budget
    does not reach keep their default schedule and still get a record."""
    _check_seconds("budget", budget)
    if "candidate_timeout" in tuner_options:
        _check_seconds("candidate_timeout", tuner_options["candidate_timeout"])
    tolerance = tuner_options.get("tolerance", 0.0)
    if not isinstance(tolerance, (int, float)) or not 0 <= tolerance < math.inf:
        raise NNJitError(f"tolerance={tolerance!r}: give a finite number >= 0")
    t_start = time.monotonic() if start is None else start
    deadline = t_start + float(budget)
    own = not (runner is not None and not isinstance(runner, str))
    r = get_runner(runner or default_runner(backend), **(runner_options or {})) if own else runner
    assert r is not None
    try:
        if own and hasattr(r, "start"):
            r.start()  # the measuring process starts up while the model is imported
        module, import_s = load_fused_model(model, shapes)
        infos = model_kernels(module, backend)
        if kernels:
            every = infos
            infos = [k for k in infos if any(k.signature.startswith(s) for s in kernels)]
            if every and not infos:
                raise NNJitError(f"no kernel's signature starts with {', '.join(map(repr, kernels))}",
                                 hint=f"the model's {len(every)} kernels start with e.g. "
                                 f"'{every[0].signature[:40]}'")  # fmt: skip
        if infos and r.target != infos[0].target:
            raise NNJitError(f"runner '{r.name}' runs {r.target} kernels, not {backend}'s")
        device = r.device()
        rs = RecordStore(device.fingerprint, cache_dir) if store else None
        tuner_options.setdefault("margin", 0.2 + (0.1 if own else 0.0))  # + closing the runner
        tuner = Tuner(r, budget=budget, search=search, store=rs, progress=progress, force=force,
                      resume=resume, deadline=deadline, **tuner_options)  # fmt: skip
        results = tuner.tune(infos)
    finally:
        if own:
            r.close()
    secs = time.monotonic() - t_start
    return TuneReport(backend, r.name, device, results, secs, budget, rs, tuner.search_name, import_s)


__all__ = ["Tuner", "TuneReport", "KernelResult", "Trial", "tune_model", "relative_error",
           "load_fused_model", "Progress", "BudgetSpent"]  # fmt: skip
