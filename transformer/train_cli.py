"""`transformer train`: train a small GPT-2 from scratch on your own text, in NumPy.

Registered into the `transformer` command with `main.add_command(train)`; it also
runs on its own: `python -m transformer.train_cli SOURCE -o DIR`.
"""
from __future__ import annotations

import platform
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np

from corpora import DEFAULT_HELDOUT_FRACTION, load_corpus
from corpora.common import UserError
from corpora.runtime import set_blas_threads

from corpora.tokenizers.bpe import BPETokenizer
from corpora.tokenizers.bpe_learn import learn_bpe
from .checkpoint import start_segment
from .config import GPT2Config
from .train import (
    CHECKPOINT_FILE,
    Interrupted,
    TrainConfig,
    count_params,
    encode_corpus,
    load_checkpoint,
    new_state,
)
from .train import train as run_training

@dataclass(frozen=True)
class Setting:
    """One model or training setting, spelled once: its option (--weight-decay for
    "weight_decay"), where the run saves it (GPT2Config or TrainConfig, and the name
    there), its type, default and help. The table below drives the click options, the
    configs built from them, the --resume check and the command line saved with a run."""

    key: str
    saved_in: str  # "model" (GPT2Config) or "train" (TrainConfig)
    name: str  # the field there
    type: Any
    default: Any
    help: str

    @property
    def option(self) -> str:
        return option_name(self.key)


SETTINGS = (
    Setting("layers", "model", "n_layer", click.IntRange(1), 4, "Transformer blocks (n_layer)."),
    Setting("heads", "model", "n_head", click.IntRange(1), 4, "Attention heads per block (n_head)."),
    Setting("dim", "model", "n_embd", click.IntRange(1), 128, "Width of the residual stream (n_embd); a multiple of --heads."),
    Setting("ctx", "train", "ctx", click.IntRange(2), 128, "Tokens per training sequence."),
    Setting("positions", "model", "n_ctx", click.IntRange(2), None, "The model's context window n_positions (default: --ctx)."),
    Setting("vocab", "model", "vocab_size", int, 4096, "BPE vocabulary size to learn (at least 257)."),
    Setting("steps", "train", "steps", click.IntRange(1), 2000, "Optimizer steps in all."),
    Setting("batch", "train", "batch_size", click.IntRange(1), 16, "Sequences per step."),
    Setting("lr", "train", "lr", float, 1e-3, "Peak learning rate (after warm-up; cosine decay to a tenth)."),
    Setting("weight_decay", "train", "weight_decay", click.FloatRange(0), 0.1, "AdamW decoupled weight decay, on 2-D tensors only."),
    Setting("warmup", "train", "warmup", click.IntRange(0), 100, "Steps of linear learning-rate warm-up."),
    Setting("seed", "train", "seed", int, 0, "Seed for the initial weights, batch order and dropout."),
    Setting("eval_every", "train", "eval_every", click.IntRange(1), 100, "Steps between held-out evaluations and checkpoints."),
    Setting("eval_batches", "train", "eval_batches", click.IntRange(1), 4, "Held-out batches per evaluation."),
    Setting("dropout", "train", "dropout", click.FloatRange(0, 1, max_open=True), 0.0, "Dropout probability (0 = none)."),
    Setting("grad_clip", "train", "grad_clip", click.FloatRange(0), 1.0, "Clip the global gradient norm to this (0 = off)."),
)
SAVED_AS = {s.key: (s.saved_in, s.name) for s in SETTINGS}  # option -> where a run saves it


def option_name(key: str) -> str:
    return "--" + key.replace("_", "-")


def setting_options(command):
    """Decorate a click command with one option per entry of SETTINGS, in table order."""
    for s in reversed(SETTINGS):
        command = click.option(s.option, s.key, type=s.type, default=s.default,
                               show_default=s.default is not None, help=s.help)(command)
    return command


def chosen(settings: dict, saved_in: str) -> dict:
    """The settings that go into one config ("model" or "train"), by their names there."""
    return {s.name: settings[s.key] for s in SETTINGS if s.saved_in == saved_in}


@click.command(name="train")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--output", "-o", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Folder for the model (Hugging Face GPT-2 layout), tokenizer, checkpoint and training.json.")
@setting_options
@click.option("--resume", is_flag=True, help="Continue the run saved in --output (same settings; options you leave out are taken from it).")
@click.option("--tokenizer", "tokenizer_dir", type=click.Path(path_type=Path), default=None, help="Use this tokenizer folder (vocab.json + merges.txt) instead of learning one.")
@click.option("--heldout-fraction", type=float, default=DEFAULT_HELDOUT_FRACTION, show_default=True, help="Tail of every document kept out of training, for evaluation.")
@click.option("--threads", type=click.IntRange(1), default=None, help="BLAS threads (default: all cores; on a machine busy with other work, 1 can be several times faster).")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar (default: when stderr is a terminal).")
def train(source: Path, out_dir: Path, tokenizer_dir: Path | None, resume: bool,
          heldout_fraction: float, threads: int | None, progress: bool | None, **settings) -> None:
    """Train a GPT-2-architecture model from scratch on the text in SOURCE (a folder or file).

    A BPE vocabulary of --vocab tokens is learned from the training part of the text
    (the held-out tail of every document is never used for it, nor for training), then
    the model is trained with AdamW, warm-up and cosine decay. The held-out loss is
    printed every --eval-every steps, when a checkpoint is also saved. Ctrl-C saves a
    checkpoint and stops; --resume continues it.

    \b
    Example (a few minutes on a laptop):
      transformer train ../shared/corpora/books -o my-gpt --steps 300 --layers 2 --dim 64
      transformer generate "It was a dark and stormy" --model my-gpt
    """
    from corpora.cli_common import friendly_errors  # one-line errors, like every other command

    context = click.get_current_context()
    explicit = {k for k in [*settings, "heldout_fraction"]
                if context.get_parameter_source(k) == click.core.ParameterSource.COMMANDLINE}
    if threads is not None and not set_blas_threads(threads):
        click.echo("Notice: --threads was ignored (NumPy's BLAS here is not OpenBLAS; set its own "
                   "environment variable, e.g. OMP_NUM_THREADS, instead).", err=True)
    friendly_errors(_train)(source, out_dir, tokenizer_dir, resume, heldout_fraction, threads, progress, settings, explicit)


def _train(source: Path, out_dir: Path, tokenizer_dir: Path | None, resume: bool, heldout_fraction: float,
           threads: int | None, progress: bool | None, settings: dict, explicit: set[str]) -> None:
    if progress is None:
        progress = sys.stderr.isatty()
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--output {out_dir} exists and is not a folder")

    if resume:
        state, config, tc, record = load_checkpoint(out_dir)
        check_same_settings(out_dir, config, tc, {**settings, "heldout_fraction": heldout_fraction},
                            explicit, record)
        corpus = load_corpus(source, record["heldout_fraction"])
        check_same_corpus(corpus.describe(), record["corpus"])
        tokenizer = BPETokenizer.from_dir(out_dir)
        if tokenizer_dir is not None and not same_tokenizer(BPETokenizer.from_dir(tokenizer_dir), tokenizer):
            raise UserError(f"--resume: --tokenizer {tokenizer_dir} differs from the tokenizer saved in {out_dir}")
        data = encode_corpus(corpus.train_texts(), corpus.heldout_texts(), tokenizer)
        check_same_tokens(data, record)
        if state.step >= tc.steps:
            click.echo(f"{out_dir} has already trained all {tc.steps} steps; nothing to do "
                       "(train longer in a new folder, or with a larger --steps from scratch).")
            return
        click.echo(f"Resuming {out_dir} at step {state.step} of {tc.steps}.", err=True)
    else:
        if (out_dir / CHECKPOINT_FILE).exists():
            raise UserError(f"{out_dir} already holds a training run; add --resume to continue it, "
                            "or choose another --output")
        if out_dir.is_dir() and any(out_dir.iterdir()):
            raise UserError(f"--output {out_dir} is not empty; choose a new or empty folder")
        positions = settings["positions"] or settings["ctx"]
        if settings["ctx"] > positions:
            raise UserError(f"--ctx {settings['ctx']} is larger than the model's context window "
                            f"(--positions {positions})")
        if settings["dim"] % settings["heads"]:
            raise UserError(f"--dim {settings['dim']} is not divisible by --heads {settings['heads']}")
        corpus = load_corpus(source, heldout_fraction)
        tokenizer = get_tokenizer(corpus, tokenizer_dir, settings["vocab"], "vocab" in explicit, progress)
        data = encode_corpus(corpus.train_texts(), corpus.heldout_texts(), tokenizer)
        check_enough_data(len(data.train), settings["ctx"], settings["batch"])
        config = GPT2Config(**{**chosen(settings, "model"), "n_ctx": positions, "vocab_size": tokenizer.vocab_size})
        tc = TrainConfig(**chosen(settings, "train"))
        record = {
            "command": command_line(source, out_dir, tokenizer_dir, heldout_fraction, config, tc),
            "corpus": corpus.describe(),
            "heldout_fraction": heldout_fraction,
            "tokenizer": str(tokenizer_dir) if tokenizer_dir else f"learned from the training split ({tokenizer.vocab_size} tokens)",
            "eot_id": tokenizer.eot_id,
            "train_tokens": int(len(data.train)),
            "heldout_tokens": int(len(data.heldout)),
            "versions": {"python": platform.python_version(), "numpy": np.__version__},
        }
        out_dir.mkdir(parents=True, exist_ok=True)
        tokenizer.save(out_dir)
        state = new_state(config, tc)
        click.echo(f"Training a {config.n_layer}-layer, {config.n_head}-head, {config.n_embd}-wide GPT-2 "
                   f"({count_params(config):,} parameters, vocabulary {config.vocab_size}) on "
                   f"{len(data.train):,} tokens; held out: {len(data.heldout):,} tokens.", err=True)

    start_segment(record, state, threads, segment_command(record["command"], resume, threads))
    try:
        state = run_training(out_dir, state, config, tc, data, record, progress=progress)
    except Interrupted as stop:
        click.echo(f"Interrupted after step {stop.step}; checkpoint saved in {out_dir}. "
                   "Continue with the same command plus --resume.", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo(f"Interrupted; the last checkpoint (if any) is kept in {out_dir}.", err=True)
        sys.exit(130)

    heldout = f"{state.evals[-1][1]:.4f}" if state.evals else "n/a (no held-out text)"
    recent = float(np.mean(state.losses[-20:]))
    click.echo(f"Done: {state.step} steps, {state.tokens:,} tokens in {state.seconds:.0f} s "
               f"({state.tokens / max(state.seconds, 1e-9):,.0f} tokens/s). "
               f"Training loss {recent:.4f} (mean of the last 20 steps), held-out loss {heldout}.")
    click.echo(f"Model written to {out_dir}. Try it: transformer generate \"It was a dark and stormy\" "
               f"--model {shlex.quote(str(out_dir))}")


def get_tokenizer(corpus, tokenizer_dir: Path | None, vocab: int, vocab_given: bool, progress: bool) -> BPETokenizer:
    """The tokenizer from --tokenizer, or one learned from the training split."""
    if tokenizer_dir is not None:
        tokenizer = BPETokenizer.from_dir(tokenizer_dir)
        if vocab_given and vocab != tokenizer.vocab_size:
            raise UserError(f"--vocab {vocab} does not match --tokenizer {tokenizer_dir}, "
                            f"which has {tokenizer.vocab_size} tokens; leave out --vocab")
        return tokenizer
    if vocab < 257:
        raise UserError(f"--vocab must be at least 257 (256 bytes + <|endoftext|>), got {vocab}")
    return learn_bpe(corpus.train_texts(), vocab, progress=progress)


def check_enough_data(n_tokens: int, ctx: int, batch: int) -> None:
    """The training text must hold one window of ctx + 1 tokens, and at least one batch."""
    if ctx + 1 > n_tokens:
        raise UserError(f"--ctx {ctx} is larger than the training text, which has only {n_tokens} tokens; "
                        "give more text or a smaller --ctx")
    if batch * ctx + 1 > n_tokens:
        raise UserError(f"the training text has only {n_tokens} tokens, fewer than one batch "
                        f"(--batch {batch} x --ctx {ctx}); give more text or a smaller --batch/--ctx")


def check_same_settings(out_dir: Path, config: GPT2Config, tc: TrainConfig, settings: dict, explicit: set[str],
                        record: dict) -> None:
    """--resume: every option given on the command line must match the checkpoint."""
    saved = {"model": config.to_dict(), "train": tc.to_dict()}
    problems = []
    for key in sorted(explicit):
        if key == "heldout_fraction":
            then = record["heldout_fraction"]
        else:
            where, name = SAVED_AS[key]
            then = saved[where][name]
        if settings[key] != then:
            problems.append(f"{option_name(key)} {settings[key]} (the checkpoint has {then})")
    if problems:
        raise UserError(f"--resume: {out_dir} was trained with other settings: " + "; ".join(problems)
                        + ". Leave those options out to continue it as it was, or train into a new folder.")


def check_same_corpus(now: dict, then: dict) -> None:
    """--resume: the text files must be the ones the run started with."""
    old = {d["name"]: d["sha256"] for d in then["documents"]}
    new = {d["name"]: d["sha256"] for d in now["documents"]}
    for name in sorted(old.keys() | new.keys()):
        if name not in new:
            raise UserError(f"--resume: {name} was part of the training text but is not in SOURCE now")
        if name not in old:
            raise UserError(f"--resume: {name} is in SOURCE but was not part of the training text")
        if old[name] != new[name]:
            raise UserError(f"--resume: {name} has changed since training started")


def segment_command(run_command: str, resume: bool, threads: int | None) -> str:
    """The command a segment ran: the run's full command, plus --resume and --threads as given."""
    return run_command + (" --resume" if resume else "") + (f" --threads {threads}" if threads else "")


def check_same_tokens(data, record: dict) -> None:
    """--resume: the same text through the same tokenizer gives the same number of tokens on
    each side of the split; a difference means the data the run would continue on is not the
    data it started on (another split, or a tokenizer that changed since)."""
    for side, then in (("training", record["train_tokens"]), ("held-out", record["heldout_tokens"])):
        now = len(data.train if side == "training" else data.heldout)
        if now != then:
            raise UserError(f"--resume: the {side} text is {now:,} tokens now but was {then:,} when the run "
                            "started (another data split or tokenizer); train into a new folder")


def same_tokenizer(a: BPETokenizer, b: BPETokenizer) -> bool:
    return a.encoder == b.encoder and a.merges == b.merges


def command_line(source: Path, out_dir: Path, tokenizer_dir: Path | None, heldout_fraction: float,
                 config: GPT2Config, tc: TrainConfig) -> str:
    """The full command that reproduces this run, every setting spelled out (a given
    --tokenizer takes the place of --vocab)."""
    saved = {"model": config.to_dict(), "train": tc.to_dict()}
    parts: list = ["transformer", "train", str(source), "-o", str(out_dir)]
    for s in SETTINGS:
        if s.key == "vocab" and tokenizer_dir:
            parts += ["--tokenizer", str(tokenizer_dir)]
        else:
            parts += [s.option, saved[s.saved_in][s.name]]
    parts += ["--heldout-fraction", heldout_fraction]
    return shlex.join(str(p) for p in parts)


if __name__ == "__main__":  # pragma: no cover
    train()
