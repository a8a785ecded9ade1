"""`transformer bpe ...`: learn a GPT-2-style BPE tokenizer from your own text.

The `bpe` group is registered into the `transformer` command with
`main.add_command(bpe)`; it also runs on its own: `python -m transformer.bpe_cli`.
"""
from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path

import click

from corpora import DEFAULT_HELDOUT_FRACTION, load_corpus
from corpora.common import UserError, atomic_write
from corpora.cli_common import echo_json, friendly_errors, plural

from corpora.tokenizers.bpe import HF_NAMES
from corpora.tokenizers.bpe_learn import learn_bpe


@click.group(name="bpe")
def bpe() -> None:
    """Byte-level BPE tokenizers: learn one from text, the way GPT-2's was made."""


@bpe.command(name="learn")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--vocab-size", "-n", type=int, required=True, help="Tokens in the result: 256 bytes + merges + <|endoftext|> (at least 257).")
@click.option("--output", "-o", "out_dir", type=click.Path(path_type=Path), required=True, help="Folder to write vocab.json and merges.txt into.")
@click.option("--verbose", "-v", is_flag=True, help="Print the first merges as they are learned.")
@click.option("--heldout-fraction", type=float, default=DEFAULT_HELDOUT_FRACTION, show_default=True, help="Tail of every document kept out of learning.")
@click.option("--progress/--no-progress", default=None, help="Show progress bars (default: when stderr is a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@friendly_errors
def learn(
    source: Path,
    vocab_size: int,
    out_dir: Path,
    verbose: bool,
    heldout_fraction: float,
    progress: bool | None,
    as_json: bool,
) -> None:
    """Learn a BPE tokenizer from the text files in SOURCE (a folder or a file).

    Only the training part of every document is read; the held-out tail (the last
    --heldout-fraction of each) is never used.  The folder gets vocab.json and
    merges.txt (Hugging Face's names; BPETokenizer.from_dir loads it) and
    training.json, which records the corpus files, their hashes and the split.

    \b
    Example:
      transformer bpe learn ../shared/corpora/books --vocab-size 4096 -o my-bpe --verbose
    """
    if vocab_size < 257:
        raise UserError(f"--vocab-size must be at least 257 (256 bytes + <|endoftext|>), got {vocab_size}")
    if not 0.0 <= heldout_fraction < 1.0:
        raise UserError(f"--heldout-fraction must be at least 0 and below 1, got {heldout_fraction}")
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--output {out_dir} exists and is not a folder")
    if progress is None:
        progress = sys.stderr.isatty() and not as_json

    corpus = load_corpus(source, heldout_fraction)
    started = time.perf_counter()
    # With --json, stdout is for the JSON only: the teaching printout goes to stderr.
    printout = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
    with printout:
        tokenizer = learn_bpe(corpus.train_texts(), vocab_size, verbose=verbose, progress=progress)
    seconds = time.perf_counter() - started

    tokenizer.save(out_dir)
    record = {
        "vocab_size": tokenizer.vocab_size,
        "merges": len(tokenizer.merges),
        "eot_id": tokenizer.eot_id,
        "seconds": round(seconds, 2),
        "corpus": corpus.describe(),
    }
    with atomic_write(out_dir / "training.json", "wb") as handle:
        handle.write((json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))

    summary = {
        "output": str(out_dir),
        "files": [*HF_NAMES, "training.json"],
        "vocab_size": tokenizer.vocab_size,
        "merges": len(tokenizer.merges),
        "eot_id": tokenizer.eot_id,
        "documents": len(corpus.documents),
        "train_chars": sum(len(text) for text in corpus.train_texts()),
        "heldout_fraction": heldout_fraction,
        "seconds": round(seconds, 2),
        "first_merges": [f"{a} + {b}" for a, b in tokenizer.merges[:10]],
    }
    if as_json:
        echo_json(summary)
        return
    click.echo(
        f"Learned {plural(summary['merges'], 'merge')} from {plural(summary['documents'], 'document')} "
        f"({summary['train_chars']:,} training characters; held-out fraction {heldout_fraction}) "
        f"in {seconds:.1f} s."
    )
    click.echo(f"Vocabulary: {tokenizer.vocab_size} tokens (256 bytes, merges, <|endoftext|> = {tokenizer.eot_id}).")
    click.echo(f"First merges: {', '.join(summary['first_merges'])}")
    click.echo(f"Wrote {out_dir / HF_NAMES[0]}, {out_dir / HF_NAMES[1]} and {out_dir / 'training.json'}.")
    click.echo(f"Load it with: BPETokenizer.from_dir({str(out_dir)!r})")


if __name__ == "__main__":  # pragma: no cover
    bpe()
