"""Building a model's counts: options check, tokenizing, vocabulary, counting.

`NgramModel.build` and `NgramModel.from_sentences` are thin faces over these functions.
Progress bars (tqdm) are imported only when a build shows one.
"""
from __future__ import annotations

import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from corpora import Corpus, UserError, load_corpus
from corpora.tokenizers import BOS, EOS, UNK, Tokenizer

from . import counting
from .arrays import ArrayTrie
from .smoothing import attach_kn_tables, describe_fallback, kn_discount_fallbacks

SPECIALS = (UNK, BOS, EOS)


@dataclass
class Built:
    """What counting gives a model: the trie (as arrays), its vocabulary, statistics and build info."""

    trie: ArrayTrie
    vocab: list[str]
    statistics: dict
    info: dict


def check_build_options(order: int, min_count: int | None) -> None:
    """Refuse impossible build settings before any work is done (min_count None: the default)."""
    if order < 1:
        raise UserError(f"order must be at least 1, got {order}")
    if min_count is not None and min_count < 1:
        raise UserError(f"min-count must be at least 1, got {min_count}")


def open_corpus(source: str | Path | Corpus, heldout_fraction: float) -> Corpus:
    """The corpus to build from: given, or read from a folder with the held-out split."""
    return source if isinstance(source, Corpus) else load_corpus(source, heldout_fraction)


def tokenize_corpus(corpus: Corpus, tokenizer: Tokenizer, progress: bool) -> list[list[str]]:
    """The token sequences of the building part of every document (held-out tails left out)."""
    texts = list(corpus.train_texts())
    if progress:
        from tqdm import tqdm  # only when a bar is shown: importing ngram imports no tqdm

        texts = tqdm(texts, desc="tokenizing", unit="doc", leave=False)
    sentences: list[list[str]] = []
    for text in texts:
        sentences.extend(tokenizer.sentences(text))
    return sentences


def build_vocabulary(frequencies: Counter, min_count: int) -> list[str]:
    """Special tokens, then every token seen at least `min_count` times, most frequent first."""
    clashes = [s for s in SPECIALS if s in frequencies]
    if clashes:
        raise UserError(f"the tokenizer produced a reserved token {clashes[0]!r}")
    kept = sorted((t for t, c in frequencies.items() if c >= min_count), key=lambda t: (-frequencies[t], t))
    return [*SPECIALS, *kept]


def count_sentences(sentences: Sequence[Sequence[str]], order: int, min_count: int, progress: bool = False) -> Built:
    """Count every n-gram of `sentences` (each wrapped in ``<s>`` … ``</s>``) into an array trie.

    `counting.count_levels` sorts every position's n-gram once and reads the counts off
    the sorted rows; the arrays are those sorted rows' unique prefixes (`ngram.arrays`).
    `counting.build_trie` builds the same trie as nested dicts, and `trie.insert_sentence`
    by walking it — the readable references the tests compare with.

    Tokens seen fewer than `min_count` times become ``<unk>``. Kneser-Ney discounts that
    must fall back (too few n-grams of some count) are warned about and recorded.
    """
    check_build_options(order, min_count)
    started = time.perf_counter()
    frequencies = Counter(token for sentence in sentences for token in sentence)
    if not frequencies:
        raise UserError("the corpus has no tokens to build from")
    vocab = build_vocabulary(frequencies, min_count)
    ids = {token: i for i, token in enumerate(vocab)}
    unk, bos, eos = ids[UNK], ids[BOS], ids[EOS]
    encoded = [[bos, *[ids.get(t, unk) for t in sentence], eos] for sentence in sentences]
    bar = counting.step_bar(2, f"counting {order}-grams", progress)
    rows, levels = counting.count_levels(encoded, order, len(vocab))
    bar.update()
    trie = ArrayTrie.from_counting(rows, levels, vocab)
    del rows, levels
    statistics = trie.count_statistics(bos)
    attach_kn_tables(trie, statistics, bos)  # Kneser-Ney's c(h •) and γ(h) of every context, saved with the trie
    bar.update()
    bar.close()
    info = {
        "build_seconds": round(time.perf_counter() - started, 2),
        "training_tokens": sum(frequencies.values()),
        "training_sentences": len(encoded),
        "min_count": min_count,
        "kn_discount_fallbacks": kn_discount_fallbacks(statistics, order),
    }
    for fallback in info["kn_discount_fallbacks"]:
        warnings.warn(describe_fallback(fallback), stacklevel=3)
    return Built(trie, vocab, statistics, info)
