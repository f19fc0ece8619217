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
  and reported (test_skipped_blocks_are_few prints them). `<!-- doc-test: save FILE -->` there
  also writes the block to FILE in the folder (a listing that an inline command then reads).

Inline commands (test_inline_command, after the blocks, in the same folder and environment):
a backtick span outside the fences (it may wrap a line) is a command when its first word is
`nnjit`, `nnjit-opt`, `nnjit-translate`, `python`, `python3`, a path ending in `/python`,
`make`, `npm`, `npx`, `node`, `pip` or `./setup.sh` and more words follow, or when it is a
script path `bench/....py` / `tools/....py` (run with this Python) or `./setup.sh`. A tool's
name alone (`nnjit`, `npm`) is a name, not a command. Each distinct command is then
* run by a fenced block: the same line appears in an ```sh block (which runs it);
* exempt: listed in EXEMPT with the reason (few; test_inline_commands_are_covered prints all);
* a subcommand alone (`nnjit tune`): `nnjit tune --help` must succeed;
* a synopsis (`[...]`, `a|b`, `...`, or only options and UPPERCASE metavars after the
  subcommand, as `nnjit compile --candidates N`): each subcommand's --help must list each option;
* else run as written (exit 0; in the repository root when it names bench/, tools/, tests/,
  .venv or make), with: any `python` = this Python; full-size `models/X.onnx`
  (built with torch) -> `tests/models/X.onnx`, the tiny model of the same architecture;
  placeholders MODEL -> tests/models/bert-legacy.onnx, NAME -> `bert` (a command that these
  substitutions make the same as one already run is not run again); benchmarks in smoke mode
  (NNJIT_BENCH_SMOKE=1, bench/smoke.py: tiny models and shapes, 1-2 runs, CUDA/TVM sides
  skipped with a line).
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
SAVE = re.compile(r"<!--\s*doc-test:\s*save\s+(\S+)\s*-->")
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
    save: str | None = None

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
            skip, save = SKIP.search(prev), SAVE.search(prev)
            found.append(Block(path, start + 1, m.group(2), "\n".join(body) + "\n",
                               skip.group(1) if skip else None,
                               save.group(1) if save else None))  # fmt: skip
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
    doc = next(iter(request.node.callspec.params.values())).file
    if doc not in _WORKDIRS:
        work = tmp_path_factory.mktemp(doc.stem)
        shutil.copyfile(ROOT / "nnjit" / "models" / "default.onnx", work / "model.onnx")
        shutil.copyfile(ROOT / "tests" / "models" / "bert_dynamic-legacy.onnx", work / "dynamic.onnx")
        shutil.copyfile(ROOT / "tests" / "models" / "gpt2_past-legacy.onnx", work / "decoder.onnx")
        shutil.copyfile(ROOT / "tests" / "models" / "tokenizer-tiny.json", work / "tiny-tokenizer.json")
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
    if re.search(r"bench/browser/\w+\.py", block.text) and shutil.which("npm") is None:
        pytest.skip("npm is not installed: the browser bench's contenders come from npm "
                    "(./setup.sh runs npm ci in bench/browser where npm exists)")  # fmt: skip
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
    from tests.browser.harness import BASE_FLAGS, CHROMIUM, shared_playwright, skip_reason

    why = skip_reason()
    if why is not None:
        pytest.skip(why)
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
        # the process-wide playwright of the browser tests: a second sync_playwright() in the
        # same process fails ("Sync API inside the asyncio loop") once theirs has started
        pw = shared_playwright()
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
    if block.save is not None:
        (workdir / block.save).write_text(block.text)
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


# ------------------------------------------------------------------------------ inline commands

COMMAND_WORDS = {"nnjit", "nnjit-opt", "nnjit-translate", "python", "python3", "make", "npm", "npx",
                 "node", "pip"}  # fmt: skip
SCRIPT = re.compile(r"^(bench|tools)/\S+\.py$")
EXEMPT = {
    "./setup.sh": "installs apt packages and .venv; CI runs it (.ci/run: ./setup.sh --no-run, make test)",
    "./setup.sh --no-run": "the same: CI's first step",
    "make test": "the whole suite, of which this test is part; CI's second step",
    "pip install": "prose: what a PEP 668 Python refuses (./setup.sh installs into .venv instead)",
    "pip install -e '.[test,bench]'": "installs packages (./setup.sh installs .[test,dev]; bench adds matplotlib)",
    "npm ci": "./setup.sh runs it in bench/browser (the browser bench's contenders)",
    "tools/build_models.py": "builds models with torch + transformers, which CI does not install "
    "(its tiny outputs are tests/models, run by test_models_e2e)",
    "python tools/build_models.py --full": "full-size models (GBs, minutes) with torch + transformers, "
    "which CI does not install",
}
MAX_EXEMPT = 8


@dataclass
class Span:
    file: Path
    line: int
    text: str  # whitespace collapsed

    @property
    def id(self) -> str:
        return f"{self.file.relative_to(ROOT)}:{self.line}"


def _is_command(text: str) -> bool:
    words = text.split()
    if words[0] == "./setup.sh" or SCRIPT.match(words[0]):
        return True
    return len(words) > 1 and (words[0] in COMMAND_WORDS or words[0].endswith("/python"))


def inline_spans() -> list[Span]:
    """The command spans outside the fences, paragraph by paragraph (a span may wrap a line)."""
    found = []
    for path in DOCS:
        para: list[tuple[int, str]] = []
        fenced = False
        for n, line in enumerate([*path.read_text().splitlines(), ""], 1):
            if re.match(r"^\s*```", line):
                fenced = not fenced
                line = ""
            if fenced or not line.strip():
                text = "\n".join(t for _, t in para)
                for m in re.finditer(r"`([^`]+)`", text):
                    span = " ".join(m.group(1).split())
                    if span and _is_command(span):
                        found.append(Span(path, para[0][0] + text.count("\n", 0, m.start()), span))
                para = []
            else:
                para.append((n, line))
    return found


def _normal(cmd: str) -> str:
    """One spelling per command: scripts and any python run with this Python."""
    words = cmd.split()
    if SCRIPT.match(words[0]):
        words = ["python", *words]
    elif words[0] == "python3" or words[0].endswith("/python"):
        words[0] = "python"
    return " ".join(words)


def _fenced_lines() -> dict[str, str]:
    """Every line of the ```sh blocks that run (comment cut off) -> the block's id."""
    lines: dict[str, str] = {}
    for b in BLOCKS:
        if b.lang == "sh" and b.skip is None:
            for line in b.text.splitlines():
                line = re.sub(r"\s+#.*$", "", line).strip()
                if line:
                    lines.setdefault(_normal(line), b.id)
    return lines


def _synopsis(words: list[str]) -> bool:
    if any("[" in w or "|" in w or w == "..." for w in words):
        return True
    return words[0] == "nnjit" and all(w.startswith("-") or w.isupper() for w in words[2:])


def disposition(cmd: str) -> tuple[str, str]:
    """(fenced | exempt | help | synopsis | run, detail) of an inline command."""
    n = _normal(cmd)
    exempt = {_normal(c): why for c, why in EXEMPT.items()}
    if n in exempt:
        return "exempt", exempt[n]
    fenced = FENCED.get(n)
    if fenced is not None:
        return "fenced", fenced
    words = n.split()
    if words[0] == "nnjit" and len(words) == 2 and re.fullmatch(r"[a-z]+", words[1]):
        return "help", f"nnjit {words[1]} --help"
    if words[0].startswith("nnjit") and _synopsis(words):
        return "synopsis", n
    return "run", n


SPANS = inline_spans()
FENCED = _fenced_lines()
COMMANDS: dict[str, list[Span]] = {}  # by _normal: `bench/x.py` and `python bench/x.py` run once
for _s in SPANS:
    COMMANDS.setdefault(_normal(_s.text), []).append(_s)


def test_inline_commands_are_covered():
    """Every inline command is run, checked, run by a fenced block, or exempt with a reason."""
    kinds: dict[str, list[str]] = {}
    for cmd, where in COMMANDS.items():
        kind, detail = disposition(cmd)
        kinds.setdefault(kind, []).append(f"{where[0].id} `{where[0].text}`" + (
            f": {detail}" if kind in ("exempt", "fenced") else ""))  # fmt: skip
    print(f"\ninline commands: {len(SPANS)} spans, {len(COMMANDS)} distinct: " +
          ", ".join(f"{len(v)} {k}" for k, v in sorted(kinds.items())))  # fmt: skip
    for kind in ("fenced", "exempt"):
        for line in kinds.get(kind, []):
            print(f"  {kind} {line}")
    stale = [c for c in EXEMPT if _normal(c) not in COMMANDS]
    assert not stale, f"exempt commands no doc names any more: {stale}"
    assert len(EXEMPT) <= MAX_EXEMPT


_HELP: dict[str, subprocess.CompletedProcess] = {}
_RAN: set[str] = set()


def _help(work: Path, tool: str) -> subprocess.CompletedProcess:
    if tool not in _HELP:
        _HELP[tool] = subprocess.run([*tool.split(), "--help"], cwd=work, env=_env(work),
                                     capture_output=True, text=True, timeout=120)  # fmt: skip
    return _HELP[tool]


@pytest.mark.parametrize(
    "span",
    [w[0] for c, w in COMMANDS.items() if disposition(c)[0] in ("help", "synopsis", "run")],
    ids=lambda s: f"{s.id} {s.text}",
)
def test_inline_command(span: Span, workdir: Path):
    """Runs after the blocks, in the folder of the span's markdown file (see the module doc)."""
    kind, detail = disposition(span.text)
    words = detail.split()
    for b in BLOCKS:  # files the blocks save (run alone, the test still finds them)
        if b.file == span.file and b.save is not None and not (workdir / b.save).exists():
            (workdir / b.save).write_text(b.text)
    if kind == "help":
        res = _help(workdir, f"nnjit {words[1]}")
        assert res.returncode == 0, f"{span.id} `{span.text}`: {detail} fails:\n{res.stderr[-2000:]}"
        return
    if kind == "synopsis":  # nnjit SUB[|SUB...] OPTIONS, or nnjit-opt / nnjit-translate OPTIONS
        subs = words[1].split("|") if words[0] == "nnjit" else [""]
        opts = [w.strip("[]") for w in words[1:] if w.strip("[]").startswith("-")]
        for sub in subs:
            tool = f"nnjit {sub}" if sub else words[0]
            res = _help(workdir, tool)
            assert res.returncode == 0, f"{span.id}: {tool} --help fails:\n{res.stderr[-2000:]}"
            missing = [o for o in opts if o not in res.stdout]
            assert not missing, f"{span.id} `{span.text}`: {tool} --help lists no {missing}"
        return
    if "bench/wasm_matmul/" in detail:
        from tests.browser.harness import skip_reason

        why = skip_reason()
        if why is not None:
            pytest.skip(why)
    cmd = []
    for w in words:
        m = re.fullmatch(r"models/(\S+\.onnx)", w)
        if m is not None and (ROOT / "tests" / "models" / m.group(1)).is_file():
            w = str(ROOT / "tests" / "models" / m.group(1))
        w = re.sub(r"\bMODEL\b", str(ROOT / "tests" / "models" / "bert-legacy.onnx"), w)
        cmd.append(re.sub(r"\bNAME\b", "bert", w))
    script = "set -eo pipefail\n" + " ".join(cmd)
    if script in _RAN:  # the same command after the substitutions (MODEL, models/X.onnx)
        return
    cwd = ROOT if REPO_PATHS.search(detail) or re.search(r"(^|\s)tests/", detail) else workdir
    res = subprocess.run(["bash", "-c", script], cwd=cwd, env=_env(workdir), capture_output=True,
                         stdin=subprocess.DEVNULL, text=True, timeout=600)  # fmt: skip
    assert res.returncode == 0, (f"{span.id} `{span.text}` failed ({res.returncode}):\n"
                                 f"{res.stdout[-3000:]}\n{res.stderr[-3000:]}")  # fmt: skip
    _RAN.add(script)
