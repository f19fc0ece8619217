"""nnjit-opt and nnjit-translate on IR at the wrong level: one line that says what the input
is and what the command expects, exit status 1, no output (they printed nothing and exited 0
before); the right level still works."""

from __future__ import annotations

import pytest

TENSOR = """
func.func @main(%a: tensor<4x8xf32>, %b: tensor<8x4xf32>) -> tensor<4x4xf32> {
  %m = nn_tensor.matmul %a, %b : (tensor<4x8xf32>, tensor<8x4xf32>) -> tensor<4x4xf32>
  %r = nn_tensor.relu %m : tensor<4x4xf32> -> tensor<4x4xf32>
  func.return %r : tensor<4x4xf32>
}
"""
LOWER = "nn-tensor-fuse,convert-nn-tensor-to-nn-loop{target=%s}"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The same model at each level: nn_tensor, nn_loop (wgsl and wasm kernels), nn_wgsl."""
    import io

    from xdsl.parser import Parser
    from xdsl.printer import Printer

    from nnjit.compiler import run_pipeline
    from nnjit.registry import make_context

    d = tmp_path_factory.mktemp("levels")
    out = {"tensor": d / "tensor.mlir", "empty": d / "empty.mlir"}
    out["tensor"].write_text(TENSOR)
    out["empty"].write_text("builtin.module {}\n")
    for name, spec in [("loop_wgsl", LOWER % "wgsl"), ("loop_wasm", LOWER % "wasm"),
                       ("wgsl", LOWER % "wgsl" + ",nn-loop-unroll,convert-nn-loop-to-wgsl")]:  # fmt: skip
        module = Parser(make_context(), TENSOR).parse_module()
        run_pipeline(module, spec)
        text = io.StringIO()
        Printer(stream=text).print_op(module)
        out[name] = d / f"{name}.mlir"
        out[name].write_text(text.getvalue())
    return out


def _run(tool: str, argv: list[str], capsys) -> tuple[int, str, str]:
    if tool == "opt":
        from nnjit.tools.nnjit_opt import main
    else:
        from nnjit.tools.nnjit_translate import main
    rc = main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


WRONG = [  # (tool, input, arguments, what the message must say)
    ("translate", "tensor", ["-t", "nnjit-wgsl"],
     'the input is nn_tensor IR, and it prints nn_wgsl modules or nn_loop kernels with target "wgsl"'),
    ("translate", "loop_wgsl", ["-t", "nnjit-wat"],
     'the input is nn_loop kernels (target "wgsl"), and it prints nn_wasm modules'),
    ("translate", "empty", ["-t", "nnjit-wat"], "the input is IR with no nnjit ops"),
    ("translate", "wgsl", ["-t", "nnjit-wat"], "the input is nn_wgsl modules, and it prints nn_wasm"),
    ("opt", "wgsl", ["-t", "nnjit-wat"], "(print it with -t nnjit-wgsl)"),
    ("opt", "tensor", ["-p", "convert-nn-loop-to-wgsl"],
     "convert-nn-loop-to-wgsl has nothing to convert: the input is nn_tensor IR"),
    ("opt", "loop_wgsl", ["-p", "convert-nn-loop-to-wasm"],
     'it converts nn_loop kernels with target "wasm"'),
    ("opt", "wgsl", ["-p", "convert-nn-tensor-to-nn-loop"],
     "the input is nn_wgsl modules, and it converts nn_tensor IR"),
    ("opt", "loop_wasm", ["-t", "nnjit-wgsl"], "-t nnjit-wgsl has nothing to print"),
    ("opt", "loop_wgsl", ["-t", "nnjit-wgsl"], "convert them first: -p 'nn-loop-simplify-index,nn-loop-expand-math{target=wgsl},nn-loop-unroll,nn-loop-promote-registers,convert-nn-loop-to-wgsl'"),
    ("opt", "tensor", ["-p", "convert-nn-loop-to-wgsl", "-t", "nnjit-wgsl"], "lower it first"),
]  # fmt: skip


@pytest.mark.parametrize("tool,level,args,says", WRONG)
def test_wrong_level_is_one_line_and_fails(files, capsys, tmp_path, tool, level, args, says):
    out_file = tmp_path / "out.txt"
    rc, out, err = _run(tool, [str(files[level]), *args, "-o", str(out_file)], capsys)
    assert rc == 1
    assert out == "" and not out_file.exists()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err
    assert says in lines[0]


RIGHT = [
    ("translate", "loop_wgsl", ["-t", "nnjit-wgsl"], "@compute"),
    ("translate", "loop_wasm", ["-t", "nnjit-wat"], "(module"),
    ("translate", "wgsl", ["-t", "nnjit-wgsl"], "@compute"),
    ("opt", "tensor", ["-p", LOWER % "wasm" + ",nn-loop-unroll,convert-nn-loop-to-wasm", "-t", "nnjit-wat"], "(module"),
    ("opt", "loop_wgsl", ["-p", "nn-loop-unroll,convert-nn-loop-to-wgsl", "-t", "nnjit-wgsl"], "@compute"),
    ("opt", "tensor", ["-p", "canonicalize"], "nn_tensor.matmul"),
]


@pytest.mark.parametrize("tool,level,args,has", RIGHT)
def test_right_level_still_works(files, capsys, tool, level, args, has):
    rc, out, err = _run(tool, [str(files[level]), *args], capsys)
    assert rc == 0, err
    assert has in out
