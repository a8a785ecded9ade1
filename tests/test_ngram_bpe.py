"""n-gram models over byte-level BPE tokens (`--tokens gpt2`, `--tokens bpe:DIR`).

The n-gram must see exactly the tokens the transformer sees: the ids are checked
against `transformer.bpe` and tiktoken (built from the shipped files, nothing is
downloaded). Also: save/load with the tokenizer's fingerprint, the CLI, refusals,
and per-token log-probabilities that add up to `score`.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from corpora import Corpus, Document, UserError, load_corpus
from ngram import NgramModel, load_model, save_model, trie
from ngram.cli import main
from corpora.tokenizers import BOS, EOS, UNK
from corpora.tokenizers import BPETokens, get_tokenizer
from corpora.tokenizers.bpe import ENDOFTEXT, GPT2_TOKENIZER_DIR, BPETokenizer, gpt2_tokenizer, tokenizer_fingerprint

REPO = Path(__file__).resolve().parents[1]
HF_FIXTURE = REPO / "tests" / "fixtures" / "gpt2-vocab"  # GPT-2's files under Hugging Face's names
BOOKS_BPE = REPO / "transformer" / "bundled" / "books-gpt2"  # a learned 4096-token BPE

# Hard cases for BPE: curly quotes (multi-byte characters split across tokens), runs of
# spaces and blank lines, contractions, numbers, an emoji, and GPT-2's special token
# written as ordinary text.
TEXT = (
    "I want to be a doctor. I want to know the truth. You want to be free.\n\n"
    "The cat sat on the mat.  The dog sat on the log. “Isn’t it?” she said — 42 times 🙂.\n"
) * 20 + "Write <|endoftext|> as plain text.\n"


def run(*args: str, ok: bool = True):
    result = CliRunner().invoke(main, list(args))
    if ok:
        assert result.exit_code == 0, result.output
    return result


def one_line_error(result, *fragments: str) -> None:
    assert result.exit_code != 0
    lines = [line for line in result.output.strip().splitlines() if line and not line.startswith("Warning:")]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture()
def corpus_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "books"
    folder.mkdir()
    (folder / "one.txt").write_text(TEXT, encoding="utf-8")
    (folder / "two.txt").write_text(TEXT.replace("cat", "fox"), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def reference(tiktoken_from_files):
    """tiktoken's Encoding built from the shipped GPT-2 files (nothing is downloaded)."""
    return tiktoken_from_files(GPT2_TOKENIZER_DIR, "gpt2-from-shipped-files")


def gpt2_model(corpus_dir: Path, order: int = 4, heldout_fraction: float = 0.05) -> NgramModel:
    return NgramModel.build(corpus_dir, order=order, tokens="gpt2", heldout_fraction=heldout_fraction, progress=False)


# ------------------------------------------------------------ the tokens are GPT-2's
def test_gpt2_tokens_are_exactly_the_reference_ids(reference):
    tokenizer = get_tokenizer("gpt2")
    text = TEXT + "Tabs\tand\r\nCRLF, a NUL \x00 byte, Café, 東京.   "
    sequences = list(tokenizer.sentences(text))
    assert len(sequences) == 1  # the whole text is one sequence: no sentence splitting
    ids = tokenizer.ids_of_tokens(sequences[0])
    assert ids == gpt2_tokenizer().encode(text) == reference.encode_ordinary(text)
    assert ENDOFTEXT not in sequences[0]  # special tokens are never produced
    assert tokenizer.tokens_of_ids(ids) == sequences[0]
    assert tokenizer.detokenize(sequences[0]) == text  # exact, white space and all
    assert all(token and "\x00" not in token for token in tokenizer.bpe.encoder)


def test_building_counts_exactly_the_reference_tokens(corpus_dir, reference):
    model = gpt2_model(corpus_dir, order=3, heldout_fraction=0.0)
    texts = list(load_corpus(corpus_dir, 0.0).train_texts())
    expected = Counter(token for text in texts for token in map(model.tokenizer.bpe.decoder.get, reference.encode_ordinary(text)))
    assert model.info["training_sentences"] == len(texts) == 2  # one sequence per document
    assert model.info["training_tokens"] == sum(expected.values())
    assert model.info["min_count"] == 1  # BPE default: every token seen is kept
    assert set(model.vocab) == set(expected) | {UNK, BOS, EOS}
    assert {token: trie.count_of(model.root[token]) for token in expected} == dict(expected)
    assert trie.count_of(model.root[BOS]["I"]["Ġwant"]) == 2  # each document starts "I want"


def test_render_joins_bpe_tokens_without_spaces(corpus_dir):
    model = gpt2_model(corpus_dir)
    tokens = next(model.tokenizer.sentences("The cat sat.\n\n“Isn’t it?”"))
    assert model.render(tokens) == "The cat sat.\n\n“Isn’t it?”"
    assert model.render(tokens + [EOS] + tokens[:2]) == "The cat sat.\n\n“Isn’t it?”The cat"


def test_tokens_are_shown_readably():
    tokenizer = get_tokenizer("gpt2")
    assert tokenizer.display("Ġnight") == '" night"'
    assert tokenizer.display("Ċ") == '"\\n"'
    assert tokenizer.display("âĢ") == '"\\xe2\\x80"'  # the first two bytes of “ or ’
    assert tokenizer.display(BOS) == BOS and tokenizer.display(UNK) == UNK
    assert tokenizer.show([BOS, "It", "Ġwas"]) == '<s> "It" " was"'


def test_predict_generate_complete_and_example_on_a_bpe_model(corpus_dir):
    model = gpt2_model(corpus_dir)
    prediction = model.predict("I want to", k=3, example=True)
    assert prediction.context == [BOS, "I", "Ġwant", "Ġto"]
    assert [c.token for c in prediction.candidates[:2]] == ["Ġbe", "Ġknow"]
    assert prediction.example and "I want to be" in prediction.example
    assert model.predict("she said", example=True).example is not None  # found in the raw text
    new = model.generate("The dog", max_tokens=2, greedy=True)
    assert new == ["Ġsat", "Ġon"]
    phrases = model.complete("The dog sat", length=2, k=1)
    assert phrases[0].tokens == ["Ġon", "Ġthe"] and phrases[0].text == " on the"


def test_whole_context_is_kept_and_unseen_tokens_become_unk(corpus_dir):
    model = gpt2_model(corpus_dir)
    context = model.context_tokens("Zebras. I want to")  # no sentence splitting with BPE tokens
    assert context[0] == BOS and context[-3:] == ["ĠI", "Ġwant", "Ġto"] and UNK in context


# ------------------------------------------------------------ saving and other folders
def test_save_and_load_keep_the_tokenizer_and_its_fingerprint(corpus_dir, tmp_path):
    model = gpt2_model(corpus_dir)
    config = model.tokenizer.config()
    assert config["name"] == "gpt2" and "folder" not in config
    assert config["fingerprint"] == tokenizer_fingerprint(gpt2_tokenizer())
    again = load_model(save_model(model, tmp_path / "bpe.json.gz"))
    assert isinstance(again.tokenizer, BPETokens)
    assert again.tokenizer.config() == config
    assert again.root == model.root and again.vocab == model.vocab
    assert again.score("I want to be free.").nll == pytest.approx(model.score("I want to be free.").nll)


def test_fingerprint_is_the_content_not_the_file_names(tmp_path):
    shipped = tokenizer_fingerprint(gpt2_tokenizer())
    assert tokenizer_fingerprint(BPETokenizer.from_dir(HF_FIXTURE)) == shipped  # same files, other names
    assert tokenizer_fingerprint(BPETokenizer.from_dir(BOOKS_BPE)) != shipped
    shared = Path(os.environ.get("SHARED_DIR", REPO.parent / "shared")) / "gpt2"
    if shared.is_dir():  # the shipped files are OpenAI's, byte for byte
        for name in ("encoder.json", "vocab.bpe"):
            assert (GPT2_TOKENIZER_DIR / name).read_bytes() == (shared / name).read_bytes()


def test_bpe_folder_with_hugging_face_names(corpus_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    model = NgramModel.build(corpus_dir, order=3, tokens="bpe:tests/fixtures/gpt2-vocab", progress=False)
    config = model.tokenizer.config()
    assert config["name"] == "bpe" and config["folder"] == str(HF_FIXTURE)  # resolved to an absolute path
    assert config["fingerprint"] == get_tokenizer("gpt2").config()["fingerprint"]
    assert model.vocab == gpt2_model(corpus_dir, order=3).vocab  # the same tokens as gpt2
    monkeypatch.chdir(tmp_path)  # a relative folder must not matter once saved
    again = load_model(save_model(model, tmp_path / "hf.json.gz"))
    assert again.tokenizer.folder == HF_FIXTURE


def test_a_learned_bpe_gives_other_tokens_that_still_round_trip(corpus_dir):
    model = NgramModel.build(corpus_dir, order=3, tokens=f"bpe:{BOOKS_BPE}", progress=False)
    assert model.tokenizer.bpe.vocab_size == 4096
    tokens = next(model.tokenizer.sentences(TEXT))
    assert model.tokenizer.ids_of_tokens(tokens) == BPETokenizer.from_dir(BOOKS_BPE).encode(TEXT)
    assert model.tokenizer.detokenize(tokens) == TEXT


def test_a_vocabulary_the_trie_cannot_hold_is_refused(tmp_path):
    folder = tmp_path / "bad-bpe"
    folder.mkdir()
    shutil.copy(BOOKS_BPE / "merges.txt", folder / "merges.txt")
    vocab = json.loads((BOOKS_BPE / "vocab.json").read_text(encoding="utf-8"))
    vocab["nul\x00token"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    with pytest.raises(UserError, match="cannot key"):
        get_tokenizer(f"bpe:{folder}")


# ------------------------------------------------------------ the command line
def test_cli_build_predict_perplexity_with_gpt2_tokens(corpus_dir, tmp_path):
    path = tmp_path / "gpt2.json.gz"
    summary = json.loads(run("build", str(corpus_dir), "-o", str(path), "--tokens", "gpt2", "--order", "4", "--no-progress", "--json").stdout)
    assert summary["tokenizer"]["name"] == "gpt2" and summary["min_count"] == 1
    out = run("predict", str(path), "I want to", "-k", "2").output
    assert '" be"' in out and 'Context: <s> "I" " want" " to"' in out and "Why:" in out
    predicted = json.loads(run("predict", str(path), "I want to", "--json").output)
    assert predicted["candidates"][0]["token"] == "Ġbe"
    text = tmp_path / "eval.txt"
    text.write_text("The fox sat on the log. I want to be free.\n", encoding="utf-8")
    ppl = json.loads(run("perplexity", str(path), str(text), "--json", "--no-progress").output)
    kn = {r["setting"]["smoothing"]: r for r in ppl["results"]}["kn"]
    assert kn["tokens"] == len(gpt2_tokenizer().encode(text.read_text(encoding="utf-8"))) + 1  # + </s>
    assert kn["setting"]["sentences"] == 1 and kn["units"]["words"] == 11 and kn["units"]["bytes"] == 43
    assert kn["token_kind"].startswith("gpt2 (byte-level BPE")
    assert "1 text," in run("perplexity", str(path), str(text), "--no-progress").output
    assert run("generate", str(path), "The dog", "--greedy", "-n", "2").output.strip() == "The dog sat on"
    assert run("complete", str(path), "The dog", "-n", "2").output.splitlines()[0].endswith('The dog … " sat on"')
    assert "gpt2 (byte-level BPE, 50,257 tokens" in run("stats", str(path), "--no-memory").output


def test_cli_refuses_lowercase_and_unknown_token_kinds(corpus_dir, tmp_path):
    out = str(tmp_path / "m.json.gz")
    one_line_error(run("build", str(corpus_dir), "-o", out, "--tokens", "gpt2", "--lowercase", ok=False), "lowercase")
    one_line_error(run("build", str(corpus_dir), "-o", out, "--tokens", "bytes", ok=False), "gpt2", "bpe:DIR")
    one_line_error(run("build", str(corpus_dir), "-o", out, "--tokens", "bpe:", ok=False), "bpe:DIR")
    one_line_error(run("build", str(corpus_dir), "-o", out, "--tokens", f"bpe:{tmp_path / 'nope'}", ok=False), "not found")
    assert not Path(out).exists()
    with pytest.raises(UserError, match="lowercase"):
        NgramModel.build(corpus_dir, tokens="gpt2", lowercase=True, progress=False)


def test_a_vanished_or_changed_tokenizer_folder_is_a_one_line_error(corpus_dir, tmp_path):
    folder = tmp_path / "my-bpe"
    shutil.copytree(BOOKS_BPE, folder)
    path = tmp_path / "m.json.gz"
    run("build", str(corpus_dir), "-o", str(path), "--tokens", f"bpe:{folder}", "--order", "3", "--no-progress")
    assert "bpe:" in run("stats", str(path), "--no-memory").output
    for name in ("vocab.json", "merges.txt"):  # another tokenizer in the same folder
        shutil.copy(HF_FIXTURE / name, folder / name)
    one_line_error(run("predict", str(path), "I want", ok=False), "not the one this model was built with")
    shutil.rmtree(folder)
    one_line_error(run("stats", str(path), ok=False), str(path), str(folder), "no longer exists")


# ------------------------------------------------------------ per-token log-probabilities
def sentence_end_logprob(model: NgramModel, sentence: list[str], smoothing: str = "kn") -> float:
    """log p(</s> | the end of the sentence), straight from the smoothing method."""
    context = [BOS, *model.to_vocab(sentence)]
    method = model.smoothing(smoothing)
    return math.log(method.prob(context[len(context) - (model.order - 1):], EOS))


@pytest.mark.parametrize("smoothing", ["kn", "addk"])
def test_token_logprobs_add_up_to_score_for_a_word_model(smoothing):
    text = "I want to be a doctor. The cat sat on the mat. The dog saw the cat."
    model = NgramModel.build(Corpus([Document("t.txt", text * 3)], 0.0), order=3, min_count=1, progress=False)
    probe = "I want to be free. The cat saw a zebra."
    sentences = list(model.tokenizer.sentences(probe))
    total = 0.0
    for sentence in sentences:
        logprobs = model.token_logprobs(sentence, smoothing)
        assert isinstance(logprobs, np.ndarray) and logprobs.shape == (len(sentence),)
        total += logprobs.sum() + sentence_end_logprob(model, sentence, smoothing)
    assert total == pytest.approx(-model.score(probe, smoothing).nll, rel=1e-12)


def test_token_logprobs_of_a_bpe_model_align_with_the_transformers_ids(corpus_dir):
    model = gpt2_model(corpus_dir)
    text = "The dog sat on the zebra."
    ids = gpt2_tokenizer().encode(text)
    tokens = model.tokenizer.tokens_of_ids(ids)
    logprobs = model.token_logprobs(tokens)
    assert logprobs.shape == (len(ids),) and np.all(logprobs < 0)
    total = logprobs.sum() + sentence_end_logprob(model, tokens)
    assert total == pytest.approx(-model.score(text).nll, rel=1e-12)
    mle = model.token_logprobs([*tokens, EOS], "mle")  # with </s>: what score adds up; unseen → p = 0
    assert np.isneginf(mle).sum() == model.score(text, "mle").zero_prob > 0
    with pytest.raises(UserError, match="ranking score"):
        model.token_logprobs(tokens, "backoff")
    with pytest.raises(UserError, match="list of tokens"):
        model.token_logprobs(text)


# ------------------------------------------------------------ the one-way dependency
def test_importing_ngram_does_not_import_transformer():
    code = "import sys, ngram, ngram.cli; assert 'transformer' not in sys.modules, 'transformer imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
