"""The tools as a user meets them: the main job, and one-line errors for bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def nnjit(*args: str, tool: str = "nnjit_main", stdin: str | None = None):
    return subprocess.run(
        [sys.executable, "-m", f"nnjit.tools.{tool}", *args],
        capture_output=True, text=True, input=stdin, timeout=600,
    )  # fmt: skip


def assert_user_error(res, *needles: str):
    assert res.returncode != 0, res.stdout
    err = res.stderr.strip()
    assert "Traceback" not in err, err
    assert err.startswith("error: "), err
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, err


@pytest.mark.parametrize("backend", ["webgpu", "wasm"])
def test_main_job_default_model_checks_against_onnxruntime(backend):
    res = nnjit("run", "--backend", backend, "--check")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "check passed" in res.stdout


def test_compile_writes_a_complete_bundle(tmp_path):
    out = tmp_path / "bundle"
    res = nnjit("compile", "-o", str(out))
    assert res.returncode == 0, res.stderr
    import json

    plan = json.loads((out / "plan.json").read_text())
    assert set(plan["backends"]) == {"webgpu", "wasm"}
    for rel in plan["files"]:
        assert (out / rel).is_file()
    # every kernel a step launches exists as a file
    for backend in plan["backends"].values():
        for step in backend["steps"]:
            assert (out / backend["kernels"][step["kernel"]]["file"]).is_file()


def test_missing_model(tmp_path):
    assert_user_error(nnjit("compile", str(tmp_path / "nope.onnx"), "-o", str(tmp_path / "o")),
                      "nope.onnx")  # fmt: skip


def test_truncated_model_leaves_no_bundle(tmp_path):
    src = (ROOT / "nnjit" / "models" / "default.onnx").read_bytes()
    bad = tmp_path / "truncated.onnx"
    bad.write_bytes(src[: len(src) // 3])
    out = tmp_path / "out"
    assert_user_error(nnjit("compile", str(bad), "-o", str(out)), "truncated.onnx")
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_bad_shape_option(tmp_path):
    assert_user_error(nnjit("compile", "-o", str(tmp_path / "o"), "--shape", "x=1xz"), "--shape")


def test_bundle_with_tampered_file(tmp_path):
    out = tmp_path / "b"
    assert nnjit("compile", "-o", str(out), "--backend", "wasm").returncode == 0
    wasm = next((out / "kernels").glob("*.wasm"))
    wasm.write_bytes(wasm.read_bytes() + b"\0")
    assert_user_error(nnjit("run", str(out), "--backend", "wasm"), "hash", wasm.name)


def test_wrong_input_shape_and_dtype(tmp_path):
    import numpy as np

    from nnjit.compiler import compile_model
    from nnjit.errors import ShapeError
    from nnjit.runtime.session import Session, random_feeds

    out = tmp_path / "b"
    compile_model(ROOT / "nnjit" / "models" / "default.onnx", out, backends=["wasm"])
    sess = Session(out, "wasm", threads=1)
    feeds = random_feeds(sess.plan)
    name = next(iter(feeds))
    with pytest.raises(ShapeError, match=f"input '{name}' has shape"):
        sess.run({**feeds, name: np.zeros((1, 3), feeds[name].dtype)})
    with pytest.raises(ShapeError, match="dtype"):
        sess.run({**feeds, name: feeds[name].astype(np.float32)})
    with pytest.raises(ShapeError, match="unknown input"):
        sess.run({**feeds, "bogus": feeds[name]})


def test_nnjit_opt_invalid_ir_names_location(tmp_path):
    f = tmp_path / "bad.mlir"
    f.write_text(
        "func.func @f(%a: tensor<2x3xf32>, %b: tensor<4x3xf32>) -> tensor<2x3xf32> {\n"
        "  %x = nn_tensor.matmul %a, %b : (tensor<2x3xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>\n"
        "  func.return %x : tensor<2x3xf32>\n}\n"
    )
    assert_user_error(nnjit(str(f), tool="nnjit_opt"), "bad.mlir", "nn_tensor.matmul", "contraction")
    f.write_text("func.func @f() {\n  %x = nn_tensor.add\n}\n")
    assert_user_error(nnjit(str(f), tool="nnjit_opt"), "bad.mlir:3:1", "operand expected")
    assert_user_error(nnjit(str(f), "-p", "no-such-pass", tool="nnjit_opt"), "no-such-pass")
