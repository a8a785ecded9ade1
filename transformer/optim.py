"""The optimiser: AdamW, its learning-rate schedule and gradient clipping.

    clip_grad_norm     scale all gradients down together if their global norm is too big
    learning_rate      linear warm-up, then cosine decay to a fraction of the peak
    adamw_update       Adam with *decoupled* weight decay (Loshchilov & Hutter)

Weight decay, the choice made here (nanoGPT's convention): every 2-D tensor decays
(the four matmul weights of each block, and the token and position embeddings; the
token embedding is also the tied output layer's matrix); biases and layer-norm
gains and shifts (1-D tensors) never decay.

The hyper-parameters come in `tc`, a train.TrainConfig (lr, warmup, steps,
min_lr_fraction, beta1, beta2, adam_eps, weight_decay).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .kernels import row_blocks

if TYPE_CHECKING:
    from .train import TrainConfig

Params = dict[str, np.ndarray]


def decays(name: str, array: np.ndarray) -> bool:
    """Does weight decay apply to this tensor? Only to 2-D ones (matmul weights, embeddings)."""
    return array.ndim >= 2


def learning_rate(step: int, tc: "TrainConfig") -> float:
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
    params: Params, grads: Params, m: Params, v: Params, step: int, lr: float, tc: "TrainConfig"
) -> None:
    """One AdamW step, in place, for optimizer step number `step` (1-based).

        p <- p - lr * weight_decay * p              (decoupled decay, 2-D tensors only)
        m <- beta1 m + (1 - beta1) g                (running mean of the gradient)
        v <- beta2 v + (1 - beta2) g^2              (running mean of its square)
        p <- p - lr * m_hat / (sqrt(v_hat) + eps)   (hats: divided by 1 - beta^step)

    Speed: each tensor goes a cache-sized block at a time (kernels.row_blocks) through
    one scratch buffer, so the dozen passes allocate nothing and mostly hit the cache.
    """
    b1, b2 = tc.beta1, tc.beta2
    correction1 = 1.0 - b1**step
    sqrt_correction2 = math.sqrt(1.0 - b2**step)
    for name, p in params.items():
        decay = 1.0 - lr * tc.weight_decay if tc.weight_decay and decays(name, p) else None
        arrays = (p, grads[name], m[name], v[name])
        if all(a.flags.c_contiguous for a in arrays):  # flat views, cut into blocks
            flat = [a.reshape(-1) for a in arrays]
            parts = [[a[block] for a in flat] for block in row_blocks(p.size, p.itemsize)]
        else:
            parts = [list(arrays)]
        scratch = np.empty(parts[0][0].shape, p.dtype)
        for pb, gb, mb, vb in parts:
            tmp = scratch[:pb.size].reshape(pb.shape)
            adamw_block(pb, gb, mb, vb, tmp, decay, b1, b2, lr / correction1, 1.0 / sqrt_correction2, tc.adam_eps)


def adamw_block(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, tmp: np.ndarray, decay: float | None,
                b1: float, b2: float, step_size: float, rescale_v: float, eps: float) -> None:
    """adamw_update's arithmetic on one block, in place; `tmp` is scratch of the block's shape."""
    if decay is not None:
        p *= decay
    m *= b1
    np.multiply(g, 1.0 - b1, out=tmp)
    m += tmp
    v *= b2
    np.multiply(g, g, out=tmp)
    tmp *= 1.0 - b2
    v += tmp
    np.sqrt(v, out=tmp)  # the denominator, sqrt(v_hat) + eps
    tmp *= rescale_v
    tmp += eps
    np.divide(m, tmp, out=tmp)
    tmp *= step_size
    p -= tmp
