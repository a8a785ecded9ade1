"""Reference, then fast: the textbook BPE loop and the fast learner learn the same tokenizer."""
from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpora.common import UserError
from corpora.tokenizers import bpe, bpe_learn
from corpora.tokenizers.bpe_learn import get_stats, learn_bpe, learn_bpe_reference, merge, most_frequent_pair


def learned_by_both(texts: list[str], vocab_size: int):
    """(fast, reference) tokenizers, or the error message each gave."""
    results = []
    for learner in (lambda: learn_bpe(texts, vocab_size, progress=False), lambda: learn_bpe_reference(texts, vocab_size)):
        try:
            results.append(learner())
        except UserError as err:
            results.append(f"UserError: {err}")
    return results


def assert_same(texts: list[str], vocab_size: int) -> None:
    fast, reference = learned_by_both(texts, vocab_size)
    if isinstance(fast, str) or isinstance(reference, str):
        assert fast == reference
        return
    assert fast.merges == reference.merges
    assert fast.encoder == reference.encoder


@pytest.mark.parametrize("function", [get_stats, merge, most_frequent_pair])
def test_each_example_line_is_true(function) -> None:
    """The `Example:` line of each docstring is an expression that holds."""
    example = re.search(r"Example: (.+)", function.__doc__).group(1)
    assert eval(example, vars(bpe_learn) | vars(bpe)), example


def test_ties_go_to_the_smallest_ids_in_both() -> None:
    # 'e'+'s' and 's'+'t' both occur 9 times; 'e' has the smaller id, so 'es' comes first.
    toy = ["low low low low low lower lower newest newest newest newest newest newest widest widest widest"]
    assert learn_bpe_reference(toy, 270).merges[:2] == [("e", "s"), ("es", "t")]
    assert_same(toy, 270)


@pytest.mark.parametrize("seed", range(6))
def test_the_same_merges_on_seeded_random_texts(seed: int) -> None:
    rng = random.Random(seed)
    words = ["the", "then", "there", "other", "a", "an", "ab", "ba", "aa", "é", "日本", "😀", "'s", "42", "!!"]
    texts = ["".join(rng.choice(words) + rng.choice([" ", "  ", "\n", ", ", ""]) for _ in range(rng.randint(20, 200)))
             for _ in range(rng.randint(1, 4))]
    assert_same(texts, 257 + rng.randint(0, 120))


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(st.text(alphabet="aab bc\nxé'😀s", max_size=40), max_size=4), vocab_size=st.integers(250, 300))
def test_the_same_merges_and_vocabulary_on_any_small_text(texts: list[str], vocab_size: int) -> None:
    """Equal merges and vocabularies, or the same error (empty text, too small or too large a vocabulary)."""
    assert_same(texts, vocab_size)


def test_the_same_merges_on_real_prose() -> None:
    prose = ("It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
             "foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, "
             "it was the season of Darkness, it was the spring of hope, it was the winter of despair.\n") * 3
    assert_same([prose], 340)
