"""Choosing tokens: greedy, temperature, top-k, top-p, seeds, the window, streaming."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transformer.model import GPT2
from transformer.sample import (
    Sampling, choose_token, fit_to_window, generate, keep_top_k, keep_top_p, probabilities, stream_text,
)

TINY = Path(__file__).parent / "fixtures" / "gpt2-tiny"


@pytest.fixture(scope="module")
def tiny() -> GPT2:
    return GPT2.from_dir(TINY)


def test_probabilities_and_temperature():
    logits = np.log(np.array([0.5, 0.25, 0.25], np.float32))
    np.testing.assert_allclose(probabilities(logits), [0.5, 0.25, 0.25], atol=1e-7)
    np.testing.assert_allclose(probabilities(logits, 0.5), [4 / 6, 1 / 6, 1 / 6], atol=1e-7)


def test_top_k_and_top_p_keep_the_right_tokens():
    p = np.array([0.1, 0.4, 0.2, 0.3])
    assert keep_top_k(p, 2).tolist() == [0.0, 0.4, 0.0, 0.3]
    assert keep_top_k(p, 0).tolist() == p.tolist()
    assert keep_top_p(p, 0.5).tolist() == [0.0, 0.4, 0.0, 0.3]   # 0.4 < 0.5, so 0.3 joins
    assert keep_top_p(p, 0.39).tolist() == [0.0, 0.4, 0.0, 0.0]
    assert keep_top_p(p, 0.01).tolist() == [0.0, 0.4, 0.0, 0.0]  # always at least one
    assert keep_top_p(p, 1.0).tolist() == p.tolist()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-20, 20), min_size=2, max_size=30), st.integers(1, 5), st.floats(0.05, 1.0), st.integers(0, 2**32 - 1))
def test_sampled_token_is_always_allowed(logits, k, p, seed):
    logits = np.array(logits, np.float32)
    token = choose_token(logits, Sampling(1.0, k, p), np.random.default_rng(seed))
    allowed = keep_top_p(keep_top_k(probabilities(logits), k), p)
    assert 0 <= token < len(logits) and allowed[token] > 0


def test_sampling_frequencies_follow_the_probabilities():
    logits = np.log(np.array([0.7, 0.2, 0.1], np.float32))
    rng = np.random.default_rng(0)
    counts = np.bincount([choose_token(logits, Sampling(), rng) for _ in range(4000)], minlength=3)
    np.testing.assert_allclose(counts / 4000, [0.7, 0.2, 0.1], atol=0.03)


def test_greedy_and_invalid_settings():
    assert choose_token(np.array([0.1, 3.0, 2.0], np.float32), Sampling(0.0), np.random.default_rng()) == 1
    with pytest.raises(ValueError):
        Sampling(temperature=-1)
    with pytest.raises(ValueError):
        Sampling(top_p=0.0)


def test_seed_gives_identical_generations(tiny):
    settings_ = Sampling(1.0, top_k=20, top_p=0.9)
    a = generate(tiny, [1, 2, 3], 15, settings_, seed=42)
    b = generate(tiny, [1, 2, 3], 15, settings_, seed=42)
    c = generate(tiny, [1, 2, 3], 15, settings_, seed=43)
    assert a == b and len(a) == 15 and a != c


def test_stop_token_ends_generation(tiny):
    first = generate(tiny, [1, 2, 3], 1)[0]
    assert generate(tiny, [1, 2, 3], 10, stop_id=first) == [first]


def test_long_prompt_is_truncated_with_a_warning(tiny):
    assert fit_to_window(40, 10, 32) == (22, 10)
    assert fit_to_window(5, 100, 32) == (1, 31)
    assert fit_to_window(5, 10, 32) == (5, 10)
    prompt = list(range(1, 41))
    with pytest.warns(UserWarning, match="last 22 prompt tokens"):
        new = generate(tiny, prompt, 10)
    assert new == generate(tiny, prompt[-22:], 10)


class ByteTokens:
    """A stand-in tokenizer whose tokens are single bytes."""

    def token_bytes(self, token: int) -> bytes:
        return bytes([token])


def test_stream_text_holds_back_split_characters():
    pieces = list(stream_text(ByteTokens(), list("a😀b".encode())))
    assert pieces == ["a", "😀", "b"]
    assert list(stream_text(ByteTokens(), [0xF0, 0x9F])) == ["\ufffd"]
