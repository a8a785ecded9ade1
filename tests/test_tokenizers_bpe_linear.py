"""BPE on long pieces: `bpe_merge_heap` gives exactly `bpe_merge`'s merges, and long
unbroken strings encode to tiktoken's ids.  (Speed is shown by benchmarks/bpe_long_words.py,
never timed here.)"""
from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import corpora.tokenizers.bpe as bpe_module
from corpora.tokenizers.bpe import (
    GPT2_TOKENIZER_DIR,
    LONG_WORD,
    bpe_merge,
    bpe_merge_heap,
    bytes_to_symbols,
    gpt2_tokenizer,
    merge_word,
)

# A hand-made table where ties and overlaps matter: "a a" overlaps with itself, and
# some merges outrank ("ab a", "aa b") the pairs that create them, so a heap that
# merged new pairs before finishing its round would go wrong.
HAND_MADE = {("ab", "a"): 0, ("a", "a"): 1, ("a", "b"): 2, ("aa", "b"): 3, ("b", "a"): 4,
             ("aa", "aa"): 5, ("ba", "a"): 6, ("c", "a"): 7, ("b", "b"): 8, ("aaaa", "a"): 9}

# Strings over tiny alphabets repeat every pair many times: ties and runs like "aaaa".
repetitive = st.text(alphabet=st.sampled_from("aabbc"), max_size=300)


@pytest.mark.parametrize(("word", "ranks", "expected"), [
    ("aaa", {("a", "a"): 0}, ["aa", "a"]),            # left to right, not "a aa"
    ("aaaa", {("a", "a"): 0}, ["aa", "aa"]),          # both occurrences in one round
    ("aaaaa", {("a", "a"): 0, ("aa", "aa"): 1}, ["aaaa", "a"]),
    ("abab", {("ab", "a"): 0, ("a", "b"): 1}, ["ab", "ab"]),  # the round ends before "ab a"
    ("abcab", {("a", "b"): 0, ("b", "c"): 0}, ["ab", "c", "ab"]),  # shared rank: leftmost pair only
    ("", {}, []),
    ("x", {("x", "x"): 0}, ["x"]),
])
def test_heap_follows_the_textbook_tie_rules(word: str, ranks: dict, expected: list[str]) -> None:
    assert bpe_merge(word, ranks) == expected
    assert bpe_merge_heap(word, ranks) == expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(word=repetitive)
def test_heap_equals_textbook_with_a_hand_made_table(word: str) -> None:
    assert bpe_merge_heap(word, HAND_MADE) == bpe_merge(word, HAND_MADE)


@st.composite
def merge_tables(draw: st.DrawFn) -> dict[tuple[str, str], int]:
    """A random merges table over "abc": each merge joins two known symbols, and ranks
    are drawn freely, so they may repeat and may put a merge before its own parts."""
    symbols = ["a", "b", "c"]
    ranks: dict[tuple[str, str], int] = {}
    for _ in range(draw(st.integers(0, 12))):
        pair = (draw(st.sampled_from(symbols)), draw(st.sampled_from(symbols)))
        ranks[pair] = draw(st.integers(0, 8))
        symbols.append(pair[0] + pair[1])
    return ranks


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ranks=merge_tables(), word=st.text(alphabet=st.sampled_from("abc"), max_size=120))
def test_heap_equals_textbook_with_random_tables(ranks: dict, word: str) -> None:
    assert bpe_merge_heap(word, ranks) == bpe_merge(word, ranks)


gpt2_words = st.one_of(
    repetitive,
    st.text(alphabet=st.sampled_from("eeeetaoinshrdl"), max_size=300),  # pieces that merge deep
    st.text(alphabet=st.sampled_from("ab Ġ=-"), max_size=300),
    st.text(max_size=60).map(lambda t: bytes_to_symbols(t.encode("utf-8"))),  # any bytes
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(word=gpt2_words)
def test_heap_equals_textbook_with_gpt2_ranks(word: str) -> None:
    ranks = gpt2_tokenizer().ranks
    assert bpe_merge_heap(word, ranks) == bpe_merge(word, ranks)


def test_long_pieces_take_the_heap(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tokenizer must not send a long piece to the quadratic loop."""
    def quadratic(word, ranks):
        assert len(word) <= LONG_WORD, f"a piece of {len(word)} symbols went to the textbook loop"
        return bpe_merge(word, ranks)

    monkeypatch.setattr(bpe_module, "bpe_merge", quadratic)
    ranks = gpt2_tokenizer().ranks
    assert merge_word("a" * (LONG_WORD + 1), ranks) == bpe_merge_heap("a" * (LONG_WORD + 1), ranks)
    assert merge_word("hello", ranks) == ["hello"]


def test_long_unbroken_string_matches_tiktoken(tiktoken_from_files) -> None:
    reference = tiktoken_from_files(GPT2_TOKENIZER_DIR, "gpt2-shipped-files")
    rng = random.Random(20_000)
    letters = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(20_000))
    tok = gpt2_tokenizer()
    for text in (letters, "x" + letters.upper(), f"{letters[:9_000]} {'=' * 5_000}\n{letters[9_000:]}"):
        ids = tok.encode(text)
        assert ids == reference.encode_ordinary(text)
        assert tok.decode(ids) == text
