"""GPT-2's forward pass for training, and its backward pass, one small function per layer.

Training needs two things the inference engine (model.py) does not:

1. **A batch.** Inputs are (B, T) token ids, B sequences of T positions; every
   activation carries that leading batch axis, so one matmul serves the whole batch.
2. **The chain rule.** Each `*_forward` function returns its output *and* a cache of
   what its backward step will need; each `*_backward` function takes the gradient of
   the loss with respect to its output (`dy`) and returns the gradients with respect
   to its inputs and its parameters. Read them in pairs.

    ids -> embedding_forward -> x                              (B, T, C)
        -> n_layer x block_forward:
               x = x + dropout(attn_proj(attention(c_attn(layer_norm(x)))))
               x = x + dropout(mlp_proj(gelu(c_fc(layer_norm(x)))))
        -> layer_norm (ln_f) -> h @ wte.T = logits             (B, T, V)
        -> cross_entropy -> loss (mean over the B*T positions)

`model_forward_backward` runs it all and returns the loss and a gradient for every
parameter, by the same names Hugging Face uses (see weights.py): "wte.weight",
"h.0.attn.c_attn.weight", ... Parameters live in a flat dict `{name: array}`.

Everything works in the parameters' dtype: float32 for training, float64 for the
finite-difference gradient check in the tests. The forward pass computes the same
function as `model.gpt2_forward` (the tests check this).
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

from .config import GPT2Config

Params = dict[str, np.ndarray]

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)  # a Python float keeps float32 arrays float32
GELU_CUBIC = 0.044715


# ------------------------------------------------------------------ embedding


def embedding_forward(ids: np.ndarray, wte: np.ndarray, wpe: np.ndarray) -> np.ndarray:
    """(B, T) ids -> (B, T, C): the token's row of wte plus the position's row of wpe."""
    return wte[ids] + wpe[: ids.shape[1]]


def embedding_backward(dx: np.ndarray, ids: np.ndarray, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of the two embedding tables.

    A row of wte receives the sum of dx over every place its token occurs. (The
    one-liner is `np.add.at(dwte, ids, dx)`; `dwte[ids] += dx` would be wrong, as it
    keeps only one of repeated ids. Sorting the ids and summing each run of equal ids
    with np.add.reduceat gives the same sums, faster.)
    A row of wpe receives the sum over the batch at its position.
    """
    c = dx.shape[-1]
    flat_ids = ids.reshape(-1)
    order = np.argsort(flat_ids, kind="stable")
    sorted_ids = flat_ids[order]
    run_starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    dwte = np.zeros((vocab_size, c), dx.dtype)
    dwte[sorted_ids[run_starts]] = np.add.reduceat(dx.reshape(-1, c)[order], run_starts, axis=0)
    dwpe = dx.sum(axis=0)  # (T, C); the caller pads it to n_positions rows
    return dwte, dwpe


# ----------------------------------------------------------------- layer norm


class LayerNormCache(NamedTuple):
    xhat: np.ndarray  # (x - mean) / std, before the scale and shift
    rstd: np.ndarray  # 1 / std, one per position (..., 1)


def layer_norm_forward(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float) -> tuple[np.ndarray, LayerNormCache]:
    """y = g * (x - mean) / sqrt(var + eps) + b, over the last axis."""
    mean = x.mean(axis=-1, keepdims=True)
    xhat = x - mean
    var = np.mean(np.square(xhat), axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(var + eps)
    xhat *= rstd
    return xhat * g + b, LayerNormCache(xhat, rstd)


def layer_norm_backward(
    dy: np.ndarray, cache: LayerNormCache, g: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns (dx, dg, db).

    With xhat = (x - mean) * rstd and dxhat = dy * g, the mean and the variance both
    depend on every element, which gives the two correction terms:

        dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
    """
    xhat, rstd = cache
    c = dy.shape[-1]
    dg = (dy * xhat).reshape(-1, c).sum(axis=0)
    db = dy.reshape(-1, c).sum(axis=0)
    dxhat = dy * g
    dx = dxhat - dxhat.mean(axis=-1, keepdims=True)
    dx -= xhat * np.mean(dxhat * xhat, axis=-1, keepdims=True)
    dx *= rstd
    return dx, dg, db


# --------------------------------------------------------------------- linear


def linear_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """y = x @ w + b, with w input-major (in, out) as GPT-2's Conv1D stores it."""
    y = x @ w
    y += b
    return y


def linear_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns (dx, dw, db): dx = dy @ w.T, dw = x.T @ dy (summed over all positions), db = sum(dy)."""
    n_in, n_out = w.shape
    dy2 = dy.reshape(-1, n_out)
    dw = x.reshape(-1, n_in).T @ dy2
    db = dy2.sum(axis=0)
    dx = dy @ w.T
    return dx, dw, db


# ----------------------------------------------------------------------- gelu


class GeluCache(NamedTuple):
    x: np.ndarray
    tanh: np.ndarray  # tanh(sqrt(2/pi) * (x + 0.044715 x^3))


def gelu_forward(x: np.ndarray) -> tuple[np.ndarray, GeluCache]:
    """GPT-2's GELU, the tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    t = x * x
    t *= GELU_CUBIC
    t += 1.0
    t *= x
    t *= SQRT_2_OVER_PI
    np.tanh(t, out=t)
    y = t + 1.0
    y *= x
    y *= 0.5
    return y, GeluCache(x, t)


def gelu_backward(dy: np.ndarray, cache: GeluCache) -> np.ndarray:
    """The slope of gelu, times dy. With t the tanh above and s = sqrt(2/pi),

        d gelu / dx = 0.5 (1 + t) + 0.5 x (1 - t^2) s (1 + 3 * 0.044715 x^2)
                    = 0.5 (1 + t) (1 + (1 - t) s x (1 + 3 * 0.044715 x^2))   as 1 - t^2 = (1 - t)(1 + t),

    and the second form needs fewer passes over the array.
    """
    x, t = cache
    slope = x * x
    slope *= 3.0 * GELU_CUBIC * SQRT_2_OVER_PI
    slope += SQRT_2_OVER_PI
    slope *= x  # s x (1 + 3 * 0.044715 x^2)
    other = 1.0 - t
    slope *= other
    slope += 1.0
    np.add(t, 1.0, out=other)
    slope *= other
    slope *= dy
    slope *= 0.5
    return slope


# -------------------------------------------------------------------- dropout


def dropout_forward(x: np.ndarray, p: float, rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Zero each element with probability p and scale the rest by 1/(1-p), so the
    expected value is unchanged. p = 0 (the default) returns x itself and no mask."""
    if p <= 0.0 or rng is None:
        return x, None
    keep = (rng.random(x.shape, dtype=np.float32) >= p).astype(x.dtype)
    keep *= 1.0 / (1.0 - p)
    return x * keep, keep


def dropout_backward(dy: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """The gradient flows only through the kept elements, with the same scale."""
    return dy if mask is None else dy * mask


# ------------------------------------------------------------------ attention


class AttentionCache(NamedTuple):
    q: np.ndarray  # (B, H, T, D), already divided by sqrt(D)
    k: np.ndarray
    v: np.ndarray
    weights: np.ndarray  # (B, H, T, T) softmax(q k^T / sqrt(D) + mask), after dropout
    dropout_mask: np.ndarray | None
    softmax: np.ndarray  # the weights before dropout (the same array when there is none)


def split_qkv(qkv: np.ndarray, n_head: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(B, T, 3C) -> q, k, v, each (B, H, T, D), contiguous for fast matmuls."""
    b, t, c3 = qkv.shape
    d = c3 // (3 * n_head)
    parts = qkv.reshape(b, t, 3, n_head, d).transpose(2, 0, 3, 1, 4)  # (3, B, H, T, D)
    return tuple(np.ascontiguousarray(part) for part in parts)  # type: ignore[return-value]


def merge_heads(x: np.ndarray) -> np.ndarray:
    """(B, H, T, D) -> (B, T, C): the heads side by side again."""
    b, h, t, d = x.shape
    return x.transpose(0, 2, 1, 3).reshape(b, t, h * d)


@functools.lru_cache(maxsize=8)
def causal_mask(t: int, dtype: np.dtype) -> np.ndarray:
    """(T, T) additive mask: 0 where position i may see position j (j <= i), -inf in its future."""
    future = np.triu(np.ones((t, t), dtype=bool), k=1)
    return np.where(future, -np.inf, 0.0).astype(dtype)


def causal_softmax(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis where position i sees only positions j <= i (in place)."""
    scores += causal_mask(scores.shape[-1], scores.dtype)
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores *= 1.0 / scores.sum(axis=-1, keepdims=True)
    return scores


def attention_forward(
    qkv: np.ndarray, n_head: int, dropout: float = 0.0, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, AttentionCache]:
    """Causal multi-head attention on (B, T, 3C) queries|keys|values -> (B, T, C)."""
    q, k, v = split_qkv(qkv, n_head)
    q *= 1.0 / math.sqrt(q.shape[-1])  # scaling q is cheaper than scaling the (T, T) scores
    probs = causal_softmax(q @ k.transpose(0, 1, 3, 2))
    weights, mask = dropout_forward(probs, dropout, rng)
    out = weights @ v  # (B, H, T, D)
    return merge_heads(out), AttentionCache(q, k, v, weights, mask, probs)


def softmax_backward(dp: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Through p = softmax(s): ds = p * (dp - sum(dp * p)) along the last axis (in place on dp).
    Masked (future) positions have p = 0, so they get no gradient."""
    dp -= np.einsum("...j,...j->...", dp, p)[..., None]
    dp *= p
    return dp


def attention_backward(dout: np.ndarray, cache: AttentionCache) -> np.ndarray:
    """(B, T, C) gradient of the attention output -> (B, T, 3C) gradient of q|k|v."""
    q, k, v, weights, mask, probs = cache
    b, h, t, d = q.shape
    dout = np.ascontiguousarray(dout.reshape(b, t, h, d).transpose(0, 2, 1, 3))  # (B, H, T, D)
    dv = weights.transpose(0, 1, 3, 2) @ dout
    dweights = dout @ v.transpose(0, 1, 3, 2)  # (B, H, T, T)
    dprobs = dropout_backward(dweights, mask)
    dscores = softmax_backward(dprobs, probs)  # gradient of q k^T / sqrt(D)
    dqkv = np.empty((b, t, 3, h, d), dout.dtype)  # laid out as the c_attn output
    dqkv[:, :, 0] = (dscores @ k).transpose(0, 2, 1, 3)
    dqkv[:, :, 0] *= 1.0 / math.sqrt(d)
    dqkv[:, :, 1] = (dscores.transpose(0, 1, 3, 2) @ q).transpose(0, 2, 1, 3)  # q holds the 1/sqrt(D)
    dqkv[:, :, 2] = dv.transpose(0, 2, 1, 3)
    return dqkv.reshape(b, t, 3 * h * d)


# ------------------------------------------------------------ lm head and loss


def cross_entropy_forward(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean of -log softmax(logits)[target] over all positions.

    `logits` (N, V) is overwritten with the softmax probabilities, which are returned
    for the backward step (saving one (N, V) array, the largest in the model).
    """
    n = logits.shape[0]
    logits -= logits.max(axis=-1, keepdims=True)
    picked = logits[np.arange(n), targets].astype(np.float64)
    np.exp(logits, out=logits)
    sums = logits.sum(axis=-1, keepdims=True)
    loss = float(np.mean(np.log(sums[:, 0].astype(np.float64)) - picked))
    logits /= sums
    return loss, logits


def cross_entropy_backward(probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """d mean(-log p[target]) / d logits = (softmax - one_hot(target)) / N (in place on probs)."""
    n = probs.shape[0]
    probs[np.arange(n), targets] -= 1.0
    probs *= 1.0 / n
    return probs


# ------------------------------------------------------------------ the block


class BlockCache(NamedTuple):
    ln_1: LayerNormCache
    ln_1_out: np.ndarray
    attn: AttentionCache
    attn_out: np.ndarray  # attention output before c_proj (B, T, C)
    attn_drop: np.ndarray | None
    ln_2: LayerNormCache
    ln_2_out: np.ndarray
    gelu: GeluCache
    gelu_out: np.ndarray
    mlp_drop: np.ndarray | None


def block_forward(
    x: np.ndarray, params: Params, layer: int, config: GPT2Config,
    dropout: float = 0.0, rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, BlockCache]:
    """One pre-norm transformer block: x + attention(ln_1(x)), then x + mlp(ln_2(x))."""
    p = f"h.{layer}."
    eps = config.layer_norm_epsilon
    ln_1_out, ln_1 = layer_norm_forward(x, params[p + "ln_1.weight"], params[p + "ln_1.bias"], eps)
    qkv = linear_forward(ln_1_out, params[p + "attn.c_attn.weight"], params[p + "attn.c_attn.bias"])
    attn_out, attn = attention_forward(qkv, config.n_head, dropout, rng)
    a = linear_forward(attn_out, params[p + "attn.c_proj.weight"], params[p + "attn.c_proj.bias"])
    a, attn_drop = dropout_forward(a, dropout, rng)
    x = x + a
    ln_2_out, ln_2 = layer_norm_forward(x, params[p + "ln_2.weight"], params[p + "ln_2.bias"], eps)
    hidden = linear_forward(ln_2_out, params[p + "mlp.c_fc.weight"], params[p + "mlp.c_fc.bias"])
    gelu_out, gelu = gelu_forward(hidden)
    m = linear_forward(gelu_out, params[p + "mlp.c_proj.weight"], params[p + "mlp.c_proj.bias"])
    m, mlp_drop = dropout_forward(m, dropout, rng)
    x += m
    return x, BlockCache(ln_1, ln_1_out, attn, attn_out, attn_drop, ln_2, ln_2_out, gelu, gelu_out, mlp_drop)


def block_backward(dx: np.ndarray, cache: BlockCache, params: Params, layer: int, grads: Params) -> np.ndarray:
    """Backward through one block: fills grads["h.{layer}.*"], returns the gradient of its input.

    The residual connections copy the gradient: dx flows straight through *and*
    into each branch, and the branch's input gradient is added back to it.
    """
    p = f"h.{layer}."
    # MLP branch: x + dropout(mlp_proj(gelu(c_fc(ln_2(x)))))
    dm = dropout_backward(dx, cache.mlp_drop)
    dgelu, grads[p + "mlp.c_proj.weight"], grads[p + "mlp.c_proj.bias"] = linear_backward(
        dm, cache.gelu_out, params[p + "mlp.c_proj.weight"])
    dhidden = gelu_backward(dgelu, cache.gelu)
    dln_2, grads[p + "mlp.c_fc.weight"], grads[p + "mlp.c_fc.bias"] = linear_backward(
        dhidden, cache.ln_2_out, params[p + "mlp.c_fc.weight"])
    dres, grads[p + "ln_2.weight"], grads[p + "ln_2.bias"] = layer_norm_backward(
        dln_2, cache.ln_2, params[p + "ln_2.weight"])
    dx = dx + dres
    # attention branch: x + dropout(attn_proj(attention(c_attn(ln_1(x)))))
    da = dropout_backward(dx, cache.attn_drop)
    dattn, grads[p + "attn.c_proj.weight"], grads[p + "attn.c_proj.bias"] = linear_backward(
        da, cache.attn_out, params[p + "attn.c_proj.weight"])
    dqkv = attention_backward(dattn, cache.attn)
    dln_1, grads[p + "attn.c_attn.weight"], grads[p + "attn.c_attn.bias"] = linear_backward(
        dqkv, cache.ln_1_out, params[p + "attn.c_attn.weight"])
    dres, grads[p + "ln_1.weight"], grads[p + "ln_1.bias"] = layer_norm_backward(
        dln_1, cache.ln_1, params[p + "ln_1.weight"])
    dx += dres
    return dx


# ------------------------------------------------------------------ the model


def model_forward(
    params: Params, config: GPT2Config, ids: np.ndarray,
    dropout: float = 0.0, rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, tuple]:
    """(B, T) ids -> (B, T, V) logits, and the caches the backward pass needs."""
    eps = config.layer_norm_epsilon
    x = embedding_forward(ids, params["wte.weight"], params["wpe.weight"])
    x, embd_drop = dropout_forward(x, dropout, rng)
    blocks = []
    for layer in range(config.n_layer):
        x, cache = block_forward(x, params, layer, config, dropout, rng)
        blocks.append(cache)
    h, ln_f = layer_norm_forward(x, params["ln_f.weight"], params["ln_f.bias"], eps)
    logits = h @ params["wte.weight"].T  # the LM head is tied to the token embedding
    return logits, (embd_drop, blocks, ln_f, h)


def model_loss(
    params: Params, config: GPT2Config, ids: np.ndarray, targets: np.ndarray,
) -> float:
    """Mean cross-entropy (nats per token) of predicting `targets` from `ids`, no gradients."""
    logits, _ = model_forward(params, config, ids)
    loss, _ = cross_entropy_forward(logits.reshape(-1, config.vocab_size), targets.reshape(-1))
    return loss


def model_forward_backward(
    params: Params, config: GPT2Config, ids: np.ndarray, targets: np.ndarray,
    dropout: float = 0.0, rng: np.random.Generator | None = None,
) -> tuple[float, Params]:
    """The loss on one batch and the gradient of every parameter (same names as `params`).

    ids, targets: (B, T) integer arrays; targets[b, t] is the token after ids[b, t].
    """
    b, t = ids.shape
    v = config.vocab_size
    logits, (embd_drop, blocks, ln_f, h) = model_forward(params, config, ids, dropout, rng)
    loss, probs = cross_entropy_forward(logits.reshape(b * t, v), targets.reshape(-1))

    grads: Params = {}
    dlogits = cross_entropy_backward(probs, targets.reshape(-1))  # (B*T, V)
    wte = params["wte.weight"]
    h2 = h.reshape(b * t, -1)
    dwte_head = dlogits.T @ h2  # the LM head's share of wte's gradient
    dh = (dlogits @ wte).reshape(b, t, -1)
    dx, grads["ln_f.weight"], grads["ln_f.bias"] = layer_norm_backward(dh, ln_f, params["ln_f.weight"])
    for layer in reversed(range(config.n_layer)):
        dx = block_backward(dx, blocks[layer], params, layer, grads)
    dx = dropout_backward(dx, embd_drop)
    dwte, dwpe = embedding_backward(dx, ids, v)
    dwte += dwte_head  # tied weights: the two uses' gradients add up
    grads["wte.weight"] = dwte
    full_dwpe = np.zeros_like(params["wpe.weight"])
    full_dwpe[:t] = dwpe
    grads["wpe.weight"] = full_dwpe
    return loss, grads
