"""The model plan: kernels in order, buffers and their reuse, weights: what every runtime reads.

`build_plan(main, kernels, ...)` reads the bufferized `func.func @main` of a web-level module
(nn_loop.weight / constant / buffer / view / launch, see docs/ir.md) and the printed kernels,
and returns a JSON-ready dict:

    {"inputs": [...], "outputs": [...],
     "buffers": [{"id", "kind", "dtype", "shape", "bytes", "slot", "offset", "key"?}],
     "slots": [{"bytes", "offset"}], "arena_bytes",
     "steps": [{"kernel", "args": [buffer ids]}],
     "kernels": {name: {"file", "manifest"}}}

Intermediate buffers share slots when their lifetimes do not overlap (greedy best fit over the
launch order); a view shares its base's slot. Each slot has an offset in one arena (for Wasm's
linear memory); WebGPU makes one GPU buffer per slot.
"""

from __future__ import annotations

import math
from typing import Any

from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, IntegerAttr, IntegerType, MemRefType, StringAttr
from xdsl.ir import SSAValue

from nnjit.dialects import nn_loop

ALIGN = 256  # WebGPU's minStorageBufferOffsetAlignment; also good for Wasm SIMD


def _align(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


def dtype_name(t: MemRefType) -> str:
    e = t.get_element_type()
    if isinstance(e, IntegerType):
        return f"i{e.width.data}"
    return str(e)


def memref_bytes(t: MemRefType) -> int:
    """Bytes of a buffer: 4 an element (f32, i32), 2 for f16 (a weight a kernel reads as
    float16: the plan lists it as a buffer of its own, the same key with dtype "f16"), 1 for
    i8 (a weight the Wasm kernels read as int8 bytes)."""
    return math.prod(t.get_shape()) * _ELEM_BYTES.get(dtype_name(t), 4)


_ELEM_BYTES = {"f16": 2, "i8": 1}


def _strings(attr: Any) -> list[str]:
    if isinstance(attr, ArrayAttr):
        return [a.data for a in attr.data if isinstance(a, StringAttr)]
    return []


def build_plan(
    main: func.FuncOp,
    kernels: list[tuple[str, str, dict]],
    kernel_file: dict[str, str],
) -> tuple[dict, dict[str, Any]]:
    """Returns (plan, constants): constants maps a generated weight key to its numpy array
    (small nn_loop.constant buffers, which travel in the weights file)."""
    import numpy as np

    ids: dict[SSAValue, int] = {}
    buffers: list[dict] = []
    constants: dict[str, Any] = {}

    def add(value: SSAValue, kind: str, **extra) -> int:
        t = value.type
        assert isinstance(t, MemRefType)
        bid = len(buffers)
        buffers.append(
            {"id": bid, "kind": kind, "dtype": dtype_name(t), "shape": list(t.get_shape()),
             "bytes": memref_bytes(t), **extra}  # fmt: skip
        )
        ids[value] = bid
        return bid

    n_out_attr = main.attributes.get("nnjit.num_outputs")
    n_out = n_out_attr.value.data if isinstance(n_out_attr, IntegerAttr) else 0
    args = list(main.body.block.args)
    in_args, out_args = args[: len(args) - n_out], args[len(args) - n_out :]
    in_names = _strings(main.attributes.get("nnjit.input_names")) or [
        f"input{i}" for i in range(len(in_args))
    ]
    out_names = _strings(main.attributes.get("nnjit.output_names")) or [
        f"output{i}" for i in range(len(out_args))
    ]
    for a in in_args:
        add(a, "input")
    for a in out_args:
        add(a, "output")

    steps: list[dict] = []
    for op in main.body.block.ops:
        if isinstance(op, nn_loop.WeightOp):
            add(op.result, "weight", key=op.key.data)
        elif isinstance(op, nn_loop.ConstantOp):
            key = f"#const{len(constants)}"  # (model keys never hold '#': frontend/onnx_import.py)
            vals = np.array(op.value.get_values(), dtype=np.float32 if dtype_name(op.result.type) == "f32" else np.int32)
            constants[key] = vals.reshape(op.result.type.get_shape())  # type: ignore[union-attr]
            add(op.result, "weight", key=key)
        elif isinstance(op, nn_loop.BufferOp):
            add(op.result, "intermediate")
        elif isinstance(op, nn_loop.ViewOp):
            add(op.result, "view", base=ids[op.input])
        elif isinstance(op, nn_loop.LaunchOp):
            steps.append({"kernel": op.callee.root_reference.data, "args": [ids[a] for a in op.args]})
        elif isinstance(op, func.ReturnOp):
            pass
        else:
            raise ValueError(f"unexpected op in @main: {op.name}")

    _assign_slots(buffers, steps)
    arena = 0
    slots: list[dict] = []
    for b in buffers:
        if b.get("slot") is not None and b["slot"] >= len(slots):
            slots.extend({"bytes": 0} for _ in range(b["slot"] + 1 - len(slots)))
    for b in buffers:
        if b.get("slot") is not None:
            slots[b["slot"]]["bytes"] = max(slots[b["slot"]]["bytes"], b["bytes"])
    for s in slots:
        s["offset"] = arena
        arena += _align(max(s["bytes"], 4))
    for b in buffers:
        if b.get("slot") is not None:
            b["offset"] = slots[b["slot"]]["offset"]

    used = {s["kernel"] for s in steps}
    plan = {
        "inputs": [{"name": n, "buffer": ids[a]} for n, a in zip(in_names, in_args)],
        "outputs": [{"name": n, "buffer": ids[a]} for n, a in zip(out_names, out_args)],
        "buffers": buffers,
        "slots": slots,
        "arena_bytes": arena,
        "steps": steps,
        "kernels": {
            name: {"file": kernel_file[name], "manifest": manifest}
            for name, _, manifest in kernels
            if name in used
        },
    }
    return plan, constants


def _assign_slots(buffers: list[dict], steps: list[dict]) -> None:
    """Gives every non-weight buffer a slot; intermediates reuse slots of dead buffers."""

    def root(bid: int) -> int:
        while buffers[bid]["kind"] == "view":
            bid = buffers[bid]["base"]
        return bid

    last_use: dict[int, int] = {}
    first_def: dict[int, int] = {}
    for i, s in enumerate(steps):
        for a in s["args"]:
            r = root(a)
            last_use[r] = i
            first_def.setdefault(r, i)

    n_slots = 0
    free: list[tuple[int, int]] = []  # (bytes, slot)
    slot_bytes: dict[int, int] = {}
    # inputs and outputs own their slots for the whole run
    for b in buffers:
        if b["kind"] in ("input", "output"):
            b["slot"] = n_slots
            slot_bytes[n_slots] = b["bytes"]
            n_slots += 1
    releases: dict[int, list[int]] = {}
    for b in buffers:
        if b["kind"] == "intermediate" and b["id"] in last_use:
            releases.setdefault(last_use[b["id"]], []).append(b["id"])
    order = sorted(
        (b for b in buffers if b["kind"] == "intermediate"),
        key=lambda b: first_def.get(b["id"], len(steps)),
    )
    pending = list(order)
    for i in range(len(steps) + 1):
        # allocate buffers first defined at step i
        while pending and first_def.get(pending[0]["id"], len(steps)) <= i:
            b = pending.pop(0)
            fits = [f for f in free if f[0] >= b["bytes"]]
            if fits:
                choice = min(fits)
                free.remove(choice)
                b["slot"] = choice[1]
            elif free:  # grow the largest free slot rather than making a new one
                choice = max(free)
                free.remove(choice)
                b["slot"] = choice[1]
                slot_bytes[choice[1]] = b["bytes"]
            else:
                b["slot"] = n_slots
                slot_bytes[n_slots] = b["bytes"]
                n_slots += 1
        for bid in releases.get(i, []):
            s = buffers[bid]["slot"]
            free.append((slot_bytes[s], s))
    for b in buffers:
        if b["kind"] == "view":
            b["slot"] = buffers[root(b["id"])].get("slot")
        elif b["kind"] == "weight":
            b["slot"] = None
