"""An nnjit plugin, written from outside nnjit: a tensor-level op, a pass that forms it, its
kernel lowering, and a converter for the ONNX op Swish. Importing this module registers all
four (see docs/extending.md).

    nnjit-opt --plugin nnjit_swish model.mlir -p 'swish-form,convert-nn-tensor-to-nn-loop{target=wasm}'
    nnjit compile --plugin nnjit_swish swish.onnx -o bundle/
"""

from nnjit.registry import (
    register_dialect,
    register_kernel_lowering,
    register_onnx_op,
    register_pass,
)

register_dialect("nnjit_swish", lambda: __import__("nnjit_swish.dialect", fromlist=["x"]).Swish)
register_pass("swish-form", lambda: __import__("nnjit_swish.passes", fromlist=["x"]).SwishFormPass)
register_kernel_lowering(
    "swish", lambda: __import__("nnjit_swish.lowering", fromlist=["x"]).lower_swish
)


def _convert_swish(cx, ins):
    from nnjit_swish.frontend import convert_swish

    return convert_swish(cx, ins)


register_onnx_op("Swish", _convert_swish)
