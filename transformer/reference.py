"""GPT-2's forward pass in plain NumPy, for reading: the reference model.py must agree with.

The whole model in the fewest ideas, picoGPT-style: one sequence, no KV cache, no
batching, no blocking, nothing in place, float64 throughout. Parameters are the
checkpoint's tensors by their Hugging Face names ("wte.weight", "h.0.attn.c_attn.weight",
...; see weights.py). Shapes: T positions, C = n_embd, H heads, V vocabulary.
tests/test_transformer_reference.py checks that model.gpt2_forward gives the same logits.
"""
from __future__ import annotations

import numpy as np

from .config import GPT2Config


def gelu(x):
    """GPT-2's GELU (the tanh approximation)."""
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def softmax(x):
    """exp(x) / sum(exp(x)) over the last axis (less the max, so exp cannot overflow)."""
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def layer_norm(x, g, b, eps):  # [T, C] -> [T, C]
    """Each position's vector to mean 0 and variance 1, then scaled by g and shifted by b."""
    mean = np.mean(x, axis=-1, keepdims=True)
    variance = np.var(x, axis=-1, keepdims=True)
    return g * (x - mean) / np.sqrt(variance + eps) + b


def linear(x, w, b):  # [T, n_in] @ [n_in, n_out] + [n_out] -> [T, n_out]
    """GPT-2 stores w input-major (Conv1D), so no transpose."""
    return x @ w + b


def attention(q, k, v, mask):  # [T, D], [T, D], [T, D], [T, T] -> [T, D]
    """Each position's average of the values, weighted by how well its query matches each key."""
    return softmax(q @ k.T / np.sqrt(q.shape[-1]) + mask) @ v


def mha(x, p, prefix, n_head):  # [T, C] -> [T, C]
    """Causal multi-head self-attention."""
    qkv = linear(x, p[prefix + "c_attn.weight"], p[prefix + "c_attn.bias"])  # [T, 3C]
    q, k, v = np.split(qkv, 3, axis=-1)  # 3 x [T, C]
    heads = zip(*(np.split(part, n_head, axis=-1) for part in (q, k, v)))  # H x (q, k, v), each [T, D]
    mask = (1 - np.tri(x.shape[0])) * -1e10  # [T, T]: a large negative number above the diagonal
    out = np.hstack([attention(qh, kh, vh, mask) for qh, kh, vh in heads])  # [T, C]
    return linear(out, p[prefix + "c_proj.weight"], p[prefix + "c_proj.bias"])  # [T, C]


def ffn(x, p, prefix):  # [T, C] -> [T, C]
    """Position-wise feed-forward network: widen to 4C, GELU, back to C."""
    hidden = gelu(linear(x, p[prefix + "c_fc.weight"], p[prefix + "c_fc.bias"]))  # [T, 4C]
    return linear(hidden, p[prefix + "c_proj.weight"], p[prefix + "c_proj.bias"])  # [T, C]


def transformer_block(x, p, layer, config):  # [T, C] -> [T, C]
    """Pre-norm residual block: x + attention(ln_1(x)), then x + mlp(ln_2(x))."""
    h, eps = f"h.{layer}.", config.layer_norm_epsilon
    x = x + mha(layer_norm(x, p[h + "ln_1.weight"], p[h + "ln_1.bias"], eps), p, h + "attn.", config.n_head)
    x = x + ffn(layer_norm(x, p[h + "ln_2.weight"], p[h + "ln_2.bias"], eps), p, h + "mlp.")
    return x


def gpt2(ids, p, config: GPT2Config):  # [T] -> [T, V]
    """Logits for every position of one sequence of token ids."""
    p = {name: np.asarray(array, np.float64) for name, array in p.items()}
    x = p["wte.weight"][ids] + p["wpe.weight"][: len(ids)]  # [T, C]
    for layer in range(config.n_layer):
        x = transformer_block(x, p, layer, config)  # [T, C]
    x = layer_norm(x, p["ln_f.weight"], p["ln_f.bias"], config.layer_norm_epsilon)  # [T, C]
    return x @ p["wte.weight"].T  # [T, V]: the output layer is the token embedding, tied
