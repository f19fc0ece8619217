"""Serving the benchmark page and driving headless Chromium (Python playwright).

`serve(root)` starts a threaded HTTP server on 127.0.0.1 (a free port) that sends every file
under `root` with `Cross-Origin-Opener-Policy: same-origin` and
`Cross-Origin-Embedder-Policy: require-corp` (so the page is cross-origin isolated:
SharedArrayBuffer, Wasm threads, 5 us timers). `chromium()` launches the system Chromium
(never a downloaded one) with a fresh profile directory.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

CHROMIUM = "/usr/lib/chromium/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic",
]  # fmt: skip


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm",
        ".json": "application/json", ".onnx": "application/octet-stream",
    }  # fmt: skip

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *args):  # quiet
        pass


@contextlib.contextmanager
def serve(root: Path) -> Iterator[str]:
    """Serves `root`; yields the base URL (ending in '/')."""
    handler = functools.partial(_Handler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextlib.contextmanager
def chromium(extra_flags: list[str] | None = None) -> Iterator[object]:
    """A headless Chromium browser (playwright Browser) with a fresh --user-data-dir."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install -y chromium")
    profile = tempfile.mkdtemp(prefix="nnjit-bench-profile-")
    try:
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True,
                # playwright adds --headless itself (headless=True); the rest of FLAGS as given
                args=[f for f in FLAGS if f != "--headless"] + (extra_flags or []),
            )  # fmt: skip
            ctx.nnjit_profile = profile  # CpuMeter tells this browser's processes by it
            try:
                yield ctx
            finally:
                ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def browser_version(ctx) -> str:
    b = getattr(ctx, "browser", None)
    return b.version if b is not None else ""


def open_page(ctx, url: str, log: list[str] | None = None):
    """Opens `url` and waits until the page's module set window.benchReady."""
    page = ctx.new_page()
    if log is not None:
        page.on("console", lambda m: log.append(f"[{m.type}] {m.text}"))
        page.on("pageerror", lambda e: log.append(f"[pageerror] {e}"))
    page.goto(url)
    page.wait_for_function("window.benchReady === true", timeout=60_000)
    if not page.evaluate("crossOriginIsolated"):
        raise RuntimeError("the page is not cross-origin isolated (COOP/COEP headers missing?)")
    return page


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts), idle


def busy_fraction(seconds: float = 0.5) -> float:
    """Fraction of all CPUs busy over `seconds` (the benchmark itself idle meanwhile)."""
    import time

    t0, i0 = _cpu_times()
    time.sleep(seconds)
    t1, i1 = _cpu_times()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def wait_quiet(threshold: float = 0.1, max_wait: float = 120.0, window: float = 0.5) -> float:
    """Waits (up to max_wait s) until other processes leave the CPUs idle (busy fraction <
    threshold over `window` s); returns the last busy fraction seen. This machine is shared:
    a benchmark run while someone's tests use a core measures that, not the kernels."""
    import time

    if max_wait <= 0:
        return 0.0
    end = time.monotonic() + max_wait
    b = busy_fraction(window)
    while b >= threshold and time.monotonic() < end:
        b = busy_fraction(window)
    return b


class CpuMeter:
    """CPU time of the machine and of our browser (processes whose command line names our
    profile directory), from /proc: `others` over an interval is the CPU other processes
    used, as a fraction of all CPUs. A 2-thread measurement cannot see contention in the
    machine's busy fraction (our two threads already fill it): this can."""

    def __init__(self, profile: str):
        self.profile = profile
        self.tick = os.sysconf("SC_CLK_TCK")

    def _ours(self) -> int:
        total = 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if self.profile.encode() not in f.read():
                        continue
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
            except (OSError, IndexError, ValueError):
                continue
        return total

    def snapshot(self) -> tuple[int, int, int]:
        total, idle = _cpu_times()
        return total, idle, self._ours()

    @staticmethod
    def others(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
        """Fraction of all CPUs that other processes used between snapshots a and b."""
        dt = max(1, b[0] - a[0])
        busy = dt - (b[1] - a[1])
        return max(0.0, (busy - (b[2] - a[2])) / dt)
