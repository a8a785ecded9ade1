"""Fuzz suite: hostile files never crash the tools.

Small valid files are built at test time (a tiny GPT-2 folder with its tokenizer, a
3-gram model as an array folder, as gzip JSON and as ARPA, a text file); each variant
is one seeded corruption of one of them (truncations, byte flips, header and config
edits, wrong JSON types, huge numbers, deep nesting, special files), read by the real
command in-process (click's CliRunner). Every variant must end, within TIME_LIMIT
seconds, in one of two ways:

- exit code non-zero with exactly one `Error:` line on stderr (at most 300 characters)
  and no traceback; or
- exit 0 with *sane* JSON output (`hostile.sane_*`): no NaN or infinity anywhere,
  probabilities in [0, 1] and summing to at most 1, counts whole numbers >= 0,
  Kneser-Ney perplexities finite and >= 1. Some corruptions are harmless (an unused
  config key, a bit flip in a weight that stays a small finite number), so exit 0 is
  allowed for them, but only with such output.

About 300 variants by default; `TTT_FUZZ_VARIANTS=N` runs about N (the same seeds, so
a larger run starts with the default run's variants). A handful also run as real
subprocesses, to see real exit codes and that nothing blocks (a named pipe, /dev/zero).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

import hostile

TIME_LIMIT = 20.0  # seconds for one variant; generous, for a loaded 2-core machine
TOTAL = int(os.environ.get("TTT_FUZZ_VARIANTS", "300"))
SHARE = {"gpt2": 0.33, "tokenizer": 0.1, "ngram": 0.34, "arpa": 0.13}  # the text inputs are a fixed list


@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> hostile.Originals:
    return hostile.make_originals(tmp_path_factory.mktemp("hostile"))


def failures(variants: list[hostile.Variant]) -> list[str]:
    """The variants that did not end in a clean error or a sane exit 0, one line each."""
    bad = []
    for v in variants:
        outcome, stderr = hostile.run_in_process(v, TIME_LIMIT)
        if outcome not in ("clean error", "ok"):
            bad.append(f"{outcome}: {v.label} :: {stderr.strip()[-300:]}")
    return bad


def count(target: str) -> int:
    return max(1, round(TOTAL * SHARE[target]))


def test_fuzz_gpt2_folders(originals):
    assert failures(hostile.gpt2_variants(originals, count("gpt2"), seed=1)) == []


def test_fuzz_tokenizer_files(originals):
    assert failures(hostile.tokenizer_variants(originals, count("tokenizer"), seed=2)) == []


def test_fuzz_ngram_json_models(originals):
    assert failures(hostile.ngram_variants(originals, count("ngram") // 2, seed=3, formats="json")) == []


def test_fuzz_ngram_array_folders(originals):
    assert failures(hostile.ngram_variants(originals, count("ngram") // 2, seed=5, formats="folder")) == []


def test_fuzz_arpa_files(originals):
    assert failures(hostile.arpa_variants(originals, count("arpa"), seed=4)) == []


def test_fuzz_text_inputs(originals):
    assert failures(hostile.text_variants(originals)) == []


def test_the_originals_are_read_cleanly(originals):
    """The fuzz suite means something only if the uncorrupted files give exit 0 and sane output."""
    variants = [
        hostile.Variant("", "original GPT-2", "transformer", ["predict", "the cat", "--model", str(originals.gpt2), "--json"],
                        hostile.sane_transformer),
        hostile.Variant("", "original n-gram folder", "ngram", ["predict", str(originals.ngram_folder), "the cat", "--json"],
                        hostile.sane_ngram_prediction),
        hostile.Variant("", "original n-gram JSON", "ngram", ["predict", str(originals.ngram_json), "the cat", "--json"],
                        hostile.sane_ngram_prediction),
        hostile.Variant("", "original ARPA", "arpa", [str(originals.arpa)], hostile.sane_arpa),
        hostile.Variant("", "original text", "ngram", ["perplexity", str(originals.ngram_folder), str(originals.text),
                                                       "--smoothing", "kn", "--no-progress", "--json"], hostile.sane_perplexity),
    ]
    assert [hostile.run_in_process(v, TIME_LIMIT)[0] for v in variants] == ["ok"] * len(variants)


@pytest.mark.parametrize("which", ["a named pipe", "/dev/zero", "config n_layer 1e9", "NaN weight"])
def test_real_processes_exit_1_with_one_error_line(originals, tmp_path, which):
    """A few variants as real processes: exit code 1, one `Error:` line, nothing blocks."""
    texts = {v.label.removeprefix("ngram: "): v for v in hostile.text_variants(originals) if v.tool == "ngram"}
    if which in texts:
        variant = texts[which]
    else:
        folder = hostile.fresh_copy(originals.gpt2, tmp_path / "gpt2")
        if which == "config n_layer 1e9":
            config = (folder / "config.json").read_text().replace('"n_layer": 2', '"n_layer": 1000000000')
            (folder / "config.json").write_text(config)
        else:
            hostile.set_weight(folder / "model.safetensors", float("nan"))
        variant = hostile.Variant("", which, "transformer", ["predict", "x", "--model", str(folder), "--json"],
                                  hostile.sane_transformer)
    outcome, stderr = hostile.run_subprocess(variant, 60.0, Path(__file__).resolve().parents[1])
    assert outcome == "clean error", stderr
    assert len(stderr.strip().splitlines()) == 1 and stderr.startswith("Error: ")
