"""The demo page and the browser runtime say which adapter ran, and flag a CPU adapter (here:
Chromium's SwiftShader) so that its times are not taken for GPU speed."""

from __future__ import annotations

from tests.browser.harness import browser, playwright_instance, site  # noqa: F401 - fixtures
from tests.browser.kernel_models import kernel_models

MODEL, _ = kernel_models()["gemm_bias_gelu"]


def _demo(browser, site, query: str) -> dict:
    site.bundle("adapter_demo", MODEL)
    pg = browser.new_page()
    try:
        pg.goto(site.url(f"adapter_demo/index.html?autoload=1&tune=0&{query}"))
        pg.wait_for_function("['ready', 'done', 'error'].includes(document.body.dataset.state)", timeout=60000)
        return {
            "state": pg.evaluate("document.body.dataset.state"),
            "status": pg.inner_text("#status"),
            "info": pg.inner_text("#info"),
            "adapter": pg.evaluate("window.nnjitDemo.session.adapter"),
            "warnings": pg.evaluate("window.nnjitDemo.session.warnings"),
        }
    finally:
        pg.close()


def test_demo_page_names_the_adapter_and_flags_a_cpu_one(browser, site):
    r = _demo(browser, site, "backend=webgpu")
    assert r["state"] == "ready", r["status"]
    assert r["adapter"] == {"name": "google swiftshader", "cpu": True}
    says = "google swiftshader (a CPU adapter: times are not GPU speed)"
    assert f"loaded on webgpu, adapter {says}," in r["status"]
    assert f"adapter\n{says}" in r["info"]  # the session table's row
    assert any("CPU adapter (google swiftshader)" in w and "not GPU speed" in w for w in r["warnings"])


def test_demo_page_on_wasm_names_no_adapter(browser, site):
    r = _demo(browser, site, "backend=wasm")
    assert r["state"] == "ready", r["status"]
    assert r["adapter"] is None and "adapter" not in r["status"]
    assert not any("CPU adapter" in w for w in r["warnings"])
