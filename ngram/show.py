"""The trie as the nested object it is: ``{"I": {"want": {"to": {"be": …, "know": …}}}}``.

`subtree` cuts the part of the trie under a context out of the model, as plain data
(what ``ngram show --json`` prints); `render_subtree` writes it as a JavaScript object a
teacher can project, with each node's count in a comment. For "I want to be a doctor.
I want to know the truth. You want to be free." (and three sentences about a cat), order 3::

    >>> print(render_subtree(subtree(model, "want", depth=2, top=1)))
    {  // the root: 52 tokens, <s> and </s> included
      "want": {  // 3 times, after 2 different words
        "to": {  // 3 times, after 2 different words
          "be": 2,
          // … and 1 more
        },
      },
      // … and 21 more
    }

A leaf of the deepest level is its bare count, as in the trie; a node cut by the depth
shows as ``{…}`` with how many next words were not shown.

Every node of the data has the same shape::

    {"token": "to",          # null for the root
     "count": 56,            # times the n-gram (root: every token position) occurred
     "continuation": 3,      # different tokens seen right before it (Kneser-Ney's
                             #   continuation count); null at the deepest level, which stores none
     "children": [...],      # the nodes that followed, most frequent first (at most --top)
     "more": 20}             # children not listed: cut by --top, or all of them below --depth

The context is the tokens of its last sentence, mapped to the vocabulary (unknown words
become ``<unk>``), as ``predict`` reads it but WITHOUT ``<s>``: ``"I want to"`` shows the
n-gram wherever it occurs. ``sentence_start=True`` puts ``<s>`` first, showing only the
occurrences that begin a sentence. An empty context shows the root: the unigrams.

Only the Mapping face of a node is read (``node.get``, ``node.items()``: the reserved keys
first, then the children most frequent first; a leaf is a bare count), so this works the
same on any storage of the trie.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from itertools import islice
from typing import TYPE_CHECKING, Iterator, Sequence

from corpora import UserError
from corpora.tokenizers import BOS, UNK

from .trie import CONTINUATION, COUNT, RESERVED, count_of

if TYPE_CHECKING:
    from .model import NgramModel


# ------------------------------------------------------------------ the data
def subtree(model: "NgramModel", context: str | Sequence[str], depth: int = 2, top: int = 10,
            sentence_start: bool = False) -> dict:
    """The trie under `context`, `depth` levels deep, at most `top` children a node.

    Returns ``{"context": [tokens], "depth": depth, "top": top, "tree": root node}``; the
    root's single path down to the context node is the outer nesting.
    """
    if depth < 0 or top < 1:
        raise UserError(f"--depth must be at least 0 and --top at least 1, got {depth} and {top}")
    words = context_words(model, context, sentence_start)
    tokens = model.to_vocab(words)
    path = context_path(model.root, tokens, words)
    tree = node_data(tokens[-1] if tokens else None, path[-1], depth, top)
    for i in range(len(tokens) - 1, -1, -1):  # wrap it in its ancestors: path[i] is the parent of path[i + 1]
        parent = node_data(tokens[i - 1] if i else None, path[i], 0, top)
        tree = {**parent, "children": [tree], "more": parent["more"] - 1}  # only the child on the path
    return {"context": list(tokens), "depth": depth, "top": top, "tree": tree}


def context_words(model: "NgramModel", context: str | Sequence[str], sentence_start: bool) -> list[str]:
    """The context's tokens as typed (its last sentence), ``<s>`` first if asked; checked against the order."""
    if isinstance(context, str):
        sentences = list(model.tokenizer.sentences(context)) if context.strip() else []
        words = sentences[-1] if sentences else []
    else:
        words = list(context)
    words = [BOS, *words] if sentence_start else words
    if len(words) > model.order:
        raise UserError(f"the trie holds n-grams of at most {model.order} tokens; the context has {len(words)}")
    return words


def context_path(root: Mapping, tokens: Sequence[str], words: Sequence[str]) -> list:
    """The nodes from the root down to the context's node (root first), or a one-line error
    naming the longest start of the context that was seen (`words`: the context as typed)."""
    path = [root]
    for i, token in enumerate(tokens):
        node = path[-1].get(token) if not isinstance(path[-1], int) else None
        if node is None:
            where = (
                f"the longest seen start is “{' '.join(words[:i])}” ({count_of(path[-1]):,} times)"
                if i else "not even its first token was seen"
            )
            unknown = [w for w, t in zip(words, tokens) if w != t]
            note = f" ({', '.join(unknown)}: not in the vocabulary, read as {UNK})" if unknown else ""
            raise UserError(f"“{' '.join(words)}” never occurred in the building text{note}; {where}")
        path.append(node)
    return path


def node_data(token: str | None, node, depth: int, top: int) -> dict:
    """One node as data: count, continuation count, and its first `top` children `depth` levels down."""
    if isinstance(node, int):  # a leaf at the deepest level: a bare count
        return {"token": token, "count": node, "continuation": None, "children": [], "more": 0}
    shown = islice(children_of(node), top) if depth > 0 else ()  # only the first `top` are read: the
    kids = [node_data(child_token, child, depth - 1, top) for child_token, child in shown]  # root has ~10^5
    total = len(node) - len(RESERVED)  # the Mapping's length counts the reserved keys too
    return {"token": token, "count": node[COUNT], "continuation": node[CONTINUATION], "children": kids, "more": total - len(kids)}


def children_of(node: Mapping) -> Iterator[tuple[str, object]]:
    """A node's (token, child) pairs, most frequent first, read through the Mapping face only."""
    for token, child in node.items():
        if token not in RESERVED:
            yield token, child


# ------------------------------------------------------------------ the picture
def render_subtree(data: dict, unit: str = "word") -> str:
    """`subtree`'s data as a JavaScript object, one node a line, each count in a comment.

    A leaf of the deepest level is its bare count (``"be": 5,``), as in the trie; a node
    cut by the depth is ``{…}``; children left out by ``top`` are counted in a last
    ``// … and N more`` line. `unit` names what the tokens are ("word", "token").
    """
    root = data["tree"]
    lines = [f"{{  // the root: {count_words(root['count'], 'token')}, <s> and </s> included"]
    lines += child_lines(root, 1, unit)
    lines.append("}")
    return "\n".join(lines)


def child_lines(node: dict, level: int, unit: str) -> list[str]:
    """The lines of a node's listed children, then how many were left out."""
    pad = "  " * level
    lines = []
    for child in node["children"]:
        lines += entry_lines(child, level, unit)
    if node["more"]:
        lines.append(f"{pad}// … and {node['more']:,} more" if node["children"] else f"{pad}// … {node['more']:,} not shown")
    return lines


def entry_lines(node: dict, level: int, unit: str) -> list[str]:
    """One child as ``"token": …,`` with its count: a bare count, ``{…}`` when cut, or an object."""
    pad = "  " * level
    key = json.dumps(node["token"], ensure_ascii=False)
    if node["continuation"] is None and not node["children"]:  # a leaf of the deepest level
        return [f"{pad}{key}: {node['count']},"]
    about = describe_node(node, unit)
    if not node["children"]:
        cut = f"; {count_words(node['more'], 'next ' + unit)} not shown" if node["more"] else ""
        return [f"{pad}{key}: {{{'…' if node['more'] else ''}}},  // {about}{cut}"]
    return [f"{pad}{key}: {{  // {about}", *child_lines(node, level + 1, unit), f"{pad}}},"]


def describe_node(node: dict, unit: str) -> str:
    """A node's comment: "1,234 times, after 56 different words" (no "after" when nothing came before)."""
    text = count_words(node["count"], "time")
    if node["continuation"]:
        text += f", after {count_words(node['continuation'], 'different ' + unit)}"
    return text


def count_words(n: int, word: str) -> str:
    """'1 time', '1,234 times' (``corpora.cli_common.plural`` would import click into the library)."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"
