"""nnjit-translate: print web-level IR (or lower nn_loop kernels first) as WGSL or WAT.

    nnjit-translate kernels.mlir -t nnjit-wgsl          # nn_loop kernels with target "wgsl"
    nnjit-translate kernels.mlir -t nnjit-wat [--wasm out.wasm]
Kernels still at the nn_loop level are converted with the default options first (after the
target's loop passes, Target.loop_passes: nn-loop-expand-math; on wgsl also nn-loop-unroll
and nn-loop-promote-registers).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from nnjit import registry
from nnjit.errors import NNJitError
from nnjit.targets import by_printer
from nnjit.tools import argtypes, levels
from nnjit.tools.errors import run_tool, write_atomically


def main(argv: Sequence[str] | None = None) -> int:
    ap = argtypes.ArgumentParser(prog="nnjit-translate", description=__doc__.splitlines()[0])
    ap.add_argument("input_file", nargs="?", help="IR file (default: stdin)")
    ap.add_argument("-t", "--target", required=True, choices=sorted(registry.get_all_targets()))
    ap.add_argument("-o", "--output", type=argtypes.path_text, help="output file (default: stdout)")
    ap.add_argument("--wasm", metavar="DIR", type=argtypes.path_text, help="with -t nnjit-wat: also write DIR/<kernel>.wasm")
    ap.add_argument("--plugin", action="append", default=[], metavar="MODULE")
    args = ap.parse_args(argv)
    name = args.input_file or "<stdin>"

    def body():
        import io
        import os

        from xdsl.parser import Parser

        registry.load_plugins(args.plugin)
        ctx = registry.make_context()
        if args.input_file:
            text = argtypes.read_ir_file(args.input_file)
        else:
            try:
                text = argtypes.read_stdin_ir().decode("utf-8")
            except UnicodeDecodeError as e:
                raise NNJitError(f"<stdin>: not UTF-8 text (byte {e.start}: {e.reason})") from None
        if args.wasm and args.target != "nnjit-wat":
            raise NNJitError("--wasm needs -t nnjit-wat")
        for path in (args.output, args.wasm):
            if path is not None and os.path.exists(path) and os.path.isdir(path) != (path == args.wasm):
                kind = "a directory" if path == args.output else "not a directory"
                raise NNJitError(f"{path}: is {kind}", hint="choose another output path")
        module = Parser(ctx, text, name).parse_module()
        module.verify()
        levels.check_target(module, args.target, converts=True)
        target = by_printer(args.target)  # (None: a plugin's printer, no conversion)
        if target is not None:  # (the target's loop passes, as every pipeline runs them)
            for p in (*target.loop_pass_objects(), registry.get_all_passes()[target.convert]()()):
                p.apply(ctx, module)
        out = io.StringIO()
        registry.get_all_targets()[args.target]()(module, out)
        if args.wasm:
            from nnjit.backends.wat_printer import assemble, wat_kernels

            blobs = [(kname, assemble(wat)) for kname, wat, _ in wat_kernels(module)]
            try:  # (written once every kernel assembled)
                os.makedirs(args.wasm, exist_ok=True)
                for kname, blob in blobs:
                    with open(os.path.join(args.wasm, f"{kname}.wasm"), "wb") as f:
                        f.write(blob)
            except OSError as e:
                raise NNJitError(f"{args.wasm}: cannot write the .wasm files there ({e.strerror or e})",
                                 hint="choose a writable directory") from None  # fmt: skip
        if args.output:
            write_atomically(args.output, out.getvalue())
        else:
            sys.stdout.write(out.getvalue())

    return run_tool(body, lambda: name)


if __name__ == "__main__":
    sys.exit(main())
