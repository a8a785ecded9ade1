"""GPT-2's backward pass, one `*_backward` function per layer function of model.py.

The forward pass is model.py's, the one every caller runs. Training gives it a `Tape`
(model.Tape), on which each layer function keeps what its backward step needs, and
dropout. Read this file beside model.py: each function here starts from its forward
("the forward pass was y = ..."), then applies the chain rule to get the gradients
with respect to the inputs and parameters from `dy`, the gradient of the loss with
respect to the output y. As in llm.c's train_gpt2.c.

    ids -> embed -> x                                          (B, T, C)
        -> n_layer x transformer_block:
               x = x + dropout(attn_proj(attention(c_attn(layer_norm(x)))))
               x = x + dropout(mlp_proj(gelu(c_fc(layer_norm(x)))))
        -> layer_norm (ln_f) -> h @ wte.T = logits             (B, T, V)
        -> cross_entropy -> loss (mean over the B*T positions)

`model_forward_backward` runs it all and returns the loss and a gradient for every
parameter, by the same names Hugging Face uses (see weights.py): "wte.weight",
"h.0.attn.c_attn.weight", ... Training keeps its parameters in a flat dict
`{name: array}`; `assemble_params` gives the forward pass the same arrays (no copy).

Everything works in the parameters' dtype: float32 for training, float64 for the
finite-difference gradient check in the tests.
"""
from __future__ import annotations

import math

import numpy as np

from .config import GPT2Config
from . import model as model_module
from .kernels import row_blocks
from .model import Tape, gpt2_hidden, query_blocks, unembed
from .weights import assemble_params

Params = dict[str, np.ndarray]  # training's flat {Hugging Face name: array}

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)  # a Python float keeps float32 arrays float32
GELU_CUBIC = 0.044715


# ------------------------------------------------------------------ embedding


def embedding_backward(dx: np.ndarray, ids: np.ndarray, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The forward pass was x = wte[ids] + wpe[:T], so each row of wte receives the sum
    of dx over every place its token occurs, and each row of wpe the sum over the batch
    at its position. Returns (dwte, dwpe (T, C)).

    (The one-liner is `np.add.at(dwte, ids, dx)`; `dwte[ids] += dx` would be wrong, as it
    keeps only one of repeated ids. Sorting the ids and summing each run of equal ids
    with np.add.reduceat gives the same sums, faster.)
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


def layer_norm_backward(dy: np.ndarray, saved: dict, g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The forward pass was y = g * xhat + b with xhat = (x - mean) * rstd. Returns (dx, dg, db).

        db = sum of dy,  dg = sum of dy * xhat     (over all positions)
        dxhat = dy * g, and since the mean and the variance both depend on every
        element, dx gets two correction terms besides rstd * dxhat:

        dx = rstd * (dxhat  -  mean(dxhat)  -  xhat * mean(dxhat * xhat))
                     direct    via the mean    via the variance

    Speed: the two means are matrix-vector products, mean(dxhat) = dy @ g / C and
    mean(dxhat * xhat) = (dy * xhat) @ g / C, so dxhat * xhat is never formed; dy * xhat
    serves dg too. dy is consumed: dx is written over it (callers pass a temporary).
    """
    xhat, rstd = saved["xhat"], saved["rstd"]
    c = dy.shape[-1]
    dy_xhat = dy * xhat
    dg = dy_xhat.reshape(-1, c).sum(axis=0)
    db = dy.reshape(-1, c).sum(axis=0)
    mean_dxhat = (dy @ g)[..., None] * (1.0 / c)
    mean_dxhat_xhat = (dy_xhat @ g)[..., None] * (1.0 / c)
    dx = np.multiply(dy, g, out=dy)  # dxhat
    dx -= mean_dxhat
    np.multiply(xhat, mean_dxhat_xhat, out=dy_xhat)
    dx -= dy_xhat
    dx *= rstd
    return dx, dg, db


# --------------------------------------------------------------------- linear


def linear_backward(dy: np.ndarray, saved: dict, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The forward pass was y = x @ w + b, so dx = dy @ w.T, dw = x.T @ dy (summed over
    all positions) and db = sum of dy. Returns (dx, dw, db)."""
    x = saved["x"]
    n_in, n_out = w.shape
    dy2 = dy.reshape(-1, n_out)
    dw = x.reshape(-1, n_in).T @ dy2
    db = dy2.sum(axis=0)
    dx = dy @ w.T
    return dx, dw, db


# ----------------------------------------------------------------------- gelu


def gelu_backward(dy: np.ndarray, saved: dict) -> np.ndarray:
    """The forward pass was y = 0.5 x (1 + t), t = tanh(s (x + 0.044715 x^3)), s = sqrt(2/pi),
    so dx = dy * dy/dx with

        dy/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) s (1 + 3 * 0.044715 x^2)
              = 0.5 (1 + t) (1 + (1 - t) s x (1 + 3 * 0.044715 x^2))   as 1 - t^2 = (1 - t)(1 + t),

    and the second form needs fewer passes over the array. The passes run a block of
    rows at a time, in cache (kernels.row_blocks, as the forward gelu). dy is consumed:
    dx is written over it.
    """
    c = dy.shape[-1]
    x, t, dx = saved["x"].reshape(-1, c), saved["tanh"].reshape(-1, c), dy.reshape(-1, c)
    assert np.shares_memory(dx, dy)
    slope = other = None
    for rows in row_blocks(dx.shape[0], c * dx.itemsize):
        xb, tb, db = x[rows], t[rows], dx[rows]
        if slope is None or slope.shape != xb.shape:
            slope, other = np.empty_like(xb), np.empty_like(xb)
        np.multiply(xb, xb, out=slope)
        slope *= 3.0 * GELU_CUBIC * SQRT_2_OVER_PI
        slope += SQRT_2_OVER_PI
        slope *= xb  # s x (1 + 3 * 0.044715 x^2)
        np.subtract(1.0, tb, out=other)
        slope *= other
        slope += 1.0
        np.add(tb, 1.0, out=other)
        slope *= other
        slope *= db
        np.multiply(slope, 0.5, out=db)
    return dy


# -------------------------------------------------------------------- dropout


def dropout_backward(dy: np.ndarray, mask: np.ndarray | None, out: np.ndarray | None = None) -> np.ndarray:
    """The forward pass was y = x * mask (mask: 0, or 1/(1-p) for kept elements), so
    dx = dy * mask: the gradient flows only through the kept elements, with the same scale.
    `out=dy` works in place when the caller owns dy."""
    return dy if mask is None else np.multiply(dy, mask, out=out)


# ------------------------------------------------------------------ attention


def softmax_backward(dp: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The forward pass was p = softmax(s), so ds = p * (dp - sum(dp * p)) along the last
    axis (in place on dp). Masked (future) positions have p = 0, so they get no gradient.
    A block of rows at a time, so the second and third passes read from cache."""
    n = dp.shape[-1]
    if not (dp.flags.c_contiguous and p.flags.c_contiguous):  # strided views: the whole at once
        dp -= np.einsum("...j,...j->...", dp, p)[..., None]
        dp *= p
        return dp
    rows_dp, rows_p = dp.reshape(-1, n), p.reshape(-1, n)
    for rows in row_blocks(rows_dp.shape[0], n * dp.itemsize):
        d, pb = rows_dp[rows], rows_p[rows]
        d -= np.einsum("ij,ij->i", d, pb)[:, None]
        d *= pb
    return dp


def attention_backward(dout: np.ndarray, saved: dict) -> np.ndarray:
    """(B, T, C) gradient of the attention output (heads merged) -> (B, T, 3C) gradient of
    the c_attn output q|k|v.

    In the forward pass this was, per head:
        scores = (q / sqrt(D)) @ k.T          (q was scaled first; the tape holds it scaled)
        probs = softmax(scores + causal mask)
        weights = dropout(probs)
        out = weights @ v
    so, going back up:
        dv = weights.T @ dout,  dweights = dout @ v.T
        dprobs = dropout_backward(dweights),  dscores = softmax_backward(dprobs)
        dk = dscores.T @ (q / sqrt(D)),  dq = (dscores @ k) / sqrt(D)

    As in the forward pass (model.attention_kept), a block of query rows at a time, over
    only the keys it can see (model.query_blocks): the weights and their gradients are 0
    beyond them. dv and dk collect each block's share.
    """
    q, k, v, weights, probs = saved["q"], saved["k"], saved["v"], saved["weights"], saved["probs"]
    mask = saved.get("dropout")
    b, h, t, d = q.shape
    dout = np.ascontiguousarray(dout.reshape(b, t, h, d).transpose(0, 2, 1, 3))  # (B, H, T, D)
    dq, dk, dv = np.empty_like(q), np.zeros_like(k), np.zeros_like(v)
    for lo, hi, visible in query_blocks(t, k.shape[-2], model_module.QUERY_BLOCK):
        dout_rows = dout[..., lo:hi, :]
        dv[..., :visible, :] += weights[..., lo:hi, :visible].swapaxes(-1, -2) @ dout_rows
        dweights = dout_rows @ v[..., :visible, :].swapaxes(-1, -2)  # (B, H, rows, visible)
        dprobs = dropout_backward(dweights, None if mask is None else mask[..., lo:hi, :visible], out=dweights)
        dscores = softmax_backward(dprobs, probs[..., lo:hi, :visible])  # gradient of q k^T / sqrt(D)
        np.matmul(dscores, k[..., :visible, :], out=dq[..., lo:hi, :])
        dk[..., :visible, :] += dscores.swapaxes(-1, -2) @ q[..., lo:hi, :]  # q holds the 1/sqrt(D)
    dq *= 1.0 / math.sqrt(d)
    dqkv = np.empty((b, t, 3, h, d), dout.dtype)  # laid out as the c_attn output
    dqkv[:, :, 0] = dq.transpose(0, 2, 1, 3)
    dqkv[:, :, 1] = dk.transpose(0, 2, 1, 3)
    dqkv[:, :, 2] = dv.transpose(0, 2, 1, 3)
    return dqkv.reshape(b, t, 3 * h * d)


# ------------------------------------------------------------ lm head and loss


def token_nll(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """-log softmax(logits)[target] for every row of `logits` (N, V), in float64.

    `logits` is overwritten with the softmax probabilities (cross_entropy_backward reuses
    them: the (N, V) array is the largest in the model). A block of rows at a time, so
    the passes after the first read from cache.
    """
    n = logits.shape[0]
    nll = np.empty(n, np.float64)  # -log p[target] per position
    for rows in row_blocks(n, logits.shape[1] * logits.itemsize):
        part = logits[rows]
        part -= part.max(axis=-1, keepdims=True)
        picked = part[np.arange(part.shape[0]), targets[rows]].astype(np.float64)
        np.exp(part, out=part)
        sums = part.sum(axis=-1, keepdims=True)
        nll[rows] = np.log(sums[:, 0].astype(np.float64)) - picked
        part /= sums
    return nll


def cross_entropy(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """The loss, forward: mean of -log softmax(logits)[target] over all positions
    (`token_nll`); returns it and the probabilities left in `logits`, for the backward."""
    return float(np.mean(token_nll(logits, targets))), logits


def cross_entropy_backward(probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The forward pass was loss = mean over N of -log p[target], p = softmax(logits), so
    dlogits = (p - one_hot(target)) / N (in place on probs)."""
    n = probs.shape[0]
    probs[np.arange(n), targets] -= 1.0
    probs *= 1.0 / n
    return probs


# ------------------------------------------------------------------ the block


def residual_branch_backward(dx: np.ndarray, saved: dict, params: Params, grads: Params, p: str,
                             names: tuple[str, str, str, str], middle_backward, middle: str) -> np.ndarray:
    """Backward through one residual branch of a block; returns what the branch adds to dx.

    Both branches of a GPT-2 block have one shape: x + dropout(proj(middle(fc(ln(x))))),
    where middle is attention (fc = c_attn) or gelu (fc = c_fc). So, from the top: undo
    the dropout, then the projection, the middle, the input linear and the layer norm.
    `names` = (dropout, ln, fc, proj) as the forward pass saved them and the checkpoint
    names their weights.
    """
    dropout, ln, fc, proj = names
    d = dropout_backward(dx, saved.get(f"{dropout}_dropout"))
    d, grads[f"{p}{proj}.weight"], grads[f"{p}{proj}.bias"] = linear_backward(
        d, saved[f"{dropout}_proj"], params[f"{p}{proj}.weight"])
    d = middle_backward(d, saved[middle])
    d, grads[f"{p}{fc}.weight"], grads[f"{p}{fc}.bias"] = linear_backward(
        d, saved[fc.rsplit(".", 1)[-1]], params[f"{p}{fc}.weight"])
    d, grads[f"{p}{ln}.weight"], grads[f"{p}{ln}.bias"] = layer_norm_backward(d, saved[ln], params[f"{p}{ln}.weight"])
    return d


def block_backward(dx: np.ndarray, saved: dict, params: Params, layer: int, grads: Params) -> np.ndarray:
    """Backward through one block: fills grads["h.{layer}.*"], returns the gradient of its input.

    The forward pass was x = x + dropout(attention branch), then x = x + dropout(MLP
    branch). A residual connection copies the gradient: dx flows straight through *and*
    into the branch, and the branch's input gradient is added back to it — last branch first.
    """
    p = f"h.{layer}."
    # MLP branch: x + dropout(mlp.c_proj(gelu(mlp.c_fc(ln_2(x)))))
    dx = dx + residual_branch_backward(dx, saved, params, grads, p, ("mlp", "ln_2", "mlp.c_fc", "mlp.c_proj"),
                                       gelu_backward, "gelu")
    # attention branch: x + dropout(attn.c_proj(attention(attn.c_attn(ln_1(x)))))
    dx += residual_branch_backward(dx, saved, params, grads, p, ("attn", "ln_1", "attn.c_attn", "attn.c_proj"),
                                   attention_backward, "attn")
    return dx


# ------------------------------------------------------------------ the model


def model_forward(
    params: Params, config: GPT2Config, ids: np.ndarray,
    dropout: float = 0.0, rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, Tape]:
    """(B, T) ids -> (B, T, V) logits through model.py's forward pass, and its tape (what
    the backward pass needs)."""
    tape, weights = Tape(dropout, rng), assemble_params(params, config)
    h, _ = gpt2_hidden(ids, weights, config, tape=tape)
    tape.keep(h=h)
    return unembed(h, weights), tape


def model_token_losses(params: Params, config: GPT2Config, ids: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(B, T) losses in nats of predicting each of `targets` from `ids`, no gradients."""
    weights = assemble_params(params, config)
    h, _ = gpt2_hidden(ids, weights, config)
    return token_nll(unembed(h, weights).reshape(-1, config.vocab_size), targets.reshape(-1)).reshape(targets.shape)


def model_loss(params: Params, config: GPT2Config, ids: np.ndarray, targets: np.ndarray) -> float:
    """Mean cross-entropy (nats per token) of predicting `targets` from `ids`, no gradients."""
    return float(np.mean(model_token_losses(params, config, ids, targets)))


def model_forward_backward(
    params: Params, config: GPT2Config, ids: np.ndarray, targets: np.ndarray,
    dropout: float = 0.0, rng: np.random.Generator | None = None,
) -> tuple[float, Params]:
    """The loss on one batch and the gradient of every parameter (same names as `params`).

    ids, targets: (B, T) integer arrays; targets[b, t] is the token after ids[b, t].
    """
    b, t = ids.shape
    v = config.vocab_size
    logits, tape = model_forward(params, config, ids, dropout, rng)
    loss, probs = cross_entropy(logits.reshape(b * t, v), targets.reshape(-1))

    grads: Params = {}
    dlogits = cross_entropy_backward(probs, targets.reshape(-1))  # (B*T, V)
    wte, saved = params["wte.weight"], tape.saved
    dwte_head = dlogits.T @ saved["h"].reshape(b * t, -1)  # the LM head's share of wte's gradient
    dh = (dlogits @ wte).reshape(b, t, -1)
    dx, grads["ln_f.weight"], grads["ln_f.bias"] = layer_norm_backward(dh, saved["ln_f"], params["ln_f.weight"])
    for layer in reversed(range(config.n_layer)):
        dx = block_backward(dx, saved[f"h.{layer}"], params, layer, grads)
    dx = dropout_backward(dx, saved.get("embed_dropout"))
    dwte, dwpe = embedding_backward(dx, ids, v)
    dwte += dwte_head  # tied weights: the two uses' gradients add up
    grads["wte.weight"] = dwte
    full_dwpe = np.zeros_like(params["wpe.weight"])
    full_dwpe[:t] = dwpe
    grads["wpe.weight"] = full_dwpe
    return loss, grads
