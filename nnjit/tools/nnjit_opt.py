"""nnjit-opt: run nnjit's (and xDSL's canonicalize/cse/dce) passes on textual IR, like mlir-opt.

    nnjit-opt in.mlir -p 'nn-tensor-fuse,convert-nn-tensor-to-nn-loop{target=wasm}'
    nnjit-opt in.mlir -p convert-nn-loop-to-wgsl -t nnjit-wgsl      # print WGSL
    nnjit-opt in.mlir --split-input-file --verify-diagnostics
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence

from xdsl.xdsl_opt_main import xDSLOptMain

from nnjit import registry
from nnjit.errors import NNJitError
from nnjit.tools import argtypes, levels
from nnjit.tools.errors import run_tool, write_atomically


def _legacy_target(factory):
    def emit(module, stream):
        factory()(module, stream)

    return emit


class NNJitOptMain(xDSLOptMain):
    """xdsl-opt restricted to what nnjit needs (a closed tool), plus nnjit's targets."""

    version_format = "nnjit-opt (xDSL {xdsl_version})"

    def register_all_dialects(self):
        for name, factory in registry.get_all_dialects().items():
            self.ctx.register_dialect(name, factory)

    def register_all_passes(self):
        for name, factory in registry.get_all_passes().items():
            self.register_pass(name, factory)

    def register_all_targets(self):
        super().register_all_targets()
        keep = {k: v for k, v in self.available_targets.items() if k == "mlir"}
        self.available_targets = keep
        for name, factory in registry.get_all_targets().items():
            self.available_targets[name] = _legacy_target(factory)

    def register_all_arguments(self, arg_parser: argparse.ArgumentParser):
        arg_parser.prog = "nnjit-opt"
        argtypes.one_line_errors(arg_parser)
        super().register_all_arguments(arg_parser)
        arg_parser.add_argument(
            "--plugin",
            action="append",
            default=[],
            metavar="MODULE",
            help="import MODULE first (it registers dialects, passes, targets, lowerings)",
        )

    def get_input_stream(self):
        """The input file (a regular file of text IR, under the size limit) or stdin."""
        name = self.args.input_file
        if name is not None:
            argtypes.check_ir_file(name)
            f, ext = super().get_input_stream()
            return f, ext if ext in self.available_frontends else "mlir"
        return io.BytesIO(argtypes.read_stdin_ir()), "mlir"

    def prepare_output(self):
        """-o FILE: output is kept in memory and written by main only when the run succeeds."""
        if self.args.output_file is None:
            return sys.stdout
        self.output = _Buffer()
        return self.output

    def apply_passes(self, prog):
        """Checks first that each conversion of the pipeline has IR of its level to convert."""
        if not self.args.verify_diagnostics:
            levels.check_passes(prog, self.pipeline.passes)
        super().apply_passes(prog)

    def output_resulting_program(self, prog):
        """Checks first that a WGSL/WAT target has web-level modules to print."""
        if not self.args.verify_diagnostics:
            levels.check_target(prog, self.args.target, converts=False)
        return super().output_resulting_program(prog)

    def setup_pipeline(self):
        try:
            super().setup_pipeline()
        except ValueError as e:
            hint = f"known passes: {_known_passes(self.available_passes)}" if "Unrecognized pass" in str(e) else None
            raise NNJitError(f"invalid pass pipeline: {e}", hint=hint) from None


def _known_passes(names) -> str:
    """The pass names, those sharing a family prefix written once ("nn-loop-{unroll,...}"),
    so that the hint stays one readable line as passes are added."""
    families: dict[str, list[str]] = {}
    for name in sorted(names):
        prefix = next((p for p in ("convert-nn-", "nn-loop-", "nn-tensor-") if name.startswith(p)), "")
        families.setdefault(prefix, []).append(name[len(prefix):])
    return ", ".join(f"{p}{{{','.join(v)}}}" if p else ", ".join(v) for p, v in families.items())


class _Buffer(io.StringIO):
    def close(self) -> None:  # (xDSL closes its output stream; the text is still wanted)
        pass


def _plugins_from_argv(argv: Sequence[str]) -> list[str]:
    mods = []
    for i, a in enumerate(argv):
        if a == "--plugin" and i + 1 < len(argv):
            mods.append(argv[i + 1])
        elif a.startswith("--plugin="):
            mods.append(a.split("=", 1)[1])
    return mods


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    state: dict[str, str] = {"input": "<stdin>"}

    def body():
        registry.load_plugins(_plugins_from_argv(args))
        tool = NNJitOptMain(description="nnjit's modular optimizer driver", args=args)
        state["input"] = tool.args.input_file or "<stdin>"
        tool.output = None
        tool.run()
        if tool.output is not None:
            write_atomically(tool.args.output_file, tool.output.getvalue())

    return run_tool(body, lambda: state["input"])


if __name__ == "__main__":
    sys.exit(main())
