"""Turns exceptions from user input into one-line messages and exit codes for the tools."""

from __future__ import annotations

import sys
from collections.abc import Callable

from xdsl.utils.exceptions import ArgSpecParseError

from nnjit.errors import NNJitError


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return lines[0] if lines else "unknown error"


def _locate(op_text: str, input_name: str) -> str:
    """`file:line` of the op printed as `op_text` (generic form) in the input file, if found."""
    import os
    import re

    m = re.match(r'(%[\w.$-]+(?::\d+)?(?:, %[\w.$-]+)*) = "([\w.]+)"', op_text)
    if m is None or not os.path.isfile(input_name):
        return input_name
    results, opname = m.group(1), m.group(2)
    try:
        text = open(input_name, encoding="utf-8", errors="replace").read().splitlines()
    except OSError:
        return input_name
    for no, line in enumerate(text, 1):
        stripped = line.strip()
        if stripped.startswith(results + " =") and opname in stripped:
            return f"{input_name}:{no}"
    return input_name


def describe(exc: BaseException, input_name: str = "<input>") -> str | None:
    """A one-line description of a user error, or None for an internal error (a bug)."""
    from xdsl.utils.exceptions import ArgSpecParseError, DiagnosticException, ParseError

    if isinstance(exc, NNJitError):
        return exc.one_line()
    if isinstance(exc, ParseError):
        loc = exc.span.get_location()
        return f"{input_name}:{loc.line}:{loc.col}: {exc.msg}"
    if isinstance(exc, ArgSpecParseError):
        lines = [ln for ln in str(exc).splitlines() if ln.strip() and not set(ln.strip()) <= set("^")]
        return f"invalid pass pipeline: {lines[-1].strip() if lines else exc}"
    if isinstance(exc, DiagnosticException):
        text = "\n".join([*getattr(exc, "__notes__", []), str(exc)])
        # xDSL puts the offending op's text around the message; keep the message, name the op.
        msg = next((ln.strip(" ^-\n") for ln in text.splitlines() if ln.strip(" ^-")), text)
        lines = [ln for ln in text.splitlines() if ln.strip()]
        for i, ln in enumerate(lines):
            if set(ln.strip()) <= set("^-") and i + 1 < len(lines):
                msg = str(exc).strip().splitlines()[0] if str(exc).strip() else lines[i + 1].strip()
                op_line = lines[i - 1].strip() if i > 0 else ""
                where = _locate(op_line, input_name)
                return f"{where}: invalid IR: {msg.removeprefix('| ')}"
        return f"{input_name}: invalid IR: {msg}"
    if isinstance(exc, RecursionError):
        return (f"{input_name}: nested too deeply for nnjit (Python's recursion limit) "
                "(split the chain or nesting into smaller parts)")  # fmt: skip
    if isinstance(exc, UnicodeDecodeError):
        return f"{input_name}: not UTF-8 text (byte {exc.start}: {exc.reason})"
    if isinstance(exc, OSError) and exc.filename is not None:  # (a path the user gave, mostly)
        name = str(exc.filename)
        name = name if len(name) <= 200 else name[:100] + "..." + name[-40:]
        return f"{name}: {(exc.strerror or str(exc)).lower()}"
    return None


def write_atomically(path: str, text: str) -> None:
    """Writes a whole text file or nothing (a temporary file beside it, then renamed)."""
    import os

    if not path or "\0" in path:
        raise NNJitError(f"{path!r} is not a usable output path", hint="give a file name")
    if os.path.isdir(path):
        raise NNJitError(f"{path}: is a directory", hint="give a file name")
    if os.path.exists(path) and not os.path.isfile(path):
        # a device or FIFO (/dev/null, /dev/stdout): written in place; renaming a file over it
        # would replace the device node itself
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return
    target = os.path.realpath(path)  # (through a symbolic link: the file it names is replaced)
    head, tail = os.path.split(target)
    tmp = os.path.join(head, f".{tail}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, target)
    except OSError as e:
        raise NNJitError(f"{path}: cannot write it ({e.strerror or e})",
                         hint="check that its folder exists and is writable") from None  # fmt: skip
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def printable(text: str) -> str:
    """`text` with control characters escaped (names from a model or a path can hold NUL,
    newlines or terminal escapes; the message stays one line and prints as it reads)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def run_tool(fn: Callable[[], int | None], input_name: Callable[[], str] = lambda: "<input>") -> int:
    """Runs a tool body: user errors become `error: ...` on stderr and exit status 1."""
    try:
        return fn() or 0
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except (Exception, ArgSpecParseError) as e:  # noqa: BLE001 - classify, re-raise bugs
        msg = describe(e, input_name())
        if msg is None:
            raise
        print(f"error: {printable(msg)}", file=sys.stderr)
        return 1
