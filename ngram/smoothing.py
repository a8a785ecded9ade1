"""Turning counts into probabilities: MLE, add-k, stupid backoff, interpolated modified Kneser-Ney.

Every method answers two questions about a context ``h`` (a tuple of tokens, already
mapped to the vocabulary):

- ``prob(h, w)``: the probability (or score) of the next token ``w``;
- ``distribution(h)``: a NumPy vector of it over every token that can come next (the
  vocabulary without ``<s>``), in the order of ``Counts.predictable``.

MLE, add-k and Kneser-Ney are true probability distributions: add-k and Kneser-Ney sum
to 1 over the vocabulary for every context. MLE gives unseen events probability zero.
Stupid backoff is a *score* for ranking only: it does not sum to 1, so it cannot give a
perplexity (``normalised = False``).

All of them can be used at any order up to the model's, because the trie holds every
order: ``KneserNey(counts, order=3)`` is the trigram model of the same data.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from corpora.common import UserError
from corpora.tokenizers import BOS

from .arrays import ArrayNode, ArrayTrie



#: How tables and the CLIs name each smoothing: the one label table.
SMOOTHING_LABELS = {"kn": "Kneser-Ney", "addk": "add-k", "mle": "MLE", "backoff": "stupid backoff", "arpa": "ARPA back-off"}


def smoothing_label(name: str, k: float | None = None) -> str:
    """The label of a smoothing, with add-k's k when known: "Kneser-Ney", "add-1", "add-0.5"."""
    if name == "addk" and k is not None:
        return f"add-{k:g}"
    return SMOOTHING_LABELS.get(name, name)


class Counts:
    """What every smoothing method reads: the trie's arrays, its order and the vocabulary.

    A context is a node of the trie; its children are one contiguous range of the next
    level's arrays (`ngram.arrays`), so their counts are a slice, read without copying.
    Nodes are handed out as the trie's nested-dict face (`ArrayNode`), so the methods
    below also read like the dict trie: ``node[token]``, ``node[""]``.
    """

    def __init__(self, trie: ArrayTrie, order: int, vocab: list[str], count_of_counts: dict | None = None) -> None:
        self.trie = trie
        self.root = trie.root
        self.order = order
        self.vocab = vocab
        self.count_of_counts = count_of_counts or {}
        self.predictable = [t for t in self.vocab if t != BOS]
        self.index = {t: i for i, t in enumerate(self.predictable)}
        self.bos_id = vocab.index(BOS) if BOS in vocab else len(vocab)

    def context_node(self, context: Sequence[str]) -> ArrayNode | None:
        """The trie node of `context` if it was seen and has continuations."""
        found = self.trie.find(context)
        if found is None or found[0] >= self.trie.order:
            return None
        return ArrayNode(self.trie, *found)

    def child_slice(self, node: ArrayNode, raw: bool) -> tuple[np.ndarray, np.ndarray]:
        """The token ids and counts (real, or continuation) of a node's children: views, no copy."""
        start, end = self.trie.children_range(node.depth, node.index)
        level = self.trie.levels[node.depth]
        counts = level.counts if raw or level.continuation is None else level.continuation
        return level.ids[start:end], counts[start:end]

    def counts_of(self, node: ArrayNode, token_ids: Sequence[int], raw: bool) -> list[int]:
        """c(h w) (real or continuation count) for each token id: a binary search in the children."""
        ids, counts = self.child_slice(node, raw)
        at = np.searchsorted(ids, token_ids)
        return [int(counts[i]) if i < len(ids) and ids[i] == t else 0 for i, t in zip(at.tolist(), token_ids)]

    def child_arrays(self, node: ArrayNode, raw: bool) -> tuple[np.ndarray, np.ndarray]:
        """Indices in `predictable` and counts (as floats) of a node's children with a count.

        `predictable` is the vocabulary without ``<s>``, so a token id above ``<s>``'s is
        one more than its index; ``<s>`` itself (a child of the root only) is left out.
        """
        ids, counts = self.child_slice(node, raw)
        keep = (counts > 0) & (ids != self.bos_id)
        ids = ids[keep].astype(np.int64)
        return ids - (ids > self.bos_id), counts[keep].astype(np.float64)


def child_count(counts: Counts, node: ArrayNode, token: str, raw: bool) -> int:
    """How often `token` followed the context `node`: real count, or continuation count."""
    token_id = counts.trie.token_id.get(token)
    return 0 if token_id is None else counts.counts_of(node, [token_id], raw)[0]


def usable_context(context: Sequence[str], order: int) -> tuple[str, ...]:
    """The last `order - 1` tokens of a context (all of it if shorter)."""
    return tuple(context[max(0, len(context) - (order - 1)):]) if order > 1 else ()


class Smoothing:
    """Base class for a way of turning counts into next-token probabilities."""

    name = "base"
    normalised = True

    def __init__(self, counts: Counts, order: int | None = None) -> None:
        if order is not None and not 1 <= order <= counts.order:
            raise UserError(f"order must be between 1 and {counts.order}, got {order}")
        self.counts = counts
        self.order = order or counts.order
        self._stats: dict[tuple[int, bool], tuple[float, int, int, int]] = {}

    def prob(self, context: Sequence[str], token: str) -> float:
        raise NotImplementedError

    def distribution(self, context: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def probs(self, context: Sequence[str], tokens: Sequence[str]) -> list[float]:
        """`prob` for several next tokens at once."""
        return [self.prob(context, token) for token in tokens]

    def context_stats(self, node: ArrayNode, raw: bool) -> tuple[float, int, int, int]:
        """Total count of a context's continuations, and how many occurred 1, 2, 3+ times."""
        key = (node.key, raw)
        stats = self._stats.get(key)
        if stats is None:
            if node.depth == 0:  # the unigram level: leave <s> out
                _, counts = self.counts.child_arrays(node, raw)
            else:
                _, counts = self.counts.child_slice(node, raw)
            _, n1, n2, n3 = np.bincount(np.minimum(counts.astype(np.int64), 3), minlength=4).tolist()
            stats = (float(counts.sum()), n1, n2, n3)
            if len(self._stats) > 200_000:
                self._stats.clear()
            self._stats[key] = stats
        return stats

    # ------------------------------------------------ many positions at once (scoring a text)
    def probs_many(self, history: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """p(target | history) for many positions at once (the same numbers as `prob`).

        Row i of `history` holds the token ids before `targets[i]`, right-aligned, -1
        where the text had not started: ``[[-1, -1, <s>], [-1, <s>, It], ...]``. This
        plain version asks `prob` row by row; the smoothings used for perplexity look
        every context up at once instead (`ArrayTrie.find_many`).
        """
        vocab = self.counts.vocab
        return np.array([self.prob([vocab[t] for t in row if t >= 0], vocab[target])
                         for row, target in zip(history.tolist(), targets.tolist())], dtype=np.float64)

    def contexts_many(self, history: np.ndarray, length: int) -> np.ndarray:
        """The node (index at depth `length`) of each row's last `length` tokens; -1 if unseen
        or if the row has fewer tokens."""
        if length == 0:
            return np.zeros(len(history), dtype=np.int64)
        h = history[:, history.shape[1] - length:]
        nodes = np.full(len(history), -1, dtype=np.int64)  # a row with fewer tokens is not a context of this length
        full = (h >= 0).all(axis=1)
        if length <= self.counts.trie.order - 1 and full.any():
            nodes[full] = self.counts.trie.find_many(h[full])
        return nodes

    def stats_many(self, depth: int, nodes: np.ndarray, raw: np.ndarray) -> tuple[np.ndarray, ...]:
        """`context_stats` (total, n1, n2, n3+) of each row's node; rows with node -1 get zeros."""
        out = np.zeros((len(nodes), 4))
        seen = np.flatnonzero(nodes >= 0)
        pairs = nodes[seen] * 2 + raw[seen]
        unique, inverse = np.unique(pairs, return_inverse=True)
        table = np.array([self.context_stats(ArrayNode(self.counts.trie, depth, int(u) // 2), bool(u % 2))
                          for u in unique.tolist()], dtype=np.float64).reshape(-1, 4)
        out[seen] = table[inverse]
        return out[:, 0], out[:, 1], out[:, 2], out[:, 3]

    def counts_many(self, history: np.ndarray, length: int, targets: np.ndarray, raw: np.ndarray,
                    rows: np.ndarray) -> np.ndarray:
        """c(h w) of the n-gram (last `length` tokens, target), real or continuation count, for `rows`."""
        trie = self.counts.trie
        grams = np.column_stack([history[rows, history.shape[1] - length:], targets[rows]]) if length else targets[rows, None]
        found = trie.find_many(grams)
        level = trie.levels[length]
        counts = np.zeros(len(rows))
        hit = found >= 0
        real = level.counts[found[hit]]
        kept = real if level.continuation is None else np.where(raw[rows][hit], real, level.continuation[found[hit]])
        counts[hit] = kept
        return counts

    def raw_many(self, history: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For MLE and add-k: c(h •) and c(h w) at this order's context (as `raw_context` finds it)."""
        n = len(targets)
        length = np.minimum((history >= 0).sum(axis=1), self.order - 1)
        total, count = np.zeros(n), np.zeros(n)
        always = np.ones(n, dtype=bool)
        for L in np.unique(length).tolist():
            rows = np.flatnonzero(length == L)
            nodes = self.contexts_many(history[rows], L)
            total[rows] = self.stats_many(L, nodes, always[rows])[0]
            seen = rows[nodes >= 0]
            if len(seen):
                count[seen] = self.counts_many(history, L, targets, always, seen)
        return total, count

    def raw_context(self, context: Sequence[str]) -> tuple[dict | None, float]:
        """The full-order context node (None if unseen) and its total count c(h •)."""
        node = self.counts.context_node(usable_context(context, self.order))
        if node is None:
            return None, 0.0
        return node, self.context_stats(node, raw=True)[0]


class MLE(Smoothing):
    """Maximum likelihood: p(w | h) = c(h w) / c(h •). Unseen events get probability 0."""

    name = "mle"

    def prob(self, context: Sequence[str], token: str) -> float:
        node, total = self.raw_context(context)
        if node is None or total == 0:
            return 0.0
        return child_count(self.counts, node, token, raw=True) / total

    def probs_many(self, history: np.ndarray, targets: np.ndarray) -> np.ndarray:
        total, count = self.raw_many(history, targets)
        return np.where(total > 0, count / np.where(total > 0, total, 1.0), 0.0)

    def distribution(self, context: Sequence[str]) -> np.ndarray:
        p = np.zeros(len(self.counts.predictable))
        node, total = self.raw_context(context)
        if node is not None and total > 0:
            ids, cnt = self.counts.child_arrays(node, raw=True)
            p[ids] = cnt / total
        return p


class AddK(Smoothing):
    """Add-k (Laplace when k = 1): p(w | h) = (c(h w) + k) / (c(h •) + k |V|)."""

    name = "addk"

    def __init__(self, counts: Counts, order: int | None = None, k: float = 1.0) -> None:
        super().__init__(counts, order)
        if k <= 0:
            raise UserError(f"add-k needs k > 0, got {k}")
        self.k = k

    def prob(self, context: Sequence[str], token: str) -> float:
        node, total = self.raw_context(context)
        c = child_count(self.counts, node, token, raw=True) if node is not None else 0
        return (c + self.k) / (total + self.k * len(self.counts.predictable))

    def probs_many(self, history: np.ndarray, targets: np.ndarray) -> np.ndarray:
        total, count = self.raw_many(history, targets)
        return (count + self.k) / (total + self.k * len(self.counts.predictable))

    def distribution(self, context: Sequence[str]) -> np.ndarray:
        size = len(self.counts.predictable)
        p = np.full(size, self.k)
        node, total = self.raw_context(context)
        if node is not None and total > 0:
            ids, cnt = self.counts.child_arrays(node, raw=True)
            p[ids] += cnt
        return p / (total + self.k * size)


class StupidBackoff(Smoothing):
    """Stupid backoff (Brants et al. 2007): relative frequency at the longest order where
    the token was seen, times 0.4 for every order backed off.

    A score for ranking only: it does not sum to 1 and gives no perplexity.
    """

    name = "backoff"
    normalised = False

    def __init__(self, counts: Counts, order: int | None = None, alpha: float = 0.4) -> None:
        super().__init__(counts, order)
        self.alpha = alpha

    def prob(self, context: Sequence[str], token: str) -> float:
        factor = 1.0
        for k in range(self.order, 0, -1):
            h = usable_context(context, k)
            if len(h) == k - 1:
                node = self.counts.context_node(h)
                c = child_count(self.counts, node, token, raw=True) if node is not None else 0
                if c > 0:
                    return factor * c / self.context_stats(node, raw=True)[0]
                factor *= self.alpha
        return 0.0

    def distribution(self, context: Sequence[str]) -> np.ndarray:
        scores = np.zeros(len(self.counts.predictable))
        factor = 1.0
        for k in range(self.order, 0, -1):
            h = usable_context(context, k)
            if len(h) < k - 1:  # the context is too short for this order: not a back-off step
                continue
            node = self.counts.context_node(h)
            if node is not None:
                ids, cnt = self.counts.child_arrays(node, raw=True)
                if len(cnt):
                    fresh = scores[ids] == 0
                    scores[ids[fresh]] = factor * cnt[fresh] / cnt.sum()
            factor *= self.alpha  # as in `prob`: every order backed off costs alpha, seen or not
        return scores


def discount_table(k: int, order: int) -> str:
    """The count-of-counts table that gives the discounts of level `k` in Kneser-Ney of `order`.

    The top order discounts real counts (``raw{k}``); the lower orders discount
    continuation counts (``cont{k}``), so their discounts come from those.
    """
    return f"{'raw' if k == order else 'cont'}{k}"


def _padded(count_of_counts: Sequence[int]) -> tuple[int, int, int, int]:
    """n1..n4, with zeros where a table is short or missing."""
    n1, n2, n3, n4 = (list(count_of_counts) + [0, 0, 0, 0])[:4]
    return n1, n2, n3, n4


def _chen_goodman(n1: int, n2: int, n3: int, n4: int) -> tuple[float, float, float, float]:
    """Y and the unclamped D1, D2, D3+ of Chen & Goodman (1998), eq. 26 (all n_r > 0)."""
    y = n1 / (n1 + 2 * n2)
    return y, 1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3


def kn_discounts(count_of_counts: Sequence[int]) -> tuple[float, float, float]:
    """Modified Kneser-Ney discounts D1, D2, D3+ from n1..n4 (Chen & Goodman 1998).

    Y = n1 / (n1 + 2 n2);  D1 = 1 - 2Y n2/n1;  D2 = 2 - 3Y n3/n2;  D3+ = 3 - 4Y n4/n3.
    With too little data for the formulas (some n_r is 0) every discount is Y, the
    plain absolute-discounting estimate. Each D_i stays in (0, i].
    `discount_fallback` says when either happens.
    """
    n1, n2, n3, n4 = _padded(count_of_counts)
    if min(n1, n2, n3, n4) == 0:
        y = n1 / (n1 + 2 * n2) if n1 + 2 * n2 > 0 else 0.5
        y = min(max(y, 0.1), 0.9)
        return (y, y, y)
    _, *raw = _chen_goodman(n1, n2, n3, n4)
    return tuple(min(max(d, 0.05), float(i + 1)) for i, d in enumerate(raw))  # type: ignore[return-value]


def discount_fallback(count_of_counts: Sequence[int]) -> str | None:
    """Why `kn_discounts` could not use Chen & Goodman's discounts as they are, or None.

    Either some n_r is zero (then every discount is Y), or a formula gave a discount
    outside (0, i] (then it is clamped): in both cases the user should know.
    """
    n = _padded(count_of_counts)
    zeros = [f"n{r} = 0" for r, x in enumerate(n, start=1) if x == 0]
    if zeros:
        return f"{', '.join(zeros)} (too few n-grams), so D1 = D2 = D3+ = Y"
    _, *raw = _chen_goodman(*n)
    clamped = [
        f"{name} = {d:.3g} clamped to {min(max(d, 0.05), i + 1.0):g}"
        for i, (name, d) in enumerate(zip(("D1", "D2", "D3+"), raw))
        if not 0.05 <= d <= i + 1
    ]
    return "; ".join(clamped) or None


def kn_discount_fallbacks(count_of_counts: dict, order: int) -> list[dict]:
    """Every level of Kneser-Ney at `order` whose discounts fell back or were clamped.

    One dict per such level, for the model's metadata and the build's warnings:
    ``{"order": k, "table": "cont2", "count_of_counts": [n1, n2, n3, n4], "why": ..., "discounts": [...]}``.
    """
    fallbacks = []
    for k in range(1, order + 1):
        table = discount_table(k, order)
        n = list(count_of_counts.get(table, []))
        why = discount_fallback(n)
        if why:
            fallbacks.append({"order": k, "table": table, "count_of_counts": n, "why": why, "discounts": list(kn_discounts(n))})
    return fallbacks


def describe_fallback(fallback: dict) -> str:
    """One line for a warning: which order, which counts, what was zero or clamped."""
    kind = "real" if fallback["table"].startswith("raw") else "continuation"
    discounts = ", ".join(f"{d:.3f}" for d in fallback["discounts"])
    return (
        f"Kneser-Ney discounts of order {fallback['order']} ({kind} counts, count-of-counts n1..n4 = "
        f"{fallback['count_of_counts']}): {fallback['why']}; using D1, D2, D3+ = {discounts}"
    )


class KneserNey(Smoothing):
    """Interpolated modified Kneser-Ney.

    p_k(w | h) = max(c(h w) - D(c), 0) / c(h •)  +  γ(h) · p_(k-1)(w | h without its first token)
    γ(h)      = (D1·N1(h •) + D2·N2(h •) + D3+·N3+(h •)) / c(h •)

    At the highest order c is the real count; at lower orders it is the continuation count
    (in how many different contexts the n-gram appeared), except for n-grams that start
    with ``<s>``, which have no left context and keep their real count. Below unigrams is
    the uniform distribution, so every token — ``<unk>`` too — gets some probability and
    every distribution sums to 1. A context never seen hands its whole mass down.
    """

    name = "kn"

    def __init__(self, counts: Counts, order: int | None = None) -> None:
        super().__init__(counts, order)
        tables = counts.count_of_counts
        self.discounts = {
            k: kn_discounts(tables.get(discount_table(k, self.order), []))
            for k in range(1, self.order + 1)
        }
        self.fallbacks = kn_discount_fallbacks(tables, self.order)
        if self.order != counts.order:  # the model's own order was reported when it was built
            for fallback in self.fallbacks:
                warnings.warn(describe_fallback(fallback), stacklevel=3)

    def _levels(self, context: Sequence[str]):
        """Yield (order k, context node, raw?) from unigrams up, while contexts are seen."""
        for k in range(1, self.order + 1):
            h = usable_context(context, k)
            if len(h) < k - 1:
                return
            node = self.counts.context_node(h)
            if node is None:
                return
            yield k, node, k == self.order or (len(h) > 0 and h[0] == BOS)

    def prob(self, context: Sequence[str], token: str) -> float:
        return self.probs(context, [token])[0]

    def probs(self, context: Sequence[str], tokens: Sequence[str]) -> list[float]:
        """The recursion above, from the uniform distribution up, for a few tokens at once."""
        unknown = [t for t in tokens if t not in self.counts.index]
        if unknown:
            raise KeyError(f"{unknown[0]!r} is not in the vocabulary")
        p = [1.0 / len(self.counts.predictable)] * len(tokens)
        token_ids = [self.counts.trie.token_id[t] for t in tokens]
        for k, node, raw in self._levels(context):
            total, n1, n2, n3 = self.context_stats(node, raw)
            if total == 0:
                break
            d1, d2, d3 = self.discounts[k]
            gamma = (d1 * n1 + d2 * n2 + d3 * n3) / total
            discount = (0.0, d1, d2, d3)  # by count 0, 1, 2, 3+
            counts = self.counts.counts_of(node, token_ids, raw)  # c(h w) for each token
            p = [
                (c - discount[c if c < 3 else 3]) / total + gamma * below if c else gamma * below
                for c, below in zip(counts, p)
            ]
        return p

    def probs_many(self, history: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """`probs` for many positions at once: the same recursion, each order for every row.

        A row stops climbing where `_levels` stops: at the first order whose context it
        has too few tokens for, never saw, or saw with nothing counted after it.
        """
        n = len(targets)
        p = np.full(n, 1.0 / len(self.counts.predictable))
        climbing = np.ones(n, dtype=bool)
        bos = self.counts.bos_id
        for k in range(1, self.order + 1):
            nodes = self.contexts_many(history, k - 1)
            climbing &= nodes >= 0
            starts_with_bos = history[:, history.shape[1] - (k - 1)] == bos if k > 1 else np.zeros(n, dtype=bool)
            raw = (k == self.order) | starts_with_bos
            total, n1, n2, n3 = self.stats_many(k - 1, np.where(climbing, nodes, -1), raw)
            climbing &= total > 0
            rows = np.flatnonzero(climbing)
            if not len(rows):
                break
            c = self.counts_many(history, k - 1, targets, raw, rows)
            d1, d2, d3 = self.discounts[k]
            t = total[rows]
            gamma = (d1 * n1[rows] + d2 * n2[rows] + d3 * n3[rows]) / t
            discount = np.array([0.0, d1, d2, d3])[np.minimum(c, 3).astype(np.int64)]
            below = p[rows]
            p[rows] = np.where(c > 0, (c - discount) / t + gamma * below, gamma * below)
        return p

    def distribution(self, context: Sequence[str]) -> np.ndarray:
        size = len(self.counts.predictable)
        p = np.full(size, 1.0 / size)
        for k, node, raw in self._levels(context):
            total, n1, n2, n3 = self.context_stats(node, raw)
            if total == 0:
                break
            d = np.array(self.discounts[k])
            ids, cnt = self.counts.child_arrays(node, raw)
            gamma = (d[0] * n1 + d[1] * n2 + d[2] * n3) / total
            p = gamma * p
            p[ids] += (cnt - d[np.minimum(cnt, 3).astype(np.int64) - 1]) / total
        return p


    # ------------------------------------------------ the exact top k, without the whole vocabulary
    def unigram_by_id(self) -> np.ndarray:
        """p_1 over the token ids (``<s>``: 0). It does not depend on the context: made once."""
        if getattr(self, "_unigram", None) is None:
            p = self.distribution([])  # the empty context reaches only the unigram level
            self._unigram = np.insert(p, self.counts.bos_id, 0.0)
            self._unigram_order = np.argsort(-self._unigram, kind="stable")
        return self._unigram

    def level_terms(self, context: Sequence[str]) -> list[tuple[np.ndarray, float, np.ndarray]]:
        """(α_k over the children, γ(h), the children's token ids) of orders 2..K, lowest first,
        where K is the longest context seen — the terms `probs` adds, order by order."""
        terms = []
        for k, node, raw in self._levels(context):
            if k == 1:
                continue
            total, n1, n2, n3 = self.context_stats(node, raw)
            if total == 0:
                break
            d1, d2, d3 = self.discounts[k]
            ids, counts = self.counts.child_slice(node, raw)
            counted = counts > 0
            ids, counts = ids[counted], counts[counted].astype(np.int64)
            alpha = (counts - np.array([0.0, d1, d2, d3])[np.minimum(counts, 3)]) / total
            terms.append((alpha, (d1 * n1 + d2 * n2 + d3 * n3) / total, ids))
        return terms

    def top_k(self, context: Sequence[str], k: int, exclude: Sequence[str] = ()) -> tuple[list[str], np.ndarray]:
        """The k most probable next tokens and their probabilities, exactly, best first
        (ties by token id); ``<s>`` and `exclude` are never returned.

        Unrolling the recursion, p(w | h) = G·p_1(w) + Σ_k W_k·α_k(w): α_k is the
        discounted-count term of order k (zero unless w followed that context), W_k the
        product of the γ's above order k, G the product of all of them. A word that
        followed none of the contexts scores G·p_1(w), so the best of those are simply
        the first in p_1's order. Every word that followed a longer context also followed
        its shorter suffix, so the lowest order's children hold all the others, sorted by
        id. The exact top k is the best of those two groups — no pass over the vocabulary.
        """
        unigram = self.unigram_by_id()
        trie = self.counts.trie
        never = self.never_offered(tuple(exclude))
        levels = self.level_terms(context)
        weights = [1.0] * len(levels)  # W_k
        for i in range(len(levels) - 2, -1, -1):
            weights[i] = weights[i + 1] * levels[i + 1][1]
        g = weights[0] * levels[0][1] if levels else 1.0  # G
        if levels:
            seen = levels[0][2]
            scores = g * unigram[seen] + weights[0] * levels[0][0]
            for (alpha, _, ids), w in zip(levels[1:], weights[1:]):
                scores[np.searchsorted(seen, ids)] += w * alpha
            keep = ~never[seen]
            candidates, scores = seen[keep], scores[keep]
        else:
            seen = candidates = np.empty(0, dtype=np.int64)
            scores = np.empty(0)
        others = self.best_unseen(seen, never, k)
        ids = np.concatenate([candidates, others])
        probs = np.concatenate([scores, g * unigram[others]])
        if len(ids) > 4 * k:  # keep the k best (and any ties with the k-th) before sorting them
            cut = -np.partition(-probs, k - 1)[k - 1]
            pick = probs >= cut
            ids, probs = ids[pick], probs[pick]
        best = np.lexsort((ids, -probs))[:k]
        return [trie.vocab[i] for i in ids[best].tolist()], probs[best]

    def best_unseen(self, seen: np.ndarray, never: np.ndarray, k: int) -> np.ndarray:
        """The first k token ids in p_1's order that are neither in `seen` nor never offered."""
        blocked = never.copy()
        blocked[seen] = True
        order = self._unigram_order
        found, start, step = [], 0, 2 * k + 16
        while sum(len(f) for f in found) < k and start < len(order):
            chunk = order[start:start + step]
            found.append(chunk[~blocked[chunk]])
            start, step = start + step, step * 4
        return np.concatenate(found)[:k] if found else np.empty(0, dtype=np.int64)

    def never_offered(self, exclude: tuple) -> np.ndarray:
        """A mask over token ids of what top_k never returns: <s> and `exclude` (made once per exclude)."""
        cache = self.__dict__.setdefault("_never", {})
        if exclude not in cache:
            trie = self.counts.trie
            mask = np.zeros(len(trie.vocab), dtype=bool)
            mask[[self.counts.bos_id, *(trie.token_id[t] for t in exclude if t in trie.token_id)]] = True
            cache[exclude] = mask
        return cache[exclude]

SMOOTHINGS: dict[str, type[Smoothing]] = {
    "kn": KneserNey,
    "addk": AddK,
    "mle": MLE,
    "backoff": StupidBackoff,
}


def get_smoothing(name: str, counts: Counts, order: int | None = None, **options: float) -> Smoothing:
    """A smoothing method by name: kn, addk, mle or backoff."""
    try:
        cls = SMOOTHINGS[name]
    except KeyError:
        raise UserError(f"unknown smoothing {name!r}; choose one of: {', '.join(SMOOTHINGS)}") from None
    return cls(counts, order, **options)  # type: ignore[arg-type]
