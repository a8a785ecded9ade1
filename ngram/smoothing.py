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
from dataclasses import dataclass
from bisect import bisect_left
from itertools import chain
from typing import Sequence

import numpy as np

from corpora.common import UserError
from corpora.tokenizers import BOS

from .arrays import KN_DISCOUNTS, ArrayNode, ArrayTrie, first_tokens, kn_array_name



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

    def unigram_index(self) -> np.ndarray:
        """For every token id, its entry in the unigram level (-1 if never counted), plus a last
        entry -1 so that the separator -1 of `ngram_nodes` maps to "not found". Made once."""
        if getattr(self, "_unigram_index", None) is None:
            level = self.trie.levels[0]
            index = np.full(len(self.vocab) + 1, -1, dtype=np.int64)
            index[np.asarray(level.ids, dtype=np.int64)] = np.arange(len(level.ids))
            self._unigram_index = index
            self._unigram_list = index.tolist()
        return self._unigram_index

    def find_node(self, token_ids: Sequence[int | None]) -> int | None:
        """The node index of a context of token ids (depth len(token_ids) >= 1), or None if unseen.

        `ArrayTrie.find_ids` in plain Python over the arrays, for the few lookups of one
        prediction: a table for the first token, then a binary search (`bisect`) in each
        children range — even on the longest ranges its few steps cost less than a NumPy
        call's fixed overhead (measured).
        """
        if None in token_ids or len(token_ids) > self.trie.order:
            return None
        self.unigram_index()
        node = self._unigram_list[token_ids[0]]
        if node < 0:
            return None
        levels = self.trie.levels
        for depth in range(1, len(token_ids)):
            ids, token_id = levels[depth].ids, token_ids[depth]
            start, end = levels[depth - 1].first_child[node:node + 2].tolist()
            if not 0 <= start <= end <= len(ids):
                self.trie.children_range(depth, node)  # raises the "damaged" error
            node = bisect_left(ids, token_id, start, end)
            if node == end or ids[node] != token_id:
                return None
        return node


def child_count(counts: Counts, node: ArrayNode, token: str, raw: bool) -> int:
    """How often `token` followed the context `node`: real count, or continuation count."""
    token_id = counts.trie.token_id.get(token)
    return 0 if token_id is None else counts.counts_of(node, [token_id], raw)[0]


def usable_context(context: Sequence[str], order: int) -> tuple[str, ...]:
    """The last `order - 1` tokens of a context (all of it if shorter)."""
    return tuple(context[max(0, len(context) - (order - 1)):]) if order > 1 else ()


def ngram_nodes(trie: ArrayTrie, flat: np.ndarray, longest: int, unigram_index: np.ndarray) -> list[np.ndarray]:
    """Every n-gram of a text found in the trie at once: nodes[m][s] is the index (in order m)
    of the m tokens flat[s:s+m], or -1 if that n-gram was never counted, m = 0 … `longest`.

    `flat` is token ids with -1 between sequences: an n-gram across one is never found.
    An m-gram is its (m-1)-gram prefix plus one token: for the starts whose prefix was
    found, the token is looked up among the prefix's children, all starts at once
    (`find_children`). nodes[0] is the root (0) everywhere.
    """
    n = len(flat)
    nodes = [np.zeros(n, dtype=np.int64), unigram_index[flat]]
    for m in range(2, min(longest, trie.order) + 1):
        found = np.full(n, -1, dtype=np.int64)
        starts = np.flatnonzero(nodes[m - 1][: max(n - m + 1, 0)] >= 0)
        token = flat[starts + m - 1]
        starts, token = starts[token >= 0], token[token >= 0]
        found[starts] = find_children(trie, m - 1, nodes[m - 1][starts], token)
        nodes.append(found)
    return nodes


def find_children(trie: ArrayTrie, depth: int, parents: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """For each (parent node of `depth` >= 1 tokens, token id), the child's index in the next
    level, or -1: a binary search in each parent's children range, all rows at once.

    Where parents have many children on average (the bigrams), one NumPy search over the
    level's sorted keys (`ArrayTrie.level_keys`, made once), with the rows sorted first so
    the search sweeps the keys in order (about five times faster than in text order).
    Where ranges are short (the longer n-grams), every row's range is halved in step
    until each is empty — a few rounds, and no key array over a big level to make.
    """
    ids = trie.levels[depth].ids
    first = trie.levels[depth - 1].first_child
    if len(parents) == 0 or len(ids) == 0:
        return np.full(len(parents), -1, dtype=np.int64)
    if len(ids) > 8 * len(first):  # long ranges: the sorted keys
        keys = trie.level_keys(depth + 1)
        wanted = parents * len(trie.vocab) + tokens
        by_key = np.argsort(wanted)
        at = np.empty(len(wanted), dtype=np.int64)
        at[by_key] = np.minimum(np.searchsorted(keys, wanted[by_key]), len(keys) - 1)
        return np.where(keys[at] == wanted, at, -1)
    lo, end = first[parents].astype(np.int64), first[parents + 1].astype(np.int64)
    if lo.min() < 0 or end.max() > len(ids) or np.any(lo > end):
        bad = np.flatnonzero((lo < 0) | (end > len(ids)) | (lo > end))[0]
        trie.children_range(depth, int(parents[bad]))  # raises the "damaged" error
    hi, tokens = end.copy(), tokens.astype(ids.dtype)
    active = np.flatnonzero(lo < hi)
    while len(active):  # lower bound: the first child whose id is not below the token
        low, high = lo[active], hi[active]
        mid = (low + high) >> 1
        right = ids[mid] < tokens[active]
        low, high = np.where(right, mid + 1, low), np.where(right, high, mid)
        lo[active], hi[active] = low, high
        active = active[low < high]
    hit = (lo < end) & (ids[np.minimum(lo, len(ids) - 1)] == tokens)
    return np.where(hit, lo, -1)


def rows_as_sequences(history: np.ndarray, targets: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """`probs_many`'s rows (history right-aligned, -1 before the text starts) as one flat
    sequence of ids with -1 after every row, and where each row's target sits in it."""
    n = len(targets)
    window = np.full((n, width + 2), -1, dtype=np.int64)
    kept = min(width, history.shape[1])
    if kept:
        window[:, width - kept:width] = history[:, history.shape[1] - kept:]
    window[:, width] = targets
    return window.ravel(), np.arange(n, dtype=np.int64) * (width + 2) + width


def sequences_flat(sequences: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Id sequences as one flat array with -1 after each, and the positions to score: every
    position but each sequence's first (the ``<s>`` every sequence starts with)."""
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    tokens = np.fromiter(chain.from_iterable(sequences), dtype=np.int64, count=int(lengths.sum()))
    flat = np.full(len(tokens) + len(sequences), -1, dtype=np.int64)
    flat[np.arange(len(tokens)) + np.repeat(np.arange(len(sequences)), lengths)] = tokens  # one -1 after each
    starts = np.cumsum(lengths + 1) - (lengths + 1)
    scored = np.ones(len(flat), dtype=bool)
    scored[starts] = False
    scored[flat < 0] = False
    return flat, np.flatnonzero(scored)


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
        every n-gram up at once instead (`probs_flat`, `ngram_nodes`).
        """
        vocab = self.counts.vocab
        return np.array([self.prob([vocab[t] for t in row if t >= 0], vocab[target])
                         for row, target in zip(history.tolist(), targets.tolist())], dtype=np.float64)

    def probs_flat(self, flat: np.ndarray, at: np.ndarray, nodes: list[np.ndarray] | None = None) -> np.ndarray:
        """p(flat[i] | the tokens before it back to the last -1) for each position i in `at`
        (`sequences_flat` makes them); `nodes` (from `ngram_nodes`) is for Kneser-Ney's."""
        width = self.order - 1
        history = np.full((len(at), width), -1, dtype=np.int64)
        inside = np.ones(len(at), dtype=bool)
        for j in range(1, width + 1):  # column width - j holds the token j places back, until a -1
            back = at - j
            inside &= back >= 0
            token = np.where(inside, flat[np.maximum(back, 0)], -1)
            inside &= token >= 0
            history[inside, width - j] = token[inside]
        return self.probs_many(history, flat[at])

    def raw_totals(self, depth: int) -> np.ndarray:
        """c(h •) in real counts of every context node of `depth` tokens (the root: ``<s>`` left
        out), as `context_stats` gives it: one vectorised pass per depth, made on first use."""
        made = self.counts.__dict__.setdefault("_raw_totals", {})  # shared by every smoothing of these counts
        if depth not in made:
            trie = self.counts.trie
            counts = np.asarray(trie.levels[depth].counts, dtype=np.int64)
            if depth == 0:
                counts = np.where(np.asarray(trie.levels[0].ids) == self.counts.bos_id, 0, counts)
            bounds = [0, len(counts)] if depth == 0 else trie.levels[depth - 1].first_child
            made[depth] = segment_sums(counts, bounds)
        return made[depth]

    def raw_flat(self, flat: np.ndarray, at: np.ndarray, nodes: list[np.ndarray] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """For MLE and add-k: c(h •) and c(h w) in real counts at each position's context of this
        order — its last order - 1 tokens, or all of them where the sequence so far is shorter,
        as `raw_context` reads it — with every n-gram looked up at once (`ngram_nodes`)."""
        trie = self.counts.trie
        nodes = nodes if nodes is not None else ngram_nodes(trie, flat, self.order, self.counts.unigram_index())
        last_separator = np.maximum.accumulate(np.where(flat < 0, np.arange(len(flat)), -1))
        length = np.minimum(at - last_separator[at] - 1, self.order - 1)  # tokens of context used
        total, count = np.zeros(len(at)), np.zeros(len(at))
        for L in range(self.order):
            rows = np.flatnonzero(length == L)
            start = at[rows] - L
            context = nodes[L][start]
            rows, start, context = rows[context >= 0], start[context >= 0], context[context >= 0]
            total[rows] = self.raw_totals(L)[context]
            gram = nodes[L + 1][start]
            count[rows[gram >= 0]] = trie.levels[L].counts[gram[gram >= 0]]
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
        return self.probs_flat(*rows_as_sequences(history, targets, self.order - 1))

    def probs_flat(self, flat: np.ndarray, at: np.ndarray, nodes: list[np.ndarray] | None = None) -> np.ndarray:
        total, count = self.raw_flat(flat, at, nodes)
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
        return self.probs_flat(*rows_as_sequences(history, targets, self.order - 1))

    def probs_flat(self, flat: np.ndarray, at: np.ndarray, nodes: list[np.ndarray] | None = None) -> np.ndarray:
        total, count = self.raw_flat(flat, at, nodes)
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


# ---------------------------------------------------------------- Kneser-Ney's per-context tables
# γ(h) and c(h •) depend only on the context h, so they are computed once for every context
# node of every order, in a few vectorised passes, and saved beside the trie's arrays
# (`kn{d}.total`, `kn{d}.gamma` for contexts of d tokens, `kn.discounts`): scoring and the
# top k then gather them instead of counting a node's children at every call.


def kn_child_counts(trie: ArrayTrie, depth: int, order: int, bos_id: int, firsts: list[np.ndarray]) -> np.ndarray:
    """The count Kneser-Ney of `order` reads for each n-gram of order depth+1 as a continuation of
    its context: real at the top order or after a context starting with ``<s>``, else the
    continuation count; ``<s>`` as a next token (a root child) counts 0."""
    level = trie.levels[depth]
    if depth + 1 == order or level.continuation is None:
        counts = level.counts
    elif depth == 0:
        counts = level.continuation
    else:
        counts = np.where(firsts[depth] == bos_id, level.counts, level.continuation)
    if depth == 0:
        counts = np.where(np.asarray(level.ids) == bos_id, 0, counts)
    return counts


def segment_sums(values: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Sum of values[bounds[i]:bounds[i+1]] for every i, exactly, in 8-byte integers (empty
    ranges: 0). The ranges tile `values` in order (a level's children ranges), so one
    `np.add.reduceat` over the starts of the non-empty ones sums them all, with no
    temporary array as long as `values`."""
    bounds = np.asarray(bounds, dtype=np.int64)
    starts, ends = bounds[:-1], bounds[1:]
    sums = np.zeros(len(starts), dtype=np.int64)
    filled = ends > starts
    if filled.any():
        sums[filled] = np.add.reduceat(values, starts[filled], dtype=np.int64)
    return sums


def kn_context_tables(trie: ArrayTrie, order: int, discounts: dict, bos_id: int) -> dict[str, np.ndarray]:
    """c(h •) and γ(h) of every context node of Kneser-Ney at `order`, as named arrays.

    ``kn{d}.total[i]`` and ``kn{d}.gamma[i]`` belong to the i-th node of d tokens (d = 0: the
    root, one entry); ``kn.discounts`` holds the D1, D2, D3+ of orders 1..order they were made
    with, so a reader can check they still apply. γ is computed with exactly the operations of
    `KneserNey.context_gamma` (a node without counted continuations gets 0: nothing reads it).
    """
    firsts = first_tokens(trie)
    tables = {KN_DISCOUNTS: np.array([discounts[k] for k in range(1, order + 1)], dtype=np.float64).ravel()}
    for depth in range(order):
        counts = kn_child_counts(trie, depth, order, bos_id, firsts)
        bounds = [0, len(counts)] if depth == 0 else trie.levels[depth - 1].first_child
        total = segment_sums(counts, bounds)
        n1, n2, n3 = (segment_sums(counts == r if r < 3 else counts >= 3, bounds) for r in (1, 2, 3))
        d1, d2, d3 = discounts[depth + 1]
        seen = total > 0
        gamma = np.zeros(len(total))
        gamma[seen] = (d1 * n1[seen] + d2 * n2[seen] + d3 * n3[seen]) / total[seen].astype(np.float64)
        tables[kn_array_name(depth, "total")] = total
        tables[kn_array_name(depth, "gamma")] = gamma
    return tables


def stored_tables_fit(tables: dict, trie: ArrayTrie, order: int, discounts: dict) -> bool:
    """Whether saved Kneser-Ney tables were made for this order and these discounts (else: recompute)."""
    stored = tables.get(KN_DISCOUNTS)
    if stored is None or len(stored) != 3 * order:
        return False
    if stored.tolist() != [d for k in range(1, order + 1) for d in discounts[k]]:
        return False
    sizes = [1] + [len(trie.levels[d - 1].ids) for d in range(1, order)]
    return all(kn_array_name(d, name) in tables and len(tables[kn_array_name(d, name)]) == sizes[d]
               for d in range(order) for name in ("total", "gamma"))


def attach_kn_tables(trie: ArrayTrie, count_of_counts: dict, bos_id: int) -> None:
    """Compute the Kneser-Ney tables of the trie's own order and keep them on it, to be saved
    with it (`ngram build` calls this once; a model saved without them computes them on first use)."""
    discounts = {k: kn_discounts(count_of_counts.get(discount_table(k, trie.order), [])) for k in range(1, trie.order + 1)}
    trie.kn_tables = kn_context_tables(trie, trie.order, discounts, bos_id)


class KneserNey(Smoothing):
    """Interpolated modified Kneser-Ney.

    p_k(w | h) = max(c(h w) - D(c), 0) / c(h •)  +  γ(h) · p_(k-1)(w | h without its first token)
    γ(h)      = (D1·N1(h •) + D2·N2(h •) + D3+·N3+(h •)) / c(h •)

    At the highest order c is the real count; at lower orders it is the continuation count
    (in how many different contexts the n-gram appeared), except for n-grams that start
    with ``<s>``, which have no left context and keep their real count. Below unigrams is
    the uniform distribution, so every token — ``<unk>`` too — gets some probability and
    every distribution sums to 1. A context never seen hands its whole mass down.

    c(h •) and γ(h) of every context come from `tables` (made at build time and saved with
    the model; `ngram.kneser_ney_reference` is the formula computed as it reads).
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
        self._tables: list[tuple[np.ndarray, np.ndarray]] | None = None

    def tables(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(c(h •), γ(h)) over the context nodes of 0, 1, …, order-1 tokens.

        The model's saved tables when they were made for this order and these discounts;
        otherwise (a lower order, or a model saved before the tables existed) they are
        computed here once, in memory: a second or two for the default 5-gram.
        """
        if self._tables is None:
            trie = self.counts.trie
            named = trie.kn_tables
            if not stored_tables_fit(named, trie, self.order, self.discounts):
                named = kn_context_tables(trie, self.order, self.discounts, self.counts.bos_id)
                if self.order == trie.order:  # kept on the trie: saving the model again saves them too
                    trie.kn_tables = named
            self._tables = [(named[kn_array_name(d, "total")], named[kn_array_name(d, "gamma")])
                            for d in range(self.order)]
        return self._tables

    # ------------------------------------------------ one context: the recursion, bottom up
    def context_chain(self, context: Sequence[str]) -> list[tuple[int, int, bool]]:
        """(d, node, raw?) for every context the recursion climbs through, from the root up:
        the last d tokens of `context`, d = 0, 1, …, stopping at the first one that is too
        short, was never seen, or was seen with nothing counted after it.

        raw says whether that level reads real counts (the top order, or a context starting
        with ``<s>``) or continuation counts.
        """
        h = usable_context(context, self.order)
        token_ids = [self.counts.trie.token_id.get(t) for t in h]
        totals = self.tables()
        chain = []
        for d in range(len(h) + 1):
            node = 0 if d == 0 else self.counts.find_node(token_ids[len(h) - d:])
            if node is None or totals[d][0][node] == 0:
                break
            chain.append((d, node, d + 1 == self.order or (d > 0 and h[len(h) - d] == BOS)))
        return chain

    def level_stats(self, d: int, node: int) -> tuple[float, float]:
        """c(h •) and γ(h) of context node `node` of d tokens, as Python floats."""
        total, gamma = self.tables()[d]
        return float(total[node]), float(gamma[node])

    def prob(self, context: Sequence[str], token: str) -> float:
        return self.probs(context, [token])[0]

    def probs(self, context: Sequence[str], tokens: Sequence[str]) -> list[float]:
        """The recursion above, from the uniform distribution up, for a few tokens at once."""
        unknown = [t for t in tokens if t not in self.counts.index]
        if unknown:
            raise KeyError(f"{unknown[0]!r} is not in the vocabulary")
        p = [1.0 / len(self.counts.predictable)] * len(tokens)
        token_ids = [self.counts.trie.token_id[t] for t in tokens]
        for d, node, raw in self.context_chain(context):
            total, gamma = self.level_stats(d, node)
            d1, d2, d3 = self.discounts[d + 1]
            discount = (0.0, d1, d2, d3)  # by count 0, 1, 2, 3+
            counts = self.counts.counts_of(ArrayNode(self.counts.trie, d, node), token_ids, raw)  # c(h w)
            p = [
                (c - discount[c if c < 3 else 3]) / total + gamma * below if c else gamma * below
                for c, below in zip(counts, p)
            ]
        return p

    def distribution(self, context: Sequence[str]) -> np.ndarray:
        size = len(self.counts.predictable)
        p = np.full(size, 1.0 / size)
        for d, node, raw in self.context_chain(context):
            total, gamma = self.level_stats(d, node)
            discount = np.array(self.discounts[d + 1])
            ids, cnt = self.counts.child_arrays(ArrayNode(self.counts.trie, d, node), raw)
            p = gamma * p
            p[ids] += (cnt - discount[np.minimum(cnt, 3).astype(np.int64) - 1]) / total
        return p

    # ------------------------------------------------ many positions at once (scoring a text)
    def probs_many(self, history: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """`probs` for many positions at once: each row made a short sequence of its own."""
        flat, at = rows_as_sequences(history, targets, self.order - 1)
        return self.probs_flat(flat, at)

    def probs_flat(self, flat: np.ndarray, at: np.ndarray, nodes: list[np.ndarray] | None = None) -> np.ndarray:
        """p(flat[i] | the tokens before it back to the last -1) for each i in `at`: the
        recursion of `probs`, one order at a time for every position, with no Python loop
        over positions or contexts.

        `ngram_nodes` finds every n-gram of the text in the trie once; the context of d
        tokens before position i is then the d-gram starting at i - d, and c(h w) the count
        of the (d+1)-gram starting there. c(h •) and γ(h) are gathered from `tables`. A
        position stops climbing where `context_chain` stops: at the first context it has
        too few tokens for, never saw, or saw with nothing counted after it.
        """
        trie = self.counts.trie
        nodes = nodes if nodes is not None else ngram_nodes(trie, flat, self.order, self.counts.unigram_index())
        p = np.full(len(at), 1.0 / len(self.counts.predictable))
        rows = np.arange(len(at))  # the positions still climbing
        for d, (totals, gammas) in enumerate(self.tables()):
            start = at[rows] - d
            context = nodes[d][np.maximum(start, 0)]
            total = totals[np.maximum(context, 0)]
            keep = (start >= 0) & (context >= 0) & (total > 0)  # enough tokens, seen, something counted after
            rows, start, context, total = rows[keep], start[keep], context[keep], total[keep]
            if not len(rows):
                break
            raw = d + 1 == self.order or (d > 0 and flat[start] == self.counts.bos_id)
            c = self.ngram_counts(d, nodes[d + 1][start], raw)
            d1, d2, d3 = self.discounts[d + 1]
            t = total.astype(np.float64)
            gamma = gammas[context]
            discount = np.array([0.0, d1, d2, d3])[np.minimum(c, 3).astype(np.int64)]
            below = p[rows]
            p[rows] = np.where(c > 0, (c - discount) / t + gamma * below, gamma * below)
        return p

    def ngram_counts(self, d: int, found: np.ndarray, raw: np.ndarray | bool) -> np.ndarray:
        """c(h w) as floats for (d+1)-grams at indices `found` of their level (-1: never seen, 0)."""
        level = self.counts.trie.levels[d]
        c = np.zeros(len(found))
        hit = np.flatnonzero(found >= 0)
        if level.continuation is None or raw is True:
            c[hit] = level.counts[found[hit]]
            return c
        real = hit[raw[hit]] if raw is not False else hit[:0]
        c[real] = level.counts[found[real]]
        cont = hit[~raw[hit]] if raw is not False else hit
        c[cont] = level.continuation[found[cont]]
        return c


    # ------------------------------------------------ the exact top k, without the whole vocabulary
    #: A context with at most this many followers has them all scored exactly; longer lists are
    #: read best first (`ranked_followers`), only as far as the threshold test needs.
    SMALL = 64

    def unigram_by_id(self) -> np.ndarray:
        """p_1 over the token ids (``<s>``: 0). It does not depend on the context: made once."""
        if getattr(self, "_unigram", None) is None:
            p = self.distribution([])  # the empty context reaches only the unigram level
            self._unigram = np.insert(p, self.counts.bos_id, 0.0)
            # in the trie's id dtype: NumPy would convert a whole follower list to search it otherwise
            self._unigram_order = np.argsort(-self._unigram, kind="stable").astype(self.counts.trie.levels[0].ids.dtype)
        return self._unigram

    def level_terms(self, context: Sequence[str]) -> list[Followers]:
        """The followers of each context of orders 2..K, lowest first, where K is the longest
        context seen — the terms `probs` adds, order by order (views: nothing is copied)."""
        terms = []
        levels = self.counts.trie.levels
        for d, index, raw in self.context_chain(context):
            if d > 0:
                total, gamma = self.level_stats(d, index)
                level = levels[d]
                start, end = levels[d - 1].first_child[index:index + 2].tolist()
                if not 0 <= start <= end <= len(level.ids):
                    self.counts.trie.children_range(d, index)  # raises the "damaged" error
                counts = level.counts if raw or level.continuation is None else level.continuation
                terms.append(Followers(d, index, level.ids[start:end], counts[start:end], total, gamma,
                                       self.discount_array(d + 1)))
        return terms

    def discount_array(self, k: int) -> np.ndarray:
        """D(c) of order k by count c = 0, 1, 2, 3+, as an array to index (made once)."""
        made = self.__dict__.setdefault("_discount_arrays", {})
        if k not in made:
            made[k] = np.array([0.0, *self.discounts[k]])
        return made[k]

    def top_k(self, context: Sequence[str], k: int, exclude: Sequence[str] = ()) -> tuple[list[str], np.ndarray]:
        """The k most probable next tokens and their probabilities, exactly, best first
        (ties by token id); ``<s>`` and `exclude` are never returned.

        Unrolling the recursion, p(w | h) = G·p_1(w) + Σ_k W_k·α_k(w): α_k is the
        discounted-count term of order k (zero unless w followed that context), W_k the
        product of the γ's above order k, G the product of all of them. Every word that
        followed a longer context also followed its shorter suffixes, so the followers
        shrink as k grows: from the first order with few followers up, every follower is
        scored. Any other word w gets only the terms of the orders below, whose follower
        lists are long; those are read best first, beside p_1's order, until the k-th best
        score found beats what any unread word could still reach (`threshold_search`,
        Fagin's threshold algorithm). No pass over the vocabulary or a long list; the
        reference is ranking `distribution`. (Not for use from several threads at once: a
        scratch mask is marked and cleared.)
        """
        if k <= 0:
            return [], np.empty(0)
        self.unigram_by_id()
        levels = self.level_terms(context)
        weights = [1.0] * len(levels)  # W_k
        for i in range(len(levels) - 2, -1, -1):
            weights[i] = weights[i + 1] * levels[i + 1].gamma
        g = weights[0] * levels[0].gamma if levels else 1.0  # G
        long = next((i for i, level in enumerate(levels) if len(level.ids) <= self.SMALL), len(levels))
        first = levels[long].ids if long < len(levels) else self._unigram_order[:0]
        ids, scores = self.threshold_search(levels, weights, g, long, first, k, tuple(exclude))
        best = np.lexsort((ids, -scores))[:k]
        return [self.counts.trie.vocab[i] for i in ids[best].tolist()], scores[best]

    def threshold_search(self, levels: list[Followers], weights: list[float], g: float, long: int,
                         first: np.ndarray, k: int, exclude: tuple = ()) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and their exact p(w | h), among them the k most probable (`exclude` and
        ``<s>`` left out): `first` (the followers of the first short list) and the best of
        the rest.

        The rest get only the terms of the `long` lowest orders, so p_1's order and those
        orders' follower lists are read best first, in growing blocks, every new word scored
        in full (all orders, lowest first, as `probs` adds them); reading stops when the k-th
        best found is above the threshold: G times the next p_1, plus each W_k times the most
        α_k an unread follower can have.
        """
        unigram, order = self._unigram, self._unigram_order
        ranked = [self.ranked_followers(level) for level in levels[:long]]
        never = self.never_offered(exclude)
        scratch = self.__dict__.setdefault("_blocked", {})
        if exclude not in scratch:
            scratch[exclude] = never.copy()
        blocked = scratch[exclude]
        rounds: list[tuple[np.ndarray, np.ndarray]] = []  # (ids, scores); the ids are marked in `blocked`
        start, size = 0, k + 4  # the first blocks: enough for the k best in most contexts (measured)
        try:
            while True:
                end = start + size
                fresh = []
                for block in ((first,) if start == 0 else ()) + (order[start:end], *(r[0][start:end] for r in ranked)):
                    fresh.append(block[~blocked[block]])  # a list holds each id once; earlier lists block theirs
                    blocked[fresh[-1]] = True
                candidates = np.concatenate(fresh)
                scores = g * unigram[candidates]
                rounds.append((candidates, scores))
                for level, w in zip(levels, weights):
                    level.add_terms(candidates, w, scores)
                threshold = g * unigram[order[end]] if end < len(order) else 0.0
                for (ids, counts), level, w in zip(ranked, levels, weights):
                    if end < len(ids):
                        threshold += w * self.alpha_bound(level, int(counts[end]))
                if len(rounds) > 1:
                    candidates, scores = np.concatenate([r[0] for r in rounds]), np.concatenate([r[1] for r in rounds])
                if threshold == 0.0 or (len(scores) >= k and np.partition(scores, len(scores) - k)[len(scores) - k] > threshold):
                    return candidates, scores
                start, size = end, size * 4
        finally:
            for marked, _ in rounds:
                blocked[marked] = never[marked]

    def alpha_bound(self, level: Followers, count: int) -> float:
        """The largest α a follower with count at most `count` can have at this level:
        max over 1 <= c <= count of (c - D(c)) / c(h •) (D need not make it grow with c)."""
        _, d1, d2, d3 = level.discount.tolist()
        return max([1 - d1] + ([2 - d2] if count >= 2 else []) + ([count - d3] if count >= 3 else [])) / level.total

    def ranked_followers(self, level: Followers) -> tuple[np.ndarray, np.ndarray]:
        """A long follower list's ids and counts, highest count first (ties by id).

        Sorted on first use and kept (for up to 4,096 contexts): long lists belong to
        frequent contexts, which come back often.
        """
        cache = self.__dict__.setdefault("_ranked", {})
        key = (level.depth, level.index)
        if key not in cache:
            if len(cache) >= 4096:
                cache.clear()
            by_count = np.argsort(-level.counts, kind="stable")
            cache[key] = (level.ids[by_count], level.counts[by_count])
        return cache[key]

    def never_offered(self, exclude: tuple) -> np.ndarray:
        """A mask over token ids of what top_k never returns: <s> and `exclude` (made once per exclude)."""
        cache = self.__dict__.setdefault("_never", {})
        if exclude not in cache:
            trie = self.counts.trie
            mask = np.zeros(len(trie.vocab), dtype=bool)
            mask[[self.counts.bos_id, *(trie.token_id[t] for t in exclude if t in trie.token_id)]] = True
            cache[exclude] = mask
        return cache[exclude]


@dataclass
class Followers:
    """What followed one context of `KneserNey.top_k`: the node (d tokens, index), the
    followers' token ids (sorted) and the counts Kneser-Ney reads, c(h •), γ(h), and the
    discounts by count 0, 1, 2, 3+."""

    depth: int
    index: int
    ids: np.ndarray
    counts: np.ndarray
    total: float
    gamma: float
    discount: np.ndarray  # D(c) by count c = 0, 1, 2, 3+

    def alpha(self, at: slice | np.ndarray) -> np.ndarray:
        """α(w) = (c - D(c)) / c(h •) of the followers at `at` (0 where c = 0)."""
        counts = self.counts[at]
        return (counts - self.discount[np.minimum(counts, 3)]) / self.total

    def add_terms(self, ids: np.ndarray, weight: float, scores: np.ndarray) -> None:
        """scores[i] += weight · α(ids[i]) for the ids that followed this context."""
        if not len(self.ids):
            return
        at = self.ids.searchsorted(ids)  # a handful of NumPy calls, whatever the lengths: no compress
        counts = np.where(self.ids.take(at, mode="clip") == ids, self.counts.take(at, mode="clip"), 0)
        scores += weight * ((counts - self.discount[np.minimum(counts, 3)]) / self.total)


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
