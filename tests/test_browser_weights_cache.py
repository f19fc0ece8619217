"""The weights file in the browser's Cache Storage (nnjit/web/cache.js): the first load streams
it from the network with progress events and stores it, a second session in the same browser
reads it from the cache (no request, the same outputs), a recompiled bundle gets a new entry
that replaces the old one, `cache: false` fetches every time, a missing or failing Cache
Storage is a warning, and hostile plans (a hash that is not hex, a weights file longer than its
entries) are one-line BundleErrors. A damaged entry of the right length is read as it is:
entries are checked before they are stored and not hashed again (docs/browser.md says why)."""

from __future__ import annotations

import hashlib
import json

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

MODEL = MODELS / "bert-legacy.onnx"
OTHER = MODELS / "minilm-legacy.onnx"
NAME = "wcache"
WASM = {"backend": "wasm", "fallback": False, "tuning": False}


@pytest.fixture(scope="module")
def bundle(site):
    return site.bundle(NAME, MODEL, backends=("wasm",))


class Visit:
    """A fresh page of the browser (a later visit of the same site) that counts its requests
    for weights.bin."""

    def __init__(self, browser, site, isolated: bool = True):
        self.p = Page(browser, site, isolated)
        self.requests: list[str] = []
        self.p.page.on("request", lambda r: self.requests.append(r.url) if r.url.endswith("weights.bin") else None)

    def __enter__(self) -> Visit:
        return self

    def __exit__(self, *exc) -> None:
        self.p.close()

    def load(self, name: str, feeds: list, **session) -> dict:
        return self.p.run_bundle(name, feeds, session={**WASM, **session})


def test_first_load_streams_and_stores_then_a_second_visit_reads_the_cache(browser, site, bundle):
    feeds = [feeds_for(bundle, 1)]
    size = (bundle / "weights.bin").stat().st_size
    with Visit(browser, site) as v:
        v.p.call("clearWeightsCache")
        first = v.load(NAME, feeds)
        assert len(v.requests) == 1, v.requests
        keys = v.p.call("weightsCacheKeys")
    check_against_onnxruntime(first, MODEL, bundle, feeds)
    ev = first["weightsProgress"]
    assert ev and all(e["phase"] == "weights" and e["file"] == "weights.bin" and e["cached"] is False for e in ev)
    assert ev[0]["loaded"] == 0 and ev[-1]["loaded"] == ev[-1]["total"] == size
    assert all(a["loaded"] <= b["loaded"] and e["total"] == size for a, b, e in zip(ev, ev[1:], ev[1:]))
    assert first["loadTimings"]["weights"]["from"] == "network"
    sha = json.loads((bundle / "plan.json").read_text())["files"]["weights.bin"]
    assert keys == [f"{site.url(NAME + '/weights.bin')}?nnjit-sha256={sha}"], keys
    assert not [w for w in first["warnings"] if "cache" in w.lower()], first["warnings"]

    with Visit(browser, site) as v:  # a later visit: nothing downloaded, the same outputs
        second = v.load(NAME, feeds)
        assert v.requests == [], v.requests
    assert second["outputs"] == first["outputs"]
    assert second["loadTimings"]["weights"]["from"] == "cache"
    ev = second["weightsProgress"]
    assert ev[-1]["loaded"] == ev[-1]["total"] == size and all(e["cached"] for e in ev)


def test_large_files_are_stored_in_parts(browser, site, bundle):
    """Chromium keeps no Cache Storage entry over about 256 MiB (BERT-base's weights are 774
    MB): the file is stored in parts ({partBytes}, 64 MiB by default), read back whole; a
    missing part is a damaged entry, fetched again."""
    feeds = [feeds_for(bundle, 8)]
    size = (bundle / "weights.bin").stat().st_size
    part = 40_000
    with Visit(browser, site) as v:
        v.p.call("clearWeightsCache")
        first = v.load(NAME, feeds, cache={"partBytes": part})
        check_against_onnxruntime(first, MODEL, bundle, feeds)
        keys = v.p.call("weightsCacheKeys")
        assert len(keys) == -(-size // part) > 1, keys
    with Visit(browser, site) as v:
        second = v.load(NAME, feeds)  # (the count is in the entry: any partBytes reads it)
        assert v.requests == [] and second["outputs"] == first["outputs"]
        assert second["weightsProgress"][-1]["loaded"] == size
        assert v.p.call("damageWeightsCache", "drop") == len(keys) - 1
        res = v.load(NAME, feeds)
        check_against_onnxruntime(res, MODEL, bundle, feeds)
        assert len(v.requests) == 1 and any("part 1 of" in w and "missing" in w for w in res["warnings"]), res["warnings"]
        assert len(v.p.call("weightsCacheKeys")) == 1  # stored again, in one part (the default)


def test_cache_false_fetches_every_time_and_stores_nothing(browser, site, bundle):
    feeds = [feeds_for(bundle, 2)]
    with Visit(browser, site) as v:
        v.p.call("clearWeightsCache")
        for _ in range(2):
            res = v.load(NAME, feeds, cache=False)
            check_against_onnxruntime(res, MODEL, bundle, feeds)
            assert res["weightsProgress"][-1]["loaded"] == (bundle / "weights.bin").stat().st_size
        assert len(v.requests) == 2 and v.p.call("weightsCacheKeys") == []


def test_clear_weights_cache(browser, site, bundle):
    feeds = [feeds_for(bundle, 3)]
    with Visit(browser, site) as v:
        v.load(NAME, feeds)
        assert v.p.call("weightsCacheKeys")
        assert v.p.call("clearWeightsCache") is True
        assert v.p.call("weightsCacheKeys") == []
        v.requests.clear()
        v.load(NAME, feeds)
        assert len(v.requests) == 1


def test_a_recompiled_bundle_replaces_its_old_entry(browser, site, bundle):
    """The same URL, another weights file (another hash): fetched, not the old entry's bytes;
    the old entry goes."""
    other = site.bundle("wcache_other", OTHER, backends=("wasm",))
    site.copy_bundle(NAME, "wcache_swap")
    with Visit(browser, site) as v:
        v.p.call("clearWeightsCache")
        feeds = [feeds_for(bundle, 4)]
        check_against_onnxruntime(v.load("wcache_swap", feeds), MODEL, bundle, feeds)
        swapped = site.copy_bundle("wcache_other", "wcache_swap")
        v.requests.clear()
        feeds = [feeds_for(other, 4)]
        res = v.load("wcache_swap", feeds)
        check_against_onnxruntime(res, OTHER, swapped, feeds)
        assert len(v.requests) == 1 and res["loadTimings"]["weights"]["from"] == "network"
        sha = json.loads((other / "plan.json").read_text())["files"]["weights.bin"]
        mine = [k for k in v.p.call("weightsCacheKeys") if "/wcache_swap/" in k]
        assert mine == [f"{site.url('wcache_swap/weights.bin')}?nnjit-sha256={sha}"], mine


def test_damaged_entries(browser, site, bundle):
    """A cached copy of the wrong length is dropped with a warning and fetched again; one of the
    right length is read as it is (not hashed again, by design: docs/browser.md)."""
    feeds = [feeds_for(bundle, 5)]
    with Visit(browser, site) as v:
        v.p.call("clearWeightsCache")
        good = v.load(NAME, feeds)
        assert v.p.call("damageWeightsCache", "cut") == 1
        v.requests.clear()
        res = v.load(NAME, feeds)
        check_against_onnxruntime(res, MODEL, bundle, feeds)
        assert len(v.requests) == 1 and any("cached copy is damaged" in w for w in res["warnings"]), res["warnings"]
        assert v.p.call("damageWeightsCache", "flip") == 1  # (the good copy was stored again)
        v.requests.clear()
        res = v.load(NAME, feeds)
        assert v.requests == [] and res["loadTimings"]["weights"]["from"] == "cache"
        assert res["outputs"] != good["outputs"]


@pytest.mark.parametrize("how", ["no-cache-storage", "quota"])
def test_cache_storage_missing_or_failing_is_a_warning(browser, site, bundle, how):
    feeds = [feeds_for(bundle, 6)]
    with Visit(browser, site) as v:
        v.p.call("clearWeightsCache")
        if how == "no-cache-storage":  # as in a page that is not a secure context
            v.p.page.evaluate("() => { Object.defineProperty(window, 'caches', {get: () => undefined, configurable: true}); }")
            want = "Cache Storage is not available"
        else:
            v.p.page.evaluate("() => { Cache.prototype.put = () => Promise.reject(new DOMException('over quota', 'QuotaExceededError')); }")
            want = "QuotaExceededError"
        for _ in range(2):
            res = v.load(NAME, feeds)
            check_against_onnxruntime(res, MODEL, bundle, feeds)
            assert any(want in w for w in res["warnings"]), res["warnings"]
        assert len(v.requests) == 2


def _hostile(site, name: str, edit) -> None:
    out = site.copy_bundle(NAME, name)
    plan = json.loads((out / "plan.json").read_text())
    edit(out, plan)
    (out / "plan.json").write_text(json.dumps(plan))


@pytest.mark.parametrize("cache", [True, False])
def test_hostile_plans_are_bundle_errors(browser, site, bundle, cache):
    def not_hex(out, plan):
        plan["files"]["weights.bin"] = "../" + "g" * 61

    def longer(out, plan):
        with open(out / "weights.bin", "ab") as f:
            f.write(b"\0" * 4096)
        plan["files"]["weights.bin"] = hashlib.sha256((out / "weights.bin").read_bytes()).hexdigest()

    _hostile(site, "wcache_nothex", not_hex)
    _hostile(site, "wcache_longer", longer)
    feeds = [feeds_for(bundle, 7)]
    with Visit(browser, site) as v:
        for name, want in [("wcache_nothex", "not 64 hex digits"), ("wcache_longer", "larger than the")]:
            err = v.load(name, feeds, cache=cache)["error"]
            assert err["name"] == "BundleError" and err["file"] == "weights.bin" and want in err["message"], err
            assert "\n" not in err["message"]
        keys = v.p.call("weightsCacheKeys")
        assert not [k for k in keys if "/wcache_nothex/" in k or "/wcache_longer/" in k], keys


def test_demo_page_shows_download_then_cache(browser, site, bundle):
    pg = browser.new_page()
    try:
        pg.goto(site.url("blank.html"))
        pg.evaluate("caches.delete('nnjit-weights-v1')")
        for want in ("downloaded", "from cache"):
            pg.goto(site.url(f"{NAME}/index.html?autoload=1&backend=wasm&tune=0"))
            pg.wait_for_function("['ready', 'error'].includes(document.body.dataset.state)", timeout=60000)
            assert pg.evaluate("document.body.dataset.state") == "ready", pg.inner_text("#status")
            text = pg.inner_text("#weights-text")
            assert want in text, text
            assert pg.evaluate("document.getElementById('weights-progress').value") == pg.evaluate(
                "document.getElementById('weights-progress').max"
            )
    finally:
        pg.close()
