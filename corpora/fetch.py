"""Getting the default books: the manifest, downloading, and cleaning Gutenberg texts.

`ensure_books(folder)` fetches every book listed in `manifest.tsv` that is not yet
cached in `folder/books/`. By default the books come from Project Gutenberg; the
environment variable CORPORA_MIRROR names a local folder or a URL to fetch the
same file names from instead (CI uses a local folder of cleaned copies).
"""
from __future__ import annotations

import csv
import hashlib
import os
import re
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from .common import UserError, atomic_write
from .documents import decode_bytes, normalise_text

MANIFEST = Path(__file__).with_name("manifest.tsv")
GUTENBERG_URL = "https://www.gutenberg.org/cache/epub/{id}/pg{id}.txt"

_START = re.compile(r"^\*\*\*\s*START OF (THE|THIS) PROJECT GUTENBERG EBOOK.*$", re.I | re.M)
_END = re.compile(r"^\*\*\*\s*END OF (THE|THIS) PROJECT GUTENBERG EBOOK.*$", re.I | re.M)
_OLD_END = re.compile(r"^End of (the )?Project Gutenberg'?s? .*$", re.I | re.M)


@dataclass(frozen=True)
class Book:
    """One manifest entry."""

    file: str
    gutenberg_id: int
    title: str
    author: str
    sha256: str


def read_manifest(path: str | Path = MANIFEST) -> list[Book]:
    """The books listed in a manifest (tab-separated: file, gutenberg_id, title, author, sha256)."""
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [Book(r["file"], int(r["gutenberg_id"]), r["title"], r["author"], r.get("sha256", "")) for r in rows]


def strip_gutenberg(text: str) -> str:
    """Keep only the body between Gutenberg's START and END markers (if present)."""
    start = _START.search(text)
    if start:
        text = text[start.end():]
    end = _END.search(text) or _OLD_END.search(text)
    if end:
        text = text[: end.start()]
    return text.strip("\n") + "\n"


def clean_book(data: bytes, name: str) -> str:
    """Raw downloaded bytes → clean UTF-8 body text with LF line endings."""
    text = decode_bytes(data, name)
    if text is None:
        raise UserError(f"{name}: downloaded data is not text")
    return strip_gutenberg(normalise_text(text))


def _download(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "trie-vs-transformer"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read()


def fetch_raw(book: Book, mirror: str | None) -> bytes:
    """The raw bytes of one book: from the mirror folder/URL, or from Project Gutenberg."""
    if mirror and "://" not in mirror:
        path = Path(mirror) / book.file
        if not path.is_file():
            raise UserError(f"CORPORA_MIRROR={mirror} has no {book.file}")
        return path.read_bytes()
    url = f"{mirror.rstrip('/')}/{book.file}" if mirror else GUTENBERG_URL.format(id=book.gutenberg_id)
    try:
        return _download(url)
    except (urllib.error.URLError, OSError) as err:
        raise UserError(
            f"could not download {book.title} from {url} ({err}); "
            "set CORPORA_MIRROR to a folder or URL holding the books"
        ) from err


def ensure_books(folder: str | Path, manifest: str | Path | None = None) -> list[Path]:
    """Fetch (once) every manifest book into `folder/books/`; return their paths."""
    folder = Path(folder)
    books = read_manifest(manifest or (folder / "manifest.tsv" if (folder / "manifest.tsv").exists() else MANIFEST))
    target = folder / "books"
    mirror = os.environ.get("CORPORA_MIRROR") or None
    missing = [b for b in books if not (target / b.file).is_file()]
    for book in tqdm(missing, desc="fetching books", unit="book", disable=not missing):
        text = clean_book(fetch_raw(book, mirror), book.file)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if book.sha256 and digest != book.sha256:
            warnings.warn(f"{book.file}: cleaned text differs from the manifest's sha256 (another edition?)")
        with atomic_write(target / book.file) as handle:
            handle.write(text.encode("utf-8"))
    return [target / b.file for b in books]

