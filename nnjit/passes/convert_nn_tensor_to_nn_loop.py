"""convert-nn-tensor-to-nn-loop: bufferize @main and lower each fused op to an nn_loop.kernel.

Takes a module whose `func.func @main` is over tensors (nn_tensor ops, fused by
nn-tensor-fuse or not: a lone compute op is first wrapped in a fused op of its own kind);
gives docs/ir.md "The model": @main over memrefs in destination-passing form (inputs, then
one argument per output; i64 and i1 tensors are i32 buffers) with `nnjit.num_outputs`, and
one module-level `nn_loop.kernel @k<N>_<kind>` per fused op, launched in program order.

* `nn_tensor.weight` -> `nn_loop.weight`, `nn_tensor.constant` -> `nn_loop.constant` (values
  as i32 for i64/i1), `nn_tensor.reshape` -> `nn_loop.view`, a fused op -> `nn_loop.buffer`
  + `nn_loop.launch` (a returned result is written straight into its output argument);
  an output that is an input, a weight, a constant, a view, or a value returned twice gets
  a "copy" kernel. A kernel that reads a weight as float16 (schedule f16) is launched on an
  `nn_loop.weight` of the same key typed f16 (the runtime stores the weight so), one whose
  matmul reads int8 weights as bytes (nn-tensor-int8-weights) on one typed i8; any other
  operand of another element type than the kernel's argument is an error.
* Kernels come from `nnjit.passes.lowering.lowering_for(kind)`, with the pass options
  (below) overridden by the fused op's `schedule` attribute, if any.

Options (empty / 0 / -1: the kind's default for the target; see nnjit/passes/lowering/):
  target (wgsl | wasm), workgroup (invocations per workgroup), tile (output tile per
  workgroup / thread chunk), reg (register tile), vec (1 or 4), kstep (matmul k unroll),
  shared (matmul: stage tiles in workgroup memory; 2: double-buffered), rows
  (softmax/layer_norm/reduce rows per workgroup or chunk), f16 (wgsl matmul: B read as
  float16); a matmul's 3-D workgroup (x, y, z) splits k into z slices (see
  nnjit/passes/lowering/gemm/wgsl.py). Values past the bounds of
  nnjit/passes/lowering/schedule.py (a register tile of 256 elements, kstep 64, reg x kstep 4096
  unrolled multiply-adds, tile/rows 65536) are refused, naming the option; so is a tensor of
  more than 2^30 elements (kernels address buffers with 32-bit integers).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    DictionaryAttr,
    FunctionType,
    IntegerType,
    MemRefType,
    ModuleOp,
    StringAttr,
    TensorType,
    f16,
    i8,
    i32,
)
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from nnjit.dialects import nn_loop
from nnjit.dialects import nn_tensor as nt
from nnjit.errors import UnsupportedError
from nnjit.ir.fastir import append, clone_op, i64_attr, new_op, str_attr
from nnjit.passes.lowering import lowering_for
from nnjit.passes.lowering.common import check_target, memref_type
from nnjit.passes.lowering.schedule import Schedule
from nnjit.registry import get_kernel_lowerings

LONE_KINDS: dict[type[Operation], str] = {
    nt.MatmulOp: "matmul", nt.GemmOp: "matmul", nt.ConvOp: "conv",
    nt.SoftmaxOp: "softmax", nt.LayerNormOp: "layer_norm",
    nt.ReduceMeanOp: "reduce", nt.ReduceSumOp: "reduce", nt.ReduceMaxOp: "reduce",
    nt.TransposeOp: "transpose", nt.GatherOp: "gather", nt.GatherNDOp: "gather_nd",
    nt.SliceOp: "slice", nt.ConcatOp: "concat", nt.ExpandOp: "expand",
    **{cls: "elementwise" for cls in nt.ELEMENTWISE_OPS},
}  # fmt: skip
"""The fused kind of a lone nn_tensor op."""


def _where(op: Operation, index: int) -> str:
    return f"@main op #{index} ({op.name})"


def _is_splat_constant(v: SSAValue) -> bool:
    op = v.owner
    return isinstance(op, nt.ConstantOp) and op.value.is_splat()


# ------------------------------------------------------------------------ tensor level


def plugin_kind(op: Operation) -> str | None:
    """The kind of an op from a plugin dialect: its name after the dialect prefix
    (`my_dialect.swish` -> "swish"), when a kernel lowering is registered for that kind."""
    if len(op.results) != 1 or "." not in op.name:
        return None
    kind = op.name.split(".", 1)[1]
    return kind if kind in get_kernel_lowerings() else None


def wrap_lone_op(op: Operation, kind: str) -> nt.FusedOp:
    """Replaces a lone compute op by an nn_tensor.fused of `kind` holding it; splat
    constant operands of elementwise ops are cloned into the body (they become scalars)."""
    inputs: list[SSAValue] = []
    consts: list[SSAValue] = []
    for v in op.operands:
        if kind == "elementwise" and _is_splat_constant(v):
            if v not in consts:
                consts.append(v)
        elif v not in inputs:
            inputs.append(v)
    block = Block(arg_types=[v.type for v in inputs])
    mapping: dict[SSAValue, SSAValue] = dict(zip(inputs, block.args))
    for c in consts:
        clone = clone_op(c.owner, {})  # type: ignore[arg-type]
        append(block, clone)
        (mapping[c],) = clone.results
    inner = clone_op(op, mapping)
    append(block, inner)
    block.add_op(nt.YieldOp(inner.results[0]))
    fused = nt.FusedOp(kind, inputs, op.results[0].type, Region(block))
    Rewriter.replace_op(op, fused)
    return fused


def hoist_body_buffers(fused: nt.FusedOp) -> nt.FusedOp:
    """Weights and non-splat constants inside a fused body become operands (read from a
    buffer); returns the (possibly rebuilt) fused op."""
    block = fused.body.block
    movers = [
        o for o in block.ops
        if isinstance(o, nt.WeightOp) or (isinstance(o, nt.ConstantOp) and not o.value.is_splat())
    ]  # fmt: skip
    if not movers:
        return fused
    inputs = list(fused.inputs)
    for o in movers:
        arg = block.insert_arg(o.results[0].type, len(block.args))
        o.results[0].replace_all_uses_with(arg)  # every use is in the body
        o.detach()
        Rewriter.insert_op(o, InsertPoint.before(fused))
        inputs.append(o.results[0])
    new = nt.FusedOp(fused.kind.data, inputs, fused.result.type, fused.detach_region(fused.body))
    new.attributes |= fused.attributes
    Rewriter.replace_op(fused, new)
    return new


MAX_ELEMENTS = 2**30
"""Kernels index buffers with 32-bit integers: WGSL i32 element indices, and wasm32 byte
addresses of 4-byte elements (4 GiB)."""


def check_sizes(main: func.FuncOp) -> None:
    """A tensor too large to index with 32-bit integers is refused (the kernels would wrap)."""
    values = [*main.body.block.args, *(r for op in main.body.block.ops for r in op.results)]
    for v in values:
        if isinstance(v.type, TensorType):
            n = 1
            for d in v.type.get_shape():
                n *= max(d, 0)
            if n > MAX_ELEMENTS:
                raise UnsupportedError(
                    f"{v.type} has {n:,} elements; nnjit's kernels address buffers with 32-bit "
                    f"integers (at most {MAX_ELEMENTS:,} elements per tensor)",
                    hint="use smaller shapes",
                )


def prepare(main: func.FuncOp) -> None:
    """Wraps lone compute ops of @main in fused ops and normalises fused bodies."""
    check_sizes(main)
    for index, op in enumerate(list(main.body.block.ops)):
        if isinstance(op, nt.FusedOp):
            hoist_body_buffers(op)
            continue
        if isinstance(op, nt.SplitOp):
            raise UnsupportedError(
                "nn_tensor.split must become slices first", where=_where(op, index),
                hint="run nn-tensor-fold before this pass",
            )
        kind = LONE_KINDS.get(type(op)) or plugin_kind(op)
        if kind is not None:
            hoist_body_buffers(wrap_lone_op(op, kind))


# ------------------------------------------------------------------------ bufferization


def constant_buffer(value: DenseIntOrFPElementsAttr) -> tuple[DenseIntOrFPElementsAttr, object]:
    """A constant's values as stored (i64 / i1 -> i32) and the memref type holding them."""
    t = value.type
    assert isinstance(t, TensorType)
    elem = t.get_element_type()
    mt = memref_type(t)
    if isinstance(elem, IntegerType) and elem != i32:
        vals = value.get_values()
        if elem.width.data == 1:
            ints = [1 if v else 0 for v in vals]
        else:
            ints = [max(-(2**31), min(2**31 - 1, int(v))) for v in vals]
        if len(ints) > 1 and value.is_splat():
            ints = ints[:1]
        value = DenseIntOrFPElementsAttr.from_list(TensorType(i32, t.get_shape()), ints)
    return value, mt


def copy_fused(t: TensorType) -> nt.FusedOp:
    """A detached fused op of kind "copy" (input -> output of type t) for lowering."""
    block = Block(arg_types=[t])
    block.add_op(nt.YieldOp(block.args[0]))
    op = nt.FusedOp.create(
        operands=[],
        result_types=[t],
        properties={"kind": StringAttr("copy")},
        regions=[Region(block)],
    )
    return op


def bufferize(main: func.FuncOp, base: Schedule) -> tuple[func.FuncOp, list[nn_loop.KernelOp]]:
    """The destination-passing @main over memrefs, and the kernels it launches."""
    old = main.body.block
    ret = old.last_op
    if not isinstance(ret, func.ReturnOp):
        raise UnsupportedError("@main must end in func.return")
    results = list(ret.arguments)
    in_types = [memref_type(a.type) for a in old.args]
    out_types = [memref_type(v.type) for v in results]
    block = Block(arg_types=[*in_types, *out_types])
    n_in = len(in_types)
    env: dict[SSAValue, SSAValue] = dict(zip(old.args, block.args[:n_in]))
    outs = list(block.args[n_in:])

    # outputs written in place by the kernel that computes them
    direct: dict[SSAValue, SSAValue] = {}
    for p, v in enumerate(results):
        if isinstance(v.owner, nt.FusedOp) and v not in direct:
            direct[v] = outs[p]

    kernels: list[nn_loop.KernelOp] = []

    half_weights: dict[tuple[str, MemRefType], SSAValue] = {}

    def as_kernel_takes(v: SSAValue, t: object) -> SSAValue:
        """A weight read as float16, or an int8 weight read as bytes (stored i32 by
        default): the same key as an f16 / i8 buffer (one op per key)."""
        w = v.owner
        if v.type == t or not isinstance(w, nn_loop.WeightOp) or not isinstance(t, MemRefType):
            return v
        if t.get_element_type() not in (f16, i8) or t.get_shape() != w.result.type.get_shape():  # type: ignore[union-attr]
            return v
        key = (w.key.data, t)
        if key not in half_weights:
            h = nn_loop.WeightOp(w.key.data, t)
            block.insert_op_after(h, w)
            half_weights[key] = h.result
            if t.get_element_type() == i8:
                narrowed.append(w)
        return half_weights[key]

    narrowed: list[nn_loop.WeightOp] = []  # i32 weights replaced by their i8 bytes

    def launch(kernel: nn_loop.KernelOp, args: list[SSAValue], where: str) -> None:
        ktypes = [a.type for a in kernel.body.block.args]
        args = [as_kernel_takes(a, t) for a, t in zip(args, ktypes)]
        if ktypes != [a.type for a in args]:
            raise UnsupportedError(
                f"kernel @{kernel.sym_name.data} takes {[str(t) for t in ktypes]} but is "
                f"launched on {[str(a.type) for a in args]}", where=where,
            )  # fmt: skip
        kernels.append(kernel)
        block.add_op(nn_loop.LaunchOp(kernel.sym_name.data, args))

    for index, op in enumerate(old.ops):
        where = _where(op, index)
        if isinstance(op, func.ReturnOp):
            break
        if isinstance(op, nt.WeightOp):
            w = nn_loop.WeightOp(op.key.data, memref_type(op.result.type))
            block.add_op(w)
            env[op.result] = w.result
        elif isinstance(op, nt.ConstantOp):
            if not op.result.uses:
                continue
            value, mt = constant_buffer(op.value)
            c = nn_loop.ConstantOp(value, mt)  # type: ignore[arg-type]
            block.add_op(c)
            env[op.result] = c.result
        elif isinstance(op, nt.ReshapeOp):
            view = nn_loop.ViewOp(env[op.input], memref_type(op.result.type))
            block.add_op(view)
            env[op.result] = view.result
        elif isinstance(op, nt.FusedOp):
            kind = op.kind.data
            name = f"k{len(kernels)}_{kind}"
            sched_attr = op.attributes.get("schedule")
            if sched_attr is not None and not isinstance(sched_attr, DictionaryAttr):
                raise UnsupportedError("the `schedule` attribute must be a dictionary", where=where)
            sched = base.merged(sched_attr)
            try:
                kernel = lowering_for(kind)(op, name, sched)
            except UnsupportedError as e:
                if e.where is None:
                    e.where = where
                    e.args = (e.one_line(),)
                raise
            dest = direct.get(op.result)
            if dest is None:
                buf = nn_loop.BufferOp(memref_type(op.result.type))
                block.add_op(buf)
                dest = buf.result
            launch(kernel, [env[v] for v in op.inputs] + [dest], where)
            env[op.result] = dest
        else:
            raise UnsupportedError(f"{op.name} cannot be lowered to nn_loop", where=where)

    for p, v in enumerate(results):
        if direct.get(v) is outs[p]:
            continue
        t = v.type
        assert isinstance(t, TensorType)
        name = f"k{len(kernels)}_copy"
        kernel = lowering_for("copy")(copy_fused(t), name, base)
        launch(kernel, [env[v], outs[p]], f"@main output #{p}")
    append(block, new_op(func.ReturnOp))
    for w in narrowed:  # (the runtimes load every weight @main lists)
        if not w.result.uses:
            w.detach()
            w.erase()

    # (func.FuncOp("main", (block.arg_types, []), Region(block)), without IRDL's checks)
    new = new_op(func.FuncOp, properties={
        "sym_name": str_attr("main"),
        "function_type": FunctionType.from_lists(block.arg_types, []),
    }, regions=[Region(block)])  # fmt: skip
    new.attributes |= {k: v for k, v in main.attributes.items()}
    new.attributes["nnjit.num_outputs"] = i64_attr(len(results))
    if main.sym_visibility is not None:
        new.sym_visibility = main.sym_visibility
    return new, kernels


@dataclass(frozen=True)
class ConvertNNTensorToNNLoopPass(ModulePass):
    """Lowers nn_tensor @main to nn_loop kernels and a bufferized @main (docs/ir.md)."""

    name = "convert-nn-tensor-to-nn-loop"

    target: str = "wgsl"
    """"wgsl" or "wasm": the target of every kernel."""
    workgroup: tuple[int, ...] = ()
    """wgsl: invocations per workgroup (x[, y]); matmul (x, y, z): z slices of k."""
    tile: tuple[int, ...] = ()
    """Output tile per workgroup (wgsl) or per thread chunk (wasm)."""
    reg: tuple[int, ...] = ()
    """Per-invocation / per-thread register tile (rows, cols)."""
    vec: int = 0
    """Vector width: 1 or 4."""
    kstep: int = 0
    """matmul: k-loop unroll."""
    shared: int = -1
    """matmul wgsl: stage tiles in workgroup memory (1), double-buffered (2), or not (0)."""
    rows: int = 0
    """softmax / layer_norm / reduce: rows per workgroup (wgsl) or per chunk (wasm)."""
    f16: int = 0
    """matmul wgsl: read the B weight as float16 (1: f32 arithmetic; 2: f16 arithmetic)."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        base = Schedule.from_pass(self)
        check_target(base)
        main = next(
            (o for o in op.ops if isinstance(o, func.FuncOp) and o.sym_name.data == "main"), None
        )
        if main is None:
            raise UnsupportedError("the module has no func.func @main")
        if any(isinstance(a.type, MemRefType) for a in main.body.block.args):
            raise UnsupportedError("@main is already over memrefs (lowered twice?)")
        prepare(main)
        new_main, kernels = bufferize(main, base)
        block = op.body.block
        for k in kernels:
            block.insert_op_before(k, main)
        # (the old @main is dropped whole rather than erased op by op: it is isolated from
        # above and nothing uses it)
        block.insert_op_before(new_main, main)
        block.detach_op(main)
