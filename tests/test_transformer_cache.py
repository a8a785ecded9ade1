"""The KV cache is a value, and the blocked attention path equals the plain one.

Each test here was written against a planted bug: a cache shared between branches, an
off-by-one in the blocked attention path.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import transformer.model as model_module
from transformer.model import GPT2, KVCache, attention

TINY = Path(__file__).parent / "fixtures" / "gpt2-tiny"


@pytest.fixture(scope="module")
def tiny() -> GPT2:
    return GPT2.from_dir(TINY)


@pytest.fixture(scope="module")
def ids() -> np.ndarray:
    with np.load(TINY / "reference.npz", allow_pickle=False) as data:
        return data["full_ids"]


def fresh(model: GPT2, ids) -> np.ndarray:
    """All-position logits of one pass with no cache: the truth every cached run must equal."""
    logits, _ = model.forward(np.asarray(ids), all_positions=True)
    return logits


def test_branching_twice_from_one_cache_leaves_every_branch_correct(tiny, ids):
    prompt, a, b = ids[:10], ids[10:13], ids[20:24]
    _, held = tiny.forward(prompt, tiny.new_cache())
    first, cache_a = tiny.forward(a, held, all_positions=True)
    second, cache_b = tiny.forward(b, held, all_positions=True)  # a second branch from the same cache
    np.testing.assert_allclose(first, fresh(tiny, [*prompt, *a])[10:], atol=1e-5, rtol=0)
    np.testing.assert_allclose(second, fresh(tiny, [*prompt, *b])[10:], atol=1e-5, rtol=0)
    more_a, _ = tiny.forward(ids[25:27], cache_a, all_positions=True)  # continue the first branch
    np.testing.assert_allclose(more_a, fresh(tiny, [*prompt, *a, *ids[25:27]])[13:], atol=1e-5, rtol=0,
                               err_msg="the first branch was overwritten by the second")
    more_b, _ = tiny.forward(ids[27:29], cache_b, all_positions=True)  # and the second
    np.testing.assert_allclose(more_b, fresh(tiny, [*prompt, *b, *ids[27:29]])[14:], atol=1e-5, rtol=0)
    again, _ = tiny.forward(ids[29:31], cache_a, all_positions=True)  # the first branch once more
    np.testing.assert_allclose(again, fresh(tiny, [*prompt, *a, *ids[29:31]])[13:], atol=1e-5, rtol=0,
                               err_msg="continuing a branch changed the cache its holder keeps")
    assert held.length == 10 and cache_a.length == 13 and cache_b.length == 14


def test_a_held_cache_is_unchanged_by_later_calls(tiny, ids):
    _, held = tiny.forward(ids[:8], tiny.new_cache())
    before, _ = tiny.forward(ids[8:12], held, all_positions=True)
    cache = held
    for token in ids[12:20]:  # a long continuation, one token at a time, from the held cache
        _, cache = tiny.forward(np.array([token]), cache)
    for token in ids[20:23]:  # and another branch from the held cache
        _, other = tiny.forward(np.array([token]), held)
    after, _ = tiny.forward(ids[8:12], held, all_positions=True)
    np.testing.assert_array_equal(after, before)
    assert held.length == 8


def test_generation_steps_reuse_the_cache_buffer(tiny, ids):
    """Decoding one token at a time must not copy the cache each step (no O(T) copy per token)."""
    _, cache = tiny.forward(ids[:4], tiny.new_cache())
    first = cache
    for token in ids[4:12]:
        _, cache = tiny.forward(np.array([token]), cache)
    assert np.shares_memory(cache.keys, first.keys)


def random_qkv(rng, n_new: int, n_seen: int, heads: int = 2, width: int = 3):
    q = rng.standard_normal((heads, n_new, width)).astype(np.float32)
    k = rng.standard_normal((heads, n_seen, width)).astype(np.float32)
    v = rng.standard_normal((heads, n_seen, width)).astype(np.float32)
    return q, k, v


@pytest.mark.parametrize("n_new, n_seen, block", [(13, 13, 4), (13, 20, 4), (9, 9, 3), (7, 7, 1), (2, 11, 1)])
def test_blocked_attention_equals_the_unblocked(n_new, n_seen, block):
    q, k, v = random_qkv(np.random.default_rng(n_new * 100 + n_seen), n_new, n_seen)
    blocked = attention(q, k, v, block=block)
    plain = attention(q, k, v, block=n_new)
    np.testing.assert_allclose(blocked, plain, atol=1e-5, rtol=0)


def test_the_model_with_a_small_query_block_equals_the_fixture(tiny, ids, monkeypatch):
    expected = fresh(tiny, ids)
    monkeypatch.setattr(model_module, "QUERY_BLOCK", 5)
    np.testing.assert_allclose(fresh(tiny, ids), expected, atol=1e-5, rtol=0)
    _, cache = tiny.forward(ids[:3], tiny.new_cache())
    rest, _ = tiny.forward(ids[3:], cache, all_positions=True)  # blocks after cached positions
    np.testing.assert_allclose(rest, expected[3:], atol=1e-5, rtol=0)


def test_a_batch_of_branches_over_a_shared_prompt_equals_each_branch_alone(tiny, ids):
    prompt, branches = ids[:9], [ids[10:13], ids[20:23], ids[9:12]]
    _, held = tiny.forward(prompt, tiny.new_cache())
    root = held.as_prefix()
    rows = [tiny.forward(b[:2], root)[1] for b in branches]  # each branch's first two tokens alone
    logits, batched = tiny.forward(np.array([[b[2]] for b in branches]), KVCache.stack(rows))
    assert logits.shape == (3, tiny.config.vocab_size) and batched.batch == (3,)
    for row, branch, cache in zip(logits, branches, batched.rows()):
        np.testing.assert_allclose(row, fresh(tiny, [*prompt, *branch])[-1], atol=1e-5, rtol=0)
        assert cache.total == 12 and cache.prefix is held
    with pytest.raises(ValueError, match="rows"):
        tiny.forward(np.array([1]), batched)
