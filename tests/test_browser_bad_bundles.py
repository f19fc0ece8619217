"""The browser runtime refuses token ids outside the table they index (plan "range"), as
onnxruntime and the Python runtime do, on both backends: one InputError naming the input, the
value, its index and the allowed range; ids inside the range (negative ones too) still run.
A plan naming a file outside the bundle is refused, even with the right hash."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.browser.harness import (  # noqa: F401 - fixtures
    Page,
    browser,
    check_against_onnxruntime,
    playwright_instance,
    site,
)  # fmt: skip
from tests.test_bad_bundles import VOCAB, gather_model

MODEL = gather_model()


@pytest.fixture(scope="module")
def page(browser, site):
    site.bundle("range_gather", MODEL, backends=("webgpu", "wasm"))
    p = Page(browser, site)
    yield p
    p.close()


@pytest.mark.parametrize("backend", ["webgpu", "wasm"])
def test_token_ids_outside_the_table_are_refused(page, site, backend):
    ids = np.arange(10, dtype=np.int64).reshape(2, 5)
    ids[0, 0], ids[1, 4] = -VOCAB, VOCAB - 1
    bad = ids.copy()
    bad[1, 3] = VOCAB
    opts = {"session": {"backend": backend, "fallback": False, "tuning": False}}
    res = page.run_bundle("range_gather", [{"ids": ids}, {"ids": bad}], **opts)
    assert res["backend"] == backend
    ran = {k: v for k, v in res.items() if k != "runError"}  # (the first feed set ran)
    check_against_onnxruntime(ran, MODEL, site.root / "range_gather", [{"ids": ids}])
    err = res["runError"]
    assert err["name"] == "InputError", err
    want = f"input 'ids' has value {VOCAB} at index [1, 3], outside [{-VOCAB}, {VOCAB - 1}]"
    assert want in err["message"] and "out of data bounds" in err["message"], err


@pytest.mark.parametrize("rel", ["../range_gather/weights.bin", "%2e%2e/range_gather/weights.bin",
                                 "/range_gather/weights.bin"])  # fmt: skip
def test_file_names_outside_the_bundle_are_refused(page, site, rel):
    b = site.root / "range_outside"
    shutil.rmtree(b, ignore_errors=True)
    shutil.copytree(site.root / "range_gather", b)
    plan = json.loads((b / "plan.json").read_text())
    plan["weights"]["file"] = rel
    plan["files"][rel] = plan["files"]["weights.bin"]  # (the hash of what lies there)
    (b / "plan.json").write_text(json.dumps(plan))
    res = page.run_bundle("range_outside", [], session={"backend": "wasm", "tuning": False})
    err = res["error"]
    assert err["name"] == "BundleError" and "outside the bundle" in err["message"], err
