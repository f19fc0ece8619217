"""Import an ONNX model as nn_tensor IR: `func.func @main` over static-shape tensors.

* Dynamic input dims must be bound (`shapes=`); then every tensor has a static shape.
* Shape sub-graphs fold at import: a node whose inputs are all known constants is evaluated
  here (numpy fast paths, else onnx's reference evaluator), and `Shape`/`Size` of a
  run-time tensor are constants. Nothing of Shape, Constant, ConstantOfShape, Range, ... is
  left in the IR.
* Constants reach the IR only where an op uses them: initializers (but single-element ones)
  and anything over 64 elements become `nn_tensor.weight "key"` with the array in
  `ImportedModel.weights[key]`; the rest become `nn_tensor.constant`.
* Model names (tensors, nodes, graph) are kept only in string attributes: weights keys and
  the `nnjit.input_names` / `nnjit.output_names` attributes of @main. A weight's key is its
  initializer's name with '%' and '#' escaped (%25, %23): '#' marks nnjit's own keys.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import external_data_helper, helper, inliner, numpy_helper
from xdsl.dialects.builtin import ArrayAttr, DenseIntOrFPElementsAttr, ModuleOp, StringAttr
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.utils.exceptions import VerifyException

from nnjit.dialects import nn_tensor as nt
from nnjit.errors import ModelFormatError, NNJitError, ShapeError, UnsupportedError
from nnjit.frontend.onnx_ops import CONTRIB_OPS, CONVERTERS, SELF_FOLDING, supported_ops
from nnjit.frontend.values import (
    SUPPORTED_DTYPE_NAMES,
    SUPPORTED_DTYPES,
    Const,
    Dyn,
    NodeContext,
    Value,
    tensor_type,
)
from nnjit.registry import get_onnx_ops

# A constant with more elements than this becomes a weight rather than an IR constant.
MAX_INLINE_ELEMENTS = 64
# protobuf cannot parse a message of 2 GiB or more (weights beyond it live in external data)
MAX_MODEL_FILE_BYTES = 2**31 - 1
# The most elements one tensor may have (1 GiB of float32; $NNJIT_MAX_TENSOR_ELEMENTS raises
# it): a shape past it is refused before anything of that size is allocated or planned.
MAX_TENSOR_ELEMENTS = 2**28


def max_tensor_elements() -> int:
    text = os.environ.get("NNJIT_MAX_TENSOR_ELEMENTS", "").strip()
    try:
        value = int(text) if text else MAX_TENSOR_ELEMENTS
    except ValueError:
        value = 0
    if value <= 0:
        raise NNJitError(f"$NNJIT_MAX_TENSOR_ELEMENTS={text!r} is not a positive integer",
                         hint="unset it or give an element count")  # fmt: skip
    return value


def check_size(shape: Sequence[int], what: str, where: str) -> None:
    """Refuses a tensor of more than max_tensor_elements(), naming it and the limit."""
    limit = max_tensor_elements()
    n = 1
    for d in shape:
        n *= max(int(d), 0)
    if n > limit:
        raise ShapeError(
            f"{what} has {n:,} elements ({_dim_text(shape)}), over nnjit's limit of {limit:,}",
            where=where, hint="use smaller shapes, or raise the limit with NNJIT_MAX_TENSOR_ELEMENTS",
        )


@dataclass(frozen=True)
class TensorInfo:
    """A graph input or output: the model's own name, static shape and numpy dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]


@dataclass
class ImportedModel:
    """The result of `import_onnx`: IR module, weights by key, and the graph's interface."""

    module: ModuleOp
    weights: dict[str, np.ndarray]
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    # weights that are exactly a compact form (float16 initializers, dequantized integers):
    # key -> "f16" or a Quantized (onnx_ops/quantization.py), for nnjit/frontend/compact.py
    compact: dict[str, Any] = field(default_factory=dict)


def import_onnx(
    model: str | os.PathLike[str] | bytes | onnx.ModelProto,
    *,
    shapes: Mapping[str, Sequence[int]] | None = None,
) -> ImportedModel:
    """Import an ONNX model (path, serialized bytes or ModelProto) as nn_tensor IR.

    `shapes` binds input shapes by input name (needed for dynamic dims; static dims must
    agree). Raises ModelFormatError (unreadable model), UnsupportedError (ops, dtypes,
    dynamic dims) or ShapeError (bad `shapes`).
    """
    bound: dict[str, tuple[int, ...]] = {}
    for name, dims in dict(shapes or {}).items():
        try:
            bound[str(name)] = tuple(int(d) for d in dims)
            if any(isinstance(d, (bool, float)) or int(d) != d for d in dims):
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            raise ShapeError(f"the shape given for input '{name}' is not a list of integers: "
                             f"{dims!r}"[:200]) from None  # fmt: skip
    proto, label = _load(model)
    return _Importer(proto, label, bound).run()


# ----------------------------------------------------------------------------- loading


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]


def _load(model: Any) -> tuple[onnx.ModelProto, str]:
    if isinstance(model, onnx.ModelProto):
        proto, label = model, "<ModelProto>"
    elif isinstance(model, (bytes, bytearray, memoryview)):
        label = "<bytes>"
        try:
            proto = onnx.load_model_from_string(bytes(model))
        except Exception as e:
            raise ModelFormatError(
                f"not a valid ONNX model ({_short(e)})", where=label,
                hint="the data may be truncated or not an ONNX file",
            ) from None
    elif isinstance(model, (str, os.PathLike)):
        label = os.fspath(model)
        if not os.path.exists(label):
            raise ModelFormatError("no such file", where=label, hint="check the model path")
        if os.path.isdir(label):
            raise ModelFormatError("is a directory, not an ONNX file", where=label)
        if not os.path.isfile(label):  # a device or FIFO: reading it could block or never end
            raise ModelFormatError("not a regular file (a device or pipe)", where=label,
                                   hint="give an .onnx file")  # fmt: skip
        size = os.path.getsize(label)
        if size > MAX_MODEL_FILE_BYTES:
            raise ModelFormatError(
                f"{size / 2**30:.1f} GiB, over protobuf's 2 GiB limit for an ONNX file", where=label,
                hint="export large models with external data (onnx.save(..., save_as_external_data=True))",
            )
        try:
            proto = onnx.load(label, load_external_data=False)
        except Exception as e:
            raise ModelFormatError(
                f"not a valid ONNX model ({_short(e)})", where=label,
                hint="the file may be truncated or not an ONNX file; re-export it",
            ) from None
        try:
            external_data_helper.load_external_data_for_model(
                proto, os.path.dirname(os.path.abspath(label))
            )
        except Exception as e:
            raise ModelFormatError(
                f"cannot read the model's external data ({_short(e)})", where=label,
                hint="keep the external data files next to the model, as exported",
            ) from None
    else:
        raise TypeError(f"import_onnx: expected a path, bytes or onnx.ModelProto, got {type(model)}")
    if not proto.HasField("graph") or proto.ir_version <= 0 or (
        len(proto.graph.node) == 0 and len(proto.graph.output) == 0
    ):
        raise ModelFormatError(
            "contains no ONNX graph", where=label,
            hint="the file may be truncated or not an ONNX file",
        )
    # onnx.checker is not a gate: it rejects models that onnxruntime runs (outputs declared
    # without a shape); structural faults (undefined tensors, bad initializers) fail below.
    _check_op_types(proto, label)
    if len(proto.functions) > 0:
        try:
            proto = inliner.inline_local_functions(proto)
        except Exception as e:
            raise ModelFormatError(f"cannot inline its local functions ({_short(e)})", where=label) from None
    return proto, label


def _unsupported_op(where: str, op: str, note: str = "") -> UnsupportedError:
    return UnsupportedError(
        f"unsupported ONNX op {op}{note}",
        where=where,
        hint=f"nnjit converts {len(supported_ops())} ONNX ops (nnjit.frontend.onnx_ops."
        f"supported_ops()) and folds any op whose inputs are all constants",
    )


def _check_op_types(proto: onnx.ModelProto, label: str) -> None:
    """Unknown ops and ops of other domains fail here, before onnx's checker would."""
    local = {(f.domain, f.name) for f in proto.functions}
    plugged = get_onnx_ops()  # converters registered by plugins (nnjit.registry)
    for index, node in enumerate(proto.graph.node):
        if (node.domain, node.op_type) in local:
            continue
        if ("" if node.domain == "ai.onnx" else node.domain, node.op_type) in plugged:
            continue
        if (node.domain, node.op_type) in CONTRIB_OPS:
            continue
        if node.domain not in ("", "ai.onnx"):
            raise UnsupportedError(
                f"unsupported op {node.domain}.{node.op_type}: only the default ONNX domain "
                f"is supported",
                where=_node_where(node, index),
                hint="re-export the model without custom or contrib ops",
            )
        if not onnx.defs.has(node.op_type):
            raise _unsupported_op(
                _node_where(node, index), node.op_type, " (not an op of the ONNX standard)"
            )


def _dim_text(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape) if len(shape) else "scalar"


def _node_where(node: onnx.NodeProto, index: int) -> str:
    name = f"'{node.name}'" if node.name else f"#{index}"
    op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
    return f"node {name} (op {op})"


# --------------------------------------------------------------------------- importing


def _check_unique_names(graph: onnx.GraphProto, label: str) -> None:
    """Every tensor name is defined once: by one initializer, one graph input (an input may
    repeat an initializer's name: its default value) or one node output."""
    seen: dict[str, str] = {}

    def define(name: str, what: str) -> None:
        if not name:
            return
        if name in seen:
            raise ModelFormatError(
                f"the name '{name[:80]}' is defined twice (by {seen[name]} and by {what})",
                where=label, hint="rename one of them: ONNX names must be unique",
            )
        seen[name] = what

    for init in graph.initializer:
        define(init.name, "an initializer")
    inits = set(seen)
    for vi in graph.input:
        if vi.name not in inits:
            define(vi.name, "a graph input")
    for i, node in enumerate(graph.node):
        for out in node.output:
            define(out, f"node #{i} ({node.op_type})")


class _Importer:
    def __init__(self, proto: onnx.ModelProto, label: str, shapes: dict[str, Sequence[int]]):
        self.proto = proto
        self.graph = proto.graph
        self.label = label
        self.shapes = shapes
        self.opset = next(
            (o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0
        )
        if self.opset == 0:
            raise ModelFormatError("imports no version of the default ONNX domain", where=label)
        newest = onnx.defs.onnx_opset_version()
        if self.opset > newest:
            raise ModelFormatError(
                f"imports ONNX opset {self.opset}, newer than any opset nnjit knows (up to {newest})",
                where=label, hint=f"export the model with opset {newest} or lower",
            )
        _check_unique_names(self.graph, label)
        self.env: dict[str, Value] = {}
        self.weights: dict[str, np.ndarray] = {}
        self.compact: dict[str, Any] = {}
        self.block: Block | None = None
        self.where = label

    # -- errors

    def _fail(self, message: str, hint: str | None = None) -> UnsupportedError:
        return UnsupportedError(message, where=self.where, hint=hint)

    # -- inputs

    def _initializers(self) -> None:
        for init in self.graph.initializer:
            try:
                arr = numpy_helper.to_array(init)
            except Exception as e:
                raise ModelFormatError(
                    f"cannot read initializer '{init.name}' ({_short(e)})", where=self.label,
                    hint="external data files must sit next to the model",
                ) from None
            const = Const(arr, init.name, initializer=True)
            if arr.dtype == np.float16:  # (float16 models compute in float32)
                const.array, const.compact = arr.astype(np.float32), "f16"
            self.env[init.name] = const
        if len(self.graph.sparse_initializer) > 0:
            raise UnsupportedError("sparse initializers are not supported", where=self.label)

    def _bind_inputs(self) -> list[tuple[str, tuple[int, ...], np.dtype[Any]]]:
        real = [i for i in self.graph.input if i.name not in self.env]
        names = {i.name for i in real}
        for name in self.shapes:
            if name not in names:
                raise ShapeError(
                    f"a shape is given for '{name}', which is not an input of the model",
                    hint="inputs: " + ", ".join(f"'{n}'" for n in sorted(names)),
                )
        bound = []
        named = self._named_dims(real)
        for vi in real:
            name = vi.name
            if not vi.type.HasField("tensor_type"):
                raise UnsupportedError(f"input '{name}' is not a tensor", where=self.label)
            tt = vi.type.tensor_type
            try:
                dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type))
            except Exception:
                dtype = None
            if dtype not in SUPPORTED_DTYPES:
                tname = onnx.TensorProto.DataType.Name(tt.elem_type) if tt.elem_type else "undefined"
                raise UnsupportedError(
                    f"input '{name}' has element type {tname}; nnjit supports "
                    f"{SUPPORTED_DTYPE_NAMES}",
                    where=self.label,
                    hint="convert the model to float32",
                )
            dims: list[int | str | None] = []
            if tt.HasField("shape"):
                for d in tt.shape.dim:
                    if d.HasField("dim_value") and d.dim_value > 0:
                        dims.append(int(d.dim_value))
                    else:
                        dims.append(d.dim_param if d.HasField("dim_param") else None)
            elif name not in self.shapes:
                raise UnsupportedError(
                    f"input '{name}' has no shape: bind it, e.g. --shape {name}=1x128",
                    where=self.label,
                )
            if name in self.shapes:
                given = tuple(int(d) for d in self.shapes[name])
                if tt.HasField("shape") and len(given) != len(dims):
                    raise ShapeError(
                        f"input '{name}' has rank {len(dims)}, but the given shape "
                        f"{_dim_text(given)} has rank {len(given)}"
                    )
                for i, (g, d) in enumerate(zip(given, dims)):
                    if g <= 0:
                        raise ShapeError(f"input '{name}': dim {i} must be positive, got {g}")
                    if isinstance(d, int) and d != g:
                        raise ShapeError(
                            f"input '{name}' has static dim {i} = {d}, but the given shape "
                            f"{_dim_text(given)} says {g}"
                        )
                shape = given
            else:
                dims = [named.get(d, d) if isinstance(d, str) else d for d in dims]
                for i, d in enumerate(dims):
                    if not isinstance(d, int):
                        example = [
                            e if isinstance(e, int) else (1 if j == 0 else 128)
                            for j, e in enumerate(dims)
                        ]
                        what = f"'{d}'" if d else f"{i} (unnamed)"
                        raise UnsupportedError(
                            f"input '{name}' has dynamic dim {what}: bind it, e.g. "
                            f"--shape {name}={_dim_text(example)} "
                            f"(shapes={{'{name}': {tuple(example)}}} in Python)",
                        )
                shape = tuple(int(d) for d in dims)  # type: ignore[arg-type]
            check_size(shape, f"input '{name}'", self.label)
            bound.append((name, shape, dtype))
        return bound

    def _named_dims(self, real: Sequence[onnx.ValueInfoProto]) -> dict[str, int]:
        """Sizes of the named dynamic dims (dim_param) that `shapes` binds, so that inputs
        sharing a dim name (`sequence` in input_ids and attention_mask) follow one --shape."""
        named: dict[str, int] = {}
        for vi in real:
            if vi.name not in self.shapes or not vi.type.tensor_type.HasField("shape"):
                continue
            dims = vi.type.tensor_type.shape.dim
            given = [int(g) for g in self.shapes[vi.name]]
            for d, g in zip(dims, given):
                if d.HasField("dim_value") or not d.dim_param:
                    continue
                if named.setdefault(d.dim_param, g) != g:
                    raise ShapeError(
                        f"dim '{d.dim_param}' is bound to both {named[d.dim_param]} and {g} "
                        f"(input '{vi.name}')",
                        hint="inputs that share a dim name need the same size",
                    )
        return named

    # -- constants

    def _unique_key(self, hint: str) -> str:
        # Model names never hold '#' in a key ('%' and '#' are escaped), so they cannot clash
        # with nnjit's own keys: "<key>#pack=kn8", "<key>#rows=0:512", "<backend>#const0", "x#2".
        base = hint.replace("%", "%25").replace("#", "%23") or "#const"
        key, n = base, 0
        while key in self.weights:
            n += 1
            key = f"{base}#{n}"
        return key

    def _emit(self, op: Operation) -> Operation:
        assert self.block is not None
        self.block.add_op(op)
        return op

    def _materialize(self, v: Value) -> SSAValue:
        if isinstance(v, Dyn):
            return v.ssa
        if v.ssa is not None:
            return v.ssa
        arr = v.array
        if arr.dtype in (np.int8, np.uint8) and arr.size > 1:  # (stored compactly, read as i32)
            arr, v.compact = arr.astype(np.int32), arr.dtype.name
        if arr.dtype not in SUPPORTED_DTYPES:
            raise self._fail(
                f"tensor '{v.name}' has element type {arr.dtype}; nnjit supports "
                f"{SUPPORTED_DTYPE_NAMES}",
                hint="convert the model to float32",
            )
        if arr.size == 0:
            raise self._fail(f"tensor '{v.name}' is empty; empty tensors are not supported")
        ttype = tensor_type(arr.shape, arr.dtype)
        if arr.size > MAX_INLINE_ELEMENTS or (v.initializer and arr.size > 1):
            key = self._unique_key(v.name)
            self.weights[key] = np.require(arr, requirements="C")
            if v.compact is not None:
                self.compact[key] = v.compact
            op: Operation = nt.WeightOp(key, ttype)
        else:
            flat = arr.reshape(-1)
            values = [bool(x) for x in flat] if arr.dtype == np.bool_ else flat.tolist()
            op = nt.ConstantOp(DenseIntOrFPElementsAttr.from_list(ttype, values))
        self._emit(op)
        v.ssa = op.results[0]
        return v.ssa

    # -- folding

    def _fold(self, node: onnx.NodeProto, ins: list[Value | None]) -> list[Value]:
        arrays = [None if v is None else v.array for v in ins]  # type: ignore[union-attr]
        out_names = list(node.output)
        op = node.op_type
        size = _folded_size(node, arrays)
        if size is not None:
            check_size(size, f"the result of {op}", self.where)
        # as onnxruntime does, folding gives inf/nan silently (log(0) in T5's position buckets)
        with np.errstate(all="ignore"):
            fast = _fold_fast(node, arrays, self.opset)
            if fast is not None:
                results = fast
            else:
                results = _fold_reference(node, arrays, self.opset)
        vals: list[Value] = []
        for name, r in zip(out_names, results):
            if op == "Identity" and ins and isinstance(ins[0], Const):
                vals.append(ins[0])  # share the weight, do not copy it
            else:
                r = np.asarray(r)  # (float16 models compute in float32)
                vals.append(Const(r.astype(np.float32) if r.dtype == np.float16 else r, name))
        return vals

    # -- main loop

    def run(self) -> ImportedModel:
        self._initializers()
        bound = self._bind_inputs()
        arg_types = [tensor_type(s, d) for _, s, d in bound]
        self.block = Block(arg_types=arg_types)
        for (name, _, _), arg in zip(bound, self.block.args):
            self.env[name] = Dyn(arg)

        for index, node in enumerate(self.graph.node):
            self.where = _node_where(node, index)
            ins: list[Value | None] = []
            for name in node.input:
                if name == "":
                    ins.append(None)
                    continue
                if name not in self.env:
                    raise ModelFormatError(
                        f"uses tensor '{name}', which no earlier node, input or initializer "
                        f"defines",
                        where=f"{self.label}: {self.where}",
                        hint="the model is not topologically sorted or is incomplete",
                    )
                ins.append(self.env[name])
            outs = self._convert(node, ins)
            for name, v in zip(node.output, outs):
                if name:
                    check_size(v.shape, f"tensor '{name}'", self.where)
                    self.env[name] = v
        self.where = self.label

        results: list[SSAValue] = []
        outputs: list[TensorInfo] = []
        for vi in self.graph.output:
            if vi.name not in self.env:
                raise ModelFormatError(
                    f"graph output '{vi.name}' is not computed by any node", where=self.label
                )
            v = self.env[vi.name]
            self.where = f"graph output '{vi.name}'"
            results.append(self._materialize(v))
            outputs.append(TensorInfo(vi.name, v.shape, v.dtype))
        self._emit(ReturnOp(*results))

        func = FuncOp("main", (arg_types, [r.type for r in results]), Region(self.block))
        func.attributes["nnjit.input_names"] = ArrayAttr([StringAttr(n) for n, _, _ in bound])
        func.attributes["nnjit.output_names"] = ArrayAttr(
            [StringAttr(o.name) for o in outputs]
        )
        module = ModuleOp([func])
        try:
            module.verify()
        except VerifyException as e:
            raise UnsupportedError(
                f"internal error: the imported IR does not verify: {_short(e)}",
                where=self.label,
                hint="please report this model to the nnjit developers",
            ) from e
        inputs = [TensorInfo(n, s, d) for n, s, d in bound]
        return ImportedModel(module, self.weights, inputs, outputs, self.compact)

    def _check_expand(self, ins: list[Value | None]) -> None:
        """Expand to a shape its input does not broadcast to: in exported transformers, most
        often a bound sequence length (--shape) longer than the model's position table."""
        if len(ins) < 2 or ins[0] is None or not isinstance(ins[1], Const):
            return
        have = [int(d) for d in ins[0].shape]
        want = [int(d) for d in ins[1].array.reshape(-1)]
        rank = max(len(have), len(want))
        h, w = [1] * (rank - len(have)) + have, [1] * (rank - len(want)) + want
        bad = [i for i in range(rank) if h[i] != w[i] and 1 not in (h[i], w[i])]
        if not bad:
            return
        i = bad[0]
        raise self._fail(
            f"shape {have} does not broadcast to {want} (dim {i}: {h[i]} against {w[i]})",
            hint=f"a length bound with --shape may exceed what the model supports, "
            f"e.g. a position table of {h[i]} entries",
        )

    def _convert(self, node: onnx.NodeProto, ins: list[Value | None]) -> list[Value]:
        op = node.op_type
        if op in ("If", "Loop", "Scan", "SequenceMap"):
            raise self._fail(
                f"control-flow op {op} is not supported",
                hint="export the model with static shapes so that control flow is traced out",
            )
        if op == "Expand":
            self._check_expand(ins)
        try:
            domain = "" if node.domain == "ai.onnx" else node.domain
            plugged = get_onnx_ops().get((domain, op))
            if domain == "" and op not in SELF_FOLDING and all(v is None or isinstance(v, Const) for v in ins):
                return self._fold(node, ins)
            converter = plugged if plugged is not None else CONVERTERS.get(op)
            if converter is None:
                raise _unsupported_op(self.where, op)
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            cx = NodeContext(node, self.where, attrs, self.opset, self._emit, self._materialize)
            outs = converter(cx, ins)
        except NNJitError:
            raise
        except Exception as e:
            raise UnsupportedError(
                f"cannot import this node ({type(e).__name__}: {_short(e)})",
                where=self.where,
                hint="nnjit may not handle this form of the op",
            ) from e
        n_out = len(node.output)
        if len(outs) < n_out and any(node.output[len(outs):]):
            raise self._fail(f"produces {n_out} outputs; nnjit computes only {len(outs)}")
        return outs


# ------------------------------------------------------------------------------ folding


def _attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


# ops whose result has the numpy-broadcast shape of their inputs
_BROADCASTING = frozenset({
    "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Sum", "Mean", "Where", "Equal",
    "Greater", "GreaterOrEqual", "Less", "LessOrEqual", "And", "Or", "Xor", "BitShift",
})  # fmt: skip


def _folded_size(node: onnx.NodeProto, ins: list[np.ndarray | None]) -> tuple[int, ...] | None:
    """The result shape of ops whose result size comes from input values, before folding them
    (ConstantOfShape(1e5 x 1e5) would allocate 37 GiB)."""
    op, a = node.op_type, ins
    try:
        if op == "ConstantOfShape" and a and a[0] is not None:
            return tuple(int(d) for d in a[0].reshape(-1))
        if op == "Expand" and len(a) == 2 and a[0] is not None and a[1] is not None:
            want = [int(d) for d in a[1].reshape(-1)]
            have = list(a[0].shape)
            rank = max(len(want), len(have))
            want, have = [1] * (rank - len(want)) + want, [1] * (rank - len(have)) + have
            return tuple(max(w, h) for w, h in zip(want, have))
        if op == "Tile" and len(a) == 2 and a[0] is not None and a[1] is not None:
            return tuple(int(d) * int(r) for d, r in zip(a[0].shape, a[1].reshape(-1)))
        if op in _BROADCASTING and all(x is not None for x in a):
            return tuple(np.broadcast_shapes(*(x.shape for x in a)))  # type: ignore[union-attr]
        if op == "MatMul" and len(a) == 2 and a[0] is not None and a[1] is not None:
            if a[0].ndim >= 2 and a[1].ndim >= 2:
                batch = np.broadcast_shapes(a[0].shape[:-2], a[1].shape[:-2])
                return (*batch, a[0].shape[-2], a[1].shape[-1])
        if op == "Pad" and len(a) >= 2 and a[0] is not None and a[1] is not None:
            pads = [int(p) for p in a[1].reshape(-1)]
            rank = a[0].ndim
            if len(pads) == 2 * rank:
                return tuple(d + pads[i] + pads[i + rank] for i, d in enumerate(a[0].shape))
        if op in ("RandomNormal", "RandomUniform") and _attr(node, "shape") is not None:
            return tuple(int(d) for d in _attr(node, "shape"))
        if op == "OneHot" and len(a) == 3 and a[0] is not None and a[1] is not None:
            return (*a[0].shape, int(a[1].reshape(-1)[0]))
        if op == "Range" and len(a) == 3 and all(x is not None for x in a):
            start, limit, delta = (float(x.reshape(-1)[0]) for x in a)  # type: ignore[union-attr]
            if delta == 0 or not np.isfinite([start, limit, delta]).all():
                return None
            return (max(int(np.ceil((limit - start) / delta)), 0),)
    except (ValueError, TypeError, OverflowError):
        return None
    return None


def _fold_fast(
    node: onnx.NodeProto, ins: list[np.ndarray | None], opset: int
) -> list[np.ndarray] | None:
    """numpy versions of the common shape-computation ops (None: use the reference one)."""
    op = node.op_type
    if op == "Identity":
        return [ins[0]] if ins and ins[0] is not None else None
    if op == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
        return [numpy_helper.to_array(node.attribute[0].t)]
    if op == "Shape" and ins[0] is not None:
        shape = ins[0].shape
        rank = len(shape)
        start, end = int(_attr(node, "start", 0)), _attr(node, "end")
        end = rank if end is None else int(end)
        start = min(max(start + rank if start < 0 else start, 0), rank)
        end = min(max(end + rank if end < 0 else end, 0), rank)
        return [np.array(shape[start:end], dtype=np.int64)]
    if op == "Unsqueeze" and opset >= 13 and len(ins) == 2 and ins[1] is not None:
        x = ins[0]
        assert x is not None
        rank = x.ndim + ins[1].size
        axes = sorted(int(a) + rank if a < 0 else int(a) for a in ins[1].reshape(-1))
        for a in axes:
            x = np.expand_dims(x, a)
        return [x]
    if op == "Concat" and all(a is not None for a in ins):
        return [np.concatenate(ins, axis=int(_attr(node, "axis")))]  # type: ignore[arg-type]
    if op == "Gather" and ins[0] is not None and ins[1] is not None:
        return [np.take(ins[0], ins[1].astype(np.int64), axis=int(_attr(node, "axis", 0)))]
    if op == "GatherElements" and ins[0] is not None and ins[1] is not None:
        # (onnx's reference GatherElements fails for more than 64 rows)
        data, idx = ins[0], ins[1].astype(np.int64)
        axis = int(_attr(node, "axis", 0))
        idx = np.where(idx < 0, idx + data.shape[axis], idx)
        return [np.take_along_axis(data, idx, axis=axis)]
    if op == "Cast":
        x = ins[0]
        assert x is not None
        to = np.dtype(helper.tensor_dtype_to_np_dtype(int(_attr(node, "to"))))
        if x.dtype.kind in "iub" and to.kind in "iubf" or (x.dtype.kind == "f" and to.kind == "f"):
            return [x.astype(to)]
        return None
    return None


def _fold_reference(
    node: onnx.NodeProto, ins: list[np.ndarray | None], opset: int
) -> list[np.ndarray]:
    from onnx.reference import ReferenceEvaluator

    local = onnx.NodeProto()
    local.CopyFrom(node)
    del local.input[:]
    del local.output[:]
    in_names = [f"in{i}" if a is not None else "" for i, a in enumerate(ins)]
    out_names = [f"out{i}" if o else "" for i, o in enumerate(node.output)]
    local.input.extend(in_names)
    local.output.extend(out_names)
    graph = helper.make_graph(
        [local],
        "fold",
        [
            helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
            for n, a in zip(in_names, ins)
            if a is not None
        ],
        [helper.make_empty_tensor_value_info(n) for n in out_names if n],
    )
    ev = ReferenceEvaluator(graph, opsets={"": opset})
    feeds = {n: a for n, a in zip(in_names, ins) if a is not None}
    results = ev.run(None, feeds)
    it = iter(results)
    return [np.asarray(next(it)) if n else np.zeros(0) for n in out_names]

