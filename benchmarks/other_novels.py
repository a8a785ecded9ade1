"""Both models on novels of the same period that neither of them has read.

The held-out split is the last 5% of the same 27 books both models were made from: the
same authors, characters, names and spellings. Whether a model has learned English prose
or only these books shows on a novel neither has seen. This script cuts one fixed excerpt
from each Project Gutenberg text you give it and scores both models on it exactly as
`bench perplexity --text` does (open vocabulary; per word and bits per byte over the same
word and byte counts for both), then prints one table.

    python benchmarks/other_novels.py pg145.txt pg2600.txt pg35.txt pg105.txt pg33.txt
    python benchmarks/other_novels.py novels/*.txt --transformer path/to/model --json

The excerpt of a file: its body (Gutenberg's header and footer dropped, as
`corpora.fetch.clean_book` does for the default books), then EXCERPT_CHARS characters
from the first paragraph break after START_FRACTION of the body, cut back to the last
paragraph break. Its word count and sha256 are printed, so a figure can be tied to the
exact text. Files are not copied anywhere; bring your own (gutenberg.org ids in the README).

Needs the default n-gram (built from the default books if missing) and the transformer
(default: bundled). About a minute per novel on 2 cores.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

EXCERPT_CHARS = 80_000  # about 14,000 words: enough for a per-word figure to settle
START_FRACTION = 0.4  # from 40% of the way in: past the opening chapters' set-up


def excerpt_of(body: str, chars: int = EXCERPT_CHARS, start_fraction: float = START_FRACTION) -> str:
    """`chars` characters of `body` from the first paragraph break after `start_fraction`
    of it, ending at the last paragraph break inside that span (whole paragraphs only).
    A body shorter than that gives as much as it has from the same start. No line break
    at either end: the text `bench perplexity --text` scores from a file holding it."""
    start = body.find("\n\n", int(len(body) * start_fraction))
    start = 0 if start < 0 else start + 2
    if start + chars >= len(body):
        return body[start:].strip("\n")
    end = body.rfind("\n\n", start, start + chars)
    end = start + chars if end <= start else end  # no break inside the span: cut at the budget
    return body[start:end].strip("\n")


def novel_excerpt(path: Path) -> tuple[str, str]:
    """(excerpt, sha256 of its UTF-8 bytes) of one Gutenberg text file."""
    from corpora.documents import read_text_argument
    from corpora.fetch import strip_gutenberg

    text = excerpt_of(strip_gutenberg(read_text_argument(path)))
    return text, hashlib.sha256(text.encode("utf-8")).hexdigest()


def score_novel(path: Path, ngram, transformer, order: int, progress: bool) -> dict:
    """Both models' scores on one novel's excerpt: words, bytes, per word and bits per byte."""
    from bench.perplexity import EvalText, compare_perplexity

    text, digest = novel_excerpt(path)
    report = compare_perplexity(ngram, transformer, EvalText(text, str(path)), [order], smoothings=("kn",),
                                ablation="none", progress=progress)
    kn = next(r for r in report.rows if r.model == "n-gram")
    tf = next(r for r in report.rows if r.model == "transformer")
    return {
        "file": path.name, "sha256": digest, "words": report.units.words, "bytes": report.units.bytes,
        "oov_rate": report.oov_rate,
        "ngram_per_word": kn.score.per_word, "ngram_bits_per_byte": kn.score.bits_per_byte,
        "transformer_per_word": tf.score.per_word, "transformer_bits_per_byte": tf.score.bits_per_byte,
    }


def render(rows: list[dict], order: int, transformer_name: str) -> str:
    lines = [
        f"| novel (excerpt) | words | OOV | {order}-gram KN per word | transformer per word | ratio | "
        "KN bits/byte | transformer bits/byte | sha256 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['file']} | {r['words']:,} | {r['oov_rate']:.1%} | {r['ngram_per_word']:,.1f} | "
            f"{r['transformer_per_word']:,.1f} | {r['transformer_per_word'] / r['ngram_per_word']:.2f}x | "
            f"{r['ngram_bits_per_byte']:.3f} | {r['transformer_bits_per_byte']:.3f} | {r['sha256'][:12]} |"
        )
    lines.append(f"\ntransformer: {transformer_name}; ratio = transformer / n-gram per word (below 1: the transformer wins)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, help="Project Gutenberg text files (one novel each)")
    parser.add_argument("--transformer", default="bundled", help="model folder, Hugging Face name or 'bundled'")
    parser.add_argument("--order", type=int, default=5, help="n-gram order to score (Kneser-Ney)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    parser.add_argument("--progress", action="store_true", help="progress bars while scoring")
    args = parser.parse_args()
    for path in args.files:  # every argument checked before a model is loaded
        if not path.is_file():
            sys.exit(f"error: {path}: no such file")

    from bench import models

    ngram = models.ngram_model(None, progress=args.progress)
    if not 1 <= args.order <= ngram.order:
        sys.exit(f"error: --order {args.order}: the default n-gram has orders 1 to {ngram.order}")
    transformer = models.transformer_model(args.transformer)
    rows = [score_novel(path, ngram, transformer, args.order, args.progress) for path in args.files]
    if args.json:
        print(json.dumps({"transformer": transformer.description, "order": args.order, "novels": rows}, indent=2))
    else:
        print(render(rows, args.order, transformer.description))


if __name__ == "__main__":
    main()
