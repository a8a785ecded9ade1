"""Next-WORD probabilities from a model that predicts BPE tokens.

The n-gram model predicts whole words (its tokens); GPT-2 predicts pieces such as
" night" or " night" + "mare". To put both in one table we ask: what is the probability
that the text after the prompt starts with the word w? Words are cut exactly as the
n-gram tokenizer cuts them (`ngram.tokenize`), so both columns list the same kind of
unit.

    P(first word = w) = sum over token sequences s whose text starts with w followed by a
                        word boundary, of p(s | prompt)

We expand token continuations best-first: the most probable unfinished prefixes get
one more token, until a word boundary (white space, or punctuation that cannot be part
of the word) settles which word they spell. Mass that the expansion budget did not
reach is reported, not guessed: `covered` says how much of the probability is in the
table.
"""
from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field

import numpy as np

from ngram.tokenize import _WORD_OR_PUNCT

# Characters after which a word may still grow: "don" + "'t", "well" + "-known", "." + ".."
_MAY_CONTINUE = "'’-."


def first_word(text: str) -> tuple[str | None, bool]:
    """The first word of `text` as the n-gram tokenizer would cut it, and whether it is final.

    A word is final once something follows it that cannot be part of it: white space,
    or a character that starts another token. Leading white space and underscores are
    skipped (the tokenizer drops them too).
    """
    s = text.lstrip().lstrip("_")
    if not s:
        return None, False
    match = _WORD_OR_PUNCT.match(s)
    if match is None:
        return None, False
    word, rest = match.group(), s[match.end():]
    if not rest:  # a word or "." may still grow; other punctuation marks stand alone
        return word, len(word) == 1 and not word.isalnum() and word not in _MAY_CONTINUE
    if len(rest) == 1 and rest in _MAY_CONTINUE:
        return word, False
    return word, True


@dataclass
class WordDistribution:
    """Next-word probabilities and how they were found."""

    words: dict[str, float]
    covered: float  # probability mass assigned to words in `words`
    expansions: int  # forward passes used
    seconds: float
    top_tokens: list[tuple[str, float]] = field(default_factory=list)  # the first token step

    def top(self, k: int) -> list[tuple[str, float]]:
        return sorted(self.words.items(), key=lambda wp: (-wp[1], wp[0]))[:k]


def softmax_vector(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max()
    p = np.exp(z)
    return p / p.sum()


def next_word_distribution(
    model, tokenizer, prompt_ids: list[int], budget: int = 24, per_step: int = 256, min_mass: float = 1e-5,
    max_depth: int | None = None,
) -> WordDistribution:
    """Expand the model's token continuations after `prompt_ids` into next-word probabilities.

    budget:    forward passes for continuing unfinished words (the first step is free)
    per_step:  only the `per_step` most likely next tokens of each step are followed
    min_mass:  prefixes less likely than this are not expanded
    max_depth: words must be settled within this many tokens (None: no limit)
    """
    started = time.perf_counter()
    logits, prompt_cache = model.forward(np.asarray(prompt_ids), cache=model.new_cache())
    words: dict[str, float] = {}
    pending: list[tuple[float, int, list[int]]] = []  # (-probability, tie-break, token ids so far)
    counter = 0

    def follow(probs: np.ndarray, ids: list[int], mass: float) -> None:
        """Share `mass` among the likeliest next tokens: finished words, or new prefixes."""
        nonlocal counter
        best = np.argpartition(-probs, min(per_step, len(probs) - 1))[:per_step]
        for token in best.tolist():
            p = mass * float(probs[token])
            if p <= 0:
                continue
            word, final = first_word(tokenizer.decode([*ids, token]))
            if final:
                words[word] = words.get(word, 0.0) + p
            elif p >= min_mass:
                counter += 1
                heapq.heappush(pending, (-p, counter, [*ids, token]))

    first = softmax_vector(logits)
    top_tokens = [(tokenizer.decode([int(t)]), float(first[t])) for t in np.argsort(-first)[:10]]
    follow(first, [], 1.0)
    expansions = 0
    n_ctx = model.config.n_ctx
    while pending and expansions < budget:
        neg_p, _, ids = heapq.heappop(pending)
        if len(prompt_ids) + len(ids) >= n_ctx or (max_depth is not None and len(ids) >= max_depth):
            continue
        # Always extend the prompt's cache (length fixed), so branches never disturb each other.
        step_logits, _ = model.forward(np.asarray(ids), cache=prompt_cache)
        follow(softmax_vector(step_logits), ids, -neg_p)
        expansions += 1
    return WordDistribution(words, sum(words.values()), expansions, time.perf_counter() - started, top_tokens)
