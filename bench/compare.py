"""`bench compare`: both models on the same prompt, side by side.

For a prompt, each model gives
- its next-WORD distribution, top k with probabilities. The n-gram's tokens are words
  already; the transformer's BPE pieces are expanded into words (`bench.words`), and
  the share of probability that expansion reached is reported as `covered`;
- why: for the n-gram the context it matched (order, count, a sentence from the books);
  for the transformer its top next tokens and, on request, the logit lens;
- a short greedy continuation;
- the wall time of its prediction.

    >>> from bench import compare, models
    >>> result = compare.compare("It was the best of times", models.ngram_model(), models.transformer_model())
    >>> print(compare.render_text(result))
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from corpora import UserError
from corpora.cli_common import elide, plural
from corpora.tokenizers import BOS, EOS, UNK
from ngram import NgramModel
from ngram.predict import example_for
from ngram.smoothing import smoothing_label
from transformer import generate
from transformer.inspection import logit_lens

from .models import TransformerChoice
from . import tables
from .tables import md_cell
from .words import next_word_distribution

PROMPT_SHOWN = 120  # characters of a prompt shown on one line (the middle of a longer one is cut out)
PROMPT_IN_TABLE = 48
PROMPT_BEFORE_CONTINUATION = 60


@dataclass
class WordProbability:
    word: str
    probability: float
    count: int | None = None  # n-gram only: times it followed the matched context


@dataclass
class NgramColumn:
    model: str
    words: list[WordProbability]
    matched_context: list[str]
    matched_order: int
    context_count: int
    example: str | None
    continuation: str | None  # None when not asked for (compare(..., continuation=False))
    seconds: float  # the prediction (distribution + ranking), not the continuation
    notes: list[str] = field(default_factory=list)
    no_example: str | None = None  # why there is no example sentence
    end_of_sentence: float = 0.0  # probability of </s> (not a word, so not in `words`)
    unknown_word: float = 0.0  # probability of <unk>


@dataclass
class TransformerColumn:
    model: str
    words: list[WordProbability]
    covered: float  # probability mass of the expansion that ended in a whole word
    expansions: int  # unfinished words the expansion continued by one token (in batched passes)
    top_tokens: list[tuple[str, float]]
    continuation: str | None  # None when not asked for
    seconds: float  # the prompt's forward pass plus the word expansion
    prompt_tokens: int
    logit_lens: list[list[tuple[str, float]]] | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Comparison:
    prompt: str
    k: int
    ngram: NgramColumn
    transformer: TransformerColumn

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------ the n-gram side


def ngram_next_words(model: NgramModel, prompt: str, k: int = 10, smoothing: str = "kn",
                     continuation: bool = True) -> NgramColumn:
    """The n-gram's k most probable next words (smoothed), and the context it matched
    (and a greedy continuation unless `continuation` is False: the page asks for none on
    every keystroke).

    The same list as `ngram predict` (ranked by the smoothed probability, exact top k,
    no ``<s>``/``</s>``/``<unk>``); the matched context is shown with ``<s>`` as the model saw it.
    """
    started = time.perf_counter()
    prediction = model.predict(prompt, k=k, smoothing=smoothing, example=False)
    words = [
        WordProbability(
            model.tokenizer.display(c.token),  # words as they are; BPE tokens quoted, e.g. " night"
            c.probability,
            c.count if c.order == prediction.matched_order else 0,  # times it followed the matched context
        )
        for c in prediction.candidates
    ]
    seconds = time.perf_counter() - started
    example, no_example = example_for(model, prediction.matched_context, prediction.candidates)
    continued = model.render(model.generate(prompt, max_tokens=12, greedy=True, smoothing=smoothing)) if continuation else None
    label = f"{model.order}-gram, {smoothing_label(smoothing, k=1.0)}"
    return NgramColumn(
        model=label,
        words=words,
        matched_context=[model.tokenizer.display(t) for t in prediction.matched_context],
        matched_order=prediction.matched_order,
        context_count=prediction.context_count,
        example=example,
        continuation=continued,
        seconds=seconds,
        notes=list(prediction.notes),
        no_example=no_example,
        end_of_sentence=prediction.end_of_sentence,
        unknown_word=prediction.unknown_word,
    )


# -------------------------------------------------------------- the transformer side


def prompt_ids(choice: TransformerChoice, prompt: str, room: int) -> tuple[list[int], list[str]]:
    """The prompt's BPE ids (trailing white space dropped: the next word brings its own
    space), cut to the latest tokens if the prompt is longer than the window allows."""
    ids = choice.tokenizer.encode(prompt.rstrip())
    notes = []
    limit = choice.model.config.n_ctx - room
    if len(ids) > limit:
        notes.append(f"the prompt has {plural(len(ids), 'token')}; the transformer reads only the last {limit:,} (its window)")
        ids = ids[-limit:]
    return ids, notes


def transformer_next_words(
    choice: TransformerChoice, prompt: str, k: int = 10, lowercase: bool = False,
    budget: int = 1024, explain: bool = False, continuation: bool = True,
) -> TransformerColumn:
    """The transformer's k most probable next words, by expanding BPE continuations
    (and a greedy continuation of 20 tokens unless `continuation` is False)."""
    continuation_tokens = 20
    ids, notes = prompt_ids(choice, prompt, room=continuation_tokens + 4)
    dist = next_word_distribution(choice.model, choice.tokenizer, ids, budget=budget)
    words: dict[str, float] = {}
    for word, p in dist.words.items():  # fold case like the n-gram did, if it did
        key = word.lower() if lowercase else word
        words[key] = words.get(key, 0.0) + p
    top = sorted(words.items(), key=lambda wp: (-wp[1], wp[0]))[:k]
    new = generate(choice.model, ids, max_new_tokens=continuation_tokens,
                   stop_id=getattr(choice.tokenizer, "eot_id", None)) if continuation else None
    lens = None
    if explain:
        tok = choice.tokenizer
        lens = [[(tok.decode([t]), p) for t, p in layer] for layer in logit_lens(choice.model, ids, k=3)]
    return TransformerColumn(
        model=choice.description,
        words=[WordProbability(w, p) for w, p in top],
        covered=dist.covered,
        expansions=dist.expansions,
        top_tokens=dist.top_tokens,
        continuation=" ".join(choice.tokenizer.decode(new).split()) if continuation else None,  # line breaks as spaces
        seconds=dist.seconds,
        prompt_tokens=len(ids),
        logit_lens=lens,
        notes=notes,
    )


# ------------------------------------------------------------------------ both


def compare(
    prompt: str, ngram: NgramModel, transformer: TransformerChoice, k: int = 10,
    explain: bool = False, smoothing: str = "kn", budget: int = 1024, continuation: bool = True,
) -> Comparison:
    """Both models' next-word predictions for `prompt`, with their reasons and timings
    (`continuation=False` leaves out the greedy continuations, the slowest part)."""
    if not prompt.strip():
        raise UserError('the prompt is empty; give some text, e.g. "It was the best of times"')
    if k < 1:
        raise UserError(f"-k must be at least 1, got {k}")
    left = ngram_next_words(ngram, prompt, k, smoothing, continuation)
    right = transformer_next_words(transformer, prompt, k, ngram.tokenizer.lowercase, budget, explain, continuation)
    return Comparison(prompt, k, left, right)


# ---------------------------------------------------------------------- output


def show_word(word: str) -> str:
    return {EOS: "</s> (end of sentence)", UNK: "<unk> (any rare word)"}.get(word, word)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def describe_ngram_match(n: NgramColumn) -> str:
    """The n-gram's matched context as the model saw it, ``<s>`` included, with its order and count."""
    context = " ".join(n.matched_context) or "(nothing: unigrams)"
    start = "; <s> is the start of a sentence" if BOS in n.matched_context else ""
    return f"\"{context}\" ({n.matched_order}-gram{start}; context seen {plural(n.context_count, 'time')})"


def render_text(c: Comparison) -> str:
    """The side-by-side table a person reads in a terminal."""
    n, t = c.ngram, c.transformer
    width = 30
    lines = [
        f"Prompt: {elide(c.prompt, PROMPT_SHOWN)}",
        f"  n-gram:      {n.model}",
        f"  transformer: {t.model}",
        "",
        f"  {'#':>2}  {'n-gram next word':<{width}} {'p':>7}    {'transformer next word':<{width}} {'p':>7}",
    ]
    for i in range(c.k):
        a = n.words[i] if i < len(n.words) else None
        b = t.words[i] if i < len(t.words) else None
        left = f"{show_word(a.word)[:width]:<{width}} {a.probability:7.4f}" if a else " " * (width + 8)
        right = f"{show_word(b.word)[:width]:<{width}} {b.probability:7.4f}" if b else ""
        lines.append(f"  {i + 1:>2}  {left}    {right}".rstrip())
    lines += ["", f"n-gram: matched {describe_ngram_match(n)}; probabilities are smoothed and sum to 1 over its vocabulary."]
    lines.append(f"  Not listed: end of sentence ({EOS}) {n.end_of_sentence:.4f}, an unknown word ({UNK}) {n.unknown_word:.4f}")
    if n.example:
        lines.append(f"  Why: “{n.example}”")
    elif n.no_example:
        lines.append(f"  Why: no example sentence — {n.no_example}")
    lines += [f"  Note: {note}" for note in n.notes]
    tokens = ", ".join(f"{tok!r} {p:.3f}" for tok, p in t.top_tokens[:5])
    lines += [
        f"transformer: next-token odds {tokens}",
        f"  Words are built from BPE pieces: the table holds {t.covered:.1%} of the probability "
        f"({plural(t.expansions, 'unfinished word')} continued, in batches).",
    ]
    lines += [f"  Note: {note}" for note in t.notes]
    if t.logit_lens:
        lines.append("  Logit lens (top guesses after each layer; 0 = embeddings only):")
        for layer, guesses in enumerate(t.logit_lens):
            lines.append(f"    {layer:>2}: " + ", ".join(f"{tok!r} {p:.2f}" for tok, p in guesses))
    shown = elide(c.prompt, PROMPT_BEFORE_CONTINUATION)
    lines += [
        "",
        "Greedy continuation:",
        f"  n-gram:      {shown} … {n.continuation}",
        f"  transformer: {shown} … {t.continuation}",
        "",
        f"Prediction time: n-gram {ms(n.seconds)}, transformer {ms(t.seconds)} "
        f"({plural(t.prompt_tokens, 'prompt token')}, {plural(t.expansions, 'word')} continued)",
    ]
    return "\n".join(lines)


def top_words(words: list[WordProbability], n: int) -> str:
    return ", ".join(f"{show_word(w.word).split(' ')[0]} ({w.probability:.2f})" for w in words[:n])


def render_table(results: list[Comparison], markdown: bool = False, top: int = 3) -> str:
    """Several prompts, one row each: the top words of both, the n-gram's order, times.

    Long prompts are shown with their middle cut out; what each model left out of a
    prompt (the transformer's window, unknown words) is said below the table.
    """
    header = ["prompt", "n-gram top words", "order", "transformer top words", "covered", "n-gram ms", "transformer ms"]
    rows = [
        [
            elide(r.prompt, PROMPT_IN_TABLE), top_words(r.ngram.words, top), str(r.ngram.matched_order),
            top_words(r.transformer.words, top), f"{r.transformer.covered:.0%}", f"{r.ngram.seconds * 1000:.1f}",
            f"{r.transformer.seconds * 1000:.1f}",
        ]
        for r in results
    ]
    notes = [f"“{elide(r.prompt, PROMPT_IN_TABLE)}”, {who}: {note}" for r in results for who, note in column_notes(r)]
    lines = [tables.render_table(header, rows, right={2, 4, 5, 6}, markdown=markdown)]
    if notes:
        lines += ["", *((f"- {md_cell(n)}" if markdown else f"Note on {n}") for n in notes)]
    return "\n".join(lines)


def column_notes(c: Comparison) -> list[tuple[str, str]]:
    """Each model's notes on a prompt: what it could not read, or did not know."""
    return [("n-gram", note) for note in c.ngram.notes] + [("transformer", note) for note in c.transformer.notes]


def render_markdown(c: Comparison) -> str:
    """One prompt as Markdown, to paste into teaching material."""
    n, t = c.ngram, c.transformer
    lines = [
        f"**Prompt:** {md_cell(elide(c.prompt, PROMPT_SHOWN))}",
        "",
        f"| # | n-gram ({md_cell(n.model)}) | p | transformer ({md_cell(t.model)}) | p |",
        "|---:|---|---:|---|---:|",
    ]
    for i in range(c.k):
        a = n.words[i] if i < len(n.words) else None
        b = t.words[i] if i < len(t.words) else None
        lines.append(
            f"| {i + 1} | {md_cell(show_word(a.word)) if a else ''} | {f'{a.probability:.4f}' if a else ''} "
            f"| {md_cell(show_word(b.word)) if b else ''} | {f'{b.probability:.4f}' if b else ''} |"
        )
    context = f"`{md_cell(' '.join(n.matched_context))}`" if n.matched_context else "(unigrams)"  # <s> shown, not read as HTML
    lines += [
        "",
        f"- n-gram matched {context} ({n.matched_order}-gram, seen {plural(n.context_count, 'time')})"
        + (f"; e.g. “{md_cell(n.example)}”" if n.example else ""),
        f"- n-gram, not listed: end of sentence {n.end_of_sentence:.4f}, an unknown word {n.unknown_word:.4f}",
        f"- transformer: the word table covers {t.covered:.1%} of its probability",
        f"- greedy continuation, n-gram: *{md_cell(n.continuation)}*",
        f"- greedy continuation, transformer: *{md_cell(t.continuation)}*",
        f"- prediction time: n-gram {ms(n.seconds)}, transformer {ms(t.seconds)}",
    ]
    lines += [f"- note ({who}): {md_cell(note)}" for who, note in column_notes(c)]
    return "\n".join(lines)
