"""`bench perplexity --breakdown`: matched-context buckets that add up to the whole text."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench import breakdown as bd
from bench import models
from bench import perplexity as ppl
from bench.cli import main
from corpora.tokenizers import BOS, UNK
from ngram import NgramModel, save_model

FIXTURE = Path(__file__).parent / "fixtures" / "gpt2-vocab"
BOOK = """It was the best of times, it was the worst of times. The cat sat on the mat.
The dog sat on the rug, and the cat looked at the dog. It was a dark and stormy night.
"""
PROBE = "The cat sat on the rug. Zebras quietly looked at the _old_ mat, and it was night."


@pytest.fixture(scope="module")
def ngram(tmp_path_factory) -> NgramModel:
    folder = tmp_path_factory.mktemp("books")
    (folder / "one.txt").write_text((BOOK + "\n") * 4, encoding="utf-8")
    return NgramModel.build(folder, order=3, min_count=1, heldout_fraction=0.01, progress=False)


@pytest.fixture(scope="module")
def gpt() -> models.TransformerChoice:
    return models.transformer_model(str(FIXTURE))


def test_matched_length_is_the_longest_seen_suffix(ngram):
    assert bd.matched_length(ngram.counts, [BOS, "The", "cat"]) == 2  # "The cat" was seen
    assert bd.matched_length(ngram.counts, ["Zebras", "cat"]) == 1  # "cat" was, "Zebras cat" not
    assert bd.matched_length(ngram.counts, ["cat", "Zebras"]) == 0
    assert bd.matched_length(ngram.counts, []) == 0


def test_an_unknown_word_in_the_context_ends_the_match():
    class SeenEverything:  # a trie that has seen every context, <unk> included
        def context_node(self, context):
            return {}

    assert bd.matched_length(SeenEverything(), ["a", "b", "c"]) == 3
    assert bd.matched_length(SeenEverything(), ["a", UNK, "c"]) == 1
    assert bd.matched_length(SeenEverything(), ["a", "b", UNK]) == 0


def test_words_get_the_bucket_of_their_first_token(ngram):
    result = bd.ngram_word_losses(ngram, PROBE, None)
    words = PROBE.split()
    assert len(result.bucket) == len(words)
    by_word = dict(zip(words, result.bucket.tolist()))
    assert by_word["The"] == 1  # after <s>: <s> was seen
    assert by_word["cat"] == 2  # <s> The
    assert by_word["quietly"] == 0  # after the unknown Zebras (<unk> never seen)
    assert by_word["rug."] == 2  # "the rug" seen after "on"


def test_a_word_with_no_ngram_token_takes_the_previous_bucket():
    assert bd.fill_from_previous(np.array([-1, 2, -1, 0, -1])).tolist() == [0, 2, 2, 0, 0]


def test_buckets_add_up_to_the_perplexity_rows(ngram, gpt):
    spelling = ppl.SpellingModel.for_model(ngram)
    result = bd.breakdown(ngram, gpt, PROBE, spelling)
    rows = ppl.compare_perplexity(ngram, gpt, ppl.EvalText(PROBE, "probe"), [ngram.order], ["kn"], ablation="none").rows
    ngram_row = [r for r in rows if r.model == "n-gram"][0]
    transformer_row = [r for r in rows if r.model == "transformer"][0]
    *buckets, total = result.buckets
    assert total.length is None
    # words and bytes: exactly the text's, bucket by bucket
    assert sum(b.ngram.units.words for b in buckets) == total.ngram.units.words == ngram_row.score.units.words
    assert sum(b.ngram.units.bytes for b in buckets) == total.ngram.units.bytes == ngram_row.score.units.bytes
    assert sum(b.share for b in buckets) == pytest.approx(1.0)
    # losses: the buckets' sum is the total, which is each model's row
    assert total.ngram.nll == sum(b.ngram.nll for b in buckets)
    assert total.transformer.nll == sum(b.transformer.nll for b in buckets)
    assert total.ngram.nll == pytest.approx(ngram_row.score.nll, rel=1e-12)
    assert total.transformer.nll == pytest.approx(transformer_row.score.nll, rel=1e-12)
    assert total.ngram.per_word == pytest.approx(ngram_row.score.per_word, rel=1e-12)
    assert total.transformer.per_word == pytest.approx(transformer_row.score.per_word, rel=1e-12)
    assert result.ngram_tokens == ngram_row.score.tokens
    assert result.transformer_tokens == transformer_row.score.tokens


def test_cli_breakdown_text_and_json(ngram, tmp_path):
    path = save_model(ngram, tmp_path / "m.json.gz")
    text = tmp_path / "t.txt"
    text.write_text(PROBE, encoding="utf-8")
    common = ["perplexity", "--ngram", str(path), "--transformer", str(FIXTURE), "--text", str(text), "--no-progress",
              "--orders", "3", "--ablation", "none", "--breakdown"]
    run = CliRunner().invoke(main, common)
    assert run.exit_code == 0, run.output
    assert "all words" in run.stdout and "context seen" in run.stdout
    data = json.loads(CliRunner().invoke(main, [*common, "--json"]).stdout)
    assert [b["matched_context"] for b in data["breakdown"]["buckets"]] == [0, 1, 2, None]
    assert data["breakdown"]["buckets"][-1]["words"] == len(PROBE.split())


def test_breakdown_refuses_an_ngram_not_over_words():
    from corpora import UserError
    from corpora.tokenizers import get_tokenizer

    model = NgramModel.from_sentences([list("ab"), list("ac")], 2, get_tokenizer("chars"), min_count=1)
    with pytest.raises(UserError, match="needs an n-gram over words"):
        bd.ngram_word_losses(model, "ab ac", None)
