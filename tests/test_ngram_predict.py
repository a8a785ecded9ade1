"""Predictions a teacher can trust: ranked by the smoothed probability, exact top-k, no model
tokens offered as words, a "why" sentence that really holds the matched context, and the
matched order explained with <s> shown. Each on a tiny model whose answer is known by hand."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from corpora.tokenizers import BOS, EOS, UNK
from ngram import NgramModel, save_model
from ngram.cli import main

# A bigram model. "a" is followed by "z" twice and by "x" once; "y" follows seven
# different words, so Kneser-Ney's unigram level (continuation counts) gives "y" far more
# than "x": p(y | a) = 0.153 beats p(x | a) = 0.134, although "a y" never occurred.
RANKING = "a x.\n\n" + "".join(f"{w} y. " for w in "bcdefgh") + "\n\n" + "a z x. a z x."

# A trigram model with min count 2: apple, berry and cherry become <unk>, so "saw the" is
# followed by <unk> 3 times and "dog" twice; every sentence ends "... ." then </s>.
RARE = "I saw the apple. I saw the berry. I saw the cherry. I saw the dog. I saw the dog."

# A 4-gram model: "Go home now" occurs first inside a sentence, then starting one.
START = "We said Go home now. Go home now, he said."


def tiny(folder: Path, text: str, order: int, min_count: int = 1) -> NgramModel:
    """A model of `text`, written to `folder` first so the "why" can read the building text back."""
    (folder / "tiny.txt").write_text(text, encoding="utf-8")
    return NgramModel.build(folder, order=order, min_count=min_count, heldout_fraction=0.0, progress=False)


@pytest.fixture(scope="module")
def ranking(tmp_path_factory) -> NgramModel:
    return tiny(tmp_path_factory.mktemp("ranking"), RANKING, order=2)


@pytest.fixture(scope="module")
def rare(tmp_path_factory) -> NgramModel:
    return tiny(tmp_path_factory.mktemp("rare"), RARE, order=3, min_count=2)


@pytest.fixture(scope="module")
def start(tmp_path_factory) -> NgramModel:
    return tiny(tmp_path_factory.mktemp("start"), START, order=4)


def tokens(prediction) -> list[str]:
    return [c.token for c in prediction.candidates]


# ---------------------------------------------------------------- ranking and top-k
def test_candidates_are_ranked_by_probability_not_by_the_order_they_were_found(ranking):
    p = ranking.predict("a", k=3)
    assert tokens(p) == ["z", "y", "x"]  # the old ranking listed x (seen after "a") above the more probable y
    kn = ranking.smoothing("kn")
    assert [c.probability for c in p.candidates] == pytest.approx([kn.prob(["a"], t) for t in ["z", "y", "x"]])
    assert p.candidates[1].probability > p.candidates[2].probability
    assert [(c.count, c.order) for c in p.candidates] == [(2, 2), (7, 1), (1, 2)]  # y: 7 times, as a unigram


def test_top_k_is_exact_no_word_left_out_is_more_probable(ranking):
    p = ranking.predict("a", k=2)
    assert tokens(p) == ["z", "y"]  # the old top-2 was z, x and left out y
    full = ranking.smoothing("kn").distribution([BOS, "a"])
    listed = {ranking.counts.index[t] for t in tokens(p)}
    words = [i for i, t in enumerate(ranking.counts.predictable) if t not in (EOS, UNK)]
    assert max(full[i] for i in words if i not in listed) <= p.candidates[-1].probability


def test_stupid_backoff_ranks_by_its_score(ranking):
    p = ranking.predict("a", k=3, smoothing="backoff")
    scores = [c.probability for c in p.candidates]
    assert tokens(p)[:2] == ["z", "x"] and scores[:2] == pytest.approx([2 / 3, 1 / 3])  # seen after "a"
    assert scores == sorted(scores, reverse=True)


# ------------------------------------------------------------------ model tokens
def test_end_of_sentence_is_not_a_word_but_its_share_is_said(ranking):
    p = ranking.predict("a x.", k=3)  # after "." a sentence always ends
    assert EOS not in tokens(p) and BOS not in tokens(p)  # </s> was the old top prediction
    kn = ranking.smoothing("kn")
    assert p.end_of_sentence == pytest.approx(kn.prob(["."], EOS))
    assert p.end_of_sentence > p.candidates[0].probability  # </s> is the most probable token here
    assert p.unknown_word == pytest.approx(kn.prob(["."], UNK))


def test_unknown_word_is_not_offered_but_its_share_is_said(rare):
    p = rare.predict("I saw the", k=2)
    assert tokens(p)[0] == "dog" and UNK not in tokens(p)  # <unk> (3 times) was the old top prediction
    assert p.unknown_word == pytest.approx(rare.smoothing("kn").prob(["saw", "the"], UNK))
    assert p.unknown_word > p.candidates[0].probability


def test_complete_offers_no_empty_phrase_and_no_model_tokens(rare, ranking):
    for model, context in ((rare, "I saw"), (ranking, "a x")):
        phrases = model.complete(context, length=2, k=5)
        assert phrases and all(len(p.tokens) == 2 and p.text for p in phrases)
        assert not {BOS, EOS, UNK} & {t for p in phrases for t in p.tokens}  # old: "the <unk>", ". </s>"
    assert [p.tokens for p in rare.complete("I saw", length=2, k=1)] == [["the", "dog"]]


# ------------------------------------------------------------------------ the why
def test_why_is_none_when_the_matched_context_holds_no_word(rare):
    p = rare.predict("I zebra", k=1, example=True)  # zebra is <unk>: matched "<unk>" alone
    assert p.matched_context == [UNK]
    assert p.example is None  # the old "why" was any sentence with some word before "."
    assert "no word to look for" in p.no_example
    fallback = rare.predict("Zebra quagga", k=1, example=True)
    assert fallback.example is None and "unigrams" in fallback.no_example


def test_why_contains_the_matched_context_at_a_sentence_start_when_it_begins_with_s(start):
    p = start.predict("Go home", k=1, example=True)
    assert p.matched_context == [BOS, "Go", "home"] and tokens(p) == ["now"]
    assert p.example == "Go home now, he said."  # the old one: "We said Go home now." (not a sentence start)


def test_why_contains_the_matched_context_even_when_the_top_word_never_followed_it(tmp_path):
    model = tiny(tmp_path, RANKING + "\n\nw v. w u.", order=2)  # "w" is followed by v and u once each
    p = model.predict("w", k=1, example=True)
    assert p.matched_context == ["w"] and (p.candidates[0].token, p.candidates[0].order) == ("y", 1)  # y: a unigram
    assert p.example == "w v."  # "w y" never occurred: the sentence holds the context alone


# --------------------------------------------------------------- the matched order
def test_matched_order_is_explained_with_s_shown(start, tmp_path):
    path = save_model(start, tmp_path / "start.json.gz")
    out = CliRunner().invoke(main, ["predict", str(path), "Go home", "-k", "1"]).output
    assert "Matched: <s> Go home  (4-gram, context seen 1 time; <s> is the start of a sentence)" in out
    assert "Not listed: end of sentence (</s>) " in out and ", an unknown word (<unk>) " in out
    assert "Why: “Go home now, he said.”" in out


def test_probabilities_are_the_smoothings_own_for_every_method(ranking):
    for name in ("kn", "addk", "mle"):
        p = ranking.predict("a", k=3, smoothing=name)
        method = ranking.smoothing(name)
        assert [c.probability for c in p.candidates] == pytest.approx(method.probs([BOS, "a"], tokens(p)), rel=1e-12)
    assert tokens(ranking.predict("a", k=3, smoothing="mle")) == ["z", "x"]  # MLE: nothing else has p > 0
