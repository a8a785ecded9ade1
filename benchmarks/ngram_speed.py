"""Benchmark the n-gram trie on the default books, side by side with nltk.lm in one run.

Measures, for orders 2..5: build time (tokens/s) and peak memory of counting the same
tokenised sentences with this toolkit and with nltk.lm (padded_everygram_pipeline +
NgramCounter); at order 5 also bytes per trie node, model file size, load time and
the latency of a top-10 prediction (median, p95) on contexts from the held-out text.

Every build runs in a fresh subprocess, so peak memory (max RSS) is not shared. Both
sides get the same sentences from the same tokenizer; tokenising is not timed.

    python benchmarks/ngram_speed.py --books ../shared/corpora/books
    python benchmarks/ngram_speed.py --orders 3 5 --skip-nltk     # quicker
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BOOKS = REPO.parent / "shared" / "corpora" / "books"


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def training_sentences(books: Path) -> list[list[str]]:
    from corpora import load_corpus
    from corpora.tokenizers import get_tokenizer

    tokenizer = get_tokenizer("words")
    corpus = load_corpus(books)
    return [s for text in corpus.train_texts() for s in tokenizer.sentences(text)]


def worker(kind: str, order: int, books: Path, model_path: str | None) -> dict:
    """Run one measurement in this (fresh) process and return its figures."""
    sentences = training_sentences(books)
    tokens = sum(len(s) for s in sentences)
    baseline = max_rss_mb()
    started = time.perf_counter()
    if kind == "nltk":
        from nltk.lm import NgramCounter
        from nltk.lm.preprocessing import padded_everygram_pipeline

        ngrams, _vocab = padded_everygram_pipeline(order, sentences)
        counter = NgramCounter(ngrams)
        seconds = time.perf_counter() - started
        return {"kind": kind, "order": order, "tokens": tokens, "seconds": seconds,
                "peak_mb": max_rss_mb() - baseline, "ngrams": counter.N()}
    from corpora import load_corpus
    from ngram import NgramModel, get_tokenizer, save_model

    corpus = load_corpus(books).describe()
    started = time.perf_counter()
    model = NgramModel.from_sentences(sentences, order, get_tokenizer("words"), corpus=corpus)
    seconds = time.perf_counter() - started
    result = {"kind": kind, "order": order, "tokens": tokens, "seconds": seconds,
              "peak_mb": max_rss_mb() - baseline, "nodes": model.stats()["nodes"]}
    if model_path:
        result["bytes_per_node"] = model.trie.nbytes() / result["nodes"]
        saved = save_model(model, model_path)
        files = saved.iterdir() if saved.is_dir() else [saved]
        result["file_mb"] = sum(f.stat().st_size for f in files) / 1e6
    return result


def load_and_predict(model_path: str, n_contexts: int = 2000) -> dict:
    """Load time, then top-10 prediction latency on held-out contexts (fresh process)."""
    from ngram import load_model

    started = time.perf_counter()
    model = load_model(model_path)
    load_seconds = time.perf_counter() - started
    rng = random.Random(0)
    sentences = list(model.tokenizer.sentences(model.heldout_text()))
    contexts = []
    for sentence in rng.sample(sentences, min(n_contexts, len(sentences))):
        cut = rng.randint(0, len(sentence))
        contexts.append(["<s>", *model.to_vocab(sentence[:cut])])
    timings = {}
    for smoothing in ("kn", "backoff"):
        times = []
        for context in contexts:
            t = time.perf_counter()
            model.predict(context, k=10, smoothing=smoothing)
            times.append(time.perf_counter() - t)
        times.sort()
        timings[smoothing] = {"median_us": statistics.median(times) * 1e6, "p95_us": times[int(0.95 * len(times))] * 1e6}
    return {"load_seconds": load_seconds, "load_peak_mb": max_rss_mb(), "contexts": len(contexts), "predict": timings}


def run_worker(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine() -> str:
    import numpy

    from corpora.machine import cpu_name

    try:
        import nltk

        nltk_version = nltk.__version__
    except ImportError:
        nltk_version = "not installed"
    cpu = cpu_name()
    load = os.getloadavg()[0]
    return (f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} CPUs, load average {load:.2f}; "
            f"Python {platform.python_version()}, NumPy {numpy.__version__}, nltk {nltk_version}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--books", type=Path, default=DEFAULT_BOOKS)
    parser.add_argument("--orders", type=int, nargs="+", default=[2, 3, 4, 5])
    parser.add_argument("--skip-nltk", action="store_true")
    parser.add_argument("--json", action="store_true", help="Print the raw figures as JSON too.")
    parser.add_argument("--worker", choices=["ours", "nltk", "predict"], help=argparse.SUPPRESS)
    parser.add_argument("--order", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "predict":
        print(json.dumps(load_and_predict(args.model)))
        return
    if args.worker:
        print(json.dumps(worker(args.worker, args.order, args.books, args.model)))
        return

    print(f"Command: python benchmarks/ngram_speed.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"Machine: {machine()}")
    rows, raw = [], []
    with tempfile.TemporaryDirectory() as tmp:
        model_path = str(Path(tmp) / "model.ngram")
        top = max(args.orders)
        for order in args.orders:
            ours = run_worker(["--worker", "ours", "--order", str(order), "--books", str(args.books)]
                              + (["--model", model_path] if order == top else []))
            theirs = None if args.skip_nltk else run_worker(
                ["--worker", "nltk", "--order", str(order), "--books", str(args.books)])
            raw.append({"ours": ours, "nltk": theirs})
            rows.append((order, ours, theirs))
            print(f"  order {order} measured", file=sys.stderr)
        predicted = run_worker(["--worker", "predict", "--model", model_path])
    final = rows[-1][1]
    print()
    print("| order | ours: build s | ours: tokens/s | ours: peak MB | nltk.lm: build s | nltk.lm: peak MB | speed-up | memory ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for order, ours, theirs in rows:
        tps = ours["tokens"] / ours["seconds"]
        if theirs:
            print(f"| {order} | {ours['seconds']:.1f} | {tps:,.0f} | {ours['peak_mb']:,.0f} | {theirs['seconds']:.1f} | "
                  f"{theirs['peak_mb']:,.0f} | {theirs['seconds'] / ours['seconds']:.1f}x | {ours['peak_mb'] / theirs['peak_mb']:.2f} |")
        else:
            print(f"| {order} | {ours['seconds']:.1f} | {tps:,.0f} | {ours['peak_mb']:,.0f} | – | – | – | – |")
    print()
    print(f"Order {rows[-1][0]} model: {final['nodes']:,} trie nodes, {final['bytes_per_node']:.1f} bytes per node "
          f"(dicts + large counts + token strings), file {final['file_mb']:.1f} MB, "
          f"load {predicted['load_seconds']:.2f} s (peak {predicted['load_peak_mb']:,.0f} MB RSS)")
    for name, t in predicted["predict"].items():
        print(f"Top-10 prediction ({name}) over {predicted['contexts']} held-out contexts: "
              f"median {t['median_us']:.1f} µs, p95 {t['p95_us']:.1f} µs")
    if args.json:
        print(json.dumps({"builds": raw, "predict": predicted}, indent=2))


if __name__ == "__main__":
    main()
