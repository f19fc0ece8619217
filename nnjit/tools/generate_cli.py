"""`nnjit generate`: text generation with a decoder's KV cache (registered by nnjit_main).

    nnjit generate MODEL|DIR --prompt-ids 1,2,3 --max-new-tokens 32 [--backend wasm|webgpu]
        [--temperature T --top-k K --top-p P --seed S] [--eos-token-id ID] [--check] [--json FILE|-]

An ONNX decoder (exported with its cache: past_key_values.N.key/value in, present.N.key/value
out) is compiled first for prompt + new tokens; a bundle runs as it is. --check compares the
greedy tokens and every step's logits with onnxruntime running the model step by step.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from nnjit.errors import NNJitError
from nnjit.runtime.generate import reference_greedy
from nnjit.runtime.session import Session, load_bundle
from nnjit.targets import TARGETS
from nnjit.text import find_tokenizer, load_tokenizer
from nnjit.tools import argtypes
from nnjit.tools.errors import printable, write_atomically
from nnjit.tools.text_cli import check_model_has_tokenizer, text_arg


def cmd_generate(args: argparse.Namespace) -> int:
    target = argtypes.model_path(args.model)
    prompt = args.prompt_ids
    sampled = args.temperature > 0
    if args.check and sampled:
        raise NNJitError("--check compares greedy generation: leave --temperature at 0")
    tmp = None
    try:
        if target.is_dir():
            bundle = target
            source = load_bundle(bundle, verify=False)[1].get("source")
            reference = Path(args.reference) if args.reference else (Path(source) if source else None)
        else:
            from nnjit.compiler import compile_model  # (heavy: only to compile an ONNX model)

            if args.prompt is not None:  # (the tokenizer beside the model counts the prompt's tokens)
                check_model_has_tokenizer(target, "--prompt")
                tok = load_tokenizer(find_tokenizer(target, None)[0])
                prompt = list(tok.encode(args.prompt).ids) or [0]
            tmp = tempfile.TemporaryDirectory(prefix="nnjit-")
            bundle = Path(tmp.name) / "bundle"
            total = len(prompt) + args.max_new_tokens
            t0 = time.perf_counter()
            lengths = sorted({len(prompt), *(n for n in (16, 32, 64, 128, 256, 512) if n < total)})
            compile_model(target, bundle, backends=[args.backend], lengths=lengths, max_length=total,
                          web_runtime=False)  # fmt: skip
            print(f"compiled {target.name} for {args.backend} in {time.perf_counter() - t0:.2f} s", file=sys.stderr)
            reference = target
        sess = Session(bundle, args.backend, threads=args.threads)
        if args.prompt is not None:
            prompt = sess.text.ids(args.prompt)
            if not prompt:
                raise NNJitError(f"the prompt {args.prompt!r} has no tokens", hint="give a non-empty prompt")
        out: list[int] = []
        logits: list = []

        def show(tok: int) -> None:
            out.append(tok)
            if args.json is None:
                print(tok, end=" ", flush=True)

        tokens = sess.generate(prompt, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                               top_p=args.top_p, seed=args.seed, eos_token_id=args.eos_token_id,
                               on_token=show, on_logits=(lambda a: logits.append(a.copy())) if args.check else None)  # fmt: skip
        stats = sess.generation_stats
        rate = stats.get("decode_tokens_per_s")
        text = sess.text.decode(tokens) if args.prompt is not None else None
        if args.json is None:
            print()
            if text is not None:
                print(f"text: {printable(args.prompt)}{printable(text)}")
            print(f"{stats['new_tokens']} tokens on {args.backend}: prefill of {stats['prompt_tokens']} tokens "
                  f"{stats['prefill_ms']:.1f} ms, decode " + (f"{rate:.1f} tokens/s" if rate else "-"))  # fmt: skip
        doc = {"prompt_ids": list(prompt), "tokens": tokens, "backend": args.backend, **stats,
               **({"prompt": args.prompt, "text": text} if text is not None else {})}  # fmt: skip
        code = 0
        if args.check:
            if reference is None or not reference.is_file():
                raise NNJitError("--check needs the ONNX decoder", hint="pass --reference MODEL.onnx")
            ref_tokens, ref_logits = reference_greedy(reference, prompt, len(tokens), args.eos_token_id)
            worst = 0.0
            for a, r in zip(logits, ref_logits):
                r64 = r.astype(np.float64)
                worst = max(worst, float(np.max(np.abs(a - r64)) / max(float(np.max(np.abs(r64))), 1e-30)))
            same = tokens == ref_tokens
            ok = same and worst <= args.tolerance
            doc["check"] = {"same_tokens": same, "max_relative_error": worst, "passed": ok}
            if args.json is None:
                print(f"check {'passed' if ok else 'FAILED'}: tokens {'equal' if same else 'DIFFER from'} "
                      f"onnxruntime's, logits max relative error {worst:.3e} (tolerance {args.tolerance:g})")  # fmt: skip
            code = 0 if ok else 2
        if args.json is not None:
            text = json.dumps(doc) + "\n"
            if args.json == "-":
                sys.stdout.write(text)
            else:
                write_atomically(args.json, text)
        return code
    finally:
        if tmp is not None:
            tmp.cleanup()


def add_commands(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser("generate", help="generate tokens with a decoder and its KV cache")
    g.add_argument("model", nargs="?", help="ONNX decoder with past_key_values inputs, or a bundle of one")
    which = g.add_mutually_exclusive_group(required=True)
    which.add_argument("--prompt-ids", type=argtypes.int_list(0, (1 << 31) - 1, "token ids"),
                       metavar="ID,ID,...", help="the prompt's token ids")  # fmt: skip
    which.add_argument("--prompt", type=text_arg, metavar="TEXT",
                       help="the prompt as text (a bundle with a tokenizer: nnjit compile --tokenizer)")  # fmt: skip
    g.add_argument("--max-new-tokens", type=argtypes.int_in(1, 1 << 16, "a token count"), default=32, metavar="N")
    g.add_argument("--backend", choices=list(TARGETS), default="wasm")
    g.add_argument("--threads", type=argtypes.threads, default=0, help="Wasm threads (default: all cores)")
    g.add_argument("--temperature", type=argtypes.float_in(0.0, 1e6), default=0.0,
                   help="0 (default): greedy; above: sampled")  # fmt: skip
    g.add_argument("--top-k", type=argtypes.int_in(0, 1 << 31, "a count"), default=0, metavar="K")
    g.add_argument("--top-p", type=argtypes.float_in(0.0, 1.0, open_lo=True), default=1.0, metavar="P")
    g.add_argument("--seed", type=argtypes.seed, default=None)
    g.add_argument("--eos-token-id", type=argtypes.int_in(0, (1 << 31) - 1, "a token id"), default=None, metavar="ID")
    g.add_argument("--check", action="store_true", help="compare with onnxruntime (greedy)")
    g.add_argument("--reference", type=argtypes.path_text, help="ONNX decoder to check a bundle against")
    g.add_argument("--tolerance", type=argtypes.tolerance, default=1e-4, help="max relative error of the logits")
    g.add_argument("--json", type=argtypes.path_text, metavar="FILE|-", help="write the tokens and timings as JSON")
    g.set_defaults(fn=cmd_generate)
