"""Interpolated modified Kneser-Ney as the formula reads: the slow reference for `KneserNey`.

    p(w | h) = max(c(h w) - D(c(h w)), 0) / c(h •)  +  γ(h) · p(w | h')
    γ(h)     = (D1·N1(h •) + D2·N2(h •) + D3+·N3+(h •)) / c(h •)
    p(w | no context at all) = 1 / |V|

h' is h without its first token. This is nltk's ``InterpolatedLanguageModel.unmasked_score``
(``alpha + gamma * lower``), one token and one level at a time, reading the trie
directly. ``ngram.smoothing.KneserNey`` computes the same numbers bottom-up, with c(h •)
and γ(h) of every context made once at build time (`kn_context_tables`), for a whole
vocabulary, a whole text (`probs_flat`) or the top k (`top_k`) at once;
``tests/test_kneser_ney.py`` and ``tests/test_ngram_fast_kn.py`` check that they agree to
1e-12 at every order.

Which counts c are (Chen & Goodman 1998): at the top order the real counts; below it the
continuation counts (how many distinct tokens came before ``h w``), except for n-grams
that start with ``<s>``, which have no left neighbour and keep their real count.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Sequence

from corpora.tokenizers import BOS

from .smoothing import Counts, discount_table, kn_discounts
from .trie import children, continuation_of, count_of, find


def kneser_ney_prob(counts: Counts, context: Sequence[str], word: str, order: int | None = None) -> float:
    """p(word | context) under interpolated modified Kneser-Ney of `order` (default: the trie's)."""
    order = order or counts.order
    h = tuple(context)[-(order - 1):] if order > 1 else ()  # at most order - 1 tokens
    return interpolated(counts, order, h, word)


def interpolated(counts: Counts, order: int, h: tuple[str, ...] | None, word: str) -> float:
    """p(word | h): the discounted count of `h word`, plus γ(h) times the lower-order p.

    `h` None is the level below unigrams: the uniform distribution.
    """
    if h is None:
        return 1.0 / len(counts.predictable)
    lower = interpolated(counts, order, h[1:] if h else None, word)
    followers = counts_after(counts, h, real=len(h) + 1 == order or h[:1] == (BOS,))
    total = sum(followers.values())
    if total == 0:  # h was never seen (or nothing followed it): all its mass goes lower
        return lower
    d = discount_of(counts, order, len(h) + 1)
    alpha = max(followers.get(word, 0) - d(followers.get(word, 0)), 0) / total
    gamma = sum(d(c) for c in followers.values()) / total
    return alpha + gamma * lower


def counts_after(counts: Counts, h: tuple[str, ...], real: bool) -> dict[str, int]:
    """Each token that followed `h` (never ``<s>``) with c(h token): real or continuation count."""
    node = find(counts.root, h)
    if not isinstance(node, Mapping):  # never seen, or a leaf (nothing follows it)
        return {}
    found = {t: count_of(child) if real else continuation_of(child) for t, child in children(node) if t != BOS}
    return {t: c for t, c in found.items() if c > 0}


def discount_of(counts: Counts, order: int, k: int):
    """The discount D(c) of level `k`: 0 for c = 0, then D1, D2, D3+ from the count-of-counts."""
    d1, d2, d3 = kn_discounts(counts.count_of_counts.get(discount_table(k, order), []))
    return lambda c: (0.0, d1, d2, d3)[min(c, 3)]
