"""Training a GPT-2-architecture model from scratch, in NumPy: the data and the loop.

The recipe, one function each:

    init_params        GPT-2's initialisation: N(0, 0.02), residual projections scaled
                       down by sqrt(2 * n_layer), biases 0, layer-norm gains 1
    encode_corpus      the training and held-out text as token ids, <|endoftext|> between books
    sample_batch       B random windows of T+1 tokens: inputs and next-token targets
    model_forward_backward (backward.py)   the loss and every parameter's gradient
    clip_grad_norm, learning_rate, adamw_update (optim.py)   one optimiser step
    evaluate           mean loss on fixed held-out windows (never trained on)
    save_checkpoint / load_checkpoint / export_model (checkpoint.py)   files on disk
    train              the loop: progress bar, evaluation, checkpoints, Ctrl-C, NaN
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from corpora.common import UserError
from corpora.runtime import keep_freed_memory_for_reuse

from .backward import Params, model_forward_backward, model_loss, model_token_losses
from .checkpoint import CHECKPOINT_FILE, INIT_STD, export_model, load_checkpoint, save_checkpoint  # noqa: F401 (re-exported)
from .config import GPT2Config
from .copying import copy_means, training_copy_set
from .interrupt import ctrl_c_requests_stop
from .optim import adamw_update, clip_grad_norm, decays, global_norm, learning_rate  # noqa: F401 (re-exported)
from .weights import expected_shapes


@dataclass(frozen=True)
class TrainConfig:
    """Everything about training that is not the model's shape."""

    steps: int = 2000  # optimizer steps in all
    batch_size: int = 16  # sequences per step (B)
    ctx: int = 128  # tokens per sequence (T); at most the model's n_positions
    lr: float = 1e-3  # peak learning rate, reached at the end of warm-up
    min_lr_fraction: float = 0.1  # the cosine decays to lr * this at the last step
    warmup: int = 100  # steps of linear warm-up from 0 to lr
    weight_decay: float = 0.1  # decoupled, on 2-D tensors only (see the module docstring)
    beta1: float = 0.9
    beta2: float = 0.95
    adam_eps: float = 1e-8
    grad_clip: float = 1.0  # max global gradient norm (0 = no clipping)
    dropout: float = 0.0  # after the embedding, on attention weights, on both residual branches
    seed: int = 0  # initial weights, batch order and dropout all come from this seed
    eval_every: int = 100  # steps between held-out evaluations (and checkpoints)
    eval_batches: int = 4  # held-out batches per evaluation

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "ctx", "eval_every", "eval_batches"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise UserError(f"the learning rate must be a positive number, got {self.lr}")
        if self.warmup < 0 or self.weight_decay < 0 or self.grad_clip < 0:
            raise UserError("warmup, weight decay and gradient clipping must not be negative")
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


# ------------------------------------------------------------------ parameters


def init_params(config: GPT2Config, seed: int = 0, dtype: type = np.float32) -> Params:
    """Fresh weights, GPT-2's way, by Hugging Face name ("wte.weight", "h.0.ln_1.bias", ...).

    Matrices and embeddings are drawn from N(0, 0.02); the two projections that write
    into the residual stream (attn.c_proj, mlp.c_proj) from N(0, 0.02 / sqrt(2 n_layer)),
    so the stream's variance does not grow with depth. Biases start at 0, layer-norm
    gains at 1.
    """
    rng = np.random.default_rng(seed)
    params: Params = {}
    for name, shape in expected_shapes(config).items():
        if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
            params[name] = np.ones(shape, dtype)
        elif len(shape) == 1:
            params[name] = np.zeros(shape, dtype)
        else:
            std = INIT_STD
            if name.endswith("c_proj.weight"):
                std /= math.sqrt(2 * config.n_layer)
            params[name] = (rng.standard_normal(shape) * std).astype(dtype)
    return params


def count_params(config: GPT2Config) -> int:
    """How many numbers the model holds (the tied output layer counted once)."""
    return sum(int(np.prod(shape)) for shape in expected_shapes(config).values())


# -------------------------------------------------------------------- the data


@dataclass
class TokenData:
    """The corpus as token ids: `train` to learn from, `heldout` only to evaluate."""

    train: np.ndarray  # int32, documents joined with <|endoftext|>
    heldout: np.ndarray


def encode_corpus(train_texts: Iterator[str], heldout_texts: Iterator[str], tokenizer) -> TokenData:
    """Encode every document, each followed by <|endoftext|> so the model learns where books end."""

    def encode(texts: Iterator[str]) -> np.ndarray:
        ids: list[int] = []
        for text in texts:
            if text:
                ids.extend(tokenizer.encode_ordinary(text))
                if tokenizer.eot_id is not None:
                    ids.append(tokenizer.eot_id)
        return np.asarray(ids, dtype=np.int32)

    return TokenData(encode(train_texts), encode(heldout_texts))


def sample_batch(tokens: np.ndarray, batch_size: int, ctx: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """B windows at random offsets: inputs (B, T) and targets (B, T), the same shifted by one."""
    starts = rng.integers(0, len(tokens) - ctx, size=batch_size)
    windows = tokens[starts[:, None] + np.arange(ctx + 1)]
    return windows[:, :-1], windows[:, 1:]


def heldout_batches(tokens: np.ndarray, batch_size: int, ctx: int, max_batches: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Fixed, non-overlapping held-out windows (the same at every evaluation), at most
    `max_batches` batches spread evenly over the held-out text. A held-out text shorter
    than one window gives one shorter window; fewer than 2 tokens give none."""
    if len(tokens) < 2:
        return []
    ctx = min(ctx, len(tokens) - 1)
    available = (len(tokens) - 1) // ctx
    count = min(available, batch_size * max_batches)
    starts = np.linspace(0, available - 1, count).round().astype(np.int64) * ctx
    windows = tokens[starts[:, None] + np.arange(ctx + 1)]
    return [(w[:, :-1], w[:, 1:]) for w in np.array_split(windows, math.ceil(count / batch_size))]


def evaluate_copying(params: Params, config: GPT2Config, sequences: np.ndarray) -> tuple[float, float]:
    """Mean loss (nats per token) on the first and on the second copy of random sequences
    shown twice (`transformer.copying`): a model that has learned to copy from its context
    (induction heads) finds the second copy nearly free."""
    losses = model_token_losses(params, config, sequences[:, :-1], sequences[:, 1:])
    length = (sequences.shape[1] - 1) // 2
    first, second = zip(*(copy_means(row, length) for row in losses))
    return float(np.mean(first)), float(np.mean(second))


def evaluate(params: Params, config: GPT2Config, batches: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean loss per token (nats) over the held-out batches (no dropout, no gradients)."""
    total = sum(model_loss(params, config, x, y) * x.size for x, y in batches)
    return total / sum(x.size for x, _ in batches)


# ------------------------------------------------------------------ the state


@dataclass
class TrainState:
    """Everything that changes during training; saved whole in every checkpoint."""

    params: Params
    m: Params  # AdamW first moments
    v: Params  # AdamW second moments
    rng: np.random.Generator  # batch order and dropout
    step: int = 0  # optimizer steps done
    losses: list[float] = field(default_factory=list)  # training loss of every step
    evals: list[list] = field(default_factory=list)  # [step, held-out loss] pairs
    seconds: float = 0.0  # time spent training (not counting evaluation)
    tokens: int = 0  # tokens trained on
    copy_evals: list[list] = field(default_factory=list)  # [step, first-copy loss, second-copy loss]


def new_state(config: GPT2Config, tc: TrainConfig) -> TrainState:
    """Fresh weights (from tc.seed), zero optimizer moments, step 0."""
    params = init_params(config, tc.seed)
    zeros = {name: np.zeros_like(p) for name, p in params.items()}
    return TrainState(params, zeros, {n: z.copy() for n, z in zeros.items()},
                      np.random.default_rng([tc.seed, 1]))


def train_step(state: TrainState, config: GPT2Config, tc: TrainConfig, tokens: np.ndarray) -> tuple[float, float, float]:
    """Sample a batch, compute the gradients, clip, and take one AdamW step.

    Returns (loss, gradient norm before clipping, learning rate). A loss or gradient
    that is not finite raises NonFiniteLoss *before* any weight is changed.
    """
    x, y = sample_batch(tokens, tc.batch_size, tc.ctx, state.rng)
    loss, grads = model_forward_backward(state.params, config, x, y, tc.dropout, state.rng)
    norm = clip_grad_norm(grads, tc.grad_clip)
    if not (math.isfinite(loss) and math.isfinite(norm)):
        raise NonFiniteLoss(state.step + 1, loss if not math.isfinite(loss) else norm)
    lr = learning_rate(state.step, tc)
    adamw_update(state.params, grads, state.m, state.v, state.step + 1, lr, tc)
    state.step += 1
    state.losses.append(loss)
    state.tokens += x.size
    return loss, norm, lr


class NonFiniteLoss(Exception):
    """The loss (or the gradient) became NaN or infinite."""

    def __init__(self, step: int, value: float) -> None:
        super().__init__(f"the loss became {value} at step {step}")
        self.step = step
        self.value = value


class Interrupted(Exception):
    """Training stopped early on request (Ctrl-C); a checkpoint was saved first."""

    def __init__(self, step: int) -> None:
        super().__init__(f"interrupted after step {step}")
        self.step = step


# ------------------------------------------------------------------ the loop


def train(
    folder: Path,
    state: TrainState,
    config: GPT2Config,
    tc: TrainConfig,
    data: TokenData,
    record: dict,
    progress: bool = True,
    stop_requested: Callable[[TrainState], bool] | None = None,
    log: Callable[[str], None] | None = None,
) -> TrainState:
    """Train from `state` until tc.steps, evaluating and checkpointing every tc.eval_every
    steps and at the end. `record` (corpus, tokenizer, ...) goes into training.json.

    Ctrl-C (or `stop_requested(state)` returning True, for tests) saves a checkpoint
    after the current step and raises Interrupted. A NaN/inf loss raises UserError and
    leaves the last good checkpoint on disk untouched.
    """
    from tqdm import tqdm

    keep_freed_memory_for_reuse()
    log = log or (lambda text: tqdm.write(text, file=sys.stderr))
    eval_set = heldout_batches(data.heldout, tc.batch_size, tc.ctx, tc.eval_batches)
    copy_set = training_copy_set(config.vocab_size, record.get("eot_id"), min(tc.ctx, config.n_ctx))
    last_saved = state.step if (folder / CHECKPOINT_FILE).is_file() else None

    def checkpoint(with_eval: bool = True) -> None:
        nonlocal last_saved
        if with_eval and eval_set and (not state.evals or state.evals[-1][0] != state.step):
            state.evals.append([state.step, evaluate(state.params, config, eval_set)])
            log(f"step {state.step}: held-out loss {state.evals[-1][1]:.4f}")
        if with_eval and copy_set is not None and (not state.copy_evals or state.copy_evals[-1][0] != state.step):
            state.copy_evals.append([state.step, *evaluate_copying(state.params, config, copy_set)])
            log(f"step {state.step}: copying a random sequence: {state.copy_evals[-1][1]:.3f} nats/token "
                f"on the first copy, {state.copy_evals[-1][2]:.3f} on the second")
        save_checkpoint(folder, state, config, tc, record)
        last_saved = state.step

    bar = tqdm(total=tc.steps, initial=state.step, desc="training", unit=" steps",
               disable=not progress, file=sys.stderr, dynamic_ncols=True)
    try:
        with ctrl_c_requests_stop() as flag:
            while state.step < tc.steps:
                started = time.perf_counter()
                try:
                    loss, norm, lr = train_step(state, config, tc, data.train)
                except NonFiniteLoss as err:
                    kept = (f"the last good checkpoint (step {last_saved}) is kept in {folder}"
                            if last_saved is not None else "no checkpoint had been written yet")
                    raise UserError(
                        f"{err}; training stopped and {kept}. Try a smaller --lr (now {tc.lr:g}) "
                        "or a longer --warmup"
                    ) from None
                seconds = time.perf_counter() - started
                state.seconds += seconds
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tc.batch_size * tc.ctx / seconds:,.0f}",
                                lr=f"{lr:.2e}", refresh=False)
                if state.step % tc.eval_every == 0 or state.step == tc.steps:
                    checkpoint()
                if flag["stop"] or (stop_requested is not None and stop_requested(state)):
                    if last_saved != state.step:
                        checkpoint(with_eval=False)  # stop quickly; evaluations stay on schedule
                    raise Interrupted(state.step)
    finally:
        bar.close()
    if last_saved != state.step:
        checkpoint()
    return state
