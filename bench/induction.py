"""`bench induction`: in-context copying, the experiment behind "induction heads".

Olsson et al. (2022), "In-context learning and induction heads": a sequence of random
tokens shown twice. The first copy is unpredictable; the second can be read off the
first — by a model that has learned to copy ("after A came B last time, so B again").
An n-gram cannot: it has never seen the sequence, and its counts do not change while
it reads.

    ids = <|endoftext|> x1 .. xL x1 .. xL      (x uniform over the vocabulary, special tokens excluded)

Reported, averaged over `repeats` sequences (fixed seed):

- each model's loss on the first copy and on the second copy, in nats per BPE token of
  the copy (the n-gram scores the decoded text with its own tokens; each of its tokens
  counts for the copy its first character lies in, and the copy's total is divided by
  the same L BPE tokens, so both models are in one unit);
- for the transformer, an induction score per layer and head: the mean attention from
  each token of the second copy (position i = L + 1 + j) to the token AFTER its earlier
  occurrence (position i − L + 1). A head that copies puts its weight there.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from corpora import UserError
from corpora.tokenizers import BOS, EOS
from ngram import NgramModel
from ngram.score import probability_method, sequence_logprobs
from transformer import copying
from transformer.copying import copy_means
from transformer.inspection import attention_maps
from transformer.score import token_logprobs

from .models import TransformerChoice
from .perplexity import SpellingModel
from .tables import render_table
from .wordspans import ngram_token_offsets

DEFAULT_LENGTH = 60
DEFAULT_REPEATS = 10


def ordinary_ids(tokenizer, vocab_size: int) -> np.ndarray:
    """The token ids a random sequence may use: every id of the model's vocabulary with
    bytes of its own, special tokens (<|endoftext|>) left out."""
    special = set(tokenizer.special_tokens.values())
    return np.array([i for i in range(min(vocab_size, tokenizer.vocab_size)) if i not in special and i in tokenizer.decoder])


def repeated_sequences(tokenizer, vocab_size: int, length: int, repeats: int, seed: int) -> np.ndarray:
    """(repeats, 1 + 2·length) ids: <|endoftext|>, then `length` random tokens of the
    tokenizer's own (`ordinary_ids`) twice (`transformer.copying`)."""
    return copying.repeated_sequences(ordinary_ids(tokenizer, vocab_size), tokenizer.eot_id, length, repeats, seed)


def induction_scores(maps: np.ndarray, length: int) -> np.ndarray:
    """(n_layer, n_head) mean attention from each second-copy token to the token after its earlier occurrence.

    maps: (n_layer, n_head, T, T) for <|endoftext|> x1..xL x1..xL (T = 2L + 1), [l, h, i, j]
    the weight position i gives position j. Query i = L + 1 + j attends to i − L + 1.
    """
    queries = np.arange(length + 1, 2 * length + 1)
    return maps[:, :, queries, queries - length + 1].mean(axis=-1)


def uniform_score(length: int) -> float:
    """The induction score of a head that spreads its attention evenly over every earlier position (and itself)."""
    queries = np.arange(length + 1, 2 * length + 1)
    return float(np.mean(1.0 / (queries + 1)))


def ngram_copy_losses(model: NgramModel, text: str, split_at: int, spelling: SpellingModel | None) -> tuple[float, float]:
    """The n-gram's total loss (nats) on the text before `split_at` characters and after.

    Kneser-Ney at the model's order, open vocabulary when `spelling` is given; the
    sentence end </s> counts for the copy of the sentence's last token.
    """
    method = probability_method(model, "kn", None)
    known = set(model.vocab)
    totals = [0.0, 0.0]
    for sentence, starts in zip(model.tokenizer.sentences(text), ngram_token_offsets(model.tokenizer, text)):
        losses = -sequence_logprobs(method, [BOS, *model.to_vocab(sentence), EOS])
        for token, start, loss in zip(sentence + [EOS], starts + [starts[-1]], losses):
            unknown = spelling is not None and token != EOS and token not in known
            totals[start >= split_at] += loss + (spelling.nll(token) if unknown else 0.0)
    return totals[0], totals[1]


@dataclass
class InductionReport:
    length: int
    repeats: int
    seed: int
    transformer_model: str
    ngram_model: str
    transformer_loss: tuple[float, float]  # nats per token, first copy and second
    ngram_loss: tuple[float, float]
    scores: np.ndarray  # (n_layer, n_head)

    def to_dict(self) -> dict:
        return {
            "length": self.length, "repeats": self.repeats, "seed": self.seed,
            "transformer_model": self.transformer_model, "ngram_model": self.ngram_model,
            "loss_unit": "nats per BPE token of the copy",
            "transformer": {"first_copy": self.transformer_loss[0], "second_copy": self.transformer_loss[1]},
            "ngram": {"first_copy": self.ngram_loss[0], "second_copy": self.ngram_loss[1]},
            "induction_scores": self.scores.round(6).tolist(),
            "best_head": self.best_head(),
        }

    def best_head(self) -> dict:
        layer, head = np.unravel_index(int(np.argmax(self.scores)), self.scores.shape)
        return {"layer": int(layer), "head": int(head), "score": float(self.scores[layer, head])}


def check_fits(choice: TransformerChoice, length: int) -> None:
    """Refuse a length whose two copies (and <|endoftext|>) do not fit the transformer's window."""
    n_ctx = choice.model.config.n_ctx
    if 2 * length + 1 > n_ctx:
        raise UserError(f"--length {length}: two copies and <|endoftext|> need {2 * length + 1} positions, "
                        f"the transformer has {n_ctx}; use --length {(n_ctx - 1) // 2} or less")


def induction(
    ngram: NgramModel, choice: TransformerChoice, length: int = DEFAULT_LENGTH, repeats: int = DEFAULT_REPEATS,
    seed: int = 0, spelling: SpellingModel | None = None,
) -> InductionReport:
    """Both models on `repeats` random sequences shown twice; the transformer's induction scores."""
    check_fits(choice, length)
    sequences = repeated_sequences(choice.tokenizer, choice.model.config.vocab_size, length, repeats, seed)
    t_first, t_second, n_first, n_second = [], [], [], []
    scores = []
    for ids in sequences:
        first, second = copy_means(-token_logprobs(choice.model, ids), length)
        t_first.append(first)
        t_second.append(second)
        copy = choice.tokenizer.decode(ids[1:length + 1].tolist())
        n1, n2 = ngram_copy_losses(ngram, copy + copy, len(copy), spelling)
        n_first.append(n1 / length)
        n_second.append(n2 / length)
        scores.append(induction_scores(attention_maps(choice.model, ids.tolist()), length))
    return InductionReport(
        length, repeats, seed, choice.description,
        f"{ngram.order}-gram over {ngram.tokenizer.name}, Kneser-Ney" + (", open vocabulary" if spelling else ""),
        (float(np.mean(t_first)), float(np.mean(t_second))), (float(np.mean(n_first)), float(np.mean(n_second))),
        np.mean(scores, axis=0),
    )


def render_induction(report: InductionReport, markdown: bool = False) -> str:
    """The loss table and the strongest heads."""
    rows = [
        [name, f"{first:.3f}", f"{second:.3f}", f"{first - second:+.3f}"]
        for name, (first, second) in (("transformer", report.transformer_loss), ("n-gram", report.ngram_loss))
    ]
    best = report.best_head()
    flat = sorted(((float(s), l, h) for (l, h), s in np.ndenumerate(report.scores)), reverse=True)[:3]
    return "\n".join([
        f"Induction: {report.repeats} random sequences of {report.length} tokens shown twice (seed {report.seed})",
        f"transformer: {report.transformer_model}",
        f"n-gram: {report.ngram_model}",
        "",
        render_table(["model", "first copy", "second copy", "drop"], rows, right={1, 2, 3}, markdown=markdown),
        "",
        "Loss in nats per BPE token of the copy (the n-gram's total over the copy's text divided by its tokens).",
        f"Induction score (mean attention from a second-copy token to the token after its first occurrence; "
        f"attention spread evenly would give {uniform_score(report.length):.3f}): "
        + ", ".join(f"layer {l} head {h}: {s:.3f}" for s, l, h in flat),
        f"Strongest: layer {best['layer']} head {best['head']} ({best['score']:.3f}).",
    ])
