"""`bench cloze`: the harness's lambada_openai definitions on hand-made passages, and bad input."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench import cloze as cz
from bench import models
from bench.cli import main
from corpora import UserError
from ngram import NgramModel, save_model

FIXTURE = Path(__file__).parent / "fixtures" / "gpt2-vocab"  # random weights, GPT-2's vocabulary, 128 positions
BOOK = """It was the best of times, it was the worst of times. The cat sat on the mat.
The dog sat on the rug, and the cat looked at the dog. It was a dark and stormy night.

"I want to go home," said the cat. "I want to know why," said the dog.
"""
# The fixture's greedy next token after this context is " ascend" (found once by hand; checked below).
KNOWN_CONTEXT = "It was a dark and stormy night, and the"
KNOWN_WORD = "ascend"


@pytest.fixture(scope="module")
def gpt() -> models.TransformerChoice:
    return models.transformer_model(str(FIXTURE))


@pytest.fixture(scope="module")
def ngram(tmp_path_factory) -> NgramModel:
    folder = tmp_path_factory.mktemp("books")
    (folder / "one.txt").write_text((BOOK + "\n") * 4, encoding="utf-8")
    return NgramModel.build(folder, order=3, min_count=1, heldout_fraction=0.2, progress=False)


# ------------------------------------------------------------------ passages


def test_the_passage_is_cut_before_its_last_word_as_the_harness_cuts_it():
    p = cz.split_passage("He saw the cat. The cat")
    assert (p.context, p.target, p.word) == ("He saw the cat. The", " cat", "cat")
    assert cz.split_passage("  a\nb  ").target == " b"  # white space around the passage is dropped


@pytest.mark.parametrize("text, message", [("", "empty"), ("   ", "empty"), ("word", "only one word")])
def test_an_empty_or_one_word_passage_is_refused(text, message):
    with pytest.raises(UserError, match=message):
        cz.split_passage(text, 3)


@pytest.mark.parametrize("lines, message", [
    (['{"text": "a b c"}', '{"txt": "a b"}'], 'line 2: no "text" field'),
    (['{"text": "a b c"}', "", '{"text": "a b",'], "line 3: not valid JSON"),
    (['{"text": "a b c"}', '{"text": ""}'], "line 2: the passage is empty"),
    (['{"text": "alone"}'], "line 1: the passage has only one word"),
    (['{"text": 7}'], 'line 1: "text" must be a string'),
    (["", "  "], "is empty"),
])
def test_bad_jsonl_lines_are_refused_with_their_line_number(tmp_path, lines, message):
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=message):
        cz.read_jsonl(path)


def test_blank_lines_are_skipped_and_line_numbers_kept(tmp_path):
    path = tmp_path / "set.jsonl"
    path.write_text('{"text": "a b c"}\n\n{"text": "d e"}\n', encoding="utf-8")
    assert [(p.line, p.word) for p in cz.read_jsonl(path)] == [(1, "c"), (3, "e")]


# -------------------------------------------------------------- the transformer


def test_a_passage_whose_last_word_is_the_models_greedy_answer_is_right(gpt):
    ids = gpt.tokenizer.encode(KNOWN_CONTEXT)
    logits, _ = gpt.model.forward(np.asarray(ids))
    assert gpt.tokenizer.decode([int(logits.argmax())]) == " " + KNOWN_WORD  # the fixture's answer
    right = cz.split_passage(f"{KNOWN_CONTEXT} {KNOWN_WORD}")
    wrong = cz.split_passage(f"{KNOWN_CONTEXT} cat")
    result = cz.transformer_cloze(gpt, [right, wrong])
    assert result.correct == 1 and result.accuracy == 0.5
    # perplexity = exp(-mean target log-likelihood), the target's log p read off one full pass
    expected = []
    for p in (right, wrong):
        whole = gpt.tokenizer.encode(p.context + p.target)
        n = len(whole) - len(ids)
        all_logits, _ = gpt.model.forward(np.asarray(whole[:-1]), all_positions=True)
        logp = all_logits - np.log(np.exp(all_logits - all_logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
            - all_logits.max(-1, keepdims=True)
        expected.append(sum(logp[t - 1, whole[t]] for t in range(len(whole) - n, len(whole))))
    assert result.score.per_word == pytest.approx(math.exp(-np.mean(expected)), rel=1e-5)
    assert result.score.units.words == 2


def test_batched_passes_equal_one_pass_per_passage_and_long_passages_are_left_truncated(gpt):
    filler = " ".join(["the cat sat on the mat and"] * 30)  # far more than the fixture's 128 positions
    passages = [cz.split_passage(t) for t in [
        f"{KNOWN_CONTEXT} {KNOWN_WORD}", "The dog sat on the rug", f"{filler} the dog", "I want to know why, said the dog.",
        "It was the best of times, it was the worst of times",
    ]]
    encoded = [cz.encode_passage(gpt.tokenizer, p, gpt.model.config.n_ctx) for p in passages]
    assert [e.truncated for e in encoded] == [False, False, True, False, False]
    assert len(encoded[2].ids) == gpt.model.config.n_ctx + 1
    correct, loglik, first = cz.score_batched(gpt.model, encoded)
    one_by_one = [cz.score_one(gpt.model, e) for e in encoded]
    assert correct.tolist() == [c for c, _, _ in one_by_one]
    np.testing.assert_allclose(loglik, [ll for _, ll, _ in one_by_one], rtol=1e-5)
    assert first.tolist() == [g for _, _, g in one_by_one]
    result = cz.transformer_cloze(gpt, passages)
    assert result.counts["truncated"] == 1 and "1 passage longer than its 128-token window" in result.notes[0]


def test_the_target_tokens_are_the_whole_passages_cut_where_the_contexts_end(gpt):
    p = cz.split_passage("The cat sat on the mat.")
    e = cz.encode_passage(gpt.tokenizer, p, gpt.model.config.n_ctx)
    assert gpt.tokenizer.decode(e.ids[-e.n_target:].tolist()) == " mat."
    assert gpt.tokenizer.decode(e.ids.tolist()) == "The cat sat on the mat."


# ------------------------------------------------------------------ the n-gram


def test_the_ngram_is_right_when_the_target_is_its_top_1_next_word(ngram):
    method = ngram.smoothing("kn")
    best, _ = method.top_k(["<s>", "The", "cat", "sat", "on", "the"], 1, exclude=("</s>", "<unk>"))
    right = cz.split_passage(f"A passage. The cat sat on the {best[0]}")
    wrong = cz.split_passage("A passage. The cat sat on the dog" if best[0] != "dog" else "A passage. The cat sat on the cat")
    result = cz.ngram_cloze(ngram, [right, wrong])
    assert result.correct == 1
    target = cz.ngram_target(ngram, right)
    assert target.context == ("<s>", "The", "cat", "sat", "on", "the") and target.tokens == (best[0],)


def test_the_fast_ngram_paths_equal_their_references(ngram):
    method = ngram.smoothing("kn")
    texts = ["A b. The cat sat on the mat", "It was the best of times, it was the worst of times",
             "The dog looked at the cat.", "It was a dark and stormy zebra", "Said the dog. Why"]
    targets = [cz.ngram_target(ngram, cz.split_passage(t)) for t in texts]
    assert [cz.ngram_greedy(method, ngram, t) for t in targets] == \
           [cz.ngram_greedy_reference(method, ngram, t) for t in targets]
    np.testing.assert_allclose(cz.ngram_logliks(method, ngram, targets),
                               cz.ngram_logliks_reference(method, ngram, targets), rtol=1e-12)


def test_targets_never_seen_after_their_context_are_counted(ngram):
    seen = cz.split_passage("Yes. The cat sat on the mat")  # "on the mat" is in the book
    new = cz.split_passage("Yes. The cat sat on the dog")  # "on the dog" is not, though "dog" is known
    unknown = cz.split_passage("Yes. The cat sat on the zebra")  # never seen at all
    result = cz.ngram_cloze(ngram, [seen, new, unknown])
    assert result.counts == {"never_seen_after_context": 2, "unknown_targets": 1}
    assert math.isfinite(result.score.per_word)  # the unknown word costs its spelling, not infinity


def test_punctuation_targets_are_skipped_and_counted(ngram, gpt):
    passages = [cz.split_passage(t) for t in ["The cat sat on the mat", 'said the dog . "']]
    report = cz.cloze(ngram, gpt, passages, "hand-made")
    assert report.skipped_punctuation == 1 and report.passages_read == 2
    assert all(m.passages == 1 for m in report.models)
    with pytest.raises(UserError, match="every target is a punctuation mark"):
        cz.cloze(ngram, gpt, passages[1:], "hand-made")


# ------------------------------------------------- the cloze set from the books


def test_the_cloze_rule_keeps_a_last_word_seen_earlier_but_not_among_the_last_five():
    opening = "The lamp was lit in the hall. Nobody came to the door that evening at all."
    kept = opening + " We waited and waited for hours. Then we heard a knock. It was only the wind at the lamp."
    too_close = opening + " We waited and waited for hours. Then we heard a knock. It was the lamp by the lamp."
    never = opening + " We waited and waited for hours. Then we heard a knock. It was only the wind at the gate."
    assert cz.document_passages(kept) == [kept.rstrip(".")]
    assert cz.document_passages(too_close) == []
    assert cz.document_passages(never) == []


def test_the_cloze_rule_keeps_the_books_line_breaks_but_wants_a_space_before_the_last_word():
    opening = "The lamp was lit in the hall.\nNobody came to the door that evening at all."
    middle = " We waited and waited for hours. Then we heard a knock.\n\nIt was only the wind"
    kept = opening + middle + " at the lamp."
    after_a_line_break = opening + middle + " at the\nlamp."
    assert cz.document_passages(kept) == [kept.rstrip(".")]  # the line breaks are still there
    assert cz.document_passages(after_a_line_break) == []
    passage = cz.split_passage(cz.document_passages(kept)[0])
    assert passage.context + passage.target == kept.rstrip(".")


def test_the_cloze_set_is_an_evenly_spaced_selection_and_written_as_jsonl(tmp_path):
    doc = " ".join(f"Sentence {i} names the lamp and more words here to make it long enough today." for i in range(60))
    found = cz.document_passages(doc)
    chosen = cz.build_cloze_set([doc], limit=3)
    assert len(found) > 3
    assert chosen == [found[0], found[round((len(found) - 1) / 2)], found[-1]]
    path = cz.write_jsonl(chosen, tmp_path / "set.jsonl")
    assert [p.context + p.target for p in cz.read_jsonl(path)] == chosen
    with pytest.raises(UserError, match="no passage that meets the cloze rule"):
        cz.build_cloze_set(["Too short. Far too short."])


# ---------------------------------------------------------------------- the CLI


@pytest.fixture(scope="module")
def ngram_file(ngram, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.ngram"
    save_model(ngram, path)
    return path


def test_cli_scores_a_jsonl_file_and_prints_published_rows_labelled(ngram_file, tmp_path):
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(json.dumps({"text": t}) for t in
                              [f"{KNOWN_CONTEXT} {KNOWN_WORD}", "The cat sat on the mat", "The dog sat on the rug"]) + "\n")
    args = [str(path), "--ngram", str(ngram_file), "--transformer", str(FIXTURE), "--no-progress"]
    result = CliRunner().invoke(main, ["cloze", *args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    transformer = next(m for m in data["models"] if m["model"] == "transformer")
    assert transformer["passages"] == 3 and transformer["correct"] >= 1
    assert all(p["published_not_measured"] for p in data["published"])
    text = CliRunner().invoke(main, ["cloze", *args]).output
    assert "published, not measured" in text and "45.99%" in text and "32.56%" in text and "0.10%" in text


def test_cli_refuses_bad_input_in_one_line(ngram_file, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "a b"}\n{"passage": "c d"}\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["cloze", str(path), "--ngram", str(ngram_file), "--transformer", str(FIXTURE)])
    assert result.exit_code != 0
    assert result.output.strip().splitlines()[-1].startswith("Error:") and 'line 2: no "text" field' in result.output
    offline = CliRunner().invoke(main, ["cloze", "--dataset", "EleutherAI/lambada_openai", "--ngram", str(ngram_file)])
    assert offline.exit_code != 0 and "Error: could not read dataset EleutherAI/lambada_openai" in offline.output


def test_cli_builds_the_set_from_the_held_out_books_and_says_where(ngram_file, tmp_path, monkeypatch):
    saved = tmp_path / "out" / "cloze.jsonl"
    monkeypatch.setattr(cz, "build_cloze_set", lambda docs, limit: ["The cat sat on the mat and the cat"])
    result = CliRunner().invoke(main, [
        "cloze", "--save-set", str(saved), "--ngram", str(ngram_file), "--transformer", str(FIXTURE), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert str(saved) in result.stderr and saved.read_text() == '{"text": "The cat sat on the mat and the cat"}\n'
    assert "Built from the held-out books" in result.stdout


def test_first_guesses_that_are_only_white_space_are_counted():
    class Bytes:  # a tokenizer whose tokens are given by hand
        pieces = [b"\n", b" it", b"  ", b","]

        def token_bytes(self, i):
            return self.pieces[i]

    assert cz.white_space_guesses(Bytes(), np.array([0, 1, 2, 3, 0])) == 3


def test_a_dataset_is_read_row_by_row_and_a_missing_column_named(monkeypatch):
    import sys
    import types

    fake = types.ModuleType("datasets")
    fake.load_dataset = lambda name, split: [{"text": "The cat sat on the mat"}, {"text": "It was the dog"}]
    monkeypatch.setitem(sys.modules, "datasets", fake)
    assert [(p.line, p.word) for p in cz.read_dataset("EleutherAI/lambada_openai")] == [(1, "mat"), (2, "dog")]
    with pytest.raises(UserError, match="has no column 'passage'"):
        cz.read_dataset("EleutherAI/lambada_openai", column="passage")
