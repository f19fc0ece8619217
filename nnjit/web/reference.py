"""reference.bin: onnxruntime's outputs on a bundle's synthetic inputs, shipped in the bundle for
the demo page's comparison (`nnjit compile --reference-outputs`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from nnjit.frontend.weights import save_weights
from nnjit.runtime.session import random_feeds
from nnjit.web import REFERENCE_SEED


def write_reference(model: Any, manifest: dict, bundle_dir: str | os.PathLike,
                    seed: int = REFERENCE_SEED) -> dict:  # fmt: skip
    """Runs onnxruntime on `random_feeds(manifest, seed)` and writes reference.bin (the inputs
    as the model takes them, the outputs float32); returns the plan's "reference" entry
    {"file", "seed", "entries": {"input:NAME" | "output:NAME": {offset, nbytes, dtype, shape}}}."""
    import onnxruntime as ort  # (optional heavy dependency: loaded when asked for)

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


__all__ = ["write_reference"]
