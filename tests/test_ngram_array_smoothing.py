"""Kneser-Ney over the array trie: its exact top k, its discounts, and scoring many positions at once."""
from __future__ import annotations

import numpy as np
import pytest

from corpora.tokenizers import BOS, EOS, UNK
from ngram import NgramModel, counting
from ngram.arrays import ArrayTrie

TEXT = """It was the best of times, it was the worst of times, it was the age of wisdom.
I want to be a sailor. I want to know the sea. I want to be free, and I want to see it.
The night was dark and stormy. It was a dark and stormy night; the rain fell in torrents.
She said that it was the best of all possible worlds, and he said it was not."""


@pytest.fixture(scope="module")
def models():
    from corpora.tokenizers import get_tokenizer

    tokenizer = get_tokenizer("words")
    sentences = list(tokenizer.sentences(TEXT))
    model = NgramModel.from_sentences(sentences, order=4, tokenizer=tokenizer, min_count=1)
    ids = {t: i for i, t in enumerate(model.vocab)}
    encoded = [[ids[BOS], *[ids[t] for t in s], ids[EOS]] for s in sentences]
    rows, levels = counting.count_levels(encoded, 4, len(model.vocab))
    return model, ArrayTrie.from_counting(rows, levels, model.vocab), ids


def contexts(model, rng, n=60):
    """Seen and unseen contexts of every length, <s> at the start included."""
    words = [w for w in model.vocab if w != BOS]
    out = [[BOS], [], ["It", "was", "the"], [BOS, "I", "want"], ["want", "to", "be"], ["the", "sea", "."]]
    for _ in range(n):
        out.append(list(rng.choice(words, size=rng.integers(1, 5))))
    return out


@pytest.mark.parametrize("order", [1, 2, 4])
def test_top_k_is_exact(models, order):
    """top_k (the unrolled sum, no pass over the vocabulary) equals ranking the whole distribution."""
    model, trie, ids = models
    kn = model.smoothing("kn", order=order)
    rng = np.random.default_rng(10 + order)
    predictable = [ids[t] for t in kn.counts.predictable]
    for context in contexts(model, rng):
        full = np.full(len(model.vocab), -1.0)
        full[predictable] = kn.distribution(context)
        full[[ids[EOS], ids[UNK]]] = -1
        for k in (1, 3, 10, 40):
            top, probs = kn.top_k(context, k, exclude=[EOS, UNK])
            ranked = np.lexsort((np.arange(len(full)), -full))[:k]
            assert [ids[t] for t in top] == ranked.tolist()
            np.testing.assert_allclose(probs, full[ranked], rtol=1e-12)
            assert np.all(np.diff(probs) <= 0)


def test_count_statistics_from_the_arrays_equal_the_dict_tries(models):
    model, trie, ids = models
    assert trie.count_statistics(ids[BOS]) == counting.build_trie(
        [[ids[BOS], *[ids[t] for t in s], ids[EOS]] for s in model.tokenizer.sentences(TEXT)],
        model.vocab, 4, ids[BOS])[1]


@pytest.mark.parametrize("name, order", [("kn", 4), ("kn", 2), ("kn", 1), ("mle", 4), ("mle", 2), ("addk", 3)])
def test_many_positions_at_once_equal_one_at_a_time(models, name, order):
    """probs_many (scoring a text) gives exactly what prob gives, position by position."""
    from ngram.score import positions

    model, trie, ids = models
    method = model.smoothing(name, order=order)
    rng = np.random.default_rng(order)
    words = [w for w in model.vocab if w != BOS]
    sequences = [[ids[BOS], *[ids[w] for w in rng.choice(words, size=rng.integers(1, 9))], ids[EOS]] for _ in range(40)]
    sequences += [[ids[BOS], *[ids[t] for t in s], ids[EOS]] for s in model.tokenizer.sentences(TEXT)]
    history, targets = positions(sequences, order - 1)
    expected = [method.prob([model.vocab[t] for t in row if t >= 0], model.vocab[target])
                for row, target in zip(history.tolist(), targets.tolist())]
    assert method.probs_many(history, targets).tolist() == expected  # bit for bit


def test_positions_rows():
    from ngram.score import positions

    history, targets = positions([[0, 5, 6, 1], [0, 7, 1]], 2)
    assert history.tolist() == [[-1, 0], [0, 5], [5, 6], [-1, 0], [0, 7]]
    assert targets.tolist() == [5, 6, 1, 7, 1]
