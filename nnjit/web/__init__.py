"""The browser runtime (plain ES modules in this folder) and what bundles need of it.

`install_runtime(bundle_dir)` copies the runtime into a bundle (runtime/*.js and the demo page
index.html), so that any static server with the right headers can host it (`nnjit serve` does).
`nnjit.web.reference.write_reference(model, manifest, bundle_dir)` runs onnxruntime on the
bundle's synthetic inputs and stores inputs and outputs in reference.bin, for the demo page's
comparison (a module of its own: it runs models, which this constant list does not).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

WEB_DIR = Path(__file__).resolve().parent
RUNTIME_FILES = ("nnjit.js", "bundle.js", "cache.js", "compact.js", "webgpu.js", "wasm.js", "wasm-worker.js", "tuning.js",
                 "variants.js", "generate.js", "text.js", "vendor/tokenizers.mjs", "vendor/LICENSE-tokenizers", "vendor/README.md")
"""Paths under this folder and a bundle's runtime/ (vendor/: libraries copied as published)."""
PAGE_FILES = ("index.html", "demo.js", "demo-generate.js", "demo.css")
REFERENCE_SEED = 0


def install_runtime(bundle_dir: str | os.PathLike) -> list[str]:
    """Copies the runtime to <bundle>/runtime/ and the demo page to <bundle>/; returns the
    relative paths written."""
    out = Path(bundle_dir)
    (out / "runtime" / "vendor").mkdir(parents=True, exist_ok=True)
    written = []
    for name in RUNTIME_FILES:
        shutil.copyfile(WEB_DIR / name, out / "runtime" / name)
        written.append(f"runtime/{name}")
    for name in PAGE_FILES:
        dst = out / (name if name == "index.html" else f"runtime/{name}")
        shutil.copyfile(WEB_DIR / name, dst)
        written.append(str(dst.relative_to(out)))
    return written


__all__ = ["install_runtime", "WEB_DIR", "RUNTIME_FILES", "PAGE_FILES", "REFERENCE_SEED"]
