"""The comparison harness on small models: unit accounting, word expansion, output, bad input."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench import compare as comparing
from bench import models
from bench import perplexity as ppl
from bench.cli import main
from bench.perplexity import ScoreRow
from bench.words import first_word, next_word_distribution, softmax_vector
from corpora.tokenizers import BOS, EOS, UNK
from corpora.units import Score, TextUnits
from ngram import NgramModel, save_model

FIXTURE = Path(__file__).parent / "fixtures" / "gpt2-vocab"

BOOK = """Chapter one.

It was the best of times, it was the worst of times. The cat sat on the mat.
The dog sat on the rug, and the cat looked at the dog. It was a dark and stormy night.

"I want to go home," said the cat. "I want to know why," said the dog.
The old man looked at the sea. The sea was dark and the night was long.
"""
OTHER = """The garden was green and the sky was blue. She opened the door and looked out.
He said that he would come back in the morning. In the morning, the garden was wet.
It was the best of gardens, and the cat sat in it every day.
"""
HELDOUT_PROBE = "Zebras quietly sat on the mat. The cat was dark."


@pytest.fixture(scope="module")
def books(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("books")
    (folder / "one.txt").write_text((BOOK + "\n") * 3 + HELDOUT_PROBE + "\n", encoding="utf-8")
    (folder / "two.txt").write_text((OTHER + "\n") * 3 + HELDOUT_PROBE + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def ngram_file(books, tmp_path_factory) -> Path:
    model = NgramModel.build(books, order=3, min_count=2, heldout_fraction=0.1, progress=False)
    return save_model(model, tmp_path_factory.mktemp("models") / "tiny.json.gz")


@pytest.fixture(scope="module")
def ngram(ngram_file) -> NgramModel:
    return models.ngram_model(ngram_file)


@pytest.fixture(scope="module")
def gpt() -> models.TransformerChoice:
    return models.transformer_model(str(FIXTURE))


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


# -------------------------------------------------------------- unit accounting


def test_units_hand_checked():
    text = "ab cd\nef"  # 3 words, 8 bytes
    units = TextUnits.of(text)
    assert (units.words, units.bytes) == (3, 8)
    row = ScoreRow("n-gram", "x", Score(tokens=6, nll=3 * math.log(2), units=units, token_kind="word"), order=2).to_dict()
    assert row["per_word"] == pytest.approx(2.0)  # 3 bits over 3 words: 1 bit a word
    assert row["bits_per_byte"] == pytest.approx(3 / 8)
    assert row["per_token"] == pytest.approx(math.sqrt(2))
    assert (row["model"], row["label"], row["order"], row["tokens"], row["units"]) == ("n-gram", "x", 2, 6, {"words": 3, "bytes": 8, "chars": 8})
    utf8 = TextUnits.of("café au lait")  # é is two bytes
    assert (utf8.words, utf8.bytes, utf8.chars) == (3, 13, 12)


def test_zero_probability_rows_are_infinite_not_wrong():
    row = ScoreRow("n-gram", "MLE", Score(tokens=10, nll=5.0, units=TextUnits(4, 20, 20), token_kind="word", zero_prob=2))
    assert math.isinf(row.score.per_word) and math.isinf(row.score.bits_per_byte)
    assert row.to_dict()["per_word"] is None  # JSON has no infinity
    assert row.to_dict()["per_token_nonzero"] == pytest.approx(math.exp(5.0 / 8))  # over the 8 tokens with p > 0


def test_both_models_are_divided_by_the_same_words_and_bytes(ngram, gpt):
    from transformer import perplexity as transformer_perplexity
    from transformer.score import text_ids, token_logprobs

    text = ppl.heldout_text(ngram)
    report = ppl.compare_perplexity(ngram, gpt, text, orders=[1, 2, 3], ablation="all")
    units = TextUnits.of(text.text)
    assert report.units == units
    assert {r.score.units for r in report.rows} == {units}
    for row in report.rows:
        if row.score.finite:
            assert row.score.per_word == pytest.approx(math.exp(row.score.nll / units.words))
            assert row.score.bits_per_byte == pytest.approx(row.score.nll / math.log(2) / units.bytes)
    # The n-gram rows are the model's own scores plus the spelling of its unknown words.
    spelling = ppl.SpellingModel.for_model(ngram)
    unknown = ppl.oov_words(ngram, text.text)
    assert unknown == {"Zebras": 2, "quietly": 2}  # the held-out probe, twice (once from each book)
    extra = 2 * spelling.nll("Zebras") + 2 * spelling.nll("quietly")
    kn3 = next(r for r in report.rows if r.model == "n-gram" and r.order == 3 and r.smoothing == "kn")
    assert kn3.score.nll == pytest.approx(ngram.score(text.text, "kn", 3).nll + extra)
    assert kn3.score.oov == sum(unknown.values()) > 0  # "Zebras" and "quietly" are unknown
    # The transformer's full-context row is exactly its own perplexity figure.
    full = next(r for r in report.rows if r.model == "transformer" and r.context is None)
    own = transformer_perplexity(gpt.model, gpt.tokenizer, text.text)
    assert full.score.nll == pytest.approx(own.nll) and full.score.tokens == own.tokens
    # The ablation rows: one per cut context 1..n-1, each a finite, different figure.
    cut = [r for r in report.rows if r.context is not None]
    assert [r.context for r in cut] == [1, 2]
    assert all(r.score.tokens == full.score.tokens and r.score.nll != full.score.nll for r in cut)
    ids = text_ids(gpt.tokenizer, text.text)
    for row in cut:  # a cut context of c tokens is a sliding window of c + 1 moved one token at a time
        assert row.score.nll == pytest.approx(-token_logprobs(gpt.model, ids, row.context + 1, 1).sum(), rel=1e-6)
    assert any(r.score.zero_prob for r in report.rows if r.smoothing == "mle")


def test_open_vocabulary_charges_unknown_words_for_their_spelling(ngram, gpt):
    text = ppl.EvalText("Zebras sat on the mat.", "probe")
    closed = ppl.ngram_rows(ngram, text.text, [3], ["kn"])[0]
    spelling = ppl.SpellingModel.for_model(ngram)
    opened = ppl.ngram_rows(ngram, text.text, [3], ["kn"], spelling)[0]
    assert opened.score.oov == closed.score.oov == 1
    assert opened.score.nll == pytest.approx(closed.score.nll + spelling.nll("Zebras"))
    assert spelling.nll("Zebras") > spelling.nll("cats") > 0  # an odd spelling costs more
    probs = [math.exp(-spelling.nll(w)) for w in ("a", "b", "the", "cat")]
    assert sum(probs) < 1
    by_hand = -math.log(spelling.method.prob([BOS], "a")) - math.log(spelling.method.prob([BOS, "a"], EOS))
    assert spelling.nll("a") == pytest.approx(by_hand)  # p(a | <s>) p(</s> | <s> a)


# ----------------------------------------------------------- word expansion


@pytest.fixture(scope="module")
def small_vocab_model(tmp_path_factory):
    """A random 1-layer GPT-2 over a 300-token BPE learned from the test book."""
    from transformer import load_model
    from corpora.tokenizers.bpe_learn import learn_bpe
    from transformer.config import GPT2Config
    from transformer.train import export_model, init_params

    folder = tmp_path_factory.mktemp("small-vocab")
    tokenizer = learn_bpe([BOOK * 5, OTHER * 5], 300, progress=False)
    tokenizer.save(folder)
    config = GPT2Config(n_layer=1, n_head=2, n_embd=16, n_ctx=32, vocab_size=tokenizer.vocab_size)
    params = init_params(config, seed=3)
    params = {k: (v * 40 if k == "wte.weight" else v) for k, v in params.items()}  # peakier: words settle sooner
    export_model(folder, params, config, tokenizer.eot_id)
    return load_model(folder)


def exhaustive_words(model, tokenizer, prompt, depth: int) -> dict[str, float]:
    """P(first word = w, settled within `depth` tokens) by trying every token sequence,
    each scored with a fresh forward pass over the whole text (no cache)."""
    words: dict[str, float] = {}

    def visit(ids: list[int], mass: float) -> None:
        logits, _ = model.forward(np.array(prompt + ids))
        probs = softmax_vector(logits)
        for token in range(len(probs)):
            word, final = first_word(tokenizer.decode(ids + [token]))
            p = mass * probs[token]
            if final:
                words[word] = words.get(word, 0.0) + p
            elif len(ids) + 1 < depth:
                visit(ids + [token], p)

    visit([], 1.0)
    return words


def test_word_expansion_matches_exhaustive_enumeration(small_vocab_model):
    model, tokenizer = small_vocab_model
    prompt = tokenizer.encode("It was the best")
    vocab = model.config.vocab_size
    expected = exhaustive_words(model, tokenizer, prompt, depth=2)
    got = next_word_distribution(model, tokenizer, prompt, budget=10**6, per_step=vocab, min_mass=0.0, max_depth=2)
    assert set(got.words) == set(expected)
    for word, p in expected.items():
        assert got.words[word] == pytest.approx(p, rel=1e-4, abs=1e-10)  # float32 sums in another order
    assert got.covered == pytest.approx(sum(expected.values()))
    assert 0.05 < got.covered < 1.0  # some words settle in two tokens, some need more


def test_a_limited_expansion_is_a_lower_bound_of_the_full_one(small_vocab_model):
    model, tokenizer = small_vocab_model
    prompt = tokenizer.encode("The cat")
    vocab = model.config.vocab_size
    full = next_word_distribution(model, tokenizer, prompt, budget=10**6, per_step=vocab, min_mass=0.0, max_depth=2)
    cheap = next_word_distribution(model, tokenizer, prompt, budget=5, per_step=vocab, min_mass=0.0, max_depth=2)
    assert cheap.expansions == 5 < full.expansions
    assert set(cheap.words) <= set(full.words)
    assert all(p <= full.words[w] * (1 + 1e-4) + 1e-12 for w, p in cheap.words.items())  # a part of the same tree
    assert cheap.covered < full.covered <= 1 + 1e-9


# ------------------------------------------------------------------- compare


def test_compare_lists_words_of_both_models(ngram, gpt):
    result = comparing.compare("It was the best of", ngram, gpt, k=5)
    assert [(w.word, w.count) for w in result.ngram.words[:2]] == [("times", 3), ("gardens", 3)]
    assert result.ngram.matched_order == 3 and result.ngram.context_count == 6
    assert result.ngram.matched_context == ["best", "of"]
    assert "best of times" in result.ngram.example
    kn = ngram.smoothing("kn")
    for w in result.ngram.words:  # the column's probabilities are the smoothed model's own
        assert w.probability == pytest.approx(kn.prob(["best", "of"], w.word))
    probs = [w.probability for w in result.ngram.words]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1
    assert len(result.transformer.words) == 5
    assert all(first_word(" " + w.word + " ") == (w.word, True) for w in result.transformer.words)
    assert 0 < result.transformer.covered <= 1
    assert result.ngram.seconds > 0 and result.transformer.seconds > 0
    text = comparing.render_text(result)
    assert "n-gram next word" in text and "transformer next word" in text and "times" in text


def test_ngram_column_is_predicts_list_with_s_shown_and_no_model_tokens(ngram):
    column = comparing.ngram_next_words(ngram, "The", k=5)
    assert column.matched_context == [BOS, "The"] and column.matched_order == 3  # <s> counts in the order
    prediction = ngram.predict("The", k=5)
    assert [(w.word, w.probability) for w in column.words] == [(c.token, c.probability) for c in prediction.candidates]
    assert not {BOS, EOS, UNK} & {w.word for w in column.words}
    assert column.end_of_sentence == pytest.approx(ngram.smoothing("kn").prob([BOS, "The"], EOS))
    assert column.unknown_word == pytest.approx(ngram.smoothing("kn").prob([BOS, "The"], UNK))


def test_ngram_column_gives_no_unrelated_why_when_nothing_was_matched(tmp_path):
    (tmp_path / "t.txt").write_text("a x. b y. c y. d y. e y.", encoding="utf-8")
    model = NgramModel.build(tmp_path, order=2, min_count=1, heldout_fraction=0.0, progress=False)
    column = comparing.ngram_next_words(model, "Zebras", k=1)  # unknown: unigrams, and "y" is the top one
    assert column.words[0].word == "y" and column.matched_context == [] and column.matched_order == 1
    assert column.example is None and "unigrams" in column.no_example  # the old "why" was “b y.”, unrelated


def test_compare_cli_prints_both_columns_json_and_markdown(ngram_file):
    out = invoke("compare", "The cat sat on the", "--ngram", ngram_file, "--transformer", FIXTURE, "-k", "3")
    assert out.exit_code == 0, out.output
    assert "n-gram next word" in out.output and "Greedy continuation" in out.output and "mat" in out.output
    js = invoke("compare", "The cat sat on the", "--ngram", ngram_file, "--transformer", FIXTURE, "-k", "3", "--json")
    data = json.loads(js.stdout)
    first, second = data["ngram"]["words"][:2]  # "on the mat" and "on the rug" are equally common: a tie
    assert {first["word"], second["word"]} == {"mat", "rug"} and first["probability"] == second["probability"]
    assert len(data["transformer"]["words"]) == 3
    md = invoke("compare", "The cat sat on the", "--ngram", ngram_file, "--transformer", FIXTURE, "--markdown")
    assert md.output.startswith("**Prompt:**") and "|---:|" in md.output


def test_compare_prompts_file_gives_a_table(ngram_file, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("The cat sat on the\n\nIt was a dark and\n", encoding="utf-8")
    out = invoke("compare", "--prompts", prompts, "--ngram", ngram_file, "--transformer", FIXTURE, "--markdown")
    assert out.exit_code == 0, out.output
    lines = out.output.strip().splitlines()
    assert lines[0].startswith("| prompt |") and len(lines) == 4
    js = invoke("compare", "--prompts", prompts, "--ngram", ngram_file, "--transformer", FIXTURE, "--json")
    assert [r["prompt"] for r in json.loads(js.stdout)] == ["The cat sat on the", "It was a dark and"]


def test_unknown_words_and_long_prompts_are_explained(ngram, gpt):
    unknown = comparing.compare("Xylophones zeppelins", ngram, gpt, k=3)
    assert unknown.ngram.matched_order == 1
    assert any("unknown" in note for note in unknown.ngram.notes)
    assert unknown.ngram.example is None and "unigrams" in unknown.ngram.no_example  # no unrelated "why"
    long = comparing.compare("the cat sat " * 60, ngram, gpt, k=3)  # 180 words > 128-token window
    room = gpt.model.config.n_ctx - 24  # 20 tokens of continuation and 4 to spare
    assert long.transformer.notes == [f"the prompt has 180 tokens; the transformer reads only the last {room} (its window)"]
    assert long.transformer.prompt_tokens == room


@pytest.mark.parametrize(
    "args, message",
    [
        (["compare", "   "], "prompt is empty"),
        (["compare"], "give one PROMPT"),
        (["compare", "x", "--prompts", "p.txt"], "give one PROMPT"),
        (["compare", "x", "--ngram", "missing.json.gz"], "missing.json.gz"),
        (["compare", "x", "--transformer", "./no/such/folder"], "no such folder"),
    ],
)
def test_compare_bad_input_is_one_line(args, message, ngram_file):
    if "--ngram" not in args:
        args = [*args, "--ngram", str(ngram_file)]
    out = invoke(*args, "--transformer", FIXTURE) if "--transformer" not in args else invoke(*args)
    assert out.exit_code == 1
    assert message in out.output and out.output.count("\n") == 1 and "Traceback" not in out.output


def test_bundled_model_is_the_offline_default(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    choice = models.transformer_model(models.AUTO, quiet=True)
    assert choice.bundled and choice.model.config.vocab_size == choice.tokenizer.vocab_size


# ---------------------------------------------------------------- perplexity


def test_perplexity_cli_on_a_text_file(ngram_file, tmp_path):
    text = tmp_path / "eval.txt"
    text.write_text("The cat sat on the rug. The dog was dark and the night was long.\n" * 3, encoding="utf-8")
    out = invoke("perplexity", "--text", text, "--ngram", ngram_file, "--transformer", FIXTURE, "--json", "--no-progress")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["text"]["words"] == 45 and data["text"]["bytes"] == len(text.read_bytes().rstrip(b"\n"))
    labels = [r["label"] for r in data["rows"]]
    assert "3-gram, Kneser-Ney" in labels and "context cut to 2 tokens" in labels
    kn = {r["order"]: r for r in data["rows"] if r["smoothing"] == "kn"}
    assert kn[3]["per_word"] < kn[1]["per_word"]  # context helps on a text like the book
    model = models.ngram_model(ngram_file)
    for order, row in kn.items():  # every word is known, so no spelling costs are added
        assert row["oov"] == 0 and row["nll"] == pytest.approx(model.score(text.read_text(), "kn", order).nll)
    for row in data["rows"]:
        if row["zero_prob"] == 0:
            assert row["per_word"] == pytest.approx(math.exp(row["nll"] / 45))
            assert row["bits_per_byte"] == pytest.approx(row["nll"] / math.log(2) / data["text"]["bytes"])
            assert row["per_token"] == pytest.approx(math.exp(row["nll"] / row["tokens"]))
    table = invoke("perplexity", "--text", text, "--ngram", ngram_file, "--transformer", FIXTURE, "--no-progress")
    assert "bits/byte" in table.output and "same whitespace words and UTF-8 bytes" in table.output


def test_max_words_reads_only_what_it_needs():
    def lines():
        yield "one two three"
        yield "four five six"
        raise AssertionError("read past the limit")

    text, truncated = ppl.take_words(lines(), 5)
    assert text == "one two three\nfour five" and truncated


@pytest.mark.parametrize("content, message", [(b"", "is empty"), (b"\x00\x01binary", "looks binary"), (None, "not found")])
def test_perplexity_bad_text_files(content, message, ngram_file, tmp_path):
    path = tmp_path / "t.txt"
    if content is not None:
        path.write_bytes(content)
    out = invoke("perplexity", "--text", path, "--ngram", ngram_file, "--transformer", FIXTURE, "--no-progress")
    assert out.exit_code == 1 and message in out.output and "Traceback" not in out.output


def test_orders_option(ngram_file, tmp_path):
    out = invoke("perplexity", "--orders", "7", "--ngram", ngram_file, "--transformer", FIXTURE)
    assert out.exit_code == 1 and "orders 1..3" in out.output


# -------------------------------------------------------- aligned tokens, mixing


@pytest.fixture(scope="module")
def bpe_ngram(books) -> NgramModel:
    return NgramModel.build(books, order=3, tokens="gpt2", heldout_fraction=0.1, progress=False)


def test_mix_0_and_1_reproduce_each_models_own_figures(bpe_ngram, gpt):
    from bench import mixing
    from transformer import perplexity as transformer_perplexity

    text = "The cat sat on the mat. It was the best of times."  # every token seen in building
    rows, best = mixing.mix_rows(bpe_ngram, gpt, text, [0.0, 0.5, 1.0])
    by_mix = {r.mix: r for r in rows}
    tokens = next(bpe_ngram.tokenizer.sentences(text))
    assert by_mix[0.0].score.nll == pytest.approx(-bpe_ngram.token_logprobs(tokens).sum())
    own = transformer_perplexity(gpt.model, gpt.tokenizer, text)
    assert by_mix[1.0].score.nll == pytest.approx(own.nll) and by_mix[1.0].score.tokens == own.tokens == len(tokens)
    assert by_mix[best].score.nll <= min(by_mix[0.0].score.nll, by_mix[1.0].score.nll) + 1e-9
    assert 0.0 < by_mix[0.5].score.nll and {r.score.units for r in rows} == {TextUnits.of(text)}


def test_mix_half_is_the_average_of_both_models_probabilities(bpe_ngram, gpt):
    """λ = 0.5 against the formula, from each model's own probabilities token by token:
    -Σ log(0.5·p_transformer(t) + 0.5·p_ngram(t)) (a linear mixture, not a geometric one)."""
    from bench import mixing

    text = "The cat sat on the mat. It was the best of times."  # every token seen in building
    ids = gpt.tokenizer.encode(text)
    logits, _ = gpt.model.forward(np.array([gpt.tokenizer.eot_id, *ids]), all_positions=True)
    logits = logits.astype(np.float64)
    p_transformer = [math.exp(row[t] - row.max()) / np.exp(row - row.max()).sum() for row, t in zip(logits, ids)]
    kn = bpe_ngram.smoothing("kn")
    tokens = bpe_ngram.tokenizer.tokens_of_ids(ids)
    history = [BOS, *tokens]
    p_ngram = [kn.prob(history[max(0, i + 1 - (bpe_ngram.order - 1)):i + 1], t) for i, t in enumerate(tokens)]
    assert all(0 < p < 1 for p in p_transformer + p_ngram)
    expected = -sum(math.log(0.5 * a + 0.5 * b) for a, b in zip(p_transformer, p_ngram))
    rows, _ = mixing.mix_rows(bpe_ngram, gpt, text, [0.5])
    half = next(r for r in rows if r.mix == 0.5)
    assert half.score.nll == pytest.approx(expected, rel=1e-6)
    assert half.score.tokens == len(ids)


def test_unseen_bpe_tokens_share_the_unk_mass(bpe_ngram, gpt):
    from bench import mixing

    ids = gpt.tokenizer.encode(" Zebras quietly")
    lp = mixing.ngram_token_logprobs(bpe_ngram, ids, gpt.model.config.vocab_size)
    plain = bpe_ngram.token_logprobs(bpe_ngram.tokenizer.tokens_of_ids(ids))
    unseen = [t not in set(bpe_ngram.vocab) for t in bpe_ngram.tokenizer.tokens_of_ids(ids)]
    assert any(unseen)
    assert np.all(lp[unseen] < plain[unseen]) and np.all(lp[~np.array(unseen)] == plain[~np.array(unseen)])
    seen = len([t for t in bpe_ngram.vocab if t not in (BOS, EOS, UNK)])  # BPE tokens the n-gram has a count for
    never_seen = gpt.model.config.vocab_size - seen
    assert lp[unseen] == pytest.approx(plain[unseen] - math.log(never_seen))  # p(<unk>) split evenly among them


def test_mixing_refuses_an_ngram_over_other_tokens(ngram, gpt):
    from bench import mixing

    with pytest.raises(Exception, match="not the transformer's BPE tokenizer"):
        mixing.mix_rows(ngram, gpt, "The cat sat.", [0.5])


def test_perplexity_mix_cli_builds_the_aligned_ngram_once(ngram_file):
    args = ["perplexity", "--mix", "0.5", "--ablation", "none", "--orders", "3", "--ngram", ngram_file, "--transformer", FIXTURE, "--no-progress"]
    out = invoke(*args, "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    mixes = {r["mix"] for r in data["rows"] if r["mix"] is not None}
    assert {0.0, 0.5, 1.0} <= mixes and 0.0 <= data["best_mix"] <= 1.0
    mix_rows = [r for r in data["rows"] if r["mix"] is not None]
    best = next(r for r in mix_rows if r["mix"] == data["best_mix"])
    assert all(best["nll"] <= r["nll"] for r in mix_rows)
    aligned = next(r for r in data["rows"] if r["mix"] == 1.0)
    full = next(r for r in data["rows"] if r["model"] == "transformer" and r["mix"] is None)
    assert aligned["nll"] == pytest.approx(full["nll"])  # same text, same tokens, same model
    again = invoke(*args)
    assert "building" not in again.output and "λ = 0.50" in again.output


# ------------------------------------------------------------- speed and report


def test_speed_measures_every_order_side_by_side(ngram_file, books):
    out = invoke("speed", "--orders", "2,3", "--contexts", "20", "--ngram", ngram_file, "--transformer", FIXTURE,
                 "--no-progress", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert [r["order"] for r in data["ngram"]] == [2, 3]
    two, three = data["ngram"]
    assert three["nodes"] > two["nodes"] > 0  # a 3-gram trie holds the 2-gram one and more
    for row in (two, three):  # each build is the same build as NgramModel.build's, in a fresh process
        assert row["nodes"] == NgramModel.build(books, order=row["order"], progress=False).stats()["nodes"]
    assert all(r["build_peak_mb"] > 0 and r["latency_p95_ms"] >= r["latency_median_ms"] > 0 for r in data["ngram"])
    t = data["transformer"]
    assert t["generated_tokens"] > 0 and t["generate_tokens_per_second_kv_cache"] > 0
    assert (t["prompt_tokens"], t["generated_tokens"]) == (32, 64)  # 32 + 64 fit the fixture's 128-token window
    assert set(t["latency_median_ms"]) == set(data["latency_by_context"]["transformer"])
    assert all(v > 0 and math.isfinite(v) for v in data["ratios"].values())
    ratios = data["ratios"]  # each ratio is made of the figures reported beside it
    assert ratios["kv_cache_speedup"] == pytest.approx(
        t["generate_tokens_per_second_kv_cache"] / t["generate_tokens_per_second_no_cache"])
    assert ratios["transformer_vs_ngram_latency"] == pytest.approx(t["latency_median_ms"]["16"] / three["latency_median_ms"])
    assert ratios["ngram_vs_transformer_generation"] == pytest.approx(
        three["generate_tokens_per_second"] / t["generate_tokens_per_second_kv_cache"])
    assert ratios["transformer_vs_ngram_load"] == pytest.approx(t["load_seconds"] / three["load_seconds"])
    assert data["command"].startswith("bench speed") and data["machine"]["cpus"] >= 1


NO_EXPERIMENTS = [arg for name in ("learning", "context", "breakdown", "induction", "accuracy", "cloze") for arg in ("--skip", name)]


def test_report_is_readable_and_reproducible(ngram_file, tmp_path):
    from bench.report import without_timings

    runs = []
    for name in ("a", "b"):
        folder = tmp_path / name
        out = invoke("report", "-o", folder, "--ngram", ngram_file, "--transformer", FIXTURE, "--no-speed", "--no-progress",
                     *NO_EXPERIMENTS)  # the experiments' sections: tests/test_bench_report.py
        assert out.exit_code == 0, out.output
        files = sorted(p.name for p in folder.iterdir())
        assert files == ["next_word.png", "perplexity_vs_order.png", "report.json", "report.md"]
        assert all((folder / f).stat().st_size > 0 for f in files)
        runs.append(json.loads((folder / "report.json").read_text(encoding="utf-8")))
    assert runs[0].pop("command").replace("/a ", "/b ") == runs[1].pop("command")  # only the folder differs
    assert without_timings(runs[0]) == without_timings(runs[1])
    assert runs[0]["files"] == files
    mixes = {r["mix"] for r in runs[0]["perplexity"]["rows"]} - {None}
    assert {0.0, 0.25, 0.5, 0.75, 1.0} <= mixes  # the report's grid of mixture weights
    heldout = models.ngram_model(ngram_file).heldout_text()
    assert runs[0]["perplexity"]["text"]["words"] == len(heldout.split())  # the whole held-out split
    markdown = (tmp_path / "a" / "report.md").read_text(encoding="utf-8")
    for expected in ("bench report", "sha256", "held out", "## Perplexity on the same text", "bits/byte", "λ"):
        assert expected in markdown
    assert runs[0]["meta"]["ngram"]["order"] == 3 and len(runs[0]["compare"]) == len(
        [line for line in (Path("bench") / "prompts.txt").read_text(encoding="utf-8").splitlines() if line.strip()])


def test_report_refuses_a_file_as_its_folder(ngram_file, tmp_path):
    target = tmp_path / "report.md"
    target.write_text("keep me", encoding="utf-8")
    out = invoke("report", "-o", target, "--ngram", ngram_file, "--transformer", FIXTURE, "--no-speed")
    assert out.exit_code == 1 and "is a file" in out.output
    assert target.read_text(encoding="utf-8") == "keep me"


def test_compare_with_an_ngram_over_bpe_tokens_shows_readable_tokens(bpe_ngram, gpt):
    result = comparing.compare("The cat sat on the", bpe_ngram, gpt, k=3)
    first, second = result.ngram.words[:2]  # a tie: " mat" and " rug" follow " on the" equally often
    assert {first.word, second.word} == {'" mat"', '" rug"'}  # quoted, so the leading space shows
    assert first.probability == pytest.approx(second.probability)
    assert all(not w.word.startswith("Ġ") for w in result.ngram.words)
