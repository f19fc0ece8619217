"""Command-line option types and limits shared by nnjit, nnjit-opt and nnjit-translate.

Each type function turns an option's text into a value or raises argparse.ArgumentTypeError
with the reason; `one_line_errors` makes a parser report that (and any other usage error) as one
`error: PROG: ...` line with exit status 2, instead of argparse's usage block.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NoReturn

from nnjit.errors import NNJitError

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "default.onnx"
"""The small BERT-like model embedded in the package: MODEL's default."""


def parse_shapes(items: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """--shape NAME=DIMS options (e.g. input_ids=1x128) as {name: dims}."""
    shapes: dict[str, tuple[int, ...]] = {}
    for item in items:
        name, sep, dims = item.rpartition("=")
        try:
            if not sep or not name:
                raise ValueError
            if name in shapes:
                raise NNJitError(f"--shape gives input '{name}' twice", hint="give each input once")
            shapes[name] = tuple(int(d) for d in dims.lower().split("x"))
            if any(d <= 0 for d in shapes[name]):
                raise ValueError
        except ValueError:
            raise NNJitError(
                f"bad --shape '{item}'", hint="write NAME=DIMS with positive dims, e.g. input_ids=1x128"
            ) from None
    return shapes


def model_path(arg: str | None) -> Path:
    """A MODEL argument: an existing path, or the embedded default model when none is given."""
    if arg is None:
        if not DEFAULT_MODEL.is_file():
            raise NNJitError(f"{DEFAULT_MODEL}: the embedded default model is missing",
                             hint="reinstall nnjit")  # fmt: skip
        return DEFAULT_MODEL
    p = Path(arg)
    if not p.exists():
        raise NNJitError(f"{p}: no such file or directory")
    return p


def int_in(lo: int, hi: int | None = None, what: str = "an integer") -> Callable[[str], int]:
    """An integer in [lo, hi] (hi None: no upper bound)."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not {what}") from None
        if value < lo or (hi is not None and value > hi):
            bound = f"from {lo} to {hi}" if hi is not None else f">= {lo}"
            raise argparse.ArgumentTypeError(f"{value} is out of range (write {what} {bound})")
        return value

    parse.__name__ = "integer"
    return parse


def int_list(lo: int, hi: int, what: str = "sizes") -> Callable[[str], list[int]]:
    """A comma-separated list of integers in [lo, hi], e.g. 16,128,512."""
    one = int_in(lo, hi, "a size")

    def parse(text: str) -> list[int]:
        items = [t for t in text.split(",") if t.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"'{text}' lists no {what} (write e.g. 16,128)")
        return sorted({one(t) for t in items})

    parse.__name__ = "list"
    return parse


def float_in(lo: float, hi: float | None = None, *, open_lo: bool = False) -> Callable[[str], float]:
    """A finite number in [lo, hi] (or (lo, hi] with open_lo)."""

    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
        low_ok = value > lo if open_lo else value >= lo
        if not math.isfinite(value) or not low_ok or (hi is not None and value > hi):
            bound = f"{'>' if open_lo else '>='} {lo:g}" + (f" and <= {hi:g}" if hi is not None else "")
            raise argparse.ArgumentTypeError(f"'{text}' is out of range (write a number {bound})")
        return value

    parse.__name__ = "number"
    return parse


def name_list(choices: Iterable[str]) -> Callable[[str], list[str]]:
    """A comma-separated, non-empty list of names from `choices` (no duplicates kept)."""
    known = list(choices)

    def parse(text: str) -> list[str]:
        names = [n.strip() for n in text.split(",")]
        if not text.strip() or any(not n for n in names):
            raise argparse.ArgumentTypeError(f"'{text}' has an empty name (write e.g. {','.join(known)})")
        for n in names:
            if n not in known:
                raise argparse.ArgumentTypeError(f"unknown name '{n}' (choose from {', '.join(known)})")
        return list(dict.fromkeys(names))

    parse.__name__ = "list"
    return parse


def one_of(choices: Iterable[str]) -> Callable[[str], str]:
    """One name from `choices`."""
    known = list(choices)

    def parse(text: str) -> str:
        if text.strip() not in known:
            raise argparse.ArgumentTypeError(f"unknown name '{text}' (choose from {', '.join(known)})")
        return text.strip()

    parse.__name__ = "name"
    return parse


def name(text: str) -> str:
    """A name: not empty, no spaces or NUL (checked against the known names later, when
    plugins have registered theirs)."""
    if not text.strip() or any(c.isspace() or c == "\0" for c in text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a name")
    return text


def path_text(text: str) -> str:
    """A file or directory path: not empty, no NUL byte."""
    if not text or "\0" in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a usable path")
    return text


# how many threads a command may ask for (a typo like 100000 would start that many)
MAX_THREADS = 256
# runs a command may be asked to time
MAX_REPEAT = 100_000

threads = int_in(0, MAX_THREADS, "a thread count (0: all cores)")
repeat = int_in(1, MAX_REPEAT, "a number of runs")
seed = int_in(0, 2**63 - 1, "a seed")
port = int_in(0, 65535, "a TCP port (0: any free port)")
tolerance = float_in(0.0)
seconds = float_in(0.0, open_lo=True)


def one_line_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Usage errors of `parser` (and of sub-parsers made from it later) as one line, exit 2."""

    def error(message: str) -> NoReturn:
        print(f"error: {parser.prog}: {message} (see {parser.prog} --help)", file=sys.stderr)
        sys.exit(2)

    parser.error = error  # type: ignore[method-assign]
    return parser


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line usage errors (sub-parsers inherit the class)."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def size_text(n: int) -> str:
    """A byte count for people: 64.0 GiB, 12.5 MiB, 100 bytes."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.1f} {unit}"
    return f"{n} bytes"


def regular_file(path: str, what: str = "a file", max_bytes: int | None = None,
                 env: str | None = None) -> None:  # fmt: skip
    """Raises NNJitError unless `path` names a readable regular file of at most max_bytes
    (a device, FIFO or directory would block or read without end). `what` is said with its
    article ("an IR file")."""
    if "\0" in path:
        raise NNJitError(f"{path!r}: a path with a NUL byte")
    if not os.path.exists(path):
        kind = "a broken symbolic link" if os.path.islink(path) else "no such file"
        raise NNJitError(f"{path}: {kind}", hint=f"check the path of {what}")
    if os.path.isdir(path):
        raise NNJitError(f"{path}: is a directory", hint=f"give {what}")
    if not os.path.isfile(path):
        raise NNJitError(f"{path}: not a regular file (a device or pipe)", hint=f"give {what}")
    size = os.path.getsize(path)
    if max_bytes is not None and size > max_bytes:
        raise_hint = f"; raise the limit with {env}=BYTES" if env else ""
        raise NNJitError(f"{path}: {size_text(size)}, over the {size_text(max_bytes)} limit for {what}",
                         hint=f"check the path{raise_hint}")  # fmt: skip
    if not os.access(path, os.R_OK):
        raise NNJitError(f"{path}: permission denied", hint=f"make it readable, or give another {what}")


# the largest IR file the tools read (NNJIT_MAX_IR_BYTES raises it)
MAX_IR_BYTES = 1 << 30


def check_ir_file(path: str, what: str = "an IR file") -> None:
    """Raises NNJitError unless `path` is a regular file of IR text under the size limit."""
    regular_file(path, what, env_int("NNJIT_MAX_IR_BYTES", MAX_IR_BYTES), "NNJIT_MAX_IR_BYTES")
    if path.endswith(".onnx"):
        raise NNJitError(f"{path}: an ONNX model, not IR text",
                         hint=f"import it first: nnjit import {path} -o model.mlir")  # fmt: skip


def read_ir_file(path: str, what: str = "an IR file") -> str:
    """The text of an IR file (check_ir_file first; bad UTF-8 is one error line)."""
    check_ir_file(path, what)
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError as e:
        raise NNJitError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason})") from None


def read_stdin_ir() -> bytes:
    """Standard input, up to the IR size limit (`nnjit-opt < /dev/zero` would read forever)."""
    limit = env_int("NNJIT_MAX_IR_BYTES", MAX_IR_BYTES)
    data = sys.stdin.buffer.read(limit + 1)
    if len(data) > limit:
        raise NNJitError(f"<stdin>: more than {size_text(limit)} of IR",
                         hint="check the input; raise the limit with NNJIT_MAX_IR_BYTES=BYTES")  # fmt: skip
    return data


def env_int(name: str, default: int) -> int:
    """A positive integer limit from environment variable `name` (default when unset)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise NNJitError(f"${name}={text!r} is not an integer", hint="unset it or give a number") from None
    if value <= 0:
        raise NNJitError(f"${name}={value} must be positive", hint="unset it or give a larger number")
    return value
