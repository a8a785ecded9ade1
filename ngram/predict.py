"""Predicting the next token, and explaining it: followers of the longest seen context,
with their counts and probabilities, and a sentence of the building text where it occurs.

`NgramModel.predict` and `NgramModel.example_sentence` are thin faces over these functions.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Sequence

from corpora import UserError, corpus_from_record
from corpora.tokenizers import BOS, EOS, UNK

from . import trie
from .build import SPECIALS

if TYPE_CHECKING:
    from .model import NgramModel


@dataclass
class Candidate:
    """One possible next token."""

    token: str
    count: int  # times it followed the matched context (0 if it never did)
    probability: float  # under the chosen smoothing, given the whole context
    order: int  # n-gram order it was found at (length of matched context + 1)


@dataclass
class Prediction:
    """What comes next after a context, and why."""

    context: list[str]  # the context as the model sees it (vocabulary tokens)
    matched_context: list[str]  # the longest suffix of it seen in the corpus
    matched_order: int  # n-gram order used: len(matched_context) + 1
    context_count: int  # how often the matched context occurred
    candidates: list[Candidate]
    smoothing: str
    notes: list[str] = field(default_factory=list)
    example: str | None = None  # a corpus sentence where the matched context occurs

    def to_dict(self) -> dict:
        return asdict(self)


def predict(model: "NgramModel", context: str | Sequence[str], k: int, smoothing: str, example: bool) -> Prediction:
    """The top-`k` next tokens: longest matching context first, backing off to shorter ones.

    Candidates are ranked by how often they followed the longest context that was
    seen in the corpus; if it had fewer than `k` followers, the next shorter context
    fills in. Each carries its real count and its probability under `smoothing`.
    """
    tokens = model.context_tokens(context)
    notes = []
    words = [t for t in tokens if t != BOS]
    if words and all(t == UNK for t in words):
        notes.append("every context word is unknown to the model; predictions fall back to unigrams")
        tokens = []
    method = model.smoothing(smoothing)
    found: list[tuple[str, int, int]] = []  # (token, count, order)
    seen: set[str] = set()
    matched: list[str] | None = None
    matched_count = 0
    for n in range(min(model.order, len(tokens) + 1), 0, -1):
        h = tokens[len(tokens) - (n - 1):] if n > 1 else []
        node = model.counts.context_node(h)
        if node is None or len(node) <= len(trie.RESERVED):  # unseen, or nothing ever followed
            continue
        if matched is None:
            matched, matched_count = h, trie.count_of(node)
        for token, count in followers(node, k + len(seen)):
            if token not in seen:
                found.append((token, count, n))
                seen.add(token)
                if len(found) == k:
                    break
        if len(found) >= k:
            break
    probabilities = method.probs(tokens, [token for token, _, _ in found])
    candidates = [Candidate(t, c, p, n) for (t, c, n), p in zip(found, probabilities)]
    if matched is None:
        matched = []
    if len(matched) + 1 < min(model.order, len(tokens) + 1):
        notes.append(f"backed off: the longest context seen in the corpus is {len(matched)} tokens")
    prediction = Prediction(
        context=tokens,
        matched_context=matched,
        matched_order=len(matched) + 1,
        context_count=matched_count,
        candidates=candidates,
        smoothing=smoothing,
        notes=notes,
    )
    if example and candidates and matched:
        prediction.example = model.example_sentence(matched, candidates[0].token)
    return prediction


def followers(node: dict, k: int) -> list[tuple[str, int]]:
    """The `k` most frequent tokens that followed a context node, with their counts.

    Children are stored most frequent first (see ``counting.most_frequent_first``),
    so these are the first `k` children.
    """
    top = []
    for token, child in trie.children(node):
        if token != BOS:
            top.append((token, trie.count_of(child)))
            if len(top) == k:
                break
    return top


# ------------------------------------------------------------------ the "why"
def training_documents(corpus_record: dict) -> list[str]:
    """The building part of every document of a model's corpus (none if it is gone)."""
    try:
        corpus = corpus_from_record(corpus_record)
    except UserError:
        return []
    return list(corpus.train_texts())


def example_sentence(model: "NgramModel", context: Sequence[str], token: str | None = None) -> str | None:
    """One sentence from the building text where `context` (then `token`) occurs."""
    wanted = [t for t in context if t not in (BOS, EOS)]
    if token and token not in SPECIALS:
        wanted.append(token)
    if not wanted:
        return None
    pattern = model.tokenizer.phrase_pattern(wanted)
    if pattern is None:
        return None
    for text in model.train_documents():
        match = pattern.search(text)
        if match:
            return sentence_around(text, match.start(), match.end())
    return None


def sentence_around(text: str, start: int, end: int, limit: int = 160) -> str:
    """The sentence of `text` around `start:end`, cut to about `limit` characters each side."""
    before = text[max(0, start - limit): start]
    enders = [m.end() for m in re.finditer(r"[.!?][\"'”’)]*\s|\n\s*\n", before)]
    left = start - len(before) + (enders[-1] if enders else 0)
    tail = re.search(r"[.!?][\"'”’)]*(?=\s)|\n\s*\n", text[end: end + limit])
    right = end + (tail.end() if tail else min(limit, len(text) - end))
    sentence = " ".join(text[left:right].replace("_", "").split())
    cut_left = not enders and left > 0
    cut_right = tail is None and right < len(text)
    return ("… " if cut_left else "") + sentence + (" …" if cut_right else "")
