"""Which two models are compared, and getting them: load, or build on first use.

- The n-gram: the default model that `ngram build corpora/` writes (or any model file).
  If there is none yet, `bench` builds it from the default books, with progress bars.
- The transformer: `auto` means GPT-2 small when it can be had (in the Hugging Face
  cache, or downloadable), otherwise the small model bundled with this package, trained
  on the same books' training split; a one-line notice says which was taken.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

import corpora
from ngram import NgramModel, default_model_path, load_model as load_ngram_file, save_model
from ngram.io import diagnose_damage  # noqa: F401 (bench/cli.py runs its commands under it)
from transformer import GPT2, load_model as load_transformer_folder
from transformer.train import count_params
from transformer.weights import AUTO_NAME, BUNDLED_MODEL, choose_auto_model, resolve_model_dir

AUTO = AUTO_NAME


def default_corpus_folder() -> Path:
    """The project's `corpora/` folder: the book manifest, and the books once fetched."""
    return Path(corpora.__file__).resolve().parent


def notice(message: str) -> None:
    """A one-line notice on stderr (stdout stays clean for --json and --markdown)."""
    click.echo(f"Notice: {message}", err=True)


def corpus_folder_of(model: NgramModel) -> Path:
    """The folder (or file) the n-gram was built from, or the default books if it is gone."""
    location = model.corpus.get("location", "")
    if location and not location.startswith("datasets:") and Path(location).exists():
        return Path(location)
    return default_corpus_folder()


def ngram_model(path: str | Path | None = None, progress: bool = True, quiet: bool = False) -> NgramModel:
    """The n-gram model at `path`, or the default one, built from the default books if missing."""
    if path is not None:
        return load_ngram_file(path)
    target = default_model_path()
    if target.exists():
        return load_ngram_file(target)
    if not quiet:
        notice(f"no n-gram model yet; building the default 5-gram from {default_corpus_folder()} (once)")
    model = NgramModel.build(default_corpus_folder(), order=5, progress=progress)
    save_model(model, target)
    if not quiet:
        notice(f"saved it to {target}")
    return model


@dataclass
class TransformerChoice:
    """A loaded transformer and what to call it."""

    model: GPT2
    tokenizer: object  # transformer.bpe.BPETokenizer
    name: str  # what the user would pass to --model to get it again
    folder: Path
    description: str

    @property
    def bundled(self) -> bool:
        return self.folder.resolve() == BUNDLED_MODEL.resolve()


def describe_transformer(name: str, folder: Path, model: GPT2) -> str:
    c = model.config
    params = count_params(c)
    kind = "bundled, trained on the default books" if folder.resolve() == BUNDLED_MODEL.resolve() else name
    return f"{folder.name} ({kind}; {c.n_layer} layers, {c.n_embd} wide, {params / 1e6:.1f}M parameters, vocabulary {c.vocab_size})"


def transformer_model(name: str = AUTO, quiet: bool = False) -> TransformerChoice:
    """Load the transformer to compare: a folder, a Hub name, `bundled`, or `auto`
    (chosen by `transformer.weights.choose_auto_model`, the one place that decides)."""
    if name == AUTO:
        name, folder = choose_auto_model(quiet)
    else:
        folder = resolve_model_dir(name)
    model, tokenizer = load_transformer_folder(folder)
    return TransformerChoice(model, tokenizer, name, folder, describe_transformer(name, folder, model))
