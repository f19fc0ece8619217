"""WAT printer: nn_wasm.module ops as WebAssembly text, one line per op, plus manifests.

    wat_kernels(module) -> [(kernel name, WAT text, manifest dict), ...]
    assemble(wat) -> bytes            # in-process (wasmtime's WAT parser)
    print_wat(module, stream)         # nnjit-translate -t nnjit-wat

The WAT is flat (stack-machine) text: every nn_wasm op prints as its instruction, structured
ops as `block $l` / `loop $l` / `if $l` ... `end`. Every identifier (functions, params,
locals, labels) goes through a NameSupply, so it is valid and never a reserved word even for
hand-written IR. The text also assembles with `wat2wasm --enable-relaxed-simd --enable-threads`.

Manifest: {"name", "target": "wasm", "kind", "schedule", "export": "run", "params":
[{"index", "access", "dtype", "shape", "bytes"}], "thread_chunks", "features"}.
"""

from __future__ import annotations

import json
from typing import IO, Any

from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    DictionaryAttr,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    StringAttr,
    UnitAttr,
)
from xdsl.ir import Attribute, Block, Operation

from nnjit.backends.names import NameSupply
from nnjit.dialects import nn_wasm as W
from nnjit.ir.fastir import (
    next_op_of,
    ops_under,
)


def attr_to_json(a: Attribute) -> Any:
    """A JSON value for a (schedule or manifest) attribute."""
    if isinstance(a, IntegerAttr):
        if isinstance(a.type, IntegerType) and a.type.width.data == 1:
            return bool(a.value.data)
        return a.value.data
    if isinstance(a, FloatAttr):
        return a.value.data
    if isinstance(a, StringAttr):
        return a.data
    if isinstance(a, ArrayAttr):
        return [attr_to_json(x) for x in a.data]
    if isinstance(a, DenseArrayBase):
        return list(a.get_values())
    if isinstance(a, DictionaryAttr):
        return {k: attr_to_json(v) for k, v in a.data.items()}
    if isinstance(a, UnitAttr):
        return True
    return str(a)


def manifest(mod: W.ModuleOp) -> dict[str, Any]:
    exports = [f.export_name.data for f in mod.funcs() if f.export_name is not None]
    return {
        "name": mod.sym_name.data,
        "target": "wasm",
        "kind": mod.kind.data,
        "schedule": attr_to_json(mod.schedule),
        "export": exports[0] if exports else "run",
        "params": [attr_to_json(p) for p in mod.params.data],
        "thread_chunks": mod.thread_chunks.value.data,
        "features": [f.data for f in mod.features.data],
    }


def _print_block(block: Block, ident, lines: list[str], depth: int, local_map: dict[str, str]):
    pad = "  " * depth
    op = block.first_op
    while op is not None:
        cls = type(op)
        prefix = _LOCAL_OPS.get(cls)
        if prefix is not None:  # (most lines: printed here without the method call)
            lines.append(pad + prefix + local_map[op.properties["local"].data])
            op = next_op_of(op)
            continue
        ok = _INSTR.get(cls)
        if ok is None:
            ok = _INSTR[cls] = issubclass(cls, W.WasmInstr)
        if not ok:
            raise ValueError(f"{op.name} is not an nn_wasm instruction")
        lines.append(pad + op.wat(ident))
        if op.regions:
            _print_block(op.regions[0].block, ident, lines, depth + 1, local_map)
            lines.append(pad + "end")
        op = next_op_of(op)


_INSTR: dict[type, bool] = {}
_LOCAL_OPS = {W.LocalGetOp: "local.get ", W.LocalSetOp: "local.set ", W.LocalTeeOp: "local.tee "}


def module_wat(mod: W.ModuleOp) -> str:
    """The WAT text of one nn_wasm.module."""
    fnames = NameSupply()
    fmap = {f.sym_name.data: "$" + fnames.fresh(f.sym_name.data) for f in mod.funcs()}
    lines = ["(module"]
    for op in mod.body.block.ops:
        if isinstance(op, W.ImportMemoryOp):
            lines.append("  " + op.wat())
    for f in mod.funcs():
        names = NameSupply()
        local_map: dict[str, str] = {}
        label_map: dict[str, str] = {}
        for n, _ in f.params() + f.locals():
            local_map[n] = "$" + names.fresh(n)

        def ident(kind: str, name: str, local_map=local_map, label_map=label_map, names=names):
            if kind == "local":
                return local_map[name]
            if kind == "func":
                return fmap[name]
            if name not in label_map:
                label_map[name] = "$" + names.fresh(name)
            return label_map[name]

        head = f"  (func {fmap[f.sym_name.data]}"
        if f.export_name is not None:
            head += f' (export "{f.export_name.data}")'
        head += "".join(f" (param {local_map[n]} {W.wat_type(t)})" for n, t in f.params())
        if f.returns.data:
            head += " (result " + " ".join(W.wat_type(t) for t in f.returns.data) + ")"
        lines.append(head)
        locs = f.locals()
        for k in range(0, len(locs), 8):
            lines.append(
                "    " + " ".join(f"(local {local_map[n]} {W.wat_type(t)})" for n, t in locs[k : k + 8])
            )
        _print_block(f.body.block, ident, lines, 2, local_map)
        lines.append("  )")
    lines.append(")")
    return "\n".join(lines) + "\n"


def _modules(module: Operation) -> list[W.ModuleOp]:
    """The nn_wasm.module ops under `module` (module.walk() order, not walking into them)."""
    return ops_under(module, W.ModuleOp)  # type: ignore[return-value]


def wat_kernels(module: Operation) -> list[tuple[str, str, dict[str, Any]]]:
    """(kernel name, WAT text, manifest) for every nn_wasm.module under `module`."""
    return [(m.sym_name.data, module_wat(m), manifest(m)) for m in _modules(module)]


def assemble(wat: str) -> bytes:
    """WAT text to a Wasm binary, in process (SIMD, relaxed SIMD and threads enabled)."""
    import wasmtime

    return bytes(wasmtime.wat2wasm(wat))


def print_wat(module: Operation, stream: IO[str]) -> None:
    """Every kernel: `;; kernel: <name>`, `;; manifest: <json>`, then its WAT module."""
    for name, wat, man in wat_kernels(module):
        stream.write(f";; kernel: {name}\n")
        stream.write(f";; manifest: {json.dumps(man, sort_keys=True)}\n")
        stream.write(wat)


__all__ = ["wat_kernels", "assemble", "print_wat", "module_wat", "manifest", "attr_to_json"]
