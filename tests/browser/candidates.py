"""Hand-made bundles with several candidates per kernel (what on-device tuning chooses from).

`make_candidate_bundle` compiles a model with the default schedule and with other
`--loop-options`, and merges them: plan kernel k gets
    "candidates": [slow?, default, alt_1, ...]
where `slow` (first, so it is the default candidate) is the default kernel with a busy loop
in front that leaves its results alone: tuning must never pick it, and a session that does
not tune runs it (and is still correct).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

from nnjit.compiler import compile_model

SLOW_WGSL = """  var nnjit_spin = f32(arrayLength(&{buf})) * 0.001f + 0.1f;
  for (var nnjit_i = 0u; nnjit_i < 100000u; nnjit_i++) {{
    nnjit_spin = fract(sin(nnjit_spin) * 43758.547f + 0.1f);
  }}
  if (nnjit_spin > 2.0f) {{ return; }}
"""

SLOW_WAT = """    f64.const 0.5
    local.set $nnjit_spin
    i32.const 0
    local.set $nnjit_i
    loop $nnjit_l
      local.get $nnjit_spin
      f64.const 3.9
      f64.mul
      f64.const 1
      local.get $nnjit_spin
      f64.sub
      f64.mul
      local.set $nnjit_spin
      local.get $nnjit_i
      i32.const 1
      i32.add
      local.tee $nnjit_i
      i32.const 300000
      i32.lt_u
      br_if $nnjit_l
    end
    i32.const 8
    local.get $nnjit_spin
    f64.store
"""


def slow_wgsl(src: str) -> str:
    """The kernel with a busy loop (100000 dependent sin per invocation) before its body."""
    buf = re.search(r"var<storage[^>]*>\s*(\w+)\s*:", src)
    assert buf is not None, "no storage binding in the kernel"
    lines = src.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith("fn main(") and line.rstrip().endswith("{"):
            lines.insert(i + 1, SLOW_WGSL.format(buf=buf.group(1)))
            return "".join(lines)
    raise AssertionError("no `fn main(... {` line in the kernel")


def slow_wat(src: str) -> str:
    """The kernel with a busy loop (300000 dependent f64 steps per thread) before its body; it
    stores its result at byte 8, which every runtime leaves unused."""
    lines = src.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.lstrip().startswith("(func $run"):
            j = i + 1
            while lines[j].lstrip().startswith("(local"):
                j += 1
            lines.insert(j, SLOW_WAT)
            lines.insert(i + 1, "    (local $nnjit_spin f64) (local $nnjit_i i32)\n")
            return "".join(lines)
    raise AssertionError("no `(func $run` in the kernel")


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def make_candidate_bundle(model: Any, out: Path, alt_options: list[str], slow: bool = True,
                          reference_outputs: bool = False) -> dict:  # fmt: skip
    """Writes the merged bundle to `out`; returns its plan."""
    from nnjit.backends.wat_printer import assemble

    compile_model(model, out, reference_outputs=reference_outputs, candidates=0)
    plan = json.loads((out / "plan.json").read_text())
    alts = []
    for i, opts in enumerate(alt_options):
        tmp = out.parent / f".{out.name}-alt{i}"
        alt = compile_model(model, tmp, loop_options=opts, web_runtime=False, candidates=0)
        alts.append((f"alt{i}", opts, tmp, alt))
    for backend, bp in plan["backends"].items():
        steps = [(s["kernel"], s["args"]) for s in bp["steps"]]
        for name, k in bp["kernels"].items():
            cands = [{"file": k["file"], "manifest": k["manifest"], "options": {}}]
            for folder, opts, tmp, alt in alts:
                abp = alt["backends"][backend]
                assert [(s["kernel"], s["args"]) for s in abp["steps"]] == steps, "plans differ"
                ak = abp["kernels"][name]
                dst = out / folder / ak["file"]
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(tmp / ak["file"], dst)
                cands.append({"file": f"{folder}/{ak['file']}", "manifest": ak["manifest"],
                              "options": {"loop_options": opts}})  # fmt: skip
            if slow:
                dst = out / "slow" / k["file"]
                dst.parent.mkdir(parents=True, exist_ok=True)
                if backend == "webgpu":
                    dst.write_text(slow_wgsl((out / k["file"]).read_text()))
                else:
                    wat = (out / k["file"]).with_suffix(".wat").read_text()
                    dst.write_bytes(assemble(slow_wat(wat)))
                cands.insert(0, {"file": f"slow/{k['file']}", "manifest": k["manifest"],
                                 "options": {"slow": True}})  # fmt: skip
            k["candidates"] = cands
            k["file"], k["manifest"] = cands[0]["file"], cands[0]["manifest"]
    for _, _, tmp, _ in alts:
        shutil.rmtree(tmp)
    for p in sorted(out.rglob("*")):
        rel = str(p.relative_to(out))
        if p.is_file() and not rel.startswith("runtime/") and rel not in ("plan.json", "index.html"):
            plan["files"][rel] = _sha(p)
    (out / "plan.json").write_text(json.dumps(plan, indent=1))
    return plan
