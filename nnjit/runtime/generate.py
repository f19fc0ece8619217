"""Text generation with a KV cache from Python: `Session.generate` (the page's is
nnjit/web/generate.js). The plan's "generation" table (nnjit/frontend/generation.py) says which
variants prefill a prompt and which decode one token against a cache of a given size.

The cache lives on the device: one buffer per cached key/value (WebGPU), one region of the
Wasm memory each. A decode variant reads it in place (its past inputs are bound to it, never
uploaded), and after each step the runtime copies the step's new rows (the `present` outputs,
[1, heads, 1, head_dim]) into the cache at their position, on the device. Only the logits are
read back. When the tokens outgrow the cache's size, it moves once to the next size.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nnjit.errors import ModelFormatError, NNJitError, ShapeError
from nnjit.runtime.variants import variant_plan


def check_generation(plan: dict, where: str) -> None:
    """The "generation" table is well formed (its variants must exist)."""
    gen = plan.get("generation")
    if gen is None:
        return
    n = len(plan.get("dynamic", {}).get("variants", []))
    ok = isinstance(gen, dict) and isinstance(gen.get("cache"), list) and bool(gen["cache"])
    ok = ok and all(isinstance(c, dict) and isinstance(c.get("past"), str) and isinstance(c.get("present"), str)
                    for c in gen["cache"])  # fmt: skip
    for key in ("prefill", "decode"):
        ok = ok and isinstance(gen.get(key), list) and bool(gen[key])
        ok = ok and all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n for i in gen.get(key, ()))
    ok = ok and isinstance(gen.get("dims"), dict) and all(isinstance(gen["dims"].get(k), str)
                                                          for k in ("sequence", "past", "total"))  # fmt: skip
    if not ok:
        raise ModelFormatError(f'{where}: the "generation" table is malformed', hint="recompile the bundle")


def sample(logits: np.ndarray, rng: np.random.Generator | None, temperature: float = 0.0,
           top_k: int = 0, top_p: float = 1.0) -> int:  # fmt: skip
    """The next token: argmax when temperature is 0, else drawn from softmax(logits /
    temperature) restricted to the top_k most likely (0: all) and then to the smallest set
    whose probability reaches top_p."""
    x = np.asarray(logits, dtype=np.float64).reshape(-1)
    if not temperature:
        return int(np.argmax(x))
    assert rng is not None
    order = np.argsort(-x, kind="stable")
    if top_k:
        order = order[:top_k]
    z = x[order] / temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    if top_p < 1.0:
        keep = int(np.searchsorted(np.cumsum(p), top_p) + 1)
        order, p = order[:keep], p[:keep] / p[:keep].sum()
    return int(order[rng.choice(len(p), p=p)])


def check_options(max_new_tokens: Any, temperature: Any, top_k: Any, top_p: Any, seed: Any,
                  eos_token_id: Any) -> None:  # fmt: skip
    def nat(v: Any) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0

    if not nat(max_new_tokens) or max_new_tokens < 1:
        raise NNJitError(f"max_new_tokens={max_new_tokens!r}: give a count from 1")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature < 1e6 \
            or math.isnan(temperature):  # fmt: skip
        raise NNJitError(f"temperature={temperature!r}: give 0 (greedy) or a positive number")
    if not nat(top_k):
        raise NNJitError(f"top_k={top_k!r}: give 0 (all tokens) or a count")
    if isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1:
        raise NNJitError(f"top_p={top_p!r}: give a probability in (0, 1]")
    if seed is not None and not nat(seed):
        raise NNJitError(f"seed={seed!r}: give a non-negative integer")
    if eos_token_id is not None and not nat(eos_token_id):
        raise NNJitError(f"eos_token_id={eos_token_id!r}: give a token id")


class _Cache:
    """The cached keys and values of one sequence on the device, at one of the decode sizes."""

    def __init__(self, runner: Any, shapes: list[tuple[int, int]], top: int):
        self.runner = runner
        self.shapes = shapes  # (heads, head_dim) per cached tensor
        self.top = top
        self.size = 0  # rows per head now (0: none yet)
        self.handles: list[Any] = []
        if runner.kind == "wasm":  # (one region each, of the largest size: moves stay in place)
            self.handles = [runner.rt.alloc(h * top * d * 4, align=256) for h, d in shapes]

    def resize(self, size: int, rows: int) -> None:
        """Grows to `size` rows per head, keeping rows [0, rows)."""
        if size == self.size:
            return
        rt = self.runner.rt
        if self.runner.kind == "wasm":
            for off, (h, d) in zip(self.handles, self.shapes):
                if self.size and rows:
                    old = rt.view(off, np.float32, (h, self.size, d))[:, :rows].copy()
                    rt.view(off, np.float32, (h, size, d))[:, :rows] = old
        else:
            new = [rt.create_buffer(h * size * d * 4) for h, d in self.shapes]
            if self.size and rows:
                for src, dst, (h, d) in zip(self.handles, new, self.shapes):
                    for i in range(h):
                        rt.copy_buffer(src, i * self.size * d * 4, dst, i * size * d * 4, rows * d * 4)
            self.handles = new
        self.size = size

    def write(self, k: int, src: Any, src_rows: int, n: int, pos: int) -> None:
        """Rows [0, n) of a step's new rows (a [1, heads, src_rows, head_dim] buffer) into
        cached tensor k at rows [pos, pos + n)."""
        h, d = self.shapes[k]
        rt = self.runner.rt
        if self.runner.kind == "wasm":
            new = rt.view(src, np.float32, (h, src_rows, d))[:, :n]
            rt.view(self.handles[k], np.float32, (h, self.size, d))[:, pos : pos + n] = new
        else:
            for i in range(h):
                rt.copy_buffer(src, i * src_rows * d * 4, self.handles[k], (i * self.size + pos) * d * 4, n * d * 4)


class Generator:
    """Greedy or sampled generation on one Session (made by Session.generate)."""

    def __init__(self, session: Any):
        self.s = session
        self.plan = session.plan
        self.gen = self.plan["generation"]
        self.dims = self.gen["dims"]
        dyn = self.plan["dynamic"]
        self.prefill = sorted(self.gen["prefill"], key=lambda i: dyn["variants"][i]["bind"][self.dims["sequence"]])
        self.decode = sorted(self.gen["decode"], key=lambda i: dyn["variants"][i]["bind"][self.dims["past"]])
        self.cache_names = [c["past"] for c in self.gen["cache"]]
        self.present_names = [c["present"] for c in self.gen["cache"]]
        top = dyn["variants"][self.decode[-1]]
        shapes = {i["name"]: i["shape"] for i in top["model"]["inputs"]}
        self.shapes = [(int(shapes[n][1]), int(shapes[n][3])) for n in self.cache_names]
        ids = next((i for i in top["model"]["inputs"] if i["name"] == "input_ids"), {})
        self.vocab = ids.get("range")
        self.max_prompt = self._bind(self.prefill[-1])[self.dims["sequence"]]
        self.max_length = self._bind(self.decode[-1])[self.dims["past"]]
        self.stats: dict[str, Any] = {}
        self._cache: _Cache | None = None

    def _bind(self, index: int) -> dict[str, int]:
        return self.plan["dynamic"]["variants"][index]["bind"]

    def _step(self, index: int, feeds: dict[str, np.ndarray], cache: _Cache | None) -> tuple[Any, np.ndarray]:
        """Runs variant `index` (its past inputs bound to `cache`, or fed zeros); returns
        ((its runner, its output names), the logits)."""
        runner = self.s._runner(index)
        vplan = variant_plan(self.plan, index)
        bp = runner.bplan
        names = [i["name"] for i in vplan["model"]["inputs"]]
        inputs: list[np.ndarray | None] = []
        runner.external = {}
        for info, name in zip(bp["inputs"], names):
            if name in feeds:
                want = np.int32 if np.asarray(feeds[name]).dtype.kind in "iub" else np.float32
                inputs.append(np.ascontiguousarray(feeds[name], dtype=want))
            elif cache is not None and name in self.cache_names:
                inputs.append(None)
                runner.external[runner.root_id(info["buffer"])] = cache.handles[self.cache_names.index(name)]
            else:
                inputs.append(np.zeros(next(i["shape"] for i in vplan["model"]["inputs"] if i["name"] == name),
                                       np.float32))  # fmt: skip
        outs = [o["name"] for o in vplan["model"]["outputs"]]
        k = outs.index(self.gen.get("logits", "logits"))
        logits = runner.run(inputs, read=[k])[k]
        runner.external = {}
        return (runner, outs), logits

    def generate(self, prompt_ids: Sequence[int], max_new_tokens: int = 32, *, temperature: float = 0.0,
                 top_k: int = 0, top_p: float = 1.0, seed: int | None = None, eos_token_id: int | None = None,
                 on_token: Callable[[int], Any] | None = None,
                 on_logits: Callable[[np.ndarray], Any] | None = None) -> list[int]:  # fmt: skip
        check_options(max_new_tokens, temperature, top_k, top_p, seed, eos_token_id)
        ids = np.asarray(prompt_ids)
        if ids.ndim == 2 and ids.shape[0] == 1:
            ids = ids[0]
        if ids.ndim != 1 or ids.size == 0 or ids.dtype.kind not in "iu":
            raise ShapeError(f"prompt_ids: give a non-empty list of token ids, not an array of shape "
                             f"{list(ids.shape)} and dtype {ids.dtype}", hint="one sequence at a time")  # fmt: skip
        if self.vocab is not None and (ids.min() < 0 or ids.max() >= self.vocab):
            raise ShapeError(f"prompt_ids: token id {int(ids.max() if ids.max() >= self.vocab else ids.min())} "
                             f"is outside the vocabulary [0, {self.vocab - 1}]")  # fmt: skip
        n = int(ids.size)
        if n > self.max_prompt:
            raise ShapeError(f"the prompt has {n} tokens, over the {self.max_prompt} the bundle prefills",
                             hint="recompile with a larger --max-length, or cut the prompt")  # fmt: skip
        if n + max_new_tokens > self.max_length:
            raise ShapeError(f"{n} prompt tokens + {max_new_tokens} new ones are over the bundle's "
                             f"{self.max_length} positions", hint="recompile with --max-length, or ask for fewer tokens")  # fmt: skip
        rng = np.random.default_rng(seed) if temperature else None
        seq, past = self.dims["sequence"], self.dims["past"]
        t0 = time.perf_counter()
        pre = next(i for i in self.prefill if self._bind(i)[seq] >= n)
        s = self._bind(pre)[seq]
        feeds = {
            "input_ids": np.pad(ids, (0, s - n))[None],
            "attention_mask": np.concatenate([[0], np.ones(n), np.zeros(s - n)])[None],
            "position_ids": np.arange(s)[None],
        }
        position = self.gen.get("logits_position")
        if position is not None:  # (the LM head computes the last prompt token's row alone)
            feeds[position] = np.array([n - 1])
        runner, logits = self._step(pre, self._feeds(pre, feeds), None)
        last = logits.reshape(-1) if position is not None else logits.reshape(s, -1)[n - 1]
        if self._cache is None:  # (kept for the next call: Wasm memory is not given back)
            self._cache = _Cache(runner[0], self.shapes, self.max_length)
        cache = self._cache
        cache.size = 0
        tokens: list[int] = []
        t_first = None
        while True:
            if on_logits is not None:
                on_logits(last)
            tok = sample(last, rng, temperature, top_k, top_p)
            tokens.append(tok)
            if t_first is None:
                t_first = time.perf_counter()
            if on_token is not None:
                on_token(tok)
            if len(tokens) >= max_new_tokens or tok == eos_token_id:
                break
            p = n + len(tokens) - 1  # the position of tok
            dec = next(i for i in self.decode if self._bind(i)[past] >= p + 1)
            size = self._bind(dec)[past]
            if cache.size == 0:  # the prompt's rows, from the prefill's new rows
                cache.resize(size, 0)
                for k, name in enumerate(self.present_names):
                    cache.write(k, runner[0].output_handle(runner[1].index(name)), s, n, 0)
            else:
                cache.resize(size, p)
            mask = np.ones(size + 1)
            mask[p:size] = 0
            feeds = {"input_ids": np.array([[tok]]), "position_ids": np.array([[p]]), "attention_mask": mask[None]}
            if position is not None:
                feeds[position] = np.array([0])
            runner, logits = self._step(dec, self._feeds(dec, feeds), cache)
            for k, name in enumerate(self.present_names):
                cache.write(k, runner[0].output_handle(runner[1].index(name)), 1, 1, p)
            last = logits.reshape(-1)
        t_end = time.perf_counter()
        steps = len(tokens) - 1
        self.stats = {"prompt_tokens": n, "new_tokens": len(tokens), "prefill_ms": (t_first - t0) * 1e3,
                      "decode_tokens_per_s": steps / (t_end - t_first) if steps and t_end > t_first else None}  # fmt: skip
        return tokens

    def _feeds(self, index: int, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Only the inputs the variant has (a model without position_ids computes them)."""
        have = {i["name"] for i in self.plan["dynamic"]["variants"][index]["model"]["inputs"]}
        return {k: v for k, v in feeds.items() if k in have}


def reference_greedy(model: str | Any, prompt_ids: Sequence[int], max_new_tokens: int,
                     eos_token_id: int | None = None) -> tuple[list[int], list[np.ndarray]]:  # fmt: skip
    """Greedy generation by onnxruntime on the original decoder, step by step as
    transformers.js runs it (the prompt against an empty past, then one token per step, each
    step's present fed back as the next past, attention_mask all ones): (token ids, the logits
    each was chosen from). For `nnjit generate --check` and the tests."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    inputs = {i.name: i for i in sess.get_inputs()}
    names = [o.name for o in sess.get_outputs()]
    past = {}
    for name, info in inputs.items():
        if name.startswith("past_key_values."):
            heads, dim = info.shape[1], info.shape[3]
            past[name] = np.zeros((1, int(heads), 0, int(dim)), np.float32)
    cur = np.asarray(prompt_ids, np.int64).reshape(1, -1)
    tokens: list[int] = []
    logits: list[np.ndarray] = []
    while len(tokens) < max_new_tokens:
        p = next(iter(past.values())).shape[2] if past else 0
        n = cur.shape[1]
        feeds = {"input_ids": cur, "attention_mask": np.ones((1, p + n), np.int64),
                 "position_ids": np.arange(p, p + n, dtype=np.int64)[None], **past}  # fmt: skip
        out = dict(zip(names, sess.run(None, {k: v for k, v in feeds.items() if k in inputs})))
        logits.append(out["logits"][0, -1].astype(np.float32))
        tokens.append(int(np.argmax(logits[-1])))
        if tokens[-1] == eos_token_id:
            break
        past = {k: out[k.replace("past_key_values.", "present.", 1)] for k in past}
        cur = np.array([[tokens[-1]]], np.int64)
    return tokens, logits


__all__ = ["Generator", "sample", "check_generation", "check_options", "reference_greedy"]
