"""A runner whose start-up lands in the first measurement (wgpu on lavapipe: 1-2 s to make the
device) no longer starves the search: before, that one slow call made the final rounds'
reserve larger than the budget, so no kernel was searched, the run ended at a third of its
budget and every kernel said "partial" with no reason. Now the search runs, the budget is
used, and a kernel whose search the budget cut says why."""

from __future__ import annotations

import time

from tests.test_tuning_budget import MODEL, FakeRunner


class StartupRunner(FakeRunner):
    """FakeRunner whose first measurement also pays a 1.5 s start-up."""

    def __init__(self):
        super().__init__(sleep=0.01)
        self.started = False

    def measure(self, cand, timeout, cutoff=None):
        if not self.started:
            self.started = True
            time.sleep(1.5)
        return super().measure(cand, timeout, cutoff)


def test_a_slow_start_does_not_starve_the_search(tmp_path):
    from nnjit.tuning.plugins import register_runner, unregister
    from nnjit.tuning.tuner import tune_model

    made: list[StartupRunner] = []

    def factory(**options):
        made.append(StartupRunner())
        return made[-1]

    register_runner("fake-startup", factory)
    budget = 8.0
    try:
        t0 = time.monotonic()
        report = tune_model(str(MODEL), backend="wasm", runner="fake-startup", budget=budget,
                            cache_dir=tmp_path, progress=False)  # fmt: skip
        wall = time.monotonic() - t0
    finally:
        unregister("runners", "fake-startup")
    assert wall <= budget + 1.0
    started = [k for k in report.kernels if k.default_time is not None]
    searched = [k for k in started if len([t for t in k.trials if t.reason is None]) > 1]
    assert started and len(searched) >= len(started) // 2, [(k.status, k.message) for k in started]
    assert wall >= 0.7 * budget  # the search used the budget (it stopped at ~1/3 before)
    for k in report.kernels:
        if k.status in ("partial", "skipped", "failed"):
            assert k.message, (k.info.describe(), k.status)
    assert "partial:" in report.table() or all(k.status != "partial" for k in report.kernels)
