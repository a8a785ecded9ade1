"""`bench context`: per-word perplexity against how many preceding words each model may see.

The n-gram of order n sees n − 1 tokens; the transformer sees its whole window. To see
what attention adds, both are scored with the same number of WORDS of context:

- the n-gram at orders 2..N: c = n − 1 words of context (its rows exactly as
  `bench perplexity` computes them, `ngram_rows`; strictly, n − 1 of its tokens, where
  a punctuation mark or <s> is a token too);
- the transformer with its context cut to the last c whitespace words, for c in
  CONTEXT_WORDS, and with its full window ("all": `bench perplexity`'s full-context row).

How a cut by words maps to BPE tokens. Every BPE token belongs to one whitespace word
(`bench.wordspans`: the word holding its first non-space byte; pure white space goes to
the word after it). A token of word w sees the tokens of words w − c .. w − 1 and the
earlier pieces of its own word w. When the cut reaches the start of the text the
<|endoftext|> in front is seen too (as the n-gram's <s> is). If the c words hold more
than the model's window, only the last n_ctx tokens are seen.

All tokens of word w share the same window, so one causal pass over
ids[start(w) : last token of w] scores them all; windows of similar length run as one
batch (padded on the right, which a causal model never looks at).

Speed. One window per word costs about c + 1 words of forward pass per word scored, so
the cuts of 64 and 128 words would cost 200 times a plain pass. By default, cuts of 16
words or more let ⌈c/8⌉ consecutive words share one window that starts c words before
the first of them: each word then sees between c and 1.125·c words (the table says
"c (to d)"), and every cut costs about 9 words of forward pass per word. `exact=True`
(`--exact`) gives every word exactly c words.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
from tqdm import tqdm

from corpora import UserError
from corpora.units import Score, TextUnits
from ngram import NgramModel
from transformer.score import target_logprobs, text_ids, windows_per_batch

from .models import TransformerChoice
from .perplexity import CAVEATS, EvalText, ScoreRow, SpellingModel, fmt, ngram_rows, transformer_rows
from .tables import render_table
from .wordspans import bpe_token_words

CONTEXT_WORDS = (1, 2, 4, 8, 16, 32, 64, 128)
LAYOUT_CAVEAT = next(c for c in CAVEATS if "white space" in c)  # bench perplexity's: layout is free for the n-gram


# ------------------------------------------------------- windows cut by words


@dataclass(frozen=True)
class Window:
    """One causal pass: run ids[start:last] and score the targets first..last (inclusive)."""

    start: int
    first: int
    last: int

    @property
    def length(self) -> int:
        return self.last - self.start


def word_windows(target_words: np.ndarray, words: int, n_ctx: int, group: int = 1) -> list[Window]:
    """The windows that score every target with `words` words of context (to words + group − 1).

    target_words[t - 1] is the word of target ids[t] (ids[0] is <|endoftext|>). The
    targets of `group` consecutive words share one window, which begins `words` words
    before the group's first word: with group 1 every target sees exactly `words` words
    (and its own word's earlier pieces); with a larger group, the k-th word of a group
    sees words + k. A window longer than the model's is split so that every target
    still sees at most n_ctx tokens.
    """
    windows = []
    if len(target_words) == 0:
        return windows
    for g in range(0, int(target_words[-1]) + 1, group):
        first = int(np.searchsorted(target_words, g)) + 1  # token index of the group's first token
        last = int(np.searchsorted(target_words, g + group))  # ... and of its last
        if last < first:
            continue
        start = 0 if g - words <= 0 else int(np.searchsorted(target_words, g - words)) + 1
        windows += split_to_fit(start, first, last, n_ctx)
    return windows


def group_for(words: int, exact: bool = False) -> int:
    """How many words share a window when the context is cut to `words` words.

    One window per word costs about `words` + 1 words of forward pass per word scored,
    which is what makes long cuts slow. Sharing a window among ⌈words/8⌉ words costs
    about 9 words per word whatever the cut, and each word then sees between `words`
    and 1.125 × `words` words. Cuts up to 8 words (and every cut with `exact`) are exact.
    """
    return 1 if exact else max(1, words // 8)


def split_to_fit(start: int, first: int, last: int, n_ctx: int) -> list[Window]:
    """Window(start, first, last), cut from the end into windows of at most n_ctx tokens."""
    pieces = []
    while last >= first:
        begin = max(start, last - n_ctx)
        pieces.append(Window(begin, max(first, begin + 1), last))
        last = max(first, begin + 1) - 1
    return pieces[::-1]


def batches_by_length(windows: list[Window], config) -> Iterator[list[Window]]:
    """The windows, shortest first, in batches of about `windows_per_batch` (the activation budget)."""
    order = sorted(windows, key=lambda w: w.length)
    lo = 0
    while lo < len(order):
        guess = windows_per_batch(config, order[lo].length)
        size = windows_per_batch(config, order[min(len(order), lo + guess) - 1].length)  # sorted: the last is longest
        yield order[lo:lo + size]
        lo += size


def run_batch(model, ids: np.ndarray, batch: list[Window]) -> np.ndarray:
    """log p of the targets of each window of the batch, window after window, in one pass."""
    width = max(w.length for w in batch)
    inputs = np.zeros((len(batch), width), dtype=np.int64)  # right padding: never seen by a causal pass
    for row, w in enumerate(batch):
        inputs[row, :w.length] = ids[w.start:w.last]
    h, _ = model.hidden(inputs)  # (B, width, C); row i of a window predicts its token i + 1
    rows = np.concatenate([h[row, w.first - 1 - w.start:w.length] for row, w in enumerate(batch)])
    targets = np.concatenate([ids[w.first:w.last + 1] for w in batch])
    return target_logprobs(model, rows, targets)


def run_windows(model, ids: np.ndarray, windows: list[Window], progress: bool = False) -> np.ndarray:
    """log p(ids[t] | its window) for t = 1 .. len(ids) - 1."""
    scores = np.full(len(ids) - 1, np.nan)
    with tqdm(total=len(windows), disable=not progress, unit="window", desc="scoring", leave=False) as bar:
        for batch in batches_by_length(windows, model.config):
            picked = run_batch(model, ids, batch)
            at = 0
            for w in batch:
                count = w.last - w.first + 1
                scores[w.first - 1:w.last] = picked[at:at + count]
                at += count
            bar.update(len(batch))
    return scores


def word_context_logprobs(
    choice: TransformerChoice, text: str, words: int, group: int = 1, progress: bool = False,
) -> np.ndarray:
    """log p of every BPE token of `text` (after the <|endoftext|> in front) seeing only
    the last `words` whitespace words (to words + group − 1, see `word_windows`) and the
    earlier pieces of its own word."""
    if words < 1:
        raise UserError(f"the context must be at least 1 word, got {words}")
    ids = np.asarray(text_ids(choice.tokenizer, text), dtype=np.int64)
    target_words = bpe_token_words(choice.tokenizer, ids[1:], text)
    windows = word_windows(target_words, words, choice.model.config.n_ctx, group)
    return run_windows(choice.model, ids, windows, progress)


# ------------------------------------------------------------------ the sweep


@dataclass
class ContextPoint:
    """One point of a curve: a model, the words of context it saw (None: its full window), its row."""

    model: str
    words: int | None
    row: ScoreRow

    def to_dict(self) -> dict:
        return {"model": self.model, "context_words": self.words, **self.row.to_dict()}


@dataclass
class ContextReport:
    source: str
    units: TextUnits
    truncated: bool
    ngram_model: str
    transformer_model: str
    points: list[ContextPoint] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "text": {"source": self.source, "words": self.units.words, "bytes": self.units.bytes, "truncated": self.truncated},
            "ngram_model": self.ngram_model,
            "transformer_model": self.transformer_model,
            "cut": "a BPE token sees the tokens of the previous c whitespace words (up to up_to_words when words share "
                   "a window) and the earlier pieces of its own word",
            "points": [p.to_dict() for p in self.points],
        }

    def curve(self, model: str) -> list[ContextPoint]:
        return [p for p in self.points if p.model == model]


def transformer_points(
    choice: TransformerChoice, text: str, contexts=CONTEXT_WORDS, exact: bool = False, progress: bool = False,
) -> list[ContextPoint]:
    """The transformer cut to each number of words, then with its full window (`transformer_rows`' own row)."""
    units = TextUnits.of(text)
    full = transformer_rows(choice, text, progress=progress)[0]
    points = []
    for words in contexts:
        group = group_for(words, exact)
        logprobs = word_context_logprobs(choice, text, words, group, progress)
        score = Score(nll=float(-logprobs.sum()), tokens=len(logprobs), units=units, token_kind=full.score.token_kind,
                      setting={"context_words": words, "up_to_words": words + group - 1})
        seen = f"{words}" if group == 1 else f"{words}-{words + group - 1}"
        points.append(ContextPoint("transformer", words, ScoreRow("transformer", f"last {seen} words", score)))
    return points + [ContextPoint("transformer", None, full)]


def ngram_points(model: NgramModel, text: str, spelling: SpellingModel | None, progress: bool = False) -> list[ContextPoint]:
    """The Kneser-Ney n-gram at orders 2..N: c = n − 1 words, rows exactly as `bench perplexity`'s."""
    rows = ngram_rows(model, text, range(2, model.order + 1), ["kn"], spelling, progress)
    return [ContextPoint("n-gram", row.order - 1, row) for row in rows]


def context_sweep(
    ngram: NgramModel, choice: TransformerChoice, text: EvalText, contexts=CONTEXT_WORDS,
    open_vocab: bool = True, exact: bool = False, progress: bool = False,
) -> ContextReport:
    """Both curves on one text."""
    if ngram.order < 2:
        raise UserError("the n-gram has order 1: it sees no context at all; build one of order 2 or more")
    spelling = SpellingModel.for_model(ngram) if open_vocab else None
    points = ngram_points(ngram, text.text, spelling, progress) + transformer_points(choice, text.text, contexts, exact, progress)
    vocab = "open vocabulary" if open_vocab else "closed vocabulary"
    return ContextReport(
        source=text.source, units=text.units, truncated=text.truncated,
        ngram_model=f"{ngram.order}-gram over {ngram.tokenizer.name}, Kneser-Ney ({vocab})",
        transformer_model=choice.description, points=points,
    )


def render_context(report: ContextReport, markdown: bool = False) -> str:
    """One row per number of words of context: each model's per-word perplexity, or blank."""
    ngram = {p.words: p for p in report.curve("n-gram")}
    transformer = {p.words: p for p in report.curve("transformer")}
    rows = []
    for words in sorted(set(ngram) | set(transformer), key=lambda w: math.inf if w is None else w):
        n, t = ngram.get(words), transformer.get(words)
        rows.append([
            "all" if words is None else f"{words:,}" + (f" (to {t.row.score.setting['up_to_words']:,})"
                                                        if t and t.row.score.setting.get("up_to_words", words) != words else ""),
            f"{n.row.order}-gram" if n else "",
            fmt(n.row.score.per_word) if n else "",
            fmt(n.row.score.bits_per_byte, 3) if n else "",
            fmt(t.row.score.per_word) if t else "",
            fmt(t.row.score.bits_per_byte, 3) if t else "",
        ])
    header = ["words of context", "n-gram", "n-gram per word", "n-gram bits/byte", "transformer per word",
              "transformer bits/byte"]
    u = report.units
    return "\n".join([
        f"Text: {report.source} — {u.words:,} words, {u.bytes:,} bytes" + (" (cut at --max-words)" if report.truncated else ""),
        f"n-gram: {report.ngram_model}",
        f"transformer: {report.transformer_model}",
        "",
        render_table(header, rows, right={0, 2, 3, 4, 5}, markdown=markdown),
        "",
        "Note: the transformer cut to c words: each BPE token sees the tokens of the previous c whitespace words "
        "and the earlier pieces of its own word; 'all' is its full window (bench perplexity's row).",
        "Note: c (to d): the words of a group share one window (faster), so a word sees c to d words; --exact gives exactly c.",
        "Note: the n-gram of order n sees n-1 of its tokens (words, punctuation marks, <s>) — about n-1 words.",
        "Note: " + LAYOUT_CAVEAT,
    ])
