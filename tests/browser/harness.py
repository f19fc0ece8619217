"""Browser-test plumbing: headless Chromium through Python playwright, a site of bundles served
twice (cross-origin isolated, and not), bundles compiled on demand, onnxruntime references.

Test modules import the fixtures they use (`from tests.browser.harness import site, browser`)
and get one browser per module. Everything skips, with the reason, when chromium or playwright
is not installed. Never `playwright install`: the system chromium is used as it is.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
MODELS = ROOT / "tests" / "models"
CHROMIUM = Path(os.environ.get("NNJIT_CHROMIUM", "/usr/lib/chromium/chromium"))
BASE_FLAGS = [
    "--headless", "--no-sandbox", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic",
]  # fmt: skip
WEBGPU_FLAGS = ["--enable-unsafe-webgpu"]
TIMEOUT_MS = 120_000


def skip_reason() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.is_file():
        return f"chromium is not installed ({CHROMIUM} missing; apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install -e '.[test]')"
    return None


def bench_smoke(script: str, results: Path) -> dict:
    """Runs bench/browser/`script` in its smoke mode (NNJIT_BENCH_SMOKE=1) with `--results
    results`; asserts it exits 0 and returns the JSON it wrote there. Skips the test where
    Chromium, playwright or npm (the contenders) is missing."""
    import subprocess
    import sys

    reason = skip_reason()
    if reason is not None:
        pytest.skip(reason)
    if shutil.which("npm") is None and not (ROOT / "bench" / "browser" / "node_modules").is_dir():
        pytest.skip("npm is not installed: the contenders come from npm (./setup.sh runs npm ci in bench/browser)")
    env = dict(os.environ, NNJIT_BENCH_SMOKE="1", PYTHONPATH=str(ROOT))
    res = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "browser" / script), "--results", str(results)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, f"{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    (found,) = results.glob("*.json")
    return json.loads(found.read_text())


# ------------------------------------------------------------------------------ the site


class Site:
    """A temporary folder of bundles with harness.js, served isolated and not."""

    def __init__(self, root: Path):
        from nnjit.tools.serve import make_server

        self.root = root
        shutil.copyfile(HERE / "harness.js", root / "harness.js")
        (root / "blank.html").write_text('<!doctype html><meta charset="utf-8"><title>nnjit tests</title>')
        self.servers = {
            "iso": make_server(root, 0, isolated=True),
            "plain": make_server(root, 0, isolated=False),
        }
        for s in self.servers.values():
            threading.Thread(target=s.serve_forever, daemon=True).start()
        self._lock = threading.Lock()
        self._bundles: dict[str, Path] = {}

    def url(self, path: str = "", isolated: bool = True) -> str:
        return self.servers["iso" if isolated else "plain"].url + path

    def close(self) -> None:
        for s in self.servers.values():
            s.shutdown()
            s.server_close()

    def bundle(self, name: str, model: Any, **kw) -> Path:
        """Compiles `model` (path or ONNX bytes) into <root>/<name>/ once."""
        with self._lock:
            if name not in self._bundles:
                from nnjit.compiler import compile_model

                compile_model(model, self.root / name, **kw)
                self._bundles[name] = self.root / name
            return self._bundles[name]

    def bundles(self, jobs: dict[str, tuple[Any, dict]]) -> dict[str, Path]:
        """Compiles several bundles on two processes; name -> (model, compile kwargs)."""
        todo = {n: j for n, j in jobs.items() if n not in self._bundles}
        if len(todo) > 1:
            import multiprocessing as mp

            with ProcessPoolExecutor(min(2, len(todo)), mp_context=mp.get_context("spawn")) as ex:
                futs = {n: ex.submit(_compile, m, str(self.root / n), kw) for n, (m, kw) in todo.items()}
                for n, f in futs.items():
                    f.result()
                    self._bundles[n] = self.root / n
        for n, (m, kw) in jobs.items():
            self.bundle(n, m, **kw)
        return {n: self._bundles[n] for n in jobs}

    def copy_bundle(self, src: str, dst: str) -> Path:
        out = self.root / dst
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(self._bundles[src], out)
        return out


def _compile(model: Any, out: str, kw: dict) -> None:
    from nnjit.compiler import compile_model

    compile_model(model, out, **kw)


# Test modules import these fixtures, which makes each module's copy a fixture of its own:
# session scope would still start one site and one playwright per module. So the fixtures are
# module-scoped handles on process-wide singletons, closed at exit.
_SHARED: dict[str, Any] = {}


def _shared(key: str, make):
    if key not in _SHARED:
        import atexit

        _SHARED[key] = obj = make()
        atexit.register(obj.stop if key == "playwright" else obj.close)
    return _SHARED[key]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    why = skip_reason()
    if why:
        pytest.skip(why)
    return _shared("site", lambda: Site(tmp_path_factory.mktemp("site")))


def shared_playwright():
    """The process's one sync playwright (a second sync_playwright() in the process fails)."""
    from playwright.sync_api import sync_playwright

    return _shared("playwright", lambda: sync_playwright().start())


@pytest.fixture(scope="module")
def playwright_instance():
    why = skip_reason()
    if why:
        pytest.skip(why)
    return shared_playwright()


def launch(pw, tmp_path: Path, webgpu: bool = True):
    """Headless Chromium with a fresh profile (persistent, so IndexedDB behaves as for a user)."""
    flags = BASE_FLAGS + (WEBGPU_FLAGS if webgpu else [])
    ctx = pw.chromium.launch_persistent_context(
        str(tmp_path), executable_path=str(CHROMIUM), headless=True, args=flags
    )
    ctx.set_default_timeout(TIMEOUT_MS)
    return ctx


@pytest.fixture(scope="module")
def browser(playwright_instance, tmp_path_factory):
    """One Chromium (WebGPU on) per test module; a browser context with a fresh profile."""
    ctx = launch(playwright_instance, tmp_path_factory.mktemp("profile"))
    yield ctx
    ctx.close()


class Page:
    """A harness page on the site (isolated or not) and calls into harness.js."""

    def __init__(self, ctx, site: Site, isolated: bool = True):
        self.site = site
        self.isolated = isolated
        self.page = ctx.new_page()
        self.console: list[str] = []
        self.page.on("console", lambda m: self.console.append(m.text))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.page.goto(site.url("blank.html", isolated))

    def call(self, fn: str, *args) -> Any:
        return self.page.evaluate(
            "async ([fn, args]) => (await import('/harness.js'))[fn](...args)", [fn, list(args)]
        )

    def run_bundle(self, name: str, feeds_list: list[dict], **opts) -> dict:
        return self.call("runBundle", f"/{name}/", [encode_feeds(f) for f in feeds_list], opts)

    def close(self) -> None:
        self.page.close()


def encode_feeds(feeds: dict[str, np.ndarray]) -> dict:
    return {
        k: {"dtype": str(v.dtype), "dims": list(v.shape), "data": np.asarray(v).reshape(-1).tolist()}
        for k, v in feeds.items()
    }


def decode_output(o: dict) -> np.ndarray:
    return np.asarray(o["data"], dtype=np.float64).reshape(o["dims"])


def plan_of(bundle: Path) -> dict:
    return json.loads((bundle / "plan.json").read_text())


def feeds_for(bundle: Path, seed: int) -> dict[str, np.ndarray]:
    from nnjit.runtime.session import random_feeds

    return random_feeds(plan_of(bundle), seed)


def reference(model: Any, feeds: dict[str, np.ndarray], names: list[str]) -> list[np.ndarray]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    src = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"]).run(names, feeds)


def check_against_onnxruntime(res: dict, model: Any, bundle: Path, feeds_list: list[dict],
                              tol: float = 1e-4) -> float:  # fmt: skip
    """Asserts every output of every run of `res` is within `tol` (relative error) of
    onnxruntime's; returns the worst error."""
    from tests.conftest import relative_error

    assert "error" not in res, f"load failed: {res['error']}"
    assert "runError" not in res, f"run failed: {res['runError']}"
    names = [o["name"] for o in plan_of(bundle)["model"]["outputs"]]
    worst = 0.0
    for feeds, outs in zip(feeds_list, res["outputs"], strict=True):
        for name, ref in zip(names, reference(model, feeds, names)):
            err = relative_error(decode_output(outs[name]), ref)
            assert err <= tol, f"{bundle.name} on {res['backend']}: output {name!r} relative error {err:.2e}"
            worst = max(worst, err)
    return worst
