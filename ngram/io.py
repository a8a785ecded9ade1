"""Saving and loading models: gzip-compressed JSON that a browser can read.

The file is one JSON object: metadata (format, version, order, tokenizer, vocabulary,
corpus files with hashes and the held-out split, count statistics) and ``"trie"``, the
nested dict itself — exactly the in-memory structure, so in JavaScript
``JSON.parse(gunzip(bytes)).trie["I"]["want"]`` works. Nothing in it can execute code
on load (no pickle). Writes are atomic: the old file stays intact until the new one is
complete.
"""
from __future__ import annotations

import gzip
import json
import os
import zlib
from pathlib import Path

from corpora import UserError, atomic_write, cache_dir

from corpora.runtime import gc_paused

from .model import NgramModel
from corpora.tokenizers import tokenizer_from_config
from .trie import COUNT, CONTINUATION

FORMAT = "trie-vs-transformer/ngram"
VERSION = 1
GZIP_MAGIC = b"\x1f\x8b"


def default_model_path() -> Path:
    """Where `ngram build` writes, and other commands look, when no model path is given."""
    return Path(os.environ.get("NGRAM_MODEL") or cache_dir() / "ngram" / "default.json.gz")


def save_model(model: NgramModel, path: str | os.PathLike, compresslevel: int = 3) -> Path:
    """Write `model` to `path` as gzip JSON, atomically. Returns the path."""
    document = {
        "format": FORMAT,
        "version": VERSION,
        "order": model.order,
        "tokenizer": model.tokenizer.config(),
        "reserved_keys": {"count": COUNT, "continuation": CONTINUATION},
        "vocab": model.vocab,
        "corpus": model.corpus,
        "info": model.info,
        "statistics": model.statistics,
        "trie": model.root,
    }
    data = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    path = Path(path)
    with atomic_write(path) as handle:
        handle.write(gzip.compress(data, compresslevel=compresslevel, mtime=0))
    return path


def load_model(path: str | os.PathLike | None = None) -> NgramModel:
    """Read a model written by `save_model` (default: the default model location)."""
    path = Path(path) if path else default_model_path()
    if not path.exists():
        hint = " (build one with: ngram build corpora/)" if path == default_model_path() else ""
        raise UserError(f"no model at {path}{hint}")
    if path.is_dir():
        raise UserError(f"{path} is a folder, not a model file")
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
    return NgramModel(
        root=root,
        order=order,
        tokenizer=tokenizer,
        vocab=vocab,
        corpus=document.get("corpus"),
        info=document.get("info"),
        statistics=document.get("statistics"),
    )
