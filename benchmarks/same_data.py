"""Same data, two models: how each one improves with more training text.

The trie and the bundled transformer were made from the same training split of the same
books. This script shows how their held-out perplexity per word moves as they see more
of it, which is what decides who wins on a small corpus:

- the Kneser-Ney 5-gram built from the first fraction f of every book's training part
  (f = 1/8, 1/4, 1/2, 1), scored open-vocabulary on the full held-out split exactly as
  `bench perplexity` does (unknown words pay for their spelling);
- the transformer's held-out loss at each evaluation during training (from its
  training.json: a sample of held-out batches), converted to per word with the held-out
  text's BPE tokens per word, against the text it had read by then (repeats included);
  and its final figure on the full held-out text;
- how much of the transformer's held-out NLL goes to predicting line breaks (Gutenberg's
  hard-wrapped lines), which the n-gram, reading sentences of words, never pays for.

    python benchmarks/same_data.py                          # the bundled model, default books
    python benchmarks/same_data.py --png same_data.png

Needs the default n-gram's corpus (`ngram build corpora/` once); CPU only, a few minutes.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def ngram_at_fraction(corpus, fraction: float, heldout: str) -> dict:
    """Build the 5-gram from the first `fraction` of every training part; score the held-out text."""
    from bench.perplexity import SpellingModel, ngram_rows
    from ngram import NgramModel, get_tokenizer

    tokenizer = get_tokenizer("words")
    sentences, words = [], 0
    for text in corpus.train_texts():
        part = text[: int(len(text) * fraction)]
        sentences.extend(tokenizer.sentences(part))
        words += len(part.split())
    model = NgramModel.from_sentences(sentences, 5, tokenizer)
    spelling = SpellingModel(t for s in sentences for t in s)
    row = ngram_rows(model, heldout, [5], ["kn"], spelling)[0]
    return {"fraction": fraction, "training_words": words, "per_word": row.per_word,
            "bits_per_byte": row.bits_per_byte, "oov_rate": row.oov_rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO / "transformer" / "bundled" / "books-gpt2")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.125, 0.25, 0.5, 1.0])
    parser.add_argument("--png", type=Path, help="also draw per-word perplexity against text read")
    args = parser.parse_args()

    from bench.perplexity import heldout_text
    from corpora.units import TextUnits
    from corpora import corpus_from_record
    from ngram import load_model as load_ngram
    import numpy as np

    from transformer import load_model, perplexity
    from transformer.score import text_ids, token_logprobs

    started = time.perf_counter()
    default = load_ngram()
    corpus = corpus_from_record(default.corpus)
    heldout = heldout_text(default).text
    units = TextUnits.of(heldout)
    print(f"Command: python benchmarks/same_data.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"Held-out text: {units.words:,} words, {units.bytes:,} bytes\n")

    ngram_rows = [ngram_at_fraction(corpus, f, heldout) for f in args.fractions]
    gpt, tokenizer = load_model(args.model)
    final = perplexity(gpt, tokenizer, heldout)
    tokens_per_word = final.tokens / units.words
    record = json.loads((args.model / "training.json").read_text(encoding="utf-8"))
    per_step = record["training"]["batch_size"] * record["training"]["ctx"]
    transformer_rows = [
        {"step": step, "tokens_read": step * per_step, "words_read": step * per_step / tokens_per_word,
         "per_word_estimate": math.exp(loss * tokens_per_word)}
        for step, loss in record["evals"]
    ]

    print("| KN 5-gram: training words | share of the split | per word | bits/byte | OOV |")
    print("|---:|---:|---:|---:|---:|")
    for r in ngram_rows:
        print(f"| {r['training_words']:,} | {r['fraction']:.3f} | {r['per_word']:,.1f} | {r['bits_per_byte']:.3f} | {r['oov_rate']:.2%} |")
    print()
    print("| transformer: step | text read (words, repeats included) | per word (from the training-time held-out sample) |")
    print("|---:|---:|---:|")
    for r in transformer_rows:
        print(f"| {r['step']:,} | {r['words_read']:,.0f} | {r['per_word_estimate']:,.1f} |")
    print()
    print(f"Transformer, final, full held-out text: per word {final.per_word:,.1f}, "
          f"bits/byte {final.bits_per_byte:.3f} ({tokens_per_word:.3f} BPE tokens per word)")
    ids = text_ids(tokenizer, heldout)
    logprobs = token_logprobs(gpt, ids)
    newline = np.array([b"\n" in tokenizer.token_bytes(i) for i in ids[1:]])
    print(f"Line breaks: {newline.sum():,} of {len(newline):,} held-out tokens hold a newline; they cost the "
          f"transformer {-logprobs[newline].sum() / units.words:.3f} of its {-logprobs.sum() / units.words:.3f} "
          "nats per word (the n-gram reads sentences of words and pays nothing for layout)")
    print(f"({time.perf_counter() - started:.0f} s)")

    if args.png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4.5))
        ax.plot([r["training_words"] for r in ngram_rows], [r["per_word"] for r in ngram_rows], "o-",
                label="KN 5-gram, built from that much text")
        ax.plot([r["words_read"] for r in transformer_rows], [r["per_word_estimate"] for r in transformer_rows], "^-",
                label="transformer, after reading that much text")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training text (words; the transformer reads the split several times)")
        ax.set_ylabel("held-out perplexity per word")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.png, dpi=110)
        print(f"Wrote {args.png}")


if __name__ == "__main__":
    main()
