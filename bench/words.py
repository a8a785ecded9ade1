"""Next-WORD probabilities from a model that predicts BPE tokens.

The n-gram model predicts whole words (its tokens); GPT-2 predicts pieces such as
" night" or " night" + "mare". To put both in one table we ask: what is the probability
that the text after the prompt starts with the word w? Words are cut exactly as the
n-gram tokenizer cuts them (`ngram.tokenize`), so both columns list the same kind of
unit.

    P(first word = w) = sum over token sequences s whose text starts with w followed by a
                        word boundary, of p(s | prompt)

We expand token continuations best-first: the most probable unfinished words get one
more token, until a word boundary (white space, or punctuation that cannot be part of
the word) settles which word they spell. Once a word has begun, all the tokens that
would end it are summed in one vector operation; only tokens that may lengthen it
("mare" after " night") become new branches. Branches of equal length run together in
one batched forward step of the model itself, over a batched KV cache that shares the
prompt's positions without copying them (`step_branches`). Mass that
the expansion budget did not reach is reported, not guessed: `covered` says how much of
the probability is in the table.
"""
from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field

import numpy as np

from corpora.tokenizers import WORD_OR_PUNCT
from transformer.model import KVCache

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
    match = WORD_OR_PUNCT.match(s)
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
    z = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=-1, keepdims=True)


# ------------------------------------------------------------ expanding branches


@dataclass
class Branch:
    """An unfinished word: the tokens after the prompt, their probability, and the KV cache
    of all but the last of them (over the prompt's, shared), for its next step."""

    ids: list[int]
    mass: float
    cache: KVCache
    word: str | None = None  # the word begun so far (None while only white space came)


def step_branches(model, branches: list[Branch]) -> tuple[np.ndarray, list[KVCache]]:
    """One batched forward step: the next-token logits (B, V) of branches that all hold the
    same number of tokens, and each branch's cache grown by its last token. The model's
    own forward pass runs once for all of them, over their caches stacked as a batch
    (the prompt's part shared, not copied)."""
    tokens = np.array([[b.ids[-1]] for b in branches])  # (B, 1)
    logits, cache = model.forward(tokens, KVCache.stack([b.cache for b in branches]))
    return logits, cache.rows()


def word_boundaries(tokenizer) -> np.ndarray:
    """A (V,) mask of the tokens that end any unfinished word they follow: those whose text
    starts with white space, or with a mark that can never be part of a word (not a letter,
    digit, underscore, or one of ' ’ - . which may still join a word). Tokens that are only
    part of a UTF-8 character are left out (their text is not known alone)."""
    mask = np.zeros(tokenizer.vocab_size, dtype=bool)
    for token in range(tokenizer.vocab_size):
        try:
            text = tokenizer.token_bytes(token).decode("utf-8")
        except (UnicodeDecodeError, KeyError):
            continue
        if text and (text[0].isspace() or not (text[0].isalnum() or text[0] in _MAY_CONTINUE + "_")):
            mask[token] = True
    return mask


_BOUNDARIES: dict = {}  # tokenizer -> word_boundaries(tokenizer); keyed by the object, as an id may be reused


def next_word_distribution(
    model, tokenizer, prompt_ids: list[int], budget: int = 1024, per_step: int = 256, min_mass: float = 1e-6,
    max_depth: int | None = None, batch: int = 256, first_step: int = 4096, after_prompt=None,
) -> WordDistribution:
    """Expand the model's token continuations after `prompt_ids` into next-word probabilities.

    budget:     unfinished words (branches) to continue by one token, in all
    per_step:   of the tokens that may continue a branch's word, only the likeliest are followed
    min_mass:   continuations less likely than this are left out (and not counted as covered)
    max_depth:  words must be settled within this many tokens (None: no limit)
    batch:      branches continued together in one batched forward pass
    first_step: how many of the first token's likeliest values are followed
    after_prompt: (last logits, KV cache) of the prompt if the caller has run it already
                (the cache is not changed)

    Once a word has begun, every token that starts a new word or is a punctuation mark
    settles it: that mass is added in one sum over the vocabulary. Only the tokens that may
    lengthen the word become new branches. The most probable branches go first, `batch`
    at a time (those holding as many tokens as the best one), sharing the prompt's KV cache.
    """
    started = time.perf_counter()
    if after_prompt is None:
        after_prompt = model.forward(np.asarray(prompt_ids), cache=model.new_cache())
    logits, cache = after_prompt
    config = model.config
    if tokenizer not in _BOUNDARIES:
        _BOUNDARIES[tokenizer] = word_boundaries(tokenizer)
    ends_word = _BOUNDARIES[tokenizer]
    words: dict[str, float] = {}
    pending: list[tuple[float, int, Branch]] = []  # a heap: (-mass, tie-break, branch)
    counter = 0

    def follow(probs: np.ndarray, parent: Branch) -> None:
        """Share the parent's mass among its next tokens: finished words, or new branches."""
        nonlocal counter
        if parent.word is not None:  # a word has begun: tokens that cannot lengthen it settle it
            words[parent.word] = words.get(parent.word, 0.0) + parent.mass * float(probs[ends_word].sum())
            probs = np.where(ends_word, 0.0, probs)
        limit = per_step if parent.word is not None else first_step  # before a word begins: as wide as the first step
        best = np.argpartition(-probs, min(limit, len(probs) - 1))[:limit]
        best = best[probs[best] * parent.mass >= min_mass]  # rarer continuations are left out (not covered)
        for token in best.tolist():
            p = parent.mass * float(probs[token])
            ids = [*parent.ids, token]
            word, final = first_word(tokenizer.decode(ids))
            if final:
                words[word] = words.get(word, 0.0) + p
            elif max_depth is None or len(ids) < max_depth:
                counter += 1  # `word` is None while only white space has come
                heapq.heappush(pending, (-p, counter, Branch(ids, p, parent.cache, word)))

    first = softmax_vector(logits)
    top_tokens = [(tokenizer.decode([int(t)]), float(first[t])) for t in np.argsort(-first)[:10]]
    follow(first, Branch([], 1.0, cache.as_prefix()))
    expansions = 0
    while pending and expansions < budget:
        depth, best_mass = len(pending[0][2].ids), pending[0][2].mass
        group: list[Branch] = []
        skipped = []
        while pending and len(group) < min(batch, budget - expansions):
            item = heapq.heappop(pending)
            branch = item[2]
            if branch.mass < best_mass / 1000:  # far less likely than the best: not in this batch
                skipped.append(item)
                break
            if len(branch.ids) != depth:
                skipped.append(item)  # another depth: a later batch
            elif len(prompt_ids) + depth <= config.n_ctx:
                group.append(branch)
        for item in skipped:
            heapq.heappush(pending, item)
        if not group:
            continue
        step_logits, caches = step_branches(model, group)
        for branch, probs, grown in zip(group, softmax_vector(step_logits), caches):
            follow(probs, Branch(branch.ids, branch.mass, grown, branch.word))
        expansions += len(group)
    return WordDistribution(words, sum(words.values()), expansions, time.perf_counter() - started, top_tokens)
