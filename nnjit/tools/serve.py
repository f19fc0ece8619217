"""`nnjit serve DIR [--port N]`: serves a bundle and the demo page on localhost.

Every response carries `Cross-Origin-Opener-Policy: same-origin` and
`Cross-Origin-Embedder-Policy: require-corp` (so the page is cross-origin isolated and Wasm
threads get a SharedArrayBuffer) and `Cross-Origin-Resource-Policy: same-origin`, with the MIME
types the browser insists on (application/wasm for streaming compilation, text/javascript for
module scripts). `runtime/<runtime file>` and the demo page (`index.html` of any folder with a
plan.json) are served from the nnjit package, so an older bundle's copies never shadow the
installed runtime (package_runtime=False serves the bundle's own copies); everything else
comes from the folder. Only loopback clients and loopback Host headers are answered (no DNS
rebinding), and only files that really lie in the folder (or the runtime's): a symbolic link
out of it is answered 404, a NUL byte in a path 400.

    from nnjit.tools.serve import make_server
    server = make_server("bundle/", port=0)            # port 0: any free port
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.url)
"""

from __future__ import annotations

import argparse
import http.server
import ipaddress
import os
import sys
import threading
import urllib.parse
from pathlib import Path

from nnjit.errors import NNJitError
from nnjit.web import PAGE_FILES, RUNTIME_FILES

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

MIME = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".wasm": "application/wasm",
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".css": "text/css",
    ".wgsl": "text/wgsl; charset=utf-8",
    ".wat": "text/plain; charset=utf-8",
    ".bin": "application/octet-stream",
    ".onnx": "application/octet-stream",
    ".md": "text/plain; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}

_LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}
_RUNTIME_NAMES = frozenset(RUNTIME_FILES + tuple(f for f in PAGE_FILES if f != "index.html"))


class BundleRequestHandler(http.server.SimpleHTTPRequestHandler):
    """Static files of one directory with isolation headers (when `isolated`) and nnjit MIME types."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME}
    isolated = True
    runtime_dir: Path | None = WEB_DIR
    quiet = True

    def translate_path(self, path: str) -> str:
        local = super().translate_path(path)
        if self.runtime_dir is None:
            return local
        parts = Path(os.path.relpath(local, self.directory)).parts
        if ".." in parts:
            return local
        # [.../]runtime/<runtime file> and a bundle's index.html: the installed runtime and
        # demo page, so a bundle compiled by an older nnjit still gets this runtime
        for n in (1, 2):  # (runtime/<file>, runtime/vendor/<file>)
            tail = "/".join(parts[-n:])
            if len(parts) > n and parts[-n - 1] == "runtime" and tail in _RUNTIME_NAMES:
                return str(self.runtime_dir / tail)
        last = parts[-1] if parts else ""
        folder = Path(local).parent if last == "index.html" else Path(local)
        if (last == "index.html" or os.path.isdir(local)) and (folder / "plan.json").is_file():
            return str(self.runtime_dir / "index.html")
        return local

    def _allowed(self) -> bool:
        try:
            client_ok = ipaddress.ip_address(self.client_address[0].split("%")[0]).is_loopback
        except ValueError:
            client_ok = False
        host = (self.headers.get("Host") or "").strip().lower()
        if host.startswith("["):
            hostname = host.split("]")[0] + "]"
        else:
            hostname = host.rsplit(":", 1)[0] if ":" in host else host
        return client_ok and hostname in _LOCAL_HOSTS

    def _contained(self, path: str) -> bool:
        """Whether `path`, links resolved, lies in the served folder or the runtime's."""
        real = os.path.realpath(path)
        roots = [self.directory] + ([str(self.runtime_dir)] if self.runtime_dir is not None else [])
        for root in roots:
            r = os.path.realpath(root)
            if real == r or real.startswith(r.rstrip(os.sep) + os.sep):
                return True
        return False

    def send_head(self):  # noqa: ANN201 - http.server's signature
        if not self._allowed():
            self.send_error(403, "nnjit serve answers localhost only")
            return None
        if "\0" in urllib.parse.unquote(self.path.split("?", 1)[0].split("#", 1)[0]):
            self.send_error(400, "NUL byte in the request path")
            return None
        if not self._contained(self.translate_path(self.path)):
            self.send_error(404, "File not found")  # (a link out of the served folder)
            return None
        return super().send_head()

    def end_headers(self) -> None:
        if self.isolated:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        if not self.quiet:
            super().log_message(format, *args)


class BundleServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{'127.0.0.1' if host in ('', '0.0.0.0') else host}:{port}/"


def make_server(
    directory: str | os.PathLike,
    port: int = 8000,
    *,
    host: str = "127.0.0.1",
    isolated: bool = True,
    package_runtime: bool = True,
    quiet: bool = True,
) -> BundleServer:
    """An HTTP server for `directory` on a loopback address (not started: call serve_forever)."""
    directory = Path(directory)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise NNJitError(f"port {port} is not a TCP port number", hint="choose a --port from 0 to 65535; 0 picks a free one")
    if not directory.is_dir():
        raise NNJitError(f"{directory}: no such directory", hint="serve a bundle made by `nnjit compile -o DIR`")
    try:
        if not ipaddress.ip_address(host).is_loopback:
            raise NNJitError(f"host {host} is not a loopback address", hint="nnjit serve serves localhost only")
    except ValueError:
        if host != "localhost":
            raise NNJitError(f"host {host} is not a loopback address", hint="nnjit serve serves localhost only") from None

    handler = type(
        "Handler",
        (BundleRequestHandler,),
        {"isolated": isolated, "runtime_dir": WEB_DIR if package_runtime else None, "quiet": quiet},
    )

    def factory(*args, **kwargs):
        return handler(*args, directory=str(directory.resolve()), **kwargs)

    try:
        return BundleServer((host, port), factory)
    except OSError as e:
        raise NNJitError(f"cannot listen on {host}:{port}: {e.strerror or e}", hint="choose another --port") from None


def serve(directory: str | os.PathLike, port: int = 8000, *, isolated: bool = True, quiet: bool = False) -> int:
    """Serves until Ctrl-C (then returns 0)."""
    d = Path(directory)
    if not (d / "plan.json").is_file():
        raise NNJitError(f"{d}: not an nnjit bundle (no plan.json)", hint="make one with `nnjit compile -o DIR`")
    server = make_server(d, port, isolated=isolated, quiet=quiet)
    note = "" if isolated else " (not cross-origin isolated: Wasm runs on one thread)"
    print(f"serving {d} at {server.url} (Ctrl-C stops){note}", flush=True)
    t = threading.Thread(target=server.serve_forever, name="nnjit-serve", daemon=True)
    t.start()
    try:
        while t.is_alive():
            t.join(0.5)
    except KeyboardInterrupt:
        print("stopping", flush=True)
    finally:
        server.shutdown()
        server.server_close()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="nnjit serve", description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--no-isolation", action="store_true")
    a = ap.parse_args(argv)
    return serve(a.dir, a.port, isolated=not a.no_isolation)


if __name__ == "__main__":
    sys.exit(main())
