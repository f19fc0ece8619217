"""Models shipped inside the package (see README.md here)."""

from __future__ import annotations

from pathlib import Path


def default_model_path() -> Path:
    """Path of the embedded default model: a tiny BERT-like encoder (seq 16), ONNX."""
    return Path(__file__).resolve().parent / "default.onnx"
