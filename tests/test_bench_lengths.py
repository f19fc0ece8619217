"""bench/browser/lengths.py in its smoke mode (NNJIT_BENCH_SMOKE=1): the tiny dynamic BERT as a
variable-length and a fixed bundle against ORT-web, and session.embed against transformers.js,
in headless Chromium; checks what the harness measured is sound (outputs, embeddings, token
counts), not the numbers. Skipped where Chromium, playwright or npm is missing."""

from __future__ import annotations

from tests.browser.harness import bench_smoke


def test_lengths_smoke(tmp_path):
    data = bench_smoke("lengths.py", tmp_path)
    assert data["smoke"] and data["compiled_lengths"] == [8, 16]
    lat = data["configs"]["wasm2"]
    assert set(lat["lengths"]) == {"8", "16"}
    for n, cell in lat["lengths"].items():
        assert all(e < 1e-4 for e in cell["error"].values()), (n, cell["error"])
        assert set(cell["warm"]) == ({"var", "ort", "fixed"} if n == "16" else {"var", "ort"})
        assert all(w["median"] > 0 for w in cell["warm"].values())
    assert all(r["error"] < 1e-4 for r in lat["cold"].values())
    text = data["text"]["wasm2"]
    for n, cell in text["lengths"].items():
        assert cell["tokens"] == {"nnjit": int(n), "tjs": int(n)}
        assert cell["cosine"] >= 0.9999 and min(cell["cosine_ref"].values()) >= 0.9999
    md = (tmp_path / "variable_length.md").read_text()
    assert "## Latency by length, Wasm, 2 threads" in md and "## Bundle size and first load" in md
