"""The trie as sorted arrays: the same nested-dict picture, a few bytes an n-gram, memory-mapped.

`ngram.trie` keeps the n-grams as dicts of dicts — the picture this project is built on,
``{"I": {"want": {"to": {"be": 1, "know": 1}}}}`` — at about 126 bytes a node, and a
model file must be parsed whole before the first prediction. Here every order k is a
handful of NumPy arrays with one entry per k-gram, in sorted order (a CSR trie, the
layout of KenLM's trie and of suffix-array indexes):

    level k      ids[i]          the last token of the i-th k-gram (its parent holds the rest)
                 counts[i]       how often it occurred
                 continuation[i] how many distinct tokens came before it (not at the top order)
                 first_child[i]  its children are entries first_child[i] .. first_child[i+1]-1
                                 of level k+1 (not at the top order; one extra entry at the end)

The k-grams are sorted by their token ids, so a node's children are one contiguous range,
sorted by id: finding a child is a binary search in that range. The root's children are
all of level 1. Saved, each array is one ``.npy`` file beside a JSON header; loading
memory-maps them (``allow_pickle=False``: nothing in a model can execute code), so it
costs the same for any model size.

`ArrayNode` puts the nested-dict face back on: ``trie["I"]["want"]["to"]`` is a read-only
Mapping with the children by token, the counts under the reserved keys ``""`` and
``"\\0"``, and iteration most frequent first — exactly like the dict trie, which stays as
the readable reference (a test checks both give the identical trie).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from corpora.common import UserError

from .trie import CONTINUATION, COUNT

FORMAT = "trie-vs-transformer n-gram arrays"
VERSION = 1
HEADER = "header.json"

ID_DTYPE = np.dtype("<i4")
COUNT_DTYPE = np.dtype("<i8")
INDEX_DTYPE = np.dtype("<i8")
SMALL_DTYPE = np.dtype("<i4")  # counts and indices are saved in 4 bytes when they fit

# A model imported from an ARPA file (``ngram build --from-arpa``) has no counts: each
# n-gram carries log10 p and, if it is a context, a log10 back-off weight instead (see
# `ngram.backoff`). Its header says ``"kind": "arpa-backoff"``; its counts read 0.
COUNTS_KIND = "counts"
ARPA_KIND = "arpa-backoff"
PROB_DTYPE = np.dtype("<f4")  # log10 values, as KenLM stores them


def probability_arrays(kind: str, order: int) -> set[str]:
    """The extra arrays a model of `kind` holds: logprob at every order, backoff below the top."""
    if kind != ARPA_KIND:
        return set()
    return {f"k{k}.logprob" for k in range(1, order + 1)} | {f"k{k}.backoff" for k in range(1, order)}


def compact(array: np.ndarray) -> np.ndarray:
    """The array in 4-byte integers if every value fits, else 8-byte: a third less to map."""
    fits = len(array) == 0 or int(array.max()) < 2**31
    return array.astype(SMALL_DTYPE if fits else np.dtype("<i8"), copy=False)


@dataclass
class Level:
    """All k-grams of one order, sorted by their token ids (see the module docstring)."""

    ids: np.ndarray
    counts: np.ndarray
    continuation: np.ndarray | None = None  # None at the top order
    first_child: np.ndarray | None = None  # None at the top order; len(ids) + 1 entries
    logprob: np.ndarray | None = None  # ARPA models only: log10 p(last token | the rest)
    backoff: np.ndarray | None = None  # ARPA models only, not at the top order: log10 back-off weight

    def arrays(self) -> dict[str, np.ndarray]:
        named = {"ids": self.ids, "counts": self.counts}
        if self.continuation is not None:
            named["continuation"] = self.continuation
        if self.first_child is not None:
            named["first_child"] = self.first_child
        for name in ("logprob", "backoff"):
            if getattr(self, name) is not None:
                named[name] = getattr(self, name)
        return named


def children_parents(first_child: np.ndarray) -> np.ndarray:
    """For each entry of a level, the index of its parent in the level above (the inverse of
    `first_child`'s ranges): [0, 2, 2, 5] → [0, 0, 2, 2, 2]."""
    return np.repeat(np.arange(len(first_child) - 1), np.diff(first_child))


def parents_of(trie: ArrayTrie, k: int) -> np.ndarray:
    """For every n-gram of order k >= 2, the index of its context (its first k-1 tokens) in order k-1."""
    return children_parents(trie.levels[k - 2].first_child)


def first_tokens(trie: ArrayTrie) -> list[np.ndarray]:
    """For every n-gram of every order, its first token's id (to spot those starting with <s>)."""
    firsts = [np.asarray(trie.levels[0].ids)]
    for k in range(2, trie.order + 1):
        firsts.append(firsts[-1][parents_of(trie, k)])
    return firsts


def count_of_counts(counts: np.ndarray) -> list[int]:
    """[n1, n2, n3, n4]: how many entries have count 1, 2, 3 and 4."""
    return np.bincount(np.clip(counts, 0, 5), minlength=6)[1:5].tolist()


class ArrayTrie:
    """The n-grams of orders 1..`order` over a vocabulary, as sorted arrays."""

    def __init__(self, vocab: Sequence[str], levels: list[Level], total: int, root_continuation: int,
                 kind: str = COUNTS_KIND) -> None:
        self.kind = kind  # COUNTS_KIND, or ARPA_KIND: log10 probabilities and back-off weights, no counts
        self.vocab = list(vocab)
        self.levels = levels
        self.order = len(levels)
        self.total = total  # token positions counted: the root's count
        self.root_continuation = root_continuation  # distinct bigrams: the root's continuation count
        self.token_id = dict(zip(self.vocab, range(len(self.vocab))))

    # ------------------------------------------------------------------ building
    @classmethod
    def from_counting(cls, rows: np.ndarray, levels: list, vocab: Sequence[str]) -> "ArrayTrie":
        """Arrays from `counting.count_levels`: sorted rows and, per order, the real k-gram groups.

        The sorted rows list the k-grams in exactly the order wanted here (by token ids),
        so each level's arrays are a gather; a k-gram's parent is its (k-1)-prefix's index
        in the level above, and `first_child` is where each parent's run of children starts.
        """
        built: list[Level] = []
        for k, level in enumerate(levels, start=1):
            ids = rows[level.first_rows, k - 1].astype(ID_DTYPE)
            continuation = None if level.continuation is None else level.continuation.astype(COUNT_DTYPE)
            built.append(Level(ids, level.counts.astype(COUNT_DTYPE), continuation))
            if k > 1:
                upper = levels[k - 2]
                parent_group = upper.group_of_row[level.first_rows]
                parents = np.searchsorted(upper.groups, parent_group)
                built[k - 2].first_child = np.searchsorted(parents, np.arange(len(upper.groups) + 1)).astype(INDEX_DTYPE)
        root_continuation = len(levels[1].groups) if len(levels) > 1 else 0
        return cls(vocab, built, total=len(rows), root_continuation=root_continuation)

    @classmethod
    def from_dict(cls, root: Mapping, vocab: Sequence[str], order: int) -> "ArrayTrie":
        """The arrays of a nested-dict trie (`ngram.trie`'s structure), level by level.

        Each level lists the children of the level above's nodes in order, every node's
        children sorted by token id — the order `from_counting` produces. Reads a model
        saved as JSON; unknown tokens or a depth beyond `order` are refused.
        """
        ids_of = {token: i for i, token in enumerate(vocab)}
        levels: list[Level] = []
        parents: list = [root]
        for k in range(1, order + 1):
            ids, counts, continuation, nodes, first_child = [], [], [], [], [0]
            for parent in parents:
                kids = []
                for token, child in parent.items():
                    if token in (COUNT, CONTINUATION):
                        continue
                    if token not in ids_of:
                        raise UserError(f"the trie holds the token {token[:40]!r}, which is not in the vocabulary")
                    kids.append((ids_of[token], child))
                kids.sort(key=lambda pair: pair[0])
                for token_id, child in kids:
                    deepest = k == order
                    if isinstance(child, Mapping) == deepest:
                        raise UserError(f"the trie's nodes of order {k} are not what order {order} needs")
                    ids.append(token_id)
                    counts.append(child if deepest else child[COUNT])
                    if not deepest:
                        continuation.append(child[CONTINUATION])
                        nodes.append(child)
                first_child.append(len(ids))
            if levels:
                levels[-1].first_child = np.array(first_child, dtype=INDEX_DTYPE)
            levels.append(Level(np.array(ids, dtype=ID_DTYPE), np.array(counts, dtype=COUNT_DTYPE),
                                None if k == order else np.array(continuation, dtype=COUNT_DTYPE)))
            parents = nodes
        return cls(vocab, levels, total=int(root[COUNT]), root_continuation=int(root[CONTINUATION]))

    # ------------------------------------------------------------------ reading
    def children_range(self, depth: int, index: int) -> tuple[int, int]:
        """The children of node `index` at `depth` (0 = the root) as a range of level depth+1."""
        if depth == 0:
            return 0, len(self.levels[0].ids)
        first = self.levels[depth - 1].first_child
        start, end = int(first[index]), int(first[index + 1])
        if not 0 <= start <= end <= len(self.levels[depth].ids):
            raise UserError(f"{getattr(self, 'source', 'the model')}: the children ranges of order {depth} "
                            "are damaged")
        return start, end

    def child(self, depth: int, index: int, token_id: int) -> int | None:
        """The index (in level depth+1) of the child `token_id` of a node, or None: a binary search."""
        start, end = self.children_range(depth, index)
        ids = self.levels[depth].ids
        at = start + int(np.searchsorted(ids[start:end], token_id))
        return at if at < end and ids[at] == token_id else None

    def find(self, context: Sequence[str]) -> tuple[int, int] | None:
        """(depth, index) of the node for the n-gram `context`, or None if never seen."""
        ids = [self.token_id.get(token) for token in context]
        return None if None in ids else self.find_ids(ids)

    def find_ids(self, context: Sequence[int]) -> tuple[int, int] | None:
        """`find` for token ids: one binary search per token."""
        if len(context) > self.order:
            return None
        depth, index = 0, 0
        for token_id in context:
            found = self.child(depth, index, int(token_id))
            if found is None:
                return None
            depth, index = depth + 1, found
        return depth, index

    def token(self, depth: int, at: int) -> str:
        """The token of entry `at` of level depth+1 (checked: a damaged id is an error, not a crash)."""
        token_id = int(self.levels[depth].ids[at])
        if not 0 <= token_id < len(self.vocab):
            raise UserError(f"{getattr(self, 'source', 'the model')}: order {depth + 1} holds token ids "
                            "outside the vocabulary")
        return self.vocab[token_id]

    def level_keys(self, k: int) -> np.ndarray:
        """Order k's n-grams as one sorted int64 key each: parent index × |V| + token id.

        The arrays are sorted by (parent, id), so these keys are sorted too, and one
        binary search over them finds many n-grams at once (`find_many`). Made on first
        use and kept (8 bytes an n-gram of that order).
        """
        cache = self.__dict__.setdefault("_keys", {})
        if k not in cache:
            ids = self.levels[k - 1].ids.astype(np.int64)
            cache[k] = ids if k == 1 else parents_of(self, k).astype(np.int64) * len(self.vocab) + ids
        return cache[k]

    def find_many(self, grams: np.ndarray) -> np.ndarray:
        """For each row of token ids (shape n × k, k >= 1), the index of that k-gram in order k, or -1.

        `find_ids` for many n-grams at once: one vectorised binary search per order.
        """
        n, k = grams.shape
        index = np.zeros(n, dtype=np.int64)
        found = np.ones(n, dtype=bool)
        for j in range(1, k + 1):
            keys = self.level_keys(j)
            wanted = grams[:, j - 1].astype(np.int64) if j == 1 else index * len(self.vocab) + grams[:, j - 1]
            at = np.minimum(np.searchsorted(keys, wanted), max(len(keys) - 1, 0))
            found &= (len(keys) > 0) & (keys[at] == wanted) if len(keys) else False
            index = np.where(found, at, 0)
        return np.where(found, index, -1)

    @property
    def root(self) -> "ArrayNode":
        """The nested-dict face of the whole trie."""
        return ArrayNode(self, 0, 0)

    def to_dict(self) -> dict:
        """The plain nested-dict trie (`ngram.trie`'s structure), children most frequent first."""
        return self.root.to_dict()

    def verify(self) -> None:
        """Read every value once: ids inside the vocabulary, counts >= 1, children ranges in order.

        A few passes over memory (about a second for the default 5-gram); `ngram build`'s
        arrays pass by construction, so this is for files that came from elsewhere.
        """
        where = getattr(self, "source", "the model")
        for k, level in enumerate(self.levels, start=1):
            if len(level.ids) and (int(level.ids.min()) < 0 or int(level.ids.max()) >= len(self.vocab)):
                raise UserError(f"{where}: order {k} holds token ids outside the vocabulary")
            if self.kind == COUNTS_KIND and len(level.counts) and int(level.counts.min()) < 1:
                raise UserError(f"{where}: order {k} holds counts below 1")
            if level.first_child is not None and np.any(np.diff(level.first_child) < 0):
                raise UserError(f"{where}: the children ranges of order {k} are damaged")

    def count_statistics(self, bos_id: int) -> dict:
        """N-grams per order and the count-of-counts of every order, as `trie.count_statistics`
        gives them for the dict trie (the tables Kneser-Ney's discounts are made from)."""
        stats: dict = {"ngrams": [len(level.ids) for level in self.levels]}
        firsts = first_tokens(self)
        for k, level in enumerate(self.levels, start=1):
            stats[f"raw{k}"] = count_of_counts(level.counts)
            if level.continuation is not None:  # n-grams that start with <s> keep their real count
                kn = np.where(firsts[k - 1] == bos_id, level.counts, level.continuation)
                stats[f"cont{k}"] = count_of_counts(kn)
        return stats

    def nbytes(self) -> int:
        """Bytes of all arrays (the vocabulary's strings not included)."""
        return sum(a.nbytes for level in self.levels for a in level.arrays().values())


class ArrayNode(Mapping):
    """One node of an `ArrayTrie`, behaving like the dict trie's node (read-only).

    ``node[""]`` is its count, ``node["\\0"]`` its continuation count, ``node["want"]`` the
    child for "want" — a node again, or a bare count at the deepest level, exactly as in
    the dict trie. Iterating gives the two reserved keys, then the children most
    frequent first (ties in token-id order, as the dict trie was built).
    """

    __slots__ = ("trie", "depth", "index")

    def __init__(self, trie: ArrayTrie, depth: int, index: int) -> None:
        self.trie, self.depth, self.index = trie, depth, index

    @property
    def key(self) -> tuple[int, int]:
        """(depth, index): which node this is (two faces of the same node have the same key)."""
        return self.depth, self.index

    @property
    def count(self) -> int:
        return self.trie.total if self.depth == 0 else int(self.trie.levels[self.depth - 1].counts[self.index])

    @property
    def continuation(self) -> int:
        if self.depth == 0:
            return self.trie.root_continuation
        return int(self.trie.levels[self.depth - 1].continuation[self.index])

    def __getitem__(self, token: str) -> "ArrayNode | int":
        if token == COUNT:
            return self.count
        if token == CONTINUATION:
            return self.continuation
        token_id = self.trie.token_id.get(token)
        found = None if token_id is None else self.trie.child(self.depth, self.index, token_id)
        if found is None:
            raise KeyError(token)
        return self._child(found)

    def _child(self, at: int) -> "ArrayNode | int":
        if self.depth + 1 == self.trie.order:
            return int(self.trie.levels[self.depth].counts[at])  # the deepest level: a bare count
        return ArrayNode(self.trie, self.depth + 1, at)

    def children_by_count(self) -> np.ndarray:
        """Indices (in the next level) of this node's children, most frequent first."""
        start, end = self.trie.children_range(self.depth, self.index)
        counts = self.trie.levels[self.depth].counts[start:end]
        return start + np.argsort(-counts, kind="stable")

    def items_by_count(self) -> Iterator[tuple[str, "ArrayNode | int"]]:
        """(token, child) pairs, most frequent first."""
        for at in self.children_by_count().tolist():
            yield self.trie.token(self.depth, at), self._child(at)

    def __iter__(self) -> Iterator[str]:
        yield COUNT
        yield CONTINUATION
        for token, _ in self.items_by_count():
            yield token

    def __len__(self) -> int:
        start, end = self.trie.children_range(self.depth, self.index)
        return 2 + end - start

    def __contains__(self, token: object) -> bool:
        if token in (COUNT, CONTINUATION):
            return True
        try:
            self[token]  # type: ignore[index]
        except (KeyError, TypeError):
            return False
        return True

    def to_dict(self) -> dict:
        """This subtree as plain nested dicts, in the dict trie's key order."""
        out: dict = {COUNT: self.count, CONTINUATION: self.continuation}
        for token, child in self.items_by_count():
            out[token] = child.to_dict() if isinstance(child, ArrayNode) else child
        return out

    def __repr__(self) -> str:
        return f"ArrayNode(depth={self.depth}, count={self.count}, children={len(self) - 2})"


# ---------------------------------------------------------------------- files


def save_arrays(trie: ArrayTrie, folder: str | os.PathLike, metadata: dict) -> Path:
    """Write `trie` as a folder of .npy files and a JSON header, atomically.

    The folder is written beside the target under a temporary name and renamed into
    place at the end, so an interrupted save leaves any older model there untouched.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".part", dir=folder.parent))
    try:
        arrays: dict[str, dict] = {}
        for name, array in {"vocab_bytes": encode_vocab(trie.vocab), **level_arrays(trie)}.items():
            keep = name.startswith("vocab") or name.endswith(".ids") or np.asarray(array).dtype.kind == "f"
            array = array if keep else compact(np.asarray(array))
            np.save(tmp / f"{name}.npy", array, allow_pickle=False)
            arrays[name] = {"dtype": array.dtype.str, "shape": list(array.shape)}
        header = {
            "format": FORMAT,
            "version": VERSION,
            "order": trie.order,
            "vocab_size": len(trie.vocab),
            "total": trie.total,
            "root_continuation": trie.root_continuation,
            "kind": trie.kind,
            "arrays": arrays,
            "metadata": metadata,
        }
        (tmp / HEADER).write_text(json.dumps(header, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o755)
        replace_folder(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def replace_folder(new: Path, target: Path) -> None:
    """Move folder `new` to `target`; an existing `target` is swapped out, then removed."""
    if not target.exists():
        os.replace(new, target)
        return
    if not (target / HEADER).is_file():
        raise UserError(f"{target} exists and is not an n-gram model folder; choose another output path")
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


def level_arrays(trie: ArrayTrie) -> dict[str, np.ndarray]:
    """Every level's arrays under their file names: k1.ids, k1.counts, ..."""
    return {f"k{k}.{name}": array for k, level in enumerate(trie.levels, start=1)
            for name, array in level.arrays().items()}


def encode_vocab(vocab: Sequence[str]) -> np.ndarray:
    """The tokens as one UTF-8 byte array, separated by NUL (which no token contains)."""
    return np.frombuffer("\x00".join(vocab).encode("utf-8"), dtype=np.uint8)


def decode_vocab(blob: np.ndarray, size: int, where: Path) -> list[str]:
    """The inverse of `encode_vocab`: one decode and one split, refusing a wrong token count."""
    try:
        vocab = bytes(blob).decode("utf-8").split("\x00")
    except UnicodeDecodeError:
        raise UserError(f"{where}: the vocabulary is not UTF-8; the model is damaged") from None
    if len(vocab) != size or "" in vocab:
        raise UserError(f"{where}: the header says {size} tokens, the vocabulary has {len(vocab)}; "
                        "the model is damaged")
    return vocab


def is_array_model(path: str | os.PathLike) -> bool:
    """Whether `path` is a folder holding an array model's header."""
    return (Path(path) / HEADER).is_file()


def load_arrays(folder: str | os.PathLike, verify: bool = False) -> tuple[ArrayTrie, dict]:
    """Memory-map an array model; returns the trie and the header's metadata.

    Every array is checked against the header (dtype, shape, lengths that must agree,
    the ends of every children range) and the header against itself: a few reads,
    whatever the model's size, so loading stays instant. `verify` also reads every
    value once (`ArrayTrie.verify`: ids inside the vocabulary, counts >= 1, children
    ranges in order); lookups check what they read either way, so a damaged file gives
    one clear error, never an index out of bounds.
    """
    folder = Path(folder)
    header = read_header(folder)
    arrays = {name: load_array(folder, name, spec) for name, spec in header["arrays"].items()}
    order = header["order"]
    levels = []
    for k in range(1, order + 1):
        top = k == order
        levels.append(Level(
            ids=arrays[f"k{k}.ids"],
            counts=arrays[f"k{k}.counts"],
            continuation=None if top else arrays[f"k{k}.continuation"],
            first_child=None if top else arrays[f"k{k}.first_child"],
            logprob=arrays.get(f"k{k}.logprob"),
            backoff=arrays.get(f"k{k}.backoff"),
        ))
    check_shapes(levels, folder)
    vocab = decode_vocab(arrays["vocab_bytes"], header["vocab_size"], folder)
    trie = ArrayTrie(vocab, levels, total=header["total"], root_continuation=header["root_continuation"],
                     kind=header.get("kind", COUNTS_KIND))
    trie.source = folder
    if verify:
        trie.verify()
    return trie, header.get("metadata", {})


def read_header(folder: Path) -> dict:
    """The JSON header, checked: format, version, and the arrays every level needs."""
    path = folder / HEADER
    try:
        header = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{folder} is not an n-gram model folder (no {HEADER})") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise UserError(f"{path} is not valid JSON; the model is damaged") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise UserError(f"{path} is not an n-gram model header")
    if header.get("version") != VERSION:
        raise UserError(f"{folder} is an n-gram model of format version {header.get('version')!r}; "
                        f"this version reads {VERSION}: rebuild it with `ngram build`")
    for key in ("order", "vocab_size", "total", "root_continuation"):
        if not isinstance(header.get(key), int) or isinstance(header.get(key), bool) or header[key] < 0:
            raise UserError(f"{path}: {key!r} must be a non-negative integer")
    if not 1 <= header["order"] <= 64:
        raise UserError(f"{path}: order {header['order']} is out of range (1..64)")
    arrays = header.get("arrays")
    if header.setdefault("kind", COUNTS_KIND) not in (COUNTS_KIND, ARPA_KIND):
        raise UserError(f"{path}: unknown model kind {header['kind']!r}")
    needed = {"vocab_bytes"} | probability_arrays(header["kind"], header["order"])
    for k in range(1, header["order"] + 1):
        needed |= {f"k{k}.ids", f"k{k}.counts"}
        if k < header["order"]:
            needed |= {f"k{k}.continuation", f"k{k}.first_child"}
    if not isinstance(arrays, dict) or set(arrays) != needed:
        raise UserError(f"{path}: the list of arrays does not match order {header['order']}")
    return header


def load_array(folder: Path, name: str, spec: object) -> np.ndarray:
    """Memory-map one .npy file and check it is the 1-D array of the dtype the header names."""
    path = folder / f"{name}.npy"
    if name == "vocab_bytes":
        allowed = {np.dtype(np.uint8)}
    elif name.endswith(".ids"):
        allowed = {ID_DTYPE}
    elif name.endswith((".logprob", ".backoff")):
        allowed = {PROB_DTYPE}
    else:
        allowed = {SMALL_DTYPE, np.dtype("<i8")}
    if (not isinstance(spec, dict) or spec.get("dtype") not in {d.str for d in allowed}
            or not isinstance(spec.get("shape"), list)):
        raise UserError(f"{folder / HEADER}: the entry for {name} is malformed")
    expected = np.dtype(spec["dtype"])
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False).view(np.ndarray)  # plain views: no memmap overhead
    except FileNotFoundError:
        raise UserError(f"{path} is missing; the model is incomplete") from None
    except (ValueError, OSError, EOFError) as err:
        raise UserError(f"{path} is not a readable NumPy array ({str(err)[:120]}); the model is damaged") from None
    if array.dtype != expected or array.ndim != 1 or list(array.shape) != spec["shape"]:
        raise UserError(f"{path} holds a {array.dtype} array of shape {array.shape}; expected {expected} "
                        f"of shape {tuple(spec['shape'])}")
    return array


def check_shapes(levels: list[Level], folder: Path) -> None:
    """Lengths that must agree, and the two ends of every level's children ranges (O(1) reads)."""
    for k, level in enumerate(levels, start=1):
        n = len(level.ids)
        if len(level.counts) != n or any(a is not None and len(a) != n
                                         for a in (level.continuation, level.logprob, level.backoff)):
            raise UserError(f"{folder}: the arrays of order {k} differ in length")
        if level.first_child is not None:
            first = level.first_child
            if len(first) != n + 1 or first[0] != 0 or first[-1] != len(levels[k].ids):
                raise UserError(f"{folder}: the children ranges of order {k} are damaged")
