"""convert-nn-loop-to-wasm unrolls `unroll U` loops while it emits: the WAT must be what
nn-loop-unroll followed by the conversion gives (the documented meaning of the marks), for
every kernel of the embedded model and for matmuls under several schedules (partial and full
unrolling, register tiles, k steps, row tails), and what an unrolled kernel computes is
checked against numpy."""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType, f32
from xdsl.ir import Block, Region

from nnjit.backends.wat_printer import manifest, module_wat
from nnjit.compiler import TENSOR_PIPELINE, run_pipeline
from nnjit.dialects import nn_loop
from nnjit.dialects import nn_tensor as nt
from nnjit.frontend import import_onnx
from nnjit.ir.fastir import kernels_under
from nnjit.models import default_model_path
from nnjit.passes.convert_nn_loop_to_wasm import lower_kernel
from nnjit.passes.nn_loop_unroll import unroll_all
from nnjit.runtime.wasm import WasmRuntime


def _both_ways(kernel: nn_loop.KernelOp) -> tuple[str, str]:
    """(WAT unrolled while emitting, WAT after nn-loop-unroll) of one kernel."""
    on_the_fly = module_wat(lower_kernel(kernel.clone()))
    materialised = kernel.clone()
    unroll_all(materialised)
    return on_the_fly, module_wat(lower_kernel(materialised))


def _marked(kernel: nn_loop.KernelOp) -> int:
    return sum(
        1 for op in kernel.walk() if isinstance(op, nn_loop.ForOp) and op.unroll.value.data > 1
    )


def _matmul(m: int, k: int, n: int) -> ModuleOp:
    ta, tb, tc = TensorType(f32, [m, k]), TensorType(f32, [k, n]), TensorType(f32, [m, n])
    block = Block(arg_types=[ta, tb])
    mm = nt.MatmulOp(block.args[0], block.args[1], tc)
    block.add_ops([mm, func.ReturnOp(mm.result)])
    return ModuleOp([func.FuncOp("main", ([ta, tb], [tc]), Region(block))])


def test_model_kernels_match_nn_loop_unroll():
    model = import_onnx(default_model_path())
    run_pipeline(model.module, TENSOR_PIPELINE + ",nn-tensor-pack-weights")
    run_pipeline(model.module, "convert-nn-tensor-to-nn-loop{target=wasm},nn-loop-expand-math{target=wasm}")
    kernels = kernels_under(model.module)
    assert len(kernels) >= 8
    marked = 0
    for kernel in kernels:
        fly, mat = _both_ways(kernel)
        assert fly == mat, kernel.sym_name.data
        marked += _marked(kernel) > 0
    assert marked >= 4  # the check covers unrolled kernels, not only plain loops


@pytest.mark.parametrize(
    "shape, options",
    [
        ((128, 64, 96), ""),
        ((37, 48, 40), "reg=3,16 kstep=4"),
        ((16, 32, 32), "reg=2,8 kstep=1"),
        ((7, 24, 20), "reg=4,4 kstep=8"),
        ((64, 32, 64), "tile=64,32 reg=1,32 kstep=2"),
    ],
)
def test_matmul_schedules_match_nn_loop_unroll(shape, options):
    module = _matmul(*shape)
    run_pipeline(module, f"convert-nn-tensor-to-nn-loop{{target=wasm {options}}}")
    (kernel,) = kernels_under(module)
    assert _marked(kernel) > 0
    fly, mat = _both_ways(kernel)
    assert fly == mat


def test_unrolled_matmul_computes_matmul():
    m, k, n = 37, 48, 40
    module = _matmul(m, k, n)
    run_pipeline(module, "convert-nn-tensor-to-nn-loop{target=wasm reg=3,16 kstep=4}")
    (kernel,) = kernels_under(module)
    wasm_module = lower_kernel(kernel)
    rng = np.random.default_rng()
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    rt = WasmRuntime(threads=2, initial_bytes=4 << 20)
    try:  # (outputs are NaN-poisoned before the run)
        (out,) = rt.run_kernel(module_wat(wasm_module), manifest(wasm_module), [a, b, None])
    finally:
        rt.close()
    ref = a.astype(np.float64) @ b.astype(np.float64)
    err = np.abs(out - ref).max() / np.abs(ref).max()
    assert err < 1e-5, err
