"""Counting under a memory budget: sorted runs on disk, merged — the shape of KenLM's ``lmplz``.

`counting.count_levels` sorts every position's n-gram at once, so its memory grows with
the corpus. Here the same arrays are made in pieces that each fit a budget:

1. **Tokens to a stream.** The text becomes one file of token ids, every sentence
   ``<s> … </s>`` followed by a separator (the padding id), so a window of the stream
   never runs across a sentence end.
2. **Sorted runs.** The stream is cut into chunks; each chunk's k-grams of every order
   are sorted, counted and written as a *run*: the sorted k-grams and their counts.
3. **Merging in bands.** All runs are merged (equal k-grams' counts summed) one *band* of
   first tokens at a time: a k-gram and its prefixes share their first token, so a band
   holds whole subtrees and each node's children range is found inside it. Each band's
   arrays are appended to the final ``.npy`` files.
4. **Continuation counts.** A k-gram's continuation count is how many distinct
   (k+1)-grams end with it. Every band's distinct (k+1)-grams give their suffixes as one
   more sorted run; merging those by band gives the continuation counts, and with them
   the count-of-counts statistics Kneser-Ney's discounts are made from.

A k-gram is compared as one opaque value: its ids as big-endian unsigned 32-bit numbers,
viewed as ``k * 4`` raw bytes, whose byte order is exactly the order of the id
sequences, so NumPy sorts and binary-searches k-grams of any order as single values.
The result is the same arrays, to the bit, as `ArrayTrie.from_counting` (a test checks).
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from corpora.common import UserError
from corpora.tokenizers import BOS, EOS, UNK

from .arrays import COUNT_DTYPE, ID_DTYPE, INDEX_DTYPE, ArrayTrie, Level

KEY_DTYPE = np.dtype(">u4")  # ids as big-endian: byte order = id order
STREAM_DTYPE = np.dtype("<i4")
UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
MIN_CHUNK_POSITIONS = 64  # a chunk smaller than this would make a run per sentence


def parse_memory(text: str | int) -> int:
    """A memory budget in bytes from ``2G``, ``512M``, ``64K`` or a plain number of bytes.

    Example: parse_memory("1.5G") == 1610612736
    """
    if isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", str(text), flags=re.IGNORECASE)
    if not match or float(match.group(1)) <= 0:
        raise UserError(f"--memory must be a size such as 2G, 512M or 64K, got {text!r}")
    return int(float(match.group(1)) * UNITS[match.group(2).upper()])


def chunk_bytes_per_position(order: int) -> int:
    """Working bytes one token position costs while its chunk is counted.

    The window of rows (4 bytes an order), their padding mask, one order's keys, their
    sorted copy, the argsort (8 bytes) and the run's counts (4 bytes): about 20 bytes an
    order and 32 more, rounded up.
    """
    return 24 * order + 40


def merge_bytes_per_row(k: int) -> int:
    """Working bytes one k-gram of a band costs while the runs are merged: the keys, their
    sorted copy, the argsort, the counts and the merged result."""
    return 16 * k + 40


def chunk_positions(memory: int, order: int) -> int:
    """How many token positions one chunk may hold under `memory` (refused when too few)."""
    per = chunk_bytes_per_position(order)
    positions = memory // per
    if positions < MIN_CHUNK_POSITIONS:
        raise UserError(f"--memory {memory:,} bytes is too small to count {order}-grams; "
                        f"it needs at least {human_bytes(MIN_CHUNK_POSITIONS * per)}")
    return int(positions)


def human_bytes(n: float) -> str:
    """A byte count as a person writes it: '1.5G', '640K'."""
    for unit in ("T", "G", "M", "K"):
        if n >= UNITS[unit]:
            return f"{n / UNITS[unit]:.3g}{unit}"
    return f"{int(n)}B"


# ------------------------------------------------------------------ files


class NpyAppender:
    """A 1-D ``.npy`` file written piece by piece, its length filled in when closed.

    The header is written first with room for any length (headers are padded to 64
    bytes), so the data streams to disk and the file is a plain ``.npy`` at the end.
    """

    HEADER_BYTES = 128

    def __init__(self, path: Path, dtype: np.dtype) -> None:
        self.path, self.dtype, self.length = path, np.dtype(dtype), 0
        self.file = open(path, "wb")
        self.file.write(self.header(0))

    def header(self, length: int) -> bytes:
        import io

        buffer = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            buffer, {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": (length,)})
        header = buffer.getvalue()
        if len(header) != self.HEADER_BYTES:  # pragma: no cover - NumPy pads 1-D headers to 128 bytes
            raise RuntimeError("unexpected .npy header size")
        return header

    def append(self, values: np.ndarray) -> None:
        values = np.ascontiguousarray(values, dtype=self.dtype).ravel()
        self.file.write(values.tobytes())
        self.length += len(values)

    def close(self) -> Path:
        self.file.seek(0)
        self.file.write(self.header(self.length))
        self.file.close()
        return self.path


def load_plain(path: Path) -> np.ndarray:
    """A ``.npy`` file of our own, memory-mapped, as a plain array (no pickle)."""
    return np.load(path, mmap_mode="r", allow_pickle=False).view(np.ndarray)


def as_keys(rows: np.ndarray) -> np.ndarray:
    """Rows of token ids (n × k) as n opaque, sortable k-gram keys (see the module docstring)."""
    rows = np.ascontiguousarray(rows, dtype=KEY_DTYPE)
    return rows.view(np.dtype((np.void, 4 * rows.shape[1]))).ravel()


def key_rows(keys: np.ndarray, k: int) -> np.ndarray:
    """The inverse of `as_keys`: n keys back to an n × k array of big-endian ids."""
    return keys.view(KEY_DTYPE).reshape(-1, k)


def sum_equal_keys(keys: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort keys and add up the counts of equal ones: the core step of both counting and merging."""
    if len(keys) == 0:
        return keys, counts.astype(np.int64)
    order = np.argsort(keys, kind="stable")  # timsort: concatenated sorted runs merge in O(n log runs)
    keys, counts = keys[order], counts[order]
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    return keys[starts], np.add.reduceat(counts.astype(np.int64), starts)


# ------------------------------------------------------------------ 1. the token stream


@dataclass
class TokenStream:
    """The text as provisional ids on disk (first-seen order), with what the vocabulary needs.

    Ids are provisional because the vocabulary's order (most frequent first) is known only
    after the whole text is read; `final_ids` maps them. ``-2``/``-3`` stand for ``<s>`` and
    ``</s>``, ``-1`` separates sentences.
    """

    path: Path
    tokens: list[str] = field(default_factory=list)
    frequencies: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    sentences: int = 0
    positions: int = 0  # token positions counted: tokens plus <s> and </s> of every sentence


SEPARATOR, BOS_MARK, EOS_MARK = -1, -2, -3
MARKS = 3


def write_token_stream(sentences: Iterable[Sequence[str]], path: Path, batch_tokens: int = 1 << 20) -> TokenStream:
    """Step 1: every sentence as ``<s> ids </s> |`` in one file of provisional ids."""
    stream = TokenStream(path)
    ids: dict[str, int] = {}
    frequencies = np.zeros(1024, np.int64)
    writer = NpyAppender(path, STREAM_DTYPE)
    pending: list[int] = []
    for sentence in sentences:
        pending.append(BOS_MARK)
        pending.extend([ids.setdefault(token, len(ids)) for token in sentence])
        pending += (EOS_MARK, SEPARATOR)
        stream.sentences += 1
        if len(pending) >= batch_tokens:
            frequencies = flush_stream(writer, pending, frequencies)
            pending = []
    frequencies = flush_stream(writer, pending, frequencies)
    writer.close()
    stream.tokens = list(ids)
    stream.frequencies = frequencies[: len(ids)]
    stream.positions = writer.length - stream.sentences
    return stream


def flush_stream(writer: NpyAppender, pending: list[int], frequencies: np.ndarray) -> np.ndarray:
    """Append a batch of provisional ids to the stream and add its tokens to the frequencies."""
    batch = np.array(pending, dtype=STREAM_DTYPE)
    writer.append(batch)
    seen = np.bincount(batch[batch >= 0])
    if len(seen) > len(frequencies):
        grown = np.zeros(max(len(seen), 2 * len(frequencies)), np.int64)
        grown[: len(frequencies)] = frequencies
        frequencies = grown
    frequencies[: len(seen)] += seen
    return frequencies


def final_ids(stream: TokenStream, vocab: Sequence[str], unk: int, bos: int, eos: int) -> np.ndarray:
    """The lookup table provisional id + 3 → vocabulary id (the separator → the padding id)."""
    index = {token: i for i, token in enumerate(vocab)}
    table = np.empty(len(stream.tokens) + MARKS, dtype=STREAM_DTYPE)
    table[:MARKS] = (eos, bos, len(vocab))  # -3, -2, -1
    table[MARKS:] = [index.get(token, unk) for token in stream.tokens]
    return table


# ------------------------------------------------------------------ 2. sorted runs


def window_rows(window: np.ndarray, positions: int, order: int, pad: int) -> np.ndarray:
    """One row per position: the next `order` ids, `pad` from the first separator on.

    `window` holds the chunk's ids and the `order - 1` that follow it (padded at the end
    of the stream); the separators already stand where sentences end.
    """
    rows = np.full((positions, order), pad, dtype=np.int32)
    for j in range(order):
        part = window[j: j + positions]
        rows[: len(part), j] = part
    rows[np.logical_or.accumulate(rows == pad, axis=1)] = pad
    return rows


@dataclass
class Runs:
    """The sorted runs of every order, and how many rows each first token has in them."""

    folder: Path
    order: int
    names: list[str] = field(default_factory=list)
    rows_by_first: list[np.ndarray] = field(default_factory=list)  # per order: rows per first token
    suffix_names: list[str] = field(default_factory=list)  # step 4's runs, one per band

    mapped: dict[str, np.ndarray] = field(default_factory=dict)  # run files mapped during one band

    def keys(self, name: str, k: int) -> np.ndarray:
        return self.load(f"{name}.k{k}.keys.npy")

    def counts(self, name: str, k: int) -> np.ndarray:
        return self.load(f"{name}.k{k}.counts.npy")

    def load(self, file: str) -> np.ndarray:
        """A run file, memory-mapped once per band (every order reads it; mapping costs ~1 ms)."""
        if file not in self.mapped:
            self.mapped[file] = load_plain(self.folder / file)
        return self.mapped[file]

    def forget(self, prefix: str) -> None:
        """Unmap and delete the runs whose names start with `prefix`, once merged."""
        self.mapped = {file: array for file, array in self.mapped.items() if not file.startswith(prefix)}
        for path in self.folder.glob(f"{prefix}*.npy"):
            path.unlink()


def write_runs(stream: np.ndarray, table: np.ndarray, order: int, vocab_size: int, positions: int,
               folder: Path, bar) -> Runs:
    """Step 2: count the stream chunk by chunk, each chunk's k-grams written as sorted runs."""
    runs = Runs(folder, order, rows_by_first=[np.zeros(vocab_size + 1, np.int64) for _ in range(order)])
    pad = vocab_size
    for number, start in enumerate(range(0, len(stream), positions)):
        end = min(start + positions, len(stream))
        window = table[np.asarray(stream[start: end + order - 1]) + MARKS]
        rows = window_rows(window, end - start, order, pad)
        name = f"run{number:06d}"
        for k, (keys, counts) in enumerate(chunk_levels(rows[rows[:, 0] != pad], pad), start=1):
            np.save(folder / f"{name}.k{k}.keys.npy", key_rows(keys, k), allow_pickle=False)
            np.save(folder / f"{name}.k{k}.counts.npy", counts.astype(np.int32), allow_pickle=False)
            runs.rows_by_first[k - 1] += np.bincount(key_rows(keys, k)[:, 0], minlength=vocab_size + 1)
        runs.names.append(name)
        bar.update()
    return runs


def chunk_levels(rows: np.ndarray, pad: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Every order's distinct k-grams of a chunk, sorted, with their counts: one sort for all.

    Sorting the full rows (padding, the largest id, after a sentence end) sorts every
    prefix too, so the k-grams are runs of rows sharing their first k columns — the idea of
    `counting.count_levels`, here over one chunk.
    """
    order = rows.shape[1]
    rows = rows[np.argsort(as_keys(rows), kind="stable")]
    differs = np.ones(rows.shape, dtype=bool)
    differs[1:] = rows[1:] != rows[:-1]
    new_prefix = np.logical_or.accumulate(differs, axis=1)
    for k in range(1, order + 1):
        starts = np.flatnonzero(new_prefix[:, k - 1])
        sizes = np.diff(np.append(starts, len(rows)))
        real = rows[starts, k - 1] != pad
        yield as_keys(rows[starts[real], :k]), sizes[real]


Boundary = tuple[int, int]  # (first token, second token); second -1: the first token's own unigram


def row_bound(boundary: Boundary, k: int) -> np.ndarray:
    """The smallest k-gram key at or after a band boundary.

    Bands are ranges of (first, second) token pairs, a unigram ``t`` standing at
    ``(t, -1)``, before every ``(t, x)``. So a band starting at ``(t, -1)`` starts order 1
    at ``t``; one starting at ``(t, s)`` starts order 1 after ``t`` and orders k >= 2 at
    ``(t, s, 0, ...)`` (ids are never negative).
    """
    first, second = boundary
    if k == 1:
        return as_keys(np.array([[first if second < 0 else first + 1]]))
    return as_keys(np.array([[first, max(second, 0)] + [0] * (k - 2)]))


def band_edges(runs: Runs, memory: int) -> list[Boundary]:
    """The merge bands' boundaries: as few bands as fit `memory` each.

    A band's cost is counted from the rows the runs hold for its first tokens (an upper
    bound on the merged rows). Whole first tokens are grouped; a first token costing more
    than `memory` alone (``<s>`` in a large corpus) is split by its second tokens. A single
    pair of tokens costing more cannot be merged: the error names the budget it needs.
    """
    cost = sum(rows * merge_bytes_per_row(k) for k, rows in enumerate(runs.rows_by_first, start=1))
    edges: list[Boundary] = []
    first = 0
    while first < len(cost):
        if cost[first] > memory:
            edges += heavy_token_edges(runs, first, memory)
            first += 1
            continue
        edges.append((first, -1))
        first = greedy_end(cost, first, memory)
    return edges + [(len(cost), -1)]


def greedy_end(cost: np.ndarray, start: int, memory: int) -> int:
    """The end of the longest run of entries from `start` whose costs add up to at most `memory`
    (stopping before an entry that alone costs more, and always taking `start`)."""
    total = np.cumsum(cost[start:])
    end = start + max(int(np.searchsorted(total, memory, side="right")), 1)
    return end


def heavy_token_edges(runs: Runs, first: int, memory: int) -> list[Boundary]:
    """Band boundaries inside one first token: its unigram, then ranges of second tokens."""
    cost = np.zeros(len(runs.rows_by_first[0]), np.int64)
    for k in range(2, runs.order + 1):
        for name in runs.names:
            keys = as_keys(runs.keys(name, k))
            a, b = np.searchsorted(keys, np.concatenate((row_bound((first, 0), k), row_bound((first + 1, 0), k))))
            cost += np.bincount(runs.keys(name, k)[a:b, 1], minlength=len(cost)) * merge_bytes_per_row(k)
    if cost.max() > memory:
        raise UserError(f"--memory {human_bytes(memory)} is too small to merge the counts; "
                        f"it needs at least {human_bytes(int(cost.max()))}")
    edges, second = [(first, -1)], 0
    while second < len(cost):
        end = greedy_end(cost, second, memory)
        edges.append((first, second))
        second = end
    return edges


def slice_runs(names: Sequence[str], load_keys: Callable, load_counts: Callable, low: Boundary, high: Boundary,
               k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every run's k-grams in the band [low, high), concatenated (keys, counts)."""
    keys, counts = [], []
    bounds = np.concatenate((row_bound(low, k), row_bound(high, k)))
    for name in names:
        run = as_keys(load_keys(name, k))
        a, b = np.searchsorted(run, bounds)
        keys.append(run[a:b])
        counts.append(np.asarray(load_counts(name, k)[a:b]))
    if not keys:
        return np.zeros(0, np.dtype((np.void, 4 * k))), np.zeros(0, np.int64)
    return np.concatenate(keys), np.concatenate(counts)


# ------------------------------------------------------------------ 3. merging into levels


class LevelFiles:
    """The final arrays of every order, appended band by band (the layout of `ngram.arrays`)."""

    def __init__(self, folder: Path, order: int, vocab_size: int) -> None:
        self.folder, self.order = folder, order
        self.ids = [NpyAppender(folder / f"k{k}.ids.npy", ID_DTYPE) for k in range(1, order + 1)]
        self.counts = [NpyAppender(folder / f"k{k}.counts.npy", COUNT_DTYPE) for k in range(1, order + 1)]
        self.keys = [NpyAppender(folder / f"k{k}.keys.npy", KEY_DTYPE) for k in range(1, order)]
        self.first_child = [NpyAppender(folder / f"k{k}.first_child.npy", INDEX_DTYPE) for k in range(2, order)]
        self.sizes = [0] * order  # entries written so far, per order
        self.bigrams_by_first = np.zeros(vocab_size + 1, np.int64)

    def close(self) -> None:
        for k in range(2, self.order):
            self.first_child[k - 2].append(np.array([self.sizes[k]]))  # the end of the last range
        for writer in [*self.ids, *self.counts, *self.keys, *self.first_child]:
            writer.close()
        if self.order > 1:
            self.write_unigram_children()

    def write_unigram_children(self) -> None:
        """Order 1's children ranges, from the bigrams counted per first token.

        A first token split over several bands has its bigrams in all of them, so these
        ranges are made at the end: unigram i's children start after every bigram whose
        first token comes before it.
        """
        unigrams = load_plain(self.folder / "k1.ids.npy")
        ends = np.cumsum(self.bigrams_by_first[unigrams])
        first = np.concatenate(([0], ends)).astype(INDEX_DTYPE)
        np.save(self.folder / "k1.first_child.npy", first, allow_pickle=False)


def merge_band(runs: Runs, files: LevelFiles, low: Boundary, high: Boundary, raw: list[np.ndarray]) -> list[int]:
    """Step 3 for the band [low, high): merge every order, append its arrays.

    Returns where this band starts in every order (for step 4). A k-gram's parent
    (k >= 3) is its (k-1)-prefix, found by binary search in the band's (k-1)-grams (they
    share the band's first two tokens); each parent's children start where its first
    child is. Bigrams are counted per first token for order 1's ranges (`LevelFiles.close`).
    """
    starts = list(files.sizes)
    previous = None
    for k in range(1, runs.order + 1):
        keys, counts = sum_equal_keys(*slice_runs(runs.names, runs.keys, runs.counts, low, high, k))
        rows = key_rows(keys, k)
        if k == 2:
            files.bigrams_by_first += np.bincount(rows[:, 0], minlength=len(files.bigrams_by_first))
        if k >= 3:
            parents = np.searchsorted(previous, as_keys(rows[:, : k - 1]))
            first = np.searchsorted(parents, np.arange(len(previous)))
            files.first_child[k - 3].append(first + files.sizes[k - 1])
        files.ids[k - 1].append(rows[:, k - 1])
        files.counts[k - 1].append(counts)
        raw[k - 1] += np.bincount(np.clip(counts, 0, 5), minlength=6)
        if k < runs.order:
            files.keys[k - 1].append(rows)
        write_suffix_run(rows, k, runs.folder, len(runs.suffix_names))
        files.sizes[k - 1] += len(keys)
        previous = keys
    runs.suffix_names.append(f"suffix{len(runs.suffix_names):09d}")
    return starts


def write_suffix_run(rows: np.ndarray, k: int, folder: Path, band: int) -> None:
    """The suffixes (last k-1 tokens) of a band's distinct k-grams, counted: a run for step 4."""
    if k < 2:
        return
    keys, counts = sum_equal_keys(as_keys(rows[:, 1:]), np.ones(len(rows), np.int64))
    np.save(folder / f"suffix{band:09d}.k{k - 1}.keys.npy", key_rows(keys, k - 1), allow_pickle=False)
    np.save(folder / f"suffix{band:09d}.k{k - 1}.counts.npy", counts, allow_pickle=False)


# ------------------------------------------------------------------ 4. continuation counts


def continuation_band(runs: Runs, files: LevelFiles, low: Boundary, high: Boundary,
                      starts: list[int], ends: list[int], bos: int, cont: list[np.ndarray],
                      writers: list[NpyAppender]) -> None:
    """Step 4 for the first tokens [low, high): continuation counts of every order below the top.

    The band's k-grams are read back; the suffix runs' rows in the band are merged and
    put in place by binary search (every suffix is a k-gram of the band). The count-of-
    counts use the real count for k-grams starting with ``<s>``, as `ArrayTrie.count_statistics`.
    """
    for k in range(1, runs.order):
        keys = as_keys(key_rows(runs.load(f"k{k}.keys.npy"), k)[starts[k - 1]: ends[k - 1]])
        suffixes = slice_runs(runs.suffix_names, runs.keys, runs.counts, low, high, k)
        suffix_keys, suffix_counts = sum_equal_keys(*suffixes)
        continuation = np.zeros(len(keys), COUNT_DTYPE)
        continuation[np.searchsorted(keys, suffix_keys)] = suffix_counts
        writers[k - 1].append(continuation)
        counts = runs.load(f"k{k}.counts.npy")[starts[k - 1]: ends[k - 1]]
        kn = np.where(key_rows(keys, k)[:, 0] == bos, counts, continuation)
        cont[k - 1] += np.bincount(np.clip(kn, 0, 5), minlength=6)


# ------------------------------------------------------------------ the whole build


@dataclass
class Counted:
    """What a chunked count gives: the trie (memory-mapped from a work folder) and its statistics."""

    trie: ArrayTrie
    statistics: dict
    chunks: int
    bands: int


def count_stream(stream: TokenStream, vocab: Sequence[str], order: int, memory: int, folder: Path,
                 stages) -> Counted:
    """Steps 2-4 over a token stream written by `write_token_stream`, under `memory` bytes."""
    bos = vocab.index(BOS)
    table = final_ids(stream, vocab, vocab.index(UNK), bos, vocab.index(EOS))
    runs = count_chunks(load_plain(stream.path), table, order, len(vocab), memory, folder, stages)
    edges = band_edges(runs, memory)
    files, band_starts, raw = merge_runs(runs, edges, len(vocab), stages)
    cont = count_continuations(runs, files, edges, band_starts, bos, stages)
    trie = open_levels(folder, vocab, order, stream.positions)
    return Counted(trie, statistics_of(files.sizes, raw, cont), len(runs.names), len(edges) - 1)


def count_chunks(data: np.ndarray, table: np.ndarray, order: int, vocab_size: int, memory: int, folder: Path,
                 stages) -> Runs:
    """Stage "Counting chunks": the stream cut to fit `memory`, each chunk a sorted run."""
    positions = chunk_positions(memory, order)
    with stages.begin("Counting chunks", max(1, -(-len(data) // positions)), "chunk") as bar:
        return write_runs(data, table, order, vocab_size, positions, folder, bar)


def merge_runs(runs: Runs, edges: list[Boundary], vocab_size: int, stages) -> tuple[LevelFiles, list, list]:
    """Stage "Merging sorted runs": band by band into the final arrays; the runs deleted after.

    Returns the level files, where each band starts in every order, and each order's
    count-of-counts of raw counts.
    """
    files = LevelFiles(runs.folder, runs.order, vocab_size)
    raw = [np.zeros(6, np.int64) for _ in range(runs.order)]
    band_starts = []
    with stages.begin("Merging sorted runs", len(edges) - 1, "band") as bar:
        for low, high in zip(edges, edges[1:]):
            band_starts.append(merge_band(runs, files, low, high, raw))
            runs.mapped.clear()  # unmap: the pages this band read leave the process's memory
            bar.update()
        files.close()
    runs.forget("run")
    return files, band_starts, raw


def count_continuations(runs: Runs, files: LevelFiles, edges: list[Boundary], band_starts: list, bos: int,
                        stages) -> list[np.ndarray]:
    """Stage "Computing continuation counts and statistics": the continuation arrays, band by
    band, and each order's count-of-counts for Kneser-Ney; the suffix runs deleted after."""
    cont = [np.zeros(6, np.int64) for _ in range(runs.order)]
    writers = [NpyAppender(runs.folder / f"k{k}.continuation.npy", COUNT_DTYPE) for k in range(1, runs.order)]
    band_ends = band_starts[1:] + [list(files.sizes)]
    with stages.begin("Computing continuation counts and statistics", len(band_starts), "band") as bar:
        for low, high, starts, ends in zip(edges, edges[1:], band_starts, band_ends):
            continuation_band(runs, files, low, high, starts, ends, bos, cont, writers)
            runs.mapped.clear()
            bar.update()
    for writer in writers:
        writer.close()
    runs.forget("suffix")
    runs.mapped.clear()
    for k in range(1, runs.order):
        (runs.folder / f"k{k}.keys.npy").unlink()  # the k-grams kept for this stage only
    return cont


def open_levels(folder: Path, vocab: Sequence[str], order: int, total: int) -> ArrayTrie:
    """The merged arrays, memory-mapped, as an `ArrayTrie`."""
    levels = []
    for k in range(1, order + 1):
        top = k == order
        levels.append(Level(
            ids=load_plain(folder / f"k{k}.ids.npy"),
            counts=load_plain(folder / f"k{k}.counts.npy"),
            continuation=None if top else load_plain(folder / f"k{k}.continuation.npy"),
            first_child=None if top else load_plain(folder / f"k{k}.first_child.npy"),
        ))
    root_continuation = len(levels[1].ids) if order > 1 else 0
    return ArrayTrie(vocab, levels, total=total, root_continuation=root_continuation)


def statistics_of(sizes: list[int], raw: list[np.ndarray], cont: list[np.ndarray]) -> dict:
    """The statistics dict in `ArrayTrie.count_statistics`'s shape, from per-band count-of-counts."""
    stats: dict = {"ngrams": list(sizes)}
    for k in range(1, len(sizes) + 1):
        stats[f"raw{k}"] = raw[k - 1][1:5].tolist()
        if k < len(sizes):
            stats[f"cont{k}"] = cont[k - 1][1:5].tolist()
    return stats


def work_folder(parent: str | os.PathLike | None = None) -> Path:
    """A fresh folder for the stream and the runs (in the system's temporary folder by default)."""
    return Path(tempfile.mkdtemp(prefix="ngram-build-", dir=parent))


def remove_with(owner: object, folder: Path) -> None:
    """Delete `folder` once `owner` (the trie memory-mapping its files) is gone, or at exit."""
    weakref.finalize(owner, shutil.rmtree, str(folder), True)

