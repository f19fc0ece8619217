"""The measured WebGPU prior (nnjit/tuning/prior.py) and the device-class orders it gives a
bundle's candidates: which point a GPU runs before tuning and tries first, while a software
adapter keeps today's default and order."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nnjit.errors import NNJitError
from nnjit.runtime.adapters import device_class as adapter_class
from nnjit.runtime.session import candidate_order
from nnjit.tuning import prior
from nnjit.tuning.kernels import model_kernels
from nnjit.tuning.plugins import space_for
from nnjit.tuning.space import DeviceInfo
from nnjit.tuning.tuner import load_fused_model

MODELS = Path(__file__).resolve().parent / "models"


@pytest.fixture(scope="module")
def matmuls():
    module, _ = load_fused_model(str(MODELS / "bert-legacy.onnx"))
    return [i for i in model_kernels(module, "webgpu") if i.kind == "matmul"]


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A prior data directory of the test's own (prior.measured is cached per directory)."""
    monkeypatch.setattr(prior, "DATA_DIR", tmp_path)
    prior.measured.cache_clear()
    yield tmp_path
    prior.measured.cache_clear()


def write_prior(path: Path, kernels: list[dict]) -> None:
    path.write_text(json.dumps({"format": prior.FORMAT, "version": prior.VERSION, "kernels": kernels}))


GPU = DeviceInfo("wgsl", {"max-compute-invocations-per-workgroup": 1024}, set(),
                 fingerprint={"runner": "wgpu", "name": "NVIDIA H100 80GB HBM3", "vendor": "nvidia"})  # fmt: skip
LAVAPIPE = DeviceInfo("wgsl", {}, set(), fingerprint={"runner": "wgpu", "name": "llvmpipe (LLVM 15.0.6, 256 bits)"})


def test_device_classes():
    assert prior.device_class(GPU) == "gpu"
    assert prior.device_class(LAVAPIPE) == "cpu"
    assert prior.device_class(DeviceInfo.generic("wgsl")) is None
    assert prior.device_class(DeviceInfo.generic("wasm")) is None
    assert adapter_class({"name": "x", "device_type": "CPU"}) == "cpu"
    assert adapter_class({"vendor": "google", "architecture": "swiftshader"}) == "cpu"
    assert adapter_class({"name": "AMD Radeon", "device_type": "DiscreteGPU"}) == "gpu"


def test_prior_orders_by_the_nearest_measured_kernel(data_dir, matmuls):
    info = max(matmuls, key=lambda i: i.geometry["M"] * i.geometry["N"] * i.geometry["K"])
    points = space_for(info, DeviceInfo.generic("wgsl"))
    a, b = points[5], points[9]
    g = dict(info.geometry)
    far = {**g, "M": g["M"] * 64, "N": g["N"] * 64}
    other_mode = {**g, "mode": "k" if g.get("mode") != "k" else "n"}
    write_prior(data_dir / "wgsl-gpu.json", [
        {"kind": "matmul", "geometry": {**g, "K": g["K"] * 2},  # nearest: one factor of 2 away
         "rel": {prior.point_key(a): 1.0, prior.point_key(b): 1.3, prior.point_key({"nope": 1}): 1.1}},
        {"kind": "matmul", "geometry": far, "rel": {prior.point_key(points[3]): 1.0}},
        {"kind": "gemm", "geometry": other_mode, "rel": {prior.point_key(points[2]): 1.0}},
        {"kind": "softmax", "geometry": {"rows": 8, "row_len": 8}, "rel": {prior.point_key(points[4]): 1.0}},
    ])  # fmt: skip
    got = prior.prior_order(info, points, "gpu")
    assert got[:2] == [a, b]  # ranked first, fastest first; the unknown point is skipped
    assert sorted(map(prior.point_key, got)) == sorted(map(prior.point_key, points))  # same set
    rest = [p for p in points if p not in (a, b)]
    assert got[2:] == rest  # the others keep their order
    assert prior.prior_order(info, points, "cpu") == points  # no data for the class
    assert prior.prior_order(info, points, None) == points
    # the tuner's space on a GPU: the default, then the prior's points
    on_gpu = space_for(info, GPU)
    assert on_gpu[0] == {} and on_gpu[1] == a, on_gpu[:3]
    assert space_for(info, LAVAPIPE) == space_for(info, DeviceInfo.generic("wgsl"))


def test_bad_prior_file_is_refused(data_dir, matmuls):
    (data_dir / "wgsl-gpu.json").write_text(json.dumps({"format": "x", "kernels": []}))
    with pytest.raises(ValueError, match="not an nnjit prior"):
        prior.nearest(matmuls[0], "gpu")


def test_shipped_prior_is_well_formed():
    """The data in the package: every kernel's ranking names valid points, best = 1.0."""
    prior.measured.cache_clear()
    files = sorted(prior.DATA_DIR.glob("*.json"))
    assert [f.name for f in files] == ["wgsl-gpu.json"], files
    for path in files:
        data = json.loads(path.read_text())
        assert data["format"] == prior.FORMAT and data["version"] == prior.VERSION, path
        assert data["kernels"], path
        for k in data["kernels"]:
            rel = list(k["rel"].values())
            assert min(rel) == 1.0 and rel == sorted(rel), (path, k["geometry"])
            for key in k["rel"]:
                assert isinstance(json.loads(key), dict)


def test_compile_ships_class_orders(tmp_path, data_dir, matmuls):
    from nnjit.compiler import compile_model

    info = matmuls[0]
    points = space_for(info, DeviceInfo.generic("wgsl"))
    best = points[7]
    write_prior(data_dir / "wgsl-gpu.json", [
        {"kind": "matmul", "geometry": dict(info.geometry), "rel": {prior.point_key(best): 1.0, "{}": 9.0}},
    ])  # fmt: skip
    plan = compile_model(str(MODELS / "bert-legacy.onnx"), tmp_path / "b", backends=["webgpu", "wasm"],
                         web_runtime=False)  # fmt: skip
    wk = plan["backends"]["webgpu"]["kernels"]
    name = info.names[0]
    k = wk[name]
    cands = k["candidates"]
    assert cands[0]["options"] == {} and k["order"]["cpu"] == [0]  # a software adapter: the default
    gpu = k["order"]["gpu"]
    assert json.dumps(cands[gpu[0]]["options"], sort_keys=True) == prior.point_key(best)
    assert 1 < len(gpu) <= 6 and len(set(gpu)) == len(gpu) and all(0 <= i < len(cands) for i in gpu)
    for c in cands:
        assert c["file"] in plan["files"]
    # a software adapter runs exactly today's default kernel
    for k2 in wk.values():
        if "order" in k2:
            c0 = k2["candidates"][k2["order"]["cpu"][0]]
            assert (tmp_path / "b" / c0["file"]).read_text() == (tmp_path / "b" / k2["file"]).read_text()
    assert all("candidates" not in k2 for k2 in plan["backends"]["wasm"]["kernels"].values())
    plan0 = compile_model(str(MODELS / "bert-legacy.onnx"), tmp_path / "b0", backends=["webgpu"],
                          web_runtime=False, candidates=0)  # fmt: skip
    assert all("candidates" not in k2 for k2 in plan0["backends"]["webgpu"]["kernels"].values())


@pytest.mark.parametrize("order, want", [
    ({"gpu": [2, 0]}, [2, 0]),
    ({"gpu": [5, -1, True, "1", 1, 1]}, [1]),  # entries naming no candidate are dropped
    ({"gpu": []}, [0, 1, 2]),
    ({"gpu": "0"}, [0, 1, 2]),
    ("bad", [0, 1, 2]),
    (None, [0, 1, 2]),
])  # fmt: skip
def test_candidate_order_is_a_hint(order, want):
    k = {"candidates": [{}, {}, {}], **({"order": order} if order is not None else {})}
    assert candidate_order(k, "gpu") == want
    assert candidate_order(k, None) == [0, 1, 2]
    assert candidate_order({"file": "x"}, "gpu") == []


@pytest.fixture(scope="module")
def cand_bundle(tmp_path_factory):
    from nnjit.compiler import compile_model

    out = tmp_path_factory.mktemp("prior") / "b"
    compile_model(str(MODELS / "bert-legacy.onnx"), out, backends=["webgpu", "wasm"], candidates=3,
                  web_runtime=False)  # fmt: skip
    return out


def test_session_tunes_shipped_candidates(cand_bundle):
    """Session.tune on the local adapter (a software one here: its class's order, every
    candidate when the bundle gives none): choices in range, same outputs as untuned."""
    from nnjit.runtime.session import Session, random_feeds

    s = Session(cand_bundle, "webgpu")
    feeds = random_feeds(s.plan, 4)
    before = s.run(feeds)
    none = s.tune(budget=0)
    assert none["tuned"] == [] and none["out_of_budget"], none
    rep = s.tune(budget=60)
    assert rep["tuned"] and rep["failed"] == [] and rep["elapsed_s"] < 60, rep
    kernels = s.plan["backends"]["webgpu"]["kernels"]
    for name, c in rep["choices"].items():
        assert c in candidate_order(kernels[name], s._impl.device_class)
    for name, times in rep["times"].items():
        assert rep["choices"][name] == min(times, key=times.get)
    after = s.run(feeds)
    for k in before:
        assert np.max(np.abs(after[k] - before[k])) <= 1e-4 * max(1.0, float(np.max(np.abs(before[k]))))


@pytest.mark.parametrize("kw", [{"budget": -1}, {"budget": "1"}, {"budget": True}, {"samples": 0}, {"samples": 1.5}])
def test_session_tune_bad_arguments(cand_bundle, kw):
    from nnjit.runtime.session import Session

    with pytest.raises(NNJitError):
        Session(cand_bundle, "webgpu").tune(**kw)


def test_session_tune_is_for_webgpu(cand_bundle):
    from nnjit.runtime.session import Session

    with pytest.raises(NNJitError, match="WebGPU"):
        Session(cand_bundle, "wasm", threads=1).tune()


def test_a_records_pick_is_every_class_first(tmp_path, matmuls):
    from nnjit.compiler import compile_model

    info = max(matmuls, key=lambda i: i.occurrences)
    pick = {"reg": [2, 4], "workgroup": [8, 8]}
    plan = compile_model(str(MODELS / "bert-legacy.onnx"), tmp_path / "b", backends=["webgpu"],
                         tuning_records={info.signature: pick}, web_runtime=False)  # fmt: skip
    k = plan["backends"]["webgpu"]["kernels"][info.names[0]]
    for cls in ("gpu", "cpu"):
        assert k["candidates"][k["order"][cls][0]]["options"] == pick, (cls, k["order"])
    assert k["manifest"]["schedule"]["reg"] == [2, 4]
