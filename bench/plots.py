"""The report's pictures (matplotlib, file-only Agg backend): one function per plot."""
from __future__ import annotations

from pathlib import Path

from .compare import Comparison, show_word
from .perplexity import PerplexityReport


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
    kn = [r for r in own if r.model == "n-gram" and r.smoothing == "kn"]
    if kn:
        ax.plot([r.order for r in kn], [r.score.per_word for r in kn], "o-", label="n-gram, Kneser-Ney (add-1 and MLE: see the table)")
    full = [r for r in own if r.model == "transformer" and r.context is None]
    if full:
        ax.axhline(full[0].score.per_word, color="tab:red", label=f"transformer, {full[0].label}")
    cut = [r for r in own if r.model == "transformer" and r.context is not None]
    if cut:
        ax.plot([r.context + 1 for r in cut], [r.score.per_word for r in cut], "^:", color="tab:red",
                label="transformer, context cut to n-1 tokens")
    ax.set_yscale("log")
    ax.set_xlabel("n-gram order n")
    ax.set_ylabel("perplexity per word (log scale; lower is better)")
    ax.set_title(f"Same text: {report.units.words:,} words")
    ax.set_xticks(sorted({r.order for r in own if r.order}))
    return finish(fig, path, ax)


def next_word_bars(comparison: Comparison, path: Path, k: int = 10) -> Path:
    """Next-word probabilities of both models for one prompt, as two bar charts."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, words, title in (
        (axes[0], comparison.ngram.words[:k], f"n-gram ({comparison.ngram.model})"),
        (axes[1], comparison.transformer.words[:k], "transformer"),
    ):
        labels = [show_word(w.word).split(" ")[0] for w in words][::-1]
        ax.barh(labels, [w.probability for w in words][::-1], color="tab:blue" if ax is axes[0] else "tab:red")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("probability of the next word")
        ax.set_xlim(0, max([w.probability for w in comparison.ngram.words[:k] + comparison.transformer.words[:k]] + [0.01]) * 1.1)
    fig.suptitle(f"“{comparison.prompt} …”", fontsize=10)
    return finish(fig, path)


def latency_vs_context(latency: dict, path: Path) -> Path:
    """Median next-token latency against the prompt length, both models (log-log)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, style in (("ngram", "o-"), ("transformer", "^-")):
        points = sorted((int(n), ms) for n, ms in latency.get(name, {}).items())
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], style, label=name.replace("ngram", "n-gram (top-10)"))
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("prompt length (tokens)")
    ax.set_ylabel("next-token latency, median (ms, log scale)")
    ax.set_title("Latency against context length (no cache: a fresh prompt each time)")
    return finish(fig, path, ax)
