"""Text for both models: the default books, fetching and cleaning them, and the held-out split.

    >>> from corpora import load_corpus
    >>> corpus = load_corpus("corpora/")        # every .txt below the folder
    >>> train = corpus.train_text()             # the first 95% of every book
    >>> heldout = corpus.heldout_text()         # the last 5%, never used for building
"""
from .common import UserError, atomic_write, cache_dir
from .documents import (
    DEFAULT_HELDOUT_FRACTION,
    Corpus,
    Document,
    StreamedCorpus,
    corpus_from_record,
    dataset_corpus,
    dataset_documents,
    load_corpus,
    read_documents,
    split_point,
)

_FETCH_NAMES = ("Book", "ensure_books", "read_manifest", "strip_gutenberg")


def __getattr__(name: str):
    """Fetching (network code, progress bars) is imported only when first asked for,
    so that importing a model package never imports urllib or tqdm."""
    if name in _FETCH_NAMES:
        from . import fetch

        return getattr(fetch, name)
    raise AttributeError(f"module 'corpora' has no attribute {name!r}")


__all__ = [
    "Book",
    "Corpus",
    "DEFAULT_HELDOUT_FRACTION",
    "Document",
    "UserError",
    "atomic_write",
    "cache_dir",
    "StreamedCorpus",
    "corpus_from_record",
    "dataset_corpus",
    "dataset_documents",
    "ensure_books",
    "load_corpus",
    "read_documents",
    "read_manifest",
    "split_point",
    "strip_gutenberg",
]
