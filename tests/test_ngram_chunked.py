"""Chunked counting under a memory budget (`ngram.chunked`) gives the in-memory build's arrays, to the bit."""
from __future__ import annotations

import gc
import json
import random
import tempfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from corpora import UserError
from ngram import build, chunked, counting
from ngram.cli import main

TEXT = (
    "I want to be a doctor. I want to know the truth. You want to be free.\n\n"
    "The cat sat on the mat. The dog sat on the log. The cat saw the dog.\n"
) * 30


def zipf_sentences(seed: int, n: int = 150, vocab: int = 25) -> list[list[str]]:
    """Sentences of Zipf-distributed words (some empty): many repeats, a long tail."""
    rng = random.Random(seed)
    return [[f"w{int(rng.paretovariate(1.0)) % vocab}" for _ in range(rng.randint(0, 10))] for _ in range(n)]


def assert_same_build(expected: build.Built, got: build.Built) -> None:
    """Same vocabulary, every level's arrays equal (values and dtypes), same statistics and info."""
    assert got.vocab == expected.vocab
    assert (got.trie.total, got.trie.root_continuation) == (expected.trie.total, expected.trie.root_continuation)
    for k, (a, b) in enumerate(zip(expected.trie.levels, got.trie.levels), start=1):
        a_arrays, b_arrays = a.arrays(), b.arrays()
        assert list(a_arrays) == list(b_arrays)
        for name in a_arrays:
            assert b_arrays[name].dtype == a_arrays[name].dtype, (k, name)
            np.testing.assert_array_equal(b_arrays[name], a_arrays[name], err_msg=f"order {k} {name}")
    assert got.statistics == expected.statistics
    timeless = lambda info: {key: value for key, value in info.items() if key != "build_seconds"}  # noqa: E731
    assert timeless(got.info) == timeless(expected.info)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10**6), order=st.integers(1, 5), min_count=st.integers(1, 2),
       memory=st.sampled_from([30_000, 60_000, 10**7]))
def test_chunked_counting_is_the_in_memory_counting(seed, order, min_count, memory):
    sentences = zipf_sentences(seed)
    expected = build.count_sentences(sentences, order, min_count)
    got = build.count_sentences(iter(sentences), order, min_count, memory=memory)
    assert_same_build(expected, got)


def count_in_pieces(sentences, order: int, memory: int, folder: Path) -> chunked.Counted:
    stream = chunked.write_token_stream(sentences, folder / "stream.npy")
    vocab = build.vocabulary_of(dict(zip(stream.tokens, stream.frequencies.tolist())), 1)
    return chunked.count_stream(stream, vocab, order, memory, folder, counting.Stages([], shown=False))


def test_tiny_budgets_make_many_runs_and_bands_and_still_the_dict_trie(tmp_path):
    sentences = zipf_sentences(7, n=300)
    counted = count_in_pieces(sentences, 4, 30_000, tmp_path)
    assert counted.chunks >= 10 and counted.bands >= 5  # many runs merged, <s> split by second tokens
    expected = build.count_sentences(sentences, 4, 1)
    assert counted.statistics == expected.statistics
    root, _ = counting.build_trie([[1, *[expected.vocab.index(t) for t in s], 2] for s in sentences],
                                  expected.vocab, 4, bos_id=1)
    assert counted.trie.to_dict() == root  # the readable reference: the nested-dict trie
    level_files = {f"k{k}.{name}.npy" for k in range(1, 5) for name in ("ids", "counts")} | {
        f"k{k}.{name}.npy" for k in range(1, 4) for name in ("continuation", "first_child")}
    assert {p.name for p in tmp_path.iterdir()} == level_files | {"stream.npy"}  # runs deleted once merged


def test_continuation_counts_add_up_over_chunks():
    """'b' follows 'a' in one chunk and 'c' in another: its continuation count is 2, not 1 twice."""
    sentences = [["a", "b"]] * 50 + [["c", "b"]] * 50
    got = build.count_sentences(sentences, 2, 1, memory=12_000)
    b = got.trie.root["b"]
    assert b[""] == 100 and b["\0"] == 2


@pytest.mark.parametrize("text, expected", [("2G", 2 * 2**30), ("512m", 512 * 2**20), ("64K", 65536),
                                            ("1.5G", int(1.5 * 2**30)), ("1000", 1000), ("3GB", 3 * 2**30)])
def test_memory_sizes_are_read_as_people_write_them(text, expected):
    assert chunked.parse_memory(text) == expected


@pytest.mark.parametrize("text", ["", "two gigs", "-1G", "0", "1X"])
def test_bad_memory_sizes_are_refused(text):
    with pytest.raises(UserError, match="--memory must be a size"):
        chunked.parse_memory(text)


def test_a_budget_too_small_names_the_minimum():
    with pytest.raises(UserError, match=r"too small to count 5-grams; it needs at least 10K"):
        build.count_sentences([["a", "b"]], 5, 1, memory=1000)
    with pytest.raises(UserError, match=r"too small to merge the counts; it needs at least \d"):
        build.count_sentences([["a", "b"]] * 2000, 5, 1, memory=10_300)


def run(*args: str, ok: bool = True):
    result = CliRunner().invoke(main, list(args))
    if ok:
        assert result.exit_code == 0, result.output
    return result


@pytest.fixture()
def corpus_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "books"
    folder.mkdir()
    (folder / "one.txt").write_text(TEXT, encoding="utf-8")
    (folder / "two.txt").write_text(TEXT.replace("cat", "fox"), encoding="utf-8")
    return folder


@pytest.fixture()
def work_tmp(tmp_path: Path, monkeypatch) -> Path:
    """The system temporary folder, moved where the test can see what is left in it."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def folder_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_build_with_memory_writes_the_same_model_folder(corpus_dir, tmp_path, work_tmp):
    run("build", str(corpus_dir), "-o", str(tmp_path / "a.ngram"), "--no-progress")
    run("build", str(corpus_dir), "-o", str(tmp_path / "b.ngram"), "--no-progress", "--memory", "64K")
    a, b = folder_files(tmp_path / "a.ngram"), folder_files(tmp_path / "b.ngram")
    header_a, header_b = (json.loads(files.pop("header.json")) for files in (a, b))
    for header in (header_a, header_b):
        header["metadata"]["info"].pop("build_seconds")
    assert header_a == header_b and a == b  # every .npy file byte for byte
    gc.collect()
    assert list(work_tmp.iterdir()) == []  # the work folder goes with the model


def test_build_shows_numbered_stages(corpus_dir, tmp_path, work_tmp):
    result = run("build", str(corpus_dir), "-o", str(tmp_path / "m.ngram"), "--memory", "64K", "--json")
    banners = [line for line in result.stderr.splitlines() if line.startswith("===")]
    assert banners == ["=== 1/5 Tokenizing ===", "=== 2/5 Counting chunks ===", "=== 3/5 Merging sorted runs ===",
                       "=== 4/5 Computing continuation counts and statistics ===", "=== 5/5 Saving ==="]
    assert json.loads(result.stdout)["order"] == 5
    quiet = run("build", str(corpus_dir), "-o", str(tmp_path / "m.ngram"), "--memory", "64K", "--no-progress")
    assert "===" not in quiet.output


def test_a_hopeless_budget_is_one_line(corpus_dir, tmp_path):
    result = run("build", str(corpus_dir), "-o", str(tmp_path / "m.ngram"), "--memory", "1K", ok=False)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == ["Error: --memory 1,024 bytes is too small to count 5-grams; "
                                                  "it needs at least 10K"]
    assert "--memory must be a size" in run("build", str(corpus_dir), "--memory", "lots", ok=False).output


def interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("phase", ["ngram.chunked.write_token_stream", "ngram.chunked.write_runs",
                                   "ngram.chunked.merge_band", "ngram.chunked.continuation_band",
                                   "ngram.arrays.np.save"])
def test_ctrl_c_in_a_chunked_phase_keeps_the_old_model_and_leaves_nothing(phase, corpus_dir, tmp_path, work_tmp,
                                                                           monkeypatch):
    target = tmp_path / "m.ngram"
    run("build", str(corpus_dir), "-o", str(target), "--order", "2", "--no-progress")
    before = folder_files(target)
    monkeypatch.setattr(phase, interrupt)
    result = run("build", str(corpus_dir), "-o", str(target), "--memory", "64K", "--no-progress", ok=False)
    assert result.exit_code == 130
    assert "Interrupted; nothing was written." in result.output
    assert folder_files(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["books", "m.ngram", "tmp"]
    gc.collect()
    assert list(work_tmp.iterdir()) == []


# ---------------------------------------------------------------- streamed datasets


def test_a_local_text_dataset_streams_in_documents_with_their_heldout_tails(tmp_path):
    from corpora import dataset_corpus

    path = tmp_path / "lines.txt"
    path.write_text("".join(f"line number {i}\n" for i in range(100)), encoding="utf-8")
    corpus = dataset_corpus("text", data_files=[str(path)], heldout_fraction=0.1, document_chars=300)
    train = list(corpus.train_texts())
    described = corpus.describe()["documents"]
    assert len(train) == len(described) > 3  # rows grouped into several documents
    assert described[0]["name"] == "text/train#0" and all(d["split_at"] < d["chars"] for d in described)
    held = list(corpus.heldout_texts())
    assert "".join(t + h for t, h in zip(train, held)).count("line number") == 100


def test_build_from_a_local_text_dataset_offline_chunked_or_not(tmp_path, work_tmp):
    path = tmp_path / "lines.txt"
    path.write_text(TEXT, encoding="utf-8")
    common = ["--dataset", "text", "--data-files", str(path), "--order", "3", "--no-progress", "--json"]
    a = json.loads(run("build", "-o", str(tmp_path / "a.ngram"), *common).stdout)
    b = json.loads(run("build", "-o", str(tmp_path / "b.ngram"), "--memory", "64K", *common).stdout)
    assert a["documents"] == b["documents"] == 1 and a["training_tokens"] == b["training_tokens"] > 1000
    assert folder_files(tmp_path / "a.ngram").keys() == folder_files(tmp_path / "b.ngram").keys()
    header = json.loads((tmp_path / "b.ngram" / "header.json").read_text())
    assert header["metadata"]["corpus"]["location"] == "datasets:text/train"


def test_a_hub_dataset_offline_is_one_line(tmp_path):
    result = run("build", "--dataset", "surely-not-a-cached/dataset-xyz", "-o", str(tmp_path / "m.ngram"),
                 "--no-progress", ok=False)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: could not read dataset surely-not-a-cached/dataset-xyz")
    assert not (tmp_path / "m.ngram").exists()


# ---------------------------------------------------------------- the scale run's sampled text


def test_sampled_text_continues_a_seen_context_and_backs_off_as_kneser_ney_does():
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from ngram_scale import Sampler, sentences_text

    from ngram import NgramModel

    model = NgramModel.from_sentences([s.split() for s in TEXT.replace(".", " .\n").splitlines() if s.strip()], 3)
    sampler = Sampler(model, streams=16, seed=1)
    steps = np.stack([sampler.step() for _ in range(60)], axis=1)
    again = Sampler(model, streams=16, seed=1)
    assert (np.stack([again.step() for _ in range(60)], axis=1) == steps).all()  # the same seed, the same text
    novel = 0
    for row in steps.tolist():
        context = ["<s>"]
        for token_id in row:
            token = model.vocab[token_id]
            assert token != "<s>"
            follows = []  # for each suffix of the context (longest first): was the token seen after it?
            for k in (2, 1, 0):
                node = model.root
                for seen in context[len(context) - k:] if k else []:
                    node = node[seen] if seen in node and not isinstance(node[seen], int) else {}
                follows.append(token in node)
            assert any(follows), (context, token)  # always a follower of the context or a suffix of it
            novel += not follows[0] and len(context) >= 2  # a trigram the model never had: backed off
            context = ["<s>"] if token == "</s>" else [*context, token]
    assert novel > 0  # γ(h) > 0: some draws come from shorter contexts, making new n-grams
    text = sentences_text(steps[0].tolist(), model.vocab, sampler.eos, sampler.unk)
    assert "</s>" not in text and "<unk>" not in text and text.count("\n\n") == (steps[0] == sampler.eos).sum()
