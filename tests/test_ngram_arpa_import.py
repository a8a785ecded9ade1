"""ARPA import: a model read back from ARPA scores every token as the model it came from;
the vectorised back-off scorer agrees with its one-token reference; bad files are refused
with their line number; an interrupted import leaves no folder behind."""
from __future__ import annotations

import gzip
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from corpora.common import UserError
from corpora.tokenizers import BOS, EOS, UNK, get_tokenizer
from ngram import NgramModel, load_model, save_model
from ngram.arpa import write_arpa
from ngram.arrays import ARPA_KIND
from ngram.backoff import MISSING_UNK_LOG10, import_arpa, per_token_log10, reference_log10
from ngram.score import positions

from test_ngram_arpa import TRAIN, UNSEEN

KENLM_BIN = Path("/work/kenlm-src/build/bin")
BOOKS = ("a_christmas_carol", "the_call_of_the_wild")


@pytest.fixture(scope="module")
def tokenizer():
    return get_tokenizer("words")


@pytest.fixture(scope="module")
def tiny(tokenizer, tmp_path_factory):
    """A 4-gram of a few sentences, and the same model exported to ARPA and imported back."""
    model = NgramModel.from_sentences(list(tokenizer.sentences(TRAIN)), order=4, tokenizer=tokenizer, min_count=1)
    path = write_arpa(model.smoothing("kn"), tmp_path_factory.mktemp("tiny") / "tiny.arpa")
    return model, import_arpa(path, tokenizer), path


def rows_of(model, text):
    """Every scored position of `text` (sentences in <s> … </s>) as `probs_many` takes them."""
    ids = model.trie.token_id
    sequences = [[ids[t] for t in [BOS, *model.to_vocab(s), EOS]] for s in model.tokenizer.sentences(text)]
    return positions(sequences, model.order - 1)


def test_imported_model_is_an_arpa_backoff_model_with_every_ngram(tiny):
    model, imported, _ = tiny
    assert imported.trie.kind == ARPA_KIND and imported.order == 4
    assert imported.vocab == model.vocab  # the 1-grams, in the file's order: ours
    assert [len(level.ids) for level in imported.trie.levels[1:]] == [len(level.ids) for level in model.trie.levels[1:]]
    assert type(imported.smoothing()).__name__ == "ArpaBackoff"


def test_vectorised_distribution_equals_the_reference(tiny):
    _, imported, _ = tiny
    method = imported.smoothing()
    for context in ([BOS, "I", "want"], ["the", "best", "of"], [], ["sea"], [UNK, "was"], [BOS], ["calm", "night", "and"]):
        fast, slow = method.distribution(context), method.distribution_reference(context)
        assert np.abs(fast - slow).max() < 1e-12, context
        assert fast.sum() == pytest.approx(1.0, abs=1e-5), context


def test_vectorised_text_scores_equal_the_reference(tiny):
    _, imported, _ = tiny
    method = imported.smoothing()
    history, targets = rows_of(imported, UNSEEN)
    fast = method.log10_many(history, targets)
    vocab = imported.vocab
    slow = [reference_log10(imported.trie, [vocab[t] for t in row if t >= 0], vocab[w])
            for row, w in zip(history.tolist(), targets.tolist())]
    assert len(fast) > 40
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)


def test_round_trip_scores_every_token_of_unseen_books_as_the_original(tokenizer, shared_dir, tmp_path):
    """Our model → ARPA → --from-arpa: the same log10 p (1e-4) for every token of a book it never saw."""
    books = shared_dir / "corpora" / "books"
    sentences = [s for name in BOOKS for s in tokenizer.sentences((books / f"{name}.txt").read_text(encoding="utf-8"))]
    model = NgramModel.from_sentences(sentences, order=3, tokenizer=tokenizer)
    imported = import_arpa(write_arpa(model.smoothing("kn"), tmp_path / "m.arpa"), tokenizer)
    save_model(imported, tmp_path / "imported.ngram")
    imported = load_model(tmp_path / "imported.ngram")  # memory-mapped, as every command reads it
    unseen = (books / "treasure_island.txt").read_text(encoding="utf-8")[20_000:60_000]
    history, targets = rows_of(model, unseen)
    ours = np.log10(model.smoothing("kn").probs_many(history, targets))
    theirs = imported.smoothing().log10_many(history, targets)
    assert len(targets) > 5000 and (targets == model.trie.token_id[UNK]).sum() > 100
    assert np.abs(ours - theirs).max() < 1e-4
    assert imported.score(unseen).per_token == pytest.approx(model.score(unseen).per_token, rel=1e-4)


def test_a_gzipped_arpa_file_reads_as_the_plain_one(tiny, tmp_path, tokenizer):
    _, imported, path = tiny
    packed = tmp_path / "tiny.arpa.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    again = import_arpa(packed, tokenizer)
    assert all(np.array_equal(a.logprob, b.logprob) for a, b in zip(again.trie.levels, imported.trie.levels))
    packed.write_bytes(gzip.compress(path.read_bytes())[:-40])
    with pytest.raises(UserError, match="truncated"):
        import_arpa(packed, tokenizer)


def test_predictions_rank_like_the_original_and_never_offer_model_tokens(tiny):
    model, imported, _ = tiny
    for context in ("I want to", "It was the", "xyzzy"):
        ours, theirs = model.predict(context, k=8), imported.predict(context, k=8, example=True)
        assert [c.token for c in theirs.candidates] == [c.token for c in ours.candidates]
        assert not {BOS, EOS, UNK} & {c.token for c in theirs.candidates}
        probs = [c.probability for c in theirs.candidates]
        assert probs == sorted(probs, reverse=True)
        assert theirs.smoothing == "arpa" and theirs.example is None
    assert "ARPA" in imported.predict("I want to", example=True).no_example


def test_count_based_smoothings_are_refused_with_a_clear_message(tiny):
    _, imported, _ = tiny
    with pytest.raises(UserError, match="imported from an ARPA file.*needs counts"):
        imported.smoothing("mle")
    with pytest.raises(UserError, match="no held-out text"):
        imported.heldout_text()


def test_back_off_by_hand_on_a_small_file(tmp_path, tokenizer):
    """A 3-gram file small enough to score by hand: listed values, back-offs present and absent, no <unk>."""
    path = tmp_path / "hand.arpa"
    path.write_text(
        "\\data\\\nngram 1=5\nngram 2=2\nngram 3=1\n\n\\1-grams:\n-1.0\t<s>\t-0.2\n-0.5\t</s>\n-0.7\ta\t-0.3\n"
        "-0.9\tb\n-1.1\tc\n\n\\2-grams:\n-0.25\t<s> a\n-0.4\ta b\t-0.6\n\n\\3-grams:\n-0.2\ta b a\n\n\\end\\\n",
        encoding="utf-8")
    method = import_arpa(path, tokenizer).smoothing()
    assert method.log10_prob(["a", "b"], "a") == pytest.approx(-0.2)  # listed
    assert method.log10_prob(["a", "b"], "c") == pytest.approx(-0.6 - 1.1)  # bo(a b) + bo(b) = 0 + p(c)
    assert method.log10_prob(["a", "b"], UNK) == pytest.approx(-0.6 + MISSING_UNK_LOG10)  # <unk> added as KenLM does
    assert method.log10_prob([BOS, "a"], "b") == pytest.approx(-0.4)  # "<s> a" has no back-off: p(b | a)
    assert method.log10_prob([BOS, "a"], "c") == pytest.approx(-0.3 - 1.1)  # then bo(a) + p(c)
    dist = dict(zip(method.counts.predictable, np.log10(method.distribution(["a", "b"]))))
    assert dist["a"] == pytest.approx(-0.2) and dist["b"] == pytest.approx(-0.6 - 0.9) and dist["c"] == pytest.approx(-1.7)


@pytest.mark.parametrize("body, message", [
    ("\\data\\\nngram 1=3\nngram 2=1\n\n\\1-grams:\n-1\t<s>\n-1\t</s>\n-1\ta\n\n\\2-grams:\n-0.5\tb a\n\\end\\\n",
     r"line 11: the word 'b' of the 2-gram 'b a' is not among the 1-grams"),
    ("\\data\\\nngram 1=3\nngram 2=1\nngram 3=1\n\n\\1-grams:\n-1\t<s>\n-1\t</s>\n-1\ta\n\n\\2-grams:\n-0.5\ta a\n\n"
     "\\3-grams:\n-0.1\t<s> a a\n\\end\\\n", r"line 15: the 3-gram '<s> a a' has no entry for its context '<s> a'"),
    ("\\data\\\nngram 1=3\n\n\\1-grams:\n-1\t<s>\n-1\t</s>\n-1\ta\n-1\ta\n\\end\\\n", r"line 8: the 1-gram 'a' is listed twice"),
    ("\\data\\\nngram 1=3\nngram 2=2\n\n\\1-grams:\n-1\t<s>\n-1\t</s>\n-1\ta\n\n\\2-grams:\n-0.5\ta a\n-0.4\ta a\n\\end\\\n",
     r"line 12: the 2-gram 'a a' is listed twice"),
    ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1\t<s>\n-1\ta\n\\end\\\n", "do not include </s>"),
    ("\\data\\\nngram 1=3\n\n\\1-grams:\n-1\t<s>\n-1\t</s>\n\\end\\\n", "declares 3 1-grams, the file has 2"),
    ("\\data\\\nngram 1=3\n\n\\1-grams:\n-1\t<s>\n-1\t</s>\nnot-a-number\ta\n\\end\\\n", "line 7: malformed 1-gram"),
    ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1\t<s>\n-1\t</s>\n", "truncated"),
])
def test_bad_arpa_files_are_refused_with_their_line(tmp_path, tokenizer, body, message):
    path = tmp_path / "bad.arpa"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(UserError, match=message):
        import_arpa(path, tokenizer)


def test_an_interrupted_save_leaves_the_old_model_and_no_partial_folder(tiny, tmp_path, monkeypatch):
    model, imported, _ = tiny
    target = tmp_path / "m.ngram"
    save_model(model, target)
    import ngram.arrays as arrays

    real_save = np.save
    calls = []

    def interrupt(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real_save(*args, **kwargs)

    monkeypatch.setattr(arrays.np, "save", interrupt)
    with pytest.raises(KeyboardInterrupt):
        save_model(imported, target)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.ngram"]
    assert load_model(target).trie.kind == "counts"


# ---------------------------------------------------------------------- KenLM, when built here


def kenlm_query_log10(arpa: Path, lines: list[str]) -> list[tuple[str, float]]:
    """(word, log10 p) for every token KenLM's `query -v word` scores (</s> included)."""
    result = subprocess.run([str(KENLM_BIN / "query"), "-v", "word", str(arpa)], input="\n".join(lines) + "\n",
                            capture_output=True, text=True, check=True)
    return [(m.group(1), float(m.group(2))) for m in re.finditer(r"(\S+)=\d+ \d+ (-?[0-9.e+-]+)", result.stdout)]


@pytest.mark.skipif(not (KENLM_BIN / "lmplz").exists(), reason="KenLM binaries not built at /work/kenlm-src/build/bin")
def test_a_model_made_by_lmplz_scores_like_kenlm_query(tmp_path, tokenizer, shared_dir):
    books = shared_dir / "corpora" / "books"
    train = [" ".join(s) for s in tokenizer.sentences((books / "a_christmas_carol.txt").read_text(encoding="utf-8"))]
    unseen = list(tokenizer.sentences((books / "treasure_island.txt").read_text(encoding="utf-8")[30_000:40_000]))
    arpa = tmp_path / "kenlm.arpa"
    with arpa.open("w") as out:
        subprocess.run([str(KENLM_BIN / "lmplz"), "-o", "3", "-S", "64M", "-T", str(tmp_path), "--discount_fallback"],
                       input="\n".join(train) + "\n", stdout=out, stderr=subprocess.DEVNULL, text=True, check=True)
    imported = import_arpa(arpa, tokenizer)
    kenlm = kenlm_query_log10(arpa, [" ".join(s) for s in unseen])
    ours = per_token_log10(imported, unseen)
    assert len(ours) == len(kenlm) > 1000
    for (word, expected), (token, got) in zip(kenlm, ours):
        assert (token == word) or (token == UNK), (word, token)
        assert got == pytest.approx(expected, abs=1e-4), word


def test_a_saved_arpa_model_keeps_its_kind_and_refuses_a_damaged_header(tiny, tmp_path):
    import json

    _, imported, _ = tiny
    folder = save_model(imported, tmp_path / "imported.ngram")
    assert json.loads((folder / "header.json").read_text())["kind"] == ARPA_KIND
    assert load_model(folder).smoothing().log10_prob(["I", "want"], "to") == imported.smoothing().log10_prob(["I", "want"], "to")
    for kind, message in [("bogus", "unknown model kind"), ("counts", "list of arrays does not match")]:
        header = json.loads((folder / "header.json").read_text())
        header["kind"] = kind
        (folder / "header.json").write_text(json.dumps(header))
        with pytest.raises(UserError, match=message):
            load_model(folder)


def test_batched_parsing_equals_the_one_line_reference(tiny):
    """`parse_batch` (whole arrays) gives what `ngram_line` gives line by line, across batch edges."""
    from ngram.arpa import ArpaReader

    _, _, path = tiny
    reader = ArpaReader(path)
    got, expected = [], []
    for batch in reader.batches(size=7):
        assert len(batch.numbers) <= 7
        for number, fields, logp, bo in zip(batch.numbers, batch.fields, batch.logp.tolist(), batch.backoff.tolist()):
            got.append((number, tuple(fields[1:batch.order + 1]), logp, bo))
            expected.append((number, *reader.ngram_line(" ".join(fields), batch.order, number)))
    assert got == expected and len(got) == sum(reader.declared.values())
    assert [row for row in ArpaReader(path)] == [row for row in ArpaReader(path)]  # iterating twice reads twice
