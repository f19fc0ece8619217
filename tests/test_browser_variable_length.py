"""A variable-length bundle in headless Chromium: the page picks the shape variant that holds
each input, pads it and cuts the outputs back, on WebGPU (SwiftShader) and Wasm (2 threads and
1 thread over a non-shared memory), against onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.browser.harness import (  # noqa: F401 - fixtures
    MODELS,
    Page,
    browser,
    check_against_onnxruntime,
    playwright_instance,
    site,
)  # fmt: skip

SEQ = MODELS / "bert_dynamic-legacy.onnx"
BATCH = MODELS / "bert_dynamic_batch-legacy.onnx"


@pytest.fixture(scope="module")
def bundles(site):
    return site.bundles({
        "var_seq": (SEQ, {"lengths": [8, 32], "max_length": 64}),
        "var_batch": (BATCH, {"lengths": [16], "max_length": 16, "max_batch": 2, "backends": ["wasm"]}),
    })  # fmt: skip


@pytest.fixture(scope="module")
def pages(browser, site, bundles):
    p = {"iso": Page(browser, site, isolated=True), "plain": Page(browser, site, isolated=False)}
    yield p
    for x in p.values():
        x.close()


def _feeds(batch: int, n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, n), np.int64)
    mask[1:, n // 2:] = 0
    return {"input_ids": rng.integers(0, 120, (batch, n)).astype(np.int64), "attention_mask": mask}


CONFIGS = {
    "webgpu": ("iso", {"backend": "webgpu", "fallback": False}),
    "wasm-threads": ("iso", {"backend": "wasm", "threads": 2}),
    "wasm-1thread-unshared": ("plain", {"backend": "wasm"}),
}


@pytest.mark.parametrize("config", list(CONFIGS))
def test_lengths_in_one_session_match_onnxruntime(config, pages, bundles):
    where, session = CONFIGS[config]
    feeds = [_feeds(1, n, seed) for seed, n in enumerate((3, 8, 20, 64, 1, 33))]
    int_as = {"webgpu": "bigint64", "wasm-threads": "int32", "wasm-1thread-unshared": "array"}[config]
    res = pages[where].run_bundle("var_seq", feeds, session=session, intAs=int_as)
    check_against_onnxruntime(res, SEQ, bundles["var_seq"], feeds, tol=1e-5)
    assert [o["last_hidden_state"]["dims"] for o in res["outputs"]] == [[1, n, 32] for n in (3, 8, 20, 64, 1, 33)]
    assert res["backend"] == session["backend"]


def test_batch_rows_padded_and_cut(pages, bundles):
    feeds = [_feeds(1, 16, 1), _feeds(2, 9, 2), _feeds(2, 16, 3)]
    res = pages["iso"].run_bundle("var_batch", feeds, session={"backend": "wasm", "threads": 2})
    check_against_onnxruntime(res, BATCH, bundles["var_batch"], feeds, tol=1e-5)
    assert [o["last_hidden_state"]["dims"] for o in res["outputs"]] == [[1, 16, 32], [2, 9, 32], [2, 16, 32]]


def test_sizes_the_bundle_cannot_serve_are_refused(pages, bundles):
    ids = lambda n: {"data": [1] * n, "dims": [1, n]}  # noqa: E731
    errs = pages["iso"].call("feedErrors", "/var_seq/", [
        {"input_ids": ids(65), "attention_mask": ids(65)},
        {"input_ids": ids(9), "attention_mask": ids(8)},
        {"input_ids": [1] * 9, "attention_mask": [1] * 9},
        {"input_ids": ids(9), "attention_mask": ids(9)},
    ])  # fmt: skip
    msgs = [e and e["message"] for e in errs]
    assert msgs[0].startswith("dim 'sequence' is 65, over the largest the bundle was compiled for (64)")
    assert msgs[1].startswith("inputs disagree on dim 'sequence': 9 and 8")
    assert msgs[2].startswith("input 'input_ids': give its dims")
    assert msgs[3] is None
    assert all(e["name"] == "InputError" for e in errs[:3])


def test_bundle_layout(bundles):
    import json

    plan = json.loads((Path(bundles["var_seq"]) / "plan.json").read_text())
    assert [v["bind"] for v in plan["dynamic"]["variants"]] == [{"sequence": n} for n in (8, 32, 64)]
    assert (Path(bundles["var_seq"]) / "runtime" / "variants.js").is_file()


def test_hand_edited_dynamic_table_is_refused(pages, site, bundles):
    import json

    dst = site.copy_bundle("var_seq", "var_bad")
    plan = json.loads((dst / "plan.json").read_text())
    plan["dynamic"]["variants"][0]["bind"] = {"sequence": "8"}
    (dst / "plan.json").write_text(json.dumps(plan))
    res = pages["iso"].run_bundle("var_bad", [], session={"backend": "wasm"})
    assert res["error"]["name"] == "BundleError"
    assert 'the "dynamic" table is malformed' in res["error"]["message"]
