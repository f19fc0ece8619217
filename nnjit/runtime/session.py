"""Runs a compiled bundle from Python: `Session(bundle_dir, backend).run(feeds)`.

The same plan.json drives the browser runtime. WebGPU runs through wgpu-py (one GPU buffer per
plan slot, weights uploaded once); Wasm through wasmtime (one shared linear memory: weights and
the activation arena at fixed offsets, kernels on worker threads).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from nnjit.bundle import bundle_file, check_backend_plan, check_plan
from nnjit.errors import ModelFormatError, NNJitError, ShapeError
from nnjit.frontend.compact import load_compact
from nnjit.runtime.adapters import device_class
from nnjit.runtime.generate import Generator, check_generation
from nnjit.runtime.variants import (
    check_dynamic,
    cut_outputs,
    no_variant,
    no_variant_hint,
    pad_feeds,
    pick_variant,
    variant_plan,
)
from nnjit.text import TextCodec

_DT = {"f32": np.float32, "i32": np.int32, "f16": np.float16, "i8": np.int8}


MAX_PLAN_BYTES = 1 << 30
"""A plan.json larger than this is not one nnjit wrote (it is read whole)."""


def load_bundle(path: str | Path, verify: bool = True) -> tuple[Path, dict]:
    """Reads plan.json of a bundle directory, checking its format, version and file names
    (none may lead out of the bundle) and (optionally) the files' hashes."""
    root = Path(path)
    plan_path = root / "plan.json"
    if not plan_path.is_file():
        raise ModelFormatError(
            f"{root}: not an nnjit bundle (no plan.json)", hint="make one with `nnjit compile`"
        )
    if plan_path.stat().st_size > MAX_PLAN_BYTES:
        raise ModelFormatError(f"{plan_path}: {plan_path.stat().st_size} bytes, over "
                               f"{MAX_PLAN_BYTES} for a plan", hint="recompile the bundle")  # fmt: skip
    try:
        plan = json.loads(plan_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFormatError(f"{plan_path}: not valid JSON ({e})", hint="recompile the bundle") from None
    check_plan(plan, str(plan_path))
    if verify:
        import hashlib

        for rel, digest in plan["files"].items():
            p = bundle_file(root, plan, rel)
            if not p.is_file():
                raise ModelFormatError(f"{p}: missing from the bundle", hint="recompile the bundle")
            if rel == plan["weights"].get("file"):
                _check_weights_size(p, plan)
            h = hashlib.sha256()
            with open(p, "rb") as f:  # (in chunks: a huge or sparse file costs no memory)
                for chunk in iter(lambda f=f: f.read(1 << 22), b""):
                    h.update(chunk)
            if h.hexdigest() != digest:
                raise ModelFormatError(
                    f"{p}: content hash does not match plan.json", hint="recompile the bundle"
                )
    return root, plan


def _check_weights_size(path: Path, plan: dict) -> None:
    """The weights file ends where its last entry does (a larger one is not the plan's, and
    hashing it could take minutes)."""
    try:
        entries = plan["weights"]["entries"].values()
        end = max((int(e["offset"]) + int(e["nbytes"]) for e in entries), default=0)
    except (AttributeError, KeyError, TypeError, ValueError):
        return  # (load_weights names what is wrong with the entries)
    size = path.stat().st_size
    if size != end:
        raise ModelFormatError(f"{path}: {size} bytes, but the plan's weights end at byte {end}",
                               hint="recompile the bundle")  # fmt: skip


def _load_weights(root: Path, plan: dict, verify: bool) -> dict[str, np.ndarray]:
    path = bundle_file(root, plan, plan["weights"].get("file"), verify)
    return load_compact(path, plan["weights"]["entries"])


def prepare_feeds(plan: dict, feeds: dict[str, Any]) -> list[np.ndarray]:
    """Checks feeds against the model's inputs; returns them as stored (i64 -> i32, bool -> i32)."""
    arrays = []
    expected = plan["model"]["inputs"]
    unknown = set(feeds) - {i["name"] for i in expected}
    if unknown:
        raise ShapeError(
            f"unknown input(s) {sorted(unknown)}",
            hint=f"the model's inputs are {[i['name'] for i in expected]}",
        )
    for info in expected:
        name = info["name"]
        if name not in feeds:
            raise ShapeError(f"missing input '{name}'", hint=f"shape {info['shape']}, {info['dtype']}")
        a = np.asarray(feeds[name])
        if list(a.shape) != list(info["shape"]):
            raise ShapeError(
                f"input '{name}' has shape {list(a.shape)}, the compiled model takes "
                f"{info['shape']}",
                hint="recompile with --shape to change it",
            )
        want = np.dtype(info["dtype"])
        if a.dtype != want and not (a.dtype.kind in "iu" and want.kind in "iu"):
            raise ShapeError(f"input '{name}' has dtype {a.dtype}, the model takes {want}")
        if want.kind in "iub":
            if a.size and (a.min() < np.iinfo(np.int32).min or a.max() > np.iinfo(np.int32).max):
                raise ShapeError(f"input '{name}' has values outside int32, which nnjit stores")
            if "range" in info:
                _check_range(name, a, int(info["range"]))
            arrays.append(np.ascontiguousarray(a, dtype=np.int32))
        else:
            arrays.append(np.ascontiguousarray(a, dtype=np.float32))
    return arrays


def _check_range(name: str, a: np.ndarray, size: int) -> None:
    """Indices into a table of `size` rows lie in [-size, size-1] (as onnxruntime's Gather
    requires); the kernels clamp, which would hide the error."""
    bad = np.flatnonzero((a < -size) | (a >= size))
    if bad.size:
        where = [int(i) for i in np.unravel_index(bad[0], a.shape)]
        raise ShapeError(
            f"input '{name}' has value {int(a.flat[bad[0]])} at index {where}, outside "
            f"[{-size}, {size - 1}] (it indexes a table of {size} rows; onnxruntime: "
            "indices element out of data bounds)",
            hint=f"{bad.size} such value(s)",
        )


def random_feeds(plan: dict, seed: int = 0) -> dict[str, np.ndarray]:
    """Valid random inputs: token ids below the vocabulary size, masks of ones, floats N(0,1)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for info in plan["model"]["inputs"]:
        dt = np.dtype(info["dtype"])
        shape = info["shape"]
        if dt.kind == "f":
            feeds[info["name"]] = rng.standard_normal(shape).astype(dt)
        elif dt.kind == "b":
            feeds[info["name"]] = np.ones(shape, dtype=dt)
        elif "range" in info:
            feeds[info["name"]] = rng.integers(0, info["range"], size=shape).astype(dt)
        else:  # masks, token types, positions: 1s are valid for all of them
            feeds[info["name"]] = np.ones(shape, dtype=dt)
    return feeds


def random_feeds_at(plan: dict, length: int | None, seed: int = 0) -> dict[str, np.ndarray]:
    """Valid random inputs of `length` on every length dim (None: the longest compiled) and
    batch 1, for a variable-length bundle."""
    dims = plan["dynamic"]["dims"]
    want = {n: (1 if d.get("role") == "batch" else length) for n, d in dims.items()}
    best = None
    for i, v in enumerate(plan["dynamic"]["variants"]):
        if all(s is None or v["bind"][n] == s or (dims[n]["pad"] and v["bind"][n] > s) for n, s in want.items()):
            if best is None or math.prod(v["bind"].values()) < math.prod(plan["dynamic"]["variants"][best]["bind"].values()):
                best = i
    if best is None:
        raise ShapeError(no_variant(plan["dynamic"], {n: s for n, s in want.items() if s is not None}),
                         hint=no_variant_hint(plan["dynamic"], {}))  # fmt: skip
    bind = plan["dynamic"]["variants"][best]["bind"]
    sizes = {n: bind[n] if s is None else s for n, s in want.items()}
    feeds = random_feeds(variant_plan(plan, best), seed)
    for name, d in dims.items():
        for inp, axis in d["inputs"]:
            if inp in feeds:
                cut = [slice(None)] * feeds[inp].ndim
                cut[axis] = slice(0, sizes[name])
                feeds[inp] = np.ascontiguousarray(feeds[inp][tuple(cut)])
    return feeds


class Session:
    """A compiled model, ready to run on one backend ("webgpu" or "wasm")."""

    def __init__(self, bundle: str | Path, backend: str = "webgpu", *, threads: int = 0,
                 verify: bool = True):  # fmt: skip
        if isinstance(threads, bool) or not isinstance(threads, int) or not 0 <= threads <= 256:
            raise NNJitError(f"threads={threads!r}: give 0 (all cores) to 256 Wasm threads")
        self.root, self.plan = load_bundle(bundle, verify)
        self.verify = verify
        self._text: TextCodec | None = None
        if backend not in self.plan["backends"]:
            raise ModelFormatError(
                f"the bundle has no '{backend}' backend",
                hint=f"it has {sorted(self.plan['backends'])}; recompile with --backend {backend}",
            )
        self.backend = backend
        where = str(self.root / "plan.json")
        check_dynamic(self.plan, where)
        check_generation(self.plan, where)
        self._generator: Generator | None = None
        self.bplan = check_backend_plan(self.plan, backend, where)
        self._weights = _load_weights(self.root, self.plan, verify)
        self._threads = threads
        self._variants: dict[int, _Runner] = {}
        self._impl = self._make_runner(self.plan, self.bplan, None)
        if self.dynamic:  # (the top-level plan is the largest variant's)
            self._variants[len(self.plan["dynamic"]["variants"]) - 1] = self._impl

    @property
    def dynamic(self) -> bool:
        """Whether the bundle serves a range of input sizes (plan "dynamic")."""
        return "dynamic" in self.plan

    def random_feeds(self, length: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
        """Valid random inputs (random_feeds); a variable-length bundle's at `length` (None: the
        longest it serves) on every length dim and batch 1."""
        if self.dynamic:
            return random_feeds_at(self.plan, length, seed)
        if length is not None:
            raise NNJitError(f"{self.root}: a length applies to a model with dynamic dims; this one is "
                             f"fixed at {self.plan['model']['inputs'][0]['shape']}")  # fmt: skip
        return random_feeds(self.plan, seed)

    def _make_runner(self, plan: dict, bplan: dict, first: _Runner | None) -> _Runner:
        files = _kernel_files(self.root, plan, bplan, self.verify)
        if self.backend == "webgpu":
            return _WebGPURunner(files, bplan, self._weights, self.root, plan, self.verify, first)
        import os

        return _WasmRunner(files, bplan, self._weights, self._threads or os.cpu_count() or 1, first)

    def _runner(self, index: int) -> _Runner:
        """The runner of shape variant `index`, made on first use; it shares the device, the
        weights already uploaded and (Wasm) the activation arena with the others."""
        if index not in self._variants:
            vplan = variant_plan(self.plan, index)
            where = f"{self.root / 'plan.json'} (variant {index})"
            check_plan(vplan, where)
            bplan = check_backend_plan(vplan, self.backend, where)
            self._variants[index] = self._make_runner(vplan, bplan, self._impl)
        return self._variants[index]

    @property
    def device(self) -> dict:
        """What runs the model: the WebGPU adapter's facts (WebGPURuntime.info), or the Wasm
        engine and its threads."""
        if self.backend == "webgpu":
            return dict(self._impl.rt.info)  # type: ignore[attr-defined]
        return {"name": "wasmtime", "threads": self._impl.rt.threads}  # type: ignore[attr-defined]

    def tune(self, budget: float = 30.0, *, samples: int = 5, seed: int = 0) -> dict:
        """Tunes a WebGPU bundle's kernels among their shipped candidates on this device, as the
        page does (nnjit/web/tuning.js): one run on random inputs, each kernel's candidates
        timed in this device class's order within `budget` seconds; the fastest stay in use for
        later runs. Returns {"tuned", "shared", "out_of_budget", "cut_short", "failed": kernel
        names (failed: with reasons), "choices": {kernel: candidate index}, "times": {kernel:
        {candidate index: seconds}}, "elapsed_s"}. Nothing is cached: `nnjit tune` makes
        records for `nnjit compile --tuning-records`."""
        if self.backend != "webgpu":
            raise NNJitError("Session.tune() times WebGPU candidates; this session runs Wasm",
                             hint="tune Wasm kernels with `nnjit tune MODEL --backend wasm` and compile "
                                  "with --tuning-records")  # fmt: skip
        if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 <= budget < 1e6:
            raise NNJitError(f"budget={budget!r}: give seconds, from 0")
        if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= 1000:
            raise NNJitError(f"samples={samples!r}: give 1 to 1000 timed runs per candidate")
        arrays = prepare_feeds(self.plan, random_feeds(self.plan, seed))
        return self._impl.tune(arrays, float(budget), samples)  # type: ignore[attr-defined]

    @property
    def choices(self) -> dict[str, int]:
        """WebGPU: the candidate in use per kernel that has candidates ({} on Wasm)."""
        return dict(getattr(self._impl, "choices", {}))

    def run(self, feeds: dict[str, Any]) -> dict[str, np.ndarray]:
        """Runs the model on `feeds` {input name: array}; returns {output name: array}. A
        variable-length bundle runs the cheapest shape variant that holds the inputs (padded
        with zeros, masked out) and cuts the outputs back to the inputs' sizes."""
        if not self.dynamic:
            return self._run(self.plan, self._impl, feeds)
        if "generation" in self.plan:
            raise NNJitError(f"{self.root} is a generation bundle: its variants take a cache that "
                             "generate() keeps on the device", hint="call Session.generate(prompt_ids, ...)")  # fmt: skip
        if not isinstance(feeds, dict):
            raise ShapeError(f"feeds must map input names to arrays, not {type(feeds).__name__}")
        index, sizes = pick_variant(self.plan, feeds)
        vplan = variant_plan(self.plan, index)
        outs = self._run(vplan, self._runner(index), pad_feeds(self.plan, index, feeds))
        return cut_outputs(self.plan, sizes, outs)

    def generate(self, prompt_ids: Any, max_new_tokens: int = 32, *, temperature: float = 0.0, top_k: int = 0,
                 top_p: float = 1.0, seed: int | None = None, eos_token_id: int | None = None,
                 on_token: Any = None, on_logits: Any = None) -> list[int]:  # fmt: skip
        """Generates up to `max_new_tokens` token ids after `prompt_ids` (a list of ids) with a
        decoder bundle (plan "generation"), its KV cache kept on the device: greedy when
        `temperature` is 0, else sampled (top_k, top_p; `seed` makes it repeatable). Stops
        after `eos_token_id`. on_token(id) is called as each token comes, on_logits(array)
        with the logits each token was chosen from. `generation_stats` has the timings."""
        if "generation" not in self.plan:
            raise NNJitError(f"{self.root} is not a generation bundle",
                             hint="compile a decoder exported with its cache (past_key_values.N.key/value "
                                  "inputs, present.N.key/value outputs)")  # fmt: skip
        if self._generator is None:
            self._generator = Generator(self)
        return self._generator.generate(prompt_ids, max_new_tokens, temperature=temperature, top_k=top_k,
                                        top_p=top_p, seed=seed, eos_token_id=eos_token_id, on_token=on_token,
                                        on_logits=on_logits)  # fmt: skip

    def generate_text(self, prompt: str, max_new_tokens: int = 32, *, on_text: Any = None, **options: Any) -> str:
        """generate() from a text prompt through the bundle's tokenizer; returns the new
        text. on_text(piece) streams the text as tokens come (options: as generate's)."""
        ids = self.text.ids(prompt)
        if not ids:
            raise NNJitError(f"the prompt {prompt!r} has no tokens", hint="give a non-empty prompt")
        shown = [""]
        tokens: list[int] = []

        def each(tok: int) -> None:
            tokens.append(tok)
            if on_text is not None:
                text = self.text.decode(tokens)
                if text.startswith(shown[0]) and len(text) > len(shown[0]):
                    on_text(text[len(shown[0]):])
                    shown[0] = text

        on_token = options.pop("on_token", None)
        self.generate(ids, max_new_tokens, on_token=lambda t: (each(t), on_token and on_token(t)), **options)
        return self.text.decode(tokens)

    @property
    def generation_stats(self) -> dict:
        """The last generate()'s prompt and new token counts, prefill ms (prompt in, first token
        out) and decode tokens/s."""
        return dict(self._generator.stats) if self._generator is not None else {}

    @staticmethod
    def _run(plan: dict, runner: _Runner, feeds: dict[str, Any]) -> dict[str, np.ndarray]:
        outs = runner.run(prepare_feeds(plan, feeds))
        result = {}
        for info, arr in zip(plan["model"]["outputs"], outs):
            result[info["name"]] = arr.astype(np.dtype(info["dtype"]), copy=False)
        return result


    def encode(self, texts: str | list[str]) -> dict[str, np.ndarray]:
        """Feeds for `texts` from the bundle's tokenizer (nnjit/text.py), one row per text,
        padded to the compiled length with attention_mask 0 (longer texts are truncated)."""
        return self.text.encode(texts)

    def run_text(self, texts: str | list[str]) -> dict[str, np.ndarray]:
        """run() on `texts`, in batches of the compiled batch size; one output row per text."""
        return self.text.run(self.run, texts)[0]

    def embed(self, texts: str | list[str]) -> np.ndarray:
        """Unit-length sentence embeddings [len(texts), hidden]: the model's output mean-pooled
        over the attention mask, then normalised (as sentence-transformers does)."""
        return self.text.embed(self.run, texts)

    @property
    def text(self) -> TextCodec:
        """The bundle's tokenizer (loaded on first use; an error when the bundle has none)."""
        if self._text is None:
            self._text = TextCodec(self.root, self.plan, self.verify)
        return self._text


def _kernel_files(root: Path, plan: dict, bplan: dict, verify: bool) -> dict[str, Path]:
    """Kernel name -> its file, each checked to lie in the bundle (and be hashed, if verify)."""
    return {name: bundle_file(root, plan, k.get("file"), verify) for name, k in bplan["kernels"].items()}


def candidate_order(kernel: dict, cls: str | None) -> list[int]:
    """Indices of a plan kernel's "candidates" in the order device class `cls` ("gpu" | "cpu",
    nnjit/runtime/adapters.py) tries them: its "order" entry for the class (the first runs
    before tuning), else every candidate in list order; [] without candidates. The order is a
    hint: entries that name no candidate are dropped, and an unusable order means list order."""
    cands = kernel.get("candidates")
    n = len(cands) if isinstance(cands, list) else 0
    order = kernel.get("order")
    ix = order.get(cls) if isinstance(order, dict) and cls else None
    if isinstance(ix, list):
        valid = [i for i in ix if isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n]
        if valid:
            return list(dict.fromkeys(valid))
    return list(range(n))


def _candidate(root: Path, plan: dict, name: str, kernel: dict, index: int, verify: bool) -> tuple[Path, dict]:
    """(file, manifest) of candidate `index` of a plan kernel, checked like a kernel's own."""
    c = kernel["candidates"][index]
    if not isinstance(c, dict) or not isinstance(c.get("manifest"), dict):
        raise ModelFormatError(f"plan.json: candidate {index} of kernel '{name}' is malformed",
                               hint="recompile the bundle")  # fmt: skip
    return bundle_file(root, plan, c.get("file"), verify), c["manifest"]


class _Runner:
    """One plan on one device. `external` maps a root buffer id to a device buffer (WebGPU) or
    memory offset (Wasm) that replaces its slot: a generation cache bound as a past input."""

    kind = ""
    bplan: dict
    external: dict[int, Any]

    def run(self, inputs: list[np.ndarray | None], read: list[int] | None = None) -> list[np.ndarray | None]:
        """Writes the inputs (None: left as they are), runs the kernels and reads the outputs
        (only those at the indices in `read`, if given; None for the others)."""
        raise NotImplementedError

    def root_id(self, bid: int) -> int:
        return _root(self.bplan["buffers"], bid)["id"]

    def output_handle(self, index: int) -> Any:
        """The device buffer (WebGPU) or memory offset (Wasm) of output `index`."""
        return self._handle(self.bplan["outputs"][index]["buffer"])

    def _handle(self, bid: int) -> Any:
        raise NotImplementedError


def _root(buffers: list[dict], bid: int) -> dict:
    b = buffers[bid]
    while b["kind"] == "view":
        b = buffers[b["base"]]
    return b


class _WebGPURunner(_Runner):
    def __init__(self, files: dict[str, Path], bplan: dict, weights: dict[str, np.ndarray],
                 root: Path, plan: dict, verify: bool, share: Any = None):  # fmt: skip
        """share: another runner of the same bundle (a shape variant): its device and weight
        buffers are used, not made again."""
        from nnjit.runtime.webgpu import WebGPURuntime

        self.kind, self.external = "webgpu", {}
        self.rt = rt = share.rt if share is not None else WebGPURuntime()
        self.by_key: dict[tuple[str, str], Any] = share.by_key if share is not None else {}
        self.bplan = bplan
        self.root, self.plan, self.verify = root, plan, verify
        self.device_class = device_class(rt.info)
        limit = rt.limits.get("max-storage-buffer-binding-size", 128 << 20)
        for b in bplan["buffers"]:  # (before any kernel: name the weight, not a binding)
            if b["kind"] == "weight" and b["bytes"] > limit:
                raise NNJitError(
                    f"weight '{b['key']}' takes {b['bytes']} bytes, over this device's "
                    f"maxStorageBufferBindingSize of {limit}",
                    hint=f"recompile with NNJIT_MAX_BINDING_BYTES at most {limit} (the default, "
                    "128 MiB, fits every device)",
                )
        # each kernel starts as the first candidate of this device class's order (a GPU: the
        # measured prior's best; nnjit/tuning/prior.py) that the device can run (one reading
        # float16 weights needs "shader-f16"), or as its own file
        self.kernels = {}
        self.choices: dict[str, int] = {}
        for name, k in bplan["kernels"].items():
            order = self._order(k)
            if order:
                path, manifest = _candidate(root, plan, name, k, order[0], verify)
                self.kernels[name] = rt.create_kernel(path.read_text(), {**manifest, "name": name})
                self.choices[name] = order[0]
            else:
                self.kernels[name] = rt.create_kernel(files[name].read_text(), k["manifest"])
        self.slot_bufs = [rt.create_buffer(max(4, s["bytes"])) for s in bplan["slots"]]
        # weight buffers by (key, dtype), made at first use: a weight that the kernels in use
        # read as float16 is on the device as float16 only
        self.weights = weights
        for step in bplan["steps"]:
            self._args(step, self.kernels[step["kernel"]])

    def tune(self, inputs: list[np.ndarray], budget: float, samples: int) -> dict:
        """The page's on-device tuning (nnjit/web/tuning.js), here: one run of the model step
        by step; at a kernel's first step its candidates (this device class's order) are timed
        on that step's buffers, the fastest is kept and run for the next steps. No candidate
        starts once `budget` seconds are spent, nor a later one whose timing would end past it
        (as long as the slowest timing so far); kernels of the same content share a decision."""
        rt, bp = self.rt, self.bplan
        t0 = time.perf_counter()
        report: dict[str, Any] = {"tuned": [], "shared": [], "out_of_budget": [], "cut_short": [],
                                  "failed": [], "choices": dict(self.choices), "times": {}}  # fmt: skip
        for info, arr in zip(bp["inputs"], inputs):
            rt.write_buffer(self._buf(info["buffer"]), arr)
        decided: dict[str, int] = {}
        pending = {n for n, k in bp["kernels"].items() if len(self._order(k)) > 1}
        slowest = 0.0
        for step in bp["steps"]:
            name = step["kernel"]
            if name in pending:
                pending.discard(name)
                k = bp["kernels"][name]
                sig = str(k.get("signature", name))
                if sig in decided:
                    self._use(name, k, decided[sig])
                    report["shared"].append(name)
                elif time.perf_counter() - t0 >= budget:
                    report["out_of_budget"].append(name)
                else:
                    times: dict[int, float] = {}
                    best, best_t = self.choices[name], math.inf
                    for n_tried, c in enumerate(self._order(k)):
                        if n_tried and time.perf_counter() - t0 + slowest > budget:
                            report["cut_short"].append(name)
                            break
                        c0 = time.perf_counter()
                        try:
                            path, manifest = _candidate(self.root, self.plan, name, k, c, self.verify)
                            kern = rt.create_kernel(path.read_text(), {**manifest, "name": name})
                            t = sorted(rt.time_kernel(kern, self._args(step, kern), samples))[samples // 2]
                        except NNJitError as e:
                            report["failed"].append({"kernel": name, "candidate": c, "reason": str(e)})
                            continue
                        slowest = max(slowest, time.perf_counter() - c0)
                        times[c] = t
                        if t < best_t:
                            best, best_t = c, t
                    report["times"][name] = times
                    if times:
                        self._use(name, k, best)
                        decided[sig] = best
                        report["tuned"].append(name)
                report["choices"][name] = self.choices[name]
            rt.dispatch(self.kernels[name], self._args(step, self.kernels[name]))
        rt.flush()
        report["elapsed_s"] = time.perf_counter() - t0
        return report

    def _order(self, kernel: dict) -> list[int]:
        """candidate_order for this device class, less the candidates this device cannot run
        (a feature it lacks: "shader-f16")."""
        cands = kernel.get("candidates") or []
        return [c for c in candidate_order(kernel, self.device_class)
                if self.rt.unsupported(cands[c].get("manifest", {})) is None]  # fmt: skip

    def _use(self, name: str, kernel: dict, index: int) -> None:
        if self.choices.get(name) != index:
            path, manifest = _candidate(self.root, self.plan, name, kernel, index, self.verify)
            self.kernels[name] = self.rt.create_kernel(path.read_text(), {**manifest, "name": name})
            self.choices[name] = index

    def _buf(self, bid: int, dtype: str | None = None):
        """The buffer of plan buffer `bid`; a weight as `dtype` (a kernel binding's: "f16" for
        one read as float16), uploaded at first use."""
        r = _root(self.bplan["buffers"], bid)
        if r["id"] in self.external:
            return self.external[r["id"]]
        if r["kind"] != "weight":
            return self.slot_bufs[r["slot"]]
        key = (r["key"], dtype or r["dtype"])
        buf = self.by_key.get(key)
        if buf is None:
            arr = np.ascontiguousarray(self.weights[r["key"]]).astype(_DT[key[1]], copy=False)
            self.by_key[key] = buf = self.rt.create_buffer(max(4, arr.nbytes))
            self.rt.write_buffer(buf, arr)
        return buf

    def _args(self, step: dict, kernel: Any) -> list:
        """A step's buffers as `kernel` binds them (weights in its bindings' dtypes)."""
        return [self._buf(a, b["dtype"]) for a, b in zip(step["args"], kernel.bindings)]

    _handle = _buf

    def run(self, inputs: list[np.ndarray | None], read: list[int] | None = None) -> list[np.ndarray | None]:
        rt, bp = self.rt, self.bplan
        for info, arr in zip(bp["inputs"], inputs):
            if arr is not None:
                rt.write_buffer(self._buf(info["buffer"]), arr)
        for step in bp["steps"]:
            kernel = self.kernels[step["kernel"]]
            rt.dispatch(kernel, self._args(step, kernel))
        rt.flush()
        outs: list[np.ndarray | None] = []
        for k, info in enumerate(bp["outputs"]):
            b = bp["buffers"][info["buffer"]]
            want = read is None or k in read
            outs.append(rt.read_buffer(self._buf(info["buffer"]), _DT[b["dtype"]], b["shape"]) if want else None)
        return outs


class _WasmRunner(_Runner):
    def __init__(self, files: dict[str, Path], bplan: dict, weights: dict[str, np.ndarray], threads: int,
                 share: Any = None):  # fmt: skip
        """share: another runner of the same bundle (a shape variant, whose arena is at least as
        large): its memory, weights and arena are used."""
        from nnjit.runtime.wasm import WasmRuntime

        self.kind, self.external = "wasm", {}
        total_w = sum(b["bytes"] + 256 for b in bplan["buffers"] if b["kind"] == "weight")
        if share is not None:
            self.rt = rt = share.rt
        else:
            self.rt = rt = WasmRuntime(threads=threads, initial_bytes=total_w + bplan["arena_bytes"] + (1 << 20))
        self.by_key: dict[str, int] = share.by_key if share is not None else {}
        self.bplan = bplan
        self.kernels = {
            name: rt.compile(files[name].read_bytes(), k["manifest"])
            for name, k in bplan["kernels"].items()
        }
        if share is not None and share.arena_bytes >= bplan["arena_bytes"]:
            self.arena, self.arena_bytes = share.arena, share.arena_bytes
        else:
            self.arena_bytes = max(16, bplan["arena_bytes"])
            self.arena = rt.alloc(self.arena_bytes, align=256)
        self.weight_off: dict[int, int] = {}
        for b in bplan["buffers"]:
            if b["kind"] == "weight":
                if b["key"] not in self.by_key:
                    arr = np.ascontiguousarray(weights[b["key"]]).astype(_DT[b["dtype"]], copy=False)
                    self.by_key[b["key"]] = off = rt.alloc(max(16, arr.nbytes), align=256)
                    rt.write(off, arr)
                self.weight_off[b["id"]] = self.by_key[b["key"]]

    def _off(self, bid: int) -> int:
        r = _root(self.bplan["buffers"], bid)
        if r["id"] in self.external:
            return self.external[r["id"]]
        return self.weight_off[r["id"]] if r["kind"] == "weight" else self.arena + r["offset"]

    _handle = _off

    def run(self, inputs: list[np.ndarray | None], read: list[int] | None = None) -> list[np.ndarray | None]:
        rt, bp = self.rt, self.bplan
        for info, arr in zip(bp["inputs"], inputs):
            if arr is not None:
                rt.write(self._off(info["buffer"]), arr)
        for step in bp["steps"]:
            rt.run(self.kernels[step["kernel"]], [self._off(a) for a in step["args"]])
        outs: list[np.ndarray | None] = []
        for k, info in enumerate(bp["outputs"]):
            b = bp["buffers"][info["buffer"]]
            want = read is None or k in read
            outs.append(rt.read(self._off(info["buffer"]), _DT[b["dtype"]], b["shape"]) if want else None)
        return outs
