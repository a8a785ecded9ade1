"""How a score on a text is counted: the one place for per-token, per-word and bits-per-byte.

Each model splits text its own way (the n-gram into words and punctuation, GPT-2 into
BPE pieces), so "perplexity per token" of one is not comparable with the other's. What
*is* comparable is the total surprise over the same text, divided by something both
agree on:

    perplexity per token = exp(total NLL / tokens scored)    only within one tokenizer
    perplexity per word  = exp(total NLL / words)             words: whitespace-separated
    bits per byte        = total NLL / ln 2 / bytes           bytes: UTF-8 bytes

The words and bytes are those of the text itself (`TextUnits.of(text)`), never of a
model's tokens, so two models scored on the same text are divided by the same numbers.
These are lm-evaluation-harness's `word_perplexity` and `bits_per_byte`.

    >>> units = TextUnits.of("It was a dark and stormy night.")
    >>> Score(nll=14.0, tokens=8, units=units, token_kind="word/punct").per_word  # exp(14 / 7)
    7.38905609893065
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field


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


@dataclass(frozen=True)
class Score:
    """One model's totals on one text, and every figure derived from them.

    `nll` is the total negative log-likelihood in nats of the `tokens` scored. If some
    tokens had probability 0 (only MLE does that), `zero_prob` counts them, `nll` covers
    the others only, and the figures are infinite. `oov` counts tokens outside the
    model's vocabulary (n-gram only). `token_kind` names what a token is ("word/punct",
    "BPE (gpt2)", ...): per-token figures compare only between equal kinds. `setting`
    records how the text was scored (smoothing and order, window and stride, context
    cut, ...), for tables and JSON.
    """

    nll: float
    tokens: int
    units: TextUnits
    token_kind: str
    zero_prob: int = 0
    oov: int = 0
    setting: dict = field(default_factory=dict)

    @property
    def finite(self) -> bool:
        return self.zero_prob == 0

    @property
    def nll_per_token(self) -> float:
        scored = self.tokens - self.zero_prob
        return self.nll / scored if scored else math.nan

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
    def per_token_nonzero(self) -> float:
        """Perplexity over the tokens that had p > 0 (what MLE reports beside inf)."""
        scored = self.tokens - self.zero_prob
        return math.exp(self.nll / scored) if scored else math.inf

    @property
    def oov_rate(self) -> float:
        return self.oov / self.tokens if self.tokens else 0.0

    def to_dict(self) -> dict:
        """The totals and the derived figures; infinities and NaN become null (JSON has neither)."""
        d = asdict(self)
        for key in ("nll_per_token", "per_token", "per_word", "bits_per_byte", "per_token_nonzero", "oov_rate"):
            d[key] = getattr(self, key)
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}
