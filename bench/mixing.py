"""Aligned tokens and interpolation: what neither model does alone.

With an n-gram built over the transformer's own BPE tokens (`ngram build --tokens gpt2`,
or `--tokens bpe:DIR` for another tokenizer), both models predict exactly the same
tokens of the same text, so their per-token perplexities are directly comparable, and
their probabilities can be mixed token by token:

    p_mix(t) = λ · p_transformer(t) + (1 − λ) · p_ngram(t)

λ = 0 is the n-gram alone, λ = 1 the transformer alone. An average of two distributions
is itself a distribution, so every λ gives an honest perplexity; a λ between the ends
beats both models when they make different mistakes.

Alignment details, stated once: the n-gram's context starts with `<s>`, the
transformer's with `<|endoftext|>`; both then score the text's tokens t1..tN (the
n-gram's closing `</s>` has no transformer counterpart and is left out). A BPE token the
n-gram never saw is `<unk>` to it; its probability p(<unk>) is shared equally among all
the BPE tokens it never saw, so the n-gram's distribution stays one over the
transformer's vocabulary.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from corpora import UserError, cache_dir, corpus_from_record
from corpora.tokenizers import BOS, EOS, UNK, BPETokens
from corpora.tokenizers.bpe import tokenizer_fingerprint
from corpora.units import Score, TextUnits
from ngram import NgramModel, load_model as load_ngram, save_model
from transformer.score import text_ids, token_logprobs

from .models import TransformerChoice, notice
from .perplexity import EvalText, PerplexityReport, ScoreRow

DEFAULT_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)


def tokenizer_spec(choice: TransformerChoice) -> str:
    """The `ngram build --tokens` value that gives the transformer's tokenizer."""
    from corpora.tokenizers.bpe import gpt2_tokenizer

    if tokenizer_fingerprint(choice.tokenizer) == tokenizer_fingerprint(gpt2_tokenizer()):
        return "gpt2"
    return f"bpe:{choice.folder}"


def check_aligned(ngram: NgramModel, choice: TransformerChoice) -> None:
    """Refuse an n-gram whose tokens are not the transformer's."""
    config = ngram.tokenizer.config()
    wanted = tokenizer_fingerprint(choice.tokenizer)
    if config.get("fingerprint") != wanted:
        have = config.get("name", "?")
        raise UserError(
            f"the n-gram was built with {have} tokens, not the transformer's BPE tokenizer "
            f"({choice.folder.name}); build one with: ngram build corpora/ --tokens {tokenizer_spec(choice)} -o FILE"
        )


def aligned_ngram_path(choice: TransformerChoice, order: int) -> Path:
    return cache_dir() / "ngram" / f"bpe-{tokenizer_fingerprint(choice.tokenizer)[:12]}-order{order}.ngram"


def aligned_ngram(
    choice: TransformerChoice, like: NgramModel, path: str | Path | None = None, progress: bool = True,
) -> NgramModel:
    """An n-gram over the transformer's tokens, from the same corpus and split as `like`.

    Loaded from `path` if given (and checked), else from the cache, else built once.
    """
    if path is not None:
        model = load_ngram(path)
        check_aligned(model, choice)
        return model
    target = aligned_ngram_path(choice, like.order)
    if target.exists():
        model = load_ngram(target)
        check_aligned(model, choice)
        return model
    notice(f"building a {like.order}-gram over the transformer's BPE tokens, from the same books and split (once)")
    corpus = corpus_from_record(like.corpus)
    model = NgramModel.build(corpus, order=like.order, tokens=tokenizer_spec(choice), progress=progress)
    check_aligned(model, choice)
    save_model(model, target)
    return model


def ngram_token_logprobs(model: NgramModel, ids: list[int], vocab_size: int, order: int | None = None) -> np.ndarray:
    """log p_ngram(t_i | t_<i) for the transformer's ids, <unk> shared among the unseen tokens."""
    tokenizer = model.tokenizer
    if not isinstance(tokenizer, BPETokens):
        raise UserError("mixing needs an n-gram over BPE tokens (ngram build --tokens gpt2)")
    tokens = tokenizer.tokens_of_ids(ids)
    logprobs = model.token_logprobs(tokens, "kn", order)
    seen = sum(1 for t in model.vocab if t not in (BOS, EOS, UNK))
    unseen_types = max(vocab_size - seen, 1)
    known = set(model.vocab)
    unknown = np.fromiter((t not in known for t in tokens), dtype=bool, count=len(tokens))
    logprobs[unknown] -= math.log(unseen_types)
    return logprobs


def mixture_nll(ngram_lp: np.ndarray, transformer_lp: np.ndarray, lam: float) -> float:
    """-Σ log(λ p_t + (1−λ) p_n) in nats; λ = 0 and 1 give each model's own total exactly."""
    if lam <= 0.0:
        return float(-ngram_lp.sum())
    if lam >= 1.0:
        return float(-transformer_lp.sum())
    mixed = np.logaddexp(math.log(lam) + transformer_lp, math.log1p(-lam) + ngram_lp)
    return float(-mixed.sum())


def best_lambda(ngram_lp: np.ndarray, transformer_lp: np.ndarray, step: float = 0.01) -> float:
    """The λ on a grid of `step` with the lowest mixture NLL on these tokens."""
    grid = np.round(np.arange(0.0, 1.0 + step / 2, step), 6)
    scores = [mixture_nll(ngram_lp, transformer_lp, float(lam)) for lam in grid]
    return float(grid[int(np.argmin(scores))])


def aligned_logprobs(ngram: NgramModel, choice: TransformerChoice, text: str, progress: bool = False):
    """Both models' log-probabilities for the same BPE tokens t1..tN of `text`."""
    check_aligned(ngram, choice)
    ids = text_ids(choice.tokenizer, text)  # <|endoftext|> t1 .. tN
    transformer_lp = token_logprobs(choice.model, ids, progress=progress)
    ngram_lp = ngram_token_logprobs(ngram, ids[1:], choice.model.config.vocab_size)
    return ngram_lp, transformer_lp


def mix_rows(
    ngram: NgramModel, choice: TransformerChoice, text: str, lambdas: list[float], progress: bool = False,
) -> tuple[list[ScoreRow], float]:
    """Rows for the aligned n-gram, the transformer on the same tokens, each λ, and the best λ."""
    units = TextUnits.of(text)
    ngram_lp, transformer_lp = aligned_logprobs(ngram, choice, text, progress)
    kind = f"BPE ({choice.folder.name})"

    def mixed(lam: float) -> Score:
        """The mixture at λ on these tokens, as a Score over the text's words and bytes."""
        return Score(nll=mixture_nll(ngram_lp, transformer_lp, lam), tokens=len(ngram_lp), units=units, token_kind=kind)

    rows = [
        ScoreRow("n-gram", f"{ngram.order}-gram, Kneser-Ney, on the transformer's tokens", mixed(0.0),
                 order=ngram.order, smoothing="kn", mix=0.0),
        ScoreRow("transformer", "full context, same tokens", mixed(1.0), mix=1.0),
    ]
    best = best_lambda(ngram_lp, transformer_lp)
    for lam in sorted(set(lambdas) | {best}):
        if lam in (0.0, 1.0):
            continue
        rows.append(ScoreRow("mix", f"λ = {lam:.2f}" + (" (best)" if lam == best else ""), mixed(lam), mix=lam))
    return rows, best


def add_mix_rows(
    report: PerplexityReport, ngram: NgramModel, choice: TransformerChoice, text: EvalText,
    lambdas: list[float], aligned_path: str | Path | None = None, progress: bool = False,
) -> None:
    """Append the aligned-token rows to a perplexity report (building the aligned n-gram if needed)."""
    bpe_ngram = aligned_ngram(choice, ngram, aligned_path, progress)
    rows, best = mix_rows(bpe_ngram, choice, text.text, lambdas, progress)
    report.rows += rows
    report.best_mix = best
