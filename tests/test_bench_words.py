"""Next-word expansion for the transformer column of `bench compare`."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.words import first_word, next_word_distribution, softmax_vector
from transformer.config import GPT2Config
from transformer.model import GPT2
from transformer.weights import assemble_params, expected_shapes

FIXTURE = Path(__file__).parent / "fixtures" / "gpt2-vocab"


@pytest.mark.parametrize(
    "text, expected",
    [
        (" night", ("night", False)),  # could still become "nightmare"
        (" night,", ("night", True)),
        (" don'", ("don", False)),  # could still become "don't"
        (" don't ", ("don't", True)),
        (",", (",", True)),  # a comma never grows
        (".", (".", False)),  # could be "..."
        ("... The", ("...", True)),
        (" Mr. Smith", ("Mr", True)),
        ("\n\n", (None, False)),
        (" _very_ ", ("very", True)),
    ],
)
def test_first_word_cuts_like_the_ngram_tokenizer(text, expected):
    assert first_word(text) == expected


def test_next_word_distribution_is_a_partial_distribution():
    from transformer import load_model

    model, tokenizer = load_model(FIXTURE)
    ids = tokenizer.encode("It was a dark and stormy")
    dist = next_word_distribution(model, tokenizer, ids, budget=8)
    assert 0 < dist.covered <= 1 + 1e-9
    first = softmax_vector(model.forward(np.asarray(ids))[0])
    likeliest = np.argsort(-first)[:4096]  # next_word_distribution's first_step
    settled_at_once = sum(  # likely first tokens that spell a whole word alone are always counted
        first[t] for t in likeliest if first[t] >= 1e-6 and first_word(tokenizer.decode([int(t)]))[1])
    assert dist.covered >= settled_at_once - 1e-9 and settled_at_once > 0
    assert dist.expansions <= 8
    assert all(first_word(" " + w + " ") == (w, True) for w in dist.words)
    again = next_word_distribution(model, tokenizer, ids, budget=8)
    assert again.words == dist.words  # deterministic, and branches do not disturb each other


# ------------------------------------------------ against exhaustive enumeration


class TinyTokenizer:
    """Five tokens, so that every token sequence up to depth 4 can be enumerated."""

    pieces = [" a", " b", "a", "b", ","]
    vocab_size = len(pieces)

    def token_bytes(self, token: int) -> bytes:
        return self.pieces[token].encode()

    def decode(self, ids) -> str:
        return "".join(self.pieces[i] for i in ids)


def random_model(vocab_size: int, seed: int = 0) -> GPT2:
    """A small GPT-2 with random weights (layer-norm gains near 1, so nothing is degenerate)."""
    config = GPT2Config(n_layer=2, n_head=2, n_embd=8, n_ctx=16, vocab_size=vocab_size)
    rng = np.random.default_rng(seed)
    tensors = {name: rng.normal(1.0 if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")) else 0.0,
                                0.5, shape).astype(np.float32)
               for name, shape in expected_shapes(config).items()}
    return GPT2(config, assemble_params(tensors, config))


def enumerated_words(model, tokenizer, prompt: list[int], max_depth: int) -> dict[str, float]:
    """The definition, by brute force: every token sequence after the prompt, scored by a
    fresh forward pass (no cache), adds its probability to the first word it settles."""
    words: dict[str, float] = {}

    def walk(tokens: list[int], mass: float) -> None:
        probs = softmax_vector(model.forward(np.array([*prompt, *tokens]))[0])
        for token, p in enumerate(probs):
            grown = [*tokens, token]
            word, final = first_word(tokenizer.decode(grown))
            if final:
                words[word] = words.get(word, 0.0) + mass * p
            elif len(grown) < max_depth:
                walk(grown, mass * p)

    walk([], 1.0)
    return words


@pytest.mark.parametrize("max_depth, batch", [(3, 256), (4, 256), (4, 3)])
def test_word_expansion_equals_exhaustive_enumeration(max_depth, batch):
    model, tokenizer = random_model(TinyTokenizer.vocab_size), TinyTokenizer()
    prompt = [1, 2, 4, 0]
    logits, cache = model.forward(np.array(prompt), model.new_cache())
    dist = next_word_distribution(model, tokenizer, prompt, budget=10_000, min_mass=1e-30,
                                  max_depth=max_depth, batch=batch, after_prompt=(logits, cache))
    expected = enumerated_words(model, tokenizer, prompt, max_depth)
    assert dist.words.keys() == expected.keys()
    for word, p in expected.items():
        assert dist.words[word] == pytest.approx(p, abs=1e-6), word
    assert 0.5 < dist.covered < 1.0  # some words are still unsettled at max_depth
    after, _ = model.forward(np.array([3, 1]), cache, all_positions=True)  # the prompt's cache is unchanged
    fresh, _ = model.forward(np.array([*prompt, 3, 1]), all_positions=True)
    np.testing.assert_allclose(after, fresh[-2:], atol=1e-5, rtol=0)
