"""The kernels of a model as the tuner sees them: distinct fused ops, their signatures, their
standalone modules, and one candidate (schedule options -> WGSL / Wasm code + manifest).

A kernel's *signature* is the hash of (target, its standalone module): kind, operand and result
types, and the fused body (name hints and attributes other than `kind` dropped), so the same
kernel in twelve BERT layers is tuned once and a record applies to every model that has it.

The *standalone module* of a fused op is `func.func @main` taking the fused op's operands as
arguments and returning its result: the input of a replay line
(`nnjit-opt kernel.mlir -p 'convert-nn-tensor-to-nn-loop{target=wasm reg=4,8}'`). An operand
read from a float16 weight (nnjit/compact.py `F16_ATTR`, kept on the fused op) stays a weight
there (`nn_tensor.weight "in<i>"`): a kernel may read it as f16 (schedule f16), which only a
weight can be; its input spec says "f16".

Kernels are numbered as convert-nn-tensor-to-nn-loop numbers them: after its `prepare` (lone
compute ops wrapped in fused ops), the i-th fused op of @main is kernel `k<i>_<kind>`; copy
kernels for outputs come after them and are never tuned.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from typing import Any

from xdsl.dialects import func
from xdsl.dialects.builtin import IntegerType, ModuleOp, TensorType
from xdsl.ir import Block, Region

from nnjit.backends.wat_printer import assemble
from nnjit.compact import F16_ATTR, f16_operands
from nnjit.dialects import nn_tensor as nt
from nnjit.errors import NNJitError
from nnjit.passes.convert_nn_tensor_to_nn_loop import prepare
from nnjit.passes.lowering.conv import ConvSpec  # type: ignore[attr-defined]
from nnjit.passes.lowering.matmul import MatmulSpec
from nnjit.pipeline import backend_module, lower_point, main_func
from nnjit.registry import make_context
from nnjit.targets import TARGETS, target_named

_POSITIVE_OPS = (nt.SqrtOp, nt.LogOp, nt.PowOp, nt.DivOp, nt.ReciprocalOp)
"""Body ops that make NaN / inf on random normal inputs: such kernels get inputs in [0.5, 1.5)."""


@dataclass
class KernelInfo:
    """One distinct kernel of a model for one target."""

    signature: str
    kind: str
    target: str
    inputs: list[dict]
    """Per operand: {"shape", "dtype" ("f32" | "i32" | "f16", as stored: "f16" for a weight
    stored as float16, which f32 kernels read widened), "range"?: ints in [0, range),
    "positive"?: floats in [0.5, 1.5)}."""
    output: dict
    module_text: str
    """The standalone nn_tensor module (replay input)."""
    names: list[str] = field(default_factory=list)
    """Kernel names (k<i>_<kind>) of this signature in the model, in launch order."""
    flops: float = 0.0
    bytes: float = 0.0
    geometry: dict = field(default_factory=dict)
    """Kind-specific sizes for spaces: matmul/conv {"M","N","K","batch","mode"}; row kernels
    {"rows","row_len"}; pointwise {"elements","inner","rows"}."""
    default: dict | None = None
    """The default schedule's effective options (filled in by the tuner after lowering it)."""
    _module: ModuleOp | None = field(default=None, repr=False, compare=False)

    @property
    def backend(self) -> str:
        return target_named(self.target).backend

    @property
    def occurrences(self) -> int:
        return max(1, len(self.names))

    @property
    def module(self) -> ModuleOp:
        if self._module is None:
            from xdsl.parser import Parser

            self._module = Parser(make_context(), self.module_text).parse_module()
        return self._module

    def describe(self) -> str:
        """A short human description: kind and sizes."""
        g = self.geometry
        if "M" in g:
            b = f"{g['batch']}x" if g.get("batch", 1) > 1 else ""
            return f"{self.kind} {b}{g['M']}x{g['N']}x{g['K']}"
        if "row_len" in g:
            return f"{self.kind} {g['rows']}x{g['row_len']}"
        return f"{self.kind} {'x'.join(str(d) for d in self.output['shape']) or 'scalar'}"

    def to_json(self, module: bool = False) -> dict:
        d = {
            "signature": self.signature, "kind": self.kind, "target": self.target,
            "inputs": self.inputs, "output": self.output, "names": self.names,
            "flops": self.flops, "bytes": self.bytes, "geometry": self.geometry,
            "default": self.default,
        }  # fmt: skip
        if module:
            d["module_text"] = self.module_text
        return d

    @classmethod
    def from_json(cls, d: dict) -> KernelInfo:
        """The inverse of to_json(module=True) (kernels tuned without their model)."""
        keys = ("signature", "kind", "target", "inputs", "output", "module_text", "names",
                "flops", "bytes", "geometry", "default")  # fmt: skip
        return cls(**{k: d[k] for k in keys if k in d})


# ----------------------------------------------------------------------- model -> kernels


def prepared_fused_ops(tensor_module: ModuleOp) -> list[nt.FusedOp]:
    """The fused ops of @main in kernel order, after convert-nn-tensor-to-nn-loop's `prepare`
    (which wraps lone compute ops; it is idempotent, so the pass later finds them as is).
    Mutates `tensor_module`: pass a clone when the caller needs the original."""
    main = main_func(tensor_module)
    prepare(main)
    return [op for op in main.body.block.ops if isinstance(op, nt.FusedOp)]


def standalone_module(fused: nt.FusedOp) -> ModuleOp:
    """`func.func @main(operands...) -> result` holding a clean clone of `fused` (no schedule
    attribute, no name hints): the kernel alone, as a replayable module."""
    half = f16_operands(fused)
    in_types = [v.type for i, v in enumerate(fused.inputs) if i not in half]
    block = Block(arg_types=in_types)
    args = iter(block.args)
    values = []
    for i, v in enumerate(fused.inputs):
        if i in half:
            w = nt.WeightOp(f"in{i}", v.type)  # (a generic key: the layers share a signature)
            block.add_op(w)
            values.append(w.result)
        else:
            values.append(next(args))
    clone = fused.clone(value_mapper=dict(zip(fused.inputs, values)))
    clone.attributes = {F16_ATTR: fused.attributes[F16_ATTR]} if half else {}
    block.add_op(clone)
    block.add_op(func.ReturnOp(clone.results[0]))
    f = func.FuncOp("main", (in_types, [clone.results[0].type]), Region(block))
    module = ModuleOp([f])
    for op in module.walk():
        for r in op.results:
            r.name_hint = None
        for region in op.regions:
            for b in region.blocks:
                for a in b.args:
                    a.name_hint = None
        if op is not clone and op.attributes:
            op.attributes = {k: v for k, v in op.attributes.items() if not k.startswith("nnjit.")}
    return module


def signature_of(module_text: str, target: str) -> str:
    """The kernel signature: a short hash of the target and the standalone module text."""
    h = hashlib.sha256(f"{target}\n{module_text}".encode()).hexdigest()
    return h[:20]


def _storage(t: TensorType) -> str:
    e = t.get_element_type()
    return "i32" if isinstance(e, IntegerType) else "f32"


def _input_specs(fused: nt.FusedOp) -> list[dict]:
    block = fused.body.block
    positive = any(isinstance(op, _POSITIVE_OPS) for op in block.ops)
    half = f16_operands(fused)
    specs = []
    for arg in block.args:
        t = arg.type
        assert isinstance(t, TensorType)
        spec: dict[str, Any] = {"shape": list(t.get_shape()), "dtype": _storage(t)}
        if arg.index in half:
            spec["dtype"] = "f16"
        if spec["dtype"] == "i32":
            rng = 2
            for use in arg.uses:
                op = use.operation
                if isinstance(op, nt.GatherOp) and use.index == 1:
                    rng = nt.shape_of(op.data)[op.axis.value.data]
                elif isinstance(op, nt.GatherNDOp) and use.index == 1:
                    rng = min(nt.shape_of(op.operands[0]))
            spec["range"] = int(max(1, rng))
        elif positive:
            spec["positive"] = True
        specs.append(spec)
    return specs


def _root(fused: nt.FusedOp):
    for op in fused.body.block.ops:
        if not isinstance(op, (*nt.ELEMENTWISE_OPS, nt.ConstantOp, nt.YieldOp)):
            return op
    return fused.body.block.last_op.operands[0].owner  # type: ignore[union-attr]


def _geometry(fused: nt.FusedOp) -> tuple[dict, float]:
    """(geometry, flops) of a fused op."""
    kind = fused.kind.data
    out = list(nt.shape_of(fused.result))
    elements = math.prod(out)
    if kind in ("matmul", "gemm"):
        try:
            s = MatmulSpec(fused)
            mode = _gemm_mode(s)
            g = {"M": s.M, "N": s.N, "K": s.K, "batch": s.nbatch, "mode": mode}
            return g, 2.0 * s.M * s.N * s.K * s.nbatch
        except Exception:  # noqa: BLE001 - a spec the lowering rejects: size from shapes
            root = _root(fused)
            k = nt.shape_of(root.operands[0])[-1] if root.operands else 1
            rows = out[-2] if len(out) > 1 else 1
            g = {"M": rows, "N": out[-1] if out else 1, "K": k,
                 "batch": elements // max(1, rows * (out[-1] if out else 1)), "mode": "n"}  # fmt: skip
            return g, 2.0 * elements * k
    if kind == "conv":
        try:
            s = ConvSpec(fused)
            g = {"M": s.M, "N": s.N, "K": s.K, "batch": s.nbatch, "mode": _gemm_mode(s)}
            return g, 2.0 * s.M * s.N * s.K * s.nbatch
        except Exception:  # noqa: BLE001
            return {"elements": elements, "inner": out[-1] if out else 1, "rows": 1}, 2.0 * elements
    root = _root(fused)
    if kind in ("softmax", "layer_norm", "reduce") and root.operands:
        x = nt.shape_of(root.operands[0])
        if isinstance(root, nt.SoftmaxOp):
            axes = [root.axis.value.data % max(1, len(x))]
        elif isinstance(root, nt.LayerNormOp):
            a = root.axis.value.data % max(1, len(x))
            axes = list(range(a, len(x)))
        else:
            axes = [a % max(1, len(x)) for a in nt.array_values(root.axes)] if hasattr(root, "axes") else []
            axes = axes or list(range(len(x)))
        row_len = math.prod(x[a] for a in axes)
        trailing = axes == list(range(len(x) - len(axes), len(x)))
        g = {"rows": math.prod(x) // max(1, row_len), "row_len": row_len, "trailing": trailing}
        return g, 5.0 * math.prod(x)
    rows = elements // max(1, out[-1]) if out else 1
    return {"elements": elements, "inner": out[-1] if out else 1, "rows": rows}, float(elements)


def _gemm_mode(spec: Any) -> str:
    """The vector mode the Wasm/WGSL lowering picks by default without shared tiles (see
    matmul.py `_pick_mode`): "n" (vectors along output columns), "k" (along k: transposed B),
    or "scalar"."""
    can_n = spec.N >= 4 and getattr(spec, "b_vec_n", False)
    try:
        can_n = can_n and spec.n_vec_ok(4)
    except Exception:  # noqa: BLE001
        pass
    can_k = spec.K >= 4 and getattr(spec, "a_vec_k", False) and getattr(spec, "b_vec_k", False)
    if getattr(spec, "b_fast", "n") == "k" and can_k:
        return "k"
    if can_n:
        return "n"
    return "k" if can_k else "scalar"


def kernel_info(fused: nt.FusedOp, target: str) -> KernelInfo:
    """The KernelInfo of one (prepared) fused op for `target` ("wgsl" | "wasm")."""
    module = standalone_module(fused)
    text = str(module)
    geometry, flops = _geometry(fused)
    specs = _input_specs(fused)
    out_t = fused.result.type
    assert isinstance(out_t, TensorType)
    output = {"shape": list(out_t.get_shape()), "dtype": _storage(out_t)}
    out_n = math.prod(output["shape"])
    if fused.kind.data in ("gather", "gather_nd", "slice"):  # reads about what it writes
        nbytes = 4.0 * (out_n + sum(min(math.prod(s["shape"]), out_n) for s in specs))
    else:
        nbytes = 4.0 * (out_n + sum(math.prod(s["shape"]) for s in specs))
    return KernelInfo(
        signature=signature_of(text, target), kind=fused.kind.data, target=target,
        inputs=specs, output=output, module_text=text, flops=flops, bytes=nbytes,
        geometry=geometry, _module=module,
    )  # fmt: skip


def model_kernels(tensor_module: ModuleOp, backend: str) -> list[KernelInfo]:
    """The distinct kernels of a fused nn_tensor module (after nnjit.pipeline.TENSOR_PIPELINE)
    for `backend`, in order of first launch; `names` lists every launch of each."""
    if backend not in TARGETS:
        raise NNJitError(f"unknown backend '{backend}'", hint=f"choose from {', '.join(TARGETS)}")
    target = TARGETS[backend].kernel_target
    module = backend_module(tensor_module, TARGETS[backend])  # (what compile_model lowers)
    if module is tensor_module:
        module = tensor_module.clone()
    by_sig: dict[str, KernelInfo] = {}
    for i, fused in enumerate(prepared_fused_ops(module)):
        info = kernel_info(fused, target)
        name = f"k{i}_{fused.kind.data}"
        if info.signature in by_sig:
            by_sig[info.signature].names.append(name)
        else:
            info.names.append(name)
            by_sig[info.signature] = info
    return list(by_sig.values())


# ----------------------------------------------------------------------------- candidates


@dataclass
class Candidate:
    """One schedule point lowered to code."""

    options: dict
    """The point: pass options (keys of convert-nn-tensor-to-nn-loop, plus "relaxed-simd" for
    convert-nn-loop-to-wasm); keys starting with "@" are hooks, never pass options."""
    source: str
    """WGSL text or WAT text."""
    manifest: dict
    binary: bytes | None = None
    """The assembled .wasm (target wasm)."""
    lower_s: float = 0.0

    @property
    def effective(self) -> dict:
        eff = dict(self.manifest.get("schedule", {}))
        if self.manifest.get("target") == "wasm" or "params" in self.manifest:
            eff["relaxed-simd"] = "relaxed-simd" in self.manifest.get("features", [])
        return eff

    @property
    def code_hash(self) -> str:
        data = self.binary if self.binary is not None else self.source.encode()
        return hashlib.sha256(data).hexdigest()[:16]


def pass_options(options: dict) -> dict:
    """The pass options of a point (hook keys dropped)."""
    return {k: v for k, v in options.items() if not str(k).startswith("@")}


def lower_candidate(info: KernelInfo, options: dict) -> Candidate:
    """Lowers the kernel under `options` through its schedule passes (Target.schedule_passes;
    replay_line prints them) and prints it; raises NNJitError when the lowering rejects the
    options. A "@transform" hook (callable(source, manifest) -> (source, manifest)) is applied
    to the printed code."""
    t0 = time.perf_counter()
    kernels = lower_point(info.module, target_named(info.target), options)
    if len(kernels) != 1:
        raise NNJitError(f"expected one kernel from the standalone module, got {len(kernels)}")
    _, source, manifest = kernels[0]
    hook = options.get("@transform")
    if hook is not None:
        source, manifest = hook(source, manifest)
    binary = None
    if info.target == "wasm":
        try:
            binary = assemble(source) if isinstance(source, str) else bytes(source)
        except Exception as e:  # noqa: BLE001 - reported as a rejected candidate
            raise NNJitError(
                f"the Wasm assembler rejects the kernel: {str(e).splitlines()[0]}"
            ) from None
    return Candidate(dict(options), source, manifest, binary, time.perf_counter() - t0)


__all__ = [
    "KernelInfo", "Candidate", "model_kernels", "kernel_info", "standalone_module",
    "signature_of", "prepared_fused_ops", "lower_candidate", "pass_options",
]  # fmt: skip
