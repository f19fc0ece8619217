"""nnjit_swish: one tensor-level op."""

from typing import ClassVar

from xdsl.dialects.builtin import TensorType
from xdsl.ir import Dialect, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    VarConstraint,
    base,
    irdl_op_definition,
    operand_def,
    result_def,
    traits_def,
)
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException


@irdl_op_definition
class SwishOp(IRDLOperation):
    """Elementwise x * sigmoid(x) on an f32 tensor."""

    name = "nnjit_swish.swish"
    T: ClassVar = VarConstraint("T", base(TensorType))
    input = operand_def(T)
    result = result_def(T)
    traits = traits_def(Pure())
    assembly_format = "$input attr-dict `:` type($input)"

    def __init__(self, input: SSAValue):
        super().__init__(operands=[input], result_types=[input.type])

    def verify_(self):
        if self.input.type != self.result.type:
            raise VerifyException("nnjit_swish.swish: result type must equal the input type")


Swish = Dialect("nnjit_swish", [SwishOp], [])
