"""Saving and loading models, in two formats; nothing in either can execute code on load.

- **A folder of arrays** (the native format, e.g. ``books.ngram/``): the trie's sorted
  arrays as ``.npy`` files and a JSON header holding everything else (order, tokenizer,
  corpus files with hashes and the held-out split, count statistics). Loading memory-maps
  the arrays, so it takes the same few milliseconds for any model (`ngram.arrays`).
- **Gzip-compressed JSON** (any path ending in ``.json.gz``): metadata and ``"trie"``,
  the nested dict itself, so in JavaScript ``JSON.parse(gunzip(bytes)).trie["I"]["want"]``
  works. For browsers and small models; loading one converts it to arrays.

Writes are atomic: the old model stays intact until the new one is complete.
"""
from __future__ import annotations

import gzip
import json
import os
import zlib
from pathlib import Path

from corpora import UserError, atomic_write, cache_dir

from corpora.runtime import gc_paused
from corpora.tokenizers import tokenizer_from_config

from .arrays import HEADER, ArrayTrie, is_array_model, load_arrays, save_arrays
from .model import NgramModel
from .trie import CONTINUATION, COUNT

FORMAT = "trie-vs-transformer/ngram"
VERSION = 1
GZIP_MAGIC = b"\x1f\x8b"


JSON_SUFFIX = ".json.gz"


def default_model_path() -> Path:
    """Where `ngram build` writes, and other commands look, when no model path is given."""
    return Path(os.environ.get("NGRAM_MODEL") or cache_dir() / "ngram" / "default.ngram")


def model_bytes(path: str | os.PathLike) -> int:
    """Bytes on disk of a saved model: its file, or every file of its folder."""
    path = Path(path)
    return sum(f.stat().st_size for f in path.iterdir()) if path.is_dir() else path.stat().st_size


def is_json_path(path: str | os.PathLike) -> bool:
    return str(path).endswith(JSON_SUFFIX)


def metadata_of(model: NgramModel) -> dict:
    """Everything but the counts: what the header of a model folder holds."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "order": model.order,
        "tokenizer": model.tokenizer.config(),
        "vocab_size": len(model.vocab),
        "corpus": model.corpus,
        "info": model.info,
        "statistics": model.statistics,
    }


def save_model(model: NgramModel, path: str | os.PathLike, compresslevel: int = 3) -> Path:
    """Write `model` to `path`: a folder of arrays, or gzip JSON if the path ends in .json.gz."""
    if not is_json_path(path):
        return save_arrays(model.trie, path, metadata_of(model))
    return save_json(model, path, compresslevel)


def save_json(model: NgramModel, path: str | os.PathLike, compresslevel: int = 3) -> Path:
    """Write `model` as gzip JSON with the whole nested-dict trie, atomically."""
    data = json.dumps(json_document(model), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    path = Path(path)
    with atomic_write(path) as handle:
        handle.write(gzip.compress(data, compresslevel=compresslevel, mtime=0))
    return path


def json_document(model: NgramModel, trie: dict | None = None) -> dict:
    """The JSON model document: metadata, vocabulary and `trie` (default: the whole nested-dict trie)."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "order": model.order,
        "tokenizer": model.tokenizer.config(),
        "reserved_keys": {"count": COUNT, "continuation": CONTINUATION},
        "vocab": model.vocab,
        "corpus": model.corpus,
        "info": model.info,
        "statistics": model.statistics,
        "trie": model.trie.to_dict() if trie is None else trie,
    }


def load_model(path: str | os.PathLike | None = None) -> NgramModel:
    """Read a model written by `save_model` (default: the default model location)."""
    path = Path(path) if path else default_model_path()
    if not path.exists():
        hint = " (build one with: ngram build corpora/)" if path == default_model_path() else ""
        raise UserError(f"no model at {path}{hint}")
    if path.is_dir():
        return load_folder(path)
    raw = path.read_bytes()
    if not raw.startswith(GZIP_MAGIC):
        raise UserError(f"{path} is not an n-gram model file (expected gzip-compressed JSON)")
    try:
        with gc_paused():
            document = json.loads(gzip.decompress(raw))
    except (EOFError, OSError, zlib.error):
        raise UserError(f"{path} is truncated or corrupted (gzip data incomplete)") from None
    except (UnicodeDecodeError, ValueError):
        raise UserError(f"{path} is corrupted (not valid JSON inside)") from None
    return model_from_document(document, path)


def load_folder(path: Path) -> NgramModel:
    """Memory-map a model folder and check its header's metadata."""
    if not is_array_model(path):
        raise UserError(f"{path} is a folder but not an n-gram model (no {HEADER})")
    trie, metadata = load_arrays(path)
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT or metadata.get("version") != VERSION:
        raise UserError(f"{path} holds arrays but not an n-gram model of this toolkit's version {VERSION}")
    if metadata.get("order") != trie.order or metadata.get("vocab_size") != len(trie.vocab):
        raise UserError(f"{path}: the header's order or vocabulary size does not match its arrays")
    try:
        tokenizer = tokenizer_from_config(metadata.get("tokenizer", {}))
    except UserError as err:
        raise UserError(f"{path}: {err}") from None
    return NgramModel(trie, trie.order, tokenizer, trie.vocab, metadata.get("corpus"), metadata.get("info"),
                      metadata.get("statistics"))


def model_from_document(document: object, path: Path | str = "model") -> NgramModel:
    """Check a decoded model document and turn it into an NgramModel."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise UserError(f"{path} is not an n-gram model of this toolkit (format field missing or different)")
    if document.get("version") != VERSION:
        raise UserError(
            f"{path} is model format version {document.get('version')}; this toolkit reads version {VERSION}"
        )
    order, vocab, root = document.get("order"), document.get("vocab"), document.get("trie")
    if not isinstance(order, int) or order < 1 or not isinstance(vocab, list) or not isinstance(root, dict):
        raise UserError(f"{path} is corrupted (order, vocabulary or trie missing)")
    if document.get("reserved_keys") != {"count": COUNT, "continuation": CONTINUATION}:
        raise UserError(f"{path} uses other reserved trie keys than this toolkit")
    try:
        tokenizer = tokenizer_from_config(document.get("tokenizer", {}))
    except UserError as err:
        raise UserError(f"{path}: {err}") from None
    try:
        trie = ArrayTrie.from_dict(root, vocab, order)
    except (TypeError, ValueError, KeyError, AttributeError):
        raise UserError(f"{path} is corrupted (the trie's nodes are not what an n-gram model holds)") from None
    return NgramModel(
        trie,
        order=order,
        tokenizer=tokenizer,
        vocab=vocab,
        corpus=document.get("corpus"),
        info=document.get("info"),
        statistics=document.get("statistics"),
    )
