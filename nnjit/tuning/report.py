"""What a tuning run reports: a `Trial` per measured (or dropped) point, a `KernelResult`
per kernel and its record (`kernel_record`, the dictionary a RecordStore keeps), the
`TuneReport` of a whole model with the table `nnjit tune` prints, and the progress bar.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnjit.tuning.kernels import KernelInfo, pass_options
from nnjit.tuning.records import RecordStore
from nnjit.tuning.space import DeviceInfo, replay_line


def relative_error(got: np.ndarray, ref: np.ndarray) -> float:
    """max|got - ref| / max|ref| over the finite entries of ref; inf when the non-finite
    entries (NaN poison included) are not in the same places."""
    g = np.asarray(got, dtype=np.float64).reshape(-1)
    r = np.asarray(ref, dtype=np.float64).reshape(-1)
    if g.shape != r.shape:
        return math.inf
    bad_r, bad_g = ~np.isfinite(r), ~np.isfinite(g)
    if np.any(bad_r != bad_g):
        return math.inf
    ok = ~bad_r
    if not np.any(ok):
        return 0.0
    diff = float(np.max(np.abs(g[ok] - r[ok])))
    scale = float(np.max(np.abs(r[ok])))
    if scale == 0.0:
        return 0.0 if diff == 0.0 else math.inf
    return diff / scale


@dataclass
class Trial:
    """One measured (or dropped) point."""

    index: int
    options: dict
    time: float | None  # seconds (the runner's score), None when dropped
    median: float | None = None
    reason: str | None = None  # why it was dropped
    message: str = ""
    at: float = 0.0  # seconds since the tuning run started
    same_as: int | None = None  # index of an earlier point with identical code


@dataclass
class KernelResult:
    info: KernelInfo
    status: str = "pending"  # tuned | cached | skipped | failed | partial
    default_time: float | None = None
    best_time: float | None = None
    best_index: int = 0
    best_options: dict = field(default_factory=dict)
    best_effective: dict = field(default_factory=dict)
    points: int = 0
    trials: list[Trial] = field(default_factory=list)
    complete: bool = False
    seconds: float = 0.0
    message: str = ""
    record: dict | None = None

    @property
    def speedup(self) -> float | None:
        if self.default_time and self.best_time:
            return self.default_time / self.best_time
        return None

    @property
    def dropped(self) -> list[Trial]:
        return [t for t in self.trials if t.reason is not None]


@dataclass
class TuneReport:
    backend: str
    runner: str
    device: DeviceInfo
    kernels: list[KernelResult]
    seconds: float
    """Wall time of the whole run (tune_model: the model's import included)."""
    budget: float
    store: RecordStore | None
    search: str
    import_seconds: float = 0.0

    def model_times(self) -> tuple[float, float]:
        """Estimated model time (sum over launches) with default and with picked schedules,
        over the kernels that have both times."""
        d = b = 0.0
        for k in self.kernels:
            if k.default_time is not None:
                d += k.default_time * k.info.occurrences
                b += (k.best_time or k.default_time) * k.info.occurrences
        return d, b

    def table(self) -> str:
        """The per-kernel table printed by `nnjit tune`."""
        rows = [("kernel", "x", "status", "default ms", "best ms", "speedup", "tried", "s",
                 "replay")]  # fmt: skip
        for k in self.kernels:
            rec = k.record or {}
            rows.append((
                k.info.describe(), str(k.info.occurrences), k.status,
                f"{k.default_time * 1e3:.3f}" if k.default_time else "-",
                f"{k.best_time * 1e3:.3f}" if k.best_time else "-",
                f"{k.speedup:.2f}x" if k.speedup else "-",
                f"{len([t for t in k.trials if t.reason is None])}/{k.points}" if k.points else "-",
                f"{k.seconds:.1f}" if k.seconds else "-",
                rec.get("replay", "") if rec.get("options") else "(default)",
            ))  # fmt: skip
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
        lines = []
        for r in rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + "  " + r[-1])
        for k in self.kernels:  # why a kernel's search ended early or never ran
            if k.status in ("partial", "skipped", "failed") and k.message:
                lines.append(f"  {k.info.describe()} x{k.info.occurrences} {k.status}: {k.message}")
        d, b = self.model_times()
        if d:
            lines.append(f"estimated model time: {d * 1e3:.2f} ms default -> {b * 1e3:.2f} ms "
                         f"tuned ({d / b:.2f}x); tuning took {self.seconds:.1f} s (import "
                         f"{self.import_seconds:.1f} s included) of a {self.budget:g} s budget")  # fmt: skip
        return "\n".join(lines)


class Progress:
    """A one-line progress bar on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self, budget: float, enabled: bool = True, stream=None):
        self.budget = budget
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.t0 = time.monotonic()
        self._last = 0.0

    def update(self, text: str, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and not self.tty and now - self._last < 2.0:
            return
        self._last = now
        el = now - self.t0
        frac = min(1.0, el / self.budget) if self.budget > 0 else 1.0
        bar = "#" * int(frac * 20) + "." * (20 - int(frac * 20))
        line = f"[{bar}] {el:5.1f}/{self.budget:g} s  {text}"
        if self.tty:
            self.stream.write("\r" + line[:150].ljust(150))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def kernel_record(r: KernelResult, search: str, kernel_file: str | None) -> dict:
    """The record of a kernel's result (records.py): its pick, times, dropped points, status
    and replay line (`kernel_file`: where the store keeps the kernel's module)."""
    k = r.info
    eff = r.best_effective or (k.default or {})
    rec = {
        "signature": k.signature, "kind": k.kind, "target": k.target,
        "geometry": _jsonable(dict(k.geometry)), "describe": k.describe(), "options": _jsonable(pass_options(r.best_options)),
        "effective": _jsonable(eff), "default_time": r.default_time,
        "best_time": r.best_time, "speedup": r.speedup,
        "measured": len([t for t in r.trials if t.reason is None and t.same_as is None]),
        "dropped": [{"options": _jsonable(pass_options(t.options)), "reason": t.reason,
                     "message": t.message[:200]} for t in r.dropped],
        "points": r.points, "complete": r.complete, "status": r.status,
        "message": r.message, "search": search, "seconds": round(r.seconds, 3),
        "time": time.time(),
    }  # fmt: skip
    rec["replay"] = replay_line(rec, kernel_file)
    return rec


def _jsonable(d: Any) -> Any:
    if isinstance(d, dict):
        return {str(k): _jsonable(v) for k, v in d.items() if not str(k).startswith("@")}
    if isinstance(d, (list, tuple)):
        return [_jsonable(v) for v in d]
    if isinstance(d, (np.integer,)):
        return int(d)
    if isinstance(d, (np.floating,)):
        return float(d)
    return d


__all__ = ["relative_error", "Trial", "KernelResult", "TuneReport", "Progress", "kernel_record"]
