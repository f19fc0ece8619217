"""nn_wgsl: a WGSL compute shader as IR, one op per WGSL declaration or statement.

An `nn_wgsl.module @k` is one kernel (one WGSL module with entry point `main`). It holds
storage-buffer bindings (`nn_wgsl.binding`), workgroup memory (`nn_wgsl.workgroup_var`) and
the entry function (`nn_wgsl.entry`, with @workgroup_size). The entry body is statements:
function-scope arrays (`nn_wgsl.function_var`), `nn_wgsl.store`, `nn_wgsl.for`,
`nn_wgsl.if`, `nn_wgsl.barrier`, `nn_wgsl.return`; and expressions, each printed as one
`let`: constants (printed inline as literals), `nn_wgsl.binary`/`unary` operators,
`nn_wgsl.call` of WGSL builtin functions, `nn_wgsl.construct` (vectors), `nn_wgsl.lane`,
`nn_wgsl.convert`, `nn_wgsl.bitcast`, `nn_wgsl.load` and `nn_wgsl.builtin` (workgroup_id /
local_invocation_id). Loads and stores take one index per level of nested arrays
(`a[i][j]`), the last one possibly a lane of a vector element.

Value types are builtin types standing for WGSL ones: f32, i32, ui32 (u32), i1 (bool), f16
(the printer then writes `enable f16;`) and vector<Nx...> (vecN<...>, N = 2..4). Arrays (storage, workgroup, function scope) are values of
type `!nn_wgsl.array<space, T[, N]>` (N = 0 or absent: runtime-sized, storage only); T is a
value type or, for workgroup and function arrays, a fixed-size array of the same space
(`array<array<T, N1>, N0>`).

The dialect lives in four modules: `attributes` (enumerations, enum attributes, value types and
`!nn_wgsl.array`), `declarations` (module, bindings, workgroup memory, entry and helper
functions and their return), `statements` (function-scope arrays, loads, stores, for, if,
barrier) and `expressions`; this module gathers them into the `NNWgsl` dialect and re-exports
every name (`from nnjit.dialects.nn_wgsl import X` as before the split).
"""

from __future__ import annotations

from xdsl.dialects.builtin import f32, i1, i32
from xdsl.ir import Dialect

from nnjit.dialects.nn_wgsl.attributes import (
    ACCESS,
    ACCESS_ATTRS,
    ARITH_OPS,
    BINARY_OP_ATTRS,
    BINARY_OPS,
    BIT_OPS,
    BUILTIN_ATTRS,
    BUILTINS,
    CALLS,
    CMP_OPS,
    DIM_ATTRS,
    DIMS,
    FUNCTION_ATTRS,
    LOGIC_OPS,
    SHIFT_OPS,
    SPACE_ATTRS,
    SPACES,
    UNARY_OP_ATTRS,
    UNARY_OPS,
    AccessMode,
    AccessModeAttr,
    AddressSpace,
    AddressSpaceAttr,
    ArrayType,
    BinaryOperator,
    BinaryOperatorAttr,
    Builtin,
    BuiltinAttr,
    BuiltinFunction,
    BuiltinFunctionAttr,
    Dim,
    DimAttr,
    UnaryOperator,
    UnaryOperatorAttr,
    binary_result_type,
    bool_like,
    is_bool,
    is_float,
    is_int,
    is_scalar_type,
    is_value_type,
    lane_type,
    lanes,
    type_name,
    u32,
    uses_f16,
)
from nnjit.dialects.nn_wgsl.declarations import (
    BindingOp,
    EntryOp,
    FuncOp,
    ModuleOp,
    ReturnOp,
    WorkgroupVarOp,
)
from nnjit.dialects.nn_wgsl.expressions import (
    BinaryOp,
    BitcastOp,
    BuiltinOp,
    CallFuncOp,
    CallOp,
    ConstOp,
    ConstructOp,
    ConvertOp,
    LaneOp,
    UnaryOp,
)
from nnjit.dialects.nn_wgsl.statements import (
    BarrierOp,
    ForOp,
    FunctionVarOp,
    IfOp,
    LoadOp,
    StoreOp,
    indexed_type,
    is_uniform,
)

NNWgsl = Dialect(
    "nn_wgsl",
    [
        ModuleOp, BindingOp, WorkgroupVarOp, EntryOp, FunctionVarOp, LoadOp, StoreOp, ForOp,
        IfOp, BarrierOp, ReturnOp, FuncOp, CallFuncOp, ConstOp, BuiltinOp, BinaryOp, UnaryOp,
        CallOp, ConstructOp,
        LaneOp, ConvertOp, BitcastOp,
    ],  # fmt: skip
    [
        ArrayType, AddressSpaceAttr, AccessModeAttr, BuiltinAttr, DimAttr, BinaryOperatorAttr,
        UnaryOperatorAttr, BuiltinFunctionAttr,
    ],  # fmt: skip
)

__all__ = [
    "NNWgsl", "ArrayType", "ModuleOp", "BindingOp", "WorkgroupVarOp", "EntryOp",
    "FunctionVarOp", "LoadOp", "StoreOp", "ForOp", "IfOp", "BarrierOp", "ReturnOp", "FuncOp",
    "CallFuncOp", "ConstOp",
    "BuiltinOp", "BinaryOp", "UnaryOp", "CallOp", "ConstructOp", "LaneOp", "ConvertOp",
    "BitcastOp", "is_uniform", "lane_type", "u32", "type_name", "binary_result_type",
    "is_value_type", "SPACES",
    "ACCESS", "BINARY_OPS", "UNARY_OPS", "CALLS", "BUILTINS", "AddressSpace", "AccessMode",
    "Builtin", "Dim", "BinaryOperator", "UnaryOperator", "BuiltinFunction", "AddressSpaceAttr",
    "AccessModeAttr", "BuiltinAttr", "DimAttr", "BinaryOperatorAttr", "UnaryOperatorAttr",
    "BuiltinFunctionAttr", "SPACE_ATTRS", "ACCESS_ATTRS", "BUILTIN_ATTRS", "DIM_ATTRS",
    "BINARY_OP_ATTRS", "UNARY_OP_ATTRS", "FUNCTION_ATTRS",
    # (and the helpers of the type rules and the operator tables)
    "DIMS", "ARITH_OPS", "BIT_OPS", "SHIFT_OPS", "CMP_OPS", "LOGIC_OPS", "is_scalar_type",
    "is_float", "uses_f16", "is_int", "is_bool", "lanes", "bool_like", "indexed_type",
    # (the builtin types that stand for WGSL's f32, i32 and bool: nn_wgsl.f32 ...)
    "f32", "i32", "i1",
]  # fmt: skip
