"""Every fenced code block of README.md and docs/*.md runs as written (one test per block,
named `file:line`).

* ```sh: `bash -e` in a folder holding `model.onnx` (the embedded default model: a small
  BERT encoder, inputs input_ids and attention_mask [1, 16]) and `dynamic.onnx`
  (tests/models/bert_dynamic-legacy.onnx, whose two inputs share a dynamic dim `sequence`);
  HOME is that folder (a fresh ~/.cache/nnjit), .venv's bin leads PATH, examples/ is on
  PYTHONPATH. A block that names paths of the repository (bench/, tools/, .venv, make) runs in
  the repository root. The blocks of one markdown file share the folder and run in order
  (a later block may use what an earlier one wrote). `nnjit serve` starts, its demo page is
  fetched, and it stops.
  Benchmarks run in their smoke mode (NNJIT_BENCH_SMOKE=1: a tiny case; the browser bench
  writes to bench/browser/out/smoke/, git-ignored).
* ```python: the same folder, with this Python.
* ```js: a module script in headless Chromium, on a page served beside the folder's `bundle/`
  (compiled from model.onnx when no earlier block made it) or inside it (a snippet that
  imports ./runtime/nnjit.js).
* ```mlir: parsed by nnjit-opt. ```toml, ```json: parsed. ```text: output samples, not run.
* `<!-- doc-test: skip (reason) -->` on the line before a block skips it; the skips are few
  and reported (test_skipped_blocks_are_few prints them).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN = {"sh", "python", "js", "mlir", "toml", "json"}
NOT_RUN = {"text"}
SKIP = re.compile(r"<!--\s*doc-test:\s*skip\s*\((.+)\)\s*-->")
REPO_PATHS = re.compile(r"(^|\s)(bench/|tools/|\./setup\.sh|make |source \.venv|\.venv/)")
MAX_SKIPPED = 3
BIN = Path(sys.executable).parent


@dataclass
class Block:
    file: Path
    line: int  # of the opening fence
    lang: str
    text: str
    skip: str | None

    @property
    def id(self) -> str:
        return f"{self.file.relative_to(ROOT)}:{self.line}"


def blocks() -> list[Block]:
    found = []
    for path in DOCS:
        lines = path.read_text().splitlines()
        i = 0
        while i < len(lines):
            m = re.match(r"^(\s*)```(\S*)\s*$", lines[i])
            if m is None:
                i += 1
                continue
            start, indent = i, len(m.group(1))
            i += 1
            body = []
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i][indent:])
                i += 1
            prev = lines[start - 1] if start > 0 else ""
            skip = SKIP.search(prev)
            found.append(Block(path, start + 1, m.group(2), "\n".join(body) + "\n",
                               skip.group(1) if skip else None))  # fmt: skip
            i += 1
    return found


BLOCKS = blocks()


def test_every_block_says_what_it_is():
    """A fence without a language, or with one we do not handle, is a mistake in the docs."""
    bad = [f"{b.id} ({b.lang or 'no language'})" for b in BLOCKS if b.lang not in RUN | NOT_RUN]
    assert not bad, "fence these as sh / python / js / mlir / toml / json / text: " + ", ".join(bad)


def test_skipped_blocks_are_few():
    skipped = [b for b in BLOCKS if b.skip is not None]
    ran = [b for b in BLOCKS if b.lang in RUN and b.skip is None]
    print(f"\ndoc blocks: {len(BLOCKS)} ({len(ran)} run, "
          f"{sum(b.lang in NOT_RUN for b in BLOCKS)} text, {len(skipped)} skipped)")  # fmt: skip
    for b in skipped:
        print(f"  skipped {b.id}: {b.skip}")
    assert len(skipped) <= MAX_SKIPPED, [b.id for b in skipped]


# ------------------------------------------------------------------------------ running


_WORKDIRS: dict[Path, Path] = {}


@pytest.fixture
def workdir(request, tmp_path_factory) -> Path:
    """One folder per markdown file: its blocks run in order there, as a reader runs them."""
    doc = request.node.callspec.params["block"].file
    if doc not in _WORKDIRS:
        work = tmp_path_factory.mktemp(doc.stem)
        shutil.copyfile(ROOT / "nnjit" / "models" / "default.onnx", work / "model.onnx")
        shutil.copyfile(ROOT / "tests" / "models" / "bert_dynamic-legacy.onnx", work / "dynamic.onnx")
        _WORKDIRS[doc] = work
    return _WORKDIRS[doc]


def _env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NNJIT_CACHE_DIR"}
    return dict(
        env,
        HOME=str(work),
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        PYTHONPATH=os.pathsep.join([str(ROOT / "examples"), os.environ.get("PYTHONPATH", "")]),
        XDG_RUNTIME_DIR=os.environ.get("XDG_RUNTIME_DIR", "/tmp"),
        NNJIT_BENCH_SMOKE="1",
        PYTHONWARNINGS="ignore::DeprecationWarning",
    )


# `nnjit serve` runs until stopped: start it on a free port, fetch its page, stop it.
SERVE_CHECK = r"""
import subprocess, sys, urllib.request
args = [a for a in sys.argv[1:]] + ["--port", "0"]
p = subprocess.Popen(["nnjit", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
try:
    line = p.stdout.readline()
    if " at http" not in line:
        sys.exit(f"nnjit serve did not start: {line}{p.stdout.read() if p.poll() is not None else ''}")
    url = line.split(" at ", 1)[1].split()[0]
    with urllib.request.urlopen(url, timeout=30) as r:
        page = r.read().decode()
    assert r.status == 200 and "nnjit" in page, page[:200]
    with urllib.request.urlopen(url + "plan.json", timeout=30) as r:
        assert r.status == 200
    print(f"doc-test: nnjit serve answered at {url}")
finally:
    p.terminate()
    p.wait(timeout=30)
"""

PRELUDE = """
nnjit() {
  if [ "${1:-}" = serve ]; then shift; python "$DOCTEST_SERVE" serve "$@"; else command nnjit "$@"; fi
}
"""


def _run_sh(block: Block, work: Path) -> None:
    cwd = ROOT if REPO_PATHS.search(block.text) else work
    if "bench/browser/run.py" in block.text and not (ROOT / "bench/browser/node_modules").is_dir():
        pytest.skip("the browser bench's npm contenders are not installed (npm ci in bench/browser): "
                    "the test does not download them")  # fmt: skip
    (work / "_serve_check.py").write_text(SERVE_CHECK)
    env = _env(work) | {"DOCTEST_SERVE": str(work / "_serve_check.py")}
    script = "set -eo pipefail\n" + PRELUDE + block.text
    res = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=600)  # fmt: skip
    assert res.returncode == 0, f"{block.id} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"


def _run_python(block: Block, work: Path) -> None:
    res = subprocess.run([sys.executable, "-c", block.text], cwd=work, env=_env(work),
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert res.returncode == 0, f"{block.id} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"


def _run_mlir(block: Block, work: Path) -> None:
    (work / "block.mlir").write_text(block.text)
    res = subprocess.run([sys.executable, "-m", "nnjit.tools.nnjit_opt", "block.mlir"], cwd=work,
                         env=_env(work), capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode == 0, f"{block.id}: nnjit-opt does not parse it: {res.stderr}"


def _run_js(block: Block, work: Path) -> None:
    from tests.browser.harness import BASE_FLAGS, CHROMIUM, skip_reason

    why = skip_reason()
    if why is not None:
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    from nnjit.compiler import compile_model
    from nnjit.tools.serve import make_server

    site = work
    if not (site / "bundle" / "plan.json").is_file():
        compile_model(work / "model.onnx", site / "bundle")
    page_dir = site / "bundle" if '"./runtime/nnjit.js"' in block.text else site
    (page_dir / "doc_snippet.mjs").write_text(
        block.text + "\nglobalThis.__docTest = 'done';\n"
    )
    (page_dir / "doc_snippet.html").write_text(
        '<!doctype html><meta charset="utf-8"><script>'
        "addEventListener('error', (e) => { globalThis.__docTest = 'error: ' + e.message; });"
        "addEventListener('unhandledrejection', (e) => { globalThis.__docTest = "
        "'error: ' + (e.reason && e.reason.stack || e.reason); });</script>"
        '<script type="module" src="doc_snippet.mjs"></script>'
    )
    server = make_server(site, 0, isolated=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                str(work / "profile"), executable_path=str(CHROMIUM), headless=True, args=BASE_FLAGS
            )
            try:
                page = ctx.new_page()
                log: list[str] = []
                page.on("console", lambda m: log.append(m.text))
                page.goto(server.url + str((page_dir / "doc_snippet.html").relative_to(site)))
                page.wait_for_function("globalThis.__docTest !== undefined", timeout=120_000)
                status = page.evaluate("globalThis.__docTest")
            finally:
                ctx.close()
    finally:
        server.shutdown()
        server.server_close()
    assert status == "done", f"{block.id}: {status}\n" + "\n".join(log[-20:])


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang in RUN], ids=lambda b: b.id)
def test_block_runs(block: Block, workdir: Path):
    if block.skip is not None:
        pytest.skip(block.skip)
    if block.lang == "sh":
        _run_sh(block, workdir)
    elif block.lang == "python":
        _run_python(block, workdir)
    elif block.lang == "js":
        _run_js(block, workdir)
    elif block.lang == "mlir":
        _run_mlir(block, workdir)
    elif block.lang == "toml":
        tomllib.loads(block.text)
    elif block.lang == "json":
        json.loads(block.text)
