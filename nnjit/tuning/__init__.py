"""nnjit's auto-tuner: lite schedule spaces, runners, search strategies, records (docs/tuning.md).

    from nnjit.tuning import tune_model
    report = tune_model("model.onnx", backend="wasm", budget=30)   # records saved per device
    print(report.table())

    from nnjit.compiler import compile_model
    compile_model("model.onnx", "bundle/", tuning_records=report.store)

Plugins: `register_space(kind, target, fn)`, `register_runner(name, factory)`,
`register_search(name, fn)`, or the entry-point groups nnjit.spaces / nnjit.runners /
nnjit.search.
"""

import importlib

from nnjit.tuning.plugins import (
    get_runner,
    get_search,
    get_space,
    register_runner,
    register_search,
    register_space,
    space_for,
)

# The heavy parts (xDSL's IR, the tuner) load on first use (PEP 562), so `nnjit --help`,
# `nnjit serve` and plugins that only register a space start fast.
_LAZY = {
    **dict.fromkeys(("tune_model", "Tuner", "TuneReport", "KernelResult", "relative_error"), "tuner"),
    **dict.fromkeys(("RecordStore", "picks_from", "cache_dir"), "records"),
    **dict.fromkeys(("DeviceInfo", "replay_line", "replay_pipeline"), "space"),
    **dict.fromkeys(("KernelInfo", "Candidate", "model_kernels", "lower_candidate"), "kernels"),
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'nnjit.tuning' has no attribute {name!r}")
    return getattr(importlib.import_module(f"nnjit.tuning.{_LAZY[name]}"), name)


__all__ = [
    "register_space", "register_runner", "register_search", "get_space", "get_runner",
    "get_search", "tune_model", "Tuner", "TuneReport", "RecordStore", "picks_from",
    "DeviceInfo", "replay_line", "replay_pipeline", "space_for", "model_kernels",
    "KernelInfo", "Candidate", "lower_candidate", "KernelResult", "relative_error", "cache_dir",
]  # fmt: skip
