"""The Spark build beside the single-machine build: time, Spark's start-up, peak memory.

For each scale (1x = the default books; 4x, 16x = the books repeated, as more files) both
builds run as child processes on the same folder at the same order:

- ``ngram build CORPUS --order N`` (in memory, one process);
- ``ngram build CORPUS --order N --engine spark --spark-master local[2]``: its JSON gives
  Spark's start-up time (session up, before any work) apart from the whole build.

Peak memory is the largest resident size of each child's whole process tree, sampled
from /proc every 0.2 s: for Spark that is the driver (Python), its JVM (which in local
mode holds the executors too) and the Python workers. Timings include the model's
saving; each build writes a fresh model folder.

    nice -n 10 python benchmarks/ngram_spark.py                     # 1x, order 5, local[2]
    nice -n 10 python benchmarks/ngram_spark.py --scales 1,4,16     # the scaling table

Prints a Markdown table (with the CPU and its load) and, with --json, the rows as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from corpora.machine import code_version, cpu_name  # noqa: E402

DEFAULT_BOOKS = Path(os.environ.get("CORPORA_MIRROR", ROOT.parent / "shared" / "corpora" / "books"))


def repeated_corpus(books: Path, scale: int, folder: Path) -> Path:
    """The books `scale` times over, as copies ``copy{i}/book.txt`` (hard links when possible)."""
    target = folder / f"books-x{scale}"
    if target.exists():
        return target
    for i in range(scale):
        for book in sorted(books.glob("*.txt")):
            copy = target / f"copy{i}" / book.name
            copy.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(book, copy)
            except OSError:
                shutil.copyfile(book, copy)
    return target


def tree_rss_bytes(root: int) -> int:
    """Resident bytes of process `root` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def measured(command: list[str]) -> dict:
    """Run `command`, returning its JSON summary, wall seconds and peak process-tree RSS."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], tree_rss_bytes(child.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = child.communicate()
    done.set()
    sampler.join()
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{err[-2000:]}")
    return {**json.loads(out), "wall_seconds": round(seconds, 1), "peak_rss_mb": round(peak[0] / 2**20)}


def build_both(corpus: Path, order: int, master: str, work: Path) -> list[dict]:
    """The single-machine build, then the Spark build, of `corpus` (each into a fresh folder)."""
    work.mkdir(parents=True, exist_ok=True)
    for old in ("local.ngram", "spark.ngram"):
        shutil.rmtree(work / old, ignore_errors=True)
    ngram = [shutil.which("ngram") or "ngram"]
    common = [str(corpus), "--order", str(order), "--no-progress", "--json"]
    local = measured([*ngram, "build", *common, "-o", str(work / "local.ngram")])
    spark = measured([*ngram, "build", *common, "-o", str(work / "spark.ngram"), "--engine", "spark",
                      "--spark-master", master])
    rows = []
    for engine, summary in (("single machine", local), (f"Spark {master}", spark)):
        rows.append({"engine": engine, "tokens": summary["training_tokens"], "ngrams": summary["nodes"] - 1,
                     "seconds": summary["wall_seconds"],
                     "spark_startup_seconds": summary.get("spark_startup_seconds"),
                     "spark_counting_seconds": summary.get("spark_counting_seconds"),
                     "assembly_seconds": summary.get("assembly_seconds"),
                     "peak_rss_mb": summary["peak_rss_mb"]})
    return rows


def table(rows: list[dict], order: int) -> str:
    """The rows as Markdown, with the machine they ran on."""
    lines = [f"{order}-gram builds on {cpu_name()}, {os.cpu_count()} cores, load average "
             f"{os.getloadavg()[0]:.1f} at the end (code {code_version()}):", "",
             "| corpus | engine | tokens | n-grams | time (s) | Spark start-up (s) | Spark jobs (s) | assembly (s) "
             "| peak memory (MB) | time vs single machine |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        base = next(r for r in rows if r["scale"] == row["scale"] and r["engine"] == "single machine")
        parts = ["" if row[key] is None else f"{row[key]:.1f}"
                 for key in ("spark_startup_seconds", "spark_counting_seconds", "assembly_seconds")]
        lines.append(f"| books x{row['scale']} | {row['engine']} | {row['tokens']:,} | {row['ngrams']:,} | "
                     f"{row['seconds']:.1f} | {' | '.join(parts)} | {row['peak_rss_mb']:,} | "
                     f"{row['seconds'] / base['seconds']:.1f}x |")
    lines.append("")
    lines.append("Time is the whole command (reading, counting, saving); peak memory is each build's whole "
                 "process tree (for Spark: driver, JVM with its local executors, Python workers).")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_BOOKS, help="The 1x corpus (default: the books).")
    parser.add_argument("--scales", default="1", help="Comma-separated repeats of the corpus, e.g. 1,4,16.")
    parser.add_argument("--order", type=int, default=5)
    parser.add_argument("--master", default="local[2]", help="The Spark master (default local[2]).")
    parser.add_argument("--json", action="store_true", help="Also print the rows as JSON.")
    parser.add_argument("--keep", type=Path, help="Build into this folder and keep the models and copies there.")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="ngram-spark-bench-") as scratch:
        tmp = args.keep or scratch
        for scale in [int(s) for s in args.scales.split(",")]:
            corpus = repeated_corpus(args.corpus, scale, Path(tmp)) if scale > 1 else args.corpus
            for row in build_both(corpus, args.order, args.master, Path(tmp) / f"x{scale}"):
                rows.append({"scale": scale, **row})
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(table(rows, args.order))
    if args.json:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
