"""nnjit-translate: print web-level IR (or lower nn_loop kernels first) as WGSL or WAT.

    nnjit-translate kernels.mlir -t nnjit-wgsl          # nn_loop kernels with target "wgsl"
    nnjit-translate kernels.mlir -t nnjit-wat [--wasm out.wasm]
Kernels still at the nn_loop level are converted with the default options first.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from nnjit import registry
from nnjit.errors import NNJitError
from nnjit.tools.errors import run_tool

_CONVERT = {"nnjit-wgsl": "convert-nn-loop-to-wgsl", "nnjit-wat": "convert-nn-loop-to-wasm"}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="nnjit-translate", description=__doc__.splitlines()[0])
    ap.add_argument("input_file", nargs="?", help="IR file (default: stdin)")
    ap.add_argument("-t", "--target", required=True, choices=sorted(registry.get_all_targets()))
    ap.add_argument("-o", "--output", help="output file (default: stdout)")
    ap.add_argument("--wasm", metavar="DIR", help="with -t nnjit-wat: also write DIR/<kernel>.wasm")
    ap.add_argument("--plugin", action="append", default=[], metavar="MODULE")
    args = ap.parse_args(argv)
    name = args.input_file or "<stdin>"

    def body():
        import io
        import os

        from xdsl.parser import Parser

        registry.load_plugins(args.plugin)
        ctx = registry.make_context()
        text = open(args.input_file).read() if args.input_file else sys.stdin.read()
        module = Parser(ctx, text, name).parse_module()
        module.verify()
        convert = _CONVERT.get(args.target)
        if convert is not None:
            registry.get_all_passes()[convert]()().apply(ctx, module)
        out = io.StringIO()
        registry.get_all_targets()[args.target]()(module, out)
        if args.wasm:
            if args.target != "nnjit-wat":
                raise NNJitError("--wasm needs -t nnjit-wat")
            from nnjit.backends.wat_printer import assemble, wat_kernels

            os.makedirs(args.wasm, exist_ok=True)
            for kname, wat, _ in wat_kernels(module):
                with open(os.path.join(args.wasm, f"{kname}.wasm"), "wb") as f:
                    f.write(assemble(wat))
        if args.output:
            tmp = args.output + ".tmp"
            with open(tmp, "w") as f:
                f.write(out.getvalue())
            os.replace(tmp, args.output)
        else:
            sys.stdout.write(out.getvalue())

    return run_tool(body, lambda: name)


if __name__ == "__main__":
    sys.exit(main())
