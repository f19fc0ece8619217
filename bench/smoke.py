"""Smoke mode of the benchmarks: `--smoke` or NNJIT_BENCH_SMOKE=1.

A bench in smoke mode runs its own code path on a tiny case (the tiny models of tests/models,
small shapes, one or two repeats) and finishes in seconds; tests/test_docs.py runs every bench
command of the docs that way. It checks that the benchmark runs: its numbers mean nothing.
Parts that need what CI does not have (CUDA and torch, Apache TVM) are skipped with a line.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "models"
TINY_DEFAULT = TINY / "bert-legacy.onnx"


def add_flag(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--smoke", action="store_true", default=os.environ.get("NNJIT_BENCH_SMOKE") == "1",
                    help="a tiny case that checks the bench runs, in seconds (also NNJIT_BENCH_SMOKE=1)")  # fmt: skip


def tiny_model(model: str | Path) -> Path:
    """The tiny model of tests/models that stands in for `model` (models/bert-legacy.onnx ->
    tests/models/bert-legacy.onnx; tiny BERT when there is none of that name)."""
    p = Path(model)
    if p.resolve().parent == TINY:
        return p
    tiny = TINY / p.name if (TINY / p.name).is_file() else TINY_DEFAULT
    print(f"smoke: {model} -> {tiny.relative_to(ROOT)}")
    return tiny


def cuda_missing() -> str | None:
    """Why the torch/CUDA side of a GPU bench cannot run here (None: it can)."""
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "no CUDA device"
    return None
