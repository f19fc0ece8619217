"""Text on nnjit's command line (registered by nnjit_main; the tokenizer is nnjit/text.py).

    nnjit run BUNDLE --text "a sentence" [--text ...] [--check]   (outputs, one row per text)
    nnjit embed BUNDLE --text "a sentence" --text "another" [--json FILE|-]
                                       (sentence embeddings and their cosine similarities)

Imported by nnjit_main at start-up, with the session module (measured: `import nnjit.tools.nnjit_main`
takes ~145 ms with it and without it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nnjit.errors import NNJitError
from nnjit.runtime.session import Session
from nnjit.targets import TARGETS
from nnjit.text import find_tokenizer
from nnjit.tools import argtypes
from nnjit.tools.errors import printable, write_atomically


def text_arg(text: str) -> str:
    """A --text value: any text but NUL (which no shell passes and no tokenizer means)."""
    if "\0" in text:
        raise argparse.ArgumentTypeError("a text with a NUL byte")
    return text


def add_text_option(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument("--text", action="append", default=None if required else [], required=required,
                   type=text_arg, metavar="TEXT",
                   help="a text to tokenize with the bundle's tokenizer and run (repeatable: "
                        "one output row each)")  # fmt: skip


def _show(text: str, width: int = 60) -> str:
    text = printable(text)
    return repr(text if len(text) <= width else text[: width - 3] + "...")


def check_model_has_tokenizer(model: Path, option: str = "--text") -> None:
    """`nnjit run MODEL.onnx --text`: the bundle made on the fly needs a tokenizer beside it."""
    if find_tokenizer(model, None)[0] is None:
        raise NNJitError(f"{model}: no tokenizer.json beside the model for {option}",
                         hint=f"put the model's tokenizer.json (or {model.stem}.tokenizer.json) "
                              "beside it, or compile a bundle with --tokenizer")  # fmt: skip


def timed_runs(run: Callable[[], dict], repeat: int) -> dict:
    """Calls `run` `repeat` times (at least once), prints the first and median times and a
    summary of each output; returns the last outputs (`nnjit run`, with or without --text)."""
    import numpy as np

    times, outs = [], {}
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        outs = run()
        times.append(time.perf_counter() - t0)
    med = sorted(times)[len(times) // 2]
    print(f"ran {len(times)}x: first {times[0] * 1000:.1f} ms, median {med * 1000:.1f} ms")
    for name, arr in outs.items():
        print(f"  output {name!r}: shape {list(arr.shape)} {arr.dtype}, "
              f"mean {float(np.mean(arr)):.6g}, std {float(np.std(arr)):.6g}")  # fmt: skip
    return outs


def run_texts(sess: Any, args: argparse.Namespace,
              reference: Callable[[dict], dict] | None) -> int:  # fmt: skip
    """`nnjit run --text`: runs the texts (timed `--repeat` times), prints each text's token
    count and the outputs; with `reference` (--check), compares every batch with it."""
    import numpy as np

    batches = sess.text.batches(args.text)
    length = batches[0][0]["input_ids"].shape[1]
    for i, (t, n) in enumerate(zip(args.text, _token_counts(batches))):
        print(f"text {i}: {n} tokens (padded to {length}): {_show(t)}")
    timed_runs(lambda: sess.run_text(args.text), args.repeat)
    if reference is None:
        return 0
    worst = 0.0
    for feeds, n in batches:
        got, ref = sess.run(feeds), reference(feeds)
        for name, arr in got.items():
            r = ref[name][:n].astype(np.float64)
            err = float(np.max(np.abs(arr[:n].astype(np.float64) - r)) / max(np.max(np.abs(r)), 1e-30))
            worst = max(worst, err if np.all(np.isfinite(arr)) else float("inf"))
    ok = worst <= args.tolerance
    print(f"check {'passed' if ok else 'FAILED'}: max relative error {worst:.3e} against "
          f"onnxruntime (tolerance {args.tolerance:g})")  # fmt: skip
    return 0 if ok else 2


def _token_counts(batches: list[tuple[dict, int]]) -> list[int]:
    import numpy as np

    counts = []
    for feeds, n in batches:
        mask = feeds.get("attention_mask", np.ones_like(feeds["input_ids"]))
        counts += [int(c) for c in mask[:n].sum(1)]
    return counts


def cmd_embed(args: argparse.Namespace) -> int:
    import numpy as np

    target = argtypes.model_path(args.model)
    if not target.is_dir():
        raise NNJitError(f"{target}: `nnjit embed` takes a bundle directory",
                         hint=f"compile it first: nnjit compile {target} -o BUNDLE --tokenizer "
                              "PATH/tokenizer.json")  # fmt: skip
    sess = Session(target, args.backend, threads=args.threads)
    t0 = time.perf_counter()
    emb = sess.embed(args.text)
    ms = (time.perf_counter() - t0) * 1000
    sim = emb.astype(np.float64) @ emb.astype(np.float64).T
    if args.json is not None:
        doc = {"texts": args.text, "backend": args.backend, "embeddings": emb.tolist(),
               "similarity": np.round(sim, 6).tolist()}  # fmt: skip
        text = json.dumps(doc) + "\n"
        if args.json == "-":
            sys.stdout.write(text)
            return 0
        write_atomically(args.json, text)
    print(f"embedded {len(args.text)} text(s) on {args.backend}: {emb.shape[1]} dimensions, "
          f"{ms:.1f} ms")  # fmt: skip
    for i, t in enumerate(args.text):
        print(f"  [{i}] {_show(t)}")
    print("cosine similarity:")
    print("       " + "".join(f"{f'[{j}]':>8}" for j in range(len(args.text))))
    for i, row in enumerate(sim):
        print(f"  {f'[{i}]':>5}" + "".join(f"{v:8.3f}" for v in row))
    return 0


def add_commands(sub: Any) -> None:
    """Adds `embed` to nnjit's subcommand parser."""
    e = sub.add_parser("embed", help="sentence embeddings of texts and their cosine similarities "
                       "(a bundle with a tokenizer)")  # fmt: skip
    e.add_argument("model", metavar="BUNDLE", help="bundle directory (compiled with a tokenizer)")
    add_text_option(e, required=True)
    e.add_argument("--backend", choices=list(TARGETS), default="wasm")
    e.add_argument("--threads", type=argtypes.threads, default=0, help="Wasm threads (default: all cores)")
    e.add_argument("--json", metavar="FILE", type=argtypes.path_text,
                   help="also write texts, embeddings and similarities as JSON ('-': stdout only)")  # fmt: skip
    e.set_defaults(fn=cmd_embed)


__all__ = ["add_commands", "add_text_option", "check_model_has_tokenizer", "run_texts", "cmd_embed"]
