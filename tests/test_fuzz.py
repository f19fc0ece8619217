"""Differential fuzzing: random ONNX graphs (tests/fuzz/graphs.py) compiled by nnjit and run on
WebGPU and Wasm, against onnxruntime CPU (tests/fuzz/harness.py says how outputs compare).

CI runs a fixed seed over 50 graphs; a mismatch fails the test and hypothesis shrinks the
graph to a minimal one. The long mode (`make fuzz`) sets

    NNJIT_FUZZ_COUNT   graphs to run (default 50)
    NNJIT_FUZZ_SEED    hypothesis seed (default 0)
    NNJIT_FUZZ_KEEP_GOING=1   record mismatches (model + inputs saved under NNJIT_FUZZ_SAVE,
                              default /tmp/nnjit-fuzz) and go on; the summary test fails if any

and prints one summary line: graphs run, mismatches.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed, settings

from tests.fuzz.graphs import FuzzGraph, graphs
from tests.fuzz.harness import check

COUNT = int(os.environ.get("NNJIT_FUZZ_COUNT", "50"))
SEED = int(os.environ.get("NNJIT_FUZZ_SEED", "0"))
KEEP_GOING = os.environ.get("NNJIT_FUZZ_KEEP_GOING", "") not in ("", "0")
SAVE = Path(os.environ.get("NNJIT_FUZZ_SAVE", "/tmp/nnjit-fuzz"))

STATS = {"graphs": 0, "mismatches": 0, "saved": []}


def _save(g: FuzzGraph, problems: list[str]) -> Path:
    SAVE.mkdir(parents=True, exist_ok=True)
    stem = SAVE / f"mismatch-{SEED}-{STATS['mismatches']}"
    stem.with_suffix(".onnx").write_bytes(g.model.SerializeToString())
    np.savez(stem.with_suffix(".npz"), **g.feeds)
    stem.with_suffix(".txt").write_text(g.describe() + "\n" + "\n".join(problems) + "\n")
    return stem


@seed(SEED)
@settings(
    max_examples=COUNT,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=list(HealthCheck),
)
@given(g=graphs())
def test_nnjit_matches_onnxruntime_on_random_graphs(g: FuzzGraph, tmp_path_factory):
    STATS["graphs"] += 1
    problems = check(g.model.SerializeToString(), g.feeds, tmp_path_factory.getbasetemp())
    if problems and KEEP_GOING:
        STATS["mismatches"] += 1
        STATS["saved"].append(str(_save(g, problems)))
        return
    assert not problems, g.describe() + "\n" + "\n".join(problems)


def test_fuzz_summary():
    print(f"\nnnjit fuzz: seed {SEED}, graphs {STATS['graphs']}, "
          f"mismatches {STATS['mismatches']}")
    for s in STATS["saved"]:
        print(f"  {s}.onnx / .npz / .txt")
    if KEEP_GOING:
        assert STATS["mismatches"] == 0, f"{STATS['mismatches']} mismatching graphs, saved in {SAVE}"
    elif STATS["graphs"] == 0:
        pytest.skip("the fuzz test did not run")
