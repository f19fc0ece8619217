"""Models the importer must refuse: an opset newer than any ONNX knows, and a name defined twice
(two initializers, two inputs, a node output over an input). onnxruntime refuses them too, but
for two initializers of one name, where it warns and takes the last: nnjit does not guess. One
line that names the problem, exit status 1 from the CLI, nothing written."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from nnjit.errors import ModelFormatError


def _model(*, opset=17, inits=("w",), inputs=("x",), extra_nodes=()) -> onnx.ModelProto:
    nodes = [helper.make_node("Add", ["x", "w"], ["y"]), *extra_nodes]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 3]) for n in inputs],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
        [numpy_helper.from_array(np.full((2, 3), float(i), np.float32), n) for i, n in enumerate(inits)],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


BAD = [
    ("opset 99", _model(opset=99), "imports ONNX opset 99, newer than any opset nnjit knows"),
    ("two initializers", _model(inits=("w", "w")), "the name 'w' is defined twice (by an initializer and by an initializer)"),
    ("two inputs", _model(inputs=("x", "x")), "the name 'x' is defined twice (by a graph input and by a graph input)"),
    ("a node output over an input", _model(extra_nodes=[helper.make_node("Relu", ["y"], ["x"])]),
     "the name 'x' is defined twice (by a graph input and by node #1 (Relu))"),
]  # fmt: skip


@pytest.mark.parametrize("case,model,says", BAD, ids=[b[0] for b in BAD])
def test_refused_with_one_line(case, model, says, tmp_path, capsys):
    import onnxruntime as ort

    from nnjit.frontend import import_onnx
    from nnjit.tools.nnjit_main import main

    data = model.SerializeToString()
    if case != "two initializers":
        with pytest.raises(Exception):  # noqa: B017 - onnxruntime refuses it too (its own types)
            ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    with pytest.raises(ModelFormatError) as e:
        import_onnx(data)
    assert says in str(e.value) and "\n" not in str(e.value)
    path = tmp_path / "m.onnx"
    path.write_bytes(data)
    assert main(["compile", str(path), "-o", str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "b").exists()


def test_an_input_may_repeat_an_initializer_name():
    """(Older exporters list initializers among the inputs, as default values: legal ONNX.)"""
    from nnjit.frontend import import_onnx

    imported = import_onnx(_model(inputs=("x", "w")).SerializeToString())
    assert [t.name for t in imported.inputs] == ["x"]
