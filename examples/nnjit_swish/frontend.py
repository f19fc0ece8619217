"""The ONNX side: nodes `Swish` (ONNX opset 24; alpha 1 only) become nnjit_swish.swish."""

from nnjit.frontend.values import NodeContext, Value

from .dialect import SwishOp


def convert_swish(cx: NodeContext, ins: list[Value | None]) -> list[Value]:
    alpha = float(cx.attr("alpha", 1.0))
    if alpha != 1.0:
        raise cx.fail(f"Swish with alpha={alpha:g}: nnjit_swish supports alpha=1 only")
    x = cx.input(ins, 0)
    if x.dtype.kind != "f":
        raise cx.fail(f"Swish of a {x.dtype} tensor: nnjit_swish supports float32 only")
    return [cx.emit(SwishOp(cx.ssa(x)))]
