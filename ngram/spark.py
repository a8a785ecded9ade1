"""Counting n-grams on Apache Spark into the same model the single-machine build writes.

`ngram.build` counts on one machine (in memory, or in chunks under a budget); past that,
the counting is a job for a cluster. Here the same build runs on Spark (PySpark), in
local mode (``local[*]``) or on any cluster's master URL, in four steps:

1. **Documents → sentences** (Python, ``mapInArrow``): each file is read, decoded and
   normalised, split into its building head and held-out tail (`corpora.documents.
   split_point`) and tokenized by the project's own tokenizer: exactly what
   `load_corpus` and `tokenize_corpus` do on one machine, one document at a time.
2. **Vocabulary** (a word count: each partition's in Python, summed in Spark), ordered
   on the driver by `ngram.build.build_vocabulary` (the same rule and tie-break).
3. **Counting**: every sentence becomes ``<s> ids </s>``. The readable reference does it
   in DataFrame operations alone (`count_table`): each order's n-grams are its windows,
   grouped and counted; a k-gram's continuation count, the number of distinct tokens
   seen before it, is a second aggregation over the distinct (k+1)-grams' suffixes. The
   fast path (`count_tables`) counts with NumPy on the executors and lets Spark shuffle
   sorted blocks of n-grams, grouped by bucket (ranges of first tokens): a grouped sum,
   then the continuation counts as a second grouped aggregation, then the count-of-
   counts for the Kneser-Ney discounts. Each bucket is written as sorted Parquet,
   partitioned by order (``WORK/counts/order=k/part-B.parquet``).
4. **Assembly** (the driver, streaming): the sorted Parquet files are read one at a time
   into the arrays of `ngram.arrays` (ids, counts, continuation, first_child), laid out
   as `ngram.chunked`'s merged level files and opened by `chunked.open_levels`.

The result is an ordinary `NgramModel`: `save_model` writes the usual model folder and
every ``ngram`` and ``bench`` command reads it. The single-machine build is the readable
reference: tests/test_ngram_spark.py checks that both give the identical trie.

PySpark is imported only when a Spark build runs (``import ngram`` never imports it).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Iterable, Iterator
from urllib.parse import unquote, urlparse

import numpy as np

from corpora import UserError
from corpora.documents import decode_bytes, normalise_text, split_point
from corpora.tokenizers import BOS, EOS, UNK, get_tokenizer, tokenizer_from_config

from . import chunked, counting
from .arrays import COUNT_DTYPE, ID_DTYPE, INDEX_DTYPE
from .build import SPECIALS, build_info, build_vocabulary, check_build_options
from .chunked import Boundary
from .model import NgramModel
from .smoothing import attach_kn_tables

DEFAULT_MASTER = "local[*]"
MASTER_TIMEOUT_SECONDS = 30  # an unreachable master or a cluster without executors fails within this
MIN_JAVA = 17  # Spark 4 runs on Java 17 or newer
INSTALL_SPARK = "install the spark extra: pip install -e \".[spark]\" (pyspark and pyarrow)"
INSTALL_JAVA = "install a Java runtime 17 or newer, e.g. apt-get install openjdk-17-jre-headless"
GLOB_CHARACTERS = re.compile(r"[*?\[{]")


# ------------------------------------------------------------------ what a Spark build needs


def require_pyspark() -> None:
    """PySpark and PyArrow importable, or one line saying which extra to install."""
    # PySpark warns about pandas versions on import; a build uses no pandas
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    for module in ("pyspark", "pyarrow"):
        try:
            __import__(module)
        except ImportError:
            raise UserError(f"--engine spark needs {module}; {INSTALL_SPARK}") from None


def java_major_version(java: str) -> int | None:
    """The major version `java -version` reports (``17.0.15`` → 17, ``1.8.0`` → 8), None if unreadable."""
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def require_java() -> None:
    """A Java runtime for Spark (JAVA_HOME's, else the one on PATH), 17 or newer."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        raise UserError(f"--engine spark needs Java, and none was found (JAVA_HOME or PATH); {INSTALL_JAVA}")
    major = java_major_version(java)
    if major is not None and major < MIN_JAVA:
        raise UserError(f"--engine spark needs Java {MIN_JAVA} or newer, {java} is Java {major}; {INSTALL_JAVA}")


def is_local_master(master: str) -> bool:
    """True for ``local``, ``local[4]``, ``local[*]``: Spark inside this process's JVM."""
    return master == "local" or master.startswith("local[")


def check_master_reachable(master: str, timeout: float = 10.0) -> None:
    """For a ``spark://host:port`` master, refuse at once when nothing listens there.

    Spark's own client retries an unreachable master for a minute before giving up;
    a plain TCP connection answers in seconds, naming the URL. Other cluster managers
    (YARN, Kubernetes) are checked by `wait_for_executors`.
    """
    if not master.startswith("spark://"):
        return
    for address in master[len("spark://"):].split(","):  # a list of masters for high availability
        parsed = urlparse(f"spark://{address}")
        try:
            with socket.create_connection((parsed.hostname or "", parsed.port or 7077), timeout=timeout):
                return
        except (OSError, ValueError) as err:
            reason = err
    raise UserError(f"cannot reach the Spark master {master}: {reason}")


# ------------------------------------------------------------------ the session


def session_settings(master: str, verbose: bool) -> dict[str, str]:
    """The Spark settings of a build: no web UI, progress bars only when verbose, and the
    driver's Python for the workers in local mode (so they import this same code)."""
    settings = {
        "spark.master": master,
        "spark.app.name": "ngram build",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "true" if verbose else "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.log.level": "WARN" if verbose else "ERROR",
        "spark.sql.adaptive.enabled": "true",
        "spark.network.timeout": "120s",
        "spark.rpc.askTimeout": f"{MASTER_TIMEOUT_SECONDS}s",
    }
    if is_local_master(master):
        settings["spark.driver.memory"] = local_jvm_memory()
        settings["spark.pyspark.python"] = sys.executable
        settings["spark.pyspark.driver.python"] = sys.executable
        settings["spark.sql.shuffle.partitions"] = str(4 * local_cores(master))  # not 200 tiny tasks
    # Rows handed to Python are whole files or documents, or blocks of up to 262,144 n-grams:
    # a few at a time keeps a worker's Arrow batch far below Arrow's 2 GB column limit.
    settings["spark.sql.execution.arrow.maxRecordsPerBatch"] = "16"
    return settings


def local_jvm_memory() -> str:
    """The JVM heap of a local-mode build (driver and executors in one JVM): Spark's own
    ``SPARK_DRIVER_MEMORY`` if set, else a quarter of this machine's memory, 1-8 GB
    (Spark's default of 1 GB runs out converting blocks of n-grams at 16x the books)."""
    if os.environ.get("SPARK_DRIVER_MEMORY"):
        return os.environ["SPARK_DRIVER_MEMORY"]
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 4 << 30
    return f"{min(8, max(1, total // 4 >> 30))}g"


def local_cores(master: str) -> int:
    """The worker threads of a local master: ``local[4]`` → 4, ``local[*]`` → every core."""
    if master == "local":
        return 1
    match = re.fullmatch(r"local\[(\d+)(?:,\d+)?\]", master)
    return int(match.group(1)) if match else os.cpu_count() or 1


def check_spark_can_start(master: str) -> None:
    """PySpark, Java and (for a ``spark://`` URL) the master are there, or one line saying what is missing."""
    require_pyspark()
    require_java()
    check_master_reachable(master)


@contextmanager
def spark_session(master: str = DEFAULT_MASTER, verbose: bool = False, checked: bool = False):
    """A SparkSession for one build, stopped at the end (also on errors and Ctrl-C).

    Unless `verbose`, Spark's log goes to a file in a temporary folder (`stderr_to`) and
    its level is ERROR; no progress bars, no web UI. Ctrl-C: PySpark's handler cancels
    the running jobs and raises KeyboardInterrupt, which passes through here after the
    session is stopped. `checked`: `check_spark_can_start` has run already.
    """
    if not checked:
        check_spark_can_start(master)
    from pyspark.sql import SparkSession

    folder = Path(tempfile.mkdtemp(prefix="ngram-spark-log-"))
    builder = SparkSession.builder
    for key, value in session_settings(master, verbose).items():
        builder = builder.config(key, value)
    if is_local_master(master):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers import this same code
    try:
        with held_interrupts() as interrupted, nullcontext() if verbose else stderr_to(folder / "spark.log"):
            spark = builder.getOrCreate()
    except Exception as err:  # the JVM did not start, or the master refused the application
        shutil.rmtree(folder, ignore_errors=True)
        raise UserError(f"Spark could not start with master {master}: {first_line(err)}") from None
    try:
        if interrupted:
            raise KeyboardInterrupt
        spark.sparkContext.setLogLevel("WARN" if verbose else "ERROR")
        if not is_local_master(master):
            wait_for_executors(spark, master)
        with spark_failures(verbose):
            yield spark
    finally:
        try:
            spark.stop()
        except Exception:  # the JVM is gone already (it died, e.g. out of memory): nothing to stop
            pass
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def spark_failures(verbose: bool):
    """A failed Spark job (or a JVM that died) as one line: the Java error, and a hint.

    Spark's own error is a long Java stack trace; its first line with an exception names
    the cause (``java.lang.OutOfMemoryError: Java heap space``). ``--verbose`` shows it all.
    """
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    try:
        yield
    except (Py4JError, PySparkException, ConnectionError) as err:
        text = str(err)
        causes = [line.strip() for line in text.splitlines() if re.search(r"(Error|Exception):", line)]
        cause = next((line for line in causes if "OutOfMemoryError" in line), causes[0] if causes else first_line(err))
        hint = ("; give Spark more memory (SPARK_DRIVER_MEMORY in local mode, spark.executor.memory on a cluster)"
                if "OutOfMemory" in text or isinstance(err, ConnectionError) else "")
        more = "" if verbose else " (--verbose shows Spark's log)"
        raise UserError(f"the Spark job failed: {cause[:300]}{hint}{more}") from None


@contextmanager
def held_interrupts():
    """Ctrl-C while Spark's JVM starts is held until it has started (then raised by the
    caller, who stops the session): interrupted mid-launch, PySpark would leave the JVM
    running with nobody to stop it. Yields a list that is non-empty if Ctrl-C came.

    PySpark puts its own handler in place once its context exists (it cancels the jobs);
    that one is left alone.
    """
    received: list[bool] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def hold(signum, frame) -> None:
        received.append(True)

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield received
    finally:
        if signal.getsignal(signal.SIGINT) is hold:
            signal.signal(signal.SIGINT, previous)


@contextmanager
def stderr_to(path: Path):
    """While Spark's JVM starts, this process's stderr goes to `path`, and the JVM keeps it.

    The JVM, and the Python workers it starts, then write their log there: the lines Spark
    prints before any log level applies, the JVM's own warnings, executors' tracebacks
    (a failing job still reaches the driver as an exception, reported in one line).
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def first_line(err: BaseException) -> str:
    """The first line of an error's message (Java stack traces are long)."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:300]


def wait_for_executors(spark, master: str, timeout: float = MASTER_TIMEOUT_SECONDS) -> None:
    """Run a one-task job; a cluster that gives no executor within `timeout` is refused.

    A master that accepted the application but has no workers (or a queue that never
    schedules it) would otherwise leave the build waiting forever.
    """
    done = threading.Event()
    failure: list[BaseException] = []

    def probe() -> None:
        try:
            spark.sparkContext.parallelize([1], 1).count()
        except BaseException as err:  # reported below, on the caller's thread
            failure.append(err)
        done.set()

    threading.Thread(target=probe, daemon=True).start()
    if not done.wait(timeout):
        spark.sparkContext.cancelAllJobs()
        raise UserError(f"the Spark master {master} gave no executor within {timeout:.0f} s")
    if failure:
        raise UserError(f"the Spark master {master} could not run a job: {first_line(failure[0])}")


# ------------------------------------------------------------------ 1. documents → sentences


@dataclass
class Source:
    """What to read: files (a folder, one file or a glob; any path Spark reads) or a dataset."""

    path: str | None = None
    dataset: str | None = None
    dataset_config: str | None = None
    split: str = "train"
    column: str = "text"
    data_files: tuple[str, ...] = ()

    def location(self) -> str:
        """What the model records as the corpus location (as `load_corpus` does)."""
        if self.dataset:
            from corpora.documents import dataset_label

            return f"datasets:{dataset_label(self.dataset, self.dataset_config, self.split)}"
        return str(Path(self.path).resolve()) if is_local_path(self.path) else str(self.path)


def is_local_path(path: str) -> bool:
    """True for a path on this machine (no URL scheme such as hdfs:// or s3a://)."""
    scheme = urlparse(str(path)).scheme
    return scheme in ("", "file") or len(scheme) == 1  # a Windows drive letter is no scheme


def check_local_source(path: str) -> None:
    """A local folder is checked the single-machine way: it exists and holds .txt files
    (the project's ``corpora/`` folder fetches its books first, as `read_documents` does)."""
    if not is_local_path(path) or GLOB_CHARACTERS.search(path):
        return
    from corpora.documents import text_files_under
    from corpora.fetch import ensure_books

    folder = Path(path)
    files = text_files_under(folder)  # refuses a missing folder
    if not files and (folder / "manifest.tsv").is_file():
        ensure_books(folder)
        files = text_files_under(folder)
    if not files:
        raise UserError(f"no .txt files found in {path}")


def file_table(spark, path: str):
    """The files of a source as rows (path, name, content; the name is made from the path
    later): a folder's .txt files (recursively,
    as `text_files_under`), one file, or what a glob matches."""
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F

    reader = spark.read.format("binaryFile")
    if not GLOB_CHARACTERS.search(path) and not (is_local_path(path) and Path(path).is_file()):
        reader = reader.option("recursiveFileLookup", "true").option("pathGlobFilter", "*.txt")
    try:
        return reader.load(path).select("path", F.lit(None).cast("string").alias("name"), "content")
    except AnalysisException as err:
        raise UserError(f"Spark cannot read {path}: {first_line(err)}") from None


def dataset_table(spark, source: Source, folder: Path):
    """A dataset's documents as rows (path, name, content): streamed on the driver into Parquet,
    grouped into documents exactly as the single-machine build does (`dataset_corpus`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from corpora.documents import dataset_corpus

    corpus = dataset_corpus(source.dataset, source.dataset_config, source.split, source.column,
                            source.data_files or None)
    path = folder / "documents.parquet"
    schema = pa.schema([("path", pa.string()), ("name", pa.string()), ("content", pa.binary())])
    with pq.ParquetWriter(path, schema) as writer:
        for number, doc in enumerate(corpus.open_documents()):  # the path keeps the stream's order
            row = {"path": [f"{number:012d}"], "name": [doc.name], "content": [doc.text.encode("utf-8")]}
            writer.write_table(pa.table(row, schema=schema))
    return spark.read.parquet(str(path))


def file_name(path: str) -> str:
    """A file's name from the URI Spark gives (``file:/a/my%20book.txt`` → ``my book.txt``)."""
    return unquote(path.rstrip("/").rsplit("/", 1)[-1])


def document_sentences(path: str, name: str, content: bytes, tokenizer, heldout_fraction: float) -> tuple[dict, list]:
    """One file as the single-machine build reads it: its record and its building sentences.

    Decoded (UTF-8, else Windows-1252) and normalised as `read_text_file`; a file with NUL
    bytes is binary and skipped, an empty one too (`read_documents`); the held-out tail is
    cut off at `split_point`, and the rest tokenized.
    """
    record = {"path": path, "name": name, "sha256": "", "chars": 0, "split_at": 0, "note": ""}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        text = decode_bytes(bytes(content), name)
    if text is None:
        return {**record, "note": "binary"}, []
    if caught:
        record["note"] = "cp1252"
    text = normalise_text(text)
    if not text.strip():
        return {**record, "note": "empty"}, []
    import hashlib

    cut = split_point(text, heldout_fraction)
    record.update(sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(), chars=len(text), split_at=cut)
    return record, list(tokenizer.sentences(text[:cut]))


TOKEN_SEPARATOR = "\x00"  # never inside a token: `normalise_text` removes every NUL character


def joined_sentence(tokens: Iterable[str]) -> str:
    """A sentence as one string, its tokens joined by NUL: one string per sentence, not per
    token, is what Spark holds and ships between the JVM and Python (`split_sentence` undoes it)."""
    return TOKEN_SEPARATOR.join(tokens)


def split_sentence(joined: str) -> list[str]:
    """A sentence's tokens back from `joined_sentence` (an empty sentence has none)."""
    return joined.split(TOKEN_SEPARATOR) if joined else []


DOCUMENT_COLUMNS = ("path", "name", "sha256", "chars", "split_at", "note", "sentences")
DOCUMENT_SCHEMA = ("path string, name string, sha256 string, chars long, split_at long, note string, "
                   "sentences array<string>")


def documents_partition(batches: Iterable, tokenizer_config: dict, heldout_fraction: float) -> Iterator:
    """``mapInArrow`` over (path, name, content) rows: one row per document, its sentences
    as joined strings (`joined_sentence`)."""
    import pyarrow as pa

    tokenizer = tokenizer_from_config(tokenizer_config)
    for batch in batches:
        columns: dict[str, list] = {name: [] for name in DOCUMENT_COLUMNS}
        for path, name, content in zip(*(batch.column(c).to_pylist() for c in ("path", "name", "content"))):
            record, sentences = document_sentences(path, name or file_name(path), content, tokenizer, heldout_fraction)
            for key in DOCUMENT_COLUMNS[:-1]:
                columns[key].append(record[key])
            columns["sentences"].append([joined_sentence(tokens) for tokens in sentences])
        yield pa.RecordBatch.from_pydict(columns, schema=document_arrow_schema())


def document_arrow_schema():
    """`DOCUMENT_SCHEMA` in Arrow's terms (what `documents_partition` yields)."""
    import pyarrow as pa

    return pa.schema([("path", pa.string()), ("name", pa.string()), ("sha256", pa.string()), ("chars", pa.int64()),
                      ("split_at", pa.int64()), ("note", pa.string()), ("sentences", pa.list_(pa.string()))])


def documents_frame(files, tokenizer_config: dict, heldout_fraction: float):
    """Step 1: every document read, split and tokenized on the executors (a DataFrame)."""
    return files.mapInArrow(lambda batches: documents_partition(batches, tokenizer_config, heldout_fraction),
                            DOCUMENT_SCHEMA)


def sentence_frame(documents):
    """Every sentence as a row of tokens (``tokens array<string>``): the reference path's input."""
    from pyspark.sql import functions as F

    joined = documents.select(F.explode("sentences").alias("joined"))
    tokens = F.when(F.col("joined") == "", F.array().cast("array<string>")).otherwise(
        F.split("joined", TOKEN_SEPARATOR, -1))
    return joined.select(tokens.alias("tokens"))


def corpus_record(documents: list, location: str, heldout_fraction: float) -> dict:
    """`Corpus.describe` of the documents read, in path order (as `text_files_under` sorts),
    with the single-machine build's warnings for binary and non-UTF-8 files."""
    kept = []
    for doc in sorted(documents, key=lambda d: [unquote(part) for part in d.path.split("/")]):  # as Paths sort
        if doc.note == "binary":
            warnings.warn(f"skipping {doc.name}: it looks binary (NUL bytes), not text", stacklevel=3)
            continue
        if doc.note == "cp1252":
            warnings.warn(f"{doc.name} is not valid UTF-8; decoded as Windows-1252 instead", stacklevel=3)
        if doc.note != "empty":
            kept.append({"name": doc.name, "sha256": doc.sha256, "chars": doc.chars, "split_at": doc.split_at})
    if not kept:
        raise UserError(f"no readable text in {location} (every file was empty or binary)")
    return {"location": location, "heldout_fraction": heldout_fraction,
            "split": "last fraction of every document, cut at a line break", "documents": kept}


# ------------------------------------------------------------------ 2. the vocabulary


def token_counts_partition(batches: Iterable) -> Iterator:
    """``mapInArrow`` over documents' sentences: this partition's tokens with their counts,
    and one row with no token holding how many tokens it has in all."""
    import pyarrow as pa

    counts: Counter = Counter()
    for batch in batches:
        for sentences in batch.column(0).to_pylist():
            for joined in sentences:
                counts.update(split_sentence(joined))
    yield pa.RecordBatch.from_pydict({"token": [*counts, None], "count": [*counts.values(), sum(counts.values())]},
                                     schema=pa.schema([("token", pa.string()), ("count", pa.int64())]))


def spark_vocabulary(documents, min_count: int) -> tuple[list[str], Counter, int]:
    """Step 2: a word count (each partition's in Python, summed in Spark), then
    `build_vocabulary` on the driver.

    Only the tokens the vocabulary keeps (and any reserved token, to refuse it as the
    single-machine build does) reach the driver. Returns the vocabulary, the kept tokens'
    frequencies and the number of tokens.
    """
    from pyspark.sql import functions as F

    counts = (documents.select("sentences").mapInArrow(token_counts_partition, "token string, count long")
              .groupBy("token").agg(F.sum("count").alias("count")))
    wanted = counts.where((F.col("count") >= min_count) | F.col("token").isin(*SPECIALS) | F.col("token").isNull())
    frequencies, total = Counter(), 0
    for row in wanted.collect():
        if row.token is None:
            total = row["count"]
        else:
            frequencies[row.token] = row["count"]
    if total == 0:
        raise UserError("the corpus has no tokens to build from")
    return build_vocabulary(frequencies, min_count), frequencies, int(total)


# ------------------------------------------------------------------ 3. counting
#
# The readable reference: every sentence as ids, each order's windows grouped and counted
# (`ngram_counts`), continuation counts joined on (`count_table`) — the idea in DataFrame
# operations alone, one row per window. The fast path (`combined_count_table`) counts each
# partition's n-grams with NumPy first (`chunked.chunk_levels`, the map-side combine a
# MapReduce counter has), so Spark shuffles one row per distinct n-gram per partition, as
# compact binary keys. A test checks both give the same table.


def encode_partition(rows: Iterable, ids: dict[str, int]) -> Iterator[tuple]:
    """``mapPartitions``: each sentence as ``<s> ids </s>``, rarer tokens as ``<unk>``."""
    unk, bos, eos = ids[UNK], ids[BOS], ids[EOS]
    for row in rows:
        yield ([bos, *[ids.get(token, unk) for token in row.tokens], eos],)


def encoded_frame(spark, sentences, vocab: list[str]):
    """Every sentence as a row of vocabulary ids (the vocabulary broadcast to the executors)."""
    index = spark.sparkContext.broadcast({token: i for i, token in enumerate(vocab)})
    rdd = sentences.rdd.mapPartitions(lambda rows: encode_partition(rows, index.value))
    return spark.createDataFrame(rdd, "ids array<int>")


def ngram_counts(encoded, k: int):
    """The k-grams of every sentence with their counts: windows of k ids, grouped.

    A sentence of n ids (``<s>`` and ``</s>`` included) has n - k + 1 windows, none
    across its end — the rows of `counting.ngram_rows` that hold no padding.
    """
    from pyspark.sql import functions as F

    windows = F.expr(f"transform(sequence(0, size(ids) - {k}), i -> slice(ids, i + 1, {k}))")
    return (encoded.where(F.size("ids") >= k).select(F.explode(windows).alias("ngram"))
            .groupBy("ngram").agg(F.count(F.lit(1)).alias("count")))


def continuation_counts(upper, k: int):
    """For each (k-1)-gram: how many distinct k-grams of `upper` end with it (its distinct
    left neighbours; the Kneser-Ney continuation count)."""
    from pyspark.sql import functions as F

    return (upper.select(F.slice("ngram", 2, k - 1).alias("ngram"))
            .groupBy("ngram").agg(F.count(F.lit(1)).alias("continuation")))


def count_table(encoded, order: int):
    """The reference: every order's n-grams in one table (order, ngram, count, continuation).

    The continuation count is 0 for an n-gram never seen after anything (one starting
    with ``<s>``), and null at the top order, which has none.
    """
    from pyspark.sql import functions as F

    levels = [ngram_counts(encoded, k) for k in range(1, order + 1)]
    tables = []
    for k, level in enumerate(levels, start=1):
        if k < order:
            level = (level.join(continuation_counts(levels[k], k + 1), "ngram", "left")
                     .fillna(0, subset=["continuation"]))
        else:
            level = level.withColumn("continuation", F.lit(None).cast("long"))
        tables.append(level.select(F.lit(k).alias("order"), "ngram", "count", "continuation"))
    table = tables[0]
    for other in tables[1:]:
        table = table.unionByName(other)
    return table


# The fast path: NumPy does the counting, Spark moves it. Spark's JVM summing one row per
# n-gram costs far more than the counting itself, so the rows Spark shuffles are blobs —
# a bucket's sorted keys and counts at one order, a few thousand rows in all:
#
#   a. each partition counts its pieces of text (`chunked.chunk_levels`: one sort, every
#      order) and cuts every order's sorted keys into buckets, ranges of the first token
#      (a first token heavier than a bucket cut further by its second: `bucket_edges`);
#   b. a bucket's pieces are summed (`chunked.sum_equal_keys`); every distinct k-gram then
#      adds one to the continuation count of its suffix, sent to the suffix's bucket;
#   c. a bucket's continuation counts are summed and put beside its counts, and the bucket
#      is written as Parquet, one sorted file per order (``order=k/part-B.parquet``).
#
# Buckets are ranges of first tokens, so the files of one order, taken in bucket order, are
# the n-grams in sorted order: the driver streams them into the model (step 4).

PIECE_POSITIONS = 1 << 19  # token positions a Python worker counts at once (~80 MB at order 5)
BLOB_NGRAMS = 1 << 18  # n-grams per shuffled row at most (a row of at most 5 MB at order 5)
BUCKET_TOKENS = 2_000_000  # tokens of text per bucket (at least two buckets per core)
BLOB_SCHEMA = "bucket int, order int, kind int, keys binary, counts binary"
COUNTS, CONTINUATIONS = 0, 1  # what a blob row holds: a bucket's counts, or continuation counts sent to it


def bucket_edges(weights: np.ndarray, buckets: int,
                 seconds: dict[int, tuple[np.ndarray, np.ndarray]] | None = None) -> list[Boundary]:
    """Where each bucket starts: ranges of first tokens, each holding about the same share
    of `weights` (a token's occurrences, which its n-grams grow with).

    A first token in `seconds` (a heavy one: alone it would outweigh a bucket) is cut
    further by its second token: ``seconds[t]`` = (the tokens seen after t, in id order,
    and how often), as `chunked.heavy_token_edges` cuts bands under a memory budget; its
    own unigram stays at ``(t, -1)``, before every ``(t, s)``. Other first tokens are
    never split.
    """
    seconds = seconds or {}
    firsts, second_ids, unit_weights = [], [], []
    for token, weight in enumerate(np.asarray(weights, np.float64)):
        if token in seconds:
            followers, counts = seconds[token]
            firsts += [token] * (len(followers) + 1)
            second_ids += [-1, *np.asarray(followers).tolist()]
            unit_weights += [1.0, *np.asarray(counts, np.float64).tolist()]
        else:
            firsts.append(token)
            second_ids.append(-1)
            unit_weights.append(weight)
    cumulative = np.cumsum(unit_weights)
    targets = cumulative[-1] * np.arange(1, buckets) / buckets
    starts = np.unique(np.searchsorted(cumulative, targets, side="right"))
    return [(0, -1), *[(firsts[start], second_ids[start]) for start in starts if 0 < start < len(cumulative)]]


def heavy_first_tokens(weights: np.ndarray, buckets: int) -> list[int]:
    """The first tokens that alone would outweigh a bucket (split by `bucket_edges`)."""
    weights = np.asarray(weights, np.float64)
    return np.flatnonzero(weights > weights.sum() / buckets).tolist()


def second_token_counts(batches: Iterable, ids: dict[str, int], heavy: list[int]) -> Iterator:
    """``mapInArrow`` over documents' sentences: how often each token follows each heavy
    first token (rows first, second, count), for `bucket_edges`."""
    import pyarrow as pa

    pad, size = len(ids), len(ids) + 1
    pairs: list[np.ndarray] = []
    piece: list[str] = []
    for batch in batches:
        for sentences in batch.column(0).to_pylist():
            piece += sentences
            if len(piece) >= 1 << 14:
                pairs.append(heavy_pairs(piece_ids(piece, ids, pad), heavy, size))
                piece = []
    pairs.append(heavy_pairs(piece_ids(piece, ids, pad), heavy, size))
    codes, counts = np.unique(np.concatenate(pairs), return_counts=True)
    yield pa.RecordBatch.from_pydict({"first": (codes // size).astype(np.int32), "second": (codes % size).astype(np.int32),
                                      "count": counts.astype(np.int64)},
                                     schema=pa.schema([("first", pa.int32()), ("second", pa.int32()), ("count", pa.int64())]))


def heavy_pairs(stream: np.ndarray, heavy: list[int], size: int) -> np.ndarray:
    """The bigrams of a stream that start with a heavy token, as codes first * size + second."""
    first, second = stream[:-1].astype(np.int64), stream[1:].astype(np.int64)
    keep = np.isin(first, heavy) & (second != size - 1)  # not across a sentence end (the padding)
    return first[keep] * size + second[keep]


def bucket_bounds(keys: np.ndarray, k: int, edges: list[Boundary]) -> np.ndarray:
    """Where each bucket's k-grams start in sorted `keys`, and the end: bucket b is [bounds[b], bounds[b+1])."""
    if len(edges) < 2:
        return np.array([0, len(keys)])
    starts = np.concatenate([chunked.row_bound(edge, k) for edge in edges[1:]])  # each later bucket's first key
    return np.concatenate([[0], np.searchsorted(keys, starts), [len(keys)]])  # one search for all the edges


def blob_rows(bucket_of: Iterable[int], k: int, kind: int, keys: np.ndarray, counts: np.ndarray,
              bounds: np.ndarray):
    """Sorted k-grams cut at `bounds` into rows of `BLOB_SCHEMA` (one Arrow batch), the
    b-th range going to bucket ``bucket_of[b]``; empty ranges give no row."""
    import pyarrow as pa

    rows = chunked.key_rows(keys, k)
    columns: dict[str, list] = {"bucket": [], "order": [], "kind": [], "keys": [], "counts": []}
    for bucket, low, high in zip(bucket_of, bounds[:-1], bounds[1:]):
        for start in range(int(low), int(high), BLOB_NGRAMS):
            end = min(start + BLOB_NGRAMS, int(high))
            columns["bucket"].append(bucket)
            columns["order"].append(k)
            columns["kind"].append(kind)
            columns["keys"].append(rows[start:end].tobytes())
            columns["counts"].append(np.asarray(counts[start:end], np.int64).tobytes())
    return pa.RecordBatch.from_pydict(columns, schema=blob_arrow_schema())


def blob_arrow_schema():
    """`BLOB_SCHEMA` in Arrow's terms (what the counting steps yield)."""
    import pyarrow as pa

    return pa.schema([("bucket", pa.int32()), ("order", pa.int32()), ("kind", pa.int32()),
                      ("keys", pa.binary()), ("counts", pa.binary())])


def blobs_of(table, k: int, kind: int) -> tuple[np.ndarray, np.ndarray]:
    """The k-gram keys and counts a group's rows of one kind hold, summed (sorted, distinct)."""
    import pyarrow.compute as pc

    chosen = table.filter(pc.and_(pc.equal(table["order"], k), pc.equal(table["kind"], kind)))
    keys = np.frombuffer(b"".join(chosen["keys"].to_pylist()), chunked.KEY_DTYPE).reshape(-1, k)
    counts = np.frombuffer(b"".join(chosen["counts"].to_pylist()), np.int64)
    return chunked.sum_equal_keys(chunked.as_keys(keys), counts)


def piece_counts(stream: np.ndarray, order: int, pad: int, edges: list[Boundary]):
    """Step a for one piece of text (whole sentences, each ``<s> ids </s>`` and the padding):
    every order's k-grams counted and cut into buckets."""
    window = np.concatenate((stream, np.full(order - 1, pad, np.int32)))
    rows = chunked.window_rows(window, len(stream), order, pad)
    buckets = range(len(edges))
    for k, (keys, counts) in enumerate(chunked.chunk_levels(rows[rows[:, 0] != pad], pad), start=1):
        yield blob_rows(buckets, k, COUNTS, keys, counts, bucket_bounds(keys, k, edges))


def piece_ids(sentences: list[str], ids: dict[str, int], pad: int) -> np.ndarray:
    """Joined sentences as one stream of ids: ``<s> ids </s>`` and the padding id after
    each sentence, rarer tokens as ``<unk>``.

    The piece is joined into one string and split once, and the lookups run inside
    `map`: the same as a loop over tokens, three times faster. An empty token stands for
    the padding (no tokenizer gives an empty token).
    """
    marked = [f"{BOS}{TOKEN_SEPARATOR}{joined}{TOKEN_SEPARATOR}{EOS}" if joined else f"{BOS}{TOKEN_SEPARATOR}{EOS}"
              for joined in sentences]
    tokens = (TOKEN_SEPARATOR * 2).join(marked).split(TOKEN_SEPARATOR) + [""]
    lookup = {**ids, "": pad}
    return np.fromiter(map(lookup.get, tokens, repeat(ids[UNK], len(tokens))), dtype=np.int32, count=len(tokens))


def partition_counts(batches: Iterable, ids: dict[str, int], order: int, edges: list[Boundary],
                     positions: int = PIECE_POSITIONS) -> Iterator:
    """``mapInArrow`` over documents' sentences: step a, a piece of about `positions` at a time."""
    pad = len(ids)
    piece: list[str] = []
    size = 0
    for batch in batches:
        for sentences in batch.column(0).to_pylist():
            for joined in sentences:
                piece.append(joined)
                size += 3 + joined.count(TOKEN_SEPARATOR) + bool(joined)
                if size >= positions:
                    yield from piece_counts(piece_ids(piece, ids, pad), order, pad, edges)
                    piece, size = [], 0
    if piece:
        yield from piece_counts(piece_ids(piece, ids, pad), order, pad, edges)


def merge_bucket(table, order: int, edges: list[Boundary]):
    """``applyInArrow`` for one bucket, step b: its pieces summed at every order, and each
    distinct k-gram's suffix counted once, sent to the suffix's bucket (a (k-1)-gram)."""
    import pyarrow as pa

    bucket = table["bucket"][0].as_py()
    batches = []
    for k in range(1, order + 1):
        keys, counts = blobs_of(table, k, COUNTS)
        batches.append(blob_rows([bucket], k, COUNTS, keys, counts, np.array([0, len(keys)])))
        if k >= 2:
            suffixes, lefts = chunked.sum_equal_keys(chunked.as_keys(chunked.key_rows(keys, k)[:, 1:]),
                                                     np.ones(len(keys), np.int64))
            batches.append(blob_rows(range(len(edges)), k - 1, CONTINUATIONS, suffixes, lefts,
                                     bucket_bounds(suffixes, k - 1, edges)))
    return pa.Table.from_batches(batches, schema=blob_arrow_schema())


STATISTICS_SCHEMA = "order int, ngrams long, raw array<long>, kn array<long>"


def finish_bucket(table, order: int, bos: int, tables: str):
    """``applyInArrow`` for one bucket, step c: continuation counts beside the counts, the
    bucket's count table written (one Parquet file per order), its count-of-counts returned
    (raw counts, and the Kneser-Ney counts: the continuation count, or the count itself
    for an n-gram starting with ``<s>``, as `ArrayTrie.count_statistics`)."""
    import pyarrow as pa

    bucket = table["bucket"][0].as_py()
    statistics: dict[str, list] = {"order": [], "ngrams": [], "raw": [], "kn": []}
    for k in range(1, order + 1):
        keys, counts = blobs_of(table, k, COUNTS)
        columns = {"key": key_column(keys, 4 * k), "count": pa.array(counts)}
        kn = []
        if k < order:
            suffixes, lefts = blobs_of(table, k, CONTINUATIONS)
            continuation = np.zeros(len(keys), np.int64)
            continuation[np.searchsorted(keys, suffixes)] = lefts  # every suffix is a k-gram seen
            columns["continuation"] = pa.array(continuation)
            first = chunked.key_rows(keys, k)[:, 0]
            kn = np.bincount(np.clip(np.where(first == bos, counts, continuation), 0, 5), minlength=6).tolist()
        if len(keys):
            write_parquet(pa.table(columns), f"{tables.rstrip('/')}/order={k}", f"part-{bucket:05d}.parquet")
        statistics["order"].append(k)
        statistics["ngrams"].append(len(keys))
        statistics["raw"].append(np.bincount(np.clip(counts, 0, 5), minlength=6).tolist())
        statistics["kn"].append(kn)
    return pa.Table.from_pydict(statistics, schema=pa.schema([
        ("order", pa.int32()), ("ngrams", pa.int64()), ("raw", pa.list_(pa.int64())), ("kn", pa.list_(pa.int64()))]))


def key_column(keys: np.ndarray, width: int):
    """Sorted k-gram keys (`chunked.as_keys`, big-endian ids) as an Arrow binary column."""
    import pyarrow as pa

    offsets = np.arange(len(keys) + 1, dtype=np.int32) * width
    return pa.Array.from_buffers(pa.binary(), len(keys), [None, pa.py_buffer(offsets), pa.py_buffer(keys.tobytes())])


def table_filesystem(path: str):
    """The PyArrow filesystem a count-table path lives on, and the path in its terms
    (local paths and ``file:`` URIs; ``hdfs://``, ``s3://``, ``gs://``)."""
    import pyarrow.fs as pafs

    if is_local_path(path):
        return pafs.LocalFileSystem(), urlparse(path).path if path.startswith("file:") else path
    return pafs.FileSystem.from_uri(path)


def write_parquet(table, folder: str, name: str) -> None:
    """Write `table` as ``folder/name``, atomically (a task run twice writes the same file)."""
    import pyarrow.parquet as pq

    filesystem, root = table_filesystem(folder)
    filesystem.create_dir(root, recursive=True)
    temporary = f"{root}/.{name}.{os.getpid()}.{threading.get_ident()}.tmp"
    with filesystem.open_output_stream(temporary) as handle:
        pq.write_table(table, handle)
    filesystem.move(temporary, f"{root}/{name}")


def clear_tables(path: str) -> None:
    """Remove what an earlier build left in the count tables' folder."""
    filesystem, root = table_filesystem(path)
    filesystem.create_dir(root, recursive=True)
    filesystem.delete_dir_contents(root)


def count_tables(spark, documents, vocab: list[str], frequencies: Counter, tokens: int, sentences: int,
                 order: int, tables: str, buckets: int | None = None, positions: int = PIECE_POSITIONS) -> dict:
    """Step 3, the fast path: the count tables written to `tables`, their statistics returned.

    The kept tokens' `frequencies`, the number of `tokens` and of `sentences` weigh the
    buckets (`bucket_edges`); `buckets` defaults to two per core, more for a large text.
    """
    from pyspark.sql import functions as F

    if buckets is None:
        buckets = max(2 * spark.sparkContext.defaultParallelism, -(-tokens // BUCKET_TOKENS))
    weights = np.array([frequencies.get(token, 0) for token in vocab], np.float64) + 1
    weights[vocab.index(BOS)] = sentences  # n-grams starting with </s>: the unigram alone
    weights[vocab.index(UNK)] = tokens - sum(frequencies.values())
    index = spark.sparkContext.broadcast({token: i for i, token in enumerate(vocab)})
    heavy = heavy_first_tokens(weights, buckets)
    seconds = {}
    if heavy:  # one more pass over the text, for the tokens that follow them
        rows = (documents.select("sentences")
                .mapInArrow(lambda batches: second_token_counts(batches, index.value, heavy),
                            "first int, second int, count long")
                .groupBy("first", "second").agg(F.sum("count").alias("count")).collect())
        followers: dict[int, list[tuple[int, int]]] = {token: [] for token in heavy}
        for row in rows:
            followers[row.first].append((row.second, row["count"]))
        for token, pairs in followers.items():  # the tokens seen after it, in id order, and how often
            pairs.sort()
            seconds[token] = (np.array([s for s, _ in pairs], np.int64), np.array([c for _, c in pairs], np.float64))
    edges = bucket_edges(weights, buckets, seconds)
    bos = vocab.index(BOS)
    clear_tables(tables)
    partial = documents.select("sentences").mapInArrow(
        lambda batches: partition_counts(batches, index.value, order, edges, positions), BLOB_SCHEMA)
    merged = partial.groupBy("bucket").applyInArrow(lambda table: merge_bucket(table, order, edges), BLOB_SCHEMA)
    finished = merged.groupBy("bucket").applyInArrow(lambda table: finish_bucket(table, order, bos, tables),
                                                     STATISTICS_SCHEMA)
    rows = finished.groupBy("order").agg(F.sum("ngrams").alias("ngrams"), F.collect_list("raw").alias("raw"),
                                         F.collect_list("kn").alias("kn")).collect()
    sizes, raw, cont = [0] * order, [np.zeros(6, np.int64) for _ in range(order)], [np.zeros(6, np.int64) for _ in range(order)]
    for row in rows:
        sizes[row.order - 1] = int(row.ngrams)
        raw[row.order - 1] = np.sum([np.array(r, np.int64) for r in row.raw], axis=0)
        if row.order < order:
            cont[row.order - 1] = np.sum([np.array(r, np.int64) for r in row.kn], axis=0)
    return chunked.statistics_of(sizes, raw, cont)


# ------------------------------------------------------------------ 4. assembly on the driver


def parquet_files(path: str, k: int) -> list:
    """The Parquet files of order k, in n-gram order (each file's first n-gram, compared)."""
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    filesystem, root = table_filesystem(path)
    selector = pafs.FileSelector(f"{root.rstrip('/')}/order={k}", allow_not_found=True)
    files = [info.path for info in filesystem.get_file_info(selector) if info.path.endswith(".parquet")]
    firsts = []
    for file in files:
        with filesystem.open_input_file(file) as handle:
            parquet = pq.ParquetFile(handle)
            first = parquet.read_row_group(0, columns=["key"])["key"][0].as_py() if parquet.metadata.num_rows else b""
        firsts.append((first, file))
    return [(filesystem, file) for first, file in sorted(firsts) if first]


def read_rows(filesystem, file: str, k: int, top: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One sorted Parquet file as (n × k id rows, counts, continuation counts)."""
    import pyarrow.parquet as pq

    with filesystem.open_input_file(file) as handle:
        table = pq.read_table(handle, columns=["key", "count"] if top else ["key", "count", "continuation"])
    rows = key_bytes(table["key"].combine_chunks()).view(chunked.KEY_DTYPE).reshape(-1, k).astype(np.int64)
    counts = table["count"].to_numpy().astype(COUNT_DTYPE)
    continuation = None if top else table["continuation"].to_numpy().astype(COUNT_DTYPE)
    return rows, counts, continuation


def key_bytes(keys) -> np.ndarray:
    """The bytes of an Arrow binary column of equal-width keys, end to end (no copy)."""
    import pyarrow as pa

    offset_type = np.int64 if pa.types.is_large_binary(keys.type) else np.int32
    offsets = np.frombuffer(keys.buffers()[1], offset_type)[keys.offset: keys.offset + len(keys) + 1]
    if len(keys) == 0:
        return np.zeros(0, np.uint8)
    return np.frombuffer(keys.buffers()[2], np.uint8)[offsets[0]: offsets[-1]]


def assemble_levels(path: str, folder: Path, order: int) -> list[int]:
    """Step 4: the Parquet tables → `chunked.open_levels`' files in `folder`, one file at a time.

    For order k the driver holds one Parquet file and maps the (k-1)-grams' keys: each
    k-gram's parent is its (k-1)-prefix, found by binary search (`chunked.as_keys`), and
    a parent's children start where its first child is. Returns the n-grams per order.
    """
    sizes = []
    for k in range(1, order + 1):
        top = k == order
        ids = chunked.NpyAppender(folder / f"k{k}.ids.npy", ID_DTYPE)
        counts = chunked.NpyAppender(folder / f"k{k}.counts.npy", COUNT_DTYPE)
        continuation = None if top else chunked.NpyAppender(folder / f"k{k}.continuation.npy", COUNT_DTYPE)
        keys = None if top else chunked.NpyAppender(folder / f"k{k}.keys.npy", chunked.KEY_DTYPE)
        parents = chunked.NpyAppender(folder / f"k{k}.parents.npy", INDEX_DTYPE) if k > 1 else None
        above = chunked.as_keys(chunked.load_plain(folder / f"k{k - 1}.keys.npy").reshape(-1, k - 1)) if k > 1 else None
        for filesystem, file in parquet_files(path, k):
            rows, file_counts, file_continuation = read_rows(filesystem, file, k, top)
            ids.append(rows[:, -1])
            counts.append(file_counts)
            if not top:
                continuation.append(file_continuation)
                keys.append(rows)
            if k > 1:
                parents.append(np.searchsorted(above, chunked.as_keys(rows[:, :-1])))
        for writer in (ids, counts, continuation, keys, parents):
            if writer is not None:
                writer.close()
        sizes.append(ids.length)
        if k > 1:
            write_first_child(folder, k - 1, sizes[k - 2])
            (folder / f"k{k}.parents.npy").unlink()
            (folder / f"k{k - 1}.keys.npy").unlink()
    return sizes


def write_first_child(folder: Path, k: int, size: int, block: int = 1 << 22) -> None:
    """Order k's children ranges from order k+1's parents: parent i's children start at the
    first child whose parent is i (one extra entry at the end), a block of parents at a time."""
    parents = chunked.load_plain(folder / f"k{k + 1}.parents.npy")
    writer = chunked.NpyAppender(folder / f"k{k}.first_child.npy", INDEX_DTYPE)
    for start in range(0, size + 1, block):
        writer.append(np.searchsorted(parents, np.arange(start, min(start + block, size + 1))))
    writer.close()


# ------------------------------------------------------------------ the whole build


@dataclass
class SparkBuild:
    """How a Spark build ran: where its tables went and how long its parts took."""

    master: str
    tables: str
    startup_seconds: float = 0.0
    counting_seconds: float = 0.0
    assembly_seconds: float = 0.0


def build_model(source: Source, order: int = 5, tokens: str = "words", lowercase: bool = False,
                min_count: int | None = None, heldout_fraction: float = 0.05, master: str = DEFAULT_MASTER,
                work_dir: str | None = None, verbose: bool = False, spark=None,
                progress: bool = False) -> tuple[NgramModel, SparkBuild]:
    """Build a model on Spark: the same model `NgramModel.build` makes from the same source.

    The Parquet count tables go to ``WORK/counts`` (`work_dir`: any path every executor
    and the driver can reach, e.g. ``hdfs://…``; kept) or to a temporary local folder
    (removed). The returned model's arrays are memory-mapped from a local temporary
    folder, removed with the model; save it with `ngram.io.save_model`. A running
    SparkSession may be given as `spark` (it is then used and left running; `master`
    and `verbose` are its own). `progress` prints each stage's banner on stderr
    (`counting.SPARK_STAGES`, as the single-machine build numbers its stages).
    """
    check_build_options(order, min_count)
    tokenizer = get_tokenizer(tokens, lowercase)
    min_count = tokenizer.default_min_count if min_count is None else min_count
    if source.path is not None:
        check_local_source(source.path)
    local = Path(tempfile.mkdtemp(prefix="ngram-spark-"))
    tables = f"{work_dir.rstrip('/')}/counts" if work_dir else str(local / "counts")
    started = time.perf_counter()
    if spark is None:
        check_spark_can_start(master)  # before anything is shown or started
    stages = counting.Stages(counting.SPARK_STAGES, progress)
    try:
        stages.banner("Starting Spark")
        with spark_session(master, verbose, checked=True) if spark is None else nullcontext(spark) as session:
            master = session.sparkContext.master
            report = SparkBuild(master, tables, startup_seconds=time.perf_counter() - started)
            counted = count_on_spark(session, source, tokenizer, order, min_count, heldout_fraction, tables, local,
                                     stages)
            report.counting_seconds = time.perf_counter() - started - report.startup_seconds
        stages.banner("Assembling the model")
        assembled = time.perf_counter()
        sizes = assemble_levels(tables, local, order)
        if not work_dir:
            shutil.rmtree(local / "counts", ignore_errors=True)
        trie = chunked.open_levels(local, counted.vocab, order, counted.positions)
        attach_kn_tables(trie, counted.statistics, counted.vocab.index(BOS))  # as every build: saved with the trie
        report.assembly_seconds = time.perf_counter() - assembled
    except BaseException:
        shutil.rmtree(local, ignore_errors=True)
        raise
    chunked.remove_with(trie, local)
    if sizes != counted.statistics["ngrams"]:  # pragma: no cover - the tables and their statistics disagree
        raise RuntimeError(f"the count tables hold {sizes} n-grams, their statistics say {counted.statistics['ngrams']}")
    info = build_info(started, counted.tokens, counted.sentences, min_count, counted.statistics, order)
    info.update(engine="spark", spark_master=master)
    model = NgramModel(trie, order, tokenizer, counted.vocab, counted.corpus, info, counted.statistics)
    return model, report


@dataclass
class SparkCounts:
    """What the Spark jobs give the driver: all but the n-grams themselves (in the tables)."""

    vocab: list[str]
    corpus: dict
    statistics: dict
    tokens: int
    sentences: int
    positions: int


def count_on_spark(spark, source: Source, tokenizer, order: int, min_count: int, heldout_fraction: float,
                   tables: str, local: Path, stages: "counting.Stages | None" = None) -> SparkCounts:
    """Steps 1-3 on Spark: documents → sentences → vocabulary → count tables in Parquet."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    stages = stages or counting.Stages(counting.SPARK_STAGES, False)
    stages.banner("Reading and tokenizing")
    files = dataset_table(spark, source, local) if source.dataset else file_table(spark, source.path)
    documents = documents_frame(files, tokenizer.config(), heldout_fraction)
    documents.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        records = documents.select("path", "name", "sha256", "chars", "split_at", "note",
                                   F.size("sentences").alias("sentences")).collect()
        if not records:
            raise UserError(f"no .txt files found in {source.path or source.dataset}")
        corpus = corpus_record(records, source.location(), heldout_fraction)
        count = sum(max(record.sentences, 0) for record in records)
        stages.banner("Counting the vocabulary")
        vocab, frequencies, tokens = spark_vocabulary(documents, min_count)
        stages.banner("Counting n-grams")
        statistics = count_tables(spark, documents, vocab, frequencies, tokens, count, order, tables)
    finally:
        documents.unpersist()
    return SparkCounts(vocab, corpus, statistics, tokens, count, tokens + 2 * count)


__all__ = ["DEFAULT_MASTER", "Source", "SparkBuild", "build_model", "spark_session"]
