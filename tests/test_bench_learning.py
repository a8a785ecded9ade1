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


def score_row(model, per_word_nll, words=1000, **labels):
    from bench.perplexity import ScoreRow
    from corpora.units import Score, TextUnits

    units = TextUnits(chars=5 * words, words=words, bytes=5 * words)
    return ScoreRow(model, labels.pop("label", model), Score(per_word_nll * words, 2 * words, units, "word"), **labels)


def test_the_report_section_draws_the_curve_against_the_kneser_ney_row():
    from bench.learning import learning_report, render_learning

    rows = [score_row("n-gram", 7.0, label="3-gram, Kneser-Ney", order=3, smoothing="kn"),
            score_row("n-gram", 6.5, label="5-gram, Kneser-Ney", order=5, smoothing="kn"),
            score_row("n-gram", 9.0, label="5-gram, add-1", order=5, smoothing="addk"),
            score_row("transformer", 6.2, label="full context"),
            score_row("transformer", 8.0, label="context cut to 4 tokens", context=4)]
    report = learning_report(TRAINING, "tiny", True, True, rows, heldout_words=1000)
    assert report.ngram_per_word == pytest.approx(math.exp(6.5))  # the highest-order Kneser-Ney row
    assert report.measured == (1000 * 4096, pytest.approx(math.exp(6.2)))  # full context, at the last step
    assert report.crossover_tokens == pytest.approx(math.exp(math.log(500 * 4096) + 0.75 * math.log(2)))
    text = render_learning(report)
    assert "| 1,000 | 4.1 M | 3.000 | 403 | 0.61x |" in text and "target 0.8x" in text
    assert report.to_dict()["measured"]["ratio_to_ngram"] == pytest.approx(math.exp(-0.3))


@pytest.mark.parametrize("training, same_split, heldout, reason", [
    (None, True, True, "has no training.json"),
    (TRAINING, False, True, "another corpus or split"),
    (TRAINING, True, False, "the report's text is another"),
])
def test_the_report_section_is_refused_when_the_curve_would_not_compare(training, same_split, heldout, reason):
    from bench.learning import learning_report

    with pytest.raises(UserError, match=reason):
        learning_report(training, "gpt2", same_split, heldout, [], heldout_words=1000)
