"""nn_wasm: WebAssembly text (WAT) as IR, one op per WAT instruction.

`nn_wasm` (xDSL owns the name `wasm`) models exactly what nnjit's Wasm kernels need: one
`nn_wasm.module` per kernel holding the shared-memory import and `nn_wasm.func`s (the exported
`run` and math helpers). Function bodies are WAT's stack machine written in SSA form:

* every instruction is one op named after its WAT mnemonic (`nn_wasm.f32x4.add` is
  `f32x4.add`); its operands are the values it pops and its results the values it pushes;
* the ops of a block are in WAT order and obey stack discipline: an op's operands are the
  values on top of the stack, in push order, so each value is used exactly once, in the block
  that defines it, and no value is left on the stack at the end of a block (the function
  verifier checks this). Values needed twice go through `local.set`/`local.get`/`local.tee`;
* locals, labels and functions are referred to by name (strings and symbols); the printer maps
  every name through `nnjit.backends.names.NameSupply`.

So printing is one line per op (`nnjit/backends/wat_printer.py`). Value types: `i32`, `f32` and
`!nn_wasm.v128`. Blocks, loops and ifs take and leave nothing on the stack (no block types).

Every op is a named class, defined by family in sibling modules and re-exported here (import
them from `nnjit.dialects.nn_wasm`): `nn_wasm_numeric` (value types, the instruction base class
and the fixed-type numeric instructions such as `F32AddOp`, a generated table), `nn_wasm_values`
(scalar constants, locals, select, drop), `nn_wasm_simd` (lane access, v128 constants),
`nn_wasm_memory` (loads and stores), `nn_wasm_control` (block, loop, if, branches) and
`nn_wasm_module` (module, memory import, functions, call, return). This module holds the
mnemonic table and the dialect. Ops declare their memory effects (numeric
instructions and constants are pure, loads and `local.get` read, stores and `local.set`/`tee`
write, blocks have their bodies' effects), so `dce` works on function bodies. `cse` does not
apply: merging two equal values would use one value twice, which stack discipline forbids.

Syntax: `%r = nn_wasm.<mnemonic> [immediates] [operands] [: types]`, for example
`%a = nn_wasm.local.get "x" : i32`, `%v = nn_wasm.v128.load offset=16 align=4 %a`,
`nn_wasm.f32.store offset=4 %a, %v`, `%e = nn_wasm.f32x4.extract_lane 2 %v`.
"""

from __future__ import annotations

from xdsl.ir import Dialect

from nnjit.dialects.nn_wasm_control import BlockOp, BrIfOp, BrOp, IfOp, LoopOp
from nnjit.dialects.nn_wasm_memory import (
    F32LoadOp,
    F32StoreOp,
    I32LoadOp,
    I32StoreOp,
    V128Load8x8SOp,
    V128Load32SplatOp,
    V128Load64SplatOp,
    V128LoadOp,
    V128StoreOp,
    _memprops,
)
from nnjit.dialects.nn_wasm_module import (
    MANIFEST_KEYS,
    CallOp,
    FuncOp,
    ImportMemoryOp,
    ModuleOp,
    ReturnOp,
)
from nnjit.dialects.nn_wasm_numeric import (
    NUMERIC_INSTRUCTIONS,
    VALUE_TYPES,
    V128Type,
    WasmInstr,
    f32,
    i32,
    v128,
)
from nnjit.dialects.nn_wasm_numeric import SIGNATURES as SIGNATURES  # (for the builders)
from nnjit.dialects.nn_wasm_simd import (
    SHAPE_ATTRS,
    F32x4ExtractLaneOp,
    F32x4ReplaceLaneOp,
    I32x4ExtractLaneOp,
    I32x4ReplaceLaneOp,
    LaneShape,
    LaneShapeAttr,
    V128ConstOp,
)
from nnjit.dialects.nn_wasm_values import (
    DropOp,
    F32ConstOp,
    I32ConstOp,
    LocalGetOp,
    LocalSetOp,
    LocalTeeOp,
    SelectOp,
    f32_bits,
    wat_f32,
    wat_type,
)
from nnjit.ir.fastir import i64_attr as _i64  # (for the builders)
from nnjit.ir.fastir import str_attr as _str  # (for the builders)

INSTRUCTIONS: dict[str, type[WasmInstr]] = {
    cls.name[8:]: cls
    for cls in (
        *NUMERIC_INSTRUCTIONS,
        I32LoadOp, F32LoadOp, V128LoadOp, V128Load32SplatOp, V128Load64SplatOp, V128Load8x8SOp, I32StoreOp, F32StoreOp,
        V128StoreOp, F32x4ExtractLaneOp, I32x4ExtractLaneOp, F32x4ReplaceLaneOp,
        I32x4ReplaceLaneOp, I32ConstOp, F32ConstOp, V128ConstOp, LocalGetOp, LocalSetOp,
        LocalTeeOp, SelectOp, DropOp, CallOp, ReturnOp, BlockOp, LoopOp, IfOp, BrOp, BrIfOp,
    )
}  # fmt: skip
"""WAT mnemonic -> op class, for every instruction (builders use it)."""

NNWasm = Dialect(
    "nn_wasm",
    [
        ModuleOp, ImportMemoryOp, FuncOp, *INSTRUCTIONS.values(),
    ],
    [V128Type, LaneShapeAttr],
)

__all__ = [
    "BlockOp",
    "BrIfOp",
    "BrOp",
    "CallOp",
    "DropOp",
    "F32ConstOp",
    "F32LoadOp",
    "F32StoreOp",
    "F32x4ExtractLaneOp",
    "F32x4ReplaceLaneOp",
    "FuncOp",
    "I32ConstOp",
    "V128Load8x8SOp",
    "I32LoadOp",
    "I32StoreOp",
    "I32x4ExtractLaneOp",
    "I32x4ReplaceLaneOp",
    "IfOp",
    "ImportMemoryOp",
    "LaneShape",
    "LaneShapeAttr",
    "LocalGetOp",
    "LocalSetOp",
    "LocalTeeOp",
    "LoopOp",
    "MANIFEST_KEYS",
    "ModuleOp",
    "NUMERIC_INSTRUCTIONS",
    "ReturnOp",
    "SHAPE_ATTRS",
    "SIGNATURES",
    "SelectOp",
    "V128ConstOp",
    "V128Load32SplatOp",
    "V128Load64SplatOp",
    "V128LoadOp",
    "V128StoreOp",
    "V128Type",
    "VALUE_TYPES",
    "WasmInstr",
    "_i64",
    "_memprops",
    "_str",
    "f32",
    "f32_bits",
    "i32",
    "v128",
    "wat_f32",
    "wat_type",
    "INSTRUCTIONS",
    "NNWasm",
]
