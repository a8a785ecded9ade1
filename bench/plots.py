"""The report's pictures (matplotlib, file-only Agg backend): one function per plot.

Conventions every plot keeps: one colour per model everywhere (`MODEL_COLOURS`), a title
that names the text (or prompt) and panel titles that name the model, log axes labelled
with plain numbers (`plain_log_axis`: 4,000, never 4×10³), and the n-gram drawn above the
transformer (`NGRAM_STYLE`: open markers, higher zorder) so that neither hides the other.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .compare import Comparison, show_word
from .perplexity import PerplexityReport

# Colours: one per model, in every plot.
MODEL_COLOURS = {"n-gram": "tab:blue", "transformer": "tab:red"}
# The n-gram's points: open circles drawn above the transformer's line, never hidden under it.
NGRAM_STYLE = dict(color=MODEL_COLOURS["n-gram"], marker="o", markersize=8, markerfacecolor="white",
                   markeredgewidth=2, zorder=3)
TRANSFORMER_STYLE = dict(color=MODEL_COLOURS["transformer"], marker="^", zorder=2)


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def finish(fig, path: Path, ax=None) -> Path:
    """Grid and legend on `ax` (if given), then write the figure to `path` and free it."""
    if ax is not None:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return path


def perplexity_vs_order(report: PerplexityReport, path: Path) -> Path:
    """Per-word perplexity of the Kneser-Ney n-gram at each order; the transformer as a
    horizontal line (full context) and as points with its context cut to n-1 tokens."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    own = [r for r in report.rows if r.mix is None]  # the aligned-token and mixture rows are not per order
    full = [r for r in own if r.model == "transformer" and r.context is None]
    if full:
        ax.axhline(full[0].score.per_word, color=MODEL_COLOURS["transformer"], zorder=1,
                   label=f"transformer, {full[0].label}")
    cut = [r for r in own if r.model == "transformer" and r.context is not None]
    if cut:
        ax.plot([r.context + 1 for r in cut], [r.score.per_word for r in cut], linestyle=":", **TRANSFORMER_STYLE,
                label="transformer, context cut to n-1 tokens")
    kn = [r for r in own if r.model == "n-gram" and r.smoothing == "kn"]
    if kn:
        ax.plot([r.order for r in kn], [r.score.per_word for r in kn], linestyle="-", **NGRAM_STYLE,
                label="n-gram, Kneser-Ney (add-1 and MLE: see the table)")
    ax.set_yscale("log")
    values = [r.score.per_word for r in kn + cut + full]
    finite = [v for v in values if v == v and v != float("inf")]
    if finite:
        plain_log_axis(ax.yaxis, nice_ticks(min(finite), max(finite)))
        ax.set_ylim(min(finite) / 1.15, max(finite) * 1.15)
    ax.set_xlabel("n-gram order n")
    ax.set_ylabel("perplexity per word (log scale; lower is better)")
    ax.set_title(f"Perplexity on {short_source(report.source)} ({report.units.words:,} words)", fontsize=10)
    ax.set_xticks(sorted({r.order for r in own if r.order}))
    return finish(fig, path, ax)


def next_word_bars(comparison: Comparison, path: Path, k: int = 10) -> Path:
    """Next-word probabilities of both models for one prompt, as two bar charts."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, words, title, colour in (
        (axes[0], comparison.ngram.words[:k], f"n-gram: {comparison.ngram.model}", MODEL_COLOURS["n-gram"]),
        (axes[1], comparison.transformer.words[:k], f"transformer: {comparison.transformer.model.split(' (')[0]}",
         MODEL_COLOURS["transformer"]),
    ):
        labels = [show_word(w.word).split(" ")[0] for w in words][::-1]
        ax.barh(labels, [w.probability for w in words][::-1], color=colour)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("probability of the next word")
        ax.set_xlim(0, max([w.probability for w in comparison.ngram.words[:k] + comparison.transformer.words[:k]] + [0.01]) * 1.1)
    fig.suptitle(f"Next word after “{comparison.prompt} …”", fontsize=10)
    return finish(fig, path)


def latency_vs_context(latency: dict, path: Path) -> Path:
    """Median next-token latency against the prompt length, both models (log-log)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs, ys = set(), []
    for name, model, style in (("transformer", "transformer", dict(TRANSFORMER_STYLE, linestyle="-")),
                               ("ngram", "n-gram", dict(NGRAM_STYLE, linestyle="-"))):
        points = sorted((int(n), ms) for n, ms in latency.get(name, {}).items())
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], **style,
                    label="n-gram (top-10)" if model == "n-gram" else model)
            xs.update(p[0] for p in points)
            ys += [p[1] for p in points]
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    if xs:
        plain_log_axis(ax.xaxis, sorted(xs))
    positive = [y for y in ys if y > 0]
    if positive:
        plain_log_axis(ax.yaxis, nice_ticks(min(positive), max(positive)))
    ax.set_xlabel("prompt length (tokens, log scale)")
    ax.set_ylabel("next-token latency, median (ms, log scale)")
    ax.set_title("Latency against context length, this machine (no cache: a fresh prompt each time)", fontsize=10)
    return finish(fig, path, ax)


def plain_log_axis(axis, ticks: list[float]) -> None:
    """A log axis labelled with plain numbers at `ticks` (no 4×10³), no minor labels."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 10 else f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def context_curves(report, path: Path) -> Path:
    """Per-word perplexity against the words of context each model saw (`bench context`).

    The transformer's full window is drawn as "all", one step right of its largest cut;
    the n-gram's points are drawn above the transformer's line, so they are never hidden.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    cuts = [p for p in report.curve("transformer") if p.words is not None]
    full = [p for p in report.curve("transformer") if p.words is None]
    all_x = 2 * max([p.words for p in cuts] + [1])
    xs = [p.words for p in cuts] + [all_x] * len(full)
    ys = [p.row.score.per_word for p in cuts + full]
    ax.plot(xs, ys, "-^", color=MODEL_COLOURS["transformer"], zorder=2, label="transformer, context cut to c words")
    ngram = report.curve("n-gram")
    ax.plot([p.words for p in ngram], [p.row.score.per_word for p in ngram], "--o", color=MODEL_COLOURS["n-gram"],
            markersize=8, markerfacecolor="white", markeredgewidth=2, zorder=3, label="n-gram, Kneser-Ney (order c + 1)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ticks = sorted(set(xs) | {p.words for p in ngram})
    plain_log_axis(ax.xaxis, ticks)
    ax.set_xticks(ticks, [("all" if t == all_x and full else f"{t:,}") for t in ticks])
    finite = [y for y in ys + [p.row.score.per_word for p in ngram] if y == y and y != float("inf")]
    if finite:
        low, high = min(finite), max(finite)
        plain_log_axis(ax.yaxis, nice_ticks(low, high))
        ax.set_ylim(low / 1.15, high * 1.15)
    ax.set_xlabel("words of context the model may see (log scale)")
    ax.set_ylabel("perplexity per word (log scale; lower is better)")
    ax.set_title(f"Context against perplexity: {short_source(report.source)} ({report.units.words:,} words)", fontsize=10)
    return finish(fig, path, ax)


def nice_ticks(low: float, high: float) -> list[float]:
    """Round numbers covering [low, high] for a readable log axis: 1-2-5 steps, or finer
    steps when the range is too narrow for three of those."""
    import math

    inside: list[float] = []
    for mantissas in ((1, 2, 5), (1, 1.5, 2, 3, 4, 5, 6, 7, 8)):
        ticks = [m * 10 ** e for e in range(math.floor(math.log10(max(low, 1e-9))), math.ceil(math.log10(max(high, 1e-9))) + 1)
                 for m in mantissas]
        inside = [t for t in ticks if low / 1.15 <= t <= high * 1.15]
        if len(inside) >= 3:
            break
    return inside or [round(low, 1), round(high, 1)]


def short_source(source: str, limit: int = 60) -> str:
    """The text's name, shortened from the left so a title fits."""
    return source if len(source) <= limit else "…" + source[-(limit - 1):]


def induction_heatmap(report, path: Path) -> Path:
    """The induction score of every layer and head (`bench induction`), with the value in each cell."""
    plt = pyplot()
    scores = report.scores
    n_layer, n_head = scores.shape
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * n_head, 1.2 + 0.45 * n_layer))
    image = ax.imshow(scores, vmin=0.0, vmax=max(1e-6, float(scores.max()), 0.5), cmap="viridis", aspect="auto")
    for (layer, head), value in np.ndenumerate(scores):
        ax.text(head, layer, f"{value:.2f}", ha="center", va="center", fontsize=7,
                color="black" if value > 0.6 * image.get_clim()[1] else "white")
    ax.set_xticks(range(n_head), [str(h) for h in range(n_head)])
    ax.set_yticks(range(n_layer), [str(l) for l in range(n_layer)])
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    fig.colorbar(image, ax=ax, label="induction score")
    model = report.transformer_model.split(" ")[0]
    ax.set_title(f"Induction scores of {model}\n{report.repeats} random sequences of {report.length} tokens, shown twice",
                 fontsize=9)
    return finish(fig, path)


def cloze_bars(report, path: Path) -> Path:
    """Cloze accuracy of both models (`bench cloze`), with the published figures beside as
    hatched grey bars: they are another test set, published, not measured here."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9.5, 4.4))
    labels, values, colours, hatches = [], [], [], []
    for m in report.models:
        labels.append(f"{m.name}\n{m.description.split(' (')[0]}")
        values.append(100 * m.accuracy)
        colours.append(MODEL_COLOURS.get(m.name, "tab:gray"))
        hatches.append("")
    for p in report.published:
        if p.accuracy is not None:
            labels.append(f"{p.model}\n{p.rule.split(',')[0]}\n(published)")
            values.append(100 * p.accuracy)
            colours.append("lightgray")
            hatches.append("//")
    bars = ax.bar(range(len(values)), values, color=colours, hatch=None, edgecolor="black", linewidth=0.5)
    for bar, hatch, value in zip(bars, hatches, values):
        bar.set_hatch(hatch)
        ax.annotate(f"{value:.1f}%", (bar.get_x() + bar.get_width() / 2, value), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(values)), labels, fontsize=7)
    ax.set_ylabel("accuracy: the last word guessed exactly (%)")
    ax.set_ylim(0, max(values + [1]) * 1.2)
    name = Path(report.source).name if "/" in report.source else report.source
    ax.set_title(f"Cloze accuracy on {short_source(name, 50)} ({report.models[0].passages:,} passages);\n"
                 "grey hatched: published on LAMBADA, not measured here", fontsize=9)
    return finish(fig, path)
