"""The learning curve: token losses turned into per-word perplexity, the crossover, the plot."""
from __future__ import annotations

import math

import pytest

from bench.learning import crossover, learning_curve, per_word_from_token_loss, plot_learning_curve
from corpora.common import UserError

TRAINING = {  # the shape of training.json, cut to what the curve reads
    "training": {"batch_size": 8, "ctx": 512},
    "heldout_tokens": 2000,
    "evals": [[250, 5.0], [500, 4.0], [1000, 3.0]],
}


def test_points_carry_tokens_seen_and_per_word_perplexity():
    curve = learning_curve(TRAINING, heldout_words=1000)  # 2 tokens a word
    assert [p.step for p in curve] == [250, 500, 1000]
    assert [p.tokens_seen for p in curve] == [250 * 4096, 500 * 4096, 1000 * 4096]
    assert [p.per_word for p in curve] == pytest.approx([math.exp(10), math.exp(8), math.exp(6)])
    assert per_word_from_token_loss(2.0, tokens=300, words=100) == pytest.approx(math.exp(6))


def test_crossover_is_interpolated_in_log_space_and_none_when_never_reached():
    curve = learning_curve(TRAINING, heldout_words=1000)
    # halfway in log perplexity between step 500 (e^8) and 1000 (e^6): halfway in log tokens
    assert crossover(curve, math.exp(7)) == pytest.approx(math.sqrt(500 * 4096 * 1000 * 4096))
    assert crossover(curve, math.exp(8)) == pytest.approx(500 * 4096)  # reached exactly at an evaluation
    assert crossover(curve, math.exp(5)) is None  # the transformer never gets that low
    assert crossover(curve, math.exp(11)) is None  # it starts below: no crossing to mark


def test_missing_evaluations_are_a_clear_error():
    with pytest.raises(UserError, match="no held-out evaluations"):
        learning_curve({**TRAINING, "evals": []}, heldout_words=1000)
    with pytest.raises(UserError, match="lacks what a learning curve needs"):
        learning_curve({"evals": [[1, 2.0]]}, heldout_words=1000)
    with pytest.raises(UserError, match="no words"):
        learning_curve(TRAINING, heldout_words=0)


def test_plot_is_written(tmp_path):
    curve = learning_curve(TRAINING, heldout_words=1000)
    path = plot_learning_curve(curve, math.exp(7), tmp_path / "curve.png", title="Held-out books",
                               target_ratio=0.8, measured=(1000 * 4096, math.exp(6)))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
