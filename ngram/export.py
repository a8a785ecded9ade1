"""Exporting a model for other tools: ARPA for KenLM and friends, the nested-dict trie as JSON for a browser.

    >>> export_arpa(model, "books.arpa")                        # KenLM's build_binary and query read it
    >>> export_trie_json(model, "want.json", context="I want", depth=2)
    >>> json.load(open("want.json"))["trie"]["I"]["want"]["to"][""]      # the count of "I want to"

`ngram export` is a thin face over these two functions.
"""
from __future__ import annotations

import gzip
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from corpora import UserError, atomic_write

from .arpa import NO_PROBABILITY, write_arpa, write_arpa_tables
from .arrays import ARPA_KIND, ArrayTrie
from .backoff import NO_COUNTS
from .io import json_document
from .show import context_path, context_words
from .trie import CONTINUATION, COUNT

if TYPE_CHECKING:
    from .model import NgramModel

#: The format field of a JSON export that is a view of the trie, not a model to load: part of the
#: trie, or the trie of an imported ARPA model (whose counts all read 0).
VIEW_FORMAT = "trie-vs-transformer/ngram-trie-view"


def arpa_size(model: "NgramModel") -> int:
    """How many lines of n-grams an ARPA export writes (every vocabulary token is a 1-gram)."""
    return len(model.vocab) + sum(len(level.ids) for level in model.trie.levels[1:])


def export_arpa(model: "NgramModel", path: str | os.PathLike, bar=None) -> dict:
    """Write `model` as an ARPA file, atomically; returns what was written.

    A counted model is written as interpolated modified Kneser-Ney (`ngram.arpa`); a
    model imported from ARPA writes back the log10 values it stores. `bar` (a tqdm bar)
    advances by the n-grams written.
    """
    if model.trie.kind == ARPA_KIND:
        logps, backoffs = stored_tables(model.trie)
        written = write_arpa_tables(model.trie, logps, backoffs, path, bar=bar)
    else:
        written = write_arpa(model.smoothing("kn"), path, bar=bar)
    ngrams = [len(model.vocab)] + [len(level.ids) for level in model.trie.levels[1:]]
    return {"format": "arpa", "output": str(written), "bytes": written.stat().st_size, "order": model.order,
            "ngrams_per_order": {str(k): n for k, n in enumerate(ngrams, start=1)},
            "probabilities": "stored ARPA back-off" if model.trie.kind == ARPA_KIND else "Kneser-Ney"}


def stored_tables(trie: ArrayTrie) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """An imported model's log10 p and back-offs in `write_arpa_tables`' layout (1-grams by token id)."""
    first = trie.levels[0]
    logp = np.full(len(trie.vocab), NO_PROBABILITY)
    logp[first.ids] = first.logprob
    backoff = np.zeros(len(trie.vocab))
    if first.backoff is not None:
        backoff[first.ids] = first.backoff
    logps = [logp] + [np.asarray(level.logprob, dtype=np.float64) for level in trie.levels[1:]]
    backoffs = [backoff] + [np.zeros(0) if level.backoff is None else np.asarray(level.backoff, dtype=np.float64)
                            for level in trie.levels[1:]]
    return logps, backoffs


# ---------------------------------------------------------------------- the trie as JSON


def nested_dict(node: Mapping | int, depth: int | None) -> dict | int:
    """A node as the plain nested dict of `ngram.trie`, children most frequent first, cut `depth`
    levels down (None: all); a cut node keeps its two counts and no children."""
    if not isinstance(node, Mapping):
        return node  # a leaf of the deepest level: a bare count
    out: dict = {COUNT: node[COUNT], CONTINUATION: node[CONTINUATION]}
    if depth is None or depth > 0:
        for token, child in node.items():
            if token not in (COUNT, CONTINUATION):
                out[token] = nested_dict(child, None if depth is None else depth - 1)
    return out


def subtree_on_path(path: list, tokens: list[str], depth: int | None) -> dict | int:
    """The context's node with its ancestors around it, one child each, so that
    ``trie["I"]["want"]["to"]`` reads in the export as in the model."""
    tree = nested_dict(path[-1], depth)
    for i in range(len(tokens) - 1, -1, -1):
        ancestor = path[i]
        tree = {COUNT: ancestor[COUNT], CONTINUATION: ancestor[CONTINUATION], tokens[i]: tree}
    return tree


def export_trie_json(model: "NgramModel", path: str | os.PathLike, context: str = "", depth: int | None = None,
                     sentence_start: bool = False) -> dict:
    """Write the trie, or the part of it under `context`, as JSON (gzip if `path` ends in .gz), atomically.

    The whole trie (no context, no depth) is the model document `ngram.io` writes, so
    ``load_model`` reads a ``.json.gz`` export back. With a context or a depth, the
    document's ``trie`` holds the root's path down to the context, then the subtree
    `depth` levels deep; its format is marked as a subtree so it is never taken for a
    whole model. The context is read as ``ngram show`` reads it (no ``<s>`` unless
    `sentence_start`).
    """
    if depth is not None and depth < 0:
        raise UserError(f"--depth must be at least 0, got {depth}")
    words = context_words(model, context, sentence_start)
    tokens = model.to_vocab(words)
    whole = not tokens and depth is None
    if whole:
        document = json_document(model)
    else:
        trie = subtree_on_path(context_path(model.root, tokens, words), tokens, depth)
        document = {**json_document(model, trie), "format": VIEW_FORMAT, "context": tokens, "depth": depth}
        del document["vocab"]  # a part of the trie is read by its tokens; the vocabulary would outweigh it
    if model.trie.kind == ARPA_KIND:
        document["format"] = VIEW_FORMAT  # its counts read 0: never to be loaded as a counted model
    data = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    path = Path(path)
    with atomic_write(path) as handle:
        handle.write(gzip.compress(data, compresslevel=3, mtime=0) if path.name.endswith(".gz") else data)
    summary = {"format": "trie-json", "output": str(path), "bytes": path.stat().st_size, "whole_trie": whole,
               "context": tokens, "depth": depth, "nodes": count_nodes(document["trie"])}
    if model.trie.kind == ARPA_KIND:
        summary["note"] = NO_COUNTS
    return summary


def count_nodes(tree: dict | int) -> int:
    """Nodes of a nested-dict trie (the root included), walked without recursion (a trie can be deep)."""
    nodes, stack = 0, [tree]
    while stack:
        node = stack.pop()
        nodes += 1
        if isinstance(node, dict):
            stack.extend(child for token, child in node.items() if token not in (COUNT, CONTINUATION))
    return nodes
