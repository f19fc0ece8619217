"""Every kernel kind, as a small single-op ONNX model compiled by nnjit, run in headless
Chromium by the JS runtime on WebGPU (SwiftShader) and on Wasm, against onnxruntime."""

from __future__ import annotations

import pytest

from tests.browser.harness import (  # noqa: F401 - fixtures
    Page,
    browser,
    check_against_onnxruntime,
    feeds_for,
    plan_of,
    playwright_instance,
    site,
)  # fmt: skip
from tests.browser.kernel_models import kernel_models

MODELS = kernel_models()


@pytest.fixture(scope="module")
def page(browser, site):
    site.bundles({f"k_{n}": (m, {}) for n, (m, _) in MODELS.items()})
    p = Page(browser, site)
    yield p
    p.close()


@pytest.mark.parametrize("backend", ["webgpu", "wasm"])
@pytest.mark.parametrize("name", list(MODELS))
def test_kernel_kind_matches_onnxruntime(name, backend, page, site):
    model, kind = MODELS[name]
    bundle = site.bundle(f"k_{name}", model)
    kinds = {k["manifest"]["kind"] for k in plan_of(bundle)["backends"][backend]["kernels"].values()}
    assert kind in kinds, f"{name} compiled to kernels of kinds {kinds}, expected a {kind} kernel"
    feeds = [feeds_for(bundle, seed) for seed in (1, 2)]
    res = page.run_bundle(f"k_{name}", feeds, session={"backend": backend, "fallback": False})
    assert res.get("backend") == backend, res
    check_against_onnxruntime(res, model, bundle, feeds)


def test_every_kind_is_covered():
    kinds = {kind for _, kind in MODELS.values()}
    assert kinds >= {"matmul", "conv", "softmax", "layer_norm", "reduce", "elementwise", "gather",
                     "gather_nd", "transpose", "slice", "concat", "expand"}  # fmt: skip
