"""Compact weights in the browser runtime (nnjit/web/compact.js): a --weights int8 bundle (and
f16, int4) runs in Chromium with the outputs of the Python runtime on the same bundle, whose
weights nnjit/frontend/compact.py decodes: both dequantize to the same float32 weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nnjit.runtime.session import Session
from tests.browser.harness import (  # noqa: F401 - fixtures
    Page,
    browser,
    decode_output,
    feeds_for,
    plan_of,
    playwright_instance,
    site,
)  # fmt: skip
from tests.conftest import relative_error

MODEL = Path(__file__).parent / "models" / "minilm-legacy.onnx"


@pytest.mark.parametrize("mode", ["int8", "f16", "int4"])
@pytest.mark.parametrize("backend", ["wasm", "webgpu"])
def test_compact_bundle_in_the_browser(browser, site, backend, mode):
    b = site.bundle(f"minilm_{mode}", MODEL, weights=mode)
    entries = plan_of(b)["weights"]["entries"].values()
    assert any("compact" in e for e in entries)
    feeds = [feeds_for(b, seed) for seed in (1, 2)]
    page = Page(browser, site)
    try:
        res = page.run_bundle(b.name, feeds, session={"backend": backend, "fallback": False})
    finally:
        page.close()
    assert "error" not in res and "runError" not in res, res
    assert res["backend"] == backend
    session = Session(b, backend)
    for f, outs in zip(feeds, res["outputs"], strict=True):
        for name, want in session.run(f).items():
            err = relative_error(decode_output(outs[name]), np.asarray(want))
            assert err <= 1e-5, f"{mode} on {backend}: {name} differs from Python by {err:.2e}"
