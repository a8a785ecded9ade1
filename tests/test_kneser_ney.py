"""Interpolated modified Kneser-Ney, checked against numbers computed here, independently.

Nothing below reads the expected values from `ngram.smoothing`: the n-gram counts,
continuation counts, count-of-counts, discounts and probabilities are recomputed from
the raw sentences with plain Python (Counter and set), following Chen & Goodman (1998):

    p_k(w | h) = max(c(h w) - D_k(c), 0) / c(h •)  +  γ(h) · p_(k-1)(w | h minus its first token)
    γ(h)       = (D_k1 N1(h •) + D_k2 N2(h •) + D_k3+ N3+(h •)) / c(h •)
    p_0(w)     = 1 / |V|                     (uniform over every token that can come next)

c is the real count at the top order and the continuation count (distinct left
neighbours) below it, except for n-grams that start with <s>, which have no left
neighbour and keep their real count. The discounts of order k come from the
count-of-counts n1..n4 of the same counts c over all k-grams:

    Y = n1 / (n1 + 2 n2),  D1 = 1 - 2Y n2/n1,  D2 = 2 - 3Y n3/n2,  D3+ = 3 - 4Y n4/n3

and fall back to D1 = D2 = D3+ = Y (kept in [0.1, 0.9]) when some n_r is zero.
"""
from __future__ import annotations

import random
import warnings
from collections import Counter, defaultdict

import pytest

from corpora.tokenizers import BOS, EOS, UNK, get_tokenizer
from ngram import NgramModel, load_model, save_model
from ngram.kneser_ney_reference import kneser_ney_prob
from ngram.smoothing import KneserNey

# 16 sentences over a skewed 10-letter vocabulary, chosen so that every count-of-counts
# table (raw and continuation, every order of a trigram model) has n1..n4 > 0: the full
# Chen & Goodman formulas are used at every order, and raw and continuation tables differ.
FULL = [s.split() for s in (
    "b a f a", "i j a c d", "f a", "a f c f a", "a c a b", "a a a", "c c a e d", "e f a",
    "f h e j a", "b c", "e i c a c", "e b i", "a d", "e b a c", "a b d a b", "a c",
)]
# A tinier text where most tables have a zero n_r: the fallback discounts are used.
SPARSE = [s.split() for s in ("I want to be a doctor", "I want to know the truth", "You want to be free")]


# ------------------------------------------------- the independent computation
class Reference:
    """Modified Kneser-Ney from raw n-gram counts, as slowly and plainly as possible."""

    def __init__(self, sentences: list[list[str]], trie_order: int, order: int) -> None:
        self.order = order
        self.raw: Counter = Counter()
        self.left: dict = defaultdict(set)
        for words in sentences:
            s = (BOS, *words, EOS)
            for k in range(1, trie_order + 1):
                for i in range(len(s) - k + 1):
                    self.raw[s[i:i + k]] += 1
                    if i > 0:
                        self.left[s[i:i + k]].add(s[i - 1])
        self.vocab = sorted({t for g in self.raw for t in g} - {BOS} | {UNK})

    def count(self, gram: tuple, top: bool) -> int:
        """Real count at the top order or after <s>; else the number of distinct left neighbours."""
        return self.raw[gram] if top or gram[0] == BOS else len(self.left[gram])

    def count_of_counts(self, k: int, top: bool) -> list[int]:
        """n1..n4 over every k-gram (n-grams of <s> included, as the trie holds them)."""
        values = Counter(self.count(g, top) for g in self.raw if len(g) == k)
        return [values[r] for r in (1, 2, 3, 4)]

    def discounts(self, k: int) -> tuple[float, float, float]:
        n1, n2, n3, n4 = self.count_of_counts(k, top=k == self.order)
        if 0 in (n1, n2, n3, n4):
            y = n1 / (n1 + 2 * n2) if n1 + 2 * n2 else 0.5
            y = min(max(y, 0.1), 0.9)
            return (y, y, y)
        y = n1 / (n1 + 2 * n2)
        d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
        return tuple(min(max(x, 0.05), float(i + 1)) for i, x in enumerate(d))

    def prob(self, context: list[str], w: str, k: int | None = None) -> float:
        """p_k(w | the last k-1 tokens of context), recursively down to the uniform."""
        k = self.order if k is None else k
        if k == 0:
            return 1 / len(self.vocab)
        h = tuple(context[len(context) - (k - 1):]) if k > 1 else ()
        lower = self.prob(context, w, k - 1)
        if len(h) < k - 1:
            return lower
        top = k == self.order
        follow = {g[-1]: self.count(g, top) for g in self.raw if len(g) == k and g[:-1] == h and g[-1] != BOS}
        follow = {t: c for t, c in follow.items() if c > 0}
        total = sum(follow.values())
        if total == 0:  # the context was never seen (or nothing followed it)
            return lower
        d1, d2, d3 = self.discounts(k)
        n = Counter(min(c, 3) for c in follow.values())
        gamma = (d1 * n[1] + d2 * n[2] + d3 * n[3]) / total
        c = follow.get(w, 0)
        d = (0.0, d1, d2, d3)[min(c, 3)]
        return max(c - d, 0) / total + gamma * lower


def build(sentences: list[list[str]], trie_order: int) -> NgramModel:
    return NgramModel.from_sentences(sentences, trie_order, get_tokenizer("words"), min_count=1)


def contexts_to_check(sentences: list[list[str]], trie_order: int) -> list[list[str]]:
    """Every context the text holds (up to trie_order - 1 tokens), and some it never had."""
    seen = set()
    for words in sentences:
        s = [BOS, *words, EOS]
        for i in range(len(s)):
            for length in range(0, trie_order):
                if i + length <= len(s):
                    seen.add(tuple(s[i:i + length]))
    unseen = [("j", "j"), ("a", "j", "j"), (UNK,), (UNK, "a"), (EOS,), ("a", EOS), (BOS, UNK)]
    return [list(c) for c in sorted(seen) + unseen]


# ------------------------------------------------------------------ the tests
def test_literal_discounts_of_the_full_text():
    """Worked by hand from FULL: h, j, i and d occur 1, 2, 3 and 4 times, so raw n1..n4 = 1, 1, 1, 1."""
    model = build(FULL, 3)
    assert model.statistics["raw1"] == [1, 1, 1, 1]
    # Y = 1/(1+2) = 1/3; D1 = 1 - 2/3 = 1/3; D2 = 2 - 3·(1/3)·1 = 1; D3+ = 3 - 4·(1/3)·1 = 5/3
    assert KneserNey(model.counts, order=1).discounts[1] == pytest.approx((1 / 3, 1, 5 / 3), rel=1e-12)
    # continuation unigrams: n1..n4 = 1, 1, 3, 2 → Y = 1/3, D1 = 1/3, D2 = 2 - 3, D3+ = 3 - 8/9
    # (D2 = -1 is kept at the floor 0.05, so no discount goes negative)
    assert model.statistics["cont1"] == [1, 1, 3, 2]
    assert KneserNey(model.counts, order=3).discounts[1] == pytest.approx((1 / 3, 0.05, 3 - 8 / 9), rel=1e-12)


@pytest.mark.parametrize("sentences, trie_order", [(FULL, 3), (FULL, 4), (SPARSE, 3), (SPARSE, 4)])
def test_count_of_counts_equal_an_independent_count(sentences, trie_order):
    model, ref = build(sentences, trie_order), Reference(sentences, trie_order, trie_order)
    for k in range(1, trie_order + 1):
        assert model.statistics[f"raw{k}"] == ref.count_of_counts(k, top=True), f"raw{k}"
        if k < trie_order:
            assert model.statistics[f"cont{k}"] == ref.count_of_counts(k, top=False), f"cont{k}"


@pytest.mark.parametrize("sentences, trie_order", [(FULL, 3), (FULL, 4), (SPARSE, 3), (SPARSE, 4)])
def test_kneser_ney_equals_the_independent_computation_at_every_order(sentences, trie_order):
    model = build(sentences, trie_order)
    contexts = contexts_to_check(sentences, trie_order)
    for order in range(1, trie_order + 1):
        kn, ref = model.smoothing("kn", order=order), Reference(sentences, trie_order, order)
        assert sorted(model.counts.predictable) == ref.vocab
        for k in range(1, order + 1):
            assert kn.discounts[k] == pytest.approx(ref.discounts(k), rel=1e-12), f"order {order}: D of level {k}"
        for context in contexts:
            got = kn.distribution(context)
            for w in ref.vocab:
                expected = ref.prob(context, w)
                where = f"order {order}: p({w!r} | {context})"
                assert kn.prob(context, w) == pytest.approx(expected, rel=1e-12), where
                assert got[model.counts.index[w]] == pytest.approx(expected, rel=1e-12), where


# ------------------------------------------------- the package's own reference
def random_text(seed: int, sentences: int = 300, vocabulary: int = 40) -> list[list[str]]:
    """Sentences over a Zipf-like vocabulary: big enough for every kind of count."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(vocabulary)]
    weights = [1 / (i + 1) for i in range(vocabulary)]
    return [rng.choices(words, weights, k=rng.randint(1, 8)) for _ in range(sentences)]


def test_fast_kneser_ney_equals_the_recursive_reference_at_every_order():
    sentences = random_text(3)
    model = build(sentences, 4)
    rng = random.Random(5)
    vocab = model.counts.predictable
    contexts = [[BOS, *rng.choice(sentences)[: rng.randint(0, 3)]] for _ in range(60)]
    contexts += [rng.choices([BOS, UNK, EOS, *vocab], k=rng.randint(0, 4)) for _ in range(60)]
    for order in range(1, 5):
        kn = model.smoothing("kn", order=order)
        for context in contexts:
            p = kn.distribution(context)
            for word in rng.sample(vocab, 8) + [EOS, UNK]:
                expected = kneser_ney_prob(model.counts, context, word, order)
                where = f"order {order}: p({word!r} | {context})"
                assert kn.prob(context, word) == pytest.approx(expected, rel=1e-12, abs=0), where
                assert p[model.counts.index[word]] == pytest.approx(expected, rel=1e-12, abs=0), where


def test_the_reference_equals_the_independent_computation():
    for sentences, trie_order in ((FULL, 3), (SPARSE, 4)):
        model = build(sentences, trie_order)
        for order in range(1, trie_order + 1):
            ref = Reference(sentences, trie_order, order)
            for context in contexts_to_check(sentences, trie_order):
                for w in ref.vocab:
                    assert kneser_ney_prob(model.counts, context, w, order) == pytest.approx(ref.prob(context, w), rel=1e-12)


# ------------------------------------------------- discounts that fall back say so
def test_discounts_that_fall_back_or_are_clamped_warn_and_are_recorded(tmp_path):
    with pytest.warns(UserWarning) as caught:
        model = build(SPARSE, 3)
    messages = [str(w.message) for w in caught if "Kneser-Ney" in str(w.message)]
    # SPARSE: continuation unigrams n1..n4 = 10, 1, 2, 0; continuation bigrams 13, 2, 0, 0;
    # real trigrams 11, 3, 0, 0 — all three orders fall back to D = Y.
    assert len(messages) == 3
    assert "order 1 (continuation counts" in messages[0] and "n4 = 0" in messages[0]
    assert "order 2 (continuation counts" in messages[1] and "n3 = 0, n4 = 0" in messages[1]
    assert "order 3 (real counts" in messages[2] and "n3 = 0, n4 = 0" in messages[2]
    recorded = model.info["kn_discount_fallbacks"]
    assert [(f["order"], f["table"], f["count_of_counts"]) for f in recorded] == [
        (1, "cont1", [10, 1, 2, 0]), (2, "cont2", [13, 2, 0, 0]), (3, "raw3", [11, 3, 0, 0])
    ]
    assert recorded[0]["discounts"] == pytest.approx([10 / 12] * 3)  # Y = 10 / (10 + 2·1)
    assert recorded[2]["discounts"] == pytest.approx([11 / 17] * 3)  # Y = 11 / (11 + 2·3)
    again = load_model(save_model(model, tmp_path / "m.json.gz"))
    assert again.info["kn_discount_fallbacks"] == recorded


def test_discounts_clamped_by_the_formulas_are_recorded_too():
    with pytest.warns(UserWarning, match=r"order 1 \(continuation counts.*D2 = -1 clamped to 0.05"):
        model = build(FULL, 3)
    assert [f["table"] for f in model.info["kn_discount_fallbacks"]] == ["cont1", "raw3"]


def test_no_warning_when_every_count_of_counts_is_there():
    many = random_text(11, sentences=2000, vocabulary=2000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = build(many, 2)
    assert model.info["kn_discount_fallbacks"] == []


def test_a_lower_order_than_the_models_says_when_its_discounts_fall_back():
    """As with the default books: words seen once become <unk>, so no unigram has count 1.

    The trigram model never discounts real unigram counts (its unigram level uses
    continuation counts), but a unigram model of the same trie does, and there n1 = 0.
    """
    sentences = random_text(11, sentences=2000, vocabulary=2000)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        model = NgramModel.from_sentences(sentences, 3, get_tokenizer("words"), min_count=2)
    assert model.statistics["raw1"][0] == 0
    assert "raw1" not in [f["table"] for f in model.info["kn_discount_fallbacks"]]
    with pytest.warns(UserWarning, match=r"order 1 \(real counts.*n1 = 0"):
        kn = model.smoothing("kn", order=1)
    assert [f["table"] for f in kn.fallbacks] == ["raw1"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the model's own order was reported at build, not again
        assert model.smoothing("kn").fallbacks == model.info["kn_discount_fallbacks"]
