"""How fast is our NumPy GPT-2 next to Hugging Face transformers on PyTorch (CPU)?

    pip install torch transformers        # for this benchmark only; never needed at run time
    python benchmarks/transformer_speed.py --threads 2

Speed does not depend on the weight values, so the model is GPT-2 small's exact shape
(12 layers, 12 heads, 768 wide, 1024 positions, 50,257 tokens) with random weights,
saved once in Hugging Face's format (config.json + model.safetensors) to a temporary
folder. Both sides load that same folder: ours through our memory-mapping loader,
transformers through `GPT2LMHeadModel.from_pretrained`.

Each side runs in its own fresh subprocess (so imports and memory do not mix) with the
same number of threads (OPENBLAS/OMP/MKL_NUM_THREADS for ours; also
torch.set_num_threads for torch), and measures:

- prefill: one forward pass over a 512-token prompt, as generation starts. Ours
  computes only the last position's logits; transformers by default computes all 512
  (reported), and with `logits_to_keep=1` (also reported, for a like-for-like view).
- decode: 64 greedy steps with the KV cache after that 512-token prompt (tokens/s);
  transformers is driven by a plain loop over `model(..., past_key_values=...)`.
- scoring: log-probabilities of all 1,023 targets of a 1,024-token text (all-position
  logits, log-softmax, pick the target).
- the GEMMs alone: the 48 matrix products of the blocks' linear layers for a 512-token
  prompt (x @ w with each block weight, x random), as each side's BLAS does them:
  OpenBLAS under NumPy, oneDNN/MKL under torch. Prefill cannot be faster than its GEMMs,
  so this row says how much of a prefill ratio is the BLAS and how much the rest.
- weight-streaming bound (ours only): one plain matrix-vector product with every weight
  matrix the decoder reads per token (the 48 block matrices and the tied unembedding),
  nothing else. Its time is the floor for one decode step when memory bandwidth is the
  limit, so decode tokens/s is also reported as a share of 1 / that time (target ≥75%).
- peak memory: the process's peak resident set (VmHWM; ru_maxrss elsewhere) at the
  end minus the peak just before loading the model (after imports). It includes memory-mapped weight pages
  the process touched, so ours counts the 498 MB file like an in-memory copy.

Times are the best of `--repeats` runs after one warm-up, in each of `--rounds` fresh
subprocesses per side, run alternately (ours, torch, ours, torch) so that both sides
see the same machine load; each figure is the best over all rounds. Compare ratios
within one run on one machine; absolute figures mean little elsewhere.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROMPT_LEN, DECODE_STEPS, SCORE_LEN = 512, 64, 1024


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB.

    On Linux this is VmHWM from /proc/self/status, which starts afresh in each new
    program; ru_maxrss would carry over the parent's peak across fork + exec.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def best_time(run, repeats: int) -> float:
    """Seconds for the fastest of `repeats` calls, after one warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def token_ids(n: int, seed: int = 0) -> list[int]:
    import numpy as np

    return np.random.default_rng(seed).integers(0, 50256, n).tolist()


# --------------------------------------------------------------------------- ours


def worker_ours(folder: Path, repeats: int) -> dict:
    import numpy as np

    sys.path.insert(0, str(REPO))
    from transformer.model import GPT2
    from transformer.score import token_logprobs

    baseline = peak_rss_mb()
    start = time.perf_counter()
    model = GPT2.from_dir(folder)
    load = time.perf_counter() - start
    prompt = np.array(token_ids(PROMPT_LEN))
    text = token_ids(SCORE_LEN, seed=1)

    def prefill() -> None:
        model.forward(prompt, model.new_cache())  # as generation starts: fill a KV cache

    def decode() -> None:
        logits, cache = model.forward(prompt, model.new_cache())
        start = time.perf_counter()
        for _ in range(DECODE_STEPS):
            logits, cache = model.forward(np.array([int(np.argmax(logits))]), cache)
        decode.seconds = time.perf_counter() - start

    def score() -> None:
        token_logprobs(model, text)

    vectors = {n: np.ones(n, np.float32) for n in (model.config.n_embd, 4 * model.config.n_embd)}

    def stream() -> None:  # the weight-streaming bound: one GEMV per matrix a decode step reads
        for block in model.params.blocks:
            for linear in (block.c_attn, block.attn_proj, block.c_fc, block.mlp_proj):
                vectors[linear.w.shape[0]] @ linear.w
        vectors[model.config.n_embd] @ model.params.wte.T

    prefill_s = best_time(prefill, repeats)
    decode_s = min(_timed_inner(decode) for _ in range(repeats + 1))  # the first also warms up
    score_s = best_time(score, repeats)
    stream_s = best_time(stream, repeats)
    peak_mb = peak_rss_mb() - baseline  # before the GEMM-only row allocates its inputs
    rows = {n: np.random.default_rng(2).standard_normal((PROMPT_LEN, n)).astype(np.float32) for n in vectors}

    def gemms() -> None:  # the 48 block GEMMs of a 512-token prefill, nothing else
        for block in model.params.blocks:
            for linear in (block.c_attn, block.attn_proj, block.c_fc, block.mlp_proj):
                rows[linear.w.shape[0]] @ linear.w

    gemm_s = best_time(gemms, repeats)
    return {
        "stream_tok_s": 1.0 / stream_s,
        "gemm_tok_s": PROMPT_LEN / gemm_s,
        "load_s": load,
        "prefill_tok_s": PROMPT_LEN / prefill_s,
        "decode_tok_s": DECODE_STEPS / decode_s,
        "score_tok_s": (SCORE_LEN - 1) / score_s,
        "peak_mb": peak_mb,
        "baseline_mb": baseline,
    }


def _timed_inner(run) -> float:
    """Run a function that records its own timed section in `run.seconds`."""
    run()
    return run.seconds


# -------------------------------------------------------------------------- torch


def worker_torch(folder: Path, repeats: int, threads: int) -> dict:
    import torch
    from transformers import GPT2LMHeadModel

    torch.set_num_threads(threads)
    baseline = peak_rss_mb()
    start = time.perf_counter()
    model = GPT2LMHeadModel.from_pretrained(folder, dtype=torch.float32).eval()
    load = time.perf_counter() - start
    prompt = torch.tensor([token_ids(PROMPT_LEN)])
    text = torch.tensor([token_ids(SCORE_LEN, seed=1)])

    @torch.inference_mode()
    def prefill() -> None:
        model(prompt, use_cache=True)

    @torch.inference_mode()
    def prefill_last() -> None:
        model(prompt, use_cache=True, logits_to_keep=1)

    @torch.inference_mode()
    def decode() -> None:
        out = model(prompt, use_cache=True, logits_to_keep=1)
        past, logits = out.past_key_values, out.logits[:, -1]
        start = time.perf_counter()
        for _ in range(DECODE_STEPS):
            out = model(logits.argmax(-1, keepdim=True), past_key_values=past, use_cache=True)
            past, logits = out.past_key_values, out.logits[:, -1]
        decode.seconds = time.perf_counter() - start

    @torch.inference_mode()
    def score() -> None:
        logits = model(text, use_cache=False).logits[0, :-1]
        torch.log_softmax(logits, dim=-1).gather(1, text[0, 1:, None])

    prefill_s = best_time(prefill, repeats)
    prefill_last_s = best_time(prefill_last, repeats)
    decode_s = min(_timed_inner(decode) for _ in range(repeats + 1))  # the first also warms up
    score_s = best_time(score, repeats)
    peak_mb = peak_rss_mb() - baseline  # before the GEMM-only row allocates its inputs
    generator = torch.Generator().manual_seed(2)
    widths = {model.config.n_embd, 4 * model.config.n_embd}
    rows = {n: torch.randn((PROMPT_LEN, n), generator=generator) for n in widths}
    weights = [layer.weight for block in model.transformer.h  # Conv1D weights: (in, out), as ours
               for layer in (block.attn.c_attn, block.attn.c_proj, block.mlp.c_fc, block.mlp.c_proj)]

    @torch.inference_mode()
    def gemms() -> None:
        for w in weights:
            rows[w.shape[0]] @ w

    gemm_s = best_time(gemms, repeats)
    return {
        "gemm_tok_s": PROMPT_LEN / gemm_s,
        "load_s": load,
        "prefill_tok_s": PROMPT_LEN / prefill_s,
        "prefill_last_tok_s": PROMPT_LEN / prefill_last_s,
        "decode_tok_s": DECODE_STEPS / decode_s,
        "score_tok_s": (SCORE_LEN - 1) / score_s,
        "peak_mb": peak_mb,
        "baseline_mb": baseline,
        "threads": torch.get_num_threads(),
    }


# ------------------------------------------------------------------------- driver


def make_random_gpt2_small(folder: Path) -> None:
    """Save a randomly initialised GPT-2 small (HF format, safetensors) into folder."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config()).save_pretrained(folder, safe_serialization=True)


def run_worker(side: str, folder: Path, args: argparse.Namespace) -> dict:
    env = dict(os.environ)
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(args.threads)
    command = [sys.executable, __file__, "--worker", side, "--folder", str(folder),
               "--threads", str(args.threads), "--repeats", str(args.repeats)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{side} worker failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def best_of(results: list[dict]) -> dict:
    """Combine rounds: the highest throughput, the lowest memory and load time."""
    return {key: (min if key.endswith("_mb") or key == "load_s" else max)(r[key] for r in results)
            for key in results[0]}  # (a throughput "..._tok_s" is a maximum, not a time)


def machine_info(args: argparse.Namespace) -> list[str]:
    from importlib.metadata import version

    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    return [
        f"command: {' '.join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])}",
        f"machine: {platform.machine()}, {cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}",
        f"load average before the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        f"python {platform.python_version()}, numpy {version('numpy')}, torch {version('torch')}, "
        f"transformers {version('transformers')}; threads per side: {args.threads}",
    ]


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}x"


def report(ours: dict, torch_: dict) -> list[str]:
    weights_mb = 497.8  # fp32 bytes of GPT-2 small's 124.4M parameters, in MB
    rows = [
        ("prefill 512 tokens, tokens/s (higher is better)", ours["prefill_tok_s"], torch_["prefill_tok_s"], "≥1.3x"),
        ("  same, torch with logits_to_keep=1", ours["prefill_tok_s"], torch_["prefill_last_tok_s"], "-"),
        ("decode with KV cache, tokens/s", ours["decode_tok_s"], torch_["decode_tok_s"], "≥1.3x"),
        ("scoring 1024 tokens (all logits), tokens/s", ours["score_tok_s"], torch_["score_tok_s"], "≥1.0x"),
        ("the 48 block GEMMs of the prefill alone, tokens/s", ours["gemm_tok_s"], torch_["gemm_tok_s"], "-"),
    ]
    lines = ["| measure | ours (NumPy) | torch + transformers | ours / torch | target |", "|---|---:|---:|---:|---|"]
    for name, a, b, target in rows:
        lines.append(f"| {name} | {a:,.1f} | {b:,.1f} | {ratio(a, b)} | {target} |")
    lines.append(
        f"| peak memory above baseline, MB (lower is better) | {ours['peak_mb']:,.0f} | {torch_['peak_mb']:,.0f} "
        f"| {ours['peak_mb'] / weights_mb:.2f}x / {torch_['peak_mb'] / weights_mb:.2f}x of fp32 weights | ≤1.3x weights |"
    )
    lines.append(f"| load time, s | {ours['load_s']:.2f} | {torch_['load_s']:.2f} | | |")
    lines.append(f"| decode vs the weight-streaming bound ({ours['stream_tok_s']:,.1f} tokens/s = "
                 f"{weights_mb * ours['stream_tok_s'] / 1000:.1f} GB/s of plain GEMVs) | "
                 f"{ours['decode_tok_s'] / ours['stream_tok_s']:.0%} | {torch_['decode_tok_s'] / ours['stream_tok_s']:.0%} "
                 f"| | ≥75% |")
    lines.append(f"| share of the prefill spent in those GEMMs | {ours['prefill_tok_s'] / ours['gemm_tok_s']:.0%} | "
                 f"{torch_['prefill_last_tok_s'] / torch_['gemm_tok_s']:.0%} (logits_to_keep=1) | | |")
    lines.append("")
    lines.append(f"baseline peak RSS after imports: ours {ours['baseline_mb']:.0f} MB, torch {torch_['baseline_mb']:.0f} MB; "
                 f"fp32 weights {weights_mb} MB")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="BLAS / torch threads per side")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measure (best is kept)")
    parser.add_argument("--rounds", type=int, default=2, help="fresh subprocesses per side, alternating (best is kept)")
    parser.add_argument("--folder", type=Path, default=None, help="use this GPT-2 small folder instead of a random one")
    parser.add_argument("--worker", choices=["ours", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "ours":
        print(json.dumps(worker_ours(args.folder, args.repeats)))
        return
    if args.worker == "torch":
        print(json.dumps(worker_torch(args.folder, args.repeats, args.threads)))
        return
    for line in machine_info(args):
        print(line)
    with tempfile.TemporaryDirectory(prefix="gpt2-random-") as tmp:
        folder = args.folder
        if folder is None:
            folder = Path(tmp)
            make_random_gpt2_small(folder)
        runs: dict[str, list[dict]] = {"ours": [], "torch": []}
        for _ in range(args.rounds):  # alternate sides so both see the same machine load
            for side in runs:
                runs[side].append(run_worker(side, folder, args))
        ours, theirs = best_of(runs["ours"]), best_of(runs["torch"])
    print(f"load average after the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print("\n".join(report(ours, theirs)))


if __name__ == "__main__":
    main()
