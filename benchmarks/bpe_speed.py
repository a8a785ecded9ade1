"""How fast is our GPT-2 tokenizer?  Encode every default book; compare with tiktoken.

    python benchmarks/bpe_speed.py                      # books from ../shared/corpora/books
    python benchmarks/bpe_speed.py --learn-vocab 4096   # also time learn_bpe on the books

Three runs over the same text, in one process:
- ours, cold: a freshly loaded tokenizer, its word cache empty;
- ours, warm: the same tokenizer again, every word already in its cache;
- tiktoken: built from the same two files, `encode_ordinary`, one thread.
It checks that all three give identical ids, then prints a markdown table with the
machine it ran on.  Figures are only comparable within one run on one machine.
"""
from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy  # noqa: E402

from corpora.machine import cpu_name  # noqa: E402
from corpora.tokenizers.bpe import ENDOFTEXT, GPT2_SPLIT_PATTERN, BPETokenizer  # noqa: E402
from corpora.tokenizers.bpe_learn import learn_bpe  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--books", type=Path, default=REPO.parent / "shared" / "corpora" / "books",
                        help="folder of .txt files to encode (default: ../shared/corpora/books)")
    parser.add_argument("--tokenizer", type=Path, default=REPO.parent / "shared" / "gpt2",
                        help="folder with encoder.json + vocab.bpe (default: ../shared/gpt2)")
    parser.add_argument("--learn-vocab", type=int, default=0,
                        help="also time learn_bpe on the books' training parts with this vocab size")
    return parser.parse_args()


def tiktoken_from(folder: Path):
    """tiktoken's Encoding built from the local files (nothing is downloaded)."""
    os.environ["TIKTOKEN_CACHE_DIR"] = ""  # read the files directly; cache nothing
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks

    ranks = data_gym_to_mergeable_bpe_ranks(str(folder / "vocab.bpe"), str(folder / "encoder.json"))
    return tiktoken.Encoding(name="gpt2-local", pat_str=GPT2_SPLIT_PATTERN, mergeable_ranks=ranks,
                             special_tokens={ENDOFTEXT: 50256}, explicit_n_vocab=50257)


def timed(encode, texts: list[str]) -> tuple[float, list[list[int]]]:
    start = time.perf_counter()
    ids = [encode(text) for text in texts]
    return time.perf_counter() - start, ids


def main() -> None:
    args = parse_args()
    paths = sorted(args.books.glob("*.txt"))
    if not paths:
        sys.exit(f"no .txt files in {args.books}")
    texts = [p.read_text(encoding="utf-8") for p in paths]
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)

    start = time.perf_counter()
    ours = BPETokenizer.from_dir(args.tokenizer)
    load_seconds = time.perf_counter() - start

    rows = []
    cold_s, cold_ids = timed(ours.encode, texts)
    warm_s, warm_ids = timed(ours.encode, texts)
    n_tokens = sum(map(len, cold_ids))
    rows.append(("ours, cold cache", cold_s))
    rows.append(("ours, warm cache", warm_s))
    try:
        reference = tiktoken_from(args.tokenizer)
    except ImportError:
        reference = None
    if reference is not None:
        ref_s, ref_ids = timed(reference.encode_ordinary, texts)
        rows.append(("tiktoken (1 thread)", ref_s))
        identical = cold_ids == warm_ids == ref_ids
    else:
        identical = cold_ids == warm_ids

    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"machine: {platform.platform()}, {cpu_name()}, "
          f"{os.cpu_count()} CPUs; Python {platform.python_version()}, NumPy {numpy.__version__}"
          + (f", tiktoken {__import__('tiktoken').__version__}" if reference is not None else ""))
    print(f"text: {len(paths)} files in {args.books}, {n_bytes:,} bytes, {n_tokens:,} GPT-2 tokens; "
          f"ids identical across runs: {identical}; tokenizer load {load_seconds:.2f} s; "
          f"{len(ours._cache):,} distinct words cached")
    print()
    print("| encoder | seconds | tokens/s | MB/s |")
    print("|---|---:|---:|---:|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} | {n_tokens / seconds:,.0f} | {n_bytes / seconds / 1e6:.2f} |")

    if args.learn_vocab:
        from corpora import load_corpus

        corpus = load_corpus(args.books)
        start = time.perf_counter()
        learned = learn_bpe(corpus.train_texts(), args.learn_vocab, progress=False)
        seconds = time.perf_counter() - start
        print()
        print(f"learn_bpe: vocab {learned.vocab_size} ({len(learned.merges)} merges) from the training part "
              f"of {len(corpus.documents)} files in {seconds:.1f} s")


if __name__ == "__main__":
    main()
