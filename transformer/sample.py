"""Turning logits into text: greedy choice, temperature, top-k, top-p, and the loop.

One step of generation: run the model on the newest token (the KV cache remembers the
rest), turn the last position's logits into probabilities, pick a token, repeat. The
same seed gives the same tokens.
"""
from __future__ import annotations

import codecs
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np

from .model import GPT2

if TYPE_CHECKING:
    from corpora.tokenizers.bpe import BPETokenizer


@dataclass(frozen=True)
class Sampling:
    """How to choose the next token.

    temperature 0 means greedy (always the most likely token). Otherwise logits are
    divided by the temperature (below 1: bolder favourites; above 1: flatter), then
    only the top_k most likely tokens (0 = all) and the smallest set of tokens whose
    probabilities add up to top_p (1.0 = all) stay in the draw.
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


GREEDY = Sampling(temperature=0.0)


def probabilities(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """softmax(logits / temperature) as float64 (a new array)."""
    z = logits.astype(np.float64) / temperature
    z -= z.max()
    p = np.exp(z)
    return p / p.sum()


def keep_top_k(probs: np.ndarray, k: int) -> np.ndarray:
    """Zero all but the k most likely tokens (k = 0 keeps all). Not renormalised."""
    if k <= 0 or k >= probs.size:
        return probs
    cutoff = np.partition(probs, -k)[-k]
    return np.where(probs >= cutoff, probs, 0.0)


def keep_top_p(probs: np.ndarray, p: float) -> np.ndarray:
    """Nucleus: keep the most likely tokens until their total reaches p (at least one)."""
    if p >= 1.0:
        return probs
    order = np.argsort(-probs, kind="stable")
    total = probs.sum()
    before = np.cumsum(probs[order]) - probs[order]  # mass of the tokens ranked above
    keep = order[before < p * total]
    kept = np.zeros_like(probs)
    kept[keep] = probs[keep]
    return kept


def choose_token(logits: np.ndarray, sampling: Sampling, rng: np.random.Generator) -> int:
    """Pick the next token id from one position's logits."""
    if sampling.greedy:
        return int(np.argmax(logits))
    probs = keep_top_p(keep_top_k(probabilities(logits, sampling.temperature), sampling.top_k), sampling.top_p)
    cumulative = np.cumsum(probs)
    return int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))


def fit_to_window(n_prompt: int, max_new_tokens: int, n_ctx: int) -> tuple[int, int]:
    """How many prompt tokens to keep (the latest ones) and how many to generate, so that
    prompt + generated fits the context window. Keeps at least one prompt token."""
    max_new = min(max_new_tokens, n_ctx - 1)
    keep = min(n_prompt, n_ctx - max_new)
    return keep, max_new


def generate_ids(
    model: GPT2,
    prompt_ids: list[int],
    max_new_tokens: int = 50,
    sampling: Sampling = GREEDY,
    seed: int | None = None,
    stop_id: int | None = None,
    use_cache: bool = True,
) -> Iterator[int]:
    """Yield new token ids one at a time (so callers can stream them).

    A prompt too long for the window loses its oldest tokens (with a warning). Stops
    after max_new_tokens, or after yielding stop_id (e.g. <|endoftext|>). Without the
    cache every step reruns the whole sequence: same tokens, much slower (for teaching
    and for the tests).
    """
    if not prompt_ids:
        raise ValueError("generation needs at least one prompt token")
    keep, max_new = fit_to_window(len(prompt_ids), max_new_tokens, model.config.n_ctx)
    if keep < len(prompt_ids) or max_new < max_new_tokens:
        warnings.warn(
            f"prompt + new tokens exceed the {model.config.n_ctx}-token window: using the last "
            f"{keep} prompt tokens and at most {max_new} new ones",
            stacklevel=2,
        )
    ids = list(prompt_ids[len(prompt_ids) - keep:])
    rng = np.random.default_rng(seed)
    logits, cache = model.forward(np.array(ids), model.new_cache() if use_cache else None)
    for step in range(max_new):
        token = choose_token(logits, sampling, rng)
        yield token
        ids.append(token)
        if token == stop_id or step == max_new - 1:
            return
        if use_cache:
            logits, cache = model.forward(np.array([token]), cache)
        else:
            logits, _ = model.forward(np.array(ids))


def generate(model: GPT2, prompt_ids: list[int], *args, **kwargs) -> list[int]:
    """The new token ids, all at once: `generate_ids` (same arguments) collected in a list."""
    return list(generate_ids(model, prompt_ids, *args, **kwargs))


def stream_text(tokenizer: "BPETokenizer", ids: Iterable[int]) -> Iterator[str]:
    """Decode ids into text pieces as they arrive. A character split across tokens
    (an emoji is often 2-3 tokens) is held back until its last byte arrives."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    for token in ids:
        piece = decoder.decode(tokenizer.token_bytes(token))
        if piece:
            yield piece
    tail = decoder.decode(b"", final=True)
    if tail:
        yield tail
