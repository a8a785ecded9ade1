"""`bench report`: compare, perplexity and speed in one folder a reader can cite and rerun.

Writes `report.md` (tables, the exact command, model names and hashes, corpus, split,
versions), `report.json` (every number) and PNG plots. Everything but the timings is
reproducible: the same models, text and seed give the same report. Files are written
only once everything has been computed, each one atomically.
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
from typing import Iterator

from corpora import UserError
from corpora.common import atomic_write
from ngram import NgramModel

from . import compare as comparing
from . import perplexity as ppl
from . import plots
from .models import TransformerChoice

PROMPTS_FILE = Path(__file__).parent / "prompts.txt"
TIMING_KEYS = {"seconds", "speed"}  # the only parts of report.json that change from run to run


def standard_prompts() -> list[str]:
    """The prompt set shipped with the package (bench/prompts.txt)."""
    return [line.strip() for line in PROMPTS_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
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

    def to_dict(self) -> dict:
        return {
            "command": self.command,
            "meta": self.meta,
            "compare": [c.to_dict() for c in self.comparisons],
            "perplexity": self.perplexity.to_dict(),
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
    corpus_folder: Path | None = None, k: int = 10, progress: bool = True,
) -> Report:
    """Run everything; nothing is written here."""
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
    return Report(command, meta, comparisons, perplexity, speed_report)


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
