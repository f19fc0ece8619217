"""`nnjit tune` and `nnjit bench` (registered into nnjit's command line by nnjit_main).

    nnjit tune [MODEL] [--backend wasm|webgpu] [--runner NAME] [--budget 30] [--search S]
               [--threads N] [--plot DIR] [--force | --resume] [--cache-dir DIR]
    nnjit bench [MODEL] [--backend wasm|webgpu] [--runner NAME] [--records PATH] [--repeat N]
    nnjit bench --kernel KERNEL.mlir [--options 'reg=4,12 tile=64,128'] [--backend wasm]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from nnjit.errors import NNJitError
from nnjit.tools import argtypes


def parse_options(text: str) -> dict[str, Any]:
    """'reg=4,8 tile=32,64 vec=4 relaxed-simd=false' -> a point (dict of pass options)."""
    out: dict[str, Any] = {}
    for item in text.replace(";", " ").split():
        key, sep, val = item.partition("=")
        if not sep:
            raise NNJitError(f"bad option '{item}'", hint="write KEY=VALUE, e.g. reg=4,8")
        if val.lower() in ("true", "false"):
            out[key] = val.lower() == "true"
        elif "," in val or key in ("workgroup", "tile", "reg"):
            try:
                out[key] = [int(v) for v in val.split(",") if v]
            except ValueError:
                raise NNJitError(f"bad option '{item}'", hint="values are integers") from None
        else:
            try:
                out[key] = int(val)
            except ValueError:
                raise NNJitError(f"bad option '{item}'", hint="values are integers") from None
    return out


def _runner_options(args: argparse.Namespace, runner: str) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    if runner in ("wasmtime", "node"):
        if args.threads:
            opts["threads"] = args.threads
        if getattr(args, "no_relaxed_simd", False):
            opts["relaxed_simd"] = False
    return opts


def process_start() -> float:
    """This process's start as a time.monotonic() value (Linux: from /proc; elsewhere: now),
    so that `nnjit tune --budget B` holds the whole command, interpreter start included,
    to B seconds (plots, when asked for, come after)."""
    now = time.monotonic()
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        age = uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")
        return now - age if 0.0 <= age < 60.0 else now
    except (OSError, ValueError, IndexError, AttributeError):
        return now


def _check_outputs(plot: str | None, json_file: str | None, cache_dir: str | None) -> None:
    """Output paths that cannot be written fail before tuning, not after it."""
    for path, want_dir in ((plot, True), (cache_dir, True), (json_file, False)):
        if path is None:
            continue
        p = Path(path)
        if p.exists() and p.is_dir() != want_dir:
            kind = "is a file" if want_dir else "is a directory"
            raise NNJitError(f"{p}: {kind}", hint=f"give {'a directory' if want_dir else 'a file name'}")
        parent = next((q for q in p.parents if q.exists()), None)
        if parent is not None and not parent.is_dir():
            raise NNJitError(f"{p}: {parent} is a file", hint="choose another path")
    if json_file is not None:  # (opened for appending and closed: its content stays)
        p, existed = Path(json_file), Path(json_file).exists()
        try:
            with open(p, "a"):
                pass
        except OSError as e:
            raise NNJitError(f"{p}: cannot write it ({e.strerror or e})",
                             hint="check that its folder exists and is writable") from None  # fmt: skip
        if not existed:
            p.unlink()


def cmd_tune(args: argparse.Namespace) -> int:
    import logging

    from nnjit.tuning.tuner import default_runner, tune_model

    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    t_start = process_start()  # the budget counts from the command's start
    _check_outputs(plot=args.plot, json_file=args.json, cache_dir=args.cache_dir)
    if args.plot:
        from nnjit.tuning.plots import require_matplotlib

        require_matplotlib()  # before tuning, not after the budget is spent
    model = argtypes.model_path(args.model)
    runner = args.runner or default_runner(args.backend)
    report = tune_model(
        str(model), backend=args.backend, runner=runner,
        runner_options=_runner_options(args, runner), budget=args.budget, search=args.search,
        shapes=argtypes.parse_shapes(args.shape), cache_dir=args.cache_dir, progress=not args.quiet,
        force=args.force, resume=args.resume, kernels=args.kernel or None,
        candidate_timeout=args.timeout, tolerance=args.tolerance, start=t_start,
        margin=0.8,  # + printing the table and the interpreter's exit: the command holds the cap
    )  # fmt: skip
    total = time.monotonic() - t_start
    fp = report.device.fingerprint
    print(f"device: {json.dumps(fp, sort_keys=True)}")
    _warn_cpu_adapter(args.backend, fp)
    if report.store is not None:
        print(f"records: {report.store.path}")
    print(report.table())
    tuned = sum(1 for k in report.kernels if k.status in ("tuned", "partial"))
    print(f"{model.name}: {len(report.kernels)} distinct kernels, {tuned} tuned now, "
          f"{sum(1 for k in report.kernels if k.status == 'cached')} from records; "
          f"import {report.import_seconds:.1f} s, tuning "
          f"{report.seconds - report.import_seconds:.1f} s, total {total:.1f} s "
          f"(budget {report.budget:g} s)")  # fmt: skip
    if args.plot:
        from nnjit.tuning.plots import plot_report

        for p in plot_report(report, args.plot):
            print(f"plot: {p}")
    if args.json:
        Path(args.json).write_text(json.dumps(report_json(report), indent=1, default=str))
    return 0


def report_json(report: Any) -> dict:
    return {
        "backend": report.backend, "runner": report.runner, "device": report.device.fingerprint,
        "budget": report.budget, "seconds": report.seconds, "search": report.search,
        "import_seconds": report.import_seconds,
        "kernels": [
            {**(k.record or {}), "status": k.status, "occurrences": k.info.occurrences,
             "flops": k.info.flops, "bytes": k.info.bytes,
             "trials": [{"options": {kk: v for kk, v in t.options.items() if not kk.startswith("@")},
                         "time": t.time, "median": t.median, "reason": t.reason, "at": t.at,
                         "same_as": t.same_as} for t in k.trials]}
            for k in report.kernels
        ],
    }  # fmt: skip


# ------------------------------------------------------------------------------- bench


def _kernel_table(rows: list[tuple]) -> str:
    head = ("kernel", "x", "default ms", "GFLOP/s", "tuned ms", "GFLOP/s", "speedup", "options")
    rows = [head] + rows
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(head) - 1)]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r[:-1], widths)) + "  " + str(r[-1])
                     for r in rows)  # fmt: skip


def _fmt_point(p: dict) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, bool):
            return str(v).lower()
        return ",".join(str(int(x)) for x in v) if isinstance(v, (list, tuple)) else str(int(v))

    return " ".join(f"{k}={fmt(v)}" for k, v in p.items() if not k.startswith("@")) or "(default)"


def _measure_kernel(runner: Any, info: Any, options: dict) -> float | None:
    from nnjit.tuning.kernels import lower_candidate
    from nnjit.tuning.runners import CandidateError

    try:
        cand = lower_candidate(info, options)
        m = runner.measure(cand, timeout=300.0)
    except (CandidateError, NNJitError) as e:
        print(f"  {info.describe()} {options}: {e}", file=sys.stderr)
        return None
    return m.score


def cmd_bench(args: argparse.Namespace) -> int:
    from nnjit.tuning.kernels import KernelInfo, kernel_info, model_kernels
    from nnjit.tuning.plugins import get_runner
    from nnjit.tuning.records import RecordStore, picks_from
    from nnjit.tuning.runners import TimingPolicy
    from nnjit.tuning.tuner import default_runner, load_fused_model

    if args.options and not args.kernel:
        raise NNJitError("--options applies to --kernel KERNEL.mlir",
                         hint="for a model, give tuning records with --records")  # fmt: skip
    runner_name = args.runner or default_runner(args.backend)
    ropts = _runner_options(args, runner_name)
    ropts["timing"] = TimingPolicy(min_runs=5, max_runs=50, min_time=0.2)
    runner = get_runner(runner_name, **ropts)
    try:
        device = runner.device()
        target = runner.target
        if args.kernel:
            from xdsl.parser import Parser

            from nnjit.registry import make_context
            from nnjit.tools.argtypes import read_ir_file
            from nnjit.tuning.kernels import prepared_fused_ops

            if args.kernel.endswith(".onnx"):
                raise NNJitError(f"{args.kernel}: --kernel takes one kernel's IR, not an ONNX model",
                                 hint="bench a model with `nnjit bench MODEL.onnx`")  # fmt: skip
            text = read_ir_file(args.kernel, "a kernel IR file")
            module = Parser(make_context(), text, args.kernel).parse_module()
            fused = prepared_fused_ops(module)
            if len(fused) != 1:
                raise NNJitError(f"{args.kernel}: expected one kernel (one fused op in @main), "
                                 f"found {len(fused)}")  # fmt: skip
            infos: list[KernelInfo] = [kernel_info(fused[0], target)]
            if args.options:
                from nnjit.compiler import check_loop_options

                check_loop_options(" ".join(o for o in args.options.replace(";", " ").split()
                                            if not o.startswith("relaxed-simd=")))  # fmt: skip
            picks = {infos[0].signature: parse_options(args.options)} if args.options else {}
            import_s = 0.0
        else:
            model = argtypes.model_path(args.model)
            tensor_module, import_s = load_fused_model(str(model), argtypes.parse_shapes(args.shape))
            infos = model_kernels(tensor_module, args.backend)
            store = RecordStore(device.fingerprint, args.cache_dir)
            picks = picks_from(args.records) if args.records else store.picks()
        rows = []
        total_d = total_t = 0.0
        for n, info in enumerate(infos):
            runner.prepare(info, 1234 + n)
            d = _measure_kernel(runner, info, {})
            pick = picks.get(info.signature, {})
            t = _measure_kernel(runner, info, pick) if pick else d
            occ = info.occurrences
            if d is not None:
                total_d += d * occ
                total_t += (t if t is not None else d) * occ
            compute = info.kind in ("matmul", "gemm", "conv")

            def gf(s: float | None, flops: float = info.flops, compute: bool = compute) -> str:
                return f"{flops / s / 1e9:.1f}" if s and compute else "-"

            rows.append((info.describe(), occ, f"{d * 1e3:.3f}" if d else "-", gf(d),
                         f"{t * 1e3:.3f}" if t else "-", gf(t),
                         f"{d / t:.2f}x" if d and t else "-",
                         _fmt_point(pick)))  # fmt: skip
        print(f"device: {json.dumps(device.fingerprint, sort_keys=True)}")
        _warn_cpu_adapter(args.backend, device.fingerprint)
        print(_kernel_table(rows))
        print(f"sum over launches: {total_d * 1e3:.2f} ms default, {total_t * 1e3:.2f} ms tuned")
    finally:
        runner.close()
    if args.kernel or args.no_model:
        return 0
    # model latency: the bundle compiled with and without the picks, run end to end
    from nnjit.compiler import compile_model
    from nnjit.runtime.session import Session, random_feeds

    if args.records:
        rec_seconds = None
    else:
        recs = [store.get(i.signature) for i in infos]
        rec_seconds = sum(float(r.get("seconds", 0.0)) for r in recs if r)
    lat: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="nnjit-bench-") as tmp:
        sessions = {}
        for label, recs_arg in (("default", None), ("tuned", picks or None)):
            if label == "tuned" and not picks:
                break
            bundle = Path(tmp) / label
            compile_model(str(model), bundle, backends=[args.backend], shapes=argtypes.parse_shapes(args.shape),
                          tuning_records=recs_arg, web_runtime=False)  # fmt: skip
            kw = {"threads": args.threads} if args.backend == "wasm" and args.threads else {}
            sessions[label] = Session(bundle, args.backend, **kw)
            lat[label] = []
        feeds = random_feeds(next(iter(sessions.values())).plan, 0)
        for sess in sessions.values():
            sess.run(feeds)  # warm-up
        # alternate the bundles run by run: load from other processes hits both alike
        for _ in range(max(1, args.repeat)):
            for label, sess in sessions.items():
                t0 = time.perf_counter()
                sess.run(feeds)
                lat[label].append(time.perf_counter() - t0)
    for label, ts in lat.items():
        print(f"model latency ({label}): min {min(ts) * 1e3:.1f} ms, median "
              f"{sorted(ts)[len(ts) // 2] * 1e3:.1f} ms over {len(ts)} runs")  # fmt: skip
    if "tuned" in lat:
        med = {k: sorted(v)[len(v) // 2] for k, v in lat.items()}
        print(f"model speedup: {min(lat['default']) / min(lat['tuned']):.2f}x (min), "
              f"{med['default'] / med['tuned']:.2f}x (median)")
    if rec_seconds is not None:
        print(f"tuning time (records of this model's kernels): {rec_seconds:.1f} s; import {import_s:.1f} s")
    return 0


def _warn_cpu_adapter(backend: str, fingerprint: dict) -> None:
    """On a CPU (software) WebGPU adapter, says that the times are not GPU speed."""
    if backend != "webgpu":
        return
    from nnjit.runtime.webgpu import describe_adapter

    _, cpu = describe_adapter(fingerprint)
    if cpu:
        print(f"warning: {fingerprint.get('name') or 'the adapter'} is a CPU (software) adapter: "
              "its times say nothing about GPU speed", file=sys.stderr)  # fmt: skip


def add_commands(sub: Any) -> None:
    """Adds `tune` and `bench` to nnjit's subcommand parser."""
    from nnjit.tuning.plugins import runner_names, search_names

    t = sub.add_parser("tune", help="tune a model's kernels on this device (records per device)")
    t.add_argument("model", nargs="?", help="ONNX file (default: the embedded model)")
    t.add_argument("--backend", choices=["wasm", "webgpu"], default="wasm")
    t.add_argument("--runner", type=argtypes.name, help=f"measuring runner ({', '.join(runner_names())}; default: "
                   "wasmtime for wasm, wgpu for webgpu)")  # fmt: skip
    t.add_argument("--budget", type=argtypes.seconds, default=30.0, help="seconds for the whole model (default 30)")
    t.add_argument("--search", default="greedy", type=argtypes.name, help=f"search strategy ({', '.join(search_names())})")
    t.add_argument("--threads", type=argtypes.threads, default=0, help="Wasm threads (default: all cores)")
    t.add_argument("--no-relaxed-simd", action="store_true", help="Wasm: the device has no relaxed SIMD")
    t.add_argument("--plot", metavar="DIR", type=argtypes.path_text, help="write progress.png and candidates.png there")
    t.add_argument("--json", metavar="FILE", type=argtypes.path_text, help="write the full report (every trial) as JSON")
    t.add_argument("--cache-dir", type=argtypes.path_text, help="records directory (default: $NNJIT_CACHE_DIR/tuning "
                   "or ~/.cache/nnjit/tuning)")  # fmt: skip
    t.add_argument("--force", action="store_true", help="retune kernels that have records")
    t.add_argument("--resume", action="store_true", help="retune kernels whose search the budget cut")
    t.add_argument("--kernel", action="append", default=[], metavar="SIGNATURE",
                   help="tune only kernels whose signature starts with this")  # fmt: skip
    t.add_argument("--timeout", type=argtypes.seconds, default=10.0,
                   help="seconds before a candidate counts as hung (plus 20x the default's run "
                   "time per run)")  # fmt: skip
    t.add_argument("--tolerance", type=argtypes.tolerance, default=1e-4, help="max relative error against the default")
    t.add_argument("--shape", action="append", default=[], metavar="NAME=DIMS")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    t.add_argument("-v", "--verbose", action="store_true", help="log every dropped candidate")
    t.set_defaults(fn=cmd_tune)

    b = sub.add_parser("bench", help="kernel GFLOP/s, model latency and tuning time, default vs tuned")
    b.add_argument("model", nargs="?", help="ONNX file (default: the embedded model)")
    b.add_argument("--kernel", metavar="KERNEL.mlir", type=argtypes.path_text, help="bench one standalone kernel module instead")
    b.add_argument("--options", default="",
                   help="with --kernel: the schedule to compare, e.g. 'reg=4,12 tile=64,128'")
    b.add_argument("--backend", choices=["wasm", "webgpu"], default="wasm")
    b.add_argument("--runner", type=argtypes.name, help="measuring runner (default: wasmtime for wasm, wgpu for webgpu)")
    b.add_argument("--threads", type=argtypes.threads, default=0)
    b.add_argument("--no-relaxed-simd", action="store_true")
    b.add_argument("--records", type=argtypes.path_text, help="tuning records file or directory (default: this device's)")
    b.add_argument("--cache-dir", type=argtypes.path_text, help="records directory")
    b.add_argument("--repeat", type=argtypes.repeat, default=5, help="model runs to time")
    b.add_argument("--no-model", action="store_true", help="kernels only (no model latency)")
    b.add_argument("--shape", action="append", default=[], metavar="NAME=DIMS")
    b.set_defaults(fn=cmd_bench)


__all__ = ["add_commands", "cmd_tune", "cmd_bench", "parse_options"]
