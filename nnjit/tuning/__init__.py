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

from nnjit.tuning.plugins import (
    get_runner,
    get_search,
    get_space,
    register_runner,
    register_search,
    register_space,
)


def __getattr__(name: str):
    # the heavy parts load on first use
    if name in ("tune_model", "Tuner", "TuneReport", "KernelResult", "relative_error"):
        from nnjit.tuning import tuner

        return getattr(tuner, name)
    if name in ("RecordStore", "picks_from", "cache_dir"):
        from nnjit.tuning import records

        return getattr(records, name)
    if name in ("DeviceInfo", "replay_line", "replay_pipeline", "space_for"):
        from nnjit.tuning import space

        return getattr(space, name)
    if name in ("KernelInfo", "Candidate", "model_kernels", "lower_candidate"):
        from nnjit.tuning import kernels

        return getattr(kernels, name)
    raise AttributeError(name)


__all__ = [
    "register_space", "register_runner", "register_search", "get_space", "get_runner",
    "get_search", "tune_model", "Tuner", "TuneReport", "RecordStore", "picks_from",
    "DeviceInfo", "replay_line", "replay_pipeline", "space_for", "model_kernels",
]  # fmt: skip
