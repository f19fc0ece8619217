"""The browser runtime (plain ES modules in this folder) and what bundles need of it.

`install_runtime(bundle_dir)` copies the runtime into a bundle (runtime/*.js and the demo page
index.html), so that any static server with the right headers can host it (`nnjit serve` does).
`write_reference(model, manifest, bundle_dir)` runs onnxruntime on the bundle's synthetic
inputs and stores inputs and outputs in reference.bin, for the demo page's comparison.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

WEB_DIR = Path(__file__).resolve().parent
RUNTIME_FILES = ("nnjit.js", "bundle.js", "webgpu.js", "wasm.js", "wasm-worker.js", "tuning.js")
PAGE_FILES = ("index.html", "demo.js", "demo.css")
REFERENCE_SEED = 0


def install_runtime(bundle_dir: str | os.PathLike) -> list[str]:
    """Copies the runtime to <bundle>/runtime/ and the demo page to <bundle>/; returns the
    relative paths written."""
    out = Path(bundle_dir)
    (out / "runtime").mkdir(exist_ok=True)
    written = []
    for name in RUNTIME_FILES:
        shutil.copyfile(WEB_DIR / name, out / "runtime" / name)
        written.append(f"runtime/{name}")
    for name in PAGE_FILES:
        dst = out / (name if name == "index.html" else f"runtime/{name}")
        shutil.copyfile(WEB_DIR / name, dst)
        written.append(str(dst.relative_to(out)))
    return written


def write_reference(model: Any, manifest: dict, bundle_dir: str | os.PathLike,
                    seed: int = REFERENCE_SEED) -> dict:  # fmt: skip
    """Runs onnxruntime on `random_feeds(manifest, seed)` and writes reference.bin (the inputs
    as the model takes them, the outputs float32); returns the plan's "reference" entry
    {"file", "seed", "entries": {"input:NAME" | "output:NAME": {offset, nbytes, dtype, shape}}}."""
    import numpy as np
    import onnxruntime as ort

    from nnjit.frontend.weights import save_weights
    from nnjit.runtime.session import random_feeds

    feeds = random_feeds(manifest, seed)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    src = model if isinstance(model, bytes) else str(model)
    sess = ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
    names = [o["name"] for o in manifest["model"]["outputs"]]
    outs = sess.run(names, feeds)
    arrays = {f"input:{k}": v for k, v in feeds.items()}
    for n, o in zip(names, outs):
        arrays[f"output:{n}"] = np.ascontiguousarray(o, dtype=np.float32 if o.dtype.kind == "f" else o.dtype)
    index = save_weights(arrays, Path(bundle_dir) / "reference.bin")
    return {"file": "reference.bin", "seed": seed, "entries": index}


__all__ = ["install_runtime", "write_reference", "WEB_DIR", "RUNTIME_FILES"]
