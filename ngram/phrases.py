"""Longer continuations: whole phrases ranked by beam search, and generated text.

`NgramModel.complete`, `NgramModel.generate` and `NgramModel.render` are thin faces
over these functions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from corpora import UserError
from corpora.tokenizers import BOS, EOS, UNK, Tokenizer

if TYPE_CHECKING:
    from .model import NgramModel


@dataclass
class Phrase:
    """A whole continuation of several tokens with its probability."""

    tokens: list[str]
    text: str
    probability: float


def complete(
    model: "NgramModel", context: str | Sequence[str], length: int, k: int, smoothing: str, beam: int
) -> list[Phrase]:
    """Rank whole continuations of `length` words by their joint probability (beam search).

    Every phrase has exactly `length` tokens, none of them ``<unk>``, ``</s>`` or ``<s>``:
    a phrase is something a person could type next, not "the sentence ends" or "some rare
    word". Its probability is the product of its tokens' probabilities, unchanged.
    """
    if length < 1:
        raise UserError(f"phrase length must be at least 1, got {length}")
    start = model.context_tokens(context)
    method = model.smoothing(smoothing)
    not_words = [model.counts.index[t] for t in (EOS, UNK) if t in model.counts.index]
    beams: list[tuple[float, list[str]]] = [(0.0, [])]
    for _ in range(length):
        grown = []
        for logp, phrase in beams:
            p = method.distribution(start + phrase)
            p[not_words] = 0.0
            top = np.argsort(-p, kind="stable")[:beam]
            grown.extend((logp + math.log(p[i]), phrase + [model.counts.predictable[i]]) for i in top if p[i] > 0)
        beams = sorted(grown, key=lambda b: -b[0])[:beam]
    return [Phrase(phrase, model.tokenizer.detokenize(phrase), math.exp(logp)) for logp, phrase in beams[:k]]


def generate(
    model: "NgramModel",
    prompt: str | Sequence[str],
    max_tokens: int,
    temperature: float,
    top_k: int | None,
    seed: int | None,
    greedy: bool,
    smoothing: str,
    stop_at_sentence_end: bool,
) -> list[str]:
    """Continue `prompt` token by token: greedy, or sampling with temperature and top-k.

    Returns the new tokens. At a sentence end the model starts a new sentence
    (``</s>`` then a fresh ``<s>`` context) unless `stop_at_sentence_end`.
    """
    if temperature <= 0 and not greedy:
        raise UserError("temperature must be > 0 (use greedy for the most likely token)")
    rng = np.random.default_rng(seed)
    method = model.smoothing(smoothing)
    context = model.context_tokens(prompt)
    new: list[str] = []
    for _ in range(max_tokens):
        p = method.distribution(context)
        unk = model.counts.index[UNK]
        if p.sum() > p[unk]:  # never write "<unk>" unless nothing else is possible
            p[unk] = 0.0
        token = model.counts.predictable[pick_token(p, rng, greedy, temperature, top_k)]
        new.append(token)
        if token == EOS:
            if stop_at_sentence_end:
                break
            context = [BOS]
        else:
            context = context[-(model.order - 1):] + [token] if model.order > 1 else [token]
    return new


def pick_token(p: np.ndarray, rng: np.random.Generator, greedy: bool, temperature: float, top_k: int | None) -> int:
    """Choose an index from probabilities `p`: the most likely, or a sample."""
    if greedy:
        return int(np.argmax(p))
    logits = np.log(np.maximum(p, 1e-300)) / temperature
    if top_k:
        cutoff = np.partition(logits, -top_k)[-top_k] if top_k < len(logits) else -np.inf
        logits = np.where(logits >= cutoff, logits, -np.inf)
    weights = np.exp(logits - logits.max())
    weights[p <= 0] = 0.0
    return int(rng.choice(len(p), p=weights / weights.sum()))


def render(tokenizer: Tokenizer, tokens: Sequence[str]) -> str:
    """Generated tokens as text: sentence ends become line-friendly spaces."""
    pieces, sentence = [], []
    for token in tokens:
        if token == EOS:
            pieces.append(tokenizer.detokenize(sentence))
            sentence = []
        else:
            sentence.append(token)
    if sentence:
        pieces.append(tokenizer.detokenize(sentence))
    return tokenizer.joiner.join(p for p in pieces if p)


def continue_text(tokenizer: Tokenizer, prompt: str, text: str) -> str:
    """`prompt` followed by generated `text`, glued as a reader expects: punctuation sticks
    to the word before it, anything else gets the tokenizer's joiner (a space for words)."""
    glue = "" if text[:1] in tuple(".,;:!?)’”'") else tokenizer.joiner
    return prompt + glue + text
