"""nn-loop-drop-empty-loops: an nn_loop.for whose trip count is 0 (ub <= lb) is erased."""

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from nnjit.dialects import nn_loop


class EraseZeroTripLoop(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn_loop.ForOp, rewriter: PatternRewriter):
        # nn_loop.for has no results: a loop that never runs its body has no effect at all
        if op.trip_count == 0:
            rewriter.erase(op)


@dataclass(frozen=True)
class DropEmptyLoopsPass(ModulePass):
    """Takes nn_loop kernels and erases their loops of zero trips (with their bodies); every
    other loop, and everything outside kernels, is left as it is."""

    name = "nn-loop-drop-empty-loops"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(EraseZeroTripLoop()).rewrite_module(op)
