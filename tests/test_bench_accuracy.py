"""`bench accuracy`: the targets, each model's guesses, and the counting of hits."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench import accuracy as acc
from bench import models
from bench.cli import main
from corpora.tokenizers import BOS, NGRAM_SPECIALS
from ngram import NgramModel, save_model

VOCAB = Path(__file__).parent / "fixtures" / "gpt2-vocab"
BOOK = "The cat sat on the mat. The dog sat on the rug. It was a dark and stormy night.\n"
TEXT = "The cat sat on the rug. The dog sat on the mat."


@pytest.fixture(scope="module")
def ngram(tmp_path_factory) -> NgramModel:
    folder = tmp_path_factory.mktemp("books")
    (folder / "one.txt").write_text(BOOK * 6, encoding="utf-8")
    return NgramModel.build(folder, order=3, min_count=1, heldout_fraction=0.1, progress=False)


@pytest.fixture(scope="module")
def gpt() -> models.TransformerChoice:
    return models.transformer_model(str(VOCAB))


def test_targets_are_the_ngram_tokens_with_what_came_before(ngram):
    found = acc.targets(ngram, TEXT)
    assert [t.token for t in found][:7] == ["The", "cat", "sat", "on", "the", "rug", "."]
    assert found[1].start == 4 and found[1].context == (BOS, "The")
    assert found[7].context == (BOS,)  # a new sentence: the n-gram's context starts again
    assert found[7].start == len("The cat sat on the rug. ")
    assert [t.is_word for t in found[5:7]] == [True, False]


def test_ngram_guesses_follow_the_seen_context_and_never_offer_specials(ngram):
    target = acc.Target(0, (BOS, "sat", "on", "the"), "mat")
    guesses = acc.ngram_guesses(ngram, target)
    assert set(guesses[:2]) == {"mat", "rug"}  # both followed "on the" equally often
    assert not NGRAM_SPECIALS & set(acc.ngram_guesses(ngram, acc.Target(0, (BOS, "night", "."), "The")))


def test_hits_count_top1_and_top5_and_words_apart():
    hits = acc.Hits()
    hits.add(["mat", "rug"], acc.Target(0, (BOS,), "mat"), False)
    hits.add(["mat", "rug"], acc.Target(0, (BOS,), "rug"), False)
    hits.add([".", ","], acc.Target(0, (BOS,), "."), False)
    hits.add(["the"], acc.Target(0, (BOS,), "The"), True)
    assert (hits.top1, hits.topk, hits.word_top1, hits.word_topk) == (3, 4, 2, 3)


def test_transformer_guesses_are_words_cut_like_the_ngram(gpt):
    text = "The cat sat on the mat"
    reader = acc.Reader(gpt, text)
    guesses = acc.transformer_guesses(gpt, reader, acc.Target(text.index("mat"), (BOS,), "mat"), budget=16, lowercase=False)
    assert 0 < len(guesses) <= acc.TOP
    assert all(g and " " not in g for g in guesses)


def test_the_prompt_is_the_tokens_that_end_before_the_target(gpt):
    text = "The cat\n\nsat"
    reader = acc.Reader(gpt, text)
    pieces = [gpt.tokenizer.decode([int(i)]) for i in reader.ids[1:]]
    before_cat = reader.prompt_end(text.index("cat"))
    assert "".join(pieces[:before_cat - 1]) == "The"  # " cat" brings its own space
    before_sat = reader.prompt_end(text.index("sat"))
    assert "".join(pieces[:before_sat - 1]) == "The cat\n\n"  # the line breaks are seen
    assert reader.prompt_end(0) == 1  # only <|endoftext|>


def test_the_reader_cache_gives_the_logits_of_a_fresh_pass_also_after_moving_its_window(gpt):
    text = " ".join(["the cat sat on the mat and the dog sat on the rug"] * 40)
    reader = acc.Reader(gpt, text)
    starts = [i for i in range(len(text)) if i == 0 or text[i - 1] == " "]
    begins = set()
    for start in starts:
        prompt, (logits, _) = reader.before(start)
        begins.add(reader.begin)
        assert len(prompt) <= gpt.model.config.n_ctx - acc.MAX_WORD_TOKENS
        fresh, _ = gpt.model.forward(prompt)
        np.testing.assert_allclose(logits, fresh, atol=1e-4)
    assert len(begins) > 1  # the window moved along the text


def test_cli_accuracy_json(ngram, tmp_path):
    path = save_model(ngram, tmp_path / "m.json.gz")
    text = tmp_path / "t.txt"
    text.write_text(TEXT, encoding="utf-8")
    run = CliRunner().invoke(main, ["accuracy", "--ngram", str(path), "--transformer", str(VOCAB), "--text", str(text),
                                    "--budget", "8", "--json", "--no-progress"])
    assert run.exit_code == 0, run.output
    data = json.loads(run.stdout)
    assert data["targets"] == 14 and data["word_targets"] == 12
    assert 0.0 <= data["transformer"]["top1"] <= data["transformer"]["top5"] <= 1.0
    assert data["ngram"]["top5"] > 0.5  # the n-gram has seen these sentences' pieces
    missing = CliRunner().invoke(main, ["accuracy", "--text", str(tmp_path / "none.txt"), "--ngram", str(path)])
    assert missing.exit_code != 0 and missing.output.startswith("Error:")
