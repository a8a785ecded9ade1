"""`bench context`: the word cut, its windows, and the points equal to `bench perplexity`'s rows."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench import context as ctx
from bench import models
from bench import perplexity as ppl
from bench.cli import main
from bench.wordspans import bpe_token_words, ngram_token_words, word_spans
from corpora.tokenizers import get_tokenizer
from ngram import NgramModel, save_model
from transformer.score import target_logprobs, text_ids

FIXTURE = Path(__file__).parent / "fixtures" / "gpt2-vocab"
BOOK = """It was the best of times, it was the worst of times. The cat sat on the mat.
The dog sat on the rug, and the cat looked at the dog. It was a dark and stormy night.

"I want to go home," said the cat. "I want to know why," said the dog.
"""
TEXT = "The cat sat on the mat.\n\nIt was a dark and stormy night, and the dog looked at the cat."


@pytest.fixture(scope="module")
def gpt() -> models.TransformerChoice:
    return models.transformer_model(str(FIXTURE))


@pytest.fixture(scope="module")
def ngram(tmp_path_factory) -> NgramModel:
    folder = tmp_path_factory.mktemp("books")
    (folder / "one.txt").write_text((BOOK + "\n") * 4 + TEXT + "\n", encoding="utf-8")
    return NgramModel.build(folder, order=3, min_count=1, heldout_fraction=0.2, progress=False)


def test_bpe_tokens_belong_to_the_word_of_their_first_non_space_byte(gpt):
    text = "It was  night.\n\nThe café"
    ids = gpt.tokenizer.encode(text)
    owners = bpe_token_words(gpt.tokenizer, ids, text)
    spans = word_spans(text)
    for token, owner in zip(ids, owners):
        piece = gpt.tokenizer.token_bytes(token).decode("utf-8", "replace").strip()
        if piece and "\ufffd" not in piece:
            start, end = spans[owner]
            assert piece in text[start:end], (piece, text[start:end])
    assert owners[0] == 0 and owners[-1] == 4
    assert list(owners) == sorted(owners)
    assert set(owners.tolist()) == set(range(5))  # every word has a token


def test_white_space_tokens_go_to_the_next_word_and_trailing_to_the_last():
    class Bytes:  # a tokenizer whose tokens are given by hand
        pieces = [b"a", b"\n\n", b" b", b"c", b"\n"]

        def token_bytes(self, i):
            return self.pieces[i]

    owners = bpe_token_words(Bytes(), range(5), "a\n\n bc\n")
    assert owners.tolist() == [0, 1, 1, 1, 1]


def test_ngram_tokens_are_pieces_of_whitespace_words():
    tokenizer = get_tokenizer("words")
    text = 'He said, "_No_ way." Then   he left--quietly.'
    owners = ngram_token_words(tokenizer, text)
    tokens = [t for s in tokenizer.sentences(text) for t in s]
    words = text.split()
    flat = [w for s in owners for w in s]
    assert [words[w] for w in flat][:4] == ["He", "said,", "said,", '"_No_']
    assert all(t in words[w] for t, w in zip(tokens, flat))
    assert flat == sorted(flat)


def test_a_word_cut_window_sees_the_previous_c_words_and_its_own_earlier_pieces():
    # targets 1..6 (token 0 is <|endoftext|>); words: 0 0 1 2 2 3
    target_words = np.array([0, 0, 1, 2, 2, 3])
    windows = ctx.word_windows(target_words, 1, n_ctx=100)
    assert windows == [ctx.Window(0, 1, 2), ctx.Window(0, 3, 3), ctx.Window(3, 4, 5), ctx.Window(4, 6, 6)]
    two = ctx.word_windows(target_words, 2, n_ctx=100)
    assert two[-1] == ctx.Window(3, 6, 6)  # word 3 sees words 1 and 2: tokens 3..5
    assert two[2] == ctx.Window(0, 4, 5)  # word 2 - 2 = word 0: reaches the start, <|endoftext|> included


def test_words_sharing_a_window_see_between_c_and_c_plus_group_minus_one_words():
    target_words = np.repeat(np.arange(40), 2)  # two tokens a word
    owner = {t: int(target_words[t - 1]) for t in range(1, 81)}
    for words, group in ((16, 2), (8, 1), (5, 3)):
        windows = ctx.word_windows(target_words, words, n_ctx=1000, group=group)
        covered = [t for w in windows for t in range(w.first, w.last + 1)]
        assert covered == list(range(1, 81))  # every target once, in order
        for w in windows:
            for t in range(w.first, w.last + 1):
                seen = owner[t] - (owner[w.start] if w.start else 0)  # whole words before the target's own
                assert words <= seen <= words + group - 1 or w.start == 0, (words, group, t)
    assert ctx.group_for(8) == 1 and ctx.group_for(128) == 16 and ctx.group_for(128, exact=True) == 1


def test_a_window_longer_than_the_model_is_split_so_each_target_sees_at_most_n_ctx():
    pieces = ctx.split_to_fit(0, 1, 10, n_ctx=4)
    assert [p.length for p in pieces] == [p.last - p.start for p in pieces]
    assert all(p.length <= 4 for p in pieces)
    assert [t for p in pieces for t in range(p.first, p.last + 1)] == list(range(1, 11))
    assert pieces[-1] == ctx.Window(6, 7, 10)


def test_word_cut_logprobs_equal_one_pass_per_target(gpt):
    ids = np.asarray(text_ids(gpt.tokenizer, TEXT))
    owners = bpe_token_words(gpt.tokenizer, ids[1:], TEXT)
    got = ctx.word_context_logprobs(gpt, TEXT, 2)
    assert len(got) == len(ids) - 1 and not np.isnan(got).any()  # every target scored once
    for t in range(1, len(ids)):
        word = owners[t - 1]
        start = 0 if word - 2 <= 0 else 1 + int(np.flatnonzero(owners == word - 2)[0])
        start = max(start, t - gpt.model.config.n_ctx)
        h, _ = gpt.model.hidden(ids[start:t])
        assert got[t - 1] == pytest.approx(target_logprobs(gpt.model, h[-1:], ids[t:t + 1])[0], abs=1e-5), t


def test_the_all_point_and_the_ngram_points_are_the_perplexity_rows(ngram, gpt):
    text = ppl.heldout_text(ngram)
    report = ctx.context_sweep(ngram, gpt, text, contexts=(1, 2, 64))
    rows = ppl.compare_perplexity(ngram, gpt, text, smoothings=["kn"], ablation="none").rows
    full = [r for r in rows if r.model == "transformer"][0]
    all_point = [p for p in report.curve("transformer") if p.words is None][0]
    assert all_point.row.score == full.score
    for point in report.curve("n-gram"):
        same = [r for r in rows if r.model == "n-gram" and r.order == point.row.order][0]
        assert point.words == point.row.order - 1
        assert point.row.score == same.score
    assert [p.words for p in report.curve("n-gram")] == [1, 2]
    assert {p.row.score.units for p in report.points} == {text.units}
    assert {p.row.score.tokens for p in report.curve("transformer")} == {full.score.tokens}


def test_cli_context_json_and_bad_input(ngram, gpt, tmp_path):
    path = save_model(ngram, tmp_path / "m.json.gz")
    text = tmp_path / "t.txt"
    text.write_text(TEXT, encoding="utf-8")
    run = CliRunner().invoke(main, ["context", "--ngram", str(path), "--transformer", str(FIXTURE), "--text", str(text),
                                    "--json", "--no-progress", "--plot", str(tmp_path / "c.png")])
    assert run.exit_code == 0, run.output
    data = json.loads(run.stdout)
    assert [p["context_words"] for p in data["points"] if p["model"] == "transformer"][-1] is None
    assert (tmp_path / "c.png").stat().st_size > 0
    bad = CliRunner().invoke(main, ["context", "--ngram", str(tmp_path / "none.gz"), "--text", str(text)])
    assert bad.exit_code != 0 and "Error: --ngram" in bad.output
