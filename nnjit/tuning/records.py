"""Tuning records: what the tuner picked, per device and kernel signature, as JSON on disk.

Directory: $NNJIT_CACHE_DIR/tuning if set, else ~/.cache/nnjit/tuning. One file per device,
`<runner>-<device key>.json`, where the key hashes the device fingerprint (WebGPU: adapter
name, vendor, architecture, driver, backend; Wasm: CPU model, cores, thread count, engine and
its version, relaxed SIMD):

    {"format": "nnjit-tuning", "version": 1, "device": {...fingerprint...},
     "records": {"<signature>": {
        "signature", "kind", "target", "describe", "options" (the pick: pass options, {} =
        default), "effective" (its effective schedule), "default_time", "best_time",
        "speedup", "measured", "dropped", "points", "complete", "status", "search", "replay",
        "time" (unix seconds)}}}

The standalone module of each tuned kernel is kept beside it (kernels/<signature>.mlir) so
the record's `replay` line runs as printed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from nnjit.errors import NNJitError

FORMAT = "nnjit-tuning"
VERSION = 1


def cache_dir() -> Path:
    """Where records live: $NNJIT_CACHE_DIR/tuning, else ~/.cache/nnjit/tuning."""
    base = os.environ.get("NNJIT_CACHE_DIR")
    root = Path(base) if base else Path.home() / ".cache" / "nnjit"
    return root / "tuning"


def device_key(fingerprint: Mapping[str, Any]) -> str:
    blob = json.dumps(dict(fingerprint), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class RecordStore:
    """The records of one device (loaded from, and saved to, one JSON file)."""

    def __init__(self, fingerprint: Mapping[str, Any], directory: str | os.PathLike | None = None):
        self.fingerprint = dict(fingerprint)
        self.directory = Path(directory) if directory is not None else cache_dir()
        runner = str(self.fingerprint.get("runner", "device"))
        self.path = self.directory / f"{runner}-{device_key(self.fingerprint)}.json"
        self.records: dict[str, dict] = {}
        self.load()

    def load(self) -> None:
        if self.path.is_file():
            try:
                data = json.loads(self.path.read_text())
            except (OSError, json.JSONDecodeError) as e:
                raise NNJitError(f"{self.path}: unreadable tuning records ({e})",
                                 hint="delete the file to start over") from None  # fmt: skip
            if data.get("format") == FORMAT:
                self.records = dict(data.get("records", {}))

    def get(self, signature: str) -> dict | None:
        return self.records.get(signature)

    def put(self, record: dict, module_text: str | None = None) -> None:
        self.records[record["signature"]] = record
        if module_text is not None:
            kdir = self.directory / "kernels"
            kdir.mkdir(parents=True, exist_ok=True)
            (kdir / f"{record['signature']}.mlir").write_text(module_text)

    def kernel_file(self, signature: str) -> Path:
        return self.directory / "kernels" / f"{signature}.mlir"

    def save(self) -> Path:
        """Writes the file atomically, merged with records another process saved meanwhile."""
        self.directory.mkdir(parents=True, exist_ok=True)
        merged: dict[str, dict] = {}
        if self.path.is_file():
            try:
                merged = dict(json.loads(self.path.read_text()).get("records", {}))
            except (OSError, json.JSONDecodeError):
                merged = {}
        merged.update(self.records)
        self.records = merged
        data = {"format": FORMAT, "version": VERSION, "device": self.fingerprint,
                "saved": time.time(), "records": merged}  # fmt: skip
        fd, tmp = tempfile.mkstemp(prefix=".records.", dir=self.directory)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, default=str)
        os.replace(tmp, self.path)
        return self.path

    def picks(self) -> dict[str, dict]:
        """signature -> the picked options (only picks that differ from the default)."""
        return {s: r["options"] for s, r in self.records.items() if r.get("options")}


MAX_RECORDS_BYTES = 1 << 28
"""A records file larger than this is not one `nnjit tune` wrote (it is read whole)."""


def picks_from(source: Any, where: str = "tuning records", near: list[dict] | None = None) -> dict[str, dict]:
    """signature -> options from: a RecordStore, a {signature: options} dict, a records file's
    content, a path to a records file or directory (every file in it), or a list of those.
    Anything else, or options that are not a dict, is an NNJitError naming `where` (the file).
    `near`: gets every record that names its kind, target and geometry (records of `nnjit
    tune`), for picks by the nearest measured shape (tuning/apply.py nearest_picks)."""
    if source is None:
        return {}
    if isinstance(source, RecordStore):
        _note_near(source.records.values(), near)
        return source.picks()
    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        if p.is_dir():
            out: dict[str, dict] = {}
            for f in sorted(p.glob("*.json")):
                out.update(picks_from(f))
            return out
        if p.exists() and not p.is_file():
            raise NNJitError(f"{p}: not a regular file (a device or pipe)",
                             hint="give a records file or directory written by `nnjit tune`")  # fmt: skip
        if not p.is_file():
            raise NNJitError(f"{p}: no such tuning records file", hint="run `nnjit tune` first")
        if p.stat().st_size > MAX_RECORDS_BYTES:
            raise NNJitError(f"{p}: {p.stat().st_size} bytes, over {MAX_RECORDS_BYTES} for a records "
                             "file", hint="give a file written by `nnjit tune`")  # fmt: skip
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
            raise NNJitError(f"{p}: not a tuning records file (not JSON: {e})",
                             hint="give a file written by `nnjit tune`") from None  # fmt: skip
        return picks_from(data, str(p), near)
    if isinstance(source, Mapping):
        if source.get("format") == FORMAT:
            records = source.get("records", {})
            if not isinstance(records, Mapping) or not all(isinstance(r, Mapping) for r in records.values()):
                raise NNJitError(f"{where}: 'records' is not a map of signature to record",
                                 hint="give a file written by `nnjit tune`")  # fmt: skip
            pairs = {s: r.get("options") for s, r in records.items() if r.get("options")}
            _note_near(records.values(), near)
        else:
            pairs = {str(k): v for k, v in source.items() if v}
        for sig, opts in pairs.items():
            if not isinstance(opts, Mapping):
                raise NNJitError(f"{where}: the options of '{sig[:60]}' are not a map of option "
                                 f"to value ({type(opts).__name__})",
                                 hint="give a file written by `nnjit tune`")  # fmt: skip
        return {s: dict(o) for s, o in pairs.items()}
    if isinstance(source, Iterable) and not isinstance(source, (str, bytes)):
        out = {}
        for s in source:
            if not isinstance(s, (RecordStore, str, os.PathLike, Mapping)):
                raise NNJitError(f"{where}: not tuning records (a list holding a "
                                 f"{type(s).__name__})", hint="give a file written by `nnjit tune`")  # fmt: skip
            out.update(picks_from(s, where, near))
        return out
    raise NNJitError(f"{where}: not tuning records (a {type(source).__name__})",
                     hint="give a records file or directory written by `nnjit tune`")  # fmt: skip


def _note_near(records: Iterable[Mapping], near: list[dict] | None) -> None:
    if near is None:
        return
    for r in records:
        if (isinstance(r.get("geometry"), Mapping) and isinstance(r.get("kind"), str) and isinstance(r.get("target"), str)
                and isinstance(r.get("options"), Mapping) and r["options"]):  # fmt: skip
            near.append({"kind": r["kind"], "target": r["target"], "geometry": dict(r["geometry"]),
                         "options": dict(r["options"])})  # fmt: skip


__all__ = ["RecordStore", "cache_dir", "device_key", "picks_from", "FORMAT"]
