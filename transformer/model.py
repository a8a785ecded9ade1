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
pass runs many short windows at once (scoring with a cut context does this). The KV
cache holds a single sequence, so a batch runs without one.

The KV cache. When generating, the keys and values of earlier positions never change,
so we keep them: a `KVCache` is passed in and a new one is returned, and each step then
costs one position's work. It is an ordinary argument and return value, not hidden
state. For speed the arrays are preallocated for the whole context window and new
positions are written into them in place; the returned cache is the same buffers with
a larger `length`. An older cache stays valid for its own (shorter) length until the
positions after it are overwritten, so do not branch two continuations from one cache.
Pass `cache=None` for a one-off pass that keeps nothing (scoring a text does this, and
saves the cache's memory); pass `new_kv_cache(config)` to start generating.

Everything is float32; the hot loops write into existing arrays (`out=`) instead of
making new ones, which is the only concession to speed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from corpora.common import UserError

from .config import GPT2Config
from .weights import Block, LayerNormParams, Linear, Params, load_params, resolve_model_dir, tokenizer_files_present

if TYPE_CHECKING:
    from corpora.tokenizers.bpe import BPETokenizer

SQRT_2_OVER_PI = np.float32(np.sqrt(2.0 / np.pi))
QUERY_BLOCK = 256  # attention works on at most this many query rows at a time


# -------------------------------------------------------------------- the pieces


def gelu(x: np.ndarray) -> np.ndarray:
    """GPT-2's GELU, the tanh approximation, computed in place on `x`:

        gelu(x) = 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x**3)))

    Roughly x for large positive x, 0 for large negative x, a smooth bend between.
    """
    inner = x * x  # the only new array
    inner *= 0.044715
    inner += 1.0
    inner *= x
    inner *= SQRT_2_OVER_PI  # sqrt(2/pi) * (x + 0.044715 x^3)
    np.tanh(inner, out=inner)
    inner += 1.0
    x *= inner
    x *= 0.5
    return x


def layer_norm(x: np.ndarray, p: LayerNormParams, eps: float) -> np.ndarray:
    """Normalise each position's vector to mean 0 and variance 1, then scale and shift."""
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    variance = np.mean(np.square(centred), axis=-1, keepdims=True)
    centred *= 1.0 / np.sqrt(variance + eps)
    centred *= p.g
    centred += p.b
    return centred


def softmax(x: np.ndarray) -> np.ndarray:
    """exp(x) / sum(exp(x)) along the last axis, in place (subtracting the max first
    so exp never overflows; the result is unchanged by that shift)."""
    x -= x.max(axis=-1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=-1, keepdims=True)
    return x


def linear(x: np.ndarray, p: Linear) -> np.ndarray:
    """x @ w + b, with w stored input-major (see weights.py, the Conv1D question).

    Any leading axes (batch, positions) are flattened into one matrix product: BLAS
    does that far faster than the many small products a stacked `@` would make."""
    y = x.reshape(-1, x.shape[-1]) @ p.w
    y += p.b
    return y.reshape(*x.shape[:-1], y.shape[-1])


# ------------------------------------------------------------------ the KV cache


class KVCache(NamedTuple):
    """Keys and values of every position seen so far, for every layer and head.

    keys, values: (n_layer, H, n_ctx, D) buffers; only [:, :, :length] are filled.
    """

    keys: np.ndarray
    values: np.ndarray
    length: int


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
    j is in its future. The new positions are the last T of the L."""
    offset = n_seen - n_new
    future = np.arange(n_seen)[None, :] > (offset + np.arange(n_new))[:, None]
    return np.where(future, np.float32(-np.inf), np.float32(0.0))


def attention_weights(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    """(..., H, T, D) queries, (..., H, L, D) keys -> (..., H, T, L) weights: how much each
    new position attends to each visible one. softmax(q k^T / sqrt(D) + causal mask)."""
    scores = (q * np.float32(1.0 / np.sqrt(q.shape[-1]))) @ k.swapaxes(-1, -2)
    if q.shape[-2] > 1:  # a single newest position may see everything: no mask needed
        scores += causal_mask(q.shape[-2], k.shape[-2])
    return softmax(scores)


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, block: int | None = None) -> np.ndarray:
    """Each query's weighted average of the values: attention_weights(q, k) @ v, (..., H, T, D).

    Long inputs go QUERY_BLOCK query rows at a time, and a block only looks at the keys
    up to its own last position (later keys are masked out anyway). Same result; it
    skips up to half the work and keeps the (H, rows, L) weights small.
    """
    n_new, n_seen = q.shape[-2], k.shape[-2]
    block = block or QUERY_BLOCK
    if n_new <= block:
        return attention_weights(q, k) @ v
    out = np.empty(q.shape, np.float32)
    for lo in range(0, n_new, block):
        hi = min(lo + block, n_new)
        visible = n_seen - n_new + hi  # keys up to the block's last query position
        weights = attention_weights(q[..., lo:hi, :], k[..., :visible, :])
        np.matmul(weights, v[..., :visible, :], out=out[..., lo:hi, :])
    return out


def causal_self_attention(
    x: np.ndarray, block: Block, n_head: int, cache: KVCache | None, layer: int, last_only: bool = False
) -> np.ndarray:
    """Multi-head causal self-attention for the T new positions in x (..., T, C).

    One matrix gives queries, keys and values for all heads at once. With a cache, the
    new keys and values are written into it at positions [cache.length, cache.length + T)
    and the queries attend over everything cached so far; without one, over x alone.
    With last_only, only the last position asks (one query row): the output is (..., 1, C).
    """
    qkv = linear(x, block.c_attn)  # (..., T, 3C)
    q, k, v = (split_heads(part, n_head) for part in np.split(qkv, 3, axis=-1))
    if last_only:
        q = q[..., -1:, :]
    if cache is not None:  # a single sequence: (H, T, D)
        start, end = cache.length, cache.length + x.shape[-2]
        cache.keys[layer, :, start:end] = k
        cache.values[layer, :, start:end] = v
        k, v = cache.keys[layer, :, :end], cache.values[layer, :, :end]
    return linear(merge_heads(attention(q, k, v)), block.attn_proj)


def mlp(x: np.ndarray, block: Block) -> np.ndarray:
    """Position-wise feed-forward network: widen 4x, GELU, project back."""
    return linear(gelu(linear(x, block.c_fc)), block.mlp_proj)


def transformer_block(
    x: np.ndarray, block: Block, config: GPT2Config, cache: KVCache | None, layer: int, last_only: bool = False
) -> np.ndarray:
    """Pre-norm residual block: x + attention(ln_1(x)), then x + mlp(ln_2(x)).

    last_only: every position still contributes its key and value, but only the last
    position's output (..., 1, C) is computed; in the last block, that is all the
    next-token prediction needs."""
    eps = config.layer_norm_epsilon
    attention = causal_self_attention(layer_norm(x, block.ln_1, eps), block, config.n_head, cache, layer, last_only)
    x = (x[..., -1:, :] if last_only else x) + attention
    x += mlp(layer_norm(x, block.ln_2, eps), block)
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
    return 0 if cache is None else cache.length


def check_ids(ids: np.ndarray, config: GPT2Config, cache: KVCache | None) -> np.ndarray:
    """Token ids as an int array, (T,) for one sequence or (B, T) for a batch of equal
    length ones, checked against the vocabulary and the window."""
    ids = np.asarray(ids, dtype=np.int64)
    if ids.ndim == 0:
        ids = ids.reshape(1)
    if ids.ndim > 2:
        raise ValueError(f"token ids must be (T,) or (B, T); got shape {ids.shape}")
    if ids.ndim == 2 and cache is not None:
        raise ValueError("the KV cache holds one sequence: run a (B, T) batch without one")
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
    ids: np.ndarray, params: Params, config: GPT2Config, cache: KVCache | None = None, last_only: bool = False
) -> tuple[np.ndarray, KVCache | None]:
    """Run the transformer on new token ids (T,), or a batch (B, T) without a cache;
    return (final hidden states (..., T, C) after ln_f, the cache extended by T
    positions, or None when called without a cache). With last_only, the last block
    works out only the last position: h is then (..., 1, C)."""
    ids = check_ids(ids, config, cache)
    x = embed(ids, params, cached_length(cache))
    for layer, block in enumerate(params.blocks):
        x = transformer_block(x, block, config, cache, layer, last_only and layer == config.n_layer - 1)
    h = layer_norm(x, params.ln_f, config.layer_norm_epsilon)
    return h, None if cache is None else cache._replace(length=cache.length + ids.shape[-1])


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
    arrays; no ln_f applied). The logit lens reads these."""
    ids = check_ids(ids, config, None)
    states = [embed(ids, params, 0)]
    for layer, block in enumerate(params.blocks):
        states.append(transformer_block(states[-1], block, config, None, layer))
    return states


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
        self, ids: np.ndarray, cache: KVCache | None = None, last_only: bool = False
    ) -> tuple[np.ndarray, KVCache | None]:
        """See gpt2_hidden: final hidden states (after ln_f; only the last position's
        with last_only) and the cache."""
        return gpt2_hidden(ids, self.params, self.config, cache, last_only)

    def unembed(self, h: np.ndarray) -> np.ndarray:
        """Hidden states (after ln_f) -> logits."""
        return unembed(h, self.params)

    def residual_stream(self, ids: np.ndarray) -> list[np.ndarray]:
        """See residual_stream: x after the embedding and after each block."""
        return residual_stream(ids, self.params, self.config)

    def final_norm(self, x: np.ndarray) -> np.ndarray:
        """The final layer norm ln_f."""
        return layer_norm(x, self.params.ln_f, self.config.layer_norm_epsilon)


def load_tokenizer(folder: str | Path) -> "BPETokenizer":
    """The GPT-2 BPE tokenizer from a model folder (vocab.json+merges.txt or encoder.json+vocab.bpe)."""
    from corpora.tokenizers.bpe import BPETokenizer

    if not tokenizer_files_present(Path(folder)):
        raise UserError(f"{folder} has no tokenizer files (vocab.json + merges.txt, or encoder.json + vocab.bpe)")
    return BPETokenizer.from_dir(folder)


def load_model(name_or_dir: str | Path = "gpt2") -> "tuple[GPT2, BPETokenizer]":
    """Load a model and its tokenizer from a folder, or by Hugging Face name ("gpt2").

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
