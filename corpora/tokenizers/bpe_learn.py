"""Learning a byte-level BPE tokenizer from text, the way GPT-2's was made:
count adjacent pairs of symbols, merge the most frequent, repeat.

Two learners that learn exactly the same merges (a test checks it):

- `learn_bpe_reference`: the textbook loop (minbpe's shape): `get_stats` counts every
  adjacent pair from scratch, `merge` replaces the most frequent one, and so on for
  vocab_size - 257 merges. Easy to read, slow: every merge rereads all the text.
- `learn_bpe`: the same, fast: it counts each distinct word once (weighted by how often
  it occurs) and, after a merge, updates only the counts of the words that held the pair.
"""
from __future__ import annotations

import heapq
import sys
from collections import Counter
from typing import Iterable

from ..common import UserError
from .bpe import _SPLIT_RE, BPETokenizer, bytes_to_unicode, merge
from .special import ENDOFTEXT


# ---------------------------------------------------------------------------
# The textbook loop
# ---------------------------------------------------------------------------


def get_stats(ids: list[int], counts: dict[tuple[int, int], int] | None = None) -> dict[tuple[int, int], int]:
    """Count every adjacent pair of ids (added to `counts` when given, to sum over chunks).

    Example: get_stats([1, 2, 3, 1, 2]) == {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    """
    counts = {} if counts is None else counts
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def most_frequent_pair(counts: dict[tuple[int, int], int]) -> tuple[int, int]:
    """The pair with the highest count; among equals the one with the smallest ids
    (the left id first), as `learn_bpe` does, so that learning never depends on dict order.

    Example: most_frequent_pair({(5, 1): 3, (2, 9): 3, (1, 1): 2}) == (2, 9)
    """
    return min(counts, key=lambda pair: (-counts[pair], pair))


def learn_bpe_reference(texts: Iterable[str], vocab_size: int) -> BPETokenizer:
    """Learn the same tokenizer as `learn_bpe`, by the textbook loop (slow; for tests and reading).

    Every text is cut into chunks by GPT-2's regex (merges never cross a chunk) and each
    chunk becomes its UTF-8 bytes as ids 0..255 in GPT-2's order. Then, until the
    vocabulary holds vocab_size - 1 tokens: count all pairs, merge the most frequent
    everywhere. Two different pairs can spell the same token (e.g. 'a'+'bc' and 'ab'+'c');
    the second merge then reuses the first one's id. `<|endoftext|>` is the last id.
    """
    if vocab_size < 257:
        raise UserError(f"vocab size must be at least 257 (256 bytes + {ENDOFTEXT}), got {vocab_size}")
    id_of_byte = {byte: i for i, byte in enumerate(bytes_to_unicode())}
    chunks = [[id_of_byte[b] for b in chunk.encode("utf-8")] for text in texts for chunk in _SPLIT_RE.findall(text)]
    if not chunks:
        raise UserError("no text to learn from (the texts are empty)")
    symbols = list(bytes_to_unicode().values())  # id -> the token's GPT-2 symbols
    merges: list[tuple[str, str]] = []
    while len(symbols) < vocab_size - 1:
        counts: dict[tuple[int, int], int] = {}
        for chunk in chunks:
            get_stats(chunk, counts)
        if not counts:
            raise UserError(
                f"vocab size {vocab_size} is too large for this text: only {len(merges)} merges were possible "
                f"(at most vocab size {len(symbols) + 1})"
            )
        left, right = most_frequent_pair(counts)
        token = symbols[left] + symbols[right]
        if token not in symbols:
            symbols.append(token)
        chunks = [merge(chunk, (left, right), symbols.index(token)) for chunk in chunks]
        merges.append((symbols[left], symbols[right]))
    vocab = {token: i for i, token in enumerate(symbols)}
    vocab[ENDOFTEXT] = len(symbols)
    return BPETokenizer(vocab, merges)


# ---------------------------------------------------------------------------
# The fast learner
# ---------------------------------------------------------------------------


def count_words(texts: Iterable[str], progress: bool = False) -> Counter[str]:
    """How often each pre-tokenised piece occurs in `texts` (BPE learns from these counts)."""
    from tqdm import tqdm

    counts: Counter[str] = Counter()
    for text in tqdm(texts, desc="counting words", unit=" texts", disable=not progress, file=sys.stderr):
        counts.update(_SPLIT_RE.findall(text))
    return counts


def learn_bpe(
    texts: Iterable[str],
    vocab_size: int,
    verbose: bool = False,
    progress: bool = True,
) -> BPETokenizer:
    """Learn a GPT-2-style byte-level BPE tokenizer with `vocab_size` tokens from `texts`.

    The recipe:

    1. Cut every text into pieces with GPT-2's regex and count each distinct piece.
    2. Start every piece as its UTF-8 bytes.  The first 256 ids are the single
       bytes, in `bytes_to_unicode` order, exactly as in GPT-2 (id 0 is "!").
    3. Count every adjacent pair of tokens, weighted by how often its piece occurs.
    4. Merge the most frequent pair into a new token; ties go to the pair with the
       smaller ids, so learning is deterministic.  Update the pair counts of just
       the pieces that contained the pair, and repeat until the vocabulary is full.
    5. Add `<|endoftext|>` as the last id.

    `verbose` prints the first merges readably, e.g.
    `merge 1: 'Ġ' + 't' -> 'Ġt' (count 123456)` (Ġ is the space).
    `progress` shows a progress bar on stderr.
    """
    if vocab_size < 257:
        raise UserError(f"vocab size must be at least 257 (256 bytes + {ENDOFTEXT}), got {vocab_size}")
    word_counts = count_words(texts, progress=progress)
    if not word_counts:
        raise UserError("no text to learn from (the texts are empty)")

    byte_order = list(bytes_to_unicode())  # id → byte
    id_of_byte = bytes(byte_order.index(b) for b in range(256))  # byte → id, as a translate table
    symbols: list[str] = list(bytes_to_unicode().values())  # id → symbol string
    vocab: dict[str, int] = {s: i for i, s in enumerate(symbols)}

    state = _PairCounts(
        [list(word.encode("utf-8").translate(id_of_byte)) for word in word_counts],
        list(word_counts.values()),
    )

    merges: list[tuple[str, str]] = []
    wanted_tokens = vocab_size - 1  # the last id is <|endoftext|>
    from tqdm import tqdm

    with tqdm(total=wanted_tokens - 256, desc="learning merges", unit=" merges", disable=not progress,
              file=sys.stderr) as bar:
        while len(vocab) < wanted_tokens:
            best = state.most_frequent()
            if best is None:
                raise UserError(
                    f"vocab size {vocab_size} is too large for this text: only {len(merges)} merges were possible "
                    f"(at most vocab size {len(vocab) + 1})"
                )
            (left, right), count = best
            merged = symbols[left] + symbols[right]
            if merged not in vocab:  # two different pairs can spell the same token
                vocab[merged] = len(symbols)
                symbols.append(merged)
                bar.update(1)
            state.merge((left, right), vocab[merged])
            merges.append((symbols[left], symbols[right]))
            if verbose and len(merges) <= 20:
                print(f"merge {len(merges)}: {symbols[left]!r} + {symbols[right]!r} -> {merged!r} (count {count})")
    if verbose and len(merges) > 20:
        print(f"... {len(merges)} merges in all; the last: {merges[-1][0]!r} + {merges[-1][1]!r}")

    vocab[ENDOFTEXT] = len(symbols)
    return BPETokenizer(vocab, merges)


class _PairCounts:
    """Pair counts over distinct words, kept up to date merge after merge.

    `words[w]` is word w as a list of token ids and `freqs[w]` how often it occurs.
    `counts[pair]` is how often `pair` occurs side by side, summed over all words;
    `where[pair]` is the set of words that (may) contain it.  A heap holds
    (-count, pair) entries, so the top is the most frequent pair and, among equals,
    the one with the smallest ids.  When a count changes a fresh entry is pushed;
    out-of-date entries are dropped when they reach the top.
    """

    def __init__(self, words: list[list[int]], freqs: list[int]) -> None:
        self.words = words
        self.freqs = freqs
        self.counts: dict[tuple[int, int], int] = {}
        self.where: dict[tuple[int, int], set[int]] = {}
        for w, (word, freq) in enumerate(zip(words, freqs)):
            for pair in zip(word, word[1:]):
                self.counts[pair] = self.counts.get(pair, 0) + freq
                self.where.setdefault(pair, set()).add(w)
        self.heap = [(-count, pair) for pair, count in self.counts.items()]
        heapq.heapify(self.heap)

    def most_frequent(self) -> tuple[tuple[int, int], int] | None:
        """The most frequent pair and its count (smallest ids on ties), or None if none is left."""
        while self.heap:
            negative_count, pair = self.heap[0]
            if self.counts.get(pair) == -negative_count:
                return pair, -negative_count
            heapq.heappop(self.heap)  # out of date
        return None

    def merge(self, pair: tuple[int, int], new_id: int) -> None:
        """Join `pair` into `new_id` in every word that holds it; update the counts."""
        delta: dict[tuple[int, int], int] = {}
        for w in self.where.pop(pair, ()):
            word = self.words[w]
            new_word = merge(word, pair, new_id)
            if len(new_word) == len(word):
                continue  # this word no longer holds the pair
            freq = self.freqs[w]
            for old in zip(word, word[1:]):
                delta[old] = delta.get(old, 0) - freq
            for new in zip(new_word, new_word[1:]):
                delta[new] = delta.get(new, 0) + freq
                self.where.setdefault(new, set()).add(w)
            self.words[w] = new_word
        for changed, change in delta.items():
            if change == 0:
                continue
            count = self.counts.get(changed, 0) + change
            if count > 0:
                self.counts[changed] = count
                heapq.heappush(self.heap, (-count, changed))
            else:
                self.counts.pop(changed, None)
                self.where.pop(changed, None)
