"""NaN and infinities in the browser: the WGSL that keeps NaN (tests on the bits) compiles in
Tint and gives onnxruntime's NaN positions on SwiftShader; the Wasm kernels too."""

from __future__ import annotations

import numpy as np
import pytest

from tests.browser.harness import (  # noqa: F401 - fixtures
    Page,
    browser,
    decode_output,
    playwright_instance,
    reference,
    site,
)  # fmt: skip
from tests.test_nan_semantics import NUMPY, OPS, _model, salted_feeds


@pytest.mark.parametrize("backend", ["webgpu", "wasm"])
def test_nan_and_inf_in_the_browser(browser, site, backend):
    model = _model()
    site.bundle("nan_ops", model)
    feeds = salted_feeds(np.random.default_rng())
    page = Page(browser, site)
    try:
        res = page.run_bundle("nan_ops", [feeds], session={"backend": backend, "fallback": False})
    finally:
        page.close()
    assert "error" not in res and "runError" not in res, res
    assert res["backend"] == backend
    names = [o[0] for o in OPS]
    bad = []
    refs = dict(zip(names, reference(model, feeds, names)))
    refs.update({name: f(feeds) for name, f in NUMPY.items()})
    for name, ref in refs.items():
        got = decode_output(res["outputs"][0][name]).astype(np.float64).reshape(ref.shape)
        r = ref.astype(np.float64)
        with np.errstate(invalid="ignore"):
            ok = (np.isnan(r) & np.isnan(got)) | (r == got) | (np.abs(got - r) <= 1e-5 * np.maximum(1.0, np.abs(r)))
        if not ok.all():
            bad.append(f"{name}: {got[~ok][:4]} where onnxruntime has {r[~ok][:4]}")
    assert not bad, "; ".join(bad)
