"""The Spark build (`ngram.spark`) against the single-machine build, its readable reference.

One Spark session (local[2]) is shared by the module; the identity test builds both
models from the same small corpus and compares every array, the statistics and a
perplexity. Skipped, with the reason, when PySpark or Java is missing — unless
TTT_REQUIRE_ALL=1 (as CI sets), where a missing piece is a failure.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from corpora import UserError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::ResourceWarning",
                                        "ignore:PySpark does not yet fully support pandas:FutureWarning")


def missing_spark_piece() -> str | None:
    """Why the Spark tests cannot run here (None: they can)."""
    for module in ("pyspark", "pyarrow"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install -e '.[spark]')"
    home = os.environ.get("JAVA_HOME")
    if not (Path(home, "bin", "java").exists() if home else shutil.which("java")):
        return "no Java runtime (apt-get install openjdk-17-jre-headless)"
    return None


def require_spark() -> None:
    """Skip with the reason, or fail when TTT_REQUIRE_ALL=1 asks for every test to run."""
    reason = missing_spark_piece()
    if reason and os.environ.get("TTT_REQUIRE_ALL") == "1":
        pytest.fail(f"TTT_REQUIRE_ALL=1 but {reason}")
    if reason:
        pytest.skip(reason)


TEXT = {
    "one.txt": "The cat sat on the mat. The dog sat on the log.\n\nThe cat saw the dog. A cat and a dog.\n"
               "The end of the first story came at last.\nHeld out line here.\n",
    "sub/two.txt": "The dog ran to the cat. The cat ran to the mat!\nA dog, a cat and a mat.\n"
                   "Is the cat on the mat? Yes, the cat is on the mat.\nLast line held out.\n",
    "three.txt": "Caf\u00e9 au lait and the cat.\r\nThe mat was red. The dog was brown.\r\nEnd.\r\n",
    "sub-x.txt": "The log was red. A dog and a cat.\nThe end.\n",  # sorts before sub/ as a path, after as a string
    "my book.txt": "The cat ran. The dog sat.\nThe cat is on the log.\n",  # a space: %20 in Spark's URI
}


@pytest.fixture(scope="module")
def corpus_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("spark-corpus")
    for name, text in TEXT.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    (folder / "notes.md").write_text("not a .txt file: never read\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def session():
    """One Spark session (local[2], quiet) for the module: starting Spark takes seconds."""
    require_spark()
    from ngram.spark import spark_session

    with spark_session("local[2]") as spark:
        yield spark


@pytest.fixture(scope="module")
def built(corpus_folder, session):
    """The same corpus built both ways (order 4, min count 2)."""
    from ngram import NgramModel
    from ngram.spark import Source, build_model

    local = NgramModel.build(corpus_folder, order=4, heldout_fraction=0.2, progress=False)
    spark, report = build_model(Source(str(corpus_folder)), order=4, heldout_fraction=0.2, spark=session)
    return local, spark, report


def test_spark_build_is_the_single_machine_build(built):
    """The same n-grams, counts and continuation counts at every order, the same arrays."""
    local, spark, _ = built
    assert spark.vocab == local.vocab
    assert spark.trie.total == local.trie.total and spark.trie.root_continuation == local.trie.root_continuation
    for k, (a, b) in enumerate(zip(local.trie.levels, spark.trie.levels), start=1):
        for name, array in a.arrays().items():
            assert np.array_equal(np.asarray(array), np.asarray(b.arrays()[name])), f"order {k}: {name} differs"
        assert set(a.arrays()) == set(b.arrays())
    assert spark.trie.to_dict() == local.trie.to_dict()
    assert set(spark.trie.kn_tables) == set(local.trie.kn_tables) and local.trie.kn_tables  # saved with the model
    for name, table in local.trie.kn_tables.items():
        assert np.array_equal(table, spark.trie.kn_tables[name]), f"Kneser-Ney table {name} differs"


def test_spark_build_records_the_same_corpus_and_statistics(built):
    local, spark, _ = built
    assert spark.statistics == local.statistics
    assert spark.corpus == local.corpus
    assert spark.info["training_tokens"] == local.info["training_tokens"]
    assert spark.info["training_sentences"] == local.info["training_sentences"]
    assert spark.info["engine"] == "spark"


def test_spark_model_scores_a_text_as_the_single_machine_model(built):
    local, spark, _ = built
    text = "The cat sat on the dog. A mat ran to the log and the end came."
    assert spark.score(text).nll == pytest.approx(local.score(text).nll, rel=1e-12)
    assert spark.score(text).per_word == pytest.approx(local.score(text).per_word, rel=1e-12)


def test_spark_model_saves_and_loads_as_any_model(built, tmp_path):
    from ngram.io import load_model, save_model

    local, spark, _ = built
    loaded = load_model(save_model(spark, tmp_path / "spark.ngram"))
    assert loaded.predict("the cat").candidates[0].token == local.predict("the cat").candidates[0].token
    assert loaded.trie.to_dict() == local.trie.to_dict()


@pytest.mark.parametrize("order", [2, pytest.param(1, marks=pytest.mark.slow)])
def test_spark_identity_holds_for_characters(corpus_folder, session, order):
    """Another tokenizer, min count 1, low orders (1: no continuation counts): the same model."""
    from ngram import NgramModel
    from ngram.spark import Source, build_model

    local = NgramModel.build(corpus_folder, order=order, tokens="chars", min_count=1, progress=False)
    spark, _ = build_model(Source(str(corpus_folder)), order=order, tokens="chars", min_count=1, spark=session)
    assert spark.trie.to_dict() == local.trie.to_dict() and spark.statistics == local.statistics


@pytest.mark.parametrize("buckets, positions", [(None, 1 << 19), (20, 40)])
def test_numpy_counting_agrees_with_the_dataframe_reference(corpus_folder, session, tmp_path, buckets, positions,
                                                            monkeypatch):
    """The fast path (NumPy per piece of text, blocks summed per bucket) = windows grouped in
    Spark; also with many buckets and pieces of a few sentences, so that every k-gram is
    counted in several pieces, its suffix lands in another bucket, and heavy first tokens
    are split by their second token."""
    import pyarrow.parquet as pq

    from ngram import spark

    edges_used, original = [], spark.bucket_edges
    monkeypatch.setattr(spark, "bucket_edges", lambda *args: edges_used.append(original(*args)) or edges_used[-1])

    from corpora.tokenizers import get_tokenizer
    from ngram.spark import count_table, count_tables, documents_frame, encoded_frame, file_table, sentence_frame, \
        spark_vocabulary

    documents = documents_frame(file_table(session, str(corpus_folder)), get_tokenizer().config(), 0.05)
    documents = documents.repartition(3)  # k-grams split over partitions
    vocab, frequencies, tokens = spark_vocabulary(documents, 1)
    sentences = sentence_frame(documents)
    reference = {(row.order, tuple(row.ngram)): (row["count"], row.continuation)
                 for row in count_table(encoded_frame(session, sentences, vocab), 3).collect()}
    statistics = count_tables(session, documents, vocab, frequencies, tokens, sentences.count(), 3,
                              str(tmp_path / "counts"), buckets=buckets, positions=positions)
    fast, files = {}, 0
    for k in (1, 2, 3):
        for file in sorted((tmp_path / "counts" / f"order={k}").glob("*.parquet")):
            files += 1
            table = pq.read_table(file).to_pydict()
            keys = [tuple(np.frombuffer(key, ">u4").tolist()) for key in table["key"]]
            assert keys == sorted(keys), f"{file.name} is not sorted"
            for key, count, left in zip(keys, table["count"], table.get("continuation", [None] * len(keys))):
                fast[(k, key)] = (count, left)
    assert len(reference) > 100 and fast == reference
    assert statistics["ngrams"] == [sum(1 for order, _ in reference if order == k) for k in (1, 2, 3)]
    if buckets:
        assert files > 3 * 3  # the buckets really split every order
        assert any(second >= 0 for _, second in edges_used[0])  # a heavy first token was split


def test_spark_build_of_a_dataset_is_the_single_machine_build(corpus_folder, session):
    """--dataset text --data-files: rows grouped into documents as on one machine."""
    from corpora import dataset_corpus
    from ngram import NgramModel
    from ngram.spark import Source, build_model

    files = (str(corpus_folder / "one.txt"), str(corpus_folder / "sub" / "two.txt"))
    local = NgramModel.build(dataset_corpus("text", data_files=files, heldout_fraction=0.2), order=3, progress=False)
    spark, _ = build_model(Source(dataset="text", data_files=files), order=3, heldout_fraction=0.2, spark=session)
    assert spark.trie.to_dict() == local.trie.to_dict() and spark.statistics == local.statistics
    assert spark.corpus == local.corpus


# ------------------------------------------------------------------ bad input


def test_missing_java_is_one_line_naming_the_package(monkeypatch):
    from ngram import spark

    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(spark.shutil, "which", lambda name: None)
    with pytest.raises(UserError, match="openjdk-17-jre-headless"):
        spark.require_java()


def test_missing_pyspark_names_the_extra(monkeypatch):
    from ngram import spark

    monkeypatch.setitem(sys.modules, "pyspark", None)  # import pyspark now raises ImportError
    with pytest.raises(UserError, match=r"pyspark.*\.\[spark\]"):
        spark.require_pyspark()


def test_unreachable_master_fails_fast_naming_the_url(corpus_folder):
    """One line naming the URL, before Spark starts (Spark itself retries for a minute)."""
    require_spark()
    from click.testing import CliRunner

    from ngram.cli import main

    url = "spark://127.0.0.1:9"  # the discard port: nothing listens
    result = CliRunner().invoke(main, ["build", str(corpus_folder), "--engine", "spark", "--spark-master", url])
    assert result.exit_code != 0
    assert result.output.startswith("Error: cannot reach the Spark master spark://127.0.0.1:9")
    assert len(result.output.strip().splitlines()) == 1


def test_empty_missing_and_binary_sources_are_refused(tmp_path, session):
    from ngram.spark import Source, build_model

    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no .txt files"):
        build_model(Source(str(tmp_path / "empty")), spark=session)
    with pytest.raises(UserError, match="not found"):
        build_model(Source(str(tmp_path / "nowhere")), spark=session)
    (tmp_path / "binary").mkdir()
    (tmp_path / "binary" / "image.txt").write_bytes(b"\x89PNG\x00\x00\x01\x02" * 20)
    with pytest.warns(UserWarning, match="binary"), pytest.raises(UserError, match="no readable text"):
        build_model(Source(str(tmp_path / "binary")), spark=session)
    (tmp_path / "blank").mkdir()
    (tmp_path / "blank" / "blank.txt").write_text("  \n\n", encoding="utf-8")
    with pytest.raises(UserError, match="no readable text"):
        build_model(Source(str(tmp_path / "blank")), spark=session)


def test_spark_options_without_the_spark_engine_are_refused(corpus_folder):
    from click.testing import CliRunner

    from ngram.cli import main

    result = CliRunner().invoke(main, ["build", str(corpus_folder), "--spark-master", "local[2]"])
    assert result.exit_code != 0 and result.output.startswith("Error: --spark-master")


def test_import_ngram_does_not_import_pyspark():
    code = "import sys, ngram, ngram.cli; assert 'pyspark' not in sys.modules, 'pyspark imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_builds_on_spark_a_model_every_command_reads(corpus_folder, session, tmp_path):
    """`ngram build --engine spark --json`, then `ngram perplexity` on the model (last: the
    CLI stops the module's session when it ends)."""
    import json

    from click.testing import CliRunner

    from ngram import NgramModel
    from ngram.cli import main

    out, text = tmp_path / "spark.ngram", tmp_path / "text.txt"
    text.write_text("The cat sat on the mat. The dog ran.\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["build", str(corpus_folder), "-o", str(out), "--order", "3", "--engine", "spark",
                                       "--spark-master", "local[2]", "--spark-work", str(tmp_path / "work"), "--heldout-fraction", "0.2",
                                       "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["engine"] == "spark" and summary["spark_startup_seconds"] >= 0
    assert "=== 4/6 Counting n-grams ===" in result.stderr and "=== 6/6 Saving ===" in result.stderr  # the stages
    assert sorted(p.name for p in (tmp_path / "work" / "counts").iterdir() if p.is_dir()) == ["order=1", "order=2", "order=3"]
    local = NgramModel.build(corpus_folder, order=3, heldout_fraction=0.2, progress=False)
    assert summary["ngrams_per_order"] == {str(k + 1): n for k, n in enumerate(local.statistics["ngrams"])}
    for args, scored_text in (([str(text)], text.read_text()), ([], local.heldout_text())):  # [] the held-out split
        scored = CliRunner().invoke(main, ["perplexity", str(out), *args, "--smoothing", "kn", "--no-progress", "--json"])
        assert scored.exit_code == 0, scored.output
        assert json.loads(scored.stdout)["results"][0]["nll"] == pytest.approx(local.score(scored_text).nll, rel=1e-12)
    again = CliRunner().invoke(main, ["build", str(corpus_folder), "-o", str(tmp_path / "two.ngram"), "--order", "2",
                                      "--engine", "spark", "--spark-master", "local[2]", "--spark-work",
                                      str(tmp_path / "work"), "--heldout-fraction", "0.2"])
    assert again.exit_code == 0, again.output  # the same work folder again: the old tables are replaced
    assert sorted(p.name for p in (tmp_path / "work" / "counts").iterdir()) == ["order=1", "order=2"]


@pytest.mark.slow
def test_ctrl_c_cancels_the_job_and_leaves_no_model(corpus_folder, tmp_path):
    """SIGINT once Spark's JVM runs: exit non-zero with one line, no model, no work folder."""
    import signal
    import time

    require_spark()
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = tmp_path / "never.ngram"
    child = subprocess.Popen([sys.executable, "-c", "from ngram.cli import main; main()", "build", str(corpus_folder), "-o", str(out),
                              "--engine", "spark", "--spark-master", "local[2]"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(tmp_path.glob("ngram-spark-log-*")):
        time.sleep(0.2)
    time.sleep(3)  # the session is starting or counting
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=120)
    assert child.returncode != 0
    assert "Interrupted" in err
    assert not out.exists() and not any(tmp_path.glob(".never.ngram*"))
    assert not any(tmp_path.glob("ngram-spark-*"))


def test_a_failed_spark_job_is_one_line_naming_the_java_error():
    """Spark's error is a Java stack trace; the user gets its cause and a hint, in one line."""
    require_spark()
    from py4j.protocol import Py4JError

    from ngram.spark import spark_failures

    trace = ("An error occurred while calling o123.collectToPython.\n: org.apache.spark.SparkException: Job aborted "
             "due to stage failure: Task 2 in stage 6.0 failed 1 times, most recent failure: Lost task 2.0\n"
             "java.lang.OutOfMemoryError: Java heap space\n\tat org.apache.spark.sql.catalyst.Foo.grow(Foo.java:85)\n")
    with pytest.raises(UserError) as caught, spark_failures(verbose=False):
        raise Py4JError(trace)
    message = str(caught.value)
    assert "\n" not in message and "java.lang.OutOfMemoryError: Java heap space" in message
    assert "SPARK_DRIVER_MEMORY" in message and "--verbose" in message
    with pytest.raises(UserError, match="the Spark job failed: .*Connection refused.*more memory"), \
            spark_failures(verbose=True):
        raise ConnectionRefusedError(111, "Connection refused")


def test_bucket_edges_split_a_heavy_first_token_by_its_second_token():
    """Buckets hold about equal weight; a first token heavier than a bucket is cut by the
    token after it (its unigram first), and the edges stay in n-gram order."""
    from ngram.spark import bucket_edges, heavy_first_tokens

    weights = np.array([1, 50, 2, 3, 2, 2], np.float64)  # token 1 outweighs any of 4 buckets
    assert heavy_first_tokens(weights, 4) == [1]
    followers = (np.array([2, 3, 4, 5]), np.array([10, 10, 20, 10]))  # what follows token 1, how often
    edges = bucket_edges(weights, 4, {1: followers})
    assert edges[0] == (0, -1) and edges == sorted(edges) and len(set(edges)) == len(edges)
    assert any(first == 1 and second >= 0 for first, second in edges)  # token 1 is split ...
    assert all(second in (-1, 2, 3, 4, 5) for first, second in edges if first == 1)  # ... at tokens that follow it
    assert bucket_edges(weights, 4) == [(0, -1), (1, -1)]  # unsplit: token 1 and all after it in one bucket
