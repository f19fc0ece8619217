"""Chromium without --enable-unsafe-webgpu has no WebGPU adapter on Linux: the runtime falls
back to Wasm and says why (and refuses, with the reason, when fallback is off)."""

from __future__ import annotations

import pytest

from tests.browser.harness import (  # noqa: F401 - fixtures
    Page,
    check_against_onnxruntime,
    feeds_for,
    launch,
    playwright_instance,
    site,
)  # fmt: skip
from tests.browser.kernel_models import kernel_models

MODEL, _ = kernel_models()["softmax"]


@pytest.fixture(scope="module")
def page(playwright_instance, site, tmp_path_factory):
    site.bundle("k_softmax", MODEL)
    ctx = launch(playwright_instance, tmp_path_factory.mktemp("profile-nogpu"), webgpu=False)
    p = Page(ctx, site)
    yield p
    p.close()
    ctx.close()


@pytest.mark.parametrize("backend", ["auto", "webgpu"])
def test_no_adapter_falls_back_to_wasm(page, site, backend):
    bundle = site.root / "k_softmax"
    feeds = [feeds_for(bundle, 1)]
    res = page.run_bundle("k_softmax", feeds, session={"backend": backend})
    check_against_onnxruntime(res, MODEL, bundle, feeds)
    assert res["backend"] == "wasm"
    assert "no WebGPU adapter" in res["fallbackReason"]


def test_no_adapter_without_fallback_is_an_error(page, site):
    res = page.run_bundle("k_softmax", [], session={"backend": "webgpu", "fallback": False})
    assert "no WebGPU adapter" in res["error"]["message"]
