"""The compile driver: ONNX model -> nn_tensor -> fused -> nn_loop -> WGSL / WAT -> bundle.

    from nnjit.compiler import compile_model
    plan = compile_model("model.onnx", "out/", backends=("webgpu", "wasm"))

A bundle directory holds plan.json (see nnjit/backends/plan.py; one plan per backend under
"backends"), weights.bin, and kernels/<name>.wgsl | .wat | .wasm. It is written to a temporary
sibling directory and swapped into place only when complete, so a failed compile leaves
nothing that looks complete; an existing -o directory is replaced only when it is an nnjit
bundle holding nothing but nnjit's files (nnjit/bundle.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import PassPipeline
from xdsl.utils.exceptions import ArgSpecParseError

from nnjit import registry
from nnjit.backends.plan import build_plan
from nnjit.backends.wat_printer import assemble
from nnjit.bundle import (
    PLAN_FORMAT,
    PLAN_VERSION,
    check_output_dir,
    remove_empty,
    swap_in,
    temp_sibling,
)
from nnjit.compact import (
    check_weights_mode,
    int8_blocks,
    mark_f16_weights,
    mark_int8_weights,
    save_compact,
    stored_f16,
    weight_axes,
)
from nnjit.dialects import nn_tensor
from nnjit.dialects.nn_tensor import WeightOp
from nnjit.errors import NNJitError
from nnjit.frontend.dynamic import bound_shapes, dynamic_dims, output_dims, variants
from nnjit.frontend.generation import is_generation, prepare_generation
from nnjit.passes.lowering.schedule import Schedule
from nnjit.passes.nn_tensor_int8_weights import INT8_TAG, materialize_int8
from nnjit.passes.nn_tensor_integer_matmul import materialize_i8x4, materialize_i16x2
from nnjit.passes.nn_tensor_pack_weights import materialize_packed, parse_pack_key
from nnjit.passes.nn_tensor_split_weights import BINDING_ENV, materialize_weights, max_binding_bytes
from nnjit.pipeline import (
    TENSOR_PIPELINE,
    backend_module,
    kernels_of,
    lower_for_backend,
    main_func,
    run_pipeline,
)
from nnjit.targets import TARGETS
from nnjit.text import ship_tokenizer, tokenizer_for
from nnjit.web import install_runtime
from nnjit.web.reference import write_reference

MAX_CANDIDATES = 64
"""candidates: kernels listed per kernel for on-device tuning (each is lowered and printed)."""


def check_loop_options(loop_options: str) -> None:
    """Rejects bad convert-nn-tensor-to-nn-loop options before any work (the error names them)."""
    if not loop_options.strip():
        return
    if re.search(r"(^|\s)target\s*=", loop_options):
        raise NNJitError(f"bad loop options '{loop_options}': the target comes from the backend",
                         hint="drop target=...; choose backends with --backend")  # fmt: skip

    try:
        spec = f"convert-nn-tensor-to-nn-loop{{target=wgsl {loop_options}}}"
        (pass_,) = PassPipeline.parse_spec(registry.get_all_passes(), spec).passes
        Schedule.from_pass(pass_)
    except (ArgSpecParseError, ValueError, TypeError) as e:
        text = [ln for ln in str(e).splitlines() if ln.strip() and not set(ln.strip()) <= set("^")]
        raise NNJitError(f"bad loop options '{loop_options}': {text[-1].strip() if text else e}",
                         hint="write KEY=VALUE pairs, e.g. 'reg=4,8 vec=4'") from None  # fmt: skip
    except NNJitError as e:
        raise NNJitError(f"bad loop options '{loop_options}': {e.message}", hint=e.hint) from None


@dataclass
class CompileReport:
    """What compile_model did and how long each stage took (seconds)."""

    timings: dict[str, float] = field(default_factory=dict)
    kernels: dict[str, int] = field(default_factory=dict)  # backend -> kernel count


def _int_ranges(tensor_module: ModuleOp) -> dict[int, int]:
    """For integer inputs used as gather indices: the size of the gathered axis, so tools can
    make valid random inputs (token ids < vocabulary size)."""
    main = main_func(tensor_module)
    ranges: dict[int, int] = {}
    for i, arg in enumerate(main.body.block.args):
        gathers = []
        for use in arg.uses:
            op = use.operation
            if isinstance(op, nn_tensor.FusedOp):
                inner = op.body.block.args[use.index]
                gathers += [u.operation for u in inner.uses
                            if isinstance(u.operation, nn_tensor.GatherOp) and u.index == 1]  # fmt: skip
            elif isinstance(op, nn_tensor.GatherOp) and use.index == 1:
                gathers.append(op)
        sizes = [nn_tensor.shape_of(g.data)[g.axis.value.data] for g in gathers]
        if sizes:  # (indices into several tables: the smallest bounds them all)
            ranges[i] = min(sizes)
    return ranges


def compile_model(
    model: str | os.PathLike | bytes,
    out_dir: str | os.PathLike,
    *,
    backends: Sequence[str] = ("webgpu", "wasm"),
    shapes: dict[str, tuple[int, ...]] | None = None,
    loop_options: str = "",
    report: CompileReport | None = None,
    reference_outputs: bool = False,
    web_runtime: bool = True,
    tuning_records: Any = None,
    candidates: int | None = None,
    tokenizer: str | os.PathLike | bool | None = None,
    weights: str = "f32",
    lengths: Sequence[int] | None = None,
    max_length: int | None = None,
    max_batch: int | None = None,
    int8_dot: int | None = None,
) -> dict:
    """Compiles an ONNX model into a bundle directory and returns its plan.

    A model with dynamic input dims that `shapes` does not fix compiles into a variable-length
    bundle (plan "dynamic"; nnjit/frontend/dynamic.py): one variant per size of each dim, the
    length buckets `lengths` (default DEFAULT_LENGTHS) up to `max_length` (default 512) and
    batch sizes 1, 2, 4, ... up to `max_batch` (default 1), sharing one weights file; the
    top-level "model" and "backends" are the largest variant's.

    reference_outputs: also run onnxruntime on random inputs and ship inputs and outputs in
    reference.bin (plan "reference"). web_runtime: copy the browser runtime and demo page
    into the bundle (runtime/*.js, index.html; not listed in plan "files").
    tuning_records: a nnjit.tuning RecordStore, a records file or directory, or a dict
    {kernel signature: options}: pins tuned schedules on the kernels they name.
    candidates: > 0 lists, for each kernel, up to that many candidate kernels (the default
    first) under "candidates" in the plan, for on-device tuning (nnjit/tuning/apply.py); 0
    ships the default kernels alone; None (the default) ships each backend's
    Target.default_candidates (WebGPU: the 6 most promising on a GPU by the measured prior,
    nnjit/tuning/prior.py; none for Wasm).
    tokenizer: a tokenizer.json to ship (plan "tokenizer", nnjit/text.py), None: one found
    beside the model file, False: none. weights: how weights.bin stores the
    matmul and gather weights, "f32" (default), "f16", "int8" or "int4" (nnjit/compact.py).
    int8_dot: on Wasm, the matmuls of int8 weights with at most this many rows (0: any) quantize
    their activation rows to 12-bit integers and take integer dots (nn-tensor-int8-weights
    dot=i16: slightly different numerics); None (the default): float dequantization."""
    if isinstance(backends, str) or not backends:
        raise NNJitError(f"backends={backends!r}: give a non-empty list of backend names",
                         hint=f"e.g. {list(TARGETS)}")  # fmt: skip
    for b in backends:
        if b not in TARGETS:
            raise NNJitError(f"unknown backend '{b}'", hint=f"choose from {', '.join(TARGETS)}")
    if candidates is not None and (isinstance(candidates, bool) or not isinstance(candidates, int)
                                   or not 0 <= candidates <= MAX_CANDIDATES):  # fmt: skip
        raise NNJitError(f"candidates={candidates!r}: from 0 to {MAX_CANDIDATES} candidate kernels "
                         "per kernel")  # fmt: skip
    for what, v, top in (("max_length", max_length, 1 << 20), ("max_batch", max_batch, 4096)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= top):
            raise NNJitError(f"{what}={v!r}: give a size from 1 to {top}")
    if lengths is not None and (isinstance(lengths, (str, bytes)) or not lengths or not all(
            isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 1 << 20 for n in lengths)):  # fmt: skip
        raise NNJitError(f"lengths={lengths!r}: give a list of sizes from 1 to {1 << 20}")
    if max_length is not None and lengths is not None and max_length < max(lengths):
        raise NNJitError(f"max_length={max_length} is below the largest of lengths={list(lengths)}")
    check_loop_options(loop_options)
    weights_mode = check_weights_mode(weights)
    if int8_dot is not None and (isinstance(int8_dot, bool) or not isinstance(int8_dot, int)
                                 or not 0 <= int8_dot <= 1 << 20):  # fmt: skip
        raise NNJitError(f"int8_dot={int8_dot!r}: give a row count from 0 (any) to {1 << 20}, or None")
    if int8_dot is not None and not any(TARGETS[b].kernel_target == "wasm" for b in backends):
        raise NNJitError(f"int8_dot applies to the wasm backend, and backends={list(backends)} has none",
                         hint="add --backend wasm, or drop --int8-dot")  # fmt: skip
    report = report if report is not None else CompileReport()
    model_path = model if isinstance(model, (str, os.PathLike)) else None
    check_output_dir(out_dir, model_path)  # (before the work; again before the swap)
    out = Path(out_dir).resolve()
    tmp, made = temp_sibling(out)
    try:
        picks: dict[str, dict] = {}
        near: list[dict] = []  # records with their kernel's shape: picks for neighbouring shapes
        if tuning_records is not None:
            from nnjit.tuning.records import picks_from

            picks = picks_from(tuning_records, near=near)
        job = _Job(backends, loop_options, picks, candidates, report, near=near, weights_mode=weights_mode,
                   int8_dot=int8_dot)
        source, generation = model, None
        if not shapes and is_generation(model):
            model, generation, dims, binds = prepare_generation(model, lengths, max_length, max_batch)
        else:
            dims = {} if shapes else dynamic_dims(model, lengths=lengths, max_length=max_length, max_batch=max_batch)
            binds = variants(dims)
        dynamic = None
        if not dims:
            model_io, plans, weights = job.compile(model, shapes, tmp)
        else:
            done: list[tuple[dict, dict]] = []
            weights = {}
            for i, bind in enumerate(binds):
                sub = f"variants/v{i}"
                try:
                    model_io, plans, w = job.compile(model, bound_shapes(model, bind), tmp / sub)
                except NNJitError as e:
                    raise NNJitError(f"at {_bind_text(bind)}: {e.message}", where=e.where,
                                     hint=e.hint or "give smaller sizes (--max-length, --lengths)") from None  # fmt: skip
                _merge_variant(weights, w, plans, sub, job)
                done.append((model_io, plans))
            dynamic = {
                "dims": {n: d.as_json() for n, d in dims.items()},
                "outputs": output_dims(model, [m for m, _ in done], binds, dims),
                "variants": [{"bind": b, "model": m, "backends": p} for b, (m, p) in zip(binds, done)],
            }
            model_io, plans = done[-1]
        # (a decoder's tokenizer fills input_ids alone: generation makes the mask, positions and cache)
        text_inputs = [t for t in model_io["inputs"] if generation is None or t["name"] == "input_ids"]
        text = tokenizer_for(source, tokenizer, [SimpleNamespace(**t) for t in text_inputs])
        # entries no plan reads (a weight only the Wasm kernels read, packed) are dropped
        every = [plans] + [v["backends"] for v in (dynamic or {}).get("variants", [])]
        keys = {b["key"] for ps in every for p in ps.values() for b in p["buffers"] if "key" in b}
        weights = {k: v for k, v in weights.items() if k in keys}
        t0 = time.perf_counter()
        index = save_compact(weights, tmp / "weights.bin", weights_mode, job.axes, job.compact)
        report.timings["write weights"] = time.perf_counter() - t0
        manifest = {
            "format": PLAN_FORMAT,
            "version": PLAN_VERSION,
            "model": model_io,
            "weights": {"file": "weights.bin", "entries": index},
            "source": str(Path(source).resolve()) if isinstance(source, (str, os.PathLike)) else None,
            "backends": plans,
            **({"dynamic": dynamic} if dynamic else {}),
            **({"generation": generation} if generation else {}),
        }
        if reference_outputs:
            manifest["reference"] = write_reference(model, manifest, tmp)
        ship_tokenizer(text, manifest, tmp)
        manifest["files"] = {
            str(p.relative_to(tmp)): _sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()
        }
        if web_runtime:
            install_runtime(tmp)
        # (a variable-length plan repeats its tables per variant: compact, it is about half the size)
        layout = {"separators": (",", ":")} if dynamic else {"indent": 1}
        (tmp / "plan.json").write_text(json.dumps(manifest, **layout))
        swap_in(tmp, out_dir, check_output_dir(out_dir, model_path))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        remove_empty(made)
        raise
    return manifest


def _bind_text(bind: dict[str, int]) -> str:
    return ", ".join(f"{n}={v}" for n, v in bind.items())


def _merge_variant(weights: dict[str, np.ndarray], new: dict[str, np.ndarray], plans: dict, sub: str,
                   job: _Job) -> None:  # fmt: skip
    """Adds a shape variant's weights to the bundle's (one copy of each: a key whose content
    differs between variants, a constant folded from the input's shape, gets a variant suffix)
    and makes its plans' file names relative to the bundle."""
    renamed: dict[str, str] = {}
    for key, arr in new.items():
        have = weights.get(key)
        if have is None:
            weights[key] = arr
        elif have.shape != arr.shape or have.dtype != arr.dtype or not np.array_equal(have, arr):
            renamed[key] = f"{key}#{sub.rsplit('/', 1)[-1]}"
            weights[renamed[key]] = arr
            for table in (job.axes, job.compact):  # (how to store it compactly, if at all)
                if key in table:
                    table[renamed[key]] = table[key]
    for plan in plans.values():
        for b in plan["buffers"]:
            if b.get("key") in renamed:
                b["key"] = renamed[b["key"]]
        for k in plan["kernels"].values():
            k["file"] = f"{sub}/{k['file']}"
            for c in k.get("candidates", ()):
                c["file"] = f"{sub}/{c['file']}"


@dataclass
class _Job:
    """The part of a compile that runs once per input shape: import, tensor passes, and per
    backend lowering, kernel files (under `root`), plan and candidates."""

    backends: Sequence[str]
    loop_options: str
    picks: dict[str, dict]
    candidates: int | None
    report: CompileReport
    near: list[dict] = field(default_factory=list)  # records with their geometry (nearest_picks)
    axes: dict[str, int] = field(default_factory=dict)  # weight key -> axis to quantize along
    compact: dict[str, Any] = field(default_factory=dict)  # weight key -> the model's compact form
    weights_mode: str = "f32"
    int8: dict[str, Any] = field(default_factory=dict)  # weight key -> (q, scales, axis) | None
    int8_dot: int | None = None  # compile_model's int8_dot (Wasm)

    def compile(self, model, shapes, root: Path) -> tuple[dict, dict[str, Any], dict[str, np.ndarray]]:
        """-> (the model's inputs and outputs, plan per backend, weights by key)."""
        from nnjit.frontend import import_onnx

        report = self.report
        t0 = time.perf_counter()
        imported = import_onnx(model, shapes=shapes)
        _add_time(report, "import", t0)
        for key, axis in weight_axes(imported.module).items():
            self.axes.setdefault(key, axis)
        for key, form in imported.compact.items():
            self.compact.setdefault(key, form)
        t0 = time.perf_counter()
        # (before the passes too: nn-tensor-split-weights makes the gathers of a split table index
        # computed ids, and the table's chunks are smaller than the table)
        int_ranges = _int_ranges(imported.module)
        run_pipeline(imported.module, TENSOR_PIPELINE)
        _add_time(report, "tensor passes", t0)
        for i, n in _int_ranges(imported.module).items():
            int_ranges[i] = min(n, int_ranges.get(i, n))
        (root / "kernels").mkdir(parents=True)
        used = materialize_weights(imported.module, imported.weights)
        weights = {k: storage_array(k, v) for k, v in used.items()}
        plans: dict[str, Any] = {}
        for backend in self.backends:
            t0 = time.perf_counter()
            source = imported.module
            if TARGETS[backend].kernel_target == "wasm":
                source = self._int8_weights(imported.module, weights)
            target = TARGETS[backend]
            if target.kernel_target == "wasm" and self.int8_dot is not None:
                dot = f"nn-tensor-int8-weights{{dot=i16 max-m={self.int8_dot}}}"
                target = replace(target, tensor_passes=target.tensor_passes.replace("nn-tensor-int8-weights", dot))
            tensor_module = backend_module(source, target)
            if TARGETS[backend].kernel_target == "wgsl":
                tensor_module = self._f16_kernels(tensor_module, imported.module, weights)
            if tensor_module is not imported.module:
                keys = [o.key.data for o in tensor_module.walk() if isinstance(o, WeightOp)]
                # (16-bit pairs first: panels of them are packed from them)
                have = {**imported.weights, **used}
                bases = [p[0] for p in map(parse_pack_key, keys) if p is not None]
                pairs = materialize_i16x2([*keys, *bases], have) | materialize_i8x4([*keys, *bases], have)
                int8 = materialize_int8([*keys, *bases], self._int8_of)
                wanted = set(keys)
                for key, arr in {**pairs, **int8, **materialize_packed(keys, {**have, **pairs, **int8})}.items():
                    if key in wanted:
                        weights[key] = storage_array(key, arr)
            picks = self.picks
            if picks or self.near:
                from nnjit.tuning import apply as tuned

                picks = tuned.nearest_picks(tensor_module, TARGETS[backend].kernel_target, picks, self.near)
                module = tuned.lower_tuned(tensor_module, backend, self.loop_options, picks)
            else:
                module = lower_for_backend(tensor_module, backend, self.loop_options)
            kernels = kernels_of(module, backend)
            _add_time(report, f"{backend}: lower and print", t0)
            t0 = time.perf_counter()
            files = _write_kernels(root / "kernels", backend, kernels)
            _add_time(report, f"{backend}: write kernels", t0)

            plan, constants = build_plan(main_func(module), kernels, files)
            if backend == "webgpu":
                _check_bindings(plan)
            else:
                _check_wasm_memory(plan)
            for key, arr in constants.items():  # constants are per backend: prefix them
                weights[f"{backend}{key}"] = arr
            for buf in plan["buffers"]:
                if buf["kind"] == "weight" and buf["key"] in constants:
                    buf["key"] = f"{backend}{buf['key']}"
            count = dict(TARGETS[backend].default_candidates) if self.candidates is None else self.candidates
            if count:
                from nnjit.tuning.apply import add_candidates

                t0 = time.perf_counter()
                add_candidates(plan, tensor_module, backend, count, root, picks)
                _add_time(report, f"{backend}: candidates", t0)
            plans[backend] = plan
            report.kernels[backend] = report.kernels.get(backend, 0) + len(plan["kernels"])
        model_io = {
            "inputs": [
                {"name": t.name, "shape": list(t.shape), "dtype": str(t.dtype),
                 **({"range": int_ranges[i]} if i in int_ranges else {})}
                for i, t in enumerate(imported.inputs)
            ],  # fmt: skip
            "outputs": [
                {"name": t.name, "shape": list(t.shape), "dtype": str(t.dtype)} for t in imported.outputs
            ],
        }
        return model_io, plans, weights


    def _int8_weights(self, module: ModuleOp, weights: dict[str, np.ndarray]) -> ModuleOp:
        """A clone of `module` with the weights that weights.bin stores as int8 per column
        marked (nnjit/compact.py), for the Wasm kernels to read as bytes; `module` itself when
        there are none."""
        axes: dict[str, int] = {}
        for op in module.walk():
            if isinstance(op, WeightOp) and op.key.data in weights:
                b = self._int8_of(op.key.data, weights[op.key.data])
                if b is not None:
                    axes[op.key.data] = b[2]
        if not axes:
            return module
        marked = module.clone()
        mark_int8_weights(marked, axes.get)
        return marked

    def _int8_of(self, key: str, array: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int] | None:
        """(int8 q, scales [N], axis) of a weight stored as int8 per column, or None."""
        if key not in self.int8:
            b = None if array is None else int8_blocks(key, array, self.weights_mode, self.axes, self.compact)
            if array is None and b is None:
                return None
            self.int8[key] = None if b is None else (b.q, b.scale.reshape(-1), b.axis)
        return self.int8[key]

    def _f16_kernels(self, module: ModuleOp, shared: ModuleOp, weights: dict[str, np.ndarray]) -> ModuleOp:
        """`module` (a clone when it is `shared`, which other backends lower) with the matmuls
        whose B weight weights.bin stores as float16 tagged (nnjit/compact.py): their WebGPU
        candidates read it as f16 on devices with "shader-f16"."""

        def is_f16(key: str) -> bool:
            arr = weights.get(key)
            return arr is not None and stored_f16(key, arr, self.weights_mode, self.axes, self.compact)

        if not any(is_f16(k) for k in weights):
            return module
        tagged = module.clone() if module is shared else module
        mark_f16_weights(tagged, is_f16)
        return tagged


def _add_time(report: CompileReport, stage: str, t0: float) -> None:
    report.timings[stage] = report.timings.get(stage, 0.0) + time.perf_counter() - t0


def _check_bindings(plan: dict) -> None:
    """Every buffer a WebGPU kernel binds fits the binding limit the bundle is compiled for
    (nn-tensor-split-weights splits the weights it can; this names what is left)."""
    limit = max_binding_bytes()
    names = {io["buffer"]: io["name"] for io in plan["inputs"] + plan["outputs"]}
    order = {"weight": 0, "input": 1, "output": 1}  # (name a weight first: that is what splits)
    for b in sorted(plan["buffers"], key=lambda b: order.get(b["kind"], 2)):
        if b["kind"] == "view" or b["bytes"] <= limit:
            continue
        if b["kind"] == "weight":
            what = f"weight '{b['key']}'"
        elif b["id"] in names:
            what = f"{b['kind']} '{names[b['id']]}'"
        else:
            what = "an intermediate tensor"
        raise NNJitError(
            f"{what} {b['shape']} takes {b['bytes']} bytes, over WebGPU's maxStorageBufferBindingSize "
            f"of {limit} bytes, and nnjit cannot split it",
            hint=f"compile with --backend wasm, or set {BINDING_ENV} to a larger limit your device has",
        )


WASM_MEMORY_BYTES = 1 << 32
"""A wasm32 memory holds at most 4 GiB: the weights and the activation arena must fit in it."""


def _check_wasm_memory(plan: dict) -> None:
    weights = sum(b["bytes"] + 256 for b in plan["buffers"] if b["kind"] == "weight")
    total = weights + plan["arena_bytes"] + (1 << 20)
    if total > WASM_MEMORY_BYTES:
        raise NNJitError(
            f"the Wasm plan needs {total / 2**30:.1f} GiB of memory ({weights / 2**30:.1f} GiB of "
            f"weights, {plan['arena_bytes'] / 2**30:.1f} GiB of activations), over WebAssembly's "
            "4 GiB (wasm32)", hint="use smaller input shapes (--shape), or --backend webgpu",
        )


def storage_array(key: str, a):
    """A weight as kernels read it: float32, int32 for integer and bool tensors, int8 for
    the int8 weights of the Wasm matmuls (nnjit/passes/nn_tensor_int8_weights.py)."""
    if a.dtype == np.int8 and INT8_TAG in key:
        return np.ascontiguousarray(a)
    if a.dtype.kind in "iub":
        if a.size and a.dtype.kind != "b" and (a.min() < -(2**31) or a.max() >= 2**31):
            raise NNJitError(f"weight '{key}' has values outside int32, which nnjit stores")
        return np.ascontiguousarray(a, dtype=np.int32)
    return np.ascontiguousarray(a, dtype=np.float32)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_kernels(folder: Path, backend: str, kernels: list[tuple[str, str, dict]]) -> dict[str, str]:
    """Writes each kernel's file (Wasm: the .wasm, and its WAT text beside it); kernels of the
    same code (a transformer's layers) share the first one's file."""
    ext = TARGETS[backend].extension
    files: dict[str, str] = {}
    by_code: dict[str, str] = {}
    for name, source, _ in kernels:
        if source in by_code:
            files[name] = by_code[source]
            continue
        rel = f"kernels/{name}.{ext}"
        if ext == "wasm":  # (the WAT text beside the module it assembles to)
            (folder / f"{name}.wat").write_text(source)
            (folder.parent / rel).write_bytes(assemble(source))
        else:
            (folder.parent / rel).write_text(source)
        files[name] = by_code[source] = rel
    return files
