"""The model zoo: tiny configs of 34 architectures that web pages run (tests/models/zoo/, built
by `python tools/build_models.py --zoo`; docs/zoo.md), each export compiled once for both
backends and run on WebGPU (lavapipe) and Wasm (wasmtime) against onnxruntime (CPU).

Every output must be within a relative error (max |nnjit - ort| / max |ort|) of 1e-4 on fresh
random inputs: token ids within the vocabulary, masks of ones and masks with padding. A compile
that succeeds must not warn (no numpy RuntimeWarning). Architectures that nnjit cannot compile
yet are expected failures whose reason is the exact line nnjit's importer gives.

`NNJIT_ZOO_REPORT=errors.json` writes the largest relative error of each model and backend
(docs/zoo.md's table: `python tools/zoo_table.py errors.json`).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import ort_outputs, relative_error

ZOO = Path(__file__).parent / "models" / "zoo"
MANIFEST: dict[str, dict[str, Any]] = json.loads((ZOO / "zoo.json").read_text())
BUILT = sorted(k for k, v in MANIFEST.items() if "export_error" not in v)
TOLERANCE = 1e-4

# model -> the error nnjit gives (a substring of it); the test fails if the error changes or
# the model starts to compile (strict)
EXPECTED_FAILURES: dict[str, str] = {}

RESULTS: dict[str, float] = {}  # "<model>/<backend>" -> largest relative error seen


def teardown_module() -> None:
    path = os.environ.get("NNJIT_ZOO_REPORT")
    if path:
        Path(path).write_text(json.dumps(dict(sorted(RESULTS.items())), indent=1) + "\n")


def _feeds(entry: dict[str, Any], shapes: dict[str, tuple[int, ...]], seed: int) -> dict:
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for name in entry["inputs"]:
        shape = shapes[name]
        if name == "attention_mask":
            mask = np.ones(shape, dtype=np.int64)
            if seed % 2 == 0:  # padding at the end of the sequence
                mask[..., -3:] = 0
            feeds[name] = mask
        elif name in entry["int_ranges"]:
            feeds[name] = rng.integers(0, entry["int_ranges"][name], size=shape, dtype=np.int64)
        else:
            feeds[name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """One compile per model for both backends; the warnings it gave, or its error."""
    from nnjit.compiler import compile_model

    cache: dict[str, tuple[Path | None, list[str], Exception | None]] = {}

    def get(key: str) -> tuple[Path | None, list[str], Exception | None]:
        if key not in cache:
            out = tmp_path_factory.mktemp(key) / "bundle"
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    compile_model(ZOO / f"{key}.onnx", out, web_runtime=False)
                    error = None
                except Exception as e:
                    out, error = None, e
            notes = [f"{w.category.__name__}: {w.message}" for w in caught
                     if issubclass(w.category, RuntimeWarning)]  # fmt: skip
            cache[key] = (out, notes, error)
        return cache[key]

    return get


def _cases() -> list[Any]:
    cases = []
    for key in BUILT:
        for backend in ("webgpu", "wasm"):
            marks = []
            if key in EXPECTED_FAILURES:
                marks.append(
                    pytest.mark.xfail(strict=True, raises=_ExpectedError, reason=EXPECTED_FAILURES[key])
                )
            cases.append(pytest.param(key, backend, marks=marks, id=f"{key}-{backend}"))
    return cases


class _ExpectedError(Exception):
    """The compile failed with the error EXPECTED_FAILURES names."""


@pytest.mark.parametrize(("key", "backend"), _cases())
def test_zoo_model_matches_onnxruntime(key: str, backend: str, bundles):
    from nnjit.runtime.session import Session

    bundle, notes, error = bundles(key)
    if error is not None:
        expected = EXPECTED_FAILURES.get(key)
        if expected is not None and expected in str(error):
            raise _ExpectedError(str(error))
        raise error
    assert not notes, f"{key}: the compile warned: {notes}"
    sess = Session(bundle, backend, threads=2)
    shapes = {i["name"]: tuple(i["shape"]) for i in sess.plan["model"]["inputs"]}
    for seed in (1, 2):
        feeds = _feeds(MANIFEST[key], shapes, seed)
        outs = sess.run(feeds)
        names = list(outs)
        for name, ref in zip(names, ort_outputs(ZOO / f"{key}.onnx", feeds, names)):
            err = relative_error(outs[name], ref)
            RESULTS[f"{key}/{backend}"] = max(err, RESULTS.get(f"{key}/{backend}", 0.0))
            assert err <= TOLERANCE, f"{key} {backend} output {name!r}: relative error {err:.2e}"


def test_zoo_covers_the_architectures():
    """At least 20 architectures, each exported by at least one exporter."""
    archs = {MANIFEST[k]["arch"] for k in BUILT}
    assert len(archs) >= 20, sorted(archs)
