"""nnjit extended from outside the package: examples/nnjit_swish registers a tensor-level op, a
pass that forms it and its kernel lowering; nothing in nnjit is edited."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import relative_error

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

MODEL = """
func.func @main(%x: tensor<5x7xf32>) -> tensor<5x7xf32> {
  %s = nn_tensor.sigmoid %x : tensor<5x7xf32> -> tensor<5x7xf32>
  %y = nn_tensor.mul %x, %s : (tensor<5x7xf32>, tensor<5x7xf32>) -> tensor<5x7xf32>
  func.return %y : tensor<5x7xf32>
}
"""


def _opt(*args: str, stdin: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=f"{EXAMPLES}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    return subprocess.run([sys.executable, "-m", "nnjit.tools.nnjit_opt", *args], input=stdin,
                          capture_output=True, text=True, env=env, timeout=120)  # fmt: skip


def test_plugin_pass_runs_from_nnjit_opt():
    res = _opt("--plugin", "nnjit_swish", "-p", "swish-form", stdin=MODEL)
    assert res.returncode == 0, res.stderr
    assert "nnjit_swish.swish %x" in res.stdout
    assert "nn_tensor.sigmoid" not in res.stdout
    # without the plugin, the op and the pass are unknown: a clear error, no traceback
    res = _opt("-p", "swish-form", stdin=MODEL)
    assert res.returncode == 1 and "swish-form" in res.stderr and "Traceback" not in res.stderr


def test_plugin_lowering_through_nnjit_opt_to_wgsl():
    res = _opt("--plugin", "nnjit_swish", "-p",
               "swish-form,convert-nn-tensor-to-nn-loop{target=wgsl},convert-nn-loop-to-wgsl",
               "-t", "nnjit-wgsl", stdin=MODEL)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "@compute" in res.stdout and "exp(" in res.stdout


@pytest.mark.parametrize("backend", ["webgpu", "wasm"])
def test_plugin_kernel_executes(backend, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import nnjit_swish  # noqa: F401  (registers the plugin)
    from xdsl.parser import Parser

    from nnjit.pipeline import kernels_of, run_pipeline
    from nnjit.registry import make_context
    from nnjit.targets import TARGETS

    module = Parser(make_context(), MODEL).parse_module()
    run_pipeline(module, f"swish-form,{TARGETS[backend].lowering_pipeline()}")
    (name, source, manifest), = kernels_of(module, backend)  # fmt: skip
    assert manifest["kind"] == "swish"
    x = np.random.default_rng().standard_normal((5, 7)).astype(np.float32)
    out = np.full_like(x, np.nan)
    if backend == "webgpu":
        from nnjit.runtime.webgpu import WebGPURuntime

        got = WebGPURuntime().run_kernel(source, manifest, [x, out])[-1]
    else:
        from nnjit.runtime.wasm import WasmRuntime

        got = WasmRuntime(threads=2).run_kernel(source, manifest, [x, out])[-1]
    x64 = x.astype(np.float64)
    assert relative_error(got, x64 / (1 + np.exp(-x64))) <= 1e-5


def _swish_model(rng: np.random.Generator, alpha: float = 1.0) -> tuple[bytes, np.ndarray]:
    """y = Swish(x @ W): the ONNX op Swish (opset 24), which only the plugin converts."""
    from onnx import TensorProto, helper, numpy_helper

    w = rng.standard_normal((7, 6)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]),
         helper.make_node("Swish", ["h"], ["y"], alpha=alpha)],
        "swish", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 7])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [5, 6])],
        [numpy_helper.from_array(w, "w")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 24)])
    return model.SerializeToString(), w


def _nnjit(*args: str, cwd: Path, plugins: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=f"{EXAMPLES}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               NNJIT_PLUGINS=plugins)  # fmt: skip
    return subprocess.run([sys.executable, "-m", "nnjit.tools.nnjit_main", *args], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=300)  # fmt: skip


def test_plugin_onnx_op_reaches_a_bundle_on_both_backends(tmp_path):
    """`nnjit compile --plugin nnjit_swish` converts the ONNX op through the plugin's
    register_onnx_op converter; the bundle runs on WebGPU and Wasm and matches numpy."""
    from nnjit.runtime.session import Session

    rng = np.random.default_rng()
    data, w = _swish_model(rng)
    (tmp_path / "swish.onnx").write_bytes(data)
    res = _nnjit("compile", "swish.onnx", "-o", "bundle", "--plugin", "nnjit_swish", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    plan = json.loads((tmp_path / "bundle" / "plan.json").read_text())
    for backend in ("webgpu", "wasm"):
        kernels = plan["backends"][backend]["kernels"].values()
        assert "swish" in {k["manifest"]["kind"] for k in kernels}
    x = rng.standard_normal((5, 7)).astype(np.float32)
    h = x.astype(np.float64) @ w.astype(np.float64)
    for backend in ("webgpu", "wasm"):
        got = Session(tmp_path / "bundle", backend=backend).run({"x": x})["y"]
        assert relative_error(got, h / (1 + np.exp(-h))) <= 1e-5, backend


def test_plugin_from_environment_and_errors(tmp_path):
    rng = np.random.default_rng()
    data, _ = _swish_model(rng)
    (tmp_path / "swish.onnx").write_bytes(data)
    # NNJIT_PLUGINS loads it as --plugin does (nnjit import: the op in the IR text)
    res = _nnjit("import", "swish.onnx", cwd=tmp_path, plugins="nnjit_swish")
    assert res.returncode == 0, res.stderr
    assert "nnjit_swish.swish" in res.stdout
    # without the plugin: the op is unsupported, one line
    res = _nnjit("compile", "swish.onnx", "-o", "b", cwd=tmp_path)
    assert res.returncode == 1 and "Swish" in res.stderr and "Traceback" not in res.stderr
    # a plugin that cannot be imported: one line naming the module
    res = _nnjit("compile", "swish.onnx", "-o", "b", "--plugin", "no_such_plugin", cwd=tmp_path)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.count("\n") == 1 and "'no_such_plugin'" in res.stderr
    res = _nnjit("run", "swish.onnx", cwd=tmp_path, plugins="nnjit_swish,broken_mod")
    assert res.returncode == 1 and "'broken_mod'" in res.stderr and "Traceback" not in res.stderr
    # a form of the op the plugin does not handle: its own one-line error, with the node
    data, _ = _swish_model(rng, alpha=2.0)
    (tmp_path / "swish2.onnx").write_bytes(data)
    res = _nnjit("compile", "swish2.onnx", "-o", "b", "--plugin", "nnjit_swish", cwd=tmp_path)
    assert res.returncode == 1 and "alpha=2" in res.stderr and "op Swish" in res.stderr
    assert not (tmp_path / "b").exists()


def test_converter_for_a_custom_domain(monkeypatch):
    """register_onnx_op(..., domain=...) takes ops of a custom domain, which the frontend
    otherwise refuses in one line."""
    from onnx import TensorProto, helper

    from nnjit import registry
    from nnjit.errors import UnsupportedError
    from nnjit.frontend import import_onnx

    monkeypatch.syspath_prepend(str(EXAMPLES))
    from nnjit_swish.frontend import convert_swish

    graph = helper.make_graph(
        [helper.make_node("MySwish", ["x"], ["y"], domain="com.example")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.example", 1)])  # fmt: skip
    with pytest.raises(UnsupportedError, match="com.example.MySwish"):
        import_onnx(model)
    monkeypatch.setattr(registry, "_ONNX_OPS", dict(registry._ONNX_OPS))  # undone after the test
    registry.register_onnx_op("MySwish", convert_swish, domain="com.example")
    imported = import_onnx(model)
    assert [op.name for op in imported.module.walk()].count("nnjit_swish.swish") == 1
