"""`bench induction`: repeated random sequences, copy losses, and the induction score."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench import induction as ind
from bench import models
from bench.cli import main
from ngram import NgramModel, save_model
from transformer.score import token_logprobs

TINY = Path(__file__).parent / "fixtures" / "gpt2-tiny"  # a tiny random GPT-2 (no tokenizer of its own)
VOCAB = Path(__file__).parent / "fixtures" / "gpt2-vocab"  # a tiny GPT-2 with a tokenizer
BOOK = "The cat sat on the mat. The dog sat on the rug. It was a dark and stormy night.\n"


@pytest.fixture(scope="module")
def gpt() -> models.TransformerChoice:
    return models.transformer_model(str(VOCAB))


@pytest.fixture(scope="module")
def ngram(tmp_path_factory) -> NgramModel:
    folder = tmp_path_factory.mktemp("books")
    (folder / "one.txt").write_text(BOOK * 6, encoding="utf-8")
    return NgramModel.build(folder, order=3, min_count=1, heldout_fraction=0.1, progress=False)


def test_induction_score_on_a_hand_built_attention_pattern():
    length = 4
    t = 2 * length + 1
    maps = np.zeros((2, 3, t, t))
    for i in range(t):  # every head: all weight on the first position ...
        maps[:, :, i, 0] = 1.0
    for i in range(length + 1, t):  # ... except layer 1 head 2, which looks at the token after the earlier copy
        maps[1, 2, i, :] = 0.0
        maps[1, 2, i, i - length + 1] = 1.0
    maps[0, 1, length + 1:, :] = 0.0  # layer 0 head 1: half on the earlier copy itself, half on the right token
    for i in range(length + 1, t):
        maps[0, 1, i, i - length] = 0.5
        maps[0, 1, i, i - length + 1] = 0.5
    scores = ind.induction_scores(maps, length)
    assert scores.shape == (2, 3)
    assert scores[1, 2] == 1.0 and scores[0, 1] == 0.5
    assert scores[0, 0] == 0.0 and scores[1, 0] == 0.0


def test_sequences_are_two_equal_copies_of_ordinary_tokens_and_seeded(gpt):
    a = ind.repeated_sequences(gpt.tokenizer, gpt.model.config.vocab_size, 7, 3, seed=1)
    b = ind.repeated_sequences(gpt.tokenizer, gpt.model.config.vocab_size, 7, 3, seed=1)
    assert a.shape == (3, 15) and (a == b).all()
    assert (a[:, 0] == gpt.tokenizer.eot_id).all()
    assert (a[:, 1:8] == a[:, 8:]).all()
    assert not np.isin(a[:, 1:], list(gpt.tokenizer.special_tokens.values())).any()


def test_copy_means_split_the_targets_at_the_copy_boundary():
    losses = np.array([1.0, 3.0, 0.5, 0.5])
    assert ind.copy_means(losses, 2) == (2.0, 0.5)


def test_the_fixture_model_copy_losses_and_scores(ngram, gpt):
    report = ind.induction(ngram, gpt, length=8, repeats=2, seed=0)
    config = gpt.model.config
    assert report.scores.shape == (config.n_layer, config.n_head)
    assert ((report.scores >= 0) & (report.scores <= 1)).all()
    ids = ind.repeated_sequences(gpt.tokenizer, config.vocab_size, 8, 2, 0)
    expected = np.mean([ind.copy_means(-token_logprobs(gpt.model, row), 8)[1] for row in ids])
    assert report.transformer_loss[1] == pytest.approx(expected)
    data = report.to_dict()
    assert set(data["transformer"]) == {"first_copy", "second_copy"}


def test_tiny_random_gpt2_attention_gives_scores(ngram):
    from transformer import GPT2
    from transformer.inspection import attention_maps

    model = GPT2.from_dir(TINY)
    length = 5
    ids = np.concatenate([[0], np.arange(1, length + 1), np.arange(1, length + 1)])
    scores = ind.induction_scores(attention_maps(model, ids.tolist()), length)
    assert scores.shape == (model.config.n_layer, model.config.n_head)
    assert np.isfinite(scores).all() and (scores > 0).all()


def test_the_n_gram_copy_split_counts_every_token_once(ngram):
    copy = "The cat sat on the mat. "
    first, second = ind.ngram_copy_losses(ngram, copy + copy, len(copy), None)
    total = ngram.score(copy + copy, smoothing="kn").nll
    assert first + second == pytest.approx(total)
    assert first == pytest.approx(second, rel=0.5)  # the n-gram does not learn from the first copy


def test_cli_induction_json_plot_and_bad_length(ngram, tmp_path):
    path = save_model(ngram, tmp_path / "m.json.gz")
    png = tmp_path / "heads.png"
    run = CliRunner().invoke(main, ["induction", "--ngram", str(path), "--transformer", str(VOCAB), "--length", "6",
                                    "--repeats", "2", "--json", "--plot", str(png)])
    assert run.exit_code == 0, run.output
    assert "induction_scores" in json.loads(run.stdout) and png.stat().st_size > 0
    long = CliRunner().invoke(main, ["induction", "--ngram", str(path), "--transformer", str(VOCAB), "--length", "100"])
    assert long.exit_code != 0 and "Error: --length 100" in long.output
    bad_plot = CliRunner().invoke(main, ["induction", "--plot", str(tmp_path / "x.txt")])
    assert bad_plot.exit_code != 0 and "Error: --plot" in bad_plot.output
