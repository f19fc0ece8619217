"""nn_wasm's structured control flow: `block`, `loop` and `if` (labelled bodies) and the
branches `br` and `br_if` (part of the dialect `nnjit.dialects.nn_wasm`, which re-exports every
name)."""

from __future__ import annotations

from collections.abc import Callable

from xdsl.dialects.builtin import StringAttr
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.irdl import irdl_op_definition, operand_def, prop_def, region_def, traits_def
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import IsolatedFromAbove, NoTerminator, RecursiveMemoryEffect
from xdsl.utils.exceptions import VerifyException

from nnjit.dialects.nn_wasm_numeric import WasmInstr, i32
from nnjit.dialects.nn_wasm_numeric import print_operands as _print_operands
from nnjit.ir.fastir import fast_init as _fast_init
from nnjit.ir.fastir import str_attr as _str


def _parse_body(parser: Parser) -> Region:
    """A region; `{ }` gets one empty block (bodies are single blocks)."""
    r = parser.parse_region()
    if not r.blocks:
        r.add_block(Block())
    return r



class _Structured(WasmInstr):
    """block / loop / if: a label and a body that starts and ends with an empty stack; the
    body's effects are the op's."""

    label = prop_def(StringAttr)
    body = region_def("single_block")
    traits = traits_def(NoTerminator(), RecursiveMemoryEffect())

    def __init__(self, label: str, body: Region | None = None):
        _fast_init(
            self, properties={"label": _str(label)},
            regions=[body if body is not None else Region(Block())],
        )  # fmt: skip

    @classmethod
    def parse(cls, parser: Parser):
        label = parser.parse_str_literal()
        return cls(label, _parse_body(parser))

    def print(self, printer: Printer):
        printer.print_string(" ")
        printer.print_string_literal(self.label.data)
        _print_operands(printer, self.operands)
        printer.print_string(" ")
        printer.print_region(self.body, print_entry_block_args=False)

    def wat(self, ident: Callable[[str, str], str]) -> str:
        return f"{self.mnemonic()} {ident('label', self.label.data)}"


@irdl_op_definition
class BlockOp(_Structured):
    """A block; `br label` inside jumps to its end."""

    name = "nn_wasm.block"


@irdl_op_definition
class LoopOp(_Structured):
    """A loop; `br label` inside jumps back to its start."""

    name = "nn_wasm.loop"


@irdl_op_definition
class IfOp(_Structured):
    """Runs its body when the popped i32 is non-zero."""

    name = "nn_wasm.if"
    cond = operand_def(i32)

    def __init__(self, label: str, cond: SSAValue | Operation, body: Region | None = None):
        _fast_init(
            self, operands=[cond], properties={"label": _str(label)},
            regions=[body if body is not None else Region(Block())],
        )  # fmt: skip

    @classmethod
    def parse(cls, parser: Parser):
        label = parser.parse_str_literal()
        cond = parser.parse_operand(i32)
        return cls(label, cond, _parse_body(parser))


class _Branch(WasmInstr):
    """A branch to the label of an enclosing block, loop or if of the same function (the
    search stops at the first op isolated from above: the nn_wasm.func). (No memory-effect
    trait: a branch is control flow, which dce must keep.)"""

    def wat(self, ident):
        return f"{self.mnemonic()} {ident('label', self.label.data)}"  # type: ignore[attr-defined]

    def verify_(self):
        label = self.label.data  # type: ignore[attr-defined]
        p = self.parent_op()
        while p is not None and not p.has_trait(IsolatedFromAbove):
            if isinstance(p, _Structured) and p.label.data == label:  # type: ignore[attr-defined]
                return
            p = p.parent_op()
        raise VerifyException(f"{self.name}: no enclosing block, loop or if is labelled '{label}'")


@irdl_op_definition
class BrOp(_Branch):
    """Branches to `label`: the end of a block/if, the start of a loop."""

    name = "nn_wasm.br"
    label = prop_def(StringAttr)

    def __init__(self, label: str):
        _fast_init(self, properties={"label": _str(label)})

    @classmethod
    def parse(cls, parser: Parser):
        return cls(parser.parse_str_literal())

    def print(self, printer: Printer):
        printer.print_string(" ")
        printer.print_string_literal(self.label.data)


@irdl_op_definition
class BrIfOp(_Branch):
    """Pops an i32 and branches to `label` when it is non-zero."""

    name = "nn_wasm.br_if"
    label = prop_def(StringAttr)
    cond = operand_def(i32)

    def __init__(self, label: str, cond: SSAValue | Operation):
        _fast_init(self, properties={"label": _str(label)}, operands=[cond])

    @classmethod
    def parse(cls, parser: Parser):
        label = parser.parse_str_literal()
        return cls(label, parser.parse_operand(i32))

    def print(self, printer: Printer):
        printer.print_string(" ")
        printer.print_string_literal(self.label.data)
        _print_operands(printer, self.operands)


