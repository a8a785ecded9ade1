"""The fast kernels of model.py and backward.py against their plain formulas.

Each kernel works in blocks of rows, in place, or leaves a division until later; each
test shrinks the block size (kernels.BLOCK_BYTES, model.SCORES_BYTES) so several blocks
run, and compares with the formula written out in full.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from transformer import kernels
from transformer import model as model_module
from transformer.backward import (
    cross_entropy, gelu_backward, layer_norm_backward, softmax_backward,
)
from transformer.kernels import row_blocks, upper_triangle
from transformer.model import Tape, attention, causal_mask, dropout, gelu, layer_norm, mask_future, softmax
from transformer.weights import LayerNormParams

S, A = math.sqrt(2 / math.pi), 0.044715


@pytest.fixture
def small_blocks(monkeypatch):
    """A few rows per block, so every kernel runs many blocks (and a ragged last one)."""
    monkeypatch.setattr(kernels, "BLOCK_BYTES", 3 * 4 * 37)
    monkeypatch.setattr(model_module, "SCORES_BYTES", 4 * 64)


def rng_array(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def plain_attention(q, k, v):
    """softmax(q k^T / sqrt(D) + causal mask) @ v, with the new positions the last T of the L."""
    scores = q.astype(np.float64) @ k.astype(np.float64).swapaxes(-1, -2) / math.sqrt(q.shape[-1])
    scores = scores + causal_mask(q.shape[-2], k.shape[-2])
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return (weights / weights.sum(axis=-1, keepdims=True)) @ v.astype(np.float64)


def test_row_blocks_cover_every_row_once_within_the_budget():
    assert list(row_blocks(5, 100_000, 250_000)) == [slice(0, 2), slice(2, 4), slice(4, 5)]
    assert list(row_blocks(3, 10**9, 1000)) == [slice(0, 1), slice(1, 2), slice(2, 3)]  # at least a row
    covered = np.concatenate([np.arange(10)[s] for s in row_blocks(10, 12, 40)])
    np.testing.assert_array_equal(covered, np.arange(10))


def test_upper_triangle_is_the_strict_upper_triangle_and_read_only():
    np.testing.assert_array_equal(upper_triangle(4), np.triu(np.ones((4, 4), bool), 1))
    assert not upper_triangle(4).flags.writeable


@pytest.mark.parametrize("n_new, n_seen", [(1, 1), (1, 7), (5, 5), (3, 8)])
def test_mask_future_in_place_equals_adding_the_causal_mask(n_new, n_seen):
    scores = rng_array(2, 3, n_new, n_seen)
    expected = scores + causal_mask(n_new, n_seen)
    np.testing.assert_array_equal(mask_future(scores), expected)


@pytest.mark.parametrize("shape", [(3, 9, 9, 8), (2, 3, 9, 9, 8), (3, 4, 11, 8), (3, 1, 11, 8), (3, 17, 17, 8)])
@pytest.mark.parametrize("blocked", [False, True])
def test_inference_attention_equals_the_plain_formula(shape, blocked, monkeypatch):
    *heads, n_new, n_seen, d = shape
    q = rng_array(*heads, n_new, d, seed=1)
    k, v = rng_array(*heads, n_seen, d, seed=2), rng_array(*heads, n_seen, d, seed=3)
    if blocked:  # per head, query blocks of 4 rows, each only up to its own last key
        monkeypatch.setattr(model_module, "SCORES_BYTES", 4)
        monkeypatch.setattr(model_module, "QUERY_BLOCK", 4)
    out = attention(q, k, v)
    assert out.dtype == np.float32 and out.shape == q.shape
    np.testing.assert_allclose(out, plain_attention(q, k, v), atol=2e-6, rtol=0)


def test_attention_over_strided_views_of_one_qkv_matrix():
    qkv = rng_array(13, 3 * 16, seed=4)
    q, k, v = (model_module.split_heads(part, 2) for part in np.split(qkv, 3, axis=-1))
    np.testing.assert_allclose(attention(q, k, v, block=5), plain_attention(q, k, v), atol=2e-6, rtol=0)


def test_gelu_in_blocks_and_in_place_equals_the_formula(small_blocks):
    x = rng_array(2, 7, 12) * 3
    expected = 0.5 * x * (1 + np.tanh(S * (x + A * x**3)))
    np.testing.assert_allclose(gelu(x), expected, atol=1e-6, rtol=0)
    tape = Tape()
    np.testing.assert_array_equal(gelu(x, tape), gelu(x))
    np.testing.assert_allclose(tape.saved["tanh"], np.tanh(S * (x + A * x**3)), atol=1e-6, rtol=0)
    assert tape.saved["x"] is x
    inplace = x.copy()
    assert gelu(inplace, out=inplace) is inplace
    np.testing.assert_array_equal(inplace, gelu(x))


def test_softmax_in_blocks_equals_the_formula_also_on_a_strided_view(small_blocks):
    x = rng_array(4, 9, 10) * 5
    expected = np.exp(x - x.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    np.testing.assert_allclose(softmax(x.copy()), expected, atol=1e-7, rtol=0)
    view = x.copy().swapaxes(0, 1)  # not contiguous: done whole, still in place
    assert softmax(view) is view
    np.testing.assert_allclose(view, expected.swapaxes(0, 1), atol=1e-7, rtol=0)


def test_layer_norm_without_and_with_a_tape_equals_the_formula():
    x, g, b = rng_array(3, 5, 16), rng_array(16, seed=1), rng_array(16, seed=2)
    xhat = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    tape = Tape()
    for y in (layer_norm(x, LayerNormParams(g, b), 1e-5), layer_norm(x, LayerNormParams(g, b), 1e-5, tape)):
        np.testing.assert_allclose(y, g * xhat + b, atol=1e-5, rtol=0)
    np.testing.assert_allclose(tape.saved["xhat"], xhat, atol=1e-5, rtol=0)


def test_layer_norm_backward_equals_the_textbook_form():
    xhat, rstd = rng_array(2, 6, 16, dtype=np.float64), np.abs(rng_array(2, 6, 1, seed=1, dtype=np.float64)) + 0.5
    dy, g = rng_array(2, 6, 16, seed=2, dtype=np.float64), rng_array(16, seed=3, dtype=np.float64)
    dxhat = dy * g
    expected = rstd * (dxhat - dxhat.mean(-1, keepdims=True) - xhat * (dxhat * xhat).mean(-1, keepdims=True))
    dx, dg, db = layer_norm_backward(dy.copy(), {"xhat": xhat, "rstd": rstd}, g)
    np.testing.assert_allclose(dx, expected, atol=1e-12, rtol=0)
    np.testing.assert_allclose(dg, (dy * xhat).sum((0, 1)), atol=1e-12, rtol=0)
    np.testing.assert_allclose(db, dy.sum((0, 1)), atol=1e-12, rtol=0)


def test_gelu_backward_in_blocks_equals_the_derivative(small_blocks):
    x, dy = rng_array(3, 5, 12, dtype=np.float64) * 3, rng_array(3, 5, 12, seed=1, dtype=np.float64)
    t = np.tanh(S * (x + A * x**3))
    slope = 0.5 * (1 + t) + 0.5 * x * (1 - t**2) * S * (1 + 3 * A * x**2)
    np.testing.assert_allclose(gelu_backward(dy.copy(), {"x": x, "tanh": t}), dy * slope, atol=1e-12, rtol=0)


def test_softmax_backward_in_blocks_equals_the_jacobian_product(small_blocks):
    s = rng_array(2, 3, 7, 7, dtype=np.float64)
    p = np.exp(s) / np.exp(s).sum(-1, keepdims=True)
    dp = rng_array(2, 3, 7, 7, seed=1, dtype=np.float64)
    jacobian = np.einsum("...ij,jk->...ijk", p, np.eye(7)) - p[..., :, None] * p[..., None, :]  # d p_j / d s_k
    expected = np.einsum("...ij,...ijk->...ik", dp, jacobian)
    np.testing.assert_allclose(softmax_backward(dp.copy(), p), expected, atol=1e-12, rtol=0)


def test_cross_entropy_in_blocks_equals_the_formula(small_blocks):
    logits = rng_array(9, 11, dtype=np.float64) * 4
    targets = np.random.default_rng(1).integers(0, 11, 9)
    log_p = logits - logits.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    loss, probs = cross_entropy(logits.copy(), targets)
    assert loss == pytest.approx(-log_p[np.arange(9), targets].mean(), abs=1e-12)
    np.testing.assert_allclose(probs, np.exp(log_p), atol=1e-12, rtol=0)


def test_dropout_draws_the_same_mask_as_the_plain_formula():
    x = rng_array(4, 50)
    tape = Tape(0.25, np.random.default_rng(3))
    y = dropout(x, tape, "mask")
    bits = np.random.default_rng(3).integers(0, 2**16, size=x.shape, dtype=np.uint16)
    expected_mask = np.where(bits < 0.25 * 2**16, 0.0, 1 / 0.75)  # 0.25 is a multiple of 2^-16: no rounding
    np.testing.assert_allclose(tape.saved["mask"], expected_mask, rtol=1e-7)
    np.testing.assert_allclose(y, x * expected_mask, rtol=1e-7)
    assert 0.2 < (expected_mask == 0).mean() < 0.3


def test_dropout_keeps_the_expected_value_with_a_rounded_probability():
    """p = 0.1 is rounded to 6554 / 2^16; kept elements are scaled by the rounded p's 1/(1-p)."""
    x = np.ones((400, 500), np.float32)
    y = dropout(x, Tape(0.1, np.random.default_rng(5)), "mask")
    assert np.unique(y).tolist() == pytest.approx([0.0, 65536 / (65536 - 6554)])
    assert y.mean() == pytest.approx(1.0, abs=0.005) and (y == 0).mean() == pytest.approx(0.1, abs=0.005)


def test_adamw_in_blocks_equals_the_formula(small_blocks):
    from transformer.optim import adamw_update
    from transformer.train import TrainConfig

    tc = TrainConfig(weight_decay=0.1, beta1=0.9, beta2=0.95, adam_eps=1e-8)
    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal((7, 9)), "b": rng.standard_normal(9)}  # 2-D decays, 1-D does not
    grads = {k: rng.standard_normal(p.shape) for k, p in params.items()}
    m = {k: rng.standard_normal(p.shape) for k, p in params.items()}
    v = {k: rng.random(p.shape) for k, p in params.items()}
    step, lr = 3, 0.01
    expected = {}
    for k, p in params.items():
        new_m = 0.9 * m[k] + 0.1 * grads[k]
        new_v = 0.95 * v[k] + 0.05 * grads[k] ** 2
        decayed = p * (1 - lr * 0.1) if p.ndim == 2 else p
        expected[k] = decayed - lr * (new_m / (1 - 0.9**step)) / (np.sqrt(new_v / (1 - 0.95**step)) + 1e-8)
    adamw_update(params, grads, m, v, step, lr, tc)
    for k in params:
        np.testing.assert_allclose(params[k], expected[k], atol=1e-12, rtol=0, err_msg=k)


@pytest.mark.parametrize("dropout_p", [0.0, 0.3])
def test_training_attention_in_query_blocks_equals_it_whole(dropout_p, monkeypatch):
    """Forward and backward skip the masked keys block by block; loss and every gradient
    are those of the whole computation (float64, blocks of 2 rows over 7 positions)."""
    from transformer.backward import model_forward_backward
    from transformer.config import GPT2Config
    from transformer.train import init_params

    config = GPT2Config(n_layer=2, n_head=2, n_embd=8, n_ctx=8, vocab_size=11)
    params = init_params(config, seed=1, dtype=np.float64)
    rng = np.random.default_rng(2)
    ids, targets = rng.integers(0, 11, (2, 7)), rng.integers(0, 11, (2, 7))

    def run():
        return model_forward_backward(params, config, ids, targets, dropout_p, np.random.default_rng(9))

    whole_loss, whole = run()
    monkeypatch.setattr(model_module, "QUERY_BLOCK", 2)
    blocked_loss, blocked = run()
    assert blocked_loss == pytest.approx(whole_loss, abs=1e-12)
    for name in whole:
        np.testing.assert_allclose(blocked[name], whole[name], atol=1e-12, rtol=0, err_msg=name)


def test_float32_in_float32_out_no_silent_upcasts():
    """Every array the forward pass keeps and every gradient stays float32 (a float64
    constant or temporary would double the memory traffic of every pass it touches)."""
    from transformer.backward import model_forward, model_forward_backward
    from transformer.config import GPT2Config
    from transformer.train import init_params

    config = GPT2Config(n_layer=1, n_head=2, n_embd=8, n_ctx=8, vocab_size=11)
    params = init_params(config, seed=0)
    ids = np.random.default_rng(0).integers(0, 11, (2, 6))
    logits, tape = model_forward(params, config, ids, 0.1, np.random.default_rng(1))

    def arrays(saved):
        for value in saved.values():
            if isinstance(value, dict):
                yield from arrays(value)
            elif isinstance(value, list):
                yield from value
            else:
                yield value

    assert logits.dtype == np.float32
    assert {a.dtype for a in arrays(tape.saved)} == {np.dtype(np.float32)}
    _, grads = model_forward_backward(params, config, ids, ids, 0.1, np.random.default_rng(1))
    assert {g.dtype for g in grads.values()} == {np.dtype(np.float32)}
