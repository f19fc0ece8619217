"""The browser runtime refuses token ids outside the table they index (plan "range"), as
onnxruntime and the Python runtime do, on both backends: one InputError naming the input, the
value, its index and the allowed range; ids inside the range (negative ones too) still run.
A plan naming a file outside the bundle is refused, even with the right hash. Tensors named
like JavaScript's object machinery ("__proto__", "constructor") are inputs and outputs like any."""

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
    reference,
    site,
)  # fmt: skip
from tests.conftest import relative_error
from tests.test_bad_bundles import VOCAB, _model, gather_model

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


def test_tensor_names_of_object_machinery(page, site):
    from onnx import TensorProto as T
    from onnx import helper as h
    from onnx import numpy_helper as nh

    c = nh.from_array(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4), "hasOwnProperty")
    outs = ["__proto__", "toString"]
    model = _model([h.make_node("Add", ["constructor", "hasOwnProperty"], ["__proto__"]),
                    h.make_node("Mul", ["__proto__", "constructor"], ["toString"])],
                   [h.make_tensor_value_info("constructor", T.FLOAT, [3, 4])],
                   [h.make_tensor_value_info(n, T.FLOAT, [3, 4]) for n in outs], [c])  # fmt: skip
    site.bundle("object_names", model, backends=("wasm",))
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    res = page.page.evaluate("""async ([url, data]) => {
      const nnjit = await import("/runtime/nnjit.js");
      const s = await nnjit.InferenceSession.create(url, { backend: "wasm", tuning: false });
      const out = await s.run({ constructor: new nnjit.Tensor("float32", Float32Array.from(data), [3, 4]) });
      let missing = null;
      try { await s.run({}); } catch (e) { missing = e.message; }
      await s.release();
      return { names: Object.keys(out), outs: Object.entries(out).map(([k, t]) => [k, Array.from(t.data)]), missing };
    }""", ["/object_names/", x.reshape(-1).tolist()])
    assert sorted(res["names"]) == outs  # ("__proto__" an own property, not the prototype)
    got = dict(res["outs"])
    for name, r in zip(outs, reference(model, {"constructor": x}, outs)):
        assert relative_error(np.asarray(got[name]).reshape(3, 4), r) < 1e-6, name
    assert "missing input 'constructor'" in res["missing"], res["missing"]
