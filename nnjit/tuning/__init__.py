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

from nnjit.tuning.kernels import Candidate, KernelInfo, lower_candidate, model_kernels
from nnjit.tuning.plugins import (
    get_runner,
    get_search,
    get_space,
    register_runner,
    register_search,
    register_space,
    space_for,
)
from nnjit.tuning.records import RecordStore, cache_dir, picks_from
from nnjit.tuning.space import DeviceInfo, replay_line, replay_pipeline
from nnjit.tuning.tuner import KernelResult, Tuner, TuneReport, relative_error, tune_model

__all__ = [
    "register_space", "register_runner", "register_search", "get_space", "get_runner",
    "get_search", "tune_model", "Tuner", "TuneReport", "RecordStore", "picks_from",
    "DeviceInfo", "replay_line", "replay_pipeline", "space_for", "model_kernels",
    "KernelInfo", "Candidate", "lower_candidate", "KernelResult", "relative_error", "cache_dir",
]  # fmt: skip
