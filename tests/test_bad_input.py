"""The bad-input corpus (tests/hostile.py) against every entry point.

Each case must end in a non-zero exit status with exactly one `error: ...` line on stderr and no
traceback (the Python API: an NNJitError whose message is one line), and must leave its
directory as it found it: nothing half-written, nothing deleted. Command lines run in-process
(main(argv)), under an alarm, so a case that hangs or runs long fails instead of stalling CI.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import signal
import sys
from pathlib import Path

import pytest

from tests import hostile

CASES = hostile.all_cases()
TIME_LIMIT_S = 30


class CaseTimeout(Exception):
    pass


def _snapshot(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = "dir"
        for f in filenames:
            p = os.path.join(dirpath, f)
            rel = os.path.relpath(p, root)
            if os.path.islink(p) or not os.path.isfile(p):
                out[rel] = "special"
            elif os.path.getsize(p) > 1 << 26:  # (a sparse giant: its size and time)
                st = os.stat(p)
                out[rel] = f"{st.st_size} {st.st_mtime_ns}"
            else:
                with open(p, "rb") as fh:
                    out[rel] = hashlib.sha256(fh.read()).hexdigest()
    return out


def _entry(tool: str):
    if tool == "nnjit":
        from nnjit.tools.nnjit_main import main
    elif tool == "nnjit-opt":
        from nnjit.tools.nnjit_opt import main
    else:
        from nnjit.tools.nnjit_translate import main
    return main


def run_case(case: hostile.Case, tmp: Path) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of the case run in-process on its prepared directory."""
    subst = {"{tmp}": str(tmp), "{bundle}": str(tmp / "bundle"), "{model}": str(hostile.DEFAULT_MODEL)}
    if (tmp / "port").is_file():
        subst["{port}"] = (tmp / "port").read_text()
    argv = []
    for a in case.argv:
        for k, v in subst.items():
            a = a.replace(k, v)
        argv.append(a)
    out, err = io.StringIO(), io.StringIO()

    def on_alarm(signum, frame):
        raise CaseTimeout(f"{case.id}: still running after {TIME_LIMIT_S} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TIME_LIMIT_S)
    stdin = sys.stdin
    try:
        if case.stdin is not None:
            sys.stdin = io.TextIOWrapper(open(case.stdin.replace("{tmp}", str(tmp)), "rb"))
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            if case.tool == "api":
                from nnjit.errors import NNJitError

                assert case.api is not None
                try:
                    case.api(tmp)
                    rc = 0
                except NNJitError as e:
                    print(f"error: {e}", file=sys.stderr)
                    rc = 1
            else:
                try:
                    rc = _entry(case.tool)(argv)
                except SystemExit as e:
                    rc = e.code if isinstance(e.code, int) else 1
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        if sys.stdin is not stdin:
            sys.stdin.close()
            sys.stdin = stdin
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    from nnjit.compiler import compile_model

    out = tmp_path_factory.mktemp("bad-input") / "bundle"
    compile_model(hostile.DEFAULT_MODEL, out, backends=["wasm"], web_runtime=False)
    return out


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NNJIT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, tmp_path, bundle, monkeypatch):
    for k, v in case.env.items():
        monkeypatch.setenv(k, v)
    if "NNJIT_PLUGINS" in case.env:  # (read once per process: read it again)
        from nnjit import registry

        monkeypatch.setattr(registry, "_PLUGINS_LOADED", False)
    tmp = tmp_path / "case"
    tmp.mkdir()
    monkeypatch.chdir(tmp)
    if case.bundle:
        shutil.copytree(bundle, tmp / "bundle")
    for step in case.setup:
        step(tmp)
    before = _snapshot(tmp)
    rc, out, err = run_case(case, tmp)
    err = err.strip()
    assert rc != 0, f"exit 0\nstdout: {out}\nstderr: {err}"
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert len(lines[0]) < 400, err
    if case.needle is not None:
        assert case.needle.lower() in lines[0].lower(), err
    assert _snapshot(tmp) == before, "the failing command changed its directory"


def test_corpus_size():
    tools = {c.tool for c in CASES}
    assert len(CASES) >= 150
    assert tools == {"nnjit", "nnjit-opt", "nnjit-translate", "api"}
    for cmd in ("compile", "run", "tune", "bench", "serve", "import"):
        assert any(c.tool == "nnjit" and cmd in c.argv[:1] for c in CASES), cmd


def test_deep_elementwise_chains_compile_and_match_onnxruntime(tmp_path):
    """~530 elementwise ops after a matmul and before a softmax (a DAG: every third op reads
    the two values before it) used to hit Python's recursion limit; now nn-tensor-fuse splits
    the chain over kernels of at most MAX_FUSED_ELEMENTWISE ops, and both backends agree with
    onnxruntime."""
    import numpy as np
    import onnxruntime as ort

    from nnjit.compiler import compile_model
    from nnjit.passes.nn_tensor_fuse import MAX_FUSED_ELEMENTWISE
    from nnjit.runtime.session import Session
    from tests.conftest import relative_error

    model = hostile.deep_model(400)
    n_elementwise = len(model.graph.node) - 2
    plan = compile_model(model.SerializeToString(), tmp_path / "b", web_runtime=False)
    for backend in ("wasm", "webgpu"):
        kernels = plan["backends"][backend]["kernels"]
        assert n_elementwise // MAX_FUSED_ELEMENTWISE <= len(kernels) <= n_elementwise // 4, backend
    x = np.random.default_rng(7).standard_normal((4, 8)).astype(np.float32)
    ref = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    assert float(np.std(ref)) > 0.05  # (the chain keeps the inputs apart: a real check)
    for backend in ("wasm", "webgpu"):
        got = Session(tmp_path / "b", backend).run({"x": x})["y"]
        assert relative_error(got, ref) < 1e-4, backend


def test_fuse_splits_long_elementwise_chains():
    """nn-tensor-fuse gives no kernel more than MAX_FUSED_ELEMENTWISE elementwise ops: a chain
    of 70 becomes kernels of 32, 32 and 6 ops (the group grows back from the chain's end)."""
    from xdsl.parser import Parser

    from nnjit.compiler import run_pipeline
    from nnjit.dialects import nn_tensor as nt
    from nnjit.passes.nn_tensor_fuse import MAX_FUSED_ELEMENTWISE
    from nnjit.registry import make_context

    t = "tensor<4x8xf32>"
    lines = [f"func.func @main(%v0: {t}) -> {t} {{"]
    lines += [f"  %v{i + 1} = nn_tensor.tanh %v{i} : {t} -> {t}" for i in range(70)]
    lines += [f"  func.return %v70 : {t}", "}"]
    module = Parser(make_context(), "\n".join(lines)).parse_module()
    run_pipeline(module, "nn-tensor-fuse")
    fused = [op for op in module.walk() if isinstance(op, nt.FusedOp)]
    sizes = [sum(1 for o in f.body.block.ops if isinstance(o, nt.ElementwiseOp)) for f in fused]
    assert MAX_FUSED_ELEMENTWISE == 32 and sorted(sizes) == [6, 32, 32]


def test_outputs_to_devices_and_links_are_written_through(tmp_path):
    """-o to a device or FIFO writes into it (a file renamed over it replaced the node:
    `-o /dev/zero` once turned /dev/zero into a text file), and -o LINK replaces the file the
    link names, not the link."""
    import stat
    import threading

    from nnjit.tools.nnjit_opt import main

    kernel = tmp_path / "k.mlir"
    kernel.write_text(hostile.FUSED_MLIR)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    assert main([str(kernel), "-o", str(fifo)]) == 0
    reader.join(30)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert got and b"nn_tensor.fused" in got[0]
    real = tmp_path / "real.mlir"
    real.write_text("old")
    link = tmp_path / "link.mlir"
    link.symlink_to(real)
    assert main([str(kernel), "-o", str(link)]) == 0
    assert link.is_symlink() and "nn_tensor.fused" in real.read_text()


@pytest.mark.parametrize("case_id", ["run--threads=-3", "compile-model-dev-zero", "nnjit-opt-onnx-model",
                                     "nnjit-translate-bad_utf8", "bench-kernel-is-onnx"])  # fmt: skip
def test_cases_as_processes(case_id, tmp_path):
    """A few cases through the real entry points, in a process of their own: what reaches the
    terminal (libraries writing to file descriptor 2 included) is still one line."""
    import subprocess

    case = next(c for c in CASES if c.id == case_id)
    for step in case.setup:
        step(tmp_path)
    before = _snapshot(tmp_path)
    module = {"nnjit": "nnjit_main", "nnjit-opt": "nnjit_opt", "nnjit-translate": "nnjit_translate"}
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{model}", str(hostile.DEFAULT_MODEL))
            for a in case.argv]  # fmt: skip
    res = subprocess.run([sys.executable, "-m", f"nnjit.tools.{module[case.tool]}", *argv],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)  # fmt: skip
    err = res.stderr.strip()
    assert res.returncode != 0 and len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert "Traceback" not in err and _snapshot(tmp_path) == before
