"""nnjit extended from outside the package: examples/nnjit_swish registers a tensor-level op, a
pass that forms it and its kernel lowering; nothing in nnjit is edited."""

from __future__ import annotations

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

    from nnjit.compiler import BACKENDS, kernels_of, run_pipeline
    from nnjit.registry import make_context

    module = Parser(make_context(), MODEL).parse_module()
    target, convert = BACKENDS[backend]
    run_pipeline(module, f"swish-form,convert-nn-tensor-to-nn-loop{{target={target}}},{convert}")
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
