"""`bench perplexity`: both models on the same text, in units that mean the same thing.

Rows:
- the n-gram at every order 1..N with add-k, Kneser-Ney and MLE (MLE counts its
  zero-probability tokens instead of printing inf). The n-gram is scored
  **open-vocabulary**: a word outside its vocabulary costs p(<unk> | context) times the
  probability of the word's spelling under a character n-gram (`SpellingModel`) built
  from the same training text. Without that, every unknown word would be a free
  "<unk>" and the n-gram would look better than it is;
- the transformer with its full context window, and with its context cut to n-1
  tokens (the "context-window ablation": what attention adds at an equal window).

Every row is divided by the same words and bytes of the same text (`corpora.units`).
What the n-gram does not pay for: the layout. It reads sentences of words, so white
space and line breaks come free; the transformer predicts every byte. That caveat is
printed with the table.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Iterable

from tqdm import tqdm

from corpora import UserError
from corpora.cli_common import plural
from corpora.documents import normalise_text, read_text_argument
from corpora.tokenizers import BOS, EOS, UNK, get_tokenizer
from corpora.units import Score, TextUnits
from ngram import NgramModel
from ngram.smoothing import smoothing_label
from transformer import perplexity as transformer_perplexity
from transformer.score import short_context_logprobs, text_ids

from .models import TransformerChoice
from .tables import render_table

SMOOTHINGS = ("addk", "kn", "mle")
DEFAULT_MAX_WORDS = 300_000
CAVEATS = [
    "Per-word and bits-per-byte figures divide each model's total NLL by the same whitespace words and UTF-8 bytes.",
    "Per-token perplexity depends on the tokenizer: compare it only between rows with the same token kind.",
    "The n-gram reads sentences of words: white space and line breaks cost it nothing, while the transformer "
    "predicts every byte. The n-gram's figures are flattered by that.",
    "Unknown words cost the n-gram p(<unk>|context) x p(spelling) under a character n-gram from the same books "
    "(open vocabulary), so bits per byte are comparable.",
]


# -------------------------------------------------------------------- the text


@dataclass
class EvalText:
    """The text both models are scored on, and where it came from."""

    text: str
    source: str
    truncated: bool = False

    @property
    def units(self) -> TextUnits:
        return TextUnits.of(self.text)


def take_words(lines: Iterable[str], max_words: int | None) -> tuple[str, bool]:
    """Join lines until `max_words` whitespace words are reached (None: all of them).

    Returns the text and whether anything was left out. Reads lazily, so a streamed
    dataset is never read whole when a limit is set.
    """
    kept: list[str] = []
    words = 0
    for line in lines:
        n = len(line.split())
        if max_words is not None and words + n > max_words:
            head = line.split()[: max_words - words]
            if head:
                kept.append(" ".join(head))
            return "\n".join(kept), True
        kept.append(line)
        words += n
    return "\n".join(kept), False


def text_from_file(path: str | Path, max_words: int | None = DEFAULT_MAX_WORDS) -> EvalText:
    """A text file to score, read by `corpora.documents.read_text_argument` (the one reader
    of a file the user names), cut after `max_words` words."""
    lines = read_text_argument(path).split("\n")
    if lines[-1] == "":
        lines.pop()  # a final line break ends the last line; it does not begin an empty one
    text, truncated = take_words(lines, max_words)
    return EvalText(text, str(path), truncated)


def text_from_dataset(
    name: str, config: str | None = None, split: str = "test", column: str = "text",
    max_words: int | None = DEFAULT_MAX_WORDS,
) -> EvalText:
    """Stream a Hugging Face dataset's rows (e.g. wikitext, wikitext-2-raw-v1, test)."""
    try:
        import datasets

        rows = datasets.load_dataset(name, config, split=split, streaming=True)
        lines = (normalise_text(row[column]).rstrip("\n") for row in rows)
        text, truncated = take_words(lines, max_words)
    except KeyError as err:
        raise UserError(f"dataset {name} has no column {column!r}") from err
    except Exception as err:  # datasets raises many kinds (offline, no such dataset): one line
        raise UserError(f"could not read dataset {name}: {str(err).splitlines()[0]}") from err
    if not text.strip():
        raise UserError(f"dataset {name} ({split}, column {column!r}) holds no text")
    return EvalText(text, "/".join(x for x in ("datasets:" + name, config, split) if x), truncated)


def heldout_text(model: NgramModel, max_words: int | None = None) -> EvalText:
    """The held-out split of the corpus the n-gram was built from (never used to build it)."""
    text, truncated = take_words(model.heldout_text().split("\n"), max_words)
    return EvalText(text, f"held-out {model.corpus.get('heldout_fraction', 0):.0%} of {model.corpus.get('location', '?')}", truncated)


# ------------------------------------------------------------- the n-gram side


class SpellingModel:
    """How likely a word's spelling is: a character n-gram over the word types of a text.

    Each distinct word is a "sentence" of characters, so p(word) = p(c1 | <s>) p(c2 | <s> c1)
    ... p(</s> | ...), smoothed with Kneser-Ney. It sums to 1 over all strings, so an
    unknown word gets a real, finite probability that falls with its length and oddness.
    """

    def __init__(self, words: Iterable[str], order: int = 5) -> None:
        types = sorted(set(words))
        if not types:
            raise UserError("no words to learn spellings from")
        self.model = NgramModel.from_sentences([list(w) for w in types], order, get_tokenizer("chars"), min_count=1)
        self.method = self.model.smoothing("kn")
        self.known = set(self.model.vocab)

    @classmethod
    def for_model(cls, model: NgramModel) -> "SpellingModel":
        """Learned from the word types of the n-gram's own training text."""
        from corpora import corpus_from_record

        corpus = corpus_from_record(model.corpus)
        words = set()
        for text in corpus.train_texts():
            for sentence in model.tokenizer.sentences(text):
                words.update(sentence)
        return cls(words)

    def nll(self, word: str) -> float:
        """-log p(spelling of word), in nats."""
        chars = [c if c in self.known else UNK for c in word] + [EOS]
        context = [BOS]
        total = 0.0
        for c in chars:
            total -= math.log(self.method.prob(context, c))
            context = (context + [c])[-(self.model.order - 1):]
        return total


def oov_words(model: NgramModel, text: str) -> Counter:
    """Tokens of the text that the n-gram's vocabulary does not hold, with their counts."""
    known = set(model.vocab)
    return Counter(t for sentence in model.tokenizer.sentences(text) for t in sentence if t not in known)


def ngram_rows(
    model: NgramModel, text: str, orders: Iterable[int] | None = None, smoothings: Iterable[str] = SMOOTHINGS,
    spelling: SpellingModel | None = None, progress: bool = False,
) -> list[ScoreRow]:
    """The n-gram at each order and smoothing; open-vocabulary when `spelling` is given."""
    units = TextUnits.of(text)
    orders = list(orders or range(1, model.order + 1))
    unknown = oov_words(model, text)
    spelling_nll = sum(count * spelling.nll(w) for w, count in unknown.items()) if spelling else 0.0
    kind = f"{model.tokenizer.name}"
    rows = []
    jobs = [(n, s) for s in smoothings for n in orders]
    for n, smoothing in tqdm(jobs, desc="n-gram rows", unit="row", disable=not progress, leave=False):
        result = model.score(text, smoothing=smoothing, order=n)
        note = "" if spelling else "closed vocabulary: unknown words scored as <unk>"
        if result.zero_prob:
            note = f"{result.zero_prob:,} tokens had probability 0 (per-token perplexity over the rest: {result.per_token_nonzero:,.1f})"
        score = Score(
            tokens=result.tokens, nll=result.nll + (spelling_nll if result.zero_prob == 0 else 0.0), units=units,
            zero_prob=result.zero_prob, oov=result.oov, token_kind=kind,
        )
        rows.append(ScoreRow("n-gram", f"{n}-gram, {smoothing_label(smoothing, k=1.0)}", score,
                             order=n, smoothing=smoothing, note=note))
    return rows


# ---------------------------------------------------------- the transformer side


def transformer_rows(
    choice: TransformerChoice, text: str, cut_contexts: Iterable[int] = (), progress: bool = False,
) -> list[ScoreRow]:
    """The transformer with its full window, then with its context cut to each of `cut_contexts` tokens."""
    units = TextUnits.of(text)
    n_ctx = choice.model.config.n_ctx
    full = transformer_perplexity(choice.model, choice.tokenizer, text, progress=progress)
    kind = f"BPE ({choice.folder.name})"
    rows = [ScoreRow(
        model="transformer", label=f"full context ({full.setting['window']} tokens, stride {full.setting['stride']})",
        score=Score(tokens=full.tokens, nll=full.nll, units=units, token_kind=kind),
    )]
    cut = sorted(set(cut_contexts))
    if cut:
        ids = text_ids(choice.tokenizer, text)
        for context in cut:
            logprobs = short_context_logprobs(choice.model, ids, min(context, n_ctx - 1), progress=progress)
            score = Score(tokens=len(logprobs), nll=float(-logprobs.sum()), units=units, token_kind=kind)
            rows.append(ScoreRow("transformer", f"context cut to {plural(context, 'token')}", score, context=context))
    return rows


# -------------------------------------------------------------------- the table


@dataclass(frozen=True)
class ScoreRow:
    """One row of the table: which model and setting (the labels), and its `Score`.

    Every figure of the row (per token, per word, bits per byte) is its Score's, counted
    in `corpora.units`, the one place for that arithmetic; the row only names it.
    """

    model: str  # "n-gram", "transformer" or "mix"
    label: str  # e.g. "5-gram, Kneser-Ney" or "context cut to 4 tokens"
    score: Score
    order: int | None = None
    smoothing: str | None = None
    context: int | None = None  # tokens the transformer could see (None = its full window)
    mix: float | None = None  # λ of a mixture row
    note: str = ""

    def to_dict(self) -> dict:
        """The labels and the score's totals and figures as one flat record (one row of report.json)."""
        labels = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "score"}
        return {**labels, **self.score.to_dict()}


@dataclass
class PerplexityReport:
    source: str
    units: TextUnits
    truncated: bool
    ngram_model: str
    transformer_model: str
    rows: list[ScoreRow]
    oov_rate: float
    caveats: list[str] = field(default_factory=lambda: list(CAVEATS))
    best_mix: float | None = None

    def to_dict(self) -> dict:
        return {
            "text": {"source": self.source, "words": self.units.words, "bytes": self.units.bytes,
                     "chars": self.units.chars, "truncated": self.truncated},
            "ngram_model": self.ngram_model,
            "transformer_model": self.transformer_model,
            "oov_rate": self.oov_rate,
            "rows": [r.to_dict() for r in self.rows],
            "best_mix": self.best_mix,
            "caveats": self.caveats,
        }


def fmt(value: float, digits: int = 1) -> str:
    if value is None or math.isinf(value):
        return "inf"
    if math.isnan(value):
        return "n/a"
    return f"{value:,.{digits}f}"


def render_rows(rows: list[ScoreRow], markdown: bool = False) -> str:
    header = ["model", "setting", "token", "tokens", "per token", "per word", "bits/byte", "note"]
    table = [
        [r.model, r.label, r.score.token_kind, f"{r.score.tokens:,}", fmt(r.score.per_token), fmt(r.score.per_word),
         fmt(r.score.bits_per_byte, 3), r.note]
        for r in rows
    ]
    return render_table(header, table, right={3, 4, 5, 6}, markdown=markdown)


def render_report(report: PerplexityReport, markdown: bool = False) -> str:
    u = report.units
    lines = [
        f"Text: {report.source} — {u.words:,} words, {u.bytes:,} bytes"
        + (" (cut at --max-words)" if report.truncated else ""),
        f"n-gram: {report.ngram_model}; out-of-vocabulary rate {report.oov_rate:.2%}",
        f"transformer: {report.transformer_model}",
        "",
        render_rows(report.rows, markdown),
        "",
    ]
    if report.best_mix is not None:
        lines += [f"Best mixture weight on this text: λ = {report.best_mix:.2f} (λ·p_transformer + (1−λ)·p_ngram, "
                  "chosen on the same text it is scored on: an optimistic figure)", ""]
    lines += [("- " if markdown else "Note: ") + c for c in report.caveats]
    return "\n".join(lines)


# ---------------------------------------------------------------- everything


def compare_perplexity(
    ngram: NgramModel, choice: TransformerChoice, text: EvalText, orders: Iterable[int] | None = None,
    smoothings: Iterable[str] = SMOOTHINGS, open_vocab: bool = True, ablation: str = "top", progress: bool = False,
) -> PerplexityReport:
    """Score `text` with both models: the n-gram rows, then the transformer rows.

    ablation: which context-cut transformer rows to add: "top" (n-1 tokens for the
    highest order n scored), "all" (n-1 for every order n > 1) or "none". A cut context
    of c tokens costs about c+1 forward positions per token, so "all" is the slow one.
    """
    orders = list(orders or range(1, ngram.order + 1))
    spelling = SpellingModel.for_model(ngram) if open_vocab else None
    rows = ngram_rows(ngram, text.text, orders, smoothings, spelling, progress)
    cut = ablation_contexts(orders, ablation)
    rows += transformer_rows(choice, text.text, cut, progress)
    oov_rate = rows[0].score.oov_rate if rows else 0.0
    vocab_note = "open vocabulary" if open_vocab else "closed vocabulary"
    caveats = list(CAVEATS) if open_vocab else [c for c in CAVEATS if not c.startswith("Unknown words")]
    if not open_vocab:
        caveats.append("Closed vocabulary (--closed-vocab): every unknown word is a free <unk>; bits per byte flatter the n-gram.")
    caveats += training_data_caveats(ngram, choice)
    return PerplexityReport(
        source=text.source, units=text.units, truncated=text.truncated,
        ngram_model=f"{ngram.order}-gram over {ngram.tokenizer.name}, vocabulary {len(ngram.vocab):,} ({vocab_note})",
        transformer_model=choice.description, rows=rows, oov_rate=oov_rate, caveats=caveats,
    )


ABLATIONS = ("top", "all", "none")


def ablation_contexts(orders: list[int], ablation: str) -> list[int]:
    """The transformer context lengths (n-1) to score for the given n-gram orders."""
    if ablation not in ABLATIONS:
        raise UserError(f"ablation must be one of {', '.join(ABLATIONS)}, got {ablation!r}")
    cuts = [n - 1 for n in orders if n > 1]
    if ablation == "none" or not cuts:
        return []
    return cuts if ablation == "all" else [max(cuts)]


def training_data_caveats(ngram: NgramModel, choice: TransformerChoice) -> list[str]:
    """Say whether the transformer could have seen the evaluation text in training."""
    record = training_record(choice.folder)
    if record is None:
        return ["The transformer was trained on other data (GPT-2: 40 GB of web text, which may include these "
                "public-domain books); its held-out figures may be optimistic, and it knows far more text than the n-gram."]
    same = split_signature(record.get("corpus", {})) == split_signature(ngram.corpus)
    if same:
        return ["Both models were trained on the same training split of the same books; the held-out text is new to both."]
    return ["The transformer was trained on a different corpus or split than the n-gram (see its training.json)."]


def training_record(folder: Path) -> dict | None:
    """A model folder's training.json, or None if it is absent or unreadable (checked by
    `corpora.validate.read_json_file`: a damaged record only loses the note it feeds)."""
    from corpora.validate import read_json_file

    path = Path(folder) / "training.json"
    if not path.is_file():
        return None
    try:
        record = read_json_file(path, 10_000_000, what="training record")
    except (OSError, UserError):
        return None
    return record if isinstance(record, dict) else None


def split_signature(record: object) -> tuple:
    """The documents (by hash) and held-out fraction a model was trained with (a record of
    the wrong shape has no signature, so it matches nothing real)."""
    documents = record.get("documents", []) if isinstance(record, dict) else None
    if not isinstance(documents, list) or not all(
            isinstance(d, dict) and isinstance(d.get("sha256", ""), str) and isinstance(d.get("split_at", -1), int)
            for d in documents):
        return (), None
    docs = tuple(sorted((d.get("sha256", ""), d.get("split_at", -1)) for d in documents))
    return docs, record.get("heldout_fraction")
