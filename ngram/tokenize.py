"""Tokenizers: text → sentences of tokens. Pluggable, as the trie does not care what a token is.

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
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

from corpora.common import UserError

from .smoothing import UNK

if TYPE_CHECKING:  # for type hints only: ngram imports transformer lazily (see BPETokens)
    from transformer.bpe import BPETokenizer

#: The names `get_tokenizer` accepts, as the CLI shows them.
TOKENIZER_CHOICES = ("words", "chars", "gpt2", "bpe:DIR")

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
        return _WORD_OR_PUNCT.findall(sentence)

    def detokenize(self, tokens: list[str]) -> str:
        text = " ".join(tokens)
        text = re.sub(r" ([.,;:!?)\]}’”]|\.\.\.)", r"\1", text)
        return re.sub(r"([(\[{“‘]) ", r"\1", text)

    def phrase_pattern(self, tokens: Sequence[str]) -> re.Pattern | None:
        """Words whatever white space (or italics underscores) lies between them; <unk> is any word."""
        if not tokens:
            return None
        parts = []
        for i, token in enumerate(tokens):
            piece = r"[^\W_]+" if token == UNK else re.escape(token)
            if i:
                word_pair = tokens[i - 1][-1:].isalnum() and token[:1].isalnum()
                parts.append(r"[\s_]+" if word_pair else r"[\s_]*")
            parts.append(piece)
        return re.compile(r"(?<![^\W_])" + "".join(parts) + r"(?![^\W_])", re.IGNORECASE if self.lowercase else 0)


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


class BPETokens(Tokenizer):
    """Byte-level BPE tokens, exactly the tokens a GPT-2-style transformer reads.

    A token is the BPE token's byte-level unicode string, the key of ``vocab.json``
    (``"Ġnight"`` is " night"; ``Ġ`` stands for the space byte). These are never empty
    and never contain NUL (byte 0 is shown as ``Ā``), as the trie's reserved keys need;
    the constructor checks it for any vocabulary.

    `sentences(text)` gives the whole text as ONE token sequence (no sentence splitting,
    no white-space normalisation), encoded exactly as ``BPETokenizer.encode(text)`` (no
    special tokens), so the n-gram's tokens are the transformer's for the same text.
    `detokenize` gives the exact text back.

    `folder` None means OpenAI's GPT-2 tokenizer (shipped with the package, name
    ``gpt2``); otherwise the tokenizer in that folder (name ``bpe``): ``vocab.json`` +
    ``merges.txt`` or ``encoder.json`` + ``vocab.bpe``.
    """

    name = "bpe"
    joiner = ""  # the tokens carry their own spaces
    default_min_count = 1  # keep every token seen: <unk> then only stands for BPE tokens never seen
    sequence = "text"

    def __init__(self, folder: str | Path | None = None, lowercase: bool = False) -> None:
        if lowercase:
            raise UserError(
                "lowercase cannot be used with BPE tokens: they must be the transformer's own tokens, "
                "and it reads text with its case"
            )
        super().__init__(lowercase=False)
        # The one deliberate dependency of `ngram` on `transformer`: GPT-2's byte-level BPE
        # has a single implementation, `transformer.bpe`. It is imported here, when a BPE
        # tokenizer is made, so that `import ngram` never imports `transformer`.
        from transformer import bpe

        if folder is None:
            self.name = "gpt2"
            self.folder: Path | None = None
            self.bpe: BPETokenizer = bpe.gpt2_tokenizer()
        else:
            self.folder = Path(folder).expanduser().resolve()
            if not self.folder.is_dir():
                raise UserError(f"tokenizer folder not found: {self.folder}")
            self.bpe = bpe.BPETokenizer.from_dir(self.folder)
        check_token_strings(self.bpe.encoder, self.folder or "GPT-2's vocabulary")
        self.fingerprint: str = bpe.tokenizer_fingerprint(self.bpe)

    # -- text → tokens → text -------------------------------------------------
    def tokens(self, sentence: str) -> list[str]:
        return self.tokens_of_ids(self.bpe.encode(sentence))

    def sentences(self, text: str) -> Iterator[list[str]]:
        """The whole text as one sequence of BPE tokens (none if the text is empty)."""
        tokens = self.tokens(text)
        if tokens:
            yield tokens

    def detokenize(self, tokens: list[str]) -> str:
        """The exact text of the tokens (a multi-byte character cut in two shows as "�")."""
        return b"".join(self.token_bytes(t) for t in tokens).decode("utf-8", errors="replace")

    # -- tokens ↔ the transformer's ids ------------------------------------------
    def tokens_of_ids(self, ids: Sequence[int]) -> list[str]:
        """Token ids (as the transformer uses them) → the tokens of this n-gram."""
        decoder = self.bpe.decoder
        return [decoder[i] for i in ids]

    def ids_of_tokens(self, tokens: Sequence[str]) -> list[int]:
        """Tokens of this n-gram → the transformer's token ids."""
        encoder = self.bpe.encoder
        unknown = [t for t in tokens if t not in encoder]
        if unknown:
            raise UserError(f"{unknown[0]!r} is not a token of this BPE vocabulary")
        return [encoder[t] for t in tokens]

    def token_bytes(self, token: str) -> bytes:
        """The exact bytes a token stands for (``<unk>`` and other non-BPE tokens: their own text)."""
        token_id = self.bpe.encoder.get(token)
        return token.encode("utf-8") if token_id is None else self.bpe.token_bytes(token_id)

    # -- showing and finding ----------------------------------------------------
    def display(self, token: str) -> str:
        """The token's text in quotes, so leading spaces show: ``" night"``, ``"\\n"``.

        ``<s>``, ``</s>`` and ``<unk>`` are shown bare; bytes that are only part of a
        character are shown as ``\\xe2``.
        """
        if token not in self.bpe.encoder:
            return token
        return '"' + escape_text(self.token_bytes(token)) + '"'

    def display_text(self, text: str) -> str:
        """Text in quotes on one line, so leading spaces and newlines show: ``" on the\\n"``."""
        return '"' + escape_text(text.encode("utf-8")) + '"'

    def phrase_pattern(self, tokens: Sequence[str]) -> re.Pattern | None:
        """The decoded text of the tokens, verbatim; <unk> is any short run of characters."""
        parts = []
        for i, piece in enumerate(split_at_unk(tokens)):
            if i:
                parts.append(r"[\s\S]{1,32}?")
            text = b"".join(self.token_bytes(t) for t in piece).decode("utf-8", errors="ignore")
            parts.append(re.escape(text))
        return re.compile("".join(parts)) if any(parts) else None

    # -- saving -----------------------------------------------------------------
    def describe(self) -> str:
        where = "gpt2" if self.folder is None else f"bpe:{self.folder}"
        return f"{where} (byte-level BPE, {self.bpe.vocab_size:,} tokens, fingerprint {self.fingerprint[:12]})"

    def config(self) -> dict:
        """Name, folder (for ``bpe``), and the sha256 fingerprint of the vocabulary and merges."""
        config: dict = {"name": self.name, "lowercase": False}
        if self.folder is not None:
            config["folder"] = str(self.folder)
        config["vocab_size"] = self.bpe.vocab_size
        config["fingerprint"] = self.fingerprint
        return config

    @classmethod
    def from_config(cls, config: dict) -> "BPETokens":
        """Rebuild a saved BPE tokenizer; refuse if its folder is gone or holds another tokenizer."""
        folder = config.get("folder")
        if config.get("name") == "bpe":
            if not folder or not Path(folder).is_dir():
                raise UserError(
                    f"the tokenizer folder this model was built with ({folder}) no longer exists; "
                    "put it back or rebuild the model"
                )
            tokenizer = cls(folder)
        else:
            tokenizer = cls()
        saved = config.get("fingerprint")
        if saved and saved != tokenizer.fingerprint:
            where = tokenizer.folder or "GPT-2's shipped tokenizer files"
            raise UserError(
                f"the tokenizer in {where} is not the one this model was built with (fingerprint "
                f"{tokenizer.fingerprint[:12]}, model {saved[:12]}); rebuild the model"
            )
        return tokenizer


def check_token_strings(vocab: dict[str, int], where: object) -> None:
    """Refuse a vocabulary with a token the trie cannot hold (empty, or containing NUL)."""
    for token in vocab:
        if not token or "\x00" in token:
            raise UserError(f"{where}: the vocabulary holds the token {token!r}, which an n-gram trie cannot key")


def split_at_unk(tokens: Sequence[str]) -> list[list[str]]:
    """The runs of tokens between ``<unk>`` tokens: [a, <unk>, b, c] → [[a], [b, c]]."""
    runs: list[list[str]] = [[]]
    for token in tokens:
        if token == UNK:
            runs.append([])
        else:
            runs[-1].append(token)
    return runs


def escape_text(data: bytes) -> str:
    """UTF-8 bytes as one readable line: newlines, tabs, quotes and backslashes escaped,
    bytes that are not a whole character as ``\\xNN``."""
    out = []
    for char in data.decode("utf-8", errors="surrogateescape"):
        if "\udc80" <= char <= "\udcff":  # a byte that is only part of a character
            out.append(f"\\x{ord(char) - 0xDC00:02x}")
        elif char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif not char.isprintable() and char != " ":
            out.append(char.encode("unicode_escape").decode("ascii"))
        else:
            out.append(char)
    return "".join(out)


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", '"': '\\"', "\\": "\\\\"}

TOKENIZERS: dict[str, type[Tokenizer]] = {"words": WordTokenizer, "chars": CharTokenizer}


def get_tokenizer(name: str = "words", lowercase: bool = False) -> Tokenizer:
    """A tokenizer by name: ``words``, ``chars``, ``gpt2`` or ``bpe:DIR`` (see the module docstring)."""
    if name == "gpt2":
        return BPETokens(None, lowercase)
    if name == "bpe" or name.startswith("bpe:"):
        folder = name[len("bpe:"):]
        if not folder:
            raise UserError("bpe tokens need a tokenizer folder: bpe:DIR (e.g. bpe:transformer/bundled/books-gpt2)")
        return BPETokens(folder, lowercase)
    try:
        return TOKENIZERS[name](lowercase=lowercase)
    except KeyError:
        raise UserError(f"unknown tokenizer {name!r}; choose one of: {', '.join(TOKENIZER_CHOICES)}") from None


def tokenizer_from_config(config: dict) -> Tokenizer:
    """Rebuild the tokenizer a model was saved with."""
    name = config.get("name", "words")
    if name in ("gpt2", "bpe"):
        return BPETokens.from_config(config)
    return get_tokenizer(name, bool(config.get("lowercase", False)))
