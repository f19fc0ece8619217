"""bench/browser/lengths.py in its smoke mode (NNJIT_BENCH_SMOKE=1): the tiny dynamic BERT as a
variable-length and a fixed bundle against ORT-web, and session.embed against transformers.js,
in headless Chromium; checks what the harness measured is sound (outputs, embeddings, token
counts), not the numbers. Skipped where Chromium, playwright or npm is missing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser.harness import skip_reason

ROOT = Path(__file__).resolve().parent.parent


def test_lengths_smoke(tmp_path):
    reason = skip_reason()
    if reason is not None:
        pytest.skip(reason)
    if shutil.which("npm") is None and not (ROOT / "bench" / "browser" / "node_modules").is_dir():
        pytest.skip("npm is not installed: the contenders come from npm (./setup.sh runs npm ci in bench/browser)")
    env = dict(os.environ, NNJIT_BENCH_SMOKE="1", PYTHONPATH=str(ROOT))
    res = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "browser" / "lengths.py"), "--results", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, f"{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    data = json.loads((tmp_path / "variable_length.json").read_text())
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
