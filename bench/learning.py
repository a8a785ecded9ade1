"""The learning curve: how much training it takes a transformer to beat the lookup table.

`transformer train` evaluates the held-out text every few hundred steps and keeps the
results in `training.json` ("evals": [[step, nats per token], ...]). This module turns them
into per-word perplexity against training tokens seen, the unit the n-gram is also
measured in, so both go on one picture: the transformer's falling curve, the Kneser-Ney
n-gram as a horizontal line, and the crossover where the transformer passes it.

The conversion is the one `corpora.units` uses everywhere — per-word perplexity is
exp(total negative log-likelihood / words) — with the total estimated from the training-time
sample: nats per token x the held-out text's tokens. The sample is a few held-out batches,
not the whole split, so the points are estimates; the figure that counts (the finished
model on the whole held-out text) is measured by `bench perplexity`.

Example:
    curve = learning_curve(json.loads(Path("training.json").read_text()), heldout_words=134_073)
    crossover(curve, ngram_per_word=538.3)   # training tokens seen when it passes the n-gram
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from corpora.common import UserError


@dataclass(frozen=True)
class LearningPoint:
    """One held-out evaluation during training."""

    step: int
    tokens_seen: int  # training tokens read up to this step (batch x context x steps)
    nats_per_token: float  # mean held-out loss over the evaluation's batches
    per_word: float  # the same loss as per-word perplexity (estimated: see the module docstring)


def tokens_per_step(training: dict) -> int:
    """Training tokens one optimizer step reads: sequences per batch x tokens per sequence."""
    settings = training["training"]
    return int(settings["batch_size"]) * int(settings["ctx"])


def per_word_from_token_loss(nats_per_token: float, tokens: int, words: int) -> float:
    """Per-word perplexity of a text of `tokens` tokens and `words` words whose mean loss
    is `nats_per_token`: exp(nats_per_token x tokens / words)."""
    if words <= 0 or tokens <= 0:
        raise UserError("the held-out text has no words or no tokens; cannot draw a learning curve")
    return math.exp(nats_per_token * tokens / words)


def learning_curve(training: dict, heldout_words: int) -> list[LearningPoint]:
    """The held-out evaluations in `training` (a parsed training.json) as LearningPoints.

    `heldout_words` is the held-out text's word count (`TextUnits.of(text).words`), the
    same count `bench perplexity` divides by, so the curve and the n-gram's line agree in
    units. Segments of a resumed run are one curve: steps count from the run's start.
    """
    try:
        evals = training["evals"]
        step_tokens = tokens_per_step(training)
        heldout_tokens = int(training["heldout_tokens"])
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f"training.json lacks what a learning curve needs ({err})") from None
    if not evals:
        raise UserError("training.json holds no held-out evaluations (was the run given held-out text?)")
    return [LearningPoint(int(step), int(step) * step_tokens, float(loss),
                          per_word_from_token_loss(float(loss), heldout_tokens, heldout_words))
            for step, loss in evals]


def crossover(curve: list[LearningPoint], ngram_per_word: float) -> float | None:
    """Training tokens at which the transformer's per-word perplexity first falls to the
    n-gram's, interpolated linearly in log(tokens) and log(perplexity) between the two
    evaluations around it; None if it never does within the curve (or starts below it)."""
    for before, after in zip(curve, curve[1:]):
        if before.per_word > ngram_per_word >= after.per_word:
            x0, x1 = math.log(before.tokens_seen), math.log(after.tokens_seen)
            y0, y1 = math.log(before.per_word), math.log(after.per_word)
            share = (y0 - math.log(ngram_per_word)) / (y0 - y1)
            return math.exp(x0 + share * (x1 - x0))
    return None


def plot_learning_curve(curve: list[LearningPoint], ngram_per_word: float, path: Path, *,
                        title: str, ngram_label: str = "n-gram, Kneser-Ney 5-gram",
                        target_ratio: float | None = None, measured: tuple[int, float] | None = None) -> Path:
    """Per-word perplexity against training tokens seen (both log scale), the n-gram as a
    horizontal line, the crossover marked; optionally the target (ratio x the n-gram) as a
    dotted line and the finished model's measured figure (tokens, per word) as a star."""
    from .plots import MODEL_COLOURS, finish, nice_ticks, plain_log_axis, pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    xs = [p.tokens_seen for p in curve]
    ys = [p.per_word for p in curve]
    ax.plot(xs, ys, "-o", markersize=3, color=MODEL_COLOURS["transformer"], zorder=2,
            label="transformer, held-out per word (estimated from the training-time sample)")
    ax.axhline(ngram_per_word, color=MODEL_COLOURS["n-gram"], linestyle="--", zorder=3,
               label=f"{ngram_label}: {ngram_per_word:,.0f}")
    if target_ratio is not None:
        ax.axhline(ngram_per_word * target_ratio, color=MODEL_COLOURS["n-gram"], linestyle=":", zorder=3,
                   label=f"target: {target_ratio:g} x the n-gram = {ngram_per_word * target_ratio:,.0f}")
    if measured is not None:
        ax.plot([measured[0]], [measured[1]], "*", markersize=14, color=MODEL_COLOURS["transformer"], zorder=4,
                label=f"finished model, measured on the whole held-out text: {measured[1]:,.0f}")
    cross = crossover(curve, ngram_per_word)
    if cross is not None:
        ax.axvline(cross, color="grey", linewidth=1, zorder=1)
        ax.annotate(f"passes the n-gram after\n{cross / 1e6:,.1f} M tokens", (cross, ngram_per_word),
                    xytext=(8, 18), textcoords="offset points", fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    values = ys + [ngram_per_word] + ([ngram_per_word * target_ratio] if target_ratio else [])
    plain_log_axis(ax.yaxis, nice_ticks(min(values), max(values)))
    million_ticks(ax.xaxis, min(xs), max(xs))
    ax.set_xlabel("training tokens seen (millions, log scale)")
    ax.set_ylabel("held-out perplexity per word (log scale; lower is better)")
    ax.set_title(title, fontsize=10)
    return finish(fig, path, ax)


def million_ticks(axis, low: float, high: float) -> None:
    """A log axis of token counts labelled in millions at 1-2-5 steps (0.5, 1, 2, 5, 10, 20),
    never 4×10⁶, with no minor labels."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    steps = [m * 10.0 ** e for e in range(4, 13) for m in (1, 2, 5)]
    ticks = [t for t in steps if low / 1.5 <= t <= high * 1.5] or [low, high]
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1e6:g}"))
    axis.set_minor_formatter(NullFormatter())
