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
import math
import os
import zlib
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator, Sequence

from corpora import UserError, atomic_write, cache_dir
from corpora.documents import check_corpus_record

from corpora.runtime import gc_paused
from corpora.tokenizers import tokenizer_from_config
from corpora.units import Score
from corpora.validate import available_memory_bytes, is_int, json_with_depth_limit, read_limited_bytes

from .arrays import ARPA_KIND, HEADER, MAX_COUNT, MAX_ORDER, ArrayTrie, is_array_model, load_arrays, save_arrays
from .model import NgramModel
from .trie import CONTINUATION, COUNT

FORMAT = "trie-vs-transformer/ngram"
VERSION = 1
GZIP_MAGIC = b"\x1f\x8b"


JSON_SUFFIX = ".json.gz"

#: Limits for a gzip-JSON model: its file, and the JSON inside once unpacked (a few
#: kilobytes of gzip can unpack to gigabytes; the unpacking stops at the limit).
MAX_JSON_MODEL_BYTES = 2 * 1024**3


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
        return watched(load_folder(path))
    raw = read_limited_bytes(path, MAX_JSON_MODEL_BYTES, "model file")
    if not raw.startswith(GZIP_MAGIC):
        raise UserError(f"{path} is not an n-gram model file (expected gzip-compressed JSON)")
    text = gunzip_limited(raw, min(MAX_JSON_MODEL_BYTES, available_memory_bytes() // 8), path)
    with gc_paused():
        document = json_with_depth_limit(text, MAX_ORDER + 8, f"{path} (inside the gzip)")
    return watched(model_from_document(document, path))


# ------------------------------------------------------------ damage found when it shows
# Loading a folder reads O(1) values, so damage inside the arrays shows only when a
# computation trips over it: an index out of range, a negative length. Checking every value
# at every load would cost a pass over the whole model (see `ArrayTrie.verify`); instead the
# commands run under `diagnose_damage`, which verifies the models they loaded only when such
# an error happens — nothing on the happy path.

#: What damaged values raise deep inside NumPy code (not UserError: those are already clear).
DAMAGE_SYMPTOMS = (IndexError, ValueError, OverflowError, FloatingPointError, ZeroDivisionError)

#: Smoothings whose results are true probabilities (stupid backoff ranks by scores, and an
#: imported ARPA model's back-off weights may exceed 1: only finiteness is checked for those).
PROBABILITY_SMOOTHINGS = ("kn", "addk", "mle")


class ImplausibleResult(ValueError):
    """A result no sound model gives: NaN, a negative probability, probabilities summing to more
    than 1, a perplexity below 1. One of the `DAMAGE_SYMPTOMS`: under `diagnose_damage` the
    models are verified; if they are sound, this is a bug and stays a traceback."""


def check_probabilities(values: Sequence[float], smoothing: str, step: str) -> None:
    """Refuse results that are not numbers and, for true probabilities, values outside [0, 1]
    or summing to more than 1 (beyond rounding) — before they are printed as results."""
    if not all(math.isfinite(v) for v in values):
        raise ImplausibleResult(f"{step} gave a value that is not a number")
    if smoothing in PROBABILITY_SMOOTHINGS and values and (min(values) < 0 or max(values) > 1 or sum(values) > 1 + 1e-6):
        raise ImplausibleResult(f"{step} gave probabilities outside [0, 1] or summing to more than 1")


def check_score(score: Score, step: str) -> None:
    """A text's score: its negative log-likelihood never NaN, and >= 0 under true probabilities
    (each p <= 1); under Kneser-Ney no token has probability 0 (the uniform floor)."""
    smoothing = score.setting.get("smoothing")
    if math.isnan(score.nll) or (smoothing in PROBABILITY_SMOOTHINGS and score.nll < 0):
        raise ImplausibleResult(f"{step} gave a log-likelihood of {score.nll} (NaN, or a probability above 1)")
    if smoothing == "kn" and score.zero_prob:
        raise ImplausibleResult(f"{step} gave {score.zero_prob} tokens probability 0 under Kneser-Ney")


_WATCHED: ContextVar[list | None] = ContextVar("ngram_models_watched", default=None)


def watched(model: NgramModel) -> NgramModel:
    """`model`, noted for `diagnose_damage` if one is active (outside one: nothing is kept)."""
    models = _WATCHED.get()
    if models is not None:
        models.append(model)
    return model


@contextmanager
def diagnose_damage() -> Iterator[None]:
    """Run a command so that a crash caused by a damaged model becomes one clear error.

    Models loaded inside (by `load_model`) are noted. If the body raises one of
    `DAMAGE_SYMPTOMS`, each is verified (`ArrayTrie.verify`): damage found → the one
    `UserError` "...; the model is damaged"; none found → the original error is re-raised,
    so a real bug stays visible. Use as ``with diagnose_damage():`` or as a decorator
    ``@diagnose_damage()`` under `friendly_errors`.
    """
    models: list[NgramModel] = []
    token = _WATCHED.set(models)
    try:
        yield
    except DAMAGE_SYMPTOMS:
        for model in models:
            model.trie.verify()
        raise
    finally:
        _WATCHED.reset(token)


def gunzip_limited(raw: bytes, max_bytes: int, path: Path) -> bytes:
    """The bytes inside gzip data, refusing to unpack more than `max_bytes` (a gzip bomb)."""
    unpacker = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # 16+: expect a gzip header
    try:
        data = unpacker.decompress(raw, max_bytes + 1)
    except zlib.error:
        raise UserError(f"{path} is truncated or corrupted (gzip data incomplete)") from None
    if len(data) > max_bytes:
        raise UserError(f"{path} unpacks to more than {max_bytes:,} bytes; refusing to read it")
    if not unpacker.eof:
        raise UserError(f"{path} is truncated or corrupted (gzip data incomplete)")
    return data


def load_folder(path: Path) -> NgramModel:
    """Memory-map a model folder and check its header's metadata."""
    if not is_array_model(path):
        raise UserError(f"{path} is a folder but not an n-gram model (no {HEADER})")
    trie, metadata = load_arrays(path)
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT or metadata.get("version") != VERSION:
        raise UserError(f"{path} holds arrays but not an n-gram model of this toolkit's version {VERSION}")
    if metadata.get("order") != trie.order or metadata.get("vocab_size") != len(trie.vocab):
        raise UserError(f"{path}: the header's order or vocabulary size does not match its arrays")
    check_metadata(metadata, path)
    check_statistics(metadata.get("statistics"), trie, path)
    tokenizer = tokenizer_of(metadata, path)
    return NgramModel(trie, trie.order, tokenizer, trie.vocab, metadata.get("corpus"), metadata.get("info"),
                      metadata.get("statistics"))


def tokenizer_of(metadata: dict, path: Path | str):
    """The tokenizer a model's metadata names, with the model's path in any error."""
    try:
        return tokenizer_from_config(metadata.get("tokenizer", {}))
    except UserError as err:
        raise UserError(f"{path}: {err}") from None


def check_metadata(metadata: dict, path: Path | str) -> None:
    """The metadata fields every command reads have the types they are read as: the
    tokenizer an object, the corpus record and info objects (or absent)."""
    if not isinstance(metadata.get("tokenizer", {}), dict):
        raise UserError(f"{path}: the tokenizer entry is not an object; the model is damaged")
    for key in ("corpus", "info", "statistics"):
        if not isinstance(metadata.get(key) or {}, dict):
            raise UserError(f"{path}: the {key} entry is not an object; the model is damaged")
    corpus = metadata.get("corpus")
    if corpus:
        try:
            check_corpus_record(corpus)
        except UserError as err:
            raise UserError(f"{path}: {err}; the model is damaged") from None


def check_statistics(statistics: object, trie: ArrayTrie, path: Path | str) -> None:
    """Statistics a model carries (Kneser-Ney's discounts come from them): n-grams per order
    equal to the arrays' lengths, every count-of-counts table four counts >= 0.
    Absent statistics are fine: they are then computed from the trie. A model imported from
    ARPA has no counts, so its statistics are the n-grams per order only."""
    if not statistics:
        return
    ngrams = statistics.get("ngrams")
    if ngrams != [len(level.ids) for level in trie.levels]:
        raise UserError(f"{path}: the statistics' n-gram counts do not match the trie; the model is damaged")
    if trie.kind == ARPA_KIND:
        return
    for k in range(1, trie.order + 1):
        for table in (f"raw{k}", f"cont{k}") if k < trie.order else (f"raw{k}",):
            value = statistics.get(table)
            if (not isinstance(value, list) or len(value) != 4
                    or not all(is_int(n) and 0 <= n <= MAX_COUNT for n in value)):
                raise UserError(f"{path}: the statistics table {table} is malformed; the model is damaged")


def model_from_document(document: object, path: Path | str = "model") -> NgramModel:
    """Check a decoded model document and turn it into an NgramModel."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise UserError(f"{path} is not an n-gram model of this toolkit (format field missing or different)")
    if document.get("version") != VERSION:
        raise UserError(
            f"{path} is model format version {document.get('version')}; this toolkit reads version {VERSION}"
        )
    order, vocab, root = document.get("order"), document.get("vocab"), document.get("trie")
    if not is_int(order) or not isinstance(vocab, list) or not isinstance(root, dict):
        raise UserError(f"{path} is corrupted (order, vocabulary or trie missing)")
    if not 1 <= order <= MAX_ORDER:
        raise UserError(f"{path}: order {order} is out of range (1..{MAX_ORDER})")
    if document.get("reserved_keys") != {"count": COUNT, "continuation": CONTINUATION}:
        raise UserError(f"{path} uses other reserved trie keys than this toolkit")
    check_vocabulary(vocab, path)
    check_metadata(document, path)
    check_trie_nodes(root, set(vocab), order, path)
    tokenizer = tokenizer_of(document, path)
    try:
        trie = ArrayTrie.from_dict(root, vocab, order)
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError):
        raise UserError(f"{path} is corrupted (the trie's nodes are not what an n-gram model holds)") from None
    check_statistics(document.get("statistics"), trie, path)
    return NgramModel(
        trie,
        order=order,
        tokenizer=tokenizer,
        vocab=vocab,
        corpus=document.get("corpus"),
        info=document.get("info"),
        statistics=document.get("statistics"),
    )


def check_vocabulary(vocab: list, path: Path | str) -> None:
    """A model's vocabulary: distinct, non-empty strings."""
    if not all(isinstance(token, str) and token for token in vocab) or len(set(vocab)) != len(vocab):
        raise UserError(f"{path}: the vocabulary is not a list of distinct tokens; the model is damaged")


def check_trie_nodes(root: dict, vocab: set, order: int, path: Path | str) -> None:
    """Every node of a nested-dict trie, walked without recursion before any array is built.

    A node above the deepest order is an object with a count and a continuation count
    (whole numbers, not bools) and children keyed by vocabulary tokens; a deepest-order
    child is a bare count >= 1. A child's count never exceeds its parent's: every
    occurrence of "h w" is an occurrence of "h". One bad node makes one error line.
    """
    def bad(why: str) -> UserError:
        return UserError(f"{path} is corrupted (the trie {why})")

    stack = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        count, continuation = node.get(COUNT), node.get(CONTINUATION)
        if not (is_int(count) and 0 <= count <= MAX_COUNT and is_int(continuation) and 0 <= continuation <= count):
            raise bad("has a node whose count or continuation count is not a whole number in range")
        for token, child in node.items():
            if token in (COUNT, CONTINUATION):
                continue
            if token not in vocab:
                raise bad(f"holds the token {token[:40]!r}, which is not in the vocabulary")
            if depth + 1 == order:
                if not (is_int(child) and 1 <= child <= count):
                    raise bad(f"has a count of order {order} that is not a whole number from 1 to its parent's count")
            elif not isinstance(child, dict):
                raise bad(f"has a node of order {depth + 1} that is not an object")
            else:
                stack.append((child, depth + 1))
                if not 1 <= (child.get(COUNT) if is_int(child.get(COUNT)) else 0) <= count:
                    raise bad(f"has a count of order {depth + 1} that is not from 1 to its parent's count")
