"""`nnjit run` names the adapter (or engine) that ran the model and warns on CPU adapters,
whose times say nothing about GPU speed; the Python Session tells the same."""

from __future__ import annotations

import pytest

from nnjit.runtime.webgpu import describe_adapter


@pytest.mark.parametrize("info,cpu", [
    ({"name": "llvmpipe (LLVM 15.0.6, 256 bits)", "vendor": "llvmpipe", "backend": "Vulkan",
      "device_type": "CPU"}, True),
    ({"name": "SwiftShader Device (Subzero)", "vendor": "Google", "backend": "Vulkan"}, True),
    ({"name": "lavapipe", "backend": "Vulkan", "device_type": ""}, True),
    ({"name": "NVIDIA H100 80GB HBM3", "vendor": "NVIDIA", "backend": "Vulkan",
      "device_type": "DiscreteGPU", "architecture": "hopper"}, False),
])  # fmt: skip
def test_describe_adapter(info, cpu):
    text, is_cpu = describe_adapter(info)
    assert is_cpu is cpu
    assert text.startswith(info["name"]) and f"backend {info['backend']}" in text


def test_nnjit_run_names_the_adapter_and_warns_on_cpu(capsys):
    from nnjit.runtime.webgpu import default_runtime
    from nnjit.tools.nnjit_main import main

    text, cpu = describe_adapter(default_runtime().info)  # here (and in CI): lavapipe, a CPU
    assert main(["run", "--backend", "webgpu"]) == 0
    cap = capsys.readouterr()
    assert f"adapter: {text}\n" in cap.out and "backend " in text
    assert ("CPU (software) adapter" in cap.err and "GPU speed" in cap.err) is cpu
    assert main(["run", "--backend", "wasm", "--threads", "2"]) == 0
    cap = capsys.readouterr()
    assert "engine: wasmtime, 2 thread(s)" in cap.out and "warning" not in cap.err


def test_nnjit_tune_warns_on_a_cpu_adapter(tmp_path, capsys):
    from nnjit.runtime.webgpu import default_runtime
    from nnjit.tools.nnjit_main import main

    _, cpu = describe_adapter(default_runtime().info)
    args = ["tune", "--backend", "webgpu", "--budget", "2", "--cache-dir", str(tmp_path), "-q"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert ("CPU (software) adapter: its times say nothing about GPU speed" in err) is cpu
