"""WebGPU -> Wasm fallbacks (a shader that does not compile, a lost device) and bad bundles
(missing file, hash mismatch, wrong inputs) giving one clear line, in the demo page too."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

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

MODEL, _ = kernel_models()["gemm_bias_gelu"]


@pytest.fixture(scope="module")
def base(site):
    return site.bundle("fb_base", MODEL, reference_outputs=True)


@pytest.fixture(scope="module")
def page(browser, site, base):
    p = Page(browser, site)
    yield p
    p.close()


def rehash(bundle: Path) -> None:
    plan = plan_of(bundle)
    for rel in plan["files"]:
        if (bundle / rel).is_file():
            plan["files"][rel] = hashlib.sha256((bundle / rel).read_bytes()).hexdigest()
    (bundle / "plan.json").write_text(json.dumps(plan))


def first_kernel_file(bundle: Path, backend: str) -> str:
    bp = plan_of(bundle)["backends"][backend]
    return bp["kernels"][bp["steps"][0]["kernel"]]["file"]


def demo_state(browser, site, name: str, query: str = "autoload=1&tune=0") -> tuple[str, str]:
    """Opens <name>/index.html (the demo page) and waits for it to settle: (state, status)."""
    pg = browser.new_page()
    try:
        pg.goto(site.url(f"{name}/index.html?{query}"))
        pg.wait_for_function("['ready', 'done', 'error'].includes(document.body.dataset.state)", timeout=30000)
        return pg.evaluate("document.body.dataset.state"), pg.inner_text("#status")
    finally:
        pg.close()


def test_auto_uses_webgpu_when_it_works(page, site, base):
    feeds = [feeds_for(base, 1)]
    res = page.run_bundle("fb_base", feeds, session={"backend": "auto"})
    check_against_onnxruntime(res, MODEL, base, feeds)
    assert res["backend"] == "webgpu" and res["fallbackReason"] is None


def test_shader_that_fails_to_compile_falls_back_to_wasm(page, site, base):
    b = site.copy_bundle("fb_base", "fb_badwgsl")
    rel = first_kernel_file(b, "webgpu")
    (b / rel).write_text((b / rel).read_text().replace("fn main(", "fn main(oops ", 1))
    rehash(b)
    feeds = [feeds_for(b, 2)]
    res = page.run_bundle("fb_badwgsl", feeds, session={"backend": "webgpu"})
    check_against_onnxruntime(res, MODEL, b, feeds)
    assert res["backend"] == "wasm"
    assert "failed to compile" in res["fallbackReason"] and rel in res["fallbackReason"]
    # without fallback the same failure is the error
    res = page.run_bundle("fb_badwgsl", feeds, session={"backend": "webgpu", "fallback": False})
    assert "failed to compile" in res["error"]["message"] and rel in res["error"]["message"]


def test_lost_device_falls_back_to_wasm(page, site, base):
    feeds = [feeds_for(base, s) for s in (3, 4, 5)]
    res = page.run_bundle("fb_base", feeds, session={"backend": "webgpu"}, loseDeviceAfter=0)
    check_against_onnxruntime(res, MODEL, base, feeds)
    assert res["runBackends"] == ["webgpu", "wasm", "wasm"]
    assert "device lost" in res["fallbackReason"] and "destroyed" in res["fallbackReason"]


def test_lost_device_without_fallback_is_an_error(page, site, base):
    feeds = [feeds_for(base, s) for s in (3, 4)]
    res = page.run_bundle("fb_base", feeds, session={"backend": "webgpu", "fallback": False}, loseDeviceAfter=0)
    assert res["runBackends"] == ["webgpu"]
    assert "device lost" in res["runError"]["message"]


@pytest.mark.parametrize("backend", ["webgpu", "wasm"])
def test_missing_kernel_file(page, site, base, backend):
    b = site.copy_bundle("fb_base", f"fb_missing_{backend}")
    rel = first_kernel_file(b, backend)
    (b / rel).unlink()
    res = page.run_bundle(b.name, [], session={"backend": backend})
    msg = res["error"]["message"]
    assert res["error"]["name"] == "BundleError" and rel in msg and "missing" in msg, msg
    assert "\n" not in msg


def test_hash_mismatch(page, site, base):
    b = site.copy_bundle("fb_base", "fb_hash")
    w = bytearray((b / "weights.bin").read_bytes())
    w[100] ^= 0xFF
    (b / "weights.bin").write_bytes(bytes(w))
    res = page.run_bundle(b.name, [], session={"backend": "wasm"})
    msg = res["error"]["message"]
    assert "weights.bin" in msg and "SHA-256 does not match" in msg, msg


def test_demo_page_shows_bundle_errors(browser, site, base):
    b = site.copy_bundle("fb_base", "fb_demo_missing")
    (b / "weights.bin").unlink()
    state, status = demo_state(browser, site, b.name)
    assert state == "error" and "weights.bin" in status and "missing" in status, status
    b = site.copy_bundle("fb_base", "fb_demo_hash")
    rel = first_kernel_file(b, "wasm")
    (b / rel).write_bytes((b / rel).read_bytes() + b"\0")
    state, status = demo_state(browser, site, b.name, "autoload=1&tune=0&backend=wasm")
    assert state == "error" and rel in status and "SHA-256" in status, status
    (site.root / "fb_demo_empty").mkdir(exist_ok=True)
    (site.root / "fb_demo_empty" / "index.html").write_bytes((b / "index.html").read_bytes())
    state, status = demo_state(browser, site, "fb_demo_empty")
    assert state == "error" and "not an nnjit bundle" in status, status


def test_demo_page_wrong_input_shape(browser, site, base):
    # the reference inputs the demo feeds claim another shape than the model takes
    b = site.copy_bundle("fb_base", "fb_demo_shape")
    plan = plan_of(b)
    plan["reference"]["entries"]["input:x"]["shape"] = [6, 9, 1]
    (b / "plan.json").write_text(json.dumps(plan))
    state, status = demo_state(browser, site, b.name, "autorun=1&tune=0&runs=1")
    assert state == "error", status
    assert "input 'x' has shape [6, 9, 1], the compiled model takes [6, 10]" in status


def test_demo_page_runs_and_checks(browser, site, base):
    state, status = demo_state(browser, site, "fb_base", "autorun=1&runs=2")
    assert state == "done" and "check passed" in status, status


def test_bad_feeds_give_clear_errors(page, site, base):
    x = [0.5] * 60
    errs = page.call("feedErrors", "/fb_base/", [
        {"x": {"data": x, "dims": [6, 9]}},
        {"x": {"data": x[:54]}},
        {"x": {"data": x, "dims": [6, 10], "type": "int32"}},
        {},
        {"x": {"data": x, "dims": [6, 10]}, "y": {"data": [1], "dims": [1]}},
        {"x": {"data": x, "dims": [6, 10]}},
    ])  # fmt: skip
    msgs = [e and e["message"] for e in errs]
    assert msgs[0] == "input 'x' has shape [6, 9], the compiled model takes [6, 10] (recompile with --shape to change it)"
    assert msgs[1].startswith("input 'x' has 54 elements, the compiled model takes shape [6, 10]")
    assert msgs[2] == "input 'x' has dtype int32, the model takes float32"
    assert msgs[3] == "missing input 'x' (shape [6, 10], float32)"
    assert msgs[4].startswith("unknown input(s) 'y'")
    assert msgs[5] is None
    assert all(e["name"] == "InputError" for e in errs[:5])


def test_int_inputs_checked(page, site):
    from tests.browser.kernel_models import kernel_models

    model, _ = kernel_models()["gather"]
    site.bundle("k_gather", model)
    errs = page.call("feedErrors", "/k_gather/", [
        {"ids": {"data": [1.5] * 10, "dims": [2, 5]}},
        {"ids": {"data": [2**40] * 10, "dims": [2, 5]}},
        {"ids": {"data": [1] * 10, "dims": [2, 5], "type": "float32"}},
    ])  # fmt: skip
    assert "non-integer value 1.5" in errs[0]["message"]
    assert "outside int32" in errs[1]["message"]
    assert errs[2]["message"] == "input 'ids' has dtype float32, the model takes int64"


def test_unshared_patch_makes_kernels_load_on_plain_memory(browser, site, base):
    p = Page(browser, site, isolated=False)
    try:
        res = p.call("unsharePatchCheck", "/fb_base/" + first_kernel_file(base, "wasm"))
    finally:
        p.close()
    assert res["unpatched"] != "ok" and "shared" in res["unpatched"].lower(), res
    assert res["patched"] == 1 and res["after"] == "ok" and res["sameLength"]
