"""An nnjit plugin with one loop-level pass, written from outside nnjit: nn-loop-drop-empty-loops
erases the nn_loop.for ops that run zero times (see docs/extending.md, "Adding a pass to the
loop level"). Importing this module registers it.

    nnjit-opt --plugin nnjit_empty_loops kernels.mlir -p nn-loop-drop-empty-loops
"""

from nnjit.registry import register_pass

register_pass(
    "nn-loop-drop-empty-loops",
    lambda: __import__("nnjit_empty_loops.passes", fromlist=["x"]).DropEmptyLoopsPass,
)
