"""Tokenizers by name, as the CLIs and saved models name them: words, chars, gpt2, bpe:DIR."""
from __future__ import annotations

from ..common import UserError
from .bpe_tokens import BPETokens
from .words import CharTokenizer, Tokenizer, WordTokenizer

#: The names `get_tokenizer` accepts, as the CLI shows them.
TOKENIZER_CHOICES = ("words", "chars", "gpt2", "bpe:DIR")

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
    """Rebuild the tokenizer a model was saved with (its saved fields checked for type first:
    the config comes from a model file, which may be damaged)."""
    check_tokenizer_config(config)
    name = config.get("name", "words")
    if name in ("gpt2", "bpe"):
        return BPETokens.from_config(config)
    return get_tokenizer(name, bool(config.get("lowercase", False)))


def check_tokenizer_config(config: object) -> None:
    """A saved tokenizer config: an object whose name and folder are strings, lowercase a bool."""
    well_formed = (
        isinstance(config, dict)
        and isinstance(config.get("name", "words"), str)
        and isinstance(config.get("lowercase", False), bool)
        and isinstance(config.get("folder") or "", str)
        and isinstance(config.get("fingerprint") or "", str)
    )
    if not well_formed:
        raise UserError("the saved tokenizer settings are malformed (name, folder, lowercase); the model is damaged")
