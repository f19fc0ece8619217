"""The demo page's generation view (nnjit/web/demo-generate.js) in headless Chromium, on a
bundle of the tiny GPT-2 with its cache: greedy tokens stream into the page on Wasm (2
threads) and WebGPU (SwiftShader), equal to onnxruntime's step by step, with a tokens/s figure
and the prefill time; text in and out through a shipped tokenizer; bad prompts and options
give one clear line in the page."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest

from nnjit.runtime.generate import reference_greedy
from tests.browser.harness import MODELS, browser, playwright_instance, site  # noqa: F401 - fixtures

GPT2 = MODELS / "gpt2_past-legacy.onnx"
TOKENIZER = MODELS / "tokenizer-tiny.json"
PROMPT = [3, 14, 15, 92, 65, 35, 89, 79, 32]
N = 12
SMALL = {"lengths": [16], "max_length": 32}  # (prefill up to 16 tokens, 32 positions in all)


@pytest.fixture(scope="module")
def bundles(site):
    return site.bundles({"demo_gen": (GPT2, SMALL), "demo_gen_text": (GPT2, {**SMALL, "tokenizer": TOKENIZER})})


def open_demo(browser, site, bundle: str, **params):
    """The demo page of `bundle`, loaded (and done generating, with autogenerate=1)."""
    p = browser.new_page()
    query = urlencode({"tune": 0, "threads": 2, **params})
    p.goto(site.url(f"{bundle}/index.html?{query}"))
    settled = ["done", "error"] if params.get("autogenerate") else ["ready", "error"]
    p.wait_for_function(f"{settled}.includes(document.body.dataset.state)")
    return p


def generation(p) -> dict:
    return p.evaluate("JSON.parse(JSON.stringify(window.nnjitDemo.generation))")


@pytest.mark.parametrize("backend", ["wasm", "webgpu"])
def test_demo_page_streams_greedy_tokens_equal_to_onnxruntime(browser, site, bundles, backend):
    want, _ = reference_greedy(GPT2, PROMPT, N)
    p = open_demo(browser, site, "demo_gen", backend=backend, autogenerate=1, prompt=" ".join(map(str, PROMPT)), tokens=N)
    try:
        assert p.evaluate("document.body.dataset.state") == "done", p.evaluate("window.nnjitDemo.error")
        assert p.evaluate("window.nnjitDemo.session.backend") == backend
        gen = generation(p)
        assert gen["prompt"] == PROMPT
        assert gen["streamed"] == want and gen["tokens"] == want
        shown = p.locator("#gen-output .token").all_inner_texts()
        assert [int(t) for t in shown] == want  # (no tokenizer: the page shows the ids)
        assert p.inner_text("#gen-output .prompt") == " ".join(map(str, PROMPT))
        stats = p.inner_text("#gen-stats")
        assert re.search(rf"{N} tokens after {len(PROMPT)} prompt tokens: prefill [0-9.]+ ms, decode [0-9.]+ tokens/s", stats), stats
        assert gen["tokensPerS"] > 0 and gen["stats"]["decodeTokensPerS"] > 0
        assert p.is_hidden("#text-section") and p.is_disabled("#run")
    finally:
        p.close()


def test_demo_page_generates_text_with_the_bundle_tokenizer(browser, site, bundles):
    from tokenizers import Tokenizer

    text = "The cat sat on the mat."
    tok = Tokenizer.from_file(str(TOKENIZER))
    ids = tok.encode(text).ids
    want, _ = reference_greedy(GPT2, ids, N)
    p = open_demo(browser, site, "demo_gen_text", backend="wasm", autogenerate=1, prompt=text, tokens=N)
    try:
        assert p.evaluate("document.body.dataset.state") == "done", p.evaluate("window.nnjitDemo.error")
        gen = generation(p)
        assert gen["prompt"] == ids and gen["tokens"] == want
        prompt_text = tok.decode(ids, skip_special_tokens=False)
        assert prompt_text + gen["text"] == tok.decode(ids + want, skip_special_tokens=False)
        assert p.inner_text("#gen-output .prompt") == prompt_text
        assert p.inner_text("#gen-output .generated") == gen["text"]
        assert p.is_hidden("#text-section")  # (the tokenizer is the decoder's: no similarity view)
    finally:
        p.close()


def test_demo_page_shows_bad_prompts_and_options_in_the_page(browser, site, bundles):
    p = open_demo(browser, site, "demo_gen", backend="wasm", autoload=1)
    try:
        assert p.evaluate("document.body.dataset.state") == "ready", p.evaluate("window.nnjitDemo.error")
        assert p.is_visible("#gen-section") and p.is_enabled("#generate")
        for prompt, tokens, want in [
            ("3 14 999", "4", "token id 999 is outside the vocabulary [0, 98]"),
            ("3 fourteen", "4", "'fourteen' is not a token id"),
            ("", "4", "give token ids"),
            ("3 14 15", "40", "over the bundle's 32 positions"),
            ("3 14 15", "0", "max new tokens: '0' is not an integer from 1"),
        ]:
            p.fill("#gen-prompt", prompt)
            p.fill("#gen-max", tokens)
            p.click("#generate")
            p.wait_for_function("document.body.dataset.state === 'error' && !document.getElementById('generate').disabled")
            assert want in p.inner_text("#status"), (prompt, p.inner_text("#status"))
            assert want in p.inner_text("#gen-stats")
            p.evaluate("document.body.dataset.state = 'ready'")
        p.fill("#gen-prompt", "3, 14, 15")
        p.fill("#gen-max", "3")
        p.click("#generate")  # (the page still generates after the errors)
        p.wait_for_function("['done', 'error'].includes(document.body.dataset.state)")
        assert p.evaluate("document.body.dataset.state") == "done", p.inner_text("#status")
        assert generation(p)["tokens"] == reference_greedy(GPT2, [3, 14, 15], 3)[0]
    finally:
        p.close()
