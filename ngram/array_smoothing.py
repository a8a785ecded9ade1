"""Interpolated modified Kneser-Ney over the array trie: the same probabilities, as array operations.

The formula is `ngram.smoothing.KneserNey`'s (and Chen & Goodman's):

    p_k(w | h) = max(c(h w) - D(c), 0) / c(h •)  +  γ(h) · p_(k-1)(w | h')
    γ(h)      = (D1·N1(h •) + D2·N2(h •) + D3+·N3+(h •)) / c(h •)

What changes is where the numbers come from. A context's children are one contiguous
range of the next level's arrays, so their counts are a slice, and the per-context
totals c(h •), N1, N2, N3+ are two NumPy calls over that slice (`slice_stats`) — exact,
and nothing to store. Two more things make a prediction cheap:

- the unigram level p_1 does not depend on the context: it is one vector, computed once,
  with its tokens sorted by probability;
- unrolling the recursion, p(w | h) = G·p_1(w) + Σ_k W_k·α_k(w), where α_k(w) is the
  discounted-count term at order k (zero unless w followed that context), W_k the
  product of the γ's above order k, and G the product of all of them. A word that
  followed none of the contexts scores G·p_1(w), so the best of those are simply the
  first ones in p_1's order. The exact top k is the best of the few words that did
  follow a context and those first few — no pass over the whole vocabulary.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .arrays import ArrayTrie


def slice_stats(counts: np.ndarray) -> tuple[float, int, int, int]:
    """c(h •) and how many of a context's children occurred 1, 2 and 3+ times.

    Zero counts (continuation counts of n-grams that start with <s>) add nothing.
    """
    n0, n1, n2, n3 = np.bincount(np.minimum(counts, 3), minlength=4).tolist()
    return float(counts.sum()), n1, n2, n3


class ArrayKneserNey:
    """Kneser-Ney probabilities of an `ArrayTrie`, at any order up to the trie's.

    `discounts[k]` = (D1, D2, D3+) for order k, as `ngram.smoothing.KneserNey` computes
    them from the count-of-counts; `bos_id` is the id of ``<s>``, which is never predicted.
    """

    @classmethod
    def of(cls, trie: ArrayTrie, bos_id: int, order: int | None = None) -> "ArrayKneserNey":
        """Kneser-Ney with the discounts of the trie's own count-of-counts (as `KneserNey` makes them)."""
        from .smoothing import discount_table, kn_discounts

        order = order or trie.order
        stats = trie.count_statistics(bos_id)
        discounts = {k: kn_discounts(stats.get(discount_table(k, order), [])) for k in range(1, order + 1)}
        return cls(trie, discounts, bos_id, order)

    def __init__(self, trie: ArrayTrie, discounts: dict[int, tuple[float, float, float]], bos_id: int,
                 order: int | None = None) -> None:
        self.trie = trie
        self.order = order or trie.order
        self.discounts = {k: np.array(discounts[k], dtype=np.float64) for k in range(1, self.order + 1)}
        self.bos_id = bos_id
        self.vocab_size = len(trie.vocab)
        self.unigram = self.unigram_distribution()
        self.unigram_order = np.argsort(-self.unigram, kind="stable")

    # ---------------------------------------------------------------- counts
    def child_counts(self, k: int, raw: bool) -> np.ndarray:
        """Level k's counts: real ones, or continuation counts (the top order has only real ones)."""
        level = self.trie.levels[k - 1]
        return level.counts if raw or level.continuation is None else level.continuation

    def uses_raw_counts(self, k: int, context: Sequence[int]) -> bool:
        """Real counts at the model's top order and for contexts that start with <s>; else continuation counts."""
        return k == self.order or (len(context) > 0 and context[0] == self.bos_id)

    # ---------------------------------------------------------------- levels
    def unigram_distribution(self) -> np.ndarray:
        """p_1 over the whole vocabulary (ids), <s> 0: the uniform distribution below, interpolated once."""
        size = self.vocab_size - 1  # every token but <s>
        p = np.full(self.vocab_size, 1.0 / size)
        p[self.bos_id] = 0.0
        alpha, gamma, ids = self.level_terms(1, 0, raw=self.order == 1)
        if gamma is None:
            return p
        p *= gamma
        p[ids] += alpha
        p[self.bos_id] = 0.0
        return p

    def level_terms(self, k: int, context_index: int, raw: bool) -> tuple[np.ndarray, float | None, np.ndarray]:
        """(α_k over the children, γ(h), the children's ids) for one context node at depth k-1.

        γ is None when the context has no counted children (it then hands down all its mass).
        """
        start, end = self.trie.children_range(k - 1, context_index)
        counts = self.child_counts(k, raw)[start:end]
        ids = self.trie.levels[k - 1].ids[start:end]
        if k == 1:
            keep = ids != self.bos_id  # <s> is never a next token
            counts, ids = counts[keep], ids[keep]
        total, n1, n2, n3 = slice_stats(counts)
        if total == 0:
            return np.empty(0), None, np.empty(0, dtype=np.int64)
        d = self.discounts[k]
        gamma = (d[0] * n1 + d[1] * n2 + d[2] * n3) / total
        if n1 + n2 + n3 < len(counts):
            counted = counts > 0
            counts, ids = counts[counted], ids[counted]
        alpha = (counts - d[np.minimum(counts, 3) - 1]) / total
        return alpha, float(gamma), ids

    def context_levels(self, context: Sequence[int]) -> list[tuple[np.ndarray, float, np.ndarray]]:
        """The (α, γ, ids) of orders 2..K, where K is the longest context seen (lowest order first)."""
        terms = []
        for k in range(2, self.order + 1):
            h = tuple(context[len(context) - (k - 1):])
            if len(h) < k - 1:
                break
            found = self.trie.find_ids(h)
            if found is None:
                break
            alpha, gamma, ids = self.level_terms(k, found[1], self.uses_raw_counts(k, h))
            if gamma is None:
                break
            terms.append((alpha, gamma, ids))
        return terms

    # ---------------------------------------------------------------- answers
    def distribution(self, context: Sequence[int]) -> np.ndarray:
        """p(w | context) for every token id (<s>: 0): the recursion, one order at a time."""
        p = self.unigram.copy()
        for alpha, gamma, ids in self.context_levels(context):
            p *= gamma
            p[ids] += alpha
        return p

    def probability(self, context: Sequence[int], token_id: int) -> float:
        """p(token | context), without building the whole distribution."""
        p = float(self.unigram[token_id])
        for alpha, gamma, ids in self.context_levels(context):
            at = np.flatnonzero(ids == token_id)
            p = gamma * p + (float(alpha[at[0]]) if len(at) else 0.0)
        return p

    def top_k(self, context: Sequence[int], k: int, exclude: Sequence[int] = ()) -> tuple[np.ndarray, np.ndarray]:
        """The k most probable token ids and their probabilities, exactly, best first.

        Words that followed one of the contexts are scored exactly; every other word
        scores G·p_1(w), so the best of them are the first in p_1's order (see the
        module docstring). Ties are broken by token id. `exclude` (and <s>) are never returned.

        Every word that followed a longer context also followed its shorter suffix (each
        occurrence of "h w" is one of "h' w"), so the lowest order's children hold all
        the candidates, sorted by id: the higher orders' terms are added at their positions.
        """
        levels = self.context_levels(context)
        never = self.never_offered(tuple(exclude))
        weights = [1.0] * len(levels)  # W_k: the product of the γ's above each order
        for i in range(len(levels) - 2, -1, -1):
            weights[i] = weights[i + 1] * levels[i + 1][1]
        g = weights[0] * levels[0][1] if levels else 1.0  # G: every γ
        if levels:
            seen = levels[0][2]
            scores = g * self.unigram[seen] + weights[0] * levels[0][0]
            for (alpha, _, ids), w in zip(levels[1:], weights[1:]):
                scores[np.searchsorted(seen, ids)] += w * alpha
            keep = ~never[seen]
            candidates, scores = seen[keep], scores[keep]
        else:
            seen = candidates = np.empty(0, dtype=np.int64)
            scores = np.empty(0)
        # the best words that followed no context: the first in p_1's order not seen, not excluded
        head = self.unigram_order[: k + len(seen) + int(never.sum())]
        at = np.minimum(np.searchsorted(seen, head), max(len(seen) - 1, 0))
        unseen = seen[at] != head if len(seen) else np.ones(len(head), dtype=bool)
        others = head[unseen & ~never[head]][:k]
        ids = np.concatenate([candidates, others])
        probs = np.concatenate([scores, g * self.unigram[others]])
        if len(ids) > 4 * k:  # keep the k best before sorting them
            part = np.argpartition(-probs, k)[: k + 1]
            cut = probs[part].min()
            pick = probs >= cut
            ids, probs = ids[pick], probs[pick]
        best = np.lexsort((ids, -probs))[:k]
        return ids[best], probs[best]

    def never_offered(self, exclude: tuple) -> np.ndarray:
        """A mask of the ids top_k never returns: <s> and `exclude` (cached per exclude)."""
        cache = self.__dict__.setdefault("_never", {})
        if exclude not in cache:
            mask = np.zeros(self.vocab_size, dtype=bool)
            mask[[self.bos_id, *exclude]] = True
            cache[exclude] = mask
        return cache[exclude]
