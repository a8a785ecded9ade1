"""`bench cloze`: long-range last-word prediction, with lm-evaluation-harness's `lambada_openai` definitions.

A passage is a text whose last word can be guessed only from the whole passage (LAMBADA,
Paperno et al. 2016). The definitions, as the harness states them:

- context = every word but the last, target = " " + the last word (the passage split at
  its last white space; LAMBADA separates words by single spaces, so this is the
  harness's `text.split(" ")`);
- the transformer's `acc`: greedy decoding reproduces every target token, i.e. each BPE
  token of the target is the argmax given the context and the target's earlier tokens.
  One causal pass over context + target gives all of them. The tokens are those of
  the whole passage, cut where the context's own tokens end (the harness's
  `_encode_pair`); no <|endoftext|> in front (the harness adds none for GPT-2). A
  passage longer than the window keeps its last n_ctx + 1 tokens (left-truncated,
  counted and said);
- `perplexity` = exp(−mean over passages of the target's log-likelihood): a per-word
  perplexity of the target words (`Score.per_word` with one word per passage);
- the n-gram: right when the target is its top-1 next word (Kneser-Ney, its own
  context: <s> and the passage's last sentence before the target; `<unk>` and `</s>`
  are never a guess), every token of the target in turn ("well." is two tokens).
  Its log-likelihood is open-vocabulary as in `bench perplexity`: an unknown target
  costs p(<unk> | context) times p(spelling) under the character model. "Never seen
  after its context": the target's first token never followed the full context the
  n-gram can use (n − 1 tokens, fewer at a sentence start) in the training text.

Input: a JSONL file of {"text": ...} passages (the LAMBADA release format), a Hugging Face
dataset, or by default a cloze set built from the held-out books by `build_cloze_set`.
A target with no letter or digit (a punctuation mark) is skipped and counted; a line
that is not JSON, has no "text", or holds an empty or one-word passage is refused
with its line number.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from corpora import UserError
from corpora.tokenizers import BOS, EOS, UNK
from corpora.tokenizers.words import split_sentences
from corpora.units import Score, TextUnits
from ngram import NgramModel
from ngram.predict import seen_after, top_indices, words_only
from transformer.score import LOGIT_ROWS, logprob_of

from .models import TransformerChoice
from .tables import render_table

DEFAULT_PASSAGES = 500
LAST_WORD = re.compile(r"^(.*\S)\s+(\S+)$", re.S)


# ------------------------------------------------------------------ passages


@dataclass(frozen=True)
class Passage:
    """One cloze passage: the context (all but the last word) and the target (" " + last word)."""

    context: str
    target: str
    line: int = 0  # where it came from (1-based line of a JSONL file; 0: built or given directly)

    @property
    def word(self) -> str:
        return self.target[1:]

    @property
    def is_punctuation(self) -> bool:
        """A target with no letter or digit (a quote mark, a dash) is not a word to guess."""
        return not any(c.isalnum() for c in self.word)


def split_passage(text: str, line: int = 0) -> Passage:
    """The passage cut before its last word, as the harness cuts LAMBADA.

    Example: "He saw the cat. The cat" -> context "He saw the cat. The", target " cat".
    """
    where = f"line {line}: " if line else ""
    if not isinstance(text, str) or not text.strip():
        raise UserError(f"{where}the passage is empty")
    match = LAST_WORD.match(text.strip())
    if match is None:
        raise UserError(f"{where}the passage has only one word ({text.strip()[:40]!r}); a cloze passage needs a context")
    return Passage(match.group(1), " " + match.group(2), line)


def read_jsonl(path: str | Path) -> list[Passage]:
    """The passages of a JSONL file, one {"text": ...} object a line (blank lines skipped)."""
    from corpora.documents import read_text_argument

    passages = []
    for number, line in enumerate(read_text_argument(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as err:
            raise UserError(f"{path}, line {number}: not valid JSON ({err.msg})") from None
        if not isinstance(record, dict) or "text" not in record:
            raise UserError(f'{path}, line {number}: no "text" field (each line must be {{"text": "..."}})')
        if not isinstance(record["text"], str):
            raise UserError(f'{path}, line {number}: "text" must be a string')
        try:
            passages.append(split_passage(record["text"], number))
        except UserError as err:
            raise UserError(f"{path}, {err}") from None
    if not passages:
        raise UserError(f'{path} holds no passages (one {{"text": "..."}} object a line)')
    return passages


def read_dataset(name: str, split: str = "test", column: str = "text") -> list[Passage]:
    """The passages of a Hugging Face dataset (online), e.g. EleutherAI/lambada_openai."""
    try:
        import datasets

        rows = datasets.load_dataset(name, split=split)
        texts = [row[column] for row in rows]
    except KeyError as err:
        raise UserError(f"dataset {name} has no column {column!r}") from err
    except Exception as err:  # offline, no such dataset, ...: one line
        raise UserError(f"could not read dataset {name}: {str(err).splitlines()[0] if str(err) else type(err).__name__}") from err
    if not texts:
        raise UserError(f"dataset {name} ({split}) holds no passages")
    return [split_passage(t, i) for i, t in enumerate(texts, start=1)]


# ------------------------------------------------- a cloze set from the held-out books

SENTENCES = 5  # sentences per passage
MIN_WORDS, MAX_WORDS = 30, 200  # words per passage
NOT_IN_LAST = 5  # the target must not be among the passage's last 5 words before it
TRAILING = "\"'”’)]}.,;:!?-—_"
PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
CLOZE_RULE = (
    f"passages of {SENTENCES} consecutive sentences of one held-out document ({MIN_WORDS}-{MAX_WORDS} words), "
    "as written (line breaks kept), ending at a sentence end with its final punctuation and closing quotes removed; "
    "kept when the last word follows a space (not a line break) and (letters only, case folded) occurs earlier in "
    f"the passage but not among the {NOT_IN_LAST} words before it; a kept passage's sentences are not reused; if "
    "more are found than asked for, an evenly spaced selection"
)


def bare(word: str) -> str:
    """A word without the punctuation around it, case folded: how the rule compares words."""
    return word.strip(TRAILING + "“‘(").lower()


def cloze_passage(text: str) -> str | None:
    """The text (sentences as written) as a passage if it meets the rule (`CLOZE_RULE`), else None.

    The layout is kept because the transformer learned it: a model trained on hard-wrapped
    books expects a line break after a line's worth of words, and would be asked for the
    last word where it expects one if the passage were joined into one line.
    """
    text = text.rstrip(TRAILING + " \n\t")
    match = LAST_WORD.match(text)
    if match is None or text[len(match.group(1)):-len(match.group(2))] != " ":
        return None  # the last word must follow one space, as the target " word" says
    words = text.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return None
    target = bare(words[-1])
    if not target.isalpha():
        return None
    earlier = [bare(w) for w in words[:-1]]
    if target not in earlier[:-NOT_IN_LAST] or target in earlier[-NOT_IN_LAST:]:
        return None
    return text


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every sentence of a document as written: its blank-line separated
    paragraphs, cut by the word tokenizer's own rule (`split_sentences`), line breaks kept."""
    spans = []
    begin = 0
    for end in [m.start() for m in PARAGRAPH_BREAK.finditer(text)] + [len(text)]:
        block = text[begin:end]
        cursor = 0
        for sentence in split_sentences(block.strip()):
            at = block.find(sentence, cursor)
            spans.append((begin + at, begin + at + len(sentence)))
            cursor = at + len(sentence)
        match = PARAGRAPH_BREAK.search(text, end)
        begin = match.end() if match and match.start() == end else end
    return [(a, b) for a, b in spans if text[a:b].strip()]


def document_passages(text: str) -> list[str]:
    """Every passage of one document that meets the rule, left to right, sentences not reused."""
    text = text.replace("\x00", "")
    spans = sentence_spans(text)
    found, i = [], 0
    while i + SENTENCES <= len(spans):
        passage = cloze_passage(text[spans[i][0]:spans[i + SENTENCES - 1][1]])
        if passage is None:
            i += 1
        else:
            found.append(passage)
            i += SENTENCES
    return found


def build_cloze_set(documents: Iterable[str], limit: int = DEFAULT_PASSAGES) -> list[str]:
    """Passages from the documents by `CLOZE_RULE`; at most `limit`, evenly spaced over all found."""
    found = [p for doc in documents for p in document_passages(doc)]
    if not found:
        raise UserError("the held-out text holds no passage that meets the cloze rule; pass a JSONL file")
    if len(found) > limit:
        found = [found[i] for i in np.linspace(0, len(found) - 1, limit).round().astype(int)]
    return found


def heldout_documents(model: NgramModel) -> list[str]:
    """The held-out tail of every document of the n-gram's corpus (never used to build it)."""
    from corpora import corpus_from_record

    return [t for t in corpus_from_record(model.corpus).heldout_texts() if t.strip()]


def write_jsonl(texts: Sequence[str], path: str | Path) -> Path:
    """The passages as JSONL ({"text": ...} a line), written atomically."""
    from corpora.common import atomic_write

    with atomic_write(path, "w") as handle:
        for text in texts:
            handle.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
    return Path(path)


# -------------------------------------------------------------- the transformer


@dataclass(frozen=True)
class Encoded:
    """A passage's tokens as the transformer reads them: ids[-n_target:] are the target."""

    ids: np.ndarray  # context + target tokens, at most n_ctx + 1 (the last one is never fed)
    n_target: int
    truncated: bool

    @property
    def length(self) -> int:
        """Positions fed to the model (all but the last id)."""
        return len(self.ids) - 1


def encode_passage(tokenizer, passage: Passage, n_ctx: int) -> Encoded:
    """The whole passage's tokens, cut where the context's own tokens end (the harness's
    `_encode_pair`), and left-truncated to n_ctx + 1 tokens."""
    whole = tokenizer.encode(passage.context + passage.target)
    n_context = len(tokenizer.encode(passage.context))
    n_target = len(whole) - n_context
    if n_target < 1:
        raise UserError(f"the target {passage.target!r} has no tokens of its own")
    if n_target > n_ctx:
        raise UserError(f"the target {passage.target[:40]!r} is longer than the model's window of {n_ctx} tokens")
    kept = whole[-(n_ctx + 1):]
    return Encoded(np.asarray(kept, dtype=np.int64), n_target, len(kept) < len(whole))


def greedy_and_logprob(model, h: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row of hidden states: the argmax token, and the target's log-probability."""
    best = np.empty(len(targets), dtype=np.int64)
    logp = np.empty(len(targets))
    for lo in range(0, len(targets), LOGIT_ROWS):
        logits = model.unembed(h[lo:lo + LOGIT_ROWS])
        best[lo:lo + LOGIT_ROWS] = logits.argmax(axis=-1)
        logp[lo:lo + LOGIT_ROWS] = logprob_of(logits, targets[lo:lo + LOGIT_ROWS])  # consumes the logits
    return best, logp


def score_one(model, encoded: Encoded) -> tuple[bool, float, int]:
    """The reference: one passage, one pass. (greedy reproduces the target, its log-likelihood,
    the argmax in place of the target's first token)."""
    h, _ = model.hidden(encoded.ids[:-1])
    n = encoded.n_target
    best, logp = greedy_and_logprob(model, h[-n:], encoded.ids[-n:])
    return bool((best == encoded.ids[-n:]).all()), float(logp.sum()), int(best[0])


def score_batched(
    model, passages: Sequence[Encoded], progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`score_one` for every passage, passages of similar length in one padded pass
    (right padding, never seen by a causal model); only the target rows are unembedded."""
    from tqdm import tqdm

    from .context import batches_by_length

    correct = np.zeros(len(passages), dtype=bool)
    loglik = np.zeros(len(passages))
    first_guess = np.zeros(len(passages), dtype=np.int64)
    index = {id(p): i for i, p in enumerate(passages)}
    with tqdm(total=len(passages), disable=not progress, unit="passage", desc="transformer", leave=False) as bar:
        for batch in batches_by_length(list(passages), model.config):
            width = max(p.length for p in batch)
            inputs = np.zeros((len(batch), width), dtype=np.int64)
            for row, p in enumerate(batch):
                inputs[row, :p.length] = p.ids[:-1]
            h, _ = model.hidden(inputs)
            rows = np.concatenate([h[row, p.length - p.n_target:p.length] for row, p in enumerate(batch)])
            targets = np.concatenate([p.ids[-p.n_target:] for p in batch])
            best, logp = greedy_and_logprob(model, rows, targets)
            at = 0
            for p in batch:
                i = index[id(p)]
                correct[i] = (best[at:at + p.n_target] == targets[at:at + p.n_target]).all()
                loglik[i] = logp[at:at + p.n_target].sum()
                first_guess[i] = best[at]
                at += p.n_target
            bar.update(len(batch))
    return correct, loglik, first_guess


# ------------------------------------------------------------------ the n-gram


@dataclass(frozen=True)
class NgramTarget:
    """A target as the n-gram reads it: its context (<s> and the last sentence so far) and tokens."""

    context: tuple[str, ...]  # vocabulary tokens, <s> first
    tokens: tuple[str, ...]  # the target's tokens as written (case folded if the model is)


def ngram_target(model: NgramModel, passage: Passage) -> NgramTarget:
    """The passage's last sentence, cut before the target's own tokens."""
    tokenizer = model.tokenizer
    word = passage.word.lower() if tokenizer.lowercase else passage.word
    tokens = tokenizer.tokens(word)
    sentences = list(tokenizer.sentences(passage.context + passage.target))
    last = sentences[-1] if sentences else []
    if not tokens or last[len(last) - len(tokens):] != tokens:
        raise UserError(f"line {passage.line}: the n-gram's tokenizer does not end the passage with {passage.word!r}")
    return NgramTarget((BOS, *model.to_vocab(last[:len(last) - len(tokens)])), tuple(tokens))


def ngram_greedy(method, model: NgramModel, target: NgramTarget) -> bool:
    """Is every target token the n-gram's top-1 next word in turn (`KneserNey.top_k`)?"""
    context = list(target.context)
    for token in target.tokens:
        if token not in model.counts.index:
            return False  # an unknown word is never a guess (<unk> is not a word)
        best, _ = method.top_k(context, 1, exclude=(EOS, UNK))
        if not best or best[0] != token:
            return False
        context.append(token)
    return True


def ngram_greedy_reference(method, model: NgramModel, target: NgramTarget) -> bool:
    """`ngram_greedy` the slow way: the argmax of the whole distribution over words."""
    context = list(target.context)
    index = model.counts.index
    for token in target.tokens:
        if token not in index:
            return False
        best = top_indices(words_only(method.distribution(context), index), 1)
        if not len(best) or model.counts.predictable[int(best[0])] != token:
            return False
        context.append(token)
    return True


def ngram_logliks(method, model: NgramModel, targets: Sequence[NgramTarget]) -> np.ndarray:
    """log p(target | context) of every target, all tokens of all targets in one `probs_many`
    call (closed vocabulary: an unknown token is p(<unk>); the spelling is added by the caller)."""
    width = method.order - 1
    ids = model.counts.trie.token_id
    rows, wanted, owner = [], [], []
    for i, t in enumerate(targets):
        mapped = [*t.context, *model.to_vocab(t.tokens)]
        for j in range(len(t.context), len(mapped)):
            history = [ids[x] for x in mapped[max(0, j - width):j]]
            rows.append([-1] * (width - len(history)) + history)
            wanted.append(ids[mapped[j]])
            owner.append(i)
    p = method.probs_many(np.asarray(rows, dtype=np.int64).reshape(len(rows), width), np.asarray(wanted, dtype=np.int64))
    return np.bincount(np.asarray(owner, dtype=np.int64), weights=np.log(p), minlength=len(targets))


def ngram_logliks_reference(method, model: NgramModel, targets: Sequence[NgramTarget]) -> np.ndarray:
    """`ngram_logliks` one token at a time with `prob`."""
    out = []
    for t in targets:
        context, total = list(t.context), 0.0
        for token in model.to_vocab(t.tokens):
            total += math.log(method.prob(context, token))
            context.append(token)
        out.append(total)
    return np.asarray(out)


def never_seen_after_context(model: NgramModel, target: NgramTarget) -> bool:
    """The target's first token never followed the full context the n-gram can use."""
    usable = min(model.order, len(target.context) + 1)
    _, order = seen_after(model, list(target.context), target.tokens[0])
    return order < usable


# ------------------------------------------------------------------ the report


@dataclass
class ModelCloze:
    """One model on the cloze set: how many targets it got, and its score on the target words."""

    name: str
    description: str
    correct: int
    score: Score  # units.words = passages scored: per_word is the harness's `perplexity`
    notes: list[str] = field(default_factory=list)
    counts: dict = field(default_factory=dict)  # truncated, never_seen, unknown

    @property
    def passages(self) -> int:
        return self.score.units.words

    @property
    def accuracy(self) -> float:
        return self.correct / self.passages if self.passages else math.nan

    def to_dict(self) -> dict:
        return {"model": self.name, "description": self.description, "passages": self.passages,
                "correct": self.correct, "accuracy": self.accuracy, "perplexity": self.score.per_word,
                **self.counts, "notes": self.notes, "score": self.score.to_dict()}


@dataclass(frozen=True)
class Published:
    """A figure from the literature: printed beside ours, never measured here."""

    model: str
    rule: str
    accuracy: float | None
    perplexity: float | None
    source: str

    def to_dict(self) -> dict:
        return {**self.__dict__, "published_not_measured": True}


PUBLISHED = [
    Published("GPT-2 small (117M)", "LAMBADA, last BPE token", 0.4599, 35.13,
              "Radford et al. 2019, Language Models are Unsupervised Multitask Learners, Table 3"),
    Published("GPT-2 small (117M)", "lambada_openai, whole word (the rule used here)", 0.3256, 40.06,
              "lm-evaluation-harness, hf pretrained=gpt2 (EleutherAI/lm-evaluation-harness issue #2159)"),
    Published("n-gram baseline", "LAMBADA test", 0.001, None, "Paperno et al. 2016, The LAMBADA dataset, Table 2"),
]


@dataclass
class ClozeReport:
    source: str
    passages_read: int
    skipped_punctuation: int
    models: list[ModelCloze]
    rule: str | None = None  # how the set was built (None: given by the user)
    published: list[Published] = field(default_factory=lambda: list(PUBLISHED))

    def to_dict(self) -> dict:
        return {
            "source": self.source, "passages_read": self.passages_read,
            "skipped_punctuation_targets": self.skipped_punctuation, "rule": self.rule,
            "definitions": "lm-evaluation-harness lambada_openai: context = all but the last word, target = ' ' + last "
                           "word; acc = greedy decoding reproduces every target token; perplexity = "
                           "exp(-mean target log-likelihood)",
            "models": [m.to_dict() for m in self.models],
            "published": [p.to_dict() for p in self.published],
        }


def target_units(passages: Sequence[Passage]) -> TextUnits:
    """One word per passage (the target), and the targets' bytes and characters."""
    targets = "".join(p.target for p in passages)
    return TextUnits(words=len(passages), bytes=len(targets.encode("utf-8")), chars=len(targets))


def transformer_cloze(choice: TransformerChoice, passages: Sequence[Passage], progress: bool = False) -> ModelCloze:
    """The transformer's accuracy and target log-likelihood on every passage."""
    n_ctx = choice.model.config.n_ctx
    encoded = [encode_passage(choice.tokenizer, p, n_ctx) for p in passages]
    correct, loglik, first_guess = score_batched(choice.model, encoded, progress)
    truncated = sum(e.truncated for e in encoded)
    white = white_space_guesses(choice.tokenizer, first_guess)
    score = Score(nll=float(-loglik.sum()), tokens=sum(e.n_target for e in encoded), units=target_units(passages),
                  token_kind=f"BPE ({choice.folder.name})")
    notes = [f"{truncated:,} passage{'s' if truncated != 1 else ''} longer than its {n_ctx}-token window, "
             "left-truncated"] if truncated else []
    if white:
        notes.append(f"its first guess was white space (a line break?) in {white:,} passages")
    return ModelCloze("transformer", choice.description, int(correct.sum()), score, notes,
                      {"truncated": truncated, "white_space_first_guesses": white})


def white_space_guesses(tokenizer, guesses: np.ndarray) -> int:
    """How many first guesses were only white space: a model trained on hard-wrapped lines
    expects a line break after a line's worth of words, where the passage has a space."""
    return sum(not tokenizer.token_bytes(int(g)).strip() for g in guesses)


def ngram_cloze(model: NgramModel, passages: Sequence[Passage], spelling=None, progress: bool = False) -> ModelCloze:
    """The n-gram's (Kneser-Ney, highest order) accuracy and open-vocabulary target log-likelihood."""
    from tqdm import tqdm

    from .perplexity import SpellingModel

    method = model.smoothing("kn")
    targets = [ngram_target(model, p) for p in passages]
    correct = sum(ngram_greedy(method, model, t) for t in tqdm(targets, disable=not progress, unit="passage",
                                                                desc="n-gram", leave=False))
    loglik = ngram_logliks(method, model, targets)
    known = set(model.vocab)
    unknown = [tok for t in targets for tok in t.tokens if tok not in known]
    if unknown and spelling is None:
        spelling = SpellingModel.for_model(model)
    spelled = sum(spelling.nll(tok) for tok in unknown) if unknown else 0.0
    never = sum(never_seen_after_context(model, t) for t in targets)
    unknown_targets = sum(any(tok not in known for tok in t.tokens) for t in targets)
    score = Score(nll=float(-loglik.sum()) + spelled, tokens=sum(len(t.tokens) for t in targets),
                  units=target_units(passages), token_kind=model.tokenizer.describe(), oov=len(unknown))
    notes = [f"{never:,} targets never seen after their context ({unknown_targets:,} of them unknown words)"]
    return ModelCloze("n-gram", f"{model.order}-gram over {model.tokenizer.name}, Kneser-Ney (open vocabulary)",
                      correct, score, notes, {"never_seen_after_context": never, "unknown_targets": unknown_targets})


def cloze(
    ngram: NgramModel, choice: TransformerChoice, passages: Sequence[Passage], source: str, rule: str | None = None,
    progress: bool = False,
) -> ClozeReport:
    """Both models on the passages (punctuation targets skipped and counted)."""
    kept = [p for p in passages if not p.is_punctuation]
    if not kept:
        raise UserError(f"{source}: every target is a punctuation mark; nothing to score")
    models = [ngram_cloze(ngram, kept, progress=progress), transformer_cloze(choice, kept, progress)]
    return ClozeReport(source, len(passages), len(passages) - len(kept), models, rule)


def render_cloze(report: ClozeReport, markdown: bool = False) -> str:
    """Our two rows, then the published rows, labelled as such."""
    def pct(x: float | None) -> str:
        return "" if x is None or x != x else f"{x:.2%}"

    def num(x: float | None) -> str:
        return "" if x is None or x != x else ("inf" if math.isinf(x) else f"{x:,.2f}")

    rows = [[m.name, m.description, f"{m.passages:,}", pct(m.accuracy), num(m.score.per_word), "; ".join(m.notes)]
            for m in report.models]
    rows += [[p.model, p.rule, "", pct(p.accuracy), num(p.perplexity), f"published, not measured: {p.source}"]
             for p in report.published]
    header = ["model", "setting", "passages", "accuracy", "target-word perplexity", "notes"]
    lines = [
        f"Cloze (last word of the passage) on {report.source}: {report.passages_read:,} passages"
        + (f", {report.skipped_punctuation:,} skipped (the last word is a punctuation mark)" if report.skipped_punctuation else ""),
    ]
    if report.rule:
        lines.append(f"Built from the held-out books: {report.rule}.")
    lines += [
        "",
        render_table(header, rows, right={2, 3, 4}, markdown=markdown),
        "",
        "Note: lm-evaluation-harness lambada_openai definitions: context = all but the last word, target = ' ' + "
        "last word; accuracy = greedy decoding gives every target token; perplexity = exp(-mean target log-likelihood).",
        "Note: the published rows are GPT-2 small and an n-gram on LAMBADA (5,153 test passages), not on this text.",
    ]
    return "\n".join(lines)
