"""Shared fixtures: one WebGPU device and one Wasm runtime per test session."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
# The console scripts (nnjit, nnjit-opt, nnjit-translate, lit) of the interpreter running the tests
# come first on PATH, so `.venv/bin/pytest` finds .venv's tools without an activated environment.
_BIN = os.path.dirname(sys.executable)
if os.environ.get("PATH", "").split(os.pathsep)[0] != _BIN:
    os.environ["PATH"] = _BIN + os.pathsep + os.environ.get("PATH", "")


def relative_error(got, ref) -> float:
    """max |got - ref| / max |ref|, in float64; inf when got has NaN/inf (poisoned output)."""
    import numpy as np

    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        raise AssertionError(f"shape {got.shape} != reference shape {ref.shape}")
    if not np.all(np.isfinite(got)):
        return float("inf")
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    return float(np.max(np.abs(got - ref))) / max(scale, 1e-30) if ref.size else 0.0


def ort_outputs(model, feeds: dict, names: list[str] | None = None) -> list:
    """onnxruntime (CPU, quiet) outputs `names` (default: all) of an ONNX model for `feeds`."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    return sess.run(names, feeds)
