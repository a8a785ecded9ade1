"""The array trie beside KenLM, on identical tokens: build, load, predict, and agreement.

KenLM is built from its public sources (https://github.com/kpu/kenlm):

    apt-get install build-essential cmake libboost-program-options-dev libboost-system-dev \
        libboost-thread-dev libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev
    mkdir kenlm/build && cd kenlm/build && cmake .. -DCMAKE_BUILD_TYPE=Release && make lmplz query build_binary

then:

    python benchmarks/ngram_arrays_vs_kenlm.py --books ../shared/corpora/books --kenlm-bin kenlm/build/bin

What it measures (order 5, the default books' training split, tokenizing not timed on either side):
- build: `lmplz -o 5 --discount_fallback` on the same tokenized sentences, one a line (lmplz keeps
  words seen once, which we map to <unk>: the same text, slightly more n-grams for it), against
  our `counting.count_levels` + `ArrayTrie.from_counting` + Kneser-Ney's per-context tables
  (`smoothing.attach_kn_tables`, as `ngram build` makes them) + saving (each in a fresh
  process, with its peak memory);
- load: KenLM's binary (`build_binary`, memory-mapped) and our folder (memory-mapped);
- next-word prediction: top 10 with Kneser-Ney probabilities (`KneserNey.top_k`), and the full
  distribution, over 2,000 contexts from the held-out text (KenLM has no forward distribution:
  not timed);
- scoring the held-out text: KenLM's `query` (a process: start, load, read, score) against ours
  as `ngram perplexity` does it — map the tokens to ids, `sequences_flat`, `KneserNey.probs_flat`
  — the first time in the process (building the n-gram lookup keys included) and again;
- agreement: our model exported as ARPA (`ngram.arpa.write_arpa`) and scored by KenLM's
  `query` on the held-out text, against our own Kneser-Ney (log10 totals and perplexity).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from corpora.machine import cpu_name  # noqa: E402


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tokenized(books: str, work: Path) -> None:
    """The training split and the held-out split, one tokenized sentence a line, and the vocabulary."""
    os.environ["CORPORA_MIRROR"] = books
    from corpora import load_corpus
    from corpora.tokenizers import get_tokenizer
    from ngram.build import build_vocabulary
    from collections import Counter

    corpus = load_corpus(books)
    tokenizer = get_tokenizer("words")
    train = [s for text in corpus.train_texts() for s in tokenizer.sentences(text)]
    heldout = [s for s in tokenizer.sentences(corpus.heldout_text())]
    vocab = build_vocabulary(Counter(t for s in train for t in s), 2)
    known = set(vocab)
    (work / "train.txt").write_text("".join(" ".join(s) + "\n" for s in train), encoding="utf-8")
    (work / "heldout.txt").write_text(
        "".join(" ".join(t if t in known else "<unk>" for t in s) + "\n" for s in heldout), encoding="utf-8")
    (work / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")


def our_build(work: Path) -> None:
    """In a fresh process: count and save the arrays (the tokens are read from train.txt, not timed)."""
    from corpora.tokenizers import BOS, EOS, UNK
    from ngram import counting
    from ngram.arrays import ArrayTrie, save_arrays
    from ngram.smoothing import attach_kn_tables

    vocab = json.loads((work / "vocab.json").read_text(encoding="utf-8"))
    ids = {t: i for i, t in enumerate(vocab)}
    unk, bos, eos = ids[UNK], ids[BOS], ids[EOS]
    sentences = [[bos, *[ids.get(t, unk) for t in line.split()], eos]
                 for line in (work / "train.txt").read_text(encoding="utf-8").splitlines()]
    started = time.perf_counter()
    rows, levels = counting.count_levels(sentences, 5, len(vocab))
    trie = ArrayTrie.from_counting(rows, levels, vocab)
    statistics = trie.count_statistics(bos)  # kept in the header, as `ngram build` does
    attach_kn_tables(trie, statistics, bos)
    save_arrays(trie, work / "arrays", {"bos_id": bos, "statistics": statistics})
    print(json.dumps({"seconds": time.perf_counter() - started, "peak_mb": peak_mb(),
                      "ngrams": sum(len(level.ids) for level in trie.levels), "bytes": trie.nbytes()}))


def timed(command: list[str], **kwargs) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall time and peak memory (MB) of a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed:\n{done.stderr[-2000:]}")
    return seconds, max(peak, before) / 1024, done


def predict_latency(work: Path) -> dict:
    """In a fresh process: load time, top-10 / full-distribution latency over held-out contexts,
    and scoring the held-out text the way `ngram perplexity` does."""
    from corpora.tokenizers import BOS, EOS, UNK
    from ngram.arrays import load_arrays
    from ngram.smoothing import sequences_flat

    started = time.perf_counter()
    trie, metadata = load_arrays(work / "arrays")
    loaded = time.perf_counter() - started
    kn = kneser_ney(trie, metadata)
    kn.tables()
    kn.unigram_by_id()
    ready = time.perf_counter() - started
    lines = (work / "heldout.txt").read_text(encoding="utf-8").splitlines()
    scoring = []
    for _ in range(2):  # the first time builds the lookup keys of every order; the second reuses them
        started = time.perf_counter()
        ids, bos, eos = trie.token_id, trie.token_id[BOS], trie.token_id[EOS]
        flat, at = sequences_flat([[bos, *[ids[t] for t in line.split()], eos] for line in lines])
        kn.probs_flat(flat, at)
        scoring.append(time.perf_counter() - started)
    rng = np.random.default_rng(0)
    contexts = []
    for line in rng.choice(lines, size=2000):
        words = [BOS, *line.split()]
        end = int(rng.integers(1, len(words) + 1))
        contexts.append(words[max(0, end - 4):end])
    for context in contexts[:200]:
        kn.top_k(context, 10, [EOS, UNK])
    top, full = [], []
    for context in contexts:
        t = time.perf_counter()
        kn.top_k(context, 10, [EOS, UNK])
        top.append(time.perf_counter() - t)
    for context in contexts[:500]:
        t = time.perf_counter()
        kn.distribution(context)
        full.append(time.perf_counter() - t)
    return {"load_s": loaded, "load_and_kn_s": ready, "top10_median_us": float(np.median(top)) * 1e6,
            "top10_p95_us": float(np.percentile(top, 95)) * 1e6, "full_median_us": float(np.median(full)) * 1e6,
            "full_p95_us": float(np.percentile(full, 95)) * 1e6,
            "score_s": scoring[0], "score_again_s": scoring[1], "score_tokens": len(at)}


def kneser_ney(trie, metadata=None):
    """Kneser-Ney over a bare array trie, with the discounts of its own count-of-counts
    (read from the header when saved there, as a model folder keeps them)."""
    from corpora.tokenizers import BOS
    from ngram.smoothing import Counts, KneserNey

    statistics = (metadata or {}).get("statistics") or trie.count_statistics(trie.token_id[BOS])
    return KneserNey(Counts(trie, trie.order, trie.vocab, statistics))


def agreement(work: Path, query: Path) -> dict:
    """Our ARPA export scored by KenLM's query, against our own Kneser-Ney on the same tokens."""
    from corpora.tokenizers import BOS, EOS
    from ngram.arpa import write_arpa
    from ngram.arrays import load_arrays
    from ngram.score import positions

    trie, _ = load_arrays(work / "arrays")
    bos = trie.token_id[BOS]
    kn = kneser_ney(trie)
    write_arpa(kn, work / "ours.arpa")
    lines = (work / "heldout.txt").read_text(encoding="utf-8").splitlines()
    sequences = [[bos, *[trie.token_id[t] for t in line.split()], trie.token_id[EOS]] for line in lines]
    probs = kn.probs_many(*positions(sequences, trie.order - 1))
    ours, tokens = float(sum(math.log10(p) for p in probs.tolist())), len(probs)
    with open(work / "heldout.txt", encoding="utf-8") as text:
        out = subprocess.run([str(query), "-v", "sentence", str(work / "ours.arpa")], stdin=text,
                             capture_output=True, text=True, check=True).stdout
    kenlm = sum(float(line.split("Total:")[1].split()[0]) for line in out.splitlines() if line.startswith("Total:"))
    return {"tokens": tokens, "ours_log10": ours, "kenlm_log10": kenlm,
            "ours_perplexity": 10 ** (-ours / tokens), "kenlm_perplexity": 10 ** (-kenlm / tokens),
            "relative_difference": abs(ours - kenlm) / abs(ours)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--books", required=True, help="folder of the default books (e.g. ../shared/corpora/books)")
    parser.add_argument("--kenlm-bin", required=True, type=Path, help="folder holding lmplz, query and build_binary")
    parser.add_argument("--step", choices=["build", "predict"], help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step == "build":
        return our_build(args.work)
    if args.step == "predict":
        return print(json.dumps(predict_latency(args.work)))
    work = Path(tempfile.mkdtemp(prefix="arrays-vs-kenlm-"))
    tokenized(args.books, work)
    me = [sys.executable, __file__, "--books", args.books, "--kenlm-bin", str(args.kenlm_bin), "--work", str(work)]
    with open(work / "train.txt", encoding="utf-8") as text:  # first: the children's peak memory is lmplz's alone
        lmplz_s, lmplz_mb, _ = timed([str(args.kenlm_bin / "lmplz"), "-o", "5", "--discount_fallback",
                                      "-S", "4G", "-T", str(work), "--arpa", str(work / "kenlm.arpa")], stdin=text)
    ours = json.loads(subprocess.run([*me, "--step", "build"], capture_output=True, text=True, check=True).stdout)
    timed([str(args.kenlm_bin / "build_binary"), str(work / "kenlm.arpa"), str(work / "kenlm.binary")])
    with open(work / "heldout.txt", encoding="utf-8") as text:
        query_s, _, _ = timed([str(args.kenlm_bin / "query"), "-v", "summary", str(work / "kenlm.binary")], stdin=text)
    latency = json.loads(subprocess.run([*me, "--step", "predict"], capture_output=True, text=True, check=True).stdout)
    agree = agreement(work, args.kenlm_bin / "query")
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; Python {platform.python_version()}, NumPy {np.__version__}")
    print(f"command: {shlex.join(sys.argv)}\n")
    print("| measure | KenLM | ours (arrays) | ratio |\n|---|---:|---:|---:|")
    print(f"| build 5-gram, s (tokenizing excluded) | {lmplz_s:.1f} | {ours['seconds']:.1f} | {ours['seconds'] / lmplz_s:.2f}x |")
    print(f"| build peak memory, MB | {lmplz_mb:,.0f} | {ours['peak_mb']:,.0f} | {ours['peak_mb'] / lmplz_mb:.2f}x |")
    saved = sum(f.stat().st_size for f in (work / "arrays").iterdir())
    print(f"| n-grams; bytes per n-gram on disk | | {ours['ngrams']:,}; {saved / ours['ngrams']:.1f} | |")
    print(f"| score the held-out text ({latency['score_tokens']:,} tokens), s | {query_s:.2f} (process: load + score) | "
          f"{latency['score_s']:.2f} first time, {latency['score_again_s']:.2f} again | "
          f"{query_s / latency['score_s']:.3f}x ({query_s / latency['score_again_s']:.3f}x) KenLM's tokens/s |")
    print(f"| load, s | (memory-mapped binary) | {latency['load_s']:.3f} ({latency['load_and_kn_s']:.3f} with KN ready) | |")
    print(f"| top-10 next words with KN probabilities, median / p95 µs | – | {latency['top10_median_us']:.0f} / {latency['top10_p95_us']:.0f} | |")
    print(f"| full next-word distribution, median / p95 µs | – | {latency['full_median_us']:.0f} / "
          f"{latency['full_p95_us']:.0f} | |")
    print(f"| held-out perplexity, our model: ours / KenLM query on our ARPA | | {agree['ours_perplexity']:.6f} / "
          f"{agree['kenlm_perplexity']:.6f} | rel. diff of log10 totals {agree['relative_difference']:.1e} |")


if __name__ == "__main__":
    main()
