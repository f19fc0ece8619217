"""What makes a directory an nnjit bundle, and how bundles are replaced and read safely.

A bundle is plan.json (format PLAN_FORMAT, version PLAN_VERSION), the files its "files" table
lists with their SHA-256 (weights.bin, kernels/*, reference.bin), and the browser runtime and
demo page (runtime/*, index.html), which the table does not list. These are the only files
nnjit writes, and so the only ones it ever deletes:

- `check_output_dir(out, model)`: `nnjit compile -o out` may replace `out` only when it is
  missing, empty, or an nnjit bundle that holds nothing but files nnjit writes; anything else
  (another program's plan.json, a file of the user's, the current directory, the model's own
  folder) is refused with one line.
- `swap_in(tmp, out, old_files)`: moves a complete bundle from a temporary sibling into place,
  then deletes of the old bundle exactly the files `check_output_dir` listed.
- `bundle_file(root, plan, rel, verify)`: the path of a file a plan names, refused when the
  name leads out of the bundle or, when verifying, is not in the plan's hashed "files".
"""

from __future__ import annotations

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
    return plan


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
    import json

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
