"""The tuner (nnjit/tuning): spaces, replay lines, runners, the search, broken candidates,
records, plugins from outside the package, applying records and bundle candidates.

Kernels are checked by execution: the tuned pick of every kernel is run again here and
compared with numpy in float64 on fresh random inputs (ragged shapes)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import relative_error

MATMUL = """
func.func @main(%a: tensor<33x27xf32>, %b: tensor<27x40xf32>, %c: tensor<40xf32>) -> tensor<33x40xf32> {
  %r = nn_tensor.fused %a, %b, %c {kind = "matmul"} : (tensor<33x27xf32>, tensor<27x40xf32>, tensor<40xf32>) -> tensor<33x40xf32> {
  ^bb0(%x: tensor<33x27xf32>, %y: tensor<27x40xf32>, %z: tensor<40xf32>):
    %m = nn_tensor.matmul %x, %y : (tensor<33x27xf32>, tensor<27x40xf32>) -> tensor<33x40xf32>
    %s = nn_tensor.add %m, %z : (tensor<33x40xf32>, tensor<40xf32>) -> tensor<33x40xf32>
    nn_tensor.yield %s : tensor<33x40xf32>
  }
  func.return %r : tensor<33x40xf32>
}
"""

SOFTMAX_MATMUL = """
func.func @main(%x: tensor<37x50xf32>, %a: tensor<37x50xf32>, %b: tensor<50x24xf32>) -> tensor<37x24xf32> {
  %s = nn_tensor.softmax %x {axis = 1 : i64} : tensor<37x50xf32> -> tensor<37x50xf32>
  %t = nn_tensor.add %s, %a : (tensor<37x50xf32>, tensor<37x50xf32>) -> tensor<37x50xf32>
  %m = nn_tensor.matmul %t, %b : (tensor<37x50xf32>, tensor<50x24xf32>) -> tensor<37x24xf32>
  func.return %m : tensor<37x24xf32>
}
"""


def _kernels(text: str, backend: str = "wasm"):
    from xdsl.parser import Parser

    from nnjit.compiler import run_pipeline
    from nnjit.registry import make_context
    from nnjit.tuning.kernels import model_kernels

    module = Parser(make_context(), text).parse_module()
    run_pipeline(module, "nn-tensor-fuse")
    return module, model_kernels(module, backend)


def _matmul_ref(a, b, c):
    return a.astype(np.float64) @ b.astype(np.float64) + c


def _run_wasm(info, options, arrays):
    """The kernel lowered under `options`, run in this process on `arrays`."""
    from nnjit.runtime.wasm import WasmRuntime
    from nnjit.tuning.kernels import lower_candidate

    cand = lower_candidate(info, options)
    rt = WasmRuntime(threads=2)
    try:
        return rt.run_kernel(cand.binary, cand.manifest, [*arrays, None])[0]
    finally:
        rt.close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("NNJIT_CACHE_DIR", str(d))
    return d


class Counting:
    """A runner wrapper that counts measurements."""

    def __init__(self, inner):
        self.inner, self.count = inner, 0
        self.name, self.target, self.timing = inner.name, inner.target, inner.timing

    def device(self):
        return self.inner.device()

    def prepare(self, kernel, seed):
        self.inner.prepare(kernel, seed)

    def measure(self, cand, timeout, cutoff=None):
        self.count += 1
        return self.inner.measure(cand, timeout, cutoff)

    def close(self):
        self.inner.close()


# ----------------------------------------------------------------------------------- spaces


def test_wasm_matmul_space_fits_the_device_and_every_point_lowers():
    from nnjit.tuning.kernels import lower_candidate
    from nnjit.tuning.plugins import space_for
    from nnjit.tuning.space import DeviceInfo

    _, (info,) = _kernels(MATMUL)
    dev = DeviceInfo("wasm", {}, {"simd128", "threads", "relaxed-simd"}, threads=2,
                     l1_bytes=32768, l2_bytes=1 << 20, simd_registers=16)  # fmt: skip
    points = space_for(info, dev)
    assert points[0] == {} and 8 <= len(points) <= 48
    assert any(p.get("relaxed-simd") is False for p in points)
    codes = set()
    for p in points:
        if "reg" in p:
            rm, rn = p["reg"]
            assert rm * rn // 4 <= 16  # f32x4 accumulators
        cand = lower_candidate(info, p)  # every point is valid options
        codes.add(cand.code_hash)
    assert len(codes) > len(points) // 2  # the points are different kernels
    no_relaxed = DeviceInfo("wasm", {}, {"simd128", "threads"}, threads=2)
    assert not any("relaxed-simd" in p for p in space_for(info, no_relaxed))


def test_wgsl_spaces_respect_device_limits():
    from nnjit.tuning.kernels import lower_candidate
    from nnjit.tuning.plugins import space_for
    from nnjit.tuning.space import WEBGPU_DEFAULT_LIMITS, DeviceInfo

    _, (info,) = _kernels(MATMUL, "webgpu")
    small = dict(WEBGPU_DEFAULT_LIMITS)
    small["max-compute-invocations-per-workgroup"] = 64
    small["max-compute-workgroup-storage-size"] = 4096
    big = DeviceInfo.generic("wgsl")
    pts_small = space_for(info, DeviceInfo("wgsl", small))
    pts_big = space_for(info, big)
    assert pts_small[0] == {} and pts_big[0] == {}
    assert len(pts_big) <= 48 and any(p.get("shared") == 1 for p in pts_big)
    for p in pts_small:
        m = lower_candidate(info, p).manifest
        assert math.prod(m["workgroup_size"]) <= 64 or p == {}
        assert m.get("workgroup_storage_bytes", 0) <= 4096
        if "reg" in p:
            assert p["reg"][0] * p["reg"][1] <= 64  # f32 accumulators per invocation
    _, infos = _kernels(SOFTMAX_MATMUL, "webgpu")
    rows = next(i for i in infos if i.kind == "softmax")
    for p in space_for(rows, DeviceInfo("wgsl", small)):
        m = lower_candidate(rows, p).manifest
        assert math.prod(m["workgroup_size"]) <= 64 or p == {}


def test_replay_line_rebuilds_the_candidate(tmp_path):
    from nnjit.tuning.kernels import lower_candidate
    from nnjit.tuning.space import replay_line

    _, (info,) = _kernels(MATMUL)
    options = {"reg": [3, 16], "tile": [16, 32], "kstep": 2, "relaxed-simd": False}
    cand = lower_candidate(info, options)
    assert "relaxed-simd" not in cand.manifest["features"]
    kfile = tmp_path / "k.mlir"
    kfile.write_text(info.module_text)
    line = replay_line({"target": "wasm", "options": options, "signature": info.signature}, str(kfile))
    assert line.startswith("nnjit-opt ") and "reg=3,16" in line and "relaxed_simd=false" in line
    exe = shutil.which("nnjit-opt")
    assert exe is not None
    res = subprocess.run(line.replace("nnjit-opt", exe, 1), shell=True, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stderr
    body = cand.source.strip()
    assert body.splitlines()[1] in res.stdout  # the same module text
    assert body in res.stdout


# ------------------------------------------------------------------------------ search


def test_greedy_reaches_a_separable_optimum_with_fewer_measurements():
    from nnjit.tuning.kernels import KernelInfo
    from nnjit.tuning.search import SearchContext, exhaustive, greedy
    from nnjit.tuning.space import product

    info = KernelInfo("s", "matmul", "wasm", [], {"shape": [1], "dtype": "f32"}, "")
    info.default = {"reg": [4, 8], "tile": [32, 64], "kstep": 1}
    points = [{}] + product([("reg", [[2, 8], [4, 12], [3, 16]]),
                             ("tile", [[32, 64], [16, 64], [64, 128]]), ("kstep", [None, 2])])  # fmt: skip
    cost = {(2, 8): 3.0, (4, 8): 2.0, (4, 12): 1.0, (3, 16): 1.5, (16, 64): 0.5, (32, 64): 0.4,
            (64, 128): 0.1, 1: 0.3, 2: 0.2}  # fmt: skip

    def t(p):
        n = {**info.default, **p}
        return cost[tuple(n["reg"])] + cost[tuple(n["tile"])] + cost[n["kstep"]]

    seen: list[int] = []

    def measure(i):
        seen.append(i)
        return t(points[i])

    ctx = SearchContext(info, points, measure, lambda: 1.0)
    ctx.measure(0)
    greedy(ctx)
    best_i, best_t = ctx.best()
    assert best_t == min(t(p) for p in points)
    assert len(seen) < len(points)
    seen.clear()
    ctx = SearchContext(info, points, measure, lambda: 1.0)
    exhaustive(ctx)
    assert len(seen) == len(points)
    # an exhausted budget stops the search at once
    seen.clear()
    exhaustive(SearchContext(info, points, measure, lambda: 0.0))
    assert seen == []


def test_greedy_moves_between_shared_and_unshared_wgsl_points():
    from nnjit.tuning.kernels import KernelInfo
    from nnjit.tuning.search import SearchContext, greedy

    info = KernelInfo("s", "matmul", "wgsl", [], {"shape": [1], "dtype": "f32"}, "")
    info.default = {"reg": [4, 8], "workgroup": [8, 8], "tile": [32, 64], "shared": 0, "kstep": 4}
    points = [{}, {"reg": [4, 4], "workgroup": [8, 8]}, {"reg": [4, 8], "workgroup": [16, 8]},
              {"reg": [4, 8], "workgroup": [8, 8], "tile": [32, 64, 16], "shared": 1},
              {"reg": [4, 4], "workgroup": [8, 8], "tile": [32, 32, 16], "shared": 1},
              {"kstep": 8}]  # fmt: skip
    cost = [5.0, 4.0, 4.5, 3.0, 1.0, 4.8]
    seen: list[int] = []

    def measure(i):
        seen.append(i)
        return cost[i]

    ctx = SearchContext(info, points, measure, lambda: 1.0)
    ctx.measure(0)
    greedy(ctx)
    assert ctx.best() == (4, 1.0)  # reached through reg + tile around a shared point


# --------------------------------------------------------------------------- the tuner


def test_tuner_picks_correct_kernels_and_records_them(cache):
    from nnjit.tuning.records import RecordStore
    from nnjit.tuning.runners import TimingPolicy, WasmtimeRunner
    from nnjit.tuning.tuner import Tuner

    _, infos = _kernels(SOFTMAX_MATMUL)
    runner = Counting(WasmtimeRunner(threads=2, timing=TimingPolicy(2, 5, 0.0)))
    try:
        store = RecordStore(runner.device().fingerprint)
        tuner = Tuner(runner, budget=12, search="greedy", store=store, progress=False)
        results = tuner.tune(infos)
        assert {r.status for r in results} <= {"tuned", "partial"}
        assert runner.count > len(infos)
        for r in results:
            assert r.default_time and r.best_time and not r.dropped
        saved = json.loads(store.path.read_text())
        assert set(saved["records"]) == {i.signature for i in infos}
        assert saved["device"]["runner"] == "wasmtime" and saved["device"]["threads"] == 2
        # a second run measures nothing
        before = runner.count
        again = Tuner(runner, budget=12, store=RecordStore(runner.device().fingerprint),
                      progress=False).tune(infos)  # fmt: skip
        assert runner.count == before and {r.status for r in again} == {"cached"}
    finally:
        runner.close()
    # the picks compute the right numbers (fresh inputs, numpy in float64)
    rng = np.random.default_rng(7)
    for r in results:
        info = r.info
        arrays = [rng.standard_normal(s["shape"]).astype(np.float32) for s in info.inputs]
        got = _run_wasm(info, r.best_options, arrays)
        if info.kind == "softmax":
            x = arrays[0].astype(np.float64)
            e = np.exp(x - x.max(axis=1, keepdims=True))
            ref = e / e.sum(axis=1, keepdims=True) + arrays[1]
        else:
            ref = arrays[0].astype(np.float64) @ arrays[1].astype(np.float64)
        assert relative_error(got, ref) < 1e-5, (info.describe(), r.best_options)


_HANG = '(module (import "env" "memory" (memory 1 65536 shared)) (func (export "run") {params} (loop $l (br $l))))'
_INVALID = '(module (import "env" "memory" (memory 1 65536 shared)) (func (export "run") {params} (result i32) f32.const 1))'


def _broken_space(info, device):
    params = "(param" + " i32" * (2 + len(info.inputs) + 1) + ")"
    return [
        {},
        {"reg": [4, 12], "@transform": lambda src, man: (_INVALID.format(params=params), man)},
        {"reg": [4, 8], "@transform": lambda src, man: (_HANG.format(params=params), man)},
        {"reg": [2, 8]},  # a good point after the hang: tuning goes on
        {"reg": [4, 4], "@transform": lambda src, man: (src.replace("f32x4.add", "f32x4.sub"), man)},
        {"reg": [1, 4]},
    ]


def test_broken_candidates_are_dropped_and_tuning_goes_on(cache):
    from nnjit.tuning.kernels import lower_candidate
    from nnjit.tuning.plugins import register_space, unregister
    from nnjit.tuning.runners import TimingPolicy, WasmtimeRunner
    from nnjit.tuning.tuner import Tuner

    _, (info,) = _kernels(MATMUL)
    assert "f32x4.add" in lower_candidate(info, {"reg": [4, 4]}).source
    register_space("matmul", "wasm", _broken_space)
    runner = WasmtimeRunner(threads=2, timing=TimingPolicy(2, 5, 0.0))
    try:
        tuner = Tuner(runner, budget=30, search="exhaustive", store=None, progress=False,
                      candidate_timeout=1.5, min_gain=-1.0)  # fmt: skip
        (r,) = tuner.tune([info])
    finally:
        unregister("spaces", ("matmul", "wasm"))
        runner.close()
    reasons = {t.reason for t in r.dropped}
    assert reasons == {"rejected", "timeout", "wrong"}, [(t.reason, t.message) for t in r.dropped]
    assert runner.restarts >= 1  # the hung worker was killed and replaced
    ok = [t for t in r.trials if t.reason is None]
    assert {tuple(t.options.get("reg", ())) for t in ok} >= {(2, 8), (1, 4)}
    assert not any(k.startswith("@") for k in r.best_options)  # hooks are never picked
    assert r.status == "tuned" and r.complete


def test_node_runner_agrees_with_numpy(cache):
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    from nnjit.tuning.runners import NodeRunner, TimingPolicy
    from nnjit.tuning.tuner import Tuner
    from nnjit.tuning.worker import make_inputs

    _, (info,) = _kernels(MATMUL)
    runner = NodeRunner(threads=2, timing=TimingPolicy(2, 5, 0.0))
    try:
        dev = runner.device()
        assert dev.fingerprint["runner"] == "node" and dev.fingerprint["node"].startswith("v")
        assert "relaxed-simd" in dev.features
        (r,) = Tuner(runner, budget=6, search="greedy", progress=False).tune([info])
        assert r.default_time and not r.dropped
        # the runner's own output for the pick, against numpy on the runner's inputs
        from nnjit.tuning.kernels import lower_candidate

        runner.prepare(info, 99)
        m = runner.measure(lower_candidate(info, r.best_options), timeout=60)
        a, b, c = make_inputs(info.inputs, 99)
        assert relative_error(m.output, _matmul_ref(a, b, c)) < 1e-5
    finally:
        runner.close()


def test_webgpu_runner_tunes_on_lavapipe(cache):
    pytest.importorskip("wgpu")
    from nnjit.tuning.kernels import lower_candidate
    from nnjit.tuning.runners import TimingPolicy, WebGPURunner
    from nnjit.tuning.tuner import Tuner
    from nnjit.tuning.worker import make_inputs

    _, (info,) = _kernels(MATMUL, "webgpu")
    runner = WebGPURunner(timing=TimingPolicy(2, 4, 0.0))
    try:
        dev = runner.device()
        assert dev.target == "wgsl" and dev.limit("max-compute-invocations-per-workgroup") >= 64
        assert dev.fingerprint["runner"] == "wgpu"
        (r,) = Tuner(runner, budget=5, search="greedy", progress=False).tune([info])
        assert r.default_time and r.best_time and not [t for t in r.dropped if t.reason != "invalid"]
        runner.prepare(info, 5)
        m = runner.measure(lower_candidate(info, r.best_options), timeout=120)
        a, b, c = make_inputs(info.inputs, 5)
        assert relative_error(m.output, _matmul_ref(a, b, c)) < 1e-5
    finally:
        runner.close()


# ---------------------------------------------------------------------------- plugins

PLUGIN = '''
from nnjit.tuning import register_space

CALLS = []

def tiny_space(info, device):
    CALLS.append(info.kind)
    return [{}, {"reg": [2, 8]}]

def first_two(ctx):
    for i in range(min(2, len(ctx.points))):
        ctx.measure(i)

def make_runner(**options):
    from nnjit.tuning.runners import WasmtimeRunner, TimingPolicy
    r = WasmtimeRunner(threads=1, timing=TimingPolicy(2, 3, 0.0))
    r.name = "plugin-runner"
    return r

def python_space(info, device):
    return [{}, {"rows": 2}]

register_space("softmax", "wasm", python_space)
'''


def test_plugins_from_outside_the_package(tmp_path, monkeypatch, cache):
    from nnjit.tuning import plugins
    from nnjit.tuning.plugins import space_for
    from nnjit.tuning.space import DeviceInfo
    from nnjit.tuning.tuner import Tuner

    (tmp_path / "my_tuning_plugin.py").write_text(PLUGIN)
    dist = tmp_path / "my_tuning_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-tuning-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent("""
        [nnjit.spaces]
        matmul:wasm = my_tuning_plugin:tiny_space
        [nnjit.search]
        first-two = my_tuning_plugin:first_two
        [nnjit.runners]
        plugin-runner = my_tuning_plugin:make_runner
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.reload_entry_points()
    try:
        assert "first-two" in plugins.search_names() and "plugin-runner" in plugins.runner_names()
        _, infos = _kernels(SOFTMAX_MATMUL)
        mm = next(i for i in infos if i.kind == "matmul")
        sm = next(i for i in infos if i.kind == "softmax")
        dev = DeviceInfo("wasm", {}, {"simd128"}, threads=1)
        assert space_for(mm, dev) == [{}, {"reg": [2, 8]}]  # entry point
        import my_tuning_plugin  # noqa: F401  (its import registers a space through the API)

        assert space_for(sm, dev) == [{}, {"rows": 2}]
        runner = plugins.get_runner("plugin-runner")
        try:
            results = Tuner(runner, budget=10, search="first-two", progress=False).tune(infos)
        finally:
            runner.close()
        by_kind = {r.info.kind: r for r in results}
        assert len([t for t in by_kind["matmul"].trials if t.reason is None]) == 2
        assert runner.name == "plugin-runner"
    finally:
        plugins.unregister("spaces", ("matmul", "wasm"))
        plugins.unregister("spaces", ("softmax", "wasm"))
        plugins.unregister("search", "first-two")
        plugins.unregister("runners", "plugin-runner")
        sys.modules.pop("my_tuning_plugin", None)
        plugins.reload_entry_points()


# ---------------------------------------------------------------------- compiling with them


def test_compile_applies_records_and_ships_candidates(tmp_path, cache):
    from nnjit.compiler import compile_model
    from nnjit.runtime.wasm import WasmRuntime
    from nnjit.tuning.kernels import model_kernels
    from nnjit.tuning.tuner import load_fused_model

    model = Path(__file__).resolve().parent.parent / "nnjit" / "models" / "default.onnx"
    module, _ = load_fused_model(str(model))
    infos = model_kernels(module, "wasm")
    mm = max((i for i in infos if i.kind == "matmul"), key=lambda i: i.occurrences)
    pick = {"reg": [2, 8], "tile": [16, 32], "kstep": 2, "relaxed-simd": False}
    plan = compile_model(str(model), tmp_path / "b", backends=["wasm", "webgpu"],
                         tuning_records={mm.signature: pick}, candidates=3, web_runtime=False)  # fmt: skip
    kernels = plan["backends"]["wasm"]["kernels"]
    for name in mm.names:
        m = kernels[name]["manifest"]
        assert m["schedule"]["reg"] == [2, 8] and m["schedule"]["kstep"] == 2
        assert "relaxed-simd" not in m["features"]
    other = next(n for n in kernels if n.endswith("_matmul") and n not in mm.names)
    assert "relaxed-simd" in kernels[other]["manifest"]["features"]
    # candidates: default first, files listed and hashed, same buffers, same numbers
    rt = WasmRuntime(threads=2)
    try:
        rng = np.random.default_rng(3)
        for backend in ("wasm", "webgpu"):
            for name, k in plan["backends"][backend]["kernels"].items():
                if name.endswith("_copy"):
                    continue
                cands = k["candidates"]
                assert cands and cands[0]["options"] == {} and len(cands) <= 3
                for c in cands:
                    assert c["file"] in plan["files"] and (tmp_path / "b" / c["file"]).is_file()
            for name in mm.names[:1]:
                cands = plan["backends"]["wasm"]["kernels"][name]["candidates"]
                assert len(cands) >= 2 and any(c["options"] == pick for c in cands)
                params = cands[0]["manifest"]["params"]
                arrays = [rng.standard_normal(p["shape"]).astype(np.float32) if p["access"] == "read"
                          else None for p in params]  # fmt: skip
                outs = [rt.run_kernel((tmp_path / "b" / c["file"]).read_bytes(), c["manifest"], arrays)[0]
                        for c in cands]  # fmt: skip
                for o in outs[1:]:
                    assert relative_error(o, outs[0]) < 1e-5
    finally:
        rt.close()


def test_nnjit_tune_and_bench_cli(tmp_path, cache):
    env = dict(os.environ, NNJIT_CACHE_DIR=str(cache))
    exe = [sys.executable, "-m", "nnjit.tools.nnjit_main"]
    res = subprocess.run([*exe, "tune", "--budget", "4", "--threads", "2", "--plot", str(tmp_path / "plots"),
                          "-q", "--json", str(tmp_path / "r.json")],
                         capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "speedup" in res.stdout and "records:" in res.stdout and "16 distinct kernels" in res.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["backend"] == "wasm" and len(report["kernels"]) == 16
    if shutil.which("nnjit-opt") and any(k.get("options") for k in report["kernels"]):
        assert "nnjit-opt " in res.stdout
    assert (tmp_path / "plots" / "progress.png").stat().st_size > 1000  # matplotlib: test extra
    assert (tmp_path / "plots" / "candidates.png").stat().st_size > 1000
    again = subprocess.run([*exe, "tune", "--budget", "4", "--threads", "2", "-q"],
                           capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "0 tuned now, 16 from records" in again.stdout
    kfile = tmp_path / "k.mlir"
    _, (info,) = _kernels(MATMUL)
    kfile.write_text(info.module_text)
    bench = subprocess.run([*exe, "bench", "--kernel", str(kfile), "--options", "reg=2,8 tile=16,32",
                            "--threads", "2"], capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert bench.returncode == 0, bench.stderr
    assert "GFLOP/s" in bench.stdout and "reg=2,8 tile=16,32" in bench.stdout


def test_tune_plot_without_matplotlib_fails_before_tuning(tmp_path, cache):
    """`--plot` with matplotlib missing is refused in one line before any tuning (not after the
    budget is spent); matplotlib is hidden from the child process."""
    code = textwrap.dedent("""
        import sys
        sys.modules["matplotlib"] = None  # import matplotlib -> ImportError
        from nnjit.tools.nnjit_main import main
        sys.exit(main(sys.argv[1:]))
    """)
    env = dict(os.environ, NNJIT_CACHE_DIR=str(cache))
    res = subprocess.run([sys.executable, "-c", code, "tune", "--budget", "20", "--plot",
                          str(tmp_path / "plots")], capture_output=True, text=True, env=env,
                         timeout=120)  # fmt: skip
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    assert "matplotlib" in res.stderr and len(res.stderr.strip().splitlines()) <= 2, res.stderr
    assert "distinct kernels" not in res.stdout  # nothing was tuned
    assert not (tmp_path / "plots").exists()
