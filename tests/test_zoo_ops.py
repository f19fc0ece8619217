"""ONNX ops and forms the model zoo needs, each decomposed by the frontend into existing
nn_tensor ops: compiled and run on WebGPU (lavapipe) and Wasm (wasmtime) against onnxruntime,
on ragged shapes and fresh random inputs (relative error <= 1e-5; ints exactly)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from tests.conftest import relative_error

F, I64 = np.float32, np.int64


def _model(
    nodes: Sequence[onnx.NodeProto],
    inputs: dict[str, tuple[Any, Sequence[int]]],
    outputs: Sequence[str],
    inits: dict[str, np.ndarray] | None = None,
    opset: int = 17,
) -> onnx.ModelProto:
    graph = helper.make_graph(
        list(nodes),
        "zoo_op",
        [
            helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.dtype(dt)), s)
            for n, (dt, s) in inputs.items()
        ],
        [helper.make_empty_tensor_value_info(n) for n in outputs],
        initializer=[numpy_helper.from_array(np.asarray(a), n) for n, a in (inits or {}).items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def check_both_backends(model: onnx.ModelProto, tmp_path: Path, feeds: dict | None = None,
                        tol: float = 1e-5) -> None:  # fmt: skip
    """Compile `model` once for both backends; each output must match onnxruntime."""
    import onnxruntime as ort

    from nnjit.compiler import compile_model
    from nnjit.runtime.session import Session

    rng = np.random.default_rng(secrets.randbits(32))
    feeds = dict(feeds or {})
    for vi in model.graph.input:
        if vi.name not in feeds:
            shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
            dt = helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)
            if np.dtype(dt).kind == "i":
                feeds[vi.name] = rng.integers(-20, 21, size=shape).astype(dt)
            else:
                feeds[vi.name] = rng.standard_normal(shape).astype(dt)
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    compile_model(path, tmp_path / "bundle", web_runtime=False)
    names = [o.name for o in model.graph.output]
    refs = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(names, feeds)
    for backend in ("webgpu", "wasm"):
        outs = Session(tmp_path / "bundle", backend, threads=2).run(feeds)
        for name, ref in zip(names, refs):
            got = outs[name]
            if ref.dtype.kind in "iub":
                np.testing.assert_array_equal(got, ref, err_msg=f"{backend} {name}")
            else:
                err = relative_error(got, ref)
                assert err <= tol, f"{backend} output {name}: relative error {err:.2e}"


@pytest.mark.parametrize(
    ("dtype", "shape", "axis", "exclusive", "reverse"),
    [(F, (3, 7, 5), 1, 0, 0), (I64, (2, 9), -1, 0, 0), (F, (5, 3), 0, 1, 1), (I64, (4, 6), 1, 1, 0)],
)
def test_cumsum(tmp_path, dtype, shape, axis, exclusive, reverse):
    node = helper.make_node("CumSum", ["x", "axis"], ["y"], exclusive=exclusive, reverse=reverse)
    m = _model([node], {"x": (dtype, shape)}, ["y"], {"axis": np.array(axis, I64)})
    check_both_backends(m, tmp_path)


@pytest.mark.parametrize(
    ("shape", "idx_shape", "axis"), [((3, 7, 5), (3, 4, 5), 1), ((6, 5), (6, 3), -1), ((3, 7, 5), (2, 9, 3), 1)]
)
def test_gather_elements_with_runtime_indices(tmp_path, shape, idx_shape, axis):
    rng = np.random.default_rng(secrets.randbits(32))
    dim = shape[axis]
    idx = rng.integers(-dim, dim, size=idx_shape).astype(I64)
    node = helper.make_node("GatherElements", ["x", "i"], ["y"], axis=axis)
    m = _model([node], {"x": (F, shape), "i": (I64, idx_shape)}, ["y"])
    check_both_backends(m, tmp_path, {"i": idx})


@pytest.mark.parametrize(
    ("shape", "pads", "value"),
    [((2, 5, 3), [0, 1, 2, 0, 3, 0], 0.0), ((4, 7), [0, -2, 0, 3], 1.5), ((3, 6), [1, 0, 0, -1], -2.0)],
)
def test_pad_constant(tmp_path, shape, pads, value):
    node = helper.make_node("Pad", ["x", "pads", "value"], ["y"], mode="constant")
    inits = {"pads": np.array(pads, I64), "value": np.array(value, F)}
    m = _model([node], {"x": (F, shape)}, ["y"], inits)
    check_both_backends(m, tmp_path)


def test_pad_reflect_is_refused_in_one_line():
    from nnjit.errors import UnsupportedError
    from nnjit.frontend import import_onnx

    node = helper.make_node("Pad", ["x", "pads"], ["y"], mode="reflect", name="pad0")
    m = _model([node], {"x": (F, (2, 5))}, ["y"], {"pads": np.array([0, 1, 0, 1], I64)})
    with pytest.raises(UnsupportedError, match=r"^node 'pad0' \(op Pad\): Pad mode 'reflect' is not"):
        import_onnx(m)


@pytest.mark.parametrize(
    ("shape", "w_shape", "attrs"),
    [
        ((1, 4, 23), (6, 4, 3), {"pads": [1, 1]}),
        ((2, 3, 40), (5, 3, 10), {"strides": [5]}),
        ((1, 4, 17), (4, 2, 5), {"pads": [2, 2], "group": 2, "dilations": [2]}),
    ],
)
def test_conv_1d(tmp_path, shape, w_shape, attrs):
    rng = np.random.default_rng(secrets.randbits(32))
    inits = {"w": rng.standard_normal(w_shape).astype(F), "b": rng.standard_normal(w_shape[0]).astype(F)}
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], **attrs)
    check_both_backends(_model([node], {"x": (F, shape)}, ["y"], inits), tmp_path)


@pytest.mark.parametrize("shape", [(1, 3, 11), (2, 5, 3, 7)])
def test_instance_normalization(tmp_path, shape):
    rng = np.random.default_rng(secrets.randbits(32))
    c = shape[1]
    inits = {"s": (1 + 0.3 * rng.standard_normal(c)).astype(F), "b": rng.standard_normal(c).astype(F)}
    node = helper.make_node("InstanceNormalization", ["x", "s", "b"], ["y"], epsilon=1e-5)
    check_both_backends(_model([node], {"x": (F, shape)}, ["y"], inits), tmp_path, tol=1e-4)


@pytest.mark.parametrize(
    ("shape", "w_shape", "group", "pads"),
    [((1, 6, 9, 7), (6, 1, 7, 7), 6, [3, 3, 3, 3]), ((2, 4, 5, 6), (6, 2, 3, 3), 2, [1, 0, 1, 2])],
)
def test_conv_grouped_2d(tmp_path, shape, w_shape, group, pads):
    rng = np.random.default_rng(secrets.randbits(32))
    inits = {"w": rng.standard_normal(w_shape).astype(F), "b": rng.standard_normal(w_shape[0]).astype(F)}
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], group=group, pads=pads)
    check_both_backends(_model([node], {"x": (F, shape)}, ["y"], inits), tmp_path)


@pytest.mark.parametrize(
    ("shape", "attrs"),
    [
        ((1, 3, 11, 9), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
        ((2, 2, 8, 7), {"kernel_shape": [2, 3], "strides": [1, 2]}),
        ((1, 2, 9, 9), {"kernel_shape": [3, 2], "dilations": [2, 1], "pads": [0, 1, 2, 0]}),
    ],
)
def test_max_pool(tmp_path, shape, attrs):
    node = helper.make_node("MaxPool", ["x"], ["y"], **attrs)
    check_both_backends(_model([node], {"x": (F, shape)}, ["y"]), tmp_path)


@pytest.mark.parametrize("shape", [(1, 5, 7, 3), (2, 3, 9)])
def test_batch_normalization(tmp_path, shape):
    rng = np.random.default_rng(secrets.randbits(32))
    c = shape[1]
    inits = {
        "s": rng.standard_normal(c).astype(F), "b": rng.standard_normal(c).astype(F),
        "m": rng.standard_normal(c).astype(F), "v": (1 + rng.random(c)).astype(F),
    }  # fmt: skip
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3)
    check_both_backends(_model([node], {"x": (F, shape)}, ["y"], inits), tmp_path)


@pytest.mark.parametrize("shape", [(4, 2, 4, 4), (3, 5, 4), (2, 4), (6, 12)])
def test_softmax_short_rows(tmp_path, shape):
    # MobileViT's attention over 4 patches: rows of one vector, where lavapipe's fast-math
    # folded the exp's rounding step (results were powers of two, relative error 0.1)
    nodes = [helper.make_node("Div", ["x", "c"], ["d"]), helper.make_node("Softmax", ["d"], ["y"], axis=-1)]
    m = _model(nodes, {"x": (F, shape)}, ["y"], {"c": np.array(0.7, F)})
    check_both_backends(m, tmp_path)


@pytest.mark.parametrize(
    ("shape", "w_shape", "group", "pads"),
    [((1, 6, 9, 7), (6, 1, 3, 3), 6, [1, 1, 1, 1]), ((1, 4, 37), (6, 2, 8), 2, [4, 4])],
)
def test_conv_grouped_one_conv_per_group(tmp_path, monkeypatch, shape, w_shape, group, pads):
    # wav2vec2-base's positional conv (768 channels, 16 groups, kernel 128) is too large for a
    # block-diagonal weight: it runs as one conv per group
    from nnjit.frontend.onnx_ops import contractions

    monkeypatch.setattr(contractions, "MAX_UNGROUPED_WEIGHT", 0)
    rng = np.random.default_rng(secrets.randbits(32))
    inits = {"w": rng.standard_normal(w_shape).astype(F), "b": rng.standard_normal(w_shape[0]).astype(F)}
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], group=group, pads=pads)
    check_both_backends(_model([node], {"x": (F, shape)}, ["y"], inits), tmp_path)


def test_conv_with_too_many_large_groups_is_refused_in_one_line(monkeypatch):
    from nnjit.errors import UnsupportedError
    from nnjit.frontend import import_onnx
    from nnjit.frontend.onnx_ops import contractions

    monkeypatch.setattr(contractions, "MAX_UNGROUPED_WEIGHT", 0)
    monkeypatch.setattr(contractions, "MAX_SPLIT_GROUPS", 4)
    inits = {"w": np.ones((6, 1, 3, 3), F)}
    node = helper.make_node("Conv", ["x", "w"], ["y"], group=6, name="dw")
    with pytest.raises(UnsupportedError, match=r"^node 'dw' \(op Conv\): Conv with group 6 on 6 channels"):
        import_onnx(_model([node], {"x": (F, (1, 6, 5, 5))}, ["y"], inits))


@pytest.mark.parametrize(
    ("scales", "sizes", "attrs"),
    [
        ([1, 1, 2, 2], None, {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}),
        ([1, 1, 2, 3], None, {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}),
        ([1, 1, 0.5, 1.5], None, {"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"}),
        (None, [1, 3, 9, 4], {"mode": "linear", "coordinate_transformation_mode": "align_corners"}),
        ([1, 1, 1.6, 2], None, {"mode": "cubic", "cubic_coeff_a": -0.75}),
        (None, [1, 3, 8, 11], {"mode": "nearest", "nearest_mode": "round_prefer_ceil"}),
    ],
)
def test_resize(tmp_path, scales, sizes, attrs):
    # separable: a constant gather (nearest) or matmul (linear, cubic) along each resized axis
    inits = {"roi": np.zeros(0, F)}
    ins = ["x", "roi"]
    if scales is not None:
        inits["scales"] = np.array(scales, F)
        ins.append("scales")
    else:
        inits["sizes"] = np.array(sizes, I64)
        ins += ["", "sizes"]
    node = helper.make_node("Resize", ins, ["y"], **attrs)
    check_both_backends(_model([node], {"x": (F, (1, 3, 5, 7))}, ["y"], inits, opset=18), tmp_path)


def test_resize_opset_11(tmp_path):
    inits = {"roi": np.zeros(0, F), "scales": np.array([1, 1, 2, 0.5], F)}
    node = helper.make_node("Resize", ["x", "roi", "scales"], ["y"], mode="linear")
    check_both_backends(_model([node], {"x": (F, (2, 3, 4, 6))}, ["y"], inits, opset=11), tmp_path)
