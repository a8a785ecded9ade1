"""How fast does our NumPy trainer train, next to PyTorch on the same CPU threads?

    python benchmarks/train_speed.py                    # 4 layers, 4 heads, 128 wide, ctx 128, vocab 4096, batch 16
    python benchmarks/train_speed.py --threads 1 --steps 5
    python benchmarks/train_speed.py --layers 6 --dim 256 --ctx 512 --batch 8 --dropout 0.1   # the bundled run's shape

Both sides train the same GPT-2 architecture from the same initial weights on the same
random batches, with the same recipe: full forward + backward, gradient clipping by
global norm, AdamW (decay on 2-D tensors), and with --dropout the same dropout sites
(embedding, attention weights, both residual branches; torch's from its own generator). The torch model is a plain GPT-2 written
here with nn.Linear layers and F.scaled_dot_product_attention (torch's fused causal
attention), so it is a strong baseline, not a strawman. The first step (dropout off
on both sides) compares the losses as a check that the two compute the same thing.

Steps alternate between the two in rounds, so a change in machine load hits both; the
table reports the median step time of each. Needs torch (developer-run; CI never runs
it). Figures are only comparable within one run on one machine.
"""
from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--ctx", type=int, default=128)
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--dropout", type=float, default=0.0, help="dropout probability on both sides (timed steps)")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per round, per side")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (ours, torch, ours, ...)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="BLAS/torch threads for both sides")
    return parser.parse_args()


ARGS = parse_args()
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = str(ARGS.threads)  # before numpy loads its BLAS

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from transformer.backward import model_forward_backward  # noqa: E402
from transformer.config import GPT2Config  # noqa: E402
from transformer.train import (  # noqa: E402
    TrainConfig, adamw_update, clip_grad_norm, init_params,
)


class TorchBlock(torch.nn.Module):
    def __init__(self, c: int, n_head: int, dropout: float) -> None:
        super().__init__()
        self.n_head, self.p = n_head, dropout
        self.ln_1 = torch.nn.LayerNorm(c)
        self.c_attn = torch.nn.Linear(c, 3 * c)
        self.attn_proj = torch.nn.Linear(c, c)
        self.ln_2 = torch.nn.LayerNorm(c)
        self.c_fc = torch.nn.Linear(c, 4 * c)
        self.mlp_proj = torch.nn.Linear(4 * c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        p = self.p if self.training else 0.0
        heads = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p)
        x = x + F.dropout(self.attn_proj(heads.transpose(1, 2).reshape(b, t, c)), p, self.training)
        return x + F.dropout(self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh")), p, self.training)


class TorchGPT(torch.nn.Module):
    """GPT-2 in torch, loaded from our parameter dict (nn.Linear is output-major: transpose)."""

    def __init__(self, config: GPT2Config, params: dict[str, np.ndarray], dropout: float = 0.0) -> None:
        super().__init__()
        c, self.p = config.n_embd, dropout
        self.wte = torch.nn.Parameter(torch.from_numpy(params["wte.weight"].copy()))
        self.wpe = torch.nn.Parameter(torch.from_numpy(params["wpe.weight"].copy()))
        self.blocks = torch.nn.ModuleList(TorchBlock(c, config.n_head, dropout) for _ in range(config.n_layer))
        self.ln_f = torch.nn.LayerNorm(c)
        with torch.no_grad():
            for i, block in enumerate(self.blocks):
                for ours, module in (("ln_1", block.ln_1), ("ln_2", block.ln_2)):
                    module.weight.copy_(torch.from_numpy(params[f"h.{i}.{ours}.weight"]))
                    module.bias.copy_(torch.from_numpy(params[f"h.{i}.{ours}.bias"]))
                for ours, module in (("attn.c_attn", block.c_attn), ("attn.c_proj", block.attn_proj),
                                     ("mlp.c_fc", block.c_fc), ("mlp.c_proj", block.mlp_proj)):
                    module.weight.copy_(torch.from_numpy(params[f"h.{i}.{ours}.weight"].T.copy()))
                    module.bias.copy_(torch.from_numpy(params[f"h.{i}.{ours}.bias"]))
            self.ln_f.weight.copy_(torch.from_numpy(params["ln_f.weight"]))
            self.ln_f.bias.copy_(torch.from_numpy(params["ln_f.bias"]))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = F.dropout(self.wte[ids] + self.wpe[: ids.shape[1]], self.p, self.training)
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x) @ self.wte.T


def machine() -> dict[str, str]:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return {"cpu": cpu, "cores": str(os.cpu_count()), "load (1, 5, 15 min)": load, "os": platform.platform()}


def main() -> None:
    args = ARGS
    torch.set_num_threads(args.threads)
    from corpora.runtime import keep_freed_memory_for_reuse
    keep_freed_memory_for_reuse()  # as `transformer train` does (torch has its own caching allocator)
    config = GPT2Config(n_layer=args.layers, n_head=args.heads, n_embd=args.dim, n_ctx=args.ctx,
                        vocab_size=args.vocab)
    tc = TrainConfig(weight_decay=0.1, grad_clip=1.0)
    params = init_params(config, seed=0)
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    torch_model = TorchGPT(config, params, args.dropout)
    decay = [p for p in torch_model.parameters() if p.ndim >= 2]
    rest = [p for p in torch_model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                                  lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    rng = np.random.default_rng(0)
    total = args.rounds * args.steps + 1
    batches = [(rng.integers(0, args.vocab, (args.batch, args.ctx)), rng.integers(0, args.vocab, (args.batch, args.ctx)))
               for _ in range(total)]
    ours_step = [0]
    dropout_rng = np.random.default_rng(1)

    def ours(i: int, dropout: float = args.dropout) -> float:
        x, y = batches[i]
        loss, grads = model_forward_backward(params, config, x, y, dropout, dropout_rng)
        clip_grad_norm(grads, tc.grad_clip)
        ours_step[0] += 1
        adamw_update(params, grads, m, v, ours_step[0], 1e-3, tc)
        return loss

    def theirs(i: int) -> float:
        x, y = (torch.from_numpy(a) for a in batches[i])
        optimizer.zero_grad(set_to_none=True)
        logits = torch_model(x)
        loss = F.cross_entropy(logits.view(-1, args.vocab), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(torch_model.parameters(), 1.0)
        optimizer.step()
        return loss.item()

    torch_model.eval()  # the check step runs without dropout on both sides
    first = ours(0, dropout=0.0), theirs(0)  # also a warm-up for both
    torch_model.train()
    if abs(first[0] - first[1]) > 1e-3:
        raise SystemExit(f"the two models disagree on the first loss: {first}")
    times: dict[str, list[float]] = {"ours (NumPy)": [], "torch": []}
    step = 1
    for _ in range(args.rounds):
        for name, run in (("ours (NumPy)", ours), ("torch", theirs)):
            for i in range(step, step + args.steps):
                started = time.perf_counter()
                run(i)
                times[name].append(time.perf_counter() - started)
        step += args.steps

    tokens = args.batch * args.ctx
    n_params = sum(p.size for p in params.values())
    median = {name: statistics.median(t) for name, t in times.items()}
    rate = {name: tokens / s for name, s in median.items()}
    print(f"# Training speed: NumPy vs torch, {args.threads} thread(s)\n")
    print(f"GPT-2 architecture: {args.layers} layers, {args.heads} heads, {args.dim} wide, ctx {args.ctx}, "
          f"vocab {args.vocab}, batch {args.batch} ({tokens:,} tokens/step), {n_params:,} parameters, "
          f"dropout {args.dropout:g}; "
          f"forward + backward + clip + AdamW; {args.rounds} alternating rounds of {args.steps} steps each; "
          f"first-step loss ours {first[0]:.5f}, torch {first[1]:.5f}.\n")
    print("| implementation | median s/step | tokens/s | vs torch |")
    print("|---|---:|---:|---:|")
    for name in times:
        print(f"| {name} | {median[name]:.3f} | {rate[name]:,.0f} | {rate[name] / rate['torch']:.2f}x |")
    print()
    for key, value in machine().items():
        print(f"- {key}: {value}")
    print(f"- python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}")
    print(f"- command: python benchmarks/train_speed.py {shlex.join(sys.argv[1:])}".rstrip())


if __name__ == "__main__":
    main()
