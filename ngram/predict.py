"""Predicting the next token, and explaining it: followers of the longest seen context,
with their counts and probabilities, and a sentence of the building text where it occurs.

`NgramModel.predict` and `NgramModel.example_sentence` are thin faces over these functions.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np

from corpora import UserError, corpus_from_record
from corpora.tokenizers import BOS, EOS, UNK

from . import trie
from .build import SPECIALS

if TYPE_CHECKING:
    from .model import NgramModel


#: Model tokens that are not words: never offered as a next word (their share is reported apart).
NOT_WORDS = (BOS, EOS, UNK)


@dataclass
class Candidate:
    """One possible next token."""

    token: str
    count: int  # times it followed the context of `order` (0 if it was never seen)
    probability: float  # under the chosen smoothing, given the whole context (a score for stupid backoff)
    order: int  # longest n-gram order it was seen at: its context there is the last order - 1 tokens


@dataclass
class Prediction:
    """What comes next after a context, and why.

    `candidates` are the `k` most probable next words under `smoothing`, most probable
    first, exactly: no word left out is more probable than the last one listed.
    ``<s>``, ``</s>`` and ``<unk>`` are never candidates; what ``</s>`` and ``<unk>``
    get is in `end_of_sentence` and `unknown_word`.
    """

    context: list[str]  # the context as the model sees it (vocabulary tokens, <s> first)
    matched_context: list[str]  # the longest suffix of it seen in the corpus with a follower (<s> included)
    matched_order: int  # n-gram order used: len(matched_context) + 1
    context_count: int  # how often the matched context occurred
    candidates: list[Candidate]
    smoothing: str
    notes: list[str] = field(default_factory=list)
    example: str | None = None  # a sentence of the building text that contains the matched context
    no_example: str | None = None  # why there is no example sentence, when one was asked for
    end_of_sentence: float = 0.0  # probability (score) of </s>: the sentence ends here
    unknown_word: float = 0.0  # probability (score) of <unk>: some word rarer than the vocabulary's

    def to_dict(self) -> dict:
        return asdict(self)


def predict(model: "NgramModel", context: str | Sequence[str], k: int, smoothing: str, example: bool) -> Prediction:
    """The `k` most probable next words, ranked by `smoothing`'s distribution over the vocabulary.

    The whole distribution is computed (a vector over the vocabulary) and the top `k`
    taken from it, so the ranking is exact: a word known only from a shorter context
    can outrank one that followed the longest context. The values listed are the
    method's own ``probs`` (identical to the vector for Kneser-Ney, add-k and MLE; stupid
    backoff's vector can differ from ``prob`` by one factor alpha^j for all tokens, which
    leaves the ranking as it is). Each candidate says at which order it was seen and how
    often. Stupid backoff ranks by its score.
    """
    tokens = model.context_tokens(context)
    notes = []
    words = [t for t in tokens if t != BOS]
    if words and all(t == UNK for t in words):
        notes.append("every context word is unknown to the model; predictions fall back to unigrams")
        tokens = []
    method = model.smoothing(smoothing)
    index = model.counts.index
    if hasattr(method, "top_k"):  # Kneser-Ney: the exact top k without the whole distribution
        best = [t for t, p in zip(*method.top_k(tokens, k, exclude=NOT_WORDS)) if p > 0]
    else:
        best = [model.counts.predictable[int(i)] for i in top_indices(words_only(method.distribution(tokens), index), k)]
    apart = [t for t in (EOS, UNK) if t in index]
    values = dict(zip(best + apart, method.probs(tokens, best + apart)))  # each value as `prob` gives it
    candidates = [candidate(model, tokens, token, values[token]) for token in best]
    matched, matched_count = matched_context(model, tokens)
    if len(matched) + 1 < min(model.order, len(tokens) + 1):
        notes.append(f"backed off: the longest context seen in the corpus is {len(matched)} token{'' if len(matched) == 1 else 's'}")
    if not candidates:
        notes.append(f"no word has a {smoothing} probability above 0 after this context")
    prediction = Prediction(
        context=tokens,
        matched_context=matched,
        matched_order=len(matched) + 1,
        context_count=matched_count,
        candidates=candidates,
        smoothing=method.name,  # the method used: "arpa" for a model imported from an ARPA file
        notes=notes,
        end_of_sentence=values.get(EOS, 0.0),
        unknown_word=values.get(UNK, 0.0),
    )
    if example:
        prediction.example, prediction.no_example = example_for(model, matched, candidates)
    return prediction


def words_only(p: np.ndarray, index: dict[str, int]) -> np.ndarray:
    """A copy of the distribution `p` with the tokens that are not words (``</s>``, ``<unk>``) at 0."""
    p = p.copy()
    for token in NOT_WORDS:
        if token in index:
            p[index[token]] = 0.0
    return p


def top_indices(p: np.ndarray, k: int) -> np.ndarray:
    """The indices of the `k` largest values of `p` above 0, largest first; ties in index order.

    Exact, and cheap on a large vocabulary: a partition finds the k-th largest value,
    and only the values at least that large are sorted.
    """
    positive = np.flatnonzero(p > 0)
    if len(positive) > k:
        kth = np.partition(p[positive], len(positive) - k)[len(positive) - k]
        positive = positive[p[positive] >= kth]
    return positive[np.argsort(-p[positive], kind="stable")][:k]


def candidate(model: "NgramModel", tokens: Sequence[str], token: str, probability: float) -> Candidate:
    """A next token with its probability, and the longest context it was seen after (count, order)."""
    count, order = seen_after(model, tokens, token)
    return Candidate(token, count, probability, order)


def suffixes(model: "NgramModel", tokens: Sequence[str]) -> Iterator[tuple[int, list[str]]]:
    """The contexts an n-gram model reads, longest first: (order n, the last n - 1 tokens)."""
    for n in range(min(model.order, len(tokens) + 1), 0, -1):
        yield n, list(tokens[len(tokens) - (n - 1):]) if n > 1 else []


def seen_after(model: "NgramModel", tokens: Sequence[str], token: str) -> tuple[int, int]:
    """How often `token` followed the longest suffix of `tokens` it was ever seen after, and
    the order of that n-gram ((0, 0) if it was never seen at all)."""
    for n, h in suffixes(model, tokens):
        node = model.counts.context_node(h)
        child = node.get(token) if node is not None else None
        if child is not None:
            return trie.count_of(child), n
    return 0, 0


def matched_context(model: "NgramModel", tokens: Sequence[str]) -> tuple[list[str], int]:
    """The longest suffix of `tokens` that was seen followed by something, and its count."""
    for _, h in suffixes(model, tokens):
        node = model.counts.context_node(h)
        if node is not None and len(node) > len(trie.RESERVED):  # seen, and something followed
            return h, trie.count_of(node)
    return [], 0


def followers(node: dict, k: int) -> list[tuple[str, int]]:
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


def describe_match(shown: str, prediction: Prediction) -> str:
    """The matched context explained: its order, how often it was seen, and what ``<s>`` means.

    `shown` is the matched context as the tokenizer displays it, ``<s>`` included, so a
    3-word context matched as a 5-gram reads "<s> I want to" and the count adds up.
    """
    count = prediction.context_count
    text = f"{prediction.matched_order}-gram, context seen {count:,} time{'' if count == 1 else 's'}"
    if prediction.smoothing == "arpa":  # an imported ARPA model lists n-grams but holds no counts
        text = f"{prediction.matched_order}-gram" + (", context listed in the ARPA model" if prediction.matched_context else "")
    if BOS in prediction.matched_context:
        text += "; <s> is the start of a sentence"
    return text


# ------------------------------------------------------------------ the "why"
def training_documents(corpus_record: dict) -> list[str]:
    """The building part of every document of a model's corpus (none if it is gone)."""
    try:
        corpus = corpus_from_record(corpus_record)
    except UserError:
        return []
    return list(corpus.train_texts())


def example_for(model: "NgramModel", matched: Sequence[str], candidates: Sequence[Candidate]) -> tuple[str | None, str | None]:
    """A sentence of the building text that contains the matched context (followed by the top
    candidate when there is one like that), or None and the reason why there is none.

    A context of no real word (nothing matched: unigrams; or only ``<s>`` and ``<unk>``)
    gets no sentence: any sentence would be unrelated to it. The top candidate is looked
    for after the context only if the counts say it followed the whole matched context:
    otherwise the search would almost surely fail, and only after reading every book (~0.5 s).
    """
    if not matched:
        return None, "no context was matched: the words are ranked by how often they occur (unigrams)"
    if not [t for t in matched if t not in NOT_WORDS]:
        return None, f"the matched context ({' '.join(matched)}) holds no word to look for in the text"
    if model.info.get("source") == "arpa":
        return None, "the model was imported from an ARPA file, which holds probabilities but no text to quote"
    followed = candidates and candidates[0].order == len(matched) + 1 and candidates[0].count > 0
    top = candidates[0].token if followed else None
    sentence = (example_sentence(model, matched, top) if top else None) or example_sentence(model, matched)
    if sentence:
        return sentence, None
    if not model.train_documents():
        return None, "the building text is not where the model was built from any more"
    return None, "no sentence of the building text could be matched to it"


def example_sentence(model: "NgramModel", context: Sequence[str], token: str | None = None) -> str | None:
    """One sentence from the building text where `context` (then `token`) occurs.

    A context that starts with ``<s>`` is looked for at the start of a sentence first,
    as the model saw it, then anywhere.
    """
    wanted = [t for t in context if t not in (BOS, EOS)]
    if token and token not in SPECIALS:
        wanted.append(token)
    if not wanted:
        return None
    pattern = model.tokenizer.phrase_pattern(wanted)
    if pattern is None:
        return None
    words = sorted(model.tokenizer.phrase_words(wanted), key=len, reverse=True)  # the longest is the rarest, mostly
    anywhere = None
    for text in model.train_documents():
        if not all(word in text for word in words):  # no match can be in this text: skip the slow regex
            continue
        for match in pattern.finditer(text):
            if not context or context[0] != BOS or at_sentence_start(text, match.start()):
                return sentence_around(text, match.start(), match.end())
            anywhere = anywhere or sentence_around(text, match.start(), match.end())
    return anywhere


#: What may lie between a sentence end (or a blank line) and the first word of the next sentence.
SENTENCE_START = re.compile(r"(?:[.!?][\"'”’)]*\s|\n\s*\n)[\s\"'“‘(_]*$")


def at_sentence_start(text: str, start: int) -> bool:
    """True if position `start` of `text` begins a sentence (the start of the text counts)."""
    before = text[max(0, start - 40): start]
    if start <= 40:
        before = "\n\n" + before
    return SENTENCE_START.search(before) is not None


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
