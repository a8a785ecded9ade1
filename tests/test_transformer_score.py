"""Scoring and perplexity (sliding window) against the recorded references; inspection."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from transformer.inspection import attention_maps, attention_summary, logit_lens, save_attention_png, top_next_tokens
from transformer.model import GPT2, load_model
from corpora.units import Score, TextUnits
from transformer.score import perplexity, score_text, short_context_logprobs, token_logprobs, window_and_stride, windows

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def tiny() -> GPT2:
    return GPT2.from_dir(FIXTURES / "gpt2-tiny")


@pytest.fixture(scope="module")
def tiny_ref() -> dict:
    with np.load(FIXTURES / "gpt2-tiny" / "reference.npz", allow_pickle=False) as data:
        return dict(data)


@pytest.fixture(scope="module")
def vocab():
    model, tokenizer = load_model(str(FIXTURES / "gpt2-vocab"))
    ref = json.loads((FIXTURES / "gpt2-vocab" / "reference.json").read_text(encoding="utf-8"))
    return model, tokenizer, ref


def test_windows_score_every_token_once():
    spans = list(windows(75, 16, 8))
    assert spans[0] == (0, 16, 1) and spans[1] == (8, 24, 16) and spans[-1][1] == 75
    targets = [t for _, end, first in spans for t in range(first, end)]
    assert targets == list(range(1, 75))
    assert all(first - begin >= 1 and end - begin <= 16 for begin, end, first in spans)
    assert list(windows(10, 32, 16)) == [(0, 10, 1)]
    with pytest.raises(ValueError):
        list(windows(10, 8, 8))


@pytest.mark.parametrize("window,stride,key", [(16, 8, "long_logprobs_w16_s8"), (32, 31, "long_logprobs_w32_s31")])
def test_sliding_window_logprobs_match_transformers(tiny, tiny_ref, window, stride, key):
    ours = token_logprobs(tiny, tiny_ref["long_ids"], window, stride)
    assert ours.shape == (74,)
    np.testing.assert_allclose(ours, tiny_ref[key], atol=1e-4, rtol=0)


def test_logprobs_of_short_text_equal_the_forward_pass(tiny, tiny_ref):
    ids = tiny_ref["full_ids"]
    logits = tiny_ref["full_logits"].astype(np.float64)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = logp[np.arange(31), ids[1:]]
    np.testing.assert_allclose(token_logprobs(tiny, ids), expected, atol=1e-4)


def each_window_alone(model: GPT2, ids: np.ndarray, context: int) -> np.ndarray:
    """The reference for short_context_logprobs: the ordinary single-sequence forward pass
    on each window ids[max(0, t - context):t], one at a time."""
    out = []
    for t in range(1, len(ids)):
        logits, _ = model.forward(ids[max(0, t - context):t])
        logits = logits.astype(np.float64) - logits.max()
        out.append(logits[ids[t]] - np.log(np.exp(logits).sum()))
    return np.array(out)


@pytest.mark.parametrize("context", [1, 2, 3, 4])
def test_short_context_scores_each_window_as_its_own_text(tiny, tiny_ref, vocab, context):
    for model, ids in [(tiny, tiny_ref["long_ids"]), (vocab[0], np.array(vocab[2]["text_ids"]))]:
        expected = each_window_alone(model, ids, context)
        for batch_size in (1, 7, None, 100_000):  # one window a pass, uneven batches, default, all at once
            ours = short_context_logprobs(model, ids, context, batch_size)
            assert ours.shape == (len(ids) - 1,)
            np.testing.assert_allclose(ours, expected, atol=1e-5, rtol=0)


def test_short_context_with_the_whole_text_in_view_is_ordinary_scoring(tiny, tiny_ref, vocab):
    ids = tiny_ref["full_ids"]  # 32 tokens, the tiny model's whole window
    for context in (len(ids) - 1, len(ids)):
        np.testing.assert_allclose(short_context_logprobs(tiny, ids, context), token_logprobs(tiny, ids), atol=1e-5)
    model, _, ref = vocab
    ids = np.array(ref["text_ids"][:100])
    np.testing.assert_allclose(short_context_logprobs(model, ids, 99), token_logprobs(model, ids), atol=1e-5)


def test_short_context_is_the_sliding_window_with_stride_one(tiny, tiny_ref):
    ids = tiny_ref["long_ids"]
    for context in (3, 10):
        np.testing.assert_allclose(
            short_context_logprobs(tiny, ids, context), token_logprobs(tiny, ids, context + 1, 1), atol=1e-5
        )


def test_short_context_edge_cases(tiny, vocab):
    assert short_context_logprobs(tiny, [5], 4).shape == (0,)
    assert short_context_logprobs(tiny, [5, 6], 4).shape == (1,)
    for context in (0, tiny.config.n_ctx + 1):
        with pytest.raises(ValueError, match="context"):
            short_context_logprobs(tiny, [5, 6, 7], context)
    model, tokenizer, ref = vocab
    result = perplexity(model, tokenizer, ref["text"], context=4)
    assert (result.setting["window"], result.setting["stride"], result.tokens) == (5, 1, 224)
    assert result.setting["context"] == 4
    assert result.nll == pytest.approx(-short_context_logprobs(model, ref["text_ids"], 4).sum())
    with pytest.raises(ValueError, match="not both"):
        perplexity(model, tokenizer, ref["text"], window=8, context=4)


def test_perplexity_of_text_matches_reference(vocab):
    model, tokenizer, ref = vocab
    result = perplexity(model, tokenizer, ref["text"], window=128, stride=64)
    assert result.tokens == len(ref["text_ids"]) - 1 == 224
    words, size = len(ref["text"].split()), len(ref["text"].encode())
    assert isinstance(result, Score) and (result.units.words, result.units.bytes) == (words, size)
    assert abs(result.nll - ref["text_nll_w128_s64"]) < 1e-3
    assert math.isclose(result.per_token, math.exp(result.nll / result.tokens))
    assert math.isclose(result.bits_per_byte, result.nll / math.log(2) / size)
    assert math.isclose(result.per_word, math.exp(result.nll / words))
    assert result.to_dict()["per_token"] == result.per_token
    assert result.setting == {"window": 128, "stride": 64, "context": None}
    assert result.token_kind == f"BPE (gpt2-vocab, {tokenizer.vocab_size:,})"


def test_perplexity_units():
    r = Score(nll=10 * math.log(2), tokens=5, units=TextUnits(words=2, bytes=10, chars=10), token_kind="BPE")
    assert math.isclose(r.per_token, 4.0) and math.isclose(r.bits_per_byte, 1.0)
    assert math.isclose(r.per_word, 32.0)


def test_window_and_stride_defaults_live_in_one_place(tiny):
    n_ctx = tiny.config.n_ctx
    assert window_and_stride(None, None, n_ctx) == (n_ctx, n_ctx // 2)
    assert window_and_stride(10 * n_ctx, None, n_ctx) == (n_ctx, n_ctx // 2)  # cut to the model's window
    assert window_and_stride(16, 3, n_ctx) == (16, 3)


def test_score_text_gives_one_logprob_per_token(vocab):
    model, tokenizer, ref = vocab
    scores = score_text(model, tokenizer, ref["prompts"][0])
    assert scores.ids == ref["prompt_ids"][0]
    assert len(scores.logprobs) == len(scores.ids) and all(lp < 0 for lp in scores.logprobs)
    assert "".join(scores.tokens).replace("\u0120", " ") == ref["prompts"][0]
    no_bos = score_text(model, tokenizer, ref["prompts"][0], bos=False)
    assert no_bos.ids == scores.ids and math.isnan(no_bos.logprobs[0])
    assert all(lp < 0 for lp in no_bos.logprobs[1:])


def test_top_next_tokens_and_logit_lens(tiny, tiny_ref):
    ids = tiny_ref["short_ids"].tolist()
    best = top_next_tokens(tiny, ids, 3)
    logits = tiny_ref["short_logits"][-1].astype(np.float64)
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert [i for i, _ in best] == np.argsort(-probs)[:3].tolist()
    assert best[0][1] == pytest.approx(probs.max(), abs=1e-5)
    lens = logit_lens(tiny, ids, 3)
    assert len(lens) == tiny.config.n_layer + 1
    # the last layer's reading is the model's prediction
    assert [i for i, _ in lens[-1]] == [i for i, _ in best]
    assert [p for _, p in lens[-1]] == pytest.approx([p for _, p in best], abs=1e-5)


def test_attention_maps_are_causal_distributions(tiny, tiny_ref, tmp_path):
    ids = tiny_ref["short_ids"].tolist()
    maps = attention_maps(tiny, ids)
    assert maps.shape == (2, 4, 7, 7)
    np.testing.assert_allclose(maps.sum(-1), 1.0, atol=1e-5)
    assert np.all(np.triu(maps, k=1) == 0)
    assert np.all(maps[:, :, 0, 0] == 1.0)
    summary = attention_summary(maps, [str(i) for i in ids])
    assert len(summary) == 8 and summary[0]["weight"] == pytest.approx(float(maps[0, 0, -1].max()))
    png = save_attention_png(maps, [str(i) for i in ids], tmp_path / "att.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
