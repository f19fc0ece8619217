#!/usr/bin/env python3
"""Quantized and float16 variants of ONNX models, made with onnxruntime's own tools (what
users of ONNX Runtime Web and transformers.js ship), for nnjit's import tests and benchmarks.

    python tools/quantize_models.py                      # tests/models/quant/ from tests/models
    python tools/quantize_models.py models/minilm-legacy.onnx -o models/quant --variants qint8,q4
    python tools/build_models.py --quantized             # the same as the first line

Variants (file <model>.<variant>.onnx):
  qint8, quint8  onnxruntime.quantization.quantize_dynamic, QInt8 / QUInt8 weights
                 (DynamicQuantizeLinear + MatMulInteger)
  qdq            quantize_static in QDQ form (QuantizeLinear/DequantizeLinear around weights and
                 activations), calibrated on random inputs of the model's input ranges
  q4             MatMulNBitsQuantizer: com.microsoft MatMulNBits, 4 bits, blocks of 32 (it
                 leaves a MatMul whose K is not a multiple of 32 alone: no gpt2 file)
  fp16           every float32 initializer and tensor as float16, inputs and outputs kept
                 float32 (Casts at the edges): written here with onnx's helpers, as
                 onnxconverter_common's convert_float_to_float16(keep_io_types=True) does
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("qint8", "quint8", "qdq", "q4", "fp16")
TINY = ("bert-legacy", "minilm-legacy", "gpt2-legacy")


def _inputs(model: onnx.ModelProto, seed: int) -> dict[str, np.ndarray]:
    """Random inputs: token ids below 100 (the tiny vocabularies), masks of ones, floats N(0, 1)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    inits = {i.name for i in model.graph.initializer}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        shape = [d.dim_value if d.dim_value > 0 else 8 for d in tt.shape.dim]
        dt = helper.tensor_dtype_to_np_dtype(tt.elem_type)
        if "mask" in vi.name:
            feeds[vi.name] = np.ones(shape, dt)
        elif np.dtype(dt).kind == "i":
            feeds[vi.name] = rng.integers(0, 100, shape).astype(dt)
        else:
            feeds[vi.name] = rng.standard_normal(shape).astype(dt)
    return feeds


def _half(a: np.ndarray) -> np.ndarray:
    """float16, values past its range clamped to +-65504 (as onnxconverter_common does)."""
    return np.clip(a, -65504, 65504).astype(np.float16)


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """float32 initializers, Constants and Cast targets as float16; float32 graph inputs and
    outputs kept, with Casts at the edges."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    for init in g.initializer:
        if init.data_type == TensorProto.FLOAT:
            init.CopyFrom(numpy_helper.from_array(_half(numpy_helper.to_array(init)), init.name))
    for node in g.node:
        for a in node.attribute:
            if node.op_type == "Cast" and a.name == "to" and a.i == TensorProto.FLOAT:
                a.i = TensorProto.FLOAT16
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type == TensorProto.FLOAT:
                a.t.CopyFrom(numpy_helper.from_array(_half(numpy_helper.to_array(a.t)), a.t.name))
    for vi in g.value_info:
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
            vi.type.tensor_type.elem_type = TensorProto.FLOAT16
    inits = {i.name for i in g.initializer}
    head = []
    for vi in g.input:
        if vi.name in inits or vi.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        half = vi.name + "_fp16"
        for node in g.node:
            node.input[:] = [half if n == vi.name else n for n in node.input]
        head.append(helper.make_node("Cast", [vi.name], [half], to=TensorProto.FLOAT16))
    for vi in g.output:
        if vi.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        half = vi.name + "_fp16"
        for node in g.node:
            node.output[:] = [half if n == vi.name else n for n in node.output]
            node.input[:] = [half if n == vi.name else n for n in node.input]
        g.node.append(helper.make_node("Cast", [half], [vi.name], to=TensorProto.FLOAT))
    for i, n in enumerate(head):
        g.node.insert(i, n)
    return m


def quantize(src: Path, out: Path, variant: str) -> Path:
    """Writes <out>/<src stem>.<variant>.onnx and returns its path."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    dst = out / f"{src.stem}.{variant}.onnx"
    out.mkdir(parents=True, exist_ok=True)
    model = onnx.load(str(src))
    if variant in ("qint8", "quint8"):
        wt = QuantType.QInt8 if variant == "qint8" else QuantType.QUInt8
        quantize_dynamic(str(src), str(dst), weight_type=wt)
    elif variant == "qdq":

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self.left = [_inputs(model, s) for s in range(4)]

            def get_next(self):  # type: ignore[override]
                return self.left.pop() if self.left else None

        quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=["MatMul", "Gemm"],
                        calibrate_method=CalibrationMethod.MinMax)  # fmt: skip
    elif variant == "q4":
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

        q = MatMulNBitsQuantizer(model, block_size=32, is_symmetric=False)
        q.process()
        onnx.save(q.model.model, str(dst))
    elif variant == "fp16":
        onnx.save(to_fp16(model), str(dst))
    else:
        raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    return dst


def check(src: Path, dst: Path) -> float:
    """onnxruntime's max relative error of the variant against the float32 model."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    feeds = _inputs(onnx.load(str(src)), 123)
    a = ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    b = ort.InferenceSession(str(dst), so, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    return float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-30))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", help=f"ONNX files (default: tests/models/{{{','.join(TINY)}}}.onnx)")
    ap.add_argument("-o", "--out", default=None, help="output folder (default: tests/models/quant)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma list of " + ",".join(VARIANTS))
    opts = ap.parse_args(argv)
    srcs = [Path(m) for m in opts.models] or [ROOT / "tests/models" / f"{n}.onnx" for n in TINY]
    out = Path(opts.out or ROOT / "tests/models/quant")
    for src in srcs:
        for v in [v for v in opts.variants.split(",") if v]:
            if v == "q4" and src.stem == "gpt2-legacy":
                continue
            dst = quantize(src, out, v)
            print(f"{dst.relative_to(ROOT) if dst.is_relative_to(ROOT) else dst}: "
                  f"{dst.stat().st_size / 1024:.0f} KiB, onnxruntime vs float32 rel. error {check(src, dst):.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
