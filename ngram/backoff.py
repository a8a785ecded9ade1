"""Back-off models read from ARPA files: stored log10 probabilities instead of counts.

An ARPA file (KenLM's ``lmplz``, SRILM, Kaldi write them; see `ngram.arpa`) lists every
n-gram with log10 p(w | h) and, for n-grams that are also contexts, a log10 back-off
weight bo(h). It holds no counts, so none of the count-based smoothings apply; the model
is the back-off rule itself:

    p(w | h) = p_listed(h w)                   if "h w" is listed
             = bo(h) · p(w | h without its first token)    otherwise (bo(h) = 1 if h is not listed)

`arpa_to_trie` reads the file into the same CSR trie as a counted model (`ngram.arrays`),
each n-gram carrying ``logprob`` and ``backoff`` instead of counts (which read 0), so the
model folder loads memory-mapped like any other. `ArpaBackoff` is the smoothing method
over it: `reference_log10` is the rule above, one token at a time, the readable
reference; `ArpaBackoff.distribution` and `ArpaBackoff.probs_many` are the same rule for
the whole vocabulary, or a whole text, at once (a test checks they agree).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from corpora.common import UserError
from corpora.tokenizers import BOS, EOS, UNK, Tokenizer

from .arpa import ArpaReader
from .arrays import ARPA_KIND, COUNT_DTYPE, ID_DTYPE, INDEX_DTYPE, PROB_DTYPE, ArrayTrie, Level
from .smoothing import Counts, Smoothing, usable_context

if TYPE_CHECKING:
    from .model import NgramModel

#: What KenLM gives <unk> when an ARPA file does not list it (log10 p).
MISSING_UNK_LOG10 = -100.0

#: The one line shown where a count-based feature meets an imported model.
NO_COUNTS = ("this model was imported from an ARPA file: it holds log10 probabilities and back-off "
             "weights, not counts (every count reads 0)")


def is_arpa_model(model: "NgramModel") -> bool:
    """Whether `model` holds ARPA back-off probabilities (not counts)."""
    return getattr(model.trie, "kind", None) == ARPA_KIND


# ---------------------------------------------------------------------- reading an ARPA file


class OrderRows:
    """The n-grams of one order as they are read: token ids, log10 p, back-off and line numbers,
    kept as a list of NumPy chunks (a few bytes an n-gram, never a tuple each)."""

    def __init__(self, order: int) -> None:
        self.order = order
        self.chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, ids: Sequence[int], logp: np.ndarray, backoff: np.ndarray, lines: Sequence[int]) -> None:
        """A batch: `ids` flat (order ids a row), and one value of the others a row."""
        self.chunks.append((np.asarray(ids, dtype=np.int32), np.asarray(logp, dtype=np.float64),
                            np.asarray(backoff, dtype=np.float64), np.asarray(lines, dtype=np.int64)))

    def column(self, i: int, dtype) -> np.ndarray:
        return np.concatenate([c[i] for c in self.chunks]) if self.chunks else np.zeros(0, dtype=dtype)

    def grams(self) -> np.ndarray:
        """The n-grams as an (n, order) array of token ids."""
        return self.column(0, np.int32).reshape(-1, self.order).astype(np.int64)

    @property
    def logp(self) -> np.ndarray:
        return self.column(1, np.float64)

    @property
    def backoff(self) -> np.ndarray:
        return self.column(2, np.float64)

    @property
    def lines(self) -> np.ndarray:
        return self.column(3, np.int64)


def read_rows(reader: ArpaReader, bar=None) -> tuple[list[str], list[OrderRows]]:
    """Every n-gram of the file as token ids: the vocabulary (the 1-grams, in file order) and per order the rows.

    A word of a longer n-gram that is not among the 1-grams is refused with its line.
    """
    vocab: list[str] = []
    token_id: dict[str, int] = {}
    orders: list[OrderRows] = []
    for batch in reader.batches():
        k = batch.order
        while len(orders) < k:
            orders.append(OrderRows(len(orders) + 1))
        if k == 1:
            ids = [add_word(vocab, token_id, fields[1], reader.path, number)
                   for number, fields in zip(batch.numbers, batch.fields)]
        else:
            try:
                ids = [token_id[w] for fields in batch.fields for w in fields[1:k + 1]]
            except KeyError:
                ids = []
                unknown_word(batch, token_id, reader.path)
        orders[k - 1].add(ids, batch.logp, batch.backoff, batch.numbers)
        if bar is not None:
            bar.update(len(batch.numbers))
    while len(orders) < max(reader.declared, default=0):
        orders.append(OrderRows(len(orders) + 1))
    return vocab, orders


def add_word(vocab: list[str], token_id: dict[str, int], word: str, path: Path, number: int) -> int:
    """A 1-gram's word into the vocabulary; its id. Listed twice, or holding a NUL: refused."""
    if "\x00" in word:  # the vocabulary is saved NUL-separated (`ngram.arrays.encode_vocab`)
        raise UserError(f"{path}, line {number}: a word holds a NUL character")
    if word in token_id:
        raise UserError(f"{path}, line {number}: the 1-gram {word!r} is listed twice")
    token_id[word] = len(vocab)
    vocab.append(word)
    return token_id[word]


def unknown_word(batch, token_id: dict[str, int], path: Path) -> None:
    """Name the first line of `batch` holding a word that is not among the 1-grams (raises)."""
    k = batch.order
    for number, fields in zip(batch.numbers, batch.fields):
        for word in fields[1:k + 1]:
            if word not in token_id:
                raise UserError(f"{path}, line {number}: the word {word!r} of the {k}-gram "
                                f"{' '.join(fields[1:k + 1])!r} is not among the 1-grams")


def check_specials(path: Path, vocab: list[str], orders: list[OrderRows]) -> None:
    """<s> and </s> must be 1-grams (every sentence starts and ends with them); a missing
    <unk> is added with log10 p = -100, as KenLM does, so unknown words score (badly) instead of failing."""
    if not orders or not vocab:
        raise UserError(f"{path}: the ARPA file lists no 1-grams")
    missing = [t for t in (BOS, EOS) if t not in vocab]
    if missing:
        raise UserError(f"{path}: the 1-grams do not include {' and '.join(missing)}; an ARPA model needs "
                        "both sentence markers")
    if UNK not in vocab:
        vocab.append(UNK)
        orders[0].add([len(vocab) - 1], [MISSING_UNK_LOG10], [0.0], [0])


def lookup(keys: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The index of each wanted key in the sorted `keys`, or -1 where it is not there."""
    if len(keys) == 0:
        return np.full(len(wanted), -1, dtype=np.int64)
    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return np.where(keys[at] == wanted, at, -1)


def arpa_to_trie(path: str | os.PathLike, bar=None) -> ArrayTrie:
    """The ARPA file as an `ArrayTrie` of kind "arpa-backoff": per order, ids sorted by (context, token),
    children ranges, and the stored log10 p and back-off of each n-gram (counts 0).

    Every n-gram's context (its first n-1 words) must be listed one order below, as
    KenLM requires (lmplz writes them so); one that is not is refused with its line.
    """
    reader = ArpaReader(path)
    vocab, orders = read_rows(reader, bar)
    check_specials(reader.path, vocab, orders)
    size = len(vocab)
    levels: list[Level] = []
    keys: list[np.ndarray] = []  # per order: sorted (context index × |V| + token id), as ArrayTrie.level_keys
    for rows in orders:
        k = rows.order
        grams, lines = rows.grams(), rows.lines
        parent = context_indices(grams, keys, size)
        missing = np.flatnonzero(parent < 0)
        if len(missing):
            i = int(missing[0])
            words = [vocab[t] for t in grams[i].tolist()]
            raise UserError(f"{reader.path}, line {lines[i]}: the {k}-gram {' '.join(words)!r} has no "
                            f"entry for its context {' '.join(words[:-1])!r}; an ARPA model must list every "
                            f"n-gram's first {k - 1} word{'s' if k > 2 else ''} as a {k - 1}-gram")
        key = parent * size + grams[:, -1]
        by_key = np.argsort(key, kind="stable")
        key = key[by_key]
        twice = np.flatnonzero(key[1:] == key[:-1])
        if len(twice):
            i = int(by_key[twice[0] + 1])
            words = " ".join(vocab[t] for t in grams[i].tolist())
            raise UserError(f"{reader.path}, line {lines[i]}: the {k}-gram {words!r} is listed twice")
        if levels:
            levels[-1].first_child = np.searchsorted(parent[by_key], np.arange(len(levels[-1].ids) + 1)).astype(INDEX_DTYPE)
        n = len(key)
        levels.append(Level(
            ids=grams[by_key, -1].astype(ID_DTYPE),
            counts=np.zeros(n, dtype=COUNT_DTYPE),
            continuation=np.zeros(n, dtype=COUNT_DTYPE),
            logprob=rows.logp[by_key].astype(PROB_DTYPE),
            backoff=rows.backoff[by_key].astype(PROB_DTYPE),
        ))
        keys.append(key)
    top = levels[-1]
    top.continuation = top.backoff = None  # the top order is nobody's context
    return ArrayTrie(vocab, levels, total=0, root_continuation=0, kind=ARPA_KIND)


def context_indices(grams: np.ndarray, keys: list[np.ndarray], size: int) -> np.ndarray:
    """For each n-gram (a row of ids), the index of its context (all but the last id) one order
    below, or -1 if that context is not listed; 0 for 1-grams (the root)."""
    index = np.zeros(len(grams), dtype=np.int64)
    for j in range(grams.shape[1] - 1):
        wanted = grams[:, j] if j == 0 else index * size + grams[:, j]
        found = lookup(keys[j], np.where(index >= 0, wanted, -1))
        index = np.where(index >= 0, found, -1)
    return index


def import_arpa(path: str | os.PathLike, tokenizer: Tokenizer, bar=None) -> "NgramModel":
    """An `NgramModel` over the ARPA file's probabilities; `tokenizer` reads the text given to it
    (an ARPA file does not say how its words were made: they must be this tokenizer's tokens)."""
    from .model import NgramModel  # model imports this module's scorer lazily; no cycle at import

    trie = arpa_to_trie(path, bar)
    sizes = [len(level.ids) for level in trie.levels]
    info = {"source": "arpa", "arpa_file": str(Path(path)), "training_tokens": 0}
    return NgramModel(trie, trie.order, tokenizer, trie.vocab, corpus={}, info=info, statistics={"ngrams": sizes})


# ---------------------------------------------------------------------- scoring


def logprob_at(trie: ArrayTrie, depth: int, index: int) -> float:
    """log10 p stored for the n-gram at (depth, index)."""
    return float(trie.levels[depth - 1].logprob[index])


def backoff_at(trie: ArrayTrie, depth: int, index: int) -> float:
    """log10 back-off weight stored for the context at (depth, index) (0 at the top order)."""
    backoff = trie.levels[depth - 1].backoff
    return 0.0 if backoff is None else float(backoff[index])


def reference_log10(trie: ArrayTrie, context: Sequence[str], token: str) -> float:
    """log10 p(token | context) by the back-off rule, exactly as written in the module docstring.

    The readable reference: one lookup per order, longest context first. `context`
    is at most order - 1 tokens of the vocabulary; every token is a 1-gram, so the
    recursion always ends.
    """
    listed = trie.find([*context, token])
    if listed is not None:
        return logprob_at(trie, *listed)
    node = trie.find(context) if context else None
    bo = backoff_at(trie, *node) if node is not None else 0.0
    return bo + reference_log10(trie, context[1:], token)


def arpa_smoothing(counts: Counts, name: str, order: int | None = None, **options: float) -> "ArpaBackoff":
    """The smoothing method of an imported model: its own back-off probabilities.

    ``kn`` (every command's default) and ``arpa`` both name them (an ARPA file from
    lmplz is Kneser-Ney); add-k, MLE and stupid backoff need counts, which it has not.
    """
    if name not in ("kn", "arpa") or options:
        raise UserError(f"{NO_COUNTS}; {name} smoothing needs counts: use its own probabilities "
                        "(--smoothing kn, the default)")
    return ArpaBackoff(counts, order)


class ArpaBackoff(Smoothing):
    """p(w | h) from an ARPA model's stored log10 probabilities and back-off weights."""

    name = "arpa"

    def __init__(self, counts: Counts, order: int | None = None) -> None:
        super().__init__(counts, order)
        trie = counts.trie
        if trie.kind != ARPA_KIND:
            raise UserError("ARPA back-off scoring needs a model imported with `ngram build --from-arpa`")
        self.unigram_log10 = np.full(len(trie.vocab), -np.inf)
        self.unigram_log10[trie.levels[0].ids] = trie.levels[0].logprob

    def context(self, context: Sequence[str]) -> list[str]:
        """The last order - 1 tokens, each checked to be in the vocabulary."""
        h = list(usable_context(context, self.order))
        unknown = [t for t in h if t not in self.counts.trie.token_id]
        if unknown:
            raise KeyError(f"{unknown[0]!r} is not in the vocabulary")
        return h

    def log10_prob(self, context: Sequence[str], token: str) -> float:
        """log10 p(token | context): `reference_log10` over the usable context."""
        if token not in self.counts.trie.token_id:
            raise KeyError(f"{token!r} is not in the vocabulary")
        return reference_log10(self.counts.trie, self.context(context), token)

    def prob(self, context: Sequence[str], token: str) -> float:
        return 10.0 ** self.log10_prob(context, token)

    def log10_distribution(self, context: Sequence[str]) -> np.ndarray:
        """log10 p(w | context) for every token id at once.

        Start from the 1-gram log10 p; then for each longer suffix of the context, from
        the shortest: if it is listed, add its back-off weight to every token, and put
        back the stored value of the tokens listed after it. After the suffix of length
        L the vector is p(• | that suffix), by the back-off rule.
        """
        trie = self.counts.trie
        logp = self.unigram_log10.copy()
        h = [trie.token_id[t] for t in self.context(context)]
        for length in range(1, len(h) + 1):
            found = trie.find_ids(h[len(h) - length:])
            if found is None:
                continue  # not listed: bo = 1 and no children, p(• | suffix) = p(• | shorter suffix)
            depth, index = found
            logp += backoff_at(trie, depth, index)
            start, end = trie.children_range(depth, index)
            level = trie.levels[depth]
            logp[level.ids[start:end]] = level.logprob[start:end]
        return logp

    def distribution(self, context: Sequence[str]) -> np.ndarray:
        return np.delete(10.0 ** self.log10_distribution(context), self.counts.bos_id)

    def distribution_reference(self, context: Sequence[str]) -> np.ndarray:
        """`distribution`, one `reference_log10` per token: slow, for the test that they agree."""
        return np.array([self.prob(context, w) for w in self.counts.predictable])

    def log10_many(self, history: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """log10 p(target | history) for many positions (rows as `Smoothing.probs_many` takes them).

        The back-off rule for every row at once, longest context first: rows whose
        n-gram is listed take its value plus the back-offs gathered so far; the others
        add their context's back-off weight (if listed) and go one order down. Every
        token is a 1-gram, so every row is done at the bottom.
        """
        trie = self.counts.trie
        width = history.shape[1]
        result = np.zeros(len(targets))
        gathered = np.zeros(len(targets))
        open_rows = np.ones(len(targets), dtype=bool)
        for length in range(min(self.order - 1, width), -1, -1):
            h = history[:, width - length:]
            rows = np.flatnonzero(open_rows & (h >= 0).all(axis=1))
            if not len(rows):
                continue
            found = trie.find_many(np.column_stack([h[rows], targets[rows]]))
            hit = found >= 0
            result[rows[hit]] = gathered[rows[hit]] + trie.levels[length].logprob[found[hit]]
            open_rows[rows[hit]] = False
            missed = rows[~hit]
            if length and len(missed):
                node = trie.find_many(h[missed])
                listed = node >= 0
                gathered[missed[listed]] += trie.levels[length - 1].backoff[node[listed]]
        return result

    def probs_many(self, history: np.ndarray, targets: np.ndarray) -> np.ndarray:
        return 10.0 ** self.log10_many(history, targets)


def per_token_log10(model: "NgramModel", sentences: Iterable[Sequence[str]]) -> list[tuple[str, float]]:
    """(token, log10 p) for every token of tokenized `sentences` as the model scores them —
    each in <s> … </s>, unknown words as <unk> — the list KenLM's ``query`` prints, to compare the two."""
    method = model.smoothing("kn")
    out = []
    for sentence in sentences:
        mapped = [BOS, *model.to_vocab(sentence), EOS]
        for i in range(1, len(mapped)):
            out.append((mapped[i], math.log10(method.prob(mapped[max(0, i - model.order + 1):i], mapped[i]))))
    return out
