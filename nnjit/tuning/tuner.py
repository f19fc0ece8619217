"""The tuner: for each distinct kernel of a model, measure the points of its space on a runner
and keep the fastest one that computes the same numbers as the default schedule.

    from nnjit.tuning import tune_model
    report = tune_model("model.onnx", backend="wasm", budget=30)
    compile_model("model.onnx", "out/", tuning_records=report.store)

Per kernel (distinct by signature, see kernels.py), most expensive first:

1. fresh random inputs on the runner (`Runner.prepare`, a new seed per run);
2. the default schedule is lowered and measured: its output is the reference;
3. the search strategy measures points of the space; each point is lowered and printed
   (cheap), identical code is measured once, and a candidate is dropped with a logged reason
   when the lowering rejects its options ("invalid"), the driver rejects it ("rejected"), it
   runs past the timeout ("timeout": the measuring process is killed and restarted), it kills
   the measuring process ("crashed") or its output differs from the default's by more than
   `tolerance` in relative error max|got - ref| / max|ref| ("wrong");
4. the default and the best few are measured again, interleaved (timing drift and other
   processes' noise hit them alike), and the pick is the fastest; it must beat the default
   by `min_gain` (2%) or the default stays.

Budget: a whole-model wall-clock budget (default 30 s) covers all of it. Kernels are ordered
by estimated cost (FLOPs and bytes at nominal rates, times the number of launches); each
gets a share of what is left in proportion to its cost, and what it does not use passes on.
Kernels under 0.5% of the estimated model time are not searched (their record says so).

Records go to a RecordStore (records.py) keyed by the device fingerprint and the kernel
signature; a kernel that has a record is not tuned again (`force=True` retunes; `resume=True`
retunes records left incomplete by the budget).
"""

from __future__ import annotations

import logging
import math
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnjit.errors import NNJitError
from nnjit.tuning.kernels import Candidate, KernelInfo, lower_candidate, pass_options
from nnjit.tuning.records import RecordStore
from nnjit.tuning.runners import CandidateError, Measurement, Runner
from nnjit.tuning.search import SearchContext
from nnjit.tuning.search import exhaustive as _exhaustive
from nnjit.tuning.space import DeviceInfo, replay_line, space_for

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
        d, b = self.model_times()
        if d:
            lines.append(f"estimated model time: {d * 1e3:.2f} ms default -> {b * 1e3:.2f} ms "
                         f"tuned ({d / b:.2f}x); tuning took {self.seconds:.1f} s of a "
                         f"{self.budget:g} s budget")  # fmt: skip
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
        on_trial: Callable[[KernelResult, Trial], None] | None = None,
        refine: bool = True,
        cutoff: float = 2.5,
    ):
        from nnjit.tuning.plugins import get_search

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
        self.on_trial = on_trial
        self.refine = refine
        self.cutoff = cutoff
        self.t0 = time.monotonic()
        self.deadline = self.t0 + self.budget

    # ------------------------------------------------------------------------------ budget

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def estimate(self, k: KernelInfo) -> float:
        flops, bw = NOMINAL.get(k.target, NOMINAL["wasm"])
        return k.occurrences * (k.flops / flops + k.bytes / bw + 5e-6)

    # ------------------------------------------------------------------------------- run

    def tune(self, kernels: Sequence[KernelInfo]) -> list[KernelResult]:
        """Tunes `kernels` (distinct) within the budget; returns one result per kernel in the
        given order."""
        self.t0 = time.monotonic()
        self.deadline = self.t0 + self.budget
        self.progress = Progress(self.budget, self.progress.enabled, self.progress.stream)
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
        total = sum(self.estimate(k) for k in todo) or 1.0
        order = sorted(todo, key=self.estimate, reverse=True)
        states: list[_State] = []
        for n, k in enumerate(order):
            r = results[k.signature]
            share_w = self.estimate(k) / total
            if share_w < self.skip_below:
                r.status, r.message = "skipped", f"{share_w:.2%} of the estimated model time"
                self._save(r)
                continue
            if self.left() <= 0:
                r.status, r.message = "skipped", "budget spent"
                self._save(r)
                continue
            rest = sum(self.estimate(x) for x in order[n:]) or 1.0
            end = time.monotonic() + max(0.0, self.left()) * self.estimate(k) / rest
            label = f"kernel {n + 1}/{len(order)} {k.describe()} x{k.occurrences}"
            st = self._start(r, self.seed + n, label)
            if st is not None:
                self._search(st, self.search, end)
                self._finish(st)
                states.append(st)
            self._save(r)
        # time left: the most expensive kernels go on with the points not measured yet
        if self.refine:
            for st in states:
                if self.left() <= 0.5:
                    break
                if all(i in st.ctx.results for i in range(len(st.points))):
                    continue
                self.runner.prepare(st.r.info, st.seed)  # the same inputs: the reference holds
                self._search(st, _exhaustive, self.deadline)
                self._finish(st)
                self._save(st.r)
        self.progress.done()
        return [results[k.signature] for k in kernels]

    def _save(self, r: KernelResult) -> None:
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
            "search": self.search_name, "seconds": round(r.seconds, 3), "time": time.time(),
        }  # fmt: skip
        kernel_file = str(self.store.kernel_file(k.signature)) if self.store is not None else None
        rec["replay"] = replay_line(rec, kernel_file)
        r.record = rec
        if self.store is not None:
            self.store.put(rec, k.module_text)
            self.store.save()

    def _start(self, r: KernelResult, seed: int, label: str) -> _State | None:
        """Fresh inputs, the default lowered and measured (the reference), the space."""
        k = r.info
        t_start = time.monotonic()
        self.progress.update(label, force=True)
        self.runner.prepare(k, seed)
        try:
            default = lower_candidate(k, {})
        except NNJitError as e:
            r.status, r.message = "failed", f"the default schedule does not lower: {e}"
            return None
        k.default = default.effective
        try:
            dm = self.runner.measure(default, timeout=max(60.0, 10 * self.candidate_timeout))
        except CandidateError as e:
            r.status, r.message = "failed", f"the default schedule failed on the runner: {e}"
            log.warning("%s: %s", k.describe(), r.message)
            return None
        if k.output["dtype"] == "f32" and not np.all(np.isfinite(dm.output)):
            log.info("%s: the default's output has non-finite values on random inputs", k.describe())
        r.default_time = r.best_time = dm.score
        r.best_index = 0
        r.best_effective = dict(default.effective)
        points = space_for(k, self.device)
        r.points = len(points)
        r.trials.append(Trial(0, {}, dm.score, dm.median, at=self.elapsed()))
        runs = getattr(getattr(self.runner, "timing", None), "max_runs", 30)
        st = _State(r, points, seed, label, dm.output, {default.code_hash: 0}, {0: default},
                    {0: list(dm.times)}, self.candidate_timeout + 20 * dm.median * runs)  # fmt: skip
        st.ctx = SearchContext(k, points, lambda i: self._measure(st, i), lambda: 0.0)
        st.ctx.results[0] = dm.score
        r.seconds += time.monotonic() - t_start
        return st

    def _measure(self, st: _State, i: int) -> float | None:
        r, k, opts = st.r, st.r.info, st.points[i]
        gain = r.default_time / r.best_time  # type: ignore[operator]
        self.progress.update(f"{st.label}  point {i + 1}/{len(st.points)}  best {gain:.2f}x")
        try:
            cand = lower_candidate(k, opts)
        except Exception as e:  # noqa: BLE001 - an invalid point is dropped
            return self._drop(r, i, opts, "invalid", str(e))
        same = st.by_code.get(cand.code_hash)
        if same is not None:
            t = next((x for x in r.trials if x.index == same), None)
            r.trials.append(Trial(i, opts, t.time if t else None, t.median if t else None,
                                  at=self.elapsed(), same_as=same))  # fmt: skip
            return t.time if t else None
        st.by_code[cand.code_hash] = i
        try:
            cutoff = self.cutoff * r.best_time  # type: ignore[operator]
            m = self.runner.measure(cand, timeout=st.timeout, cutoff=cutoff)
        except CandidateError as e:
            return self._drop(r, i, opts, e.reason, e.message)
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

    def _search(self, st: _State, strategy: Callable[[SearchContext], None], end: float) -> None:
        t_start = time.monotonic()
        st.ctx._time_left = lambda: min(end, self.deadline) - time.monotonic()
        try:
            strategy(st.ctx)
        except CandidateError as e:  # a strategy that lets one through
            log.warning("%s: search stopped: %s", st.r.info.describe(), e)
        st.finished = st.ctx.time_left() > 0
        st.r.seconds += time.monotonic() - t_start

    def _finish(self, st: _State) -> None:
        """Confirms the best few against the default and makes the pick."""
        t_start = time.monotonic()
        r = st.r
        self._confirm(st)
        best = r.best_index
        if best != 0 and r.best_time is not None and r.default_time is not None:
            if r.best_time > r.default_time * (1 - self.min_gain):
                best = 0
        if any(str(key).startswith("@") for key in st.points[best]):  # hooks are never picked
            best = 0
        if best == 0:
            r.best_index, r.best_time = 0, r.default_time
        r.best_options = dict(st.points[best]) if best else {}
        r.best_effective = dict(st.cands[best].effective)
        r.complete = all(i in st.ctx.results for i in range(len(st.points)))
        r.status = "tuned" if (st.finished or r.complete) else "partial"
        r.seconds += time.monotonic() - t_start

    def _confirm(self, st: _State) -> None:
        """Measures the default and the best few again, interleaved, and recomputes each one's
        score over all its runs."""
        r, times = st.r, st.times
        if self.confirm <= 0 or len(times) < 2:
            return
        ranked = sorted((i for i in times if i != 0), key=lambda i: _score(times[i]))
        # out of time: the best one alone against the default (a small overrun, never more
        # than about a second past the budget)
        top = [0] + ranked[: self.confirm if self.left() > 0 else 1]
        for i in top:
            if self.left() < -1.0:
                break
            try:
                m = self.runner.measure(st.cands[i], timeout=max(60.0, st.timeout))
            except CandidateError as e:
                log.warning("%s: confirmation of point %d failed: %s", r.info.describe(), i, e)
                if i != 0:
                    times.pop(i, None)
                continue
            if relative_error(m.output, st.ref) <= self.tolerance:
                times[i].extend(m.times)
            elif i != 0:
                times.pop(i, None)
        r.default_time = _score(times[0])
        best = min((i for i in top if i in times), key=lambda i: _score(times[i]))
        r.best_index, r.best_time = best, _score(times[best])

    def _drop(self, r: KernelResult, i: int, opts: dict, reason: str, message: str) -> None:
        msg = " ".join(str(message).split())[:300]
        log.info("%s: point %s dropped (%s): %s", r.info.describe(), pass_options(opts), reason, msg)
        trial = Trial(i, opts, None, reason=reason, message=msg, at=self.elapsed())
        r.trials.append(trial)
        if self.on_trial is not None:
            self.on_trial(r, trial)
        return None


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


def load_fused_model(model: Any, shapes: dict | None = None):
    """(fused nn_tensor module, import seconds) of an ONNX model (path or bytes)."""
    from nnjit.compiler import TENSOR_PIPELINE, run_pipeline
    from nnjit.frontend import import_onnx

    t0 = time.perf_counter()
    imported = import_onnx(model, shapes=shapes)
    run_pipeline(imported.module, TENSOR_PIPELINE)
    return imported.module, time.perf_counter() - t0


def default_runner(backend: str) -> str:
    return "wgpu" if backend == "webgpu" else "wasmtime"


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
    **tuner_options: Any,
) -> TuneReport:
    """Tunes every distinct kernel of an ONNX model for `backend` ("wasm" | "webgpu") on a
    runner (default: wasmtime for wasm, wgpu for webgpu) within `budget` seconds, saving
    records under the cache directory (see records.py). `kernels` restricts tuning to these
    signatures (prefixes)."""
    from nnjit.tuning.kernels import model_kernels
    from nnjit.tuning.plugins import get_runner

    module, import_s = load_fused_model(model, shapes)
    infos = model_kernels(module, backend)
    if kernels:
        infos = [k for k in infos if any(k.signature.startswith(s) for s in kernels)]
    own = not (runner is not None and not isinstance(runner, str))
    r = get_runner(runner or default_runner(backend), **(runner_options or {})) if own else runner
    assert r is not None
    try:
        if infos and r.target != infos[0].target:
            raise NNJitError(f"runner '{r.name}' runs {r.target} kernels, not {backend}'s")
        device = r.device()
        rs = RecordStore(device.fingerprint, cache_dir) if store else None
        tuner = Tuner(r, budget=budget, search=search, store=rs, progress=progress, force=force,
                      resume=resume, **tuner_options)  # fmt: skip
        t0 = time.perf_counter()
        results = tuner.tune(infos)
        secs = time.perf_counter() - t0
    finally:
        if own:
            r.close()
    return TuneReport(backend, r.name, device, results, secs, budget, rs, tuner.search_name, import_s)


__all__ = ["Tuner", "TuneReport", "KernelResult", "Trial", "tune_model", "relative_error",
           "load_fused_model", "Progress"]  # fmt: skip
