"""`bench report`: compare, perplexity, the experiments and speed in one folder a reader can cite and rerun.

Writes `report.md` (tables, the exact command, model names and hashes, corpus, split,
versions), `report.json` (every number) and PNG plots. Everything but the timings is
reproducible: the same models, text and seed give the same report. Files are written
only once everything has been computed, each one atomically.

The experiments (`EXPERIMENTS`, each skippable) are those of `bench context`, `bench
perplexity --breakdown`, `bench induction`, `bench accuracy` and `bench cloze`, at their
commands' default sizes, on the report's text (its first words, where an experiment's
cost grows with them). The cloze set built from the held-out books is written into the
report's folder as cloze.jsonl, so `bench cloze DIR/cloze.jsonl` scores it again.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import signal
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Iterator, Sequence

from corpora import UserError
from corpora.common import atomic_write
from ngram import NgramModel

from . import compare as comparing
from . import perplexity as ppl
from . import plots
from .models import TransformerChoice

PROMPTS_FILE = Path(__file__).parent / "prompts.txt"
TIMING_KEYS = {"seconds", "speed"}  # the only parts of report.json that change from run to run
EXPERIMENTS = ("learning", "context", "breakdown", "induction", "accuracy", "cloze")
CONTEXT_WORDS = 20_000  # bench context's default
BREAKDOWN_WORDS = 20_000
ACCURACY_WORDS = 2_000  # bench accuracy's default


def standard_prompts() -> list[str]:
    """The prompt set shipped with the package (bench/prompts.txt)."""
    return [line.strip() for line in PROMPTS_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]


def file_sha256(path: Path) -> str:
    """The sha256 of a file; of a model folder (the array format), of its files' names and
    bytes in name order, so a folder has one hash that changes when any file does."""
    digest = hashlib.sha256()
    files = sorted(p for p in Path(path).iterdir() if p.is_file()) if Path(path).is_dir() else [Path(path)]
    for file in files:
        if len(files) > 1 or Path(path).is_dir():
            digest.update(file.name.encode("utf-8") + b"\0")
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def versions() -> dict:
    import numpy
    import platform

    try:
        ours = metadata.version("trie-vs-transformer")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a plain checkout
        ours = "unknown"
    return {"trie-vs-transformer": ours, "python": platform.python_version(), "numpy": numpy.__version__}


@dataclass
class Report:
    command: str
    meta: dict
    comparisons: list[comparing.Comparison]
    perplexity: ppl.PerplexityReport
    speed: object | None = None  # bench.speed.SpeedReport
    files: list[str] = field(default_factory=list)
    experiments: dict = field(default_factory=dict)  # name -> its report, or a str saying why it is missing
    cloze_set: list[str] = field(default_factory=list)  # the passages built from the held-out books

    def to_dict(self) -> dict:
        return {
            "command": self.command,
            "meta": self.meta,
            "compare": [c.to_dict() for c in self.comparisons],
            "perplexity": self.perplexity.to_dict(),
            "experiments": {name: (value if isinstance(value, str) else value.to_dict())
                            for name, value in self.experiments.items()},
            "speed": self.speed.to_dict() if self.speed is not None else None,
            "files": self.files,
        }


def describe_models(ngram: NgramModel, ngram_path: Path, choice: TransformerChoice) -> dict:
    corpus = ngram.corpus
    signature = json.dumps(ppl.split_signature(corpus), sort_keys=True).encode()
    return {
        "ngram": {
            "file": ngram_path.name, "sha256": file_sha256(ngram_path), "order": ngram.order,
            "tokenizer": ngram.tokenizer.config(), "vocabulary": len(ngram.vocab),
            "training_tokens": ngram.info.get("training_tokens"),
        },
        "transformer": {
            "name": choice.name, "folder": choice.folder.name, "description": choice.description,
            "weights_sha256": file_sha256(choice.folder / "model.safetensors"),
        },
        "corpus": {
            "documents": len(corpus.get("documents", [])), "heldout_fraction": corpus.get("heldout_fraction"),
            "split": corpus.get("split"), "split_sha256": hashlib.sha256(signature).hexdigest(),
        },
        "versions": versions(),
    }


def build_report(
    ngram: NgramModel, ngram_path: Path, choice: TransformerChoice, text: ppl.EvalText, command: str,
    prompts: list[str] | None = None, seed: int = 0, speed: bool = True, mix: bool = True, ablation: str = "top",
    corpus_folder: Path | None = None, k: int = 10, progress: bool = True, experiments: Sequence[str] = (),
) -> Report:
    """Run everything; nothing is written here. `experiments`: which of `EXPERIMENTS` to run
    (`bench report` runs all of them unless told to --skip one)."""
    prompts = prompts or standard_prompts()
    comparisons = [comparing.compare(p, ngram, choice, k) for p in prompts]
    perplexity = ppl.compare_perplexity(ngram, choice, text, ablation=ablation, progress=progress)
    if mix:
        from . import mixing

        mixing.add_mix_rows(perplexity, ngram, choice, text, mixing.DEFAULT_GRID, progress=progress)
    speed_report = None
    if speed:
        from . import speed as timing

        speed_report = timing.measure(corpus_folder, choice, text.text, list(range(2, ngram.order + 1)), seed=seed, progress=progress)
    meta = {**describe_models(ngram, ngram_path, choice), "seed": seed, "text": text.source}
    report = Report(command, meta, comparisons, perplexity, speed_report)
    run_experiments(report, ngram, choice, text, experiments, seed, progress)
    return report


def first_words(text: ppl.EvalText, words: int) -> ppl.EvalText:
    """The text's first `words` words (an experiment whose cost grows with the text)."""
    cut, truncated = ppl.take_words(text.text.split("\n"), words)
    return ppl.EvalText(cut, text.source, text.truncated or truncated)


def run_experiments(
    report: Report, ngram: NgramModel, choice: TransformerChoice, text: ppl.EvalText, wanted, seed: int,
    progress: bool,
) -> None:
    """Each experiment asked for into `report.experiments`; one that cannot run on these
    models or this text is recorded with the reason instead of stopping the report."""
    for name in [e for e in EXPERIMENTS if e in set(wanted)]:
        try:
            report.experiments[name] = EXPERIMENT_RUNNERS[name](report, ngram, choice, text, seed, progress)
        except UserError as err:
            report.experiments[name] = f"not run: {err}"


def run_context(report, ngram, choice, text, seed, progress):
    from . import context as ctx

    return ctx.context_sweep(ngram, choice, first_words(text, CONTEXT_WORDS), progress=progress)


def run_breakdown(report, ngram, choice, text, seed, progress):
    from . import breakdown as buckets

    if ngram.tokenizer.name != "words":
        raise UserError(f"the breakdown needs an n-gram over words, not {ngram.tokenizer.name} tokens")
    return buckets.breakdown(ngram, choice, first_words(text, BREAKDOWN_WORDS).text, ppl.SpellingModel.for_model(ngram),
                             progress)


def run_induction(report, ngram, choice, text, seed, progress):
    from . import induction as copying

    length = min(copying.DEFAULT_LENGTH, (choice.model.config.n_ctx - 1) // 2)
    return copying.induction(ngram, choice, length, copying.DEFAULT_REPEATS, seed, ppl.SpellingModel.for_model(ngram))


def run_accuracy(report, ngram, choice, text, seed, progress):
    from . import accuracy as guessing

    if ngram.tokenizer.name != "words":
        raise UserError(f"next-word accuracy needs an n-gram over words, not {ngram.tokenizer.name} tokens")
    cut = first_words(text, ACCURACY_WORDS)
    return guessing.accuracy(ngram, choice, cut.text, cut.source, progress=progress)


def run_cloze(report, ngram, choice, text, seed, progress):
    from . import cloze as cz

    if ngram.tokenizer.name != "words":
        raise UserError(f"the cloze needs an n-gram over words, not {ngram.tokenizer.name} tokens")
    report.cloze_set = cz.build_cloze_set(cz.heldout_documents(ngram), cz.DEFAULT_PASSAGES)
    passages = [cz.split_passage(t, i) for i, t in enumerate(report.cloze_set, 1)]
    return cz.cloze(ngram, choice, passages, "cloze.jsonl (built from the held-out books)", cz.CLOZE_RULE, progress)


def run_learning(report, ngram, choice, text, seed, progress):
    from . import learning

    training = ppl.training_record(choice.folder)
    same = training is not None and ppl.split_signature(training.get("corpus", {})) == ppl.split_signature(ngram.corpus)
    return learning.learning_report(training, choice.description, same,
                                    text.source.startswith("held-out") and not text.truncated,
                                    report.perplexity.rows, report.perplexity.units.words)


EXPERIMENT_RUNNERS = {"learning": run_learning, "context": run_context, "breakdown": run_breakdown, "induction": run_induction,
                      "accuracy": run_accuracy, "cloze": run_cloze}


def render_markdown(report: Report) -> str:
    m = report.meta
    n, t, c = m["ngram"], m["transformer"], m["corpus"]
    lines = [
        "# Trie vs transformer: a side-by-side report",
        "",
        f"Made with `{report.command}`. Rerun the same command on the same models and text to get the same "
        "tables (timings aside).",
        "",
        "## Models and data",
        "",
        f"- n-gram: `{n['file']}` (sha256 `{n['sha256'][:16]}…`), {n['order']}-gram over "
        f"{n['tokenizer'].get('name')} tokens, vocabulary {n['vocabulary']:,}, built from {n['training_tokens'] or 0:,} tokens",
        f"- transformer: {t['description']} (weights sha256 `{t['weights_sha256'][:16]}…`)",
        f"- corpus: {c['documents']} documents; held out: the last {c['heldout_fraction']:.0%} of every document "
        f"(split sha256 `{c['split_sha256'][:16]}…`)",
        f"- evaluation text: {m['text']}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        "",
        "## Next-word predictions",
        "",
        comparing.render_table(report.comparisons, markdown=True),
        "",
        "![next-word probabilities](next_word.png)",
        "",
        comparing.render_markdown(report.comparisons[0]),
        "",
        "## Perplexity on the same text",
        "",
        ppl.render_report(report.perplexity, markdown=True),
        "",
        "![perplexity against order](perplexity_vs_order.png)",
        "",
    ]
    lines += render_experiments(report)
    if report.speed is not None:
        from .speed import render_speed

        lines += [
            "## Speed (this machine; quote the ratios, not the absolute times)",
            "",
            render_speed(report.speed, markdown=True),
            "",
            "![latency against context length](latency_vs_context.png)",
            "",
            "Machine: " + ", ".join(f"{k} {v}" for k, v in report.speed.machine.items()),
            "",
        ]
    return "\n".join(lines)


EXPERIMENT_TITLES = {
    "learning": ("Learning curve: how much training it takes to beat the lookup table", "learning_curve.png"),
    "context": ("Context: per-word perplexity against the words each model may see", "context_curves.png"),
    "breakdown": ("Where each model wins: words by the context the trie has seen", None),
    "induction": ("Induction: copying a random sequence shown twice", "induction.png"),
    "accuracy": ("Next-word accuracy", None),
    "cloze": ("Cloze: the last word of a passage (LAMBADA's task)", "cloze.png"),
}


def render_experiment(name: str, value) -> str:
    """One experiment's table, in Markdown, through its command's own renderer."""
    if name == "learning":
        from .learning import render_learning
        return render_learning(value, markdown=True)
    if name == "context":
        from .context import render_context
        return render_context(value, markdown=True)
    if name == "breakdown":
        from .breakdown import render_breakdown
        return render_breakdown(value, markdown=True)
    if name == "induction":
        from .induction import render_induction
        return render_induction(value, markdown=True)
    if name == "accuracy":
        from .accuracy import render_accuracy
        return render_accuracy(value, markdown=True)
    from .cloze import render_cloze
    return render_cloze(value, markdown=True)


def render_experiments(report: Report) -> list[str]:
    """A section per experiment: its table and plot, or why it did not run."""
    lines = []
    for name, value in report.experiments.items():
        title, plot = EXPERIMENT_TITLES[name]
        lines += [f"## {title}", ""]
        if isinstance(value, str):
            lines += [value.capitalize(), ""]
            continue
        lines += [render_experiment(name, value), ""]
        if plot:
            lines += [f"![{title.split(':')[0].lower()}]({plot})", ""]
        if name == "cloze":
            lines += ["The passages are in `cloze.jsonl` beside this report; `bench cloze cloze.jsonl` scores them again.", ""]
    return lines


def draw_learning_curve(value, path: Path) -> Path:
    from .learning import TARGET_RATIO, plot_learning_curve

    return plot_learning_curve(value.curve, value.ngram_per_word, path, ngram_label=value.ngram_label,
                               title=f"Learning curve: {value.model.split(' (')[0]} on the held-out books "
                                     f"({value.heldout_words:,} words)",
                               target_ratio=TARGET_RATIO, measured=value.measured)


def stage_experiment_files(report: Report, staged: Path) -> None:
    """The experiments' plots, and the cloze set, into the scratch folder."""
    drawers = {"learning": draw_learning_curve, "context": plots.context_curves, "induction": plots.induction_heatmap, "cloze": plots.cloze_bars}
    for name, value in report.experiments.items():
        if not isinstance(value, str) and name in drawers:
            drawers[name](value, staged / EXPERIMENT_TITLES[name][1])
    if report.cloze_set and not isinstance(report.experiments.get("cloze"), str):
        from .cloze import write_jsonl

        write_jsonl(report.cloze_set, staged / "cloze.jsonl")


def write_report(report: Report, folder: str | Path) -> Path:
    """Write report.md, report.json and the plots into `folder`: all of them or none.

    Everything is drawn and written in a scratch folder first; only then is `folder` made
    and the files put in place, with Ctrl-C held back for those few steps, so an
    interrupted run leaves neither a new folder nor a report half new and half old.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} is a file; give a folder for the report")
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp)
        plots.next_word_bars(report.comparisons[0], staged / "next_word.png")
        plots.perplexity_vs_order(report.perplexity, staged / "perplexity_vs_order.png")
        if report.speed is not None:
            plots.latency_vs_context(report.speed.latency_by_context, staged / "latency_vs_context.png")
        stage_experiment_files(report, staged)
        report.files = sorted(["report.md", "report.json", *(p.name for p in staged.iterdir())])
        (staged / "report.md").write_text(render_markdown(report) + "\n", encoding="utf-8")
        (staged / "report.json").write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        with ctrl_c_held_back():
            folder.mkdir(parents=True, exist_ok=True)
            for path in sorted(staged.iterdir()):
                with atomic_write(folder / path.name, "wb") as handle, open(path, "rb") as source:
                    shutil.copyfileobj(source, handle)
    return folder / "report.md"


@contextmanager
def ctrl_c_held_back() -> Iterator[None]:
    """Ignore Ctrl-C inside the block: for the last steps of a job that must not stop halfway.

    A Ctrl-C pressed then is dropped (the job is done a moment later). Signals can only
    be handled in the main thread; elsewhere the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def without_timings(data):
    """report.json with every run-dependent timing removed (for reproducibility checks)."""
    if isinstance(data, dict):
        return {k: without_timings(v) for k, v in data.items() if k not in TIMING_KEYS}
    if isinstance(data, list):
        return [without_timings(v) for v in data]
    return data
