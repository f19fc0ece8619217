"""Generation with a KV cache from Python (nnjit/runtime/generate.py): greedy tokens and every
step's logits equal onnxruntime running the decoder step by step, for 64 new tokens across
several cache sizes, on both backends; the cache is never uploaded after the prompt; sampling
repeats with a seed; bad prompts, options and models fail clearly."""

from __future__ import annotations

import numpy as np
import pytest

from nnjit.compiler import compile_model
from nnjit.errors import NNJitError
from nnjit.runtime.generate import reference_greedy, sample
from nnjit.runtime.session import Session
from tests.generation_ref import decoder_param

MODELS = __import__("pathlib").Path(__file__).parent / "models"
DECODERS = [decoder_param(MODELS / f"{m}_past-legacy.onnx") for m in ("gpt2", "llama")]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    made = {}

    def get(path):
        if path not in made:
            out = tmp_path_factory.mktemp("gen") / path.stem
            compile_model(path, out, lengths=[8, 16, 32], max_length=80, web_runtime=False)
            made[path] = out
        return made[path]

    return get


@pytest.mark.parametrize("backend", ["wasm", "webgpu"])
@pytest.mark.parametrize("model", DECODERS)
def test_greedy_tokens_and_logits_match_onnxruntime(bundles, model, backend):
    rng = np.random.default_rng()
    prompt = rng.integers(0, 99, int(rng.integers(5, 16))).tolist()
    ref_tokens, ref_logits = reference_greedy(model, prompt, 64)
    s = Session(bundles(model), backend, threads=2)
    streamed, logits = [], []
    tokens = s.generate(prompt, 64, on_token=streamed.append, on_logits=lambda a: logits.append(a.copy()))
    assert tokens == ref_tokens == streamed
    for step, (a, r) in enumerate(zip(logits, ref_logits)):
        err = np.max(np.abs(a.astype(np.float64) - r)) / np.max(np.abs(r))
        assert err <= 1e-4, f"step {step}: logits relative error {err:.2e}"
    assert s.generation_stats["new_tokens"] == 64 and s.generation_stats["decode_tokens_per_s"] > 0
    # a second call starts afresh (the cache is reset, not appended to)
    assert s.generate(prompt, 8) == ref_tokens[:8]


@pytest.mark.parametrize("backend", ["wasm", "webgpu"])
def test_a_one_token_prompt_bucket(tmp_path, backend):
    """Prompt bucket 1 (in the default lengths): its attention matmuls have N = 2 columns, fewer
    than a vector (the Wasm planner once cut their register tile to 0 columns and crashed)."""
    model = DECODERS[0].values[0]
    compile_model(model, tmp_path / "b", backends=[backend], lengths=[1, 8], max_length=24, web_runtime=False)
    prompt = [int(np.random.default_rng().integers(0, 99))]
    ref_tokens, _ = reference_greedy(model, prompt, 16)
    assert Session(tmp_path / "b", backend).generate(prompt, 16) == ref_tokens


def test_the_cache_is_not_uploaded_after_the_prompt(bundles, monkeypatch):
    """Decode steps write only input_ids, position_ids and attention_mask; the past inputs are
    bound to the cache in place, and the new rows are copied on the device."""
    model = MODELS / "gpt2_past-legacy.onnx"
    s = Session(bundles(model), "webgpu")
    s.generate([1, 2, 3, 4, 5], 20)  # (the variants' runners are made, their constants uploaded)
    rt = s._impl.rt
    written, copied = [], []
    monkeypatch.setattr(rt, "write_buffer", lambda buf, arr, f=rt.write_buffer: (written.append(arr.shape), f(buf, arr))[1])
    monkeypatch.setattr(rt, "copy_buffer", lambda *a, f=rt.copy_buffer: (copied.append(a[-1]), f(*a))[1])
    s.generate([1, 2, 3, 4, 5], 20, on_token=lambda t: written.append("token"))
    decode_writes = written[written.index("token"):]  # (the prefill feeds its past: one zero row)
    assert decode_writes.count("token") == 20
    assert [w for w in decode_writes if w != "token" and len(w) > 2] == []  # no [1, heads, past, dim]
    pasts = [i["shape"] for i in s.plan["model"]["inputs"] if i["name"].startswith("past")]
    rows = sum(p[1] * p[3] * 4 for p in pasts)  # bytes of one position in every cached tensor
    # the new rows, and the moves to a larger cache (8 -> 16 -> 32 rows): linear in the length,
    # where feeding present back as past copies sum(p for p < 25) = 300 positions
    assert 25 * rows <= sum(copied) <= 3 * 25 * rows


def test_seeded_sampling_repeats(bundles):
    s = Session(bundles(MODELS / "gpt2_past-legacy.onnx"), "wasm")
    a = s.generate([4, 5, 6], 16, temperature=0.8, top_k=30, top_p=0.9, seed=11)
    b = s.generate([4, 5, 6], 16, temperature=0.8, top_k=30, top_p=0.9, seed=11)
    assert a == b and len(a) == 16
    assert a != s.generate([4, 5, 6], 16)  # (greedy differs: a random model's logits are flat)


def test_sample_keeps_to_top_k_and_top_p():
    rng = np.random.default_rng(0)
    logits = np.array([5.0, 4.0, 1.0, 0.0, -1.0])
    assert sample(logits, None) == 0
    draws = {sample(logits, rng, 1.0, top_k=2) for _ in range(200)}
    assert draws == {0, 1}
    assert {sample(logits, rng, 1.0, top_p=0.5) for _ in range(50)} == {0}


@pytest.mark.parametrize("args, kw, want", [
    ([], {}, "non-empty list of token ids"),
    ([[1, 2], [3, 4]], {}, "one sequence at a time"),
    ([1, 2, 99], {}, "outside the vocabulary"),
    ([1.5, 2.0], {}, "token ids"),
    ([1, 2], {"max_new_tokens": 0}, "max_new_tokens=0"),
    ([1, 2], {"max_new_tokens": 200}, "over the bundle's 80 positions"),
    ([1] * 40, {"max_new_tokens": 2}, "over the 32 the bundle prefills"),
    ([1, 2], {"temperature": -1.0}, "temperature=-1.0"),
    ([1, 2], {"top_p": 0.0}, "top_p=0.0"),
    ([1, 2], {"top_k": -3}, "top_k=-3"),
    ([1, 2], {"seed": "x"}, "seed='x'"),
])  # fmt: skip
def test_bad_prompts_and_options_fail_clearly(bundles, args, kw, want):
    s = Session(bundles(MODELS / "gpt2_past-legacy.onnx"), "wasm")
    with pytest.raises(NNJitError, match=None) as e:
        s.generate(args[0] if len(args) == 1 else args, **kw) if args and isinstance(args[0], list) else s.generate(args, **kw)
    assert want in str(e.value)


def test_run_and_generate_refuse_the_other_kind_of_bundle(bundles, tmp_path):
    gen = Session(bundles(MODELS / "gpt2_past-legacy.onnx"), "wasm")
    with pytest.raises(NNJitError, match="generation bundle"):
        gen.run(gen.random_feeds())
    compile_model(MODELS / "bert-legacy.onnx", tmp_path / "b", backends=["wasm"], web_runtime=False)
    with pytest.raises(NNJitError, match="not a generation bundle"):
        Session(tmp_path / "b", "wasm").generate([1, 2], 4)


def test_a_decoder_whose_present_is_not_a_concat_of_the_past_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    past = helper.make_tensor_value_info("past_key_values.0.key", TensorProto.FLOAT, ["b", 2, "p", 4])
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "s"])
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["b", "t"])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", "s"])
    present = helper.make_tensor_value_info("present.0.key", TensorProto.FLOAT, ["b", 2, "p", 4])
    graph = helper.make_graph([helper.make_node("Cast", ["input_ids"], ["logits"], to=TensorProto.FLOAT),
                               helper.make_node("Relu", ["past_key_values.0.key"], ["present.0.key"])],
                              "g", [ids, mask, past], [logits, present])  # fmt: skip
    path = tmp_path / "bad.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    with pytest.raises(NNJitError, match=r"'present.0.key' is not Concat\('past_key_values.0.key'") as e:
        compile_model(path, tmp_path / "out", web_runtime=False)
    assert "Relu" in str(e.value)
    assert not (tmp_path / "out").exists()


def test_text_prompts_through_the_bundle_tokenizer(tmp_path):
    """Session.generate_text and `nnjit generate --prompt`: the prompt's ids are the tokenizer's,
    the tokens are onnxruntime's greedy ones, the text is their decoding; a model without a
    tokenizer is refused with the option named."""
    import json
    import shutil
    import subprocess
    import sys

    from tokenizers import Tokenizer

    model = tmp_path / "dec.onnx"
    shutil.copyfile(MODELS / "gpt2_past-legacy.onnx", model)
    shutil.copyfile(MODELS / "tokenizer-tiny.json", tmp_path / "tokenizer.json")
    compile_model(model, tmp_path / "b", backends=["wasm"], lengths=[8, 16], max_length=32, web_runtime=False)
    tok = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    prompt = "the cat sat on the mat"
    ids = tok.encode(prompt).ids
    ref, _ = reference_greedy(model, ids, 10)
    pieces = []
    text = Session(tmp_path / "b", "wasm").generate_text(prompt, 10, on_text=pieces.append)
    assert text == tok.decode(ref, skip_special_tokens=True) == "".join(pieces)
    cli = [sys.executable, "-m", "nnjit.tools.nnjit_main", "generate"]
    out = subprocess.run([*cli, str(tmp_path / "b"), "--prompt", prompt, "--max-new-tokens", "10", "--json", "-"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["prompt_ids"] == ids and doc["tokens"] == ref and doc["text"] == text
    bare = subprocess.run([*cli, str(MODELS / "gpt2_past-legacy.onnx"), "--prompt", "hi"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert bare.returncode == 1 and "no tokenizer.json beside the model for --prompt" in bare.stderr
    assert "Traceback" not in bare.stderr
