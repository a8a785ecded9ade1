"""How surprised is GPT-2 by a text? Log-probabilities and perplexity.

Every token t gets log p(token_t | the tokens before it). A text longer than the
context window is read with a sliding window (Hugging Face's recipe): windows of
`window` tokens start every `stride` tokens, and each token is scored exactly once, in
the first window that reaches it, so it sees between window - stride and window - 1
earlier tokens. A smaller stride means more context per token and more computation.
The stride must be smaller than the window: with stride == window the first token of
every window would have no context at all (Hugging Face's recipe then silently leaves
those tokens out of the total).

By default an <|endoftext|> token is put in front of the text, so the first real token
is scored too (GPT-2 saw that token between documents in training). Then every byte of
the text is predicted, and the per-word and per-byte figures cover the whole text.

The context-window ablation. `short_context_logprobs` scores every token with only the
previous N tokens visible, each window run as a text of its own (positions from 0), to
set the transformer beside an n-gram model of order N + 1 at an equal window. It is the
sliding window with window N + 1 and stride 1, but batched: many windows go through the
model in one pass, and only their last positions are unembedded.

Perplexity per token is exp(total NLL / tokens). It depends on the tokenizer, so to
compare with another model (an n-gram over words, say) `perplexity` returns the one
score type both models share, corpora.units.Score: per word exp(NLL / words), bits per
byte NLL / ln 2 / bytes, and a token_kind naming the tokenizer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from corpora.units import Score, TextUnits

from .config import GPT2Config
from .model import GPT2

if TYPE_CHECKING:
    from corpora.tokenizers.bpe import BPETokenizer

LOGIT_ROWS = 256  # unembed this many positions at a time: bounds memory at 256 x V floats
ACTIVATION_BUDGET = 64 * 2**20  # bytes of activations for one batch of short windows (more is no faster)


def window_and_stride(window: int | None, stride: int | None, n_ctx: int) -> tuple[int, int]:
    """The sliding window's defaults, the one place they are set: the model's whole
    context window (a larger window is cut to it), and half the window between starts."""
    window = min(window or n_ctx, n_ctx)
    return window, stride or max(1, window // 2)


def progress_bar(**options):
    """A tqdm progress bar, imported only when scoring starts (importing the package
    imports no tqdm)."""
    from tqdm import tqdm

    return tqdm(**options)


def windows(n_ids: int, window: int, stride: int) -> Iterator[tuple[int, int, int]]:
    """(begin, end, first_target) for each sliding window over n_ids tokens: run the
    model on ids[begin:end] and score the tokens first_target .. end-1."""
    if window < 2 or not 0 < stride < window:
        raise ValueError(f"need window >= 2 and 0 < stride < window (got window={window}, stride={stride})")
    scored_up_to = 1  # the very first token has no context, so it is never scored
    for begin in range(0, n_ids, stride):
        end = min(begin + window, n_ids)
        if end > scored_up_to:
            yield begin, end, scored_up_to
            scored_up_to = end
        if end == n_ids:
            return


def count_windows(n_ids: int, window: int, stride: int) -> int:
    return sum(1 for _ in windows(n_ids, window, stride))


def logprob_of(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """log softmax(logits)[i, targets[i]] = logits[i, t] - log(sum(exp(logits[i]))).

    Consumes `logits` (the exponentials are written over it, to save memory)."""
    picked = logits[np.arange(len(targets)), targets].astype(np.float64)
    peak = logits.max(axis=-1, keepdims=True)
    logits -= peak
    np.exp(logits, out=logits)
    return picked - peak[:, 0] - np.log(logits.sum(axis=-1, dtype=np.float64))


def target_logprobs(model: GPT2, h: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """log p(targets[i]) from hidden states h[i] (after ln_f), a few rows at a time so the
    (rows, V) logits never get large."""
    out = np.empty(len(targets), np.float64)
    for lo in range(0, len(targets), LOGIT_ROWS):
        out[lo:lo + LOGIT_ROWS] = logprob_of(model.unembed(h[lo:lo + LOGIT_ROWS]), targets[lo:lo + LOGIT_ROWS])
    return out


def token_logprobs(
    model: GPT2,
    ids: list[int] | np.ndarray,
    window: int | None = None,
    stride: int | None = None,
    progress: bool = False,
) -> np.ndarray:
    """log p(ids[t] | earlier ids) in nats for t = 1 .. len(ids)-1 (sliding window).

    window defaults to the model's context size, stride to half the window (window_and_stride).
    """
    ids = np.asarray(ids, dtype=np.int64)
    window, stride = window_and_stride(window, stride, model.config.n_ctx)
    scores = np.empty(max(len(ids) - 1, 0), np.float64)
    spans = windows(len(ids), window, stride)
    bar = progress_bar(iterable=spans, total=count_windows(len(ids), window, stride), disable=not progress,
                       unit="window", desc="scoring", leave=False)
    for begin, end, first in bar:
        h, _ = model.hidden(ids[begin:end])  # no KV cache: nothing carries over between windows
        # row i of h predicts ids[begin + i + 1]; we need the rows for targets first..end-1
        scores[first - 1:end - 1] = target_logprobs(model, h[first - begin - 1:end - begin - 1], ids[first:end])
    return scores


def windows_per_batch(config: GPT2Config, context: int, budget: int = ACTIVATION_BUDGET) -> int:
    """How many windows of `context` tokens one pass may run with about `budget` bytes of
    float32 activations. Per window: the widest arrays alive at once for each token (the
    MLP's 4C and its GELU temporary, 3C of queries, keys and values) and the H x T x T
    attention weights. The logits are not counted: they go LOGIT_ROWS rows at a time."""
    floats = context * 11 * config.n_embd + config.n_head * context * context
    return max(1, budget // (4 * floats))


def short_context_logprobs(
    model: GPT2,
    ids: list[int] | np.ndarray,
    context: int,
    batch_size: int | None = None,
    progress: bool = False,
) -> np.ndarray:
    """log p(ids[t] | ids[max(0, t - context):t]) in nats for t = 1 .. len(ids)-1: every
    token scored with only the previous `context` tokens visible (as an n-gram model of
    order context + 1 sees it). Same positions as token_logprobs, which it equals when
    context >= len(ids) - 1, and token_logprobs(model, ids, context + 1, 1) in general.

    Each window is run as a text of its own. The first `context` targets see the start of
    the text, and their windows are the prefixes ids[:t]: one ordinary causal pass over
    ids[:context] scores them all. Every later target has a full window of `context`
    tokens; those go batch_size windows per pass (default: windows_per_batch), and only
    each window's last position is worked out in the last block and unembedded.
    The cost is about context x len(ids) token-positions: meant for small contexts.
    """
    ids = np.asarray(ids, dtype=np.int64)
    if not 1 <= context <= model.config.n_ctx:
        raise ValueError(f"context must be in [1, {model.config.n_ctx}] tokens, got {context}")
    scores = np.empty(max(len(ids) - 1, 0), np.float64)
    if len(ids) < 2:
        return scores
    n_prefix = min(context, len(ids) - 1)  # targets 1..n_prefix see everything before them
    h, _ = model.hidden(ids[:n_prefix])
    scores[:n_prefix] = target_logprobs(model, h, ids[1:n_prefix + 1])
    if len(ids) - 1 <= context:
        return scores
    # full[j] = ids[j+1 : j+1+context] predicts targets[j] = ids[j+1+context] (a view, no copy)
    full = sliding_window_view(ids[:-1], context)[1:]
    targets = ids[context + 1:]
    batch_size = batch_size or windows_per_batch(model.config, context)
    with progress_bar(total=len(targets), disable=not progress, unit="tok", desc="scoring", leave=False) as bar:
        for lo in range(0, len(targets), batch_size):
            hi = min(lo + batch_size, len(targets))
            h, _ = model.hidden(full[lo:hi], last_only=True)  # (B, 1, C)
            scores[context + lo:context + hi] = target_logprobs(model, h[:, -1], targets[lo:hi])
            bar.update(hi - lo)
    return scores


@dataclass(frozen=True)
class TextScores:
    """Each token of a text with its log-probability (nats) given what came before."""

    ids: list[int]
    logprobs: list[float]  # same length as ids; NaN for a first token with no context
    tokens: list[str]


def text_ids(tokenizer: "BPETokenizer", text: str, bos: bool = True) -> list[int]:
    """Token ids of the text, with <|endoftext|> in front when bos (so all are scored)."""
    ids = tokenizer.encode(text)
    return [tokenizer.eot_id, *ids] if bos else ids


def score_text(
    model: GPT2,
    tokenizer: "BPETokenizer",
    text: str,
    bos: bool = True,
    window: int | None = None,
    stride: int | None = None,
) -> TextScores:
    """Log-probability of every token of the text."""
    ids = text_ids(tokenizer, text, bos)
    logprobs = token_logprobs(model, ids, window, stride).tolist() if len(ids) > 1 else []
    if bos:
        ids = ids[1:]
    else:
        logprobs = [math.nan, *logprobs][: len(ids)]
    return TextScores(ids, logprobs, [tokenizer.token_str(i) for i in ids])


def token_kind(model: GPT2, tokenizer: "BPETokenizer") -> str:
    """What a token is, for the Score: "BPE (gpt2, 50,257)", the model's name (its folder,
    or its Hugging Face repository) and the tokenizer's vocabulary size."""
    parts = Path(model.source).parts
    repos = [part[len("models--"):].replace("--", "/") for part in parts if part.startswith("models--")]
    name = repos[0] if repos else (parts[-1] if parts else "GPT-2")
    return f"BPE ({name}, {tokenizer.vocab_size:,})"


def perplexity(
    model: GPT2,
    tokenizer: "BPETokenizer",
    text: str,
    window: int | None = None,
    stride: int | None = None,
    bos: bool = True,
    progress: bool = False,
    context: int | None = None,
) -> Score:
    """Total NLL of the text with the counts to report it per token, word or byte.

    With `context`, every token sees only the previous `context` tokens
    (short_context_logprobs) instead of the sliding window; that is reported as what it
    equals, window context + 1 with stride 1, and window and stride must not be given.
    The Score's setting says which: {"window": ..., "stride": ..., "context": N or None}."""
    ids = text_ids(tokenizer, text, bos)
    if len(ids) < 2:
        raise ValueError("the text is too short to score (it needs at least one token after the first)")
    if context is not None:
        if window is not None or stride is not None:
            raise ValueError("give either context or window/stride, not both")
        window, stride = context + 1, 1
        logprobs = short_context_logprobs(model, ids, context, progress=progress)
    else:
        window, stride = window_and_stride(window, stride, model.config.n_ctx)
        logprobs = token_logprobs(model, ids, window, stride, progress)
    return Score(
        nll=float(-logprobs.sum()),
        tokens=len(logprobs),
        units=TextUnits.of(text),
        token_kind=token_kind(model, tokenizer),
        setting={"window": window, "stride": stride, "context": context},
    )
