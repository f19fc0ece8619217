"""bench/browser/int8_wasm.py in its smoke mode (NNJIT_BENCH_SMOKE=1): the tiny MiniLM, float32
and quantize_dynamic int8, against ORT-web in headless Chromium; checks that the harness
measured soundly (every contender ran, the int8 bundle ran its integer kernels from the i16x2
weights the browser decodes, outputs near onnxruntime's), not the numbers. Skipped where
Chromium, playwright or npm is missing."""

from __future__ import annotations

from tests.browser.harness import bench_smoke


def test_int8_wasm_smoke(tmp_path):
    data = bench_smoke("int8_wasm.py", tmp_path)
    assert data["smoke"] and data["models"] == ["minilm"]
    for cfg in ("wasm1", "wasm2"):
        r = data["configs"][cfg]["minilm"]
        assert set(r["warm"]) == {"int8", "ort8", "fp32", "ort32"}
        assert all(w["median"] > 0 for w in r["warm"].values())
        assert r["cold"]["int8"]["error"] < 1e-4 and r["cold"]["fp32"]["error"] < 1e-4
    md = (tmp_path / "int8_wasm.md").read_text()
    assert "## MiniLM (tiny), Wasm, 1 thread" in md and "nnjit int8 vs ORT-web int8" in md
