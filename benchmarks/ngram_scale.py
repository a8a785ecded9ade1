"""The scale run: a 5-gram over 100 M tokens in bounded memory (`ngram build --memory`).

No 100 M-token public corpus can be downloaded here, so the text is SAMPLED from the
default n-gram model (built from the default books): it is not real text, and every
table this script prints says so. Sampling is vectorised over many streams at once:
each stream's next word is drawn from the counts of the children of its longest matched
context (the maximum-likelihood n-gram distribution, no smoothing), `<unk>` dropped from
the text. The text goes to files of about a million tokens each under ~/.cache (outside
the repository; reused when asked for again), then `ngram build --memory` runs as a
child process: its build time, peak resident memory (`os.wait4`'s rusage of the child,
which counts memory-mapped pages it touched too), n-grams per order and the model
folder's size are printed as a Markdown table with the CPU.

The lead's 100 M-token run (a few hours on 2 loaded cores; needs ~15 GB of disk):

    nice -n 10 python benchmarks/ngram_scale.py --tokens 100M --memory 4G

A quick check of the whole path (5 M tokens, a few minutes):

    nice -n 10 python benchmarks/ngram_scale.py --tokens 5M --memory 1G

The default books, chunked beside in-memory (both builds in fresh processes):

    nice -n 10 python benchmarks/ngram_scale.py --corpus ../shared/corpora/books --memory 1G --in-memory-too

The default model must exist first (`ngram build corpora/`); --model names another.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from corpora.machine import cpu_name  # noqa: E402

SAMPLED_NOTE = ("The text is sampled from the default n-gram model (its counts, backing off as Kneser-Ney "
                "interpolates), not real text.")


# ---------------------------------------------------------------- sampling text


class Sampler:
    """Many streams of text drawn at once from an n-gram model's counts.

    A stream's state is its last N-1 token ids (-1 where the sentence has not reached
    yet). Each step finds every stream's longest context that was seen with a follower
    (one vectorised binary search per order, `ArrayTrie.find_many`), then backs off to the
    next shorter context with probability γ(h), Kneser-Ney's interpolation weight of that
    context (the share of probability it hands down), and draws the next token from the
    chosen node's children in proportion to their counts (a binary search in the level's
    cumulative counts). The backing off is what makes n-grams the books never had, as a
    real text of this size would: drawn from the longest context only, the text would
    repeat the model's own n-grams and the trie would not grow. ``</s>`` ends a sentence
    and starts the next.
    """

    def __init__(self, model, streams: int, seed: int) -> None:
        self.trie, self.vocab, self.order = model.trie, model.vocab, model.order
        self.bos, self.eos, self.unk = (self.vocab.index(t) for t in ("<s>", "</s>", "<unk>"))
        self.rng = np.random.default_rng(seed)
        self.context = np.full((streams, self.order - 1), -1, dtype=np.int64)
        self.context[:, -1] = self.bos
        self.cumulative = [np.cumsum(level.counts, dtype=np.int64) for level in self.trie.levels]
        self.gamma = kneser_ney_gammas(model)

    def longest_match(self) -> tuple[np.ndarray, np.ndarray]:
        """(depth, node index) of every stream's longest context with children (depth 0: the root)."""
        n = len(self.context)
        depth, node = np.zeros(n, np.int64), np.zeros(n, np.int64)
        open_ = np.ones(n, bool)
        for j in range(self.order - 1, 0, -1):
            grams = self.context[:, -j:]
            todo = np.flatnonzero(open_ & (grams >= 0).all(axis=1))
            if len(todo) == 0:
                continue
            found = self.trie.find_many(grams[todo])
            first_child = self.trie.levels[j - 1].first_child
            ok = found >= 0
            has_children = np.zeros(len(todo), bool)
            has_children[ok] = first_child[found[ok] + 1] > first_child[found[ok]]
            hit = todo[has_children]
            depth[hit], node[hit] = j, found[has_children]
            open_[hit] = False
        return depth, node

    def back_off(self, depth: np.ndarray, node: np.ndarray) -> None:
        """With probability γ(h) at each order, move a stream to its context one token shorter (in place)."""
        for j in range(self.order - 1, 0, -1):
            at = np.flatnonzero(depth == j)
            leave = at[self.rng.random(len(at)) < self.gamma[j][node[at]]]
            if len(leave) == 0:
                continue
            depth[leave] = j - 1
            node[leave] = self.trie.find_many(self.context[leave, -(j - 1):]) if j > 1 else 0

    def step(self) -> np.ndarray:
        """Draw one token for every stream, advance the contexts, return the tokens."""
        depth, node = self.longest_match()
        self.back_off(depth, node)
        drawn = np.empty(len(depth), np.int64)
        for j in np.unique(depth).tolist():
            streams = np.flatnonzero(depth == j)
            if j == 0:
                start, end = np.zeros(len(streams), np.int64), np.full(len(streams), len(self.trie.levels[0].ids))
            else:
                first_child = self.trie.levels[j - 1].first_child
                start, end = first_child[node[streams]], first_child[node[streams] + 1]
            cumulative = self.cumulative[j]
            before = np.where(start > 0, cumulative[np.maximum(start - 1, 0)], 0)
            target = before + (self.rng.random(len(streams)) * (cumulative[end - 1] - before)).astype(np.int64)
            drawn[streams] = self.trie.levels[j].ids[np.searchsorted(cumulative, target, side="right")]
        drawn[drawn == self.bos] = self.eos  # only the unigram fallback can draw <s>: end the sentence
        self.context = np.roll(self.context, -1, axis=1)
        self.context[:, -1] = drawn
        ended = drawn == self.eos
        self.context[ended] = -1
        self.context[ended, -1] = self.bos
        return drawn


def kneser_ney_gammas(model) -> list[np.ndarray]:
    """γ(h) of every context, by its length (index 0: the root), from the model's Kneser-Ney tables."""
    from ngram.arrays import kn_array_name
    from ngram.smoothing import attach_kn_tables

    trie = model.trie
    if not getattr(trie, "kn_tables", None):  # a model saved before the tables: compute them
        attach_kn_tables(trie, model.statistics, model.vocab.index("<s>"))
    return [np.asarray(trie.kn_tables[kn_array_name(d, "gamma")]) for d in range(model.order)]


def sentences_text(ids: list[int], vocab: list[str], eos: int, unk: int) -> str:
    """Token ids to text: words joined by spaces, one sentence a paragraph, `<unk>` left out."""
    out, words = [], []
    for i in ids:
        if i == eos:
            out.append(" ".join(words))
            words = []
        elif i != unk:
            words.append(vocab[i])
    return "\n\n".join(s for s in out if s) + "\n\n"


def sample_corpus(model, tokens: int, folder: Path, streams: int, seed: int, tokens_per_file: int = 1_000_000) -> None:
    """Write `tokens` sampled tokens as files of about `tokens_per_file` each (whole sentences only)."""
    from tqdm import tqdm

    folder.mkdir(parents=True, exist_ok=True)
    sampler = Sampler(model, streams, seed)
    carry: list[list[int]] = [[] for _ in range(streams)]
    steps = max(1, tokens_per_file // streams)
    written, number = 0, 0
    with tqdm(total=tokens, unit="tok", desc="sampling") as bar:
        while written < tokens:
            block = np.stack([sampler.step() for _ in range(steps)], axis=1)  # streams × steps
            parts = []
            for s, row in enumerate(block.tolist()):
                seq = carry[s] + row
                last = len(seq) - 1 - seq[::-1].index(sampler.eos) if sampler.eos in seq else -1
                parts.append(sentences_text(seq[: last + 1], model.vocab, sampler.eos, sampler.unk))
                carry[s] = seq[last + 1:]
            path = folder / f"sampled-{number:05d}.txt"
            path.write_text("".join(parts), encoding="utf-8")
            written += block.size
            number += 1
            bar.update(block.size)
    (folder / "SAMPLED.json").write_text(json.dumps({"tokens": tokens, "seed": seed, "streams": streams,
                                                     "note": SAMPLED_NOTE}) + "\n")


# ---------------------------------------------------------------- building and measuring


def parse_count(text: str) -> int:
    """'100M' -> 100_000_000, '5M', '250K', or a plain number."""
    text = text.strip().upper()
    scale = {"K": 10**3, "M": 10**6, "G": 10**9}.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def measured_build(corpus: Path, output: Path, order: int, memory: str | None, work: Path) -> dict:
    """Run `ngram build` in a child process; its --json summary plus wall time and peak RSS."""
    command = [sys.executable, "-c", "from ngram.cli import main; main()", "build", str(corpus), "-o", str(output),
               "--order", str(order), "--json", "--no-progress"]
    if memory:
        command += ["--memory", memory]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(work)}
    print("$", shlex.join(command[3:]), flush=True)
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, env=env, text=True)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"the build failed (exit {child.returncode})")
    summary = json.loads(out)
    summary["wall_seconds"] = round(wall, 1)
    summary["peak_rss_mb"] = round(usage.ru_maxrss / 1024)
    summary["memory"] = memory or "in memory"
    return summary


def table(rows: list[dict], sampled: bool) -> str:
    """The Markdown table of the builds, with the machine and what the text was."""
    orders = max(len(r["ngrams_per_order"]) for r in rows)
    head = ["build", "tokens", "build time (s)", "peak RSS (MB)", *[f"{k}-grams" for k in range(1, orders + 1)],
            "model folder (MB)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        per_order = [f"{r['ngrams_per_order'].get(str(k), 0):,}" for k in range(1, orders + 1)]
        lines.append("| " + " | ".join([f"`--memory {r['memory']}`" if r["memory"] != "in memory" else "in memory",
                                         f"{r['training_tokens']:,}", f"{r['seconds']}", f"{r['peak_rss_mb']:,}",
                                         *per_order, f"{r['file_bytes'] / 1e6:,.0f}"]) + " |")
    notes = [f"CPU: {cpu_name()}, {os.cpu_count()} cores. Build time includes tokenizing and saving; "
             "peak RSS is the child's ru_maxrss (memory-mapped pages it touched included)."]
    if sampled:
        notes.append(SAMPLED_NOTE)
    return "\n".join(lines + [""] + notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", default="100M", help="Tokens of sampled text (e.g. 100M, 5M).")
    parser.add_argument("--memory", default="4G", help="The build's --memory budget.")
    parser.add_argument("--order", type=int, default=5)
    parser.add_argument("--streams", type=int, default=8192, help="Texts sampled side by side.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", help="The model to sample from [default: the default model].")
    parser.add_argument("--corpus", type=Path, help="Build from this folder instead of sampled text.")
    parser.add_argument("--in-memory-too", action="store_true", help="Also build without --memory, to compare.")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "trie-vs-transformer-scale",
                        help="Where the sampled text and the models go (outside the repository).")
    parser.add_argument("--json", action="store_true", help="Print the measurements as JSON too.")
    args = parser.parse_args()
    corpus = args.corpus
    if corpus is None:
        tokens = parse_count(args.tokens)
        corpus = args.cache / f"sampled-{args.tokens}-seed{args.seed}"
        if not (corpus / "SAMPLED.json").is_file():
            from ngram import load_model

            print(f"Sampling {tokens:,} tokens into {corpus} ({SAMPLED_NOTE})", flush=True)
            sample_corpus(load_model(args.model), tokens, corpus, args.streams, args.seed)
    args.cache.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(dir=args.cache, prefix="work-") as work:
        rows.append(measured_build(corpus, args.cache / f"{corpus.name}.ngram", args.order, args.memory, Path(work)))
        if args.in_memory_too:
            rows.append(measured_build(corpus, args.cache / f"{corpus.name}-in-memory.ngram", args.order, None,
                                       Path(work)))
    print(table(rows, sampled=args.corpus is None))
    if args.json:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
