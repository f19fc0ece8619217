"""Variable-length bundles: one compile of a model with dynamic dims serves every length up to a
maximum (and batch sizes up to one), in Python on both backends, against onnxruntime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from nnjit.compiler import compile_model
from nnjit.errors import NNJitError, ShapeError
from nnjit.runtime.session import Session
from tests.conftest import relative_error

ROOT = Path(__file__).resolve().parent.parent
SEQ = ROOT / "tests" / "models" / "bert_dynamic-legacy.onnx"  # [1, sequence], 512 positions
BATCH = ROOT / "tests" / "models" / "bert_dynamic_batch-legacy.onnx"  # [batch, sequence]
LENGTHS = (1, 7, 16, 33, 128, 300, 512)


def _reference(model: Path, feeds: dict) -> dict:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


def _feeds(batch: int, length: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, length), np.int64)
    if batch > 1:  # rows of their own lengths, as a padded batch has
        for r in range(1, batch):
            mask[r, rng.integers(1, length + 1):] = 0
    return {"input_ids": rng.integers(0, 120, (batch, length)).astype(np.int64), "attention_mask": mask}


@pytest.fixture(scope="module")
def seq_bundle(tmp_path_factory):
    """The default variable-length compile: every length up to 512 from 12 buckets."""
    out = tmp_path_factory.mktemp("seq") / "b"
    compile_model(SEQ, out, candidates=0)
    return out


@pytest.mark.parametrize("backend", ["wasm", "webgpu"])
def test_every_length_matches_onnxruntime(seq_bundle, backend):
    sess = Session(seq_bundle, backend, threads=2)
    assert sess.dynamic
    for i, n in enumerate(LENGTHS):
        feeds = _feeds(1, n, seed=100 + i)
        out = sess.run(feeds)["last_hidden_state"]
        ref = _reference(SEQ, feeds)["last_hidden_state"]
        assert out.shape == ref.shape == (1, n, 32)
        assert relative_error(out, ref) < 1e-5, (backend, n)


def test_plan_has_buckets_sharing_one_weights_file(seq_bundle, tmp_path):
    plan = json.loads((seq_bundle / "plan.json").read_text())
    dims = plan["dynamic"]["dims"]
    assert list(dims) == ["sequence"] and dims["sequence"]["pad"]
    assert dims["sequence"]["sizes"] == [1, 8, 16, 32, 48, 64, 96, 128, 192, 256, 384, 512]
    assert [v["bind"]["sequence"] for v in plan["dynamic"]["variants"]] == dims["sequence"]["sizes"]
    assert plan["dynamic"]["outputs"] == {"last_hidden_state": [[1, "sequence"]]}
    # the top level is the largest variant (tools that know no variants run it)
    assert plan["model"]["inputs"][0]["shape"] == [1, 512]
    # one weights file: the model's weights once, plus the few constants folded per length
    fixed = compile_model(SEQ, tmp_path / "fixed", shapes={"input_ids": (1, 512)}, candidates=0)
    var_bytes = (seq_bundle / "weights.bin").stat().st_size
    fixed_bytes = (tmp_path / "fixed" / "weights.bin").stat().st_size
    assert var_bytes < 4 * fixed_bytes
    assert len(plan["weights"]["entries"]) < 2 * len(fixed["weights"]["entries"]) + 4 * 12
    files = [f for f in plan["files"] if f.startswith("variants/v3/kernels/")]
    assert files and all(k["file"].startswith("variants/v11/") for k in plan["backends"]["wasm"]["kernels"].values())


def test_batch_and_length(tmp_path):
    out = tmp_path / "b"
    plan = compile_model(BATCH, out, backends=["wasm", "webgpu"], lengths=[8, 32], max_length=64, max_batch=4,
                         candidates=0)  # fmt: skip
    assert plan["dynamic"]["dims"]["batch"]["sizes"] == [1, 2, 4]
    assert len(plan["dynamic"]["variants"]) == 9
    for backend in ("wasm", "webgpu"):
        sess = Session(out, backend, threads=2)
        for batch, n in ((1, 5), (3, 33), (3, 8), (4, 64), (2, 1)):
            feeds = _feeds(batch, n, seed=batch * 1000 + n)
            got = sess.run(feeds)["last_hidden_state"]
            ref = _reference(BATCH, feeds)["last_hidden_state"]
            assert got.shape == ref.shape == (batch, n, 32)
            assert relative_error(got, ref) < 1e-5, (backend, batch, n)


def test_sizes_out_of_range_are_refused(seq_bundle):
    sess = Session(seq_bundle, "wasm", threads=1)
    with pytest.raises(ShapeError, match=r"dim 'sequence' is 513, over the largest .* \(512\)"):
        sess.run(_feeds(1, 513, 0))
    bad = _feeds(1, 9, 0)
    bad["attention_mask"] = bad["attention_mask"][:, :8]
    with pytest.raises(ShapeError, match="inputs disagree on dim 'sequence': 9 and 8"):
        sess.run(bad)
    with pytest.raises(ShapeError, match="size 0"):
        sess.run({"input_ids": np.zeros((1, 0), np.int64), "attention_mask": np.zeros((1, 0), np.int64)})
    with pytest.raises(ShapeError, match="has shape"):  # a fixed dim is still fixed
        sess.run({"input_ids": np.zeros((2, 4), np.int64), "attention_mask": np.ones((2, 4), np.int64)})


def _unmasked_model() -> bytes:
    """x [1, n, 4] -> softmax over n: every position depends on every other, and there is no
    mask, so padding would change the result."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "n", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "n", 4])
    g = helper.make_graph([helper.make_node("Softmax", ["x"], ["y"], axis=1)], "g", [x], [y])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_a_dim_without_a_mask_runs_its_sizes_exactly(tmp_path):
    model = _unmasked_model()
    plan = compile_model(model, tmp_path / "b", backends=["wasm"], lengths=[4, 8])
    assert plan["dynamic"]["dims"]["n"]["pad"] is False
    sess = Session(tmp_path / "b", "wasm", threads=1)
    for n in (4, 8):
        x = np.random.default_rng(n).standard_normal((1, n, 4)).astype(np.float32)
        e = np.exp(x - x.max(axis=1, keepdims=True))
        assert relative_error(sess.run({"x": x})["y"], e / e.sum(axis=1, keepdims=True)) < 1e-5
    with pytest.raises(ShapeError, match=r"dim 'n' is 5; the bundle runs it at \[4, 8\] only"):
        sess.run({"x": np.zeros((1, 5, 4), np.float32)})


def test_compile_options_are_checked(tmp_path):
    for kw, msg in (({"max_length": 0}, "max_length=0"), ({"max_batch": True}, "max_batch=True"),
                    ({"lengths": []}, "lengths=\\[\\]"), ({"lengths": [4, 0]}, "lengths="),
                    ({"lengths": [64], "max_length": 32}, "below the largest")):  # fmt: skip
        with pytest.raises(NNJitError, match=msg):
            compile_model(SEQ, tmp_path / "x", **kw)
        assert not (tmp_path / "x").exists()
    with pytest.raises(NNJitError, match="over 64"):
        compile_model(BATCH, tmp_path / "x", max_batch=4096, lengths=list(range(1, 40)))
    # a length past the model's position table: the failing size is named
    with pytest.raises(NNJitError, match="sequence=600"):
        compile_model(SEQ, tmp_path / "x", lengths=[8], max_length=600, backends=["wasm"])
    assert not (tmp_path / "x").exists()


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "nnjit.tools.nnjit_main", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip


def test_cli_compile_and_run_at_a_length(tmp_path):
    res = _cli("compile", str(SEQ), "-o", "b", "--backend", "wasm", "--lengths", "8,16", "--max-length", "32",
               "--candidates", "0", cwd=tmp_path)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "3 shape variants: sequence [8, 16, 32]" in res.stdout
    res = _cli("run", "b", "--backend", "wasm", "--length", "11", "--check", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "shape [1, 11, 32]" in res.stdout and "check passed" in res.stdout
    res = _cli("run", "b", "--backend", "wasm", "--length", "40", cwd=tmp_path)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "dim 'sequence' is 40, over the largest the bundle was compiled for (32)" in res.stderr
    for bad in (["--lengths", "0,8"], ["--lengths", "x"], ["--max-length", "-3"], ["--max-batch", "0"]):
        res = _cli("compile", str(SEQ), "-o", "c", *bad, cwd=tmp_path)
        assert res.returncode == 2 and "Traceback" not in res.stderr, bad
        assert not (tmp_path / "c").exists()
    # an ONNX model with dynamic dims runs at --length (default 128), compiled for that length
    res = _cli("run", str(SEQ), "--backend", "wasm", "--length", "5", "--check", cwd=tmp_path)
    assert res.returncode == 0 and "shape [1, 5, 32]" in res.stdout, res.stderr


def test_hand_edited_dynamic_table_is_refused(seq_bundle, tmp_path):
    import shutil

    dst = tmp_path / "b"
    shutil.copytree(seq_bundle, dst)
    plan = json.loads((dst / "plan.json").read_text())
    plan["dynamic"]["variants"][0]["bind"] = {"sequence": -1}
    (dst / "plan.json").write_text(json.dumps(plan))
    with pytest.raises(NNJitError, match='"dynamic" table is malformed'):
        Session(dst, "wasm", verify=False)


def test_model_unchanged_by_fixed_shapes(tmp_path):
    """--shape still makes a fixed bundle (no "dynamic" table)."""
    plan = compile_model(SEQ, tmp_path / "b", backends=["wasm"], shapes={"input_ids": (1, 12)}, candidates=0)
    assert "dynamic" not in plan and plan["model"]["inputs"][0]["shape"] == [1, 12]
    assert onnx.load(str(SEQ)).graph.input[0].type.tensor_type.shape.dim[1].dim_param == "sequence"


def test_a_record_at_one_length_serves_its_neighbours(tmp_path):
    """A tuning record carries its kernel's shape; a variable-length compile uses it for the same
    kernel at nearby lengths (within tuning/apply.py NEAR_DISTANCE) and not far away."""
    from nnjit.frontend import import_onnx
    from nnjit.pipeline import TENSOR_PIPELINE, run_pipeline
    from nnjit.tuning.apply import NEAR_DISTANCE
    from nnjit.tuning.kernels import model_kernels
    from nnjit.tuning.records import FORMAT

    module = import_onnx(SEQ, shapes={"input_ids": (1, 16)}).module
    run_pipeline(module, TENSOR_PIPELINE)
    info = next(i for i in model_kernels(module, "wasm") if i.kind == "matmul" and i.geometry["N"] == 64)
    pick = {"reg": [2, 8]}
    rec = {"signature": info.signature, "kind": info.kind, "target": info.target,
           "geometry": info.geometry, "options": pick}  # fmt: skip
    records = tmp_path / "records.json"
    records.write_text(json.dumps({"format": FORMAT, "version": 1, "device": {}, "records": {info.signature: rec}}))
    kw = dict(backends=["wasm"], lengths=[8, 16, 24, 128], candidates=0)
    plain = compile_model(SEQ, tmp_path / "plain", **kw)
    tuned = compile_model(SEQ, tmp_path / "tuned", tuning_records=records, **kw)
    name = info.names[0]

    def sched(plan, i):
        return plan["dynamic"]["variants"][i]["backends"]["wasm"]["kernels"][name]["manifest"]["schedule"]

    assert NEAR_DISTANCE < 3  # (128 is log2(128/16) = 3 away)
    for i, n in enumerate((8, 16, 24, 128)):
        near = n in (8, 16, 24)
        assert (sched(tuned, i)["reg"] == pick["reg"]) is near, (n, sched(tuned, i))
        assert (sched(tuned, i) != sched(plain, i)) is near or sched(plain, i)["reg"] == pick["reg"], n
    sess = Session(tmp_path / "tuned", "wasm", threads=1)
    feeds = _feeds(1, 20, seed=5)
    assert relative_error(sess.run(feeds)["last_hidden_state"], _reference(SEQ, feeds)["last_hidden_state"]) < 1e-5


def _position_model(rows: int, roberta: bool) -> onnx.ModelProto:
    """ids [1, n] -> a learned position table [rows, 4] gathered at arange(n) (RoBERTa-style:
    the ids come from a CumSum over the mask, so the table has 2 rows more than positions)."""
    table = helper.make_tensor("embeddings.position_embeddings.weight", TensorProto.FLOAT, [rows, 4],
                               np.random.default_rng(0).standard_normal(rows * 4).astype(np.float32))  # fmt: skip
    nodes = [
        helper.make_node("Shape", ["attention_mask"], ["shape"]),
        helper.make_node("Gather", ["shape", "one"], ["n"], axis=0),
        helper.make_node("Range", ["zero", "n", "one"], ["pos"]),
    ]
    if roberta:
        nodes.append(helper.make_node("CumSum", ["attention_mask", "one"], ["unused"]))
    nodes.append(helper.make_node("Gather", ["embeddings.position_embeddings.weight", "pos"], ["y"]))
    graph = helper.make_graph(
        nodes, "positions",
        [helper.make_tensor_value_info("attention_mask", TensorProto.INT64, [1, "sequence"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["sequence", 4])],
        [table, helper.make_tensor("zero", TensorProto.INT64, [], [0]), helper.make_tensor("one", TensorProto.INT64, [], [1])],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_default_max_length_is_the_models_position_limit(tmp_path):
    from nnjit.frontend.dynamic import DEFAULT_MAX_LENGTH, dynamic_dims, position_limit

    assert position_limit(SEQ) == 512  # (BERT's 512 rows)
    gpt2 = ROOT / "tests" / "models" / "gpt2_past-legacy.onnx"
    assert position_limit(gpt2) == 128  # (wpe)
    # a decoder generates up to its positions (its cache buckets end there), not to 512
    from nnjit.frontend.generation import prepare_generation

    _, table, _, binds = prepare_generation(gpt2, None, None, None)
    assert table["max_length"] == 128 and max(b["past_sequence_length"] for b in binds) == 128
    assert position_limit(_position_model(20, roberta=True)) == 18
    assert position_limit(_position_model(20, roberta=False)) == 20
    # a model without a learned table (rotary): the default
    assert position_limit(ROOT / "tests" / "models" / "llama_past-legacy.onnx") is None
    assert dynamic_dims(_position_model(40, False).SerializeToString())["sequence"].sizes[-1] == 40
    assert dynamic_dims(SEQ.read_bytes())["sequence"].sizes[-1] == DEFAULT_MAX_LENGTH
    # compiled without --max-length: every length up to the table's rows, and no further
    plan = compile_model(_position_model(40, False).SerializeToString(), tmp_path / "b", backends=["wasm"],
                         candidates=0)  # fmt: skip
    assert plan["dynamic"]["dims"]["sequence"]["sizes"] == [1, 8, 16, 32, 40]
    sess = Session(tmp_path / "b", "wasm", threads=1)
    out = sess.run({"attention_mask": np.ones((1, 40), np.int64)})["y"]
    np.testing.assert_array_equal(out, onnx.numpy_helper.to_array(_position_model(40, False).graph.initializer[0]))
    with pytest.raises(ShapeError):
        sess.run({"attention_mask": np.ones((1, 41), np.int64)})
