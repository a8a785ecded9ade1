"""Corpora: the manifest, fetching from a mirror, cleaning, normalising, the held-out split."""
from __future__ import annotations

import hashlib
import os

import pytest

from corpora import Corpus, Document, UserError, dataset_documents, ensure_books, load_corpus, read_manifest
from corpora import split_point, strip_gutenberg
from corpora.documents import corpus_from_record, normalise_text

GUTENBERG = """The Project Gutenberg eBook of Tiny Book\r
\r
This eBook is for the use of anyone anywhere.\r
\r
*** START OF THE PROJECT GUTENBERG EBOOK TINY BOOK ***\r
Chapter 1\r
\r
It was a dark and stormy night.\r
*** END OF THE PROJECT GUTENBERG EBOOK TINY BOOK ***\r
\r
Section 1. General Terms of Use and Redistributing Project Gutenberg-tm\r
"""


def test_strip_gutenberg_keeps_only_the_body():
    body = strip_gutenberg(normalise_text(GUTENBERG))
    assert body == "Chapter 1\n\nIt was a dark and stormy night.\n"
    assert strip_gutenberg("Already clean.\n") == "Already clean.\n"


def test_normalise_text_fixes_line_endings_bom_and_nul():
    assert normalise_text("\ufeffa\r\nb\rc\x00d") == "a\nb\ncd"


def test_manifest_lists_the_default_books():
    books = read_manifest()
    assert len(books) == 27
    alice = next(b for b in books if b.file == "alice_in_wonderland.txt")
    assert alice.gutenberg_id == 11 and alice.author == "Lewis Carroll" and len(alice.sha256) == 64


def test_fetch_from_a_mirror_folder(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "tiny.txt").write_bytes(GUTENBERG.encode("utf-8"))
    clean = "Chapter 1\n\nIt was a dark and stormy night.\n"
    folder = tmp_path / "corpora"
    folder.mkdir()
    digest = hashlib.sha256(clean.encode()).hexdigest()
    (folder / "manifest.tsv").write_text(f"file\tgutenberg_id\ttitle\tauthor\tsha256\ntiny.txt\t1\tTiny\tAnon\t{digest}\n")
    monkeypatch.setenv("CORPORA_MIRROR", str(mirror))
    corpus = load_corpus(folder)  # no .txt yet: the manifest's books are fetched first
    assert (folder / "books" / "tiny.txt").read_text(encoding="utf-8") == clean
    assert [d.name for d in corpus.documents] == ["tiny.txt"]
    assert ensure_books(folder) == [folder / "books" / "tiny.txt"]  # cached: nothing fetched again


def test_missing_mirror_file_is_a_clear_error(tmp_path, monkeypatch):
    folder = tmp_path / "corpora"
    folder.mkdir()
    (folder / "manifest.tsv").write_text("file\tgutenberg_id\ttitle\tauthor\tsha256\nx.txt\t1\tX\tY\t\n")
    monkeypatch.setenv("CORPORA_MIRROR", str(tmp_path))
    with pytest.raises(UserError, match="has no x.txt"):
        load_corpus(folder)


def test_shared_books_match_the_manifest_hashes(shared_dir):
    books = {b.file: b.sha256 for b in read_manifest()}
    corpus = load_corpus(shared_dir / "corpora" / "books")
    assert {d.name: d.sha256 for d in corpus.documents} == books


def test_split_is_deterministic_at_a_line_break():
    text = "".join(f"line {i}\n" for i in range(1000))
    cut = split_point(text, 0.05)
    assert cut == split_point(text, 0.05)
    assert text[cut - 1] == "\n" and 0.94 < cut / len(text) < 0.96
    assert split_point(text, 0.0) == len(text)
    with pytest.raises(UserError):
        split_point(text, 1.0)


def test_corpus_record_reopens_the_same_heldout_text(tmp_path):
    (tmp_path / "a.txt").write_text("".join(f"Sentence {i}.\n" for i in range(200)), encoding="utf-8")
    corpus = load_corpus(tmp_path)
    again = corpus_from_record(corpus.describe())
    assert again.heldout_text() == corpus.heldout_text() != ""
    (tmp_path / "a.txt").write_text("changed\n", encoding="utf-8")
    with pytest.raises(UserError, match="changed or gone"):
        corpus_from_record(corpus.describe())


def test_datasets_text_files_read_locally(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_text("first line\nsecond line\n", encoding="utf-8")
    docs = dataset_documents("text", data_files=[str(path)], streaming=False)
    assert len(docs) == 1 and docs[0].text == "first line\nsecond line"
    corpus = Corpus(docs, 0.0)
    assert corpus.train_text() == "first line\nsecond line"


def test_documents_keep_their_hash():
    doc = Document("x.txt", "hello\n")
    assert doc.sha256 == hashlib.sha256(b"hello\n").hexdigest()


def test_atomic_write_replaces_whole_files_or_nothing(tmp_path):
    import stat

    from corpora.common import atomic_write

    target = tmp_path / "model.json"
    with atomic_write(target, "w") as handle:
        handle.write("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as handle:
            handle.write("new, half")
            raise RuntimeError("crash mid-write")
    assert target.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json"]  # no temporary file left
    mode = stat.S_IMODE(target.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # like any file the user makes, not mkstemp's 0600


def test_a_model_built_from_datasets_cannot_reopen_its_corpus():
    record = {"location": "datasets:wikitext/wikitext-2-raw-v1/train", "heldout_fraction": 0.05, "documents": []}
    with pytest.raises(UserError, match="not at datasets:wikitext.*pass a text file"):
        corpus_from_record(record)
