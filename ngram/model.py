"""The n-gram language model: build it from text, then predict, complete, generate and score.

    >>> from ngram import NgramModel
    >>> model = NgramModel.build("corpora/", order=5)
    >>> model.predict("It was a dark and stormy").candidates[0].token
    'night'

Everything reads the trie (``ngram.trie``) and a smoothing method (``ngram.smoothing``).
"""
from __future__ import annotations

import math
import re
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from tqdm import tqdm

from corpora import Corpus, UserError, corpus_from_record, load_corpus
from corpora.runtime import gc_paused
from corpora.tokenizers import BOS, EOS, UNK, Tokenizer, get_tokenizer

from . import counting, trie
from .smoothing import Counts, Smoothing, describe_fallback, get_smoothing, kn_discount_fallbacks

SPECIALS = (UNK, BOS, EOS)


@dataclass
class Candidate:
    """One possible next token."""

    token: str
    count: int  # times it followed the matched context (0 if it never did)
    probability: float  # under the chosen smoothing, given the whole context
    order: int  # n-gram order it was found at (length of matched context + 1)


@dataclass
class Prediction:
    """What comes next after a context, and why."""

    context: list[str]  # the context as the model sees it (vocabulary tokens)
    matched_context: list[str]  # the longest suffix of it seen in the corpus
    matched_order: int  # n-gram order used: len(matched_context) + 1
    context_count: int  # how often the matched context occurred
    candidates: list[Candidate]
    smoothing: str
    notes: list[str] = field(default_factory=list)
    example: str | None = None  # a corpus sentence where the matched context occurs

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Phrase:
    """A whole continuation of several tokens with its probability."""

    tokens: list[str]
    text: str
    probability: float


@dataclass
class Perplexity:
    """The result of scoring a text: everything needed to compare models fairly."""

    smoothing: str
    order: int
    tokens: int  # tokens scored (every token after <s>, including </s>)
    sentences: int
    oov: int  # tokens outside the vocabulary, scored as <unk>
    words: int  # whitespace-separated words of the text
    bytes: int  # UTF-8 bytes of the text
    nll: float  # total negative log-likelihood in nats over tokens with p > 0
    zero_prob: int  # tokens the model gave probability 0 (only MLE can)
    perplexity: float  # exp(nll / tokens) if no token had p = 0, else inf

    @property
    def perplexity_nonzero(self) -> float:
        """Perplexity over the tokens that had p > 0 (what MLE reports beside inf)."""
        scored = self.tokens - self.zero_prob
        return math.exp(self.nll / scored) if scored else math.inf

    def to_dict(self) -> dict:
        d = asdict(self)
        d["perplexity_nonzero"] = self.perplexity_nonzero
        d["oov_rate"] = self.oov / self.tokens if self.tokens else 0.0
        for key in ("perplexity", "perplexity_nonzero"):
            if math.isinf(d[key]):
                d[key] = None  # JSON has no infinity
        return d


class NgramModel:
    """An n-gram model: a trie of counts, a tokenizer and a vocabulary."""

    def __init__(
        self,
        root: dict,
        order: int,
        tokenizer: Tokenizer,
        vocab: list[str],
        corpus: dict | None = None,
        info: dict | None = None,
        statistics: dict | None = None,
    ) -> None:
        self.root = root
        self.order = order
        self.tokenizer = tokenizer
        self.vocab = vocab
        self.corpus = corpus or {}
        self.info = info or {}
        self.statistics = statistics or trie.count_statistics(root, order)
        self.counts = Counts(root, order, vocab, self.statistics)
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
    ) -> "NgramModel":
        """Build a model from a folder of .txt files (or a Corpus), held-out split excluded.

        `tokens` is ``words``, ``chars``, ``gpt2`` or ``bpe:DIR`` (see ``ngram.tokenize``).
        Tokens seen fewer than `min_count` times in the building text become ``<unk>``
        (default: 2, or 1 with BPE tokens).
        """
        tokenizer = get_tokenizer(tokens, lowercase)
        check_build_options(order, min_count)
        corpus = source if isinstance(source, Corpus) else load_corpus(source, heldout_fraction)
        sentences: list[list[str]] = []
        for text in tqdm(list(corpus.train_texts()), desc="tokenizing", unit="doc", disable=not progress, leave=False):
            sentences.extend(tokenizer.sentences(text))
        return cls.from_sentences(sentences, order, tokenizer, min_count, corpus.describe(), progress)

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
        check_build_options(order, min_count)
        started = time.perf_counter()
        frequencies = Counter(token for sentence in sentences for token in sentence)
        if not frequencies:
            raise UserError("the corpus has no tokens to build from")
        vocab = build_vocabulary(frequencies, min_count)
        ids = {token: i for i, token in enumerate(vocab)}
        unk, bos, eos = ids[UNK], ids[BOS], ids[EOS]
        encoded = [[bos, *[ids.get(t, unk) for t in sentence], eos] for sentence in sentences]
        with gc_paused():
            root, statistics = counting.build_trie(encoded, vocab, order, bos, progress=progress)
        info = {
            "build_seconds": round(time.perf_counter() - started, 2),
            "training_tokens": sum(frequencies.values()),
            "training_sentences": len(encoded),
            "min_count": min_count,
            "kn_discount_fallbacks": kn_discount_fallbacks(statistics, order),
        }
        for fallback in info["kn_discount_fallbacks"]:
            warnings.warn(describe_fallback(fallback), stacklevel=2)
        return cls(root, order, tokenizer, vocab, corpus, info, statistics)

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
            self._smoothings[key] = get_smoothing(name, self.counts, order, **options)
        return self._smoothings[key]

    # ------------------------------------------------------------- predicting
    def predict(
        self,
        context: str | Sequence[str],
        k: int = 10,
        smoothing: str = "kn",
        example: bool = False,
    ) -> Prediction:
        """The top-`k` next tokens: longest matching context first, backing off to shorter ones.

        Candidates are ranked by how often they followed the longest context that was
        seen in the corpus; if it had fewer than `k` followers, the next shorter context
        fills in. Each carries its real count and its probability under `smoothing`.
        """
        tokens = self.context_tokens(context)
        notes = []
        words = [t for t in tokens if t != BOS]
        if words and all(t == UNK for t in words):
            notes.append("every context word is unknown to the model; predictions fall back to unigrams")
            tokens = []
        method = self.smoothing(smoothing)
        found: list[tuple[str, int, int]] = []  # (token, count, order)
        seen: set[str] = set()
        matched: list[str] | None = None
        matched_count = 0
        for n in range(min(self.order, len(tokens) + 1), 0, -1):
            h = tokens[len(tokens) - (n - 1):] if n > 1 else []
            node = self.counts.context_node(h)
            if node is None or len(node) <= len(trie.RESERVED):  # unseen, or nothing ever followed
                continue
            if matched is None:
                matched, matched_count = h, trie.count_of(node)
            for token, count in self.followers(node, k + len(seen)):
                if token not in seen:
                    found.append((token, count, n))
                    seen.add(token)
                    if len(found) == k:
                        break
            if len(found) >= k:
                break
        probabilities = method.probs(tokens, [token for token, _, _ in found])
        candidates = [Candidate(t, c, p, n) for (t, c, n), p in zip(found, probabilities)]
        if matched is None:
            matched = []
        if len(matched) + 1 < min(self.order, len(tokens) + 1):
            notes.append(f"backed off: the longest context seen in the corpus is {len(matched)} tokens")
        prediction = Prediction(
            context=tokens,
            matched_context=matched,
            matched_order=len(matched) + 1,
            context_count=matched_count,
            candidates=candidates,
            smoothing=smoothing,
            notes=notes,
        )
        if example and candidates and matched:
            prediction.example = self.example_sentence(matched, candidates[0].token)
        return prediction

    def followers(self, node: dict, k: int) -> list[tuple[str, int]]:
        """The `k` most frequent tokens that followed a context node, with their counts.

        Children are stored most frequent first (see ``counting.most_frequent_first``),
        so these are the first `k` children.
        """
        top = []
        for token, child in trie.children(node):
            if token != BOS:
                top.append((token, trie.count_of(child)))
                if len(top) == k:
                    break
        return top

    def complete(
        self, context: str | Sequence[str], length: int = 3, k: int = 5, smoothing: str = "kn", beam: int = 20
    ) -> list[Phrase]:
        """Rank whole continuations of `length` tokens by their joint probability (beam search)."""
        if length < 1:
            raise UserError(f"phrase length must be at least 1, got {length}")
        start = self.context_tokens(context)
        method = self.smoothing(smoothing)
        beams: list[tuple[float, list[str]]] = [(0.0, [])]
        for _ in range(length):
            grown = []
            for logp, phrase in beams:
                if phrase and phrase[-1] == EOS:
                    grown.append((logp, phrase))
                    continue
                p = method.distribution(start + phrase)
                top = np.argsort(-p)[:beam]
                grown.extend((logp + math.log(p[i]), phrase + [self.counts.predictable[i]]) for i in top if p[i] > 0)
            beams = sorted(grown, key=lambda b: -b[0])[:beam]
        return [
            Phrase(phrase, self.tokenizer.detokenize([t for t in phrase if t != EOS]), math.exp(logp))
            for logp, phrase in beams[:k]
        ]

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
        """Continue `prompt` token by token: greedy, or sampling with temperature and top-k.

        Returns the new tokens. At a sentence end the model starts a new sentence
        (``</s>`` then a fresh ``<s>`` context) unless `stop_at_sentence_end`.
        """
        if temperature <= 0 and not greedy:
            raise UserError("temperature must be > 0 (use greedy for the most likely token)")
        rng = np.random.default_rng(seed)
        method = self.smoothing(smoothing)
        context = self.context_tokens(prompt)
        new: list[str] = []
        for _ in range(max_tokens):
            p = method.distribution(context)
            unk = self.counts.index[UNK]
            if p.sum() > p[unk]:  # never write "<unk>" unless nothing else is possible
                p[unk] = 0.0
            token = self.counts.predictable[pick_token(p, rng, greedy, temperature, top_k)]
            new.append(token)
            if token == EOS:
                if stop_at_sentence_end:
                    break
                context = [BOS]
            else:
                context = context[-(self.order - 1):] + [token] if self.order > 1 else [token]
        return new

    def render(self, tokens: Sequence[str]) -> str:
        """Generated tokens as text: sentence ends become line-friendly spaces."""
        pieces, sentence = [], []
        for token in tokens:
            if token == EOS:
                pieces.append(self.tokenizer.detokenize(sentence))
                sentence = []
            else:
                sentence.append(token)
        if sentence:
            pieces.append(self.tokenizer.detokenize(sentence))
        return self.tokenizer.joiner.join(p for p in pieces if p)

    # ---------------------------------------------------------------- scoring
    def _probability_method(self, smoothing: str = "kn", order: int | None = None, **options: float) -> Smoothing:
        """A smoothing method that gives true probabilities (stupid backoff is refused)."""
        method = self.smoothing(smoothing, order, **options)
        if not method.normalised:
            raise UserError(f"{smoothing} is a ranking score, not a probability: it has no perplexity")
        return method

    def token_logprobs(
        self, tokens: Sequence[str], smoothing: str = "kn", order: int | None = None, **options: float
    ) -> np.ndarray:
        """log p(token_i | the tokens before it), in nats, for each token of ONE tokenized sequence.

        `tokens` are the tokenizer's (``model.tokenizer.sentences(text)`` gives them);
        tokens outside the vocabulary are scored as ``<unk>``. The context starts with
        ``<s>``; the closing ``</s>`` is not scored, so entry i belongs to tokens[i]
        (with BPE tokens, to the transformer's token i of the same text). A token of
        probability 0 (only MLE gives those) gets -inf.
        """
        if isinstance(tokens, str):
            raise UserError("token_logprobs takes a list of tokens, not a text (see model.tokenizer.sentences)")
        method = self._probability_method(smoothing, order, **options)
        return sequence_logprobs(method, [BOS, *self.to_vocab(tokens)])

    def score(
        self, text: str, smoothing: str = "kn", order: int | None = None, progress: bool = False, **options: float
    ) -> Perplexity:
        """Perplexity of `text`: every sentence wrapped in ``<s> … </s>``, unknown words as ``<unk>``.

        With BPE tokens the whole text is one sequence. Per-word and per-byte figures
        use the whitespace words and the UTF-8 bytes of `text`, whatever the tokens.
        """
        method = self._probability_method(smoothing, order, **options)
        sentences = list(self.tokenizer.sentences(text))
        if not sentences:
            raise UserError("the text has no tokens to score")
        nll, tokens, oov, zeros = 0.0, 0, 0, 0
        for sentence in tqdm(sentences, desc="scoring", unit="sent", disable=not progress, leave=False):
            mapped = [BOS, *self.to_vocab(sentence), EOS]
            oov += sum(1 for a, b in zip(sentence, mapped[1:]) if b == UNK and a != UNK)
            for logp in sequence_logprobs(method, mapped).tolist():
                if logp == -math.inf:
                    zeros += 1
                else:
                    nll -= logp
                tokens += 1
        return Perplexity(
            smoothing=smoothing,
            order=method.order,
            tokens=tokens,
            sentences=len(sentences),
            oov=oov,
            words=len(text.split()),
            bytes=len(text.encode("utf-8")),
            nll=nll,
            zero_prob=zeros,
            perplexity=math.exp(nll / tokens) if zeros == 0 else math.inf,
        )

    def heldout_text(self) -> str:
        """The held-out part of the corpus this model was built from."""
        corpus = corpus_from_record(self.corpus)
        text = corpus.heldout_text()
        if not text.strip():
            raise UserError("this model was built with no held-out text (fraction 0); pass a text file")
        return text

    # ------------------------------------------------------------ explaining
    def example_sentence(self, context: Sequence[str], token: str | None = None) -> str | None:
        """One sentence from the building text where `context` (then `token`) occurs."""
        wanted = [t for t in context if t not in (BOS, EOS)]
        if token and token not in SPECIALS:
            wanted.append(token)
        if not wanted:
            return None
        if self._train_documents is None:
            try:
                corpus = corpus_from_record(self.corpus)
            except UserError:
                self._train_documents = []
            else:
                self._train_documents = list(corpus.train_texts())
        pattern = self.tokenizer.phrase_pattern(wanted)
        if pattern is None:
            return None
        for text in self._train_documents:
            match = pattern.search(text)
            if match:
                return sentence_around(text, match.start(), match.end())
        return None

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


def check_build_options(order: int, min_count: int | None) -> None:
    """Refuse impossible build settings before any work is done (min_count None: the default)."""
    if order < 1:
        raise UserError(f"order must be at least 1, got {order}")
    if min_count is not None and min_count < 1:
        raise UserError(f"min-count must be at least 1, got {min_count}")


def build_vocabulary(frequencies: Counter, min_count: int) -> list[str]:
    """Special tokens, then every token seen at least `min_count` times, most frequent first."""
    clashes = [s for s in SPECIALS if s in frequencies]
    if clashes:
        raise UserError(f"the tokenizer produced a reserved token {clashes[0]!r}")
    kept = sorted((t for t, c in frequencies.items() if c >= min_count), key=lambda t: (-frequencies[t], t))
    return [*SPECIALS, *kept]


def sequence_logprobs(method: Smoothing, mapped: Sequence[str]) -> np.ndarray:
    """log p(mapped[i] | mapped[:i]) in nats for i = 1 … len-1 (-inf where p = 0).

    `mapped` is one sequence already mapped to the vocabulary, starting with ``<s>``;
    each token sees at most the `method.order` - 1 tokens before it.
    """
    n = method.order
    logprobs = np.empty(max(0, len(mapped) - 1))
    for i in range(1, len(mapped)):
        p = method.prob(mapped[max(0, i - n + 1): i], mapped[i])
        logprobs[i - 1] = math.log(p) if p > 0 else -math.inf
    return logprobs


def pick_token(p: np.ndarray, rng: np.random.Generator, greedy: bool, temperature: float, top_k: int | None) -> int:
    """Choose an index from probabilities `p`: the most likely, or a sample."""
    if greedy:
        return int(np.argmax(p))
    logits = np.log(np.maximum(p, 1e-300)) / temperature
    if top_k:
        cutoff = np.partition(logits, -top_k)[-top_k] if top_k < len(logits) else -np.inf
        logits = np.where(logits >= cutoff, logits, -np.inf)
    weights = np.exp(logits - logits.max())
    weights[p <= 0] = 0.0
    return int(rng.choice(len(p), p=weights / weights.sum()))


def sentence_around(text: str, start: int, end: int, limit: int = 160) -> str:
    """The sentence of `text` around `start:end`, cut to about `limit` characters each side."""
    before = text[max(0, start - limit): start]
    enders = [m.end() for m in re.finditer(r"[.!?][\"'”’)]*\s|\n\s*\n", before)]
    left = start - len(before) + (enders[-1] if enders else 0)
    tail = re.search(r"[.!?][\"'”’)]*(?=\s)|\n\s*\n", text[end: end + limit])
    right = end + (tail.end() if tail else min(limit, len(text) - end))
    sentence = " ".join(text[left:right].replace("_", "").split())
    cut_left = not enders and left > 0
    cut_right = tail is None and right < len(text)
    return ("… " if cut_left else "") + sentence + (" …" if cut_right else "")
