"""The n-gram trie: a nested dict of dicts keyed by token, with counts.

"I want to be" and "I want to know" become::

    {"I": {"": 2, "want": {"": 2, "to": {"": 2, "be": 1, "know": 1}}}}

Each node is a plain dict. Its children are keyed by token; the key ``""`` holds how many
times the node's n-gram occurred. Nodes at the deepest level (order N) are leaves and are
stored as a bare count (an int) instead of a dict, which keeps memory per n-gram low.

Kneser-Ney smoothing also needs *continuation counts*: for the n-gram ``w2..wk``, how many
different tokens ``v`` came right before it (``v w2..wk`` seen). They are stored under the
key ``"\\0"`` of every node below the deepest level; the root's
``"\\0"`` is their total over unigrams (the number of distinct bigrams).

Reserved keys come first in every node dict, then the children. Models built by
``NgramModel.build`` insert the children most frequent first, so the most likely
followers of a context are simply its first children.

Reserved keys cannot collide with real tokens: every tokenizer guarantees that no token is
the empty string and no token contains a NUL character. So a corpus holding ``count``,
``null``, ``#`` or any other word round-trips. The same structure is written to disk as
JSON (``ngram.io``), so a browser can read it with ``JSON.parse``.
"""
from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Iterable, Iterator, Union

COUNT = ""  # reserved key: occurrences of this node's n-gram
CONTINUATION = "\x00"  # reserved key: distinct tokens seen before this n-gram (Kneser-Ney)
RESERVED = (COUNT, CONTINUATION)

Node = Union[Mapping, int]


def new_root() -> dict:
    """An empty trie; the root's count is the number of token positions."""
    return {COUNT: 0, CONTINUATION: 0}


def insert_sentence(root: dict, tokens: list[str], order: int) -> None:
    """Count every n-gram of orders 1..`order` in `tokens`, with continuation counts.

    For each start position we walk down the trie one token at a time, adding one to
    each node we pass: the path ``tokens[i:i+k]`` is the k-gram starting at i. The
    last step of a full-length path lands on a leaf, which is a bare count.

    Start positions go from the end of the sentence backwards, so the path that starts
    one token later is already in the trie: its nodes are exactly the suffixes of the
    n-grams on the current path. When an n-gram is seen for the first time, its suffix
    gains one distinct left neighbour: that is the continuation count Kneser-Ney needs.
    """
    deepest = order - 1
    length = len(tokens)
    root[COUNT] += length
    suffixes: list[dict] = []  # nodes of the path that starts one token later
    for start in range(length - 1, -1, -1):
        node = root
        path = []
        for depth, token in enumerate(tokens[start: start + deepest]):
            child = node.get(token)
            if child is None:
                child = node[token] = {COUNT: 1, CONTINUATION: 0}
                if depth:
                    _new_left_neighbour(root, suffixes, depth)
            else:
                child[COUNT] += 1
            path.append(child)
            node = child
        if start + deepest < length:
            leaf = tokens[start + deepest]
            seen = node.get(leaf)
            if seen is None:
                node[leaf] = 1
                if deepest:
                    _new_left_neighbour(root, suffixes, deepest)
            else:
                node[leaf] = seen + 1
        suffixes = path


def _new_left_neighbour(root: dict, suffixes: list[dict], depth: int) -> None:
    """A new n-gram at `depth` (0 = unigram): its suffix has one more distinct left neighbour."""
    suffixes[depth - 1][CONTINUATION] += 1
    if depth == 1:  # a new bigram type: the root keeps their total for the unigram level
        root[CONTINUATION] += 1


def children(node: Node) -> Iterator[tuple[str, Node]]:
    """The (token, child) pairs of a node, skipping reserved keys (any Mapping node: a dict,
    or the array trie's read-only face)."""
    if isinstance(node, Mapping):
        for token, child in node.items():
            if token not in RESERVED:
                yield token, child


def child_values(node: dict) -> list:
    """The children of a node (leaf counts or dicts), in their stored order.

    Every node dict starts with its two reserved keys, so this is a plain slice.
    """
    return list(node.values())[len(RESERVED):]


def count_of(node: Node) -> int:
    """How many times a node's n-gram occurred."""
    return node if isinstance(node, int) else node[COUNT]


def continuation_of(node: Node) -> int:
    """How many distinct tokens came before a node's n-gram (0 for leaves)."""
    return 0 if isinstance(node, int) else node[CONTINUATION]


def find(root: dict, context: Iterable[str]) -> Node | None:
    """The node for the n-gram `context`, or None if it was never seen."""
    node: Node | None = root
    for token in context:
        if not isinstance(node, Mapping):
            return None
        node = node.get(token)
        if node is None:
            return None
    return node


def walk(root: dict, max_depth: int) -> Iterator[tuple[int, Node]]:
    """Every node with its depth (1 = unigram), depth-first."""
    stack = [(1, child) for _, child in children(root)]
    while stack:
        depth, node = stack.pop()
        yield depth, node
        if depth < max_depth and isinstance(node, Mapping):
            stack.extend((depth + 1, child) for _, child in children(node))



def count_statistics(root: dict, order: int, bos: str = "<s>") -> dict:
    """N-grams per order and the count-of-counts Kneser-Ney discounts are made from.

    Returns ``{"ngrams": [n-grams of order 1, 2, ...], "raw{k}": [n1, n2, n3, n4],
    "cont{k}": [n1, n2, n3, n4]}``, where ``n_r`` is how many k-grams have count r: the
    real count (``raw``) or, for the lower orders of Kneser-Ney, the continuation count
    (``cont``; n-grams starting with ``bos`` keep their real count, as they have no left
    neighbour).
    """
    ngrams = [0] * order
    raw = [[0, 0, 0, 0] for _ in range(order)]
    cont = [[0, 0, 0, 0] for _ in range(order)]
    stack = [(1, child, token == bos) for token, child in children(root)]
    while stack:
        depth, node, from_bos = stack.pop()
        ngrams[depth - 1] += 1
        count = count_of(node)
        if count <= 4:
            raw[depth - 1][count - 1] += 1
        if depth < order:
            kn = count if from_bos else node[CONTINUATION]
            if 1 <= kn <= 4:
                cont[depth - 1][kn - 1] += 1
            stack.extend((depth + 1, child, from_bos) for _, child in children(node))
    stats: dict = {"ngrams": ngrams}
    for k in range(1, order + 1):
        stats[f"raw{k}"] = raw[k - 1]
        if k < order:
            stats[f"cont{k}"] = cont[k - 1]
    return stats


def trie_memory_bytes(root: dict) -> int:
    """Memory held by the trie: every dict node, every count too large to be one of
    Python's shared small ints, and each distinct token string once."""
    total = 0
    tokens: dict[str, None] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        total += sys.getsizeof(node)
        for token, value in node.items():
            tokens[token] = None
            if type(value) is dict:
                stack.append(value)
            elif value > 256:
                total += sys.getsizeof(value)
    return total + sum(sys.getsizeof(t) for t in tokens)
