"""The bad-input corpus: hostile files, models, bundles and option values for every entry point.

Each `Case` is one user mistake (or attack) against one entry point: the command lines of
`nnjit` (compile, run, tune, bench, serve, import), `nnjit-opt` and `nnjit-translate`, and the
Python API (compile_model, Session, import_onnx, picks_from). tests/test_bad_input.py runs every
case in a fresh directory and checks a non-zero exit, exactly one `error: ...` line on stderr (no
traceback) and that the directory is left as it was (nothing half-written).

In argv strings, `{tmp}` is the case's directory, `{bundle}` a Wasm bundle of the embedded
model copied into it (`{tmp}/bundle`), and `{model}` the embedded model.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT / "nnjit" / "models" / "default.onnx"

Setup = Callable[[Path], None]


@dataclass
class Case:
    """One hostile input: `tool` is "nnjit", "nnjit-opt", "nnjit-translate" or "api"."""

    id: str
    tool: str
    argv: list[str] = field(default_factory=list)
    setup: list[Setup] = field(default_factory=list)
    needle: str | None = None  # a word the message must contain (lower-cased match)
    api: Callable[[Path], Any] | None = None  # for tool "api": raises the user error
    bundle: bool = False  # copy the prebuilt bundle to {tmp}/bundle first
    env: dict[str, str] = field(default_factory=dict)
    stdin: str | None = None  # a file read as standard input


# ------------------------------------------------------------------------------ models


def _onnx():
    import onnx
    from onnx import TensorProto, helper

    return onnx, TensorProto, helper


def model_proto(nodes, inputs, outputs, initializers=(), opset=17, ir_version=8):
    onnx, _, helper = _onnx()
    graph = helper.make_graph(list(nodes), "g", list(inputs), list(outputs), list(initializers))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = ir_version
    return m


def vi(name, shape, dtype=None):
    _, TensorProto, helper = _onnx()
    return helper.make_tensor_value_info(name, dtype or TensorProto.FLOAT, shape)


def tiny_model():
    """y = Relu(x), x: 2x3 float: a valid model the other hostile models vary."""
    _, _, helper = _onnx()
    return model_proto([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [2, 3])], [vi("y", [2, 3])])


def chain_model(n: int, op: str = "Relu"):
    """n elementwise ops in a row (deep use-def chains)."""
    _, _, helper = _onnx()
    names = ["x"] + [f"t{i}" for i in range(n - 1)] + ["y"]
    nodes = [helper.make_node(op, [names[i]], [names[i + 1]]) for i in range(n)]
    return model_proto(nodes, [vi("x", [4, 8])], [vi("y", [4, 8])])


def deep_model(n: int):
    """A matmul, then n elementwise ops of several kinds (each reads the two values before it,
    so the chain is a DAG, not a tree), then a softmax: deep epilogue, group and prologue."""
    _, TensorProto, helper = _onnx()
    ops = ["Neg", "Tanh", "Neg", "Erf", "Neg", "Sigmoid"]
    w = helper.make_tensor("w", TensorProto.FLOAT, [8, 8], (np.eye(8) * 0.5).flatten().tolist())
    nodes = [helper.make_node("MatMul", ["x", "w"], ["v0"])]
    names = ["v0"]
    for i in range(1, n + 1):
        if i % 3 == 0:  # (v - 0.5 v', keeping the values apart from each other)
            nodes.append(helper.make_node("Mul", [names[-2], "half"], [f"h{i}"]))
            nodes.append(helper.make_node("Sub", [names[-1], f"h{i}"], [f"a{i}"]))
            nodes.append(helper.make_node("Mul", [f"a{i}", "two"], [f"v{i}"]))
        else:
            nodes.append(helper.make_node(ops[i % len(ops)], [names[-1]], [f"v{i}"]))
        names.append(f"v{i}")
    nodes.append(helper.make_node("Softmax", [names[-1]], ["y"], axis=-1))
    half = helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    return model_proto(nodes, [vi("x", [4, 8])], [vi("y", [4, 8])], [w, half, two])


def _bad_models() -> dict[str, Callable[[], Any]]:
    onnx, TensorProto, helper = _onnx()
    mk = helper.make_node
    x23, y23 = [vi("x", [2, 3])], [vi("y", [2, 3])]

    def const(name, arr):
        return helper.make_tensor(name, TensorProto.FLOAT, arr.shape, arr.flatten().tolist())

    def truncated_raw():
        t = onnx.TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1000], raw_data=b"\0" * 4)
        return model_proto([mk("Add", ["x", "w"], ["y"])], [vi("x", [1000])], [vi("y", [1000])], [t])

    def shape_const(dims):
        return helper.make_tensor("s", TensorProto.INT64, [len(dims)], dims)

    return {
        "dangling_input": lambda: model_proto([mk("Add", ["x", "nope"], ["y"])], x23, y23),
        "cycle": lambda: model_proto(
            [mk("Relu", ["b"], ["a"]), mk("Relu", ["a"], ["b"]), mk("Add", ["x", "a"], ["y"])], x23, y23
        ),
        "opset_99": lambda: model_proto([mk("Relu", ["x"], ["y"])], x23, y23, opset=99),
        "duplicate_initializers": lambda: model_proto(
            [mk("Add", ["x", "w"], ["y"])], x23, y23,
            [const("w", np.ones((2, 3), np.float32)), const("w", np.zeros((2, 3), np.float32))],
        ),
        "duplicate_inputs": lambda: model_proto([mk("Relu", ["x"], ["y"])], x23 + x23, y23),
        "duplicate_outputs_of_nodes": lambda: model_proto(
            [mk("Relu", ["x"], ["y"]), mk("Sigmoid", ["x"], ["y"])], x23, y23
        ),
        "unknown_op": lambda: model_proto([mk("FooBar", ["x"], ["y"])], x23, y23),
        "control_chars_in_names": lambda: model_proto(
            [mk("FooBar", ["x"], ["y"], name="evil\nline\x1b[2J\x00")], x23, y23
        ),
        "custom_domain": lambda: model_proto([mk("Relu", ["x"], ["y"], domain="com.example")], x23, y23),
        "output_never_made": lambda: model_proto([mk("Relu", ["x"], ["t"])], x23, [vi("z", [2, 3])]),
        "no_nodes_no_outputs": lambda: model_proto([], x23, []),
        "constant_of_shape_huge": lambda: model_proto(
            [mk("ConstantOfShape", ["s"], ["c"]), mk("ReduceSum", ["c"], ["r"], keepdims=0),
             mk("Add", ["x", "r"], ["y"])], x23, y23, [shape_const([100000, 100000])],
        ),
        "broadcast_fold_huge": lambda: model_proto(
            [mk("ConstantOfShape", ["s1"], ["a"]), mk("ConstantOfShape", ["s2"], ["b"]),
             mk("Mul", ["a", "b"], ["c"]), mk("ReduceSum", ["c"], ["r"], keepdims=0),
             mk("Add", ["x", "r"], ["y"])], x23, y23,
            [helper.make_tensor("s1", TensorProto.INT64, [2], [100000, 1]),
             helper.make_tensor("s2", TensorProto.INT64, [2], [1, 100000])],
        ),
        "matmul_fold_huge": lambda: model_proto(
            [mk("ConstantOfShape", ["s1"], ["a"]), mk("ConstantOfShape", ["s2"], ["b"]),
             mk("MatMul", ["a", "b"], ["c"]), mk("Add", ["x", "c"], ["y"])], x23, y23,
            [helper.make_tensor("s1", TensorProto.INT64, [2], [100000, 1]),
             helper.make_tensor("s2", TensorProto.INT64, [2], [1, 100000])],
        ),
        "pad_fold_huge": lambda: model_proto(
            [mk("Pad", ["w", "p"], ["c"]), mk("Add", ["x", "c"], ["y"])], x23, y23,
            [const("w", np.ones((2, 3), np.float32)),
             helper.make_tensor("p", TensorProto.INT64, [4], [0, 0, 100000, 100000])],
        ),
        "random_normal_huge": lambda: model_proto(
            [mk("RandomNormal", [], ["c"], shape=[100000, 100000]), mk("Add", ["x", "c"], ["y"])], x23, y23
        ),
        "tile_fold_huge": lambda: model_proto(
            [mk("Tile", ["w", "r"], ["c"]), mk("Add", ["x", "c"], ["y"])], x23, y23,
            [const("w", np.ones((2, 3), np.float32)),
             helper.make_tensor("r", TensorProto.INT64, [2], [100000, 100000])],
        ),
        "range_fold_huge": lambda: model_proto(
            [mk("Range", ["s", "l", "d"], ["c"]), mk("Add", ["x", "c"], ["y"])], x23, y23,
            [helper.make_tensor("s", TensorProto.FLOAT, [], [0.0]),
             helper.make_tensor("l", TensorProto.FLOAT, [], [1e12]),
             helper.make_tensor("d", TensorProto.FLOAT, [], [1.0])],
        ),
        "input_2pow31_elements": lambda: model_proto(
            [mk("Relu", ["x"], ["y"])], [vi("x", [2**31])], [vi("y", [2**31])]
        ),
        "input_2pow40_elements": lambda: model_proto(
            [mk("Relu", ["x"], ["y"])], [vi("x", [2**20, 2**20])], [vi("y", [2**20, 2**20])]
        ),
        "negative_dim": lambda: model_proto([mk("Relu", ["x"], ["y"])], [vi("x", [-3, 2])], [vi("y", [-3, 2])]),
        "string_input": lambda: model_proto(
            [mk("Identity", ["x"], ["y"])], [vi("x", [2], TensorProto.STRING)], [vi("y", [2], TensorProto.STRING)]
        ),
        "complex_input": lambda: model_proto(
            [mk("Identity", ["x"], ["y"])], [vi("x", [2], TensorProto.COMPLEX64)],
            [vi("y", [2], TensorProto.COMPLEX64)],
        ),
        "softmax_axis_out_of_range": lambda: model_proto([mk("Softmax", ["x"], ["y"], axis=5)], x23, y23),
        "softmax_axis_string": lambda: model_proto([mk("Softmax", ["x"], ["y"], axis="a")], x23, y23),
        "matmul_mismatch": lambda: model_proto(
            [mk("MatMul", ["x", "w"], ["y"])], x23, [vi("y", [2, 4])], [const("w", np.ones((4, 4), np.float32))]
        ),
        "reshape_incompatible": lambda: model_proto(
            [mk("Reshape", ["x", "s"], ["y"])], x23, [vi("y", [7])], [shape_const([7])]
        ),
        "reshape_two_minus_one": lambda: model_proto(
            [mk("Reshape", ["x", "s"], ["y"])], x23, [vi("y", [3, 2])], [shape_const([-1, -1])]
        ),
        "transpose_bad_perm": lambda: model_proto([mk("Transpose", ["x"], ["y"], perm=[0, 0])], x23, y23),
        "concat_mismatch": lambda: model_proto(
            [mk("Concat", ["x", "w"], ["y"], axis=0)], x23, [vi("y", [4, 3])],
            [const("w", np.ones((2, 5), np.float32))],
        ),
        "gather_const_index_out_of_range": lambda: model_proto(
            [mk("Gather", ["w", "i"], ["y"], axis=0)], [], [vi("y", [1, 3])],
            [const("w", np.ones((2, 3), np.float32)), helper.make_tensor("i", TensorProto.INT64, [1], [7])],
        ),
        "slice_step_zero": lambda: model_proto(
            [mk("Slice", ["x", "st", "en", "ax", "sp"], ["y"])], x23, y23,
            [helper.make_tensor(n, TensorProto.INT64, [1], [v])
             for n, v in (("st", 0), ("en", 2), ("ax", 0), ("sp", 0))],
        ),  # fmt: skip
        "truncated_initializer": truncated_raw,
        "external_data_missing": lambda: _external_missing(),
        "no_opset": lambda: _no_opset(),
        "node_without_inputs": lambda: model_proto([mk("Relu", [], ["y"])], x23, y23),
        "input_without_type": lambda: model_proto(
            [mk("Relu", ["x"], ["y"])], [onnx.ValueInfoProto(name="x")], y23
        ),
    }


def _external_missing(location: str = "weights.data"):
    onnx, TensorProto, helper = _onnx()
    t = onnx.TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2, 3])
    t.data_location = TensorProto.EXTERNAL
    e = t.external_data.add()
    e.key, e.value = "location", location
    return model_proto([helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", [2, 3])], [vi("y", [2, 3])], [t])


def _no_opset():
    m = tiny_model()
    del m.opset_import[:]
    return m


BAD_MODELS = sorted(_bad_models())


def write_model(name: str, dest: str = "m.onnx") -> Setup:
    def setup(tmp: Path) -> None:
        (tmp / dest).write_bytes(_bad_models()[name]().SerializeToString())

    return setup


def write_proto(make: Callable[[], Any], dest: str) -> Setup:
    def setup(tmp: Path) -> None:
        (tmp / dest).write_bytes(make().SerializeToString())

    return setup


_HELD: list[Any] = []  # sockets kept listening while the cases run


def hold_port(tmp: Path) -> None:
    """Listens on a free local port and writes its number to {tmp}/port (argv: {port})."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    _HELD.append(sock)
    (tmp / "port").write_text(str(sock.getsockname()[1]))


def write_loop_kernel(dest: str) -> Setup:
    """FUSED_MLIR lowered to an nn_loop kernel for Wasm (what nnjit-translate takes)."""

    def setup(tmp: Path) -> None:
        import io

        from xdsl.parser import Parser
        from xdsl.printer import Printer

        from nnjit.compiler import run_pipeline
        from nnjit.registry import make_context

        module = Parser(make_context(), FUSED_MLIR).parse_module()
        run_pipeline(module, "convert-nn-tensor-to-nn-loop{target=wasm}")
        text = io.StringIO()
        Printer(stream=text).print_op(module)
        (tmp / dest).write_text(text.getvalue())

    return setup


def write(dest: str, data: bytes | str) -> Setup:
    def setup(tmp: Path) -> None:
        p = tmp / dest
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)

    return setup


def mkdir(dest: str) -> Setup:
    return lambda tmp: (tmp / dest).mkdir(parents=True, exist_ok=True)


def truncated_default(fraction: float, dest: str = "m.onnx") -> Setup:
    def setup(tmp: Path) -> None:
        src = DEFAULT_MODEL.read_bytes()
        (tmp / dest).write_bytes(src[: int(len(src) * fraction)])

    return setup


def symlink(dest: str, target: str) -> Setup:
    return lambda tmp: os.symlink(target, tmp / dest)


def fifo(dest: str) -> Setup:
    return lambda tmp: os.mkfifo(tmp / dest)


def edit_plan(fn: Callable[[dict], Any]) -> Setup:
    """Changes {tmp}/bundle/plan.json (fn edits the dict in place or returns a replacement)."""

    def setup(tmp: Path) -> None:
        p = tmp / "bundle" / "plan.json"
        plan = json.loads(p.read_text())
        new = fn(plan)
        p.write_text(json.dumps(plan if new is None else new))

    return setup


def edit_bundle_file(rel: str, fn: Callable[[bytes], bytes]) -> Setup:
    def setup(tmp: Path) -> None:
        p = tmp / "bundle" / rel
        p.write_bytes(fn(p.read_bytes()))

    return setup


def remove(rel: str) -> Setup:
    def setup(tmp: Path) -> None:
        p = tmp / rel
        shutil.rmtree(p) if p.is_dir() else p.unlink()

    return setup


def first_kernel(ext: str) -> Callable[[Path], str]:
    return lambda tmp: next(p.name for p in sorted((tmp / "bundle" / "kernels").glob(f"*.{ext}")))


KERNEL_MLIR = """\
func.func @main(%a: tensor<8x8xf32>, %b: tensor<8x8xf32>) -> tensor<8x8xf32> {
  %0 = nn_tensor.matmul %a, %b : (tensor<8x8xf32>, tensor<8x8xf32>) -> tensor<8x8xf32>
  func.return %0 : tensor<8x8xf32>
}
"""

FUSED_MLIR = """\
func.func @main(%a: tensor<8x8xf32>, %b: tensor<8x8xf32>) -> tensor<8x8xf32> {
  %0 = nn_tensor.fused %a, %b {kind = "matmul"} : (tensor<8x8xf32>, tensor<8x8xf32>) -> tensor<8x8xf32> {
  ^bb0(%x: tensor<8x8xf32>, %y: tensor<8x8xf32>):
    %1 = nn_tensor.matmul %x, %y : (tensor<8x8xf32>, tensor<8x8xf32>) -> tensor<8x8xf32>
    nn_tensor.yield %1 : tensor<8x8xf32>
  }
  func.return %0 : tensor<8x8xf32>
}
"""

TWO_KERNELS_MLIR = KERNEL_MLIR.replace(
    "  func.return %0", "  %1 = nn_tensor.matmul %0, %b : (tensor<8x8xf32>, tensor<8x8xf32>) -> "
    "tensor<8x8xf32>\n  func.return %1")
NO_KERNEL_MLIR = """\
func.func @main(%a: tensor<8x8xf32>) -> tensor<8x8xf32> {
  func.return %a : tensor<8x8xf32>
}
"""

# (file name, content) pairs that are not what a tool expects
GARBAGE_FILES: dict[str, bytes] = {
    "empty": b"",
    "text": b"hello, this is not a model\n",
    "binary": bytes(range(256)) * 8,
    "bad_utf8": b"\xff\xfe\xc3\x28 func.func @main() \xa0\xa1\n",
    "json": b'{"format": "something-else", "records": 3}',
    "nul_bytes": b"\0" * 4096,
    "protobuf_like": b"\x08\x07\x12\x04test\x3a\x00",
}

NUMERIC_BAD = ["-5", "0x", "abc", "nan", "inf", "", "1e400", "99999999999999999999"]


def _cli_option_cases() -> list[Case]:
    """Every numeric or list option of every nnjit subcommand, with values it must refuse."""
    out: list[Case] = []
    opts = {
        ("compile", "--candidates"): ["-5", "abc", "1.5", "100000"],
        ("compile", "--backend"): [",", "", "webgpu,foo", "WASM"],
        ("run", "--threads"): ["-3", "abc", "100000"],
        ("run", "--repeat"): ["0", "-1", "abc", "1e9"],
        ("run", "--tolerance"): ["-1", "nan", "abc", "inf"],
        ("run", "--seed"): ["-1", "abc"],
        ("tune", "--budget"): ["-5", "0", "nan", "inf", "abc"],
        ("tune", "--threads"): ["-3", "abc"],
        ("tune", "--timeout"): ["-1", "0", "nan"],
        ("tune", "--tolerance"): ["-1", "nan"],
        ("tune", "--search"): ["nosuch", ""],
        ("tune", "--runner"): ["nosuch", ""],
        ("bench", "--repeat"): ["0", "-2", "abc"],
        ("bench", "--threads"): ["-3", "x"],
        ("bench", "--runner"): ["nosuch"],
        ("serve", "--port"): ["99999", "-1", "abc", "65536"],
    }
    for (cmd, opt), values in opts.items():
        for v in values:
            extra = {"compile": ["-o", "{tmp}/out"], "serve": ["{bundle}"]}.get(cmd, [])
            ident = f"{cmd}{opt}={v or 'empty'}"
            needle = opt if v or opt not in ("--search", "--runner") else None
            if v and opt in ("--search", "--runner"):  # (checked after plugins load)
                needle = v
            out.append(Case(ident, "nnjit", [cmd, *extra, f"{opt}={v}"], needle=needle,
                            bundle=cmd == "serve"))  # fmt: skip
    for v in ["tile=-4", "reg=1000,1000", "reg=0,4", "vec=2", "vec=3", "kstep=-1", "workgroup=0",
              "tile=4096,4096", "nosuch=1", "reg=a", "target=wasm", "workgroup=99999,1", "vec=4 vec=1x",
              "kstep=1000", "shared=7", "rows=-1", "reg=16,16 kstep=64", "tile=1,2,3,4"]:  # fmt: skip
        needle = "workgroup" if v == "tile=4096,4096" else "loop options"
        out.append(Case(f"compile--loop-options={v}", "nnjit",
                        ["compile", "-o", "{tmp}/out", "--loop-options", v], needle=needle))  # fmt: skip
    for v in ["x=0", "x=-1", "=1x2", "x=", "x=1x", "nosuch=2x3", "x=3x3", "x=1x2x3",
              "x=99999999999x99999999999", "x=2x3=4", "x=2.5x3"]:  # fmt: skip
        out.append(Case(f"compile--shape={v}", "nnjit",
                        ["compile", "{tmp}/m.onnx", "-o", "{tmp}/out", "--shape", v],
                        setup=[write_proto(tiny_model, "m.onnx")], needle="shape"))  # fmt: skip
    return out


def _model_file_cases() -> list[Case]:
    out: list[Case] = []
    for cmd in ("compile", "run", "tune", "bench", "import"):
        extra = {"compile": ["-o", "{tmp}/out"], "import": ["-o", "{tmp}/out.mlir"]}.get(cmd, [])
        for name, data in GARBAGE_FILES.items():
            out.append(Case(f"{cmd}-model-{name}", "nnjit", [cmd, "{tmp}/m.onnx", *extra],
                            setup=[write("m.onnx", data)], needle="m.onnx"))  # fmt: skip
        out.append(Case(f"{cmd}-model-missing", "nnjit", [cmd, "{tmp}/nope.onnx", *extra], needle="nope.onnx"))
        out.append(Case(f"{cmd}-model-truncated", "nnjit", [cmd, "{tmp}/m.onnx", *extra],
                        setup=[truncated_default(0.4)], needle="m.onnx"))  # fmt: skip
        out.append(Case(f"{cmd}-model-dev-zero", "nnjit", [cmd, "/dev/zero", *extra], needle="/dev/zero"))
        out.append(Case(f"{cmd}-model-fifo", "nnjit", [cmd, "{tmp}/pipe.onnx", *extra],
                        setup=[fifo("pipe.onnx")], needle="pipe.onnx"))  # fmt: skip
        out.append(Case(f"{cmd}-model-dangling-symlink", "nnjit", [cmd, "{tmp}/link.onnx", *extra],
                        setup=[symlink("link.onnx", "/nonexistent/x.onnx")], needle="link.onnx"))  # fmt: skip
        if cmd != "run":  # (run takes a bundle directory)
            out.append(Case(f"{cmd}-model-directory", "nnjit", [cmd, "{tmp}/d", *extra],
                            setup=[mkdir("d")], needle="d"))  # fmt: skip
    for name in BAD_MODELS:
        out.append(Case(f"compile-onnx-{name}", "nnjit", ["compile", "{tmp}/m.onnx", "-o", "{tmp}/out"],
                        setup=[write_model(name)]))  # fmt: skip
    for name in ("cycle", "dangling_input", "opset_99", "constant_of_shape_huge", "input_2pow31_elements"):
        out.append(Case(f"run-onnx-{name}", "nnjit", ["run", "{tmp}/m.onnx", "--backend", "wasm"],
                        setup=[write_model(name)]))  # fmt: skip
    return out


def _compile_output_cases() -> list[Case]:
    tiny = write_proto(tiny_model, "m.onnx")
    return [
        Case("compile-o-is-a-file", "nnjit", ["compile", "{tmp}/m.onnx", "-o", "{tmp}/f"],
             setup=[tiny, write("f", "keep me")], needle="f"),
        Case("compile-o-nonbundle-dir", "nnjit", ["compile", "{tmp}/m.onnx", "-o", "{tmp}/d"],
             setup=[tiny, write("d/mine.txt", "keep me")], needle="d"),
        Case("compile-o-under-a-file", "nnjit", ["compile", "{tmp}/m.onnx", "-o", "{tmp}/f/out"],
             setup=[tiny, write("f", "keep me")], needle="f"),
        Case("compile-o-empty", "nnjit", ["compile", "{tmp}/m.onnx", "-o", ""], setup=[tiny]),
        Case("compile-o-nul-byte", "nnjit", ["compile", "{tmp}/m.onnx", "-o", "{tmp}/a\0b"], setup=[tiny]),
        Case("compile-records-missing", "nnjit",
             ["compile", "{tmp}/m.onnx", "-o", "{tmp}/out", "--tuning-records", "{tmp}/nope.json"],
             setup=[tiny], needle="nope.json"),
        Case("compile-records-other-json", "nnjit",
             ["compile", "{tmp}/m.onnx", "-o", "{tmp}/out", "--tuning-records", "{tmp}/r.json"],
             setup=[tiny, write("r.json", '{"a": [1, 2], "b": 3}')], needle="r.json"),
        Case("compile-records-json-list", "nnjit",
             ["compile", "{tmp}/m.onnx", "-o", "{tmp}/out", "--tuning-records", "{tmp}/r.json"],
             setup=[tiny, write("r.json", "[1, 2, 3]")], needle="r.json"),
        Case("compile-records-json-number", "nnjit",
             ["compile", "{tmp}/m.onnx", "-o", "{tmp}/out", "--tuning-records", "{tmp}/r.json"],
             setup=[tiny, write("r.json", "42")], needle="r.json"),
        Case("compile-records-garbage", "nnjit",
             ["compile", "{tmp}/m.onnx", "-o", "{tmp}/out", "--tuning-records", "{tmp}/r.json"],
             setup=[tiny, write("r.json", b"\xff\xfe\x00garbage")], needle="r.json"),
        Case("compile-records-bad-options", "nnjit",
             ["compile", "{tmp}/m.onnx", "-o", "{tmp}/out", "--tuning-records", "{tmp}/r.json"],
             setup=[tiny, write("r.json", json.dumps(
                 {"format": "nnjit-tuning-records", "records": {"x": {"options": [1, 2]}}}))],
             needle="r.json"),
        Case("compile-records-dir-of-garbage", "nnjit",
             ["compile", "{tmp}/m.onnx", "-o", "{tmp}/out", "--tuning-records", "{tmp}/recs"],
             setup=[tiny, write("recs/a.json", "{not json")], needle="a.json"),
        Case("compile-unknown-backend", "nnjit", ["compile", "{tmp}/m.onnx", "-o", "{tmp}/out", "--backend", "cuda"],
             setup=[tiny], needle="cuda"),
        Case("compile-reference-outputs-bad-model", "nnjit",
             ["compile", "{tmp}/m.onnx", "-o", "{tmp}/out", "--reference-outputs"],
             setup=[write_model("dangling_input")]),
    ]


def _bundle_cases() -> list[Case]:
    def run(*extra):
        return ["run", "{bundle}", "--backend", "wasm", *extra]

    cases = [
        ("plan-garbage", [write("bundle/plan.json", b"\xff\x00garbage")], run()),
        ("plan-empty", [write("bundle/plan.json", "")], run()),
        ("plan-list", [edit_plan(lambda p: [1, 2])], run()),
        ("plan-string", [edit_plan(lambda p: "nnjit-plan")], run()),
        ("plan-other-format", [edit_plan(lambda p: {**p, "format": "other"})], run()),
        ("plan-no-backends", [edit_plan(lambda p: p.pop("backends"))], run()),
        ("plan-no-model", [edit_plan(lambda p: p.pop("model"))], run()),
        ("plan-no-weights", [edit_plan(lambda p: p.pop("weights"))], run()),
        ("plan-files-not-dict", [edit_plan(lambda p: p.__setitem__("files", [1]))], run()),
        ("plan-backends-list", [edit_plan(lambda p: p.__setitem__("backends", ["wasm"]))], run()),
        ("plan-inputs-garbage", [edit_plan(lambda p: p["model"].__setitem__("inputs", [{"x": 1}]))], run()),
        ("plan-input-shape-negative",
         [edit_plan(lambda p: p["model"]["inputs"][0].__setitem__("shape", [-1, 16]))], run()),
        ("plan-input-dtype-bad",
         [edit_plan(lambda p: p["model"]["inputs"][0].__setitem__("dtype", "complex999"))], run()),
        ("plan-huge-arena", [edit_plan(lambda p: p["backends"]["wasm"].__setitem__("arena_bytes", 2**40))], run()),
        ("plan-negative-arena", [edit_plan(lambda p: p["backends"]["wasm"].__setitem__("arena_bytes", -5))], run()),
        ("plan-steps-unknown-kernel",
         [edit_plan(lambda p: p["backends"]["wasm"]["steps"][0].__setitem__("kernel", "nosuch"))], run()),
        ("plan-steps-bad-buffer",
         [edit_plan(lambda p: p["backends"]["wasm"]["steps"][0].__setitem__("args", [99999]))], run()),
        ("plan-weight-entry-out-of-file",
         [edit_plan(lambda p: next(iter(p["weights"]["entries"].values())).__setitem__("offset", 2**40))],
         run()),
        ("weights-truncated", [edit_bundle_file("weights.bin", lambda b: b[:100]),
                               edit_plan(lambda p: p["files"].pop("weights.bin"))], run()),
        ("weights-missing", [remove("bundle/weights.bin")], run()),
        ("weights-tampered", [edit_bundle_file("weights.bin", lambda b: b[:-4] + b"\0\0\0\1")], run()),
        ("kernels-dir-missing", [remove("bundle/kernels")], run()),
        ("plan-is-directory", [remove("bundle/plan.json"), mkdir("bundle/plan.json")], run()),
        ("no-plan", [remove("bundle/plan.json")], run()),
        ("backend-not-in-bundle", [], ["run", "{bundle}", "--backend", "webgpu"]),
        ("check-without-source", [edit_plan(lambda p: p.__setitem__("source", "/nonexistent.onnx"))],
         run("--check")),
        ("reference-missing", [], run("--check", "--reference", "{tmp}/nope.onnx")),
        ("reference-garbage", [write("ref.onnx", b"garbage")], run("--check", "--reference", "{tmp}/ref.onnx")),
        ("reference-directory", [mkdir("refdir")], run("--check", "--reference", "{tmp}/refdir")),
        ("reference-other-model", [write_proto(tiny_model, "ref.onnx")],
         run("--check", "--reference", "{tmp}/ref.onnx")),
        ("shape-on-bundle", [], run("--shape", "input_ids=1x8")),
        ("serve-missing-dir", [], ["serve", "{tmp}/nope"]),
        ("serve-not-a-bundle", [mkdir("empty")], ["serve", "{tmp}/empty"]),
        ("serve-file", [write("f", "x")], ["serve", "{tmp}/f"]),
        ("serve-nul-byte", [], ["serve", "{tmp}/a\0b"]),
        ("serve-port-in-use", [hold_port], ["serve", "{bundle}", "--port", "{port}"]),
        ("compile-o-inside-bundle", [], ["compile", "{model}", "-o", "{bundle}/kernels"]),
    ]
    out = [Case(f"bundle-{name}", "nnjit", argv, setup=setup, bundle=True) for name, setup, argv in cases]
    # the Python API on the same bundles (each call raises an NNJitError)
    def session(backend="wasm", **kw):
        def call(tmp: Path):
            from nnjit.runtime.session import Session

            return Session(tmp / "bundle", backend, **kw)

        return call

    def run_feeds(feeds: Callable[[dict], dict]):
        def call(tmp: Path):
            from nnjit.runtime.session import Session, random_feeds

            s = Session(tmp / "bundle", "wasm", threads=1)
            return s.run(feeds(random_feeds(s.plan)))

        return call

    def first_name(f: dict) -> str:
        return next(iter(f))

    api = [
        ("session-missing-dir", [remove("bundle")], session()),
        ("session-backend-foo", [], session("foo")),
        ("session-threads-negative", [], session(threads=-3)),
        ("session-plan-garbage", [write("bundle/plan.json", "{")], session()),
        ("session-weights-missing", [remove("bundle/weights.bin")], session()),
        ("run-missing-input", [], run_feeds(lambda f: {})),
        ("run-unknown-input", [], run_feeds(lambda f: {**f, "nosuch": np.zeros(1)})),
        ("run-wrong-shape", [], run_feeds(lambda f: {**f, first_name(f): np.zeros((1, 3), np.int64)})),
        ("run-wrong-dtype", [], run_feeds(lambda f: {**f, first_name(f): f[first_name(f)].astype(np.float32)})),
        ("run-string-input", [], run_feeds(lambda f: {**f, first_name(f): np.full(f[first_name(f)].shape, "a")})),
        ("run-object-input", [], run_feeds(lambda f: {**f, first_name(f): np.full(f[first_name(f)].shape, None)})),
        ("run-token-out-of-range", [], run_feeds(lambda f: {**f, first_name(f): f[first_name(f)] + 10**6})),
        ("run-token-negative", [], run_feeds(lambda f: {**f, first_name(f): f[first_name(f)] * 0 - 10**6})),
        ("run-token-int64-huge", [], run_feeds(lambda f: {**f, first_name(f): f[first_name(f)] * 0 + 2**40})),
        ("run-feeds-not-dict", [], run_feeds(lambda f: [1, 2])),
    ]
    out += [Case(f"api-{name}", "api", setup=setup, api=call, bundle=True) for name, setup, call in api]
    return out


def _api_compile_cases() -> list[Case]:
    def compile_(model: Any, **kw):
        def call(tmp: Path):
            from nnjit.compiler import compile_model

            m = model(tmp) if callable(model) else model
            args = {k: v(tmp) if callable(v) else v for k, v in kw.items()}  # (paths in tmp)
            return compile_model(m, tmp / "out", **args)

        return call

    def import_(model: Any, **kw):
        def call(tmp: Path):
            from nnjit.frontend import import_onnx

            return import_onnx(model(tmp) if callable(model) else model, **kw)

        return call

    def picks(source: Any):
        def call(tmp: Path):
            from nnjit.tuning.records import picks_from

            return picks_from(source(tmp) if callable(source) else source)

        return call

    def tune(model: Any, **kw):
        def call(tmp: Path):
            from nnjit.tuning.tuner import tune_model

            args = {"backend": "wasm", "progress": False, "cache_dir": tmp / "c", **kw}
            return tune_model(str(model(tmp)), **args)

        return call

    tiny = write_proto(tiny_model, "m.onnx")

    def m(tmp: Path) -> Path:
        return tmp / "m.onnx"

    api = [
        ("tune-budget-negative", [tiny], tune(m, budget=-5)),
        ("tune-budget-nan", [tiny], tune(m, budget=float("nan"))),
        ("tune-budget-string", [tiny], tune(m, budget="30")),
        ("tune-timeout-negative", [tiny], tune(m, candidate_timeout=-1)),
        ("tune-tolerance-nan", [tiny], tune(m, tolerance=float("nan"))),
        ("tune-model-missing", [], tune(lambda tmp: tmp / "nope.onnx")),
        ("tune-backend-cuda", [tiny], tune(m, backend="cuda")),
        ("compile-missing", [], compile_(lambda tmp: tmp / "nope.onnx")),
        ("compile-directory", [mkdir("d")], compile_(lambda tmp: tmp / "d")),
        ("compile-garbage-bytes", [], compile_(b"\x00\x01garbage")),
        ("compile-empty-bytes", [], compile_(b"")),
        ("compile-backend-foo", [tiny], compile_(m, backends=["foo"])),
        ("compile-backend-string", [tiny], compile_(m, backends="wasm,webgpu")),
        ("compile-backends-empty", [tiny], compile_(m, backends=[])),
        ("compile-candidates-negative", [tiny], compile_(m, candidates=-5)),
        ("compile-shapes-zero", [tiny], compile_(m, shapes={"x": (0, 3)})),
        ("compile-shapes-unknown", [tiny], compile_(m, shapes={"nosuch": (2, 3)})),
        ("compile-shapes-negative", [tiny], compile_(m, shapes={"x": (-2, 3)})),
        ("compile-loop-options-bad", [tiny], compile_(m, loop_options="tile=-4")),
        ("compile-loop-options-huge", [tiny], compile_(m, loop_options="reg=1000,1000")),
        ("compile-records-other-json", [tiny, write("r.json", "[1]")],
         compile_(m, tuning_records=lambda tmp: tmp / "r.json")),
        ("compile-dev-zero", [], compile_("/dev/zero")),
        ("import-garbage", [], import_(b"garbage")),
        ("import-cycle", [write_model("cycle")], import_(m)),
        ("import-opset-99", [write_model("opset_99")], import_(m)),
        ("import-huge-constant", [write_model("constant_of_shape_huge")], import_(m)),
        ("import-shape-not-int", [tiny], import_(m, shapes={"x": ("a", 3)})),
        ("records-missing", [], picks(lambda tmp: tmp / "nope.json")),
        ("records-other-json", [write("r.json", '{"a": 1}')], picks(lambda tmp: tmp / "r.json")),
        ("records-list-of-numbers", [write("r.json", "[1, 2]")], picks(lambda tmp: tmp / "r.json")),
        ("records-bad-utf8", [write("r.json", b"\xff\xfe")], picks(lambda tmp: tmp / "r.json")),
        ("records-int", [], picks(42)),
        ("records-dict-of-lists", [], picks({"sig": [1, 2, 3]})),
        ("records-format-bad-records", [],
         picks({"format": "nnjit-tuning-records", "records": [1, 2]})),
    ]
    return [Case(f"api-{name}", "api", setup=setup, api=call) for name, setup, call in api]


def _bench_tune_cases() -> list[Case]:
    return [
        Case("bench-kernel-is-onnx", "nnjit", ["bench", "--kernel", "{model}"], needle="default.onnx"),
        Case("bench-kernel-missing", "nnjit", ["bench", "--kernel", "{tmp}/nope.mlir"], needle="nope.mlir"),
        Case("bench-kernel-garbage", "nnjit", ["bench", "--kernel", "{tmp}/k.mlir"],
             setup=[write("k.mlir", "this is not IR")], needle="k.mlir"),
        Case("bench-kernel-bad-utf8", "nnjit", ["bench", "--kernel", "{tmp}/k.mlir"],
             setup=[write("k.mlir", GARBAGE_FILES["bad_utf8"])], needle="k.mlir"),
        Case("bench-kernel-directory", "nnjit", ["bench", "--kernel", "{tmp}/d"], setup=[mkdir("d")]),
        Case("bench-kernel-two-kernels", "nnjit", ["bench", "--kernel", "{tmp}/k.mlir"],
             setup=[write("k.mlir", TWO_KERNELS_MLIR)], needle="k.mlir"),
        Case("bench-kernel-no-kernel", "nnjit", ["bench", "--kernel", "{tmp}/k.mlir"],
             setup=[write("k.mlir", NO_KERNEL_MLIR)], needle="k.mlir"),
        Case("bench-kernel-bad-options", "nnjit",
             ["bench", "--kernel", "{tmp}/k.mlir", "--options", "reg=a"],
             setup=[write("k.mlir", FUSED_MLIR)], needle="reg"),
        Case("bench-kernel-huge-options", "nnjit",
             ["bench", "--kernel", "{tmp}/k.mlir", "--options", "reg=1000,1000"],
             setup=[write("k.mlir", FUSED_MLIR)], needle="reg"),
        Case("bench-kernel-negative-options", "nnjit",
             ["bench", "--kernel", "{tmp}/k.mlir", "--options", "tile=-4"],
             setup=[write("k.mlir", FUSED_MLIR)], needle="tile"),
        Case("bench-records-missing", "nnjit", ["bench", "--records", "{tmp}/nope.json", "--no-model"],
             needle="nope.json"),
        Case("bench-records-other-json", "nnjit", ["bench", "--records", "{tmp}/r.json", "--no-model"],
             setup=[write("r.json", "[true]")], needle="r.json"),
        Case("tune-cache-dir-is-file", "nnjit", ["tune", "--cache-dir", "{tmp}/f", "--budget", "1", "-q"],
             setup=[write("f", "x")], needle="f"),
        Case("tune-json-is-directory", "nnjit",
             ["tune", "{tmp}/m.onnx", "--json", "{tmp}/d", "--budget", "1", "-q"],
             setup=[write_model("unknown_op"), mkdir("d")]),
        Case("tune-plot-is-file", "nnjit", ["tune", "--plot", "{tmp}/f", "--budget", "1", "-q"],
             setup=[write("f", "x")], needle="f"),
        Case("tune-shape-bad", "nnjit", ["tune", "--shape", "x=0", "--budget", "1"], needle="shape"),
    ]


def _ir_tool_cases() -> list[Case]:
    out: list[Case] = []
    for tool in ("nnjit-opt", "nnjit-translate"):
        base = ["-t", "nnjit-wat"] if tool == "nnjit-translate" else []
        for name, data in GARBAGE_FILES.items():
            if name == "empty" and tool == "nnjit-opt":
                continue  # (an empty file is an empty module: valid)
            out.append(Case(f"{tool}-{name}", tool, ["{tmp}/in.mlir", *base],
                            setup=[write("in.mlir", data)], needle="in.mlir"))  # fmt: skip
        out += [
            Case(f"{tool}-onnx-model", tool, ["{model}", *base], needle="default.onnx"),
            Case(f"{tool}-missing", tool, ["{tmp}/nope.mlir", *base], needle="nope.mlir"),
            Case(f"{tool}-directory", tool, ["{tmp}/d", *base], setup=[mkdir("d")], needle="d"),
            Case(f"{tool}-dev-zero", tool, ["/dev/zero", *base], needle="/dev/zero"),
            Case(f"{tool}-fifo", tool, ["{tmp}/p.mlir", *base], setup=[fifo("p.mlir")], needle="p.mlir"),
            Case(f"{tool}-plugin-missing", tool, ["{tmp}/k.mlir", *base, "--plugin", "no_such_plugin_mod"],
                 setup=[write("k.mlir", FUSED_MLIR)], needle="no_such_plugin_mod"),
            Case(f"{tool}-unregistered-op", tool, ["{tmp}/k.mlir", *base],
                 setup=[write("k.mlir", '"foo.bar"() : () -> ()\n')], needle="foo.bar"),
            Case(f"{tool}-verify-fails", tool, ["{tmp}/k.mlir", *base],
                 setup=[write("k.mlir", KERNEL_MLIR.replace("-> tensor<8x8xf32>\n  func", "-> tensor<8x9xf32>\n  func"))]),
        ]
    kernel = [write("k.mlir", FUSED_MLIR)]
    for spec in ["nosuch-pass", "convert-nn-tensor-to-nn-loop{tile=-4}",
                 "convert-nn-tensor-to-nn-loop{target=wasm reg=1000,1000}",
                 "convert-nn-tensor-to-nn-loop{target=wasm vec=2}",
                 "convert-nn-tensor-to-nn-loop{target=cuda}", "convert-nn-tensor-to-nn-loop{nosuch=1}",
                 "convert-nn-tensor-to-nn-loop{target=wasm workgroup=-1}",
                 "convert-nn-tensor-to-nn-loop{", ",", "convert-nn-loop-to-wasm{relaxed-simd=maybe}"]:  # fmt: skip
        out.append(Case(f"nnjit-opt-pipeline-{spec}", "nnjit-opt", ["{tmp}/k.mlir", "-p", spec], setup=kernel))
    big = [write("big.mlir", FUSED_MLIR.replace("8x8", "512x512"))]
    for opts in ("reg=1000,1000", "kstep=100000", "reg=64,64 kstep=64", "tile=100000000"):
        out.append(Case(f"nnjit-opt-512-matmul-{opts}", "nnjit-opt",
                        ["{tmp}/big.mlir", "-p", f"convert-nn-tensor-to-nn-loop{{target=wasm {opts}}}"],
                        setup=big, needle=opts.split("=")[0]))  # fmt: skip
    huge = FUSED_MLIR.replace("8x8", "100000x100000")
    out.append(Case("nnjit-opt-tensor-over-32-bit-indexing", "nnjit-opt",
                    ["{tmp}/h.mlir", "-p", "convert-nn-tensor-to-nn-loop{target=wasm}"],
                    setup=[write("h.mlir", huge)], needle="32-bit"))  # fmt: skip
    for o in ("", "{tmp}/a\0b"):
        name = "empty" if not o else "nul"
        out.append(Case(f"nnjit-opt-o-{name}", "nnjit-opt", ["{tmp}/k.mlir", "-o", o], setup=kernel))
        out.append(Case(f"nnjit-translate-o-{name}", "nnjit-translate",
                        ["{tmp}/k.mlir", "-t", "nnjit-wat", "-o", o], setup=[write_loop_kernel("k.mlir")]))
    out += [
        Case("nnjit-opt-unknown-target", "nnjit-opt", ["{tmp}/k.mlir", "-t", "cuda"], setup=kernel),
        Case("nnjit-opt-output-is-dir", "nnjit-opt", ["{tmp}/k.mlir", "-o", "{tmp}/d"], setup=[*kernel, mkdir("d")]),
        Case("nnjit-opt-wrong-level-wgsl", "nnjit-opt", ["{tmp}/k.mlir", "-t", "nnjit-wgsl"], setup=kernel),
        Case("nnjit-translate-wrong-level", "nnjit-translate", ["{tmp}/k.mlir", "-t", "nnjit-wgsl"],
             setup=kernel),
        Case("nnjit-translate-no-target", "nnjit-translate", ["{tmp}/k.mlir"], setup=kernel),
        Case("nnjit-translate-bad-target", "nnjit-translate", ["{tmp}/k.mlir", "-t", "cuda"], setup=kernel),
        Case("nnjit-translate-output-is-dir", "nnjit-translate", ["{tmp}/k.mlir", "-t", "nnjit-wat", "-o", "{tmp}/d"],
             setup=[write("k.mlir", "builtin.module {}\n"), mkdir("d")]),
        Case("nnjit-translate-wasm-is-file", "nnjit-translate",
             ["{tmp}/k.mlir", "-t", "nnjit-wat", "--wasm", "{tmp}/f"],
             setup=[write("k.mlir", "builtin.module {}\n"), write("f", "x")]),
        Case("nnjit-translate-wasm-with-wgsl", "nnjit-translate",
             ["{tmp}/k.mlir", "-t", "nnjit-wgsl", "--wasm", "{tmp}/w"], setup=[write("k.mlir", "builtin.module {}\n")]),
    ]
    return out


def all_cases() -> list[Case]:
    cases = (_cli_option_cases() + _model_file_cases() + _compile_output_cases() + _bundle_cases()
             + _api_compile_cases() + _bench_tune_cases() + _ir_tool_cases())  # fmt: skip
    tiny = write_proto(tiny_model, "m.onnx")
    big = write_proto(lambda: model_proto([_onnx()[2].make_node("Relu", ["x"], ["y"])],
                                          [vi("x", [2**30])], [vi("y", [2**30])]), "big.onnx")  # fmt: skip
    cases += [
        Case("compile-wasm-memory-over-4gib", "nnjit", ["compile", "{tmp}/big.onnx", "-o", "{tmp}/out",
             "--backend", "wasm"], setup=[big], env={"NNJIT_MAX_TENSOR_ELEMENTS": str(2**31)},
             needle="4 GiB"),
        Case("compile-max-tensor-env-garbage", "nnjit", ["compile", "{tmp}/m.onnx", "-o", "{tmp}/out"],
             setup=[tiny], env={"NNJIT_MAX_TENSOR_ELEMENTS": "lots"}, needle="NNJIT_MAX_TENSOR_ELEMENTS"),
        Case("compile-tensor-over-env-limit", "nnjit", ["compile", "{tmp}/m.onnx", "-o", "{tmp}/out"],
             setup=[tiny], env={"NNJIT_MAX_TENSOR_ELEMENTS": "5"}, needle="NNJIT_MAX_TENSOR_ELEMENTS"),
        Case("nnjit-opt-over-ir-limit", "nnjit-opt", ["{tmp}/k.mlir"], setup=[write("k.mlir", FUSED_MLIR)],
             env={"NNJIT_MAX_IR_BYTES": "10"}, needle="NNJIT_MAX_IR_BYTES"),
        Case("nnjit-translate-ir-limit-zero", "nnjit-translate", ["{tmp}/k.mlir", "-t", "nnjit-wat"],
             setup=[write("k.mlir", FUSED_MLIR)], env={"NNJIT_MAX_IR_BYTES": "0"}, needle="NNJIT_MAX_IR_BYTES"),
        Case("compile-plugin-missing", "nnjit", ["compile", "{tmp}/m.onnx", "-o", "{tmp}/out", "--plugin",
             "no_such_plugin_mod"], setup=[tiny], needle="no_such_plugin_mod"),
        Case("import-o-is-dir", "nnjit", ["import", "{tmp}/m.onnx", "-o", "{tmp}/d"], setup=[tiny, mkdir("d")]),
        Case("import-o-under-file", "nnjit", ["import", "{tmp}/m.onnx", "-o", "{tmp}/f/x.mlir"],
             setup=[tiny, write("f", "keep")]),
        Case("import-bad-shape", "nnjit", ["import", "{tmp}/m.onnx", "--shape", "x=0x3"], setup=[tiny],
             needle="shape"),
        Case("import-unknown-op", "nnjit", ["import", "{tmp}/m.onnx", "-o", "{tmp}/o.mlir"],
             setup=[write_model("unknown_op")], needle="FooBar"),
        Case("nnjit-opt-deep-json-like-nesting", "nnjit-opt", ["{tmp}/k.mlir"],
             setup=[write("k.mlir", "builtin.module {" * 5000 + "}" * 5000)]),
        Case("tune-kernel-no-match", "nnjit", ["tune", "{tmp}/m.onnx", "--kernel", "nosuch", "--budget", "1",
             "-q"], setup=[tiny], needle="nosuch"),
    ]
    cases += [  # outputs where nothing can be written (/proc refuses new files)
        Case("import-o-unwritable", "nnjit", ["import", "{tmp}/m.onnx", "-o", "/proc/nnjit-x.mlir"],
             setup=[tiny], needle="/proc/nnjit-x.mlir"),
        Case("compile-o-unwritable", "nnjit", ["compile", "{tmp}/m.onnx", "-o", "/proc/nnjit-out"],
             setup=[tiny], needle="/proc/nnjit-out"),
        Case("nnjit-opt-o-unwritable", "nnjit-opt", ["{tmp}/k.mlir", "-o", "/proc/nnjit-x.mlir"],
             setup=[write("k.mlir", FUSED_MLIR)], needle="/proc/nnjit-x.mlir"),
        Case("nnjit-translate-o-unwritable", "nnjit-translate",
             ["{tmp}/k.mlir", "-t", "nnjit-wat", "-o", "/proc/nnjit-x.wat"],
             setup=[write_loop_kernel("k.mlir")], needle="/proc/nnjit-x.wat"),
        Case("nnjit-translate-wasm-unwritable", "nnjit-translate",
             ["{tmp}/k.mlir", "-t", "nnjit-wat", "--wasm", "/proc/nnjit-w"],
             setup=[write_loop_kernel("k.mlir")], needle="/proc/nnjit-w"),
        Case("compile-records-dev-zero", "nnjit",
             ["compile", "{tmp}/m.onnx", "-o", "{tmp}/out", "--tuning-records", "/dev/zero"],
             setup=[tiny], needle="/dev/zero"),
        Case("tune-json-unwritable", "nnjit", ["tune", "{tmp}/m.onnx", "--json", "/proc/nnjit-r.json",
             "--budget", "1", "-q"], setup=[tiny], needle="/proc/nnjit-r.json"),
    ]
    cases += [
        Case("compile-plugin-empty", "nnjit", ["compile", "{tmp}/m.onnx", "-o", "{tmp}/out", "--plugin="],
             setup=[tiny], needle="--plugin"),
        Case("compile-shape-twice", "nnjit", ["compile", "{tmp}/m.onnx", "-o", "{tmp}/out", "--shape", "x=2x3",
             "--shape", "x=4x5"], setup=[tiny], needle="twice"),
        Case("bench-options-without-kernel", "nnjit", ["bench", "{tmp}/m.onnx", "--options", "reg=4"],
             setup=[tiny], needle="--kernel"),
        Case("nnjit-plugins-env-missing", "nnjit", ["compile", "{tmp}/m.onnx", "-o", "{tmp}/out"],
             setup=[tiny], env={"NNJIT_PLUGINS": "no_such_plugin_env_mod"}, needle="no_such_plugin_env_mod"),
    ]
    def external(location: str) -> Setup:
        return write_proto(lambda: _external_missing(location), "ext.onnx")

    compile_ext = ["compile", "{tmp}/ext.onnx", "-o", "{tmp}/out"]
    cases += [  # external data that would read outside the model's folder, or without end
        Case("external-data-parent-dir", "nnjit", compile_ext, setup=[write("secret.bin", b"x" * 24),
             mkdir("m"), write_proto(lambda: _external_missing("../secret.bin"), "m/ext.onnx")],
             needle="external data"),
        Case("external-data-absolute", "nnjit", compile_ext, setup=[external("/etc/hostname")],
             needle="external data"),
        Case("external-data-symlink-dev-zero", "nnjit", compile_ext,
             setup=[external("z.data"), symlink("z.data", "/dev/zero")], needle="external data"),
        Case("external-data-fifo", "nnjit", compile_ext, setup=[external("z.data"), fifo("z.data")],
             needle="external data"),
        Case("external-data-short", "nnjit", compile_ext, setup=[external("z.data"), write("z.data", b"ab")],
             needle="ext.onnx"),
        Case("records-deeply-nested-json", "nnjit",
             ["compile", "{tmp}/m.onnx", "-o", "{tmp}/out", "--tuning-records", "{tmp}/r.json"],
             setup=[tiny, write("r.json", "[" * 100000 + "]" * 100000)], needle="r.json"),
    ]
    cases[-6].argv = ["compile", "{tmp}/m/ext.onnx", "-o", "{tmp}/out"]
    cases += [  # data loss and reads out of the bundle (fixed in nnjit/bundle.py): nothing moves
        Case("compile-o-dot", "nnjit", ["compile", "{tmp}/m.onnx", "-o", "."], setup=[tiny]),
        Case("compile-o-foreign-plan-json", "nnjit", ["compile", "{tmp}/m.onnx", "-o", "{tmp}/d"],
             setup=[tiny, write("d/plan.json", '{"mine": true}'), write("d/notes.txt", "keep")]),
        Case("compile-o-model-folder", "nnjit", ["compile", "{tmp}/m/m.onnx", "-o", "{tmp}/m"],
             setup=[mkdir("m"), write_proto(tiny_model, "m/m.onnx")]),
        Case("bundle-plan-version-99", "nnjit", ["run", "{bundle}", "--backend", "wasm"], bundle=True,
             setup=[edit_plan(lambda p: p.__setitem__("version", 99))], needle="version"),
        Case("bundle-plan-file-escapes", "nnjit", ["run", "{bundle}", "--backend", "wasm"], bundle=True,
             setup=[edit_plan(lambda p: p["files"].__setitem__("../m.onnx", "0" * 64)), tiny]),
        Case("bundle-plan-weights-absolute", "nnjit", ["run", "{bundle}", "--backend", "wasm"], bundle=True,
             setup=[edit_plan(lambda p: p["weights"].__setitem__("file", "/etc/hostname"))]),
        Case("bundle-unlisted-kernel-file", "nnjit", ["run", "{bundle}", "--backend", "wasm"], bundle=True,
             setup=[edit_plan(lambda p: [k.__setitem__("file", "kernels/extra.wasm")
                                         for k in p["backends"]["wasm"]["kernels"].values()]),
                    write("bundle/kernels/extra.wasm", b"\0asm")]),
    ]
    def sparse_weights(tmp: Path) -> None:  # 64 GiB that take no disk, nor memory to hash
        with open(tmp / "bundle" / "weights.bin", "r+b") as f:
            f.truncate(64 << 30)

    def sparse(rel: str) -> Setup:
        def setup(tmp: Path) -> None:
            with open(tmp / rel, "ab") as f:
                f.truncate(64 << 30)

        return setup

    cases.append(Case("bundle-plan-sparse-64gib", "nnjit", ["run", "{bundle}", "--backend", "wasm"],
                      bundle=True, setup=[sparse("bundle/plan.json")], needle="plan.json"))
    cases.append(Case("records-sparse-64gib", "nnjit",
                      ["compile", "{tmp}/m.onnx", "-o", "{tmp}/out", "--tuning-records", "{tmp}/r.json"],
                      setup=[tiny, sparse("r.json")], needle="r.json"))
    cases.append(Case("model-sparse-64gib", "nnjit", ["compile", "{tmp}/m.onnx", "-o", "{tmp}/out"],
                      setup=[sparse("m.onnx")], needle="m.onnx"))
    cases.append(Case("nnjit-opt-sparse-64gib", "nnjit-opt", ["{tmp}/k.mlir"],
                      setup=[sparse("k.mlir")], needle="k.mlir"))
    cases.append(Case("bundle-weights-sparse-64gib", "nnjit", ["run", "{bundle}", "--backend", "wasm"],
                      bundle=True, setup=[sparse_weights], needle="weights.bin"))
    for tool in ("nnjit-opt", "nnjit-translate"):
        base = ["-t", "nnjit-wat"] if tool == "nnjit-translate" else []
        cases += [
            Case(f"{tool}-stdin-dev-zero", tool, base, stdin="/dev/zero",
                 env={"NNJIT_MAX_IR_BYTES": str(1 << 20)}, needle="NNJIT_MAX_IR_BYTES"),
            Case(f"{tool}-stdin-bad-utf8", tool, base, stdin="{tmp}/in", setup=[write("in", b"\xff\xfe")],
                 needle="UTF-8"),
            Case(f"{tool}-stdin-garbage", tool, base, stdin="{tmp}/in", setup=[write("in", "garbage ((")]),
        ]
    cases.append(Case("no-subcommand", "nnjit", []))
    cases.append(Case("unknown-subcommand", "nnjit", ["frobnicate"]))
    cases.append(Case("unknown-flag", "nnjit", ["compile", "-o", "{tmp}/o", "--frob"]))
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]
    return cases
