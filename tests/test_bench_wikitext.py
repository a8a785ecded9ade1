"""`bench perplexity --wikitext`: articles, the harness's detokenizer, disjoint windows, original units."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench import models
from bench import wikitext as wiki
from bench.cli import main
from corpora import UserError
from ngram import NgramModel, save_model

FIXTURE = Path(__file__).parent / "fixtures" / "gpt2-vocab"  # 128 positions
RAW = """ 
 = Robert Boulter = 
 
 Robert Boulter is an English film , television and theatre actor . He had a guest @-@ starring role in 2000 . 
 
 = = Career = = 
 
 In 2006 , Boulter starred in the play " Citizenship " ( written by Mark ) . It cost £ 1 @,@ 000 @.@ 50 . 
 
 = Du Fu = 
 
 Du Fu was a Chinese poet ; his father 's name is unknown : he wrote 1 @,@ 500 poems . 
"""


@pytest.mark.parametrize("tokenized, detokenized", [
    ("a guest @-@ starring role", "a guest-starring role"),
    ("1 @,@ 000", "1,000"),
    ("3 @.@ 5 million", "3.5 million"),
    ("he wrote : yes", "he wrote: yes"),
    ("one ; two", "one; two"),
    ("end . Next", "end. Next"),
    ("what ! no ? fine , good", "what! no? fine, good"),
    ("his father 's name", "his father's name"),
    ("the players ' union", "the players' union"),
    ("( written by Mark )", "(written by Mark)"),
    ("[ 1 ]", "[1]"),
    ("{ x }", "{x}"),
    ('" Citizenship "', '"Citizenship"'),
    ("' Teddy '", "'Teddy'"),
    (" = = Career = = ", " == Career == "),
    (" = = = Early life = = = ", " === Early life === "),
    ("5 ° C", "5°C"),
    ("line \n next", "line\nnext"),
    ("a N b", "a 1 b"),
])
def test_the_detokenizer_undoes_wikitext_spacing_as_the_harness_does(tokenized, detokenized):
    assert wiki.detokenize(tokenized) == detokenized


def test_a_whole_line_is_detokenized_rule_after_rule():
    line = ' In 2006 , Boulter starred in the play " Citizenship " ( written by Mark ) . It cost £ 1 @,@ 000 @.@ 50 . '
    assert wiki.detokenize(line) == ' In 2006, Boulter starred in the play "Citizenship" (written by Mark). It cost £ 1,000.50. '


def test_articles_start_at_top_level_headings_only():
    docs = wiki.split_documents(RAW)
    assert len(docs) == 2
    assert docs[0].startswith(" = Robert Boulter = \n") and " = = Career = = " in docs[0]
    assert docs[1].startswith(" = Du Fu = \n") and docs[1].endswith("poems . \n")
    assert "\n".join([" ", *docs]) == RAW  # nothing lost but the blank line before the first heading


def test_words_and_bytes_are_the_original_articles_counted_as_the_harness_counts():
    assert wiki.harness_words(" a b \n") == 4  # re.split(r"\s+") keeps an empty piece at each end
    docs = wiki.split_documents(RAW)
    units = wiki.harness_units(docs)
    assert units.words == sum(len(d.split()) + 2 for d in docs)
    assert units.bytes == sum(len(d.encode("utf-8")) for d in docs)  # "£" is two bytes


def test_disjoint_windows_score_every_token_once():
    # 10 tokens, windows of 4: [prefix]+t0..t2 -> t0..t3; then t3..t6 -> t4..t7; the last reads t5..t8 -> t8, t9
    assert wiki.harness_windows(10, 4) == [(0, 4, 0), (4, 8, 4), (6, 10, 8)]
    for n, L in [(1, 4), (4, 4), (9, 4), (12, 4), (30, 7)]:
        targets = [t for start, end, first in wiki.harness_windows(n, L) for t in range(first, end)]
        assert targets == list(range(n))
        assert all(end - start <= L for start, end, _ in wiki.harness_windows(n, L))


@pytest.fixture(scope="module")
def gpt() -> models.TransformerChoice:
    return models.transformer_model(str(FIXTURE))


@pytest.mark.parametrize("n_ids", [2, 50, 129, 256, 300])
def test_batched_chunks_equal_the_harness_windows_one_by_one(gpt, n_ids):
    ids = np.random.default_rng(n_ids).integers(0, 50257, n_ids)
    fast = wiki.rolling_logprobs(gpt.model, ids, 128)
    reference = wiki.rolling_logprobs_reference(gpt.model, ids, 128)
    assert len(fast) == n_ids - 1 and not np.isnan(reference).any()
    np.testing.assert_allclose(fast, reference, rtol=1e-5, atol=1e-6)


def test_a_file_without_headings_is_refused(tmp_path):
    path = tmp_path / "plain.txt"
    path.write_text("Just a text.\nNo headings here.\n", encoding="utf-8")
    with pytest.raises(UserError, match="no top-level ' = Title = ' heading"):
        wiki.read_wikitext(path)


def test_max_words_keeps_whole_articles(tmp_path):
    path = tmp_path / "wiki.raw"
    path.write_text(RAW, encoding="utf-8")
    first = wiki.split_documents(RAW)[0]
    text = wiki.read_wikitext(path, max_words=wiki.harness_words(first) + 1)
    assert text.originals == [first] and text.truncated


@pytest.fixture(scope="module")
def ngram_file(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("books")
    (folder / "one.txt").write_text(("Robert Boulter is an English film actor. He wrote poems.\n" * 20), encoding="utf-8")
    path = folder / "tiny.ngram"
    save_model(NgramModel.build(folder / "one.txt", order=3, min_count=1, heldout_fraction=0.2, progress=False), path)
    return path


def test_cli_scores_wikitext_the_harness_way_and_prints_published_figures(gpt, ngram_file, tmp_path):
    path = tmp_path / "wiki.raw"
    path.write_text(RAW, encoding="utf-8")
    args = ["perplexity", "--text", str(path), "--wikitext", "--ngram", str(ngram_file), "--transformer", str(FIXTURE),
            "--no-progress", "--ablation", "none"]
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    docs = wiki.split_documents(RAW)
    row = next(r for r in data["rows"] if r["model"] == "transformer")
    nll = 0.0
    for page in docs:
        ids = [gpt.tokenizer.eot_id, *gpt.tokenizer.encode(wiki.detokenize(page))]
        nll -= wiki.rolling_logprobs_reference(gpt.model, ids, 128).sum()
    units = wiki.harness_units(docs)
    assert row["nll"] == pytest.approx(nll, rel=1e-6)
    assert row["per_word"] == pytest.approx(math.exp(nll / units.words), rel=1e-6)
    assert row["bits_per_byte"] == pytest.approx(nll / math.log(2) / units.bytes, rel=1e-6)
    assert all(r["units"]["words"] == units.words for r in data["rows"])  # the n-gram rows too
    text = CliRunner().invoke(main, args).stdout
    assert "Published, not measured" in text and "37.37" in text and "29.41" in text


def test_cli_refuses_wikitext_without_a_file_or_with_mix(ngram_file, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["perplexity", "--wikitext", "--ngram", str(ngram_file)])
    assert result.exit_code != 0 and "Error: --wikitext reads a raw WikiText file" in result.output
    path = tmp_path / "wiki.raw"
    path.write_text(RAW, encoding="utf-8")
    result = runner.invoke(main, ["perplexity", "--text", str(path), "--wikitext", "--mix", "0.5", "--ngram", str(ngram_file)])
    assert result.exit_code != 0 and "Error: --wikitext does not go with --mix" in result.output
