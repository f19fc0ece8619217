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

The parts: the deadline and the estimates (budget.py), the final rounds and the pick
(finals.py), results, records and the table (report.py); this module runs the steps.

Records go to a RecordStore (records.py) keyed by the device fingerprint and the kernel
signature; a kernel that has a record is not tuned again (`force=True` retunes; `resume=True`
retunes records left incomplete by the budget).
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nnjit.errors import NNJitError
from nnjit.pipeline import load_fused_model
from nnjit.targets import target_named
from nnjit.tuning.budget import NOMINAL, BudgetSpent, Clock, KernelState
from nnjit.tuning.finals import FinalRounds, finals_cost, median, n_finalists, pick_best
from nnjit.tuning.kernels import Candidate, KernelInfo, lower_candidate, model_kernels, pass_options
from nnjit.tuning.plugins import get_runner, get_search, space_for
from nnjit.tuning.records import RecordStore
from nnjit.tuning.report import (
    KernelResult,
    Progress,
    Trial,
    TuneReport,
    kernel_record,
    relative_error,
)
from nnjit.tuning.runners import CandidateError, Runner
from nnjit.tuning.search import SearchContext
from nnjit.tuning.search import exhaustive as _exhaustive

log = logging.getLogger("nnjit.tuning")


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
        self.clock = Clock(runner, budget, deadline, margin)

    def tune(self, kernels: Sequence[KernelInfo]) -> list[KernelResult]:
        """Tunes `kernels` (distinct) within the budget (until the deadline when one was
        given); returns one result per kernel in the given order. Every kernel not taken from
        a record ends with a record, tuned or not, so a second run tunes nothing."""
        self.clock.restart()
        self.progress = Progress(self.budget, self.progress.enabled, self.progress.stream)
        self.progress.t0 = self.clock.t0
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
        total = sum(self.clock.estimate(k) for k in todo) or 1.0
        order = sorted(todo, key=self.clock.estimate, reverse=True)
        # 1. the defaults: measured (the reference outputs), so the time goes where it matters
        states: list[KernelState] = []
        for n, k in enumerate(order):
            r = results[k.signature]
            share_w = self.clock.estimate(k) / total
            if share_w < self.skip_below:
                r.status, r.message = "skipped", f"{share_w:.2%} of the estimated model time"
                continue
            if self.clock.left() < self.clock.first_guess(k):
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
        searched: list[KernelState] = []
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
            st.finalists = [0] * (1 + n_finalists(st, model, self.confirm))
        # 2. the search, kernels by measured weight, each a share of what is left after the
        # final rounds' reserve
        rest = sum(st.weight for st in searched)
        for st in searched:
            avail = self.clock.left() - self._finals_reserve(searched)
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
            end = time.monotonic() + 0.5 * max(0.0, self.clock.left() - self._finals_reserve(searched))
            for st in searched:
                if min(end, self.clock.deadline - self.clock.margin) - time.monotonic() <= st.step_est():
                    continue
                if all(i in st.ctx.results for i in range(len(st.points))):
                    continue
                self.runner.prepare(st.r.info, st.seed)  # the same inputs: the reference holds
                self._search(st, _exhaustive, end, end - time.monotonic())
                st.finished = st.finished or all(i in st.ctx.results for i in range(len(st.points)))
        # 4. final rounds: each kernel's default and best few again, interleaved, the kernels
        # in turn, so that load from other processes spreads over all of them alike
        FinalRounds(self.runner, self.clock, self.progress, self.tolerance,
                    self.final_rounds).run(searched)  # fmt: skip
        for st in searched:
            self._finish(st)

    def _finals_reserve(self, sts: list[KernelState]) -> float:
        """Seconds kept free for the final rounds during the search: their expected cost, but
        at most half of what is left (final rounds only compare what the search measured; they
        stop when time runs out; a reserve over what is left would starve every search)."""
        return min(finals_cost(sts, self.final_rounds), 0.5 * max(0.0, self.clock.left()))

    def _lower(self, st: KernelState | None, k: KernelInfo, opts: dict) -> Candidate:
        t0 = time.monotonic()
        try:
            return lower_candidate(k, opts)
        finally:
            dt = time.monotonic() - t0
            self.clock.lower_all.append(dt)
            if st is not None:
                st.lower_s.append(dt)

    def _start(self, r: KernelResult, seed: int, label: str) -> KernelState | None:
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
        st = KernelState(r, points, seed, label, np.zeros(0), {default.code_hash: 0},
                         {0: default}, {}, max(60.0, 10 * self.candidate_timeout))  # fmt: skip
        st.lower_s.append(default.lower_s)
        flops, bw = NOMINAL.get(k.target, NOMINAL["wasm"])
        t = getattr(self.runner, "timing", None)
        guess = max(getattr(t, "min_time", 0.05), getattr(t, "min_runs", 3) * (k.flops / flops + k.bytes / bw))
        st.measure_s.append(guess + 0.05 + (0.5 if self.clock.measured == 0 else 0.0))
        first = self.clock.measured == 0
        try:
            dm = self.clock.measure(st, default)
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
        r.trials.append(Trial(0, {}, dm.score, dm.median, at=self.clock.elapsed()))
        runs = getattr(getattr(self.runner, "timing", None), "max_runs", 30)
        st.ref = dm.output
        st.times[0] = list(dm.times)
        st.timeout = self.candidate_timeout + 20 * dm.median * runs
        st.weight = dm.score * k.occurrences
        st.ctx = SearchContext(k, points, lambda i: self._measure(st, i), lambda: 0.0)
        st.ctx.results[0] = dm.score
        return st

    def _measure(self, st: KernelState, i: int) -> float | None:
        r, k, opts = st.r, st.r.info, st.points[i]
        if self.clock.left() < st.step_est():
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
                                  at=self.clock.elapsed(), same_as=same))  # fmt: skip
            return t.time if t else None
        try:
            cutoff = self.cutoff * r.best_time  # type: ignore[operator]
            m = self.clock.measure(st, cand, cutoff=cutoff)
        except CandidateError as e:
            st.by_code[cand.code_hash] = i
            return self._drop(r, i, opts, e.reason, e.message)
        st.by_code[cand.code_hash] = i
        err = relative_error(m.output, st.ref)
        if not err <= self.tolerance:
            return self._drop(r, i, opts, "wrong", f"relative error {err:.3g} > {self.tolerance:g}")
        st.cands[i] = cand
        st.times[i] = list(m.times)
        trial = Trial(i, opts, m.score, m.median, at=self.clock.elapsed())
        r.trials.append(trial)
        if self.on_trial is not None:
            self.on_trial(r, trial)
        if m.score < r.best_time:  # type: ignore[operator]
            r.best_time, r.best_index = m.score, i
        return m.score

    def _search(self, st: KernelState, strategy: Callable[[SearchContext], None], end: float,
                share: float) -> None:  # fmt: skip
        t_start = time.monotonic()
        st.ctx._time_left = lambda: min(end, self.clock.deadline - self.clock.margin) - time.monotonic() - st.step_est()
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

    def _finish(self, st: KernelState, pick: bool = True) -> None:
        """Makes the pick (finals.pick_best; `pick=False`: the default stays) and the
        kernel's status, message and record."""
        r = st.r
        best = pick_best(st, self.min_gain) if pick else 0
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
                    rounds += f"; {median(st.pairs[best]):.3f} of the default's time (paired median)"
                parts.append(rounds)
            r.message = "; ".join(parts)
        self._save(r, flush=False)

    def _drop(self, r: KernelResult, i: int, opts: dict, reason: str, message: str) -> None:
        msg = " ".join(str(message).split())[:300]
        log.info("%s: point %s dropped (%s): %s", r.info.describe(), pass_options(opts), reason, msg)
        trial = Trial(i, opts, None, reason=reason, message=msg, at=self.clock.elapsed())
        r.trials.append(trial)
        if self.on_trial is not None:
            self.on_trial(r, trial)
        return None

    def _save(self, r: KernelResult, flush: bool = True) -> None:
        kernel_file = str(self.store.kernel_file(r.info.signature)) if self.store is not None else None
        r.record = kernel_record(r, self.search_name, kernel_file)
        if self.store is not None:
            self.store.put(r.record, r.info.module_text)
            if flush:
                self.store.save()


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
