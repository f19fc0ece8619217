"""On-device tuning in the browser: a bundle whose kernels have three candidates each (a slowed
copy of the default first, the default, a `vec=1` schedule) is tuned on WebGPU and on Wasm;
the fastest is kept, a second load takes every decision from IndexedDB and times nothing,
corrupt and stale records are ignored and replaced, and the time budget is honoured."""

from __future__ import annotations

import pytest

from tests.browser.candidates import make_candidate_bundle
from tests.browser.harness import (  # noqa: F401 - fixtures
    Page,
    browser,
    check_against_onnxruntime,
    feeds_for,
    playwright_instance,
    site,
)  # fmt: skip
from tests.browser.kernel_models import tuning_model

MODEL = tuning_model()
NAME = "tune3"


@pytest.fixture(scope="module")
def bundle(site):
    out = site.root / NAME
    if not out.exists():
        make_candidate_bundle(MODEL, out, ["vec=1"], reference_outputs=True)
    return out


@pytest.fixture(scope="module")
def page(browser, site, bundle):
    p = Page(browser, site)
    p.call("clearTuningCache")
    yield p
    p.close()


def load(page, backend, feeds, **tuning):
    return page.run_bundle(NAME, feeds, session={"backend": backend, "fallback": False, "tuning": tuning})


@pytest.mark.parametrize("backend", ["webgpu", "wasm"])
def test_tuning_picks_fastest_then_cache_is_reused(page, bundle, backend):
    feeds = [feeds_for(bundle, 1)]
    kernels = ["k0_matmul", "k1_softmax", "k2_layer_norm"]
    # first load: every kernel tuned, never the slowed candidate 0, always the fastest measured
    res = load(page, backend, feeds, budgetMs=60000)
    check_against_onnxruntime(res, MODEL, bundle, feeds)
    t = res["tuning"]
    assert sorted(t["tuned"]) == kernels and t["cached"] == [] and t["cache"], t
    for k in kernels:
        times = t["times"][k]
        assert len(times) == 3 and all(x is not None for x in times), times
        assert t["choices"][k] == min(range(3), key=lambda i: times[i]) != 0, (k, times)
        assert times[0] > max(times[1], times[2]), (k, times)
    phases = [e["phase"] for e in res["progress"]]
    assert phases[0] == "start" and phases[-1] == "done" and phases.count("candidate") == 9

    # second load: all decisions from the cache, nothing timed
    res2 = load(page, backend, feeds, budgetMs=60000)
    check_against_onnxruntime(res2, MODEL, bundle, feeds)
    t2 = res2["tuning"]
    assert t2["tuned"] == [] and sorted(t2["cached"]) == kernels and t2["ignored"] == []
    assert t2["choices"] == t["choices"]
    assert "candidate" not in [e["phase"] for e in res2["progress"]]


@pytest.mark.parametrize("backend", ["webgpu", "wasm"])
def test_corrupt_and_stale_records_are_ignored(page, bundle, backend):
    feeds = [feeds_for(bundle, 2)]
    load(page, backend, feeds, budgetMs=60000)  # make sure records exist
    entries = dict(page.call("tuningEntries"))
    mine = {k: v for k, v in entries.items() if isinstance(v, dict) and v.get("backend") == backend}
    assert len(mine) == 3, entries
    keys = sorted(mine)
    bad = {
        keys[0]: "not a record",
        keys[1]: {**mine[keys[1]], "choice": 7},
        keys[2]: {**mine[keys[2]], "candidate": "0" * 64},  # stale: another candidate's hash
    }
    page.call("putTuningEntries", bad)
    res = load(page, backend, feeds, budgetMs=60000)
    check_against_onnxruntime(res, MODEL, bundle, feeds)
    t = res["tuning"]
    reasons = sorted(i["reason"] for i in t["ignored"])
    assert len(reasons) == 3 and len(t["tuned"]) == 3, t
    assert any("not a record" in r for r in reasons) and any("out of range" in r for r in reasons)
    assert any("stale" in r for r in reasons)
    # the records were replaced by good ones
    res = load(page, backend, feeds, budgetMs=60000)
    assert len(res["tuning"]["cached"]) == 3 and res["tuning"]["ignored"] == []


@pytest.mark.parametrize("backend", ["webgpu", "wasm"])
def test_zero_budget_keeps_default_candidates(page, bundle, backend):
    feeds = [feeds_for(bundle, 3)]
    res = load(page, backend, feeds, budgetMs=0, cache=False)
    check_against_onnxruntime(res, MODEL, bundle, feeds)  # the slowed default is still right
    t = res["tuning"]
    assert len(t["outOfBudget"]) == 3 and t["tuned"] == [] and set(t["choices"].values()) == {0}


@pytest.mark.parametrize("backend", ["webgpu", "wasm"])
def test_budget_cut_records_are_reused_then_resumed(page, bundle, backend):
    """Kernels the budget left untuned keep their default and get partial records: the next
    load tunes nothing (it takes them from the cache); `resume` tunes them on a later load."""
    page.call("clearTuningCache")
    feeds = [feeds_for(bundle, 5)]
    t = load(page, backend, feeds, budgetMs=0)["tuning"]
    assert len(t["outOfBudget"]) == 3 and t["tuned"] == [], t
    res = load(page, backend, feeds, budgetMs=60000)
    check_against_onnxruntime(res, MODEL, bundle, feeds)
    t = res["tuning"]
    assert t["tuned"] == [] and len(t["cached"]) == 3 and sorted(t["cachedPartial"]) == sorted(t["cached"]), t
    assert set(t["choices"].values()) == {0}
    assert not any(e["phase"] == "candidate" for e in res["progress"])
    res = load(page, backend, feeds, budgetMs=60000, resume=True)
    check_against_onnxruntime(res, MODEL, bundle, feeds)
    t = res["tuning"]
    assert len(t["tuned"]) == 3 and t["cachedPartial"] == [] and 0 not in t["choices"].values(), t
    # complete records now: the next load takes all three without `partial`
    t = load(page, backend, feeds, budgetMs=60000, resume=True)["tuning"]
    assert len(t["cached"]) == 3 and t["cachedPartial"] == [] and t["tuned"] == [], t


def test_tuning_off(page, bundle):
    feeds = [feeds_for(bundle, 4)]
    res = page.run_bundle(NAME, feeds, session={"backend": "wasm", "tuning": False})
    check_against_onnxruntime(res, MODEL, bundle, feeds)
    assert res["tuning"]["disabled"] and res["tuning"]["tuned"] == []


@pytest.mark.parametrize("backend", ["webgpu", "wasm"])
def test_demo_page_tunes_runs_and_charts(browser, site, bundle, backend):
    pg = browser.new_page()
    try:
        pg.goto(site.url(f"{NAME}/index.html?autorun=1&runs=2&backend={backend}"))
        pg.evaluate("indexedDB.deleteDatabase('nnjit-tuning')")
        pg.reload()
        pg.wait_for_function("['done', 'error'].includes(document.body.dataset.state)", timeout=60000)
        status = pg.inner_text("#status")
        assert f"ran on {backend}; check passed" in status, status
        assert pg.inner_text("#progress-text").startswith("3 kernels with candidates: 3 tuned")
        phases = pg.evaluate("window.nnjitDemo.progress.map((e) => e.phase)")
        assert phases.count("candidate") == 9 and phases[-1] == "done"
        kernels = pg.evaluate("Object.keys(window.nnjitDemo.timings.kernels).sort()")
        assert kernels == ["k0_matmul", "k1_softmax", "k2_layer_norm"]
        # the chart has bars: some pixels of the bar colour
        blue = pg.evaluate("""() => { const c = document.getElementById('chart');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
            for (let i = 0; i < d.length; i += 4) if (d[i] === 0x4a && d[i+1] === 0x7f && d[i+2] === 0xd4) n++;
            return n; }""")
        # a bar per kernel (1 px wide at least, 12 px tall); the slowest one spans the chart,
        # unless every kernel timed 0 ms (the tiny model's Wasm kernels, under a coarse timer)
        top = pg.evaluate("Math.max(...Object.values(window.nnjitDemo.timings.kernels).map((v) => v.ms))")
        assert blue >= 3 * 12 and (top == 0 or blue > 100), (blue, top)
    finally:
        pg.close()


@pytest.mark.parametrize("backend", ["webgpu", "wasm"])
def test_compiled_candidates_of_a_tiny_bert(browser, site, backend):
    """`nnjit compile --candidates 3` (the compiler's own candidate lists): tuned in the browser,
    twelve-layer-style repeats decided once, right results, then everything from the cache."""
    from tests.browser.harness import MODELS, plan_of

    model = MODELS / "bert-legacy.onnx"
    b = site.bundle("bert_cands", model, candidates=3)
    bp = plan_of(b)["backends"][backend]
    tunable = sorted(n for n, k in bp["kernels"].items() if len(k.get("candidates", [])) > 1)
    assert len(tunable) > 10
    p = Page(browser, site)
    try:
        p.call("clearTuningCache")
        feeds = [feeds_for(b, 1)]
        res = p.run_bundle("bert_cands", feeds, session={"backend": backend, "fallback": False, "tuning": {"budgetMs": 120000}})
        check_against_onnxruntime(res, model, b, feeds)
        t = res["tuning"]
        assert sorted(t["tuned"] + t["shared"]) == tunable and t["shared"], t
        assert t["failed"] == [] and t["outOfBudget"] == []
        res = p.run_bundle("bert_cands", feeds, session={"backend": backend, "fallback": False, "tuning": {"budgetMs": 120000}})
        check_against_onnxruntime(res, model, b, feeds)
        assert sorted(res["tuning"]["cached"]) == tunable and res["tuning"]["choices"] == t["choices"]
    finally:
        p.close()


def test_without_crypto_subtle(browser, site, bundle):
    """A page that is not a secure context has no crypto.subtle: hashes are not checked (a
    warning says so) and the tuning cache keys use FNV-1a instead of SHA-256."""
    p = Page(browser, site)
    try:
        p.page.evaluate("Object.defineProperty(Crypto.prototype, 'subtle', {get: () => undefined})")
        feeds = [feeds_for(bundle, 5)]
        for expect in ("tuned", "cached"):
            res = p.run_bundle(NAME, feeds, session={"backend": "wasm", "tuning": {"budgetMs": 60000}})
            check_against_onnxruntime(res, MODEL, bundle, feeds)
            assert any("hashes not checked" in w for w in res["warnings"])
            assert len(res["tuning"][expect]) == 3, res["tuning"]
        keys = [k for k, _ in p.call("tuningEntries")]
        assert sum(k.startswith("fnv:") for k in keys) == 3
    finally:
        p.close()


@pytest.fixture(scope="module")
def ordered_bundle(site, bundle):
    """The three-candidate bundle with an "order" per device class: a CPU adapter (SwiftShader
    here) starts on candidate 2 and tries 2 then 1, never the slowed candidate 0; "gpu" is
    another order, and a broken entry is dropped."""
    import json
    import shutil

    out = site.root / "tune3_ordered"
    if not out.exists():
        shutil.copytree(bundle, out)
        plan = json.loads((out / "plan.json").read_text())
        for backend in plan["backends"].values():
            for k in backend["kernels"].values():
                if len(k.get("candidates", [])) == 3:
                    k["order"] = {"cpu": [2, 9, "x", True, 1], "gpu": [1, 0, 2]}
        (out / "plan.json").write_text(json.dumps(plan))
    return out


def test_device_class_order_picks_first_and_limits_tuning(page, ordered_bundle):
    feeds = [feeds_for(ordered_bundle, 6)]
    name = "tune3_ordered"
    res = page.run_bundle(name, feeds, session={"backend": "webgpu", "fallback": False, "tuning": {"budgetMs": 0, "cache": False}})
    check_against_onnxruntime(res, MODEL, ordered_bundle, feeds)
    assert res["adapter"]["cpu"], res["adapter"]  # SwiftShader: the "cpu" order applies
    t = res["tuning"]
    assert len(t["outOfBudget"]) == 3 and set(t["choices"].values()) == {2}, t  # first of the order
    res = page.run_bundle(name, feeds, session={"backend": "webgpu", "fallback": False, "tuning": {"budgetMs": 60000, "cache": False}})
    check_against_onnxruntime(res, MODEL, ordered_bundle, feeds)
    t = res["tuning"]
    for k, times in t["times"].items():
        assert times[0] is None and times[1] is not None and times[2] is not None, (k, times)
        assert t["choices"][k] in (1, 2)
    assert [e["phase"] for e in res["progress"]].count("candidate") == 6
    # Wasm has no device class: every candidate in list order, as before
    res = page.run_bundle(name, feeds, session={"backend": "wasm", "fallback": False, "tuning": {"budgetMs": 60000, "cache": False}})
    assert all(x is not None for times in res["tuning"]["times"].values() for x in times), res["tuning"]
