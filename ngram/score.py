"""Scoring text: log-probabilities token by token, and totals as a `corpora.units.Score`.

`NgramModel.token_logprobs` and `NgramModel.score` are thin faces over these functions.
Perplexities per token, per word and bits per byte are `Score`'s properties: the one
place where they are computed for both models.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from corpora import UserError
from corpora.tokenizers import BOS, EOS, UNK
from corpora.units import Score, TextUnits

from .smoothing import Smoothing, ngram_nodes, sequences_flat

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
    sentences, sequences, oov = text_sequences(model, text, progress)
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


def text_sequences(model: "NgramModel", text: str, progress: bool = False) -> tuple[list[list[str]], list[list[int]], int]:
    """The sentences of `text` (the tokenizer's), each as the id sequence ``<s> … </s>`` the
    model scores (unknown tokens as ``<unk>``), and how many tokens were unknown."""
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
    return sentences, sequences, oov


# ------------------------------------------------------------------ token by token
@dataclass
class TokenScore:
    """One scored token, as KenLM's ``query -v word`` lists it."""

    sentence: int  # which sentence of the text (0 first)
    token: str  # as written in the text (``</s>`` for the end of a sentence)
    model_token: str  # as the model read it: the token, or ``<unk>`` if outside the vocabulary
    log10_prob: float  # log10 p(token | the tokens before it in its sentence); -inf if p = 0
    matched_order: int  # length of the longest n-gram ending here that the model counted (KenLM's n-gram length)

    def to_dict(self) -> dict:
        """The fields, with -inf (probability 0) as None: JSON has no infinity."""
        out = asdict(self)
        if math.isinf(self.log10_prob):
            out["log10_prob"] = None
        return out


def matched_orders(method: Smoothing, flat: np.ndarray, at: np.ndarray, nodes: list[np.ndarray]) -> np.ndarray:
    """For each position in `at`, the length of the longest n-gram ending there (at most the
    method's order) that the trie holds: `ngram_nodes` found them all. A token never counted
    even alone still gets 1, as in KenLM, where every vocabulary word is a unigram."""
    matched = np.ones(len(at), dtype=np.int64)
    for m in range(2, min(method.order, len(nodes) - 1) + 1):
        start = at - (m - 1)
        found = (start >= 0) & (nodes[m][np.maximum(start, 0)] >= 0)
        matched[found] = m  # an n-gram found has every shorter suffix found too
    return matched


def score_tokens(
    model: "NgramModel", text: str, smoothing: str = "kn", order: int | None = None, **options: float
) -> list[TokenScore]:
    """Every token of `text` with its log10 probability and the n-gram order it matched.

    The same positions and probabilities as `score_text` (their log10s sum to its total:
    -nll / ln 10), one `TokenScore` each, ``</s>`` closing every sentence.
    """
    method = probability_method(model, smoothing, order, **options)
    sentences, sequences, _ = text_sequences(model, text)
    flat, at = sequences_flat(sequences)
    nodes = ngram_nodes(model.trie, flat, method.order, method.counts.unigram_index())
    probs = method.probs_flat(flat, at, nodes)
    matched = matched_orders(method, flat, at, nodes)
    vocab = model.trie.vocab
    written = [(i, t) for i, sentence in enumerate(sentences) for t in (*sentence, EOS)]
    return [
        TokenScore(i, token, vocab[token_id], math.log10(p) if p > 0 else -math.inf, m)
        for (i, token), token_id, p, m in zip(written, flat[at].tolist(), probs.tolist(), matched.tolist())
    ]
