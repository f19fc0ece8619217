"""swish-form: x * sigmoid(x) (either operand order) -> nnjit_swish.swish(x)."""

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

from nnjit.dialects import nn_tensor

from .dialect import SwishOp


class MulSigmoidToSwish(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: nn_tensor.MulOp, rewriter: PatternRewriter):
        for x, s in ((op.lhs, op.rhs), (op.rhs, op.lhs)):
            sig = s.owner
            if isinstance(sig, nn_tensor.SigmoidOp) and sig.input == x and x.type == op.result.type:
                rewriter.replace(op, SwishOp(x))
                if not sig.results[0].uses:
                    rewriter.erase(sig)
                return


@dataclass(frozen=True)
class SwishFormPass(ModulePass):
    """Rewrites nn_tensor.mul(x, nn_tensor.sigmoid(x)) into nnjit_swish.swish(x)."""

    name = "swish-form"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(MulSigmoidToSwish()).rewrite_module(op)
