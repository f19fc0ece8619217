"""A --weights f16 bundle on WebGPU in Chromium (nnjit/web/webgpu.js): on an adapter with
"shader-f16" the matmul kernels start on their f16 candidates, which read the weights' stored
float16 bytes; on one without (Chromium's SwiftShader in this harness, at the time of writing)
the f16 candidates are skipped and the float32 kernels run on weights widened at load. Either
way the outputs are onnxruntime's on the model with its weights rounded to float16."""

from __future__ import annotations

import numpy as np

from tests.browser.harness import (  # noqa: F401 - fixtures
    Page,
    browser,
    decode_output,
    playwright_instance,
    site,
)  # fmt: skip
from tests.conftest import relative_error
from tests.test_f16_matmul import _model, _reference, _x


def test_f16_bundle_in_the_browser(browser, site):
    model = _model(9, 40, 24)
    b = site.bundle("f16_matmul", model.SerializeToString(), backends=("webgpu",), weights="f16")
    x = _x(9, 40)
    feeds = {"x": x}
    page = Page(browser, site)
    try:
        res = page.run_bundle(b.name, [feeds], session={"backend": "webgpu", "fallback": False})
    finally:
        page.close()
    assert "error" not in res and "runError" not in res, res
    err = relative_error(decode_output(res["outputs"][0]["y"]), _reference(model, x))
    assert err <= 1e-5, err
    has_f16 = "shader-f16" in res["info"]["features"]
    plan = __import__("json").loads((b / "plan.json").read_text())["backends"]["webgpu"]
    for name, k in plan["kernels"].items():
        if k["manifest"]["kind"] != "matmul":
            continue
        cands = k["candidates"]
        chosen = res["tuning"]["choices"].get(name)
        if chosen is not None:
            assert bool(cands[chosen]["options"].get("f16")) <= has_f16, (name, chosen)
        skipped = [s for s in res["tuning"]["skipped"] if s["kernel"] == name]
        if not has_f16:  # every f16 candidate was skipped for the feature, none failed
            assert skipped and all("shader-f16" in s["reason"] for s in skipped), res["tuning"]
        assert not [f for f in res["tuning"]["failed"] if f["kernel"] == name], res["tuning"]["failed"]
    print(f"adapter {res['adapter']}: shader-f16 {'yes' if has_f16 else 'no'}; "
          f"choices {res['tuning']['choices']}; relative error {err:.1e}")
    assert np.isfinite(err)
