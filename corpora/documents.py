"""Reading text documents and the deterministic held-out split.

A *document* is one book (or one text file). Every document is split the same way:
its first 95% (cut at a line break) is for building models, its last 5% is held out
for evaluation and never used for building. The split is recorded with each model
so anyone can see, and re-create, exactly which text was held out.
"""
from __future__ import annotations

import glob
import hashlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from .common import UserError
from .validate import MAX_TEXT_BYTES, read_limited_bytes

DEFAULT_HELDOUT_FRACTION = 0.05


@dataclass
class Document:
    """One text: its name, its full text (UTF-8, LF line endings) and where it came from."""

    name: str
    text: str
    source: str = ""
    sha256: str = field(default="")

    def __post_init__(self) -> None:
        if not self.sha256:
            self.sha256 = hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def normalise_text(text: str) -> str:
    """Drop a byte-order mark and NUL characters; turn CRLF and CR line endings into LF."""
    text = text.lstrip("\ufeff").replace("\x00", "")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def decode_bytes(data: bytes, name: str) -> str | None:
    """Decode a file's bytes as UTF-8; fall back to Windows-1252 with a warning.

    Returns None (with a warning) for data that looks binary (it holds NUL bytes).
    """
    if b"\x00" in data[:65536]:
        warnings.warn(f"skipping {name}: it looks binary (NUL bytes), not text", stacklevel=2)
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        warnings.warn(f"{name} is not valid UTF-8; decoded as Windows-1252 instead", stacklevel=2)
        return data.decode("cp1252", errors="replace")


def read_text_file(path: str | Path) -> Document | None:
    """Read one text file as a Document (None if it is binary)."""
    path = Path(path)
    text = decode_bytes(read_limited_bytes(path, MAX_TEXT_BYTES, "text file"), str(path))
    if text is None:
        return None
    return Document(name=path.name, text=normalise_text(text), source=str(path))


def read_text_argument(path: str | Path, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """A text file the user named (to score, say): UTF-8 (or Windows-1252) with LF endings.

    Missing files, folders, binary files and empty files are one-line UserErrors; so are
    named pipes and devices (a pipe would block forever, /dev/zero never ends) and files
    over `max_bytes`, which are refused before a byte is read.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"text file not found: {path}")
    if path.is_dir():
        raise UserError(f"{path} is a folder, not a text file")
    data = read_limited_bytes(path, max_bytes, "text file")
    if b"\x00" in data[:65536]:
        raise UserError(f"{path} looks binary (it has NUL bytes), not text")
    text = normalise_text(decode_bytes(data, str(path)) or "")
    if not text.strip():
        raise UserError(f"{path} is empty; there is nothing to score")
    return text


def text_files_under(folder: str | Path) -> list[Path]:
    """Every `.txt` file below `folder`, sorted so builds are deterministic."""
    folder = Path(folder)
    if not folder.exists():
        raise UserError(f"corpus folder not found: {folder}")
    if folder.is_file():
        return [folder]
    return sorted(p for p in folder.rglob("*.txt") if p.is_file())


def read_documents(source: str | Path) -> list[Document]:
    """Read every readable `.txt` document under a folder (or one file).

    If the folder holds a `manifest.tsv` (as the project's `corpora/` folder does) and
    no `.txt` files yet, the manifest's books are fetched first (see `corpora.fetch`).
    """
    from .fetch import ensure_books  # local import: fetching is rarely needed

    source = Path(source)
    paths = text_files_under(source)
    if not paths and (source / "manifest.tsv").is_file():
        ensure_books(source)
        paths = text_files_under(source)
    if not paths:
        raise UserError(f"no .txt files found in {source}")
    documents = [doc for doc in map(read_text_file, paths) if doc is not None and doc.text.strip()]
    if not documents:
        raise UserError(f"no readable text in {source} (every .txt file was empty or binary)")
    return documents


def stream_corpus(source: str | Path, heldout_fraction: float = DEFAULT_HELDOUT_FRACTION) -> "StreamedCorpus":
    """`load_corpus` that reads one file at a time while the corpus is read (for builds in
    bounded memory): the same documents, in the same order, with the same record."""
    from .fetch import ensure_books  # local import: fetching is rarely needed

    source = Path(source)
    paths = text_files_under(source)
    if not paths and (source / "manifest.tsv").is_file():
        ensure_books(source)
        paths = text_files_under(source)
    if not paths:
        raise UserError(f"no .txt files found in {source}")

    def documents() -> Iterator[Document]:
        for path in paths:
            doc = read_text_file(path)
            if doc is not None and doc.text.strip():
                yield doc

    return StreamedCorpus(documents, heldout_fraction, location=str(source.resolve()), expected=len(paths))


def split_point(text: str, heldout_fraction: float = DEFAULT_HELDOUT_FRACTION) -> int:
    """Character offset where the held-out tail of `text` starts.

    The cut is at `1 - heldout_fraction` of the text, moved forward to the next line
    break so that no word or line is split. Fraction 0 holds nothing out.
    """
    if not 0.0 <= heldout_fraction < 1.0:
        raise UserError(f"held-out fraction must be in [0, 1), got {heldout_fraction}")
    if heldout_fraction == 0.0:
        return len(text)
    cut = int(len(text) * (1.0 - heldout_fraction))
    newline = text.find("\n", cut)
    return newline + 1 if newline != -1 else cut


@dataclass
class Corpus:
    """A set of documents with a held-out split: what a model is built from."""

    documents: list[Document]
    heldout_fraction: float = DEFAULT_HELDOUT_FRACTION
    location: str = ""

    def split_offsets(self) -> list[int]:
        return [split_point(doc.text, self.heldout_fraction) for doc in self.documents]

    def train_texts(self) -> Iterator[str]:
        """The building part of every document."""
        for doc, cut in zip(self.documents, self.split_offsets()):
            yield doc.text[:cut]

    def heldout_texts(self) -> Iterator[str]:
        """The held-out tail of every document (never used for building)."""
        for doc, cut in zip(self.documents, self.split_offsets()):
            yield doc.text[cut:]

    def train_text(self) -> str:
        return "\n\n".join(self.train_texts())

    def heldout_text(self) -> str:
        return "\n\n".join(t for t in self.heldout_texts() if t)

    def describe(self) -> dict:
        """Metadata to record with a model: where, which files, their hashes and split."""
        return {
            "location": self.location,
            "heldout_fraction": self.heldout_fraction,
            "split": "last fraction of every document, cut at a line break",
            "documents": [
                {"name": doc.name, "sha256": doc.sha256, "chars": len(doc.text), "split_at": cut}
                for doc, cut in zip(self.documents, self.split_offsets())
            ],
        }


def load_corpus(source: str | Path, heldout_fraction: float = DEFAULT_HELDOUT_FRACTION) -> Corpus:
    """Read a folder (or file) of text into a Corpus with the standard held-out split."""
    documents = read_documents(source)
    return Corpus(documents, heldout_fraction, location=str(Path(source).resolve()))


def corpus_from_record(record: dict) -> Corpus:
    """Re-open the corpus a model was built from, checking that no file has changed.

    A model built from a `datasets` source records a location ``datasets:NAME``, which
    is no path: it is refused by the first check, like a folder that has gone.
    """
    check_corpus_record(record)
    location = record.get("location", "")
    if not location or not Path(location).exists():
        raise UserError(
            f"the corpus this model was built from is not at {location or '(unknown)'}; "
            "pass a text file to evaluate instead"
        )
    base = Path(location)
    documents = []
    for entry in record["documents"]:
        matches = [base] if base.is_file() else sorted(base.rglob(glob.escape(entry["name"])))
        doc = next((d for d in map(read_text_file, matches) if d and d.sha256 == entry["sha256"]), None)
        if doc is None:
            raise UserError(f"{entry['name']} in {location} has changed or gone since the model was built")
        documents.append(doc)
    return Corpus(documents, record["heldout_fraction"], location=location)


def check_corpus_record(record: object) -> None:
    """A corpus record as a model file holds it (`Corpus.describe`), checked for type before
    use: the location a string, the fraction in [0, 1), each document a plain file name
    (no folders: the name is searched for below the location) with its sha256."""
    documents = record.get("documents") if isinstance(record, dict) else None
    fraction = record.get("heldout_fraction") if isinstance(record, dict) else None
    well_formed = (
        isinstance(record, dict)
        and isinstance(record.get("location", ""), str)
        and isinstance(fraction, (int, float)) and not isinstance(fraction, bool) and 0.0 <= fraction < 1.0
        and isinstance(documents, list)
        and all(isinstance(d, dict) and isinstance(d.get("sha256"), str) and is_plain_name(d.get("name"))
                for d in documents)
    )
    if not well_formed:
        raise UserError("the model's record of its corpus is malformed (location, held-out fraction, documents)")


def is_plain_name(name: object) -> bool:
    """A file name without folders (what `Document.name` is), so no search can leave the location."""
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name


def dataset_documents(
    name: str,
    config: str | None = None,
    split: str = "train",
    column: str = "text",
    data_files: Iterable[str] | None = None,
    streaming: bool = True,
) -> list[Document]:
    """Read a text source through the `datasets` library, as one document.

    `name="text"` with `data_files` reads local text files line by line; any other
    name is a Hugging Face dataset (needs network or a local cache), streamed.
    The rows of `column` are joined with newlines into one document, which then gets
    the usual held-out split at its end. For large datasets use `dataset_corpus`,
    which never holds the whole text.
    """
    lines = list(dataset_rows(name, config, split, column, data_files, streaming))
    text = normalise_text("\n".join(lines))
    if not text.strip():
        raise UserError(f"dataset {name} ({split}, column {column!r}) holds no text")
    label = dataset_label(name, config, split)
    return [Document(name=label, text=text, source=f"datasets:{label}")]


def dataset_label(name: str, config: str | None, split: str) -> str:
    return "/".join(x for x in (name, config, split) if x)


def dataset_rows(
    name: str,
    config: str | None = None,
    split: str = "train",
    column: str = "text",
    data_files: Iterable[str] | None = None,
    streaming: bool = True,
) -> Iterator[str]:
    """The texts of `column`, row by row, read through `datasets` (streamed: nothing held whole).

    Every failure of `datasets` — offline with no cache, a name that does not exist, a
    missing column — becomes one UserError line, whether it happens on opening or while
    the rows stream in.
    """
    try:
        import datasets  # slow to import, so only when asked for
    except ImportError as err:  # pragma: no cover - datasets is a dependency
        raise UserError("the datasets library is not installed") from err
    files = list(data_files) if data_files else None
    try:
        rows = iter(datasets.load_dataset(name, config, split=split, data_files=files, streaming=streaming))
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            yield row[column]
    except KeyError as err:
        raise UserError(f"dataset {name} has no column {column!r}") from err
    except Exception as err:  # datasets raises many kinds; report them in one line
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise UserError(f"could not read dataset {name} (offline? Hugging Face datasets need the network "
                        f"or a local cache): {first}") from err


DATASET_DOCUMENT_CHARS = 1 << 20


def dataset_corpus(
    name: str,
    config: str | None = None,
    split: str = "train",
    column: str = "text",
    data_files: Iterable[str] | None = None,
    heldout_fraction: float = DEFAULT_HELDOUT_FRACTION,
    document_chars: int = DATASET_DOCUMENT_CHARS,
) -> "StreamedCorpus":
    """A dataset as a corpus read while it streams: rows grouped into documents of about
    `document_chars` characters, each with the usual held-out tail.

    A streamed dataset's length is unknown until its end, so "the last 5% of the
    dataset" cannot be set aside as it goes by; the last 5% of every group can.
    """
    label = dataset_label(name, config, split)

    def documents() -> Iterator[Document]:
        lines: list[str] = []
        size, number = 0, 0
        for line in dataset_rows(name, config, split, column, data_files):
            lines.append(line)
            size += len(line) + 1
            if size >= document_chars:
                yield Document(f"{label}#{number}", normalise_text("\n".join(lines)), f"datasets:{label}")
                lines, size, number = [], 0, number + 1
        text = normalise_text("\n".join(lines))
        if text.strip() or number == 0:
            yield Document(f"{label}#{number}", text, f"datasets:{label}")

    return StreamedCorpus(documents, heldout_fraction, location=f"datasets:{label}")


class StreamedCorpus(Corpus):
    """A Corpus whose documents are made on demand, one at a time, never all held.

    `documents` stays empty; reading `train_texts` records each document's name, hash
    and split as it goes by, which `describe` then reports (so describe after reading).
    """

    def __init__(self, open_documents, heldout_fraction: float = DEFAULT_HELDOUT_FRACTION, location: str = "",
                 expected: int | None = None) -> None:
        super().__init__([], heldout_fraction, location)
        self.open_documents = open_documents
        self.expected = expected  # how many documents will come, if known (for a progress bar)
        self.seen: list[dict] = []

    def train_texts(self) -> Iterator[str]:
        self.seen = []
        for doc in self.open_documents():
            cut = split_point(doc.text, self.heldout_fraction)
            self.seen.append({"name": doc.name, "sha256": doc.sha256, "chars": len(doc.text), "split_at": cut})
            yield doc.text[:cut]
        if not any(entry["chars"] for entry in self.seen):
            raise UserError(f"{self.location} holds no text")

    def heldout_texts(self) -> Iterator[str]:
        for doc in self.open_documents():
            yield doc.text[split_point(doc.text, self.heldout_fraction):]

    def describe(self) -> dict:
        described = super().describe()
        described["documents"] = list(self.seen)
        return described
