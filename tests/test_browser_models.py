"""The tiny models of tests/models (BERT, GPT-2, ViT, MiniLM from both exporters) in headless
Chromium: WebGPU (SwiftShader), Wasm on 2 threads (a cross-origin-isolated page) and Wasm on
one thread over a non-shared memory (a page without COOP/COEP), against onnxruntime."""

from __future__ import annotations

import pytest

from tests.browser.harness import (  # noqa: F401 - fixtures
    MODELS,
    Page,
    browser,
    check_against_onnxruntime,
    feeds_for,
    playwright_instance,
    site,
)  # fmt: skip

TINY = sorted(m for m in MODELS.glob("*.onnx") if "dynamic" not in m.name and "_past" not in m.name)


@pytest.fixture(scope="module")
def bundles(site):
    return site.bundles({m.stem: (m, {}) for m in TINY})


@pytest.fixture(scope="module")
def pages(browser, site, bundles):
    p = {"iso": Page(browser, site, isolated=True), "plain": Page(browser, site, isolated=False)}
    yield p
    for x in p.values():
        x.close()


CONFIGS = {
    "webgpu": ("iso", {"backend": "webgpu", "fallback": False}),
    "wasm-threads": ("iso", {"backend": "wasm", "threads": 2}),
    "wasm-1thread-unshared": ("plain", {"backend": "wasm"}),
}


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("model", TINY, ids=[m.stem for m in TINY])
def test_tiny_model_matches_onnxruntime(model, config, pages, bundles):
    where, session = CONFIGS[config]
    bundle = bundles[model.stem]
    feeds = [feeds_for(bundle, seed) for seed in (1, 2)]
    # int64 inputs go in as BigInt64Array, Int32Array and plain arrays on the three configs
    int_as = {"webgpu": "bigint64", "wasm-threads": "int32", "wasm-1thread-unshared": "array"}[config]
    res = pages[where].run_bundle(model.stem, feeds, session=session, intAs=int_as)
    check_against_onnxruntime(res, model, bundle, feeds)
    assert res["backend"] == session["backend"]
    if config == "wasm-threads":
        assert res["isolated"] and res["threads"] == 2 and res["info"]["shared"]
    if config == "wasm-1thread-unshared":
        assert not res["isolated"] and res["threads"] == 1 and not res["info"]["shared"]
    assert res["timings"]["steps"] is None or len(res["timings"]["steps"]) > 0


@pytest.mark.parametrize("threads", [1, 3])
def test_wasm_thread_counts(threads, pages, bundles):
    """One thread on a shared memory (no workers), and more threads than cores."""
    model = next(m for m in TINY if m.stem == "bert-legacy")
    bundle = bundles[model.stem]
    feeds = [feeds_for(bundle, seed) for seed in (3, 4)]
    res = pages["iso"].run_bundle(model.stem, feeds, session={"backend": "wasm", "threads": threads})
    check_against_onnxruntime(res, model, bundle, feeds)
    assert res["threads"] == threads and res["info"]["shared"]


def test_wasm_threads_claim_chunks_over_many_runs(pages, bundles):
    """Back-to-back runs on 3 threads (more than cores): the main thread and the workers claim
    each kernel's chunks from one counter (a late worker leaves its share to the others); every
    run's outputs must still match onnxruntime."""
    model = next(m for m in TINY if m.stem == "gpt2-legacy")
    bundle = bundles[model.stem]
    feeds = [feeds_for(bundle, seed) for seed in range(10, 22)]
    res = pages["iso"].run_bundle(model.stem, feeds, session={"backend": "wasm", "threads": 3})
    check_against_onnxruntime(res, model, bundle, feeds)
    assert res["threads"] == 3


def test_threads_on_a_plain_page_warn(pages, bundles):
    model = next(m for m in TINY if m.stem == "gpt2-legacy")
    bundle = bundles[model.stem]
    feeds = [feeds_for(bundle, 5)]
    res = pages["plain"].run_bundle(model.stem, feeds, session={"backend": "wasm", "threads": 4})
    check_against_onnxruntime(res, model, bundle, feeds)
    assert res["threads"] == 1
    assert any("cross-origin-isolated" in w for w in res["warnings"]), res["warnings"]
