"""PNG plots of a tuning run (matplotlib, imported here only: `pip install nnjit[bench]`).

* `progress.png`: the estimated model time (sum over kernel launches of the best time found so
  far, the default where nothing is measured yet) against seconds of tuning.
* `candidates.png`: one panel per tuned kernel (the most expensive first, at most 8): the
  speed of every measured candidate in GFLOP/s (or GB/s for memory-bound kinds) in the order
  measured, the default as a line, dropped candidates as red crosses at the bottom.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from nnjit.errors import NNJitError


def require_matplotlib() -> None:
    """Raises the plots' missing-dependency error now (a tuning run checks before it starts,
    so that `--plot` does not fail only after the budget is spent)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise NNJitError("--plot needs matplotlib, which is not installed",
                         hint="pip install 'nnjit[bench]' (./setup.sh installs it), or drop --plot") from None  # fmt: skip


def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise NNJitError("plots need matplotlib", hint="pip install 'nnjit[bench]'") from e
    return plt


def plot_report(report: Any, out_dir: str | Path) -> list[Path]:
    """Writes progress.png and candidates.png for a TuneReport; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [plot_progress(report, out / "progress.png"), plot_candidates(report, out / "candidates.png")]


def plot_progress(report: Any, path: Path) -> Path:
    plt = _plt()
    kernels = [k for k in report.kernels if k.default_time is not None]
    events = []
    for k in kernels:
        for t in k.trials:
            if t.time is not None:
                events.append((t.at, k.info.signature, t.time))
    events.sort()
    best = {k.info.signature: None for k in kernels}
    occ = {k.info.signature: k.info.occurrences for k in kernels}
    default = {k.info.signature: k.default_time for k in kernels}
    xs, ys = [0.0], [sum(default[s] * occ[s] for s in default) * 1e3]
    for at, sig, tm in events:
        if best[sig] is None or tm < best[sig]:
            best[sig] = tm
            xs.append(at)
            ys.append(sum((best[s] if best[s] is not None else default[s]) * occ[s] for s in default) * 1e3)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.step(xs + [max(report.seconds, xs[-1])], ys + [ys[-1]], where="post")
    ax.set_xlabel("tuning time (s)")
    ax.set_ylabel("estimated model time (ms)")
    ax.set_title(f"{report.backend} on {report.runner}: {report.search} search, {report.budget:g} s budget")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _rate(k: Any, seconds: float) -> tuple[float, str]:
    info = k.info
    if info.flops >= 4 * info.bytes:
        return info.flops / seconds / 1e9, "GFLOP/s"
    return info.bytes / seconds / 1e9, "GB/s"


def plot_candidates(report: Any, path: Path, limit: int = 8) -> Path:
    plt = _plt()
    tuned = [k for k in report.kernels if k.trials]
    tuned.sort(key=lambda k: -(k.default_time or 0) * k.info.occurrences)
    tuned = tuned[:limit]
    n = max(1, len(tuned))
    cols = 2 if n > 1 else 1
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 3 * rows), squeeze=False)
    for ax, k in zip(axes.flat, tuned):
        ok = [(i, t) for i, t in enumerate(k.trials) if t.time is not None and t.same_as is None]
        bad = [i for i, t in enumerate(k.trials) if t.reason is not None]
        unit = "GFLOP/s"
        if ok:
            vals = []
            for _, t in ok:
                v, unit = _rate(k, t.time)
                vals.append(v)
            ax.plot([i for i, _ in ok], vals, "o", ms=4, label="candidates")
            d, _ = _rate(k, k.default_time)
            ax.axhline(d, color="gray", ls="--", lw=1, label="default")
            if k.best_time:
                b, _ = _rate(k, k.best_time)
                ax.axhline(b, color="green", lw=1, label="pick")
        if bad:
            ax.plot(bad, [0] * len(bad), "x", color="red", label="dropped")
        ax.set_title(f"{k.info.describe()} x{k.info.occurrences}", fontsize=9)
        ax.set_xlabel("candidate (order measured)", fontsize=8)
        ax.set_ylabel(unit, fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(tuned):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


__all__ = ["plot_report", "plot_progress", "plot_candidates", "require_matplotlib"]
