"""ARPA files: the standard text format of back-off n-gram models (KenLM, SRILM, Kaldi read it).

An ARPA file lists every n-gram with log10 p(w | h) and, for n-grams that are also
contexts, a log10 back-off weight. A reader scores p(w | h) as

    p(w | h) = p_ARPA(h w)                      if "h w" is listed
             = bo(h) · p(w | h without its first token)    otherwise (bo = 1 if h is not listed)

Interpolated Kneser-Ney has exactly this shape: for a seen "h w" the listed value is the
whole interpolated probability, α(h w) + γ(h)·p(w | h'), and for an unseen w the model
gives γ(h)·p(w | h') — so the back-off weight of h is γ(h). `kneser_ney_tables` computes
both for every n-gram of the trie at once, one order after another: each n-gram's lower
order probability is that of its suffix ("b c" for "a b c"), found by `suffix_links`.

Reading: `ArpaReader` streams a file (plain or gzip) in checked batches, naming the line
of any fault; `read_arpa` collects it into dicts (small files, tests), and
`ngram.backoff.import_arpa` turns it into a model (``ngram build --from-arpa``).
"""
from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import numpy as np

from corpora.common import UserError, atomic_write
from corpora.tokenizers import BOS

from .arrays import ArrayTrie, first_tokens, parents_of
from .smoothing import KneserNey

NO_PROBABILITY = -99.0  # what ARPA writes for <s>, which is never predicted


def suffix_links(trie: ArrayTrie) -> list[np.ndarray | None]:
    """For every n-gram of order k >= 2, the index in order k-1 of its suffix: "b c" for "a b c".

    The suffix always exists (every occurrence of "a b c" is one of "b c"). Order 2 finds
    it among the unigrams by id; order k finds it as the child, with the same last id, of
    the suffix of its own context — a binary search over keys (parent, id), which the
    sorted arrays already are in order.
    """
    vocab = len(trie.vocab)
    links: list[np.ndarray | None] = [None]
    for k in range(2, trie.order + 1):
        ids = trie.levels[k - 1].ids.astype(np.int64)
        if k == 2:
            links.append(np.searchsorted(trie.levels[0].ids, ids))
            continue
        lower_keys = parents_of(trie, k - 1).astype(np.int64) * vocab + trie.levels[k - 2].ids
        wanted = links[k - 2][parents_of(trie, k)].astype(np.int64) * vocab + ids
        links.append(np.searchsorted(lower_keys, wanted))
    return links


def kneser_ney_tables(kn: KneserNey) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Every n-gram's interpolated probability, and every context's γ, for orders 1..kn.order.

    probs[k-1][i] = p(w | h) for the i-th n-gram of order k (h its first k-1 tokens);
    probs[0] covers the whole vocabulary by id (a word never counted still has p_1).
    gammas[k-1][i] = γ of the i-th n-gram of order k as a context (1.0 where it has no
    counted continuations: it then hands its whole mass down).
    """
    trie, order, bos_id = kn.counts.trie, kn.order, kn.counts.bos_id
    links = suffix_links(trie)
    firsts = first_tokens(trie)
    probs = [kn.unigram_by_id().copy()]
    gammas: list[np.ndarray] = []
    for k in range(2, order + 1):
        parent = parents_of(trie, k)
        n_contexts = len(trie.levels[k - 2].ids)
        raw = (k == order) | (firsts[k - 2] == bos_id)  # by context
        level = trie.levels[k - 1]
        counts = np.where(raw[parent], level.counts, level.continuation if level.continuation is not None else level.counts)
        counts = counts.astype(np.float64)
        total = np.bincount(parent, weights=counts, minlength=n_contexts)
        d = np.array(kn.discounts[k])
        n_r = [np.bincount(parent, weights=(counts == r) if r < 3 else (counts >= 3), minlength=n_contexts)
               for r in (1, 2, 3)]
        seen = total > 0
        gamma = np.ones(n_contexts)
        gamma[seen] = (d[0] * n_r[0][seen] + d[1] * n_r[1][seen] + d[2] * n_r[2][seen]) / total[seen]
        discount = np.where(counts > 0, d[np.clip(counts, 1, 3).astype(np.int64) - 1], 0.0)
        alpha = np.zeros(len(counts))
        safe_total = np.where(total > 0, total, 1.0)[parent]
        alpha = np.where(counts > 0, (counts - discount) / safe_total, 0.0)
        lower = probs[0][level.ids] if k == 2 else probs[k - 2][links[k - 1]]
        probs.append(alpha + gamma[parent] * lower)
        gammas.append(gamma)
    gammas.append(np.ones(len(trie.levels[order - 1].ids)))  # the top order is nobody's context
    return probs, gammas


def ngram_text(trie: ArrayTrie, k: int) -> Iterator[str]:
    """The n-grams of order k as space-separated tokens, in the arrays' order."""
    vocab = trie.vocab
    if k == 1:
        yield from (vocab[i] for i in trie.levels[0].ids.tolist())
        return
    parent_text = list(ngram_text(trie, k - 1))
    for parent, token_id in zip(parents_of(trie, k).tolist(), trie.levels[k - 1].ids.tolist()):
        yield f"{parent_text[parent]} {vocab[token_id]}"


def write_arpa(kn: KneserNey, path: str | os.PathLike, progress: Callable[[str], None] | None = None,
               bar=None) -> Path:
    """Write the Kneser-Ney model as an ARPA file (atomically). Every token of the vocabulary is a unigram.

    Probabilities and back-off weights are written with 7 significant digits (about
    1e-7 relative), more than KenLM keeps in its own binary format. `progress` hears
    each stage's name; `bar` (a tqdm bar, or anything with ``update(n)``) advances by
    the n-grams written.
    """
    trie = kn.counts.trie
    probs, gammas = kneser_ney_tables(kn)
    unigram_gamma = np.ones(len(trie.vocab))
    unigram_gamma[trie.levels[0].ids] = gammas[0]
    logps = [log10(probs[0])] + [log10(p) for p in probs[1:]]
    backoffs = [log10(unigram_gamma)] + [log10(g) for g in gammas[1:]]
    return write_arpa_tables(trie, logps, backoffs, path, progress, bar)


def write_arpa_tables(trie: ArrayTrie, logps: list[np.ndarray], backoffs: list[np.ndarray],
                      path: str | os.PathLike, progress: Callable[[str], None] | None = None, bar=None) -> Path:
    """Write log10 probabilities and back-off weights as an ARPA file, atomically.

    logps[0] and backoffs[0] are by token id (every token of the vocabulary is a
    unigram); logps[k-1], backoffs[k-1] for k >= 2 follow the order-k arrays of `trie`.
    The top order's back-offs are not written (nobody backs off from it); a back-off of
    log10 1 = 0 is left out, as ARPA allows.
    """
    order = trie.order
    path = Path(path)
    sizes = [len(trie.vocab)] + [len(trie.levels[k - 1].ids) for k in range(2, order + 1)]
    with atomic_write(path, "w") as out:
        out.write("\\data\\\n")
        for k, n in enumerate(sizes, start=1):
            out.write(f"ngram {k}={n}\n")
        for k in range(1, order + 1):
            if progress:
                progress(f"writing {k}-grams")
            out.write(f"\n\\{k}-grams:\n")
            texts = iter(trie.vocab) if k == 1 else ngram_text(trie, k)
            write_rows(out, texts, logps[k - 1], backoffs[k - 1] if k < order else None,
                       bos=trie.vocab.index(BOS) if k == 1 else None, bar=bar)
        out.write("\n\\end\\\n")
    return path


def log10(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log10(p)


def write_rows(out, texts: Iterator[str], logp: np.ndarray, bo: np.ndarray | None, bos: int | None,
               bar=None, step: int = 1 << 16) -> None:
    """One line per n-gram: log10 p, the n-gram, and its log10 back-off weight (if it is a context)."""
    logp_list, bo_list = logp.tolist(), (bo.tolist() if bo is not None else None)
    for i, text in enumerate(texts):
        p = NO_PROBABILITY if i == bos else logp_list[i]
        if bo_list is None or bo_list[i] == 0.0:
            out.write(f"{p:.7g}\t{text}\n")
        else:
            out.write(f"{p:.7g}\t{text}\t{bo_list[i]:.7g}\n")
        if bar is not None and i % step == step - 1:
            bar.update(step)
    if bar is not None:
        bar.update(len(logp_list) % step)


# ---------------------------------------------------------------------- reading


def open_text(path: Path):
    """The file as UTF-8 text, gunzipped on the fly if it is gzip (``.arpa.gz``, as KenLM also reads)."""
    with path.open("rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt", encoding="utf-8") if gzipped else path.open(encoding="utf-8")


class Batch(NamedTuple):
    """Consecutive n-gram lines of one order, parsed and checked (`ArpaReader.batches`)."""

    order: int
    numbers: list[int]  # their line numbers
    fields: list[list[str]]  # each line split: log10 p, the words, maybe the back-off
    logp: np.ndarray  # log10 p
    backoff: np.ndarray  # log10 back-off weight, 0 where the line has none


class ArpaReader:
    """The n-grams of an ARPA file: `batches` of up to 65,536 lines, or one at a time by iterating.

    Streams the file (nothing is kept but the header's counts), and refuses, with its
    line number, any line that is not what ARPA allows; at the end, an order whose
    n-grams do not add up to the header's count, or a missing ``\\end\\``.
    `declared` holds the header's {order: count} once the first n-gram is read.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.declared: dict[int, int] = {}
        if not self.path.is_file():
            raise UserError(f"ARPA file not found: {self.path}")

    def __iter__(self) -> Iterator[tuple[int, int, tuple[str, ...], float, float]]:
        """(line number, order, words, log10 p, log10 back-off) for every n-gram, in file order."""
        for batch in self.batches():
            k = batch.order
            for number, fields, logp, bo in zip(batch.numbers, batch.fields, batch.logp.tolist(), batch.backoff.tolist()):
                yield number, k, tuple(fields[1:k + 1]), logp, bo

    def batches(self, size: int = 1 << 16) -> Iterator[Batch]:
        """The n-gram lines, section by section, in batches of at most `size` (`parse_batch` parses them)."""
        path, declared = self.path, self.declared
        seen: dict[int, int] = {}
        section, order = "start", 0
        numbers: list[int] = []
        lines: list[str] = []
        with open_text(path) as handle:
            try:
                for number, line in enumerate(handle, start=1):
                    line = line.strip()
                    if not line:
                        continue
                    if section == "ngrams" and line[0] != "\\":  # most lines: tested first
                        numbers.append(number)
                        lines.append(line)
                        if len(lines) == size:
                            seen[order] += len(lines)
                            yield self.parse_batch(order, numbers, lines)
                            numbers, lines = [], []
                        continue
                    if lines:  # a section ends
                        seen[order] += len(lines)
                        yield self.parse_batch(order, numbers, lines)
                        numbers, lines = [], []
                    if line == "\\data\\":
                        section = "data"
                    elif line == "\\end\\":
                        section = "end"
                        break
                    elif section == "data" and line.startswith("ngram "):
                        k, n = self.declaration(line, number)
                        declared[k] = n
                    elif line.startswith("\\") and line.endswith("-grams:"):
                        k_text = line[1:-len("-grams:")]
                        if not k_text.isdigit() or int(k_text) not in declared:
                            raise UserError(f"{path}, line {number}: a section for an order the header does not declare")
                        order, section = int(k_text), "ngrams"
                        seen.setdefault(order, 0)
                    else:
                        raise UserError(f"{path}, line {number}: unexpected line {line[:80]!r}")
            except UnicodeDecodeError:
                raise UserError(f"{path} is not UTF-8 text: not an ARPA file") from None
            except (EOFError, OSError, zlib.error):
                raise UserError(f"{path} is truncated or corrupted (gzip data incomplete)") from None
        if section != "end":
            raise UserError(f"{path}: no \\end\\ line: the file is truncated")
        for k, n in declared.items():
            if seen.get(k, 0) != n:
                raise UserError(f"{path}: the header declares {n} {k}-grams, the file has {seen.get(k, 0)}")

    def parse_batch(self, order: int, numbers: list[int], lines: list[str]) -> Batch:
        """Many lines of one order at once: split, numbers converted and checked as whole arrays.

        The same checks as `ngram_line`, the one-line reference; when any line fails
        them, `ngram_line` reads the batch again to name the first bad line.
        """
        fields = [line.split() for line in lines]
        n = np.fromiter(map(len, fields), dtype=np.int64, count=len(fields))
        try:
            logp = np.array([f[0] for f in fields], dtype=np.float64)
            backoff = np.zeros(len(fields))
            has = np.flatnonzero(n == order + 2)
            backoff[has] = np.array([fields[i][-1] for i in has.tolist()], dtype=np.float64)
            good = bool(np.all((n > order) & (n <= order + 2) & (logp <= 0) & (logp > -np.inf) & np.isfinite(backoff)))
        except ValueError:
            good = False
        if not good:  # the reference names the first bad line (and reads any line numpy would not)
            parsed = [self.ngram_line(line, order, number) for number, line in zip(numbers, lines)]
            logp = np.array([p[1] for p in parsed], dtype=np.float64)
            backoff = np.array([p[2] for p in parsed], dtype=np.float64)
        return Batch(order, numbers, fields, logp, backoff)

    def declaration(self, line: str, number: int) -> tuple[int, int]:
        """'ngram K=N' of the \\data\\ section."""
        k, _, n = line[len("ngram "):].partition("=")
        if not (k.strip().isdigit() and n.strip().isdigit()) or int(k) < 1:
            raise UserError(f"{self.path}, line {number}: expected 'ngram K=N', got {line[:80]!r}")
        return int(k), int(n)

    def ngram_line(self, line: str, order: int, number: int) -> tuple[tuple[str, ...], float, float]:
        """'log10p w1 .. wK [log10bo]': the words, and the two numbers (back-off 0 if absent)."""
        fields = line.split()
        n = len(fields)
        try:
            logp = float(fields[0])
            bo = float(fields[-1]) if n == order + 2 else 0.0
        except ValueError:
            raise UserError(f"{self.path}, line {number}: malformed {order}-gram line {line[:80]!r}") from None
        if not (order < n <= order + 2 and -math.inf < logp <= 0 and -math.inf < bo < math.inf):
            raise UserError(f"{self.path}, line {number}: malformed {order}-gram line {line[:80]!r}")
        return tuple(fields[1:order + 1]), logp, bo


def read_arpa(path: str | os.PathLike) -> tuple[int, list[dict[tuple[str, ...], tuple[float, float]]]]:
    """Read an ARPA file whole: (order, per order {n-gram: (log10 p, log10 back-off)}).

    Malformed lines are refused with their line number (`ArpaReader`), and so is an
    n-gram listed twice. For small files and tests; `ngram.backoff.import_arpa` streams.
    """
    reader = ArpaReader(path)
    tables: list[dict] = []
    for number, order, words, logp, bo in reader:
        while len(tables) < order:
            tables.append({})
        if words in tables[order - 1]:
            raise UserError(f"{reader.path}, line {number}: the {order}-gram {' '.join(words)!r} is listed twice")
        tables[order - 1][words] = (logp, bo)
    while len(tables) < max(reader.declared, default=0):
        tables.append({})
    return len(tables), tables
