"""GPT-2's forward pass as small pure NumPy functions, plus a key/value cache.

Read it top to bottom: each function is one idea from the paper.

    ids -> token embedding + position embedding            (embed)
        -> n_layer x transformer_block:                     (transformer_block)
               x = x + attention(layer_norm(x))             (causal_self_attention)
               x = x + mlp(layer_norm(x))                   (mlp, gelu)
        -> final layer_norm -> x @ wte.T = logits           (unembed)

Shapes: T = positions in this call, C = n_embd, H = n_head, D = C / H (head width),
V = vocabulary size, L = positions the attention can see (cached + new).

Batches. Every function works on the last one or two axes, so ids may also be a
(B, T) batch of equal-length sequences and every shape then gains a leading B: one
pass runs many short windows at once (scoring with a cut context does this). A batch
runs without a cache, or with a batched one (`KVCache.stack`, for branches).

The KV cache. When generating, the keys and values of earlier positions never change,
so we keep them: a `KVCache` is passed in and a new one is returned, and each step then
costs one position's work. It is a value: the cache you pass in is never changed, so
two calls on one cache are two independent branches (see KVCache for how that stays
free of copies while decoding). Pass `cache=None` for a one-off pass that keeps nothing
(scoring a text does this, and saves the cache's memory); pass `new_kv_cache(config)`
to start generating.

The tape. Training and inspection run this same forward pass with a `Tape`, which keeps
what each layer computed (what backward.py needs; the attention weights; the residual
stream) and applies dropout. Inference passes none and keeps nothing.

Inference and training are float32 (training's gradient check runs the same code in
float64). The concessions to speed, each in one place and each said where it is made:
element-wise passes run a cache-sized block of rows at a time and write into existing
arrays (`gelu`, `softmax`; kernels.py); the causal mask is written in place on the upper
triangle only (`mask_future`); attention works on blocks of query rows that see only
their visible keys and, at inference, leaves the softmax's division until after the
product with v (`attention`, `attend_last_rows`, `attention_kept`). transformer/reference.py
is the same model in plain NumPy with nothing done for speed, and
tests/test_transformer_kernels.py checks each kernel against its plain formula.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from corpora.common import UserError

from .config import GPT2Config
from .kernels import row_blocks, upper_triangle
from .weights import Block, LayerNormParams, Linear, Params, load_params, resolve_model_dir, tokenizer_files_present

if TYPE_CHECKING:
    from corpora.tokenizers.bpe import BPETokenizer

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)  # Python floats keep float32 arrays float32 (and float64 float64)
GELU_CUBIC = 0.044715
QUERY_BLOCK = 128  # inference's attention works on at most this many query rows at a time
SCORES_BYTES = 1 << 20  # ... and on (rows, L) scores of at most about this size (L2-resident)


# ------------------------------------------------------------------ the tape


@dataclass
class Tape:
    """What a forward pass saw and computed, kept for whoever asks: training keeps what
    each `*_backward` function needs (backward.py), inspection reads the attention
    weights and the residual stream. Without a tape (inference) nothing is kept.

    `saved` is a dict per layer function, nested as the calls are ("h.0" -> "ln_1" ->
    {"xhat": ..., "rstd": ...}). Dropout lives here too, as it only happens in training:
    `dropout` is the probability, `rng` draws the masks (which are saved as well).
    """

    dropout: float = 0.0
    rng: np.random.Generator | None = None
    saved: dict = field(default_factory=dict)

    def child(self, name: str) -> "Tape":
        """A tape for one part of the computation, saved under `name`."""
        part = Tape(self.dropout, self.rng)
        self.saved[name] = part.saved
        return part

    def keep(self, **arrays) -> None:
        self.saved.update(arrays)


def child(tape: Tape | None, name: str) -> Tape | None:
    """The part of the tape for a sub-computation (None when nothing is recorded)."""
    return None if tape is None else tape.child(name)


# -------------------------------------------------------------------- the pieces


def gelu(x: np.ndarray, tape: Tape | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """GPT-2's GELU, the tanh approximation:

        gelu(x) = 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x**3)))

    Roughly x for large positive x, 0 for large negative x, a smooth bend between.
    The backward pass needs x and the tanh.

    Speed: the formula is nine element-wise passes; they run a block of rows at a time
    (kernels.row_blocks), so only the first pass of a block reads memory and the other
    eight hit the L2 cache. `out` may be x itself (the MLP's inference path: its input is
    a temporary nobody reads again), which saves allocating the widest array of a block.
    """
    c = x.shape[-1]
    rows_x = x.reshape(-1, c)
    y = np.empty(x.shape, x.dtype) if out is None else out
    assert y.flags.c_contiguous and y.shape == x.shape, "out must be a contiguous array of x's shape"
    rows_y = y.reshape(-1, c)
    tanh = np.empty_like(rows_x) if tape is not None else None
    scratch = None
    for rows in row_blocks(rows_x.shape[0], c * x.itemsize):
        xb = rows_x[rows]
        if tanh is not None:
            t = tanh[rows]
        else:  # a reusable block-sized buffer (out may be x, so it cannot hold t)
            scratch = np.empty_like(xb) if scratch is None or scratch.shape != xb.shape else scratch
            t = scratch
        np.multiply(xb, xb, out=t)
        t *= GELU_CUBIC
        t += 1.0
        t *= xb
        t *= SQRT_2_OVER_PI  # sqrt(2/pi) * (x + 0.044715 x^3)
        np.tanh(t, out=t)
        yb = rows_y[rows]
        if tanh is not None:
            np.add(t, 1.0, out=yb)
            yb *= xb
            yb *= 0.5
        else:  # yb may be xb: read x before writing y
            t += 1.0
            t *= xb
            np.multiply(t, 0.5, out=yb)
    if tape is not None:
        tape.keep(x=x, tanh=tanh.reshape(x.shape))
    return y


def layer_norm(x: np.ndarray, p: LayerNormParams, eps: float, tape: Tape | None = None) -> np.ndarray:
    """Normalise each position's vector to mean 0 and variance 1 (xhat), then scale and
    shift: y = g * xhat + b. The backward pass needs xhat and 1/std.
    Without a tape, y is written over xhat (one array fewer)."""
    mean = np.add.reduce(x, axis=-1, keepdims=True)  # x.mean, without its Python-level wrapper
    mean /= x.shape[-1]
    xhat = x - mean
    rstd = np.add.reduce(np.square(xhat), axis=-1, keepdims=True)  # the variance (np.mean's arithmetic)
    rstd /= x.shape[-1]
    rstd += eps
    np.sqrt(rstd, out=rstd)
    np.divide(1.0, rstd, out=rstd)  # 1 / sqrt(variance + eps), in place
    xhat *= rstd
    if tape is None:
        y = xhat
        y *= p.g
    else:
        tape.keep(xhat=xhat, rstd=rstd)
        y = xhat * p.g
    y += p.b
    return y


def softmax(x: np.ndarray) -> np.ndarray:
    """exp(x) / sum(exp(x)) along the last axis, in place (subtracting the max first
    so exp never overflows; the result is unchanged by that shift).

    Speed: a block of rows at a time (kernels.row_blocks), so the five passes over a
    block after the first read it from cache; training's (B, H, T, T) scores are tens of
    MB, far more than any cache."""
    if not x.flags.c_contiguous:  # rows of a strided view cannot be flattened in place
        return softmax_rows(x)
    rows = x.reshape(-1, x.shape[-1])
    for block in row_blocks(rows.shape[0], rows.shape[1] * rows.itemsize):
        softmax_rows(rows[block])
    return x


def softmax_rows(x: np.ndarray) -> np.ndarray:
    """softmax's passes over one block of rows, in place."""
    x -= x.max(axis=-1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=-1, keepdims=True)
    return x


def linear(x: np.ndarray, p: Linear, tape: Tape | None = None) -> np.ndarray:
    """x @ w + b, with w stored input-major (see weights.py, the Conv1D question).

    Any leading axes (batch, positions) are flattened into one matrix product: BLAS
    does that far faster than the many small products a stacked `@` would make.
    The backward pass needs x."""
    if tape is not None:
        tape.keep(x=x)
    y = x.reshape(-1, x.shape[-1]) @ p.w
    y += p.b
    return y.reshape(*x.shape[:-1], y.shape[-1])


DROPOUT_LEVELS = 1 << 16  # dropout draws one random 16-bit number per element


def dropout(x: np.ndarray, tape: Tape | None, name: str) -> np.ndarray:
    """Training only: zero each element with probability p and scale the rest by
    1/(1-p), so the expected value is unchanged. The mask is saved as `name`.
    Without a tape, or with p = 0, x itself comes back.

    Each element gets a random 16-bit number u and is dropped when u < p·2^16 (p rounded
    to a multiple of 2^-16: 0.1 becomes 0.100006; the scale uses the rounded p). Drawing
    16-bit integers takes a third of the time of drawing floats, and the attention
    weights' dropout draws millions of them every step."""
    if tape is None or tape.dropout <= 0.0 or tape.rng is None:
        return x
    threshold = round(tape.dropout * DROPOUT_LEVELS)
    bits = tape.rng.integers(0, DROPOUT_LEVELS, size=x.shape, dtype=np.uint16)
    scale = DROPOUT_LEVELS / (DROPOUT_LEVELS - threshold)  # 1 / (1 - rounded p)
    keep = np.multiply(bits >= threshold, x.dtype.type(scale), dtype=x.dtype)  # 0, or the scale where kept
    tape.keep(**{name: keep})
    return x * keep


# ------------------------------------------------------------------ the KV cache


@dataclass(frozen=True)
class KVCache:
    """Keys and values of every position seen so far, for every layer and head: a value.

    A cache you hold never changes: `forward(ids, cache)` returns a new cache and leaves
    yours as it was, so branching is simply calling forward twice on one cache.

    How that stays fast. The arrays are buffers with room to spare, and a cache owns
    only their first `length` positions:

        keys, values: (n_layer, [B,] H, capacity, D); [..., :length, :] are this cache's

    A call writes its new positions just after `length` and returns a cache with a
    larger length over the *same* buffers, so decoding token by token never copies.
    The buffers carry one shared mark, `written`: how far anyone has written into them.
    If it is past our length, another cache already owns those positions (we are a
    branch point that was continued once before), so the call first copies our part
    into fresh buffers: copy-on-write, paid once per extra branch, never per token.

    Many branches at once (bench's word expansion): `as_prefix` starts an empty cache
    whose earlier positions are this one's, shared and never copied; `stack` puts such
    caches side by side as a (B, ...) batch, and `rows` splits one again. Attention over
    a prefix joins the attention scores, not the keys (see `attention_in_parts`).
    """

    keys: np.ndarray
    values: np.ndarray
    length: int = 0
    prefix: "KVCache | None" = None  # earlier positions, shared by every row of a batch
    written: list = field(default_factory=lambda: [0], repr=False, compare=False)

    @property
    def total(self) -> int:
        """Positions seen, the prefix's included: where the next position goes."""
        return self.length + (0 if self.prefix is None else self.prefix.total)

    @property
    def batch(self) -> tuple[int, ...]:
        """() for one sequence, (B,) for a batch of B rows."""
        return self.keys.shape[1:-3]

    def writable(self, n_new: int) -> "KVCache":
        """This cache over buffers where n_new positions may be written after `length`
        without changing any other holder's cache: the same buffers if nobody has written
        there yet (the usual case), else a copy of our part (copy-on-write)."""
        end = self.length + n_new
        if self.written[0] <= self.length and end <= self.keys.shape[-2]:
            self.written[0] = end
            return self
        shape = (*self.keys.shape[:-2], max(end, self.keys.shape[-2]), self.keys.shape[-1])
        keys, values = np.zeros(shape, self.keys.dtype), np.zeros(shape, self.values.dtype)
        keys[..., :self.length, :] = self.keys[..., :self.length, :]
        values[..., :self.length, :] = self.values[..., :self.length, :]
        return KVCache(keys, values, self.length, self.prefix, [end])

    def store(self, layer: int, k: np.ndarray, v: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Write one layer's new keys and values ([B,] H, T, D) after `length` (call
        `writable` first) and return every key and value this layer can now see, in
        parts: the prefix's, then ours."""
        end = self.length + k.shape[-2]
        self.keys[layer, ..., self.length:end, :] = k
        self.values[layer, ..., self.length:end, :] = v
        return self.grown(k.shape[-2]).parts(layer)

    def parts(self, layer: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """One layer's keys and values, the prefix's parts first (views, no copies)."""
        keys, values = self.prefix.parts(layer) if self.prefix is not None else ([], [])
        return [*keys, self.keys[layer, ..., :self.length, :]], [*values, self.values[layer, ..., :self.length, :]]

    def grown(self, n_new: int) -> "KVCache":
        """The same buffers owning n_new more positions (after `store` wrote them)."""
        return replace(self, length=self.length + n_new)

    def as_prefix(self) -> "KVCache":
        """An empty cache that continues this one: its positions come after ours, and
        ours are shared (not copied) by it and by every cache grown or stacked from it."""
        if self.batch:
            raise ValueError("only a single-sequence cache can be a shared prefix")
        shape = (self.keys.shape[0], *self.keys.shape[-3:-2], 0, self.keys.shape[-1])
        return KVCache(np.zeros(shape, self.keys.dtype), np.zeros(shape, self.values.dtype), 0, self)

    @staticmethod
    def stack(caches: "list[KVCache]") -> "KVCache":
        """One batched cache from single-sequence caches of one length over one prefix
        (their own positions are copied; the prefix is shared)."""
        first = caches[0]
        if any(c.prefix is not first.prefix or c.length != first.length or c.batch for c in caches):
            raise ValueError("only single-sequence caches of one length over one prefix stack together")
        keys = np.stack([c.keys[..., :c.length, :] for c in caches], axis=1)
        values = np.stack([c.values[..., :c.length, :] for c in caches], axis=1)
        return KVCache(keys, values, first.length, first.prefix, [first.length])

    def rows(self) -> "list[KVCache]":
        """A batched cache split into one cache per row (copies of the rows' own positions)."""
        return [KVCache(self.keys[:, row, ..., :self.length, :].copy(), self.values[:, row, ..., :self.length, :].copy(),
                        self.length, self.prefix, [self.length]) for row in range(self.batch[0])]


def new_kv_cache(config: GPT2Config) -> KVCache:
    """An empty cache with room for the whole context window."""
    shape = (config.n_layer, config.n_head, config.n_ctx, config.head_dim)
    return KVCache(np.zeros(shape, np.float32), np.zeros(shape, np.float32), 0)


# -------------------------------------------------------------------- attention


def split_heads(x: np.ndarray, n_head: int) -> np.ndarray:
    """(..., T, C) -> (..., H, T, D): each head looks at its own slice of the vector (a view)."""
    *batch, t, c = x.shape
    return x.reshape(*batch, t, n_head, c // n_head).swapaxes(-3, -2)


def merge_heads(x: np.ndarray) -> np.ndarray:
    """(..., H, T, D) -> (..., T, C): put the heads' outputs side by side again."""
    *batch, h, t, d = x.shape
    return x.swapaxes(-3, -2).reshape(*batch, t, h * d)


def causal_mask(n_new: int, n_seen: int) -> np.ndarray:
    """(T, L) additive mask: 0 where new position i may look at position j, -inf where
    j is in its future. The new positions are the last T of the L. (The readable form;
    `mask_future` applies the same mask in place.)"""
    offset = n_seen - n_new
    future = np.arange(n_seen)[None, :] > (offset + np.arange(n_new))[:, None]
    return np.where(future, np.float32(-np.inf), np.float32(0.0))


def mask_future(scores: np.ndarray) -> np.ndarray:
    """scores + causal_mask(T, L), in place: the T new positions are the last T of the L,
    so only the last T columns hold future positions, and there only the strict upper
    triangle. Writing -inf there touches T*T/2 elements instead of adding a whole (T, L)
    mask; a single newest position sees everything and needs nothing."""
    n_new = scores.shape[-2]
    if n_new > 1:
        np.copyto(scores[..., scores.shape[-1] - n_new:], -np.inf, where=upper_triangle(n_new))
    return scores


def attention_scores(q: np.ndarray, k: np.ndarray, tape: Tape | None = None) -> np.ndarray:
    """(..., H, T, D) queries, (..., H, L, D) keys -> (..., H, T, L) scores q k^T / sqrt(D).
    Scaling q is cheaper than scaling the scores; the backward pass needs the scaled q."""
    q = q * (1.0 / math.sqrt(q.shape[-1]))
    if tape is not None:
        tape.keep(q=q)
    return q @ k.swapaxes(-1, -2)


def masked_softmax(scores: np.ndarray) -> np.ndarray:
    """softmax(scores + causal mask), in place: the weights (..., H, T, L) with which each
    new position attends to each visible one. A single newest position may see everything."""
    return softmax(mask_future(scores))


def attention_weights(q: np.ndarray, k: np.ndarray, tape: Tape | None = None) -> np.ndarray:
    """(..., H, T, D) queries, (..., H, L, D) keys -> (..., H, T, L) weights: how much each
    new position attends to each visible one. softmax(q k^T / sqrt(D) + causal mask)."""
    return masked_softmax(attention_scores(q, k, tape))


def attend_last_rows(q: np.ndarray, k: np.ndarray, v: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Inference's attention kernel: softmax(q k^T + causal mask) @ v into `out` (..., b, D),
    for b queries (already scaled by 1/sqrt(D)) that are the last b of the L positions
    of k and v (..., L, D).

    The trick: the softmax is left unnormalised, exp(s - max), and the (b, D) result is
    divided by the row sums after the product with v, instead of dividing the (b, L)
    weights before it: D (64) is far smaller than L, so that saves one whole pass over
    the weights. The mask is written in place (mask_future)."""
    scores = q @ k.swapaxes(-1, -2)  # (..., b, L)
    mask_future(scores)
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    total = scores.sum(axis=-1, keepdims=True)
    np.matmul(scores, v, out=out)
    out /= total
    return out


def query_blocks(n_new: int, n_seen: int, block: int) -> Iterator[tuple[int, int, int]]:
    """(lo, hi, visible) for each block of `block` query rows: rows lo..hi-1 of the n_new
    new positions (the last n_new of the n_seen) see only the first `visible` keys; every
    later key is in the future of all of them, so its weight is 0 and needs no work."""
    for lo in range(0, n_new, block):
        hi = min(lo + block, n_new)
        yield lo, hi, n_seen - n_new + hi


def attention(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, block: int | None = None, tape: Tape | None = None
) -> np.ndarray:
    """Each query's weighted average of the values: attention_weights(q, k) @ v, (..., H, T, D).

    Without a tape (inference) it runs `attend_last_rows` on pieces whose (rows, L)
    scores stay in the L2 cache (SCORES_BYTES): all heads at once when that is small
    enough (decoding, short prompts), else one head and `block` (QUERY_BLOCK) query rows
    at a time, where a block only looks at the keys up to its own last position
    (query_blocks). Same result; it skips up to half the work and every pass over the
    scores hits the cache. With a tape, see `attention_kept`.
    """
    block = block or QUERY_BLOCK
    if tape is not None:
        return attention_kept(q, k, v, block, tape)
    n_new, n_seen = q.shape[-2], k.shape[-2]
    q = q * (1.0 / math.sqrt(q.shape[-1]))  # a contiguous copy: scaling q is cheaper than scaling scores
    out = np.empty(q.shape, q.dtype)
    heads = q.shape[:-2]
    if n_new <= block and math.prod(heads) * n_new * n_seen * q.itemsize <= SCORES_BYTES:
        return attend_last_rows(q, k, v, out)
    for head in np.ndindex(heads):
        for lo, hi, visible in query_blocks(n_new, n_seen, block):
            attend_last_rows(q[head][lo:hi], k[head][:visible], v[head][:visible], out[head][lo:hi])
    return out


def attention_kept(q: np.ndarray, k: np.ndarray, v: np.ndarray, block: int, tape: Tape) -> np.ndarray:
    """attention() for training and inspection: keeps q (scaled), k, v and the weights,
    `probs` (..., H, T, L) and `weights` after dropout, for backward.attention_backward.

    The weights are whole arrays, 0 where masked, but only each query block's visible
    keys are computed (query_blocks): the scores, the softmax and the product with v skip
    the masked part (almost half, for long inputs). Dropout draws its mask for the whole
    array, as it always has, so a seed gives the same masks."""
    q, k, v = np.ascontiguousarray(q), np.ascontiguousarray(k), np.ascontiguousarray(v)
    n_new, n_seen = q.shape[-2], k.shape[-2]
    q = q * (1.0 / math.sqrt(q.shape[-1]))  # as attention_scores: the backward pass needs the scaled q
    probs = np.zeros((*q.shape[:-1], n_seen), q.dtype)
    for lo, hi, visible in query_blocks(n_new, n_seen, block):
        part = probs[..., lo:hi, :visible]
        np.matmul(q[..., lo:hi, :], k[..., :visible, :].swapaxes(-1, -2), out=part)
        masked_softmax(part)
    weights = dropout(probs, tape, "dropout")
    out = np.empty(q.shape, q.dtype)
    for lo, hi, visible in query_blocks(n_new, n_seen, block):
        np.matmul(weights[..., lo:hi, :visible], v[..., :visible, :], out=out[..., lo:hi, :])
    tape.keep(q=q, k=k, v=v, probs=probs, weights=weights)
    return out


def attention_in_parts(q: np.ndarray, keys: list[np.ndarray], values: list[np.ndarray]) -> np.ndarray:
    """attention(q, k, v) when the keys and values come in parts (a prefix shared by every
    row of a batch, then each row's own): the scores of the parts are joined instead of
    the keys, so the shared part is never copied per row."""
    scores = np.concatenate([attention_scores(q, k) for k in keys], axis=-1)
    weights = masked_softmax(scores)
    bounds = np.cumsum([k.shape[-2] for k in keys])[:-1]
    return sum(w @ v for w, v in zip(np.split(weights, bounds, axis=-1), values))


def causal_self_attention(
    x: np.ndarray, block: Block, n_head: int, cache: KVCache | None = None, layer: int = 0,
    last_only: bool = False, tape: Tape | None = None,
) -> np.ndarray:
    """Multi-head causal self-attention for the T new positions in x (..., T, C).

    One matrix gives queries, keys and values for all heads at once. With a cache, the
    new keys and values are stored in it and the queries attend over everything cached
    so far; without one, over x alone. With last_only, only the last position asks
    (one query row): the output is (..., 1, C).
    """
    qkv = linear(x, block.c_attn, child(tape, "c_attn"))  # (..., T, 3C)
    c = qkv.shape[-1] // 3  # three slices (views; np.split costs more per call, which decoding feels)
    q, k, v = (split_heads(qkv[..., i * c:(i + 1) * c], n_head) for i in range(3))
    if last_only:
        q = q[..., -1:, :]
    if cache is None:
        out = attention(q, k, v, tape=child(tape, "attn"))
    else:
        keys, values = cache.store(layer, k, v)
        out = attention(q, keys[0], values[0]) if len(keys) == 1 else attention_in_parts(q, keys, values)
    return linear(merge_heads(out), block.attn_proj, child(tape, "attn_proj"))


def mlp(x: np.ndarray, block: Block, tape: Tape | None = None) -> np.ndarray:
    """Position-wise feed-forward network: widen 4x, GELU, project back."""
    widened = linear(x, block.c_fc, child(tape, "c_fc"))
    # without a tape nobody reads `widened` again, so GELU overwrites it (no new 4C array)
    hidden = gelu(widened, child(tape, "gelu"), out=widened if tape is None else None)
    return linear(hidden, block.mlp_proj, child(tape, "mlp_proj"))


def transformer_block(
    x: np.ndarray, block: Block, config: GPT2Config, cache: KVCache | None = None, layer: int = 0,
    last_only: bool = False, tape: Tape | None = None,
) -> np.ndarray:
    """Pre-norm residual block: x + attention(ln_1(x)), then x + mlp(ln_2(x)).

    last_only: every position still contributes its key and value, but only the last
    position's output (..., 1, C) is computed; in the last block, that is all the
    next-token prediction needs. In training, dropout follows each branch."""
    eps = config.layer_norm_epsilon
    normed = layer_norm(x, block.ln_1, eps, child(tape, "ln_1"))
    attended = causal_self_attention(normed, block, config.n_head, cache, layer, last_only, tape)
    x = (x[..., -1:, :] if last_only else x) + dropout(attended, tape, "attn_dropout")
    x += dropout(mlp(layer_norm(x, block.ln_2, eps, child(tape, "ln_2")), block, tape), tape, "mlp_dropout")
    return x


# --------------------------------------------------------------------- the model


def embed(ids: np.ndarray, params: Params, start: int) -> np.ndarray:
    """Token embedding plus the embedding of each position (start, start+1, ...):
    (..., T) ids -> (..., T, C)."""
    return params.wte[ids] + params.wpe[start:start + ids.shape[-1]]


def unembed(h: np.ndarray, params: Params) -> np.ndarray:
    """(..., C) final hidden states -> (..., V) logits, through the tied embedding wte.T."""
    return h @ params.wte.T


def cached_length(cache: KVCache | None) -> int:
    """Positions already in the cache (0 without one)."""
    return 0 if cache is None else cache.total


def check_ids(ids: np.ndarray, config: GPT2Config, cache: KVCache | None) -> np.ndarray:
    """Token ids as an int array, (T,) for one sequence or (B, T) for a batch of equal
    length ones, checked against the vocabulary, the window and the cache's batch."""
    ids = np.asarray(ids, dtype=np.int64)
    if ids.ndim == 0:
        ids = ids.reshape(1)
    if ids.ndim > 2:
        raise ValueError(f"token ids must be (T,) or (B, T); got shape {ids.shape}")
    if cache is not None and cache.batch != ids.shape[:-1]:
        if not cache.batch:
            raise ValueError("the KV cache holds one sequence: run a (B, T) batch without one")
        raise ValueError(f"a cache of {cache.batch[0]} rows needs ({cache.batch[0]}, T) ids; got shape {ids.shape}")
    if ids.size == 0:
        raise ValueError("no token ids to run")
    if ids.min() < 0 or ids.max() >= config.vocab_size:
        raise ValueError(f"token ids must be in [0, {config.vocab_size}); got {ids.min()}..{ids.max()}")
    n_new = ids.shape[-1]
    if cached_length(cache) + n_new > config.n_ctx:
        raise ValueError(
            f"{cached_length(cache)} cached + {n_new} new positions exceed the context window of {config.n_ctx}"
        )
    return ids


def gpt2_hidden(
    ids: np.ndarray, params: Params, config: GPT2Config, cache: KVCache | None = None, last_only: bool = False,
    tape: Tape | None = None,
) -> tuple[np.ndarray, KVCache | None]:
    """The one forward pass. Run the transformer on new token ids (T,), or a batch (B, T)
    (with a batched cache, or none); return (final hidden states (..., T, C) after ln_f,
    a new cache extended by T positions, or None when called without a cache). The
    cache passed in is left as it was. With last_only, the last block works out only
    the last position: h is then (..., 1, C). With a tape, what each layer computed is
    kept in it (training, inspection), and `tape.saved["residual"]` is the residual
    stream: x after the embedding and after each block."""
    ids = check_ids(ids, config, cache)
    start = cached_length(cache)
    if cache is not None:
        cache = cache.writable(ids.shape[-1])
    x = dropout(embed(ids, params, start), tape, "embed_dropout")
    residual = [x]
    for layer, block in enumerate(params.blocks):
        last = last_only and layer == config.n_layer - 1
        x = transformer_block(x, block, config, cache, layer, last, child(tape, f"h.{layer}"))
        residual.append(x)
    if tape is not None:
        tape.keep(residual=residual)
    h = layer_norm(x, params.ln_f, config.layer_norm_epsilon, child(tape, "ln_f"))
    return h, None if cache is None else cache.grown(ids.shape[-1])


def gpt2_forward(
    ids: np.ndarray,
    params: Params,
    config: GPT2Config,
    cache: KVCache | None = None,
    all_positions: bool = False,
) -> tuple[np.ndarray, KVCache | None]:
    """Logits for the new token ids and the extended cache (None if none was given).

    By default only the last position's logits (V,) are computed: that is all that
    generation needs, and the unembedding is the largest single matrix (the last block,
    too, then only works out the last position). With
    `all_positions=True` you get (T, V), one row per position, as scoring needs.
    A (B, T) batch of ids gives (B, V), or (B, T, V) with all_positions.
    """
    h, cache = gpt2_hidden(ids, params, config, cache, last_only=not all_positions)
    logits = unembed(h if all_positions else h[..., -1, :], params)
    return logits, cache


def residual_stream(ids: np.ndarray, params: Params, config: GPT2Config) -> list[np.ndarray]:
    """The residual stream x (T, C) after the embedding and after each block (n_layer + 1
    arrays; no ln_f applied), read from the one forward pass. The logit lens reads these."""
    tape = Tape()
    gpt2_hidden(ids, params, config, tape=tape)
    return tape.saved["residual"]


def attention_maps(ids: np.ndarray, params: Params, config: GPT2Config) -> np.ndarray:
    """Every layer's attention weights (n_layer, [B,] H, T, T), read from the one forward pass."""
    tape = Tape()
    gpt2_hidden(ids, params, config, tape=tape)
    return np.stack([tape.saved[f"h.{layer}"]["attn"]["probs"] for layer in range(config.n_layer)])


# ------------------------------------------------------------ a model you can hold


@dataclass(frozen=True)
class GPT2:
    """A loaded GPT-2: its config and weights, with the pure functions above as methods."""

    config: GPT2Config
    params: Params
    source: str = ""

    @classmethod
    def from_dir(cls, folder: str | Path) -> "GPT2":
        """Load config.json and memory-map model.safetensors from a folder."""
        config, params = load_params(folder)
        return cls(config, params, str(folder))

    def new_cache(self) -> KVCache:
        """An empty KV cache for this model."""
        return new_kv_cache(self.config)

    def forward(
        self, ids: np.ndarray, cache: KVCache | None = None, all_positions: bool = False
    ) -> tuple[np.ndarray, KVCache | None]:
        """See gpt2_forward: (last-position logits, or all with all_positions=True; cache)."""
        return gpt2_forward(ids, self.params, self.config, cache, all_positions)

    def hidden(
        self, ids: np.ndarray, cache: KVCache | None = None, last_only: bool = False, tape: Tape | None = None
    ) -> tuple[np.ndarray, KVCache | None]:
        """See gpt2_hidden: final hidden states (after ln_f; only the last position's
        with last_only) and the cache."""
        return gpt2_hidden(ids, self.params, self.config, cache, last_only, tape)

    def unembed(self, h: np.ndarray) -> np.ndarray:
        """Hidden states (after ln_f) -> logits."""
        return unembed(h, self.params)

    def residual_stream(self, ids: np.ndarray) -> list[np.ndarray]:
        """See residual_stream: x after the embedding and after each block."""
        return residual_stream(ids, self.params, self.config)

    def attention_maps(self, ids: np.ndarray) -> np.ndarray:
        """See attention_maps: every layer's attention weights."""
        return attention_maps(ids, self.params, self.config)

    def final_norm(self, x: np.ndarray) -> np.ndarray:
        """The final layer norm ln_f."""
        return layer_norm(x, self.params.ln_f, self.config.layer_norm_epsilon)


def load_tokenizer(folder: str | Path) -> "BPETokenizer":
    """The GPT-2 BPE tokenizer from a model folder (vocab.json+merges.txt or encoder.json+vocab.bpe)."""
    from corpora.tokenizers.bpe import BPETokenizer

    if not tokenizer_files_present(Path(folder)):
        raise UserError(f"{folder} has no tokenizer files (vocab.json + merges.txt, or encoder.json + vocab.bpe)")
    return BPETokenizer.from_dir(folder)


def load_model(name_or_dir: str | Path = "auto") -> "tuple[GPT2, BPETokenizer]":
    """Load a model and its tokenizer: "auto" (GPT-2 small if it can be had, else the bundled
    model, with a notice), "bundled", a folder, or a Hugging Face name ("gpt2").

    A name is fetched once into the Hugging Face cache; offline, the error says what to
    download and where to put it.
    """
    folder = resolve_model_dir(name_or_dir)
    model = GPT2.from_dir(folder)
    tokenizer = load_tokenizer(folder)
    if tokenizer.vocab_size > model.config.vocab_size:
        raise UserError(
            f"{folder}: the tokenizer has {tokenizer.vocab_size} tokens but the model only "
            f"{model.config.vocab_size} (config.json vocab_size)"
        )
    return model, tokenizer
