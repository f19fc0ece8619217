"""Generation with a KV cache in headless Chromium: session.generate on WebGPU (SwiftShader)
and Wasm (2 threads) gives onnxruntime's greedy tokens for 64 new tokens, streams them through
onToken, repeats a seeded sampled run, and refuses bad options with a clear error."""

from __future__ import annotations

import pytest

from nnjit.runtime.generate import reference_greedy
from tests.browser.harness import MODELS, Page, browser, playwright_instance, site  # noqa: F401 - fixtures

GPT2 = MODELS / "gpt2_past-legacy.onnx"
PROMPT = [3, 14, 15, 92, 65, 35, 89, 79, 32]


@pytest.fixture(scope="module")
def page(browser, site):
    site.bundle("gen_gpt2", GPT2, lengths=[8, 16, 32], max_length=80)
    p = Page(browser, site, isolated=True)
    yield p
    p.close()


@pytest.mark.parametrize("session", [{"backend": "webgpu", "fallback": False}, {"backend": "wasm", "threads": 2}],
                         ids=["webgpu", "wasm"])  # fmt: skip
def test_greedy_generation_matches_onnxruntime(page, session):
    ref, _ = reference_greedy(GPT2, PROMPT, 64)
    res = page.call("generateBundle", "/gen_gpt2/", PROMPT, {"maxNewTokens": 64}, session)
    assert "error" not in res, res
    assert res["backend"] == session["backend"]
    assert res["tokens"] == ref
    assert res["streamed"] == ref
    stats = res["stats"]
    assert stats["promptTokens"] == len(PROMPT) and stats["newTokens"] == 64
    assert stats["prefillMs"] > 0 and stats["decodeTokensPerS"] > 0


def test_seeded_sampling_repeats_and_bad_options_fail_clearly(page):
    opts = {"maxNewTokens": 12, "temperature": 0.9, "topK": 20, "topP": 0.95, "seed": 7}
    a = page.call("generateBundle", "/gen_gpt2/", PROMPT, opts, {"backend": "wasm"})
    b = page.call("generateBundle", "/gen_gpt2/", PROMPT, opts, {"backend": "wasm"})
    assert "error" not in a, a
    assert a["tokens"] == b["tokens"] and len(a["tokens"]) == 12
    greedy = page.call("generateBundle", "/gen_gpt2/", PROMPT, {"maxNewTokens": 12}, {"backend": "wasm"})
    assert a["tokens"] != greedy["tokens"]  # (temperature 0.9 over a random model's flat logits)
    for ids, opts, want in [
        (PROMPT, {"maxNewTokens": 200}, "over the bundle's 80 positions"),
        ([1, 2, 999], {"maxNewTokens": 4}, "outside the vocabulary"),
        ([], {"maxNewTokens": 4}, "non-empty"),
        (PROMPT, {"maxNewTokens": 4, "topP": 0}, "topP=0"),
    ]:
        res = page.call("generateBundle", "/gen_gpt2/", ids, opts, {"backend": "wasm"})
        assert want in res.get("error", {}).get("message", ""), res
