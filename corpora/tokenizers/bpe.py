"""GPT-2's byte-level BPE tokenizer: encoding, decoding, and its two file layouts.

How GPT-2 turns text into token ids, in four steps (one function each):

1. **Pre-tokenise** (`pretokenize`): a regex cuts the text into words, numbers,
   punctuation runs and whitespace, each usually with its leading space
   (" hello", " 42", "!!", "\\n\\n").  BPE never merges across these pieces.
2. **Bytes to printable characters** (`bytes_to_unicode`): each piece is encoded
   as UTF-8 and every byte is shown as one printable character, so that a space
   becomes "Ġ" and a newline "Ċ".  Any text, in any script, is now a string over
   a 256-letter alphabet: nothing is ever "unknown".
3. **Merge** (`bpe_merge`): repeatedly join the adjacent pair of symbols that was
   learned earliest (lowest rank in the merges file) until no learned pair is left.
   Pieces longer than `LONG_WORD` symbols take `bpe_merge_heap`, the same merges in
   O(n log n) instead of O(n²), so that a long unbroken string cannot stall encoding.
4. **Look up ids**: each resulting symbol is a key of the vocabulary.

Decoding reverses steps 4 and 2: ids → symbols → bytes → text.

    >>> tok = gpt2_tokenizer()         # OpenAI's files, shipped with the package
    >>> tok.encode("Hello world")
    [15496, 995]
    >>> tok.decode([15496, 995])
    'Hello world'

`bpe_learn.learn_bpe` builds such a tokenizer from your own text, the way GPT-2's was made:
count adjacent pairs, merge the most frequent, repeat.
"""
from __future__ import annotations

import functools
import hashlib
import heapq
import json
import operator
from pathlib import Path
from typing import AbstractSet, Iterable, Literal, Sequence

import regex

from ..common import UserError, atomic_write
from ..validate import cap_line, is_int, read_json_file, read_limited_bytes, short_repr
from .special import ENDOFTEXT

__all__ = [
    "ENDOFTEXT",
    "GPT2_SPLIT_PATTERN",
    "BPETokenizer",
    "bpe_merge",
    "bpe_merge_heap",
    "bytes_to_symbols",
    "bytes_to_unicode",
    "gpt2_tokenizer",
    "merge",
    "merge_word",
    "pretokenize",
    "read_merges",
    "read_vocab",
    "symbols_to_bytes",
    "tokenizer_fingerprint",
    "tokenizer_label",
]

#: GPT-2's pre-tokenising pattern: English contractions, letters, numbers, other
#: symbols (each optionally led by one space), then whitespace.  `\s+(?!\S)` keeps
#: the last space of a run for the word that follows it.
GPT2_SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_SPLIT_RE = regex.compile(GPT2_SPLIT_PATTERN)

# File names a tokenizer folder may use: (vocabulary, merges).
OPENAI_NAMES = ("encoder.json", "vocab.bpe")
HF_NAMES = ("vocab.json", "merges.txt")
MERGES_HEADER = "#version: 0.2"

#: OpenAI's GPT-2 tokenizer files, shipped with the package (see its README.md).
GPT2_TOKENIZER_DIR = Path(__file__).resolve().parent / "gpt2"

# How many distinct words the encode cache remembers before it starts afresh.
CACHE_LIMIT = 500_000

#: Pieces with more symbols (bytes) than this are merged by `bpe_merge_heap`.  On the
#: words of English books the two cross over at about 12 symbols; below that the
#: textbook loop is faster, and the word cache makes the difference moot anyway.
LONG_WORD = 16


# ---------------------------------------------------------------------------
# Steps 1-3: the byte map, the pre-tokeniser and the merge loop
# ---------------------------------------------------------------------------


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from each byte (0-255) to one printable character.

    Bytes that are already printable and not a space keep their own character
    ("!" to "~", "¡" to "¬", "®" to "ÿ").  The other 68 bytes (control
    characters, space, no-break space, soft hyphen) are given the characters
    from U+0100 on, in byte order: byte 0 is "Ā", the space (32) is "Ġ",
    the newline (10) is "Ċ".

    The dict's order matters: it is the order of GPT-2's first 256 token ids
    (id 0 is "!", id 188 is "Ā").
    """
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    mapping = {byte: chr(byte) for byte in printable}
    next_char = 256
    for byte in range(256):
        if byte not in mapping:
            mapping[byte] = chr(next_char)
            next_char += 1
    return mapping


# Two `str.translate` tables that do the byte map in C: a byte's latin-1 character
# (the character with the same number) ↔ its GPT-2 symbol.
_LATIN1_TO_SYMBOL = {byte: char for byte, char in bytes_to_unicode().items()}
_SYMBOL_TO_LATIN1 = {ord(char): chr(byte) for byte, char in bytes_to_unicode().items()}


def bytes_to_symbols(data: bytes) -> str:
    """Show raw bytes as GPT-2 symbols: b"Hi there" → "HiĠthere"."""
    return data.decode("latin-1").translate(_LATIN1_TO_SYMBOL)


def symbols_to_bytes(symbols: str) -> bytes:
    """The inverse of `bytes_to_symbols`: "HiĠthere" → b"Hi there"."""
    return symbols.translate(_SYMBOL_TO_LATIN1).encode("latin-1")


def pretokenize(text: str) -> list[str]:
    """Cut text into the pieces BPE works on, with GPT-2's regex.

    >>> pretokenize("Hello, world!  It's 2024.")
    ['Hello', ',', ' world', '!', ' ', ' It', "'s", ' 2024', '.']
    """
    return _SPLIT_RE.findall(text)


def bpe_merge(word: Sequence[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Apply learned merges to one word, earliest-learned pair first.

    `word` is a sequence of symbols (a string of GPT-2 byte symbols works: each
    character is one symbol).  `ranks` maps a pair of symbols to its position in
    the merges file; lower means learned earlier and merged first.  Each round
    finds the adjacent pair with the lowest rank and joins every occurrence of
    it, left to right; it stops when no adjacent pair has a rank.

    >>> bpe_merge("lower", {("l", "o"): 0, ("lo", "w"): 1, ("e", "r"): 2})
    ['low', 'er']
    """
    symbols = list(word)
    while len(symbols) > 1:
        pairs = zip(symbols, symbols[1:])
        best = min(pairs, key=lambda pair: ranks.get(pair, float("inf")))
        if best not in ranks:
            break
        symbols = merge(symbols, best, best[0] + best[1])
    return symbols


def merge(symbols: list, pair: tuple, merged: object) -> list:
    """Replace every non-overlapping occurrence of `pair` in `symbols` by `merged`, left to right.

    The one merge step of BPE, shared by encoding (`bpe_merge`) and both learners.

    Example: merge([1, 2, 3, 1, 2, 2], (1, 2), 4) == [4, 3, 4, 2]
    """
    first, second = pair
    out = []
    i = 0
    n = len(symbols)
    while i < n:
        if i < n - 1 and symbols[i] == first and symbols[i + 1] == second:
            out.append(merged)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out


# ---------------------------------------------------------------------------
# Step 3, fast: the same merges for long pieces, with a heap over a linked list
# ---------------------------------------------------------------------------
#
# `bpe_merge` rescans the whole word for every merge: O(n²) on a piece of n symbols,
# a minute for 100,000 letters without a space.  `bpe_merge_heap` keeps a heap of
# candidate pairs instead and touches only the neighbours of each merge.


def bpe_merge_heap(word: Sequence[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """`bpe_merge`'s exact result in O(n log n), for long pieces.

    The word becomes a linked list of parts (`_Parts`); a heap holds one candidate
    (rank, position) for every adjacent pair that has a rank, position being where
    the pair's left part starts in the original word, so equal ranks come out left
    to right.  A merge changes only its two neighbouring pairs, so it costs two heap
    pushes.  Candidates that a merge made stale are not searched for and removed:
    each one is checked when it is popped and dropped if its pair is gone (lazy
    invalidation).  `_merge_round` reproduces the textbook's tie rule.

    >>> bpe_merge_heap("aaa", {("a", "a"): 0})
    ['aa', 'a']
    """
    parts = _Parts(word)
    heap = [(rank, i) for i, rank in _ranked_pairs(parts, ranks, range(len(parts.text) - 1))]
    heapq.heapify(heap)
    while (best := _pop_best_pair(heap, parts, ranks)) is not None:
        _merge_round(parts, heap, ranks, *best)
    return parts.symbols()


class _Parts:
    """A word as a doubly linked list of parts, indexed by original symbol position.

    Why a linked list: joining two neighbours is O(1), where deleting from a Python
    list is O(n).  Why index by position: a joined part keeps the index of its left
    half, so indices stay in word order however many merges happen, which is the
    order the heap breaks ties in.
    """

    __slots__ = ("text", "next", "prev")

    def __init__(self, word: Sequence[str]) -> None:
        self.text: list[str | None] = list(word)  # None: joined into the part on its left
        self.next = list(range(1, len(self.text) + 1))  # len(text): there is no next part
        self.prev = list(range(-1, len(self.text) - 1))  # -1: there is no previous part

    def pair_at(self, i: int) -> tuple[str, str] | None:
        """The pair that part `i` starts now, or None if part `i` is gone or is the last one."""
        j = self.next[i]
        if self.text[i] is None or j == len(self.text):
            return None
        return self.text[i], self.text[j]  # type: ignore[return-value]

    def join(self, i: int) -> None:
        """Join part `i` with the part after it; the latter disappears."""
        j = self.next[i]
        after = self.next[j]
        self.text[i] += self.text[j]  # type: ignore[operator]
        self.text[j] = None
        self.next[i] = after
        if after < len(self.text):
            self.prev[after] = i

    def symbols(self) -> list[str]:
        """The parts left, in word order (index order is word order)."""
        return [part for part in self.text if part is not None]


def _ranked_pairs(parts: _Parts, ranks: dict, starts: Iterable[int]) -> Iterable[tuple[int, int]]:
    """(start, rank) of each pair starting at `starts` that has a rank: the heap's candidates."""
    for i in starts:
        pair = parts.pair_at(i)
        if pair is not None and (rank := ranks.get(pair)) is not None:
            yield i, rank


def _pop_best_pair(heap: list, parts: _Parts, ranks: dict) -> tuple[int, int, tuple[str, str]] | None:
    """(rank, start, pair) of the lowest-ranked, then leftmost, pair in the word now; None if none is left.

    The same choice as `min` in `bpe_merge`, which returns the first of equal minima.
    Stale candidates (a neighbour's merge changed their pair) are dropped on the way.
    """
    while heap:
        rank, i = heapq.heappop(heap)
        pair = parts.pair_at(i)
        if pair is not None and ranks.get(pair) == rank:
            return rank, i, pair
    return None


def _merge_round(parts: _Parts, heap: list, ranks: dict, rank: int, start: int, pair: tuple[str, str]) -> None:
    """Join every occurrence of `pair`, left to right, as one pass of `bpe_merge` does.

    Its occurrences come off the heap in position order.  One whose left part the
    previous join swallowed (the middle "a" of "aaa" under the merge a+a) no longer
    shows the pair and is skipped: the textbook pass's non-overlapping rule.  Pairs
    this round creates, and other pairs of the same rank (possible only in hand-made
    tables), wait until the round ends: the textbook looks at them only in its next
    pass, even when their rank is lower.
    """
    waiting: list[tuple[int, int]] = []
    while start is not None:
        parts.join(start)
        neighbours = (parts.prev[start], start) if parts.prev[start] >= 0 else (start,)
        waiting.extend((new_rank, i) for i, new_rank in _ranked_pairs(parts, ranks, neighbours))
        start = _next_occurrence(heap, parts, ranks, rank, pair, waiting)
    for candidate in waiting:
        heapq.heappush(heap, candidate)


def _next_occurrence(heap: list, parts: _Parts, ranks: dict, rank: int, pair: tuple, waiting: list) -> int | None:
    """The start of the next occurrence of `pair` on the heap, or None when the round is over.

    Live candidates of the same rank but another pair are moved to `waiting`; stale
    ones are dropped.
    """
    while heap and heap[0][0] == rank:
        candidate = heapq.heappop(heap)
        now = parts.pair_at(candidate[1])
        if now == pair:
            return candidate[1]
        if now is not None and ranks.get(now) == rank:
            waiting.append(candidate)
    return None


def merge_word(word: Sequence[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """`bpe_merge` for ordinary words, `bpe_merge_heap` for long ones: same result, each where it is faster."""
    return bpe_merge(word, ranks) if len(word) <= LONG_WORD else bpe_merge_heap(word, ranks)


# ---------------------------------------------------------------------------
# Step 4: the tokenizer object
# ---------------------------------------------------------------------------


class BPETokenizer:
    """A byte-level BPE tokenizer: a vocabulary (symbol string → id) and ranked merges.

    Build one with `from_dir` (GPT-2's files, or a folder written by `save`),
    `from_files`, or `learn_bpe`.

    Special tokens (GPT-2 has one, `<|endoftext|>`) are vocabulary entries that no
    merge produces.  `encode` treats them as special only when asked through
    `allowed_special`; otherwise "<|endoftext|>" in the text is ordinary text
    (the same convention as tiktoken's `encode_ordinary`).
    """

    def __init__(self, vocab: dict[str, int], merges: Sequence[tuple[str, str]]) -> None:
        """`vocab` maps GPT-2 symbol strings to ids; `merges` lists pairs, earliest first."""
        self.encoder: dict[str, int] = dict(vocab)
        self.merges: list[tuple[str, str]] = [tuple(pair) for pair in merges]  # type: ignore[misc]
        self.ranks: dict[tuple[str, str], int] = {}
        for rank, pair in enumerate(self.merges):
            self.ranks.setdefault(pair, rank)
        self.vocab_size: int = max(self.encoder.values(), default=-1) + 1
        self.decoder: dict[int, str] = {i: s for s, i in self.encoder.items()}

        mergeable = set(bytes_to_unicode().values()) | {a + b for a, b in self.merges}
        self.special_tokens: dict[str, int] = {
            s: i for s, i in self.encoder.items() if s not in mergeable
        }
        self.eot_id: int | None = self.encoder.get(ENDOFTEXT)

        # The exact bytes of every id, for decoding.  Special tokens are their own text.
        self._bytes: list[bytes | None] = [None] * self.vocab_size
        for symbols, i in self.encoder.items():
            if symbols in self.special_tokens:
                self._bytes[i] = symbols.encode("utf-8")
            else:
                self._bytes[i] = symbols_to_bytes(symbols)
        self._cache: dict[str, tuple[int, ...]] = {}

    # -- loading and saving --------------------------------------------------

    @classmethod
    def from_files(cls, encoder_path: str | Path, merges_path: str | Path) -> "BPETokenizer":
        """Load a vocabulary JSON file and a merges file (OpenAI's or Hugging Face's)."""
        vocab = read_vocab(encoder_path)
        merges = read_merges(merges_path)
        check_merges(merges, vocab, merges_path)
        return cls(vocab, merges)

    @classmethod
    def from_dir(cls, folder: str | Path) -> "BPETokenizer":
        """Load from a folder holding `encoder.json` + `vocab.bpe` (OpenAI's names)
        or `vocab.json` + `merges.txt` (Hugging Face's names, as `save` writes)."""
        folder = Path(folder)
        if not folder.is_dir():
            raise UserError(f"tokenizer folder not found: {folder}")
        for vocab_name, merges_name in (OPENAI_NAMES, HF_NAMES):
            if (folder / vocab_name).is_file() and (folder / merges_name).is_file():
                return cls.from_files(folder / vocab_name, folder / merges_name)
        present = [n for n in OPENAI_NAMES + HF_NAMES if (folder / n).is_file()]
        have = f"it has only {', '.join(present)}" if present else "it has none of them"
        raise UserError(
            f"{folder} is not a tokenizer folder: it needs encoder.json + vocab.bpe (OpenAI) "
            f"or vocab.json + merges.txt (Hugging Face); {have}"
        )

    def save(self, folder: str | Path) -> None:
        """Write `vocab.json` and `merges.txt` (Hugging Face's names) into `folder`.

        Each file is written atomically: a crash never leaves half a file.
        """
        folder = Path(folder)
        vocab_text = json.dumps(self.encoder, ensure_ascii=False, indent=1) + "\n"
        merges_text = "\n".join([MERGES_HEADER] + [f"{a} {b}" for a, b in self.merges]) + "\n"
        with atomic_write(folder / HF_NAMES[0], "wb") as handle:
            handle.write(vocab_text.encode("utf-8"))
        with atomic_write(folder / HF_NAMES[1], "wb") as handle:
            handle.write(merges_text.encode("utf-8"))

    # -- encoding ------------------------------------------------------------

    def encode(
        self,
        text: str,
        allowed_special: AbstractSet[str] | Literal["all"] = frozenset(),
    ) -> list[int]:
        """Text → token ids.

        `allowed_special` names the special tokens (e.g. {"<|endoftext|>"}, or
        "all") that become their own id when they appear in the text; by default
        none do, and "<|endoftext|>" is encoded as the ordinary characters it is.
        """
        specials = self._allowed(allowed_special)
        if not specials:
            return self.encode_ordinary(text)
        pattern = "(" + "|".join(regex.escape(s) for s in sorted(specials, key=len, reverse=True)) + ")"
        ids: list[int] = []
        for i, part in enumerate(regex.split(pattern, text)):
            if i % 2:  # split() puts the captured separators at odd positions
                ids.append(self.special_tokens[part])
            elif part:
                ids.extend(self.encode_ordinary(part))
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        """Text → token ids, with no special tokens at all."""
        ids: list[int] = []
        cache = self._cache
        for word in _SPLIT_RE.findall(text):
            word_ids = cache.get(word)
            if word_ids is None:
                word_ids = self._encode_word(word)
                if len(cache) >= CACHE_LIMIT:
                    cache.clear()
                cache[word] = word_ids
            ids.extend(word_ids)
        return ids

    def _encode_word(self, word: str) -> tuple[int, ...]:
        """One pre-tokenised piece → its ids (bytes → symbols → merges → ids)."""
        symbols = merge_word(bytes_to_symbols(word.encode("utf-8")), self.ranks)
        return tuple(self.encoder[s] for s in symbols)

    def _allowed(self, allowed_special: AbstractSet[str] | Literal["all"] | str) -> set[str]:
        """The special tokens `encode` should honour ("all", a set, or one token's text)."""
        if allowed_special == "all":
            return set(self.special_tokens)
        if isinstance(allowed_special, str):
            allowed_special = {allowed_special}
        unknown = set(allowed_special) - set(self.special_tokens)
        if unknown:
            known = ", ".join(sorted(self.special_tokens)) or "none"
            raise UserError(f"not a special token of this vocabulary: {', '.join(sorted(unknown))} (known: {known})")
        return set(allowed_special)

    # -- decoding ------------------------------------------------------------

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """Token ids → the exact bytes they stand for."""
        ids = list(ids)
        table = self._bytes
        try:
            if not ids or min(ids) >= 0:
                return b"".join([table[i] for i in ids])  # type: ignore[misc]
        except (IndexError, TypeError):
            pass
        return b"".join(self.token_bytes(i) for i in ids)  # the slow path names the bad id

    def decode(self, ids: Iterable[int]) -> str:
        """Token ids → text.  A sequence that ends inside a multi-byte character
        (possible when you cut the ids anywhere) shows "�" for the partial bytes."""
        return self.decode_bytes(list(ids)).decode("utf-8", errors="replace")

    def token_bytes(self, token_id: int) -> bytes:
        """The exact bytes of one token id."""
        try:
            index = operator.index(token_id)  # ints, and NumPy's integer types too
        except TypeError:
            index = -1
        if not 0 <= index < self.vocab_size or self._bytes[index] is None:
            raise UserError(f"token id {token_id!r} is not in the vocabulary (ids 0..{self.vocab_size - 1})")
        return self._bytes[index]  # type: ignore[return-value]

    def token_str(self, token_id: int) -> str:
        """One token for display, as GPT-2's symbols ("Ġworld": Ġ is the space)."""
        self.token_bytes(token_id)  # validates the id
        return self.decoder[operator.index(token_id)]

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)}, eot_id={self.eot_id})"


# ---------------------------------------------------------------------------
# GPT-2's own tokenizer, and telling tokenizers apart
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def gpt2_tokenizer() -> BPETokenizer:
    """OpenAI's GPT-2 tokenizer, from the files shipped with this package (no download).

    Loaded once and shared: treat it as read-only.
    """
    return BPETokenizer.from_dir(GPT2_TOKENIZER_DIR)


def is_gpt2_tokenizer(tokenizer: BPETokenizer) -> bool:
    """Is this GPT-2's own tokenizer (the same tokens, ids and merges), whatever folder it came from?"""
    if tokenizer.vocab_size != 50257 or len(tokenizer.merges) != 50000:
        return False  # cheap answer for every other tokenizer: no need to load GPT-2's
    gpt2 = gpt2_tokenizer()
    return tokenizer is gpt2 or (tokenizer.merges == gpt2.merges and tokenizer.encoder == gpt2.encoder)


def tokenizer_label(tokenizer: BPETokenizer, owner: str) -> str:
    """How to name a tokenizer next to a per-token figure: "GPT-2's BPE, 50,257 tokens",
    or "books-gpt2's BPE, 4,096 tokens" after `owner` (the model or folder it came with).

    Token counts and per-token perplexities mean something only for a named tokenizer, so
    every figure says which one it used.
    """
    owner = "GPT-2" if is_gpt2_tokenizer(tokenizer) else owner
    return f"{owner}'s BPE, {tokenizer.vocab_size:,} tokens"


def tokenizer_fingerprint(tokenizer: BPETokenizer) -> str:
    """A sha256 hex digest of a tokenizer's vocabulary and merges.

    Two tokenizers have the same fingerprint exactly when they have the same tokens
    with the same ids and the same merges in the same order, whatever their files
    are called or however the JSON is laid out.  Use it to refuse comparing models
    built over different tokens.  What is hashed: the UTF-8 JSON text of
    ``{"vocab": [[token, id], ...] (by id), "merges": [[left, right], ...]}``.
    """
    canonical = {  # JSON writes the (token, id) and (left, right) tuples as lists
        "vocab": sorted(tokenizer.encoder.items(), key=operator.itemgetter(1)),
        "merges": tokenizer.merges,
    }
    text = json.dumps(canonical, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------
# Reading and checking the two files
# ---------------------------------------------------------------------------


#: Limits for the two tokenizer files: far above GPT-2's (1 MB, 50,257 tokens of at most
#: 128 symbols), far below what would hurt.
MAX_VOCAB_BYTES = 200_000_000
MAX_MERGES_BYTES = 200_000_000
MAX_MERGE_LINE = 2_000


def read_vocab(path: str | Path) -> dict[str, int]:
    """Read a vocabulary JSON file (`encoder.json` / `vocab.json`): symbols → id.

    The ids must be the whole numbers 0 .. n-1, each used once, so that no id (say
    10¹²) can make the decoding table huge.
    """
    path = Path(path)
    data = read_json_file(path, MAX_VOCAB_BYTES, what="vocabulary file")
    if not isinstance(data, dict) or not data:
        raise UserError(f"{path} must hold a JSON object mapping tokens to ids")
    seen: dict[int, str] = {}
    for token, token_id in data.items():
        if not is_int(token_id) or token_id < 0:
            raise UserError(cap_line(f"{path}: token {token!r} has id {short_repr(token_id)}; "
                                     "ids must be integers >= 0"))
        if token_id >= len(data):
            raise UserError(cap_line(f"{path}: token {token!r} has id {short_repr(token_id)}, but the "
                                     f"{len(data):,} tokens must have the ids 0 to {len(data) - 1:,}"))
        if token_id in seen:
            raise UserError(cap_line(f"{path}: tokens {seen[token_id]!r} and {token!r} share id {token_id}"))
        seen[token_id] = token
    return data


def read_merges(path: str | Path) -> list[tuple[str, str]]:
    """Read a merges file (`vocab.bpe` / `merges.txt`): one `left right` pair a line.

    A first line starting with "#version" and blank lines are skipped. A line longer
    than MAX_MERGE_LINE characters is refused (no real merge is that long).
    """
    path = Path(path)
    try:
        lines = read_limited_bytes(path, MAX_MERGES_BYTES, "merges file").decode("utf-8").split("\n")
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text") from None
    merges: list[tuple[str, str]] = []
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        if not line or (number == 1 and line.startswith("#version")):
            continue
        if len(line) > MAX_MERGE_LINE:
            raise UserError(f"{path}, line {number}: {len(line):,} characters long; a merge is two tokens "
                            f"(at most {MAX_MERGE_LINE:,} characters)")
        parts = line.split(" ")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise UserError(cap_line(f"{path}, line {number}: expected two tokens separated by one space, "
                                     f"got {line!r}"))
        merges.append((parts[0], parts[1]))
    return merges


def check_merges(merges: Sequence[tuple[str, str]], vocab: dict[str, int], where: str | Path = "merges") -> None:
    """Fail clearly if a merge names a token (or makes one) that the vocabulary lacks."""
    for number, (first, second) in enumerate(merges, start=1):
        for token in (first, second, first + second):
            if token not in vocab:
                raise UserError(cap_line(
                    f"{where}: merge {number} ({first} {second}) refers to {token!r}, "
                    "which is not in the vocabulary; are the two files from the same tokenizer?"
                ))
    symbols = set(bytes_to_unicode().values())
    missing = sorted(symbols - vocab.keys())
    if missing:
        raise UserError(f"{where}: the vocabulary lacks {len(missing)} of the 256 byte tokens (e.g. {missing[0]!r})")
    strangers = set("".join(a + b for a, b in merges)) - symbols
    if strangers:
        raise UserError(
            f"{where}: merges use {len(strangers)} characters that are not GPT-2 byte symbols "
            f"(e.g. {min(strangers)!r}); is this a byte-level BPE tokenizer?"
        )


# ---------------------------------------------------------------------------
