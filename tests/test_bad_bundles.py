"""Bad input around bundles (issue 9, section 4): `compile -o` never deletes what nnjit did not
write, model names never clash with nnjit's own weight keys, token ids outside the table are
refused as onnxruntime refuses them, plan.json cannot lead the runtime out of the bundle, and
`nnjit serve` stays inside its folder. Every user error is one line, with no traceback."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from nnjit.compiler import compile_model
from nnjit.errors import ModelFormatError, NNJitError, ShapeError
from nnjit.runtime.session import Session, load_bundle
from tests.conftest import relative_error

VOCAB = 50


def _model(nodes, inputs, outputs, inits) -> bytes:
    g = h.make_graph(nodes, "g", inputs, outputs, inits)
    return h.make_model(g, opset_imports=[h.make_opsetid("", 17)], ir_version=8).SerializeToString()


def gather_model(seed: int = 0) -> bytes:
    """out = Gather(table[VOCAB, 8], ids[2, 5]) * 2: ids index the table (plan "range")."""
    table = np.random.default_rng(seed).standard_normal((VOCAB, 8)).astype(np.float32)
    nodes = [h.make_node("Gather", ["table", "ids"], ["g"]), h.make_node("Add", ["g", "g"], ["out"])]
    return _model(nodes, [h.make_tensor_value_info("ids", T.INT64, [2, 5])],
                  [h.make_tensor_value_info("out", T.FLOAT, [2, 5, 8])], [nh.from_array(table, "table")])  # fmt: skip


def collision_model(seed: int = 0) -> bytes:
    """Initializers, an input and outputs named like nnjit's internal weight keys (packed Wasm
    matmul weights `<key>#pack=kn8`, per-backend constants `<backend>#const0`, formerly
    `__const0`), next to the weights whose internal keys they imitate."""
    rng = np.random.default_rng(seed)

    def init(name, shape):
        return nh.from_array(rng.standard_normal(shape).astype(np.float32), name)

    inits = [init("w", (16, 16)), init("w#pack=kn8", (16, 16)), init("w%23pack=kn8", (16, 16)),
             init("__const0", (16,)), init("wasm#const0", (16,)), init("webgpu__const0", (16,)),
             init("#const", (16,)), init("wasm__const0", (16,))]  # fmt: skip
    c16 = nh.from_array(np.arange(16, dtype=np.float32) / 7, "c16")  # a per-backend constant
    x = "__const0_in"
    nodes = [
        h.make_node("Constant", [], ["c16"], value=c16),
        h.make_node("MatMul", [x, "w"], ["a"]),
        h.make_node("MatMul", [x, "w#pack=kn8"], ["b"]),
        h.make_node("MatMul", [x, "w%23pack=kn8"], ["c"]),
        h.make_node("Add", ["a", "__const0"], ["a1"]),
        h.make_node("Add", ["b", "wasm#const0"], ["b1"]),
        h.make_node("Add", ["c", "webgpu__const0"], ["c1"]),
        h.make_node("Mul", ["a1", "b1"], ["ab"]),
        h.make_node("Sub", ["ab", "c1"], ["abc"]),
        h.make_node("Add", ["abc", "#const"], ["d"]),
        h.make_node("Mul", ["d", "c16"], ["w#pack=kn8_out"]),
        h.make_node("Add", [x, "wasm__const0"], ["#const0"]),
    ]
    outs = [h.make_tensor_value_info(n, T.FLOAT, [4, 16]) for n in ("w#pack=kn8_out", "#const0")]
    return _model(nodes, [h.make_tensor_value_info(x, T.FLOAT, [4, 16])], outs, inits)


def ort_run(model: bytes, feeds: dict) -> dict:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    return {o.name: v for o, v in zip(sess.get_outputs(), sess.run(None, feeds))}


def nnjit_cli(*args: str, cwd: Path | None = None):
    return subprocess.run([sys.executable, "-m", "nnjit.tools.nnjit_main", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip


ROOT = Path(__file__).resolve().parent.parent


def assert_one_line(res, *needles: str) -> None:
    assert res.returncode != 0, res.stdout
    err = res.stderr.strip()
    assert "Traceback" not in err and err.startswith("error: ") and len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, err


def tree(d: Path) -> dict[str, bytes]:
    """Every file under `d` with its bytes (links as their targets)."""
    return {str(p.relative_to(d)): (os.readlink(p).encode() if p.is_symlink() else p.read_bytes())
            for p in sorted(d.rglob("*")) if p.is_file() or p.is_symlink()}  # fmt: skip


@pytest.fixture(scope="module")
def gather_onnx(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("models") / "gather.onnx"
    p.write_bytes(gather_model())
    return p


@pytest.fixture(scope="module")
def gather_bundle(tmp_path_factory, gather_onnx) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "gather"
    compile_model(gather_onnx, out)
    return out


# ------------------------------------------------------------------ compile -o: nothing lost


def test_foreign_plan_json_is_not_replaced(tmp_path, gather_onnx):
    out = tmp_path / "project"
    out.mkdir()
    (out / "plan.json").write_text('{"tasks": ["write the report"]}')
    (out / "notes.txt").write_text("mine")
    before = tree(out)
    assert_one_line(nnjit_cli("compile", str(gather_onnx), "-o", str(out)), "not an nnjit bundle", "plan.json")
    assert tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]  # no temporary left


def test_bundle_holding_a_user_file_is_not_replaced(tmp_path, gather_onnx):
    out = tmp_path / "b"
    compile_model(gather_onnx, out, backends=("wasm",))
    (out / "kernels" / "my_notes.txt").write_text("mine")
    before = tree(out)
    with pytest.raises(NNJitError, match=r"did not write \(kernels/my_notes.txt\)"):
        compile_model(gather_onnx, out, backends=("wasm",))
    assert tree(out) == before


def test_own_bundle_is_replaced_whole(tmp_path, gather_onnx):
    out = tmp_path / "b"
    compile_model(gather_onnx, out, backends=("webgpu", "wasm"))
    compile_model(gather_onnx, out, backends=("wasm",))
    plan = json.loads((out / "plan.json").read_text())
    assert set(plan["backends"]) == {"wasm"}
    assert not list(out.rglob("*.wgsl"))  # the old bundle's files went with it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
    load_bundle(out)  # complete: every listed file there with its hash
    empty = tmp_path / "empty"
    empty.mkdir()
    compile_model(gather_onnx, empty, backends=("wasm",))
    load_bundle(empty)


def test_dot_inside_a_bundle_is_refused(tmp_path, gather_onnx):
    out = tmp_path / "b"
    compile_model(gather_onnx, out, backends=("wasm",))
    before = tree(out)
    res = nnjit_cli("compile", str(gather_onnx), "-o", ".", "--backend", "wasm", cwd=out)
    assert_one_line(res, "current directory")
    res = nnjit_cli("compile", str(gather_onnx), "-o", "..", "--backend", "wasm", cwd=out / "kernels")
    assert_one_line(res, "current directory")
    assert tree(out) == before


def test_folder_of_the_model_and_files_are_refused(tmp_path, gather_onnx):
    d = tmp_path / "d"
    d.mkdir()
    model = d / "m.onnx"
    shutil.copyfile(gather_onnx, model)
    with pytest.raises(NNJitError, match="holds the model"):
        compile_model(model, d)
    with pytest.raises(NNJitError, match="not a directory"):
        compile_model(gather_onnx, model)
    (tmp_path / "link").symlink_to(d)
    with pytest.raises(NNJitError, match="symbolic link"):
        compile_model(gather_onnx, tmp_path / "link")
    assert sorted(p.name for p in d.iterdir()) == ["m.onnx"]


@pytest.mark.parametrize("name, needle", [("a\0b", "NUL byte"), ("x" * 300, "too long")])
def test_unusable_output_names(tmp_path, gather_onnx, name, needle):
    with pytest.raises(NNJitError, match=needle):
        compile_model(gather_onnx, tmp_path / name)
    assert not list(tmp_path.iterdir())


def test_failed_compile_keeps_the_old_bundle_and_writes_nothing(tmp_path, gather_onnx):
    out = tmp_path / "b"
    compile_model(gather_onnx, out, backends=("wasm",))
    before = tree(out)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(gather_onnx.read_bytes()[:40])
    with pytest.raises(NNJitError):
        compile_model(bad, out)
    assert tree(out) == before
    with pytest.raises(NNJitError):  # missing parent folders are not left behind either
        compile_model(bad, tmp_path / "x" / "y" / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "bad.onnx"]


# ------------------------------------------------------------------ names from the model


@pytest.mark.parametrize("backend", ["webgpu", "wasm"])
def test_names_like_internal_keys_run_right(tmp_path_factory, backend):
    model = collision_model()
    out = tmp_path_factory.mktemp("coll") / "b"
    plan = compile_model(model, out, backends=(backend,))
    keys = set(plan["weights"]["entries"])
    # the model's "w#pack=kn8" is stored escaped; on Wasm, packed (and "w" packed is nnjit's)
    escaped = "w%23pack=kn8" + ("#pack=kn8" if backend == "wasm" else "")
    assert {escaped, "__const0", f"{backend}#const0"} <= keys
    assert ("w#pack=kn8" in keys) == (backend == "wasm")
    x = np.random.default_rng(1).standard_normal((4, 16)).astype(np.float32)
    got = Session(out, backend).run({"__const0_in": x})
    ref = ort_run(model, {"__const0_in": x})
    assert set(got) == {"w#pack=kn8_out", "#const0"}
    for name in ref:
        assert relative_error(got[name], ref[name]) < 1e-5, name


# ------------------------------------------------------------------ token ids out of range


@pytest.mark.parametrize("backend", ["webgpu", "wasm"])
def test_token_ids_outside_the_table_are_refused(gather_bundle, backend):
    plan = json.loads((gather_bundle / "plan.json").read_text())
    assert plan["model"]["inputs"][0]["range"] == VOCAB
    sess = Session(gather_bundle, backend)
    ids = np.arange(10, dtype=np.int64).reshape(2, 5)
    ids[0, 0] = -VOCAB  # negative ids count from the end, as in onnxruntime
    ids[1, 4] = VOCAB - 1
    ref = ort_run(gather_model(), {"ids": ids})["out"]
    assert relative_error(sess.run({"ids": ids})["out"], ref) < 1e-6
    for bad, value in (((1, 3), VOCAB), ((0, 2), -VOCAB - 1), ((1, 0), 2**31 - 1)):
        ids2 = ids.copy()
        ids2[bad] = value
        with pytest.raises(Exception, match="out of data bounds"):  # onnxruntime refuses too
            ort_run(gather_model(), {"ids": ids2})
        with pytest.raises(ShapeError) as e:
            sess.run({"ids": ids2})
        msg = str(e.value)
        assert f"input 'ids' has value {value} at index {list(bad)}" in msg, msg
        assert f"[{-VOCAB}, {VOCAB - 1}]" in msg, msg


def test_range_is_the_smallest_table(tmp_path):
    """ids that index two tables are bounded by the smaller."""
    rng = np.random.default_rng(0)
    tables = [nh.from_array(rng.standard_normal((n, 4)).astype(np.float32), f"t{n}") for n in (30, 20)]
    nodes = [h.make_node("Gather", ["t30", "ids"], ["a"]), h.make_node("Gather", ["t20", "ids"], ["b"]),
             h.make_node("Add", ["a", "b"], ["out"])]  # fmt: skip
    model = _model(nodes, [h.make_tensor_value_info("ids", T.INT64, [3])],
                   [h.make_tensor_value_info("out", T.FLOAT, [3, 4])], tables)  # fmt: skip
    plan = compile_model(model, tmp_path / "b", backends=("wasm",))
    assert plan["model"]["inputs"][0]["range"] == 20


def test_range_of_a_split_table(tmp_path, monkeypatch):
    """A table split in row chunks (over the binding limit) still bounds its ids as a whole."""
    monkeypatch.setenv("NNJIT_MAX_BINDING_BYTES", "512")  # (read when a pipeline is first parsed:
    (tmp_path / "m.onnx").write_bytes(gather_model())    # compile in a fresh process)
    res = nnjit_cli("compile", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "b"), "--backend", "webgpu")
    assert res.returncode == 0, res.stderr
    plan = json.loads((tmp_path / "b" / "plan.json").read_text())
    assert any("#rows=" in k for k in plan["weights"]["entries"])
    assert plan["model"]["inputs"][0]["range"] == VOCAB
    ids = np.array([[0, 17, 33, 49, -1], [-VOCAB, 16, 32, 48, 5]], dtype=np.int64)
    sess = Session(tmp_path / "b", "webgpu")
    assert relative_error(sess.run({"ids": ids})["out"], ort_run(gather_model(), {"ids": ids})["out"]) < 1e-6
    with pytest.raises(ShapeError, match=f"value {VOCAB} at index"):
        sess.run({"ids": np.full((2, 5), VOCAB)})


# ------------------------------------------------------------------ plan.json read safely


def _edit_plan(bundle: Path, dst: Path, edit) -> Path:
    shutil.copytree(bundle, dst)
    plan = json.loads((dst / "plan.json").read_text())
    edit(plan)
    (dst / "plan.json").write_text(json.dumps(plan))
    return dst


def _first_kernel(plan: dict) -> dict:
    return next(iter(plan["backends"]["wasm"]["kernels"].values()))


BAD_PLANS = {
    "version": (lambda p: p.update(version=2), "plan version 2 is not supported"),
    "no-version": (lambda p: p.pop("version"), "plan version None is not supported"),
    "dotdot-weights": (lambda p: p["weights"].update(file="../secret.bin"), "outside the bundle"),
    "absolute-kernel": (lambda p: _first_kernel(p).update(file="/etc/hostname"), "outside the bundle"),
    "dotdot-files": (lambda p: p["files"].update({"../secret.bin": "0" * 64}), "outside the bundle"),
    "unlisted-kernel": (lambda p: _first_kernel(p).update(file="kernels/extra.wasm"), "does not list its hash"),
    "files-not-a-table": (lambda p: p.update(files=["weights.bin"]), 'no "files" table'),
    "input-dtype": (lambda p: p["model"]["inputs"][0].update(dtype="complex999"), "model input 0 is malformed"),
    "unknown-kernel": (lambda p: _wasm(p)["steps"][0].update(kernel="nosuch"), 'unknown kernel "nosuch"'),
    "step-buffer": (lambda p: _wasm(p)["steps"][0].update(args=[99999]), "names buffers the plan does not have"),
    "weight-key": (lambda p: _buffer(p, "weight").update(key="nosuch"), "no entry 'nosuch'"),
    "arena": (lambda p: _wasm(p).update(arena_bytes=-5), '"arena_bytes" is -5'),
    "slot": (lambda p: _buffer(p, "input").update(offset=1 << 40), "does not fit its slot"),
}


def _wasm(plan: dict) -> dict:
    return plan["backends"]["wasm"]


def _buffer(plan: dict, kind: str) -> dict:
    return next(b for b in _wasm(plan)["buffers"] if b["kind"] == kind)


@pytest.mark.parametrize("case", sorted(BAD_PLANS))
def test_bad_plans_are_refused(tmp_path, gather_bundle, case):
    edit, needle = BAD_PLANS[case]
    (tmp_path / "secret.bin").write_bytes(b"\0" * 4096)
    b = _edit_plan(gather_bundle, tmp_path / "b", edit)
    shutil.copyfile(next((b / "kernels").glob("*.wasm")), b / "kernels" / "extra.wasm")
    with pytest.raises(ModelFormatError, match=needle):
        Session(b, "wasm")
    if case in ("version", "dotdot-weights", "unlisted-kernel"):
        assert_one_line(nnjit_cli("run", str(b), "--backend", "wasm"), needle)


def test_link_out_of_the_bundle_is_refused(tmp_path, gather_bundle):
    """weights.bin as a symbolic link to a file outside, even one with the listed hash."""
    b = tmp_path / "b"
    shutil.copytree(gather_bundle, b)
    outside = tmp_path / "weights-elsewhere.bin"
    (b / "weights.bin").rename(outside)
    (b / "weights.bin").symlink_to(outside)
    assert hashlib.sha256((b / "weights.bin").read_bytes()).hexdigest() == load_bundle(b, verify=False)[1][
        "files"]["weights.bin"]  # fmt: skip
    with pytest.raises(ModelFormatError, match="link out of the bundle"):
        Session(b, "wasm")


# ------------------------------------------------------------------ nnjit serve


@pytest.fixture(scope="module")
def served(tmp_path_factory, gather_bundle):
    from nnjit.tools.serve import make_server

    root = tmp_path_factory.mktemp("serve")
    (root / "secret.txt").write_text("not for the web")
    site = root / "site"
    shutil.copytree(gather_bundle, site)
    (site / "leak.txt").symlink_to(root / "secret.txt")
    (site / "up").symlink_to(root)
    server = make_server(site, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.url
    server.shutdown()
    server.server_close()


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


@pytest.mark.parametrize("path, status", [
    ("plan.json", 200), ("runtime/nnjit.js", 200), ("leak.txt", 404), ("up/secret.txt", 404),
    ("%2e%2e/secret.txt", 404), ("a%00b", 400), ("plan.json%00.txt", 400),
])  # fmt: skip
def test_serve_stays_in_its_folder(served, path, status):
    code, body = _get(served + path)
    assert code == status, path
    assert b"not for the web" not in body


def test_serve_bad_port_is_one_line(gather_bundle):
    for port in ("99999", "-1"):
        assert_one_line(nnjit_cli("serve", str(gather_bundle), "--port", port), "port", port)
