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


def test_compare_catches_what_it_must():
    from tests.fuzz.harness import compare

    ref = np.array([1.0, np.nan, np.inf, -np.inf, 1e-3], np.float32)
    assert compare(ref.copy(), ref) is None
    assert compare(ref + np.float32(5e-5) * np.array([1, 0, 0, 0, 0], np.float32), ref) is None
    for i, v in ((0, 1.01), (1, 0.0), (2, -np.inf), (3, np.finfo(np.float32).min), (4, np.nan)):
        got = ref.copy()
        got[i] = v
        assert compare(got, ref) is not None, (i, v)
    got = ref.copy()
    got[3] = np.finfo(np.float32).min  # WebGPU's stand-in for -inf, accepted there only
    assert compare(got, ref, inf_as_max=True) is None
    assert compare(np.array([True, False]), np.array([True, True])) is not None
    assert compare(np.zeros((2, 1), np.float32), np.zeros((1, 2), np.float32)) is not None


def test_poisoned_activations_show_a_missing_write(tmp_path, monkeypatch):
    # a runtime that skips the last kernel leaves its output poisoned: check must see it
    from onnx import TensorProto, helper

    from nnjit.runtime import session
    from tests.fuzz.harness import check

    nodes = [helper.make_node("Exp", ["x"], ["e"]), helper.make_node("Softmax", ["e"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", 1, [3, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    feeds = {"x": np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)}
    assert check(model.SerializeToString(), feeds, tmp_path) == []
    for runner in (session._WebGPURunner, session._WasmRunner):
        real = runner.run

        def skip_last(self, inputs, real=real):
            steps = self.bplan["steps"]
            self.bplan["steps"] = steps[:-1]
            try:
                return real(self, inputs)
            finally:
                self.bplan["steps"] = steps

        monkeypatch.setattr(runner, "run", skip_last)
    problems = check(model.SerializeToString(), feeds, tmp_path)
    assert len(problems) == 2 and all("NaN positions differ" in p for p in problems), problems
