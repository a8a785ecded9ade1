"""`bench perplexity --breakdown`: where, in the text, each model wins.

Every whitespace word of the text goes to a bucket by the longest context the n-gram's
trie has seen before it — infini-gram's suffix length: the largest k (0 .. N − 1) such
that the k n-gram tokens before the word's first token (words, punctuation marks and
<s>, in its sentence) occur in the training text as an n-gram. k = N − 1 means the
n-gram saw the whole context it can use; k = 0 means not even the one token before it.
An unknown word in the context ends the match: the trie stores every rare word as
<unk>, so it has seen "some rare word" there, never this one.

Per word, each model's loss (nats) is the sum over its own tokens that belong to that
word (`bench.wordspans` says which): for the transformer, its BPE pieces' negative
log-probabilities with its full window (exactly the tokens of `bench perplexity`'s
full-context row); for the n-gram (Kneser-Ney, highest order), its tokens' negative
log-probabilities, the sentence end </s> included, plus the spelling cost of each
unknown word (open vocabulary, exactly as `ngram_rows` charges it). Bytes go to words
the same way (white space to the word after it), so the buckets' words, bytes and
losses add up to the whole text's: the last row of the table is the sum of the buckets
and equals the `bench perplexity` rows (up to floating-point rounding of the sums).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from corpora import UserError
from corpora.tokenizers import BOS, EOS, UNK
from corpora.units import Score, TextUnits
from ngram import NgramModel
from ngram.score import probability_method, sequence_logprobs
from transformer.score import text_ids, token_logprobs

from .models import TransformerChoice
from .perplexity import SpellingModel, fmt
from .tables import render_table
from .wordspans import bpe_token_words, ngram_token_words, word_of_each_byte


# ------------------------------------------------------------ per word, n-gram


def matched_length(counts, context: list[str]) -> int:
    """The longest k such that the last k tokens of `context` were seen in training.

    A context holding an unknown word is not one the trie has seen: the trie knows only
    that some rare word stood there (<unk>), not this one. So the match stops at <unk>.
    """
    k = 0
    while k < len(context) and context[-k - 1] != UNK and counts.context_node(context[len(context) - k - 1:]) is not None:
        k += 1
    return k


@dataclass
class NgramWords:
    """The n-gram's loss on each whitespace word, and each word's bucket."""

    nll: np.ndarray  # (W,) nats
    bucket: np.ndarray  # (W,) matched context length before the word
    tokens: int  # n-gram tokens scored (</s> included), as in its Score


def ngram_word_losses(model: NgramModel, text: str, spelling: SpellingModel | None) -> NgramWords:
    """Kneser-Ney at the model's order, every token's loss given to its whitespace word."""
    if model.tokenizer.name != "words":
        raise UserError(f"--breakdown needs an n-gram over words, not {model.tokenizer.name} tokens")
    method = probability_method(model, "kn", None)
    n_words = len(text.split())
    nll = np.zeros(n_words)
    bucket = np.full(n_words, -1, dtype=np.int64)
    known = set(model.vocab)
    tokens = 0
    for sentence, owners in zip(model.tokenizer.sentences(text), ngram_token_words(model.tokenizer, text)):
        mapped = [BOS, *model.to_vocab(sentence), EOS]
        losses = -sequence_logprobs(method, mapped)
        np.add.at(nll, [*owners, owners[-1]], losses)  # </s> goes to the sentence's last word
        tokens += len(losses)
        for i, (token, owner) in enumerate(zip(sentence, owners), start=1):
            if spelling is not None and token not in known:
                nll[owner] += spelling.nll(token)
            if bucket[owner] < 0:  # the word's first token decides
                bucket[owner] = matched_length(model.counts, mapped[max(0, i - model.order + 1):i])
    return NgramWords(nll, fill_from_previous(bucket), tokens)


def fill_from_previous(bucket: np.ndarray) -> np.ndarray:
    """Words with no n-gram token (only underscores, say) take the bucket of the word before (0 at the start)."""
    filled = bucket.copy()
    for i in range(len(filled)):
        if filled[i] < 0:
            filled[i] = filled[i - 1] if i else 0
    return filled


# -------------------------------------------------------- per word, transformer


def transformer_word_losses(choice: TransformerChoice, text: str, progress: bool = False) -> tuple[np.ndarray, int]:
    """The transformer's loss on each whitespace word (full window, as `bench perplexity`), and its tokens."""
    ids = text_ids(choice.tokenizer, text)
    losses = -token_logprobs(choice.model, ids, progress=progress)
    owners = bpe_token_words(choice.tokenizer, ids[1:], text)
    return np.bincount(owners, weights=losses, minlength=len(text.split())), len(losses)


def word_bytes(text: str) -> np.ndarray:
    """UTF-8 bytes of each word, the white space before it included (after the last word: the last word's)."""
    n_words = len(text.split())
    return np.bincount(np.minimum(word_of_each_byte(text), n_words - 1), minlength=n_words)


# ------------------------------------------------------------------ the buckets


@dataclass
class Bucket:
    """The words whose context the trie matched to `length` tokens, and both models' scores on them."""

    length: int | None  # None: all buckets together
    ngram: Score
    transformer: Score
    share: float

    @property
    def winner(self) -> str:
        n, t = self.ngram.per_word, self.transformer.per_word
        if n == t:
            return "tie"
        return "transformer" if t < n else "n-gram"

    @property
    def ratio(self) -> float:
        """How many times higher the loser's per-word perplexity is."""
        n, t = self.ngram.per_word, self.transformer.per_word
        return max(n, t) / min(n, t) if min(n, t) > 0 else math.inf

    def to_dict(self) -> dict:
        return {
            "matched_context": self.length, "words": self.ngram.units.words, "bytes": self.ngram.units.bytes,
            "share": self.share, "ngram_nll": self.ngram.nll, "transformer_nll": self.transformer.nll,
            "ngram_per_word": self.ngram.per_word, "transformer_per_word": self.transformer.per_word,
            "ngram_bits_per_byte": self.ngram.bits_per_byte, "transformer_bits_per_byte": self.transformer.bits_per_byte,
            "winner": self.winner, "ratio": self.ratio,
        }


@dataclass
class Breakdown:
    order: int
    buckets: list[Bucket]  # by matched length, then the total (length None)
    ngram_tokens: int
    transformer_tokens: int

    def to_dict(self) -> dict:
        return {
            "definition": "words bucketed by the longest context (in n-gram tokens) the trie has seen before the word",
            "order": self.order, "buckets": [b.to_dict() for b in self.buckets],
        }


def bucket_scores(
    bucket: np.ndarray, ngram_nll: np.ndarray, transformer_nll: np.ndarray, nbytes: np.ndarray, order: int,
    ngram_kind: str = "words", transformer_kind: str = "BPE",
) -> list[Bucket]:
    """Per bucket 0 .. order − 1, then their sum: words, bytes and both models' total loss."""
    total_words = len(bucket)
    rows = []
    for length in range(order):
        mask = bucket == length
        units = TextUnits(words=int(mask.sum()), bytes=int(nbytes[mask].sum()), chars=0)
        rows.append(Bucket(
            length,
            Score(nll=float(ngram_nll[mask].sum()), tokens=0, units=units, token_kind=ngram_kind),
            Score(nll=float(transformer_nll[mask].sum()), tokens=0, units=units, token_kind=transformer_kind),
            units.words / total_words if total_words else 0.0,
        ))
    units = TextUnits(words=sum(b.ngram.units.words for b in rows), bytes=sum(b.ngram.units.bytes for b in rows), chars=0)
    rows.append(Bucket(
        None,
        Score(nll=sum(b.ngram.nll for b in rows), tokens=0, units=units, token_kind=ngram_kind),
        Score(nll=sum(b.transformer.nll for b in rows), tokens=0, units=units, token_kind=transformer_kind),
        1.0,
    ))
    return rows


def breakdown(
    ngram: NgramModel, choice: TransformerChoice, text: str, spelling: SpellingModel | None, progress: bool = False,
) -> Breakdown:
    """Both models' loss on each word of `text`, summed per matched-context bucket."""
    ngram_words = ngram_word_losses(ngram, text, spelling)
    transformer_nll, transformer_tokens = transformer_word_losses(choice, text, progress)
    buckets = bucket_scores(ngram_words.bucket, ngram_words.nll, transformer_nll, word_bytes(text), ngram.order)
    return Breakdown(ngram.order, buckets, ngram_words.tokens, transformer_tokens)


def render_breakdown(result: Breakdown, markdown: bool = False) -> str:
    """The table: one row per bucket and the total, with who wins and by how much."""
    header = ["context seen", "words", "share", "n-gram per word", "transformer per word", "winner"]
    rows = []
    for b in result.buckets:
        name = "all words" if b.length is None else f"{b.length} token{'s' if b.length != 1 else ''}"
        rows.append([
            name, f"{b.ngram.units.words:,}", f"{b.share:.1%}", fmt(b.ngram.per_word), fmt(b.transformer.per_word),
            "" if not b.ngram.units.words else f"{b.winner} (x{b.ratio:.2f})",
        ])
    return "\n".join([
        f"Breakdown: each word by the longest context the {result.order}-gram's trie has seen before it "
        f"(its suffix length, in n-gram tokens)",
        "",
        render_table(header, rows, right={1, 2, 3, 4}, markdown=markdown),
        "",
        "Note: a word's loss is the sum over its own tokens (the transformer's BPE pieces by byte offsets, full window; "
        "the n-gram's words and punctuation, </s> and unknown words' spelling included, Kneser-Ney); the buckets add up to 'all words'.",
    ])
