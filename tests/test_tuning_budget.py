"""The tuner's budget and its final rounds, with fake runners (no real timing): the budget is a
hard cap on tune_model's wall time, kernels it does not reach keep the default and get a
record (a second run tunes nothing), a measurement that would run past the deadline is cut
without counting as a broken candidate, and the final rounds pick the truly fastest point
when single measurements are noisy."""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import pytest

from tests.test_tuning import MATMUL, _kernels

MODEL = Path(__file__).resolve().parent.parent / "nnjit" / "models" / "default.onnx"


class FakeRunner:
    """A runner plugin that computes nothing: every candidate returns the same output (so all
    are correct), after `sleep` seconds; its run times come from `timing(options, call)`."""

    name = "fake"
    target = "wasm"

    def __init__(self, sleep: float = 0.0, timing=None, hang=None):
        from nnjit.tuning.runners import TimingPolicy

        self.timing = TimingPolicy(3, 5, 0.0)
        self.sleep = sleep
        self.time_of = timing or (lambda options, call: [1e-3] * 3)
        self.hang = hang or (lambda options: False)
        self.calls: list[tuple[str, dict]] = []  # (kernel signature, options) per measurement
        self.kernel = None

    def device(self):
        from nnjit.tuning.space import DeviceInfo

        return DeviceInfo("wasm", {}, {"simd128", "threads", "relaxed-simd"}, threads=2,
                          fingerprint={"runner": "fake", "threads": 2})  # fmt: skip

    def prepare(self, kernel, seed):
        self.kernel = kernel

    def measure(self, cand, timeout, cutoff=None):
        from nnjit.tuning.runners import CandidateError, Measurement

        opts = {k: v for k, v in cand.options.items() if not k.startswith("@")}
        self.calls.append((self.kernel.signature, opts))
        if self.hang(cand.options):
            time.sleep(timeout)  # as a process runner does: it waits `timeout`, then kills
            raise CandidateError("timeout", f"no result after {timeout:.1f} s (process killed)")
        time.sleep(self.sleep)
        out = np.zeros(self.kernel.output["shape"], np.float32)
        return Measurement(list(self.time_of(opts, len(self.calls))), out)

    def close(self):
        pass


@pytest.fixture
def fake_runner():
    from nnjit.tuning.plugins import register_runner, unregister

    made: list[FakeRunner] = []

    def factory(**options):
        r = FakeRunner(sleep=0.25)
        made.append(r)
        return r

    register_runner("fake-sleepy", factory)
    try:
        yield made
    finally:
        unregister("runners", "fake-sleepy")


def test_budget_is_a_hard_cap_and_a_second_run_tunes_nothing(tmp_path, fake_runner):
    from nnjit.tuning.tuner import tune_model

    budget, slack = 3.0, 1.0  # each measurement sleeps 0.25 s: untimed, this takes minutes
    t0 = time.monotonic()
    report = tune_model(str(MODEL), backend="wasm", runner="fake-sleepy", budget=budget,
                        cache_dir=tmp_path, progress=False)  # fmt: skip
    wall = time.monotonic() - t0
    assert wall <= budget + slack and report.seconds <= budget + slack, (wall, report.seconds)
    (runner,) = fake_runner
    assert len(runner.calls) >= 3  # it did measure
    statuses = {k.status for k in report.kernels}
    assert "cached" not in statuses and statuses <= {"tuned", "partial", "skipped"}
    assert any(k.message == "budget spent" or k.status == "partial" for k in report.kernels)
    # every kernel has a record; those the budget did not reach keep the default
    records = report.store.records
    assert set(records) == {k.info.signature for k in report.kernels}
    for k in report.kernels:
        rec = records[k.info.signature]
        assert rec["status"] == k.status
        if k.default_time is None:
            assert rec["options"] == {}
    # a second run takes everything from the records and measures nothing
    report2 = tune_model(str(MODEL), backend="wasm", runner="fake-sleepy", budget=budget,
                         cache_dir=tmp_path, progress=False)  # fmt: skip
    assert {k.status for k in report2.kernels} == {"cached"}
    assert fake_runner[1].calls == []


def test_a_measurement_past_the_deadline_is_cut_and_not_a_broken_candidate():
    from nnjit.tuning.plugins import register_space, unregister
    from nnjit.tuning.tuner import Tuner

    _, (info,) = _kernels(MATMUL)
    points = [{}, {"reg": [2, 8]}, {"reg": [4, 4], "@hang": True}, {"reg": [1, 4]}]
    register_space("matmul", "wasm", lambda i, d: points)
    runner = FakeRunner(sleep=0.02, hang=lambda o: "@hang" in o)
    try:
        budget = 2.5
        t0 = time.monotonic()
        tuner = Tuner(runner, budget=budget, search="exhaustive", store=None, progress=False,
                      deadline=t0 + budget, candidate_timeout=60.0)  # fmt: skip
        (r,) = tuner.tune([info])
        wall = time.monotonic() - t0
    finally:
        unregister("spaces", ("matmul", "wasm"))
    assert wall <= budget + 0.5, wall
    assert not r.dropped  # cut by the deadline, not dropped as a hang
    assert r.status == "partial" and r.record is not None
    assert runner.calls[-1][1] == {"reg": [4, 4]}  # nothing was measured after the cut one


TRUE = {(): 1.00, (2, 8): 0.80, (4, 4): 0.84, (1, 4): 0.95, (4, 8): 1.20}
"""True run time of each point (by its reg): (2, 8) is the fastest."""


def _noisy(seed: int, burst_on: tuple | None):
    """Run times: the true time, each run slowed by another process now and then (noise only
    adds), and all runs of the first measurement of `burst_on` slowed by 40% (a burst of load
    just then)."""
    rng = random.Random(seed)
    seen: set = set()

    def time_of(options, call):
        key = tuple(options.get("reg", ()))
        t = TRUE[key]
        burst = 1.4 if key == burst_on and key not in seen else 1.0
        seen.add(key)
        return [t * burst * (1 + (rng.uniform(0.1, 0.6) if rng.random() < 0.5 else rng.uniform(0, 0.03)))
                for _ in range(3)]  # fmt: skip

    return time_of


def _tune_noisy(seed: int, final_rounds: int, burst_on=(2, 8)):
    from nnjit.tuning.plugins import register_space, unregister
    from nnjit.tuning.tuner import Tuner

    _, (info,) = _kernels(MATMUL)
    points = [{}] + [{"reg": list(k)} for k in TRUE if k]
    register_space("matmul", "wasm", lambda i, d: points)
    runner = FakeRunner(timing=_noisy(seed, burst_on))
    try:
        tuner = Tuner(runner, budget=600, search="exhaustive", store=None, progress=False,
                      final_rounds=final_rounds, seed=seed, confirm=2)  # fmt: skip
        (r,) = tuner.tune([info])
    finally:
        unregister("spaces", ("matmul", "wasm"))
    return r, runner


def test_final_rounds_pick_the_fastest_despite_noise():
    # without final rounds, the burst during the search hides the fastest point
    r, _ = _tune_noisy(1, final_rounds=0)
    assert r.best_options == {"reg": [4, 4]}
    for seed in range(1, 6):
        r, runner = _tune_noisy(seed, final_rounds=3)
        assert r.best_options == {"reg": [2, 8]}, (seed, r.best_options)
        # the final rounds: the default and the 3 best of the search (confirm=2, and one more
        # for a kernel over 20% of the model time), each once per round,
        # in a rotating order (never the same point twice in a row); 3 planned and up to 3x
        # as many more as time allows (here: plenty)
        assert r.message.startswith("12 final round(s) over 4 finalists")
        finals = [tuple(o.get("reg", ())) for _, o in runner.calls[len(TRUE):]]
        assert len(finals) == 48 and len(set(finals)) == 4
        assert all(finals.count(p) == 12 for p in set(finals))
        assert all(a != b for a, b in zip(finals, finals[1:]))
        assert (4, 8) not in finals  # the slowest point is not a finalist


def test_final_rounds_keep_the_default_when_nothing_beats_it():
    from nnjit.tuning.plugins import register_space, unregister
    from nnjit.tuning.tuner import Tuner

    _, (info,) = _kernels(MATMUL)
    points = [{}, {"reg": [2, 8]}, {"reg": [4, 4]}]
    register_space("matmul", "wasm", lambda i, d: points)
    rng = random.Random(3)
    calls = {"n": 0}

    def time_of(options, call):
        calls["n"] += 1
        # the default is measured first under load (2x), the others are truly 1% faster
        t = 1.0 if not options else 0.99
        if not options and calls["n"] == 1:
            t *= 2.0
        return [t * (1 + rng.uniform(0, 0.02)) for _ in range(3)]

    runner = FakeRunner(timing=time_of)
    try:
        (r,) = Tuner(runner, budget=600, search="exhaustive", store=None, progress=False).tune([info])
    finally:
        unregister("spaces", ("matmul", "wasm"))
    assert r.best_options == {}  # under the 2% gain a pick must show, the default stays


def test_finalists_include_other_register_tiles():
    """The fastest register tile was measured under a burst of load during the search, and
    three tilings of another one look best: the finalists still include the burst-hit one
    (the best point of each register tile family), so the final rounds find it."""
    from nnjit.tuning.plugins import register_space, unregister
    from nnjit.tuning.tuner import Tuner

    _, (info,) = _kernels(MATMUL)
    true = {((), ()): 1.0, ((4, 4), ()): 0.84, ((4, 4), (16, 16)): 0.845,
            ((4, 4), (32, 16)): 0.85, ((2, 8), ()): 0.80, ((1, 4), ()): 0.95}  # fmt: skip
    points = [{}] + [dict({"reg": list(r)}, **({"tile": list(t)} if t else {})) for r, t in true if r]
    register_space("matmul", "wasm", lambda i, d: points)
    rng = random.Random(5)
    seen: set = set()

    def time_of(options, call):
        key = (tuple(options.get("reg", ())), tuple(options.get("tile", ())))
        burst = 1.4 if key == ((2, 8), ()) and key not in seen else 1.0
        seen.add(key)
        return [true[key] * burst * (1 + rng.uniform(0, 0.02)) for _ in range(3)]

    runner = FakeRunner(timing=time_of)
    try:
        (r,) = Tuner(runner, budget=600, search="exhaustive", store=None, progress=False,
                     final_rounds=2).tune([info])  # fmt: skip
    finally:
        unregister("spaces", ("matmul", "wasm"))
    finals = {tuple(o.get("reg", ())) for _, o in runner.calls[len(points):]}
    assert (2, 8) in finals and (1, 4) in finals  # one per family before a second (4, 4)
    assert r.best_options == {"reg": [2, 8]}


class FakeSetRunner(FakeRunner):
    """A FakeRunner with measure_set: the final rounds interleave finalists run by run."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.sets: list[list[dict]] = []

    def measure_set(self, cands, timeout, max_time=None):
        from nnjit.tuning.runners import Measurement

        opts = [{k: v for k, v in c.options.items() if not k.startswith("@")} for c in cands]
        self.sets.append(opts)
        out = np.zeros(self.kernel.output["shape"], np.float32)
        return [Measurement(list(self.time_of(o, len(self.calls))), out) for o in opts]


def test_final_rounds_use_interleaved_sets_when_the_runner_has_them():
    from nnjit.tuning.plugins import register_space, unregister
    from nnjit.tuning.tuner import Tuner

    _, (info,) = _kernels(MATMUL)
    points = [{}] + [{"reg": list(k)} for k in TRUE if k]
    register_space("matmul", "wasm", lambda i, d: points)
    runner = FakeSetRunner(timing=_noisy(2, (2, 8)))
    try:
        (r,) = Tuner(runner, budget=600, search="exhaustive", store=None, progress=False,
                     final_rounds=2, confirm=2).tune([info])  # fmt: skip
    finally:
        unregister("spaces", ("matmul", "wasm"))
    assert len(runner.calls) == len(points)  # single measurements: the search only
    assert len(runner.sets) == 8 and all(len(s) == 4 for s in runner.sets)  # 2 + 6 more rounds
    assert [s[0] for s in runner.sets[:2]] != [runner.sets[0][0]] * 2  # the order rotates
    assert r.best_options == {"reg": [2, 8]}


def test_wasmtime_measure_set_interleaves_and_checks_outputs():
    from nnjit.tuning.kernels import lower_candidate
    from nnjit.tuning.runners import TimingPolicy, WasmtimeRunner
    from nnjit.tuning.worker import make_inputs
    from tests.test_tuning import _matmul_ref, relative_error

    _, (info,) = _kernels(MATMUL)
    cands = [lower_candidate(info, o) for o in ({}, {"reg": [2, 8]}, {"reg": [4, 4]})]
    runner = WasmtimeRunner(threads=2, timing=TimingPolicy(3, 6, 0.0))
    try:
        runner.start()
        runner.prepare(info, 11)
        ms = runner.measure_set(cands, timeout=120, max_time=60)
    finally:
        runner.close()
    a, b, c = make_inputs(info.inputs, 11)
    ref = _matmul_ref(a, b, c)
    assert len(ms) == 3 and len({len(m.times) for m in ms}) == 1 and len(ms[0].times) >= 3
    for m in ms:
        assert relative_error(m.output, ref) < 1e-5


def test_the_pick_compares_final_rounds_only():
    """The default was timed at a quiet moment, everything after under load (1.5x): the
    fastest point (15% faster) must still win, which it does only when the pick compares the
    final rounds' runs (all finalists measured alike), not every run ever taken."""
    from nnjit.tuning.plugins import register_space, unregister
    from nnjit.tuning.tuner import Tuner

    _, (info,) = _kernels(MATMUL)
    points = [{}, {"reg": [4, 4]}, {"reg": [2, 8]}]
    true = {(): 1.0, (4, 4): 0.85, (2, 8): 0.95}
    register_space("matmul", "wasm", lambda i, d: points)
    rng = random.Random(9)

    def time_of(options, call):
        load = 1.0 if call == 1 else 1.5
        return [true[tuple(options.get("reg", ()))] * load * (1 + rng.uniform(0, 0.02)) for _ in range(3)]

    for runner in (FakeRunner(timing=time_of), FakeSetRunner(timing=time_of)):
        try:
            (r,) = Tuner(runner, budget=600, search="exhaustive", store=None, progress=False,
                         final_rounds=2).tune([info])  # fmt: skip
        finally:
            unregister("spaces", ("matmul", "wasm"))
            register_space("matmul", "wasm", lambda i, d: points)
        assert r.best_options == {"reg": [4, 4]}, type(runner).__name__
        assert r.speedup and 1.1 < r.speedup < 1.25  # final rounds only: 1 / 0.85
    unregister("spaces", ("matmul", "wasm"))


def test_the_default_stays_when_the_statistics_disagree():
    """A candidate that wins most rounds by a little (paired median) but whose best run is
    slower than the default's best: the load was too high to tell, the default stays."""
    from nnjit.tuning.plugins import register_space, unregister
    from nnjit.tuning.tuner import Tuner

    _, (info,) = _kernels(MATMUL)
    points = [{}, {"reg": [4, 4]}]
    register_space("matmul", "wasm", lambda i, d: points)
    state = {"n": 0}

    def time_of(options, call):
        if not options:
            state["n"] += 1
            # the default: mostly slow, one quiet run per measurement
            return [1.0, 1.3, 1.3]
        return [1.05, 1.2, 1.2]  # the candidate: never as fast as the default's best

    runner = FakeSetRunner(timing=time_of)
    try:
        (r,) = Tuner(runner, budget=600, search="exhaustive", store=None, progress=False,
                     final_rounds=2).tune([info])  # fmt: skip
    finally:
        unregister("spaces", ("matmul", "wasm"))
    assert r.best_options == {}
