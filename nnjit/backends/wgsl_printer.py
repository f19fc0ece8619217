"""Prints nn_wgsl.module ops as WGSL source, one line per op, plus a manifest per kernel.

The printer is thin: every decision (types, vectorisation, guards, grid) was taken by
convert-nn-loop-to-wgsl. Identifiers all come from `NameSupply`; strings of the IR (kernel
names, kinds, schedules) reach only the manifest (JSON), never the WGSL source.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable
from typing import IO, Any

from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    DictionaryAttr,
    FloatAttr,
    IntegerAttr,
    StringAttr,
    f16,
    f32,
    i1,
)
from xdsl.ir import Attribute, Block, Operation, SSAValue

from nnjit.backends.names import WAT_RESERVED, WGSL_RESERVED, NameSupply
from nnjit.dialects import nn_wgsl as w
from nnjit.dialects.nn_wgsl.attributes import dense_values
from nnjit.ir.fastir import (
    IdentityCache,
    first_op_of,
    name_of,
    next_op_of,
    operands_of,
    ops_under,
    type_of,
)

_LANES = "xyzw"

# Builtin functions the printed code may call: a `let` of the same name would shadow them.
_WGSL_FUNCTIONS = frozenset(w.CALLS) | frozenset(
    "workgroupBarrier storageBarrier bitcast arrayLength workgroupUniformLoad".split()
)
_RESERVED = WGSL_RESERVED | WAT_RESERVED | _WGSL_FUNCTIONS
"""The names a printed identifier must not take."""


def _f32_literal(x: float) -> str:
    if not math.isfinite(x):
        raise ValueError(f"f32 literal {x} cannot be written in WGSL")
    bits = struct.pack("<f", x)
    for p in range(6, 18):
        s = f"{x:.{p}g}"
        # Tint (Chrome) rejects a literal whose exact value lies past the largest f32
        if struct.pack("<f", float(s)) == bits and abs(float(s)) <= 3.4028234663852886e38:
            break
    if "e" not in s and "." not in s:
        s += ".0"
    s += "f"
    return f"({s})" if s.startswith("-") else s


def _f16_literal(x: float) -> str:
    if not math.isfinite(x) or abs(x) > 65504.0:
        raise ValueError(f"f16 literal {x} cannot be written in WGSL")
    s = repr(float(x))  # (the value is rounded to f16 where it is used: WGSL's rule for `h`)
    s = (s if "e" in s or "." in s else s + ".0") + "h"
    return f"({s})" if s.startswith("-") else s


def literal(attr: Attribute) -> str:
    """A WGSL literal for an nn_wgsl.const value (negative ones parenthesised)."""
    if isinstance(attr, FloatAttr):
        if attr.type == f16:
            return _f16_literal(attr.value.data)
        return _f32_literal(attr.value.data)
    assert isinstance(attr, IntegerAttr)
    v = attr.value.data
    if attr.type == i1:
        return "true" if v else "false"
    if attr.type == w.u32:
        return f"{v % 2**32}u"
    if v == -(2**31):
        return "(-2147483647i - 1i)"
    return f"({v}i)" if v < 0 else f"{v}i"


class _Exprs(dict):
    """id() of a value -> its WGSL text: a name, or the literal of a constant (made at its
    first use from `consts`: id() -> the value attribute of an nn_wgsl.const printed so far);
    a value not printed yet is an error."""

    def __init__(self) -> None:
        super().__init__()
        self.consts: dict[int, Attribute] = {}

    def __missing__(self, key: int) -> str:
        attr = self.consts.get(key)
        if attr is None:
            raise ValueError("a value is used before it is defined")
        s = self[key] = _literal(attr)
        return s


class _ModulePrinter:
    def __init__(self, module: w.ModuleOp):
        self.module = module
        self.names = NameSupply(_RESERVED)
        # the WGSL text of each value, by id() (SSAValue's own hash is a Python-level call);
        # the module outlives the printer, so ids are not reused while it runs
        self.exprs = _Exprs()
        self.lines: list[str] = []
        self.counts: dict[str, int] = {}
        self.funcs: dict[str, str] = {}
        self.wid = self.names.fresh("wid")
        self.lid = self.names.fresh("lid")

    def name(self, v: SSAValue, default: str) -> str:
        base = name_of(v) or default  # (name_hint, without the property)
        # NameSupply resolves clashes by trying base_1, base_2, ...: start where we left off
        counts = self.counts
        k = counts.get(base, 0)
        counts[base] = k + 1
        n = self.names.fresh(f"{base}_{k}" if k else base)
        self.exprs[id(v)] = n
        return n

    def e(self, v: SSAValue) -> str:
        return self.exprs[id(v)]

    def run(self) -> str:
        out = self.lines
        entry = None
        if uses_f16(self.module):
            out.append("enable f16;")
            out.append("")
        for op in self.module.body.block.ops:
            if isinstance(op, w.BindingOp):
                t = op.result.type
                assert isinstance(t, w.ArrayType)
                mode = "read" if op.access.data == "read" else "read_write"
                n = self.name(op.result, f"b{op.binding.value.data}")
                out.append(
                    f"@group(0) @binding({op.binding.value.data}) "
                    f"var<storage, {mode}> {n}: {t.wgsl()};"
                )
            elif isinstance(op, w.WorkgroupVarOp):
                t = op.result.type
                assert isinstance(t, w.ArrayType)
                out.append(f"var<workgroup> {self.name(op.result, 'wg')}: {t.wgsl()};")
            elif isinstance(op, w.FuncOp):
                self.func(op)
            elif isinstance(op, w.EntryOp):
                entry = op
        assert entry is not None
        x, y, z = entry.size
        out.append("")
        out.append(f"@compute @workgroup_size({x}, {y}, {z})")
        out.append(
            f"fn main(@builtin(workgroup_id) {self.wid}: vec3<u32>, "
            f"@builtin(local_invocation_id) {self.lid}: vec3<u32>) {{"
        )
        self.block(entry.body.block, "  ")
        out.append("}")
        out.append("")
        return "\n".join(out)

    def func(self, op: w.FuncOp) -> None:
        fname = self.names.fresh(op.sym_name.data)
        self.funcs[op.sym_name.data] = fname
        params = ", ".join(
            f"{self.name(a, 'x')}: {_type_name(a.type)}" for a in op.body.block.args
        )
        self.lines.append("")
        self.lines.append(f"fn {fname}({params}) -> {_type_name(op.result_type)} {{")
        self.block(op.body.block, "  ")
        self.lines.append("}")

    def block(self, block: Block, ind: str) -> None:
        """Prints the ops of `block`: an expression op as `let name = expr;` (`_EXPR`), a
        statement as its line(s) (`_STMT`); a constant only as the literal its uses print."""
        lines = self.lines
        name = self.name
        op = first_op_of(block)
        while op is not None:
            cls = type(op)
            expr = _EXPR.get(cls)
            if expr is not None:
                e = expr(self, op)
                (r,) = op.results
                lines.append(f"{ind}let {name(r, 'v')} = {e};")
            elif cls is w.ConstOp:  # (before its uses: SSA dominance)
                (r,) = op.results
                self.exprs.consts[id(r)] = op.properties["value"]
            else:
                stmt = _STMT.get(cls)
                if stmt is None:
                    raise ValueError(f"{op.name} cannot be printed as WGSL")
                line = stmt(self, op, ind)
                if line is not None:
                    lines.append(ind + line)
            op = next_op_of(op)

    # expressions: one method per op, the expression its `let` binds
    # (operands and properties are read directly: IRDL's accessors cost more than printing;
    # the hot methods read self.exprs by id() themselves, rather than through `e`)

    def x_binary(self, op: w.BinaryOp) -> str:
        lhs, rhs = operands_of(op)
        ex = self.exprs
        return f"{ex[id(lhs)]} {_enum_text(op.properties['op'])} {ex[id(rhs)]}"

    def x_unary(self, op: w.UnaryOp) -> str:
        (a,) = operands_of(op)
        return f"{_enum_text(op.properties['op'])}{self.e(a)}"

    def x_load(self, op: w.LoadOp) -> str:
        ex = self.exprs
        ref, *indices = operands_of(op)
        return ex[id(ref)] + "".join([f"[{ex[id(i)]}]" for i in indices])

    def x_call(self, op: w.CallOp) -> str:
        ex = self.exprs
        args = ", ".join([ex[id(a)] for a in operands_of(op)])
        return f"{_enum_text(op.properties['callee'])}({args})"

    def x_call_func(self, op: w.CallFuncOp) -> str:
        f = self.funcs[op.properties["callee"].string_value()]
        return f"{f}({', '.join(map(self.e, operands_of(op)))})"

    def x_construct(self, op: w.ConstructOp) -> str:
        (r,) = op.results
        ex = self.exprs
        args = ", ".join([ex[id(a)] for a in operands_of(op)])
        return f"{_type_name(type_of(r))}({args})"

    def x_lane(self, op: w.LaneOp) -> str:
        (a,) = operands_of(op)
        return f"{self.exprs[id(a)]}.{_LANES[op.properties['lane'].value.data]}"

    def x_convert(self, op: w.ConvertOp) -> str:
        (a,), (r,) = operands_of(op), op.results
        return f"{_type_name(type_of(r))}({self.e(a)})"

    def x_bitcast(self, op: w.BitcastOp) -> str:
        (a,), (r,) = operands_of(op), op.results
        return f"bitcast<{_type_name(type_of(r))}>({self.e(a)})"

    def x_builtin(self, op: w.BuiltinOp) -> str:
        props = op.properties
        src = self.wid if _enum_text(props["builtin"]) == "workgroup_id" else self.lid
        return f"i32({src}.{_enum_text(props['dim'])})"

    # statements: one method per op, the line (without indentation) or None

    def p_store(self, op: w.StoreOp, ind: str) -> str:
        ex = self.exprs
        value, ref, *indices = operands_of(op)
        return f"{ex[id(ref)]}{''.join([f'[{ex[id(i)]}]' for i in indices])} = {ex[id(value)]};"

    def p_function_var(self, op: w.FunctionVarOp, ind: str) -> str:
        t = op.result.type
        assert isinstance(t, w.ArrayType)
        return f"var {self.name(op.result, 'p')}: {t.wgsl()};"

    def p_for(self, op: w.ForOp, ind: str) -> str:
        i = self.name(op.iv, "i")
        lb, ub, st = op.lb.value.data, op.ub.value.data, op.step.value.data
        inc = f"{i}++" if st == 1 else f"{i} += {_int_literal(st)}"
        self.lines.append(
            f"{ind}for (var {i}: i32 = {_int_literal(lb)}; {i} < {_int_literal(ub)}; {inc}) {{"
        )
        self.block(op.body.block, ind + "  ")
        return "}"

    def p_if(self, op: w.IfOp, ind: str) -> str:
        self.lines.append(f"{ind}if ({self.e(op.cond)}) {{")
        self.block(op.body.block, ind + "  ")
        return "}"

    def p_barrier(self, op: w.BarrierOp, ind: str) -> str:
        return "workgroupBarrier();"

    def p_return(self, op: w.ReturnOp, ind: str) -> str:
        return "return;" if op.value is None else f"return {self.e(op.value)};"


def _int_literal(v: int) -> str:
    return f"({v}i)" if v < 0 else f"{v}i"


_type_name = IdentityCache(w.type_name)
_enum_text: Callable[[Attribute], str] = IdentityCache(lambda a: str(a.data))
"""The WGSL text of an enum property (an operator, a builtin): formatting an enum member is
a chain of Python-level calls."""
_literal = IdentityCache(literal)


_EXPR = {
    w.BinaryOp: _ModulePrinter.x_binary,
    w.UnaryOp: _ModulePrinter.x_unary,
    w.LoadOp: _ModulePrinter.x_load,
    w.CallOp: _ModulePrinter.x_call,
    w.CallFuncOp: _ModulePrinter.x_call_func,
    w.ConstructOp: _ModulePrinter.x_construct,
    w.LaneOp: _ModulePrinter.x_lane,
    w.ConvertOp: _ModulePrinter.x_convert,
    w.BitcastOp: _ModulePrinter.x_bitcast,
    w.BuiltinOp: _ModulePrinter.x_builtin,
}
_STMT = {
    w.StoreOp: _ModulePrinter.p_store,
    w.FunctionVarOp: _ModulePrinter.p_function_var,
    w.ForOp: _ModulePrinter.p_for,
    w.IfOp: _ModulePrinter.p_if,
    w.BarrierOp: _ModulePrinter.p_barrier,
    w.ReturnOp: _ModulePrinter.p_return,
}


def _json_attr(a: Attribute) -> Any:
    if isinstance(a, IntegerAttr):
        return bool(a.value.data) if a.type == i1 else a.value.data
    if isinstance(a, FloatAttr):
        return a.value.data
    if isinstance(a, StringAttr):
        return a.data
    if isinstance(a, ArrayAttr):
        return [_json_attr(x) for x in a.data]
    if isinstance(a, DenseArrayBase):
        return list(dense_values(a))  # type: ignore[arg-type]
    if isinstance(a, DictionaryAttr):
        return {k: _json_attr(v) for k, v in a.data.items()}
    return str(a)


def uses_f16(module: w.ModuleOp) -> bool:
    """Whether a kernel uses f16 (WGSL's `enable f16;`, the device feature "shader-f16"): its
    bindings, workgroup arrays or function-scope arrays (those at the top of the entry) hold
    f16. (f16 values in registers come from f16 buffers in the kernels nnjit generates; the
    nested ops are not walked.)"""
    op = first_op_of(module.body.block)
    while op is not None:
        if type(op) is w.EntryOp:
            inner = first_op_of(op.body.block)
            while inner is not None:
                if type(inner) is w.FunctionVarOp and _holds_f16(type_of(inner.results[0])):
                    return True
                inner = next_op_of(inner)
        elif len(op.results) == 1 and _holds_f16(type_of(op.results[0])):
            return True
        op = next_op_of(op)
    return False


_holds_f16 = IdentityCache(w.uses_f16)


_DTYPE_BYTES = {"f32": 4, "i32": 4, "f16": 2}


def manifest(module: w.ModuleOp) -> dict[str, Any]:
    """The kernel's manifest: what a runtime needs to create buffers and dispatch it. A
    binding's dtype is "f32", "i32" or "f16" (2 bytes an element); a kernel that uses f16
    lists the device feature it needs: `"features": ["shader-f16"]` (absent otherwise)."""
    bindings = []
    wg_bytes = 0
    entry = module.entry
    for op in module.body.block.ops:
        if isinstance(op, w.BindingOp):
            t = op.result.type
            assert isinstance(t, w.ArrayType)
            elem = t.element
            scalar = elem.get_element_type() if hasattr(elem, "get_element_type") else elem
            shape = list(op.logical_shape)
            dtype = "f32" if scalar == f32 else "f16" if scalar == f16 else "i32"
            bindings.append(
                {
                    "binding": op.binding.value.data,
                    "access": op.access.data.value,
                    "dtype": dtype,
                    "shape": shape,
                    "bytes": _DTYPE_BYTES[dtype] * math.prod(shape),
                }
            )
        elif isinstance(op, w.WorkgroupVarOp):
            t = op.result.type
            assert isinstance(t, w.ArrayType)
            size = 2 if w.uses_f16(t.leaf) else 4
            wg_bytes += size * w.lanes(t.leaf) * t.total_count
    features = {"features": ["shader-f16"]} if uses_f16(module) else {}
    return {
        "name": module.sym_name.data,
        "target": "wgsl",
        "kind": module.kind.data,
        "schedule": _json_attr(module.schedule),
        "entry": "main",
        "workgroup_size": list(entry.size),
        "dispatch": list(module.dispatch_grid),
        "bindings": bindings,
        "workgroup_storage_bytes": wg_bytes,
        **features,
    }


def wgsl_source(module: w.ModuleOp) -> str:
    """The WGSL source of one nn_wgsl.module."""
    return _ModulePrinter(module).run()


def wgsl_kernels(module: Operation) -> list[tuple[str, str, dict[str, Any]]]:
    """(kernel name, WGSL source, manifest) for every nn_wgsl.module under `module`."""
    out = []
    for op in _modules(module):
        out.append((op.sym_name.data, wgsl_source(op), manifest(op)))
    return out


def _modules(root: Operation) -> list[w.ModuleOp]:
    """The nn_wgsl.module ops under root (module.walk() order, without walking into them)."""
    return ops_under(root, w.ModuleOp)  # type: ignore[return-value]


def _comment_safe(s: str) -> str:
    return json.dumps(s) if not s.isascii() or not s.isprintable() or not s else s


def print_wgsl(module: Operation, stream: IO[str]) -> None:
    """All kernels, each preceded by `// kernel: <name>` and `// manifest: {json}` lines."""
    for name, src, man in wgsl_kernels(module):
        stream.write(f"// kernel: {_comment_safe(name)}\n")
        stream.write(f"// manifest: {json.dumps(man, sort_keys=True)}\n")
        stream.write(src)
        stream.write("\n")


__all__ = ["wgsl_kernels", "wgsl_source", "print_wgsl", "manifest", "literal"]
