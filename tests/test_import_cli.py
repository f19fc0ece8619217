"""`nnjit import` (ONNX -> nn_tensor IR text for nnjit-opt) and --shape on named dynamic dims."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import relative_error

ROOT = Path(__file__).resolve().parent.parent
DYNAMIC = ROOT / "tests" / "models" / "bert_dynamic-legacy.onnx"  # input_ids, attention_mask: [1, 'sequence']


def _tool(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"nnjit.tools.{module}", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_shape_on_one_input_binds_the_shared_dim_name():
    """--shape input_ids=1xS binds 'sequence', so attention_mask follows; the result runs."""
    from nnjit.frontend import import_onnx

    imported = import_onnx(DYNAMIC, shapes={"input_ids": (1, 12)})
    assert [t.shape for t in imported.inputs] == [(1, 12), (1, 12)]
    with pytest.raises(Exception, match="'sequence' is bound to both 12 and 9"):
        import_onnx(DYNAMIC, shapes={"input_ids": (1, 12), "attention_mask": (1, 9)})


def test_compile_with_shape_matches_onnxruntime(tmp_path):
    import onnxruntime as ort

    from nnjit.compiler import compile_model
    from nnjit.runtime.session import Session

    compile_model(DYNAMIC, tmp_path / "b", backends=["wasm"], shapes={"input_ids": (1, 20)},
                  web_runtime=False)  # fmt: skip
    rng = np.random.default_rng()
    feeds = {"input_ids": rng.integers(0, 100, (1, 20)).astype(np.int64),
             "attention_mask": np.ones((1, 20), np.int64)}  # fmt: skip
    feeds["attention_mask"][0, 15:] = 0
    got = Session(tmp_path / "b", backend="wasm", threads=2).run(feeds)
    ref = ort.InferenceSession(str(DYNAMIC), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    assert relative_error(got["last_hidden_state"], ref) <= 1e-4


def test_import_writes_ir_that_nnjit_opt_and_translate_take(tmp_path):
    res = _tool("nnjit_main", "import", str(DYNAMIC), "-o", "model.mlir", "--shape",
                "input_ids=1x8", cwd=tmp_path)  # fmt: skip
    assert res.returncode == 0, res.stderr
    text = (tmp_path / "model.mlir").read_text()
    assert "tensor<1x8xi64>" in text and 'nn_tensor.weight "' in text
    assert len(text) < 200_000  # weights stay out of the text
    res = _tool("nnjit_opt", "model.mlir", "-p",
                "nn-tensor-fold,nn-tensor-fuse,convert-nn-tensor-to-nn-loop{target=wgsl}",
                "-o", "kernels.mlir", cwd=tmp_path)  # fmt: skip
    assert res.returncode == 0, res.stderr
    res = _tool("nnjit_translate", "kernels.mlir", "-t", "nnjit-wgsl", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("@compute") > 10
    # a dynamic model without --shape: one line that says how to bind it
    res = _tool("nnjit_main", "import", str(DYNAMIC), cwd=tmp_path)
    assert res.returncode == 1 and "--shape input_ids=" in res.stderr and "Traceback" not in res.stderr
    # BERT-base's length binds (512 positions); a longer one names the Expand and the table
    res = _tool("nnjit_main", "import", str(DYNAMIC), "-o", "d.mlir", "--shape", "input_ids=1x128",
                cwd=tmp_path)  # fmt: skip
    assert res.returncode == 0, res.stderr
    res = _tool("nnjit_main", "import", str(DYNAMIC), "--shape", "input_ids=1x600", cwd=tmp_path)
    err = res.stderr.strip()
    assert res.returncode == 1 and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert "Expand" in err and "[1, 512] does not broadcast to [1, 600]" in err and "position" in err
