"""nn_wasm's functions and modules: `nn_wasm.module` (one kernel, with its manifest),
`nn_wasm.import_memory`, `nn_wasm.func` (whose verifier checks stack discipline), `call` and
`return` (part of the dialect `nnjit.dialects.nn_wasm`, which re-exports every name)."""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects.builtin import (
    I64,
    ArrayAttr,
    DictionaryAttr,
    IntegerAttr,
    StringAttr,
    SymbolRefAttr,
    UnitAttr,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    irdl_op_definition,
    lazy_traits_def,
    opt_prop_def,
    prop_def,
    region_def,
    traits_def,
    var_operand_def,
    var_result_def,
)
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import (
    HasParent,
    IsolatedFromAbove,
    IsTerminator,
    MemoryReadEffect,
    MemoryWriteEffect,
    NoTerminator,
    SymbolOpInterface,
    SymbolTable,
)
from xdsl.utils.exceptions import VerifyException

from nnjit.dialects.nn_wasm_control import _parse_body
from nnjit.dialects.nn_wasm_numeric import VALUE_TYPES, WasmInstr
from nnjit.dialects.nn_wasm_numeric import print_operands as _print_operands
from nnjit.dialects.nn_wasm_values import LocalGetOp, LocalSetOp, LocalTeeOp
from nnjit.ir.fastir import fast_init as _fast_init
from nnjit.ir.fastir import i64_attr as _i64
from nnjit.ir.fastir import str_attr as _str


def _parse_type_list(parser: Parser) -> list[Attribute]:
    if parser.parse_optional_punctuation("(") is not None:
        if parser.parse_optional_punctuation(")") is not None:
            return []
        ts = [parser.parse_type()]
        while parser.parse_optional_punctuation(",") is not None:
            ts.append(parser.parse_type())
        parser.parse_punctuation(")")
        return ts
    return [parser.parse_type()]



@irdl_op_definition
class CallOp(WasmInstr):
    """Calls function `callee` of the enclosing module with the operands as arguments."""

    name = "nn_wasm.call"
    callee = prop_def(SymbolRefAttr)
    args = var_operand_def()
    res = var_result_def()
    traits = traits_def(MemoryReadEffect(), MemoryWriteEffect())

    def __init__(
        self, callee: str, args: Sequence[SSAValue | Operation], result_types: Sequence[Attribute]
    ):
        _fast_init(self,
            operands=[args], result_types=[result_types],
            properties={"callee": SymbolRefAttr(callee)},
        )  # fmt: skip

    @classmethod
    def parse(cls, parser: Parser):
        callee = parser.parse_symbol_name().data
        unresolved = parser.parse_comma_separated_list(
            Parser.Delimiter.PAREN, parser.parse_unresolved_operand
        )
        parser.parse_punctuation(":")
        ins = _parse_type_list(parser)
        parser.parse_punctuation("->")
        outs = _parse_type_list(parser)
        if len(ins) != len(unresolved):
            parser.raise_error(f"{len(unresolved)} arguments but {len(ins)} types")
        args = [parser.resolve_operand(u, t) for u, t in zip(unresolved, ins)]
        return cls(callee, args, outs)

    def print(self, printer: Printer):
        printer.print_string(f" @{self.callee.root_reference.data}(")
        printer.print_list(self.args, printer.print_operand)
        printer.print_string(") : (")
        printer.print_list([a.type for a in self.args], printer.print_attribute)
        printer.print_string(") -> (")
        printer.print_list([r.type for r in self.res], printer.print_attribute)
        printer.print_string(")")

    def wat(self, ident):
        return f"call {ident('func', self.callee.root_reference.data)}"

    def verify_(self):
        module = self.parent_op()
        while module is not None and not isinstance(module, ModuleOp):
            module = module.parent_op()
        if module is None:
            return
        f = module.lookup_func(self.callee.root_reference.data)
        if f is None:
            raise VerifyException(
                f"nn_wasm.call: no function @{self.callee.root_reference.data} in the module"
            )
        want_in = list(f.param_types.data)
        want_out = list(f.returns.data)
        if [a.type for a in self.args] != want_in or [r.type for r in self.res] != want_out:
            raise VerifyException(
                f"nn_wasm.call: the types do not match the signature of "
                f"@{self.callee.root_reference.data}"
            )


@irdl_op_definition
class ReturnOp(WasmInstr):
    """Returns from the function with the operands as its results."""

    name = "nn_wasm.return"
    values = var_operand_def()
    traits = traits_def(IsTerminator())

    def __init__(self, values: Sequence[SSAValue | Operation] = ()):
        _fast_init(self, operands=[values])

    @classmethod
    def parse(cls, parser: Parser):
        unresolved = []
        if (u := parser.parse_optional_unresolved_operand()) is not None:
            unresolved.append(u)
            while parser.parse_optional_punctuation(",") is not None:
                unresolved.append(parser.parse_unresolved_operand())
        if not unresolved:
            return cls()
        parser.parse_punctuation(":")
        ts = _parse_type_list(parser)
        return cls([parser.resolve_operand(u, t) for u, t in zip(unresolved, ts)])

    def print(self, printer: Printer):
        if self.values:
            _print_operands(printer, self.values)
            printer.print_string(" : ")
            printer.print_list([v.type for v in self.values], printer.print_attribute)

    def verify_(self):
        f = _enclosing_func(self)
        if f is not None and [v.type for v in self.values] != list(f.returns.data):
            raise VerifyException(
                f"nn_wasm.return: returns {[str(v.type) for v in self.values]} but the function "
                f"results are {[str(t) for t in f.returns.data]}"
            )



def _enclosing_func(op: Operation) -> FuncOp | None:
    p = op.parent_op()
    while p is not None and not isinstance(p, FuncOp):
        p = p.parent_op()
    return p



# ------------------------------------------------------------------ functions, modules


def _check_stack(block: Block, where: str):
    """Stack discipline: each op pops exactly its operands from the top of the stack."""
    stack: list[SSAValue] = []
    for op in block.ops:
        n = len(op.operands)
        if n:
            top = stack[-n:] if n <= len(stack) else None
            if top is None or any(a is not b for a, b in zip(top, op.operands)):
                raise VerifyException(
                    f"{where}: {op.name} does not take its operands from the top of the stack "
                    "(each nn_wasm value must be used once, by a later op of the same block, "
                    "in push order)"
                )
            del stack[-n:]
        stack.extend(op.results)
        for r in op.regions:
            for b in r.blocks:
                _check_stack(b, where)
    if stack:
        raise VerifyException(
            f"{where}: {len(stack)} value(s) left on the stack at the end of a block "
            f"(first defined by {stack[0].owner.name})"
        )


@irdl_op_definition
class FuncOp(IRDLOperation):
    """A Wasm function: named params and locals, results, an optional export name.

    The body is a stack-machine block (see the module docstring); it ends with an
    `nn_wasm.return` when the function has results.
    """

    name = "nn_wasm.func"
    sym_name = prop_def(StringAttr)
    export_name = opt_prop_def(StringAttr)
    param_names = prop_def(ArrayAttr[StringAttr])
    param_types = prop_def(ArrayAttr)
    returns = prop_def(ArrayAttr)
    local_names = prop_def(ArrayAttr[StringAttr])
    local_types = prop_def(ArrayAttr)
    body = region_def("single_block")
    traits = lazy_traits_def(
        lambda: (HasParent(ModuleOp), SymbolOpInterface(), IsolatedFromAbove(), NoTerminator())
    )

    def __init__(
        self,
        name: str,
        params: Sequence[tuple[str, Attribute]],
        results: Sequence[Attribute] = (),
        locals_: Sequence[tuple[str, Attribute]] = (),
        export: str | None = None,
        body: Region | None = None,
    ):
        props: dict[str, Attribute] = {
            "sym_name": _str(name),
            "param_names": ArrayAttr([_str(n) for n, _ in params]),
            "param_types": ArrayAttr([t for _, t in params]),
            "returns": ArrayAttr(list(results)),
            "local_names": ArrayAttr([_str(n) for n, _ in locals_]),
            "local_types": ArrayAttr([t for _, t in locals_]),
        }
        if export is not None:
            props["export_name"] = StringAttr(export)
        _fast_init(self, properties=props, regions=[body if body is not None else Region(Block())])

    def params(self) -> list[tuple[str, Attribute]]:
        return [(n.data, t) for n, t in zip(self.param_names.data, self.param_types.data)]

    def locals(self) -> list[tuple[str, Attribute]]:
        return [(n.data, t) for n, t in zip(self.local_names.data, self.local_types.data)]

    def set_locals(self, locals_: Sequence[tuple[str, Attribute]]):
        self.local_names = ArrayAttr([StringAttr(n) for n, _ in locals_])
        self.local_types = ArrayAttr([t for _, t in locals_])

    def verify_(self):
        where = f"nn_wasm.func @{self.sym_name.data}"
        if len(self.param_names.data) != len(self.param_types.data):
            raise VerifyException(f"{where}: param names and types differ in number")
        if len(self.local_names.data) != len(self.local_types.data):
            raise VerifyException(f"{where}: local names and types differ in number")
        types: dict[str, Attribute] = {}
        for n, t in self.params() + self.locals():
            if n in types:
                raise VerifyException(f"{where}: local '{n}' is declared twice")
            if t not in VALUE_TYPES:
                raise VerifyException(f"{where}: local '{n}' has type {t}; expected i32, f32 or v128")
            types[n] = t
        for t in self.returns.data:
            if t not in VALUE_TYPES:
                raise VerifyException(f"{where}: result type {t} is not i32, f32 or v128")
        for op in self.body.walk():
            if isinstance(op, (LocalGetOp, LocalSetOp, LocalTeeOp)):
                n = op.local.data
                t = op.result.type if isinstance(op, LocalGetOp) else op.value.type
                if n not in types:
                    raise VerifyException(f"{where}: {op.name} of undeclared local '{n}'")
                if types[n] != t:
                    raise VerifyException(
                        f"{where}: {op.name} '{n}' uses type {t} but the local is {types[n]}"
                    )
        _check_stack(self.body.block, where)
        if self.returns.data and not isinstance(self.body.block.last_op, ReturnOp):
            raise VerifyException(f"{where}: a function with results must end with nn_wasm.return")

    def print(self, printer: Printer):
        printer.print_string(f" @{self.sym_name.data}")
        if self.export_name is not None:
            printer.print_string(" export ")
            printer.print_string_literal(self.export_name.data)
            printer.print_string(" ")

        def pl(pairs):
            printer.print_string("(")
            for k, (n, t) in enumerate(pairs):
                if k:
                    printer.print_string(", ")
                printer.print_string_literal(n)
                printer.print_string(": ")
                printer.print_attribute(t)
            printer.print_string(")")

        pl(self.params())
        if self.returns.data:
            printer.print_string(" -> (")
            printer.print_list(self.returns.data, printer.print_attribute)
            printer.print_string(")")
        if self.local_names.data:
            printer.print_string(" locals ")
            pl(self.locals())
        printer.print_string(" ")
        printer.print_region(self.body, print_entry_block_args=False)

    @classmethod
    def parse(cls, parser: Parser) -> FuncOp:
        name = parser.parse_symbol_name().data
        export = None
        if parser.parse_optional_keyword("export"):
            export = parser.parse_str_literal()

        def pair():
            n = parser.parse_str_literal()
            parser.parse_punctuation(":")
            return n, parser.parse_type()

        params = parser.parse_comma_separated_list(Parser.Delimiter.PAREN, pair)
        results: list[Attribute] = []
        if parser.parse_optional_punctuation("->") is not None:
            results = _parse_type_list(parser)
        locals_: list = []
        if parser.parse_optional_keyword("locals"):
            locals_ = parser.parse_comma_separated_list(Parser.Delimiter.PAREN, pair)
        body = _parse_body(parser)
        return cls(name, params, results, locals_, export, body)


@irdl_op_definition
class ImportMemoryOp(IRDLOperation):
    """Imports linear memory `module`.`field` with `min`/`max` pages, shared when `shared`."""

    name = "nn_wasm.import_memory"
    module = prop_def(StringAttr)
    field = prop_def(StringAttr)
    min_pages = prop_def(IntegerAttr[I64])
    max_pages = prop_def(IntegerAttr[I64])
    shared = opt_prop_def(UnitAttr)
    # (no memory-effect trait: it declares the module's memory, which dce must keep)
    traits = lazy_traits_def(lambda: (HasParent(ModuleOp),))

    def __init__(self, module: str = "env", field: str = "memory", min_pages: int = 1,
                 max_pages: int = 65536, shared: bool = True):  # fmt: skip
        props: dict[str, Attribute] = {
            "module": _str(module), "field": _str(field),
            "min_pages": _i64(min_pages), "max_pages": _i64(max_pages),
        }  # fmt: skip
        if shared:
            props["shared"] = UnitAttr()
        _fast_init(self, properties=props)

    def verify_(self):
        lo, hi = self.min_pages.value.data, self.max_pages.value.data
        if not 0 <= lo <= hi <= 65536:
            raise VerifyException(
                f"nn_wasm.import_memory: pages must satisfy 0 <= min ({lo}) <= max ({hi}) <= 65536"
            )

    def wat(self) -> str:
        sh = " shared" if self.shared is not None else ""
        return (
            f'(import "{self.module.data}" "{self.field.data}" '
            f"(memory {self.min_pages.value.data} {self.max_pages.value.data}{sh}))"
        )

    def print(self, printer: Printer):
        printer.print_string(" ")
        printer.print_string_literal(self.module.data)
        printer.print_string(" ")
        printer.print_string_literal(self.field.data)
        printer.print_string(f" min {self.min_pages.value.data} max {self.max_pages.value.data}")
        if self.shared is not None:
            printer.print_string(" shared")

    @classmethod
    def parse(cls, parser: Parser):
        module = parser.parse_str_literal()
        field = parser.parse_str_literal()
        parser.parse_keyword("min")
        lo = parser.parse_integer(allow_boolean=False, allow_negative=False)
        parser.parse_keyword("max")
        hi = parser.parse_integer(allow_boolean=False, allow_negative=False)
        shared = parser.parse_optional_keyword("shared") is not None
        return cls(module, field, lo, hi, shared)


MANIFEST_KEYS = ("kind", "schedule", "params", "thread_chunks", "features")


@irdl_op_definition
class ModuleOp(IRDLOperation):
    """One kernel as a Wasm module (symbol = kernel name): a memory import and functions.

    The properties carry the kernel's manifest: `kind`, `schedule`, `params` (one dictionary
    per kernel argument: index, access, dtype, shape, bytes), `thread_chunks` (iterations of
    the thread loop; 1 without one) and `features` ("simd128", "relaxed-simd", "threads").
    """

    name = "nn_wasm.module"
    sym_name = prop_def(StringAttr)
    kind = prop_def(StringAttr)
    schedule = prop_def(DictionaryAttr, default_value=DictionaryAttr({}))
    params = prop_def(ArrayAttr[DictionaryAttr])
    thread_chunks = prop_def(IntegerAttr[I64])
    features = prop_def(ArrayAttr[StringAttr])
    body = region_def("single_block")
    traits = traits_def(SymbolOpInterface(), SymbolTable(), IsolatedFromAbove(), NoTerminator())

    def __init__(
        self,
        name: str,
        kind: str,
        params: Sequence[DictionaryAttr],
        thread_chunks: int = 1,
        features: Sequence[str] = ("simd128", "threads"),
        schedule: DictionaryAttr | None = None,
        body: Region | None = None,
    ):
        _fast_init(self,
            properties={
                "sym_name": StringAttr(name),
                "kind": StringAttr(kind),
                "schedule": schedule if schedule is not None else DictionaryAttr({}),
                "params": ArrayAttr(list(params)),
                "thread_chunks": _i64(thread_chunks),
                "features": ArrayAttr([_str(f) for f in features]),
            },
            regions=[body if body is not None else Region(Block())],
        )

    def funcs(self) -> list[FuncOp]:
        return [o for o in self.body.block.ops if isinstance(o, FuncOp)]

    def lookup_func(self, name: str) -> FuncOp | None:
        for f in self.funcs():
            if f.sym_name.data == name:
                return f
        return None

    def verify_(self):
        where = f"nn_wasm.module @{self.sym_name.data}"
        for op in self.body.block.ops:
            if not isinstance(op, (FuncOp, ImportMemoryOp)):
                raise VerifyException(f"{where}: may only hold nn_wasm.import_memory and nn_wasm.func, not {op.name}")
        mems = [o for o in self.body.block.ops if isinstance(o, ImportMemoryOp)]
        if len(mems) > 1:
            raise VerifyException(f"{where}: at most one memory import")
        exports = [f.export_name.data for f in self.funcs() if f.export_name is not None]
        if len(exports) != len(set(exports)):
            raise VerifyException(f"{where}: two functions have the same export name")
        if self.thread_chunks.value.data < 1:
            raise VerifyException(f"{where}: thread_chunks must be >= 1")
        for f in self.features.data:
            if f.data not in ("simd128", "relaxed-simd", "threads"):
                raise VerifyException(f"{where}: unknown feature '{f.data}'")
        for k, p in enumerate(self.params.data):
            for key in ("index", "access", "dtype", "shape", "bytes"):
                if key not in p.data:
                    raise VerifyException(f"{where}: param {k} lacks '{key}'")

    def print(self, printer: Printer):
        printer.print_string(f" @{self.sym_name.data} manifest ")
        printer.print_attr_dict({k: getattr(self, k) for k in MANIFEST_KEYS})
        printer.print_string(" ")
        printer.print_region(self.body, print_entry_block_args=False)

    @classmethod
    def parse(cls, parser: Parser) -> ModuleOp:
        name = parser.parse_symbol_name().data
        parser.parse_keyword("manifest")
        d = parser.parse_optional_attr_dict()
        missing = [k for k in MANIFEST_KEYS if k != "schedule" and k not in d]
        if missing:
            parser.raise_error(f"nn_wasm.module manifest lacks {', '.join(missing)}")
        body = _parse_body(parser)
        op = cls(name, "x", [], 1, (), None, body)
        for k in MANIFEST_KEYS:
            if k in d:
                op.properties[k] = d[k]
        return op


