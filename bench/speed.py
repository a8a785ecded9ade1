"""`bench speed`: what each model costs, measured side by side in one run on one machine.

- the n-gram at orders 2..N: build time and peak memory (each build in a fresh process,
  so the memory is the whole process's), file size, load time, next-token latency
  (median and p95 of a top-10 prediction), generation tokens/s;
- the transformer: load time and memory (fresh process), next-token latency at several
  context lengths, and generation tokens/s with and without the KV cache.

Absolute times depend on the machine; the ratios between rows measured in the same run
are what to quote.
"""
from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from corpora import UserError
from ngram import NgramModel, load_model as load_ngram, save_model
from ngram.io import model_bytes
from transformer import generate
from transformer.model import GPT2

from .models import TransformerChoice
from .tables import render_table


MAX_ORDER = 10  # the highest n-gram order `bench speed` will build
LENGTHS = (1, 4, 16, 64, 256, 1024)  # prompt lengths (tokens) for latency against context length


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB.

    On Linux, VmHWM from /proc/self/status: it starts afresh in a new program, whereas
    ru_maxrss keeps the parent's peak across fork + exec (every fresh process would then
    report the memory of the `bench` process that started it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def machine() -> dict:
    """What the numbers were measured on (`corpora.machine`), with the load at that moment."""
    from corpora.machine import machine_summary

    return {**machine_summary(), "load_average": round(os.getloadavg()[0], 2)}


# ------------------------------------------------------------ fresh processes


def run_fresh(task: dict) -> dict:
    """Run one measurement in a new Python process (`python -m bench.speed TASK_JSON`)."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.speed", json.dumps(task)], capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise UserError(f"a speed measurement failed ({task['task']}): {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def task_build_ngram(corpus: str, order: int, out: str) -> dict:
    started = time.perf_counter()
    model = NgramModel.build(corpus, order=order, progress=False)
    seconds = time.perf_counter() - started
    save_model(model, out)
    stats = model.stats()
    return {"seconds": seconds, "peak_mb": peak_rss_mb(), "tokens": stats["training_tokens"], "nodes": stats["nodes"]}


def task_load_ngram(path: str) -> dict:
    base = peak_rss_mb()
    started = time.perf_counter()
    load_ngram(path)
    return {"seconds": time.perf_counter() - started, "peak_mb": peak_rss_mb(), "baseline_mb": base}


def task_load_transformer(folder: str) -> dict:
    from transformer import load_model

    base = peak_rss_mb()
    started = time.perf_counter()
    model, tokenizer = load_model(folder)
    loaded = time.perf_counter() - started
    model.forward(np.array(tokenizer.encode("It was the best of times")))  # the weights are paged in by use
    return {"seconds": loaded, "first_prediction_seconds": time.perf_counter() - started - loaded,
            "peak_mb": peak_rss_mb(), "baseline_mb": base}


TASKS = {"build-ngram": task_build_ngram, "load-ngram": task_load_ngram, "load-transformer": task_load_transformer}


# ------------------------------------------------------------------ in process


def ngram_latency(model: NgramModel, contexts: list[list[str]], order: int | None = None, k: int = 10) -> list[float]:
    """Seconds per top-k prediction (with `order`, each context first cut to order-1 tokens)."""
    times = []
    for context in contexts:
        h = context if order is None else context[-(order - 1):] if order > 1 else context[-1:]
        started = time.perf_counter()
        model.predict(h, k=k)
        times.append(time.perf_counter() - started)
    return times


def ngram_latency_by_length(model: NgramModel, text: str, lengths: list[int], count: int, seed: int) -> dict[int, list[float]]:
    """Seconds per top-10 prediction from contexts of each length (in n-gram tokens), drawn
    from the text's token stream. Only the last order-1 tokens matter, which this shows."""
    stream = [t for sentence in model.tokenizer.sentences(text) for t in model.to_vocab(sentence)]
    usable = [n for n in lengths if n < len(stream)]
    if not usable:
        raise UserError("the text is too short to draw contexts from")
    rng = np.random.default_rng(seed)
    out = {}
    for n in usable:
        ends = rng.integers(n, len(stream), count)
        out[n] = ngram_latency(model, [stream[e - n:e] for e in ends])
    return out


def ngram_generation_rate(model: NgramModel, prompt: list[str], tokens: int, seed: int) -> float:
    started = time.perf_counter()
    model.generate(prompt, max_tokens=tokens, seed=seed, top_k=40)
    return tokens / (time.perf_counter() - started)


def transformer_latency(model: GPT2, ids: list[int], lengths: list[int], repeats: int) -> dict[int, list[float]]:
    """Seconds to get the next-token logits from a fresh prompt of each length."""
    out: dict[int, list[float]] = {}
    for n in lengths:
        prompt = np.asarray(ids[:n])
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            model.forward(prompt)
            times.append(time.perf_counter() - started)
        out[n] = times
    return out


def transformer_generation_rate(model: GPT2, prompt: list[int], tokens: int, use_cache: bool) -> float:
    started = time.perf_counter()
    generate(model, prompt, max_new_tokens=tokens, use_cache=use_cache)
    return tokens / (time.perf_counter() - started)


# ------------------------------------------------------------------- the run


@dataclass
class SpeedReport:
    machine: dict
    ngram: list[dict] = field(default_factory=list)  # one per order
    transformer: dict = field(default_factory=dict)
    latency_by_context: dict = field(default_factory=dict)  # model -> {context length: median seconds}
    ratios: dict = field(default_factory=dict)
    command: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def contexts_from(model: NgramModel, text: str, count: int, seed: int) -> list[list[str]]:
    """`count` random contexts (lists of vocabulary tokens) from the sentences of `text`."""
    from corpora.tokenizers import BOS

    sentences = [s for s in model.tokenizer.sentences(text) if len(s) >= 4]
    if not sentences:
        raise UserError("the text has no sentences long enough to draw contexts from")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(sentences), count)
    out = []
    for i in picks:
        s = [BOS, *model.to_vocab(sentences[i])]
        cut = int(rng.integers(2, len(s) + 1))
        out.append(s[:cut])
    return out


def measure(
    corpus: str | Path, choice: TransformerChoice, text: str, orders: list[int], seed: int = 0,
    contexts: int = 500, repeats: int = 5, generate_tokens: int = 64, progress: bool = True,
) -> SpeedReport:
    """The whole speed comparison (a few minutes on the default books)."""
    report = SpeedReport(machine())
    bar = tqdm(total=len(orders) * 3 + 1, desc="speed", unit="step", disable=not progress)
    sample: list[list[str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in orders:
            path = str(Path(tmp) / f"order{n}.ngram")
            built = run_fresh({"task": "build-ngram", "corpus": str(corpus), "order": n, "out": path})
            bar.update()
            loaded = run_fresh({"task": "load-ngram", "path": path})
            bar.update()
            model = load_ngram(path)
            sample = sample or contexts_from(model, text, contexts, seed)
            times = ngram_latency(model, sample, n)
            if n == max(orders):
                by_length = ngram_latency_by_length(model, text, LENGTHS, max(20, contexts // 5), seed)
            report.ngram.append({
                "order": n, "build_seconds": built["seconds"], "build_tokens_per_second": built["tokens"] / built["seconds"],
                "build_peak_mb": built["peak_mb"], "nodes": built["nodes"], "file_mb": model_bytes(path) / 1e6,
                "load_seconds": loaded["seconds"], "loaded_mb": loaded["peak_mb"] - loaded["baseline_mb"],
                "latency_median_ms": statistics.median(times) * 1e3, "latency_p95_ms": percentile(times, 95) * 1e3,
                "generate_tokens_per_second": ngram_generation_rate(model, sample[0], generate_tokens, seed),
            })
            del model
            bar.update()
        loaded_t = run_fresh({"task": "load-transformer", "folder": str(choice.folder)})
        bar.update()
    bar.close()

    model = choice.model
    ids = choice.tokenizer.encode(text[:200_000])
    n_ctx = model.config.n_ctx
    lengths = [n for n in LENGTHS if n <= min(n_ctx, len(ids))]
    latency = transformer_latency(model, ids, lengths, repeats)
    prompt = ids[:32]
    new = min(generate_tokens, n_ctx - len(prompt))
    with_cache = transformer_generation_rate(model, prompt, new, use_cache=True)
    without_cache = transformer_generation_rate(model, prompt, new, use_cache=False)
    report.transformer = {
        "model": choice.description, "load_seconds": loaded_t["seconds"],
        "first_prediction_seconds": loaded_t["first_prediction_seconds"],
        "loaded_mb": loaded_t["peak_mb"] - loaded_t["baseline_mb"],
        "latency_median_ms": {str(n): statistics.median(t) * 1e3 for n, t in latency.items()},
        "latency_p95_ms": {str(n): percentile(t, 95) * 1e3 for n, t in latency.items()},
        "generate_tokens_per_second_kv_cache": with_cache,
        "generate_tokens_per_second_no_cache": without_cache,
        "generated_tokens": new, "prompt_tokens": len(prompt),
    }
    top = report.ngram[-1]
    t_latency = statistics.median(latency[max(n for n in lengths if n <= 16)]) * 1e3
    report.latency_by_context = {
        "transformer": {str(n): statistics.median(t) * 1e3 for n, t in latency.items()},
        "ngram": {str(n): statistics.median(t) * 1e3 for n, t in by_length.items() if n in lengths},
    }
    report.ratios = {
        "transformer_vs_ngram_latency": t_latency / top["latency_median_ms"],
        "ngram_vs_transformer_generation": top["generate_tokens_per_second"] / with_cache,
        "kv_cache_speedup": with_cache / without_cache,
        "transformer_vs_ngram_load": loaded_t["seconds"] / top["load_seconds"],
    }
    return report


def render_speed(report: SpeedReport, markdown: bool = False) -> str:
    """Tables of the speed report."""
    header = ["n-gram order", "build s", "tokens/s", "peak MB", "nodes", "file MB", "load s", "latency ms (median / p95)", "generate tok/s"]
    rows = [
        [
            str(r["order"]), f"{r['build_seconds']:.1f}", f"{r['build_tokens_per_second']:,.0f}", f"{r['build_peak_mb']:,.0f}",
            f"{r['nodes']:,}", f"{r['file_mb']:.1f}", f"{r['load_seconds']:.2f}",
            f"{r['latency_median_ms']:.3f} / {r['latency_p95_ms']:.3f}", f"{r['generate_tokens_per_second']:,.0f}",
        ]
        for r in report.ngram
    ]
    out = [render_table(header, rows, right=set(range(len(header))), markdown=markdown)]
    t = report.transformer
    out += ["", f"transformer: {t['model']}",
            f"  load {t['load_seconds']:.2f} s (+{t['first_prediction_seconds']:.2f} s for the first prediction), {t['loaded_mb']:,.0f} MB",
            "  next-token latency by prompt length (median / p95 ms): "
            + ", ".join(f"{n}: {t['latency_median_ms'][n]:.1f} / {t['latency_p95_ms'][n]:.1f}" for n in t["latency_median_ms"]),
            f"  generation ({t['prompt_tokens']}-token prompt, {t['generated_tokens']} new): "
            f"{t['generate_tokens_per_second_kv_cache']:,.1f} tokens/s with the KV cache, "
            f"{t['generate_tokens_per_second_no_cache']:,.1f} without", ""]
    r = report.ratios
    out += [
        f"Ratios (same run): the transformer's next-token latency (16-token prompt) is "
        f"{r['transformer_vs_ngram_latency']:,.1f}x the n-gram's top-10 prediction; the n-gram generates at "
        f"{r['ngram_vs_transformer_generation']:,.2f}x the transformer's speed (it computes a full distribution over "
        f"its vocabulary for every token); the KV cache makes generation {r['kv_cache_speedup']:.1f}x faster; "
        f"the transformer loads in {r['transformer_vs_ngram_load']:.3f}x the n-gram's time (its weights are memory-mapped).",
    ]
    return "\n".join(out)


if __name__ == "__main__":  # one measurement in a fresh process (see run_fresh)
    job = json.loads(sys.argv[1])
    print(json.dumps(TASKS[job.pop("task")](**job)))
