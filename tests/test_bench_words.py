"""Next-word expansion for the transformer column of `bench compare`."""
from __future__ import annotations

from pathlib import Path

import pytest

from bench.words import first_word, next_word_distribution

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
    assert dist.covered == pytest.approx(sum(dist.words.values()))
    assert dist.expansions <= 8
    assert all(first_word(" " + w + " ") == (w, True) for w in dist.words)
    again = next_word_distribution(model, tokenizer, ids, budget=8)
    assert again.words == dist.words  # deterministic, and branches do not disturb each other
