"""`bench perplexity --wikitext`: WikiText scored the way lm-evaluation-harness scores it.

The harness's `wikitext` task, step by step (so that `--transformer gpt2` gives a figure
directly comparable with published ones):

1. Documents. The raw file (wiki.test.raw) is cut into articles at top-level headings:
   a line " = Title = " (one "=" on each side; " = = Section = = " is a section, not a
   new article) starts a new document; a document is its lines joined by "\\n", its
   heading first. This is how EleutherAI's `wikitext_document_level` dataset builds its
   `page` field. WikiText-2's test file holds 62 articles.
2. The detokenizer (`detokenize`): WikiText is tokenized text (" @-@ " for a hyphen,
   " , " for a comma, "( x )" for brackets); the harness undoes that before the model
   reads it, since GPT-2 never saw text spaced that way. The rules are the harness's
   (`lm_eval/tasks/wikitext/preprocess_wikitext.py`), applied in its order.
3. Scoring. Each document on its own, with <|endoftext|> in front, in disjoint windows
   of the model's context length (the harness's rolling windows with context length 1):
   the first window predicts tokens 0 .. L−1, the next L tokens are predicted by a
   fresh pass that sees only them (and the one token before), and so on. No token is
   scored twice and no window overlaps; tokens early in a window see little context,
   which is why this figure is higher than a sliding window's.
4. Units. Words and bytes are those of the ORIGINAL document, before detokenizing
   (the harness counts `len(re.split(r"\\s+", page))`, which counts an empty piece at
   each end of a page that starts or ends with white space, as WikiText pages do, and
   its UTF-8 bytes): word_perplexity = exp(−ΣLL / Σwords), byte_perplexity =
   exp(−ΣLL / Σbytes), bits_per_byte = −ΣLL / Σbytes / ln 2 (`corpora.units.Score`).

The n-gram rows read the detokenized documents too, divided by the same words and bytes.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from corpora import UserError
from corpora.units import Score, TextUnits
from transformer.score import target_logprobs, windows_per_batch

from .perplexity import (
    CAVEATS, EvalText, PerplexityReport, ScoreRow, SpellingModel, ablation_contexts, ngram_rows, training_data_caveats,
    transformer_rows,
)

# ------------------------------------------------------------------ documents


def is_article_heading(line: str) -> bool:
    """A top-level heading " = Title = " (not a section " = = Title = = ")."""
    folded = line.replace("= = =", "===").replace("= =", "==").strip()
    return folded.startswith("= ") and folded.endswith(" =")


def split_documents(raw: str) -> list[str]:
    """The articles of a raw WikiText file: a new one at each top-level heading, lines joined by "\\n"."""
    documents, lines = [], []
    for line in raw.split("\n"):
        if is_article_heading(line):
            if "\n".join(lines).strip():
                documents.append("\n".join(lines))
            lines = []
        lines.append(line)
    if "\n".join(lines).strip():
        documents.append("\n".join(lines))
    return documents


# --------------------------------------------------------------- the detokenizer
# Each step: (what it undoes, pattern, replacement, is the pattern a regular expression?).
# The order matters: number separators before punctuation (" @.@ " holds " . " inside
# nothing, but " @,@ " must become "," before " , " is looked for), brackets before the
# heading marks, and " 's" last.

DETOKENIZE_STEPS: list[tuple[str, str, str, bool]] = [
    ("a possessive after a plural: s ' -> s'", "s '", "s'", False),
    ("the harness's inert rule for \"/' 5/\" (kept so the output matches it byte for byte)", r"/' [0-9]/", r"/'[0-9]/", True),
    ("a hyphen inside a word or number: 1 @-@ 2 -> 1-2", " @-@ ", "-", False),
    ("a thousands separator: 1 @,@ 000 -> 1,000", " @,@ ", ",", False),
    ("a decimal point: 1 @.@ 5 -> 1.5", " @.@ ", ".", False),
    ("a colon", " : ", ": ", False),
    ("a semicolon", " ; ", "; ", False),
    ("a full stop", " . ", ". ", False),
    ("an exclamation mark", " ! ", "! ", False),
    ("a question mark", " ? ", "? ", False),
    ("a comma", " , ", ", ", False),
    ("spaces inside round brackets: ( x ) -> (x)", r"\(\s*([^\)]*?)\s*\)", r"(\1)", True),
    ("spaces inside square brackets", r"\[\s*([^\]]*?)\s*\]", r"[\1]", True),
    ("spaces inside curly brackets", r"{\s*([^}]*?)\s*}", r"{\1}", True),
    ('spaces inside double quotes: " x " -> "x"', r"\"\s*([^\"]*?)\s*\"", r'"\1"', True),
    ("spaces inside single quotes", r"'\s*([^']*?)\s*'", r"'\1'", True),
    ("a level-4 heading mark", "= = = =", "====", False),
    ("a level-3 heading mark", "= = =", "===", False),
    ("a level-2 heading mark", "= =", "==", False),
    ("a degree sign: 5 ° C -> 5°C", " \u00b0 ", "\u00b0", False),
    ("a space before a line break", " \n", "\n", False),
    ("a space after a line break", "\n ", "\n", False),
    ("WikiText's N for a number: -> 1", " N ", " 1 ", False),
    ("a possessive: John 's -> John's", " 's", "'s", False),
]


def detokenize(page: str) -> str:
    """WikiText's tokenized spacing undone, rule after rule (`DETOKENIZE_STEPS`).

    Example: "a 1 @,@ 000 @-@ year ( old ) man 's" -> "a 1,000-year (old) man's"
    """
    for _, pattern, replacement, is_regex in DETOKENIZE_STEPS:
        page = re.sub(pattern, replacement, page) if is_regex else page.replace(pattern, replacement)
    return page


def harness_words(page: str) -> int:
    """The harness's word count of a page: the pieces of `re.split(r"\\s+", page)`, empty ends included."""
    return len(re.split(r"\s+", page))


def harness_units(pages: Iterable[str]) -> TextUnits:
    """Words (the harness's count), UTF-8 bytes and characters of the original pages."""
    pages = list(pages)
    return TextUnits(words=sum(map(harness_words, pages)), bytes=sum(len(p.encode("utf-8")) for p in pages),
                     chars=sum(map(len, pages)))


@dataclass
class WikiText:
    """The articles of a raw WikiText file: as written (counted) and detokenized (scored)."""

    source: str
    originals: list[str]
    truncated: bool = False

    @property
    def detokenized(self) -> list[str]:
        return [detokenize(p) for p in self.originals]

    @property
    def units(self) -> TextUnits:
        return harness_units(self.originals)


def read_wikitext(path: str | Path, max_words: int | None = None) -> WikiText:
    """A raw WikiText file cut into articles; with `max_words`, whole articles until that many words."""
    from corpora.documents import read_text_argument

    raw = read_text_argument(path)
    if not any(is_article_heading(line) for line in raw.split("\n")):
        raise UserError(f"{path} has no top-level ' = Title = ' heading lines; --wikitext reads WikiText's raw format "
                        "(e.g. wiki.test.raw); score a plain text without --wikitext")
    documents = split_documents(raw)
    kept, words = [], 0
    for doc in documents:
        if max_words and kept and words + harness_words(doc) > max_words:
            break
        kept.append(doc)
        words += harness_words(doc)
    return WikiText(str(path), kept, len(kept) < len(documents))


# --------------------------------------------------------- disjoint rolling windows


def harness_windows(n_tokens: int, max_len: int) -> list[tuple[int, int, int]]:
    """The reference, in the harness's own terms: for tokens t[0..n) and a prefix token,
    each window as (input start, input end, targets start) over p = [prefix] + t, where
    the model reads p[start:end] and its last end − targets_start positions predict
    p[targets_start + 1 .. end]. First window: [prefix] + t[:L−1] predicts t[:L]; then
    each window predicts the next L tokens from the L tokens before each (disjoint)."""
    windows = []
    predicted = min(max_len, n_tokens)
    if n_tokens:
        windows.append((0, predicted, 0))
    while predicted < n_tokens:
        count = min(n_tokens - predicted, max_len)
        end = predicted + count  # in t; p is shifted by one
        windows.append((end - max_len, end, end - count))  # p[end-L : end] reads t[end-L-1 : end-1]
        predicted = end
    return windows


def rolling_logprobs_reference(model, ids: Sequence[int], max_len: int) -> np.ndarray:
    """log p of every token after the prefix ids[0], window by window as `harness_windows` says."""
    ids = np.asarray(ids, dtype=np.int64)
    out = np.full(len(ids) - 1, np.nan)
    for start, end, first in harness_windows(len(ids) - 1, max_len):
        h, _ = model.hidden(ids[max(start, 0):end])
        offset = max(start, 0)
        out[first:end] = target_logprobs(model, h[first - offset:end - offset], ids[first + 1:end + 1])
    return out


def rolling_logprobs(model, ids: Sequence[int], max_len: int) -> np.ndarray:
    """`rolling_logprobs_reference`, fast: with a one-token prefix, the disjoint windows are
    just ids cut into chunks of max_len, each chunk predicting the token after each of its
    positions; the full chunks (all the same length) run as batches. A last, shorter
    chunk is read with the ids before it, up to max_len in all (as the harness does)."""
    ids = np.asarray(ids, dtype=np.int64)
    n = len(ids) - 1
    out = np.empty(n)
    starts = list(range(0, n, max_len))
    full = [s for s in starts if s + max_len <= n]
    per_batch = windows_per_batch(model.config, max_len)
    for lo in range(0, len(full), per_batch):
        group = full[lo:lo + per_batch]
        h, _ = model.hidden(np.stack([ids[s:s + max_len] for s in group]))  # (B, L, C)
        targets = np.concatenate([ids[s + 1:s + max_len + 1] for s in group])
        logp = target_logprobs(model, h.reshape(-1, h.shape[-1]), targets)
        for i, s in enumerate(group):
            out[s:s + max_len] = logp[i * max_len:(i + 1) * max_len]
    for s in starts[len(full):]:  # the last, shorter chunk: its window still reads the max_len ids before n
        begin = max(0, n - max_len)
        h, _ = model.hidden(ids[begin:n])
        out[s:n] = target_logprobs(model, h[s - begin:], ids[s + 1:n + 1])
    return out


# -------------------------------------------------------------------- the rows

PUBLISHED = [
    "Published, not measured: GPT-2 small with lm-evaluation-harness `wikitext` (this scoring): word_perplexity 37.37 "
    "(reported by a user in huggingface/transformers issue #13761; WikiText-2 and -103 share this test set).",
    "Published, not measured: GPT-2 small on WikiText-2 in the GPT-2 paper (Radford et al. 2019, Table 3): 29.41, "
    "with the paper's own invertible detokenizers and per WikiText token: not the same scoring as this one.",
]


def transformer_row(choice, text: WikiText, progress: bool = False) -> ScoreRow:
    """The transformer on every detokenized article, in the harness's disjoint windows."""
    from tqdm import tqdm

    max_len = choice.model.config.n_ctx
    nll, tokens = 0.0, 0
    for page in tqdm(text.detokenized, disable=not progress, unit="article", desc="transformer", leave=False):
        ids = [choice.tokenizer.eot_id, *choice.tokenizer.encode(page)]
        logp = rolling_logprobs(choice.model, ids, max_len)
        nll -= float(logp.sum())
        tokens += len(logp)
    score = Score(nll=nll, tokens=tokens, units=text.units, token_kind=f"BPE ({choice.folder.name})",
                  setting={"windows": f"disjoint, {max_len} tokens", "documents": len(text.originals)})
    return ScoreRow("transformer", f"harness windows (disjoint, {max_len} tokens, article by article)", score)


def with_units(rows: Sequence[ScoreRow], units: TextUnits) -> list[ScoreRow]:
    """The rows divided by the original articles' words and bytes instead of the scored text's."""
    return [replace(r, score=replace(r.score, units=units)) for r in rows]


def wikitext_report(
    ngram, choice, text: WikiText, orders=None, smoothings=("addk", "kn", "mle"), open_vocab: bool = True,
    ablation: str = "top", progress: bool = False,
) -> PerplexityReport:
    """Both models on WikiText the harness's way, as a `bench perplexity` report."""
    orders = list(orders or range(1, ngram.order + 1))
    joined = "\n\n".join(text.detokenized)
    spelling = SpellingModel.for_model(ngram) if open_vocab else None
    rows = with_units(ngram_rows(ngram, joined, orders, smoothings, spelling, progress), text.units)
    rows.append(transformer_row(choice, text, progress))
    cut = ablation_contexts(orders, ablation)
    if cut:
        rows += with_units(transformer_rows(choice, joined, cut, progress)[1:], text.units)
    caveats = [
        f"WikiText the lm-evaluation-harness way: {len(text.originals)} articles (split at ' = Title = ' lines), "
        "detokenized, each scored alone; words and bytes are the ORIGINAL articles' (the harness's word count).",
        "per word = the harness's word_perplexity; bits/byte = its bits_per_byte (byte_perplexity = 2^bits/byte).",
        *[c for c in CAVEATS if open_vocab or not c.startswith("Unknown words")],
        *[c.replace("the held-out text is new to both", "WikiText is new to both, and far from what they read")
          for c in training_data_caveats(ngram, choice)],
        *PUBLISHED,
    ]
    vocab = "open vocabulary" if open_vocab else "closed vocabulary"
    return PerplexityReport(
        source=f"{text.source} (WikiText, harness scoring)", units=text.units, truncated=text.truncated,
        ngram_model=f"{ngram.order}-gram over {ngram.tokenizer.name}, vocabulary {len(ngram.vocab):,} ({vocab})",
        transformer_model=choice.description, rows=rows, oov_rate=rows[0].score.oov_rate if rows else 0.0,
        caveats=caveats,
    )


def byte_perplexity(score: Score) -> float:
    """The harness's byte_perplexity: exp(NLL / bytes)."""
    return math.exp(score.nll / score.units.bytes) if score.units.bytes and score.finite else math.inf
