"""nn-loop-unroll is the one unroller: every target's loop passes end with it, the Wasm
conversion has no unroller of its own (a loop still marked `unroll U` is an error naming the
pass), and what a kernel unrolled under several schedules (partial and full unrolling,
register tiles, k steps, row tails) computes in wasmtime is checked against numpy."""

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
from nnjit.errors import UnsupportedError
from nnjit.frontend import import_onnx
from nnjit.ir.fastir import kernels_under
from nnjit.models import default_model_path
from nnjit.passes.convert_nn_loop_to_wasm import lower_kernel
from nnjit.runtime.wasm import WasmRuntime
from nnjit.targets import TARGETS


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


def test_model_kernels_are_unrolled_by_the_loop_passes():
    model = import_onnx(default_model_path())
    run_pipeline(model.module, TENSOR_PIPELINE + ",nn-tensor-pack-weights")
    run_pipeline(model.module, "convert-nn-tensor-to-nn-loop{target=wasm}")
    kernels = kernels_under(model.module)
    assert len(kernels) >= 8
    assert sum(_marked(k) > 0 for k in kernels) >= 4  # the schedules do ask for unrolling
    run_pipeline(model.module, TARGETS["wasm"].loop_passes)
    assert all(_marked(k) == 0 for k in kernels_under(model.module))
    for kernel in kernels_under(model.module):
        assert "(module" in module_wat(lower_kernel(kernel))


def test_negative_the_conversion_rejects_a_marked_loop():
    module = _matmul(16, 32, 32)
    run_pipeline(module, "convert-nn-tensor-to-nn-loop{target=wasm reg=2,8 kstep=2}")
    (kernel,) = kernels_under(module)
    assert _marked(kernel) > 0
    with pytest.raises(UnsupportedError, match=r"marked unroll \d+ .*run nn-loop-unroll before"):
        lower_kernel(kernel)


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
def test_unrolled_matmul_computes_matmul(shape, options):
    m, k, n = shape
    module = _matmul(m, k, n)
    run_pipeline(module, f"convert-nn-tensor-to-nn-loop{{target=wasm {options}}}")
    (kernel,) = kernels_under(module)
    assert _marked(kernel) > 0
    run_pipeline(module, TARGETS["wasm"].loop_passes)
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
