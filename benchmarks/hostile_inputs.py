"""The hostile-inputs campaign of issue 14, rerun: corrupted files through the real tools.

    python benchmarks/hostile_inputs.py                     # the issue's sizes, seed 14
    python benchmarks/hostile_inputs.py --scale 0.2 --timeout 30

Every variant is one seeded corruption of a small valid file built here (see
`tests/hostile.py`: truncations, byte flips, edited safetensors headers and configs,
wrong JSON types, huge numbers, deep nesting, special files), run as its own process
(`transformer predict`, `transformer tokenize`, `ngram predict`/`perplexity`, and
`read_arpa` behind the tools' error handling), killed after --timeout seconds. Each
run is classified:

- clean error: exit code non-zero, exactly one `Error:` line, no traceback;
- traceback:   a Python traceback (or a crash with no `Error:` line);
- hang:        still running at the timeout;
- exit 0 with bad output: exit 0, but the JSON output has NaN/inf, a probability
  outside [0, 1], listed probabilities summing above 1, a negative or fractional
  count, or a Kneser-Ney perplexity that is not a finite number >= 1;
- (harmless: exit 0 with sane output, e.g. a bit flip inside a weight.)

It prints the issue's table (markdown), then one line per variant that was not a clean
error or harmless. Figures depend only on the seed, not on the machine.
"""
from __future__ import annotations

import argparse
import collections
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import hostile  # noqa: E402

#: The issue's campaign: variants per target (296 n-gram, 255 GPT-2, 15 text), plus the
#: two file types it did not count separately (tokenizer files, ARPA files).
SIZES = {"ngram": 296, "gpt2": 255, "tokenizer": 60, "arpa": 80}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=14, help="Seed of every generator.")
    parser.add_argument("--scale", type=float, default=1.0, help="Multiply the number of variants.")
    parser.add_argument("--timeout", type=float, default=60.0, help="Seconds before a run counts as a hang.")
    return parser.parse_args()


def campaign(originals: hostile.Originals, seed: int, scale: float) -> list[hostile.Variant]:
    """Every variant of the campaign, in a fixed order."""
    size = {name: max(1, round(n * scale)) for name, n in SIZES.items()}
    return (hostile.ngram_variants(originals, size["ngram"], seed)
            + hostile.gpt2_variants(originals, size["gpt2"], seed + 1)
            + hostile.tokenizer_variants(originals, size["tokenizer"], seed + 2)
            + hostile.arpa_variants(originals, size["arpa"], seed + 3)
            + hostile.text_variants(originals))


def table(results: list[tuple[hostile.Variant, str]]) -> str:
    """The issue's table: per target, how many were tried and how each ended."""
    columns = ["clean error", "traceback", "hang", "bad output"]
    lines = ["| target | tried | clean error | traceback | hang | exit 0 with bad output | exit 0, harmless |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    by_target: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for variant, outcome in results:
        by_target[variant.target][outcome] += 1
    for target, counts in by_target.items():
        cells = [str(counts[c]) for c in columns] + [str(counts["ok"])]
        lines.append(f"| {target} | {sum(counts.values())} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hostile-") as work:
        originals = hostile.make_originals(Path(work))
        variants = campaign(originals, args.seed, args.scale)
        results = []
        for i, variant in enumerate(variants, 1):
            outcome, stderr = hostile.run_subprocess(variant, args.timeout, REPO)
            results.append((variant, outcome))
            if outcome not in ("clean error", "ok"):
                last = stderr.strip().splitlines()[-1][:200] if stderr.strip() else ""
                print(f"{outcome}: {variant.target}: {variant.label} :: {last}", file=sys.stderr, flush=True)
            if i % 50 == 0:
                print(f"... {i}/{len(variants)}", file=sys.stderr, flush=True)
    print(table(results))
    print(f"\n{len(results)} variants (seed {args.seed}) in {time.perf_counter() - started:.0f} s; "
          f"Python {platform.python_version()}, {platform.machine()}.")


if __name__ == "__main__":
    main()
