"""Building a model's counts: options check, tokenizing, vocabulary, counting.

`NgramModel.build` and `NgramModel.from_sentences` are thin faces over these functions.
Progress bars (tqdm) are imported only when a build shows one.
"""
from __future__ import annotations

import shutil
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from corpora import Corpus, UserError, load_corpus
from corpora.documents import stream_corpus
from corpora.tokenizers import BOS, EOS, UNK, Tokenizer

from . import chunked, counting
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


def open_corpus(source: str | Path | Corpus, heldout_fraction: float, lazy: bool = False) -> Corpus:
    """The corpus to build from: given, or read from a folder with the held-out split
    (with `lazy`, one file at a time as it is tokenized)."""
    if isinstance(source, Corpus):
        return source
    return stream_corpus(source, heldout_fraction) if lazy else load_corpus(source, heldout_fraction)


def tokenize_corpus(corpus: Corpus, tokenizer: Tokenizer, progress: bool,
                    lazy: bool = False) -> Iterable[list[str]]:
    """The token sequences of the building part of every document (held-out tails left out).

    A list, or with `lazy` a generator that reads one document at a time, so a chunked
    build never holds more than one document's tokens (and a streamed dataset never
    sits in memory whole).
    """
    sentences = iter_sentences(corpus, tokenizer, counting.Stages.for_build(lazy, progress))
    return sentences if lazy else list(sentences)


def iter_sentences(corpus: Corpus, tokenizer: Tokenizer, stages: counting.Stages) -> Iterator[list[str]]:
    """Stage 1: tokenize document by document, a bar counting the documents."""
    total = len(corpus.documents) or getattr(corpus, "expected", None)
    with stages.begin("Tokenizing", total, "doc") as bar:
        for text in corpus.train_texts():
            yield from tokenizer.sentences(text)
            bar.update()


def build_vocabulary(frequencies: Counter, min_count: int) -> list[str]:
    """Special tokens, then every token seen at least `min_count` times, most frequent first."""
    clashes = [s for s in SPECIALS if s in frequencies]
    if clashes:
        raise UserError(f"the tokenizer produced a reserved token {clashes[0]!r}")
    kept = sorted((t for t, c in frequencies.items() if c >= min_count), key=lambda t: (-frequencies[t], t))
    return [*SPECIALS, *kept]


def count_sentences(sentences: Iterable[Sequence[str]], order: int, min_count: int, progress: bool = False,
                    memory: str | int | None = None, work_dir: str | Path | None = None) -> Built:
    """Count every n-gram of `sentences` (each wrapped in ``<s>`` … ``</s>``) into an array trie.

    `counting.count_levels` sorts every position's n-gram once and reads the counts off
    the sorted rows; the arrays are those sorted rows' unique prefixes (`ngram.arrays`).
    `counting.build_trie` builds the same trie as nested dicts, and `trie.insert_sentence`
    by walking it — the readable references the tests compare with.

    With a `memory` budget (bytes, or ``"2G"``) the counting is done in chunks written as
    sorted runs to `work_dir` and merged (`ngram.chunked`): the same arrays, to the bit,
    with working memory bounded by the budget whatever the corpus size.

    Tokens seen fewer than `min_count` times become ``<unk>``. Kneser-Ney discounts that
    must fall back (too few n-grams of some count) are warned about and recorded.
    """
    check_build_options(order, min_count)
    if memory is not None:
        return count_sentences_chunked(sentences, order, min_count, memory, progress, work_dir)
    stages = counting.Stages.for_build(False, progress)
    started = time.perf_counter()
    sentences = list(sentences)
    frequencies = Counter(token for sentence in sentences for token in sentence)
    vocab = vocabulary_of(frequencies, min_count)
    ids = {token: i for i, token in enumerate(vocab)}
    unk, bos, eos = ids[UNK], ids[BOS], ids[EOS]
    encoded = [[bos, *[ids.get(t, unk) for t in sentence], eos] for sentence in sentences]
    with stages.begin("Counting n-grams", 1) as bar:
        rows, levels = counting.count_levels(encoded, order, len(vocab))
        trie = ArrayTrie.from_counting(rows, levels, vocab)
        del rows, levels
        bar.update()
    with stages.begin("Computing statistics", 1) as bar:
        statistics = trie.count_statistics(bos)
        attach_kn_tables(trie, statistics, bos)  # Kneser-Ney's c(h •) and γ(h) of every context, saved with the trie
        bar.update()
    info = build_info(started, sum(frequencies.values()), len(encoded), min_count, statistics, order)
    return Built(trie, vocab, statistics, info)


def count_sentences_chunked(sentences: Iterable[Sequence[str]], order: int, min_count: int, memory: str | int,
                            progress: bool, work_dir: str | Path | None = None) -> Built:
    """`count_sentences` under a memory budget: stream to disk, sorted runs, merge (`ngram.chunked`).

    The work folder holds the token stream, the runs and, at the end, the merged arrays
    that the returned trie memory-maps; it is removed when the trie is, or at once if
    the build fails or is interrupted.
    """
    budget = chunked.parse_memory(memory)
    chunked.chunk_positions(budget, order)  # a hopeless budget is refused before any reading
    stages = counting.Stages.for_build(True, progress)
    started = time.perf_counter()
    folder = chunked.work_folder(work_dir)
    try:
        stream = chunked.write_token_stream(sentences, folder / "stream.npy")
        frequencies = Counter(dict(zip(stream.tokens, stream.frequencies.tolist())))
        vocab = vocabulary_of(frequencies, min_count)
        counted = chunked.count_stream(stream, vocab, order, budget, folder, stages)
        attach_kn_tables(counted.trie, counted.statistics, vocab.index(BOS))
        (folder / "stream.npy").unlink()
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    chunked.remove_with(counted.trie, folder)
    info = build_info(started, sum(frequencies.values()), stream.sentences, min_count, counted.statistics, order)
    return Built(counted.trie, vocab, counted.statistics, info)


def vocabulary_of(frequencies: Counter, min_count: int) -> list[str]:
    """`build_vocabulary`, refusing a corpus without tokens."""
    if not frequencies:
        raise UserError("the corpus has no tokens to build from")
    return build_vocabulary(frequencies, min_count)


def build_info(started: float, tokens: int, sentences: int, min_count: int, statistics: dict, order: int) -> dict:
    """What a model records about its build; Kneser-Ney discount fallbacks are warned about."""
    info = {
        "build_seconds": round(time.perf_counter() - started, 2),
        "training_tokens": tokens,
        "training_sentences": sentences,
        "min_count": min_count,
        "kn_discount_fallbacks": kn_discount_fallbacks(statistics, order),
    }
    for fallback in info["kn_discount_fallbacks"]:
        warnings.warn(describe_fallback(fallback), stacklevel=4)
    return info


def announce_saving(progress: bool, memory: str | int | None) -> None:
    """The last stage's banner (saving happens in `ngram.io`, after the build returns)."""
    counting.Stages.for_build(memory is not None, progress).banner("Saving")
