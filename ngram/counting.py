"""Fast counting: the same trie as `trie.insert_sentence`, with the counting done by NumPy.

`trie.insert_sentence` is the idea in its plainest form: walk the trie for every start
position and add one to each node. It is what a teacher points at, and the tests check
that this module builds exactly the same trie. Here the counting is done in bulk:

1. Every token becomes an integer id; every position ``p`` of the text gets a row
   ``[id(p), id(p+1), ..., id(p+N-1)]``, padded where the sentence ends.
2. The rows are sorted once. Equal n-gram prefixes are now next to each other, so the
   count of a k-gram is the length of a run of rows sharing their first k columns.
3. The continuation count of a k-gram is how many distinct (k+1)-grams have it as their
   suffix: the (k+1)-gram starting at ``p`` has the k-gram starting at ``p+1`` as suffix.
4. Python then only creates each node once, level by level, and hangs it under its parent.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .trie import CONTINUATION, COUNT


def ngram_rows(sentences: Sequence[Sequence[int]], order: int, pad: int) -> np.ndarray:
    """One row per token position: the ids of the next `order` tokens, `pad` past the sentence end."""
    lengths = np.fromiter((len(s) for s in sentences), dtype=np.int64, count=len(sentences))
    flat = np.fromiter((t for s in sentences for t in s), dtype=np.int32, count=int(lengths.sum()))
    ends = np.repeat(np.cumsum(lengths), lengths)  # for each position: where its sentence ends
    positions = np.arange(len(flat))
    rows = np.full((len(flat), order), pad, dtype=np.int32)
    for j in range(order):
        inside = positions + j < ends
        rows[inside, j] = flat[positions[inside] + j]
    return rows


@dataclass
class Level:
    """All k-grams of one order k, in sorted order."""

    group_of_row: np.ndarray  # for each sorted row: which k-prefix group it is in (padded groups too)
    groups: np.ndarray  # the groups that are real k-grams (no padding in them)
    first_rows: np.ndarray  # the first sorted row of each real k-gram
    counts: np.ndarray  # how often each real k-gram occurred
    continuation: np.ndarray | None = None  # distinct left neighbours (below the top order)


def count_level(rows: np.ndarray, new_prefix: np.ndarray, k: int, pad: int) -> Level:
    """Count the k-grams: runs of sorted rows that share their first k columns."""
    starts = np.flatnonzero(new_prefix[:, k - 1])
    sizes = np.diff(np.append(starts, len(rows)))
    real = np.flatnonzero(rows[starts, k - 1] != pad)
    return Level(np.cumsum(new_prefix[:, k - 1]) - 1, real, starts[real], sizes[real])


def continuation_counts(lower: Level, upper: Level, by_row: np.ndarray) -> np.ndarray:
    """For each (k-1)-gram of `lower`: how many distinct k-grams of `upper` end with it.

    The k-gram starting at text position p ends with the (k-1)-gram starting at p + 1.
    """
    group_at_position = np.empty(len(by_row), dtype=np.int64)
    group_at_position[by_row] = lower.group_of_row
    suffixes = group_at_position[by_row[upper.first_rows] + 1]
    per_group = np.bincount(suffixes, minlength=int(lower.group_of_row[-1]) + 1)
    return per_group[lower.groups]


def most_frequent_first(level: Level, parent_groups: np.ndarray) -> None:
    """Reorder a level so that each node's children are inserted most frequent first.

    Dicts keep insertion order (and so does JSON), so the top-k followers of any
    context are simply its first k children: no sorting when predicting.
    """
    order = np.lexsort((-level.counts, parent_groups))
    level.groups, level.first_rows, level.counts = level.groups[order], level.first_rows[order], level.counts[order]
    if level.continuation is not None:
        level.continuation = level.continuation[order]


class _NoBar:
    """Stands in for a progress bar that is not shown."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def step_bar(total: int | None, desc: str, shown: bool, unit: str = "step"):
    """A tqdm bar of `total` steps if `shown`; tqdm is imported only then (not by `import ngram`)."""
    if not shown:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False)


IN_MEMORY_STAGES = ("Tokenizing", "Counting n-grams", "Computing statistics", "Saving")
CHUNKED_STAGES = ("Tokenizing", "Counting chunks", "Merging sorted runs",
                  "Computing continuation counts and statistics", "Saving")
SPARK_STAGES = ("Starting Spark", "Reading and tokenizing", "Counting the vocabulary", "Counting n-grams",
                "Assembling the model", "Saving")


class Stages:
    """Numbered build stages, as ``lmplz`` prints them: ``=== 2/5 Merging sorted runs ===``.

    Each stage gets a banner on stderr and a progress bar (both off when not `shown`),
    so a long build always says which phase it is in and how far it has got.
    """

    def __init__(self, names: Sequence[str], shown: bool) -> None:
        self.names, self.shown = tuple(names), shown

    @classmethod
    def for_build(cls, chunked: bool, shown: bool) -> "Stages":
        return cls(CHUNKED_STAGES if chunked else IN_MEMORY_STAGES, shown)

    def banner(self, name: str) -> None:
        """Print ``=== i/n name ===`` (stderr, so --json output stays clean)."""
        if self.shown:
            import sys

            print(f"=== {self.names.index(name) + 1}/{len(self.names)} {name} ===", file=sys.stderr, flush=True)

    @contextmanager
    def begin(self, name: str, total: int | None = None, unit: str = "step"):
        """The banner, then a bar of `total` steps (closed when the stage ends)."""
        self.banner(name)
        bar = step_bar(total, name.lower(), self.shown, unit)
        try:
            yield bar
        finally:
            bar.close()


def count_levels(sentences: Sequence[Sequence[int]], order: int, pad: int) -> tuple[np.ndarray, list[Level]]:
    """Steps 1-3: the sorted rows, and every order's k-grams with counts and continuation counts.

    The levels list the k-grams in sorted order (by token ids), which is the order the
    array trie (`ngram.arrays`) stores them in.
    """
    rows = ngram_rows(sentences, order, pad)
    by_row = np.lexsort(rows.T[::-1])  # sort rows by column 0, then column 1, ...
    rows = rows[by_row]
    differs = np.ones(rows.shape, dtype=bool)
    differs[1:] = rows[1:] != rows[:-1]
    new_prefix = np.logical_or.accumulate(differs, axis=1)  # [r, k-1]: the first k columns changed
    levels = [count_level(rows, new_prefix, k, pad) for k in range(1, order + 1)]
    for lower, upper in zip(levels, levels[1:]):
        lower.continuation = continuation_counts(lower, upper, by_row)
    return rows, levels


def build_trie(
    sentences: Sequence[Sequence[int]], vocab: Sequence[str], order: int, bos_id: int, progress: bool = False
) -> tuple[dict, dict]:
    """Build the nested-dict trie of `sentences` (lists of vocabulary ids).

    Returns the trie and its count statistics (the same as `trie.count_statistics`).
    """
    bar = step_bar(order + 1, f"counting {order}-grams", progress)
    pad = len(vocab)
    rows, levels = count_levels(sentences, order, pad)
    bar.update()

    root: dict = {COUNT: len(rows), CONTINUATION: len(levels[1].groups) if order > 1 else 0}
    statistics: dict = {"ngrams": [len(level.groups) for level in levels]}
    parent_by_group: list = []
    for k, level in enumerate(levels, start=1):
        statistics[f"raw{k}"] = [int((level.counts == r).sum()) for r in (1, 2, 3, 4)]
        parent_groups = levels[k - 2].group_of_row[level.first_rows] if k > 1 else np.zeros(len(level.groups), int)
        most_frequent_first(level, parent_groups)
        tokens = [vocab[i] for i in rows[level.first_rows, k - 1].tolist()]
        counts = level.counts.tolist()
        if k == 1:
            parents = [root] * len(tokens)
        else:
            parents = [parent_by_group[g] for g in levels[k - 2].group_of_row[level.first_rows].tolist()]
        bar.update()
        if level.continuation is None:  # the top order: leaves are bare counts
            for parent, token, count in zip(parents, tokens, counts):
                parent[token] = count
            continue
        kn = np.where(rows[level.first_rows, 0] == bos_id, level.counts, level.continuation)
        statistics[f"cont{k}"] = [int((kn == r).sum()) for r in (1, 2, 3, 4)]
        parent_by_group = [None] * (int(level.group_of_row[-1]) + 1)
        for parent, token, group, count, cont in zip(
            parents, tokens, level.groups.tolist(), counts, level.continuation.tolist()
        ):
            parent[token] = parent_by_group[group] = {COUNT: count, CONTINUATION: cont}
    bar.close()
    return root, statistics
