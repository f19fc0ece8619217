"""An nnjit plugin, written from outside nnjit: a tensor-level op, a pass that forms it, and its
kernel lowering. Importing this module registers all three (see docs/extending.md).

    nnjit-opt --plugin nnjit_swish model.mlir -p 'swish-form,convert-nn-tensor-to-nn-loop{target=wasm}'
"""

from nnjit.registry import register_dialect, register_kernel_lowering, register_pass

register_dialect("nnjit_swish", lambda: __import__("nnjit_swish.dialect", fromlist=["x"]).Swish)
register_pass("swish-form", lambda: __import__("nnjit_swish.passes", fromlist=["x"]).SwishFormPass)
register_kernel_lowering(
    "swish", lambda: __import__("nnjit_swish.lowering", fromlist=["x"]).lower_swish
)
