"""Compact weights in the browser runtime (nnjit/web/compact.js): a --weights int8 bundle (and
f16, int4) runs in Chromium with the outputs of the Python runtime on the same bundle, whose
weights nnjit/frontend/compact.py decodes: both dequantize to the same float32 weights (and on
Wasm both read the int8 matmul weights as bytes)."""

from __future__ import annotations

import secrets
from pathlib import Path

import numpy as np
import pytest

from nnjit.frontend.compact import Blocks, decode, dequantize, encode, quantize
from nnjit.runtime.session import Session
from tests.browser.harness import (  # noqa: F401 - fixtures
    Page,
    browser,
    decode_output,
    feeds_for,
    plan_of,
    playwright_instance,
    site,
)  # fmt: skip
from tests.conftest import relative_error

MODEL = Path(__file__).parent / "models" / "minilm-legacy.onnx"


@pytest.mark.parametrize("mode", ["int8", "f16", "int4"])
@pytest.mark.parametrize("backend", ["wasm", "webgpu"])
def test_compact_bundle_in_the_browser(browser, site, backend, mode):
    b = site.bundle(f"minilm_{mode}", MODEL, weights=mode)
    entries = plan_of(b)["weights"]["entries"].values()
    assert any("compact" in e for e in entries)
    if mode == "int8":  # (the Wasm matmuls read their weights as int8 bytes: tests/test_weight_only_int8.py)
        dtypes = {x["dtype"] for x in plan_of(b)["backends"]["wasm"]["buffers"] if x["kind"] == "weight"}
        assert "i8" in dtypes
    feeds = [feeds_for(b, seed) for seed in (1, 2)]
    page = Page(browser, site)
    try:
        res = page.run_bundle(b.name, feeds, session={"backend": backend, "fallback": False})
    finally:
        page.close()
    assert "error" not in res and "runError" not in res, res
    assert res["backend"] == backend
    session = Session(b, backend)
    for f, outs in zip(feeds, res["outputs"], strict=True):
        for name, want in session.run(f).items():
            err = relative_error(decode_output(outs[name]), np.asarray(want))
            assert err <= 1e-5, f"{mode} on {backend}: {name} differs from Python by {err:.2e}"


DECODE_JS = """async (cases) => {
  const { decodeCompact } = await import('/runtime/compact.js');
  return cases.map(([bytes, shape, desc]) => {
    try {
      return Array.from(decodeCompact(Uint8Array.from(bytes), shape, desc));
    } catch (e) {
      return String(e.message);
    }
  });
}"""


def test_compact_decoder_in_the_browser(browser, site):
    """nnjit/web/compact.js decodes each q4/q8 form (float16 or float32 scales, zero points in
    bytes or nibbles, K not a multiple of the block) to the floats of the Python decoder, and
    throws a one-line error on an entry that does not fit, as the Python decoder does."""
    rng = np.random.default_rng(secrets.randbits(32))
    cases, want = [], []
    for shape, axis, bits, block, half in [((37, 13), 0, 4, 8, True), ((5, 70, 3), 1, 4, 64, True),
                                           ((33, 7), 0, 4, 32, False), ((9, 21), 1, 8, None, False)]:  # fmt: skip
        w = rng.standard_normal(shape).astype(np.float32)
        raw, desc = encode(quantize(w, axis, bits, block, half))
        cases.append([raw.tolist(), list(shape), desc])
        want.append(decode(raw, shape, desc))
    old = Blocks(rng.integers(0, 16, (40, 6)).astype(np.uint8), rng.random((5, 6)).astype(np.float32),
                 rng.integers(0, 16, (5, 6)).astype(np.uint8), 0, 8, 4)  # fmt: skip
    raw = np.concatenate([encode(old)[0][:120 + 120], old.zero.reshape(-1)])  # (zero points in bytes)
    cases.append([raw.tolist(), [40, 6], {"format": "q4", "axis": 0, "block": 8, "signed": False, "zero": True}])
    want.append(dequantize(old))
    good = cases[0]
    bad = [[good[0][:-1], *good[1:]], [good[0], good[1], {**good[2], "scale": "f8"}],
           [cases[3][0], cases[3][1], {**cases[3][2], "zero": "u4"}]]  # fmt: skip
    page = Page(browser, site)
    try:
        got = page.page.evaluate(DECODE_JS, cases + bad)
    finally:
        page.close()
    for g, w in zip(got, want):
        np.testing.assert_array_equal(np.asarray(g, np.float32).reshape(w.shape), w)
    for g, (raw, shape, desc) in zip(got[len(cases) :], bad):
        with pytest.raises(ValueError) as e:
            decode(np.asarray(raw, np.uint8), tuple(shape), desc)
        assert isinstance(g, str) and "\n" not in g and g.replace(" ", "").replace('"', "'") == str(e.value).replace(" ", ""), g
