"""How does GPT-2's BPE scale on one long unbroken string?  Ours (old and new path) vs tiktoken.

    python benchmarks/bpe_long_words.py                        # 10k, 100k and 1M letters
    python benchmarks/bpe_long_words.py --sizes 10000 30000 --old-up-to 30000

A string of random lowercase letters with no space is one pre-token, so BPE must
merge it whole: the worst case for the merge loop.  For each size (fixed seed):
- ours, heap: `BPETokenizer.encode`, which sends long pieces to `bpe_merge_heap`
  (best of --repeat runs, each on a freshly built tokenizer, so no word cache helps);
- ours, textbook: `bpe_merge`, the quadratic reference loop the tokenizer used for every
  piece before (one run, and only up to --old-up-to characters: 100k takes about a minute);
- tiktoken, built from the same files, `encode_ordinary` (best of --repeat runs).
It checks that all give identical ids, then prints a markdown table and the machine.
Figures are only comparable within one run on one machine.
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import shlex
import string
import sys
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy  # noqa: E402

from corpora.machine import cpu_name  # noqa: E402
from corpora.tokenizers.bpe import (  # noqa: E402
    ENDOFTEXT,
    GPT2_SPLIT_PATTERN,
    GPT2_TOKENIZER_DIR,
    BPETokenizer,
    bpe_merge,
    bytes_to_symbols,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000],
                        help="string lengths in characters (default: 10000 100000 1000000)")
    parser.add_argument("--old-up-to", type=int, default=100_000,
                        help="time the quadratic textbook loop only up to this length (default: 100000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the fast encoders; the best counts")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random letters (default: 0)")
    parser.add_argument("--tokenizer", type=Path, default=GPT2_TOKENIZER_DIR,
                        help="folder with encoder.json + vocab.bpe (default: the files shipped with corpora)")
    return parser.parse_args()


def random_letters(n: int, seed: int) -> str:
    """n random lowercase letters: one pre-token, as long as you like."""
    rng = random.Random(seed)
    return "".join(rng.choices(string.ascii_lowercase, k=n))


def tiktoken_from(folder: Path):
    """tiktoken's Encoding built from the local files (nothing is downloaded), or None."""
    os.environ["TIKTOKEN_CACHE_DIR"] = ""  # read the files directly; cache nothing
    try:
        import tiktoken
        from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    except ImportError:
        return None
    ranks = data_gym_to_mergeable_bpe_ranks(str(folder / "vocab.bpe"), str(folder / "encoder.json"))
    return tiktoken.Encoding(name="gpt2-local", pat_str=GPT2_SPLIT_PATTERN, mergeable_ranks=ranks,
                             special_tokens={ENDOFTEXT: 50256}, explicit_n_vocab=50257)


def best_time(encode_fresh: Callable[[], Callable[[str], list[int]]], text: str, repeat: int) -> tuple[float, list[int]]:
    """Best wall time of `repeat` runs; each run gets a fresh encoder so that no cache carries over."""
    best, ids = float("inf"), []
    for _ in range(repeat):
        encode = encode_fresh()
        start = time.perf_counter()
        ids = encode(text)
        best = min(best, time.perf_counter() - start)
    return best, ids


def textbook_encoder(tok: BPETokenizer) -> Callable[[str], list[int]]:
    """The tokenizer's path before the heap: every piece through `bpe_merge` (a letters-only
    string is a single piece, so this is the whole of `encode` for it)."""
    def encode(text: str) -> list[int]:
        return [tok.encoder[s] for s in bpe_merge(bytes_to_symbols(text.encode("utf-8")), tok.ranks)]
    return encode


def main() -> None:
    args = parse_args()
    shipped = BPETokenizer.from_dir(args.tokenizer)
    fresh = lambda: BPETokenizer(shipped.encoder, shipped.merges).encode  # noqa: E731 (empty cache)
    reference = tiktoken_from(args.tokenizer)

    rows = []  # (characters, encoder, seconds, tokens)
    identical = True
    for n in args.sizes:
        text = random_letters(n, args.seed)
        seconds, ids = best_time(fresh, text, args.repeat)
        timings = {"ours, heap (new)": seconds}
        if n <= args.old_up_to:
            seconds, old_ids = best_time(lambda: textbook_encoder(shipped), text, 1)
            timings["ours, textbook (old)"] = seconds
            identical &= old_ids == ids
        if reference is not None:
            seconds, ref_ids = best_time(lambda: reference.encode_ordinary, text, args.repeat)
            timings["tiktoken (1 thread)"] = seconds
            identical &= ref_ids == ids
        rows += [(n, name, seconds, len(ids)) for name, seconds in timings.items()]
        print(f"... {n:,} characters done", file=sys.stderr, flush=True)

    tiktoken_seconds = {n: s for n, name, s, _ in rows if name.startswith("tiktoken")}
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end; "
          f"{platform.platform()}; Python {platform.python_version()}, NumPy {numpy.__version__}"
          + (f", tiktoken {__import__('tiktoken').__version__}" if reference is not None else ""))
    print(f"text: random lowercase letters, no spaces, seed {args.seed}; ids identical across encoders: {identical}")
    print()
    print("| characters | encoder | seconds | tokens/s | × tiktoken's time |")
    print("|---:|---|---:|---:|---:|")
    for n, name, seconds, tokens in rows:
        ratio = f"{seconds / tiktoken_seconds[n]:,.1f}" if n in tiktoken_seconds else "–"
        print(f"| {n:,} | {name} | {seconds:.3f} | {tokens / seconds:,.0f} | {ratio} |")
    if not identical:
        sys.exit("Error: the encoders gave different ids")


if __name__ == "__main__":
    main()
