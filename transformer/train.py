"""Training a GPT-2-architecture model from scratch, in NumPy.

The recipe, one function each:

    init_params        GPT-2's initialisation: N(0, 0.02), residual projections scaled
                       down by sqrt(2 * n_layer), biases 0, layer-norm gains 1
    encode_corpus      the training and held-out text as token ids, <|endoftext|> between books
    sample_batch       B random windows of T+1 tokens: inputs and next-token targets
    model_forward_backward (backward.py)   the loss and every parameter's gradient
    clip_grad_norm     scale all gradients down together if their global norm is too big
    learning_rate      linear warm-up, then cosine decay to a tenth of the peak
    adamw_update       Adam with *decoupled* weight decay (Loshchilov & Hutter)
    evaluate           mean loss on fixed held-out windows (never trained on)
    save_checkpoint / load_checkpoint / export_model     files on disk
    train              the loop: progress bar, evaluation, checkpoints, Ctrl-C, NaN

Weight decay, the choice made here (nanoGPT's convention): every 2-D tensor decays
(the four matmul weights of each block, and the token and position embeddings; the
token embedding is also the tied output layer's matrix); biases and layer-norm
gains and shifts (1-D tensors) never decay.

Files in the output folder (Hugging Face GPT-2 layout, so `transformer.load_model`
and `transformers.GPT2LMHeadModel.from_pretrained` both read it unchanged):

    config.json             GPT2Config keys (model_type "gpt2", n_layer, n_head, ...)
    model.safetensors       "transformer.wte.weight", "transformer.h.0.attn.c_attn.weight", ...
    vocab.json, merges.txt  the BPE tokenizer
    training.json           hyper-parameters, the corpus and its split, losses, time
    checkpoint.safetensors  weights + AdamW moments; step, RNG state and history in its
                            metadata: everything `--resume` needs, in one atomic file

No pickle anywhere: tensors are safetensors, everything else JSON.
"""
from __future__ import annotations

import contextlib
import json
import math
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from corpora.common import UserError, atomic_write
from corpora.runtime import keep_freed_memory_for_reuse

from .backward import Params, model_forward_backward, model_loss
from .config import GPT2Config
from .weights import expected_shapes

CHECKPOINT_FILE = "checkpoint.safetensors"
CHECKPOINT_FORMAT = "trie-vs-transformer/train checkpoint v1"
INIT_STD = 0.02  # GPT-2's initializer_range


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


def decays(name: str, array: np.ndarray) -> bool:
    """Does weight decay apply to this tensor? Only to 2-D ones (matmul weights, embeddings)."""
    return array.ndim >= 2


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


def evaluate(params: Params, config: GPT2Config, batches: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean loss per token (nats) over the held-out batches (no dropout, no gradients)."""
    total = sum(model_loss(params, config, x, y) * x.size for x, y in batches)
    return total / sum(x.size for x, _ in batches)


# ------------------------------------------------------------------ optimising


def learning_rate(step: int, tc: TrainConfig) -> float:
    """The learning rate for step `step` (0-based): linear warm-up to tc.lr over
    tc.warmup steps, then half a cosine down to tc.lr * tc.min_lr_fraction at the end."""
    if step < tc.warmup:
        return tc.lr * (step + 1) / tc.warmup
    lowest = tc.lr * tc.min_lr_fraction
    progress = min(1.0, (step - tc.warmup) / max(1, tc.steps - tc.warmup))
    return lowest + 0.5 * (1.0 + math.cos(math.pi * progress)) * (tc.lr - lowest)


def global_norm(grads: Params) -> float:
    """sqrt of the sum of every squared gradient element: the length of the whole gradient."""
    return math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))


def clip_grad_norm(grads: Params, max_norm: float) -> float:
    """Scale all gradients by the same factor so their global norm is at most `max_norm`
    (in place, PyTorch's clip_grad_norm_ rule). Returns the norm before clipping."""
    norm = global_norm(grads)
    if max_norm > 0 and norm > max_norm:
        scale = max_norm / (norm + 1e-6)
        for g in grads.values():
            g *= scale
    return norm


def adamw_update(
    params: Params, grads: Params, m: Params, v: Params, step: int, lr: float, tc: TrainConfig
) -> None:
    """One AdamW step, in place, for optimizer step number `step` (1-based).

        p <- p - lr * weight_decay * p              (decoupled decay, 2-D tensors only)
        m <- beta1 m + (1 - beta1) g                (running mean of the gradient)
        v <- beta2 v + (1 - beta2) g^2              (running mean of its square)
        p <- p - lr * m_hat / (sqrt(v_hat) + eps)   (hats: divided by 1 - beta^step)
    """
    b1, b2 = tc.beta1, tc.beta2
    correction1 = 1.0 - b1**step
    sqrt_correction2 = math.sqrt(1.0 - b2**step)
    for name, p in params.items():
        g = grads[name]
        if tc.weight_decay and decays(name, p):
            p *= 1.0 - lr * tc.weight_decay
        m[name] *= b1
        m[name] += (1.0 - b1) * g
        v[name] *= b2
        v[name] += (1.0 - b2) * (g * g)
        denom = np.sqrt(v[name])
        denom *= 1.0 / sqrt_correction2
        denom += tc.adam_eps
        np.divide(m[name], denom, out=denom)
        denom *= lr / correction1
        p -= denom


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


# ------------------------------------------------------------------ files


def hf_config(config: GPT2Config, eot_id: int | None, dropout: float = 0.0) -> dict:
    """config.json in Hugging Face's GPT2Config format (transformers reads it unchanged)."""
    token = eot_id if eot_id is not None else config.vocab_size - 1
    return {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": dropout,
        "bos_token_id": token,
        "embd_pdrop": dropout,
        "eos_token_id": token,
        "initializer_range": INIT_STD,
        "layer_norm_epsilon": config.layer_norm_epsilon,
        "model_type": "gpt2",
        "n_ctx": config.n_ctx,
        "n_embd": config.n_embd,
        "n_head": config.n_head,
        "n_inner": None,
        "n_layer": config.n_layer,
        "n_positions": config.n_ctx,
        "reorder_and_upcast_attn": False,
        "resid_pdrop": dropout,
        "scale_attn_by_inverse_layer_idx": False,
        "scale_attn_weights": True,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
        "use_cache": True,
        "vocab_size": config.vocab_size,
    }


def write_json(path: Path, data: dict) -> None:
    """Pretty JSON, written atomically."""
    with atomic_write(path, "w") as handle:
        handle.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def save_tensors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """A safetensors file, written atomically (a crash leaves the previous file intact)."""
    from safetensors.numpy import save

    data = save({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}, metadata=metadata)
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def export_model(folder: Path, params: Params, config: GPT2Config, eot_id: int | None, dropout: float = 0.0) -> None:
    """Write config.json and model.safetensors with Hugging Face GPT2LMHeadModel names.

    The Conv1D matrices are stored input-major exactly as we use them (no transpose);
    the output layer is tied to wte, so there is no separate lm_head.weight. The
    metadata {"format": "pt"} is what transformers expects of a safetensors checkpoint.
    """
    save_tensors(folder / "model.safetensors", {"transformer." + k: v for k, v in params.items()}, {"format": "pt"})
    write_json(folder / "config.json", hf_config(config, eot_id, dropout))


def save_checkpoint(folder: Path, state: TrainState, config: GPT2Config, tc: TrainConfig, record: dict) -> None:
    """Write checkpoint.safetensors (everything to resume), then the exported model and
    training.json. Each file is replaced atomically."""
    tensors = {}
    for name in state.params:
        tensors["param." + name] = state.params[name]
        tensors["adam_m." + name] = state.m[name]
        tensors["adam_v." + name] = state.v[name]
    meta = {
        "format": CHECKPOINT_FORMAT,
        "step": state.step,
        "rng": state.rng.bit_generator.state,
        "losses": state.losses,
        "evals": state.evals,
        "seconds": state.seconds,
        "tokens": state.tokens,
        "model": config.to_dict(),
        "train": tc.to_dict(),
        "record": record,
    }
    save_tensors(folder / CHECKPOINT_FILE, tensors, {"format": "np", "trainer": json.dumps(meta)})
    export_model(folder, state.params, config, record.get("eot_id"), tc.dropout)
    write_json(folder / "training.json", training_summary(state, config, tc, record))


def training_summary(state: TrainState, config: GPT2Config, tc: TrainConfig, record: dict) -> dict:
    """training.json: how the model was made and how it went."""
    recent = state.losses[-50:]
    return {
        "model": {**config.to_dict(), "parameters": count_params(config)},
        "training": tc.to_dict(),
        "weight_decay_applies_to": "2-D tensors (matmul weights, wte, wpe); not biases or layer norms",
        "optimizer": "AdamW (decoupled weight decay)",
        "schedule": "linear warm-up, cosine decay to lr * min_lr_fraction",
        "steps_done": state.step,
        "tokens_seen": state.tokens,
        "seconds": round(state.seconds, 1),
        "tokens_per_second": round(state.tokens / state.seconds, 1) if state.seconds else None,
        "train_loss_last_50_mean": float(np.mean(recent)) if recent else None,
        "heldout_loss": state.evals[-1][1] if state.evals else None,
        "evals": state.evals,
        "train_losses_every_10_steps": [round(x, 4) for x in state.losses[::10]],
        **record,
    }


def load_checkpoint(folder: Path) -> tuple[TrainState, GPT2Config, TrainConfig, dict]:
    """Read checkpoint.safetensors: (state, model config, training config, record)."""
    from safetensors import safe_open

    path = Path(folder) / CHECKPOINT_FILE
    if not path.is_file():
        raise UserError(f"nothing to resume: {path} does not exist")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            meta = json.loads((handle.metadata() or {})["trainer"])
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (KeyError, json.JSONDecodeError, OSError, ValueError) as err:
        raise UserError(f"{path} is not a training checkpoint ({err})") from None
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path} is not a training checkpoint of this version")
    config = GPT2Config(**meta["model"])
    tc = TrainConfig.from_dict(meta["train"])

    def group(prefix: str) -> Params:
        return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

    rng = np.random.Generator(np.random.PCG64())
    rng.bit_generator.state = meta["rng"]
    state = TrainState(group("param."), group("adam_m."), group("adam_v."), rng, meta["step"],
                       meta["losses"], [list(e) for e in meta["evals"]], meta["seconds"], meta["tokens"])
    return state, config, tc, meta["record"]


# ------------------------------------------------------------------ the loop


@contextlib.contextmanager
def ctrl_c_requests_stop() -> Iterator[dict]:
    """While active, the first Ctrl-C only sets flag["stop"] (the loop then saves and
    stops cleanly); a second Ctrl-C interrupts at once."""
    flag = {"stop": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):  # noqa: ARG001 - signal handler signature
        flag["stop"] = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


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
    last_saved = state.step if (folder / CHECKPOINT_FILE).is_file() else None

    def checkpoint(with_eval: bool = True) -> None:
        nonlocal last_saved
        if with_eval and eval_set and (not state.evals or state.evals[-1][0] != state.step):
            state.evals.append([state.step, evaluate(state.params, config, eval_set)])
            log(f"step {state.step}: held-out loss {state.evals[-1][1]:.4f}")
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
