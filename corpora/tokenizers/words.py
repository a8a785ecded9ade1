"""Word and character tokenizers: text → sentences of tokens, and the tokenizer base class.

The trie does not care what a token is, so tokenizers are pluggable.

Four come built in (``get_tokenizer`` takes these names):

- ``words`` (default): sentence-aware; words (with inner apostrophes and hyphens, like
  ``don't`` and ``well-known``) and punctuation marks as separate tokens; case kept, or
  folded with ``lowercase=True``. Underscores (Gutenberg's italics markers) are dropped.
- ``chars``: every character of a sentence, spaces included.
- ``gpt2``: GPT-2's byte-level BPE tokens, exactly as GPT-2 sees the text, so the
  n-gram and the transformer can be compared on identical units.
- ``bpe:DIR``: the same, with the byte-level BPE tokenizer in folder DIR (such as
  ``transformer/bundled/books-gpt2``, or a Hugging Face GPT-2 model folder).

Every tokenizer guarantees two things the trie relies on: no token is the empty
string, and no token contains a NUL character (see ``ngram.trie`` reserved keys).
Sentence boundaries are not tokens of the text; the model adds ``<s>`` and ``</s>``
(with BPE tokens a whole text is one sequence, so they mark its start and end).
"""
from __future__ import annotations

import re
from typing import Iterator, Sequence

from .special import UNK


# Sentence ends: . ! or ? (possibly repeated, possibly followed by closing quotes or
# brackets), then white space, then something that can start a sentence.
_SENTENCE_BOUNDARY = re.compile(r"([.!?]+[\"'”’)\]]*)\s+(?=[\"'“‘(\[_]*[A-Z0-9])")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
WORD_OR_PUNCT = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*|\.\.\.|-{2,}|[^\w\s]")
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
    joiner = " "  # put between rendered sentences, and between a prompt and its continuation
    default_min_count = 2  # tokens seen fewer times in the building text become <unk>
    sequence = "sentence"  # what one token sequence of `sentences` is

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

    def display(self, token: str) -> str:
        """One token as a person should read it (words and characters are shown as they are)."""
        return token

    def show(self, tokens: Sequence[str]) -> str:
        """Tokens as a person should read them, one after the other."""
        return " ".join(self.display(t) for t in tokens)

    def display_text(self, text: str) -> str:
        """Detokenized text as it should be shown on one line (words and characters: as it is)."""
        return text

    def phrase_pattern(self, tokens: Sequence[str]) -> re.Pattern | None:
        """A regex finding where `tokens` occur in raw text (None: nothing to look for)."""
        raise NotImplementedError

    def phrase_words(self, tokens: Sequence[str]) -> list[str]:
        """Pieces of text every match of `phrase_pattern(tokens)` contains, as they are written:
        a text lacking one of them holds no match, and a plain substring search (far faster
        than the regex) says so. [] when there are none to be sure of (a tokenizer that
        lowercases matches any case)."""
        return []

    def describe(self) -> str:
        """The tokenizer in a few words, for `ngram stats`."""
        return self.name + (" (lowercase)" if self.lowercase else "")

    def config(self) -> dict:
        """What to save with a model so the same tokenizer can be rebuilt."""
        return {"name": self.name, "lowercase": self.lowercase}


class WordTokenizer(Tokenizer):
    """Words and punctuation marks, sentence by sentence."""

    name = "words"

    def tokens(self, sentence: str) -> list[str]:
        return WORD_OR_PUNCT.findall(sentence)

    def detokenize(self, tokens: list[str]) -> str:
        text = " ".join(tokens)
        text = re.sub(r" ([.,;:!?)\]}’”]|\.\.\.)", r"\1", text)
        return re.sub(r"([(\[{“‘]) ", r"\1", text)

    def phrase_pattern(self, tokens: Sequence[str]) -> re.Pattern | None:
        r"""Words whatever white space (or italics underscores) lies between them; <unk> is any word.

        A match may not start or end inside a word: ``(?<![^\W_])`` before it, ``(?![^\W_])``
        after it (`plain_phrase_pattern`). Put first, that look-behind keeps Python's regex
        engine from jumping to where the first word occurs, so it tries every position of
        the text (30 times slower on the books); so when the first token is a word written
        out, the look-behind comes right after it and reaches back over it. Same matches.
        """
        if not tokens:
            return None
        first, rest = self.phrase_parts(tokens)
        flags = re.IGNORECASE if self.lowercase else 0
        if tokens[0] == UNK:
            return re.compile(r"(?<![^\W_])" + first + rest + r"(?![^\W_])", flags)
        return re.compile(first + r"(?<![^\W_]" + first + ")" + rest + r"(?![^\W_])", flags)

    def plain_phrase_pattern(self, tokens: Sequence[str]) -> re.Pattern | None:
        """`phrase_pattern` as first written: the readable reference it is tested against."""
        if not tokens:
            return None
        first, rest = self.phrase_parts(tokens)
        return re.compile(r"(?<![^\W_])" + first + rest + r"(?![^\W_])", re.IGNORECASE if self.lowercase else 0)

    @staticmethod
    def phrase_parts(tokens: Sequence[str]) -> tuple[str, str]:
        """The regex of the first token, and of the rest with what may lie between tokens."""
        parts = []
        for i, token in enumerate(tokens):
            piece = r"[^\W_]+" if token == UNK else re.escape(token)
            if i:
                word_pair = tokens[i - 1][-1:].isalnum() and token[:1].isalnum()
                parts.append(r"[\s_]+" if word_pair else r"[\s_]*")
            parts.append(piece)
        return parts[0], "".join(parts[1:])

    def phrase_words(self, tokens: Sequence[str]) -> list[str]:
        """The tokens themselves (not ``<unk>``, which stands for any word), unless lowercased."""
        return [] if self.lowercase else [t for t in tokens if t != UNK]


class CharTokenizer(Tokenizer):
    """Every character of a sentence, spaces included."""

    name = "chars"
    joiner = ""

    def tokens(self, sentence: str) -> list[str]:
        return list(sentence)

    def detokenize(self, tokens: list[str]) -> str:
        return "".join(tokens)

    def phrase_pattern(self, tokens: Sequence[str]) -> re.Pattern | None:
        """The characters, one after the other."""
        if not tokens:
            return None
        return re.compile("".join(re.escape(t) for t in tokens), re.IGNORECASE if self.lowercase else 0)
