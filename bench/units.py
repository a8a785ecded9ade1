"""Units that mean the same thing for both models: the one place where they are counted.

Each model splits text its own way (the n-gram into words and punctuation, GPT-2 into
BPE pieces), so "perplexity per token" of one is not comparable with the other's. What
*is* comparable is the total surprise over the same text, divided by something both
agree on:

    perplexity per word = exp(total NLL / words)          words: whitespace-separated
    bits per byte       = total NLL / ln 2 / bytes         bytes: UTF-8 bytes

Both models' figures are always divided by the SAME `TextUnits` of the SAME text.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass




@dataclass(frozen=True)
class TextUnits:
    """The shared yardsticks of one text."""

    words: int  # whitespace-separated words
    bytes: int  # UTF-8 bytes
    chars: int

    @classmethod
    def of(cls, text: str) -> "TextUnits":
        return cls(words=len(text.split()), bytes=len(text.encode("utf-8")), chars=len(text))


def perplexity_per_token(nll: float, tokens: int) -> float:
    """exp(NLL / tokens): only comparable between models with the same tokenizer."""
    return math.exp(nll / tokens) if tokens else math.nan


def perplexity_per_word(nll: float, units: TextUnits) -> float:
    """exp(NLL / words of the text)."""
    return math.exp(nll / units.words) if units.words else math.nan


def bits_per_byte(nll: float, units: TextUnits) -> float:
    """NLL in bits per UTF-8 byte of the text."""
    return nll / math.log(2) / units.bytes if units.bytes else math.nan


@dataclass
class ScoreRow:
    """One model's result on one text: totals, and the figures derived from them.

    `nll` is the total negative log-likelihood in nats of every token scored. If some
    tokens had probability 0 (only MLE does that), `zero_prob` counts them and the
    figures are infinite: `nll` then covers the other tokens only.
    """

    model: str  # "n-gram" or "transformer" or "mix"
    label: str  # e.g. "5-gram, Kneser-Ney" or "context cut to 4 tokens"
    token_kind: str  # what a "token" is for this row: "word/punct", "BPE (gpt2)", ...
    tokens: int
    nll: float
    units: TextUnits
    zero_prob: int = 0
    oov: int = 0  # tokens outside the model's vocabulary (n-gram only)
    order: int | None = None
    smoothing: str | None = None
    context: int | None = None  # tokens the transformer could see (None = its full window)
    mix: float | None = None  # lambda of a mixture row
    note: str = ""

    @property
    def finite(self) -> bool:
        return self.zero_prob == 0

    @property
    def per_token(self) -> float:
        return perplexity_per_token(self.nll, self.tokens) if self.finite else math.inf

    @property
    def per_word(self) -> float:
        return perplexity_per_word(self.nll, self.units) if self.finite else math.inf

    @property
    def bits_per_byte(self) -> float:
        return bits_per_byte(self.nll, self.units) if self.finite else math.inf

    @property
    def oov_rate(self) -> float:
        return self.oov / self.tokens if self.tokens else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["units"] = asdict(self.units)
        for key in ("per_token", "per_word", "bits_per_byte"):
            value = getattr(self, key)
            d[key] = None if math.isinf(value) else value  # JSON has no infinity
        d["oov_rate"] = self.oov_rate
        return d
