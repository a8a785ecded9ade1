"""Kneser-Ney's fast paths against the readable references.

- the per-context tables (c(h •), γ(h)) made at build time, saved, and recomputed when a
  model folder has none;
- scoring a text with every n-gram looked up at once (`probs_flat`) and one context at a
  time (`probs`) against `kneser_ney_reference` (the recursive formula);
- the threshold top k against ranking the whole distribution;
- `score_tokens` (``ngram perplexity --per-token``) against its totals, a hand-made
  example, and KenLM's ``query -v word`` when KenLM is built here.
"""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from corpora import UserError
from corpora.tokenizers import BOS, EOS, UNK, get_tokenizer
from ngram import NgramModel, load_model, save_model
from ngram.cli import main
from ngram.kneser_ney_reference import kneser_ney_prob
from ngram.score import score_tokens
from ngram.smoothing import Followers, KneserNey, kn_context_tables, sequences_flat, stored_tables_fit

KENLM_QUERY = Path("/work/kenlm-src/build/bin/query")


def zipf_sentences(seed: int, count: int, vocab: int) -> list[list[str]]:
    """Random sentences whose next word depends on the last one, Zipf-distributed: frequent
    words get long follower lists (the top k's threshold path), rare ones short."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(vocab)]
    weights = 1.0 / np.arange(1, vocab + 1)
    sentences = []
    for _ in range(count):
        length = int(rng.integers(2, 10))
        first = int(rng.choice(vocab, p=weights / weights.sum()))
        sentence = [first]
        for _ in range(length - 1):
            shifted = np.roll(weights, sentence[-1] % 7)  # a preference that depends on the previous word
            sentence.append(int(rng.choice(vocab, p=shifted / shifted.sum())))
        sentences.append([words[i] for i in sentence])
    return sentences


@pytest.fixture(scope="module")
def model() -> NgramModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return NgramModel.from_sentences(zipf_sentences(0, 1500, 200), order=4, tokenizer=get_tokenizer("words"),
                                         min_count=2)


def random_contexts(model: NgramModel, rng: np.random.Generator, n: int) -> list[list[str]]:
    """Contexts of 0-4 tokens: drawn from the vocabulary (mostly unseen as a whole), and with <s>."""
    words = [w for w in model.vocab if w != BOS]
    out = [[], [BOS], [BOS, "w0"], ["w0", "w1"], ["w1", "w0", "w0"]]
    for _ in range(n):
        context = [str(w) for w in rng.choice(words[:40], size=int(rng.integers(0, 5)))]
        out.append([BOS, *context] if rng.random() < 0.3 else context)
    return out


# ------------------------------------------------------------------ the tables
def test_build_saves_the_tables_and_they_equal_a_fresh_computation(model, tmp_path):
    trie = model.trie
    kn = model.smoothing("kn")
    assert stored_tables_fit(trie.kn_tables, trie, model.order, kn.discounts)
    fresh = kn_context_tables(trie, model.order, kn.discounts, model.counts.bos_id)
    assert set(fresh) == set(trie.kn_tables)
    for name, array in fresh.items():
        assert np.array_equal(array, trie.kn_tables[name]), name
    assert int(fresh["kn0.total"][0]) == sum(int(c) for i, c in zip(trie.levels[0].ids, trie.levels[0].continuation)
                                             if i != model.counts.bos_id)
    path = save_model(model, tmp_path / "m.ngram")
    assert (path / "kn3.gamma.npy").is_file() and (path / "kn.discounts.npy").is_file()
    loaded = load_model(path)
    for name, array in fresh.items():
        assert np.array_equal(array, loaded.trie.kn_tables[name]), name


def strip_tables(path: Path) -> None:
    """Make `path` a model folder as saved before the tables existed."""
    header = json.loads((path / "header.json").read_text())
    for name in [n for n in header["arrays"] if n.startswith("kn")]:
        del header["arrays"][name]
        (path / f"{name}.npy").unlink()
    (path / "header.json").write_text(json.dumps(header))


def test_a_model_saved_without_tables_loads_and_scores_identically(model, tmp_path):
    path = save_model(model, tmp_path / "old.ngram")
    strip_tables(path)
    old = load_model(path)
    assert old.trie.kn_tables == {}
    text = "w0 w1 w2 w3. w5 w0 w9 w1 w1."
    assert old.score(text).nll == model.score(text).nll  # bit for bit: the tables are made on first use
    assert old.smoothing("kn").top_k(["w0", "w1"], 5, [EOS, UNK])[0] == model.smoothing("kn").top_k(["w0", "w1"], 5, [EOS, UNK])[0]


def test_a_table_of_the_wrong_dtype_is_refused(model, tmp_path):
    path = save_model(model, tmp_path / "bad.ngram")
    np.save(path / "kn1.gamma.npy", np.zeros(len(model.trie.levels[0].ids), dtype=np.int64))
    with pytest.raises(UserError, match="kn1.gamma"):
        load_model(path)


def test_damaged_children_ranges_are_an_error_when_scoring(model, tmp_path):
    path = save_model(model, tmp_path / "damaged.ngram")
    first = np.load(path / "k2.first_child.npy")
    first[len(first) // 2] = first[-1] + 5  # inside the array: loading's O(1) checks pass
    np.save(path / "k2.first_child.npy", first)
    damaged = load_model(path)
    with pytest.raises(UserError, match="damaged"):
        damaged.score(" ".join(" ".join(s) + "." for s in zipf_sentences(3, 200, 200)), "kn")


def test_tables_made_for_other_discounts_are_not_used(model):
    """A lower order's discounts differ: its tables are computed, not read from the model's."""
    kn2 = model.smoothing("kn", order=2)
    assert not stored_tables_fit(model.trie.kn_tables, model.trie, 2, kn2.discounts)
    assert kn2.prob(["w0"], "w1") == pytest.approx(kneser_ney_prob(model.counts, ["w0"], "w1", order=2), rel=1e-12)


# ------------------------------------------------------------------ probabilities
@pytest.mark.parametrize("order", [1, 2, 4])
def test_fast_probabilities_equal_the_recursive_reference(model, order):
    kn = model.smoothing("kn", order=order)
    rng = np.random.default_rng(order)
    words = [w for w in model.vocab if w != BOS]
    for context in random_contexts(model, rng, 15):
        tokens = [str(w) for w in rng.choice(words, size=3)] + [EOS, UNK]
        expected = [kneser_ney_prob(model.counts, context, t, order=order) for t in tokens]
        np.testing.assert_allclose(kn.probs(context, tokens), expected, rtol=1e-12)


@pytest.mark.parametrize("order", [1, 3, 4])
def test_scoring_many_positions_equals_the_recursive_reference(model, order):
    kn = model.smoothing("kn", order=order)
    ids = model.trie.token_id
    rng = np.random.default_rng(7)
    sentences = zipf_sentences(1, 15, 220)  # another text: unseen n-grams and unknown words
    mapped = [[BOS, *model.to_vocab(s), EOS] for s in sentences]
    flat, at = sequences_flat([[ids[t] for t in s] for s in mapped])
    fast = kn.probs_flat(flat, at)
    expected = [kneser_ney_prob(model.counts, s[:i], s[i], order=order) for s in mapped for i in range(1, len(s))]
    np.testing.assert_allclose(fast, expected, rtol=1e-12)
    some = rng.choice(len(mapped), 5, replace=False)
    one_by_one = [kn.prob(mapped[j][:i], mapped[j][i]) for j in some for i in range(1, len(mapped[j]))]
    flat_one, at_one = sequences_flat([[ids[t] for t in mapped[j]] for j in some])
    assert kn.probs_flat(flat_one, at_one).tolist() == one_by_one  # bit for bit


# ------------------------------------------------------------------ the top k
@pytest.mark.parametrize("small", [0, 3, KneserNey.SMALL])
def test_threshold_top_k_equals_ranking_the_whole_distribution(model, small):
    """With `small` 0 every follower list is read best first (the threshold path), at 64 most are scored whole."""
    kn = model.smoothing("kn")
    kn.SMALL = small
    try:
        ids = model.trie.token_id
        predictable = [ids[t] for t in kn.counts.predictable]
        for context in random_contexts(model, np.random.default_rng(small), 30):
            full = np.full(len(model.vocab), -1.0)
            full[predictable] = kn.distribution(context)
            full[[ids[EOS], ids[UNK]]] = -1
            for k in (1, 5, 10, 60):
                top, probs = kn.top_k(context, k, exclude=[EOS, UNK])
                ranked = np.lexsort((np.arange(len(full)), -full))[:k]
                assert [ids[t] for t in top] == ranked.tolist(), (context, k)
                np.testing.assert_allclose(probs, full[ranked], rtol=1e-12)
    finally:
        del kn.SMALL


def test_threshold_search_reads_on_while_an_unread_follower_could_still_win(model):
    """Ten frequent words that never followed the context, ten that followed it 3 times but are
    rare, and x: less frequent than the first ten, fewer times after it than the second ten,
    yet the most probable. The first block (10 of each list) misses x; only the threshold,
    which counts what an unread follower can still add, says to read on."""
    kn = KneserNey(model.counts)
    p1 = np.full(40, 0.001)
    p1[:10], p1[20] = 0.05, 0.045
    kn._unigram, kn._unigram_order = p1, np.argsort(-p1, kind="stable").astype(np.int32)
    followers = Followers(1, 0, np.arange(10, 21, dtype=np.int32), np.array([3] * 10 + [2]), 32.0, 0.5,
                          np.array([0.0, 0.5, 1.0, 1.5]))
    ids, scores = kn.threshold_search([followers], [1.0], 0.5, 1, np.empty(0, dtype=np.int32), k=1)
    exact = 0.5 * p1
    exact[10:21] += followers.alpha(np.arange(11))
    assert ids[np.argmax(scores)] == 20 == np.argmax(exact)
    assert scores.max() == pytest.approx(exact.max(), rel=1e-12)


def test_alpha_bound_holds_when_discounts_do_not_grow_with_the_count(model):
    """With D1 = 0.05 and D2 = 1.95, a count of 1 gives a larger α than a count of 2."""
    kn = model.smoothing("kn")
    level = Followers(1, 0, np.array([1, 2]), np.array([2, 1]), 10.0, 0.5, np.array([0.0, 0.05, 1.95, 2.5]))
    for count in range(1, 6):
        alphas = level.alpha(np.arange(2)) if count >= 2 else level.alpha(np.array([1]))
        assert kn.alpha_bound(level, count) >= max(alphas.max(), (count - 2.5) / 10.0)
    assert kn.alpha_bound(level, 2) == pytest.approx(0.95 / 10)


# ------------------------------------------------------------------ token by token
def test_per_token_log10_probabilities_add_up_to_the_total(model):
    text = "w0 w1 w2 w3. w5 w0 w9 w1 zebra w1."
    for smoothing in ("kn", "addk"):
        tokens = score_tokens(model, text, smoothing)
        score = model.score(text, smoothing)
        assert len(tokens) == score.tokens
        assert sum(t.log10_prob for t in tokens) == pytest.approx(-score.nll / math.log(10), rel=1e-12)
    assert [t.token for t in tokens][-7:] == ["w0", "w9", "w1", "zebra", "w1", ".", EOS]
    assert tokens[-4].model_token == UNK


def test_matched_order_is_the_longest_ngram_found():
    tokenizer = get_tokenizer("words")
    model = NgramModel.from_sentences([["a", "b", "c"], ["a", "b", "d"]], order=3, tokenizer=tokenizer, min_count=1)
    got = [(t.token, t.matched_order) for t in score_tokens(model, "a b c")]
    assert got == [("a", 2), ("b", 3), ("c", 3), (EOS, 3)]  # <s> a, <s> a b, a b c, b c </s>
    got = [(t.token, t.matched_order) for t in score_tokens(model, "c a")]
    assert got == [("c", 1), ("a", 1), (EOS, 1)]  # <s> c, c a, a </s>: never seen
    assert [t.matched_order for t in score_tokens(model, "a b c", order=2)] == [2, 2, 2, 2]


@pytest.mark.skipif(not KENLM_QUERY.is_file(), reason="KenLM's query is not built here")
def test_per_token_scores_equal_kenlm_query_on_our_arpa(model, tmp_path):
    from ngram.arpa import write_arpa

    write_arpa(model.smoothing("kn"), tmp_path / "m.arpa")
    text = " ".join(" ".join(s) + "." for s in zipf_sentences(2, 20, 210))
    ours = score_tokens(model, text)
    lines = "".join(" ".join(model.to_vocab(s)) + "\n" for s in model.tokenizer.sentences(text))
    out = subprocess.run([str(KENLM_QUERY), "-v", "word", str(tmp_path / "m.arpa")], input=lines,
                         capture_output=True, text=True, check=True).stdout
    theirs = [item.rsplit(" ", 2) for line in out.splitlines() if "=" in line and not line.startswith(("Perplexity", "OOV", "Tokens"))
              for item in line.split("\t") if "=" in item and not item.startswith("Total")]
    assert len(theirs) == len(ours)
    assert [int(length) for _, length, _ in theirs] == [t.matched_order for t in ours]
    np.testing.assert_allclose([float(p) for _, _, p in theirs], [t.log10_prob for t in ours], atol=1e-5)


def test_perplexity_per_token_command(model, tmp_path):
    path = save_model(model, tmp_path / "m.ngram")
    text = tmp_path / "t.txt"
    text.write_text("w0 w1 w2. w3 zebra w1.\n")
    runner = CliRunner()
    done = runner.invoke(main, ["perplexity", str(path), str(text), "--per-token", "--json", "--no-progress"])
    assert done.exit_code == 0, done.output
    listed = json.loads(done.output)["per_token"]
    assert listed["smoothing"] == "kn"
    assert [t["token"] for t in listed["tokens"]] == ["w0", "w1", "w2", ".", "w3", "zebra", "w1", ".", EOS]
    assert listed["tokens"][5]["model_token"] == UNK and listed["tokens"][0]["model_token"] == "w0"
    kn_nll = json.loads(done.output)["results"][0]["nll"]
    assert sum(t["log10_prob"] for t in listed["tokens"]) == pytest.approx(-kn_nll / math.log(10))
    plain = runner.invoke(main, ["perplexity", str(path), str(text), "--per-token", "--smoothing", "kn", "--no-progress"])
    assert plain.exit_code == 0 and "zebra (<unk>)" in plain.output
    assert len(plain.output.splitlines()) == 5 + 9  # text, perplexity, blank, title, column names, 9 tokens
