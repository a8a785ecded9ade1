"""Which whitespace word of a text each model's token belongs to.

Per-word figures divide by the text's whitespace words (`corpora.units`); to say how
much ONE word cost each model, every token of each model must be given to one word.
The rules, stated once:

- a word is a maximal run of non-white-space characters (what `str.split()` returns),
  numbered 0, 1, 2, ... in the text;
- a BPE token belongs to the word holding its first non-white-space byte, found by
  byte offsets (the tokens' bytes, one after the other, are the text's bytes). A token
  that is only white space (" ", "\\n\\n") belongs to the word after it; white space
  at the very end of the text belongs to the last word. GPT-2's pre-tokenizer never
  joins two words in one token, so " night" belongs to "night", and "night" + "."
  both to "night.";
- an n-gram token (a word or a punctuation mark of the word tokenizer) is a piece of
  one whitespace word: "night." is the tokens "night" and "."; the sentence end
  ``</s>`` belongs to the word of the sentence's last token. A whitespace word with no
  n-gram token at all (only underscores, say) costs the n-gram nothing.

    >>> [text[a:b] for a, b in word_spans(text := "It was  a\\nnight.")]
    ['It', 'was', 'a', 'night.']
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from corpora import UserError

WHITESPACE_WORD = re.compile(r"\S+")


def word_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of the text's whitespace words, in order."""
    return [m.span() for m in WHITESPACE_WORD.finditer(text)]


def word_of_each_byte(text: str) -> np.ndarray:
    """For every UTF-8 byte of the text: the word at or after it (the number of words past the last one)."""
    spans = word_spans(text)
    word_of_char = np.full(len(text), len(spans), dtype=np.int64)  # white space: "no word here"
    for index, (start, end) in enumerate(spans):
        word_of_char[start:end] = index
    widths = np.fromiter((len(c.encode("utf-8")) for c in text), dtype=np.int64, count=len(text))
    word_of_byte = np.repeat(word_of_char, widths)
    # words are numbered in text order, so the smallest number at or after a byte is the next word's
    return np.minimum.accumulate(word_of_byte[::-1])[::-1] if len(word_of_byte) else word_of_byte


def bpe_token_words(tokenizer, ids: Sequence[int], text: str) -> np.ndarray:
    """The word each BPE token of `text` belongs to (ids: the text's tokens, no <|endoftext|>).

    Example: "It was" -> tokens "It", " was" -> words [0, 1].
    """
    starts = np.cumsum([0, *(len(tokenizer.token_bytes(int(i))) for i in ids)])
    total = len(text.encode("utf-8"))
    if starts[-1] != total:
        raise UserError(f"the tokens hold {starts[-1]:,} bytes but the text {total:,}: they are not the text's tokens")
    n_words = len(text.split())
    if n_words == 0:
        raise UserError("the text has no words")
    next_word = word_of_each_byte(text)
    words = np.minimum(next_word[starts[:-1]], n_words - 1)  # trailing white space: the last word
    return words


def ngram_token_offsets(tokenizer, text: str) -> list[list[int]]:
    """For each sentence of `tokenizer.sentences(text)`: the character offset where each token starts.

    The word tokenizer only drops white space and underscores between its tokens (and
    NUL characters), and never changes a token's characters except by lowercasing, so
    each token is found by searching the text from where the previous token ended: a
    character it skipped can never begin a token.
    """
    haystack = text.lower() if tokenizer.lowercase else text
    cursor = 0
    result = []
    for sentence in tokenizer.sentences(text):
        starts = []
        for token in sentence:
            found = haystack.find(token, cursor)
            if found < 0:
                raise UserError(f"could not find the n-gram token {token!r} in the text")
            starts.append(found)
            cursor = found + len(token)
        result.append(starts)
    return result


def ngram_token_words(tokenizer, text: str) -> list[list[int]]:
    """For each sentence of `tokenizer.sentences(text)`: the word each of its tokens belongs to."""
    word_of_char = np.zeros(len(text) + 1, dtype=np.int64)
    for index, (start, end) in enumerate(word_spans(text)):
        word_of_char[start:end] = index
    return [word_of_char[starts].tolist() for starts in ngram_token_offsets(tokenizer, text)]
