"""bench/browser/generate.py in its smoke mode (NNJIT_BENCH_SMOKE=1): the tiny GPT-2 with a cache
as a generation bundle (and its --weights int8 twin) against ORT-web's past_key_values loop in
headless Chromium; checks what
the harness measured is sound (the same greedy tokens as onnxruntime, timings, the decode
profile), not the numbers. Skipped where Chromium, playwright or npm is missing."""

from __future__ import annotations

from tests.browser.harness import bench_smoke


def test_generation_smoke(tmp_path):
    data = bench_smoke("generate.py", tmp_path)
    assert data["smoke"] and data["new_tokens"] == 16 and len(data["prompt"]) == 8
    assert len(data["reference"]["tokens"]) == 16
    cfg = data["configs"]["wasm2"]
    assert cfg["mismatches"] == [] and cfg["nnjit_vs_ort"] == [None]
    for engine in ("nnjit", "nnjit-int8", "ort"):
        assert cfg[engine]["decode_tokens_per_s"] > 0 and cfg[engine]["prefill_ms"] > 0
    assert cfg["profile"]["steps"] == 15  # the decode steps of the one timed round
    assert {g["kind"] for g in cfg["profile"]["groups"].values()} >= {"matmul", "softmax", "layer_norm"}
    # the int8 bundle: its agreement with the fp32 tokens, and its matmuls read fewer bytes
    (agree,) = cfg["agreement"]["nnjit-int8"][:1]
    assert agree["of"] == 16 and 0 <= agree["equal"] <= 16
    mm = {p: sum(g["bytes"] for g in cfg["profiles"][p]["groups"].values() if g["kind"] == "matmul") for p in ("nnjit", "nnjit-int8")}
    assert mm["nnjit-int8"] < mm["nnjit"], mm
    md = (tmp_path / "generation.md").read_text()
    assert "## Decode tokens/s and prefill" in md
    assert "## Where the decode step goes: nnjit (fp32 weights), Wasm, 2 threads" in md
    assert "## Where the decode step goes: nnjit `--weights int8`, Wasm, 2 threads" in md
    assert "Every run of nnjit (fp32 weights) and ORT-web (fp32) gave onnxruntime's" in md
