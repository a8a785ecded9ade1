"""Scoring text: log-probabilities token by token, and totals as a `corpora.units.Score`.

`NgramModel.token_logprobs` and `NgramModel.score` are thin faces over these functions.
Perplexities per token, per word and bits per byte are `Score`'s properties: the one
place where they are computed for both models.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import numpy as np

from corpora import UserError
from corpora.tokenizers import BOS, EOS, UNK
from corpora.units import Score, TextUnits

from .smoothing import Smoothing, sequences_flat

if TYPE_CHECKING:
    from .model import NgramModel


def probability_method(model: "NgramModel", smoothing: str, order: int | None, **options: float) -> Smoothing:
    """A smoothing method that gives true probabilities (stupid backoff is refused)."""
    method = model.smoothing(smoothing, order, **options)
    if not method.normalised:
        raise UserError(f"{smoothing} is a ranking score, not a probability: it has no perplexity")
    return method


def positions(sequences: Sequence[Sequence[int]], width: int) -> tuple[np.ndarray, np.ndarray]:
    """Every position after the first of each id sequence: the `width` ids before it (right-
    aligned, -1 before the sequence starts) and the id at it — the rows `probs_many` takes."""
    flat = np.fromiter((t for s in sequences for t in s), dtype=np.int64)
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    at = np.flatnonzero(np.arange(len(flat)) > starts)  # every position but each sequence's first
    history = np.full((len(at), width), -1, dtype=np.int64)
    for j in range(1, width + 1):  # column width - j holds the token j places back
        back = at - j
        inside = back >= starts[at]
        history[inside, width - j] = flat[back[inside]]
    return history, flat[at]


def sequence_logprobs(method: Smoothing, mapped: Sequence[str]) -> np.ndarray:
    """log p(mapped[i] | mapped[:i]) in nats for i = 1 … len-1 (-inf where p = 0).

    `mapped` is one sequence already mapped to the vocabulary, starting with ``<s>``;
    each token sees at most the `method.order` - 1 tokens before it.
    """
    ids = method.counts.trie.token_id
    return logs(method.probs_flat(*sequences_flat([[ids[t] for t in mapped]])))


def logs(p: np.ndarray) -> np.ndarray:
    """Natural logs (-inf for 0), with the same `math.log` the one-at-a-time path used."""
    return np.array([math.log(x) if x > 0 else -math.inf for x in p.tolist()], dtype=np.float64)


def token_logprobs(
    model: "NgramModel", tokens: Sequence[str], smoothing: str, order: int | None, **options: float
) -> np.ndarray:
    """log p(token_i | the tokens before it), in nats, for each token of ONE tokenized sequence.

    `tokens` are the tokenizer's (``model.tokenizer.sentences(text)`` gives them);
    tokens outside the vocabulary are scored as ``<unk>``. The context starts with
    ``<s>``; the closing ``</s>`` is not scored, so entry i belongs to tokens[i]
    (with BPE tokens, to the transformer's token i of the same text). A token of
    probability 0 (only MLE gives those) gets -inf.
    """
    if isinstance(tokens, str):
        raise UserError("token_logprobs takes a list of tokens, not a text (see model.tokenizer.sentences)")
    method = probability_method(model, smoothing, order, **options)
    return sequence_logprobs(method, [BOS, *model.to_vocab(tokens)])


def score_text(
    model: "NgramModel", text: str, smoothing: str, order: int | None, progress: bool, **options: float
) -> Score:
    """Total NLL of `text`: every sentence wrapped in ``<s> … </s>``, unknown words as ``<unk>``.

    With BPE tokens the whole text is one sequence. Per-word and per-byte figures
    use the whitespace words and the UTF-8 bytes of `text`, whatever the tokens.
    """
    method = probability_method(model, smoothing, order, **options)
    sentences = list(model.tokenizer.sentences(text))
    if not sentences:
        raise UserError("the text has no tokens to score")
    shown = sentences
    if progress:
        from tqdm import tqdm  # only when a bar is shown: importing ngram imports no tqdm

        shown = tqdm(sentences, desc="scoring", unit="sent", leave=False)
    ids = model.trie.token_id
    sequences, oov = [], 0
    for sentence in shown:
        mapped = [BOS, *model.to_vocab(sentence), EOS]
        oov += sum(1 for a, b in zip(sentence, mapped[1:]) if b == UNK and a != UNK)
        sequences.append([ids[t] for t in mapped])
    nll, tokens, zeros = 0.0, 0, 0
    for logp in logs(method.probs_flat(*sequences_flat(sequences))).tolist():
        if logp == -math.inf:
            zeros += 1
        else:
            nll -= logp
        tokens += 1
    return Score(
        nll=nll,
        tokens=tokens,
        units=TextUnits.of(text),
        token_kind=model.tokenizer.describe(),
        zero_prob=zeros,
        oov=oov,
        setting={"smoothing": smoothing, "order": method.order, "sentences": len(sentences), **options},
    )
