"""The n-gram language model: build it from text, then predict, complete, generate and score.

    >>> from ngram import NgramModel
    >>> model = NgramModel.build("corpora/", order=5)
    >>> model.predict("It was a dark and stormy").candidates[0].token
    'night'

`NgramModel` is the public face; each job lives in its own module:

    ngram.build    vocabulary, counting, the options check
    ngram.predict  next tokens with their counts, and the "why" example sentence
    ngram.show     the trie under a context, as the nested object it is
    ngram.phrases  whole phrases (beam search) and generated text
    ngram.score    per-token log-probabilities and the Score of a text

Everything reads the trie (``ngram.arrays``, with ``ngram.trie``'s nested-dict face) and a
smoothing method (``ngram.smoothing``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from corpora import Corpus, UserError, corpus_from_record
from corpora.tokenizers import BOS, UNK, Tokenizer, get_tokenizer
from corpora.units import Score

from . import build as building
from . import phrases, predict as predicting, score as scoring, show as showing
from .arrays import ARPA_KIND, ArrayTrie
from .phrases import Phrase
from .predict import Prediction
from .smoothing import Counts, Smoothing, get_smoothing


class NgramModel:
    """An n-gram model: a trie of counts, a tokenizer and a vocabulary.

    The trie is stored as arrays (`self.trie`, an `ngram.arrays.ArrayTrie`, memory-mapped
    when loaded); `self.root` is its nested-dict face: ``model.root["I"]["want"]["to"]``.
    """

    def __init__(
        self,
        trie: ArrayTrie,
        order: int,
        tokenizer: Tokenizer,
        vocab: list[str],
        corpus: dict | None = None,
        info: dict | None = None,
        statistics: dict | None = None,
    ) -> None:
        self.trie = trie
        self.root = trie.root
        self.order = order
        self.tokenizer = tokenizer
        self.vocab = vocab
        self.corpus = corpus or {}
        self.info = info or {}
        self.statistics = statistics or trie.count_statistics(vocab.index(BOS))
        self.counts = Counts(trie, order, vocab, self.statistics)
        self._vocab_set = set(vocab)
        self._smoothings: dict[tuple, Smoothing] = {}
        self._train_documents: list[str] | None = None

    # ----------------------------------------------------------------- building
    @classmethod
    def build(
        cls,
        source: str | Path | Corpus,
        order: int = 5,
        tokens: str = "words",
        lowercase: bool = False,
        min_count: int | None = None,
        heldout_fraction: float = 0.05,
        progress: bool = True,
        memory: str | int | None = None,
    ) -> "NgramModel":
        """Build a model from a folder of .txt files (or a Corpus), held-out split excluded.

        `tokens` is ``words``, ``chars``, ``gpt2`` or ``bpe:DIR`` (see ``corpora.tokenizers``).
        Tokens seen fewer than `min_count` times in the building text become ``<unk>``
        (default: 2, or 1 with BPE tokens). With a `memory` budget (``"2G"``) the text is
        read one document at a time and counted in chunks (`ngram.chunked`): the same
        model, in bounded memory.
        """
        tokenizer = get_tokenizer(tokens, lowercase)
        building.check_build_options(order, min_count)
        corpus = building.open_corpus(source, heldout_fraction, lazy=memory is not None)
        sentences = building.tokenize_corpus(corpus, tokenizer, progress, lazy=memory is not None)
        min_count = tokenizer.default_min_count if min_count is None else min_count
        built = building.count_sentences(sentences, order, min_count, progress, memory)
        return cls(built.trie, order, tokenizer, built.vocab, corpus.describe(), built.info, built.statistics)

    @classmethod
    def from_sentences(
        cls,
        sentences: Sequence[Sequence[str]],
        order: int = 5,
        tokenizer: Tokenizer | None = None,
        min_count: int | None = None,
        corpus: dict | None = None,
        progress: bool = False,
    ) -> "NgramModel":
        """Build a model from already tokenized sentences (each gets ``<s>`` … ``</s>``).

        `min_count` defaults to the tokenizer's (2 for words and characters, 1 for BPE).
        """
        tokenizer = tokenizer or get_tokenizer()
        if min_count is None:
            min_count = tokenizer.default_min_count
        built = building.count_sentences(sentences, order, min_count, progress)
        return cls(built.trie, order, tokenizer, built.vocab, corpus, built.info, built.statistics)

    # ------------------------------------------------------------- vocabulary
    def to_vocab(self, tokens: Iterable[str]) -> list[str]:
        """Map tokens outside the vocabulary to ``<unk>``."""
        known = self._vocab_set
        return [t if t in known else UNK for t in tokens]

    def context_tokens(self, text: str | Sequence[str]) -> list[str]:
        """The context a prompt gives: ``<s>`` and the tokens of its last sentence."""
        if isinstance(text, str):
            if not text.strip():
                raise UserError("the context is empty; give some words")
            sentences = list(self.tokenizer.sentences(text))
            tokens = sentences[-1] if sentences else []
            if not tokens:
                raise UserError("the context has no tokens this model knows how to read")
            return [BOS, *self.to_vocab(tokens)]
        if not text:
            raise UserError("the context is empty; give some words")
        return list(text) if text[0] == BOS else [BOS, *self.to_vocab(text)]

    def smoothing(self, name: str = "kn", order: int | None = None, **options: float) -> Smoothing:
        """A (cached) smoothing method over this model's counts."""
        key = (name, order, tuple(sorted(options.items())))
        if key not in self._smoothings:
            if self.trie.kind == ARPA_KIND:  # imported from ARPA: stored probabilities, no counts
                from .backoff import arpa_smoothing

                self._smoothings[key] = arpa_smoothing(self.counts, name, order, **options)
            else:
                self._smoothings[key] = get_smoothing(name, self.counts, order, **options)
        return self._smoothings[key]

    # ------------------------------------------------- predicting and explaining
    def predict(
        self, context: str | Sequence[str], k: int = 10, smoothing: str = "kn", example: bool = False
    ) -> Prediction:
        """The top-`k` next tokens, longest matching context first (see ``ngram.predict``)."""
        return predicting.predict(self, context, k, smoothing, example)

    def followers(self, node: dict, k: int) -> list[tuple[str, int]]:
        """The `k` most frequent tokens that followed a context node, with their counts."""
        return predicting.followers(node, k)

    def example_sentence(self, context: Sequence[str], token: str | None = None) -> str | None:
        """One sentence from the building text where `context` (then `token`) occurs."""
        return predicting.example_sentence(self, context, token)

    def train_documents(self) -> list[str]:
        """The building part of every document, read once (empty if the corpus is gone)."""
        if self._train_documents is None:
            self._train_documents = predicting.training_documents(self.corpus)
        return self._train_documents

    def subtree(
        self, context: str | Sequence[str] = "", depth: int = 2, top: int = 10, sentence_start: bool = False
    ) -> dict:
        """The trie under `context` as nested data: counts, continuation counts, children (see ``ngram.show``)."""
        return showing.subtree(self, context, depth, top, sentence_start)

    # ------------------------------------------------------------ phrases, text
    def complete(
        self, context: str | Sequence[str], length: int = 3, k: int = 5, smoothing: str = "kn", beam: int = 20
    ) -> list[Phrase]:
        """Rank whole continuations of `length` tokens by their joint probability (beam search)."""
        return phrases.complete(self, context, length, k, smoothing, beam)

    def generate(
        self,
        prompt: str | Sequence[str],
        max_tokens: int = 30,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int | None = None,
        greedy: bool = False,
        smoothing: str = "kn",
        stop_at_sentence_end: bool = False,
    ) -> list[str]:
        """Continue `prompt` token by token: greedy, or sampling with temperature and top-k."""
        return phrases.generate(self, prompt, max_tokens, temperature, top_k, seed, greedy, smoothing, stop_at_sentence_end)

    def render(self, tokens: Sequence[str]) -> str:
        """Generated tokens as text: sentence ends become line-friendly spaces."""
        return phrases.render(self.tokenizer, tokens)

    # ---------------------------------------------------------------- scoring
    def token_logprobs(
        self, tokens: Sequence[str], smoothing: str = "kn", order: int | None = None, **options: float
    ) -> np.ndarray:
        """log p(token_i | the tokens before it), in nats, for ONE tokenized sequence (see ``ngram.score``)."""
        return scoring.token_logprobs(self, tokens, smoothing, order, **options)

    def score(
        self, text: str, smoothing: str = "kn", order: int | None = None, progress: bool = False, **options: float
    ) -> Score:
        """The Score of `text`: total NLL, tokens, words, bytes, OOV (see ``ngram.score``).

        ``score(text).per_token`` is the perplexity per token; ``.per_word`` and
        ``.bits_per_byte`` compare across tokenizers.
        """
        return scoring.score_text(self, text, smoothing, order, progress, **options)

    def heldout_text(self) -> str:
        """The held-out part of the corpus this model was built from."""
        if self.info.get("source") == "arpa":
            raise UserError("this model was imported from an ARPA file: it has no held-out text; pass a text file")
        corpus = corpus_from_record(self.corpus)
        text = corpus.heldout_text()
        if not text.strip():
            raise UserError("this model was built with no held-out text (fraction 0); pass a text file")
        return text

    def stats(self) -> dict:
        """Size of the model: nodes, n-grams per order, vocabulary, training text."""
        ngrams = self.statistics["ngrams"]
        return {
            "order": self.order,
            "tokenizer": self.tokenizer.config(),
            "vocabulary": len(self.vocab),
            "ngrams_per_order": {str(k + 1): n for k, n in enumerate(ngrams)},
            "nodes": sum(ngrams) + 1,
            "documents": len(self.corpus.get("documents", [])),
            "heldout_fraction": self.corpus.get("heldout_fraction"),
            **self.info,
        }
