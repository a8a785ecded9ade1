"""Our NumPy GPT-2 against Hugging Face's, on recorded fixtures (tests/fixtures/)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transformer.model import GPT2, gelu, layer_norm, load_model, softmax
from transformer.sample import generate
from transformer.weights import LayerNormParams

FIXTURES = Path(__file__).parent / "fixtures"
TINY = FIXTURES / "gpt2-tiny"
VOCAB = FIXTURES / "gpt2-vocab"


@pytest.fixture(scope="module")
def tiny() -> GPT2:
    return GPT2.from_dir(TINY)


@pytest.fixture(scope="module")
def tiny_ref() -> dict:
    with np.load(TINY / "reference.npz", allow_pickle=False) as data:
        return dict(data)


@pytest.fixture(scope="module")
def vocab_model():
    return load_model(str(VOCAB))


@pytest.fixture(scope="module")
def vocab_ref() -> tuple[dict, dict]:
    with np.load(VOCAB / "reference.npz", allow_pickle=False) as data:
        arrays = dict(data)
    return arrays, json.loads((VOCAB / "reference.json").read_text(encoding="utf-8"))


def hf_style_hidden(model: GPT2, ids: np.ndarray) -> list[np.ndarray]:
    """Hugging Face's hidden_states: embeddings, each block's output, ln_f on the last."""
    states = model.residual_stream(ids)
    states[-1] = model.final_norm(states[-1])
    return states


def test_gelu_matches_formula_and_known_values():
    x = np.array([-3.0, -1.0, 0.0, 0.5, 2.0], np.float32)
    expected = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(gelu(x.copy()), expected, atol=1e-7)
    assert gelu(np.array([0.0], np.float32))[0] == 0.0
    assert abs(gelu(np.array([1.0], np.float32))[0] - 0.841192) < 1e-5


def test_layer_norm_and_softmax():
    x = np.array([[1.0, 2.0, 3.0, 6.0]], np.float32)
    out = layer_norm(x, LayerNormParams(np.ones(4, np.float32), np.zeros(4, np.float32)), 1e-5)
    assert abs(out.mean()) < 1e-6 and abs(out.var() - 1) < 1e-4
    p = softmax(np.array([[1000.0, 1000.0, -np.inf]], np.float32))
    np.testing.assert_allclose(p, [[0.5, 0.5, 0.0]])


@pytest.mark.parametrize("prompt", ["one", "short", "full"])
def test_logits_and_hidden_states_match_transformers(tiny, tiny_ref, prompt):
    ids = tiny_ref[f"{prompt}_ids"]
    logits, cache = tiny.forward(ids, tiny.new_cache(), all_positions=True)
    assert logits.dtype == np.float32 and logits.shape == (len(ids), 101)
    np.testing.assert_allclose(logits, tiny_ref[f"{prompt}_logits"], atol=1e-4, rtol=0)
    assert cache.length == len(ids)
    hidden = hf_style_hidden(tiny, ids)
    assert len(hidden) == tiny.config.n_layer + 1
    for ours, theirs in zip(hidden, tiny_ref[f"{prompt}_hidden"]):
        np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0)


def test_last_position_logits_equal_the_last_row(tiny, tiny_ref):
    last, cache = tiny.forward(tiny_ref["short_ids"])
    assert last.shape == (101,) and cache is None  # no cache asked for, none kept
    np.testing.assert_allclose(last, tiny_ref["short_logits"][-1], atol=1e-4, rtol=0)


def test_a_batch_of_sequences_equals_each_run_alone(tiny, tiny_ref):
    ids = tiny_ref["full_ids"]
    batch = np.stack([ids[0:9], ids[5:14], ids[20:29]])  # (3, 9): equal lengths
    last, cache = tiny.forward(batch)
    every, _ = tiny.forward(batch, all_positions=True)
    assert last.shape == (3, 101) and every.shape == (3, 9, 101) and cache is None
    for row, seq in enumerate(batch):
        alone, _ = tiny.forward(seq, all_positions=True)
        np.testing.assert_allclose(every[row], alone, atol=1e-5, rtol=0)
        np.testing.assert_allclose(last[row], alone[-1], atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="one sequence"):
        tiny.forward(batch, tiny.new_cache())


def test_kv_cache_one_token_at_a_time_gives_the_same_logits(tiny, tiny_ref):
    ids = tiny_ref["full_ids"]
    cache = tiny.new_cache()
    rows = []
    for token in ids[:20]:
        logits, cache = tiny.forward(np.array([token]), cache)
        rows.append(logits)
    logits, cache = tiny.forward(ids[20:], cache, all_positions=True)  # a chunk after the steps
    np.testing.assert_allclose(np.vstack([np.stack(rows), logits]), tiny_ref["full_logits"], atol=1e-4, rtol=0)
    assert cache.length == 32
    with pytest.raises(ValueError, match="context window"):
        tiny.forward(np.array([1]), cache)


def test_greedy_generation_matches_transformers_with_and_without_cache(tiny, tiny_ref):
    prompt = tiny_ref["greedy_prompt"].tolist()
    assert tiny_ref["greedy_cached"].tolist() == tiny_ref["greedy_uncached"].tolist()
    assert generate(tiny, prompt, 20) == tiny_ref["greedy_cached"].tolist()
    assert generate(tiny, prompt, 20, use_cache=False) == tiny_ref["greedy_cached"].tolist()


def test_bad_ids_are_rejected(tiny):
    with pytest.raises(ValueError, match="token ids"):
        tiny.forward(np.array([101]))
    with pytest.raises(ValueError, match="no token ids"):
        tiny.forward(np.array([], np.int64))


def test_full_vocabulary_model_matches_transformers(vocab_model, vocab_ref):
    model, tokenizer = vocab_model
    arrays, ref = vocab_ref
    ids = ref["prompt_ids"][0]
    assert tokenizer.encode(ref["prompts"][0]) == ids
    logits, _ = model.forward(np.array(ids), all_positions=True)
    np.testing.assert_allclose(logits, arrays["prompt0_logits"], atol=1e-4, rtol=0)
    for ours, theirs in zip(hf_style_hidden(model, np.array(ids)), arrays["prompt0_hidden"]):
        np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0)
    last, _ = model.forward(np.array(ref["prompt_ids"][1]))
    np.testing.assert_allclose(last, arrays["prompt1_last_logits"], atol=1e-4, rtol=0)


def test_full_vocabulary_greedy_text_matches_transformers(vocab_model, vocab_ref):
    model, tokenizer = vocab_model
    _, ref = vocab_ref
    for use_cache in (True, False):
        new = generate(model, ref["prompt_ids"][0], 30, stop_id=tokenizer.eot_id, use_cache=use_cache)
        assert new == ref["greedy_new_ids"] == ref["greedy_uncached_new_ids"]
    assert tokenizer.decode(new) == ref["greedy_text"]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 8), min_size=1, max_size=12))
def test_kv_cache_any_chunking_gives_the_same_logits(chunks):
    """Feeding a sequence in any chunks, with the cache, equals one pass over it all."""
    model, ref = _TINY_MODEL, _TINY_FULL
    ids = ref["full_ids"]
    cache, rows, start = model.new_cache(), [], 0
    for size in chunks:
        if start >= len(ids):
            break
        logits, cache = model.forward(ids[start:start + size], cache, all_positions=True)
        rows.append(logits)
        start = min(start + size, len(ids))
    np.testing.assert_allclose(np.vstack(rows), ref["full_logits"][:start], atol=1e-4, rtol=0)
    assert cache.length == start


_TINY_MODEL = GPT2.from_dir(TINY)
with np.load(TINY / "reference.npz", allow_pickle=False) as _data:
    _TINY_FULL = {"full_ids": _data["full_ids"], "full_logits": _data["full_logits"]}
