"""nnjit: compile ONNX models to WebGPU/Wasm bundles and run them.

    nnjit compile [MODEL] -o DIR [--backend webgpu,wasm] [--shape NAME=1x128 ...]
    nnjit import [MODEL] -o OUT.mlir [--shape NAME=1x128 ...]   (nn_tensor IR for nnjit-opt)
    nnjit run [MODEL|DIR] [--backend webgpu|wasm] [--check] [--threads N] [--repeat N] [--text T]
    nnjit embed DIR --text T [--text T ...]   (sentence embeddings; a bundle with a tokenizer)
    nnjit generate [MODEL|DIR] --prompt-ids 1,2,3 [--max-new-tokens N] [--check]  (a decoder, KV cache)
    nnjit serve DIR [--port N]     (the bundle and its demo page, for a browser on localhost)
    nnjit tune [MODEL] [--backend wasm|webgpu] [--runner NAME] [--budget 30] [--plot DIR]
    nnjit bench [MODEL | --kernel K.mlir] [--backend wasm|webgpu]

MODEL defaults to the small BERT-like model embedded in the package. `--plugin MODULE`
(repeatable) and NNJIT_PLUGINS=mod1,mod2 load plugins first (docs/extending.md).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from nnjit.errors import NNJitError
from nnjit.frontend.compact import WEIGHT_MODES
from nnjit.targets import TARGETS
from nnjit.tools import argtypes
from nnjit.tools.errors import run_tool, write_atomically
from nnjit.tools.generate_cli import add_commands as add_generate_commands
from nnjit.tools.text_cli import add_commands as add_text_commands
from nnjit.tools.text_cli import add_text_option, check_model_has_tokenizer, run_texts, timed_runs


def cmd_compile(args: argparse.Namespace) -> int:
    from nnjit.compiler import CompileReport, compile_model

    model = argtypes.model_path(args.model)
    if model.is_dir():
        raise NNJitError(f"{model}: is a directory", hint="`nnjit compile` takes an .onnx file")
    report = CompileReport()
    t0 = time.perf_counter()
    compile_model(model, args.output, backends=args.backend, shapes=argtypes.parse_shapes(args.shape),
                  loop_options=args.loop_options, report=report,
                  reference_outputs=args.reference_outputs,
                  tuning_records=args.tuning_records, candidates=args.candidates,
                  tokenizer=False if args.no_tokenizer else args.tokenizer,
                  weights=args.weights, lengths=args.lengths, max_length=args.max_length,
                  max_batch=args.max_batch, int8_dot=args.int8_dot)  # fmt: skip
    total = time.perf_counter() - t0
    kernels = ", ".join(f"{n} {b} kernels" for b, n in report.kernels.items())
    plan = json.loads((Path(args.output) / "plan.json").read_text())
    dyn = plan.get("dynamic")
    shapes = ""
    if dyn:
        sizes = "; ".join(f"{n} {d['sizes']}" for n, d in dyn["dims"].items())
        shapes = f", {len(dyn['variants'])} shape variants: {sizes}"
    print(f"compiled {model.name} -> {args.output} ({kernels}{shapes}) in {total:.2f} s")
    if args.verbose:
        for stage, secs in report.timings.items():
            print(f"  {stage:28s} {secs * 1000:9.1f} ms")
    return 0


def _reference_outputs(model: Path, feeds: dict, shapes_plan: dict) -> dict:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    names = [o["name"] for o in shapes_plan["model"]["outputs"]]
    try:
        sess = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
        outs = sess.run(names, feeds)
    except Exception as e:  # onnxruntime's own errors: the model is not the bundle's
        text = str(e).strip().splitlines()
        raise NNJitError(
            f"{model}: onnxruntime cannot run it on the bundle's inputs "
            f"({(text[0] if text else type(e).__name__)[:200]})",
            hint="give the ONNX model the bundle was compiled from with --reference",
        ) from None
    return dict(zip(names, outs))


def _print_device(sess) -> None:
    """Which adapter (WebGPU) or engine (Wasm) runs the model; a warning on CPU adapters."""
    dev = sess.device
    if sess.backend != "webgpu":
        print(f"engine: {dev['name']}, {dev['threads']} thread(s)")
        return
    from nnjit.runtime.webgpu import describe_adapter

    text, cpu = describe_adapter(dev)
    print(f"adapter: {text}")
    if cpu:
        print(f"warning: {dev.get('name') or 'the adapter'} is a CPU (software) adapter: the times "
              "below say nothing about GPU speed", file=sys.stderr)  # fmt: skip


def cmd_run(args: argparse.Namespace) -> int:
    import numpy as np

    from nnjit.runtime.session import Session, load_bundle

    target = argtypes.model_path(args.model)
    tmp = None
    if target.is_dir():
        bundle, onnx_model = target, None
        _, plan = load_bundle(bundle)
        src = plan.get("source")
        if args.shape:
            raise NNJitError(f"{bundle}: --shape applies to ONNX models, a bundle's shapes are "
                             "fixed", hint="recompile the model with --shape")  # fmt: skip
        if args.check:
            if args.reference is not None:
                argtypes.regular_file(args.reference, "a reference ONNX model")
                onnx_model = Path(args.reference)
            elif src is not None and Path(src).is_file():
                onnx_model = Path(src)
            else:
                raise NNJitError("--check needs the ONNX model", hint="pass --reference MODEL.onnx")
    else:
        from nnjit.compiler import compile_model

        if args.text:
            check_model_has_tokenizer(target)
        tmp = tempfile.TemporaryDirectory(prefix="nnjit-")
        bundle = Path(tmp.name) / "bundle"
        t0 = time.perf_counter()
        length = args.length or 128  # (a model with dynamic dims: that one length)
        compile_model(target, bundle, backends=[args.backend], shapes=argtypes.parse_shapes(args.shape),
                      lengths=[length], max_length=length)  # fmt: skip
        print(f"compiled {target.name} for {args.backend} in {time.perf_counter() - t0:.2f} s")
        onnx_model = target
    try:
        t0 = time.perf_counter()
        sess = Session(bundle, args.backend, threads=args.threads)
        print(f"loaded on {args.backend} in {time.perf_counter() - t0:.2f} s")
        _print_device(sess)
        if args.text:
            check = (lambda f: _reference_outputs(onnx_model, f, sess.plan)) if args.check else None
            return run_texts(sess, args, check)
        feeds = sess.random_feeds(args.length, args.seed)
        outs = timed_runs(lambda: sess.run(feeds), args.repeat)
        if args.check:
            assert onnx_model is not None
            ref = _reference_outputs(onnx_model, feeds, sess.plan)
            worst = 0.0
            for name, arr in outs.items():
                r = ref[name].astype(np.float64)
                err = float(np.max(np.abs(arr.astype(np.float64) - r)) / max(np.max(np.abs(r)), 1e-30))
                if not np.all(np.isfinite(arr)):
                    err = float("inf")
                worst = max(worst, err)
                print(f"  check {name!r} against onnxruntime: relative error {err:.3e}")
            ok = worst <= args.tolerance
            print(f"check {'passed' if ok else 'FAILED'}: max relative error {worst:.3e} "
                  f"(tolerance {args.tolerance:g})")  # fmt: skip
            return 0 if ok else 2
        return 0
    finally:
        if tmp is not None:
            tmp.cleanup()


def cmd_import(args: argparse.Namespace) -> int:
    from xdsl.printer import Printer

    from nnjit.frontend import import_onnx

    model = argtypes.model_path(args.model)
    if model.is_dir():
        raise NNJitError(f"{model}: is a directory", hint="`nnjit import` takes an .onnx file")
    imported = import_onnx(model, shapes=argtypes.parse_shapes(args.shape))
    text = io.StringIO()
    Printer(stream=text).print_op(imported.module)
    text.write("\n")
    if args.output == "-":
        sys.stdout.write(text.getvalue())
    else:  # a complete file or none (written beside, then renamed)
        write_atomically(args.output, text.getvalue())
    if args.output != "-":
        print(f"imported {model.name} -> {args.output} (nn_tensor IR; the {len(imported.weights)} "
              f"weights are named by key, not written)", file=sys.stderr)  # fmt: skip
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from nnjit.tools.serve import serve

    return serve(args.model, args.port, isolated=not args.no_isolation)


def build_parser() -> argparse.ArgumentParser:
    ap = argtypes.ArgumentParser(prog="nnjit", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)

    c = sub.add_parser("compile", help="compile an ONNX model into a bundle directory")
    c.add_argument("model", nargs="?", help="ONNX file (default: the embedded model)")
    c.add_argument("-o", "--output", required=True, type=argtypes.path_text,
                   help="bundle directory to write")  # fmt: skip
    c.add_argument("--backend", type=argtypes.name_list(list(TARGETS)),
                   default=list(TARGETS), help=f"{','.join(TARGETS)} (default: all)")  # fmt: skip
    c.add_argument("--shape", action="append", default=[], metavar="NAME=DIMS",
                   help="bind an input's dynamic dims, e.g. input_ids=1x128")  # fmt: skip
    c.add_argument("--loop-options", default="", metavar="OPTS",
                   help="schedule options for convert-nn-tensor-to-nn-loop, e.g. 'vec=1'")  # fmt: skip
    c.add_argument("-v", "--verbose", action="store_true", help="print per-stage timings")
    c.add_argument("--reference-outputs", action="store_true",
                   help="ship onnxruntime's outputs on random inputs (reference.bin) for the demo page")  # fmt: skip
    c.add_argument("--tuning-records", metavar="PATH", type=argtypes.path_text,
                   help="apply `nnjit tune` records (a records file or directory)")  # fmt: skip
    c.add_argument("--candidates", type=argtypes.int_in(0, 64, "a candidate count"), default=None,
                   metavar="N",
                   help="ship up to N candidate kernels per kernel for on-device tuning (default: "
                        "WebGPU 6 for a GPU, by the measured prior, and the default alone for a "
                        "software adapter; Wasm none; 0: none)")  # fmt: skip
    c.add_argument("--tokenizer", metavar="PATH", type=argtypes.path_text,
                   help="ship the model's tokenizer.json (default: a tokenizer.json beside the model)")  # fmt: skip
    c.add_argument("--no-tokenizer", action="store_true", help="ship no tokenizer")
    c.add_argument("--weights", choices=list(WEIGHT_MODES), default="f32",
                   help="store the matmul and embedding weights as f32 (default), f16, int8 or int4 "
                        "(dequantized at load; docs/compact.md)")  # fmt: skip
    c.add_argument("--int8-dot", type=argtypes.int_in(0, 1 << 20, "a row count"), metavar="ROWS",
                   help="Wasm, with int8 weights: matmuls of at most ROWS rows (0: any) quantize their "
                        "activations to 12-bit integers per row and take integer dots (faster, "
                        "slightly different numerics; default: float dequantization)")  # fmt: skip
    c.add_argument("--lengths", type=argtypes.int_list(1, 1 << 20, "lengths"), metavar="N,N,...",
                   help="a model with dynamic dims and no --shape serves every length up to --max-length "
                        "from these compiled lengths (default 1,8,16,32,48,64,96,128,192,256,384,512)")  # fmt: skip
    c.add_argument("--max-length", type=argtypes.int_in(1, 1 << 20, "a length"), metavar="N",
                   help="the longest input a variable-length bundle serves (default: the model's position "
                        "limit, e.g. 512 for BERT; 512 where it has no learned position table)")  # fmt: skip
    c.add_argument("--max-batch", type=argtypes.int_in(1, 4096, "a batch size"), metavar="N",
                   help="the largest batch a model with a dynamic batch dim serves (default 1)")  # fmt: skip
    c.set_defaults(fn=cmd_compile)

    r = sub.add_parser("run", help="run a model or bundle on random inputs")
    r.add_argument("model", nargs="?", help="ONNX file or bundle dir (default: embedded model)")
    r.add_argument("--backend", choices=list(TARGETS), default="webgpu")
    r.add_argument("--check", action="store_true", help="compare with onnxruntime")
    r.add_argument("--length", type=argtypes.int_in(1, 1 << 20, "a length"), metavar="N",
                   help="input length for a model with dynamic dims (default: 128 for an ONNX model, "
                        "the longest for a bundle)")  # fmt: skip
    r.add_argument("--reference", type=argtypes.path_text, help="ONNX model to check a bundle against")
    r.add_argument("--tolerance", type=argtypes.tolerance, default=1e-4,
                   help="max relative error for --check")  # fmt: skip
    r.add_argument("--threads", type=argtypes.threads, default=0,
                   help="Wasm threads (default: all cores)")  # fmt: skip
    r.add_argument("--repeat", type=argtypes.repeat, default=1, help="runs to time")
    r.add_argument("--seed", type=argtypes.seed, default=0)
    r.add_argument("--shape", action="append", default=[], metavar="NAME=DIMS")
    add_text_option(r)
    r.set_defaults(fn=cmd_run)

    i = sub.add_parser("import", help="import an ONNX model as nn_tensor IR text (for nnjit-opt)")
    i.add_argument("model", nargs="?", help="ONNX file (default: the embedded model)")
    i.add_argument("-o", "--output", default="-", type=argtypes.path_text, help="IR file to write (default: stdout)")
    i.add_argument("--shape", action="append", default=[], metavar="NAME=DIMS",
                   help="bind an input's dynamic dims, e.g. input_ids=1x128")  # fmt: skip
    i.set_defaults(fn=cmd_import)

    s = sub.add_parser("serve", help="serve a bundle and its demo page on localhost (COOP/COEP)")
    s.add_argument("model", metavar="DIR", help="bundle directory")
    s.add_argument("--port", type=argtypes.port, default=8000, help="port (0: any free port)")
    s.add_argument("--no-isolation", action="store_true",
                   help="omit COOP/COEP (the page is not cross-origin isolated: one Wasm thread)")  # fmt: skip
    s.set_defaults(fn=cmd_serve)

    from nnjit.tuning.cli import add_commands

    add_commands(sub)  # nnjit tune, nnjit bench
    add_text_commands(sub)  # nnjit embed
    add_generate_commands(sub)  # nnjit generate
    for name, p in sub.choices.items():
        if name != "serve":
            p.add_argument("--plugin", action="append", default=[], metavar="MODULE", type=argtypes.name,
                           help="import MODULE first (it registers ONNX ops, passes, lowerings...)")  # fmt: skip
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    name = getattr(args, "model", None) or getattr(args, "kernel", None) or "nnjit"

    def body() -> int:
        from nnjit.registry import load_plugins

        load_plugins(getattr(args, "plugin", []))
        return args.fn(args)

    return run_tool(body, lambda: str(name))


if __name__ == "__main__":
    sys.exit(main())
