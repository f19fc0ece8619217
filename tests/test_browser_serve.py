"""`nnjit serve`: isolation headers, MIME types, localhost only, the installed runtime, Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.browser.kernel_models import kernel_models


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    from nnjit.compiler import compile_model

    out = tmp_path_factory.mktemp("serve") / "bundle"
    compile_model(kernel_models()["softmax"][0], out, reference_outputs=True)
    return out


# generous timeouts: on a loaded 2-core CI machine the server process can take seconds to
# answer or to stop (they only bound a hang)
def get(url: str, host: str | None = None):
    req = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def start(*args: str) -> tuple[subprocess.Popen, str]:
    p = subprocess.Popen(
        [sys.executable, "-m", "nnjit.tools.nnjit_main", "serve", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    line = p.stdout.readline()
    if "http://" not in line:
        p.kill()
        raise AssertionError(f"no URL printed: {line!r} {p.stderr.read()}")
    return p, line.split(" at ", 1)[1].split()[0]


def test_serve_headers_mime_and_ctrl_c(bundle):
    p, url = start(str(bundle), "--port", "0")
    try:
        assert url.startswith("http://127.0.0.1:")
        plan = __import__("json").loads(get(url + "plan.json")[2])
        wasm = plan["backends"]["wasm"]["kernels"]
        wasm_file = next(iter(wasm.values()))["file"]
        expect = {
            "": "text/html", "index.html": "text/html", "plan.json": "application/json",
            "runtime/nnjit.js": "text/javascript", "runtime/wasm-worker.js": "text/javascript",
            wasm_file: "application/wasm", "weights.bin": "application/octet-stream",
        }  # fmt: skip
        for path, mime in expect.items():
            status, headers, body = get(url + path)
            assert status == 200, path
            assert headers["Content-Type"].split(";")[0] == mime, (path, headers["Content-Type"])
            assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
            assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
            assert headers["Cross-Origin-Resource-Policy"] == "same-origin"
        assert get(url + "runtime/nnjit.js")[2] == (Path("nnjit/web/nnjit.js").read_bytes())
        assert get(url + "nope.bin")[0] == 404
        assert get(url + "runtime/__init__.py")[0] == 404
        assert get(url, host="attacker.example")[0] == 403  # DNS rebinding
    finally:
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert "stopping" in out and "Traceback" not in err


def test_serve_without_isolation(bundle):
    p, url = start(str(bundle), "--port", "0", "--no-isolation")
    try:
        status, headers, _ = get(url + "plan.json")
        assert status == 200 and "Cross-Origin-Embedder-Policy" not in headers
    finally:
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=60)


def test_serve_errors(tmp_path, bundle):
    r = subprocess.run([sys.executable, "-m", "nnjit.tools.nnjit_main", "serve", str(tmp_path)],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 1 and "not an nnjit bundle (no plan.json)" in r.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run(
            [sys.executable, "-m", "nnjit.tools.nnjit_main", "serve", str(bundle), "--port", str(port)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert r.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in r.stderr


def test_make_server_refuses_other_hosts(bundle):
    from nnjit.errors import NNJitError
    from nnjit.tools.serve import make_server

    with pytest.raises(NNJitError, match="not a loopback address"):
        make_server(bundle, 0, host="0.0.0.0")
    s = make_server(bundle, 0)
    threading.Thread(target=s.serve_forever, daemon=True).start()
    try:
        t0 = time.time()
        assert get(s.url + "reference.bin")[0] == 200 and time.time() - t0 < 5
    finally:
        s.shutdown()
        s.server_close()


def test_compile_ships_runtime_and_reference(bundle):
    import json

    import numpy as np

    plan = json.loads((bundle / "plan.json").read_text())
    assert (bundle / "index.html").is_file() and (bundle / "runtime" / "nnjit.js").is_file()
    assert not any(f.startswith("runtime/") for f in plan["files"])  # not part of the model
    assert "reference.bin" in plan["files"]
    from nnjit.frontend.weights import load_weights

    ref = load_weights(bundle / "reference.bin", plan["reference"]["entries"])
    x = ref["input:x"].astype(np.float64)
    e = np.exp(x - x.max(-1, keepdims=True))
    assert np.allclose(ref["output:y"], e / e.sum(-1, keepdims=True), rtol=1e-5, atol=1e-6)
