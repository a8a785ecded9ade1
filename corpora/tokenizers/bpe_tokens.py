"""Byte-level BPE tokens as n-gram tokens: the strings a trie keys on, for the ids a transformer reads."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, Sequence

from ..common import UserError
from . import bpe
from .bpe import BPETokenizer
from .special import UNK
from .words import Tokenizer


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
