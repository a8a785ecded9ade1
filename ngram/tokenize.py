"""Tokenizers: text → sentences of tokens. Pluggable, as the trie does not care what a token is.

Two come built in:

- ``words`` (default): sentence-aware; words (with inner apostrophes and hyphens, like
  ``don't`` and ``well-known``) and punctuation marks as separate tokens; case kept, or
  folded with ``lowercase=True``. Underscores (Gutenberg's italics markers) are dropped.
- ``chars``: every character of a sentence, spaces included.

Every tokenizer guarantees two things the trie relies on: no token is the empty
string, and no token contains a NUL character (see ``ngram.trie`` reserved keys).
Sentence boundaries are not tokens of the text; the model adds ``<s>`` and ``</s>``.
"""
from __future__ import annotations

import re
from typing import Iterator

from corpora.common import UserError

# Sentence ends: . ! or ? (possibly repeated, possibly followed by closing quotes or
# brackets), then white space, then something that can start a sentence.
_SENTENCE_BOUNDARY = re.compile(r"([.!?]+[\"'”’)\]]*)\s+(?=[\"'“‘(\[_]*[A-Z0-9])")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_WORD_OR_PUNCT = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*|\.\.\.|-{2,}|[^\w\s]")
ABBREVIATIONS = frozenset(
    "mr mrs ms dr st mme mlle messrs jr sr prof rev gen col capt lieut sgt vol ch no co vs etc".split()
)


def paragraphs(text: str) -> Iterator[str]:
    """Blank-line separated paragraphs, each on one line."""
    for block in _PARAGRAPH_BREAK.split(text.replace("\x00", "")):
        block = " ".join(block.split())
        if block:
            yield block


def split_sentences(paragraph: str) -> Iterator[str]:
    """Split one paragraph into sentences at . ! ? (not after Mr., Dr., St. and the like)."""
    start = 0
    for match in _SENTENCE_BOUNDARY.finditer(paragraph):
        if match.group(1)[0] == ".":
            before = paragraph[max(start, match.start() - 12): match.start()].split()
            if before and before[-1].lower().strip("\"'“‘(") in ABBREVIATIONS:
                continue
        yield paragraph[start: match.end(1)]
        start = match.end()
    if start < len(paragraph):
        yield paragraph[start:]


class Tokenizer:
    """Base class: turn text into sentences of tokens, and tokens back into text."""

    name = "base"

    def __init__(self, lowercase: bool = False) -> None:
        self.lowercase = lowercase

    def tokens(self, sentence: str) -> list[str]:
        """The tokens of one sentence."""
        raise NotImplementedError

    def sentences(self, text: str) -> Iterator[list[str]]:
        """Every sentence of `text` as a list of tokens (empty sentences skipped)."""
        if self.lowercase:
            text = text.lower()
        for paragraph in paragraphs(text):
            for sentence in split_sentences(paragraph):
                tokens = self.tokens(sentence)
                if tokens:
                    yield tokens

    def detokenize(self, tokens: list[str]) -> str:
        """Tokens back to readable text."""
        raise NotImplementedError

    def config(self) -> dict:
        """What to save with a model so the same tokenizer can be rebuilt."""
        return {"name": self.name, "lowercase": self.lowercase}


class WordTokenizer(Tokenizer):
    """Words and punctuation marks, sentence by sentence."""

    name = "words"

    def tokens(self, sentence: str) -> list[str]:
        return _WORD_OR_PUNCT.findall(sentence)

    def detokenize(self, tokens: list[str]) -> str:
        text = " ".join(tokens)
        text = re.sub(r" ([.,;:!?)\]}’”]|\.\.\.)", r"\1", text)
        return re.sub(r"([(\[{“‘]) ", r"\1", text)


class CharTokenizer(Tokenizer):
    """Every character of a sentence, spaces included."""

    name = "chars"

    def tokens(self, sentence: str) -> list[str]:
        return list(sentence)

    def detokenize(self, tokens: list[str]) -> str:
        return "".join(tokens)


TOKENIZERS: dict[str, type[Tokenizer]] = {"words": WordTokenizer, "chars": CharTokenizer}


def get_tokenizer(name: str = "words", lowercase: bool = False) -> Tokenizer:
    """A tokenizer by name (``words`` or ``chars``)."""
    try:
        return TOKENIZERS[name](lowercase=lowercase)
    except KeyError:
        raise UserError(f"unknown tokenizer {name!r}; choose one of: {', '.join(TOKENIZERS)}") from None


def tokenizer_from_config(config: dict) -> Tokenizer:
    """Rebuild the tokenizer a model was saved with."""
    return get_tokenizer(config.get("name", "words"), bool(config.get("lowercase", False)))
