"""Text in: a model's tokenizer.json shipped in its bundle, and what the runtimes do with it.

The tokenizer is HF `tokenizers` (Python) and `@huggingface/tokenizers` (the page,
nnjit/web/text.js), both reading the same tokenizer.json: nnjit writes no tokenizer.

Compile side (`nnjit compile --tokenizer PATH`, or a tokenizer.json found beside the model):
- `tokenizer_for(model, given, model_inputs)`: (the file, its plan entry), after loading it
  and checking that it fits the model; None when there is none to ship.
- `ship_tokenizer(found, manifest, bundle_dir)`: checks its vocabulary against the model's
  table, copies it into the bundle and names it in the plan.

The plan entry, plan["tokenizer"]:

    {"file": "tokenizer.json",                    (hashed in plan["files"] like the others)
     "inputs": ["input_ids", "attention_mask"],   (the model inputs it fills, of FIELDS)
     "pad_id": 0, "vocab_size": 30522}

Run side:
- `padding_length(plan, lengths)`: the sequence length texts are padded (or truncated) to;
  the one place that decides it (today: the bundle's compiled length).
- `TextCodec(root, plan, verify)`: `encode(texts)` -> feeds of `len(texts)` rows; `run(run_fn,
  texts)` runs them in batches of the compiled batch size; `embed(run_fn, texts)`.
- `sentence_embeddings(outputs, mask)`: mean pooling over the attention mask, then L2
  normalisation (sentence-transformers' all-MiniLM-L6-v2); a model that pools already (a 2-D
  output) is only normalised.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nnjit.bundle import bundle_file
from nnjit.errors import ModelFormatError, NNJitError

FIELDS = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}
"""Model inputs a tokenizer fills -> the field of a tokenizers Encoding that fills it."""

TOKENIZER_FILE = "tokenizer.json"
MAX_TOKENIZER_BYTES = 256 << 20
"""A tokenizer.json larger than this is not one (the largest HF ones are ~35 MB)."""
MAX_TEXTS = 100_000


# ------------------------------------------------------------------------------ compile side


def find_tokenizer(model: str | os.PathLike | bytes, given: str | os.PathLike | bool | None) -> tuple[Path | None, bool]:
    """(the tokenizer.json to ship, whether the user named it). `given`: a path, False (none),
    or None: `<model stem>.tokenizer.json`, else `tokenizer.json`, beside the model file (or in
    the folder above, when the model lies in `onnx/` as HF repositories keep it)."""
    if given is False:
        return None, False
    if given is not None and given is not True:
        return Path(given), True
    if not isinstance(model, (str, os.PathLike)):
        return None, False
    folder = Path(model).parent
    near = [folder / f"{Path(model).stem}.{TOKENIZER_FILE}", folder / TOKENIZER_FILE]
    if folder.name == "onnx":
        near.append(folder.parent / TOKENIZER_FILE)
    return next((p for p in near if p.is_file()), None), False


def load_tokenizer(path: Path) -> Any:
    """The tokenizers.Tokenizer of a tokenizer.json; one line naming the file otherwise."""
    from tokenizers import Tokenizer

    if not path.is_file():
        what = "is not a file" if path.exists() else "no such file"
        raise NNJitError(f"{path}: {what}", hint="give the model's tokenizer.json with --tokenizer")
    if path.stat().st_size > MAX_TOKENIZER_BYTES:
        raise NNJitError(f"{path}: {path.stat().st_size} bytes, over {MAX_TOKENIZER_BYTES} for a "
                         "tokenizer.json")  # fmt: skip
    try:
        return Tokenizer.from_file(str(path))
    except Exception as e:  # (the library's own errors: JSON, missing fields, unknown types)
        text = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        raise NNJitError(f"{path}: not a tokenizer.json the tokenizers library reads ({text[:200]})",
                         hint="give the tokenizer.json of the model's HF repository") from None  # fmt: skip


def check_tokenizer(path: Path, model_inputs: Sequence[Any], explicit: bool) -> dict | None:
    """The plan entry for the tokenizer at `path` and a model with `model_inputs` (objects with
    .name, .shape, .dtype), after checking they fit; None when `path` was found beside the
    model (not `explicit`) and the model takes no input_ids."""
    names = [t.name for t in model_inputs]
    if "input_ids" not in names:
        if not explicit:
            return None
        raise NNJitError(f"{path}: the model takes no 'input_ids' for a tokenizer to fill "
                         f"(its inputs: {names})", hint="leave out --tokenizer")  # fmt: skip
    others = [n for n in names if n not in FIELDS]
    if others:
        raise NNJitError(f"{path}: the model's input '{others[0]}' is not one a tokenizer fills "
                         f"({', '.join(FIELDS)})",
                         hint="compile without a tokenizer (--no-tokenizer) and feed ids yourself")  # fmt: skip
    shapes = {tuple(t.shape) for t in model_inputs}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise NNJitError(f"{path}: the model's text inputs are not all [batch, sequence] of one "
                         f"shape ({ {t.name: list(t.shape) for t in model_inputs} })",
                         hint="bind them with --shape, e.g. input_ids=1x128")  # fmt: skip
    tok = load_tokenizer(path)
    vocab = tok.get_vocab_size(with_added_tokens=True)
    return {"file": TOKENIZER_FILE, "inputs": names, "pad_id": _pad_id(tok), "vocab_size": vocab}


def check_vocab(path: Path, entry: dict, model: dict) -> None:
    """Token ids stay below the rows of the table input_ids indexes (its plan "range")."""
    rows = next((i.get("range") for i in model["inputs"] if i["name"] == "input_ids"), None)
    if rows is not None and entry["vocab_size"] > rows:
        raise NNJitError(f"{path}: the tokenizer has {entry['vocab_size']} tokens, the model's "
                         f"embedding table {rows} rows", hint="give the tokenizer of this model")  # fmt: skip


def tokenizer_for(model: str | os.PathLike | bytes, given: str | os.PathLike | bool | None,
                  model_inputs: Sequence[Any]) -> tuple[Path, dict] | None:  # fmt: skip
    """compile_model(tokenizer=given): (tokenizer.json, plan entry) to ship, or None."""
    path, explicit = find_tokenizer(model, given)
    entry = check_tokenizer(path, model_inputs, explicit) if path is not None else None
    return (path, entry) if path is not None and entry is not None else None


def ship_tokenizer(found: tuple[Path, dict] | None, manifest: dict, bundle_dir: Path) -> None:
    """Copies the tokenizer into the bundle and names it in the plan (before "files" is made)."""
    if found is None:
        return
    path, entry = found
    check_vocab(path, entry, manifest["model"])
    shutil.copyfile(path, bundle_dir / entry["file"])
    manifest["tokenizer"] = entry


def _pad_id(tok: Any) -> int:
    """The tokenizer's own padding id, else that of a pad token it has, else 0."""
    if tok.padding is not None:
        return int(tok.padding["pad_id"])
    for t in ("[PAD]", "<pad>", "<|pad|>", "<|endoftext|>"):
        i = tok.token_to_id(t)
        if i is not None:
            return int(i)
    return 0


# ---------------------------------------------------------------------------------- run side


def tokenizer_entry(plan: dict, where: str) -> dict:
    """plan["tokenizer"], checked; one line when the bundle has none or it is malformed."""
    entry = plan.get("tokenizer")
    if entry is None:
        raise NNJitError(f"{where}: the bundle has no tokenizer, so it takes token ids, not text",
                         hint="recompile with --tokenizer PATH/tokenizer.json")  # fmt: skip
    names = {i["name"] for i in plan["model"]["inputs"]}
    ok = (isinstance(entry, dict) and isinstance(entry.get("file"), str)
          and isinstance(entry.get("inputs"), list) and "input_ids" in entry["inputs"]
          and all(n in FIELDS and n in names for n in entry["inputs"])
          and isinstance(entry.get("pad_id"), int) and not isinstance(entry["pad_id"], bool))  # fmt: skip
    if not ok:
        raise ModelFormatError(f'{where}: plan "tokenizer" is malformed', hint="recompile the bundle")
    return entry


def _dim_of(plan: dict, axis: int) -> dict | None:
    """The dynamic dim (plan "dynamic") input_ids has at `axis`, if any."""
    for d in (plan.get("dynamic") or {}).get("dims", {}).values():
        if ["input_ids", axis] in d["inputs"]:
            return d
    return None


def padding_length(plan: dict, lengths: Sequence[int]) -> int:
    """The sequence length a batch of texts whose encodings have `lengths` tokens is padded
    (or truncated) to. A bundle of one compiled length takes that length whatever the texts; a
    variable-length bundle the longest text's (the runtime pads it to a compiled length), at
    most the longest it serves."""
    d = _dim_of(plan, 1)
    if d is not None:
        longest = max(lengths, default=1)
        if d["pad"]:
            return max(1, min(longest, max(d["sizes"])))
        return min((s for s in d["sizes"] if s >= longest), default=max(d["sizes"]))
    info = next(i for i in plan["model"]["inputs"] if i["name"] == "input_ids")
    return int(info["shape"][1])


def batch_size(plan: dict) -> int:
    """Rows the compiled model takes per run (at most, for a dynamic batch dim)."""
    d = _dim_of(plan, 0)
    if d is not None:
        return max(d["sizes"])
    info = next(i for i in plan["model"]["inputs"] if i["name"] == "input_ids")
    return int(info["shape"][0])


def check_texts(texts: str | Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    if not isinstance(texts, Sequence) or not texts or not all(isinstance(t, str) for t in texts):
        raise NNJitError("texts: give a string or a non-empty list of strings")
    if len(texts) > MAX_TEXTS:
        raise NNJitError(f"texts: {len(texts)} texts, over {MAX_TEXTS} at once", hint="give fewer")
    return list(texts)


class TextCodec:
    """The bundle's tokenizer, loaded once: texts -> feeds, and texts through the model."""

    def __init__(self, root: Path, plan: dict, verify: bool = True):
        where = str(root / "plan.json")
        self.plan = plan
        self.entry = tokenizer_entry(plan, where)
        path = bundle_file(root, plan, self.entry["file"], verify)
        self.tokenizer = load_tokenizer(path)
        self.dtypes = {i["name"]: np.dtype(i["dtype"]) for i in plan["model"]["inputs"]}

    def encode(self, texts: str | Sequence[str]) -> dict[str, np.ndarray]:
        """Feeds for the model's text inputs, one row per text, padded (or truncated) to
        `padding_length`; attention_mask is 1 on the tokens and 0 on the padding."""
        texts = check_texts(texts)
        tok = self.tokenizer
        tok.no_padding()
        tok.no_truncation()
        lengths = [len(e.ids) for e in tok.encode_batch(texts)]
        length = padding_length(self.plan, lengths)
        pad = self.entry["pad_id"]
        tok.enable_truncation(max_length=length)
        tok.enable_padding(length=length, pad_id=pad, pad_token=tok.id_to_token(pad) or "[PAD]")
        encs = tok.encode_batch(texts)
        return {name: np.array([getattr(e, FIELDS[name]) for e in encs], dtype=self.dtypes[name])
                for name in self.entry["inputs"]}  # fmt: skip

    def ids(self, text: str) -> list[int]:
        """The token ids of one text (a generation prompt: no padding, no truncation)."""
        text = check_texts(text)[0]
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        return list(self.tokenizer.encode(text).ids)

    def decode(self, ids: Sequence[int]) -> str:
        """The text of token ids (special tokens left out)."""
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=True)

    def batches(self, texts: str | Sequence[str]) -> list[tuple[dict[str, np.ndarray], int]]:
        """(feeds of the compiled batch size, rows of them that are texts) per run: the last
        run is filled up with empty texts."""
        texts = check_texts(texts)
        b = batch_size(self.plan)
        fixed = _dim_of(self.plan, 0) is None  # (a dynamic batch dim takes the rows there are)
        out = []
        for i in range(0, len(texts), b):
            chunk = texts[i:i + b]  # fmt: skip
            out.append((self.encode(chunk + [""] * ((b - len(chunk)) if fixed else 0)), len(chunk)))
        return out

    def run(self, run_fn: Callable[[dict], dict[str, np.ndarray]], texts: str | Sequence[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """(the model's outputs for `texts`, one row per text; the attention mask)."""
        outs: dict[str, list[np.ndarray]] = {}
        masks = []
        for feeds, n in self.batches(texts):
            for name, arr in run_fn(feeds).items():
                outs.setdefault(name, []).append(arr[:n])
            masks.append(_mask(feeds)[:n])
        return {k: np.concatenate(v) for k, v in outs.items()}, np.concatenate(masks)

    def embed(self, run_fn: Callable[[dict], dict[str, np.ndarray]], texts: str | Sequence[str]) -> np.ndarray:
        """Unit-length sentence embeddings, one row per text (float32)."""
        outs, mask = self.run(run_fn, texts)
        return sentence_embeddings(outs, mask)


def _mask(feeds: dict[str, np.ndarray]) -> np.ndarray:
    if "attention_mask" in feeds:
        return feeds["attention_mask"]
    return np.ones_like(feeds["input_ids"])


def sentence_embeddings(outputs: dict[str, np.ndarray], mask: np.ndarray) -> np.ndarray:
    """Mean of the token vectors where `mask` is 1, L2-normalised (sentence-transformers'
    pooling). Takes the output named sentence_embedding or the first 2-D one (already pooled:
    only normalised), else the first 3-D one [batch, sequence, hidden]."""
    pooled = outputs.get("sentence_embedding")
    if pooled is None:
        pooled = next((a for a in outputs.values() if a.ndim == 2), None)
    if pooled is None:
        hidden = next((a for a in outputs.values() if a.ndim == 3 and a.shape[:2] == mask.shape), None)
        if hidden is None:
            raise NNJitError(f"no output to pool: outputs {({k: list(v.shape) for k, v in outputs.items()})}, "
                             f"want [batch, sequence, hidden] for a mask of shape {list(mask.shape)}")  # fmt: skip
        m = mask.astype(np.float64)[..., None]
        pooled = (hidden.astype(np.float64) * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    pooled = np.asarray(pooled, dtype=np.float64)
    norm = np.maximum(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)
    return (pooled / norm).astype(np.float32)
