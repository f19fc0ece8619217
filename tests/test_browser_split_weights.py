"""Weights split under the WebGPU binding limit (NNJIT_MAX_BINDING_BYTES, artificially low)
run in the browser runtime too: row and column chunks are plain weights entries to it."""

from __future__ import annotations

import numpy as np
import pytest

from tests.browser.harness import (  # noqa: F401 - fixtures
    Page,
    browser,
    check_against_onnxruntime,
    plan_of,
    playwright_instance,
    site,
)  # fmt: skip
from tests.test_binding_limit import LIMIT, S, V, _lm_model


@pytest.mark.parametrize("backend", ["webgpu", "wasm"])
def test_split_weights_in_the_browser(browser, site, monkeypatch, backend):
    model = _lm_model(np.random.default_rng(7))
    monkeypatch.setenv("NNJIT_MAX_BINDING_BYTES", str(LIMIT))
    b = site.bundle("split_lm", model)
    keys = {x["key"] for x in plan_of(b)["backends"][backend]["buffers"] if x["kind"] == "weight"}
    assert any("#cols=" in k for k in keys) and "wte" not in keys
    rng = np.random.default_rng()
    feeds = [{"ids": rng.integers(-V, V, size=(1, S))} for _ in range(2)]
    page = Page(browser, site)
    try:
        res = page.run_bundle("split_lm", feeds, session={"backend": backend, "fallback": False})
    finally:
        page.close()
    assert res["backend"] == backend
    check_against_onnxruntime(res, model, b, feeds, tol=1e-5)
