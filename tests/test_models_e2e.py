"""Tiny configs of BERT, GPT-2, ViT and MiniLM, from both torch exporters, compiled and run on
WebGPU (lavapipe) and Wasm (wasmtime), checked against onnxruntime (relative error <= 1e-4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ort_outputs, relative_error

MODELS = sorted((Path(__file__).parent / "models").glob("*.onnx"))
STATIC = [m for m in MODELS if "dynamic" not in m.name and "_past" not in m.name]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    from nnjit.compiler import compile_model

    cache: dict[str, Path] = {}

    def get(model: Path) -> Path:
        if model.name not in cache:
            out = tmp_path_factory.mktemp(model.stem) / "bundle"
            compile_model(model, out)
            cache[model.name] = out
        return cache[model.name]

    return get


@pytest.mark.parametrize("backend", ["webgpu", "wasm"])
@pytest.mark.parametrize("model", STATIC, ids=[m.stem for m in STATIC])
def test_tiny_model_matches_onnxruntime(model: Path, backend: str, bundles):
    from nnjit.runtime.session import Session, random_feeds

    sess = Session(bundles(model), backend, threads=2)
    for seed in (1, 2):
        feeds = random_feeds(sess.plan, seed)
        outs = sess.run(feeds)
        names = list(outs)
        for name, ref in zip(names, ort_outputs(model, feeds, names)):
            err = relative_error(outs[name], ref)
            assert err <= 1e-4, f"{model.name} {backend} output {name!r}: relative error {err:.2e}"
