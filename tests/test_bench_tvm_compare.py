"""bench/tvm_compare.py without TVM: nnjit's side of the comparison builds real kernels, the
stage split covers the whole candidate, and the schedule given to TVM's Wasm candidate is the
one nnjit's default kernel uses (TVM itself is not installed in CI)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from nnjit.compiler import run_pipeline
from nnjit.ir.fastir import kernels_under

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
tvm_compare = importlib.import_module("tvm_compare")


@pytest.mark.parametrize("backend, marker", [("webgpu", "@compute"), ("wasm", "(module")])
def test_nnjit_builder_generates_one_kernel(backend, marker):
    ((name, source, manifest),) = tvm_compare.nnjit_builder(backend)(24, 40, 32)
    assert marker in source and name == manifest["name"]
    args = manifest["bindings" if backend == "webgpu" else "params"]
    assert [a["shape"] for a in args] == [[24, 40], [40, 32], [24, 32]]


def test_stages_cover_the_candidate():
    stages = tvm_compare.nnjit_stages("wasm", (24, 40, 32), repeat=2)
    assert set(stages) == {"build", "to nn_loop", "convert", "print"}
    assert all(t > 0 for t in stages.values())


@pytest.mark.parametrize("shape", [(128, 768, 768), (37, 48, 40)])
def test_tvm_wasm_candidate_gets_nnjits_default_schedule(shape):
    rows, cols, kstep = tvm_compare.nnjit_wasm_schedule(*shape)
    module = tvm_compare._api_module(*shape)
    run_pipeline(module, "convert-nn-tensor-to-nn-loop{target=wasm}")
    (kernel,) = kernels_under(module)
    sched = kernel.schedule.data
    assert (rows, cols) == tuple(sched["reg"].get_values())
    assert kstep == sched["kstep"].value.data
    assert cols % 4 == 0  # (TVM vectorises the columns by 4)
