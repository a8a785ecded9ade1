"""`bench accuracy`: next-word accuracy, top-1 and top-5, of both models on the same text.

The words are cut as the n-gram cuts them (its tokenizer's words and punctuation marks),
for both models, so both guess the same units at the same places:

- a target is every n-gram token of the text (a word or a punctuation mark); `words`
  counts only the targets that are words (not punctuation);
- the n-gram's guesses: `NgramModel.predict` (its prediction API: the followers of the
  longest context seen in training, backing off), with its own context: <s> and the
  sentence so far; its special tokens are never a guess;
- the transformer's guesses: `bench.words.next_word_distribution` after the text's
  tokens before the target (`Reader`: between half a window and a window of them); the
  words it spells are cut by the n-gram's rule (`bench.words.first_word`). Mass the
  expansion budget did not reach is not guessed.

A guess is right when it is the target token exactly (case folded if the n-gram was
built lowercase). A word the n-gram never saw can never be its guess.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from corpora import UserError
from corpora.tokenizers import BOS, NGRAM_SPECIALS
from ngram import NgramModel
from transformer.score import text_ids

from .models import TransformerChoice
from .tables import render_table
from .words import next_word_distribution
from .wordspans import ngram_token_offsets

TOP = 5
DEFAULT_BUDGET = 64
MAX_WORD_TOKENS = 8  # a guessed word is spelled within this many tokens
# Of the tokens that may begin or lengthen a word, only the likeliest are followed (`bench compare` follows
# 4,096 first tokens and 256 to lengthen a word, to show a full distribution; five guesses need far fewer,
# and each one followed costs Python time).
FOLLOWED = 256  # first tokens followed
LENGTHENED = 32  # tokens followed that lengthen an unfinished word


@dataclass(frozen=True)
class Target:
    """One place to guess: where it starts in the text, the n-gram's context, and the token that came."""

    start: int  # character offset of the target in the text
    context: tuple[str, ...]  # <s> and the sentence's earlier tokens
    token: str

    @property
    def is_word(self) -> bool:
        return any(c.isalnum() for c in self.token)


def targets(model: NgramModel, text: str) -> list[Target]:
    """Every n-gram token of `text` as a target, with the n-gram's context before it."""
    found = []
    for sentence, starts in zip(model.tokenizer.sentences(text), ngram_token_offsets(model.tokenizer, text)):
        for i, (token, start) in enumerate(zip(sentence, starts)):
            found.append(Target(start, (BOS, *sentence[:i]), token))
    if not found:
        raise UserError("the text has no words to guess")
    return found


def ngram_guesses(model: NgramModel, target: Target, k: int = TOP) -> list[str]:
    """The n-gram's k best next tokens after the target's sentence context, specials left out."""
    context = [BOS, *model.to_vocab(target.context[1:])]
    candidates = model.predict(context, k=k + len(NGRAM_SPECIALS)).candidates
    return [c.token for c in candidates if c.token not in NGRAM_SPECIALS][:k]


class Reader:
    """The transformer reading the text left to right with one KV cache, so that each guess
    costs only the tokens since the last one.

    The prompt of a target is every BPE token of the whole text that ends before the
    target begins (so a separate line-break token before it is seen; " The" with its
    space is not). The cache holds at most the window minus `room` tokens (room for the
    guessed word's own tokens); when it is full, reading starts again half a window
    back, so a guess sees between half a window and a window of text.
    """

    def __init__(self, choice: TransformerChoice, text: str, room: int = MAX_WORD_TOKENS) -> None:
        self.model = choice.model
        self.ids = np.asarray(text_ids(choice.tokenizer, text), dtype=np.int64)  # <|endoftext|> in front
        token_ends = np.cumsum([len(choice.tokenizer.token_bytes(int(i))) for i in self.ids[1:]])
        self.token_ends = np.asarray(token_ends, dtype=np.int64)
        self.byte_of_char = np.concatenate([[0], np.cumsum([len(c.encode("utf-8")) for c in text])])
        self.limit = self.model.config.n_ctx - room
        self.begin, self.end, self.state = 0, 0, None

    def prompt_end(self, start: int) -> int:
        """How many ids (<|endoftext|> included) end before character `start`."""
        return 1 + int(np.searchsorted(self.token_ends, self.byte_of_char[start], side="right"))

    def before(self, start: int) -> tuple[np.ndarray, tuple]:
        """The prompt ids before character `start`, and the model's (last logits, KV cache) after them."""
        end = self.prompt_end(start)
        if self.state is None or end - self.begin > self.limit:
            self.begin = max(0, end - self.limit // 2) if end > self.limit else 0
            self.end, self.state = self.begin, (None, self.model.new_cache())
        if end > self.end:
            self.state = self.model.forward(self.ids[self.end:end], self.state[1])  # a new cache; the old is unchanged
            self.end = end
        return self.ids[self.begin:end], self.state


def transformer_guesses(
    choice: TransformerChoice, reader: Reader, target: Target, budget: int, lowercase: bool, k: int = TOP,
) -> list[str]:
    """The transformer's k most probable next words after the text before the target."""
    prompt, after = reader.before(target.start)
    dist = next_word_distribution(choice.model, choice.tokenizer, prompt.tolist(), budget=budget, per_step=LENGTHENED,
                                  first_step=FOLLOWED, max_depth=MAX_WORD_TOKENS, after_prompt=after)
    words: dict[str, float] = {}
    for word, p in dist.words.items():
        key = word.lower() if lowercase else word
        words[key] = words.get(key, 0.0) + p
    return [w for w, _ in sorted(words.items(), key=lambda wp: (-wp[1], wp[0]))[:k]]


@dataclass
class Hits:
    """How often a model's top-1 and top-k guesses held the target, over all targets and over words."""

    top1: int = 0
    topk: int = 0
    word_top1: int = 0
    word_topk: int = 0

    def add(self, guesses: list[str], target: Target, lowercase: bool) -> None:
        token = target.token.lower() if lowercase else target.token
        first = bool(guesses) and guesses[0] == token
        anywhere = token in guesses
        self.top1 += first
        self.topk += anywhere
        if target.is_word:
            self.word_top1 += first
            self.word_topk += anywhere


@dataclass
class AccuracyReport:
    source: str
    targets: int
    words: int
    ngram_model: str
    transformer_model: str
    ngram: Hits
    transformer: Hits
    budget: int

    def rates(self, hits: Hits) -> dict:
        def share(n: int, of: int) -> float | None:
            return n / of if of else None

        return {"top1": share(hits.top1, self.targets), f"top{TOP}": share(hits.topk, self.targets),
                "word_top1": share(hits.word_top1, self.words), f"word_top{TOP}": share(hits.word_topk, self.words)}

    def to_dict(self) -> dict:
        return {
            "text": self.source, "targets": self.targets, "word_targets": self.words, "budget": self.budget,
            "ngram_model": self.ngram_model, "transformer_model": self.transformer_model,
            "ngram": self.rates(self.ngram), "transformer": self.rates(self.transformer),
        }


def accuracy(
    ngram: NgramModel, choice: TransformerChoice, text: str, source: str, budget: int = DEFAULT_BUDGET,
    progress: bool = False,
) -> AccuracyReport:
    """Both models' guesses at every target of `text`."""
    from tqdm import tqdm

    found = targets(ngram, text)
    reader = Reader(choice, text)
    lowercase = ngram.tokenizer.lowercase
    ngram_hits, transformer_hits = Hits(), Hits()
    for target in tqdm(found, disable=not progress, unit="word", desc="guessing", leave=False):
        ngram_hits.add(ngram_guesses(ngram, target), target, lowercase)
        transformer_hits.add(transformer_guesses(choice, reader, target, budget, lowercase), target, lowercase)
    return AccuracyReport(
        source, len(found), sum(t.is_word for t in found), f"{ngram.order}-gram over {ngram.tokenizer.name}",
        choice.description, ngram_hits, transformer_hits, budget,
    )


def render_accuracy(report: AccuracyReport, markdown: bool = False) -> str:
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1%}"

    rows = []
    for name, hits in (("n-gram", report.ngram), ("transformer", report.transformer)):
        r = report.rates(hits)
        rows.append([name, pct(r["top1"]), pct(r[f"top{TOP}"]), pct(r["word_top1"]), pct(r[f"word_top{TOP}"])])
    header = ["model", "top-1", f"top-{TOP}", "top-1 (words only)", f"top-{TOP} (words only)"]
    return "\n".join([
        f"Next-word accuracy on {report.source}: {report.targets:,} targets ({report.words:,} of them words, "
        "the rest punctuation), cut as the n-gram cuts them",
        f"n-gram: {report.ngram_model} (its prediction API, sentence context)",
        f"transformer: {report.transformer_model} (next words expanded with a budget of {report.budget})",
        "",
        render_table(header, rows, right={1, 2, 3, 4}, markdown=markdown),
        "",
        "Note: the n-gram guesses from its sentence so far; the transformer from the text before the target "
        "(between half its window and its window of tokens).",
    ])
