"""What makes a directory an nnjit bundle, and how bundles are replaced and read safely.

A bundle is plan.json (format PLAN_FORMAT, version PLAN_VERSION), the files its "files" table
lists with their SHA-256 (weights.bin, kernels/*, reference.bin), and the browser runtime and
demo page (runtime/*, index.html), which the table does not list. These are the only files
nnjit writes, and so the only ones it ever deletes:

- `check_output_dir(out, model)`: `nnjit compile -o out` may replace `out` only when it is
  missing, empty, or an nnjit bundle that holds nothing but files nnjit writes; anything else
  (another program's plan.json, a file of the user's, the current directory, the model's own
  folder) is refused with one line.
- `temp_sibling(out)` / `swap_in(tmp, out, old_files)`: the bundle is written beside `out`
  and moved into place only when complete; then of the old bundle exactly the files
  `check_output_dir` listed are deleted.
- `check_plan(plan, where)` / `check_backend_plan(plan, backend, where)`: what a runtime reads
  before it trusts a plan (format, version, file names inside the bundle, model inputs and
  outputs; kernels, buffers, weight keys and slots of one backend).
- `bundle_file(root, plan, rel, verify)`: the path of a file a plan names, refused when the
  name leads out of the bundle or, when verifying, is not in the plan's hashed "files".
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path, PurePosixPath

from nnjit.errors import ModelFormatError, NNJitError
from nnjit.web import PAGE_FILES, RUNTIME_FILES

PLAN_FORMAT = "nnjit-plan"
PLAN_VERSION = 1

# written by install_runtime, not listed in the plan's "files"
WEB_FILES = frozenset(
    [*(f"runtime/{n}" for n in RUNTIME_FILES)]
    + [n if n == "index.html" else f"runtime/{n}" for n in PAGE_FILES]
)


def safe_relpath(rel: object) -> bool:
    """Whether a plan's file name stays inside the bundle: relative, '/'-separated, no '..'."""
    if not isinstance(rel, str) or not rel or "\\" in rel or "\0" in rel:
        return False
    p = PurePosixPath(rel)
    return not p.is_absolute() and ".." not in p.parts and not rel.startswith("~")


def check_plan(plan: object, where: str) -> dict:
    """The plan if it has nnjit's format marker, version and top-level tables; else one line."""
    if not isinstance(plan, dict) or plan.get("format") != PLAN_FORMAT:
        raise ModelFormatError(f"{where}: not an nnjit plan", hint="recompile the bundle")
    if plan.get("version") != PLAN_VERSION:
        raise ModelFormatError(
            f"{where}: plan version {plan.get('version')!r} is not supported "
            f"(this nnjit reads version {PLAN_VERSION})",
            hint="recompile the bundle with this nnjit",
        )
    for key in ("model", "weights", "backends", "files"):
        if not isinstance(plan.get(key), dict):
            raise ModelFormatError(f'{where}: plan.json has no "{key}" table', hint="recompile the bundle")
    for rel in plan["files"]:
        if not safe_relpath(rel):
            raise ModelFormatError(
                f"{where}: file {rel!r} lies outside the bundle", hint="recompile the bundle"
            )
    for key in ("inputs", "outputs"):
        infos = plan["model"].get(key)
        if not isinstance(infos, list):
            raise ModelFormatError(f'{where}: model "{key}" is not a list', hint="recompile the bundle")
        for i, info in enumerate(infos):
            if not _io_ok(info):
                raise ModelFormatError(f"{where}: model {key[:-1]} {i} is malformed ({_short(info)})",
                                       hint="recompile the bundle")  # fmt: skip
    return plan


def _nat(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _dims(v: object) -> bool:
    return isinstance(v, list) and all(_nat(d) for d in v)


def _short(v: object) -> str:
    text = json.dumps(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _io_ok(info: object) -> bool:
    """A model input/output entry: {"name", "shape", "dtype" (a numpy name), "range"? > 0}."""
    import numpy as np

    if not isinstance(info, dict) or not isinstance(info.get("name"), str) or not _dims(info.get("shape")):
        return False
    try:
        if np.dtype(str(info.get("dtype"))).kind not in "fiub":
            return False
    except TypeError:
        return False
    return "range" not in info or (_nat(info["range"]) and info["range"] > 0)


_KINDS = ("input", "output", "weight", "intermediate", "view")


_ITEMSIZE = {"f32": 4, "i32": 4, "f16": 2, "i8": 1}
"""Bytes per element of a plan buffer's dtype ("f16": a weight kernels read as float16;
"i8": a weight the Wasm kernels read as int8 bytes)."""

def check_backend_plan(plan: dict, backend: str, where: str) -> dict:
    """The plan of `backend` if every reference in it holds: kernels launched exist, buffer ids,
    weight keys, views and slots are in range and of the sizes they claim; else one line."""

    def bad(what: str) -> ModelFormatError:
        return ModelFormatError(f'{where}: backend "{backend}": {what}', hint="recompile the bundle")

    bp = plan["backends"].get(backend)
    if not isinstance(bp, dict):
        raise bad("not a table")
    kernels, buffers, slots, steps = (bp.get(k) for k in ("kernels", "buffers", "slots", "steps"))
    if not isinstance(kernels, dict) or not all(isinstance(k, dict) and isinstance(k.get("manifest"), dict)
                                                for k in kernels.values()):  # fmt: skip
        raise bad('"kernels" is malformed')
    if not isinstance(slots, list) or not all(isinstance(s, dict) and _nat(s.get("bytes")) and _nat(s.get("offset"))
                                              for s in slots):  # fmt: skip
        raise bad('"slots" is malformed')
    arena = bp.get("arena_bytes")
    if not _nat(arena):
        raise bad(f'"arena_bytes" is {arena!r}')
    if not isinstance(buffers, list) or not isinstance(steps, list):
        raise bad('"buffers" or "steps" is not a list')
    entries = plan["weights"].get("entries")
    entries = entries if isinstance(entries, dict) else {}
    for i, b in enumerate(buffers):
        if not (isinstance(b, dict) and b.get("id") == i and b.get("kind") in _KINDS
                and b.get("dtype") in _ITEMSIZE and _dims(b.get("shape"))
                and b.get("bytes") == math.prod(b["shape"]) * _ITEMSIZE[b["dtype"]]):  # fmt: skip
            raise bad(f"buffer {i} is malformed ({_short(b)})")
        if b["kind"] == "weight":
            e = entries.get(b.get("key")) if isinstance(b.get("key"), str) else None
            if not isinstance(e, dict) or not _dims(e.get("shape")) or math.prod(e["shape"]) != math.prod(b["shape"]):
                raise bad(f"buffer {i}: weights.bin has no entry {b.get('key')!r} of its size")
        elif b["kind"] == "view":
            base = b.get("base")
            if not (_nat(base) and base < i and b["bytes"] <= buffers[base]["bytes"]):
                raise bad(f"buffer {i}: a view of no earlier buffer of its size")
        else:
            s = b.get("slot")
            if not (_nat(s) and s < len(slots) and b["bytes"] <= slots[s]["bytes"]
                    and b.get("offset") == slots[s]["offset"] and slots[s]["offset"] + slots[s]["bytes"] <= arena):  # fmt: skip
                raise bad(f"buffer {i} does not fit its slot in the arena")
    for key in ("inputs", "outputs"):
        io, model_io = bp.get(key), plan["model"][key]
        if not isinstance(io, list) or len(io) != len(model_io):
            raise bad(f'"{key}" do not match the model\'s')
        for info, m in zip(io, model_io):
            bid = info.get("buffer") if isinstance(info, dict) else None
            if not (_nat(bid) and bid < len(buffers)) or math.prod(buffers[bid]["shape"]) != math.prod(m["shape"]):
                raise bad(f"{key[:-1]} '{m['name']}' has no buffer of its size")
    for j, st in enumerate(steps):
        name = st.get("kernel") if isinstance(st, dict) else None
        if not isinstance(name, str) or name not in kernels:
            raise bad(f"step {j} launches the unknown kernel {_short(name)}")
        args = st.get("args")
        if not isinstance(args, list) or not all(_nat(a) and a < len(buffers) for a in args):
            raise bad(f"step {j} ({name}) names buffers the plan does not have")
    return bp


def bundle_file(root: Path, plan: dict, rel: object, verify: bool = True) -> Path:
    """The path of the bundle file `rel` that `plan` names (weights, a kernel, ...).

    Refused: names that lead out of the bundle (absolute, '..', or a symbolic link pointing
    out), and, when `verify`, names not listed in the plan's "files" (their hash is unknown)."""
    if not safe_relpath(rel):
        raise ModelFormatError(f"{root}: plan.json names the file {rel!r}, outside the bundle",
                               hint="recompile the bundle")  # fmt: skip
    assert isinstance(rel, str)
    if verify and rel not in plan.get("files", {}):
        raise ModelFormatError(
            f"{root}: plan.json names the file {rel!r} but does not list its hash in \"files\"",
            hint="recompile the bundle",
        )
    path = root / rel
    base = root.resolve()
    if not path.resolve().is_relative_to(base):
        raise ModelFormatError(f"{path}: a link out of the bundle", hint="recompile the bundle")
    return path


def _read_plan(out: Path) -> dict | None:
    try:
        plan = json.loads((out / "plan.json").read_text())
        return check_plan(plan, str(out / "plan.json"))
    except (OSError, ValueError, NNJitError):
        return None


def _nnjit_files(out: Path, plan: dict) -> tuple[set[str], list[str]]:
    """(files of `out` nnjit wrote, relative; everything else in `out`, relative)."""
    owned = {"plan.json", *WEB_FILES, *plan["files"]}
    owned_dirs = {str(p) for rel in owned for p in PurePosixPath(rel).parents if str(p) != "."}
    mine: set[str] = set()
    foreign: list[str] = []
    for top, dirs, files in os.walk(out):
        here = Path(top).relative_to(out)
        keep = []
        for d in sorted(dirs):
            rel = (here / d).as_posix()
            if rel in owned_dirs and not os.path.islink(os.path.join(top, d)):
                keep.append(d)
            else:
                foreign.append(rel + "/")
        dirs[:] = keep
        for f in sorted(files):
            rel = (here / f).as_posix()
            if rel in owned and not os.path.islink(os.path.join(top, f)):
                mine.add(rel)
            else:
                foreign.append(rel)
    return mine, foreign


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_output_dir(out_dir: str | os.PathLike, model: str | os.PathLike | None = None) -> set[str]:
    """Checks that `nnjit compile` may write its bundle to `out_dir`; returns the files of the
    bundle there now (relative paths; empty when there is none), which it will replace."""
    try:
        return _check_output_dir(out_dir, model)
    except OSError as e:  # (a name too long, a folder that cannot be read, ...)
        raise NNJitError(f"{e.filename or out_dir}: {e.strerror}", hint="choose another -o directory") from None


def _check_output_dir(out_dir: str | os.PathLike, model: str | os.PathLike | None) -> set[str]:
    if "\0" in os.fspath(out_dir):
        raise NNJitError(f"{os.fspath(out_dir)!r}: a NUL byte in the -o path", hint="give a valid directory name")
    given = Path(out_dir)
    if given.is_symlink():
        raise NNJitError(f"{given}: is a symbolic link", hint="give the bundle directory itself with -o")
    out = given.resolve()
    if out.exists() and not out.is_dir():
        raise NNJitError(f"{given}: exists and is not a directory", hint="choose another -o directory")
    if _inside(Path.cwd().resolve(), out):
        raise NNJitError(
            f"{given}: is the current directory or one above it; nnjit replaces the -o "
            "directory as a whole", hint="choose a new or bundle directory with -o",
        )  # fmt: skip
    if model is not None and _inside(Path(model).resolve(), out):
        raise NNJitError(f"{given}: holds the model {model}; nnjit replaces the -o directory "
                         "as a whole", hint="choose another -o directory")  # fmt: skip
    if not out.exists():
        return set()
    if not any(out.iterdir()):
        return set()
    plan = _read_plan(out)
    if plan is None:
        what = "its plan.json is not nnjit's" if (out / "plan.json").exists() else "it has no plan.json"
        raise NNJitError(f"{given}: exists and is not an nnjit bundle ({what})",
                         hint="choose a new or empty -o directory")  # fmt: skip
    mine, foreign = _nnjit_files(out, plan)
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise NNJitError(
            f"{given}: the bundle there holds files nnjit did not write ({foreign[0]}{more})",
            hint="move them out or choose another -o directory; nnjit deletes only its own files",
        )
    return mine


def temp_sibling(out: Path) -> tuple[Path, list[Path]]:
    """A new empty directory beside `out` to write the bundle in, and the missing parents of
    `out` it created (deepest first), for `remove_empty` when the compile fails."""
    made = []
    p = out.absolute().parent
    while not p.exists():
        made.append(p)
        p = p.parent
    try:
        out.absolute().parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.absolute().parent)), made
    except OSError as e:
        remove_empty(made)
        raise NNJitError(f"{out}: cannot write a bundle there ({e.strerror})",
                         hint="choose another -o directory") from None  # fmt: skip


def remove_empty(dirs: list[Path]) -> None:
    for d in dirs:
        try:
            d.rmdir()
        except OSError:
            continue


def swap_in(tmp: Path, out_dir: str | os.PathLike, old_files: set[str]) -> None:
    """Puts the complete bundle `tmp` (a sibling of `out_dir`) in place of `out_dir`; deletes of
    the previous directory only `old_files` (and folders they leave empty)."""
    out = Path(out_dir).resolve()
    try:
        if not out.exists():
            os.rename(tmp, out)
            return
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.rename(out, old)  # (onto the empty directory mkdtemp made)
        try:
            os.rename(tmp, out)
        except OSError:
            os.rename(old, out)
            raise
    except OSError as e:
        raise NNJitError(f"{out_dir}: cannot put the bundle in place ({e.strerror})") from None
    for rel in sorted(old_files):
        (old / rel).unlink(missing_ok=True)
    dirs = sorted({old / p for rel in old_files for p in PurePosixPath(rel).parents if str(p) != "."},
                  key=lambda p: -len(p.parts))  # fmt: skip
    remove_empty([*dirs, old])
